/* Idle services: work that comes due in time, served by the capabilities
 * themselves instead of by an OS thread of its own. */
#include "config.h"

#include <string.h>
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
    lwc_cap_host_kick(deadline);
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

/* ---- the poller ------------------------------------------------------------ */

/* Note [The poller]
 * ~~~~~~~~~~~~~~~~~
 * fd readiness comes from the kernel (epoll, in liblwc-io), which a thread
 * learns of only by asking it: Go's netpoller shape, with no thread of its
 * own.  A capability with nothing to run, about to sleep in a retry
 * (sleep_thread in ptm/ptm.c), claims the poller if it is armed (something
 * waits for it) and nobody holds it, and sleeps in the poller's `wait`
 * (epoll_wait) instead of the futex: its waiter's state reads W_POLLING, and
 * whoever fires or nudges it calls the poller's `wake` (an eventfd write)
 * instead of a futex wake (lwc_waiter_rouse).  `wait` only blocks and
 * notes what is ready; the capability handles it (`handle`: transactions
 * that wake the waiting threads) once it is awake, off its safe point and
 * with its waiter no longer asleep, then lets the poller go.  Other idle
 * capabilities sleep on their futex as before; one that found the poller
 * held leaves `missed`, and the release nudges them so that one takes it
 * up, should the holder have woken for work.  Busy capabilities poll
 * without blocking (wait with deadline 0, then handle) from the service
 * tick at switch points, at most every LWC_POLL_EVERY_NS while armed, so a
 * ready fd is noticed while every capability is busy too.  Arming the
 * poller from unarmed nudges the idle capabilities for the same reason.
 * `held` makes the waits and handles of all capabilities one at a time,
 * so the poller's own state needs no lock. */
#define LWC_POLL_EVERY_NS 50000u

static lwc_poller_t poller;
static _Atomic bool poller_set_flag;
static _Atomic long poller_armed;
static _Atomic int poller_held, poller_missed;
static _Atomic uint64_t poll_next;

int lwc_poller_set(const lwc_poller_t *p)
{
    if (!p || !p->wait || !p->handle || !p->wake)
        return LWC_EINVAL;
    pthread_mutex_lock(&services_lock);
    int err = LWC_OK;
    if (!atomic_load(&poller_set_flag)) {
        poller = *p;
        atomic_store(&poller_set_flag, true);
    } else if (memcmp(&poller, p, sizeof *p) != 0) {
        err = LWC_EBUSY;
    }
    pthread_mutex_unlock(&services_lock);
    return err;
}

void lwc_poller_arm(void)
{
    if (atomic_fetch_add(&poller_armed, 1) == 0)
        kick_idle(0);                               /* an idle one takes the poller up */
}

void lwc_poller_disarm(void)
{
    atomic_fetch_sub(&poller_armed, 1);
}

bool lwc_poller_claim(void)
{
    if (!atomic_load(&poller_armed) || !atomic_load(&poller_set_flag))
        return false;
    if (!atomic_exchange(&poller_held, 1))
        return true;
    atomic_store(&poller_missed, 1);
    return false;
}

void lwc_poller_release(void)
{
    atomic_store(&poller_held, 0);
    if (atomic_exchange(&poller_missed, 0) && atomic_load(&poller_armed))
        kick_idle(0);
}

bool lwc_poller_wait(uint64_t deadline)
{
    poller.wait(poller.arg, deadline);
    return deadline == LWC_NEVER || lwc_clock_ns() < deadline;
}

void lwc_poller_handle(void)
{
    poller.handle(poller.arg);
}

void lwc_poller_wake(void)
{
    if (atomic_load(&poller_set_flag))
        poller.wake(poller.arg);
}

static void poll_now(uint64_t now)
{
    atomic_store_explicit(&poll_next, now + LWC_POLL_EVERY_NS, memory_order_relaxed);
    if (!atomic_load(&poller_set_flag) || atomic_exchange(&poller_held, 1))
        return;
    poller.wait(poller.arg, 0);
    poller.handle(poller.arg);
    lwc_poller_release();
}

static void services_run(uint64_t now)
{
    atomic_store(&due, LWC_NEVER);
    unsigned n = atomic_load_explicit(&nservices, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        lwc_service_due(services[i].poll(services[i].arg, now));
}

uint64_t lwc_services_serve(bool poll_anyway)
{
    uint64_t now = lwc_clock_ns();
    if (atomic_load(&due) <= now)
        services_run(now);
    if (atomic_load_explicit(&poller_armed, memory_order_relaxed) &&
        (poll_anyway || now >= atomic_load_explicit(&poll_next, memory_order_relaxed)))
        poll_now(now);
    return atomic_load(&due);
}

uint64_t lwc_service_next_deadline(void)
{
    return atomic_load(&due);
}

void lwc_services_tick(struct lwc_thread *t)
{
    t->service_countdown = LWC_SERVICE_EVERY;
    if (atomic_load_explicit(&due, memory_order_relaxed) != LWC_NEVER ||
        atomic_load_explicit(&poller_armed, memory_order_relaxed))
        lwc_services_serve(false);
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
