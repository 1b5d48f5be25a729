/* A priority scheduler on lwc's kit (examples/prio/prio.c): liblwc-prio-example
 * implements <lwc/sched.h>, so any program written against it links here as
 * it links against -llwc-rr.  Eight levels, 0 runs first; FIFO within one. */
#ifndef LWC_EXAMPLE_PRIO_H
#define LWC_EXAMPLE_PRIO_H

#include <lwc/sched.h>

#define PRIO_LEVELS 8

/* A thread at `level` (lwc_spawn's threads take their spawner's level,
 * PRIO_LEVELS / 2 from outside any thread).  LWC_EINVAL for a level out of
 * range, else lwc_spawn's errors. */
int prio_spawn(unsigned level, void (*fn)(void *), void *arg);
/* The caller's level, or -1 outside a thread of this scheduler. */
int prio_level(void);
/* Move the caller to `level` and let whoever now goes first run. */
int prio_set_level(unsigned level);

#endif
