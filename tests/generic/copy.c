/* Copy stacks (LWC_STACK_COPY) under a scheduler library, compiled once and
 * linked against each (Makefile.am).  Every thread here is a copy SCont:
 * LWC_STACK_KIND=copy makes it the default.  Nothing passes a pointer to a
 * local to another thread, which copy stacks do not allow (README, Stacks). */
#include "blocked.h"

#include <lwc/detect.h>
#include <lwc/mvar.h>
#include <string.h>

/* Each test runs on 1 and then 2 capabilities: lwc_main reads both. */
static void use_copy(int caps)
{
    use_caps(caps);
    setenv("LWC_STACK_KIND", "copy", 1);
}

static void done_copy(void)
{
    unsetenv("LWC_STACK_KIND");
}

/* ---- frames survive switches ---------------------------------------------------- */

#define FRAME_THREADS 24
#define FRAME_ROUNDS  40

struct frames {
    atomic_int bad, homeless, done;
    lwc_mvar_t *ring[FRAME_THREADS];
    lwc_joinable_t *j[FRAME_THREADS];
};
struct frame_arg { struct frames *f; unsigned id; };

static unsigned char pattern(unsigned id, unsigned i)
{
    return (unsigned char)(id * 131u + i * 7u + 1u);
}

/* A frame of `size` bytes holding a pattern, `depth` calls down, across
 * switches of every kind: its bytes must be what they were each time it
 * resumes, on the capability it first ran on. */
static void hold_frames(struct frame_arg *a, unsigned depth, size_t size)
{
    unsigned char buf[4096];
    for (size_t i = 0; i < size; i++)
        buf[i] = pattern(a->id + depth, (unsigned)i);
    if (depth > 0) {
        hold_frames(a, depth - 1, size / 2 + 16);
    } else {
        unsigned me = a->id, n = FRAME_THREADS;
        unsigned home = lwc_scont_home_cap(lwc_scont_self());
        if (home != lwc_cap_self() && !(LWC_CONTEXT_UCONTEXT && home == -1u))
            atomic_fetch_add(&a->f->homeless, 1);   /* ucontext: guarded stacks, no home */
        for (unsigned r = 0; r < FRAME_ROUNDS; r++) {
            lwc_word_t v;
            if (r % 2)
                ck_assert_int_eq(lwc_yield(), LWC_OK);
            /* A ring of MVars: take from my own, put to the next. */
            ck_assert_int_eq(lwc_mvar_put(a->f->ring[(me + 1) % n], r), LWC_OK);
            ck_assert_int_eq(lwc_mvar_take(a->f->ring[me], &v), LWC_OK);
            if ((home != -1u && lwc_cap_self() != home) ||
                lwc_scont_home_cap(lwc_scont_self()) != home)
                atomic_fetch_add(&a->f->homeless, 1);
        }
    }
    for (size_t i = 0; i < size; i++)
        if (buf[i] != pattern(a->id + depth, (unsigned)i)) {
            atomic_fetch_add(&a->f->bad, 1);
            break;
        }
}

static void frame_thread(void *arg)
{
    struct frame_arg *a = arg;
    hold_frames(a, a->id % 4, 256 + 150u * a->id);
    atomic_fetch_add(&a->f->done, 1);
}

static void frames_main(void *arg)
{
    struct frames *f = arg;
    struct frame_arg *args = lwc_alloc(FRAME_THREADS * sizeof *args);
    ck_assert_ptr_nonnull(args);
    for (unsigned i = 0; i < FRAME_THREADS; i++)
        ck_assert_ptr_nonnull(f->ring[i] = lwc_mvar_new());
    for (unsigned i = 0; i < FRAME_THREADS; i++) {
        args[i] = (struct frame_arg){ f, i };
        ck_assert_int_eq(lwc_spawn_joinable(frame_thread, &args[i], &f->j[i]), LWC_OK);
    }
    for (unsigned i = 0; i < FRAME_THREADS; i++)
        ck_assert_int_eq(lwc_join(f->j[i]), LWC_OK);
    for (unsigned i = 0; i < FRAME_THREADS; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_try_take(f->ring[i], &v), LWC_EAGAIN);    /* all taken */
        lwc_mvar_free(f->ring[i]);
    }
    lwc_free(args);
}

START_TEST(test_copy_frames_survive_switches)
{
    use_copy(_i);
    struct frames *f = lwc_alloc(sizeof *f);
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(lwc_main(frames_main, f), LWC_OK);
    done_copy();
    ck_assert_int_eq(atomic_load(&f->done), FRAME_THREADS);
    ck_assert_int_eq(atomic_load(&f->bad), 0);
    ck_assert_int_eq(atomic_load(&f->homeless), 0);
    lwc_free(f);
}
END_TEST

/* ---- fork-join on copy stacks ----------------------------------------------------- */

/* fib with its arguments and results in the heap, as copy stacks need. */
struct fib { unsigned n; unsigned long r; };

static void fib(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    struct fib *a = lwc_alloc(sizeof *a), b = { f->n - 2, 0 };
    ck_assert_ptr_nonnull(a);
    *a = (struct fib){ f->n - 1, 0 };
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(fib, a, &j), LWC_OK);
    fib(&b);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    f->r = a->r + b.r;
    lwc_free(a);
}

START_TEST(test_copy_fib)
{
    use_copy(_i);
    struct fib *f = lwc_alloc(sizeof *f);
    *f = (struct fib){ LIGHT_RUN() ? 12 : 18, 0 };
    ck_assert_int_eq(lwc_main(fib, f), LWC_OK);
    done_copy();
    ck_assert_uint_eq(f->r, LIGHT_RUN() ? 144 : 2584);
    lwc_free(f);
}
END_TEST

/* ---- the detector reads saved frames ------------------------------------------------ */

/* The keeper holds the only reference to `secret` in its frames, and blocks
 * on a gate the main thread will open; a waiter blocks on secret.  While
 * the keeper waits, other copy threads run on the shared stack, so its
 * frames are saved away: a pass that did not read them would find the
 * waiter blocked for good and wake it with an error.  The keeper then puts,
 * and the waiter must get the value. */
static lwc_mvar_t *gate;
static atomic_int waiter_err = -1;
static atomic_ulong waiter_got;
static lwc_joinable_t *keeper_j;

static void waiter(void *arg)
{
    lwc_word_t v = 0;
    atomic_store(&waiter_err, lwc_mvar_take(arg, &v));
    atomic_store(&waiter_got, v);
}

static void keeper(void *arg)
{
    (void)arg;
    lwc_mvar_t *secret = lwc_mvar_new();
    ck_assert_ptr_nonnull(secret);
    lwc_joinable_t *waiter_j;                   /* in the keeper's frames only, too */
    ck_assert_int_eq(lwc_spawn_joinable(waiter, secret, &waiter_j), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(gate, &v), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(secret, 42), LWC_OK);
    ck_assert_int_eq(lwc_join(waiter_j), LWC_OK);
    lwc_mvar_free(secret);
}

static void detector_main(void *arg)
{
    (void)arg;
    start_busy();
    ck_assert_int_eq(lwc_spawn_joinable(keeper, NULL, &keeper_j), LWC_OK);
    for (int i = 0; i < 200; i++)               /* both block; others run over their stack */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_gc(), LWC_OK);
    ck_assert_int_eq(lwc_gc(), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(gate, 1), LWC_OK);
    ck_assert_int_eq(lwc_join(keeper_j), LWC_OK);
    stop_busy_threads();
}

START_TEST(test_copy_detector_reads_saved_frames)
{
    use_copy(_i);
    gate = lwc_mvar_new();
    atomic_store(&waiter_err, -1);
    ck_assert_int_eq(lwc_main(detector_main, NULL), LWC_OK);
    done_copy();
    ck_assert_int_eq(atomic_load(&waiter_err), LWC_OK);
    ck_assert_uint_eq(atomic_load(&waiter_got), 42);
    lwc_mvar_free(gate);
}
END_TEST

/* And a copy thread that nothing can wake is found, its frames saved. */
static atomic_int lost_err;
static int lost_found;

static void lost(void *arg)
{
    lwc_word_t v;
    atomic_store(&lost_err, lwc_mvar_take(arg, &v));
}

/* Its MVar is kept where the detector does not look: malloc memory. */
static void lost_main(void *arg)
{
    lwc_mvar_t **box = arg;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(lost, *box, &j), LWC_OK);
    /* Both are blocked for good: the detector wakes both, the lost thread
     * as unreachable, or (where a stale word on the host's stack still
     * names its MVar, as under valgrind) both as the program's deadlock. */
    int err = lwc_join(j);
    ck_assert(err == LWC_EBLOCKED_CONCDS || err == LWC_EDEADLOCK);
    while (err == LWC_EBLOCKED_CONCDS && atomic_load(&lost_err) == -1)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    lost_found = err;
}

START_TEST(test_copy_blocked_forever_is_found)
{
    use_copy(_i);
    atomic_store(&lost_err, -1);
    lwc_mvar_t **box = malloc(sizeof *box);
    ck_assert_ptr_nonnull(box);
    *box = lwc_mvar_new();
    int err = lwc_main(lost_main, box);         /* the deadlock's, if it was one */
    ck_assert(err == LWC_OK || err == LWC_EDEADLOCK);
    done_copy();
    if (lost_found == LWC_EBLOCKED_CONCDS)      /* else it stays blocked, as GHC's would */
        ck_assert_int_eq(atomic_load(&lost_err), LWC_EBLOCKED_CONCDS);
    else
        ck_assert_int_eq(lost_found, LWC_EDEADLOCK);
    lwc_mvar_free(*box);
    free(box);
}
END_TEST

/* ---- retry ------------------------------------------------------------------------ */

/* Threads that retry block through their scheduler, their frames saved away
 * while others run; the wakers' writes to their waiters must land in the
 * waiters, not in whatever frames the shared stack holds by then. */
#define RETRIERS 16

static lwc_pvar_t *go;
static atomic_int retried;

static void retrier(void *arg)
{
    (void)arg;
    volatile unsigned char pad[512];
    for (unsigned i = 0; i < sizeof pad; i++)
        pad[i] = (unsigned char)i;
    ck_assert_int_eq(lwc_atomically(wait_nonzero, go, NULL), LWC_OK);
    for (unsigned i = 0; i < sizeof pad; i++)
        ck_assert_uint_eq(pad[i], (unsigned char)i);
    atomic_fetch_add(&retried, 1);
}

static lwc_word_t set_go(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_pvar_write(tx, go, 1);
    return 0;
}

static void retry_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *j[RETRIERS];
    for (int i = 0; i < RETRIERS; i++)
        ck_assert_int_eq(lwc_spawn_joinable(retrier, NULL, &j[i]), LWC_OK);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_atomically(set_go, NULL, NULL), LWC_OK);
    for (int i = 0; i < RETRIERS; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
}

START_TEST(test_copy_retry_wakes)
{
    use_copy(_i);
    go = lwc_pvar_new(0);
    atomic_store(&retried, 0);
    ck_assert_int_eq(lwc_main(retry_main, NULL), LWC_OK);
    done_copy();
    ck_assert_int_eq(atomic_load(&retried), RETRIERS);
    lwc_pvar_free(go);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("copy");
    TCase *tc = tcase_create("copy");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_copy_frames_survive_switches, 0, 2);
    tcase_add_loop_test(tc, test_copy_fib, 0, 2);
    tcase_add_loop_test(tc, test_copy_detector_reads_saved_frames, 0, 2);
    tcase_add_loop_test(tc, test_copy_blocked_forever_is_found, 0, 2);
    tcase_add_loop_test(tc, test_copy_retry_wakes, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
