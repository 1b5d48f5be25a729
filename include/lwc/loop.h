/* lwc: the foreign-loop scheduler (liblwc-loop), driven tick by tick by a
 * host's own event loop.
 *
 * The host (a libuv program, a GUI main loop, a game loop, an embedding's
 * epoll loop, a wasm host) owns its OS thread and its loop, and lwc never
 * blocks either: every thread of a loop runs on the host's thread, inside
 * the host's calls (lwc_loop_tick, the evaluations), and lwc starts no OS
 * thread for it.  Between ticks the host waits for what the loop reports:
 * the next timer deadline, the fds its threads wait for, and the wake hook,
 * which lwc calls from any OS thread when a thread of the loop becomes
 * runnable (a token settled, an MVar another scheduler's thread filled).
 *
 * Every call here but the token calls and the wake hook belongs to the OS
 * thread that made the loop (LWC_EINVAL from another).  A program written
 * against <lwc/sched.h> links against -llwc-loop too: its lwc_main ticks a
 * loop on the calling thread, sleeping in epoll between ticks.  README.md,
 * "Driving lwc from your event loop", has a host loop in twenty lines. */
#ifndef LWC_LOOP_H
#define LWC_LOOP_H

#include <lwc/base.h>
#include <lwc/io.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lwc_loop lwc_loop_t;

typedef struct lwc_loop_config {
    /* Called from any OS thread (inside lwc: it must not call into lwc):
     * please tick soon.  uv_async_send, a write to an eventfd, a JS
     * queueMicrotask.  NULL: the host polls. */
    void (*wake)(void *ud);
    void *wake_ud;
    /* The budget of the tick an evaluation runs (lwc_loop_eval_async), as
     * lwc_loop_tick_limit's: eval_budget_ns 0 is 10 ms, eval_max_switches
     * 0 is no limit. */
    uint64_t eval_budget_ns;
    unsigned long eval_max_switches;
} lwc_loop_config_t;

/* A loop on the calling thread (cfg NULL: no wake hook).  Starts the
 * runtime with no capability of its own (lwc_config_t.no_workers) if
 * lwc_init has not been called; the last lwc_loop_free then shuts it down.
 * LWC_EINVAL for out NULL or from inside an SCont, LWC_EBUSY when 64 loops
 * exist, LWC_ENOMEM. */
LWC_API int lwc_loop_new(lwc_loop_t **out, const lwc_loop_config_t *cfg);
/* Change the wake hook (an adapter installs its own, lwc_loop_uv_attach):
 * before anything outside the host's thread may wake the loop (a token
 * settled elsewhere, another scheduler's thread).  LWC_EINVAL for NULL or
 * from another thread. */
LWC_API int lwc_loop_set_wake(lwc_loop_t *loop, void (*wake)(void *ud), void *ud);
/* The wake hook and its argument now.  LWC_EINVAL as for set. */
LWC_API int lwc_loop_get_wake(lwc_loop_t *loop, void (**wake)(void *ud), void **ud);
/* LWC_EBUSY while threads of the loop are live (their function has not
 * returned), from inside its tick, or from an evaluation's done callback;
 * LWC_EINVAL for NULL or from another thread. */
LWC_API int lwc_loop_free(lwc_loop_t *loop);

typedef enum {
    LWC_LOOP_IDLE,      /* nothing runnable: wait for the deadline, the fds, a wake */
    LWC_LOOP_MORE,      /* runnable threads left (the budget ran out): tick again soon */
    LWC_LOOP_BUSY       /* called from inside a tick of this loop: nothing done */
} lwc_loop_state_t;

typedef struct lwc_loop_status {
    lwc_loop_state_t state;
    uint64_t next_deadline;   /* on lwc_clock_ns(); LWC_NEVER: no timer */
    unsigned tokens;          /* threads of this loop awaiting a token */
    unsigned fds;             /* fds waited on (lwc_loop_fds lists them) */
    unsigned threads;         /* live threads of this loop */
    unsigned long switches;   /* switches the tick ran */
} lwc_loop_status_t;

/* Run the loop's threads until none is runnable or the budget is spent:
 * budget_ns of time (LWC_NEVER: none) and max_switches switches (0: no
 * limit).  The budget is looked at when a thread switches: one that
 * computes without switching keeps the host until it does.  A tick begins
 * by serving the timers and fds that are due (without blocking), and runs
 * at least one thread if one is runnable.  Never blocks, unless a thread
 * does (a blocking system call, a transaction that retries).  When it ends
 * with nothing runnable and nothing outside the loop's threads that could
 * make one runnable (no timer, no fd, no token awaited, every other
 * capability idle), a detection pass runs (lwc_gc_host_idle): threads
 * blocked for good are woken with their error, and an evaluation whose
 * thread is in a whole-program deadlock completes with LWC_EDEADLOCK.
 * Evaluations that completed have their done called before it returns.
 * st (may be NULL) gets what the host should do next.  LWC_OK; LWC_EINVAL
 * for NULL or from another thread; LWC_OK with state LWC_LOOP_BUSY from
 * inside a tick. */
LWC_API int lwc_loop_tick(lwc_loop_t *loop, uint64_t budget_ns, lwc_loop_status_t *st);
LWC_API int lwc_loop_tick_limit(lwc_loop_t *loop, uint64_t budget_ns, unsigned long max_switches,
                                lwc_loop_status_t *st);
/* What lwc_loop_tick would report, without running anything: state IDLE or
 * MORE (BUSY inside a tick), the next deadline, tokens, fds, threads. */
LWC_API int lwc_loop_pending(lwc_loop_t *loop, lwc_loop_status_t *st);

/* How long the host may wait, in st's terms, as poll(2) and epoll_wait
 * take it: 0 when st says MORE (or BUSY), -1 with no deadline, else the
 * milliseconds until st->next_deadline, rounded up. */
LWC_API int lwc_loop_timeout_ms(const lwc_loop_status_t *st);

typedef lwc_fd_wait_t lwc_loop_fd_t;    /* fd, events: LWC_FD_READ | LWC_FD_WRITE */
/* The fds that threads wait for (lwc_wait_fd), into fds[0 .. max): returns
 * how many there are (more than max: call again with room).  A host may
 * instead wait for one fd, lwc_loop_backend_fd. */
LWC_API unsigned lwc_loop_fds(lwc_loop_t *loop, lwc_loop_fd_t *fds, unsigned max);
/* An fd (epoll's) that is readable whenever an fd that threads wait for may
 * be ready: wait for it to read, then tick.  -1 with LWC_ENOMEM's cause. */
LWC_API int lwc_loop_backend_fd(lwc_loop_t *loop);

/* ---- Threads and evaluations ------------------------------------------------ */

/* A detached thread of the loop; it runs in the next tick. */
LWC_API int lwc_loop_spawn(lwc_loop_t *loop, void (*fn)(void *), void *arg);

typedef void (*lwc_loop_done_fn)(int err, lwc_word_t result, void *ud);
/* Start fn(arg) as a thread of the loop and run one tick (the budget is
 * cfg's eval_budget_ns and eval_max_switches): LWC_OK with *result (result may be NULL) when it
 * completed in that tick, and done is not called; LWC_EAGAIN when it is
 * pending: done(err, result, ud) is called from a later tick, on this
 * thread, outside every thread of the loop, with LWC_OK and fn's result, or
 * with LWC_EDEADLOCK (a whole-program deadlock left it blocked for good) or
 * LWC_EKILLED (it called lwc_exit).  Threads it spawned go on after it.
 * Called from inside a tick (from a thread of the loop), it only starts
 * the thread: LWC_EAGAIN.  When it returns LWC_EAGAIN the wake hook has
 * been called: the host looks at the loop again.  LWC_EINVAL for loop or fn NULL, or from another
 * thread; LWC_ENOMEM. */
LWC_API int lwc_loop_eval_async(lwc_loop_t *loop, lwc_word_t (*fn)(void *), void *arg,
                                lwc_loop_done_fn done, void *ud, lwc_word_t *result);
/* Run fn(arg) as a thread of the loop to completion now, ticking with no
 * budget: LWC_OK with *result; LWC_EWOULDBLOCK as soon as the loop has
 * nothing runnable while fn's thread waits (for a token, a timer, an fd,
 * or a thread that waits for one): that thread goes on by itself, and its
 * result is dropped.  LWC_EDEADLOCK as for eval_async.  LWC_EBUSY from
 * inside a tick; LWC_EINVAL, LWC_ENOMEM. */
LWC_API int lwc_loop_eval_sync(lwc_loop_t *loop, lwc_word_t (*fn)(void *), void *arg,
                               lwc_word_t *result);

/* The loop whose thread is running, or NULL. */
LWC_API lwc_loop_t *lwc_loop_self(void);

/* ---- Wait tokens ----------------------------------------------------------------
 *
 * A promise: a thread (of any scheduler) awaits a token; the host settles
 * it, from any OS thread, and the thread becomes runnable through its own
 * unblock_thread (for a loop's thread: its queue, and the wake hook).  A
 * thread awaiting a token is a root for the detector: the host may settle
 * it whatever the threads do. */
typedef struct lwc_token lwc_token_t;

typedef enum {
    LWC_TOKEN_PENDING,    /* not settled */
    LWC_TOKEN_RESOLVED,
    LWC_TOKEN_REJECTED,
    LWC_TOKEN_CANCELED    /* its waiter was woken by an error (lwc_kill): settled into nothing */
} lwc_token_state_t;

/* NULL when out of memory. */
LWC_API lwc_token_t *lwc_token_new(void);
/* Block the calling thread until t is settled: LWC_OK with *value (value
 * may be NULL) once resolved; the reject error once rejected (LWC_EINVAL
 * stands for a reject with LWC_OK); at once if it is settled already.  An
 * error thrown at the waiter (lwc_kill) ends the wait with that error, and
 * the token becomes LWC_TOKEN_CANCELED.  LWC_EBUSY if another thread
 * awaits t; LWC_ECANCELED if t was canceled (lwc_token_free while it
 * waited, too: then t is gone); LWC_EINVAL outside a thread with both
 * upcalls, or for t NULL. */
LWC_API int lwc_token_await(lwc_token_t *t, lwc_word_t *value);
/* Settle t, from any OS thread: LWC_OK; LWC_ESTATE if it was settled
 * already; LWC_ECANCELED if its waiter was woken by an error (nobody will
 * see the value); LWC_EINVAL for NULL. */
LWC_API int lwc_token_resolve(lwc_token_t *t, lwc_word_t value);
LWC_API int lwc_token_reject(lwc_token_t *t, int err);
LWC_API lwc_token_state_t lwc_token_state(lwc_token_t *t);
/* Free t once nobody awaits or will settle it; freeing one a thread awaits
 * wakes it with LWC_ECANCELED.  NULL does nothing. */
LWC_API void lwc_token_free(lwc_token_t *t);

#ifdef __cplusplus
}
#endif
#endif
