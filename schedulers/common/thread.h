/* The node a scheduler module keeps per thread (the SCont's local state), its
 * pool, and finding the instance the running thread belongs to.  Header-only:
 * each scheduler library includes it once and has a pool of its own (two
 * libraries linked statically into one program must not clash). */
#ifndef LWC_SCHEDULERS_THREAD_H
#define LWC_SCHEDULERS_THREAD_H

#include <lwc/lwc.h>

#include "fifo.h"
#include "pool.h"

struct sched_thread {
    lwc_pvar_t  *next;              /* first: a fifo_node */
    void        *sched;             /* the instance */
    lwc_scont_t *s;
    void       (*fn)(void *);
    void        *arg;
    void        *pool_next, *pool_all;
};

static struct lwc_pool thread_pool = LWC_POOL_INIT(struct sched_thread, pool_next, pool_all);

static void sched_thread_destroy(void *node)
{
    struct sched_thread *t = node;
    lwc_pvar_free(t->next);
    free(t);
}

__attribute__((destructor)) static void sched_thread_pool_drain(void)
{
    lwc_pool_destroy_all(&thread_pool, sched_thread_destroy);
}

/* A thread of `sched` that will run trampoline(node) with the upcalls given
 * (env = sched); not yet runnable.  NULL with errno set (from lwc_scont_new). */
static inline struct sched_thread *sched_thread_new(void *sched, void (*fn)(void *), void *arg,
                                                    void (*trampoline)(void *),
                                                    const lwc_upcalls_t *u)
{
    struct sched_thread *t = lwc_pool_take(&thread_pool);
    if (!t)
        return NULL;
    if (!lwc_pool_pvar(&t->next)) {
        lwc_pool_give(&thread_pool, t);
        return NULL;
    }
    *t = (struct sched_thread){ t->next, sched, NULL, fn, arg, NULL, t->pool_all };
    if (!(t->s = lwc_scont_new(trampoline, t, NULL))) {
        lwc_pool_give(&thread_pool, t);
        return NULL;
    }
    lwc_scont_set_upcalls(t->s, u);
    lwc_scont_set_local(t->s, t);
    return t;
}

/* The node goes back: from the thread itself once its function has returned
 * (the SCont stays alive until it completes), or for a thread that never ran. */
static inline void sched_thread_give(struct sched_thread *t)
{
    lwc_scont_release(t->s);
    lwc_pool_give(&thread_pool, t);
}

/* The env of the running SCont's upcalls if its switch_to_next is `next`:
 * the instance of that scheduler it belongs to.  NULL otherwise. */
static inline void *sched_self(lwc_scont_t *(*next)(lwc_tx_t *, lwc_scont_t *, lwc_status_t, void *))
{
    lwc_scont_t *s = lwc_scont_self();
    lwc_upcalls_t u;
    if (!s || lwc_scont_get_upcalls(s, &u) != LWC_OK || u.switch_to_next != next)
        return NULL;
    return u.env;
}

#endif
