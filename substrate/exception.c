/* Asynchronous errors: lwc_throw_to, lwc_kill, lwc_mask, lwc_exit, and their
 * delivery at switch points (include/lwc/exception.h). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

/* Note [Delivering errors]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * Two PVars of the SCont carry an error thrown at it:
 *  - `pending`: thrown while it could not be woken (running, runnable, masked,
 *    or with no unblock_thread upcall), delivered at its next switch point;
 *  - `interrupt`: the error that ended its wait on a data structure, delivered
 *    by the switch it waited in, when it resumes.
 * A third word, the wait token in `status` (Note [Status word] in internal.h),
 * moves on with every wake-up (lwc_scont_unblock).
 *
 * A thrower runs one transaction: if the SCont is LWC_BLOCKED_ON_CONCDS and not
 * masked, it writes `interrupt` and wakes it (status LWC_BLOCKED_ON_SCHED, token
 * moved on, its unblock_thread upcall); otherwise it writes `pending`.  No throw
 * is lost between the two, because a switch that blocks the SCont on a data
 * structure reads `pending` in its own transaction first (switch_to and
 * lwc_switch_to_next in scont.c) and, finding an error, abandons the switch and
 * returns the error instead (LWC_TX_DELIVER).  Serializability leaves no third
 * order: either the blocking transaction sees `pending`, or the thrower sees
 * the SCont blocked.  lwc_switch_to_next reads it before the switch_to_next
 * upcall, so a capability that idles in that upcall's retry has `pending` in
 * its read set and a throw wakes it.
 *
 * A data structure that served the waiter woke it first; the thrower then
 * finds it no longer blocked and leaves the error pending.  So a blocking call
 * whose operation completed returns LWC_OK, and no value handed over is lost
 * to an error.  The waiter that the throw woke instead is still linked in the
 * data structure: serving it checks the wait token it recorded
 * (lwc_unblock_waiter; a reused struct has a new token) and drops it.  A retry
 * has a wait state of its own (Note [Retry state] in internal.h), which the
 * thrower settles before it wakes the SCont.
 *
 * On resumption (lwc_scont_take_error) the switch returns `interrupt` if set;
 * else, if it left the SCont runnable (LWC_BLOCKED_ON_SCHED: a yield, or any
 * switch of a scheduler), an unmasked `pending`.  Both are peeked first, so the
 * common resumption costs two loads; taking one is a transaction that reads
 * and clears it, so an error is delivered once.
 *
 * An SCont that waits with no upcalls sleeps its OS thread inside a retry
 * (ptm.c): to the runtime it is running, and sees a throw once that retry
 * wakes and the SCont reaches its next switch point. */

/* Note [Two masks]
 * ~~~~~~~~~~~~~~~~
 * `masked` counts the masks an SCont has on, of both kinds, in its low 16
 * bits, and the uninterruptible ones again above them.  Any mask defers a
 * pending error at the switch points that do not block (a yield, a blocking
 * call that need not wait: lwc_scont_take); only an uninterruptible one
 * keeps an error from a thread that blocks (throw_body wakes it, and
 * deliver_instead_of_blocking in scont.c hands a pending error to a switch
 * about to block).  GHC's rules: `mask` is interruptible at blocking
 * operations, `uninterruptibleMask` nowhere.  The SCont alone writes the
 * word; throwers read it in their transaction, and a change of it races
 * with a throw only as a switch point would (the unmask then delivers). */
#define MASK_ONE            1u
#define MASK_UNINTERRUPTIBLE (1u << 16)

static bool masked(lwc_scont_t *s)
{
    return atomic_load_explicit(&s->masked, memory_order_relaxed) & (MASK_UNINTERRUPTIBLE - 1);
}

bool lwc_scont_masked_uninterruptibly(lwc_scont_t *s)
{
    return atomic_load_explicit(&s->masked, memory_order_relaxed) >= MASK_UNINTERRUPTIBLE;
}

static lwc_word_t error_word(int err)
{
    return (lwc_word_t)(intptr_t)err;
}

bool lwc_scont_interrupt(lwc_tx_t *tx, lwc_scont_t *s, int err)
{
    /* Wake first: it decides whether s can be woken.  The writes below
     * commit with the wake-up, in the same transaction. */
    if (!lwc_scont_unblock(tx, s))
        return false;
    lwc_word_t r = lwc_tx_read(tx, &s->retry_pv);
    if (r & 1)
        lwc_tx_write(tx, &s->retry_pv, r - 1);      /* Note [Retry state]: settled */
    lwc_tx_write(tx, &s->interrupt, error_word(err));
    return true;
}

struct throw { lwc_scont_t *s; uint64_t id; int err; };

static lwc_word_t throw_body(lwc_tx_t *tx, void *arg)
{
    struct throw *th = arg;
    lwc_scont_t *s = th->s;
    if (lwc_scont_id(s) != th->id || lwc_scont_status(tx, s) == LWC_COMPLETED)
        return error_word(LWC_ESTATE);
    if (!lwc_scont_masked_uninterruptibly(s) && lwc_scont_interrupt(tx, s, th->err))
        return LWC_OK;                          /* Note [Two masks] */
    lwc_word_t p = lwc_tx_read(tx, &s->pending);
    if (p && th->err != LWC_EKILLED)
        return p == error_word(th->err) ? LWC_OK : error_word(LWC_EBUSY);
    lwc_tx_write(tx, &s->pending, error_word(th->err));
    return LWC_OK;
}

int lwc_throw_to(lwc_scont_t *s, int err)
{
    if (!s || err >= 0)
        return LWC_EINVAL;
    struct throw th = { s, lwc_scont_id(s), err };
    if (th.id == 0)
        return LWC_ESTATE;
    lwc_word_t r = 0;
    int rc = lwc_atomically(throw_body, &th, &r);
    if (rc == LWC_OK && r == LWC_OK)
        lwc_outcall_interrupt(s);               /* pending, perhaps in a call */
    return rc != LWC_OK ? rc : (int)(intptr_t)r;
}

int lwc_kill(lwc_scont_t *s)
{
    return lwc_throw_to(s, LWC_EKILLED);
}

/* ---- delivery ---------------------------------------------------------------- */

struct take { lwc_scont_t *s; enum lwc_take_pending pending; };

static lwc_word_t take_body(lwc_tx_t *tx, void *arg)
{
    struct take *tk = arg;
    lwc_word_t e = lwc_tx_read(tx, &tk->s->interrupt);
    if (e) {
        lwc_tx_write(tx, &tk->s->interrupt, 0);
        return e;
    }
    if (tk->pending == LWC_TAKE_NO_PENDING ||
        (tk->pending == LWC_TAKE_UNLESS_MASKED ? masked(tk->s)
                                               : lwc_scont_masked_uninterruptibly(tk->s)))
        return 0;
    e = lwc_tx_read(tx, &tk->s->pending);
    if (e)
        lwc_tx_write(tx, &tk->s->pending, 0);
    return e;
}

int lwc_scont_take(lwc_scont_t *s, enum lwc_take_pending pending)
{
    struct take tk = { s, pending };
    lwc_word_t e = 0;
    int rc = lwc_atomically(take_body, &tk, &e);
    return rc != LWC_OK ? rc : (int)(intptr_t)e;
}

/* ---- masking and exit --------------------------------------------------------------- */

static void mask_add(unsigned by)
{
    lwc_scont_t *s = lwc_scont_self();
    if (!s)
        return;
    unsigned m = atomic_load_explicit(&s->masked, memory_order_relaxed);
    if ((m & (MASK_UNINTERRUPTIBLE - 1)) == MASK_UNINTERRUPTIBLE - 1) {
        lwc_warn("lwc_mask: 65535 masks on already: aborting");
        abort();
    }
    atomic_store_explicit(&s->masked, m + by, memory_order_relaxed);
}

/* End one mask (`by` says of which kind); at the last, deliver what is
 * pending: Note [Two masks]. */
static int mask_remove(unsigned by, const char *what)
{
    lwc_scont_t *s = lwc_scont_self();
    unsigned m = s ? atomic_load_explicit(&s->masked, memory_order_relaxed) : 0;
    if (!(m & (MASK_UNINTERRUPTIBLE - 1)))
        return LWC_OK;                          /* no mask on: ignored */
    if (by == MASK_ONE + MASK_UNINTERRUPTIBLE && m < MASK_UNINTERRUPTIBLE) {
        lwc_warn("%s with no uninterruptible mask on: ignored", what);
        return LWC_OK;
    }
    if (by == MASK_ONE && (m & (MASK_UNINTERRUPTIBLE - 1)) <= m / MASK_UNINTERRUPTIBLE) {
        lwc_warn("%s: the innermost mask is uninterruptible: ignored", what);
        return LWC_OK;
    }
    atomic_store_explicit(&s->masked, m - by, memory_order_relaxed);
    if (m - by || !lwc_pvar_load(&s->pending))
        return LWC_OK;
    int err = lwc_scont_take(s, LWC_TAKE_UNLESS_MASKED);
    return err == LWC_EINVAL ? LWC_OK : err;    /* inside a transaction: left pending */
}

void lwc_scont_hold_errors(lwc_scont_t *s, bool on)
{
    unsigned m = atomic_load_explicit(&s->masked, memory_order_relaxed);
    unsigned by = MASK_ONE + MASK_UNINTERRUPTIBLE;
    atomic_store_explicit(&s->masked, on ? m + by : m - by, memory_order_relaxed);
}

void lwc_mask(void)
{
    mask_add(MASK_ONE);
}

void lwc_mask_uninterruptible(void)
{
    mask_add(MASK_ONE + MASK_UNINTERRUPTIBLE);
}

int lwc_unmask(void)
{
    return mask_remove(MASK_ONE, "lwc_unmask");
}

int lwc_unmask_uninterruptible(void)
{
    return mask_remove(MASK_ONE + MASK_UNINTERRUPTIBLE, "lwc_unmask_uninterruptible");
}

_Noreturn void lwc_exit(void)
{
    struct lwc_thread *t = lwc_thread_peek();
    if (!t || !t->current)
        pthread_exit(NULL);
    if (t->draining) {
        /* A deferred action or a wake-up runs between two SConts: there is no
         * SCont of its own to finish, and its caller's work would be lost. */
        lwc_warn("lwc_exit called from a deferred action: aborting");
        abort();
    }
    lwc_tx_abandon(&t->tx);
    if (t->current->exit_point)
        LWC_LONGJMP(*t->current->exit_point);
    lwc_scont_complete(t->current);
}

void lwc_scont_run(void (*fn)(void *), void *arg)
{
    lwc_scont_t *s = lwc_scont_self();
    if (!s) {
        fn(arg);
        return;
    }
    lwc_jmp_buf here, *outer = s->exit_point;
    s->exit_point = &here;
    if (LWC_SETJMP(here) == 0)
        fn(arg);
    s->exit_point = outer;                      /* s and outer: unchanged since the setjmp */
}
