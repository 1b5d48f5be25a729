/* lwc: one-shot continuations (SConts), switching and upcalls.
 *
 * An SCont is a suspended C stack that can be resumed once.  A switch names the
 * SCont to run next and the status the current one takes, and happens exactly
 * when its transaction commits: "put myself on this queue and run the next
 * thread" is one atomic step, on any number of capabilities. */
#ifndef LWC_SCONT_H
#define LWC_SCONT_H

#include <lwc/base.h>
#include <lwc/ptm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which stack an SCont runs on (README, Stacks).  A copy SCont runs on its
 * capability's shared stack and keeps only the part it uses while others
 * run there; once it has run, it runs on that capability only
 * (lwc_scont_home_cap), and a pointer into its stack is valid only while it
 * runs.  A bound SCont always has a stack of its own: COPY means GUARDED. */
typedef enum lwc_stack_kind {
    LWC_STACK_DEFAULT = 0,  /* the runtime's default (lwc_config_t.stack_kind): GUARDED unless set */
    LWC_STACK_GUARDED,      /* mmap'd, with a guard page below it */
    LWC_STACK_PLAIN,        /* mmap'd, no guard page */
    LWC_STACK_COPY          /* the capability's shared stack, its used part saved on switch-out */
} lwc_stack_kind_t;

typedef struct lwc_upcalls lwc_upcalls_t;      /* below, under Upcalls */

/* All-zero (or NULL) means defaults: the runtime's stack size and kind, no
 * name, the creator's upcalls. */
typedef struct lwc_scont_attr {
    size_t           stack_size;  /* bytes; rounded up to whole pages */
    lwc_stack_kind_t stack_kind;
    const char      *name;        /* copied; diagnostics print it */
    const lwc_upcalls_t *upcalls; /* copied; NULL: the creator's */
    unsigned         flags;       /* LWC_SCONT_DORMANT, or 0 */
} lwc_scont_attr_t;

/* The SCont is made ahead of time (a pool of workers) and is no work until
 * lwc_unblock_thread hands it to its scheduler, or something switches to it
 * or starts it.  Until then the detector counts it neither running nor
 * runnable, so it does not keep a deadlock from being found; one that
 * nothing reaches is left alone, never adopted.  Without the flag a new
 * SCont counts as runnable from birth, as a scheduler that queues what it
 * makes needs (README.md, "Threads blocked forever"). */
#define LWC_SCONT_DORMANT 1u

/* Create an SCont that will run fn(arg).  Its status is LWC_BLOCKED_ON_SCHED and it
 * has attr's upcalls, else its creator's (none when created outside an
 * SCont): a scheduler that names its own here saves an lwc_scont_set_upcalls,
 * which is an atomic read-modify-write.  The caller owns
 * one handle, dropped with lwc_scont_release.  Returns NULL with errno set: EINVAL
 * (fn NULL, bad attr or flags, a copy SCont's stack_size above the shared stack's,
 * lwc_init not called), ENOMEM. */
LWC_API lwc_scont_t *lwc_scont_new(void (*fn)(void *), void *arg, const lwc_scont_attr_t *attr);
/* The same, but the SCont always runs on an OS thread of its own: the capability
 * is handed over between OS threads at every switch to or from it. */
LWC_API lwc_scont_t *lwc_scont_new_bound(void (*fn)(void *), void *arg, const lwc_scont_attr_t *attr);
/* Drop the handle that new returned.  The SCont itself lives on until it completes. */
LWC_API void         lwc_scont_release(lwc_scont_t *s);

LWC_API lwc_scont_t *lwc_scont_self(void);              /* NULL outside an SCont */
LWC_API uint64_t     lwc_scont_id(const lwc_scont_t *s);  /* unique, from 1; 0 for NULL */
LWC_API const char  *lwc_scont_name(const lwc_scont_t *s);/* "" when it has none */
/* Name s (copied) for the thread view, reports and the debugger, if it was
 * made without one: LWC_EBUSY if it has one, LWC_EINVAL, LWC_ENOMEM.  A
 * thread names itself with lwc_scont_set_name(lwc_scont_self(), "..."). */
LWC_API int          lwc_scont_set_name(lwc_scont_t *s, const char *name);
LWC_API int          lwc_scont_is_bound(const lwc_scont_t *s);
/* The capability s must run on: a copy SCont's (LWC_STACK_COPY) once it has
 * run, for its frames live at its capability's shared stack's addresses.
 * -1u for any other SCont (it may run on any capability).  A scheduler with
 * several capabilities runs such an SCont on that one only; switching to it
 * elsewhere fails with LWC_ESTATE, nothing committed. */
LWC_API unsigned     lwc_scont_home_cap(const lwc_scont_t *s);
/* Transactional read of s's status; with tx NULL, one atomic read. */
LWC_API lwc_status_t lwc_scont_status(lwc_tx_t *tx, lwc_scont_t *s);
LWC_API void         lwc_scont_set_local(lwc_scont_t *s, void *p);  /* scheduler-local state */
LWC_API void        *lwc_scont_get_local(lwc_scont_t *s);

/* ---- Switching ---------------------------------------------------------- */

/* Runs inside the switch's transaction: return the SCont to run next and set
 * *self_status to the status the caller takes (LWC_BLOCKED_ON_SCHED or
 * LWC_BLOCKED_ON_CONCDS).  Returning self (with any status) means "no switch";
 * returning NULL releases the capability (it becomes idle). */
typedef lwc_scont_t *(*lwc_switch_fn)(lwc_tx_t *tx, lwc_scont_t *self, void *arg,
                                      lwc_status_t *self_status);

/* Run fn as one transaction and switch as it commits.  Returns when this SCont is
 * next resumed: LWC_OK, or the error delivered to it while suspended; LWC_ESTATE at
 * once if the target was not resumable (running, completed or resumed already, or
 * a copy SCont whose home is another capability), in which case nothing of the
 * transaction is committed; LWC_ENOMEM at once, nothing committed, if the target
 * has never run and no stack can be had for it (an SCont takes its stack when it
 * first runs), or this is a copy SCont and no room to save its stack can be
 * had; LWC_EINVAL outside an SCont. */
LWC_API int  lwc_switch(lwc_switch_fn fn, void *arg);
/* Inside any transaction run by an SCont: switch to target when tx commits, the
 * current SCont taking self_status.  A target that is not resumable abandons the
 * transaction: its lwc_atomically returns LWC_ESTATE.  target NULL releases the
 * capability; target == self is no switch. */
LWC_API void lwc_switch_to(lwc_tx_t *tx, lwc_scont_t *target, lwc_status_t self_status);

/* ---- Upcalls ------------------------------------------------------------ */

typedef struct lwc_upcalls {
    /* self stops with status why: return the SCont to run next on this capability
     * (NULL: release the capability).  Runs inside the caller's transaction.  To
     * idle the capability, call lwc_tx_retry(tx): self's stop commits, and the
     * capability calls switch_to_next again, with the same arguments, until a
     * PVar this transaction read is written and it names an SCont (self may
     * then be running elsewhere, or completed).  why LWC_RUNNING: self is in
     * a safe foreign call that blocks, and leaves the capability to the
     * others (lwc_outcall in lwc/cap.h); it comes back through
     * unblock_thread, so do not queue it here. */
    lwc_scont_t *(*switch_to_next)(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env);
    /* Make s runnable in its scheduler.  Runs inside a transaction, on any thread. */
    void (*unblock_thread)(lwc_tx_t *tx, lwc_scont_t *s, void *env);
    void *env;
} lwc_upcalls_t;

/* u NULL clears both.  Safe while s runs or switches elsewhere: a switch sees
 * either the old set or the new one, never a mix.  Each distinct set is kept
 * for the life of the process (32 bytes); LWC_ENOMEM if it cannot be. */
LWC_API int  lwc_scont_set_upcalls(lwc_scont_t *s, const lwc_upcalls_t *u);
LWC_API int  lwc_scont_get_upcalls(lwc_scont_t *s, lwc_upcalls_t *out);
/* Can s block through its scheduler: has it both upcalls?  What a data
 * structure asks before it blocks a waiter (MVars, timers, fd waits,
 * tokens); without them nothing could wake it.  0 for NULL. */
LWC_API int  lwc_scont_has_scheduler(const lwc_scont_t *s);
/* switchToNext for the current SCont: ask its switch_to_next upcall for the next
 * SCont and switch to it when tx commits, the current one taking status why.
 * Without an upcall the capability is released. */
LWC_API void lwc_switch_to_next(lwc_tx_t *tx, lwc_status_t why);
/* unblockThread: if s is blocked on a data structure (LWC_BLOCKED_ON_CONCDS),
 * make it LWC_BLOCKED_ON_SCHED, move its wait token on, and run its own
 * unblock_thread upcall in tx.  Also how an SCont made with lwc_scont_new
 * first becomes runnable: one that has never run is handed to its
 * unblock_thread upcall, once.  Nothing if s is in any other state, was
 * handed over already, or has no upcall: one wait is never ended twice. */
LWC_API void lwc_unblock_thread(lwc_tx_t *tx, lwc_scont_t *s);
/* Transactional: a word that changes every time s is woken from a wait, and
 * when its struct is reused for another SCont.  A data structure records it
 * in the transaction that blocks s, and wakes the waiter with
 * lwc_unblock_waiter.  0 for NULL. */
LWC_API lwc_word_t lwc_scont_wait_token(lwc_tx_t *tx, lwc_scont_t *s);
/* lwc_unblock_thread for a waiter whose wait token a data structure recorded:
 * wakes s only if it is still in that wait, and returns 1; 0 if the wait is
 * over (something else woke s, an error thrown at it or the deadlock
 * detector, or s was freed): the data structure drops the waiter, serving it
 * nothing. */
LWC_API int lwc_unblock_waiter(lwc_tx_t *tx, lwc_scont_t *s, lwc_word_t token);
/* Call fn(arg) as the body of the current SCont: lwc_exit called inside returns
 * here, as if fn had returned.  A scheduler calls a thread's function through
 * it, so that its own work after the function (counting the thread out,
 * joining it) runs for an exit too.  They nest; outside an SCont it is fn(arg). */
LWC_API void lwc_scont_run(void (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif
