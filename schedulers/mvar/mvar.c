/* MVars on PVars and the two upcalls: nothing here knows which scheduler a
 * waiter belongs to.  A waiter blocks through its own switch_to_next and is
 * woken through its own unblock_thread, so threads of different schedulers
 * share an MVar. */
#include <lwc/lwc.h>
#include <lwc/mvar.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/fifo.h"
#include "../common/pool.h"

/* Note [Freeing an MVar]
 * ~~~~~~~~~~~~~~~~~~~~~~
 * An operation's transaction may run again after the MVar was freed: a
 * conflict re-runs it, and so does a switch_to_next that retried to idle
 * the capability (Note [Idling in a place of its own] in substrate/idle.c),
 * and an OS thread that waits reads the MVar in its retry, which
 * lwc_mvar_free wakes like any writer would.  So an MVar is type-stable (it goes back to
 * a pool with its PVars, Note [Type-stable nodes] in ../common/pool.h), and
 * free moves its generation on: an operation that finds the generation no
 * longer the one it began with returns LWC_EBLOCKED_CONCDS, as a linked
 * waiter gets from free.  The generation shares a PVar with the full flag,
 * which every operation reads with it: an MVar is 80 bytes. */
struct lwc_mvar {
    lwc_pvar_t state;           /* FULL, and the generation above it */
    lwc_pvar_t value;
    lwc_pvar_t head, tail;      /* waiting takers, or waiting putters: FIFO */
    lwc_pvar_t readers;         /* waiting readers, all served by the next put */
};

#define FULL ((lwc_word_t)1)
_Static_assert(sizeof(struct lwc_mvar) == 5 * sizeof(lwc_pvar_t),
               "Note [What a blocked thread costs] in substrate/internal.h");

/* Note [Waiter nodes]
 * ~~~~~~~~~~~~~~~~~~~
 * A caller that must wait links a node into the MVar and, in the same
 * transaction, blocks (switch_to_next with LWC_BLOCKED_ON_CONCDS).  Whoever
 * serves it later pops the node, stores the outcome in it, and unblocks the
 * SCont the node names, all in one transaction; the waiter, once resumed, reads
 * the outcome and gives the node back.  A node is unlinked exactly when it is
 * served, so a node that is linked always names a blocked waiter.  Every field
 * another transaction reads is a PVar, the SCont too, so it is read
 * consistently with the link that led there; and nodes are type-stable
 * (Note [Type-stable nodes] in ../common/pool.h).
 *
 * A linked node may outlive its wait: an error thrown at the waiter (or the
 * deadlock detector) wakes it without serving it, and a run of lwc_main that
 * ends, or an lwc_shutdown, frees threads still blocked here.  So a node also
 * holds the wait token its SCont had when it queued (lwc_scont_wait_token),
 * which every wake-up and every reuse of the struct moves on (SCont structs
 * are never given back to malloc: Note [Type-stable SConts] in
 * substrate/scont.c).  Serving wakes the thread with lwc_unblock_waiter, which
 * checks the token, and drops a node whose wait is over: that thread is never
 * handed a value, and the value of a putter that is gone is dropped with it.  The node goes back
 * to the pool after the commit.  A woken waiter leaves its node linked, for
 * the next operation or lwc_mvar_free to drop.
 *
 * Only what a server writes is a PVar: `next`, `value` (what a taker or
 * reader is given; a putter's offer, which the putter writes as it links the
 * node, so that a node is 64 bytes) and `served`.  What the waiter says about
 * itself (its thread, its wait token) is stored in plain fields while the
 * node is unlinked, and the commit that links it publishes them.  A
 * server reads them only after it has read `served` in its transaction
 * (wake_waiter).  Validation is by value, so the link alone does not tell
 * one wait of a node from the next: a server that found the node at the
 * head while a putter waited on it, and read the plain fields then, would
 * still validate once the node was served, pooled, taken by another waiter
 * and linked at the head again with the same `next`, and would act on the
 * putter's old wait, whose token no longer matches: it dropped the new
 * waiter's node, and that thread slept for ever (issue 18's program on two
 * capabilities, one run in five; test_many_putters_one_taker in
 * tests/unit/ws.c).  Every serve moves `served` on, so a server that read it
 * before the plain fields fails validation in that case.  `served` is never reset: a waiter
 * notes it when it links the node, and the server moves it on by SERVED or
 * FREED, so no node is written on its way back to the pool.  A node in the
 * pool has `next` 0: whoever unlinks it clears it (Note [No stale links] in
 * ../common/fifo.h). */
enum { KIND_TAKE, KIND_READ, KIND_PUT };
enum { SERVED = 1, FREED = 2 };

struct waiter {
    lwc_pvar_t next, value, served;     /* next first: a fifo_node */
    _Atomic(lwc_scont_t *) who;         /* NULL: an OS thread, which sleeps on `served` */
    _Atomic lwc_word_t wait;            /* who's wait token as it linked the node */
};
_Static_assert(sizeof(struct waiter) == 3 * sizeof(lwc_pvar_t) + 2 * sizeof(void *),
               "Note [What a blocked thread costs] in substrate/internal.h");

/* Traced: an MVar reaches its waiters, and a waiter its thread, through these
 * nodes (Note [Pools and the detector] in ../common/pool.h). */
static struct lwc_pool pool = LWC_POOL_INIT(struct waiter, true, 0);
static struct lwc_pool mvar_pool = LWC_POOL_INIT(struct lwc_mvar, true, 1);

/* A node, `next` 0; op_body fills in the rest before linking it.  Its PVars
 * live in it, and a new node's zero bytes are PVars holding 0 (<lwc/ptm.h>). */
static struct waiter *waiter_get(void)
{
    return lwc_pool_take(&pool);
}

static void waiter_put(struct waiter *w)
{
    lwc_pool_give(&pool, w);
}

__attribute__((destructor)) static void pool_drain(void)
{
    lwc_pool_destroy_all(&pool, NULL);
    lwc_pool_destroy_all(&mvar_pool, NULL);
}

/* ---- the queues, inside a transaction ------------------------------------------ */

#define RD(pv)      lwc_pvar_read(tx, (pv))
#define WR(pv, v)   lwc_pvar_write(tx, (pv), (lwc_word_t)(v))

static void waiter_put_later(void *w)
{
    waiter_put(w);
}

/* Wake w's thread if it is still in the wait that queued it (Note [Waiter
 * nodes]).  An OS thread (who == NULL) always is, and wakes when its node's
 * state is written.  A node whose wait is over goes back to the pool. */
static bool wake_waiter(lwc_tx_t *tx, struct waiter *w)
{
    RD(&w->served);              /* Note [Waiter nodes]: which wait of the node's */
    lwc_scont_t *s = atomic_load_explicit(&w->who, memory_order_relaxed);
    if (!s || lwc_unblock_waiter(tx, s, atomic_load_explicit(&w->wait, memory_order_relaxed)))
        return true;
    lwc_tx_defer(tx, waiter_put_later, w);
    return false;
}

/* The first waiter whose thread was still there, unlinked and woken; NULL if
 * none. */
static struct waiter *queue_pop(lwc_tx_t *tx, lwc_mvar_t *mv)
{
    for (;;) {
        struct waiter *w = fifo_pop(tx, &mv->head, &mv->tail);
        if (!w || wake_waiter(tx, w))
            return w;
    }
}

/* Give a woken waiter its outcome: how, and for a taker or reader, what. */
static void serve(lwc_tx_t *tx, struct waiter *w, lwc_word_t how)
{
    WR(&w->served, RD(&w->served) + how);
}

static void serve_value(lwc_tx_t *tx, struct waiter *w, lwc_word_t v)
{
    WR(&w->value, v);
    serve(tx, w, SERVED);
}

/* The next reader on the list from r, r unlinked (Note [No stale links]). */
static struct waiter *reader_unlink(lwc_tx_t *tx, struct waiter *r)
{
    struct waiter *next = (struct waiter *)RD(&r->next);
    if (next)
        WR(&r->next, 0);
    return next;
}

/* The operations, with st the MVar's state word as the transaction read it. */
static bool take_now(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t st, lwc_word_t *out)
{
    if (!(st & FULL))
        return false;
    *out = RD(&mv->value);
    struct waiter *putter = queue_pop(tx, mv);   /* while full, only putters wait */
    if (putter) {
        WR(&mv->value, RD(&putter->value));
        serve(tx, putter, SERVED);
    } else {
        WR(&mv->state, st & ~FULL);
    }
    return true;
}

static bool put_now(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t st, lwc_word_t v)
{
    if (st & FULL)
        return false;
    struct waiter *r = (struct waiter *)RD(&mv->readers);
    if (r) {
        WR(&mv->readers, 0);
        for (struct waiter *next; r; r = next) {
            next = reader_unlink(tx, r);
            if (wake_waiter(tx, r))
                serve_value(tx, r, v);
        }
    }
    struct waiter *taker = queue_pop(tx, mv);    /* while empty, only takers wait */
    if (taker) {
        serve_value(tx, taker, v);
    } else {
        WR(&mv->state, st | FULL);
        WR(&mv->value, v);
    }
    return true;
}

static bool read_now(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t st, lwc_word_t *out)
{
    if (!(st & FULL))
        return false;
    *out = RD(&mv->value);
    return true;
}

/* ---- the blocking operations ------------------------------------------------------ */

/* Note [Waiting only when it must]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * Most operations find the MVar ready and never wait.  So what only a wait
 * needs is found on the way to one, inside the body: the waiter node, and
 * whether the caller can block through a scheduler.  A body run again keeps
 * the node it took; run_op gives it back unless a wait linked it.  `gen` is
 * read by the body's first run, as it began (Note [Freeing an MVar]). */
struct op {
    lwc_mvar_t    *mv;
    lwc_word_t     gen;         /* Note [Freeing an MVar] */
    bool           gen_known;
    int            kind;
    lwc_word_t     v;           /* PUT: the value; TAKE, READ: the result */
    struct waiter *w;           /* where to wait, once it must */
    lwc_scont_t   *self;        /* blocks through its upcalls; NULL: the OS thread sleeps */
    lwc_word_t     served;      /* w->served as the wait began: Note [Waiter nodes] */
    bool           waited;
};

static lwc_word_t op_body(lwc_tx_t *tx, void *arg)
{
    struct op *op = arg;
    op->waited = false;
    lwc_word_t st = RD(&op->mv->state), gen = st >> 1;
    if (!op->gen_known) {
        op->gen = gen;
        op->gen_known = true;
    } else if (gen != op->gen) {
        return LWC_EBLOCKED_CONCDS;
    }
    bool done = op->kind == KIND_TAKE ? take_now(tx, op->mv, st, &op->v)
              : op->kind == KIND_READ ? read_now(tx, op->mv, st, &op->v)
              : put_now(tx, op->mv, st, op->v);
    if (done)
        return 0;
    if (!op->w && !(op->w = waiter_get()))
        return LWC_ENOMEM;
    lwc_scont_t *self = lwc_scont_self();
    op->self = lwc_scont_has_scheduler(self) ? self : NULL;
    struct waiter *w = op->w;
    op->served = RD(&w->served);
    atomic_store_explicit(&w->who, op->self, memory_order_relaxed);
    atomic_store_explicit(&w->wait, lwc_scont_wait_token(tx, op->self), memory_order_relaxed);
    if (op->kind == KIND_PUT)
        WR(&w->value, op->v);
    if (op->kind == KIND_READ) {
        lwc_word_t first = RD(&op->mv->readers);
        if (first)
            WR(&w->next, first);
        WR(&op->mv->readers, w);
    } else {
        fifo_push(tx, &op->mv->head, &op->mv->tail, w);
    }
    if (op->self) {
        lwc_scont_note_wait(op->self, "MVar", op->mv);
        lwc_switch_to_next(tx, LWC_BLOCKED_ON_CONCDS);
    }
    op->waited = true;          /* not before: an error pending abandons the switch */
    return 0;
}

/* An OS thread (or an SCont with no scheduler) sleeps here until served. */
static lwc_word_t wait_served(lwc_tx_t *tx, void *arg)
{
    struct op *op = arg;
    if (RD(&op->w->served) == op->served)
        lwc_tx_retry(tx);
    return 0;
}

static int run_op(lwc_mvar_t *mv, int kind, lwc_word_t v, lwc_word_t *out)
{
    if (!mv || (kind != KIND_PUT && !out))
        return LWC_EINVAL;
    struct op op = { .mv = mv, .kind = kind, .v = v };  /* Note [Waiting only when it must] */
    lwc_word_t gone = 0;
    int err = lwc_atomically(op_body, &op, &gone);
    if (err == LWC_OK && gone)
        err = (int)(intptr_t)gone;
    if (err == LWC_OK && op.waited && !op.self)
        err = lwc_atomically(wait_served, &op, NULL);
    if (err != LWC_OK) {
        /* Woken by an error, the node is still linked: Note [Waiter nodes]. */
        if (!op.waited && op.w)
            waiter_put(op.w);
        return err;
    }
    if (op.waited) {
        /* Served: the serving commit came before our resumption. */
        if (lwc_pvar_peek(&op.w->served) - op.served == FREED)
            err = LWC_EBLOCKED_CONCDS;
        else if (kind != KIND_PUT)
            op.v = lwc_pvar_peek(&op.w->value);
    }
    if (op.w)
        waiter_put(op.w);
    if (err == LWC_OK && out)
        *out = op.v;
    return err;
}

int lwc_mvar_take(lwc_mvar_t *mv, lwc_word_t *out) { return run_op(mv, KIND_TAKE, 0, out); }
int lwc_mvar_read(lwc_mvar_t *mv, lwc_word_t *out) { return run_op(mv, KIND_READ, 0, out); }
int lwc_mvar_put(lwc_mvar_t *mv, lwc_word_t v)     { return run_op(mv, KIND_PUT, v, NULL); }

/* ---- try-forms and composable forms -------------------------------------------------- */

struct try_op { lwc_mvar_t *mv; int kind; lwc_word_t v; };

static lwc_word_t try_body(lwc_tx_t *tx, void *arg)
{
    struct try_op *op = arg;
    lwc_word_t st = RD(&op->mv->state);
    return op->kind == KIND_TAKE ? take_now(tx, op->mv, st, &op->v) : put_now(tx, op->mv, st, op->v);
}

static int try_op(lwc_mvar_t *mv, int kind, lwc_word_t v, lwc_word_t *out)
{
    if (!mv || (kind == KIND_TAKE && !out))
        return LWC_EINVAL;
    struct try_op op = { mv, kind, v };
    lwc_word_t done = 0;
    int err = lwc_atomically(try_body, &op, &done);
    if (err != LWC_OK)
        return err;
    if (!done)
        return LWC_EAGAIN;
    if (out)
        *out = op.v;
    return LWC_OK;
}

int lwc_mvar_try_take(lwc_mvar_t *mv, lwc_word_t *out) { return try_op(mv, KIND_TAKE, 0, out); }
int lwc_mvar_try_put(lwc_mvar_t *mv, lwc_word_t v)     { return try_op(mv, KIND_PUT, v, NULL); }

int lwc_mvar_take_tx(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t *out)
{
    if (!tx || !mv || !out)
        return LWC_EINVAL;
    if (!take_now(tx, mv, RD(&mv->state), out))
        lwc_tx_retry(tx);
    return LWC_OK;
}

int lwc_mvar_put_tx(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t v)
{
    if (!tx || !mv)
        return LWC_EINVAL;
    if (!put_now(tx, mv, RD(&mv->state), v))
        lwc_tx_retry(tx);
    return LWC_OK;
}

/* ---- life ------------------------------------------------------------------------------ */

static lwc_word_t reset_body(lwc_tx_t *tx, void *arg)
{
    lwc_word_t *a = arg;                        /* { mv, full, value } */
    lwc_mvar_t *mv = (lwc_mvar_t *)a[0];
    WR(&mv->state, (RD(&mv->state) & ~FULL) | a[1]);
    WR(&mv->value, a[2]);
    return 0;
}

static lwc_mvar_t *mvar_new(lwc_word_t full, lwc_word_t v)
{
    lwc_mvar_t *mv = lwc_pool_take(&mvar_pool);
    if (!mv)
        return NULL;
    /* New, or from the pool, where free left the queues empty. */
    lwc_word_t a[3] = { (lwc_word_t)mv, full, v };
    if (lwc_atomically(reset_body, a, NULL) != LWC_OK) {
        lwc_pool_give(&mvar_pool, mv);
        return NULL;
    }
    return mv;
}

lwc_mvar_t *lwc_mvar_new(void)               { return mvar_new(0, 0); }
lwc_mvar_t *lwc_mvar_new_full(lwc_word_t v)  { return mvar_new(1, v); }

static lwc_word_t free_body(lwc_tx_t *tx, void *arg)
{
    lwc_mvar_t *mv = arg;
    for (struct waiter *w; (w = queue_pop(tx, mv));)
        serve(tx, w, FREED);
    for (struct waiter *r = (struct waiter *)RD(&mv->readers), *next; r; r = next) {
        next = reader_unlink(tx, r);
        if (wake_waiter(tx, r))
            serve(tx, r, FREED);
    }
    WR(&mv->readers, 0);
    WR(&mv->state, ((RD(&mv->state) >> 1) + 1) << 1);   /* empty: Note [Freeing an MVar] */
    return 0;
}

void lwc_mvar_free(lwc_mvar_t *mv)
{
    if (!mv)
        return;
    int err = lwc_atomically(free_body, mv, NULL);
    if (err != LWC_OK) {
        /* Inside a transaction, or out of memory: keep it rather than free it
         * under its waiters. */
        fprintf(stderr, "lwc: lwc_mvar_free failed (%s): the MVar is left as it was\n",
                lwc_strerror(err));
        return;
    }
    lwc_pool_give(&mvar_pool, mv);
}
