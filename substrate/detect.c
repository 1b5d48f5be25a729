/* The blocked-forever detector: lwc_gc, the pass that runs by itself when
 * every capability idles, and the whole-program deadlock report.  The rules
 * it applies are the README's "Threads blocked forever" and design.md's
 * "Blocked forever: the detector".
 *
 * This file holds what starts a pass and the pass itself: the safe points
 * where capabilities stop, the idle and sleep triggers, pass_run, and the
 * public side.  A pass gathers the SConts and its roots (detect_roots.c),
 * marks what they reach (detect_mark.c), wakes the threads blocked for good
 * and has orphans adopted (detect_wake.c), and reports a deadlock
 * (detect_report.c); detect.h is what they share. */
#include "config.h"

#include <limits.h>
#include <lwc/detect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "trace.h"
#include "futex.h"

#if LWC_VALGRIND
#include <valgrind/memcheck.h>
#endif

/* Note [Stopping the world]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~
 * A pass reads what every SCont's stack, every PVar and every traced block
 * holds, so nothing may run while it reads.  Each capability's holder stops
 * at a safe point, where no transaction of its own is active and every stack
 * but its own is saved: after a landing (lwc_land, and a switch to itself in
 * lwc_tx_run), before a mailed SCont is swapped in (native_loop), and while it
 * sleeps in the kernel with nothing to run (sleep_thread in ptm.c).  There it
 * records the lowest live word of the stack it is on (`park_sp`, below the
 * callee-saved registers that __builtin_unwind_init spilled) and raises its
 * capability's `safe`.
 *
 * The collector raises `lwc_gc_request` and waits until every capability is
 * idle (nobody holds it: whoever takes it mails a worker, which stops before
 * running anything) or safe.  Both sides store then load, seq_cst: either the
 * holder sees the request and stops, or the collector sees it running and
 * waits.  A holder that wakes during a pass lowers `safe`, sees the request
 * and raises `safe` again before it touches anything.
 *
 * Plain OS threads are not stopped: they may commit at any time.  So the pass
 * takes the commit sequence once nobody holds the commit bias (a biased
 * holder commits without moving it: Note [Biased commit] in ptm/ptm.c), and
 * acts on its findings only if the sequence has not moved by the end of the
 * marking and at the start of the transaction that wakes the threads; else it
 * runs again, a few times, then gives up.  A reference such a thread holds
 * where lwc cannot see it is the program's to pin (detect.h). */

/* Note [Idle in a blocking switch]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * When an SCont blocks on a data structure and its scheduler has nothing else
 * to run, the switch_to_next upcall retries, and the capability idles apart
 * from it once its stop has committed (Note [Idling in a place of its own] in
 * idle.c): nothing here is needed for that.  What is left is a blocking
 * transaction that retries after its switch_to_next returned (its body read
 * something more and gave up): the capability sleeps inside the SCont's
 * blocking transaction, which has not committed.  The SCont still
 * reads LWC_RUNNING, its MVar does not list it, and a pass that believed that
 * would take it for a root, so the program's last blocked thread would never
 * be found.  So tx_wait records, before it sleeps, that its thread idles in a
 * blocking (or completing) switch of `idle_self`, with a copy of that
 * transaction's writes, and the pass sees the world as if it had committed:
 * the SCont LWC_BLOCKED_ON_CONCDS (or LWC_COMPLETED), and each PVar written
 * holding the value written (the overlay).  That world is one the program can
 * reach: the commit needs only another thread to run, and serializability
 * allows it to come first.
 *
 * Such an SCont found unreachable is not woken through its upcalls, for it
 * never blocked: the pass sets `error` in its retry waiter and fires it, and
 * the transaction gives up with that error instead of running again, so the
 * blocking call returns it and nothing of the switch commits.  The data
 * structure never linked the waiter. */

/* Note [Plain OS threads]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * An OS thread that is no capability's (a program's main thread driving lwc
 * by hand, lwc_main's caller, a library's callback thread) cannot be stopped
 * where it runs, and its stack cannot be read while it runs.  lwc keeps every
 * such thread that has a record (it called into lwc) on lwc_rt.foreign, and
 * knows when it sleeps in the kernel inside lwc (`asleep`): in a retry
 * (sleep_thread) or, as an lwc_eval host, for its mail.
 *  - While one is awake, something outside the capabilities may act: no pass
 *    runs by itself, and no deadlock is declared.  An lwc_gc pass still runs;
 *    what such a thread holds must be pinned (detect.h), except that the
 *    thread calling lwc_gc has its own stack scanned, from the pass's frame.
 *  - Whichever goes to sleep last, a capability or such a thread, runs the
 *    pass that finds a deadlock (lwc_gc_sleep_begin, lwc_gc_host_sleeps).
 *  - One asleep in a retry is stopped like a capability: woken during a pass,
 *    it waits for the pass to end before it returns into the program.  Its
 *    stack is data the SConts may use (lwc_main's caller passes its locals to
 *    the first thread), so the pass scans it as a root, from where it slept,
 *    or from the point lwc_host_enter named: lwc_main names its own frame, so
 *    that the SCont it created, whose address may linger in dead slots below,
 *    is not kept alive by the thread that only waits for it.
 *    Where it slept and the waiter that wakes it (sleep_sp, sleep_waiter)
 *    change only under lwc_rt.lock, which foreign_all_asleep holds: the
 *    waiter lives on the sleeper's stack and must not be read once the
 *    sleeper has left lwc_gc_sleep_end.
 * A thread that never called into lwc is invisible; detect.h says to pin. */

_Atomic uint32_t lwc_gc_request;

struct lwc_detector lwc_detector = { .lock = PTHREAD_MUTEX_INITIALIZER,
                                      .report_lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- safe points ---------------------------------------------------------------------------- */

static void safe_enter(struct lwc_thread *t, void *sp)
{
    struct lwc_cap *c = t->cap;
    c->park_sp = sp;
    c->park_scont = t->current;
    c->park_thread = t;
    atomic_store(&c->safe, 1);                      /* seq_cst: the Note */
}

/* Leave a safe point (a capability's `safe`, a plain thread's `asleep`);
 * stay while a pass runs. */
static void safe_leave(_Atomic int *flag)
{
    for (;;) {
        atomic_store(flag, 0);                      /* seq_cst: the Note */
        if (!atomic_load(&lwc_gc_request))
            return;
        atomic_store(flag, 1);
        while (atomic_load(&lwc_gc_request))
            lwc_futex_wait(&lwc_gc_request, 1);
    }
}

__attribute__((noinline)) void lwc_gc_park(struct lwc_thread *t)
{
    if (!t->cap)
        return;
    __builtin_unwind_init();                        /* callee-saved registers to the stack */
    volatile char here = 0;
    safe_enter(t, (void *)&here);
    safe_leave(&t->cap->safe);
    (void)here;
}

void lwc_gc_unpark(struct lwc_cap *cap)
{
    safe_leave(&cap->safe);
}

void lwc_gc_idle_record(struct lwc_thread *t, lwc_tx_t *tx, struct retry_waiter *w)
{
    if (!t->cap || !tx->self || !(tx->blocking || tx->completing))
        return;
    if (tx->h.nwrites > t->idle_cap_writes) {
        struct lwc_tx_write *p = realloc(t->idle_writes, tx->h.nwrites * sizeof *p);
        if (!p)
            return;                     /* then it counts as running: safe */
        t->idle_writes = p;
        t->idle_cap_writes = tx->h.nwrites;
    }
    memcpy(t->idle_writes, tx->h.writes, tx->h.nwrites * sizeof *tx->h.writes);
    t->idle_nwrites = tx->h.nwrites;
    t->idle_waiter = w;
    t->idle_completing = tx->completing;
    t->idle_self = tx->self;
}

void lwc_gc_idle_clear(struct lwc_thread *t)
{
    t->idle_self = NULL;
    t->idle_waiter = NULL;
    t->idle_nwrites = 0;
}

static int collect(struct lwc_thread *t, bool idle);
static int collect_locked(struct lwc_thread *t, bool idle);

/* Is every plain OS thread asleep inside lwc?  With lwc_rt.lock held. */
bool lwc_gc_foreign_all_asleep(void)
{
    for (struct lwc_thread *f = lwc_rt.foreign; f; f = f->foreign_next) {
        if (!atomic_load(&f->asleep))
            return false;
        struct retry_waiter *w = f->sleep_sp ? f->sleep_waiter : NULL;
        if (w && atomic_load(&w->state) == W_FIRED)
            return false;                           /* woken: about to act */
    }
    return true;
}

/* Every capability idle, and every plain OS thread asleep in lwc?  For good:
 * no capability sleeps to a deadline either. */
static bool all_idle(bool for_good)
{
    for (unsigned i = 0; i < lwc_cap_slots(); i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        if (atomic_load(&c->busy) == CAP_IDLE && !c->host_used)
            continue;               /* a hosted one idles to what its host was told */
        uint64_t until = atomic_load(&c->idle_until);
        if (for_good ? until != LWC_NEVER : until == 0)
            return false;
    }
    pthread_mutex_lock(&lwc_rt.lock);
    bool asleep = lwc_gc_foreign_all_asleep();
    pthread_mutex_unlock(&lwc_rt.lock);
    return asleep;
}

char *lwc_gc_thread_stack_hi(void)
{
    pthread_attr_t a;
    void *lo;
    size_t n;
    if (pthread_getattr_np(pthread_self(), &a) != 0)
        return NULL;
    int err = pthread_attr_getstack(&a, &lo, &n);
    pthread_attr_destroy(&a);
    return err ? NULL : (char *)lo + n;
}

/* A plain OS thread sleeps in lwc from here (sp), on waiter w (or NULL). */
static void plain_sleep(struct lwc_thread *t, void *sp, struct retry_waiter *w)
{
    if (!t->stack_hi)
        t->stack_hi = lwc_gc_thread_stack_hi();
    pthread_mutex_lock(&lwc_rt.lock);               /* Note [Plain OS threads] */
    t->sleep_sp = sp;
    t->sleep_waiter = w;
    pthread_mutex_unlock(&lwc_rt.lock);
    atomic_store(&t->asleep, 1);                    /* seq_cst: Note [Stopping the world] */
}

__attribute__((noinline)) void lwc_gc_sleep_begin(struct lwc_thread *t, struct retry_waiter *w,
                                                   bool forever)
{
    __builtin_unwind_init();
    volatile char here = 0;
    if (t->cap)
        safe_enter(t, (void *)&here);
    else
        plain_sleep(t, (void *)&here, w);
    if (forever && atomic_load(&lwc_rt.up) && all_idle(true))
        collect(t, true);
    (void)here;
}

/* The host of hosted capabilities, between turns, as if asleep in lwc for
 * the length of a pass: Note [Hosted capabilities] in host.c.  for_good:
 * the pass when nothing can run; else the idle timer's (Note [The idle
 * timer]), which the host runs once its loop has idled that long. */
static __attribute__((noinline)) int host_idle(struct lwc_thread *t, bool for_good)
{
    __builtin_unwind_init();
    volatile char here = 0;
    plain_sleep(t, (void *)&here, NULL);
    int n = !for_good ? lwc_gc_idle_timer(t) : all_idle(true) ? collect(t, true) : 0;
    lwc_gc_sleep_end(t);
    (void)here;
    return n;
}

static int host_idle_checked(bool for_good)
{
    if (!atomic_load(&lwc_rt.up) || (!for_good && !lwc_rt.idle_gc_ns))
        return LWC_EINVAL;
    struct lwc_thread *t = lwc_thread_get();
    if (!t)
        return LWC_ENOMEM;
    if (t->current || t->cap || t->tx.active || t->draining)
        return LWC_EINVAL;
    return host_idle(t, for_good);
}

int lwc_gc_host_idle(void)
{
    return host_idle_checked(true);
}

int lwc_gc_host_idle_timer(void)
{
    return host_idle_checked(false);
}

uint64_t lwc_gc_idle_timer_ns(void)
{
    return atomic_load(&lwc_rt.up) ? lwc_rt.idle_gc_ns : 0;
}

/* The host is the last to sleep when every capability idled while it
 * still spun for its mail: then the pass is its to run. */
void lwc_gc_host_sleeps(struct lwc_thread *t)
{
    atomic_store(&t->asleep, 1);                    /* seq_cst: Note [Stopping the world] */
    if (atomic_load(&lwc_rt.up) && all_idle(true))
        collect(t, true);
}

/* Note [The idle timer]
 * ~~~~~~~~~~~~~~~~~~~~~
 * With lwc_config_t.idle_gc_ms (or LWC_IDLE_GC_MS), a capability that has
 * slept that long towards a deadline runs an idle pass if every capability is
 * idle by then, although a sleeper or a service may wake something later:
 * GHC's -I.  A partial deadlock beside an unrelated timer is found; the price
 * is the exactness of the pass that runs by itself, since the sleeper may
 * later act on references it keeps in malloc memory, hence opt-in, for
 * programs that keep theirs in lwc_alloc memory or pins.  Sleepers pin
 * themselves, so such a pass never declares a whole-program deadlock.  It
 * runs once per sleep: a capability that wakes for nothing does not pass
 * again until it has slept afresh.  Called from sleep_thread (ptm.c) while
 * the capability is parked (lwc_gc_sleep_begin).  A pass already running
 * makes it step aside. */
int lwc_gc_idle_timer(struct lwc_thread *t)
{
    if (!atomic_load(&lwc_rt.up) || !all_idle(false))
        return 0;
    if (pthread_mutex_trylock(&lwc_detector.lock) != 0)
        return 0;
    int n = all_idle(false) ? collect_locked(t, true) : 0;
    pthread_mutex_unlock(&lwc_detector.lock);
    return n;
}

void lwc_gc_sleep_end(struct lwc_thread *t)
{
    if (t->cap) {
        safe_leave(&t->cap->safe);
    } else {
        safe_leave(&t->asleep);
        pthread_mutex_lock(&lwc_rt.lock);           /* Note [Plain OS threads] */
        t->sleep_sp = NULL;
        pthread_mutex_unlock(&lwc_rt.lock);
    }
}

/* ---- the pass ------------------------------------------------------------------------------- */

static void world_stop(struct lwc_thread *t, void *sp)
{
    if (t->cap && !atomic_load(&t->cap->safe))
        safe_enter(t, sp);
    atomic_store(&lwc_gc_request, 1);               /* seq_cst: Note [Stopping the world] */
    for (unsigned i = 0; i < lwc_cap_slots(); i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        for (unsigned n = 0; atomic_load(&c->busy) != CAP_IDLE && !atomic_load(&c->safe); n++)
            lwc_spin_step(n);
    }
}

static void world_start(void)
{
    atomic_store(&lwc_gc_request, 0);
    lwc_futex_wake(&lwc_gc_request, INT_MAX);
}

/* Note [When a pass runs by itself]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A pass reads references where lwc can see them; a program may keep some
 * where it cannot, in malloc memory (a spawned thread's argument block, say).
 * lwc_gc's caller has accepted the rule that such references be pinned; the
 * pass that runs by itself must be right without it.  It is, when nothing can
 * run: no SCont runs or waits in a scheduler's queue, every capability idles
 * with no timer due, and every plain OS thread lwc knows sleeps inside lwc.
 * Then no code at all will read that malloc memory until something outside
 * acts (a pin, the static data and the host's stack stand for what outside
 * can reach), and a blocked thread that no root reaches can never be woken.
 * So the idle pass acts only in that state: finding an SCont running, or
 * runnable in a live scheduler (Note [Orphans] in detect_wake.c), it wakes nobody. */
static bool nothing_runs(const struct pass *ps)
{
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].runs)
            return false;
    return true;
}

/* Deadlocked: nothing runs, and some SCont is blocked or stranded. */
static bool deadlocked(const struct pass *ps)
{
    if (!nothing_runs(ps))
        return false;
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].st == LWC_BLOCKED_ON_CONCDS || ps->sc[i].stranded)
            return true;
    return false;
}

#define PASS_TRIES 8

/* The mark, with the traced blocks held still (it reads every word
 * conservatively, which memcheck would report); the pins it counted then. */
static size_t mark(struct pass *ps)
{
    lwc_traced_lock();
    size_t npins = lwc_traced_npins();
#if LWC_VALGRIND
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    lwc_gc_mark(ps);
#if LWC_VALGRIND
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
    lwc_traced_unlock();
    return npins;
}

/* The pass, with the lock held and every capability stopped.  Returns how
 * many SConts it woke, or -1 if the world kept moving. */
static int pass_run(struct lwc_thread *t, const void *sp, bool idle)
{
    for (unsigned attempt = 0; attempt < PASS_TRIES; attempt++) {
        struct pass ps = { .caller = t, .caller_sp = sp };
        uint64_t seq = lwc_ptm_quiet_seq();
        size_t npins = mark(&ps);
        if (lwc_gc_debug())
            lwc_gc_debug_report(&ps);
        if (ps.nomem) {
            lwc_gc_pass_free(&ps);
            lwc_warn("out of memory in a detection pass: nothing woken");
            return 0;
        }
        if (atomic_load(&lwc_commit.seq) != seq) {
            if (lwc_gc_debug())
                fprintf(stderr, "lwc: gc: the sequence moved while marking\n");
            lwc_gc_pass_free(&ps);
            continue;
        }
        if (lwc_gc_debug())
            fprintf(stderr, "lwc: gc: %s pass: %zu SConts, %s\n", idle ? "an idle" : "a",
                    ps.nsc, nothing_runs(&ps) ? "none runs" : "some run");
        if (idle && !nothing_runs(&ps)) {
            lwc_gc_pass_free(&ps);                 /* Note [When a pass runs by itself] */
            return 0;
        }
        struct wake wk = { &ps, seq, LWC_EBLOCKED_CONCDS, false, 0, 0 };
        bool deadlock = false;
        size_t victims = 0, orphans = 0;
        for (size_t i = 0; i < ps.nsc; i++) {
            victims += lwc_gc_is_victim(&wk, &ps.sc[i]);
            orphans += ps.sc[i].stranded;
        }
        lwc_upcalls_t adopter;
        if (orphans && !lwc_gc_choose_adopter(&ps, t, &adopter)) {
            static atomic_flag warned = ATOMIC_FLAG_INIT;
            if (!atomic_flag_test_and_set(&warned))
                lwc_warn("%zu threads are stranded in a scheduler that nothing reaches, and "
                         "no live scheduler adopts orphans (lwc_sched_adopts_orphans)", orphans);
            orphans = 0;
        }
        if (!victims && !orphans && idle && npins == 0 && ps.foreign_asleep && deadlocked(&ps)) {
            deadlock = true;
            wk.err = LWC_EDEADLOCK;
            wk.only_hosts = true;
        }
        if (!victims && !orphans && !deadlock) {
            lwc_gc_pass_free(&ps);
            return 0;
        }
        bool woke = lwc_gc_wake(&wk);
        if (lwc_gc_debug())
            fprintf(stderr, "lwc: gc: woke %u%s\n", wk.woken, woke ? "" : ", the world moved");
        if (!woke) {
            lwc_gc_pass_free(&ps);
            continue;
        }
        unsigned adopted = orphans ? lwc_gc_adopt(&ps, &adopter) : 0;
        if (lwc_gc_debug() && orphans)
            fprintf(stderr, "lwc: gc: adopted %u\n", adopted);
        if (deadlock)
            lwc_gc_report(&ps);
        lwc_gc_pass_free(&ps);
        return (int)(wk.woken + adopted);
    }
    return -1;
}

/* The calling thread's record, if it may run a pass: the runtime is up,
 * and the thread is in no transaction and not draining. */
static int pass_caller(struct lwc_thread **out)
{
    if (!atomic_load(&lwc_rt.up))
        return LWC_EINVAL;
    struct lwc_thread *t = lwc_thread_get();
    if (!t)
        return LWC_ENOMEM;
    if (t->tx.active || t->draining)
        return LWC_EINVAL;
    *out = t;
    return LWC_OK;
}

static void detector_lock(struct lwc_thread *t)
{
    while (pthread_mutex_trylock(&lwc_detector.lock) != 0) {
        lwc_gc_safepoint(t);                        /* the pass that holds it may wait for us */
        sched_yield();
    }
}

/* An idle pass wanted while another ran: Note [Idle passes never lost]. */
static _Atomic int idle_again;

static int collect(struct lwc_thread *t, bool idle)
{
    if (idle) {
        /* Note [Idle passes never lost]
         * A capability that goes idle while a pass runs cannot wait for the
         * lock (the pass may be waiting for it to stop), so it leaves a
         * request in idle_again, and whoever holds the lock looks at it
         * again after unlocking: either the holder sees the request, or the
         * requester's trylock comes after the unlock and succeeds. */
        int n = 0;
        atomic_store(&idle_again, 1);
        while (pthread_mutex_trylock(&lwc_detector.lock) == 0) {
            while (atomic_exchange(&idle_again, 0))
                if (all_idle(true))
                    n += collect_locked(t, true);
            pthread_mutex_unlock(&lwc_detector.lock);
            if (!atomic_load(&idle_again))
                break;
        }
        return n;
    }
    detector_lock(t);
    int n = collect_locked(t, false);
    pthread_mutex_unlock(&lwc_detector.lock);
    return n;
}

/* One pass, with lwc_detector.lock held. */
static int collect_locked(struct lwc_thread *t, bool idle)
{
    __builtin_unwind_init();
    volatile char here = 0;
    bool was_safe = t->cap && atomic_load(&t->cap->safe);
    world_stop(t, (void *)&here);
    if (lwc_tracing())
        lwc_trace_put(t, TR_GC, 1, 0, 0);
    int n = pass_run(t, (const void *)&here, idle);
    if (lwc_tracing())
        lwc_trace_put(t, TR_GC, 0, n < 0 ? 0 : (uint64_t)n, 0);
    world_start();
    if (t->cap && !was_safe)
        safe_leave(&t->cap->safe);
    (void)here;
    return n < 0 ? 0 : n;
}

/* world_stop, for a pass that only looks: gives up after LOOK_WAIT_NS,
 * leaving the world running, and says which capability did not stop. */
#define LOOK_WAIT_NS 1000000000ull

static bool world_stop_within(struct lwc_thread *t, void *sp, unsigned *stuck)
{
    if (t->cap && !atomic_load(&t->cap->safe))
        safe_enter(t, sp);
    atomic_store(&lwc_gc_request, 1);
    uint64_t give_up = lwc_clock_ns() + LOOK_WAIT_NS;
    for (unsigned i = 0; i < lwc_cap_slots(); i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        for (unsigned n = 0; atomic_load(&c->busy) != CAP_IDLE && !atomic_load(&c->safe); n++) {
            lwc_spin_step(n);
            if ((n & 255) == 255 && lwc_clock_ns() > give_up) {
                *stuck = i;
                world_start();
                return false;
            }
        }
    }
    return true;
}

/* A pass that only looks (the thread view, detect_report.c): one mark with
 * the world stopped, fn(ps, stuck, arg) reads it, and nobody is woken.
 * What one mark saw is what the view prints, even if the world moved since:
 * it is a picture, not a verdict.  A capability that does not stop within a
 * second (it runs code that reaches no switch point) leaves the world
 * running: fn then gets no pass, and the number of that capability. */
int lwc_gc_look(void (*fn)(struct pass *ps, unsigned stuck, void *arg), void *arg)
{
    struct lwc_thread *t;
    int err = pass_caller(&t);
    if (err != LWC_OK)
        return err;
    detector_lock(t);
    __builtin_unwind_init();
    volatile char here = 0;
    bool was_safe = t->cap && atomic_load(&t->cap->safe);
    unsigned stuck = 0;
    bool stopped = world_stop_within(t, (void *)&here, &stuck);
    struct pass ps = { .caller = t, .caller_sp = (const void *)&here };
    if (stopped)
        mark(&ps);
    if (!ps.nomem)
        fn(stopped ? &ps : NULL, stuck, arg);
    lwc_gc_pass_free(&ps);
    if (stopped)
        world_start();
    if (t->cap && !was_safe)
        safe_leave(&t->cap->safe);
    pthread_mutex_unlock(&lwc_detector.lock);
    (void)here;
    return ps.nomem ? LWC_ENOMEM : LWC_OK;
}

/* ---- the public side ------------------------------------------------------------------------ */

int lwc_gc(void)
{
    struct lwc_thread *t;
    int err = pass_caller(&t);
    return err != LWC_OK ? err : collect(t, false);
}

int lwc_host_wait_begin(lwc_scont_t *s)
{
    if (!s || !lwc_scont_id(s))
        return LWC_EINVAL;
    atomic_store(&s->deadlocked, 0);
    atomic_store(&s->host_waits, 1);
    return LWC_OK;
}

int lwc_host_wait_end(lwc_scont_t *s)
{
    if (!s)
        return LWC_EINVAL;
    atomic_store(&s->host_waits, 0);
    return atomic_exchange(&s->deadlocked, 0) ? LWC_EDEADLOCK : LWC_OK;
}

/* Note [Scrubbing the stack]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A stack is scanned from its lowest live word up, and the live frames have
 * slots their function never wrote: padding, locals not yet set, spills of
 * registers that held something else.  Those slots hold whatever the frames
 * that were there before left behind.  A thread that spawns a child and then
 * blocks would so keep, in the frames of its blocking call, the child's
 * address from the spawn's frames at the same depth: the child, and all it
 * reaches, could never be found blocked for good.  So the spawn of rr and ws
 * ends by zeroing, from a frame of its own, the stack its callees used, and
 * a switch that blocks its SCont zeroes what the transaction body left (Note
 * [Switch targets] in scont.c).  The cost is a memset of SCRUB_BYTES per
 * spawn and of SCRUB_BODY_BYTES per block.  768 bytes cover the frames of
 * a spawn on rr and ws where they hold the child's address (measured with a
 * canary-filled stack: all but two words within 550 bytes of the spawner's
 * frame), and the frames of a blocking call that will lie there later;
 * every 256 bytes more are 16 more stores in every spawn. */
#if LWC_ASAN || LWC_TSAN
#define SCRUB_BYTES 2048        /* instrumented frames are larger */
#else
#define SCRUB_BYTES 768
#endif
#define SCRUB_BODY_BYTES 512

/* Each is its own frame, right below its caller's, of the size it zeroes.
 * Plain 16-byte stores, 16 to a loop: memset of a constant size becomes `rep
 * stos`, whose start-up cost was most of the scrub (9% of the ring
 * benchmark), so GCC must not turn the loop into one; and the array is not
 * volatile, which made GCC compute each address apart (three instructions a
 * store, not one): the empty asm that reads it keeps the stores. */
#if defined(__GNUC__) && !defined(__clang__)
#define SCRUB_NO_MEMSET __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define SCRUB_NO_MEMSET
#endif
typedef uint64_t scrub_chunk __attribute__((vector_size(16)));
#define SCRUB(name, bytes)                                              \
    __attribute__((noinline)) SCRUB_NO_MEMSET void name(void)           \
    {                                                                   \
        scrub_chunk dead[(bytes) / sizeof(scrub_chunk)];                \
        _Pragma("GCC unroll 16")                                        \
        for (size_t i = 0; i < sizeof dead / sizeof dead[0]; i++)       \
            dead[i] = (scrub_chunk){ 0, 0 };                            \
        __asm__ __volatile__("" : : "r"(dead) : "memory");              \
    }
SCRUB(lwc_stack_scrub, SCRUB_BYTES)
SCRUB(lwc_stack_scrub_body, SCRUB_BODY_BYTES)

/* From lwc_shutdown: the buffers kept between passes go. */
void lwc_gc_shutdown(void)
{
    pthread_mutex_lock(&lwc_detector.lock);
    free(lwc_detector.filter);
    free(lwc_detector.radix_count);
    lwc_detector.filter = NULL;
    lwc_detector.radix_count = NULL;
    pthread_mutex_unlock(&lwc_detector.lock);
}

int lwc_host_enter(const void *stack_lo)
{
    struct lwc_thread *t = lwc_thread_get();
    if (!t)
        return LWC_ENOMEM;
    if (t->current || t->cap)
        return LWC_EINVAL;
    t->host_lo = stack_lo;
    return LWC_OK;
}

void lwc_host_leave(void)
{
    struct lwc_thread *t = lwc_thread_peek();
    if (t)
        t->host_lo = NULL;
}

void lwc_scont_note_wait(lwc_scont_t *s, const char *what, const void *obj)
{
    if (!s)
        return;
    s->wait_what = what;
    s->wait_obj = obj;
}

