/* Private to liblwc-kit: what main.c needs of kit.c. */
#ifndef LWC_SCHEDULERS_KIT_H
#define LWC_SCHEDULERS_KIT_H

#include <lwc/kit.h>

enum { KIT_OPEN, KIT_CLOSING, KIT_DRAIN };

/* Make k's capabilities leave (KIT_CLOSING: once no thread is live;
 * KIT_DRAIN: once nothing is runnable) and wait until they have. */
int  kit_close(lwc_kit_t *k, int how);
void kit_free_memory(lwc_kit_t *k);
/* lwc_kit_spawn with word 0 on an untyped instance: lwc_main's ops, in-calls. */
int  kit_spawn_on(void *k, void (*fn)(void *), void *arg);

#endif
