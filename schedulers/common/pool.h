/* Type-stable node pools for the modules under schedulers/.
 *
 * Note [Type-stable nodes]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * Modules link their nodes through PVars (a run queue, an MVar's waiters).  A
 * transaction that is already doomed, because another capability unlinked a
 * node after its snapshot, may still load through the stale link before PTM
 * validation rejects it.  That load must land on a node of the same type, never
 * on memory malloc has reused.  So a node, with the PVars it owns, goes back to
 * its module's pool and never to malloc while the process runs; a destructor
 * gives the pools back at exit, for leak checkers.  The pool is a free list
 * under a mutex: nodes are taken once per blocking call or spawn. */
#ifndef LWC_SCHEDULERS_POOL_H
#define LWC_SCHEDULERS_POOL_H

#include <pthread.h>
#include <stddef.h>

struct lwc_pool {
    pthread_mutex_t lock;
    void           *free;
    size_t          link;       /* offset of the node's `void *` free-list field */
};

#define LWC_POOL_INIT(type, field) { PTHREAD_MUTEX_INITIALIZER, NULL, offsetof(type, field) }

/* A node from the pool, or NULL if it is empty (the caller allocates one). */
static inline void *lwc_pool_take(struct lwc_pool *p)
{
    pthread_mutex_lock(&p->lock);
    void *n = p->free;
    if (n)
        p->free = *(void **)((char *)n + p->link);
    pthread_mutex_unlock(&p->lock);
    return n;
}

static inline void lwc_pool_give(struct lwc_pool *p, void *n)
{
    pthread_mutex_lock(&p->lock);
    *(void **)((char *)n + p->link) = p->free;
    p->free = n;
    pthread_mutex_unlock(&p->lock);
}

#endif
