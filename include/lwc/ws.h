/* lwc: the work-stealing scheduler's instance API (liblwc-ws).
 *
 * An instance has a deque per capability it runs on; idle capabilities steal
 * from random victims, and sleep in the kernel when there is nothing anywhere.
 * Several instances (and instances of other schedulers) may run in one
 * program; their threads share MVars.  lwc_init must have run. */
#ifndef LWC_WS_H
#define LWC_WS_H

#include <lwc/base.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lwc_ws lwc_ws_t;

/* An instance that runs its threads on at most ncaps capabilities (0: all).
 * NULL when out of memory (errno ENOMEM) or when lwc_init has not run (EINVAL). */
LWC_API lwc_ws_t *lwc_ws_new(unsigned ncaps);

/* Create a thread of ws and make it runnable: on the caller's deque when the
 * caller is a thread of ws, else in the instance's shared queue.  While ws runs
 * on fewer than ncaps capabilities, a spawn starts the new thread on an idle
 * one; with none idle and none yet working for ws, LWC_EBUSY and nothing is
 * created. */
LWC_API int lwc_ws_spawn(lwc_ws_t *ws, void (*fn)(void *), void *arg);
/* The same, for a thread that always runs on an OS thread of its own
 * (lwc_scont_new_bound): for code that needs one, such as a library that
 * keeps state in thread-local storage.  Each switch to or from it hands the
 * capability between OS threads. */
LWC_API int lwc_ws_spawn_bound(lwc_ws_t *ws, void (*fn)(void *), void *arg);

/* Let other runnable threads run first: the caller goes to the back of the
 * instance's shared queue. */
LWC_API int lwc_ws_yield(void);

/* The instance the calling thread belongs to, or NULL. */
LWC_API lwc_ws_t *lwc_ws_self(void);

/* An in-call: run fn(arg) as a thread of ws and wait until it has returned,
 * from a plain OS thread (a C library's, or the program's own: it sleeps
 * meanwhile) or from a thread of any scheduler.  Cheap when repeated:
 * nothing is allocated after the first.  LWC_OK; LWC_EINVAL for ws or fn
 * NULL; lwc_ws_spawn's errors; an error thrown at a waiting thread (the
 * in-call's thread runs on). */
LWC_API int lwc_ws_incall(lwc_ws_t *ws, void (*fn)(void *), void *arg);
/* From an OS thread outside ws: wait until every thread of ws has returned. */
LWC_API int lwc_ws_wait(lwc_ws_t *ws);

/* Wait as lwc_ws_wait, give ws's capabilities back, free it.  NULL is ignored. */
LWC_API void lwc_ws_free(lwc_ws_t *ws);

#ifdef __cplusplus
}
#endif
#endif
