/* Type-stable node pools for the modules under schedulers/.
 *
 * Note [Type-stable nodes]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * Modules link their nodes through PVars (a run queue, an MVar's waiters).  A
 * transaction that is already doomed, because another capability unlinked a
 * node after its snapshot, may still load through the stale link before PTM
 * validation rejects it.  That load must land on a node of the same type, never
 * on memory malloc has reused.  So a node, with the PVars it owns, goes back to
 * its module's pool and never to malloc while the process runs.
 *
 * The pool also keeps every node it has handed out on a second chain, `all`:
 * a node whose thread never finishes (blocked when lwc_main returned, freed by
 * lwc_shutdown) never comes back to the free list, and the destructor that
 * gives the pool back at exit must still find it, or leak checkers report it.
 * The pool is a free list under a mutex: nodes are taken once per blocking call
 * or spawn. */
#ifndef LWC_SCHEDULERS_POOL_H
#define LWC_SCHEDULERS_POOL_H

#include <lwc/lwc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

struct lwc_pool {
    pthread_mutex_t lock;
    void           *free, *all;
    size_t          link;       /* offset of the node's `void *` free-list field */
    size_t          all_link;   /* offset of its `void *` field for the `all` chain */
    size_t          size;
};

#define LWC_POOL_INIT(type, field, all_field) \
    { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, offsetof(type, field), \
      offsetof(type, all_field), sizeof(type) }

#define LWC_POOL_LINK(p, n, off) (*(void **)((char *)(n) + (p)->off))

/* A node from the pool, or a new zeroed one; NULL when out of memory.  The
 * caller creates the PVars a node lacks (a new one, or one whose creation
 * failed before it was given back). */
static inline void *lwc_pool_take(struct lwc_pool *p)
{
    pthread_mutex_lock(&p->lock);
    void *n = p->free;
    if (n)
        p->free = LWC_POOL_LINK(p, n, link);
    pthread_mutex_unlock(&p->lock);
    if (n || !(n = calloc(1, p->size)))
        return n;
    pthread_mutex_lock(&p->lock);
    LWC_POOL_LINK(p, n, all_link) = p->all;
    p->all = n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Create the PVar *pv unless the node has it already. */
static inline bool lwc_pool_pvar(lwc_pvar_t **pv)
{
    return *pv || (*pv = lwc_pvar_new(0)) != NULL;
}

static inline void lwc_pool_give(struct lwc_pool *p, void *n)
{
    pthread_mutex_lock(&p->lock);
    LWC_POOL_LINK(p, n, link) = p->free;
    p->free = n;
    pthread_mutex_unlock(&p->lock);
}

/* At exit: destroy every node the pool ever made (destroy frees its PVars and
 * the node), given back or not. */
static inline void lwc_pool_destroy_all(struct lwc_pool *p, void (*destroy)(void *))
{
    for (void *n = p->all, *next; n; n = next) {
        next = LWC_POOL_LINK(p, n, all_link);
        destroy(n);
    }
    p->all = p->free = NULL;
}

#endif
