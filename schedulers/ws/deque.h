/* The work-stealing deque of one ws worker (Chase and Lev, 2005), with the
 * C11 orderings of Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient
 * Work-Stealing for Weak Memory Models" (PPoPP 2013).  Private to ws.
 *
 * Note [Deque orderings]
 * ~~~~~~~~~~~~~~~~~~~~~~
 * One owner pushes and takes at the bottom; any thread steals at the top.  An
 * element lives in slots [top, bottom).  What must never happen: an element
 * taken twice (owner and thief, or two thieves) or lost.
 *
 * - Two thieves race for one slot with a CAS on `top`; the loser reports
 *   DEQUE_ABORT and reads nothing it keeps.
 * - push: the element is written, then a release fence, then `bottom` moves.
 *   A thief loads `bottom` with acquire after its `top`, so a slot it finds in
 *   [top, bottom) holds the element the owner wrote (the fence pairs with that
 *   acquire), including after a grow: the new array is published before the
 *   new `bottom`, and the thief reads `array` after `bottom`.
 * - take: the owner first lowers `bottom` to claim slot b, then a seq_cst fence,
 *   then reads `top`.  A thief reads `top`, then a seq_cst fence, then `bottom`.
 *   The two fences are ordered one way or the other: either the thief sees the
 *   lowered bottom (and leaves slot b alone), or the owner sees the thief's
 *   `top` (and, seeing top == b, the last element, competes for it with the
 *   same CAS on `top` that thieves use).  Without both fences this is the store
 *   buffering shape, where each side can miss the other's store and both take
 *   the last element.
 * - The CAS on `top` is seq_cst, so it is ordered with both fences.
 * - An array that grows is not freed: a thief may still be reading the old one
 *   (it loaded `array` before the grow).  Old arrays are kept until the deque is
 *   destroyed, when no thief runs.  Sizes double, so they total less than the
 *   current one.
 *
 * The model in tests/model/deque.pml checks the algorithm (which interleavings
 * are possible under sequential consistency: every element taken exactly once)
 * with spin in `make check`; the orderings above are what make a weak-memory
 * machine behave like that model. */
#ifndef LWC_WS_DEQUE_H
#define LWC_WS_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define DEQUE_ABORT ((void *)1)       /* steal lost a race: try again elsewhere */

/* ThreadSanitizer does not model fences (gcc refuses them with -Wtsan).  Under
 * it every access of the deque and of ws's sleep protocol is seq_cst and the
 * fences go: one total order over all of them orders at least what the
 * fences of Note [Deque orderings] and Note [Sleeping and waking] order. */
#ifdef __SANITIZE_THREAD__
#define DEQUE_ORDER(o)  memory_order_seq_cst
#define DEQUE_FENCE(o)  ((void)0)
#else
#define DEQUE_ORDER(o)  (o)
#define DEQUE_FENCE(o)  atomic_thread_fence(o)
#endif

struct deque_array {
    int64_t              size;        /* a power of two */
    struct deque_array  *older;       /* retired arrays, freed with the deque */
    _Atomic(void *)      slot[];
};

struct deque {
    _Atomic int64_t               top;
    char                          pad[64 - sizeof(int64_t)];  /* thieves write top */
    _Atomic int64_t               bottom;
    _Atomic(struct deque_array *) array;
};

static inline struct deque_array *deque_array_new(int64_t size, struct deque_array *older)
{
    struct deque_array *a = malloc(sizeof *a + (size_t)size * sizeof a->slot[0]);
    if (a) {
        a->size = size;
        a->older = older;
    }
    return a;
}

static inline int deque_init(struct deque *d, int64_t size)
{
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    struct deque_array *a = deque_array_new(size, NULL);
    atomic_init(&d->array, a);
    return a ? 0 : -1;
}

static inline void deque_destroy(struct deque *d)
{
    for (struct deque_array *a = atomic_load(&d->array), *o; a; a = o) {
        o = a->older;
        free(a);
    }
}

/* Owner only.  -1 if the deque is full and no memory is left to grow it. */
static inline int deque_push(struct deque *d, void *x)
{
    int64_t b = atomic_load_explicit(&d->bottom, DEQUE_ORDER(memory_order_relaxed));
    int64_t t = atomic_load_explicit(&d->top, DEQUE_ORDER(memory_order_acquire));
    struct deque_array *a = atomic_load_explicit(&d->array, DEQUE_ORDER(memory_order_relaxed));
    if (b - t > a->size - 1) {
        struct deque_array *g = deque_array_new(2 * a->size, a);
        if (!g)
            return -1;
        for (int64_t i = t; i < b; i++)
            atomic_store_explicit(&g->slot[i & (g->size - 1)],
                atomic_load_explicit(&a->slot[i & (a->size - 1)], DEQUE_ORDER(memory_order_relaxed)),
                DEQUE_ORDER(memory_order_relaxed));
        atomic_store_explicit(&d->array, g, DEQUE_ORDER(memory_order_release));
        a = g;
    }
    atomic_store_explicit(&a->slot[b & (a->size - 1)], x, DEQUE_ORDER(memory_order_relaxed));
    DEQUE_FENCE(memory_order_release);
    atomic_store_explicit(&d->bottom, b + 1, DEQUE_ORDER(memory_order_relaxed));
    return 0;
}

/* Owner only: the newest element, or NULL. */
static inline void *deque_take(struct deque *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, DEQUE_ORDER(memory_order_relaxed)) - 1;
    struct deque_array *a = atomic_load_explicit(&d->array, DEQUE_ORDER(memory_order_relaxed));
    atomic_store_explicit(&d->bottom, b, DEQUE_ORDER(memory_order_relaxed));
    DEQUE_FENCE(memory_order_seq_cst);
    int64_t t = atomic_load_explicit(&d->top, DEQUE_ORDER(memory_order_relaxed));
    void *x = NULL;
    if (t <= b) {
        x = atomic_load_explicit(&a->slot[b & (a->size - 1)], DEQUE_ORDER(memory_order_relaxed));
        if (t == b) {                   /* the last one: race the thieves for it */
            if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
                    DEQUE_ORDER(memory_order_seq_cst), DEQUE_ORDER(memory_order_relaxed)))
                x = NULL;
            atomic_store_explicit(&d->bottom, b + 1, DEQUE_ORDER(memory_order_relaxed));
        }
    } else {
        atomic_store_explicit(&d->bottom, b + 1, DEQUE_ORDER(memory_order_relaxed));
    }
    return x;
}

/* Any thread: the oldest element, NULL if empty, DEQUE_ABORT on a lost race;
 * with `ok`, only an element it accepts: NULL (as if empty) if the oldest is
 * not one.  The element is read before the CAS takes it, so `ok` may see one
 * that another took meanwhile, or NULL from a slot of a grown array that was
 * never copied (the CAS then fails): it must be safe to call on NULL and on
 * any element ever pushed. */
static inline void *deque_steal_if(struct deque *d, bool (*ok)(void *x, void *arg), void *arg)
{
    int64_t t = atomic_load_explicit(&d->top, DEQUE_ORDER(memory_order_acquire));
    DEQUE_FENCE(memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, DEQUE_ORDER(memory_order_acquire));
    if (t >= b)
        return NULL;
    struct deque_array *a = atomic_load_explicit(&d->array, DEQUE_ORDER(memory_order_acquire));
    void *x = atomic_load_explicit(&a->slot[t & (a->size - 1)], DEQUE_ORDER(memory_order_relaxed));
    if (ok && !ok(x, arg))
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
            DEQUE_ORDER(memory_order_seq_cst), DEQUE_ORDER(memory_order_relaxed)))
        return DEQUE_ABORT;
    return x;
}

/* Any thread: the oldest element, NULL if empty, DEQUE_ABORT on a lost race. */
static inline void *deque_steal(struct deque *d)
{
    return deque_steal_if(d, NULL, NULL);
}

/* Any thread, a hint: does the deque look non-empty? */
static inline int deque_looks_busy(struct deque *d)
{
    return atomic_load_explicit(&d->bottom, DEQUE_ORDER(memory_order_relaxed)) >
           atomic_load_explicit(&d->top, DEQUE_ORDER(memory_order_relaxed));
}

#endif
