/* A FIFO of nodes in PVars, for the modules under schedulers/: rr's run queue,
 * ws's shared queue, an MVar's waiters.  A node is any struct whose first
 * member is its PVar `lwc_pvar_t next`; the queue is a head and a tail PVar that
 * the owner keeps.  Nodes must be type-stable (pool.h). */
#ifndef LWC_SCHEDULERS_FIFO_H
#define LWC_SCHEDULERS_FIFO_H

#include <lwc/lwc.h>

struct fifo_node { lwc_pvar_t next; };

/* Note [No stale links]
 * ~~~~~~~~~~~~~~~~~~~~~
 * The blocked-forever detector reads a node's `next` like any reference
 * (README.md, "Threads blocked forever").  A popped node that kept its link
 * would tie whoever holds it (a thread holds its own scheduler node) to every
 * node that was queued behind it, and through them to their threads, which
 * could then never be found blocked for good.  So a pop clears the link,
 * and a node out of the queue has `next` 0: push relies on it (a new node's
 * PVar starts at 0; a node that also goes on other lists, as an MVar's
 * readers do, is the owner's to clear first), and writes only the links that
 * change, one fewer per push than clearing there would. */

static inline void fifo_push(lwc_tx_t *tx, lwc_pvar_t *head, lwc_pvar_t *tail, void *node)
{
    struct fifo_node *n = node;
    struct fifo_node *last = (struct fifo_node *)lwc_pvar_read(tx, tail);
    lwc_pvar_write(tx, last ? &last->next : head, (lwc_word_t)n);
    lwc_pvar_write(tx, tail, (lwc_word_t)n);
}

/* The oldest node, unlinked, or NULL. */
static inline void *fifo_pop(lwc_tx_t *tx, lwc_pvar_t *head, lwc_pvar_t *tail)
{
    struct fifo_node *n = (struct fifo_node *)lwc_pvar_read(tx, head);
    if (n) {
        lwc_word_t next = lwc_pvar_read(tx, &n->next);
        lwc_pvar_write(tx, head, next);
        if (!next)
            lwc_pvar_write(tx, tail, 0);
        else
            lwc_pvar_write(tx, &n->next, 0);     /* Note [No stale links] */
    }
    return n;
}

/* fifo_pop, then fifo_push of node (which is not queued), with each PVar
 * written once: a queue of one becomes a queue of node alone in two writes,
 * where the pop and the push wrote head and tail twice each.  NULL (and
 * nothing pushed) if the queue was empty. */
static inline void *fifo_rotate(lwc_tx_t *tx, lwc_pvar_t *head, lwc_pvar_t *tail, void *node)
{
    struct fifo_node *n = (struct fifo_node *)lwc_pvar_read(tx, head);
    if (!n)
        return NULL;
    struct fifo_node *next = (struct fifo_node *)lwc_pvar_read(tx, &n->next);
    if (!next) {
        lwc_pvar_write(tx, head, (lwc_word_t)node);
        lwc_pvar_write(tx, tail, (lwc_word_t)node);
        return n;
    }
    lwc_pvar_write(tx, head, (lwc_word_t)next);
    lwc_pvar_write(tx, &n->next, 0);             /* Note [No stale links] */
    fifo_push(tx, head, tail, node);
    return n;
}

#endif
