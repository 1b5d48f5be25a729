/* Private to liblwc-rr: what its generic interface (sched.c) needs of rr.c. */
#ifndef LWC_SCHEDULERS_RR_H
#define LWC_SCHEDULERS_RR_H

#include <lwc/rr.h>

enum { RR_OPEN, RR_CLOSING, RR_DRAIN };

/* Make rr's capabilities leave (RR_CLOSING: once no thread is live; RR_DRAIN:
 * once nothing is runnable) and wait until they have. */
int  lwc_rr_close(lwc_rr_t *rr, int how);
void lwc_rr_free_memory(lwc_rr_t *rr);
/* lwc_rr_spawn on an untyped instance: lwc_main's ops and in-calls. */
int  lwc_rr_spawn_on(void *rr, void (*fn)(void *), void *arg);

#endif
