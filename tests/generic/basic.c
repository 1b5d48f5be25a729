/* The scheduler interface, compiled once and linked against every scheduler
 * library (Makefile.am): nothing here may assume which one. */
#include "blocked.h"

#include <lwc/io.h>
#include <lwc/mvar.h>
#include <pthread.h>
#include <string.h>

/* Each test runs on 1 and then 2 capabilities (use_caps): lwc_main reads
 * LWC_CAPS. */

/* ---- spawn, yield, join ------------------------------------------------------------ */

#define WORKERS 50
#define ROUNDS  20

struct counts { atomic_int ran, yields_ok; lwc_joinable_t *j[WORKERS]; int joined; };

static void worker(void *arg)
{
    struct counts *c = arg;
    for (int i = 0; i < ROUNDS; i++)
        if (lwc_yield() == LWC_OK)
            atomic_fetch_add(&c->yields_ok, 1);
    atomic_fetch_add(&c->ran, 1);
}

static void spawn_join_main(void *arg)
{
    struct counts *c = arg;
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(lwc_spawn_joinable(worker, c, &c->j[i]), LWC_OK);
    for (int i = 0; i < WORKERS; i++) {
        ck_assert_int_eq(lwc_join(c->j[i]), LWC_OK);
        c->joined++;
    }
}

START_TEST(test_spawn_yield_join)
{
    use_caps(_i);
    struct counts c = { 0 };
    ck_assert_int_eq(lwc_main(spawn_join_main, &c), LWC_OK);
    ck_assert_int_eq(c.joined, WORKERS);
    ck_assert_int_eq(atomic_load(&c.ran), WORKERS);
    ck_assert_int_eq(atomic_load(&c.yields_ok), WORKERS * ROUNDS);
}
END_TEST

/* ---- detached threads counted down through an MVar --------------------------------- */

struct fan { lwc_mvar_t *mv; unsigned n; };

static void leaf(void *arg)
{
    struct fan *f = arg;
    ck_assert_int_eq(lwc_mvar_put(f->mv, 1), LWC_OK);
}

static void fan_main(void *arg)
{
    struct fan *f = arg;
    for (unsigned i = 0; i < f->n; i++)
        ck_assert_int_eq(lwc_spawn(leaf, f), LWC_OK);
    for (unsigned i = 0; i < f->n; i++) {
        lwc_word_t v = 0;
        ck_assert_int_eq(lwc_mvar_take(f->mv, &v), LWC_OK);
        ck_assert_uint_eq(v, 1);
    }
}

START_TEST(test_detached_threads_and_mvar)
{
    use_caps(_i);
    /* Nearly all of them wait at once: ThreadSanitizer allows 8128 fibers. */
    struct fan f = { lwc_mvar_new(), SANITIZED ? 4000 : scaled(20000) };
    ck_assert_int_eq(lwc_main(fan_main, &f), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_try_take(f.mv, &v), LWC_EAGAIN);  /* every put was taken */
    lwc_mvar_free(f.mv);
}
END_TEST

/* ---- a ping-pong through two MVars ---------------------------------------------------- */

struct pingpong { lwc_mvar_t *ping, *pong; unsigned rounds; lwc_word_t sum; };

static void ponger(void *arg)
{
    struct pingpong *p = arg;
    for (unsigned i = 0; i < p->rounds; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(p->ping, &v), LWC_OK);
        ck_assert_int_eq(lwc_mvar_put(p->pong, v + 1), LWC_OK);
    }
}

static void pinger(void *arg)
{
    struct pingpong *p = arg;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(ponger, p, &j), LWC_OK);
    for (unsigned i = 0; i < p->rounds; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_put(p->ping, 2 * i), LWC_OK);
        ck_assert_int_eq(lwc_mvar_take(p->pong, &v), LWC_OK);
        ck_assert_uint_eq(v, 2 * i + 1);
        p->sum += v;
    }
    ck_assert_int_eq(lwc_join(j), LWC_OK);
}

START_TEST(test_pingpong)
{
    use_caps(_i);
    struct pingpong p = { lwc_mvar_new(), lwc_mvar_new(), scaled(50000), 0 };
    ck_assert_int_eq(lwc_main(pinger, &p), LWC_OK);
    ck_assert_uint_eq(p.sum, (lwc_word_t)p.rounds * p.rounds);   /* sum of 2i+1 */
    lwc_mvar_free(p.ping);
    lwc_mvar_free(p.pong);
}
END_TEST

/* ---- fib with a joinable spawn per call ------------------------------------------------ */

struct fib { unsigned n; lwc_word_t r; };

static void fib(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    struct fib a = { f->n - 1, 0 }, b = { f->n - 2, 0 };
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(fib, &a, &j), LWC_OK);
    fib(&b);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    f->r = a.r + b.r;
}

START_TEST(test_fib)
{
    use_caps(_i);
    struct fib f = { LIGHT_RUN() ? 12 : 20, 0 };
    ck_assert_int_eq(lwc_main(fib, &f), LWC_OK);
    ck_assert_uint_eq(f.r, LIGHT_RUN() ? 144 : 6765);
}
END_TEST

/* ---- threads that have not run have no stack --------------------------------------- */

/* Note [Stacks on first run] in substrate/scont.c: on one capability, threads
 * spawned all at once and then run one after another to completion share a
 * couple of warm stacks, each taking the one a predecessor gave back, where a
 * stack set up per spawn would give each an address of its own. */
#define ONE_BY_ONE 1000

struct one_by_one { uintptr_t where[ONE_BY_ONE]; atomic_int ran; lwc_mvar_t *done; };

static void note_where(void *arg)
{
    struct one_by_one *o = arg;
    volatile char here = 0;
    int i = atomic_fetch_add(&o->ran, 1);
    o->where[i] = (uintptr_t)&here;
    if (i == ONE_BY_ONE - 1)
        ck_assert_int_eq(lwc_mvar_put(o->done, 1), LWC_OK);
}

static void one_by_one_main(void *arg)
{
    struct one_by_one *o = arg;
    ck_assert_ptr_nonnull(o->done = lwc_mvar_new());
    for (int i = 0; i < ONE_BY_ONE; i++)
        ck_assert_int_eq(lwc_spawn(note_where, o), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(o->done, &v), LWC_OK);
    lwc_mvar_free(o->done);
}

START_TEST(test_run_one_by_one_share_stacks)
{
    use_caps(0);
    struct one_by_one *o = calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(lwc_main(one_by_one_main, o), LWC_OK);
    ck_assert_int_eq(atomic_load(&o->ran), ONE_BY_ONE);
    int distinct = 0;
    for (int i = 0; i < ONE_BY_ONE; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = o->where[j] == o->where[i];
        distinct += !seen;
    }
    ck_assert_int_le(distinct, 2);
    free(o);
}
END_TEST

/* ---- yield is fair ------------------------------------------------------------------------- */

#define FAIR_THREADS 4
#define FAIR_ROUNDS  50

struct fair { atomic_uint done[FAIR_THREADS]; atomic_int unfair; lwc_joinable_t *j[FAIR_THREADS]; };
struct fair_arg { struct fair *f; unsigned id; };

/* On one capability a yield must let every other runnable thread run first:
 * no thread gets two rounds ahead of another. */
static void fair_worker(void *arg)
{
    struct fair_arg *a = arg;
    for (unsigned r = 1; r <= FAIR_ROUNDS; r++) {
        atomic_store(&a->f->done[a->id], r);
        for (unsigned o = 0; o < FAIR_THREADS; o++)
            if (atomic_load(&a->f->done[o]) + 1 < r)
                atomic_store(&a->f->unfair, 1);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

static void fair_main(void *arg)
{
    struct fair *f = arg;
    struct fair_arg a[FAIR_THREADS];
    for (unsigned i = 0; i < FAIR_THREADS; i++) {
        a[i] = (struct fair_arg){ f, i };
        ck_assert_int_eq(lwc_spawn_joinable(fair_worker, &a[i], &f->j[i]), LWC_OK);
    }
    for (unsigned i = 0; i < FAIR_THREADS; i++)
        ck_assert_int_eq(lwc_join(f->j[i]), LWC_OK);
}

START_TEST(test_yield_is_fair)
{
    use_caps(0);
    struct fair f = { 0 };
    ck_assert_int_eq(lwc_main(fair_main, &f), LWC_OK);
    for (unsigned i = 0; i < FAIR_THREADS; i++)
        ck_assert_uint_eq(atomic_load(&f.done[i]), FAIR_ROUNDS);
    ck_assert_int_eq(atomic_load(&f.unfair), 0);
}
END_TEST

/* ---- a waiter that outlives its run ------------------------------------------------------ */

static lwc_mvar_t *orphan_mv;

static void blocked_forever(void *arg)
{
    lwc_word_t v;
    (void)arg;
    lwc_mvar_take(orphan_mv, &v);           /* nobody puts during this run */
    ck_abort_msg("a taker of a finished run was resumed");
}

static void leave_a_taker(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lwc_spawn(blocked_forever, NULL), LWC_OK);
    ck_assert_int_eq(lwc_yield(), LWC_OK);  /* let it block */
}

static void put_after(void *arg)
{
    lwc_word_t v = 0;
    (void)arg;
    ck_assert_int_eq(lwc_mvar_put(orphan_mv, 7), LWC_OK);     /* the dead taker is skipped */
    ck_assert_int_eq(lwc_mvar_try_take(orphan_mv, &v), LWC_OK);
    ck_assert_uint_eq(v, 7);
}

/* lwc_main returns with a thread still blocked in an MVar, and frees it; the
 * next run must not hand a value to it (Note [Waiter nodes], resume token). */
START_TEST(test_waiter_outlives_its_run)
{
    use_caps(0);
    orphan_mv = lwc_mvar_new();
    ck_assert_int_eq(lwc_main(leave_a_taker, NULL), LWC_OK);
    ck_assert_int_eq(lwc_main(put_after, NULL), LWC_OK);
    lwc_mvar_free(orphan_mv);
}
END_TEST

/* ---- misuse ---------------------------------------------------------------------------- */

/* ---- sleep --------------------------------------------------------------------------- */

#define MS 1000000ull

/* A sleeper blocks only itself: a thread that yields in a loop keeps running
 * meanwhile (on one capability too, where only the switch points serve the
 * timers), and the sleep lasts at least as long as asked. */
struct sleep_pair { atomic_ullong spins; atomic_int sleeper_done; unsigned long long seen_before, seen_after; };

static void spinner(void *arg)
{
    struct sleep_pair *p = arg;
    while (!atomic_load(&p->sleeper_done)) {
        atomic_fetch_add(&p->spins, 1);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

static void sleeper_main(void *arg)
{
    struct sleep_pair *p = arg;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(spinner, p, &j), LWC_OK);
    for (int round = 0; round < 3; round++) {
        p->seen_before = atomic_load(&p->spins);
        uint64_t t0 = lwc_clock_ns();
        ck_assert_int_eq(lwc_sleep_ns(20 * MS), LWC_OK);
        ck_assert_uint_ge(lwc_clock_ns() - t0, 20 * MS);
        p->seen_after = atomic_load(&p->spins);
        ck_assert_uint_gt(p->seen_after, p->seen_before);
    }
    atomic_store(&p->sleeper_done, 1);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
}

START_TEST(test_sleep_blocks_only_the_caller)
{
    use_caps(_i);
    struct sleep_pair p = { 0 };
    ck_assert_int_eq(lwc_main(sleeper_main, &p), LWC_OK);
    ck_assert_int_eq(atomic_load(&p.sleeper_done), 1);
}
END_TEST

/* Many sleepers with deadlines in scrambled order: each wakes no earlier than
 * its deadline.  On rr, whose run queue is FIFO, one capability also resumes
 * them in deadline order (ws runs a batch of wake-ups newest first).  Equal
 * deadlines have no order: the last sleeper of a group may still be inside its
 * blocking transaction (the capability retries it while it has nothing else
 * to run), so when the group fires it carries straight on, ahead of the rest. */
#define SLEEPERS 64

struct sleepers {
    uint64_t base;
    atomic_int next_rank;
    int rank[SLEEPERS];
    uint64_t asleep_by[SLEEPERS];   /* the clock just before the sleep began */
    atomic_int early;
};

struct sleeper_arg { struct sleepers *all; int i; };

static uint64_t sleeper_deadline(const struct sleepers *all, int i)
{
    return all->base + (uint64_t)((i * 37) % SLEEPERS / 2) * MS;   /* pairs share one */
}

static void timed_sleeper(void *arg)
{
    struct sleeper_arg *a = arg;
    uint64_t d = sleeper_deadline(a->all, a->i);
    a->all->asleep_by[a->i] = lwc_clock_ns();
    ck_assert_int_eq(lwc_sleep_until(d), LWC_OK);
    if (lwc_clock_ns() < d)
        atomic_fetch_add(&a->all->early, 1);
    a->all->rank[a->i] = atomic_fetch_add(&a->all->next_rank, 1);
}

static void sleepers_main(void *arg)
{
    struct sleepers *all = arg;
    struct sleeper_arg args[SLEEPERS];
    lwc_joinable_t *j[SLEEPERS];
    all->base = lwc_clock_ns() + 50 * MS;
    for (int i = 0; i < SLEEPERS; i++) {
        args[i] = (struct sleeper_arg){ all, i };
        ck_assert_int_eq(lwc_spawn_joinable(timed_sleeper, &args[i], &j[i]), LWC_OK);
    }
    for (int i = 0; i < SLEEPERS; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
}

START_TEST(test_sleepers_wake_in_deadline_order)
{
    use_caps(_i);
    struct sleepers all = { 0 };
    ck_assert_int_eq(lwc_main(sleepers_main, &all), LWC_OK);
    ck_assert_int_eq(atomic_load(&all.next_rank), SLEEPERS);
    ck_assert_int_eq(atomic_load(&all.early), 0);
    if (_i == 0 && strcmp(lwc_sched_name(), "rr") == 0) {
        for (int a = 0; a < SLEEPERS; a++)
            for (int b = 0; b < SLEEPERS; b++) {
                /* Only a pair that were both asleep before the earlier deadline
                 * must wake in order: a slow machine (valgrind, a sanitizer)
                 * may start a sleeper after its deadline has passed. */
                uint64_t da = sleeper_deadline(&all, a), db = sleeper_deadline(&all, b);
                if (da < db && all.asleep_by[a] < da && all.asleep_by[b] < da)
                    ck_assert_int_lt(all.rank[a], all.rank[b]);
            }
    }
}
END_TEST

/* Thousands of short sleeps racing with spawns, wake-ups and idle capabilities. */
static void short_sleeper(void *arg)
{
    lwc_mvar_t *mv = arg;
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(lwc_sleep_ns((uint64_t)(lwc_clock_ns() % 997) * 1000), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(mv, 1), LWC_OK);
}

static void many_sleepers_main(void *arg)
{
    struct fan *f = arg;
    for (unsigned i = 0; i < f->n; i++)
        ck_assert_int_eq(lwc_spawn(short_sleeper, f->mv), LWC_OK);
    for (unsigned i = 0; i < f->n; i++) {
        lwc_word_t v = 0;
        ck_assert_int_eq(lwc_mvar_take(f->mv, &v), LWC_OK);
    }
}

START_TEST(test_many_short_sleeps)
{
    use_caps(_i);
    struct fan f = { lwc_mvar_new(), scaled(3000) };
    ck_assert_int_eq(lwc_main(many_sleepers_main, &f), LWC_OK);
    lwc_mvar_free(f.mv);
}
END_TEST

/* Outside the runtime, sleep blocks the OS thread; a passed deadline returns at once. */
START_TEST(test_sleep_outside_and_passed)
{
    uint64_t t0 = lwc_clock_ns();
    ck_assert_int_eq(lwc_sleep_ns(2 * MS), LWC_OK);
    ck_assert_uint_ge(lwc_clock_ns() - t0, 2 * MS);
    ck_assert_int_eq(lwc_sleep_ns(0), LWC_OK);
    ck_assert_int_eq(lwc_sleep_until(0), LWC_OK);
    ck_assert_int_eq(lwc_sleep_until(lwc_clock_ns()), LWC_OK);
}
END_TEST

static void noop(void *arg) { (void)arg; }

/* ---- bound threads ----------------------------------------------------------------------
 * Two bound threads (lwc_spawn_bound) and two unbound ones pass a token
 * around a ring of MVars: the values arrive in order, and each bound thread
 * is on the same OS thread after every switch. */

#define BOUND_RING 4
#define BOUND_LAPS 200

static lwc_mvar_t *bound_mv[BOUND_RING], *bound_done;
static atomic_int bound_moved, bound_flags;

static void bound_member(void *arg)
{
    int i = (int)(intptr_t)arg;
    pthread_t me = pthread_self();
    if (lwc_scont_is_bound(lwc_scont_self()))
        atomic_fetch_or(&bound_flags, 1 << i);
    for (int lap = 0; lap < BOUND_LAPS; lap++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(bound_mv[i], &v), LWC_OK);
        ck_assert_uint_eq(v, (lwc_word_t)(lap * BOUND_RING + i));
        if (!pthread_equal(me, pthread_self()) && lwc_scont_is_bound(lwc_scont_self()))
            atomic_fetch_add(&bound_moved, 1);
        if (lap < BOUND_LAPS - 1 || i < BOUND_RING - 1)
            ck_assert_int_eq(lwc_mvar_put(bound_mv[(i + 1) % BOUND_RING], v + 1), LWC_OK);
    }
    ck_assert_int_eq(lwc_mvar_put(bound_done, (lwc_word_t)i), LWC_OK);
}

static void bound_ring(void *arg)
{
    (void)arg;
    atomic_store(&bound_moved, 0);
    atomic_store(&bound_flags, 0);
    bound_done = lwc_mvar_new();
    for (int i = 0; i < BOUND_RING; i++)
        bound_mv[i] = lwc_mvar_new();
    for (int i = 0; i < BOUND_RING; i++)
        ck_assert_int_eq((i % 2 ? lwc_spawn : lwc_spawn_bound)(bound_member, (void *)(intptr_t)i),
                         LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(bound_mv[0], 0), LWC_OK);
    for (int i = 0; i < BOUND_RING; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(bound_done, &v), LWC_OK);
    }
    /* members 0 and 2; none on the loop, whose threads all run on its host's */
    ck_assert_int_eq(atomic_load(&bound_flags), strcmp(lwc_sched_name(), "loop") ? 0x5 : 0);
    ck_assert_int_eq(atomic_load(&bound_moved), 0);
    for (int i = 0; i < BOUND_RING; i++)
        lwc_mvar_free(bound_mv[i]);
    lwc_mvar_free(bound_done);
}

START_TEST(test_bound_threads)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(bound_ring, NULL), LWC_OK);
}
END_TEST

START_TEST(test_outside_the_runtime)
{
    ck_assert_int_eq(lwc_spawn(noop, NULL), LWC_EINVAL);    /* no lwc_main running */
    ck_assert_int_eq(lwc_spawn_bound(noop, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_yield(), LWC_EINVAL);
    ck_assert_int_eq(lwc_main(NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_join(NULL), LWC_EINVAL);
    ck_assert_ptr_nonnull(lwc_sched_name());
    ck_assert_int_gt(strlen(lwc_sched_name()), 0);
}
END_TEST

/* ---- in-calls from foreign OS threads ------------------------------------------------
 * Plain pthreads of a C library of their own run functions as threads of
 * the linked scheduler and wait for each (lwc_spawn_joinable + lwc_join from
 * an OS thread: GHC's in-call), four at once, while lwc_main's thread waits
 * on an MVar that the last in-call fills. */

#define INCALLERS 4
#define INCALLS 25
static atomic_int incalls_done;
static lwc_mvar_t *incalls_over;

static void incall(void *arg)
{
    (void)arg;
    ck_assert_ptr_nonnull(lwc_scont_self());
    ck_assert_int_eq(lwc_yield(), LWC_OK);
    if (atomic_fetch_add(&incalls_done, 1) == INCALLERS * INCALLS - 1)
        ck_assert_int_eq(lwc_mvar_put(incalls_over, 1), LWC_OK);
}

static void *foreign_caller(void *arg)
{
    (void)arg;
    for (int i = 0; i < INCALLS; i++) {
        lwc_joinable_t *j;
        ck_assert_int_eq(lwc_spawn_joinable(incall, NULL, &j), LWC_OK);
        ck_assert_int_eq(lwc_join(j), LWC_OK);
    }
    return NULL;
}

static void incall_host(void *arg)
{
    (void)arg;
    pthread_t pt[INCALLERS];
    for (int i = 0; i < INCALLERS; i++)
        ck_assert_int_eq(pthread_create(&pt[i], NULL, foreign_caller, NULL), 0);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(incalls_over, &v), LWC_OK);
    /* Joined yielding: a blocking pthread_join would hold this capability,
     * which the last in-call may still need to finish. */
    for (int i = 0; i < INCALLERS; i++)
        while (pthread_tryjoin_np(pt[i], NULL) != 0)
            ck_assert_int_eq(lwc_yield(), LWC_OK);
}

START_TEST(test_incalls_from_foreign_threads)
{
    use_caps(_i);
    atomic_store(&incalls_done, 0);
    incalls_over = lwc_mvar_new();
    lwc_pin(incalls_over);
    ck_assert_int_eq(lwc_main(incall_host, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&incalls_done), INCALLERS * INCALLS);
    lwc_unpin(incalls_over);
    lwc_mvar_free(incalls_over);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("generic");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_spawn_yield_join, 0, 2);
    tcase_add_loop_test(tc, test_detached_threads_and_mvar, 0, 2);
    tcase_add_loop_test(tc, test_pingpong, 0, 2);
    tcase_add_test(tc, test_run_one_by_one_share_stacks);
    tcase_add_loop_test(tc, test_fib, 0, 2);
    tcase_add_test(tc, test_yield_is_fair);
    tcase_add_test(tc, test_waiter_outlives_its_run);
    tcase_add_test(tc, test_outside_the_runtime);
    tcase_add_loop_test(tc, test_bound_threads, 0, 2);
    tcase_add_loop_test(tc, test_sleep_blocks_only_the_caller, 0, 2);
    tcase_add_loop_test(tc, test_sleepers_wake_in_deadline_order, 0, 2);
    tcase_add_loop_test(tc, test_many_short_sleeps, 0, 2);
    tcase_add_test(tc, test_sleep_outside_and_passed);
    tcase_add_loop_test(tc, test_incalls_from_foreign_threads, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
