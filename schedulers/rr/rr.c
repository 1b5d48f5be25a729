/* The round-robin scheduler: a FIFO run queue in PVars, on the public API. */
#include <lwc/lwc.h>
#include <lwc/rr.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../common/home.h"
#include "../common/main.h"
#include "../common/thread.h"
#include "rr.h"

/* Note [rr capabilities]
 * ~~~~~~~~~~~~~~~~~~~~~~
 * An instance holds every capability it starts until it is closed: a capability
 * that finds the queue empty sleeps in rr_next's retry, and wakes when a push
 * writes `head`.  `caps` counts them (started, not yet gone), so a spawn knows
 * whether to start one more.  Closing makes rr_next give each capability back
 * once the queue is empty: for lwc_rr_free, once no thread is live either; for
 * lwc_main, whose function has returned, at once (threads blocked for good
 * stay where they are).  Only once `caps` is 0 is no capability inside the
 * instance's code, and its PVars may go.
 *
 * `live` counts the threads whose function has not returned: Note [Live
 * threads] in ../common/thread.h. */
struct lwc_rr {
    lwc_pvar_t *head, *tail;    /* runnable threads, FIFO */
    struct sched_live live;
    lwc_pvar_t *caps;           /* capabilities working for rr: Note [rr capabilities] */
    lwc_pvar_t *closing;        /* RR_OPEN, RR_CLOSING (when idle) or RR_DRAIN (when nothing runs) */
    struct sched_homes homes;   /* Note [Threads with a home] in ../common/home.h */
    unsigned    max_caps;
};

#define RD(pv)      lwc_pvar_read(tx, (pv))
#define WR(pv, v)   lwc_pvar_write(tx, (pv), (lwc_word_t)(v))

static void push(lwc_tx_t *tx, lwc_rr_t *rr, struct sched_thread *t)
{
    fifo_push(tx, rr->head, rr->tail, t);
}

/* The next thread for this capability: Note [Threads with a home]. */
static struct sched_thread *pop(lwc_tx_t *tx, lwc_rr_t *rr)
{
    if (__builtin_expect(!rr->homes.n, 1))
        return fifo_pop(tx, rr->head, rr->tail);
    unsigned here = lwc_cap_self();
    struct sched_thread *t = sched_home_pop(tx, &rr->homes, here);
    return t ? t : sched_pop_here(tx, &rr->homes, rr->head, rr->tail, here);
}

/* ---- upcalls ------------------------------------------------------------------------ */

static lwc_scont_t *rr_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    lwc_rr_t *rr = env;
    sched_thread_completing(tx, self, why);     /* Note [Orphans] in ../common/thread.h */
    struct sched_thread *t = pop(tx, rr);
    if (t)
        return thread_scont(t);
    lwc_word_t closing = RD(rr->closing);
    if (closing == RR_OPEN || (closing == RR_CLOSING && sched_any_live(tx, &rr->live)))
        lwc_tx_retry(tx);                       /* idle here until a push */
    WR(rr->caps, RD(rr->caps) - 1);             /* Note [rr capabilities] */
    return NULL;
}

static void rr_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    struct sched_thread *t = sched_thread_of(s, env);
    if (t)
        push(tx, env, t);
}

lwc_rr_t *lwc_rr_self(void)
{
    return sched_self(rr_next);
}

/* ---- threads ------------------------------------------------------------------------ */

static void trampoline(void *arg)
{
    struct sched_thread *t = arg;
    lwc_scont_run(t->fn, t->arg);
    lwc_rr_t *rr = thread_sched(t);
    sched_thread_done(t);
    sched_count_out(&rr->live);
}

struct spawn { lwc_rr_t *rr; struct sched_thread *t; bool start; };

static lwc_word_t spawn_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    lwc_rr_t *rr = sp->rr;
    if (RD(rr->closing) != RR_OPEN)
        return LWC_EINVAL;
    lwc_word_t caps = RD(rr->caps);
    sp->start = caps < rr->max_caps;
    if (sp->start)
        WR(rr->caps, caps + 1);
    else
        push(tx, rr, sp->t);
    return LWC_OK;
}

/* Undo a start that found no idle capability: queue it, or give up if rr has
 * no capability to run it. */
static lwc_word_t unstart_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    lwc_word_t caps = RD(sp->rr->caps) - 1;
    WR(sp->rr->caps, caps);
    if (caps == 0)
        return LWC_EBUSY;
    push(tx, sp->rr, sp->t);
    return LWC_OK;
}

static struct sched_thread *thread_new(lwc_rr_t *rr, void (*fn)(void *), void *arg, bool bound)
{
    lwc_upcalls_t u = { rr_next, rr_unblock, rr };
    return sched_thread_new(rr, fn, arg, trampoline, &u, bound);
}

static __attribute__((noinline)) int rr_spawn(lwc_rr_t *rr, void (*fn)(void *), void *arg,
                                                bool bound)
{
    struct spawn sp = { rr, thread_new(rr, fn, arg, bound), false };
    if (!sp.t)
        return errno == EINVAL ? LWC_EINVAL : LWC_ENOMEM;
    lwc_scont_t *s = thread_scont(sp.t);
    lwc_word_t err = LWC_OK;
    sched_count_in(&rr->live);                  /* before it can run */
    int terr = lwc_atomically(spawn_body, &sp, &err);
    if (terr == LWC_OK && err == LWC_OK && sp.start && lwc_cap_start(s) != LWC_OK) {
        terr = lwc_atomically(unstart_body, &sp, &err);
    }
    if (terr != LWC_OK || err != LWC_OK) {
        /* Never ran: its SCont and node go back. */
        sched_thread_give(sp.t);
        sched_count_out(&rr->live);
        return terr != LWC_OK ? terr : (int)(intptr_t)err;
    }
    return LWC_OK;
}

/* The public spawns: checked, and scrubbed after. */
static int spawn_checked(lwc_rr_t *rr, void (*fn)(void *), void *arg, bool bound)
{
    if (!rr || !fn)
        return LWC_EINVAL;
    int err = rr_spawn(rr, fn, arg, bound);
    lwc_stack_scrub();          /* Note [Scrubbing the stack] in substrate/detect.c */
    return err;
}

int lwc_rr_spawn(lwc_rr_t *rr, void (*fn)(void *), void *arg)
{
    return spawn_checked(rr, fn, arg, false);
}

int lwc_rr_spawn_bound(lwc_rr_t *rr, void (*fn)(void *), void *arg)
{
    return spawn_checked(rr, fn, arg, true);
}

static lwc_scont_t *yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    lwc_rr_t *rr = arg;
    *st = LWC_BLOCKED_ON_SCHED;
    struct sched_thread *next;
    if (__builtin_expect(!rr->homes.n, 1)) {
        next = fifo_rotate(tx, rr->head, rr->tail, lwc_scont_get_local(self));
    } else if ((next = pop(tx, rr))) {
        push(tx, rr, lwc_scont_get_local(self));
    }
    return next ? thread_scont(next) : self;    /* nobody else: carry on */
}

int lwc_rr_yield(void)
{
    lwc_rr_t *rr = lwc_rr_self();
    return rr ? lwc_switch(yield_body, rr) : LWC_EINVAL;
}

/* ---- instances ------------------------------------------------------------------------- */

lwc_rr_t *lwc_rr_new(unsigned max_caps)
{
    unsigned ncaps = lwc_cap_count();
    if (ncaps == 0) {
        errno = EINVAL;
        return NULL;
    }
    lwc_sched_adopts_orphans(rr_next);
    lwc_rr_t *rr = calloc(1, sizeof *rr);
    if (!rr)
        goto nomem;
    rr->max_caps = max_caps && max_caps < ncaps ? max_caps : ncaps;
    rr->head = lwc_pvar_new(0);
    rr->tail = lwc_pvar_new(0);
    rr->live.quiet = lwc_pvar_new(0);
    rr->caps = lwc_pvar_new(0);
    rr->closing = lwc_pvar_new(RR_OPEN);
    if (rr->head && rr->tail && rr->live.quiet && rr->caps && rr->closing &&
        sched_homes_init(&rr->homes))
        return rr;
    lwc_rr_free_memory(rr);
nomem:
    errno = ENOMEM;
    return NULL;
}

static lwc_word_t wait_idle(lwc_tx_t *tx, void *arg)
{
    if (sched_any_live(tx, &((lwc_rr_t *)arg)->live))
        lwc_tx_retry(tx);
    return 0;
}

int lwc_rr_spawn_on(void *rr, void (*fn)(void *), void *arg)
{
    return lwc_rr_spawn(rr, fn, arg);
}

int lwc_rr_incall(lwc_rr_t *rr, void (*fn)(void *), void *arg)
{
    return sched_incall(lwc_rr_spawn_on, rr, fn, arg);
}

int lwc_rr_wait(lwc_rr_t *rr)
{
    if (!rr)
        return LWC_EINVAL;
    return lwc_atomically(wait_idle, rr, NULL);
}

static lwc_word_t close_body(lwc_tx_t *tx, void *arg)
{
    void **a = arg;
    lwc_rr_t *rr = a[0];
    WR(rr->closing, (lwc_word_t)a[1]);
    return 0;
}

static lwc_word_t wait_caps_gone(lwc_tx_t *tx, void *arg)
{
    lwc_rr_t *rr = arg;
    if (RD(rr->caps) > 0)
        lwc_tx_retry(tx);
    return 0;
}

int lwc_rr_close(lwc_rr_t *rr, int how)
{
    void *a[2] = { rr, (void *)(uintptr_t)how };
    int err = lwc_atomically(close_body, a, NULL);
    return err != LWC_OK ? err : lwc_atomically(wait_caps_gone, rr, NULL);
}

void lwc_rr_free_memory(lwc_rr_t *rr)
{
    lwc_pvar_free(rr->head);
    lwc_pvar_free(rr->tail);
    lwc_pvar_free(rr->live.quiet);
    lwc_pvar_free(rr->caps);
    lwc_pvar_free(rr->closing);
    sched_homes_free(&rr->homes);
    free(rr);
}

void lwc_rr_free(lwc_rr_t *rr)
{
    if (!rr)
        return;
    lwc_rr_wait(rr);
    lwc_rr_close(rr, RR_CLOSING);
    lwc_rr_free_memory(rr);
}
