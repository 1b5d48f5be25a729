/* lwc: waiting for time (and, later, for file descriptors), on any scheduler.
 *
 * A sleeping SCont blocks through its own upcalls and is woken through its own
 * unblock_thread, so sleep works the same under every scheduler, ours or one of
 * your own; the capabilities keep running other threads meanwhile.  Timers
 * have no OS thread of their own: idle capabilities serve them (cap.h, "idle
 * services").  lwc_sleep_ns, in lwc/sched.h, is defined here. */
#ifndef LWC_IO_H
#define LWC_IO_H

#include <lwc/base.h>
#include <lwc/cap.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Block the calling SCont until lwc_clock_ns() reads at least `deadline`.  A
 * deadline already passed returns LWC_OK at once, without a switch (use
 * lwc_yield to let others run); LWC_NEVER sleeps for good.  From a plain OS
 * thread, not in an SCont, the OS thread sleeps.  LWC_EINVAL in an SCont that
 * lacks either upcall (it has no scheduler to block through), LWC_ENOMEM. */
LWC_API int lwc_sleep_until(uint64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
