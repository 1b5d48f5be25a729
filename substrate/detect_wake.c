/* What a pass does with what it found: wake each thread blocked for good with
 * its error, and hand threads stranded in a scheduler nothing reaches to
 * one that runs (Note [Orphans]). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "detect.h"
#include "futex.h"

/* ---- waking --------------------------------------------------------------------------------- */

bool lwc_gc_is_victim(const struct wake *wk, const struct sc *c)
{
    if (c->st != LWC_BLOCKED_ON_CONCDS)
        return false;
    if (wk->only_hosts)
        return atomic_load(&c->s->host_waits) != 0;
    return !c->marked;
}

/* Note [Waking in batches]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * The victims are woken by transactions of WAKE_BATCH wake-ups each: one
 * transaction for 100 000 would search a write set that large on every
 * access.  Batches do not make the wake-up less "all at once": every
 * capability is stopped until the last batch has committed, so no SCont runs
 * before all of them are woken, and only the first batch must find the
 * sequence where the marking left it. */
#define WAKE_BATCH 8

static lwc_word_t wake_body(lwc_tx_t *tx, void *arg)
{
    struct wake *wk = arg;
    if (wk->next == 0 && tx->snapshot != wk->seq)
        return 1;                                   /* something committed: pass again */
    unsigned n = 0;
    size_t i = wk->next;
    for (; i < wk->ps->nsc && n < WAKE_BATCH; i++) {
        struct sc *c = &wk->ps->sc[i];
        if (lwc_gc_is_victim(wk, c) && !c->idle_waiter && lwc_scont_interrupt(tx, c->s, wk->err))
            n++;
    }
    return (lwc_word_t)(i - wk->next) << 16 | n;    /* how far it got, and how many */
}

/* Wake the victims: those blocked in a commit through lwc_scont_interrupt
 * (Note [Waking in batches]); those idling in their blocking switch through
 * their retry waiter (Note [Idle in a blocking switch]).  False: the world
 * moved before anything was woken. */
bool lwc_gc_wake(struct wake *wk)
{
    wk->next = 0;
    wk->woken = 0;
    while (wk->next < wk->ps->nsc) {
        lwc_word_t r = 0;
        int err = lwc_tx_run(wake_body, wk, &r, true);
        if (err != LWC_OK || r == 1) {
            if (wk->next == 0)
                return false;
            lwc_warn("a detection pass could not wake every thread it found: %s",
                     lwc_strerror(err));
            break;
        }
        wk->next += r >> 16;
        wk->woken += r & 0xffff;
    }
    for (size_t i = 0; i < wk->ps->nsc; i++) {
        struct sc *c = &wk->ps->sc[i];
        if (!lwc_gc_is_victim(wk, c))
            continue;
        if (wk->err == LWC_EDEADLOCK)
            atomic_store(&c->s->deadlocked, 1);
        if (c->idle_waiter) {
            wk->woken++;
            c->idle_waiter->error = wk->err;
            lwc_waiter_rouse(c->idle_waiter, atomic_exchange(&c->idle_waiter->state, W_FIRED));
        }
    }
    return true;
}

/* ---- orphans -------------------------------------------------------------------------------- */

/* Note [Orphans]
 * ~~~~~~~~~~~~~~~
 * A runnable SCont (LWC_BLOCKED_ON_SCHED) runs again only when its
 * scheduler's switch_to_next picks it, and that code runs only on a
 * capability working for the scheduler: one running a thread of it, or
 * idling in its switch_to_next.  A scheduler whose last capability has left
 * and that nothing refers to can never run its queue again.  LWC only logged
 * such threads; lwc adopts them into a live scheduler and wakes them with
 * LWC_EBLOCKED_SCHED.
 *
 * The pass knows a scheduler by the env of its upcalls.  A runnable SCont is
 * no root: it is marked when its scheduler is live, that is when its env is
 *  - named exactly by a word the pass reads: a reached SCont names it in its
 *    upcalls, lwc_main's static names its instance, a frame holds it;
 *  - the env of the SCont on whose stack an idle capability sleeps
 *    (design.md's "schedulers that idle capabilities sleep in");
 *  - inside memory the pass found live: static data, a sleeping plain
 *    thread's stack, a marked lwc_alloc block or SCont (envs_inside_roots).
 * A pointer into the middle of a scheduler's memory does not keep it: only
 * its env's own address, or a pin, does.  The runnable SConts left unmarked
 * are stranded (find_stranded), and will run again adopted, so what they
 * reach is marked before the victims are chosen: they may be the ones that
 * wake a blocked thread.
 *
 * Nothing races with the adoption: no capability works for their scheduler,
 * and no thread can reach them (a plain thread that holds an unpinned
 * reference breaks detect.h's rule).  So the adopter's upcalls and a NULL
 * local state are stored plainly, but only once the first wake-up batch has
 * committed, which proves the marking still holds (Note [Waking in
 * batches]): a pass that finds the world moved must leave them as they were.
 * Then transactions of ORPHAN_BATCH orphans each write `pending`
 * (LWC_EBLOCKED_SCHED, unless an error waits there already) and call the
 * adopter's unblock_thread, which takes the orphan in with a node of its own
 * and sets its local state; a re-run finds that node there.  `pending`, not
 * `interrupt` (Note [Delivering errors] in exception.c): an orphan may have
 * been woken from an MVar with a value that its blocking call must return;
 * the error comes at the switch it is suspended in if that was a yield, else
 * at its next switch point.  An orphan whose local state is still NULL after
 * the commit was not taken in (the adopter ran out of memory): its old
 * upcalls and local state go back, and a later pass tries again.
 *
 * The adopter is the scheduler of the SCont the pass runs on (lwc_gc's
 * caller, or the SCont an idle capability sleeps on), else that of an SCont a
 * host waits for (lwc_main's) while that scheduler runs, else any scheduler
 * that runs, provided it takes orphans (lwc_sched_adopts_orphans: rr and ws
 * do).  With none, the orphans stay where they are, and a whole-program
 * deadlock report lists them. */

#define ADOPTERS_MAX 16
static _Atomic(void *) adopters[ADOPTERS_MAX];

int lwc_sched_adopts_orphans(lwc_scont_t *(*switch_to_next)(lwc_tx_t *, lwc_scont_t *,
                                                            lwc_status_t, void *))
{
    if (!switch_to_next)
        return LWC_EINVAL;
    for (unsigned i = 0; i < ADOPTERS_MAX; i++) {
        void *seen = NULL;
        if (atomic_compare_exchange_strong(&adopters[i], &seen, (void *)switch_to_next) ||
            seen == (void *)switch_to_next)
            return LWC_OK;
    }
    return LWC_ENOMEM;
}

static bool takes_orphans(const lwc_upcalls_t *u)
{
    if (!u->switch_to_next || !u->unblock_thread || !u->env)
        return false;
    for (unsigned i = 0; i < ADOPTERS_MAX; i++)
        if (atomic_load(&adopters[i]) == (void *)u->switch_to_next)
            return true;
    return false;
}

/* s's upcalls, into *u, if they name a scheduler that takes orphans. */
static bool adopter_of(lwc_scont_t *s, lwc_upcalls_t *u)
{
    if (!s)
        return false;
    lwc_scont_load_upcalls(s, u);
    return takes_orphans(u);
}

/* The same for the scheduler a parked capability works for. */
static bool cap_adopter(struct lwc_cap *cap, lwc_upcalls_t *u)
{
    return lwc_gc_cap_upcalls(cap, u) && takes_orphans(u);
}

/* Does a capability work for the scheduler whose env is env? */
static bool env_runs(const struct pass *ps, void *env)
{
    for (unsigned i = 0; i < lwc_cap_slots(); i++) {
        lwc_upcalls_t u;
        if (lwc_gc_cap_upcalls(&lwc_rt.caps[i], &u) && u.env == env)
            return true;
    }
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].runs && lwc_scont_env(ps->sc[i].s) == env)
            return true;
    return false;
}

/* Note [Orphans]: the scheduler that adopts, into *u; false if none will. */
bool lwc_gc_choose_adopter(const struct pass *ps, struct lwc_thread *t, lwc_upcalls_t *u)
{
    if (adopter_of(t->current, u) || (!t->current && t->cap && cap_adopter(t->cap, u)))
        return true;
    for (size_t i = 0; i < ps->nsc; i++)
        if (atomic_load(&ps->sc[i].s->host_waits) && adopter_of(ps->sc[i].s, u) &&
            env_runs(ps, u->env))
            return true;
    for (unsigned i = 0; i < lwc_cap_slots(); i++)
        if (cap_adopter(&lwc_rt.caps[i], u))
            return true;
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].runs && adopter_of(ps->sc[i].s, u))
            return true;
    return false;
}

#define ORPHAN_BATCH 8

struct orphan { lwc_scont_t *s; lwc_upcalls_t old; void *old_local; };
struct adoption { struct orphan *o; size_t n, next; const lwc_upcalls_t *to; };

static lwc_word_t adopt_body(lwc_tx_t *tx, void *arg)
{
    struct adoption *a = arg;
    for (size_t i = a->next; i < a->n && i < a->next + ORPHAN_BATCH; i++) {
        lwc_scont_t *s = a->o[i].s;
        if (!lwc_tx_read(tx, &s->pending))
            lwc_tx_write(tx, &s->pending, (lwc_word_t)(intptr_t)LWC_EBLOCKED_SCHED);
        a->to->unblock_thread(tx, s, a->to->env);
    }
    return 0;
}

/* Note [Orphans]: hand every stranded SCont to the scheduler `to`.  How many
 * it took in. */
unsigned lwc_gc_adopt(struct pass *ps, const lwc_upcalls_t *to)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->nsc; i++)
        n += ps->sc[i].stranded;
    struct orphan *o = malloc(n * sizeof *o);
    if (!o) {
        lwc_warn("out of memory in a detection pass: %zu stranded threads not adopted", n);
        return 0;
    }
    for (size_t i = 0, k = 0; i < ps->nsc; i++) {
        lwc_scont_t *s = ps->sc[i].s;
        if (!ps->sc[i].stranded)
            continue;
        o[k].s = s;
        lwc_scont_load_upcalls(s, &o[k].old);
        o[k].old_local = atomic_load(&s->local);
        lwc_scont_set_upcalls(s, to);
        atomic_store(&s->local, NULL);
        k++;
    }
    struct adoption a = { o, n, 0, to };
    unsigned adopted = 0;
    for (; a.next < n; a.next += ORPHAN_BATCH) {
        int err = lwc_tx_run(adopt_body, &a, NULL, true);
        for (size_t i = a.next; i < n && i < a.next + ORPHAN_BATCH; i++) {
            if (err == LWC_OK && atomic_load(&o[i].s->local)) {
                adopted++;
                continue;
            }
            lwc_scont_set_upcalls(o[i].s, &o[i].old);
            atomic_store(&o[i].s->local, o[i].old_local);
        }
    }
    if (adopted < n)
        lwc_warn("%zu threads stranded in a scheduler nothing can reach could not be adopted",
                 n - adopted);
    free(o);
    return adopted;
}

