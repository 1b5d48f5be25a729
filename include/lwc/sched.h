/* lwc: the scheduler interface every scheduler library defines.
 *
 * Link one of liblwc-rr, liblwc-ws, liblwc-loop ... and these calls use it:
 * one object file links against any of them.  Each library also has an
 * explicit API for its own instances (lwc/rr.h ...).
 *
 * A scheduler library of your own defines these seven: lwc_main, lwc_spawn,
 * lwc_spawn_bound, lwc_yield, lwc_sched_name, lwc_spawn_joinable and
 * lwc_join.  lwc_sleep_ns is not among them: liblwc-io defines it once for
 * every scheduler.  lwc-check-sched-lib LIBRARY (installed; in the source
 * tree, tools/check-sched-lib.sh) says whether a library defines them all.
 * <lwc/kit.h> makes a scheduler library of a policy. */
#ifndef LWC_SCHED_H
#define LWC_SCHED_H

#include <lwc/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start the runtime (LWC_CAPS capabilities) with the linked scheduler, run fn as
 * its first thread, and return once fn has returned and no other thread can
 * run: LWC_OK, or an error if the runtime could not start.  Threads blocked
 * then (on an MVar nobody will fill) are freed with the runtime, which lwc_main
 * shuts down.  Not reentrant. */
LWC_API int lwc_main(void (*fn)(void *), void *arg);

/* A detached thread on the calling thread's scheduler (from outside any
 * thread of this library's scheduler: on the one lwc_main started). */
LWC_API int lwc_spawn(void (*fn)(void *), void *arg);
/* The same, but the thread always runs on an OS thread of its own: a bound
 * thread, GHC's forkOS.  Each switch to or from it hands the capability
 * between OS threads, so it switches slower. */
LWC_API int lwc_spawn_bound(void (*fn)(void *), void *arg);

/* Let the other runnable threads of the scheduler run first.  LWC_EINVAL from
 * outside a thread of this scheduler. */
LWC_API int lwc_yield(void);

/* Block only the calling thread for at least ns nanoseconds; the scheduler
 * runs the others meanwhile.  0 returns at once.  Defined by liblwc-io, the
 * same for every scheduler: lwc_sleep_until in lwc/io.h. */
LWC_API int lwc_sleep_ns(uint64_t ns);

LWC_API const char *lwc_sched_name(void);

/* A thread that another can wait for, once, with lwc_join. */
typedef struct lwc_joinable lwc_joinable_t;
LWC_API int lwc_spawn_joinable(void (*fn)(void *), void *arg, lwc_joinable_t **out);
/* Wait until j's function has returned (or lwc_exit'ed), then free j.  From a
 * thread or from an OS thread.  Each joinable is joined exactly once: a join
 * that returns an error thrown at the joiner (lwc/exception.h) leaves j as it
 * was, to be joined again. */
LWC_API int lwc_join(lwc_joinable_t *j);

#ifdef __cplusplus
}
#endif
#endif
