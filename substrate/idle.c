/* Idle capabilities: where a capability waits when its scheduler has nothing
 * to run, and how it comes back. */
#include "config.h"

#include "internal.h"

/* Note [Idling in a place of its own]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A scheduler idles a capability by retrying in its switch_to_next upcall
 * (design.md): the transaction sleeps until a PVar it read is written.  That
 * upcall runs inside the transaction of the SCont that stops: its blocking
 * switch (an MVar take, a sleep), its completion.  Were the capability to
 * sleep in that transaction, the SCont's stop would never have committed: on
 * the wake-up the whole transaction would run again, and the SCont, finding
 * the MVar full or its timer fired, would carry on at once, ahead of
 * everything its scheduler had been handed meanwhile.  rr would run the last
 * of three sleepers first; a priority scheduler its low-priority thread
 * before a high one.  A thread that blocked must run again only once its
 * scheduler's unblock_thread has taken it and its switch_to_next has chosen
 * it.
 *
 * So a retry inside switch_to_next (`in_upcall` when lwc_tx_abort runs)
 * abandons the transaction, and lwc_tx_run runs it again with `rerun_idle`:
 * lwc_switch_to_next (or the completion) then skips the upcall and commits
 * the SCont's stop with no target (`to_idle`).  The state the body sees may
 * have changed in between; then it takes whatever path that state calls
 * for, like any re-run.  The commit leaves for the OS thread's native stack
 * with REQ_IDLE, having noted in the capability the SCont, the status it
 * stopped with and its upcalls (lwc_idle_prepare; the SCont is referenced,
 * as it may complete).  There lwc_idle_run asks the same switch_to_next, in
 * a transaction of its own (idle_body), for an SCont to run, with the same
 * arguments as the abandoned call: that is where the capability sleeps,
 * in the upcall's retry, until a PVar the scheduler read is written.  What
 * it names is marked running in the same commit, and runs on this OS thread
 * or is mailed with the capability to the one it must run on; NULL gives
 * the capability back (Note [Releasing a capability] in cap.c).
 *
 * A bound or host thread that stops this way hands the capability to its
 * worker with an empty mail (handle_request in cap.c), and the worker idles:
 * a host waiting in lwc_eval must be free to return once its SCont is done.
 *
 * `self` in the idle call may by then have been woken, and be running on
 * another capability, or have completed: the upcall is told who stopped and
 * why, as it would have been, and must act on it only through its
 * transaction (schedulers/README.md says so of every upcall).  The
 * detector's root for an idle capability is the upcalls' env, the scheduler
 * it sleeps in (detect.c); the SCont that stopped is not a root. */

void lwc_idle_prepare(struct lwc_thread *t, lwc_tx_t *tx)
{
    struct lwc_cap *cap = t->cap;
    lwc_scont_ref(tx->self);
    cap->idle_for = tx->self;
    cap->idle_why = tx->left_as;
    lwc_scont_load_upcalls(tx->self, &cap->idle_up);
    t->request = REQ_IDLE;
}

static lwc_word_t idle_body(lwc_tx_t *tx, void *arg)
{
    struct lwc_cap *cap = arg;
    lwc_upcalls_t *u = &cap->idle_up;
    lwc_scont_t *next = NULL;
    if (u->switch_to_next)
        next = u->switch_to_next(tx, cap->idle_for, cap->idle_why, u->env);
    if (!next) {
        tx->releases = true;
        return 0;
    }
    lwc_scont_mark_running(tx, next);
    return (lwc_word_t)next;
}

lwc_scont_t *lwc_idle_run(struct lwc_thread *t, struct lwc_cap *cap)
{
    t->cap = cap;
    lwc_word_t next = 0;
    int err = lwc_tx_run(idle_body, cap, &next, true);
    lwc_scont_t *stopped = cap->idle_for;
    cap->idle_for = NULL;
    if (err != LWC_OK) {
        if (!atomic_load(&lwc_rt.stopping))
            lwc_warn("an idle capability asked the switch_to_next upcall of SCont %llu for "
                     "work, and it failed (%s): the capability is released",
                     (unsigned long long)lwc_scont_id(stopped), lwc_strerror(err));
        next = 0;
    }
    lwc_scont_unref(stopped);
    return lwc_cap_route(t, cap, (lwc_scont_t *)next);
}
