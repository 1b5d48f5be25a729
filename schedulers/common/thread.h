/* The node a scheduler module keeps per thread (the SCont's local state), its
 * pool, and finding the instance the running thread belongs to.  Header-only:
 * each scheduler library includes it once and has a pool of its own (two
 * libraries linked statically into one program must not clash). */
#ifndef LWC_SCHEDULERS_THREAD_H
#define LWC_SCHEDULERS_THREAD_H

#include <lwc/lwc.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "fifo.h"
#include "pool.h"

/* `next`, `sched` and `s` may be read by a doomed transaction of another
 * capability while the node is reused (Note [Type-stable nodes] in pool.h):
 * `next` is never rewritten, the other two are atomic, so even such a read is
 * no data race.  Use thread_sched and thread_scont. */
struct sched_thread {
    lwc_pvar_t   next;              /* first: a fifo_node */
    _Atomic(void *) sched;          /* the instance */
    _Atomic(lwc_scont_t *) s;
    void       (*fn)(void *);
    void        *arg;
    union {
        struct {
            unsigned round;         /* ws: Note [Fair turns] in ../ws/ws.c */
            _Atomic uint64_t waker; /* ws: Note [The hand-off slot] in ../ws/ws.c */
        };
        lwc_word_t word;            /* a kit policy's (lwc_kit_thread_word) */
    };
};
_Static_assert(sizeof(struct sched_thread) <= 64,
               "Note [What a blocked thread costs] in substrate/internal.h");

static inline void *thread_sched(struct sched_thread *t)
{
    return atomic_load_explicit(&t->sched, memory_order_relaxed);
}

static inline lwc_scont_t *thread_scont(struct sched_thread *t)
{
    return atomic_load_explicit(&t->s, memory_order_relaxed);
}

static struct lwc_pool thread_pool = LWC_POOL_INIT(struct sched_thread, true, 0);

__attribute__((destructor)) static void sched_thread_pool_drain(void)
{
    lwc_pool_destroy_all(&thread_pool, NULL);
}

/* A node of `sched` for fn(arg); NULL when out of memory. */
static inline struct sched_thread *sched_node_take(void *sched, void (*fn)(void *), void *arg)
{
    struct sched_thread *t = lwc_pool_take(&thread_pool);
    if (!t)
        return NULL;
    atomic_store_explicit(&t->sched, sched, memory_order_relaxed);
    t->fn = fn;
    t->arg = arg;
    return t;
}

/* A thread of `sched` that will run trampoline(node) with the upcalls given
 * (env = sched), on an OS thread of its own if `bound`; not yet runnable.
 * NULL with errno set (from lwc_scont_new). */
static inline struct sched_thread *sched_thread_new(void *sched, void (*fn)(void *), void *arg,
                                                    void (*trampoline)(void *),
                                                    const lwc_upcalls_t *u, bool bound)
{
    struct sched_thread *t = sched_node_take(sched, fn, arg);
    if (!t)
        return NULL;
    lwc_scont_attr_t attr = { .upcalls = u };
    lwc_scont_t *s = bound ? lwc_scont_new_bound(trampoline, t, &attr)
                           : lwc_scont_new(trampoline, t, &attr);
    atomic_store_explicit(&t->s, s, memory_order_relaxed);
    if (!s) {
        lwc_pool_give(&thread_pool, t);
        return NULL;
    }
    lwc_scont_set_local(s, t);
    return t;
}

/* The node goes back: from the thread itself once its function has returned
 * (the SCont stays alive until it completes), or for a thread that never ran. */
static inline void sched_thread_give(struct sched_thread *t)
{
    lwc_scont_release(thread_scont(t));
    lwc_pool_give(&thread_pool, t);
}

/* A thread of ours has returned from its function: its node goes back, and
 * its local state is cleared first, so that switch_to_next can tell an
 * orphan's node (Note [Orphans]).  A thread adopted elsewhere since keeps
 * the local state its adopter gave it, and its old node stays out of the
 * pool: it may still be linked in the queue of the scheduler that died, and
 * a node in the pool must have no link (Note [No stale links] in fifo.h). */
static inline void sched_thread_done(struct sched_thread *t)
{
    lwc_scont_t *s = thread_scont(t);
    if (lwc_scont_get_local(s) != t) {
        lwc_scont_release(s);
        return;
    }
    lwc_scont_set_local(s, NULL);
    sched_thread_give(t);
}

/* Note [Orphans]
 * ~~~~~~~~~~~~~~
 * rr and ws adopt the threads of a scheduler that nothing can reach any more
 * (lwc_sched_adopts_orphans in detect.h, Note [Orphans] in
 * substrate/detect_wake.c).  Such a thread arrives in unblock_thread with no local
 * state, and gets a node of ours with no function: its old scheduler's
 * trampoline still runs when its function returns, and gives back the old
 * node.  It is not counted in `live`, which only a trampoline of ours counts
 * out (Note [rr capabilities] says why not in switch_to_next).  Our own
 * threads clear their local state before they complete (sched_thread_done),
 * so a thread that completes with a node is an orphan, and switch_to_next
 * gives the node back once the completion commits. */
static inline struct sched_thread *sched_thread_of(lwc_scont_t *s, void *sched)
{
    struct sched_thread *t = lwc_scont_get_local(s);
    if (t)
        return t;
    if (!(t = sched_node_take(sched, NULL, NULL)))
        return NULL;                            /* the detector undoes the adoption */
    atomic_store_explicit(&t->s, s, memory_order_relaxed);
    lwc_scont_set_local(s, t);
    return t;
}

static void orphan_node_give(void *t)
{
    lwc_pool_give(&thread_pool, t);
}

/* In switch_to_next: an orphan that completes gives its node back. */
static inline void sched_thread_completing(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why)
{
    struct sched_thread *t;
    if (__builtin_expect(why == LWC_COMPLETED, 0) && (t = lwc_scont_get_local(self)))
        lwc_tx_defer(tx, orphan_node_give, t);
}

/* Note [Live threads]
 * ~~~~~~~~~~~~~~~~~~~~
 * A scheduler counts the threads whose function has not returned, to know
 * when it may give its capabilities back and when lwc_*_wait returns.  The
 * count is a plain atomic, `live`, counted in before a spawn can run the
 * thread and out when its function returns, with no transaction: a spawn
 * then needs none for it, and the count is never rolled back (counted out in
 * switch_to_next as a thread completes, it would be, whenever that
 * switch_to_next retries for want of work, and two threads completing on two
 * capabilities would each see the other still live and both sleep forever).
 * Whoever brings it to 0 writes the PVar `quiet`, which waiters for "no
 * thread live" read before they load `live`: a decrement they miss is
 * followed by a write that wakes them. */
struct sched_live { _Atomic long n; lwc_pvar_t *quiet; };

static inline lwc_word_t sched_bump_body(lwc_tx_t *tx, void *pv)
{
    lwc_pvar_write(tx, pv, lwc_pvar_read(tx, pv) + 1);
    return 0;
}

static inline void sched_count_in(struct sched_live *l)
{
    atomic_fetch_add(&l->n, 1);
}

static inline void sched_count_out(struct sched_live *l)
{
    if (atomic_fetch_sub(&l->n, 1) == 1)
        lwc_atomically(sched_bump_body, l->quiet, NULL);
}

/* Is a thread live?  Inside a transaction, which may retry on the answer. */
static inline bool sched_any_live(lwc_tx_t *tx, struct sched_live *l)
{
    lwc_pvar_read(tx, l->quiet);
    return atomic_load(&l->n) > 0;
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
