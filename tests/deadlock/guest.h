/* A guest scheduler for the detector's tests: a FIFO run queue in PVars that
 * runs on a capability borrowed from the thread that enters it, and hands the
 * capability back when its queue is empty or it is told to stop.  Whatever is
 * queued when it stops stays there: with nothing else referring to the guest,
 * those threads are stranded (scenario 9, Note [Orphans] in
 * substrate/detect_wake.c).  It does not take orphans itself. */
#ifndef LWC_TEST_GUEST_H
#define LWC_TEST_GUEST_H

#include "../generic/blocked.h"

#include <string.h>

#define GUEST_THREADS 4

struct guest_thread {
    lwc_pvar_t   *next;
    lwc_scont_t  *s;
    struct guest *g;
    int           i;            /* its index in g->t */
    void         *arg;
};

struct guest {
    lwc_pvar_t  *head, *tail;
    lwc_scont_t *host;          /* suspended while the guest runs */
    bool         stopping;      /* hand the capability back, whatever is queued */
    int          n;
    struct guest_thread *t[GUEST_THREADS];
};

static void guest_push(lwc_tx_t *tx, struct guest *g, struct guest_thread *t)
{
    lwc_pvar_write(tx, t->next, 0);
    struct guest_thread *last = (struct guest_thread *)lwc_pvar_read(tx, g->tail);
    lwc_pvar_write(tx, last ? last->next : g->head, (lwc_word_t)t);
    lwc_pvar_write(tx, g->tail, (lwc_word_t)t);
}

static struct guest_thread *guest_pop(lwc_tx_t *tx, struct guest *g)
{
    struct guest_thread *t = (struct guest_thread *)lwc_pvar_read(tx, g->head);
    if (t) {
        lwc_word_t next = lwc_pvar_read(tx, t->next);
        lwc_pvar_write(tx, g->head, next);
        if (!next)
            lwc_pvar_write(tx, g->tail, 0);
        else
            lwc_pvar_write(tx, t->next, 0);
    }
    return t;
}

static lwc_scont_t *guest_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why;
    struct guest *g = env;
    struct guest_thread *t = g->stopping ? NULL : guest_pop(tx, g);
    return t ? t->s : g->host;
}

static void guest_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    guest_push(tx, env, lwc_scont_get_local(s));
}

static lwc_scont_t *guest_yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg,
                                     lwc_status_t *st)
{
    struct guest *g = arg;
    *st = LWC_BLOCKED_ON_SCHED;
    struct guest_thread *next = guest_pop(tx, g);
    if (!next)
        return self;
    guest_push(tx, g, lwc_scont_get_local(self));
    return next->s;
}

static inline int guest_yield(struct guest *g)
{
    return lwc_switch(guest_yield_body, g);
}

static inline void guest_init(struct guest *g)
{
    memset(g, 0, sizeof *g);
    g->head = lwc_pvar_new(0);
    g->tail = lwc_pvar_new(0);
    ck_assert(g->head && g->tail);
}

static lwc_word_t guest_enqueue_body(lwc_tx_t *tx, void *t)
{
    guest_push(tx, ((struct guest_thread *)t)->g, t);
    return 0;
}

/* A thread of g that runs fn(its guest_thread); queued unless it is to be
 * entered first. */
static inline struct guest_thread *guest_spawn(struct guest *g, void (*fn)(void *), void *arg,
                                               bool queue)
{
    ck_assert_int_lt(g->n, GUEST_THREADS);
    struct guest_thread *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    *t = (struct guest_thread){ lwc_pvar_new(0), lwc_scont_new(fn, t, NULL), g, g->n, arg };
    ck_assert(t->next && t->s);
    lwc_upcalls_t u = { guest_next, guest_unblock, g };
    lwc_scont_set_upcalls(t->s, &u);
    lwc_scont_set_local(t->s, t);
    g->t[g->n++] = t;
    if (queue)
        ck_assert_int_eq(lwc_atomically(guest_enqueue_body, t, NULL), LWC_OK);
    return t;
}

static lwc_scont_t *guest_enter_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg,
                                     lwc_status_t *st)
{
    struct guest *g = arg;
    g->host = self;
    *st = LWC_BLOCKED_ON_SCHED;
    struct guest_thread *t = guest_pop(tx, g);
    return t ? t->s : self;
}

/* Run g's queue on the caller's capability until g hands it back. */
static inline void guest_enter(struct guest *g)
{
    ck_assert_int_eq(lwc_switch(guest_enter_body, g), LWC_OK);
    g->host = NULL;
}

/* Every thread of g has completed, or will not run again. */
static inline void guest_destroy(struct guest *g)
{
    for (int i = 0; i < g->n; i++) {
        lwc_scont_release(g->t[i]->s);
        lwc_pvar_free(g->t[i]->next);
        free(g->t[i]);
    }
    lwc_pvar_free(g->head);
    lwc_pvar_free(g->tail);
    g->n = 0;
}

#endif
