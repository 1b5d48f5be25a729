/* The blocked-forever scenarios of doc/scenarios.md: each test is
 * named after its scenario and cites its source.  Compiled once and linked
 * against every scheduler library; each runs on 1 and on 2 capabilities.
 *
 * A thread the detector must find unreachable must not have its address, or
 * the address of what it waits on, anywhere a root shows it: in a static, on
 * the stack of a thread that runs.  So the tests keep such addresses hidden
 * (hidden_t), report through plain ints, and let the threads concerned make
 * their own MVars.  No assertion depends on timing: a test that needs a pass
 * after a thread has blocked runs passes until the thread reports back. */
#include "guest.h"

#include <lwc/io.h>
#include <lwc/mvar.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static lwc_mvar_t *stash_new_mvar(lwc_mvar_t **where)
{
    return *where = lwc_mvar_new();
}

/* A thread that publishes itself, then does one blocking operation. */
struct waiter {
    lwc_scont_t *_Atomic self;
    int err;
    lwc_joinable_t *j;
};

static lwc_scont_t *spawn_waiter(struct waiter *w, void (*fn)(void *), void *arg)
{
    ck_assert_int_eq(lwc_spawn_joinable(fn, arg, &w->j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&w->self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    return s;
}

/* ---- 11. Freeing an MVar with waiters --------------------------------------------------
 * Three threads block on an MVar; another frees it.  All three get
 * LWC_EBLOCKED_CONCDS, in the order they blocked. */

struct freed {
    lwc_mvar_t *mv;
    struct waiter w[3];
    atomic_int woken;
    int order[3];
};

struct freed_taker { struct freed *f; int i; };

static void freed_taker(void *arg)
{
    struct freed_taker *ft = arg;
    struct waiter *w = &ft->f->w[ft->i];
    atomic_store(&w->self, lwc_scont_self());
    lwc_word_t x;
    w->err = lwc_mvar_take(ft->f->mv, &x);
    ft->f->order[atomic_fetch_add(&ft->f->woken, 1)] = ft->i;
}

static void free_mvar_with_waiters(void *arg)
{
    (void)arg;
    start_busy();
    struct freed f = { .mv = lwc_mvar_new() };
    struct freed_taker ft[3];
    for (int i = 0; i < 3; i++) {
        ft[i] = (struct freed_taker){ &f, i };
        await_blocked(spawn_waiter(&f.w[i], freed_taker, &ft[i]));
    }
    lwc_mvar_free(f.mv);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(lwc_join(f.w[i].j), LWC_OK);
        ck_assert_int_eq(f.w[i].err, LWC_EBLOCKED_CONCDS);
    }
    ck_assert_int_eq(atomic_load(&f.woken), 3);
    /* rr on one capability runs them in the order they were made runnable. */
    if (!strcmp(lwc_sched_name(), "rr") && !strcmp(getenv("LWC_CAPS"), "1"))
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(f.order[i], i);
    stop_busy_threads();
}

START_TEST(test_free_mvar_with_waiters)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(free_mvar_with_waiters, NULL), LWC_OK);
}
END_TEST

/* ---- 14. Kill while blocked (GHC conc020, with an explicit kill) -----------------------
 * A thread blocked on an MVar that main still holds is killed: its take
 * returns LWC_EKILLED, and a later put on the MVar does not hand the value to
 * the dead waiter. */

struct killed { lwc_mvar_t *mv; struct waiter w; lwc_word_t got; };

static void killed_taker(void *arg)
{
    struct killed *k = arg;
    atomic_store(&k->w.self, lwc_scont_self());
    k->w.err = lwc_mvar_take(k->mv, &k->got);
}

static void kill_while_blocked(void *arg)
{
    (void)arg;
    start_busy();
    struct killed k = { .mv = lwc_mvar_new(), .got = 12345 };
    lwc_scont_t *s = spawn_waiter(&k.w, killed_taker, &k);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_join(k.w.j), LWC_OK);
    ck_assert_int_eq(k.w.err, LWC_EKILLED);
    ck_assert_uint_eq(k.got, 12345);                    /* handed nothing */
    ck_assert_int_eq(lwc_mvar_put(k.mv, 42), LWC_OK);
    lwc_word_t x = 0;
    ck_assert_int_eq(lwc_mvar_try_take(k.mv, &x), LWC_OK);
    ck_assert_uint_eq(x, 42);                           /* still there */
    lwc_mvar_free(k.mv);
    stop_busy_threads();
}

START_TEST(test_kill_while_blocked)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(kill_while_blocked, NULL), LWC_OK);
}
END_TEST

/* ---- 16. Pinned PVar, killed waiter (GHC T9379) ----------------------------------------
 * A thread blocks in a PTM retry on a pinned PVar; main kills it: the kill
 * arrives (LWC_EKILLED), nothing else does, nothing hangs. */

struct retrier { lwc_pvar_t *pv; struct waiter w; int after; };

static void retrier(void *arg)
{
    struct retrier *r = arg;
    atomic_store(&r->w.self, lwc_scont_self());
    r->w.err = lwc_atomically(wait_nonzero, r->pv, NULL);
    r->after = lwc_yield();                             /* nothing else arrives */
}

static void pinned_pvar_killed_waiter(void *arg)
{
    (void)arg;
    start_busy();
    struct retrier r = { .pv = lwc_pvar_new(0), .after = 1 };
    lwc_pin(r.pv);
    lwc_scont_t *s = spawn_waiter(&r.w, retrier, &r);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_join(r.w.j), LWC_OK);
    ck_assert_int_eq(r.w.err, LWC_EKILLED);
    ck_assert_int_eq(r.after, LWC_OK);
    ck_assert_uint_eq(lwc_pvar_read(NULL, r.pv), 0);
    lwc_unpin(r.pv);
    lwc_pvar_free(r.pv);
    stop_busy_threads();
}

START_TEST(test_pinned_pvar_killed_waiter)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(pinned_pvar_killed_waiter, NULL), LWC_OK);
}
END_TEST

/* ---- 1. Alone on its own MVar (GHC conc033) -------------------------------------------
 * The first thread takes from an empty MVar it made; nothing else exists.  The
 * take returns LWC_EBLOCKED_CONCDS, the thread finishes, lwc_main returns 0. */

static int alone_err;

static void alone_on_own_mvar(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_word_t v;
    alone_err = lwc_mvar_take(m, &v);
    lwc_mvar_free(m);
}

START_TEST(test_alone_on_own_mvar)
{
    use_caps(_i);
    alone_err = 1;
    ck_assert_int_eq(lwc_main(alone_on_own_mvar, NULL), LWC_OK);
    ck_assert_int_eq(alone_err, LWC_EBLOCKED_CONCDS);
}
END_TEST

/* ---- 2. Partial deadlock while the main thread runs (GHC conc019) -----------------------
 * A child takes from a private empty MVar.  Main sleeps 10 ms, calls lwc_gc,
 * sleeps 10 ms.  The child gets LWC_EBLOCKED_CONCDS; main is untouched. */

static void partial_deadlock(void *arg)
{
    (void)arg;
    atomic_store(&private_done, 0);
    ck_assert_int_eq(lwc_spawn(private_taker, NULL), LWC_OK);
    ck_assert_int_eq(lwc_sleep_ns(10000000), LWC_OK);
    ck_assert_int_ge(lwc_gc(), 0);
    ck_assert_int_eq(lwc_sleep_ns(10000000), LWC_OK);
    gc_until_count(&private_done, 1);            /* in case the child had not blocked yet */
    ck_assert_int_eq(atomic_load(&private_err), LWC_EBLOCKED_CONCDS);
}

START_TEST(test_partial_deadlock)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(partial_deadlock, NULL), LWC_OK);
}
END_TEST

/* ---- 3. Forwarding (GHC conc024) ----------------------------------------------------------
 * A child blocks on a private MVar; woken with the error, it throws it to
 * main, which yields, calls lwc_gc and sleeps: the error comes out of a sleep. */

static void forwarder(void *arg)
{
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_word_t v;
    int err = lwc_mvar_take(m, &v);
    lwc_mvar_free(m);
    ck_assert_int_eq(lwc_throw_to(arg, err), LWC_OK);
}

static void forwarding(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lwc_spawn(forwarder, lwc_scont_self()), LWC_OK);
    ck_assert_int_eq(lwc_yield(), LWC_OK);
    int err;
    do
        ck_assert_int_ge(lwc_gc(), 0);
    while ((err = lwc_sleep_ns(2000000)) == LWC_OK);
    ck_assert_int_eq(err, LWC_EBLOCKED_CONCDS);
}

START_TEST(test_forwarding)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(forwarding, NULL), LWC_OK);
}
END_TEST

/* ---- 4. A whole island at once (GHC conc018; ezyang, "BlockedIndefinitelyOnMVar") --------
 * Main waits on m; a child blocks putting into a full MVar only it knows, and
 * would put into m from its error path.  They reference only each other: both
 * get the error in the same pass, so main's take fails although the child's
 * error path then fills m. */

static atomic_int island_done, island_put_err, island_after_err;

static void island_child(void *arg)
{
    lwc_mvar_t *full = lwc_mvar_new_full(0);
    atomic_store(&island_put_err, lwc_mvar_put(full, 1));
    lwc_mvar_free(full);
    atomic_store(&island_after_err, lwc_mvar_put(arg, 1));
    atomic_store(&island_done, 1);
}

static void whole_island(void *arg)
{
    (void)arg;
    atomic_store(&island_done, 0);
    lwc_mvar_t *m = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(island_child, m), LWC_OK);
    lwc_word_t v = 77;
    ck_assert_int_eq(lwc_mvar_take(m, &v), LWC_EBLOCKED_CONCDS);
    ck_assert_uint_eq(v, 77);
    while (!atomic_load(&island_done))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(atomic_load(&island_put_err), LWC_EBLOCKED_CONCDS);
    ck_assert_int_eq(atomic_load(&island_after_err), LWC_OK);
    lwc_mvar_free(m);
}

START_TEST(test_whole_island)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(whole_island, NULL), LWC_OK);
}
END_TEST

/* ---- 5. Workers of a user-level scheduler starve (GHC concprog002) ----------------------
 * A scheduler written here on MVars: a shared queue of tasks (a lock MVar
 * over an array, and an MVar that signals "not empty"), worker threads that
 * pop a task, run one step of it and push it back while steps remain.  When
 * every task is done each worker blocks on the empty queue, which only the
 * workers reference, and each gets the error.  As in the original, some
 * workers are bound threads (lwc_spawn_bound, GHC's forkOS). */

#define WORKERS 4

struct queue {
    lwc_mvar_t *lock, *avail;
    int        *items;
    int         n;
};

static atomic_int workers_err[WORKERS], workers_steps, workers_done, workers_bound;
static int tasks_n, steps_n;

static void queue_push(struct queue *q, int steps)
{
    lwc_word_t token;
    ck_assert_int_eq(lwc_mvar_take(q->lock, &token), LWC_OK);
    q->items[q->n++] = steps;
    ck_assert_int_eq(lwc_mvar_put(q->lock, token), LWC_OK);
    lwc_mvar_try_put(q->avail, 1);      /* already signalled: fine */
}

static int queue_pop(struct queue *q, int *steps)
{
    for (;;) {
        lwc_word_t token;
        ck_assert_int_eq(lwc_mvar_take(q->lock, &token), LWC_OK);
        bool got = q->n > 0;
        if (got)
            *steps = q->items[--q->n];
        ck_assert_int_eq(lwc_mvar_put(q->lock, token), LWC_OK);
        if (got)
            return LWC_OK;
        int err = lwc_mvar_take(q->avail, &token);
        if (err != LWC_OK)
            return err;
    }
}

struct worker_arg { struct queue *q; int id; };

static void worker(void *arg)
{
    struct worker_arg *w = arg;
    struct queue *q = w->q;
    int id = w->id, steps, err;
    lwc_free(w);
    if (lwc_scont_is_bound(lwc_scont_self()))
        atomic_fetch_or(&workers_bound, 1 << id);
    while ((err = queue_pop(q, &steps)) == LWC_OK) {
        atomic_fetch_add(&workers_steps, 1);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
        if (steps > 1)
            queue_push(q, steps - 1);
    }
    atomic_store(&workers_err[id], err);
    if (atomic_fetch_add(&workers_done, 1) == WORKERS - 1) {   /* the last one out */
        lwc_mvar_free(q->lock);
        lwc_mvar_free(q->avail);
        lwc_free(q->items);
        lwc_free(q);
    }
}

/* How the workers start: lwc_spawn and lwc_spawn_bound, or made by hand as a
 * task pool of its own would (SConts with their creator's upcalls, bound or
 * not), handed to the upcall itself or with lwc_unblock_thread (issue 19:
 * Note [Handing a new SCont over] in substrate/scont.c). */
enum { BY_SPAWN, BY_UPCALL, BY_UNBLOCK };
static int workers_start;

static lwc_word_t make_runnable(lwc_tx_t *tx, void *s)
{
    lwc_upcalls_t u;
    ck_assert_int_eq(lwc_scont_get_upcalls(s, &u), LWC_OK);
    if (workers_start == BY_UPCALL) {
        u.unblock_thread(tx, s, u.env);
    } else {
        lwc_unblock_thread(tx, s);
        lwc_unblock_thread(tx, s);          /* once is enough: no second hand-over */
    }
    return 0;
}

static int start_by_hand(bool bound, struct worker_arg *w)
{
    lwc_scont_t *s = (bound ? lwc_scont_new_bound : lwc_scont_new)(worker, w, NULL);
    ck_assert_ptr_nonnull(s);
    int err = lwc_atomically(make_runnable, s, NULL);
    lwc_scont_release(s);
    return err;
}

/* Makes the queue, starts the workers, feeds them the tasks, and leaves. */
static void feeder(void *arg)
{
    (void)arg;
    struct queue *q = lwc_alloc(sizeof *q);
    ck_assert_ptr_nonnull(q);
    *q = (struct queue){ lwc_mvar_new_full(0), lwc_mvar_new(), lwc_alloc(tasks_n * sizeof(int)), 0 };
    ck_assert_ptr_nonnull(q->items);
    for (int i = 0; i < WORKERS; i++) {
        struct worker_arg *w = lwc_alloc(sizeof *w);
        ck_assert_ptr_nonnull(w);
        *w = (struct worker_arg){ q, i };
        if (workers_start != BY_SPAWN)
            ck_assert_int_eq(start_by_hand(i % 2 == 0, w), LWC_OK);
        else
            ck_assert_int_eq((i % 2 ? lwc_spawn : lwc_spawn_bound)(worker, w), LWC_OK);
    }
    for (int t = 0; t < tasks_n; t++)
        queue_push(q, steps_n);
}

static void workers_starve(void *arg)
{
    (void)arg;
    atomic_store(&workers_steps, 0);
    atomic_store(&workers_done, 0);
    atomic_store(&workers_bound, 0);
    ck_assert_int_eq(lwc_spawn(feeder, NULL), LWC_OK);
    int idle = 0, steps = 0;
    while (atomic_load(&workers_done) < WORKERS) {
        if (atomic_load(&workers_steps) != steps) {
            steps = atomic_load(&workers_steps);
            idle = 0;                   /* still working */
        }
        gc_pass(&idle);
        ck_assert_int_eq(lwc_sleep_ns(1000000), LWC_OK);
    }
    ck_assert_int_eq(atomic_load(&workers_steps), tasks_n * steps_n);
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(atomic_load(&workers_err[i]), LWC_EBLOCKED_CONCDS);
    /* workers 0 and 2; spawned bound on the loop, they run on its host's thread */
    ck_assert_int_eq(atomic_load(&workers_bound),
                     workers_start == BY_SPAWN && !strcmp(lwc_sched_name(), "loop") ? 0 : 0x5);
}

START_TEST(test_workers_starve)
{
    use_caps(_i % 2);
    workers_start = _i / 2;
    /* Bound workers hand the capability between OS threads at every switch,
     * which ThreadSanitizer makes slow: 164 s at 500 on 2 caps, against the
     * 600 s limit, and past it when the machine is busy. */
    tasks_n = steps_n = ON_VALGRIND() || LWC_TSAN ? 50 : 500;
    ck_assert_int_eq(lwc_main(workers_starve, NULL), LWC_OK);
}
END_TEST

/* ---- 6. PTM retry with nothing to wait for (GHC stm047) ----------------------------------
 * A transaction that retries after reading no PVar, and one that retries after
 * reading only a fresh PVar, both return LWC_EBLOCKED_CONCDS; the caller
 * carries on and does it again. */

static lwc_word_t retry_reading_nothing(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_tx_retry(tx);
    return 0;
}

static void retry_nothing(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(lwc_atomically(retry_reading_nothing, NULL, NULL), LWC_EBLOCKED_CONCDS);
        lwc_pvar_t *fresh = lwc_pvar_new(0);
        ck_assert_int_eq(lwc_atomically(wait_nonzero, fresh, NULL), LWC_EBLOCKED_CONCDS);
        lwc_pvar_free(fresh);
    }
}

START_TEST(test_retry_nothing)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(retry_nothing, NULL), LWC_OK);
}
END_TEST

/* ---- 7. Retry rolls back (GHC stm048) -----------------------------------------------------
 * A transaction writes a PVar and then retries with nothing able to wake it:
 * it gets the error, and the PVar holds its old value. */

static lwc_word_t write_then_retry(lwc_tx_t *tx, void *arg)
{
    lwc_pvar_write(tx, arg, lwc_pvar_read(tx, arg) + 1);
    lwc_tx_retry(tx);
    return 0;
}

static void retry_rolls_back(void *arg)
{
    (void)arg;
    lwc_pvar_t *pv = lwc_pvar_new(5);
    ck_assert_int_eq(lwc_atomically(write_then_retry, pv, NULL), LWC_EBLOCKED_CONCDS);
    ck_assert_uint_eq(lwc_pvar_read(NULL, pv), 5);
    lwc_pvar_free(pv);
}

START_TEST(test_retry_rolls_back)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(retry_rolls_back, NULL), LWC_OK);
}
END_TEST

/* ---- 8. Deep stack (GHC T7636) ------------------------------------------------------------
 * A thread blocks for good at the bottom of a 100 000-frame recursion. */

#define DEPTH 100000

static __attribute__((noinline)) int deep(int n)
{
    volatile int here = n;
    if (n == 0) {
        lwc_mvar_t *m = lwc_mvar_new();
        lwc_word_t v;
        int err = lwc_mvar_take(m, &v);
        lwc_mvar_free(m);
        return err;
    }
    return deep(n - 1) + (here - n);
}

static void deep_stack(void *arg)
{
    (void)arg;
    /* Under memcheck a tenth: each pass reads the whole live stack, slowly
     * there.  Under ThreadSanitizer half: its shadow call stack holds 65 536
     * frames, and overflows into a crash. */
    int depth = LWC_TSAN ? DEPTH / 2 : ON_VALGRIND() ? DEPTH / 10 : DEPTH;
    ck_assert_int_eq(deep(depth), LWC_EBLOCKED_CONCDS);
}

START_TEST(test_deep_stack)
{
    use_caps(_i);
    setenv("LWC_STACK_SIZE", ON_VALGRIND() ? "8388608" : "67108864", 1);   /* 8, 64 MiB */
    ck_assert_int_eq(lwc_main(deep_stack, NULL), LWC_OK);
    unsetenv("LWC_STACK_SIZE");
}
END_TEST

/* ---- 9. Dead scheduler (our extension of LWC's unreachable-scheduler case) ----------------
 * A FIFO scheduler written here (guest.h) borrows main's capability: its
 * worker spawns three threads into its run queue, lets each run up to a
 * yield, and finishes, and the scheduler hands the capability back to main.
 * Nothing refers to the scheduler any more, so the three can never run: they
 * are adopted by main's scheduler, and their yields return
 * LWC_EBLOCKED_SCHED.  Once through lwc_gc from main; once through the pass
 * that runs by itself while main waits on an MVar that only the three can
 * fill (what stranded threads reach must count as live, or main would get
 * an error too). */

#define DEAD_MEMBERS 3
static atomic_int dead_done, dead_err[DEAD_MEMBERS + 1];

static void dead_member(void *arg)
{
    struct guest_thread *t = arg;
    lwc_mvar_t *volatile results = t->arg;          /* on its stack, for the pass */
    int err = guest_yield(t->g);
    atomic_store(&dead_err[t->i], err);
    if (results)
        ck_assert_int_eq(lwc_mvar_put(results, (lwc_word_t)(intptr_t)err), LWC_OK);
    atomic_fetch_add(&dead_done, 1);
}

static void dead_worker(void *arg)
{
    struct guest_thread *t = arg;
    for (int i = 0; i < DEAD_MEMBERS; i++)
        guest_spawn(t->g, dead_member, t->arg, true);
    ck_assert_int_eq(guest_yield(t->g), LWC_OK);    /* each runs to its yield */
    t->g->stopping = true;
}

/* Run the scheduler until its worker has finished; its address is left only
 * in *hd, where no pass can read it. */
static __attribute__((noinline)) void run_dead_scheduler(hidden_t *hd, lwc_mvar_t *results)
{
    struct guest *g = malloc(sizeof *g);
    ck_assert_ptr_nonnull(g);
    guest_init(g);
    guest_spawn(g, dead_worker, results, true);
    guest_enter(g);
    ck_assert(g->stopping);
    hide(hd, g);
}

static void dead_scheduler(void *arg)
{
    bool by_itself = arg != NULL;
    atomic_store(&dead_done, 0);
    lwc_mvar_t *results = by_itself ? lwc_mvar_new() : NULL;
    hidden_t hd;
    run_dead_scheduler(&hd, results);
    lwc_stack_scrub();
    if (by_itself) {
        for (int i = 0; i < DEAD_MEMBERS; i++) {
            lwc_word_t v;
            ck_assert_int_eq(lwc_mvar_take(results, &v), LWC_OK);
            ck_assert_int_eq((int)(intptr_t)v, LWC_EBLOCKED_SCHED);
        }
    }
    ck_assert_int_eq(gc_until_count(&dead_done, DEAD_MEMBERS), by_itself ? 0 : DEAD_MEMBERS);
    for (int i = 1; i <= DEAD_MEMBERS; i++)
        ck_assert_int_eq(atomic_load(&dead_err[i]), LWC_EBLOCKED_SCHED);
    struct guest *g = unhide(&hd);
    guest_destroy(g);
    free(g);
    lwc_mvar_free(results);
}

START_TEST(test_dead_scheduler)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(dead_scheduler, NULL), LWC_OK);
}
END_TEST

START_TEST(test_dead_scheduler_found_by_itself)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(dead_scheduler, "by itself"), LWC_OK);
}
END_TEST

/* ---- 10. Whole-program deadlock (Go SimpleDeadlock; conc033 with a global) ---------------
 * Main waits on an MVar held in a static variable, which nobody will fill.
 * Nothing is unreachable and nothing can run: lwc_main returns LWC_EDEADLOCK
 * and the report names the thread, its status and its MVar. */

static lwc_mvar_t *global_mvar;
static char report_text[4096];
static uint64_t main_id;

static void keep_report(const char *report, void *arg)
{
    (void)arg;
    snprintf(report_text, sizeof report_text, "%s", report);
}

static void whole_program_deadlock(void *arg)
{
    (void)arg;
    main_id = lwc_scont_id(lwc_scont_self());
    global_mvar = lwc_mvar_new();
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(global_mvar, &v), LWC_EDEADLOCK);
}

START_TEST(test_whole_program_deadlock)
{
    use_caps(_i);
    report_text[0] = 0;
    lwc_set_deadlock_report(keep_report, NULL);
    ck_assert_int_eq(lwc_main(whole_program_deadlock, NULL), LWC_EDEADLOCK);
    lwc_set_deadlock_report(NULL, NULL);
    char want[128];
    snprintf(want, sizeof want, "SCont %llu: blocked on a data structure, on MVar %p",
             (unsigned long long)main_id, (void *)global_mvar);
    ck_assert_msg(strstr(report_text, want), "report: %s", report_text);
    ck_assert_ptr_nonnull(strstr(report_text, "deadlock"));
    lwc_mvar_free(global_mvar);
    global_mvar = NULL;             /* a stale address would keep a later MVar alive */
}
END_TEST

/* ---- 12. Two takers of one lock (ezyang, main1) ---------------------------------------------
 * A full MVar used as a lock; two threads take it, and the first finishes
 * without putting it back; after lwc_gc the other gets the error. */

static atomic_int second_done, second_err;

static void second_taker(void *lock)
{
    lwc_word_t v;
    atomic_store(&second_err, lwc_mvar_take(lock, &v));
    atomic_store(&second_done, 1);
}

static void first_taker(void *arg)
{
    (void)arg;
    lwc_mvar_t *lock = lwc_mvar_new_full(1);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(lock, &v), LWC_OK);
    ck_assert_int_eq(lwc_spawn(second_taker, lock), LWC_OK);
}                                       /* done, without putting it back */

static void two_takers(void *arg)
{
    (void)arg;
    atomic_store(&second_done, 0);
    ck_assert_int_eq(lwc_spawn(first_taker, NULL), LWC_OK);
    gc_until_count(&second_done, 1);
    ck_assert_int_eq(atomic_load(&second_err), LWC_EBLOCKED_CONCDS);
}

START_TEST(test_two_takers_of_one_lock)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(two_takers, NULL), LWC_OK);
}
END_TEST

/* ---- 13. Cycle of waits (Go leak tests, "mixed cycle") --------------------------------------
 * A parent waits for a counter (a PTM retry) that its child releases only
 * after the parent sends on an MVar, which the parent does only after the
 * wait.  Both get the error, in one pass: a pass that finds one finds both. */

struct cycle { lwc_pvar_t *counter; lwc_mvar_t *send; };
static atomic_int cycle_done, cycle_parent_err, cycle_child_err;

static lwc_word_t bump(lwc_tx_t *tx, void *pv)
{
    lwc_pvar_write(tx, pv, lwc_pvar_read(tx, pv) + 1);
    return 0;
}

/* The second of the two out frees what they shared. */
static void cycle_finished(struct cycle *c)
{
    if (atomic_fetch_add(&cycle_done, 1) == 1) {
        lwc_pvar_free(c->counter);
        lwc_mvar_free(c->send);
        lwc_free(c);
    }
}

static void cycle_child(void *arg)
{
    struct cycle *c = arg;
    lwc_word_t v;
    int err = lwc_mvar_take(c->send, &v);
    atomic_store(&cycle_child_err, err);
    if (err == LWC_OK)
        lwc_atomically(bump, c->counter, NULL);
    cycle_finished(c);
}

static void cycle_parent(void *arg)
{
    (void)arg;
    struct cycle *c = lwc_alloc(sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->counter = lwc_pvar_new(0);
    c->send = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(cycle_child, c), LWC_OK);
    int err = lwc_atomically(wait_nonzero, c->counter, NULL);
    atomic_store(&cycle_parent_err, err);
    if (err == LWC_OK)
        lwc_mvar_put(c->send, 1);
    cycle_finished(c);
}

static void cycle_of_waits(void *arg)
{
    (void)arg;
    atomic_store(&cycle_done, 0);
    ck_assert_int_eq(lwc_spawn(cycle_parent, NULL), LWC_OK);
    int woken = 0, idle = 0;
    while (atomic_load(&cycle_done) < 2) {
        int n = gc_pass(&idle);
        ck_assert(n == 0 || n == 2);                    /* both or neither */
        woken += n;
        ck_assert_int_eq(lwc_sleep_ns(1000000), LWC_OK);
    }
    ck_assert_int_eq(woken, 2);
    ck_assert_int_eq(atomic_load(&cycle_parent_err), LWC_EBLOCKED_CONCDS);
    ck_assert_int_eq(atomic_load(&cycle_child_err), LWC_EBLOCKED_CONCDS);
}

START_TEST(test_cycle_of_waits)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(cycle_of_waits, NULL), LWC_OK);
}
END_TEST

/* ---- 15. Pinned MVar filled by a foreign OS thread (GHC hs_try_putmvar001) ----------------
 * The MVar is pinned; a plain pthread, unknown to lwc, sleeps 200 us and puts
 * 42 into it with the thread-safe try_put.  The waiter gets 42, no error. */

static void *foreign_putter(void *arg)
{
    usleep(200);
    while (lwc_mvar_try_put(arg, 42) != LWC_OK)
        usleep(100);
    return NULL;
}

static void foreign_fill(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_pin(m);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, foreign_putter, m), 0);
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_mvar_take(m, &v), LWC_OK);
    ck_assert_uint_eq(v, 42);
    pthread_join(th, NULL);
    lwc_unpin(m);
    lwc_mvar_free(m);
}

START_TEST(test_pinned_mvar_foreign_put)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(foreign_fill, NULL), LWC_OK);
}
END_TEST

/* ---- 17. Sleeper keeps a chain alive (Go DaisyChain) ----------------------------------------
 * Each thread of a chain waits on a fresh MVar that the next fills once it is
 * woken itself; the last sleeps 50 ms and then fills its own.  Passes run
 * meanwhile: nobody gets an error, all finish. */

static atomic_int chain_errors, chain_finished;
static int chain_len;

struct link { lwc_mvar_t *out; int i; };

static void chain_link(void *arg)
{
    struct link *l = arg;
    lwc_mvar_t *out = l->out;
    int i = l->i;
    lwc_mvar_t *mine = lwc_mvar_new();
    if (i + 1 < chain_len) {
        *l = (struct link){ mine, i + 1 };              /* the block goes on down the chain */
        ck_assert_int_eq(lwc_spawn(chain_link, l), LWC_OK);
    } else {
        lwc_free(l);
        ck_assert_int_eq(lwc_sleep_ns(50000000), LWC_OK);
        ck_assert_int_eq(lwc_mvar_put(mine, 1), LWC_OK);
    }
    lwc_word_t v;
    if (lwc_mvar_take(mine, &v) != LWC_OK)
        atomic_fetch_add(&chain_errors, 1);
    lwc_mvar_free(mine);
    if (lwc_mvar_put(out, 1) != LWC_OK)
        atomic_fetch_add(&chain_errors, 1);
    atomic_fetch_add(&chain_finished, 1);
}

static void daisy_chain(void *arg)
{
    (void)arg;
    atomic_store(&chain_errors, 0);
    atomic_store(&chain_finished, 0);
    lwc_mvar_t *first = lwc_mvar_new();
    struct link *l = lwc_alloc(sizeof *l);
    ck_assert_ptr_nonnull(l);
    *l = (struct link){ first, 0 };
    ck_assert_int_eq(lwc_spawn(chain_link, l), LWC_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(lwc_sleep_ns(10000000), LWC_OK);
        ck_assert_int_ge(lwc_gc(), 0);
    }
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(first, &v), LWC_OK);
    while (atomic_load(&chain_finished) < chain_len)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(atomic_load(&chain_errors), 0);
    lwc_mvar_free(first);
}

START_TEST(test_daisy_chain)
{
    use_caps(_i);
    chain_len = ON_VALGRIND() ? 100 : 1000;
    ck_assert_int_eq(lwc_main(daisy_chain, NULL), LWC_OK);
}
END_TEST

/* A child that takes from the MVar it is given and reports what it got. */
static atomic_int given_done, given_err;
static atomic_ullong given_value;

static void given_taker(void *m)
{
    lwc_word_t v = 0;
    atomic_store(&given_err, lwc_mvar_take(m, &v));
    atomic_store(&given_value, v);
    atomic_store(&given_done, 1);
}

static void expect_given(lwc_word_t want)
{
    while (!atomic_load(&given_done))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(atomic_load(&given_err), LWC_OK);
    ck_assert_uint_eq(atomic_load(&given_value), want);
}

/* ---- 18. A global MVar is a root (Go NoLeakGlobal) --------------------------------------------
 * A thread waits on an MVar in a static variable while main runs passes and
 * eventually fills it: no error. */

static lwc_mvar_t *root_mvar;

static void global_is_root(void *arg)
{
    (void)arg;
    atomic_store(&given_done, 0);
    root_mvar = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(given_taker, root_mvar), LWC_OK);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(lwc_yield(), LWC_OK);
        ck_assert_int_eq(lwc_gc(), 0);
    }
    ck_assert_int_eq(lwc_mvar_put(root_mvar, 7), LWC_OK);
    expect_given(7);
    lwc_mvar_free(root_mvar);
    root_mvar = NULL;
}

START_TEST(test_global_mvar_is_root)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(global_is_root, NULL), LWC_OK);
}
END_TEST

/* ---- 19. A running poller keeps its MVar alive (ezyang, main3) ----------------------------------
 * Main polls an MVar (yield, lwc_gc, try_take) while a child is blocked on it,
 * then fills it: the child never gets an error. */

static void running_poller(void *arg)
{
    (void)arg;
    atomic_store(&given_done, 0);
    lwc_mvar_t *m = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(given_taker, m), LWC_OK);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(lwc_yield(), LWC_OK);
        ck_assert_int_eq(lwc_gc(), 0);
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_try_take(m, &v), LWC_EAGAIN);
    }
    ck_assert_int_eq(lwc_mvar_put(m, 5), LWC_OK);
    expect_given(5);
    lwc_mvar_free(m);
}

START_TEST(test_running_poller)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(running_poller, NULL), LWC_OK);
}
END_TEST

/* ---- 20. Later use keeps it alive (GHC conc020) ------------------------------------------------
 * A child blocks on m; main sleeps, calls lwc_gc, sleeps, puts into m: the
 * child gets the value. */

static void later_use(void *arg)
{
    (void)arg;
    atomic_store(&given_done, 0);
    lwc_mvar_t *m = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(given_taker, m), LWC_OK);
    ck_assert_int_eq(lwc_sleep_ns(10000000), LWC_OK);
    ck_assert_int_eq(lwc_gc(), 0);
    ck_assert_int_eq(lwc_sleep_ns(10000000), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(m, 9), LWC_OK);
    expect_given(9);
    lwc_mvar_free(m);
}

START_TEST(test_later_use)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(later_use, NULL), LWC_OK);
}
END_TEST

/* ---- 22. Pending timer (Go: timers in checkdead) ------------------------------------------------
 * A thread sleeps 20 ms, then fills an MVar that main waits on; every
 * capability is idle meanwhile.  No error, no LWC_EDEADLOCK. */

static void sleepy_putter(void *m)
{
    ck_assert_int_eq(lwc_sleep_ns(20000000), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(m, 3), LWC_OK);
}

static void pending_timer(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(sleepy_putter, m), LWC_OK);
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_mvar_take(m, &v), LWC_OK);
    ck_assert_uint_eq(v, 3);
    lwc_mvar_free(m);
}

START_TEST(test_pending_timer)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(pending_timer, NULL), LWC_OK);
}
END_TEST

/* ---- 23. lwc_alloc memory is traced (GHC T7970, in spirit) ---------------------------------------
 * A running thread keeps an MVar only inside an lwc_alloc block its stack
 * points to, while a child waits on the MVar: lwc_gc wakes nobody. */

static void traced_block_keeps(void *arg)
{
    (void)arg;
    atomic_store(&given_done, 0);
    lwc_mvar_t **block = lwc_alloc(sizeof *block);
    ck_assert_ptr_nonnull(block);
    ck_assert_ptr_nonnull(stash_new_mvar(block));
    ck_assert_int_eq(lwc_spawn(given_taker, *block), LWC_OK);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(lwc_yield(), LWC_OK);
        ck_assert_int_eq(lwc_gc(), 0);
    }
    ck_assert_int_eq(lwc_mvar_put(*block, 11), LWC_OK);
    expect_given(11);
    lwc_mvar_free(*block);
    lwc_free(block);
}

START_TEST(test_lwc_alloc_is_traced)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(traced_block_keeps, NULL), LWC_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_alone_on_own_mvar, 0, 2);
    tcase_add_loop_test(tc, test_partial_deadlock, 0, 2);
    tcase_add_loop_test(tc, test_forwarding, 0, 2);
    tcase_add_loop_test(tc, test_whole_island, 0, 2);
    tcase_add_loop_test(tc, test_workers_starve, 0, 6);
    tcase_add_loop_test(tc, test_retry_nothing, 0, 2);
    tcase_add_loop_test(tc, test_retry_rolls_back, 0, 2);
    tcase_add_loop_test(tc, test_deep_stack, 0, 2);
    tcase_add_loop_test(tc, test_dead_scheduler, 0, 2);
    tcase_add_loop_test(tc, test_dead_scheduler_found_by_itself, 0, 2);
    tcase_add_loop_test(tc, test_whole_program_deadlock, 0, 2);
    tcase_add_loop_test(tc, test_free_mvar_with_waiters, 0, 2);
    tcase_add_loop_test(tc, test_two_takers_of_one_lock, 0, 2);
    tcase_add_loop_test(tc, test_cycle_of_waits, 0, 2);
    tcase_add_loop_test(tc, test_kill_while_blocked, 0, 2);
    tcase_add_loop_test(tc, test_pinned_pvar_killed_waiter, 0, 2);
    tcase_add_loop_test(tc, test_pinned_mvar_foreign_put, 0, 2);
    tcase_add_loop_test(tc, test_daisy_chain, 0, 2);
    tcase_add_loop_test(tc, test_global_mvar_is_root, 0, 2);
    tcase_add_loop_test(tc, test_running_poller, 0, 2);
    tcase_add_loop_test(tc, test_later_use, 0, 2);
    tcase_add_loop_test(tc, test_pending_timer, 0, 2);
    tcase_add_loop_test(tc, test_lwc_alloc_is_traced, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
