/* Hosted capabilities: capabilities that a program's own OS thread runs, in
 * turns it takes from its own event loop. */
#include "config.h"

#include "internal.h"

/* Note [Hosted capabilities]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A host (a libuv program, a GUI main loop, a JavaScript engine) owns its
 * thread and its loop, and lwc may never block either: it may only be given
 * turns.  A hosted capability is a capability with no worker.  Between turns
 * nobody holds it (CAP_IDLE), but cap_take_idle looks at the workers' slots
 * only, so no lwc_cap_start or lwc_eval ever takes it; a turn
 * (lwc_cap_host_run) takes it on the host's thread, which becomes its worker
 * for the while (kind THREAD_WORKER, so that lwc_runs_on lets it run any
 * unbound SCont), and serves it as a worker's native stack would
 * (lwc_cap_serve) until a switch_to_next gives it back.  The switches in
 * between are the ordinary ones: the turn costs two transactions and one
 * swap each way, not one per switch.
 *
 * What the host can never do is sleep inside lwc, so the rest follows:
 *  - services (timers) and the poller (fds) are served at the start of every
 *    turn, and the turn tells the host the next deadline, by which it takes
 *    its next turn.  Between turns the capability's `idle_until` holds the
 *    deadline the host was told, as a sleeping worker's holds the one it
 *    sleeps to (Note [Idle services] in service.c), and with the same
 *    protocol: the turn publishes it and reads `due` again; lwc_service_due
 *    lowers `due` and then reads `idle_until`, and calls the host's wake
 *    for a capability told a later deadline (lwc_cap_host_kick).  Only when
 *    the runtime has no workers: with workers, an idle one sleeps to `due`
 *    and serves it, and the host hears of its own threads through their
 *    scheduler's unblock_thread.
 *  - the detector counts a hosted capability between turns as idle until
 *    that deadline (all_idle in detect.c), and the scheduler it works for
 *    (`host_up`, named at creation) as live, as it does the scheduler an
 *    idle worker sleeps in: its runnable threads wait for the next turn,
 *    they are not stranded.  The host's thread itself is a plain OS
 *    thread, awake between turns, so no pass runs by itself meanwhile
 *    unless the host runs one (lwc_gc_host_idle in detect.c).
 *  - a safe foreign call cannot hand the capability on (Note [Outcalls]):
 *    the host's SConts would run on a thread the host does not own.  The
 *    call goes to a spare instead, and the SConts stay (Note [Calls from a
 *    hosted capability] in outcall.c).
 *  - `worker` is the host's thread during a turn only, and stale between
 *    turns; nothing reads it then, since no mail goes to an idle hosted
 *    capability.  During a turn, a bound SCont runs on its own thread,
 *    which mails the capability back to `worker` when it switches to an
 *    unbound one, or mails it empty when it gives it back (lwc_cap_route),
 *    and the host waits for that mail (lwc_cap_serve_hosted in cap.c).
 *  - `hosted` is `id >= lwc_rt.ncaps`, kept in the capability so that the
 *    release path (lwc_cap_route) and the safe call's fast path test one
 *    byte they have in cache; it never changes once set.
 * Capabilities never move (Note [TLS across switches] caches pointers to
 * them), so lwc_init makes room for LWC_MAX_HOSTED_CAPS of them after the
 * workers' and `ncaps_all` counts the slots in use; a freed one is taken
 * again by the next lwc_cap_host_new. */

static struct lwc_cap *hosted_cap(unsigned id)
{
    if (!atomic_load(&lwc_rt.up) || id < lwc_rt.ncaps || id >= lwc_cap_slots())
        return NULL;
    struct lwc_cap *c = &lwc_rt.caps[id];
    return c->host_used ? c : NULL;
}

int lwc_cap_host_new(const lwc_upcalls_t *sched, void (*wake)(void *ud), void *ud,
                     unsigned *id)
{
    if (!sched || !sched->switch_to_next || !id || !atomic_load(&lwc_rt.up))
        return LWC_EINVAL;
    pthread_mutex_lock(&lwc_rt.lock);
    unsigned n = lwc_cap_slots(), i = lwc_rt.ncaps;
    while (i < n && lwc_rt.caps[i].host_used)
        i++;
    if (i == lwc_rt.ncaps + LWC_MAX_HOSTED_CAPS) {
        pthread_mutex_unlock(&lwc_rt.lock);
        return LWC_EBUSY;
    }
    struct lwc_cap *c = &lwc_rt.caps[i];
    c->hosted = true;
    c->host_used = true;
    c->host_wake = wake;
    c->host_wake_ud = ud;
    c->host_up = *sched;
    atomic_store(&c->idle_until, LWC_NEVER);        /* told nothing yet */
    if (i == n)
        atomic_store_explicit(&lwc_rt.ncaps_all, n + 1, memory_order_release);
    pthread_mutex_unlock(&lwc_rt.lock);
    *id = i;
    return LWC_OK;
}

int lwc_cap_host_free(unsigned id)
{
    pthread_mutex_lock(&lwc_rt.lock);
    struct lwc_cap *c = hosted_cap(id);
    int err = !c ? LWC_EINVAL : atomic_load(&c->busy) != CAP_IDLE ? LWC_EBUSY : LWC_OK;
    if (err == LWC_OK) {
        c->host_used = false;
        c->host_wake = NULL;
        c->host_up = (lwc_upcalls_t){ 0 };
        atomic_store(&c->idle_until, LWC_NEVER);
    }
    pthread_mutex_unlock(&lwc_rt.lock);
    return err;
}

void lwc_cap_host_kick(uint64_t deadline)
{
    if (lwc_rt.ncaps)
        return;                                     /* the workers serve `due` */
    for (unsigned i = lwc_rt.ncaps; i < lwc_cap_slots(); i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        uint64_t told = atomic_load(&c->idle_until);    /* seq_cst: the Note */
        if (!c->host_used || told <= deadline ||
            !atomic_compare_exchange_strong(&c->idle_until, &told, deadline))
            continue;
        pthread_mutex_lock(&lwc_rt.lock);           /* against lwc_cap_host_free */
        if (c->host_used && c->host_wake)
            c->host_wake(c->host_wake_ud);
        pthread_mutex_unlock(&lwc_rt.lock);
    }
}

struct pick { lwc_scont_t *(*fn)(lwc_tx_t *tx, void *arg); void *arg; struct lwc_cap *cap; };

static lwc_word_t pick_body(lwc_tx_t *tx, void *arg)
{
    struct pick *p = arg;
    lwc_scont_t *s = p->fn(tx, p->arg);
    if (s)
        lwc_scont_mark_running_on(tx, s, p->cap);
    return (lwc_word_t)s;
}

/* The turn is over: tell the host when to come back (the Note). */
static uint64_t turn_end(struct lwc_cap *cap)
{
    uint64_t until = lwc_service_next_deadline();
    atomic_store(&cap->idle_until, until ? until : 1);  /* seq_cst; 0 reads "busy" */
    uint64_t again = lwc_service_next_deadline();
    if (again < until)
        atomic_store(&cap->idle_until, again ? again : 1);
    return again;
}

int lwc_cap_host_run(unsigned id, lwc_scont_t *(*pick)(lwc_tx_t *tx, void *arg),
                     void *arg, uint64_t *next_deadline)
{
    struct lwc_cap *cap = hosted_cap(id);
    struct lwc_thread *t = cap ? lwc_thread_get() : NULL;
    if (!t)
        return cap ? LWC_ENOMEM : LWC_EINVAL;
    if (t->current || t->cap || t->kind != THREAD_FOREIGN || t->tx.active)
        return LWC_EINVAL;
    int idle = CAP_IDLE;
    if (!atomic_compare_exchange_strong(&cap->busy, &idle, CAP_BUSY))
        return LWC_EBUSY;
    atomic_store(&cap->idle_until, 0);
    lwc_services_serve(true);
    int err = LWC_OK;
    lwc_word_t first = 0;
    if (pick)
        err = lwc_tx_run(pick_body, &(struct pick){ pick, arg, cap }, &first, true);
    if (err == LWC_OK && first) {
        cap->worker = t;
        t->kind = THREAD_WORKER;
        lwc_altstack_enter(t);
        lwc_cap_serve_hosted(t, cap, (lwc_scont_t *)first);
        lwc_altstack_leave(t);                      /* on t's own stack again */
        t->kind = THREAD_FOREIGN;
    } else {
        atomic_store_explicit(&cap->busy, CAP_IDLE, memory_order_release);
    }
    uint64_t until = turn_end(cap);
    if (next_deadline)
        *next_deadline = until;
    return err;
}
