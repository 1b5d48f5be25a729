/* lwc: waiting for time and for file descriptors, on any scheduler.
 *
 * A sleeping SCont blocks through its own upcalls and is woken through its own
 * unblock_thread, so sleep works the same under every scheduler, ours or one of
 * your own; the capabilities keep running other threads meanwhile.  Timers
 * have no OS thread of their own: idle capabilities serve them (cap.h, "idle
 * services"), and fd readiness comes from epoll, waited on by a capability
 * with nothing else to do and polled by busy ones (cap.h, "the poller").
 * lwc_sleep_ns, in lwc/sched.h, is defined here. */
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

#define LWC_FD_READ   0x1   /* events and revents: readable (POLLIN) */
#define LWC_FD_WRITE  0x4   /* writable (POLLOUT) */
#define LWC_FD_ERROR  0x8   /* revents only: an error is pending (POLLERR) */
#define LWC_FD_HANGUP 0x10  /* revents only: hung up (POLLHUP) */

/* Block the calling SCont until fd is ready for `events` (LWC_FD_READ,
 * LWC_FD_WRITE or both) or lwc_clock_ns() passes `deadline` (LWC_NEVER:
 * none).  *revents (revents may be NULL) gets what is ready: the directions
 * asked for that are, with LWC_FD_ERROR / LWC_FD_HANGUP (then every
 * direction asked for reads as ready: the read or write says what
 * happened); 0 at the deadline.  A deadline already passed checks once,
 * without a switch.  A regular file is always ready.  From a plain OS
 * thread the OS thread waits, in poll(2).
 *
 * LWC_OK; LWC_EINVAL for a bad fd or events, or in an SCont that lacks
 * either upcall; LWC_EBUSY when another SCont already waits for the same fd
 * and direction; LWC_ECLOSED when lwc_fd_close closed the fd meanwhile;
 * LWC_ENOMEM; or an error thrown at the caller.  A waiting SCont is a root
 * for the detector (the fd may become ready whatever the threads do).
 * Close an fd that threads may wait on with lwc_fd_close: the kernel drops
 * a plainly closed fd from epoll, and its waiters would wait on. */
LWC_API int lwc_wait_fd(int fd, unsigned events, uint64_t deadline, unsigned *revents);
/* Wake the SConts waiting on fd (their lwc_wait_fd returns LWC_ECLOSED),
 * then close it.  LWC_OK, or LWC_EINVAL if close(2) failed. */
LWC_API int lwc_fd_close(int fd);

/* For a host that waits for lwc's fds in an event loop of its own (a
 * hosted capability's, liblwc-loop's): the fds threads wait for now, into
 * out[0 .. max), and how many there are (out NULL: only count them); and an
 * fd (the epoll set's) that is readable whenever one of them may be ready,
 * or -1 when it cannot be made.  A turn of the hosted capability then
 * serves what is ready. */
typedef struct lwc_fd_wait { int fd; unsigned events; } lwc_fd_wait_t;
LWC_API unsigned lwc_fd_waits(lwc_fd_wait_t *out, unsigned max);
LWC_API int      lwc_fd_backend(void);

#ifdef __cplusplus
}
#endif
#endif
