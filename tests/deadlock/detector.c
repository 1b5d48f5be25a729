/* The detector's own cases, beyond doc/scenarios.md: many islands in one
 * pass, many blocked threads, passes racing with wake-ups, a pin released
 * while its waiter sleeps, and bad input.  Compiled once and linked against
 * every scheduler library; each runs on 1 and on 2 capabilities.  As in
 * scenarios.c, threads the detector must find unreachable keep their
 * addresses out of roots (hidden_t), and no assertion depends on timing. */
#include "guest.h"

#include <lwc/io.h>
#include <lwc/mvar.h>
#include <pthread.h>

/* Under memcheck or ThreadSanitizer a pass reads memory many times slower,
 * and TSan allows 8128 fibers alive: smaller runs there. */
#define SLOW_TOOL() (LWC_TSAN || ON_VALGRIND())

/* A thread that blocks for good on an MVar of its own. */
static atomic_int lonely_done, lonely_wrong;

static void lonely(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_word_t v;
    if (lwc_mvar_take(m, &v) != LWC_EBLOCKED_CONCDS)
        atomic_fetch_add(&lonely_wrong, 1);
    lwc_mvar_free(m);
    atomic_fetch_add(&lonely_done, 1);
}

/* ---- many islands at once --------------------------------------------------------------
 * Pairs that each reference only each other (scenario 4, many times over):
 * every thread of every island gets the error, and none gets a value.  Main
 * waits on an MVar in a static, a root, so the pass that runs when every
 * capability idles (all islands blocked) finds the islands and not main. */

static atomic_int islands_done, islands_wrong;
static int islands_n;
static lwc_mvar_t *islands_finished;

static void island_finished(void)
{
    if (atomic_fetch_add(&islands_done, 1) == 2 * islands_n - 1)
        ck_assert_int_eq(lwc_mvar_put(islands_finished, 1), LWC_OK);
}

static void island_child(void *m)
{
    lwc_mvar_t *full = lwc_mvar_new_full(0);
    if (lwc_mvar_put(full, 1) != LWC_EBLOCKED_CONCDS)
        atomic_fetch_add(&islands_wrong, 1);
    lwc_mvar_free(full);
    if (lwc_mvar_put(m, 1) != LWC_OK)               /* its partner is gone already */
        atomic_fetch_add(&islands_wrong, 1);
    island_finished();
}

static void island_parent(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn(island_child, m), LWC_OK);
    lwc_word_t v;
    if (lwc_mvar_take(m, &v) != LWC_EBLOCKED_CONCDS)
        atomic_fetch_add(&islands_wrong, 1);
    while (lwc_mvar_try_take(m, &v) != LWC_OK)    /* until the child has filled it */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    lwc_mvar_free(m);
    island_finished();
}

static void many_islands(void *arg)
{
    (void)arg;
    atomic_store(&islands_done, 0);
    atomic_store(&islands_wrong, 0);
    islands_finished = lwc_mvar_new();
    for (int i = 0; i < islands_n; i++)
        ck_assert_int_eq(lwc_spawn(island_parent, NULL), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(islands_finished, &v), LWC_OK);
    ck_assert_int_eq(atomic_load(&islands_wrong), 0);
    lwc_mvar_free(islands_finished);
    islands_finished = NULL;        /* a stale address would keep a later MVar alive */
}

START_TEST(test_many_islands)
{
    use_caps(_i);
    islands_n = SLOW_TOOL() ? 10 : 100;
    ck_assert_int_eq(lwc_main(many_islands, NULL), LWC_OK);
}
END_TEST

/* ---- many blocked threads -----------------------------------------------------------------
 * Thousands of threads, each blocked on its own MVar: all are found.  The
 * bench (tools/bench, gc_blocked_100k) times one pass over 100 000. */

static int blocked_n;

static void many_blocked(void *arg)
{
    (void)arg;
    atomic_store(&lonely_done, 0);
    atomic_store(&lonely_wrong, 0);
    for (int i = 0; i < blocked_n; i++)
        ck_assert_int_eq(lwc_spawn(lonely, NULL), LWC_OK);
    gc_until_count(&lonely_done, blocked_n);
    ck_assert_int_eq(atomic_load(&lonely_wrong), 0);
}

START_TEST(test_many_blocked)
{
    use_caps(_i);
    blocked_n = SLOW_TOOL() ? 500 : 20000;
    setenv("LWC_STACK_SIZE", "65536", 1);
    ck_assert_int_eq(lwc_main(many_blocked, NULL), LWC_OK);
    unsetenv("LWC_STACK_SIZE");
}
END_TEST

/* ---- passes racing with wake-ups --------------------------------------------------------------
 * A ring of threads passes a token through MVars that main keeps reachable,
 * some sleeping or yielding on the way, while main runs pass after pass;
 * lonely threads block for good among them.  The ring never sees an error
 * (no false positive while threads block and wake under the passes), and
 * every lonely thread is found.  The seed varies sizes and pacing. */

struct ring {
    lwc_mvar_t **mv;
    int n, hops, seed;
    atomic_int done, errors;
};

struct ring_member { struct ring *r; int i; };

static void ring_member(void *arg)
{
    struct ring_member *m = arg;
    struct ring *r = m->r;
    int i = m->i;
    lwc_free(m);
    for (int h = 0; h < r->hops; h++) {
        lwc_word_t v;
        if (lwc_mvar_take(r->mv[i], &v) != LWC_OK) {
            atomic_fetch_add(&r->errors, 1);
            break;
        }
        if ((h + i + r->seed) % 7 == 0)
            ck_assert_int_eq(lwc_sleep_ns(20000), LWC_OK);
        else if ((h + i) % 3 == 0)
            ck_assert_int_eq(lwc_yield(), LWC_OK);
        if (lwc_mvar_put(r->mv[(i + 1) % r->n], v + 1) != LWC_OK) {
            atomic_fetch_add(&r->errors, 1);
            break;
        }
    }
    atomic_fetch_add(&r->done, 1);
}

static void racing(void *arg)
{
    int seed = (int)(intptr_t)arg;
    struct ring *r = lwc_alloc(sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->n = 3 + seed % 5;
    r->hops = SLOW_TOOL() ? 20 : 200 + 50 * seed;
    r->seed = seed;
    r->mv = lwc_alloc(r->n * sizeof *r->mv);
    ck_assert_ptr_nonnull(r->mv);
    for (int i = 0; i < r->n; i++)
        r->mv[i] = lwc_mvar_new();
    int lonely_n = 4 + seed;
    atomic_store(&lonely_done, 0);
    atomic_store(&lonely_wrong, 0);
    for (int i = 0; i < r->n; i++) {
        struct ring_member *m = lwc_alloc(sizeof *m);
        ck_assert_ptr_nonnull(m);
        *m = (struct ring_member){ r, i };
        ck_assert_int_eq(lwc_spawn(ring_member, m), LWC_OK);
        ck_assert_int_eq(lwc_spawn(lonely, NULL), LWC_OK);
    }
    for (int i = r->n; i < lonely_n; i++)
        ck_assert_int_eq(lwc_spawn(lonely, NULL), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(r->mv[0], 0), LWC_OK);
    int idle = 0;
    while (atomic_load(&r->done) < r->n || atomic_load(&lonely_done) < lonely_n) {
        if (atomic_load(&r->done) < r->n)
            idle = 0;                   /* the ring still moves */
        gc_pass(&idle);
        if ((seed & 1) && !SLOW_TOOL())       /* a pass costs much more there */
            ck_assert_int_eq(lwc_yield(), LWC_OK);
        else
            ck_assert_int_eq(lwc_sleep_ns(SLOW_TOOL() ? 2000000 : 50000), LWC_OK);
    }
    ck_assert_int_eq(atomic_load(&r->errors), 0);
    ck_assert_int_eq(atomic_load(&lonely_wrong), 0);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(r->mv[r->hops * r->n % r->n], &v), LWC_OK);
    ck_assert_uint_eq(v, (lwc_word_t)(r->hops * r->n));
    for (int i = 0; i < r->n; i++)
        lwc_mvar_free(r->mv[i]);
    lwc_free(r->mv);
    lwc_free(r);
}

START_TEST(test_passes_racing_wakeups)
{
    use_caps(_i & 1);
    ck_assert_int_eq(lwc_main(racing, (void *)(intptr_t)(_i / 2)), LWC_OK);
}
END_TEST

/* ---- a pin released while its waiter sleeps ------------------------------------------------------
 * A thread pins a private MVar and blocks on it: passes leave it alone.  A
 * helper unpins it and finishes; the next pass finds the waiter. */

static hidden_t pinned_mvar;
static atomic_int pinned_done, pinned_err, pinned_blocking;

static void pinned_taker(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_pin(m);
    hide(&pinned_mvar, m);
    atomic_store(&pinned_blocking, 1);
    lwc_word_t v;
    atomic_store(&pinned_err, lwc_mvar_take(m, &v));
    lwc_mvar_free(m);
    atomic_store(&pinned_done, 1);
}

static void unpinner(void *arg)
{
    (void)arg;
    lwc_unpin(unhide(&pinned_mvar));
}

static void pin_released(void *arg)
{
    (void)arg;
    atomic_store(&pinned_done, 0);
    atomic_store(&pinned_blocking, 0);
    ck_assert_int_eq(lwc_spawn(pinned_taker, NULL), LWC_OK);
    while (!atomic_load(&pinned_blocking))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    for (int i = 0; i < 20; i++) {                  /* blocked or not yet: never woken */
        ck_assert_int_eq(lwc_gc(), 0);
        ck_assert_int_eq(lwc_sleep_ns(500000), LWC_OK);
    }
    ck_assert_int_eq(atomic_load(&pinned_done), 0);
    ck_assert_int_eq(lwc_spawn(unpinner, NULL), LWC_OK);
    gc_until_count(&pinned_done, 1);
    ck_assert_int_eq(atomic_load(&pinned_err), LWC_EBLOCKED_CONCDS);
}

START_TEST(test_pin_released_while_waiting)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(pin_released, NULL), LWC_OK);
}
END_TEST

/* ---- the idle timer (LWC_IDLE_GC_MS, GHC's -I) ----------------------------------------------------
 * A child blocks on a private MVar while main only sleeps, over and over:
 * every capability idles towards main's deadline, so no pass runs by itself
 * (something will wake) and main never calls lwc_gc.  With the idle timer on,
 * a capability idle for 1 ms runs a pass: the child is found, and main, a
 * sleeper, is untouched. */

static void idle_timer(void *arg)
{
    (void)arg;
    atomic_store(&private_done, 0);
    ck_assert_int_eq(lwc_spawn(private_taker, NULL), LWC_OK);
    for (int i = 0; !atomic_load(&private_done); i++) {
        ck_assert_msg(i < 50000, "the idle timer never found the child");
        ck_assert_int_eq(lwc_sleep_ns(3000000), LWC_OK);
    }
    ck_assert_int_eq(atomic_load(&private_err), LWC_EBLOCKED_CONCDS);
}

START_TEST(test_idle_timer)
{
    use_caps(_i);
    setenv("LWC_IDLE_GC_MS", "1", 1);
    ck_assert_int_eq(lwc_main(idle_timer, NULL), LWC_OK);
    unsetenv("LWC_IDLE_GC_MS");
}
END_TEST

/* ---- a scheduler still reachable ---------------------------------------------------------------
 * Scenario 9's guest scheduler, kept this time: three threads wait in its
 * queue with no capability working for it, yet the program can still run
 * them, and does, by entering the guest again.  No pass may adopt them.  The
 * guest sits in the middle of an lwc_alloc block that a static points to, so
 * no word names the guest's own address: an env inside live memory is live
 * (lwc_gc_envs_inside_roots in substrate/detect_roots.c).  Only helpers that
 * take the block compute the guest's address, in frames that are gone by the
 * pass. */

struct kept { lwc_word_t before[4]; struct guest g; };
static struct kept *kept;
static atomic_int kept_done, kept_err[GUEST_THREADS];

static void kept_member(void *arg)
{
    struct guest_thread *t = arg;
    atomic_store(&kept_err[t->i], guest_yield(t->g));
    atomic_fetch_add(&kept_done, 1);
}

static void kept_worker(void *arg)
{
    struct guest_thread *t = arg;
    for (int i = 0; i < 3; i++)
        guest_spawn(t->g, kept_member, NULL, true);
    ck_assert_int_eq(guest_yield(t->g), LWC_OK);    /* each runs to its yield */
    t->g->stopping = true;
}

static __attribute__((noinline)) void kept_start(struct kept *k)
{
    guest_init(&k->g);
    guest_spawn(&k->g, kept_worker, NULL, true);
    guest_enter(&k->g);
}

static __attribute__((noinline)) void kept_finish(struct kept *k)
{
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(lwc_scont_status(NULL, k->g.t[i]->s), LWC_BLOCKED_ON_SCHED);
    k->g.stopping = false;
    guest_enter(&k->g);                             /* runs the three to completion */
    guest_destroy(&k->g);
}

static void scheduler_kept(void *arg)
{
    (void)arg;
    atomic_store(&kept_done, 0);
    kept = lwc_alloc(sizeof *kept);
    ck_assert_ptr_nonnull(kept);
    kept_start(kept);
    lwc_stack_scrub();
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(lwc_gc(), 0);
    ck_assert_int_eq(atomic_load(&kept_done), 0);
    kept_finish(kept);
    ck_assert_int_eq(atomic_load(&kept_done), 3);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(atomic_load(&kept_err[i]), LWC_OK);
    lwc_free(kept);
    kept = NULL;
}

START_TEST(test_scheduler_kept)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(scheduler_kept, NULL), LWC_OK);
}
END_TEST

/* ---- an orphan keeps what it was given ------------------------------------------------------------
 * A guest thread blocks on an MVar; the guest stops; main fills the MVar,
 * which wakes the thread into the guest's queue, where nothing will run it.
 * Adopted, it must not lose the value: its take returns LWC_OK and the value,
 * and the error comes at its next switch point, a yield under its new
 * scheduler. */

static atomic_int given_done, given_take_err, given_yield_err;
static _Atomic lwc_word_t given_value;

static void given_member(void *arg)
{
    struct guest_thread *t = arg;
    lwc_word_t v = 0;
    atomic_store(&given_take_err, lwc_mvar_take(t->arg, &v));
    atomic_store(&given_value, v);
    atomic_store(&given_yield_err, lwc_yield());
    atomic_store(&given_done, 1);
}

static void given_worker(void *arg)
{
    struct guest_thread *t = arg;
    guest_spawn(t->g, given_member, t->arg, true);
    ck_assert_int_eq(guest_yield(t->g), LWC_OK);    /* the member blocks on the MVar */
    t->g->stopping = true;
}

static __attribute__((noinline)) void strand_given(hidden_t *hg, hidden_t *hm)
{
    struct guest *g = malloc(sizeof *g);
    ck_assert_ptr_nonnull(g);
    guest_init(g);
    lwc_mvar_t *m = lwc_mvar_new();
    guest_spawn(g, given_worker, m, true);
    guest_enter(g);
    ck_assert_int_eq(lwc_scont_status(NULL, g->t[1]->s), LWC_BLOCKED_ON_CONCDS);
    ck_assert_int_eq(lwc_mvar_put(m, 42), LWC_OK);  /* wakes it into the stopped guest */
    ck_assert_int_eq(lwc_scont_status(NULL, g->t[1]->s), LWC_BLOCKED_ON_SCHED);
    hide(hg, g);
    hide(hm, m);
}

static void orphan_keeps_value(void *arg)
{
    (void)arg;
    atomic_store(&given_done, 0);
    hidden_t hg, hm;
    strand_given(&hg, &hm);
    lwc_stack_scrub();
    ck_assert_int_eq(gc_until_count(&given_done, 1), 1);
    ck_assert_int_eq(atomic_load(&given_take_err), LWC_OK);
    ck_assert_uint_eq(atomic_load(&given_value), 42);
    ck_assert_int_eq(atomic_load(&given_yield_err), LWC_EBLOCKED_SCHED);
    struct guest *g = unhide(&hg);
    guest_destroy(g);
    free(g);
    lwc_mvar_free(unhide(&hm));
}

START_TEST(test_orphan_keeps_value)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(orphan_keeps_value, NULL), LWC_OK);
}
END_TEST

/* ---- lwc_gc from a plain OS thread -------------------------------------------------------------
 * A pthread that lwc does not run holds an MVar only on its own stack, calls
 * lwc_gc, then fills the MVar.  The child blocked on it is reachable through
 * that stack, the caller's: it gets the value, not an error. */

static hidden_t caller_mvar, caller_child_self;
static atomic_int caller_gc_result, caller_take_err;
static _Atomic lwc_word_t caller_value;

static void caller_child(void *arg)
{
    (void)arg;
    hide(&caller_child_self, lwc_scont_self());
    lwc_word_t v = 0;
    atomic_store(&caller_take_err, lwc_mvar_take(unhide(&caller_mvar), &v));
    atomic_store(&caller_value, v);
}

static void *gc_caller(void *arg)
{
    (void)arg;
    lwc_mvar_t *volatile m = unhide(&caller_mvar);
    atomic_store(&caller_gc_result, lwc_gc());
    lwc_mvar_put(m, 7);
    return NULL;
}

static __attribute__((noinline)) void await_caller_child(void)
{
    while (!atomic_load(&caller_child_self.bits) ||
           lwc_scont_status(NULL, unhide(&caller_child_self)) != LWC_BLOCKED_ON_CONCDS)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

static void gc_from_plain_thread(void *arg)
{
    (void)arg;
    atomic_store(&caller_child_self.bits, 0);
    atomic_store(&caller_take_err, 1);
    hide(&caller_mvar, lwc_mvar_new());
    lwc_joinable_t *j;
    start_busy();
    ck_assert_int_eq(lwc_spawn_joinable(caller_child, NULL, &j), LWC_OK);
    await_caller_child();
    stop_busy_threads();
    lwc_stack_scrub();
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, gc_caller, NULL), 0);
    /* Main keeps running: with every capability idle, a pass could run by
     * itself before the pthread has called into lwc, and lwc cannot see a
     * thread that has not (detect.h: such a thread's references are pinned). */
    while (atomic_load(&caller_take_err) == 1)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    pthread_join(th, NULL);
    int woken = atomic_load(&caller_gc_result), err = atomic_load(&caller_take_err);
    lwc_word_t v = atomic_load(&caller_value);
    ck_assert_int_eq(woken, 0);
    ck_assert_int_eq(err, LWC_OK);
    ck_assert_uint_eq(v, 7);
    lwc_mvar_free(unhide(&caller_mvar));
}

START_TEST(test_gc_from_plain_thread)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(gc_from_plain_thread, NULL), LWC_OK);
}
END_TEST

/* ---- PVars inside other memory ------------------------------------------------------------
 * Note [PVars inside other memory] in substrate/detect_mark.c: a thread that
 * retries on a PVar embedded in an lwc_alloc block, or in static data, is
 * reachable as long as that memory is, though nothing but the PVar's waiter
 * list leads to the thread; and found blocked for good once nothing reaches
 * the block.  Main keeps no reference to the retrying threads. */

struct embedded { long before; lwc_pvar_t pv; long after; };
static struct embedded *embedded_block;          /* a root: the block is reachable */
static struct embedded embedded_static;
static atomic_int embedded_started, embedded_ok, embedded_lost;

static lwc_word_t wait_set(lwc_tx_t *tx, void *pv)
{
    if (!lwc_pvar_read(tx, pv))
        lwc_tx_retry(tx);
    return 0;
}

static void embedded_retrier(void *pv)
{
    atomic_fetch_add(&embedded_started, 1);
    int err = lwc_atomically(wait_set, pv, NULL);
    atomic_fetch_add(err == LWC_OK ? &embedded_ok : &embedded_lost, 1);
}

/* Retries on a PVar in a block only its own stack knows. */
static void embedded_alone(void *arg)
{
    (void)arg;
    struct embedded *e = lwc_alloc(sizeof *e);
    lwc_pvar_init(&e->pv, 0);
    embedded_retrier(&e->pv);
    lwc_pvar_fini(&e->pv);
    lwc_free(e);
}

static lwc_word_t set_both(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_pvar_write(tx, &embedded_block->pv, 1);
    lwc_pvar_write(tx, &embedded_static.pv, 1);
    return 0;
}

static void pvars_inside(void *arg)
{
    (void)arg;
    embedded_block = lwc_alloc(sizeof *embedded_block);
    ck_assert_ptr_nonnull(embedded_block);
    lwc_pvar_init(&embedded_block->pv, 0);
    lwc_pvar_init(&embedded_static.pv, 0);
    /* embedded_alone first, and blocked before the others start: a thread
     * that runs after it could keep its address in a dead stack slot. */
    ck_assert_int_eq(lwc_spawn(embedded_alone, NULL), LWC_OK);
    gc_until_count(&embedded_lost, 1);             /* once it has blocked */
    ck_assert_int_eq(lwc_spawn(embedded_retrier, &embedded_block->pv), LWC_OK);
    ck_assert_int_eq(lwc_spawn(embedded_retrier, &embedded_static.pv), LWC_OK);
    while (atomic_load(&embedded_started) < 3)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    for (int i = 0; i < 5; i++) {                   /* never the other two */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
        ck_assert_int_eq(lwc_gc(), 0);
    }
    ck_assert_int_eq(atomic_load(&embedded_ok), 0);
    ck_assert_int_eq(lwc_atomically(set_both, NULL, NULL), LWC_OK);
    while (atomic_load(&embedded_ok) + atomic_load(&embedded_lost) < 3)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(atomic_load(&embedded_ok), 2);
    ck_assert_int_eq(atomic_load(&embedded_lost), 1);
    lwc_pvar_fini(&embedded_block->pv);
    lwc_pvar_fini(&embedded_static.pv);
    lwc_free(embedded_block);
    embedded_block = NULL;
}

START_TEST(test_pvars_inside)
{
    use_caps(_i);
    atomic_store(&embedded_started, 0);
    atomic_store(&embedded_ok, 0);
    atomic_store(&embedded_lost, 0);
    ck_assert_int_eq(lwc_main(pvars_inside, NULL), LWC_OK);
}
END_TEST

/* ---- bookkeeping the detector does not follow (issue 19) ---------------------------------
 * A scheduler that lists every thread it made in lwc_alloc memory keeps them
 * all reachable, blocked or not; hidden (lwc_hide), the list keeps none. */

static lwc_hidden_t *ledger;                 /* a root: the block is reachable */
static atomic_int ledger_err, ledger_done;

static void ledger_thread(void *arg)
{
    (void)arg;
    ledger[0] = lwc_hide(lwc_scont_self());
    lonely(NULL);
    atomic_store(&ledger_err, atomic_load(&lonely_wrong));
    atomic_store(&ledger_done, 1);
}

static void hidden_ledger(void *arg)
{
    (void)arg;
    ledger = lwc_alloc(sizeof *ledger);
    ck_assert_ptr_nonnull(ledger);
    atomic_store(&ledger_done, 0);
    atomic_store(&lonely_wrong, 0);
    ck_assert_int_eq(lwc_spawn(ledger_thread, NULL), LWC_OK);
    gc_until_count(&ledger_done, 1);
    ck_assert_int_eq(atomic_load(&ledger_err), 0);      /* it got LWC_EBLOCKED_CONCDS */
    lwc_scont_t *s = lwc_unhide(ledger[0]);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_eq(lwc_unhide(lwc_hide(s)), s);
    lwc_free(ledger);
    ledger = NULL;
}

START_TEST(test_hidden_bookkeeping)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(hidden_ledger, NULL), LWC_OK);
}
END_TEST

/* ---- bad input ---------------------------------------------------------------------------------- */

static lwc_word_t gc_inside(lwc_tx_t *tx, void *arg)
{
    (void)tx;
    (void)arg;
    return (lwc_word_t)(intptr_t)lwc_gc();
}

static void bad_input(void *arg)
{
    (void)arg;
    lwc_word_t r = 0;
    ck_assert_int_eq(lwc_atomically(gc_inside, NULL, &r), LWC_OK);
    ck_assert_int_eq((int)(intptr_t)r, LWC_EINVAL);
    ck_assert_int_eq(lwc_host_enter(&r), LWC_EINVAL);   /* an SCont is no host */
    ck_assert_int_eq(lwc_host_wait_begin(NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_host_wait_end(NULL), LWC_EINVAL);
    lwc_scont_note_wait(NULL, "nothing", NULL);
    ck_assert_int_eq(lwc_sched_adopts_orphans(NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_sched_adopts_orphans(guest_next), LWC_OK);
    ck_assert_int_eq(lwc_sched_adopts_orphans(guest_next), LWC_OK);     /* once is enough */
    ck_assert_int_eq(lwc_gc(), 0);
}

START_TEST(test_bad_input)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_gc(), LWC_EINVAL);             /* before lwc_init */
    ck_assert_int_eq(lwc_main(bad_input, NULL), LWC_OK);
}
END_TEST

/* One case per test: CK_RUN_CASE=islands runs one. */
static void add_case(Suite *s, const char *name, const TTest *t, int n)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, t, 0, n);
    suite_add_tcase(s, tc);
}

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    /* Under memcheck and TSan one capability only: on two, memcheck missed
     * an island once in a few dozen runs (no false positive). */
    add_case(s, "islands", test_many_islands, SLOW_TOOL() ? 1 : 2);
    add_case(s, "blocked", test_many_blocked, 2);
    add_case(s, "scheduler_kept", test_scheduler_kept, 2);
    add_case(s, "orphan_keeps_value", test_orphan_keeps_value, 2);
    add_case(s, "gc_from_plain_thread", test_gc_from_plain_thread, 2);
    /* 8 seeds (2 under memcheck), 1 and 2 capabilities */
    add_case(s, "racing", test_passes_racing_wakeups, SLOW_TOOL() ? 4 : 16);
    add_case(s, "pin", test_pin_released_while_waiting, 2);
    add_case(s, "idle_timer", test_idle_timer, 2);
    add_case(s, "pvars_inside", test_pvars_inside, 2);
    add_case(s, "hidden", test_hidden_bookkeeping, 2);
    add_case(s, "bad_input", test_bad_input, 2);
    return run_suite(s);
}
