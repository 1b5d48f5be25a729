/* Outcalls: safe foreign calls, which leave the capability to the other
 * SConts while C code runs; callbacks from inside them; the monitor that
 * hands a capability on when a call lasts, and its spare workers. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

#include "futex.h"
#include "internal.h"
#include "trace.h"

/* Note [Outcalls]
 * ~~~~~~~~~~~~~~~
 * A safe call must let its capability's other SConts run while the callee
 * blocks, yet cost next to nothing when the callee returns at once, as most
 * do.  So the hand-off is lazy, as Go's: the caller marks its capability as
 * in a call and parks it for the detector (the callee cannot touch lwc, so
 * the capability is at a safe point: Note [Stopping the world] in
 * detect.c), and on return takes it back with one CAS, with no switch and
 * no upcall.  The monitor, a thread started by the first safe call, looks
 * at every capability each period; one in the same call as at its last look
 * has been in it a whole period, and the monitor takes it and hands it on.
 * The period is Go's sysmon's: 20 us, doubled after 50 looks that took
 * nothing, up to 10 ms; once it has backed off past DEEP_NS the monitor
 * sleeps until the next safe call kicks it (go_deep: never while a call it
 * could take is in progress, though no spare may be had for it yet).  So a
 * call that blocks holds the others up for two looks and a worker's
 * wake-up, about 120 us here (up to about DEEP_NS after a quiet spell),
 * and a program whose calls all return at once pays a futex wake-up per
 * burst of calls.  Eager hand-off, a worker woken for every call, costs a
 * wake-up, a switch between OS threads and the slow way back on each: 2
 * us and more, where the fast path is 25 to 40 ns ($LWC_CALL_HANDOFF=eager
 * makes every call eager, to measure it: hand_on_now).
 *
 * A capability's `call` word is the count of calls made on it, shifted left
 * by two, and a state: CALL_NONE; CALL_IN, in a call the monitor may take;
 * CALL_KEPT, in a call it may not take (below); CALL_TAKEN.  The count makes
 * each call's word unique, so the caller's CAS from its own word cannot
 * succeed on a later call's (the ABA of a bare state), and the monitor's
 * "the same call as last time" is one comparison (Go's syscalltick).
 *
 * Taking: the monitor CASes the word from IN to TAKEN, and from then on it
 * holds the capability.  If the caller's thread was the capability's worker
 * (the usual case: bound and host threads hold a capability whose worker
 * waits apart), a spare worker replaces it; the monitor gets that spare
 * before it takes (making one if none waits, up to the limit: no spare, no
 * take).  It then mails the worker the capability with no SCont, as an idle
 * one, which asks the caller's switch_to_next for work, with why
 * LWC_RUNNING (Note [Idling in a place of its own] in idle.c).  The worker
 * lowers the `safe` the caller raised (lwc_outcall_adopt), waiting out a
 * pass that saw it.
 *
 * Coming back from a taken call: the caller finds its CAS failed.  In one
 * transaction it becomes LWC_BLOCKED_ON_SCHED with no target and its own
 * unblock_thread queues it (lwc_scont_come_back), bound for the while to
 * this OS thread, which waits for it on its native stack like a bound
 * SCont's.  Whichever capability runs it next is mailed here, and this
 * thread becomes that capability's worker, the one it replaces a spare
 * (lwc_outcall_adopt).  So a call that only blocks ends on the OS thread
 * it began on, and capabilities and workers end as they began.  The slow
 * path costs a wake-up of the capability's worker and a mail here.
 *
 * A callback (lwc_outcall_callback) takes the capability back the same way
 * and runs its handler as the SCont's own code, which may switch: an
 * unbound SCont may then resume on another worker, and the C code below
 * the handler goes on there once it returns, as it would after a callback
 * from a plain call.  Pinning it would mean making the caller's worker a
 * bound thread for the handler's length, and a spare the capability's
 * worker meanwhile; a program whose C code keeps thread-locals or locks
 * across a callback that switches runs it in a bound thread instead.  So
 * code after fn (and after a callback's handler) finds its thread afresh.
 *
 * Kept calls: a copy SCont's frames lie on its capability's shared stack
 * (Note [Copy stacks] in copy.c), which the next SCont would overwrite, and
 * an SCont with no unblock_thread has no way back but its capability; their
 * calls keep the capability, as an unsafe call does, but are parked for the
 * detector all the same.
 *
 * The detector: while the word says IN or KEPT (and until the new worker
 * lowers `safe`) the capability is parked on the caller's SCont at the
 * call's frame.  Beyond that, the thread records the SCont and that frame
 * (`call_scont`, `call_sp`) from the start of the call until the SCont runs
 * again on a capability, and a pass counts such an SCont a root and scans
 * its stack from that frame or lower (detect_roots.c): the SCont reads
 * LWC_RUNNING, and, coming back, LWC_BLOCKED_ON_SCHED before its registers
 * are saved.  An error thrown at it waits in `pending` and is delivered as
 * the call returns (Note [Delivering errors] in exception.c). */

#define PERIOD_MIN_NS 20000u
#define PERIOD_MAX_NS 10000000u
#define DEEP_NS       640000u
#define QUIET_LOOKS   50
#define SPARES_DEFAULT 256

enum { MON_OFF, MON_POLLING, MON_DEEP, MON_STOPPED };

static struct {
    pthread_mutex_t    lock;        /* start and stop; spares */
    pthread_t          thread;
    bool               started;
    _Atomic int        state;
    _Atomic uint32_t   kick;        /* futex word: moves to wake the monitor */
    struct lwc_thread *spares;      /* workers of no capability, waiting for mail */
    unsigned           made, max;   /* spares made, and the limit */
    _Atomic int        interrupts;  /* calls with call_interrupt set: Note [Interruptible calls] */
    bool               eager;       /* $LWC_CALL_HANDOFF=eager: hand on at every call */
} mon = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- spares ------------------------------------------------------------------ */

static void spare_put(struct lwc_thread *t)
{
    pthread_mutex_lock(&mon.lock);
    t->spare_next = mon.spares;
    mon.spares = t;
    pthread_mutex_unlock(&mon.lock);
}

static struct lwc_thread *spare_get(void)
{
    pthread_mutex_lock(&mon.lock);
    struct lwc_thread *t = mon.spares;
    if (t) {
        mon.spares = t->spare_next;
        t->spare_next = NULL;
    } else if (mon.made < mon.max && (t = lwc_thread_new_worker())) {
        mon.made++;
    }
    pthread_mutex_unlock(&mon.lock);
    return t;
}

void lwc_outcall_adopt(struct lwc_thread *t, struct lwc_cap *cap)
{
    uint64_t w = atomic_load_explicit(&cap->call, memory_order_acquire);
    if (CALL_STATE(w) == CALL_TAKEN) {              /* handed on by the monitor */
        atomic_store_explicit(&cap->call, w & ~(uint64_t)3, memory_order_relaxed);
        lwc_gc_unpark(cap);
        return;
    }
    spare_put(cap->worker);                         /* back from a taken call */
    cap->worker = t;
}

/* ---- interruptible calls ------------------------------------------------------- */

/* Note [Interruptible calls]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~
 * GHC's `interruptible`: an error thrown at an SCont in such a call also
 * sends its OS thread LWC_INTERRUPT_SIGNAL (SIGURG, as Go's preemption),
 * whose handler does nothing and is installed without SA_RESTART, so a
 * system call that blocks returns EINTR and the callee can give up.  A
 * signal that arrives just before the callee enters its system call is
 * lost, so the monitor sends it again at each look until the call returns
 * (`call_interrupt` on the thread, counted in mon.interrupts, which keeps
 * the monitor polling).  The handler is installed by the first such call,
 * and only if the program has none of its own for the signal (the
 * program's then runs: it should not restart system calls either). */
#define LWC_INTERRUPT_SIGNAL SIGURG

static void on_interrupt(int sig)
{
    (void)sig;
}

static void interrupt_install(void)
{
    struct sigaction old;
    if (sigaction(LWC_INTERRUPT_SIGNAL, NULL, &old) == 0 &&
        (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        struct sigaction sa = { .sa_handler = on_interrupt };
        sigemptyset(&sa.sa_mask);
        sigaction(LWC_INTERRUPT_SIGNAL, &sa, NULL);
    }
}

/* Signal the threads in interruptible calls whose SCont has an error
 * waiting (only s's, if s is not NULL, marking it first). */
static void signal_calls(lwc_scont_t *s)
{
    pthread_mutex_lock(&lwc_rt.lock);
    LWC_EACH_KNOWN_THREAD(t) {
        lwc_scont_t *in = atomic_load(&t->call_scont);
        if (!in)
            in = atomic_load(&t->offload_scont);    /* Note [Calls from a hosted capability] */
        if (!in || !atomic_load_explicit(&t->call_interruptible, memory_order_relaxed) ||
            (s && in != s))
            continue;
        if (s && !atomic_exchange(&t->call_interrupt, 1))
            atomic_fetch_add(&mon.interrupts, 1);
        if (atomic_load(&t->call_interrupt))
            pthread_kill(t->pthread, LWC_INTERRUPT_SIGNAL);
    }
    pthread_mutex_unlock(&lwc_rt.lock);
}

static _Atomic bool interruptible_used;

void lwc_outcall_interrupt(lwc_scont_t *s)
{
    if (atomic_load_explicit(&interruptible_used, memory_order_relaxed))
        signal_calls(s);
}

/* ---- the monitor --------------------------------------------------------------- */

/* Take c, whose holder has been in call `w` for a period, and hand it on.
 * *spare is a worker of no capability, used up if the caller's thread was
 * c's worker. */
static void take(struct lwc_cap *c, uint64_t w, struct lwc_thread **spare)
{
    uint64_t expect = w;
    if (!atomic_compare_exchange_strong(&c->call, &expect, (w & ~(uint64_t)3) | CALL_TAKEN))
        return;                                     /* it came back */
    lwc_scont_t *s = c->park_scont;
    lwc_scont_ref(s);                               /* lwc_idle_run lets go */
    c->idle_for = s;
    c->idle_why = LWC_RUNNING;
    lwc_scont_load_upcalls(s, &c->idle_up);
    if (c->worker == c->park_thread) {
        c->worker = *spare;
        *spare = NULL;
    }
    lwc_thread_mail(c->worker, c, NULL);
}

/* One look at every capability; whether it took one. */
static bool look(uint64_t *seen, struct lwc_thread **spare)
{
    bool took = false;
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        uint64_t w = atomic_load_explicit(&c->call, memory_order_acquire);
        uint64_t last = seen[i];
        seen[i] = w;
        if (CALL_STATE(w) != CALL_IN || w != last)
            continue;
        if (!*spare && !(*spare = spare_get()))
            continue;                               /* at the limit: it keeps it */
        take(c, w, spare);
        took = true;
    }
    return took;
}

/* Sleep until kicked from now on?  Not while a capability is in a call
 * that may be taken: one that began just before the state changed saw
 * POLLING and did not kick.  Both sides store, then load, seq_cst. */
static bool go_deep(void)
{
    int polling = MON_POLLING;
    if (atomic_load(&mon.interrupts) ||
        !atomic_compare_exchange_strong(&mon.state, &polling, MON_DEEP))
        return false;
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        if (CALL_STATE(atomic_load(&lwc_rt.caps[i].call)) == CALL_IN) {
            int deep = MON_DEEP;
            atomic_compare_exchange_strong(&mon.state, &deep, MON_POLLING);
            return false;
        }
    }
    return true;
}

static void *monitor_main(void *arg)
{
    (void)arg;
    /* The kernel's default timer slack (50 us) would stretch each 20 us
     * period to 70, and a blocked call's hold-up with it. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    uint64_t *seen = calloc(lwc_rt.ncaps, sizeof *seen);
    struct lwc_thread *spare = NULL;
    uint64_t period = PERIOD_MIN_NS;
    unsigned quiet = 0;
    while (seen && atomic_load(&mon.state) != MON_STOPPED) {
        uint32_t k = atomic_load(&mon.kick);
        if (period >= DEEP_NS && go_deep())
            lwc_futex_wait(&mon.kick, k);           /* until a call kicks */
        else
            lwc_futex_wait_until(&mon.kick, k, lwc_clock_ns() + period);
        if (atomic_load(&mon.kick) != k) {          /* kicked: a call began */
            period = PERIOD_MIN_NS;
            quiet = 0;
        }
        if (atomic_load(&mon.state) == MON_STOPPED)
            break;
        if (atomic_load(&mon.interrupts))
            signal_calls(NULL);
        if (look(seen, &spare)) {
            period = PERIOD_MIN_NS;
            quiet = 0;
        } else if (++quiet > QUIET_LOOKS && period < PERIOD_MAX_NS) {
            period *= 2;
        }
    }
    if (spare)
        spare_put(spare);
    free(seen);
    return NULL;
}

/* A call begins while the monitor is off or asleep for good. */
static __attribute__((noinline, cold)) void kick(void)
{
    pthread_mutex_lock(&mon.lock);
    int st = atomic_load(&mon.state);
    if (st == MON_OFF && atomic_load(&lwc_rt.up)) {
        atomic_store(&mon.state, MON_POLLING);
        if (pthread_create(&mon.thread, NULL, monitor_main, NULL) == 0)
            mon.started = true;
        else
            atomic_store(&mon.state, MON_OFF);      /* no hand-off: calls keep their capability */
    } else if (st == MON_DEEP) {
        atomic_store(&mon.state, MON_POLLING);
        atomic_fetch_add(&mon.kick, 1);
        lwc_futex_wake(&mon.kick, 1);
    }
    pthread_mutex_unlock(&mon.lock);
}

/* The eager hand-off, for measuring it against the lazy one (Note
 * [Outcalls]): the caller takes its own capability and hands it on before
 * the callee runs. */
static __attribute__((noinline, cold)) void hand_on_now(struct lwc_cap *cap, uint64_t w)
{
    struct lwc_thread *spare = spare_get();
    if (!spare)
        return;
    take(cap, w, &spare);
    if (spare)
        spare_put(spare);
}

void lwc_outcall_init(void)
{
    /* For measuring: eager hands every call on, never none (no monitor:
     * the fast path alone, as tools/bench-instr.sh counts it). */
    const char *h = getenv("LWC_CALL_HANDOFF");
    mon.eager = h && !strcmp(h, "eager");
    bool never = h && !strcmp(h, "never");
    if (h && *h && !mon.eager && !never && strcmp(h, "lazy"))
        lwc_warn("ignoring LWC_CALL_HANDOFF=%s (want lazy, eager or never)", h);
    const char *v = getenv("LWC_MAX_CALL_THREADS");
    char *end;
    unsigned long n = v && *v ? strtoul(v, &end, 10) : 0;
    if (v && *v && (*end || n > 100000)) {
        lwc_warn("ignoring LWC_MAX_CALL_THREADS=%s (want 0..100000)", v);
        n = SPARES_DEFAULT;
    }
    mon.max = v && *v ? (unsigned)n : SPARES_DEFAULT;
    mon.made = 0;
    mon.spares = NULL;
    atomic_store(&mon.state, never ? MON_POLLING : MON_OFF);   /* never: as if it ran */
}

void lwc_outcall_shutdown(void)
{
    pthread_mutex_lock(&mon.lock);
    atomic_store(&mon.state, MON_STOPPED);
    atomic_fetch_add(&mon.kick, 1);
    lwc_futex_wake(&mon.kick, 1);
    bool started = mon.started;
    mon.started = false;
    pthread_mutex_unlock(&mon.lock);
    if (started)
        pthread_join(mon.thread, NULL);
}

/* ---- the call ------------------------------------------------------------------ */

/* Leave t's capability for a call whose frames the detector scans from sp. */
static inline void call_begin(struct lwc_thread *t, void *sp)
{
    lwc_scont_t *s = t->current;
    struct lwc_cap *cap = t->cap;
    bool keeps = cap->hosted || lwc_scont_home(s) ||
                 !atomic_load_explicit(&s->up, memory_order_relaxed)->unblock_thread;
    uint64_t w = ((atomic_load_explicit(&cap->call, memory_order_relaxed) & ~(uint64_t)3) + 4) |
                 (keeps ? CALL_KEPT : CALL_IN);
    cap->park_sp = sp;
    cap->park_scont = s;
    cap->park_thread = t;
    t->call_sp = sp;
    t->call_cap = cap;
    t->call_word = w;
    atomic_store_explicit(&t->call_scont, s, memory_order_release);   /* after call_sp */
    atomic_store_explicit(&cap->call, w, memory_order_release);
    atomic_store(&cap->safe, 1);                    /* seq_cst: Note [Stopping the world] */
    /* After the call word, and seq_cst, as go_deep reads them the other way
     * round (the release store of the word is ordered before this load by
     * the seq_cst store of `safe` between: a full fence on x86-64, and an
     * stlr before an ldar on aarch64). */
    if (__builtin_expect(atomic_load(&mon.state) != MON_POLLING, 0) && !keeps)
        kick();
    if (__builtin_expect(mon.eager, 0) && !keeps)
        hand_on_now(cap, w);
}

static lwc_word_t come_back_body(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_scont_come_back(tx);
    return 0;
}

/* The call's capability was taken: come back through the scheduler, on
 * this OS thread.  Returns the error to deliver (with `deliver`). */
static __attribute__((noinline)) int come_back(struct lwc_thread *t, bool deliver)
{
    lwc_scont_t *s = t->current;
    bool bind = !s->bound;
    t->cap = NULL;
    if (bind)
        __atomic_store_n(&s->bound, t, __ATOMIC_RELAXED);
    if (!deliver)
        lwc_scont_hold_errors(s, true);
    int err;
    for (unsigned tries = 0;; tries++) {
        err = lwc_tx_run(come_back_body, NULL, NULL, true);
        t = lwc_thread_reload();
        if (t->cap)
            break;
        if (!tries)
            lwc_warn("SCont %llu, back from a safe call, could not be queued by its "
                     "unblock_thread upcall (%s): trying again",
                     (unsigned long long)lwc_scont_id(s), lwc_strerror(err));
        sched_yield();
    }
    if (!deliver)
        lwc_scont_hold_errors(s, false);
    if (bind)
        __atomic_store_n(&s->bound, NULL, __ATOMIC_RELAXED);
    return deliver ? err : LWC_OK;
}

/* Take t's capability back after a call (or in a callback, with deliver
 * false: an error thrown meanwhile stays pending for the call's end). */
static inline int call_end(struct lwc_thread *t, bool deliver)
{
    uint64_t w = t->call_word;
    struct lwc_cap *cap = t->call_cap;
    int err = LWC_OK;
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(
                             &cap->call, &w, w & ~(uint64_t)3, memory_order_acq_rel,
                             memory_order_relaxed), 1)) {
        lwc_gc_unpark(cap);
        if (deliver)
            err = lwc_scont_take_error(t->current, LWC_BLOCKED_ON_SCHED);
    } else {
        err = come_back(t, deliver);
    }
    atomic_store_explicit(&t->call_scont, NULL, memory_order_relaxed);
    if (__builtin_expect(atomic_load_explicit(&t->call_interruptible, memory_order_relaxed), 0) &&
        atomic_exchange(&t->call_interrupt, 0))
        atomic_fetch_sub(&mon.interrupts, 1);
    return err;
}

/* ---- calls from a hosted capability ---------------------------------------------- */

/* Note [Calls from a hosted capability]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A hosted capability is its host's own thread (Note [Hosted capabilities]
 * in host.c).  Handed on as above, the host's other SConts would run on a
 * thread the host does not own; kept, a call that blocks would block the
 * host's event loop.  So the call goes to a spare worker, as libuv's thread
 * pool takes blocking work off its loop, and the SCont waits for it as it
 * would for a data structure:
 *  - the job is mailed to the spare, and the SCont blocks
 *    (LWC_BLOCKED_ON_CONCDS, through its own switch_to_next) unless the
 *    job's phase, a PVar, says the call is over already; it is pinned
 *    while it waits (a root: the call will wake it), with errors thrown
 *    meanwhile held, to be returned once the call is over, as on the other
 *    paths;
 *  - the spare runs fn, keeps its errno, and moves the phase to DONE and
 *    wakes the SCont (lwc_unblock_thread: its scheduler's unblock_thread, a
 *    loop's queue and wake hook) in one transaction, so that the wake is
 *    never lost: the block either committed first or sees DONE;
 *  - a callback from inside fn (lwc_outcall_callback on the spare) asks the
 *    SCont to run it: the spare posts it in the job, moves the phase to
 *    CALLBACK and wakes the SCont likewise, and waits; the SCont runs it as
 *    its own code, in its host's turn, moves the phase back, lets the spare
 *    go on, and blocks again.
 * An interruptible call has the spare signalled (`offload_scont`, Note
 * [Interruptible calls]).  The job lives on the SCont's stack, which does
 * not move while it waits; a copy SCont's does (copy.c), so it keeps the
 * capability for the call, as does an SCont with no unblock_thread, or one
 * that finds no spare ($LWC_MAX_CALL_THREADS).  fn runs on another OS
 * thread than the caller's: its thread-locals are the spare's. */
enum { OFF_CALL, OFF_CALLBACK, OFF_DONE };

struct offload {
    void (*fn)(void *);
    void *arg;
    lwc_scont_t *s;
    bool interruptible;
    int err_no;
    void (*callback)(void *);
    void *callback_arg;
    lwc_pvar_t phase;                       /* OFF_*: the SCont blocks only on OFF_CALL */
    _Atomic uint32_t go;                    /* futex word: a callback has run */
};

static lwc_word_t offload_block(lwc_tx_t *tx, void *arg)
{
    struct offload *job = arg;
    if (lwc_pvar_read(tx, &job->phase) == OFF_CALL)
        lwc_switch_to_next(tx, LWC_BLOCKED_ON_CONCDS);
    return 0;
}

struct offload_move { struct offload *job; lwc_word_t phase; };

/* The phase moves, and the SCont wakes if it waits, in one transaction: the
 * SCont's block reads the phase, so it either blocks first and is woken, or
 * sees the new phase and does not block. */
static lwc_word_t offload_move_body(lwc_tx_t *tx, void *arg)
{
    struct offload_move *m = arg;
    lwc_pvar_write(tx, &m->job->phase, m->phase);
    if (m->phase != OFF_CALL)
        lwc_unblock_thread(tx, m->job->s);
    return 0;
}

static void offload_move(struct offload *job, lwc_word_t phase)
{
    struct offload_move m = { job, phase };
    while (lwc_atomically(offload_move_body, &m, NULL) != LWC_OK && !atomic_load(&lwc_rt.stopping))
        sched_yield();
}

void lwc_outcall_run_job(struct lwc_thread *t)
{
    struct offload *job = t->mail_job;
    t->mail_job = NULL;
    t->offload = job;
    atomic_store_explicit(&t->call_interruptible, job->interruptible, memory_order_relaxed);
    atomic_store(&t->offload_scont, job->s);
    job->fn(job->arg);
    job->err_no = errno;
    atomic_store(&t->offload_scont, NULL);
    atomic_store_explicit(&t->call_interruptible, false, memory_order_relaxed);
    if (atomic_exchange(&t->call_interrupt, 0))
        atomic_fetch_sub(&mon.interrupts, 1);
    t->offload = NULL;
    offload_move(job, OFF_DONE);                    /* the job may be gone after this */
    spare_put(t);
}

/* lwc_outcall_callback from a spare's job: the SCont runs fn (the Note). */
static void offload_callback(struct lwc_thread *t, void (*fn)(void *), void *arg)
{
    struct offload *job = t->offload;
    bool interruptible = atomic_load_explicit(&t->call_interruptible, memory_order_relaxed);
    atomic_store_explicit(&t->call_interruptible, false, memory_order_relaxed);
    atomic_store(&t->offload_scont, NULL);
    job->callback = fn;
    job->callback_arg = arg;
    atomic_store(&job->go, 0);
    offload_move(job, OFF_CALLBACK);
    while (!atomic_load(&job->go))
        lwc_futex_wait(&job->go, 0);
    atomic_store(&t->offload_scont, job->s);
    atomic_store_explicit(&t->call_interruptible, interruptible, memory_order_relaxed);
}

/* errno = e on the OS thread that runs the caller now.  A function of its
 * own: errno is *__errno_location(), a function the compiler may call once
 * and reuse, and a callback (lwc_outcall_callback) may resume its SCont on
 * another OS thread (Note [TLS across switches] in cap.c), whose errno is the
 * one to set: ThreadSanitizer caught the old thread's being written. */
static __attribute__((noinline)) void errno_here(int e)
{
    errno = e;
}

/* The call on a spare, the calling SCont waiting (the Note).  False: no
 * spare, the caller makes the call itself. */
static bool offload_call(struct lwc_thread *t, void (*fn)(void *), void *arg, bool interruptible,
                         int *err)
{
    lwc_scont_t *s = t->current;
    if (lwc_scont_home(s) || !atomic_load_explicit(&s->up, memory_order_relaxed)->unblock_thread)
        return false;
    struct lwc_thread *spare = spare_get();
    if (!spare)
        return false;
    struct offload job = { .fn = fn, .arg = arg, .s = s, .interruptible = interruptible };
    lwc_pvar_init(&job.phase, OFF_CALL);
    lwc_pin(s);
    lwc_scont_hold_errors(s, true);
    spare->mail_job = &job;
    lwc_thread_mail(spare, NULL, NULL);
    for (;;) {
        lwc_atomically(offload_block, &job, NULL);  /* errors are held: it waits */
        lwc_word_t phase = lwc_pvar_read(NULL, &job.phase);
        if (phase == OFF_DONE)
            break;
        if (phase == OFF_CALLBACK) {
            job.callback(job.callback_arg);
            offload_move(&job, OFF_CALL);
            atomic_store(&job.go, 1);
            lwc_futex_wake(&job.go, 1);
        }
    }
    lwc_pvar_fini(&job.phase);
    lwc_scont_hold_errors(s, false);
    lwc_unpin(s);
    errno = job.err_no;
    *err = lwc_scont_take_error(s, LWC_BLOCKED_ON_SCHED);
    return true;
}

/* Not inlined: its frame holds the callee-saved registers that
 * __builtin_unwind_init spilled, above `here`, for the detector to scan
 * while the callee runs (it may keep them anywhere). */
static __attribute__((noinline)) int outcall(void (*fn)(void *), void *arg, bool interruptible)
{
    if (!fn)
        return LWC_EINVAL;
    struct lwc_thread *t = lwc_thread_peek();
    if (!t || !t->current || atomic_load_explicit(&t->call_scont, memory_order_relaxed)) {
        fn(arg);                    /* a plain OS thread, or a call inside a call */
        return LWC_OK;
    }
    if (t->tx.active || t->draining)
        return LWC_EINVAL;
    int err;
    if (__builtin_expect(t->cap->hosted, 0) && offload_call(t, fn, arg, interruptible, &err))
        return err;
    __builtin_unwind_init();
    volatile char here = 0;
    atomic_store_explicit(&t->call_interruptible, interruptible, memory_order_relaxed);
    call_begin(t, (void *)&here);
    if (lwc_tracing())
        lwc_trace_put(t, TR_CALL, 1, lwc_scont_id(t->current), 0);
    fn(arg);
    int e = errno;
    t = lwc_thread_reload();              /* a callback in fn may have moved s */
    if (lwc_tracing())
        lwc_trace_put(NULL, TR_CALL, 0, 0, 0);
    err = call_end(t, true);
    atomic_store_explicit(&t->call_interruptible, false, memory_order_relaxed);
    errno = e;                  /* the same OS thread: come_back binds s to it */
    (void)here;
    return err;
}

int lwc_outcall(void (*fn)(void *), void *arg)
{
    return outcall(fn, arg, false);
}

int lwc_outcall_interruptible(void (*fn)(void *), void *arg)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, interrupt_install);
    atomic_store_explicit(&interruptible_used, true, memory_order_relaxed);
    struct lwc_thread *t = lwc_thread_peek();
    if (t && atomic_exchange(&t->call_interrupt, 0))
        atomic_fetch_sub(&mon.interrupts, 1);       /* a throw that came as a call ended */
    return outcall(fn, arg, true);
}

int lwc_outcall_callback(void (*fn)(void *), void *arg)
{
    if (!fn)
        return LWC_EINVAL;
    struct lwc_thread *t = lwc_thread_peek();
    if (t && t->offload && !t->current) {
        offload_callback(t, fn, arg);               /* Note [Calls from a hosted capability] */
        return LWC_OK;
    }
    lwc_scont_t *s = t ? t->current : NULL;
    if (!s || atomic_load_explicit(&t->call_scont, memory_order_relaxed) != s) {
        fn(arg);                    /* not inside a safe call: nothing to take back */
        return LWC_OK;
    }
    /* The detector scans from the call's frame again after: below it lie
     * the callee's C frames and, once fn returns, nothing of the SCont's.
     * fn may switch, and s resume on another worker: the call goes on
     * there (Note [Outcalls]). */
    void *sp = t->call_sp;
    bool interruptible = atomic_load_explicit(&t->call_interruptible, memory_order_relaxed);
    int e = errno;
    call_end(t, false);
    atomic_store_explicit(&t->call_interruptible, false, memory_order_relaxed);
    fn(arg);
    t = lwc_thread_reload();                        /* Note [TLS across switches] in cap.c */
    atomic_store_explicit(&t->call_interruptible, interruptible, memory_order_relaxed);
    call_begin(t, sp);
    if (atomic_load_explicit(&t->call_interruptible, memory_order_relaxed) &&
        lwc_pvar_load(&s->pending))
        lwc_outcall_interrupt(s);                   /* thrown meanwhile: signal again */
    errno_here(e);
    return LWC_OK;
}

struct plain_call { void *(*fn)(void *); void *arg; void *result; };

static void plain_call(void *arg)
{
    struct plain_call *pc = arg;
    pc->result = pc->fn(pc->arg);
}

int lwc_call_safe(void *(*fn)(void *), void *arg, void **result)
{
    if (!fn)
        return LWC_EINVAL;
    struct plain_call pc = { fn, arg, NULL };
    int err = lwc_outcall(plain_call, &pc);
    if (result)
        *result = pc.result;
    return err;
}
