/* lwc: the round-robin scheduler's instance API (liblwc-rr).
 *
 * An instance is a FIFO run queue in PVars and the capabilities it has started.
 * Several instances (and instances of other schedulers) may run in one program;
 * their threads share MVars.  lwc_init must have run. */
#ifndef LWC_RR_H
#define LWC_RR_H

#include <lwc/base.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lwc_rr lwc_rr_t;

/* An instance that runs its threads on at most max_caps capabilities (0: all).
 * NULL when out of memory (errno ENOMEM) or when lwc_init has not run (EINVAL). */
LWC_API lwc_rr_t *lwc_rr_new(unsigned max_caps);

/* Create a thread of rr and make it runnable.  The first spawn (and others,
 * while rr has fewer than max_caps) starts it on an idle capability; with
 * none idle and none yet working for rr, LWC_EBUSY and nothing is created. */
LWC_API int lwc_rr_spawn(lwc_rr_t *rr, void (*fn)(void *), void *arg);
/* The same, for a thread that always runs on an OS thread of its own
 * (lwc_scont_new_bound): for code that needs one, such as a library that
 * keeps state in thread-local storage.  Each switch to or from it hands the
 * capability between OS threads. */
LWC_API int lwc_rr_spawn_bound(lwc_rr_t *rr, void (*fn)(void *), void *arg);

/* Let the other runnable threads of the caller's rr instance run first. */
LWC_API int lwc_rr_yield(void);

/* The instance the calling thread belongs to, or NULL. */
LWC_API lwc_rr_t *lwc_rr_self(void);

/* An in-call: run fn(arg) as a thread of rr and wait until it has returned,
 * from a plain OS thread (a C library's, or the program's own: it sleeps
 * meanwhile) or from a thread of any scheduler.  Cheap when repeated:
 * nothing is allocated after the first.  LWC_OK; LWC_EINVAL for rr or fn
 * NULL; lwc_rr_spawn's errors; an error thrown at a waiting thread (the
 * in-call's thread runs on). */
LWC_API int lwc_rr_incall(lwc_rr_t *rr, void (*fn)(void *), void *arg);
/* From an OS thread outside rr: wait until every thread of rr has returned. */
LWC_API int lwc_rr_wait(lwc_rr_t *rr);

/* Wait as lwc_rr_wait, give rr's capabilities back, free it.  NULL is ignored. */
LWC_API void lwc_rr_free(lwc_rr_t *rr);

#ifdef __cplusplus
}
#endif
#endif
