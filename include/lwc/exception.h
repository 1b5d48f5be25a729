/* lwc: asynchronous errors between SConts (GHC's throwTo, killThread, mask).
 *
 * An error thrown at an SCont is delivered at its next switch point, as the
 * return value of the call that switches (lwc_switch, lwc_atomically,
 * lwc_mvar_take, lwc_sleep_ns, lwc_yield ...):
 *  - blocked on a data structure (LWC_BLOCKED_ON_CONCDS): it is woken through
 *    its own unblock_thread, and its blocking call returns the error without
 *    having done its operation.  The data structure drops it from its waiters
 *    (lwc_scont_wait_token).
 *  - running: its next blocking call returns the error at once, without
 *    blocking; a yield returns it when the SCont is resumed.
 *  - runnable (suspended in a scheduler): the switch it is suspended in
 *    returns the error when it resumes.
 * A blocking call whose operation completed (an MVar served it) returns
 * LWC_OK; an error thrown after that waits for the next switch point, so no
 * value is ever lost to an error.  C code between switch points is never
 * interrupted.  Masking defers delivery (below); the deadlock detector's
 * errors ignore masking, as GHC's do. */
#ifndef LWC_EXCEPTION_H
#define LWC_EXCEPTION_H

#include <lwc/base.h>
#include <lwc/scont.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deliver err at s's next switch point.  err is any negative int: an lwc
 * error such as LWC_EKILLED, or a code of the program's own (keep them below
 * -1000, clear of lwc's).  LWC_OK: it will be.  LWC_ESTATE: s has completed or was freed.
 * LWC_EBUSY: s has another error still undelivered (LWC_EKILLED replaces any
 * other).  LWC_EINVAL: s NULL, err not an error.  From an SCont or an OS
 * thread; not inside a transaction (LWC_EINVAL). */
LWC_API int  lwc_throw_to(lwc_scont_t *s, int err);
/* lwc_throw_to(s, LWC_EKILLED).  The SCont is expected to clean up and return
 * (or lwc_exit); nothing forces it. */
LWC_API int  lwc_kill(lwc_scont_t *s);
/* GHC's mask: defer delivery to the current SCont until the matching
 * lwc_unmask (they nest), except where it blocks: a blocking call (an MVar
 * operation that waits, a retry, a sleep) stays interruptible, so a masked
 * SCont that blocks, or is blocked, gets an error thrown at it as an
 * unmasked one would, and its blocking call returns it.  A yield, or a
 * blocking call that need not wait, does not deliver it.  This is what lets
 * bracket-style code (acquire masked, release masked) be cancelled while it
 * waits, and never between acquiring and releasing.
 *
 * lwc_unmask returns the error that was thrown while the mask was on, when
 * it ends the last mask (the error is the caller's then, as if a switch
 * point had returned it), else LWC_OK.  An unmask with no mask to end is
 * ignored (LWC_OK).  Inside a transaction the error is left for the next
 * switch point.  Nothing outside an SCont. */
LWC_API void lwc_mask(void);
LWC_API int  lwc_unmask(void);
/* GHC's uninterruptibleMask: defer delivery even where the SCont blocks; a
 * masked SCont blocked on a data structure stays blocked until served.
 * Nests with lwc_mask; each ends with its own kind of unmask (one with no
 * mask of its kind on is ignored, with a warning).  lwc_unmask_uninterruptible returns as
 * lwc_unmask does; an error waits while any mask is on. */
LWC_API void lwc_mask_uninterruptible(void);
LWC_API int  lwc_unmask_uninterruptible(void);
/* Finish the current SCont now, as if its function had returned: control
 * returns from the innermost lwc_scont_run, so a scheduler's bookkeeping after
 * the thread's function still runs.  Inside a transaction, the transaction is
 * abandoned first.  From a deferred action (lwc_tx_defer), it aborts the
 * program: that code belongs to no SCont.  On an OS thread outside
 * any SCont, pthread_exit(NULL). */
LWC_API _Noreturn void lwc_exit(void);

#ifdef __cplusplus
}
#endif
#endif
