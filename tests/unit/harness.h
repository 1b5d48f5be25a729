/* Shared by the unit tests: a small FIFO scheduler written on the public API
 * (a linked queue in PVars, any number of capabilities), and helpers. */
#ifndef LWC_TEST_HARNESS_H
#define LWC_TEST_HARNESS_H

#include "config.h"

#include <check.h>
#include <lwc/lwc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if LWC_VALGRIND
#include <valgrind/valgrind.h>
#define ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#else
#define ON_VALGRIND() 0
#endif

/* A light run: under valgrind (~50x slower) or an emulator (LWC_TEST_LIGHT=1,
 * make check-aarch64): stress loops and big populations run small. */
#define LIGHT_RUN() (ON_VALGRIND() || getenv("LWC_TEST_LIGHT") != NULL)

/* Sanitized builds keep shadow state per SCont: a million of them is too many. */
#define SANITIZED (LWC_ASAN || LWC_TSAN)

/* Iterations for a stress loop: far fewer under valgrind, which is ~50x slower. */
static inline unsigned scaled(unsigned n)
{
    return LIGHT_RUN() ? (n / 50 ? n / 50 : 1) : n;
}

/* Deterministic per-seed pseudo-random numbers (xorshift). */
static inline unsigned next_rand(unsigned *seed)
{
    unsigned x = *seed ? *seed : 0x9e3779b9u;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return *seed = x;
}

static inline void spin_for(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

/* ---- the test scheduler ---------------------------------------------------- */

struct tsched;
struct tnode { lwc_pvar_t *next; lwc_scont_t *s; struct tsched *ts; void (*fn)(void *); void *arg; };

typedef struct tsched {
    lwc_pvar_t *head, *tail, *live;
    lwc_pvar_t *caps;                   /* capabilities working for it: ts_cap_start */
    pthread_mutex_t lock;               /* spawned[] */
    lwc_scont_t **spawned;
    struct tnode **nodes;
    unsigned nspawned, cap;
    atomic_uint unblocks;               /* how often unblock_thread ran */
} tsched_t;

static void tq_push(lwc_tx_t *tx, tsched_t *ts, lwc_scont_t *s)
{
    struct tnode *n = lwc_scont_get_local(s);
    lwc_pvar_write(tx, n->next, 0);
    struct tnode *t = (struct tnode *)lwc_pvar_read(tx, ts->tail);
    if (t)
        lwc_pvar_write(tx, t->next, (lwc_word_t)n);
    else
        lwc_pvar_write(tx, ts->head, (lwc_word_t)n);
    lwc_pvar_write(tx, ts->tail, (lwc_word_t)n);
}

static lwc_scont_t *tq_pop(lwc_tx_t *tx, tsched_t *ts)
{
    struct tnode *h = (struct tnode *)lwc_pvar_read(tx, ts->head);
    if (!h)
        return NULL;
    struct tnode *nx = (struct tnode *)lwc_pvar_read(tx, h->next);
    lwc_pvar_write(tx, ts->head, (lwc_word_t)nx);
    if (!nx)
        lwc_pvar_write(tx, ts->tail, 0);
    return h->s;
}

/* Note [Counting finished threads]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A thread is counted out by a transaction of its own, before its function
 * returns, and not in switch_to_next when it completes: a switch_to_next that
 * finds nothing to run retries, and a retry rolls back everything in its
 * transaction, the decrement too.  Two threads completing on two capabilities
 * would each see the other still live, and both sleep forever. */
static lwc_scont_t *ts_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why;
    tsched_t *ts = env;
    lwc_scont_t *n = tq_pop(tx, ts);
    if (!n && lwc_pvar_read(tx, ts->live) > 0)
        lwc_tx_retry(tx);                   /* idle this capability until a push */
    if (!n)                                 /* all done: release it */
        lwc_pvar_write(tx, ts->caps, lwc_pvar_read(tx, ts->caps) - 1);
    return n;
}

static void ts_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    tsched_t *ts = env;
    atomic_fetch_add(&ts->unblocks, 1);     /* counts runs, re-runs included */
    tq_push(tx, ts, s);
}

static inline lwc_upcalls_t ts_upcalls(tsched_t *ts)
{
    lwc_upcalls_t u = { ts_next, ts_unblock, ts };
    return u;
}

static inline void ts_init(tsched_t *ts)
{
    ts->head = lwc_pvar_new(0);
    ts->tail = lwc_pvar_new(0);
    ts->live = lwc_pvar_new(0);
    ts->caps = lwc_pvar_new(0);
    pthread_mutex_init(&ts->lock, NULL);
    ts->spawned = NULL;
    ts->nodes = NULL;
    ts->nspawned = ts->cap = 0;
    atomic_init(&ts->unblocks, 0);
}

struct ts_spawn_arg { tsched_t *ts; lwc_scont_t *s; int queue; };

static lwc_word_t ts_spawn_tx(lwc_tx_t *tx, void *arg)
{
    struct ts_spawn_arg *a = arg;
    lwc_pvar_write(tx, a->ts->live, lwc_pvar_read(tx, a->ts->live) + 1);
    if (a->queue)
        tq_push(tx, a->ts, a->s);
    return 0;
}

static lwc_word_t ts_count_out(lwc_tx_t *tx, void *arg)
{
    tsched_t *ts = arg;
    lwc_pvar_write(tx, ts->live, lwc_pvar_read(tx, ts->live) - 1);
    return 0;
}

static void ts_trampoline(void *arg)
{
    struct tnode *n = arg;
    n->fn(n->arg);
    lwc_atomically(ts_count_out, n->ts, NULL);  /* Note [Counting finished threads] */
}

/* Create a thread of ts and (with queue) queue it.  Works from SConts and from
 * the host. */
static inline lwc_scont_t *ts_spawn_full(tsched_t *ts, void (*fn)(void *), void *arg,
                                         const lwc_scont_attr_t *attr, int bound, int queue)
{
    struct tnode *n = malloc(sizeof *n);
    n->next = lwc_pvar_new(0);
    n->ts = ts;
    n->fn = fn;
    n->arg = arg;
    lwc_scont_t *s = bound ? lwc_scont_new_bound(ts_trampoline, n, attr)
                           : lwc_scont_new(ts_trampoline, n, attr);
    ck_assert_ptr_nonnull(s);
    lwc_upcalls_t u = ts_upcalls(ts);
    lwc_scont_set_upcalls(s, &u);
    n->s = s;
    lwc_scont_set_local(s, n);
    pthread_mutex_lock(&ts->lock);
    if (ts->nspawned == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 64;
        ts->spawned = realloc(ts->spawned, ts->cap * sizeof *ts->spawned);
        ts->nodes = realloc(ts->nodes, ts->cap * sizeof *ts->nodes);
    }
    ts->spawned[ts->nspawned] = s;
    ts->nodes[ts->nspawned++] = n;
    pthread_mutex_unlock(&ts->lock);
    struct ts_spawn_arg a = { ts, s, queue };
    ck_assert_int_eq(lwc_atomically(ts_spawn_tx, &a, NULL), LWC_OK);
    return s;
}

static inline lwc_scont_t *ts_spawn_attr(tsched_t *ts, void (*fn)(void *), void *arg,
                                         const lwc_scont_attr_t *attr, int bound)
{
    return ts_spawn_full(ts, fn, arg, attr, bound, 1);
}

static inline lwc_scont_t *ts_spawn(tsched_t *ts, void (*fn)(void *), void *arg)
{
    return ts_spawn_attr(ts, fn, arg, NULL, 0);
}

static lwc_word_t ts_pop_tx(lwc_tx_t *tx, void *arg)
{
    return (lwc_word_t)tq_pop(tx, arg);
}

/* Every thread counted out, every one's completion committed, and every
 * capability started with ts_cap_start given back: after that no capability
 * touches ts again.  A capability may idle in ts_next after the last thread
 * completed, until it sees `live` at 0 (Note [Idling in a place of its own]
 * in substrate/idle.c), so the threads' completions alone do not say so. */
static lwc_word_t ts_wait_tx(lwc_tx_t *tx, void *arg)
{
    tsched_t *ts = arg;
    if (lwc_pvar_read(tx, ts->live) != 0 || (intptr_t)lwc_pvar_read(tx, ts->caps) > 0)
        lwc_tx_retry(tx);
    for (unsigned i = 0; i < ts->nspawned; i++)
        if (lwc_scont_status(tx, ts->spawned[i]) != LWC_COMPLETED)
            lwc_tx_retry(tx);
    return 0;
}

/* A capability that just ran something may not have let go of it yet. */
static inline void cap_start_when_idle(lwc_scont_t *s)
{
    int err;
    while ((err = lwc_cap_start(s)) == LWC_EBUSY)
        sched_yield();
    ck_assert_int_eq(err, LWC_OK);
}

static lwc_word_t ts_count_cap(lwc_tx_t *tx, void *arg)
{
    tsched_t *ts = arg;
    lwc_pvar_write(tx, ts->caps, lwc_pvar_read(tx, ts->caps) + 1);
    return 0;
}

/* From the host: run s, a thread of ts taken off its queue, on a capability
 * counted as working for ts until ts_next gives it back. */
static inline void ts_cap_start(tsched_t *ts, lwc_scont_t *s)
{
    ck_assert_int_eq(lwc_atomically(ts_count_cap, ts, NULL), LWC_OK);
    cap_start_when_idle(s);
}

/* From the host: start up to ncaps capabilities on queued threads and wait until
 * every thread of ts has completed. */
static inline void ts_run(tsched_t *ts, unsigned ncaps)
{
    for (unsigned i = 0; i < ncaps; i++) {
        lwc_word_t s;
        ck_assert_int_eq(lwc_atomically(ts_pop_tx, ts, &s), LWC_OK);
        if (!s)
            break;
        ts_cap_start(ts, (lwc_scont_t *)s);
    }
    ck_assert_int_eq(lwc_atomically(ts_wait_tx, ts, NULL), LWC_OK);
}

static inline void ts_destroy(tsched_t *ts)
{
    for (unsigned i = 0; i < ts->nspawned; i++) {
        lwc_scont_release(ts->spawned[i]);
        lwc_pvar_free(ts->nodes[i]->next);
        free(ts->nodes[i]);
    }
    free(ts->spawned);
    free(ts->nodes);
    lwc_pvar_free(ts->head);
    lwc_pvar_free(ts->tail);
    lwc_pvar_free(ts->live);
    lwc_pvar_free(ts->caps);
    pthread_mutex_destroy(&ts->lock);
}

static lwc_scont_t *ts_yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    tsched_t *ts = arg;
    tq_push(tx, ts, self);
    *st = LWC_BLOCKED_ON_SCHED;
    return tq_pop(tx, ts);
}

static inline int ts_yield(tsched_t *ts)
{
    return lwc_switch(ts_yield_body, ts);
}

/* From the host: sleep (in a retry on the status PVar) until s has status want. */
struct status_wait { lwc_scont_t *s; lwc_status_t want; };

static lwc_word_t wait_status(lwc_tx_t *tx, void *arg)
{
    struct status_wait *w = arg;
    if (lwc_scont_status(tx, w->s) != w->want)
        lwc_tx_retry(tx);                       /* the status is a PVar */
    return 0;
}

static inline void wait_completed(lwc_scont_t *s)
{
    struct status_wait w = { s, LWC_COMPLETED };
    ck_assert_int_eq(lwc_atomically(wait_status, &w, NULL), LWC_OK);
}

/* ---- a one-slot channel: 0 is empty; put and take retry ----------------- */

static lwc_word_t slot_put_tx(lwc_tx_t *tx, void *arg)
{
    lwc_word_t *a = arg;                        /* { slot, value } */
    if (lwc_pvar_read(tx, (lwc_pvar_t *)a[0]))
        lwc_tx_retry(tx);
    lwc_pvar_write(tx, (lwc_pvar_t *)a[0], a[1]);
    return 0;
}

static lwc_word_t slot_take_tx(lwc_tx_t *tx, void *slot)
{
    lwc_word_t v = lwc_pvar_read(tx, slot);
    if (!v)
        lwc_tx_retry(tx);
    lwc_pvar_write(tx, slot, 0);
    return v;
}

static inline void slot_put(lwc_pvar_t *slot, lwc_word_t v)
{
    lwc_word_t a[2] = { (lwc_word_t)slot, v };
    ck_assert_int_eq(lwc_atomically(slot_put_tx, a, NULL), LWC_OK);
}

static inline lwc_word_t slot_take(lwc_pvar_t *slot)
{
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_atomically(slot_take_tx, slot, &v), LWC_OK);
    return v;
}

/* ---- the bank: transfers keep the total ----------------------------------- */

#define ACCOUNTS 16
struct bank { lwc_pvar_t *acct[ACCOUNTS]; unsigned iters; atomic_int bad; };
struct teller { struct bank *b; unsigned seed; };
struct transfer { struct bank *b; int from, to; lwc_word_t amount; };

static lwc_word_t do_transfer(lwc_tx_t *tx, void *arg)
{
    struct transfer *t = arg;
    lwc_word_t f = lwc_pvar_read(tx, t->b->acct[t->from]);
    if (f < t->amount)
        return 0;
    lwc_pvar_write(tx, t->b->acct[t->from], f - t->amount);
    lwc_pvar_write(tx, t->b->acct[t->to], lwc_pvar_read(tx, t->b->acct[t->to]) + t->amount);
    return 1;
}

/* Inside the transaction: a torn snapshot would show a wrong total. */
static lwc_word_t audit(lwc_tx_t *tx, void *arg)
{
    struct bank *b = arg;
    lwc_word_t sum = 0;
    for (int i = 0; i < ACCOUNTS; i++)
        sum += lwc_pvar_read(tx, b->acct[i]);
    if (sum != ACCOUNTS * 100)
        atomic_fetch_add(&b->bad, 1);
    return sum;
}

static inline void teller_loop(struct teller *t)
{
    for (unsigned i = 0; i < t->b->iters; i++) {
        struct transfer tr = { t->b, (int)(next_rand(&t->seed) % ACCOUNTS),
                               (int)(next_rand(&t->seed) % ACCOUNTS), next_rand(&t->seed) % 50 };
        lwc_atomically(do_transfer, &tr, NULL);
        if (i % 32 == 0)
            lwc_atomically(audit, t->b, NULL);
    }
}

static inline void bank_open(struct bank *b, unsigned iters)
{
    b->iters = iters;
    atomic_init(&b->bad, 0);
    for (int i = 0; i < ACCOUNTS; i++)
        b->acct[i] = lwc_pvar_new(100);
}

/* Check the books and close them. */
static inline void bank_close(struct bank *b)
{
    lwc_word_t total = 0;
    ck_assert_int_eq(lwc_atomically(audit, b, &total), LWC_OK);
    ck_assert_uint_eq(total, ACCOUNTS * 100);
    ck_assert_int_eq(atomic_load(&b->bad), 0);
    for (int i = 0; i < ACCOUNTS; i++)
        lwc_pvar_free(b->acct[i]);
}

/* Run a Check suite; the exit status is the number of failures. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
