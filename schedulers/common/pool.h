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
 * An untraced pool also keeps every node it has handed out in a second
 * array, `all`: a node whose thread never finishes (blocked when lwc_main
 * returned, freed by lwc_shutdown) never comes back to the free list, and
 * the destructor that gives the pool back at exit must still find it, or
 * leak checkers report it.  A traced pool's nodes are small lwc_alloc blocks,
 * which stay in the substrate's slabs, still reachable, until they are freed
 * (Note [Slabs] in substrate/traced.c): a million blocked threads keep three
 * million nodes, and `all` cost 8 bytes of each.
 * The pool is a free array under a mutex, and in front of it a cache per OS
 * thread (Note [Pool caches]): nodes are taken once per blocking call or
 * spawn, and a mutex there cost a ring hop 7%.
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
    void          **all;        /* untraced: every node made, for lwc_pool_destroy_all */
    size_t          nfree, nall, cap;   /* nall made; the arrays have room for cap */
    size_t          size;
    bool            traced;     /* nodes from lwc_alloc: Note [Pools and the detector] */
    unsigned        slot;       /* its cache in lwc_pool_caches */
    int             key_made;   /* 1: `key` exists; -1: it could not be made */
    pthread_key_t   key;        /* gives a thread's cache back when the thread exits */
};

/* `slot`: each pool of one source file has its own, below LWC_POOL_SLOTS. */
#define LWC_POOL_INIT(type, traced, slot) \
    { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0, 0, sizeof(type), traced, slot, 0, 0 }

/* Note [Pool caches]
 * ~~~~~~~~~~~~~~~~~~
 * Each OS thread keeps up to LWC_POOL_CACHED free nodes of each pool to
 * itself, in thread-local storage, so that taking and giving a node is a
 * load and a store.  An empty cache takes half its size from the free array
 * at once, a full one gives half back, both under the lock.  A thread's
 * cache goes back to the free array when the thread exits (a bound thread
 * exits with its SCont), through a pthread key; a thread whose cache cannot
 * be registered with it uses the free array only.  Nodes are taken and given
 * between two switch points, never across one, so an SCont that moves
 * between OS threads is no concern.  The caches are thread-local storage, which the detector
 * does not scan (Note [Pools and the detector]); lwc_pool_destroy_all finds
 * their nodes in `all`. */
#define LWC_POOL_CACHED 32
#define LWC_POOL_SLOTS  2

struct lwc_pool_cache { struct lwc_pool *pool; unsigned n; void *node[LWC_POOL_CACHED]; };

/* initial-exec: the libraries are linked, not dlopen'ed, and the default
 * model would call __tls_get_addr on every take and give. */
static __thread struct lwc_pool_cache lwc_pool_caches[LWC_POOL_SLOTS]
    __attribute__((unused, tls_model("initial-exec")));

/* Move up to n nodes from the cache to the free array; with the lock held. */
static inline void lwc_pool_spill(struct lwc_pool *p, struct lwc_pool_cache *c, unsigned n)
{
    while (n-- && c->n)
        p->free[p->nfree++] = c->node[--c->n];      /* room: nfree < nall <= cap */
}

static __attribute__((unused)) void lwc_pool_thread_exit(void *cache)
{
    struct lwc_pool_cache *c = cache;
    pthread_mutex_lock(&c->pool->lock);
    lwc_pool_spill(c->pool, c, LWC_POOL_CACHED);
    pthread_mutex_unlock(&c->pool->lock);
}

/* The calling thread's cache of p. */
static inline struct lwc_pool_cache *lwc_pool_cache(struct lwc_pool *p)
{
    return &lwc_pool_caches[p->slot];
}

/* Register c to be given back when this thread exits; false if it cannot be.
 * With the lock held. */
static inline bool lwc_pool_attach(struct lwc_pool *p, struct lwc_pool_cache *c)
{
    if (c->pool)
        return true;
    if (!p->key_made)
        p->key_made = pthread_key_create(&p->key, lwc_pool_thread_exit) == 0 ? 1 : -1;
    if (p->key_made < 0 || pthread_setspecific(p->key, c) != 0)
        return false;
    c->pool = p;
    return true;
}

/* Room for one more node in the arrays; with the lock held. */
static inline bool lwc_pool_room(struct lwc_pool *p)
{
    if (p->nall < p->cap)
        return true;
    size_t cap = p->cap ? 2 * p->cap : 64;
    void **f = realloc(p->free, cap * sizeof *f);
    if (f)
        p->free = f;
    if (f && !p->traced) {
        void **a = realloc(p->all, cap * sizeof *a);
        if (!a)
            return false;
        p->all = a;
    }
    if (!f)
        return false;
    p->cap = cap;
    return true;
}

/* lwc_pool_take with an empty cache. */
static __attribute__((noinline, unused)) void *lwc_pool_take_slow(struct lwc_pool *p,
                                                          struct lwc_pool_cache *c)
{
    void *n = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->nfree)
        n = p->free[--p->nfree];
    while (p->nfree && c->n < LWC_POOL_CACHED / 2 && lwc_pool_attach(p, c))
        c->node[c->n++] = p->free[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    if (n)
        return n;
    n = p->traced ? lwc_alloc(p->size) : calloc(1, p->size);
    if (!n)
        return NULL;
    pthread_mutex_lock(&p->lock);
    bool ok = lwc_pool_room(p);
    if (ok && p->all)
        p->all[p->nall] = n;
    if (ok)
        p->nall++;
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

/* A node from the pool, or a new zeroed one; NULL when out of memory.  A
 * node's PVars live in it (a new one's zero bytes are PVars holding 0:
 * <lwc/ptm.h>), and go back to the pool with it. */
static inline void *lwc_pool_take(struct lwc_pool *p)
{
    struct lwc_pool_cache *c = lwc_pool_cache(p);
    if (__builtin_expect(c->n != 0, 1))
        return c->node[--c->n];
    return lwc_pool_take_slow(p, c);
}

static __attribute__((noinline, unused)) void lwc_pool_give_slow(struct lwc_pool *p,
                                                         struct lwc_pool_cache *c, void *n)
{
    pthread_mutex_lock(&p->lock);
    if (c->n == LWC_POOL_CACHED)
        lwc_pool_spill(p, c, LWC_POOL_CACHED / 2);
    if (lwc_pool_attach(p, c))
        c->node[c->n++] = n;
    else
        p->free[p->nfree++] = n;        /* room: nfree < nall <= cap */
    pthread_mutex_unlock(&p->lock);
}

static inline void lwc_pool_give(struct lwc_pool *p, void *n)
{
    struct lwc_pool_cache *c = lwc_pool_cache(p);
    if (__builtin_expect(c->n < LWC_POOL_CACHED && c->pool != NULL, 1))
        c->node[c->n++] = n;
    else
        lwc_pool_give_slow(p, c, n);
}

/* At exit: every node an untraced pool ever made, given back or not, to
 * destroy (if any: it frees what the node owns), then back to malloc.  A
 * traced pool's nodes stay where they are (Note [Type-stable nodes]). */
static inline void lwc_pool_destroy_all(struct lwc_pool *p, void (*destroy)(void *))
{
    for (size_t i = 0; p->all && i < p->nall; i++) {
        if (destroy)
            destroy(p->all[i]);
        free(p->all[i]);
    }
    free(p->free);
    free(p->all);
    p->free = p->all = NULL;
    p->nfree = p->nall = p->cap = 0;
    lwc_pool_cache(p)->n = 0;           /* this thread's: the others have exited */
    if (p->key_made > 0)
        pthread_key_delete(p->key);
    p->key_made = 0;
}

#endif
