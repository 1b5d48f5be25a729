/* lwc: capabilities and entry from the host program.
 *
 * A capability is the right to run SConts; each is served by an OS thread.  Idle
 * capabilities sleep in the kernel and wake when work arrives. */
#ifndef LWC_CAP_H
#define LWC_CAP_H

#include <lwc/base.h>
#include <lwc/scont.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lwc_config {
    unsigned ncaps;       /* 0: $LWC_CAPS, else 1 */
    size_t   stack_size;  /* default SCont stack in bytes; 0: $LWC_STACK_SIZE, else 256 KiB */
    /* Opt-in (GHC's -I): once every capability has been idle this long, run a
     * detection pass even while a sleeper or a service will wake something
     * later.  Only for programs that keep every reference a thread may still
     * use in lwc_alloc memory or pins (<lwc/detect.h>).  0: $LWC_IDLE_GC_MS,
     * else off. */
    unsigned idle_gc_ms;
    /* The kind of stack an SCont gets when its attr names none: 0 (DEFAULT):
     * $LWC_STACK_KIND ("guarded", "plain" or "copy"), else guarded. */
    lwc_stack_kind_t stack_kind;
    /* Nonzero: start no capability of the runtime's own (ncaps is ignored):
     * only hosted capabilities (below) run SConts, on threads the program
     * owns.  liblwc-loop's lwc_loop_new starts the runtime so. */
    int      no_workers;
} lwc_config_t;

/* Start the runtime (cfg NULL = defaults).  LWC_EBUSY if it is already running,
 * LWC_EINVAL for a bad config, LWC_ENOMEM. */
LWC_API int      lwc_init(const lwc_config_t *cfg);
/* Stop every capability and free every SCont; handles become invalid.  Call it
 * from a plain OS thread once the capabilities are idle or asleep in a retry:
 * it waits for any that are running code. */
LWC_API void     lwc_shutdown(void);
LWC_API unsigned lwc_cap_count(void);            /* with a worker; 0 before lwc_init */
LWC_API unsigned lwc_cap_self(void);             /* the capability running the caller; -1u outside */
/* runOnIdleHEC: run s on an idle capability.  LWC_ESTATE if s cannot be
 * resumed (running, completed), whether a capability is idle or not;
 * LWC_EBUSY if none is idle; LWC_EINVAL before lwc_init. */
LWC_API int      lwc_cap_start(lwc_scont_t *s);
/* The calling OS thread enters the runtime and returns when s completes: s becomes
 * bound to this OS thread and runs on an idle capability, or, when none is idle,
 * is made runnable through its unblock_thread upcall.  LWC_EINVAL inside an SCont
 * or for a bound SCont, LWC_ESTATE if s cannot be resumed, LWC_EBUSY if no
 * capability is idle and s has no unblock_thread upcall. */
LWC_API int      lwc_eval(lwc_scont_t *s);
/* The same, but s is always made runnable through its unblock_thread
 * upcall, never started on an idle capability: for an SCont of a scheduler
 * that counts the capabilities it runs on (rr, ws), which an idle one taken
 * behind its back would upset.  LWC_EINVAL if s has no unblock_thread. */
LWC_API int      lwc_eval_queued(lwc_scont_t *s);

/* ---- Hosted capabilities --------------------------------------------------------
 *
 * A capability that no OS thread of the runtime serves: the program's own
 * thread (a foreign event loop's) runs SConts on it, inside
 * lwc_cap_host_run, and between those turns nothing runs on it.  Its
 * scheduler gives the capability back (switch_to_next returns NULL) rather
 * than idling it in a retry, which would block the host's thread there; a
 * bound SCont it runs runs on its own OS thread while the host waits, as
 * for a blocking call; a safe foreign call there runs on a spare worker
 * while the SCont waits, so that the host's thread goes on (Note [Calls
 * from a hosted capability] in substrate/outcall.c).  No
 * lwc_cap_start or lwc_eval ever takes one.  liblwc-loop is built on them
 * (Note [Hosted capabilities] in substrate/host.c). */

/* sched: the upcalls of the scheduler the capability works for (its env is
 * what the detector keeps live between turns, as it does the scheduler an
 * idle capability sleeps in).  wake(ud) is called, from any OS thread, when
 * the host should take a turn sooner than it was told (a service came due
 * earlier); NULL for none.  *id gets the capability's number (lwc_cap_self
 * inside a turn).  LWC_EINVAL before lwc_init, for id NULL or sched without
 * switch_to_next; LWC_EBUSY once 64 exist. */
LWC_API int lwc_cap_host_new(const lwc_upcalls_t *sched, void (*wake)(void *ud), void *ud,
                             unsigned *id);
/* LWC_EINVAL for an id that is not a hosted capability, LWC_EBUSY during a turn. */
LWC_API int lwc_cap_host_free(unsigned id);
/* One turn on the calling OS thread: serve the services that are due and
 * look at the poller without blocking; then, if pick names an SCont (it
 * runs inside a transaction that marks that SCont running on capability
 * id), run it there, and whatever the switches that follow name, until a
 * switch_to_next gives the capability back.  *next_deadline (if not NULL)
 * gets the earliest deadline any service has (LWC_NEVER: none): the host
 * takes its next turn by then.  LWC_OK; LWC_EINVAL for a bad id or from
 * inside an SCont or a turn, LWC_EBUSY while another thread takes a turn on
 * id; pick's transaction's error (it ran nothing). */
LWC_API int lwc_cap_host_run(unsigned id, lwc_scont_t *(*pick)(lwc_tx_t *tx, void *arg),
                             void *arg, uint64_t *next_deadline);

/* ---- Safe foreign calls -------------------------------------------------------
 *
 * GHC's safe call, for C: the calling SCont leaves its capability to the
 * other SConts while fn(arg) runs on its own OS thread, so a callee that
 * blocks (read, a lock, a long computation) stops no one else.  A callee
 * that returns within about 20 us takes the capability back at once (no
 * switch, no upcall); one that lasts longer finds the capability handed
 * to another OS thread (a worker from a pool, up to $LWC_MAX_CALL_THREADS,
 * default 256, at a time) and comes back through its scheduler's
 * unblock_thread, on the same OS thread.  errno after the call is the
 * callee's.  A thread in a safe call is a root for the detector, and an
 * error thrown at it (lwc_throw_to, lwc_kill) is returned when the call
 * returns, never inside C code; the call itself has run all the same.
 *
 * On a hosted capability (a loop's thread) the call runs on a spare
 * worker instead, while the SCont waits as for an MVar and the host's
 * thread goes on; thread-locals in fn are the spare's.
 *
 * The callee must not call into lwc, except through lwc_outcall_callback
 * (closures in <lwc/ffi.h> do).  A copy SCont (LWC_STACK_COPY), or one with
 * no unblock_thread upcall, keeps its capability for the call, as an unsafe
 * call would: its way back needs it.  From a plain OS thread, or inside a
 * safe call, fn simply runs.  LWC_EINVAL (and fn is not called) inside a
 * transaction or for fn NULL.  See Note [Outcalls] in substrate/outcall.c. */
LWC_API int lwc_outcall(void (*fn)(void *), void *arg);
/* GHC's `interruptible`: the same, but an error thrown at the caller during
 * the call also sends its OS thread SIGURG (again at each of the monitor's
 * looks until the call returns), with a handler that does nothing and does
 * not restart system calls, so a blocking system call in the callee
 * returns EINTR.  The handler is installed by the first such call unless
 * the program has one for SIGURG.  See Note [Interruptible calls]. */
LWC_API int lwc_outcall_interruptible(void (*fn)(void *), void *arg);
/* The same for a function with a result, stored at *result (if not NULL). */
LWC_API int lwc_call_safe(void *(*fn)(void *), void *arg, void **result);
/* From C code running inside a safe call of the current SCont (a callback
 * a C library calls): run fn(arg) as that SCont's own code, holding a
 * capability again, then leave it for the rest of the call.  Anywhere else
 * fn simply runs.  An error thrown meanwhile waits for the call's end.
 * If fn switches, an unbound SCont may resume on another OS thread, and the
 * C code that called back goes on there.  LWC_OK; LWC_EINVAL for fn NULL. */
LWC_API int lwc_outcall_callback(void (*fn)(void *), void *arg);

/* ---- Time and idle services ------------------------------------------------
 *
 * A module whose work comes due at points in time (timers; later fd polls)
 * registers a service instead of running an OS thread of its own.  The runtime
 * calls the service's poll function from a capability that has nothing to run,
 * before it sleeps in the kernel (it sleeps no later than the earliest deadline
 * any service asked for), and from busy capabilities at switch points once that
 * deadline has passed.  See Note [Idle services] in substrate/service.c. */

#define LWC_NEVER UINT64_MAX

/* The monotonic clock, in nanoseconds (CLOCK_MONOTONIC). */
LWC_API uint64_t lwc_clock_ns(void);

/* Run what is due at `now` and return the next deadline (LWC_NEVER: none).
 * Called from any capability, several at once: it must be thread-safe, and
 * must not switch, block or retry; it may run transactions. */
typedef uint64_t (*lwc_service_poll_fn)(void *arg, uint64_t now);

/* Register a service for the life of the process (a second registration of
 * the same pair is LWC_OK and changes nothing).  LWC_EINVAL for a NULL poll,
 * LWC_ENOMEM once 8 services are registered. */
LWC_API int  lwc_service_add(lwc_service_poll_fn poll, void *arg);

/* A service has work due at `deadline`: from now on some capability polls it
 * by then (an idle one wakes; a busy one polls at a switch point).  Call it
 * after the work is where poll will find it. */
LWC_API void lwc_service_due(uint64_t deadline);
/* The earliest deadline any service has reported (LWC_NEVER: none). */
LWC_API uint64_t lwc_service_next_deadline(void);

/* ---- The poller ------------------------------------------------------------
 *
 * A module that learns of events from the kernel (liblwc-io's fd waits:
 * epoll) registers a poller instead of running an OS thread of its own.
 * While it is armed (lwc_poller_arm: something waits on it), one capability
 * with nothing to run blocks in wait(arg, deadline) instead of sleeping in
 * the kernel, then calls handle(arg) once it is awake; busy capabilities
 * call wait(arg, 0) and handle(arg) at switch points about every 50 us.
 * Calls of wait and handle never overlap.  wait blocks until something is
 * ready, wake(arg) is called (from any thread), or `deadline` on
 * lwc_clock_ns() (LWC_NEVER: none; 0: do not block), and only notes what it
 * found: it may not call into lwc.  handle acts on it with transactions
 * (lwc_unblock_thread of the waiting threads), and may not switch or block.
 * See Note [The poller] in substrate/service.c. */
typedef struct lwc_poller {
    void (*wait)(void *arg, uint64_t deadline);
    void (*handle)(void *arg);
    void (*wake)(void *arg);
    void *arg;
} lwc_poller_t;

/* Register the process's poller (a second registration of the same one is
 * LWC_OK).  LWC_EINVAL for a NULL or incomplete p, LWC_EBUSY if another is
 * registered. */
LWC_API int  lwc_poller_set(const lwc_poller_t *p);
/* One more, or one less, thing waits on the poller: it is armed while more
 * are armed than disarmed. */
LWC_API void lwc_poller_arm(void);
LWC_API void lwc_poller_disarm(void);

#ifdef __cplusplus
}
#endif
#endif
