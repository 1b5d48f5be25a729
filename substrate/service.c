/* Idle services: work that comes due in time, served by the capabilities
 * themselves instead of by an OS thread of its own. */
#include "config.h"

#include <time.h>

#include "futex.h"
#include "internal.h"

/* Note [Idle services]
 * ~~~~~~~~~~~~~~~~~~~~
 * A sleeping thread must be woken at its deadline while every capability has
 * nothing to run, and also while a capability is busy with threads that only
 * yield: a thread that spins on lwc_yield until a sleeper wakes must not spin
 * forever.  So two places poll the registered services:
 *
 *  - a capability with nothing to run, in the retry its scheduler's
 *    switch_to_next sleeps in (sleep_thread in ptm/ptm.c): it polls what is due,
 *    then sleeps in the kernel no later than `due`, the earliest deadline any
 *    service has reported;
 *  - every LWC_SERVICE_EVERY-th landing of a switch (lwc_land): if `due` has
 *    passed, poll.  On the hot path that costs a decrement and a branch.
 *
 * `due` only goes down, by lwc_service_due (a fetch-min), except in
 * services_run, which sets it to LWC_NEVER *before* it polls and lowers it again
 * with what each poll returns.  A poll sees every deadline a service recorded
 * before the poll began, so each pending deadline is covered either by `due`
 * or by a run in progress that will lower `due` to it.
 *
 * Whoever lowers `due` kicks the idle capabilities that would sleep past the
 * new value.  A sleeper publishes the deadline it sleeps until in its lwc_cap
 * (`idle_until`, 0 when it is not asleep) and then reads `due` again; a lowerer
 * changes `due` and then reads each `idle_until` (all four seq_cst).  In either
 * order one of them sees the other: the sleeper shortens its sleep, or the
 * lowerer kicks it with lwc_retry_nudge, which wakes it without firing its
 * retry: it serves the services and sleeps again to the new deadline.  Only
 * `due` moved, so its switch_to_next need not run again, and must not: a
 * transaction begun on an idle capability revokes the commit bias of a busy
 * one (Note [Biased commit] in ptm/ptm.c), a membarrier and, for a while, no
 * biased commits.
 *
 * Where a poll runs, no transaction of its OS thread is active, so the
 * transactions it runs use the thread's one descriptor like any other:
 *  - in sleep_thread, the retrying transaction has been given up (tx_wait
 *    copied its read set into the waiter nodes first), and the SCont that was
 *    switching out stays where it is until the retry is run again.  A poll that
 *    makes something runnable writes a PVar that transaction read, which fires
 *    this very waiter: the capability does not sleep, and runs it again;
 *  - after a landing, or a committed switch to itself (lwc_tx_run): the switch
 *    has committed, as when lwc_tx_after_commit runs its wake-ups there.
 *
 * Every idle capability sleeps to the same `due`, so with several idle at once
 * each wakes for it and all but the first find nothing left to do.  That is a
 * wasted wake-up per idle capability and deadline, not a lost one. */

#define MAX_SERVICES 8

static struct {
    lwc_service_poll_fn poll;
    void               *arg;
} services[MAX_SERVICES];
static _Atomic unsigned nservices;
static pthread_mutex_t services_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t due = LWC_NEVER;

uint64_t lwc_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lwc_service_add(lwc_service_poll_fn poll, void *arg)
{
    if (!poll)
        return LWC_EINVAL;
    int err = LWC_OK;
    pthread_mutex_lock(&services_lock);
    unsigned n = atomic_load_explicit(&nservices, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (services[i].poll == poll && services[i].arg == arg)
            goto out;
    if (n == MAX_SERVICES) {
        err = LWC_ENOMEM;
        goto out;
    }
    services[n].poll = poll;
    services[n].arg = arg;
    atomic_store_explicit(&nservices, n + 1, memory_order_release);  /* the entry first */
out:
    pthread_mutex_unlock(&services_lock);
    return err;
}

static void idle_lock(struct lwc_cap *c)
{
    for (unsigned i = 0; atomic_exchange_explicit(&c->idle_lock, 1, memory_order_acquire); i++)
        lwc_spin_step(i);
}

static void idle_unlock(struct lwc_cap *c)
{
    atomic_store_explicit(&c->idle_lock, 0, memory_order_release);
}

/* Wake every idle capability that sleeps past `deadline`. */
static void kick_idle(uint64_t deadline)
{
    if (!atomic_load(&lwc_rt.up))
        return;
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        if (atomic_load(&c->idle_until) <= deadline)       /* seq_cst: the Note */
            continue;
        idle_lock(c);
        if (c->idle_thread && atomic_load(&c->idle_until) > deadline)
            lwc_retry_nudge(c->idle_thread);
        idle_unlock(c);
    }
}

void lwc_service_due(uint64_t deadline)
{
    uint64_t cur = atomic_load(&due);
    while (deadline < cur) {
        if (atomic_compare_exchange_weak(&due, &cur, deadline)) {
            kick_idle(deadline);
            return;
        }
    }
}

static void services_run(uint64_t now)
{
    atomic_store(&due, LWC_NEVER);
    unsigned n = atomic_load_explicit(&nservices, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        lwc_service_due(services[i].poll(services[i].arg, now));
}

uint64_t lwc_services_serve(void)
{
    uint64_t now = lwc_clock_ns();
    if (atomic_load(&due) <= now)
        services_run(now);
    return atomic_load(&due);
}

void lwc_services_tick(struct lwc_thread *t)
{
    t->service_countdown = LWC_SERVICE_EVERY;
    if (atomic_load_explicit(&due, memory_order_relaxed) != LWC_NEVER)
        lwc_services_serve();
}

uint64_t lwc_idle_publish(struct lwc_cap *c, struct lwc_thread *t, uint64_t until)
{
    idle_lock(c);
    c->idle_thread = t;
    atomic_store(&c->idle_until, until);                    /* seq_cst: the Note */
    idle_unlock(c);
    return atomic_load(&due);
}

void lwc_idle_unpublish(struct lwc_cap *c)
{
    idle_lock(c);
    c->idle_thread = NULL;
    atomic_store(&c->idle_until, 0);
    idle_unlock(c);
}
