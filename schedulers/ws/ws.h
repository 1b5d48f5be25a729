/* Private to liblwc-ws: what its generic interface (sched.c) needs of ws.c. */
#ifndef LWC_SCHEDULERS_WS_H
#define LWC_SCHEDULERS_WS_H

#include <lwc/ws.h>

enum { WS_OPEN, WS_CLOSING, WS_DRAIN };

/* Make ws's capabilities leave (WS_CLOSING: once no thread is live; WS_DRAIN:
 * once nothing is runnable) and wait until they have. */
int  lwc_ws_close(lwc_ws_t *ws, int how);
void lwc_ws_free_memory(lwc_ws_t *ws);
/* lwc_ws_spawn on an untyped instance: lwc_main's ops and in-calls. */
int  lwc_ws_spawn_on(void *ws, void (*fn)(void *), void *arg);

#endif
