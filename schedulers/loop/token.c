/* Wait tokens: promises that a host settles, from any OS thread, for a
 * thread of any scheduler that awaits them. */
#include <lwc/loop.h>
#include <lwc/lwc.h>
#include <stdlib.h>

#include "loop.h"

/* Note [Tokens]
 * ~~~~~~~~~~~~~
 * A token is three PVars: its state, the value (or the reject error), and
 * its waiter (the SCont, and the wait token it had as it blocked,
 * lwc_scont_wait_token).  The waiter blocks through its own switch_to_next
 * in the transaction that finds the token pending; a settle writes the
 * outcome and wakes it with lwc_unblock_waiter in one transaction.  If that
 * returns 0 the wait had already ended with an error thrown at the waiter
 * (lwc_kill, the detector cannot: below): the value would reach nobody, so
 * the token is CANCELED instead, and the settle says LWC_ECANCELED.  The
 * waiter, woken by an error, cancels the token itself if it still reads
 * PENDING, in whichever order the two come.
 *
 * A waiter is pinned while it waits (lwc_pin of its SCont): the host may
 * settle the token whatever the threads do, so the waiter is a root
 * (scenario 24), and a whole-program deadlock is not declared while a token
 * is awaited.  A loop's thread also counts itself in the loop's `tokens`,
 * which the tick reports.
 *
 * Freeing a token a thread awaits: the waiter may run again at any time
 * after its wake-up, so the memory is the waiter's to free: lwc_token_free
 * marks the token `freed`, cancels it and wakes the waiter, which frees it
 * once it has read it for the last time. */

enum { FREED_BIT = 8 };                 /* or'ed into the state */

struct lwc_token {
    lwc_pvar_t state[1];                /* lwc_token_state_t | FREED_BIT */
    lwc_pvar_t value[1];
    lwc_pvar_t waiter[1];               /* the SCont that awaits, or 0 */
    lwc_pvar_t wait[1];                 /* ... its wait token */
};

#define RD(pv)      lwc_pvar_read(tx, (pv))
#define WR(pv, v)   lwc_pvar_write(tx, (pv), (lwc_word_t)(v))

static void token_memory_free(lwc_token_t *t)
{
    lwc_pvar_fini(t->state);
    lwc_pvar_fini(t->value);
    lwc_pvar_fini(t->waiter);
    lwc_pvar_fini(t->wait);
    free(t);
}

/* Zeroed, the PVars are made, and the token is pending (<lwc/ptm.h>). */
_Static_assert(LWC_TOKEN_PENDING == 0, "a zeroed token is pending");

lwc_token_t *lwc_token_new(void)
{
    return calloc(1, sizeof(lwc_token_t));
}

/* ---- awaiting ---------------------------------------------------------------------- */

struct await { lwc_token_t *t; lwc_scont_t *self; lwc_word_t state, value; };

static lwc_word_t await_body(lwc_tx_t *tx, void *arg)
{
    struct await *a = arg;
    lwc_token_t *t = a->t;
    a->state = RD(t->state);
    a->value = RD(t->value);
    if (a->state != LWC_TOKEN_PENDING)
        return 0;
    if (RD(t->waiter))
        return (lwc_word_t)LWC_EBUSY;
    WR(t->waiter, a->self);
    WR(t->wait, lwc_scont_wait_token(tx, a->self));
    lwc_scont_note_wait(a->self, "token", t);
    lwc_switch_to_next(tx, LWC_BLOCKED_ON_CONCDS);
    return 0;
}

/* After the wait: what the token says now; cancel it if the waiter was
 * woken by an error while it was pending.  Whether to free it. */
static lwc_word_t after_body(lwc_tx_t *tx, void *arg)
{
    struct await *a = arg;
    lwc_token_t *t = a->t;
    lwc_word_t st = RD(t->state);
    a->value = RD(t->value);
    if ((lwc_scont_t *)RD(t->waiter) == a->self) {
        WR(t->waiter, 0);
        if ((st & ~(lwc_word_t)FREED_BIT) == LWC_TOKEN_PENDING)
            WR(t->state, st = (st & FREED_BIT) | LWC_TOKEN_CANCELED);
    }
    a->state = st & ~(lwc_word_t)FREED_BIT;
    return st & FREED_BIT;
}

static int outcome(const struct await *a, lwc_word_t *value)
{
    switch (a->state) {
    case LWC_TOKEN_RESOLVED:
        if (value)
            *value = a->value;
        return LWC_OK;
    case LWC_TOKEN_REJECTED:
        return a->value ? (int)(intptr_t)a->value : LWC_EINVAL;
    default:
        return LWC_ECANCELED;
    }
}

int lwc_token_await(lwc_token_t *t, lwc_word_t *value)
{
    lwc_scont_t *self = lwc_scont_self();
    if (!t || !lwc_scont_has_scheduler(self))
        return LWC_EINVAL;
    struct await a = { t, self, 0, 0 };
    lwc_loop_t *loop = lwc_loop_self();
    lwc_pin(self);                              /* Note [Tokens] */
    if (loop)
        loop->tokens++;
    lwc_word_t busy = 0;
    int err = lwc_atomically(await_body, &a, &busy);
    if (loop)
        loop->tokens--;
    lwc_unpin(self);
    if (err == LWC_OK && busy)
        return (int)(intptr_t)busy;
    if (err == LWC_OK && a.state != LWC_TOKEN_PENDING)
        return outcome(&a, value);              /* settled before: no wait */
    lwc_word_t freed = 0;
    int err2 = lwc_atomically(after_body, &a, &freed);
    if (freed)
        token_memory_free(t);
    if (err != LWC_OK)
        return err;                             /* woken by an error */
    if (err2 != LWC_OK)
        return err2;
    return outcome(&a, value);
}

/* ---- settling ------------------------------------------------------------------------ */

struct settle { lwc_token_t *t; lwc_word_t state, value; };

static lwc_word_t settle_body(lwc_tx_t *tx, void *arg)
{
    struct settle *se = arg;
    lwc_token_t *t = se->t;
    lwc_word_t st = RD(t->state);
    if (st == LWC_TOKEN_CANCELED)
        return (lwc_word_t)LWC_ECANCELED;
    if (st != LWC_TOKEN_PENDING)
        return (lwc_word_t)LWC_ESTATE;
    lwc_scont_t *w = (lwc_scont_t *)RD(t->waiter);
    if (w && !lwc_unblock_waiter(tx, w, RD(t->wait))) {
        WR(t->state, LWC_TOKEN_CANCELED);       /* an error woke it: Note [Tokens] */
        return (lwc_word_t)LWC_ECANCELED;
    }
    WR(t->state, se->state);
    WR(t->value, se->value);
    return 0;
}

static int settle(lwc_token_t *t, lwc_token_state_t state, lwc_word_t value)
{
    if (!t)
        return LWC_EINVAL;
    struct settle se = { t, state, value };
    lwc_word_t r = 0;
    int err = lwc_atomically(settle_body, &se, &r);
    return err != LWC_OK ? err : (int)(intptr_t)r;
}

int lwc_token_resolve(lwc_token_t *t, lwc_word_t value)
{
    return settle(t, LWC_TOKEN_RESOLVED, value);
}

int lwc_token_reject(lwc_token_t *t, int err)
{
    return settle(t, LWC_TOKEN_REJECTED, (lwc_word_t)(intptr_t)err);
}

lwc_token_state_t lwc_token_state(lwc_token_t *t)
{
    if (!t)
        return LWC_TOKEN_CANCELED;
    return (lwc_token_state_t)(lwc_pvar_read(NULL, t->state) & ~(lwc_word_t)FREED_BIT);
}

static lwc_word_t free_body(lwc_tx_t *tx, void *arg)
{
    lwc_token_t *t = arg;
    lwc_scont_t *w = (lwc_scont_t *)RD(t->waiter);
    if (!w)
        return 0;
    lwc_word_t st = RD(t->state);
    if (st == LWC_TOKEN_PENDING)
        st = LWC_TOKEN_CANCELED;
    WR(t->state, st | FREED_BIT);
    lwc_unblock_waiter(tx, w, RD(t->wait));
    return 1;                                   /* the waiter frees it */
}

void lwc_token_free(lwc_token_t *t)
{
    if (!t)
        return;
    lwc_word_t waiter = 0;
    if (lwc_atomically(free_body, t, &waiter) == LWC_OK && !waiter)
        token_memory_free(t);
}
