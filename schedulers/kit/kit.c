/* Scheduler instances from a policy (lwc/kit.h): the lifecycle every
 * scheduler repeats, around a push and a pop.  With no policy, the run queue
 * is a FIFO inlined here: that instance is liblwc-rr's. */
#include <lwc/lwc.h>
#include <lwc/kit.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../common/home.h"
#include "../common/thread.h"
#include "kit.h"

/* Note [Kit capabilities]
 * ~~~~~~~~~~~~~~~~~~~~~~~
 * An instance holds every capability it starts until it is closed: a capability
 * that finds the queue empty sleeps in kit_next's retry, and wakes when a push
 * writes `head`.  `caps` counts them (started, not yet gone), so a spawn knows
 * whether to start one more.  Closing makes kit_next give each capability back
 * once the queue is empty: for lwc_kit_free, once no thread is live either; for
 * lwc_main, whose function has returned, at once (threads blocked for good
 * stay where they are).  Only once `caps` is 0 is no capability inside the
 * instance's code, and its PVars may go.
 *
 * `live` counts the threads whose function has not returned: Note [Live
 * threads] in ../common/thread.h. */
struct lwc_kit {
    const lwc_kit_policy_t *policy;     /* NULL: the FIFO in head and tail */
    void       *state;
    lwc_pvar_t *head, *tail;    /* runnable threads, FIFO, without a policy */
    struct sched_live live;
    lwc_pvar_t *caps;           /* capabilities working for it: Note [Kit capabilities] */
    lwc_pvar_t *closing;        /* KIT_OPEN, KIT_CLOSING (when idle) or KIT_DRAIN (when nothing runs) */
    struct sched_homes homes;   /* Note [Threads with a home] in ../common/home.h */
    unsigned    max_caps;
};

#define RD(pv)      lwc_pvar_read(tx, (pv))
#define WR(pv, v)   lwc_pvar_write(tx, (pv), (lwc_word_t)(v))

/* Note [The built-in FIFO]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * An instance without a policy queues in `head` and `tail` with fifo.h's
 * inlined code, and a yield rotates the queue in one pass (fifo_rotate):
 * that is liblwc-rr, whose hot paths must not pay two indirect calls per
 * switch for a policy it does not have.  A policy's instance pays them. */
static inline void push(lwc_tx_t *tx, lwc_kit_t *k, struct sched_thread *t)
{
    if (__builtin_expect(!k->policy, 1))
        fifo_push(tx, k->head, k->tail, t);
    else
        k->policy->push(tx, k->state, (lwc_kit_thread_t *)t);
}

static inline struct sched_thread *policy_pop(lwc_tx_t *tx, lwc_kit_t *k)
{
    if (__builtin_expect(!k->policy, 1))
        return fifo_pop(tx, k->head, k->tail);
    return (struct sched_thread *)k->policy->pop(tx, k->state);
}

/* The next thread for this capability: Note [Threads with a home].  The
 * threads the policy gives whose home is another capability go there. */
static struct sched_thread *pop(lwc_tx_t *tx, lwc_kit_t *k)
{
    if (__builtin_expect(!k->homes.n, 1))
        return policy_pop(tx, k);
    unsigned here = lwc_cap_self();
    struct sched_thread *t = sched_home_pop(tx, &k->homes, here);
    if (t)
        return t;
    while ((t = policy_pop(tx, k)) && sched_away(t, here))
        sched_send_home(tx, &k->homes, t);
    return t;
}

/* ---- upcalls ------------------------------------------------------------------------ */

static lwc_scont_t *kit_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    lwc_kit_t *k = env;
    sched_thread_completing(tx, self, why);     /* Note [Orphans] in ../common/thread.h */
    struct sched_thread *t = pop(tx, k);
    if (t)
        return thread_scont(t);
    lwc_word_t closing = RD(k->closing);
    if (closing == KIT_OPEN || (closing == KIT_CLOSING && sched_any_live(tx, &k->live)))
        lwc_tx_retry(tx);                       /* idle here until a push */
    WR(k->caps, RD(k->caps) - 1);               /* Note [Kit capabilities] */
    return NULL;
}

static void kit_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    bool orphan = !lwc_scont_get_local(s);
    struct sched_thread *t = sched_thread_of(s, env);
    if (!t)
        return;
    if (orphan)
        t->word = 0;                            /* lwc_kit_self in lwc/kit.h */
    push(tx, env, t);
}

lwc_kit_t *lwc_kit_self(void)
{
    return sched_self(kit_next);
}

lwc_kit_thread_t *lwc_kit_thread_self(void)
{
    return lwc_kit_self() ? lwc_scont_get_local(lwc_scont_self()) : NULL;
}

void *lwc_kit_state(lwc_kit_t *k)
{
    return k ? k->state : NULL;
}

const lwc_kit_policy_t *lwc_kit_policy(lwc_kit_t *k)
{
    return k ? k->policy : NULL;
}

lwc_word_t lwc_kit_thread_word(lwc_kit_thread_t *t)
{
    return t ? ((struct sched_thread *)t)->word : 0;
}

int lwc_kit_set_word(lwc_word_t word)
{
    struct sched_thread *t = (struct sched_thread *)lwc_kit_thread_self();
    if (!t)
        return LWC_EINVAL;
    t->word = word;
    return LWC_OK;
}

lwc_scont_t *lwc_kit_thread_scont(lwc_kit_thread_t *t)
{
    return t ? thread_scont((struct sched_thread *)t) : NULL;
}

/* ---- threads ------------------------------------------------------------------------ */

static void trampoline(void *arg)
{
    struct sched_thread *t = arg;
    lwc_scont_run(t->fn, t->arg);
    lwc_kit_t *k = thread_sched(t);
    sched_thread_done(t);
    sched_count_out(&k->live);
}

struct spawn { lwc_kit_t *k; struct sched_thread *t; bool start; };

static lwc_word_t spawn_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    lwc_kit_t *k = sp->k;
    if (RD(k->closing) != KIT_OPEN)
        return LWC_EINVAL;
    lwc_word_t caps = RD(k->caps);
    sp->start = caps < k->max_caps;
    if (sp->start)
        WR(k->caps, caps + 1);
    else
        push(tx, k, sp->t);
    return LWC_OK;
}

/* Undo a start that found no idle capability: queue it, or give up if k has
 * no capability to run it. */
static lwc_word_t unstart_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    lwc_word_t caps = RD(sp->k->caps) - 1;
    WR(sp->k->caps, caps);
    if (caps == 0)
        return LWC_EBUSY;
    push(tx, sp->k, sp->t);
    return LWC_OK;
}

static struct sched_thread *thread_new(lwc_kit_t *k, void (*fn)(void *), void *arg,
                                       lwc_word_t word, bool bound)
{
    lwc_upcalls_t u = { kit_next, kit_unblock, k };
    struct sched_thread *t = sched_thread_new(k, fn, arg, trampoline, &u, bound);
    if (t)
        t->word = word;
    return t;
}

static __attribute__((noinline)) int kit_spawn(lwc_kit_t *k, void (*fn)(void *), void *arg,
                                                 lwc_word_t word, bool bound)
{
    struct spawn sp = { k, thread_new(k, fn, arg, word, bound), false };
    if (!sp.t)
        return errno == EINVAL ? LWC_EINVAL : LWC_ENOMEM;
    lwc_scont_t *s = thread_scont(sp.t);
    lwc_word_t err = LWC_OK;
    sched_count_in(&k->live);                   /* before it can run */
    int terr = lwc_atomically(spawn_body, &sp, &err);
    if (terr == LWC_OK && err == LWC_OK && sp.start && lwc_cap_start(s) != LWC_OK) {
        terr = lwc_atomically(unstart_body, &sp, &err);
    }
    if (terr != LWC_OK || err != LWC_OK) {
        /* Never ran: its SCont and node go back. */
        sched_thread_give(sp.t);
        sched_count_out(&k->live);
        return terr != LWC_OK ? terr : (int)(intptr_t)err;
    }
    return LWC_OK;
}

/* The public spawns: checked, and scrubbed after. */
static int spawn_checked(lwc_kit_t *k, void (*fn)(void *), void *arg, lwc_word_t word,
                         bool bound)
{
    if (!k || !fn)
        return LWC_EINVAL;
    int err = kit_spawn(k, fn, arg, word, bound);
    lwc_stack_scrub();          /* Note [Scrubbing the stack] in substrate/detect.c */
    return err;
}

int lwc_kit_spawn(lwc_kit_t *k, void (*fn)(void *), void *arg, lwc_word_t word)
{
    return spawn_checked(k, fn, arg, word, false);
}

int lwc_kit_spawn_bound(lwc_kit_t *k, void (*fn)(void *), void *arg, lwc_word_t word)
{
    return spawn_checked(k, fn, arg, word, true);
}

static lwc_scont_t *yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    lwc_kit_t *k = arg;
    *st = LWC_BLOCKED_ON_SCHED;
    struct sched_thread *next, *me = lwc_scont_get_local(self);
    if (__builtin_expect(!k->homes.n && !k->policy, 1)) {
        next = fifo_rotate(tx, k->head, k->tail, me);   /* Note [The built-in FIFO] */
    } else {
        push(tx, k, me);
        if ((next = pop(tx, k)) == me)
            return self;
    }
    return next ? thread_scont(next) : self;    /* nobody else: carry on */
}

int lwc_kit_yield(void)
{
    lwc_kit_t *k = lwc_kit_self();
    return k ? lwc_switch(yield_body, k) : LWC_EINVAL;
}

/* ---- instances ------------------------------------------------------------------------- */

static const char *kit_name(void *env)
{
    lwc_kit_t *k = env;
    return !k->policy ? "rr" : k->policy->name ? k->policy->name : "kit";
}

lwc_kit_t *lwc_kit_new(const lwc_kit_policy_t *policy, void *state, unsigned max_caps)
{
    unsigned ncaps = lwc_cap_count();
    if (ncaps == 0 || (policy && (!policy->push || !policy->pop))) {
        errno = EINVAL;
        return NULL;
    }
    lwc_sched_adopts_orphans(kit_next);
    lwc_sched_set_namer(kit_next, kit_name);
    lwc_kit_t *k = calloc(1, sizeof *k);
    if (!k)
        goto nomem;
    k->policy = policy;
    k->state = state;
    k->max_caps = max_caps && max_caps < ncaps ? max_caps : ncaps;
    k->head = lwc_pvar_new(0);
    k->tail = lwc_pvar_new(0);
    k->live.quiet = lwc_pvar_new(0);
    k->caps = lwc_pvar_new(0);
    k->closing = lwc_pvar_new(KIT_OPEN);
    if (k->head && k->tail && k->live.quiet && k->caps && k->closing &&
        sched_homes_init(&k->homes))
        return k;
    kit_free_memory(k);
nomem:
    errno = ENOMEM;
    return NULL;
}

static lwc_word_t wait_idle(lwc_tx_t *tx, void *arg)
{
    if (sched_any_live(tx, &((lwc_kit_t *)arg)->live))
        lwc_tx_retry(tx);
    return 0;
}

int kit_spawn_on(void *k, void (*fn)(void *), void *arg)
{
    return lwc_kit_spawn(k, fn, arg, 0);
}

int lwc_kit_incall(lwc_kit_t *k, void (*fn)(void *), void *arg)
{
    return lwc_kit_incall_with(kit_spawn_on, k, fn, arg);
}

int lwc_kit_wait(lwc_kit_t *k)
{
    if (!k)
        return LWC_EINVAL;
    return lwc_atomically(wait_idle, k, NULL);
}

static lwc_word_t close_body(lwc_tx_t *tx, void *arg)
{
    void **a = arg;
    lwc_kit_t *k = a[0];
    WR(k->closing, (lwc_word_t)a[1]);
    return 0;
}

static lwc_word_t wait_caps_gone(lwc_tx_t *tx, void *arg)
{
    lwc_kit_t *k = arg;
    if (RD(k->caps) > 0)
        lwc_tx_retry(tx);
    return 0;
}

int kit_close(lwc_kit_t *k, int how)
{
    void *a[2] = { k, (void *)(uintptr_t)how };
    int err = lwc_atomically(close_body, a, NULL);
    return err != LWC_OK ? err : lwc_atomically(wait_caps_gone, k, NULL);
}

void kit_free_memory(lwc_kit_t *k)
{
    lwc_pvar_free(k->head);
    lwc_pvar_free(k->tail);
    lwc_pvar_free(k->live.quiet);
    lwc_pvar_free(k->caps);
    lwc_pvar_free(k->closing);
    sched_homes_free(&k->homes);
    free(k);
}

void lwc_kit_free(lwc_kit_t *k)
{
    if (!k)
        return;
    lwc_kit_wait(k);
    kit_close(k, KIT_CLOSING);
    kit_free_memory(k);
}

/* ---- run queues ------------------------------------------------------------------------ */

_Static_assert(offsetof(struct sched_thread, next) == 0, "a fifo_node");

void lwc_kit_queue_init(lwc_kit_queue_t *q)
{
    lwc_pvar_init(&q->head, 0);
    lwc_pvar_init(&q->tail, 0);
}

void lwc_kit_queue_fini(lwc_kit_queue_t *q)
{
    lwc_pvar_fini(&q->head);
    lwc_pvar_fini(&q->tail);
}

void lwc_kit_queue_push(lwc_tx_t *tx, lwc_kit_queue_t *q, lwc_kit_thread_t *t)
{
    fifo_push(tx, &q->head, &q->tail, t);
}

lwc_kit_thread_t *lwc_kit_queue_pop(lwc_tx_t *tx, lwc_kit_queue_t *q)
{
    return fifo_pop(tx, &q->head, &q->tail);
}
