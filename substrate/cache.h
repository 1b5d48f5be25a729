/* Free lists for things made once and reused many times (SCont structs,
 * stacks): a cache per OS thread in front of a global depot under a mutex,
 * with nodes moved between them a batch at a time.  A thread that frees what
 * another creates (one capability spawns, the other finishes) takes the mutex
 * once per LWC_CACHE_BATCH nodes instead of once per node.  Nodes are linked
 * through a `void *` field at offset `link`. */
#ifndef LWC_SUBSTRATE_CACHE_H
#define LWC_SUBSTRATE_CACHE_H

#include <pthread.h>
#include <stddef.h>

#define LWC_CACHE_MAX   64
#define LWC_CACHE_BATCH 32

struct lwc_cache {
    void    *head;
    unsigned n;
};

struct lwc_depot {
    pthread_mutex_t lock;
    void           *head;
    unsigned        n, max;     /* past max, nodes go back to the caller to destroy */
};

#define LWC_DEPOT_INIT(max) { PTHREAD_MUTEX_INITIALIZER, NULL, 0, (max) }
#define LWC_CACHE_LINK(x, link) (*(void **)((char *)(x) + (link)))

/* A node from c, refilled from d when empty; NULL if both are empty.  c may be
 * NULL (a thread lwc has no record for): then straight from d. */
static inline void *lwc_cache_take(struct lwc_cache *c, struct lwc_depot *d, size_t link)
{
    if (c && c->head) {
        void *x = c->head;
        c->head = LWC_CACHE_LINK(x, link);
        c->n--;
        return x;
    }
    void *x;
    pthread_mutex_lock(&d->lock);
    if ((x = d->head)) {
        d->head = LWC_CACHE_LINK(x, link);
        d->n--;
        while (c && d->head && c->n < LWC_CACHE_BATCH) {
            void *y = d->head;
            d->head = LWC_CACHE_LINK(y, link);
            d->n--;
            LWC_CACHE_LINK(y, link) = c->head;
            c->head = y;
            c->n++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return x;
}

/* Move up to n nodes from the list *from into d; *from keeps the rest.
 * Returns the nodes d had no room for, linked, for the caller to destroy. */
static inline void *lwc_depot_put(struct lwc_depot *d, void **from, unsigned n, size_t link)
{
    void *spill = NULL, *x = *from;
    pthread_mutex_lock(&d->lock);
    for (; n && x; n--) {
        void *next = LWC_CACHE_LINK(x, link);
        void **to = d->n < d->max ? &d->head : &spill;
        d->n += d->n < d->max;
        LWC_CACHE_LINK(x, link) = *to;
        *to = x;
        x = next;
    }
    pthread_mutex_unlock(&d->lock);
    *from = x;
    return spill;
}

/* Give x back (to c; when c overflows, a batch moves to d).  Returns the nodes
 * d had no room for, for the caller to destroy; usually NULL. */
static inline void *lwc_cache_give(struct lwc_cache *c, struct lwc_depot *d, size_t link, void *x)
{
    if (!c) {
        LWC_CACHE_LINK(x, link) = NULL;
        return lwc_depot_put(d, &x, 1, link);
    }
    LWC_CACHE_LINK(x, link) = c->head;
    c->head = x;
    if (++c->n <= LWC_CACHE_MAX)
        return NULL;
    c->n -= LWC_CACHE_BATCH;
    return lwc_depot_put(d, &c->head, LWC_CACHE_BATCH, link);
}

/* Everything in c to d (a thread that goes away); returns what d had no room for. */
static inline void *lwc_cache_flush(struct lwc_cache *c, struct lwc_depot *d, size_t link)
{
    c->n = 0;
    return lwc_depot_put(d, &c->head, -1u, link);
}

#endif
