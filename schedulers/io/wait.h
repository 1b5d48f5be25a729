/* What timers (timer.c) and fd waits (fd.c) share: the node an SCont waits
 * on, and the steps of a wait.  Private to liblwc-io. */
#ifndef LWC_IO_WAIT_H
#define LWC_IO_WAIT_H

#include <lwc/lwc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/pool.h"

/* A waiting SCont's node: Note [Timer nodes] in timer.c.  An fd wait's
 * node is fired by a timer at its deadline or by the poller (fd.c), which
 * also says what was ready: `revents` holds gen << 8 | the LWC_FD_* bits,
 * so a value left by an earlier use of the node reads as nothing. */
struct timer {
    lwc_pvar_t   fired;       /* the last generation fired */
    lwc_pvar_t   revents;
    uint64_t     gen;         /* this use of the node */
    uint64_t     deadline, seq;
    lwc_scont_t *s;
    uint64_t     token;
    size_t       index;       /* in the heap; SIZE_MAX: not in it */
};

extern struct lwc_pool io_pool;

/* Fire generation gen of tm (what a poll copied out), with revents. */
struct firing {
    struct timer *tm;
    uint64_t      gen, token;
    lwc_scont_t  *s;
    unsigned      revents;
};
void io_fire(struct firing *f);

/* A wait of the current SCont until `deadline` (LWC_NEVER: none) or a fire:
 * take a node (LWC_EINVAL without both upcalls, LWC_ENOMEM), block on it
 * (`root`: pinned meanwhile, for what will wake it lives where the detector
 * does not look), and give it back: the LWC_FD_* bits it was fired with, 0
 * for its deadline or none. */
int      io_wait_prepare(struct timer **out, uint64_t deadline);
int      io_wait_block(struct timer *tm, bool root, const char *what, const void *obj);
unsigned io_wait_finish(struct timer *tm);

#endif
