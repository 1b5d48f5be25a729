/* The work-stealing scheduler: a Chase-Lev deque per capability (deque.h),
 * a shared FIFO in PVars for threads woken by transactions, on the public API. */
#include <lwc/lwc.h>
#include <lwc/kit.h>
#include <lwc/trace.h>
#include <lwc/ws.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/home.h"
#include "../common/thread.h"
#include "deque.h"
#include "ws.h"

/* Note [Where runnable threads wait]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A spawn by a thread of ws pushes the new thread on the deque of the
 * capability it runs on: no transaction, a few plain atomics.  A thread woken
 * by a thread of the same instance (its child finished, an MVar it waits on was
 * filled) goes to the waker's capability too, but only once the waking
 * transaction has committed (lwc_tx_defer, push_woken): a deque push cannot
 * be rolled back when a transaction re-runs.  It goes to the capability's
 * hand-off slot while the waker runs on (Note [The hand-off slot]), else on
 * its deque.  The deferred push runs on the OS thread that committed, before
 * it lets go of its capability (a landing, or the native stack before
 * handle_request), and whoever holds capability c is the only one running a
 * thread on it, so it owns deque c: the push is the owner's.  So the woken
 * thread runs next, as a Cilk continuation would: fork-join programs go depth
 * first and keep few threads (and stacks) alive.  Everything else made
 * runnable inside a transaction (an unblock from another scheduler, an OS
 * thread or a timer; a yield; a spawn from outside ws) goes to the instance's
 * shared queue, `head`/`tail` in PVars.  A yield goes there too: the deque is
 * LIFO for its owner, and a yielder pushed on it would be taken straight
 * back.
 *
 * A capability looks for work in this order: its stash, its hand-off slot,
 * its own deque (newest first), the shared queue, then the other deques
 * (oldest first, random victims then a sweep of all), then the hand-off
 * slots that sat a whole watch period.  Some looks are fair turns (Note
 * [Fair turns]), so that yielders, threads woken from outside and threads at
 * the top of the deque are not starved by a capability that keeps spawning,
 * or by two threads that keep waking each other.
 *
 * Note [Fair turns]
 * ~~~~~~~~~~~~~~~~~
 * Every FAIR_TURN-th look is a fair turn.  If the shared queue holds a
 * thread, the turn takes the oldest thread of the capability's own deque (the
 * top) and compares: if that one was pushed before the shared queue was last
 * served by a fair turn here, it runs; otherwise the shared queue's first
 * runs, and the top waits in the stash to run next (Note [The stash]).  Each
 * worker counts its turns that served the shared queue (`round`) and stamps
 * every thread it pushes on its deque with the count (push_own).  Only a
 * deque's owner pushes on it, so the top always carries a stamp of this
 * worker's count, and the two compare.  With the shared queue empty, only
 * every TOP_TURN-th look takes the top.
 *
 * Why not simpler.  Serving the shared queue on every fair turn let a thread
 * that spawns a thousand threads and yields come back after 61 of them had
 * run, spawn a thousand more, and so keep nearly all of them alive: a hundred
 * thousand stacks, and a spawn that cost 13 us instead of 0.3 (tools/bench,
 * spawn on ws).  With rounds it comes back once the threads it spawned before
 * its last turn have run: at most two of its batches are alive.  And taking
 * the top every 61st look broke depth-first order in fork-join programs: the
 * top of the deque is the oldest, largest piece of work (in skynet, a subtree
 * of 100 000 threads), and starting one every 61 looks kept thousands of
 * half-done subtrees alive (skynet took 1.0 s instead of 0.5).  Once per
 * TOP_TURN looks still bounds how long the top waits while two threads keep
 * waking each other at the bottom.  Nothing starves: a thread in the shared
 * queue waits for the threads stamped before the current round, which are
 * finite, and which fair turns take from the top.
 *
 * Note [The stash]
 * ~~~~~~~~~~~~~~~~
 * switch_to_next runs inside a transaction, but taking from a deque is not
 * transactional: if the transaction re-runs, the thread taken must not be lost
 * or taken again.  So a thread taken from a deque goes to the capability's
 * stash first, a plain field only this capability touches; a re-run finds it
 * there.  A deferred action clears the stash once a transaction that switched
 * to it has committed (deferred actions run after the switch has landed).  If
 * the re-run takes another path and does not switch (an MVar take that finds a
 * value this time), the thread stays in the stash until this capability next
 * looks for work, which it does first: it is late, never lost.
 *
 * Note [Sleeping and waking]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A capability with nothing to do sleeps in its switch_to_next's lwc_tx_retry.
 * The shared queue and the instance state are PVars it has read, so a write to
 * them wakes it.  Deque pushes write no PVar, so a sleeper must be woken by the
 * pusher: the sleeper sets its `sleeping` flag (counted in `nsleeping`), issues
 * a seq_cst fence, and looks at every deque once more; a pusher pushes, issues
 * a seq_cst fence, and reads `nsleeping`.  This is Dekker's shape: at least one
 * sees the other.  Either the sleeper finds the thread, or the pusher sees a
 * sleeper and writes `wake`, which the sleeper read in the transaction that
 * retries, so the retry returns at once or is woken.  A sleeper that wakes to
 * find nothing (another took it) sleeps again; its flag is already up.
 *
 * Note [The hand-off slot]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~
 * A thread woken by a thread of the same instance runs next on the waker's
 * capability: it goes to the capability's hand-off slot (Go's runnext), the
 * first place switch_to_next looks after the stash, and no sleeper is woken
 * for it.  In a hand-off (a pingpong, a ring of MVars, a join) the waker
 * blocks a moment later and its capability runs the woken thread itself,
 * with everything it touches still in this core's cache and the commit bias
 * (Note [Biased commit] in ptm/ptm.c) still held, where waking another
 * capability to steal it made every hand-off a cross-core one: 2
 * capabilities were 7 times slower than one.  A second thread woken before
 * the slot is taken pushes the first to the deque, as before.
 *
 * So that a woken thread never waits behind a waker that keeps running
 * while other capabilities idle, the slot is not stealable for one watch
 * period (HANDOFF_NS) and is afterwards: an idle service (lwc_service_add,
 * handoff_watch) looks at every slot once a period while any is in use,
 * marks `handoff_ripe` a slot whose thread sat there a whole period, and
 * wakes a sleeper, whose steal takes ripe slots after the deques.  (Moving
 * such a thread to the shared queue instead made fair turns start the tops
 * of deques, Note [Fair turns]: fib(30) on 2 capabilities then kept 35 000
 * stacks alive instead of 1 800.)  Each slot counts its hand-offs (`handoffs`,
 * written before the slot, so a watcher that sees the thread sees the count);
 * a slot whose count has not moved since the last look holds the same
 * thread.  The watch runs while hand-offs happen, and stops once a look finds
 * none; a hand-off that finds it stopped restarts it (lwc_service_due).  The
 * two race as in Note [Sleeping and waking]: the hand-off swaps the slot and
 * then reads `handoff_watching`, the watch clears that and then reads every
 * slot, all seq_cst, so one sees the other.  With one capability there is no
 * one to steal for, and no watch.
 *
 * Note [ws capabilities]
 * ~~~~~~~~~~~~~~~~~~~~~~
 * As in rr (Note [rr capabilities] in ../rr/rr.c): an instance holds the
 * capabilities it starts until it is closed, `caps` counts them, and its memory
 * may go only once `caps` is 0.  `live` counts threads whose function has not
 * returned (Note [Live threads] in ../common/thread.h). */
struct ws_worker {
    struct deque       dq;
    struct sched_thread  *stash;       /* Note [The stash] */
    _Atomic int        sleeping;    /* Note [Sleeping and waking] */
    unsigned           rng, ticks;
    unsigned           round;       /* Note [Fair turns] */
    /* Note [The hand-off slot].  A line of its own, which the owner writes
     * only to hand off: every steal reads it, and sharing the line with the
     * fields above, written at every look for work, made a yield on two
     * busy capabilities 40% slower. */
    _Alignas(64) _Atomic(struct sched_thread *) handoff;
    _Atomic unsigned   handoffs;    /* written by the owner only */
    _Atomic bool       handoff_ripe; /* sat a whole period: others may steal it */
    unsigned           watched;     /* `handoffs` at the watch's last look */
} __attribute__((aligned(64)));

struct lwc_ws {
    lwc_pvar_t        *head, *tail; /* the shared queue: Note [Where runnable threads wait] */
    lwc_pvar_t        *caps;        /* Note [ws capabilities] */
    lwc_pvar_t        *closing;     /* WS_OPEN, WS_CLOSING or WS_DRAIN */
    lwc_pvar_t        *wake;        /* written to wake sleepers */
    struct sched_live  live;        /* Note [Live threads] in ../common/thread.h */
    _Atomic unsigned   nsleeping;
    unsigned           max_caps, nslots;
    struct ws_worker  *workers;     /* one per capability of the runtime */
    struct sched_homes homes;       /* Note [Threads with a home] in ../common/home.h */
    bool               watched;     /* in `instances`: Note [The hand-off slot] */
};

#define RD(pv)      lwc_pvar_read(tx, (pv))
#define WR(pv, v)   lwc_pvar_write(tx, (pv), (lwc_word_t)(v))

static void shared_push(lwc_tx_t *tx, lwc_ws_t *ws, struct sched_thread *t)
{
    fifo_push(tx, ws->head, ws->tail, t);
}

static struct sched_thread *shared_pop(lwc_tx_t *tx, lwc_ws_t *ws, struct ws_worker *w)
{
    if (__builtin_expect(!ws->homes.n, 1))
        return fifo_pop(tx, ws->head, ws->tail);
    return sched_pop_here(tx, &ws->homes, ws->head, ws->tail, (unsigned)(w - ws->workers));
}

/* May capability `thief` take x from another's deque or slot? */
static bool stealable(void *x, void *thief)
{
    return !x || !sched_away(x, (unsigned)(uintptr_t)thief);   /* NULL: the CAS will fail */
}

/* ---- finding work ---------------------------------------------------------------- */

static unsigned next_random(struct ws_worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 17;
    w->rng ^= w->rng << 5;
    return w->rng;
}

/* A thread from another capability's deque, or NULL.  A few random victims
 * first; then, if `sweep`, every deque until each has been seen empty, which
 * is what Note [Sleeping and waking] needs before sleeping. */
static struct sched_thread *steal_from(lwc_ws_t *ws, struct ws_worker *w, bool sweep,
                                       unsigned *victim)
{
    unsigned n = ws->nslots, me = (unsigned)(w - ws->workers);
    if (n < 2)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        unsigned v = next_random(w) % n;
        void *x = v == me ? NULL : deque_steal_if(&ws->workers[v].dq, stealable,
                                                  (void *)(uintptr_t)me);
        if (x && x != DEQUE_ABORT)
            return *victim = v, x;
    }
    for (unsigned v = 0; sweep && v < n; v++) {
        void *x;
        while (v != me && (x = deque_steal_if(&ws->workers[v].dq, stealable,
                                              (void *)(uintptr_t)me)) != NULL)
            if (x != DEQUE_ABORT)
                return *victim = v, x;
    }
    for (unsigned v = 0; v < n; v++) {         /* Note [The hand-off slot] */
        struct ws_worker *o = &ws->workers[v];
        struct sched_thread *t;
        if (v != me && atomic_load_explicit(&o->handoff_ripe, memory_order_relaxed) &&
            (t = atomic_load_explicit(&o->handoff, memory_order_relaxed)) &&
            stealable(t, (void *)(uintptr_t)me) &&
            atomic_compare_exchange_strong(&o->handoff, &t, NULL))
            return *victim = v, t;
    }
    return NULL;
}

/* steal_from, and the steal in a trace (lwc/trace.h). */
static struct sched_thread *steal(lwc_ws_t *ws, struct ws_worker *w, bool sweep)
{
    unsigned victim;
    struct sched_thread *t = steal_from(ws, w, sweep, &victim);
    if (t && lwc_trace_recording())
        lwc_trace_steal(thread_scont(t), victim);
    return t;
}

static bool push_own(struct ws_worker *w, struct sched_thread *t)
{
    t->round = w->round;                        /* Note [Fair turns] */
    return deque_push(&w->dq, t) == 0;
}

static void stash_clear(void *w)
{
    ((struct ws_worker *)w)->stash = NULL;
}

#define FAIR_TURN 61
#define TOP_TURN  (FAIR_TURN * 64)

/* The next thread for this capability, in the order of Note [Where runnable
 * threads wait], or NULL. */
static struct sched_thread *find_work(lwc_tx_t *tx, lwc_ws_t *ws, struct ws_worker *w, bool sweep)
{
    struct sched_thread *t;
    if (__builtin_expect(ws->homes.n != 0, 0) && !w->stash &&
        (t = sched_home_pop(tx, &ws->homes, (unsigned)(w - ws->workers))))
        return t;                               /* Note [Threads with a home] */
    if (!w->stash && ++w->ticks % FAIR_TURN == 0) {    /* Note [Fair turns] */
        bool queued = RD(ws->head) != 0;
        if (queued || w->ticks % TOP_TURN == 0) {
            void *x = deque_steal(&w->dq);      /* the oldest of our own */
            w->stash = x == DEQUE_ABORT ? NULL : x;
        }
        if (queued && (!w->stash || w->stash->round == w->round) && (t = shared_pop(tx, ws, w))) {
            w->round++;                         /* a re-run may count twice: harmless */
            return t;
        }
    }
    if (!w->stash && atomic_load_explicit(&w->handoff, memory_order_relaxed))
        w->stash = atomic_exchange(&w->handoff, NULL);   /* Note [The hand-off slot] */
    if (!w->stash)
        w->stash = deque_take(&w->dq);
    if (!w->stash) {
        if ((t = shared_pop(tx, ws, w)))
            return t;
        w->stash = steal(ws, w, sweep);
    }
    if (w->stash)
        lwc_tx_defer(tx, stash_clear, w);   /* Note [The stash] */
    return w->stash;
}

static struct ws_worker *worker_here(lwc_ws_t *ws)
{
    unsigned c = lwc_cap_self();
    return c < ws->nslots ? &ws->workers[c] : NULL;
}

static void set_awake(lwc_ws_t *ws, struct ws_worker *w)
{
    if (atomic_load_explicit(&w->sleeping, DEQUE_ORDER(memory_order_relaxed))) {
        atomic_store_explicit(&w->sleeping, 0, DEQUE_ORDER(memory_order_relaxed));
        atomic_fetch_sub_explicit(&ws->nsleeping, 1, DEQUE_ORDER(memory_order_relaxed));
    }
}

/* After a deque push: Note [Sleeping and waking]. */
static void wake_a_sleeper(lwc_ws_t *ws)
{
    DEQUE_FENCE(memory_order_seq_cst);
    if (atomic_load_explicit(&ws->nsleeping, DEQUE_ORDER(memory_order_relaxed)))
        lwc_atomically(sched_bump_body, ws->wake, NULL);
}

/* ---- upcalls ------------------------------------------------------------------------ */

static bool must_stay(lwc_tx_t *tx, lwc_ws_t *ws)
{
    lwc_word_t closing = RD(ws->closing);
    if (closing == WS_OPEN)
        return true;
    if (closing == WS_DRAIN)
        return false;
    return sched_any_live(tx, &ws->live);
}

static lwc_scont_t *ws_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    lwc_ws_t *ws = env;
    sched_thread_completing(tx, self, why);     /* Note [Orphans] in ../common/thread.h */
    struct ws_worker *w = worker_here(ws);
    struct sched_thread *t = find_work(tx, ws, w, false);
    if (!t && must_stay(tx, ws)) {
        RD(ws->wake);
        if (!atomic_exchange(&w->sleeping, 1))  /* Note [Sleeping and waking] */
            atomic_fetch_add(&ws->nsleeping, 1);
        DEQUE_FENCE(memory_order_seq_cst);
        if (!(t = find_work(tx, ws, w, true)))
            lwc_tx_retry(tx);
    }
    set_awake(ws, w);
    if (t)
        return thread_scont(t);
    WR(ws->caps, RD(ws->caps) - 1);             /* Note [ws capabilities] */
    return NULL;
}

static lwc_word_t shared_push_thread(lwc_tx_t *tx, void *arg)
{
    struct sched_thread *t = arg;
    shared_push(tx, thread_sched(t), t);
    return 0;
}

/* Queue t on its instance's shared queue, from outside a transaction. */
static void shared_requeue(struct sched_thread *t)
{
    int err = lwc_atomically(shared_push_thread, t, NULL);
    if (err != LWC_OK) {
        fprintf(stderr, "lwc: ws: cannot queue a woken thread: %s\n", lwc_strerror(err));
        abort();                                /* losing it would hang the program */
    }
}

/* ---- the hand-off slot's watch: Note [The hand-off slot] ----------------------- */

#define HANDOFF_NS 50000u

/* The instances with more than one capability, for the watch. */
static struct {
    pthread_mutex_t lock;
    lwc_ws_t      **all;
    size_t          n, cap;
    uint64_t        looked;     /* when the watch last looked */
} instances = { .lock = PTHREAD_MUTEX_INITIALIZER };
static _Atomic bool handoff_watching;

/* One look at every slot, under instances.lock: ripen what sat in one for a
 * whole period.  Whether any slot was used since the last look. */
static bool handoff_look(uint64_t now)
{
    bool period = now - instances.looked >= HANDOFF_NS, busy = false;
    if (period)
        instances.looked = now;
    for (size_t i = 0; i < instances.n; i++) {
        lwc_ws_t *ws = instances.all[i];
        for (unsigned k = 0; k < ws->nslots; k++) {
            struct ws_worker *w = &ws->workers[k];
            struct sched_thread *t = atomic_load(&w->handoff);
            unsigned count = atomic_load_explicit(&w->handoffs, memory_order_relaxed);
            if (t && count == w->watched && period && !atomic_load(&w->handoff_ripe)) {
                atomic_store(&w->handoff_ripe, true);
                wake_a_sleeper(ws);
            }
            busy |= t || count != w->watched;
            if (period)
                w->watched = count;
        }
    }
    return busy;
}

static uint64_t handoff_watch(void *arg, uint64_t now)
{
    (void)arg;
    pthread_mutex_lock(&instances.lock);
    bool busy = handoff_look(now);
    if (!busy) {
        atomic_store(&handoff_watching, false);
        busy = handoff_look(now);               /* a hand-off that did not see the store */
        if (busy)
            atomic_store(&handoff_watching, true);
    }
    pthread_mutex_unlock(&instances.lock);
    return busy ? now + HANDOFF_NS : LWC_NEVER;
}

static void handoff_watch_start(void)
{
    if (!atomic_exchange(&handoff_watching, true))
        lwc_service_due(lwc_clock_ns() + HANDOFF_NS);
}

/* Watch ws's slots from now until it is freed; false when out of memory or
 * services (then ws hands nothing off: handoff). */
static bool handoff_watch_add(lwc_ws_t *ws)
{
    if (lwc_service_add(handoff_watch, NULL) != LWC_OK)
        return false;
    pthread_mutex_lock(&instances.lock);
    if (instances.n == instances.cap) {
        size_t cap = instances.cap ? 2 * instances.cap : 8;
        lwc_ws_t **all = realloc(instances.all, cap * sizeof *all);
        if (!all) {
            pthread_mutex_unlock(&instances.lock);
            return false;
        }
        instances.all = all;
        instances.cap = cap;
    }
    instances.all[instances.n++] = ws;
    ws->watched = true;
    pthread_mutex_unlock(&instances.lock);
    return true;
}

static void handoff_watch_remove(lwc_ws_t *ws)
{
    if (!ws->watched)
        return;
    pthread_mutex_lock(&instances.lock);
    for (size_t i = 0; i < instances.n; i++)
        if (instances.all[i] == ws)
            instances.all[i] = instances.all[--instances.n];
    if (instances.n == 0) {
        free(instances.all);
        instances.all = NULL;
        instances.cap = 0;
    }
    pthread_mutex_unlock(&instances.lock);
}

/* t runs next here, unless another hand-off comes first: Note [The hand-off
 * slot].  Only while the thread that woke it runs on: a commit that also
 * switched (a completion that woke its joiner) chose what runs next already,
 * and one that gave the capability back has nothing to run it; those push t
 * as before. */
static bool handoff(lwc_ws_t *ws, struct ws_worker *w, struct sched_thread *t)
{
    lwc_scont_t *self = lwc_scont_self();
    if (!self || lwc_scont_id(self) != atomic_load_explicit(&t->waker, memory_order_relaxed) ||
        (ws->nslots > 1 && !ws->watched))
        return false;
    unsigned count = atomic_load_explicit(&w->handoffs, memory_order_relaxed);
    atomic_store_explicit(&w->handoffs, count + 1, memory_order_relaxed);
    atomic_store_explicit(&w->handoff_ripe, false, memory_order_relaxed);
    struct sched_thread *old = atomic_exchange(&w->handoff, t);
    if (ws->watched && !atomic_load(&handoff_watching))
        handoff_watch_start();
    if (old && push_own(w, old))
        wake_a_sleeper(ws);
    else if (old)
        shared_requeue(old);
    return true;
}

/* After the commit that woke t: Note [Where runnable threads wait]. */
static void push_woken(void *arg)
{
    struct sched_thread *t = arg;
    lwc_ws_t *ws = thread_sched(t);
    struct ws_worker *w = worker_here(ws);
    if (w && handoff(ws, w, t))
        return;
    if (w && push_own(w, t)) {
        wake_a_sleeper(ws);
        return;
    }
    shared_requeue(t);
}

static void ws_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    lwc_ws_t *ws = env;
    struct sched_thread *t = sched_thread_of(s, ws);
    if (!t)
        return;
    if (__builtin_expect(ws->homes.n != 0, 0) && sched_away(t, lwc_cap_self())) {
        sched_send_home(tx, &ws->homes, t);     /* Note [Threads with a home] */
        return;
    }
    if (lwc_ws_self() == ws && worker_here(ws)) {
        /* An id, not a pointer: the detector would read that as a reference. */
        atomic_store_explicit(&t->waker, lwc_scont_id(lwc_scont_self()), memory_order_relaxed);
        lwc_tx_defer(tx, push_woken, t);
    } else {
        shared_push(tx, ws, t);
    }
}

lwc_ws_t *lwc_ws_self(void)
{
    return sched_self(ws_next);
}

/* ---- threads ------------------------------------------------------------------------ */

static void trampoline(void *arg)
{
    struct sched_thread *t = arg;
    lwc_scont_run(t->fn, t->arg);
    lwc_ws_t *ws = thread_sched(t);
    sched_thread_done(t);
    sched_count_out(&ws->live);
}

static struct sched_thread *thread_new(lwc_ws_t *ws, void (*fn)(void *), void *arg, bool bound)
{
    lwc_upcalls_t u = { ws_next, ws_unblock, ws };
    return sched_thread_new(ws, fn, arg, trampoline, &u, bound);
}

struct spawn { lwc_ws_t *ws; struct sched_thread *t; bool start; };

/* While ws has fewer capabilities than it may use: claim one more. */
static lwc_word_t claim_cap_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    lwc_word_t caps = RD(sp->ws->caps);
    if (RD(sp->ws->closing) != WS_OPEN)
        return LWC_EINVAL;
    sp->start = caps < sp->ws->max_caps;
    if (sp->start)
        WR(sp->ws->caps, caps + 1);
    return LWC_OK;
}

/* A start that found no idle capability: give the claim back, and queue the
 * thread unless ws has no capability at all to run it. */
static lwc_word_t unclaim_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    lwc_word_t caps = RD(sp->ws->caps) - 1;
    WR(sp->ws->caps, caps);
    if (caps == 0)
        return LWC_EBUSY;
    shared_push(tx, sp->ws, sp->t);
    return LWC_OK;
}

static lwc_word_t shared_push_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    if (RD(sp->ws->closing) != WS_OPEN)
        return LWC_EINVAL;
    shared_push(tx, sp->ws, sp->t);
    return LWC_OK;
}

/* Where a new thread goes: a new capability, the caller's deque, or the
 * shared queue.  Returns 0 or an error with the thread not queued. */
static int place(struct spawn *sp)
{
    lwc_ws_t *ws = sp->ws;
    lwc_word_t err = LWC_OK;
    int terr;
    if (lwc_pvar_peek(ws->caps) < ws->max_caps) {
        terr = lwc_atomically(claim_cap_body, sp, &err);
        if (terr != LWC_OK || err != LWC_OK)
            return terr != LWC_OK ? terr : (int)err;
        if (sp->start) {
            if (lwc_cap_start(thread_scont(sp->t)) == LWC_OK)
                return LWC_OK;
            terr = lwc_atomically(unclaim_body, sp, &err);
            return terr != LWC_OK ? terr : (int)err;
        }
    }
    struct ws_worker *w = lwc_ws_self() == ws ? worker_here(ws) : NULL;
    if (w && push_own(w, sp->t)) {
        wake_a_sleeper(ws);
        return LWC_OK;
    }
    terr = lwc_atomically(shared_push_body, sp, &err);
    return terr != LWC_OK ? terr : (int)err;
}

static __attribute__((noinline)) int ws_spawn(lwc_ws_t *ws, void (*fn)(void *), void *arg,
                                                bool bound)
{
    if (lwc_pvar_peek(ws->closing) != WS_OPEN)
        return LWC_EINVAL;
    struct spawn sp = { ws, thread_new(ws, fn, arg, bound), false };
    if (!sp.t)
        return errno == EINVAL ? LWC_EINVAL : LWC_ENOMEM;
    sched_count_in(&ws->live);
    int err = place(&sp);
    if (err != LWC_OK) {
        /* Never ran: its SCont and node go back. */
        sched_thread_give(sp.t);
        sched_count_out(&ws->live);
    }
    return err;
}

/* The public spawns: checked, and scrubbed after. */
static int spawn_checked(lwc_ws_t *ws, void (*fn)(void *), void *arg, bool bound)
{
    if (!ws || !fn)
        return LWC_EINVAL;
    int err = ws_spawn(ws, fn, arg, bound);
    lwc_stack_scrub();          /* Note [Scrubbing the stack] in substrate/detect.c */
    return err;
}

int lwc_ws_spawn(lwc_ws_t *ws, void (*fn)(void *), void *arg)
{
    return spawn_checked(ws, fn, arg, false);
}

int lwc_ws_spawn_bound(lwc_ws_t *ws, void (*fn)(void *), void *arg)
{
    return spawn_checked(ws, fn, arg, true);
}

static lwc_scont_t *yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    lwc_ws_t *ws = arg;
    *st = LWC_BLOCKED_ON_SCHED;
    struct sched_thread *next = find_work(tx, ws, worker_here(ws), false);
    if (!next)
        return self;                            /* nobody else: carry on */
    shared_push(tx, ws, lwc_scont_get_local(self));
    return thread_scont(next);
}

int lwc_ws_yield(void)
{
    lwc_ws_t *ws = lwc_ws_self();
    return ws ? lwc_switch(yield_body, ws) : LWC_EINVAL;
}

/* ---- instances ------------------------------------------------------------------------- */

static const char *ws_name(void *env)
{
    (void)env;
    return "ws";
}

lwc_ws_t *lwc_ws_new(unsigned ncaps)
{
    unsigned n = lwc_cap_count();
    if (n == 0) {
        errno = EINVAL;
        return NULL;
    }
    lwc_sched_adopts_orphans(ws_next);
    lwc_sched_set_namer(ws_next, ws_name);
    lwc_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        goto nomem;
    ws->max_caps = ncaps && ncaps < n ? ncaps : n;
    ws->nslots = n;
    ws->workers = aligned_alloc(64, n * sizeof *ws->workers);
    if (!ws->workers)
        goto nomem;
    memset(ws->workers, 0, n * sizeof *ws->workers);
    unsigned made = 0;
    while (made < n && deque_init(&ws->workers[made].dq, 256) == 0) {
        ws->workers[made].rng = 2463534242u + 7919u * made;
        made++;
    }
    ws->head = lwc_pvar_new(0);
    ws->tail = lwc_pvar_new(0);
    ws->caps = lwc_pvar_new(0);
    ws->closing = lwc_pvar_new(WS_OPEN);
    ws->wake = lwc_pvar_new(0);
    ws->live.quiet = lwc_pvar_new(0);
    if (made == n && ws->head && ws->tail && ws->caps && ws->closing && ws->wake &&
        ws->live.quiet && sched_homes_init(&ws->homes)) {
        if (n > 1)
            handoff_watch_add(ws);
        return ws;
    }
nomem:
    lwc_ws_free_memory(ws);
    errno = ENOMEM;
    return NULL;
}

static lwc_word_t wait_idle(lwc_tx_t *tx, void *arg)
{
    lwc_ws_t *ws = arg;
    if (sched_any_live(tx, &ws->live))
        lwc_tx_retry(tx);
    return 0;
}

int lwc_ws_spawn_on(void *ws, void (*fn)(void *), void *arg)
{
    return lwc_ws_spawn(ws, fn, arg);
}

int lwc_ws_incall(lwc_ws_t *ws, void (*fn)(void *), void *arg)
{
    return lwc_kit_incall_with(lwc_ws_spawn_on, ws, fn, arg);
}

int lwc_ws_wait(lwc_ws_t *ws)
{
    if (!ws)
        return LWC_EINVAL;
    return lwc_atomically(wait_idle, ws, NULL);
}

static lwc_word_t close_body(lwc_tx_t *tx, void *arg)
{
    void **a = arg;
    WR(((lwc_ws_t *)a[0])->closing, (lwc_word_t)a[1]);
    return 0;
}

static lwc_word_t wait_caps_gone(lwc_tx_t *tx, void *arg)
{
    lwc_ws_t *ws = arg;
    if (RD(ws->caps) > 0)
        lwc_tx_retry(tx);
    return 0;
}

int lwc_ws_close(lwc_ws_t *ws, int how)
{
    void *a[2] = { ws, (void *)(uintptr_t)how };
    int err = lwc_atomically(close_body, a, NULL);
    return err != LWC_OK ? err : lwc_atomically(wait_caps_gone, ws, NULL);
}

void lwc_ws_free_memory(lwc_ws_t *ws)
{
    if (!ws)
        return;
    handoff_watch_remove(ws);
    if (ws->workers) {
        for (unsigned i = 0; i < ws->nslots; i++)
            deque_destroy(&ws->workers[i].dq);
        free(ws->workers);
    }
    lwc_pvar_free(ws->head);
    lwc_pvar_free(ws->tail);
    lwc_pvar_free(ws->caps);
    lwc_pvar_free(ws->closing);
    lwc_pvar_free(ws->wake);
    lwc_pvar_free(ws->live.quiet);
    sched_homes_free(&ws->homes);
    free(ws);
}

void lwc_ws_free(lwc_ws_t *ws)
{
    if (!ws)
        return;
    lwc_ws_wait(ws);
    lwc_ws_close(ws, WS_CLOSING);
    lwc_ws_free_memory(ws);
}
