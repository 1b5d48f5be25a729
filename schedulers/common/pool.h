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
 * The pool also keeps every node it has handed out in a second array, `all`:
 * a node whose thread never finishes (blocked when lwc_main returned, freed by
 * lwc_shutdown) never comes back to the free list, and the destructor that
 * gives the pool back at exit must still find it, or leak checkers report it.
 * The pool is a free array under a mutex: nodes are taken once per blocking
 * call or spawn.
 *
 * Note [Pools and the detector]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * The blocked-forever detector follows references through lwc_alloc blocks
 * and the program's static data (README.md, "Threads blocked forever").  A
 * node the detector must see through (an MVar, its waiter nodes) comes from
 * lwc_alloc (`traced`).  So nothing that links *every* node may be where the
 * detector looks: a chain through the nodes, or a list head in the pool's
 * static struct, would make one reachable MVar reach them all, and no waiter
 * would ever be found blocked for good.  The free and all arrays are malloc
 * memory, which the detector does not scan, and nodes hold no pool links. */
#ifndef LWC_SCHEDULERS_POOL_H
#define LWC_SCHEDULERS_POOL_H

#include <lwc/lwc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

struct lwc_pool {
    pthread_mutex_t lock;
    void          **free;       /* nodes given back */
    void          **all;        /* every node made, for lwc_pool_destroy_all */
    size_t          nfree, nall, cap;   /* both arrays have room for cap nodes */
    size_t          size;
    bool            traced;     /* nodes from lwc_alloc: Note [Pools and the detector] */
};

#define LWC_POOL_INIT(type, traced) \
    { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0, 0, sizeof(type), traced }

/* Room for one more node in both arrays; with the lock held. */
static inline bool lwc_pool_room(struct lwc_pool *p)
{
    if (p->nall < p->cap)
        return true;
    size_t cap = p->cap ? 2 * p->cap : 64;
    void **f = realloc(p->free, cap * sizeof *f);
    if (f)
        p->free = f;
    void **a = f ? realloc(p->all, cap * sizeof *a) : NULL;
    if (!a)
        return false;
    p->all = a;
    p->cap = cap;
    return true;
}

/* A node from the pool, or a new zeroed one; NULL when out of memory.  The
 * caller creates the PVars a node lacks (a new one, or one whose creation
 * failed before it was given back). */
static inline void *lwc_pool_take(struct lwc_pool *p)
{
    pthread_mutex_lock(&p->lock);
    void *n = p->nfree ? p->free[--p->nfree] : NULL;
    pthread_mutex_unlock(&p->lock);
    if (n)
        return n;
    n = p->traced ? lwc_alloc(p->size) : calloc(1, p->size);
    if (!n)
        return NULL;
    pthread_mutex_lock(&p->lock);
    bool ok = lwc_pool_room(p);
    if (ok)
        p->all[p->nall++] = n;
    pthread_mutex_unlock(&p->lock);
    if (!ok) {
        if (p->traced)
            lwc_free(n);
        else
            free(n);
        return NULL;
    }
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
    p->free[p->nfree++] = n;            /* room: nfree < nall <= cap */
    pthread_mutex_unlock(&p->lock);
}

/* At exit: every node the pool ever made, given back or not, to destroy (which
 * frees the node's PVars), then back to the allocator. */
static inline void lwc_pool_destroy_all(struct lwc_pool *p, void (*destroy)(void *))
{
    for (size_t i = 0; i < p->nall; i++) {
        destroy(p->all[i]);
        if (p->traced)
            lwc_free(p->all[i]);
        else
            free(p->all[i]);
    }
    free(p->free);
    free(p->all);
    p->free = p->all = NULL;
    p->nfree = p->nall = p->cap = 0;
}

#endif
