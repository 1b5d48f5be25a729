/* Threads that must run on one capability: copy SConts (LWC_STACK_COPY) once
 * they have run.  Header-only, for rr and ws. */
#ifndef LWC_SCHEDULERS_HOME_H
#define LWC_SCHEDULERS_HOME_H

#include <lwc/lwc.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fifo.h"
#include "thread.h"

/* Note [Threads with a home]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A copy SCont's frames live at the addresses of its capability's shared
 * stack, so once it has run it runs there only (lwc_scont_home_cap; Note
 * [Copy stacks] in substrate/copy.c), and the substrate refuses to switch to
 * it anywhere else.  With one capability that is every thread's home, and
 * nothing here is used (`n` is 0).  With several, each capability has an
 * inbox, a FIFO in PVars: a capability that takes a thread whose home is
 * another from a queue they share sends it home instead of running it, and
 * looks in its own inbox before anything else.  A thread reaches an inbox
 * only after it reached the front of the queue it waited in, so taking the
 * inbox first keeps the order it had there.  The capability sleeping in its
 * switch_to_next has read its inbox's head, so a thread sent home wakes it.
 * Queues that are not transactional (ws's deques and hand-off slots) never
 * give a thread to a capability other than its home: a thread is pushed on
 * its home's deque only, and a thief leaves it (sched_away). */
struct sched_homes {
    lwc_pvar_t *q;          /* the inbox of capability c: q[2c] head, q[2c + 1] tail */
    unsigned    n;          /* capabilities, or 0 with one */
};

static inline void sched_homes_free(struct sched_homes *h)
{
    for (unsigned i = 0; h->q && i < 2 * h->n; i++)
        lwc_pvar_fini(&h->q[i]);
    free(h->q);
    h->q = NULL;
    h->n = 0;
}

/* False when out of memory.  Zeroed, the inboxes are empty (<lwc/ptm.h>). */
static inline bool sched_homes_init(struct sched_homes *h)
{
    unsigned n = lwc_cap_count();
    h->n = 0;
    h->q = NULL;
    if (n < 2)
        return true;
    if (!(h->q = calloc(2 * (size_t)n, sizeof *h->q)))
        return false;
    h->n = n;
    return true;
}

/* May t not run on capability `here`? */
static inline bool sched_away(struct sched_thread *t, unsigned here)
{
    unsigned home = lwc_scont_home_cap(thread_scont(t));
    return home != (unsigned)-1 && home != here;
}

static inline void sched_send_home(lwc_tx_t *tx, struct sched_homes *h, struct sched_thread *t)
{
    unsigned home = lwc_scont_home_cap(thread_scont(t));
    fifo_push(tx, &h->q[2 * home], &h->q[2 * home + 1], t);
}

/* The oldest thread sent home to `here`, or NULL. */
static inline struct sched_thread *sched_home_pop(lwc_tx_t *tx, struct sched_homes *h,
                                                  unsigned here)
{
    if (!h->n || here >= h->n)
        return NULL;
    return fifo_pop(tx, &h->q[2 * here], &h->q[2 * here + 1]);
}

/* fifo_pop of a queue shared by the capabilities, for `here`: the threads
 * at its front whose home is another go there. */
static inline struct sched_thread *sched_pop_here(lwc_tx_t *tx, struct sched_homes *h,
                                                  lwc_pvar_t *head, lwc_pvar_t *tail,
                                                  unsigned here)
{
    struct sched_thread *t;
    while ((t = fifo_pop(tx, head, tail)) && h->n && sched_away(t, here))
        sched_send_home(tx, h, t);
    return t;
}

#endif
