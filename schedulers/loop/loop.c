/* The foreign-loop scheduler: a FIFO run queue in PVars that one hosted
 * capability serves, in the turns a host's event loop gives it (ticks), on
 * the public API. */
#include <errno.h>
#include <limits.h>
#include <lwc/io.h>
#include <lwc/loop.h>
#include <lwc/lwc.h>
#include <stdlib.h>

#include "../common/thread.h"
#include "loop.h"

/* Note [Ticks]
 * ~~~~~~~~~~~~
 * A tick is one turn of the loop's hosted capability (lwc_cap_host_run,
 * Note [Hosted capabilities] in substrate/host.c): it serves the timers and
 * the fds that are due, pops the first runnable thread and runs it, and
 * from then on the threads switch among themselves as on any scheduler,
 * each switch_to_next popping the next.  One that finds the queue empty, or
 * the budget spent, returns NULL: the capability goes back to the host,
 * which returns from the tick.  A thread that blocks then stays where its
 * data structure put it; one that yields is queued first.  Nothing here
 * ever retries in switch_to_next, so the host's thread never sleeps in lwc.
 *
 * A thread becomes runnable through loop_unblock, from any OS thread (a
 * token settled, an MVar a ws thread filled, a timer the tick served).
 * Outside the loop's own turn that also calls the wake hook, once per tick
 * at most (`woken`), after the commit: the host then ticks again.  Inside
 * the turn no call is needed, the queue is read again before the turn ends.
 *
 * Only the host's thread runs the loop's threads, so what the tick keeps
 * (the budget, the finished evaluations) is plain memory; what other OS
 * threads touch is the queue (PVars) and the `live` count (atomic). */

/* Note [Tick budgets]
 * ~~~~~~~~~~~~~~~~~~~
 * Every switch of a loop thread asks the scheduler (switch_to_next, or the
 * yield's body), so that is where the budget is counted and looked at: a
 * switch past it gives the capability back instead of naming the next
 * thread, the yielder queued first.  The clock is read at each switch when
 * the tick has a time budget, and never when it has none.  A body run again
 * counts again, so a tick may end a switch early, never late; and a thread
 * that computes without switching keeps the host until it switches. */

#define RD(pv)      lwc_pvar_read(tx, (pv))
#define WR(pv, v)   lwc_pvar_write(tx, (pv), (lwc_word_t)(v))

static bool budget_spent(lwc_loop_t *l)
{
    if (++l->switches >= l->max_switches)
        return true;
    return l->budget_end != LWC_NEVER && lwc_clock_ns() >= l->budget_end;
}

/* ---- upcalls ------------------------------------------------------------------------ */

/* The next runnable thread, or NULL: what a tick starts with, and what a
 * switch goes to. */
static lwc_scont_t *pick(lwc_tx_t *tx, void *arg)
{
    lwc_loop_t *l = arg;
    struct sched_thread *t = fifo_pop(tx, l->head, l->tail);
    return t ? thread_scont(t) : NULL;
}

static lwc_scont_t *loop_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    lwc_loop_t *l = env;
    sched_thread_completing(tx, self, why);     /* Note [Orphans] in ../common/thread.h */
    return budget_spent(l) ? NULL : pick(tx, l);    /* NULL: the tick ends (Note [Ticks]) */
}

static void wake_host(void *arg)
{
    lwc_loop_t *l = arg;
    if (l->cfg.wake && !atomic_exchange(&l->woken, 1))
        l->cfg.wake(l->cfg.wake_ud);
}

static void loop_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    lwc_loop_t *l = env;
    struct sched_thread *t = sched_thread_of(s, l);
    if (!t)
        return;
    fifo_push(tx, l->head, l->tail, t);
    if (lwc_cap_self() != l->cap)
        lwc_tx_defer(tx, wake_host, l);
}

lwc_loop_t *lwc_loop_self(void)
{
    return sched_self(loop_next);
}

/* ---- threads ------------------------------------------------------------------------ */

static void trampoline(void *arg)
{
    struct sched_thread *t = arg;
    lwc_scont_run(t->fn, t->arg);
    lwc_loop_t *l = thread_sched(t);
    sched_thread_done(t);
    atomic_fetch_sub(&l->live, 1);
}

struct spawn { lwc_loop_t *loop; struct sched_thread *t; };

static lwc_word_t spawn_body(lwc_tx_t *tx, void *arg)
{
    struct spawn *sp = arg;
    loop_unblock(tx, thread_scont(sp->t), sp->loop);
    return 0;
}

/* A new thread of l, queued; its SCont through *out if out is not NULL. */
static __attribute__((noinline)) int loop_spawn(lwc_loop_t *l, void (*fn)(void *), void *arg,
                                                 lwc_scont_t **out)
{
    lwc_upcalls_t u = { loop_next, loop_unblock, l };
    struct spawn sp = { l, sched_thread_new(l, fn, arg, trampoline, &u, false) };
    if (!sp.t)
        return errno == EINVAL ? LWC_EINVAL : LWC_ENOMEM;
    if (out)
        *out = thread_scont(sp.t);
    atomic_fetch_add(&l->live, 1);
    int err = lwc_atomically(spawn_body, &sp, NULL);
    if (err != LWC_OK) {
        sched_thread_give(sp.t);
        atomic_fetch_sub(&l->live, 1);
    }
    return err;
}

int lwc_loop_spawn(lwc_loop_t *loop, void (*fn)(void *), void *arg)
{
    if (!loop || !fn)
        return LWC_EINVAL;
    int err = loop_spawn(loop, fn, arg, NULL);
    lwc_stack_scrub();          /* Note [Scrubbing the stack] in substrate/detect.c */
    return err;
}

static lwc_scont_t *yield_body(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    lwc_loop_t *l = arg;
    *st = LWC_BLOCKED_ON_SCHED;
    if (budget_spent(l)) {
        fifo_push(tx, l->head, l->tail, lwc_scont_get_local(self));
        return NULL;                            /* Note [Tick budgets] */
    }
    struct sched_thread *next = fifo_rotate(tx, l->head, l->tail, lwc_scont_get_local(self));
    return next ? thread_scont(next) : self;    /* nobody else: carry on */
}

int lwc_loop_yield(void)
{
    lwc_loop_t *l = lwc_loop_self();
    return l ? lwc_switch(yield_body, l) : LWC_EINVAL;
}

/* ---- evaluations ------------------------------------------------------------------- */

/* What becomes of an evaluation once its thread has finished. */
enum eval_mode {
    EVAL_COLLECT,       /* the call that started it is still in its tick: it takes the result */
    EVAL_NOTIFY,        /* done is called from the tick that sees it finish */
    EVAL_DROP           /* eval_sync gave up on it: nobody wants the result */
};

struct eval {
    lwc_loop_t      *loop;
    lwc_word_t     (*fn)(void *);
    void            *arg;
    lwc_loop_done_fn done;
    void            *ud;
    lwc_word_t       result;
    int              err;
    bool             finished;
    enum eval_mode   mode;
    struct eval     *next;              /* on the loop's list of finished ones */
    struct eval     *older, *newer;     /* on the loop's list of unfinished ones */
};

static void eval_link(lwc_loop_t *l, struct eval *e)
{
    e->newer = NULL;
    e->older = l->unfinished;
    if (e->older)
        e->older->newer = e;
    l->unfinished = e;
}

static void eval_unlink(lwc_loop_t *l, struct eval *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        l->unfinished = e->older;
    if (e->older)
        e->older->newer = e->newer;
}

static void eval_call(void *arg)
{
    struct eval *e = arg;
    e->result = e->fn(e->arg);
    e->err = LWC_OK;
}

static void eval_thread(void *arg)
{
    struct eval *e = arg;
    lwc_scont_t *self = lwc_scont_self();
    lwc_host_wait_begin(self);                  /* a whole-program deadlock wakes it */
    e->err = LWC_EKILLED;                       /* unless fn returns: lwc_exit */
    lwc_scont_run(eval_call, e);
    int deadlock = lwc_host_wait_end(self);
    if (deadlock != LWC_OK)
        e->err = deadlock;
    e->finished = true;
    eval_unlink(e->loop, e);
    if (e->mode == EVAL_DROP) {
        free(e);
    } else if (e->mode == EVAL_NOTIFY) {
        lwc_loop_t *l = e->loop;
        *l->done_tail = e;
        l->done_tail = &e->next;
    }
}

/* Report the evaluations that finished: on the host's thread, outside
 * every thread of the loop, each taken off the list before its done runs
 * (which may tick again). */
static void report_done(lwc_loop_t *l)
{
    l->reporting++;
    while (l->done && !l->in_tick) {
        struct eval *e = l->done;
        if (!(l->done = e->next))
            l->done_tail = &l->done;
        if (e->done)
            e->done(e->err, e->result, e->ud);
        free(e);
    }
    l->reporting--;
}

/* ---- ticks ------------------------------------------------------------------------ */

static bool mine(lwc_loop_t *l)
{
    return l && pthread_equal(l->owner, pthread_self());
}

static void status_fill(lwc_loop_t *l, uint64_t next_deadline, lwc_loop_status_t *st)
{
    st->state = lwc_pvar_read(NULL, l->head) ? LWC_LOOP_MORE : LWC_LOOP_IDLE;
    st->next_deadline = next_deadline;
    st->tokens = l->tokens;
    st->fds = lwc_fd_waits(NULL, 0);
    st->threads = (unsigned)atomic_load(&l->live);
    st->switches = l->switches;
}

/* Nothing runnable, and nothing but the threads of some scheduler could
 * make anything runnable: what a pass that runs by itself needs (Note
 * [Hosted capabilities] in substrate/host.c). */
static bool idle_for_good(const lwc_loop_status_t *st)
{
    return st->state == LWC_LOOP_IDLE && st->next_deadline == LWC_NEVER && !st->tokens &&
           !st->fds && st->threads;
}

/* Note [The loop's idle timer]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * With lwc_config_t.idle_gc_ms (GHC's -I), a worker idle that long towards
 * a deadline runs a pass (Note [The idle timer] in substrate/detect.c).  A
 * loop's host sleeps outside lwc, so the loop keeps the time instead: once
 * its ticks have run nothing for that long while threads are blocked, the
 * tick runs the idle timer's pass (lwc_gc_host_idle_timer), once until a
 * thread runs again, and until then it reports that moment as a deadline,
 * so that the host comes back for it. */
static void idle_timer(lwc_loop_t *l, uint64_t next, lwc_loop_status_t *st)
{
    uint64_t after = lwc_gc_idle_timer_ns();
    if (!after)
        return;
    uint64_t due = l->ran_at + after;
    if (lwc_clock_ns() < due) {
        if (due < st->next_deadline)
            st->next_deadline = due;
        return;
    }
    l->timer_passed = true;
    if (lwc_gc_host_idle_timer() > 0)
        status_fill(l, next, st);
}

static int tick(lwc_loop_t *l, uint64_t budget_ns, unsigned long max_switches,
                lwc_loop_status_t *st)
{
    if (l->in_tick) {
        *st = (lwc_loop_status_t){ .state = LWC_LOOP_BUSY, .next_deadline = LWC_NEVER };
        return LWC_OK;
    }
    l->in_tick = true;
    atomic_store(&l->woken, 0);
    l->switches = 0;
    l->max_switches = max_switches ? max_switches : (unsigned long)-1;
    l->budget_end = budget_ns == LWC_NEVER ? LWC_NEVER : lwc_clock_ns() + budget_ns;
    uint64_t next = LWC_NEVER;
    /* An empty queue needs no transaction (a push from another thread from
     * now on wakes the host), unless the turn's timers and fds fill it. */
    bool any = lwc_pvar_read(NULL, l->head) != 0;
    int err = lwc_cap_host_run(l->cap, any ? pick : NULL, l, &next);
    if (!any && err == LWC_OK && lwc_pvar_read(NULL, l->head))
        err = lwc_cap_host_run(l->cap, pick, l, &next);
    l->in_tick = false;
    if (l->switches) {
        l->ran = true;
        l->ran_at = lwc_clock_ns();
        l->timer_passed = false;
    }
    status_fill(l, next, st);
    if (idle_for_good(st) && l->ran) {
        l->ran = false;
        if (lwc_gc_host_idle() > 0)
            status_fill(l, next, st);
    } else if (st->state == LWC_LOOP_IDLE && st->threads && !l->timer_passed) {
        idle_timer(l, next, st);
    }
    report_done(l);
    return err;
}

int lwc_loop_tick_limit(lwc_loop_t *loop, uint64_t budget_ns, unsigned long max_switches,
                        lwc_loop_status_t *st)
{
    lwc_loop_status_t none;
    if (!mine(loop))
        return LWC_EINVAL;
    return tick(loop, budget_ns, max_switches, st ? st : &none);
}

int lwc_loop_tick(lwc_loop_t *loop, uint64_t budget_ns, lwc_loop_status_t *st)
{
    return lwc_loop_tick_limit(loop, budget_ns, 0, st);
}

int lwc_loop_set_wake(lwc_loop_t *loop, void (*wake)(void *ud), void *ud)
{
    if (!mine(loop))
        return LWC_EINVAL;
    loop->cfg.wake_ud = ud;
    loop->cfg.wake = wake;
    return LWC_OK;
}

int lwc_loop_get_wake(lwc_loop_t *loop, void (**wake)(void *ud), void **ud)
{
    if (!mine(loop) || !wake || !ud)
        return LWC_EINVAL;
    *wake = loop->cfg.wake;
    *ud = loop->cfg.wake_ud;
    return LWC_OK;
}

int lwc_loop_timeout_ms(const lwc_loop_status_t *st)
{
    if (!st || st->state != LWC_LOOP_IDLE)
        return 0;
    if (st->next_deadline == LWC_NEVER)
        return -1;
    uint64_t now = lwc_clock_ns();
    if (st->next_deadline <= now)
        return 0;
    uint64_t ms = (st->next_deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int lwc_loop_pending(lwc_loop_t *loop, lwc_loop_status_t *st)
{
    if (!mine(loop) || !st)
        return LWC_EINVAL;
    status_fill(loop, lwc_service_next_deadline(), st);
    if (loop->in_tick)
        st->state = LWC_LOOP_BUSY;
    return LWC_OK;
}

unsigned lwc_loop_fds(lwc_loop_t *loop, lwc_loop_fd_t *fds, unsigned max)
{
    return mine(loop) ? lwc_fd_waits(fds, max) : 0;
}

int lwc_loop_backend_fd(lwc_loop_t *loop)
{
    return mine(loop) ? lwc_fd_backend() : -1;
}

/* The thread of an evaluation, and the tick that follows at once, on the
 * host's thread (the wake hook is not called for it). */
static int eval_start(lwc_loop_t *l, lwc_word_t (*fn)(void *), void *arg,
                      lwc_loop_done_fn done, void *ud, struct eval **out)
{
    if (!l->in_tick)
        atomic_store(&l->woken, 1);             /* the tick below runs it */
    struct eval *e = calloc(1, sizeof *e);
    if (!e)
        return LWC_ENOMEM;
    *e = (struct eval){ .loop = l, .fn = fn, .arg = arg, .done = done, .ud = ud,
                        .mode = EVAL_COLLECT };
    eval_link(l, e);
    int err = loop_spawn(l, eval_thread, e, NULL);
    lwc_stack_scrub();
    if (err != LWC_OK) {
        eval_unlink(l, e);
        free(e);
        return err;
    }
    *out = e;
    return LWC_OK;
}

/* A finished evaluation's outcome, and it goes. */
static int eval_collect(struct eval *e, lwc_word_t *result)
{
    int err = e->err;
    if (err == LWC_OK && result)
        *result = e->result;
    free(e);
    return err;
}

int lwc_loop_eval_async(lwc_loop_t *loop, lwc_word_t (*fn)(void *), void *arg,
                        lwc_loop_done_fn done, void *ud, lwc_word_t *result)
{
    if (!mine(loop) || !fn)
        return LWC_EINVAL;
    struct eval *e;
    int err = eval_start(loop, fn, arg, done, ud, &e);
    if (err != LWC_OK)
        return err;
    if (loop->in_tick) {
        e->mode = EVAL_NOTIFY;
        return LWC_EAGAIN;
    }
    lwc_loop_status_t st;
    tick(loop, loop->cfg.eval_budget_ns, loop->cfg.eval_max_switches, &st);
    if (e->finished)
        return eval_collect(e, result);
    e->mode = EVAL_NOTIFY;
    wake_host(loop);                            /* look at the loop again: it has work */
    return LWC_EAGAIN;
}

int lwc_loop_eval_sync(lwc_loop_t *loop, lwc_word_t (*fn)(void *), void *arg,
                       lwc_word_t *result)
{
    if (!mine(loop) || !fn)
        return LWC_EINVAL;
    if (loop->in_tick)
        return LWC_EBUSY;
    struct eval *e;
    int err = eval_start(loop, fn, arg, NULL, NULL, &e);
    if (err != LWC_OK)
        return err;
    lwc_loop_status_t st;
    do
        tick(loop, LWC_NEVER, 0, &st);
    while (!e->finished && st.state == LWC_LOOP_MORE);
    if (e->finished)
        return eval_collect(e, result);
    e->mode = EVAL_DROP;
    return LWC_EWOULDBLOCK;
}

/* ---- instances ------------------------------------------------------------------------- */

/* Loops sharing a runtime that the first of them started. */
static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned runtime_users;

static int runtime_take(bool *owns)
{
    pthread_mutex_lock(&runtime_lock);
    int err = LWC_OK;
    *owns = runtime_users > 0;
    if (!*owns) {
        err = lwc_init(&(lwc_config_t){ .no_workers = 1 });
        *owns = err == LWC_OK;
        if (err == LWC_EBUSY)
            err = LWC_OK;                       /* the program started it */
    }
    if (*owns)
        runtime_users++;
    pthread_mutex_unlock(&runtime_lock);
    return err;
}

static void runtime_give(void)
{
    pthread_mutex_lock(&runtime_lock);
    if (--runtime_users == 0)
        lwc_shutdown();
    pthread_mutex_unlock(&runtime_lock);
}

static void loop_memory_free(lwc_loop_t *l)
{
    lwc_pvar_free(l->head);
    lwc_pvar_free(l->tail);
    free(l);
}

static const char *loop_name(void *env)
{
    (void)env;
    return "loop";
}

int lwc_loop_new(lwc_loop_t **out, const lwc_loop_config_t *cfg)
{
    if (!out)
        return LWC_EINVAL;
    *out = NULL;
    if (lwc_scont_self())
        return LWC_EINVAL;
    lwc_loop_t *l = calloc(1, sizeof *l);
    if (!l)
        return LWC_ENOMEM;
    lwc_sched_adopts_orphans(loop_next);
    lwc_sched_set_namer(loop_next, loop_name);
    if (cfg)
        l->cfg = *cfg;
    if (!l->cfg.eval_budget_ns)
        l->cfg.eval_budget_ns = 10000000u;
    l->owner = pthread_self();
    l->done_tail = &l->done;
    int err = runtime_take(&l->owns_runtime);
    if (err != LWC_OK) {
        free(l);
        return err;
    }
    l->head = lwc_pvar_new(0);
    l->tail = lwc_pvar_new(0);
    lwc_upcalls_t u = { loop_next, loop_unblock, l };
    err = !l->head || !l->tail ? LWC_ENOMEM : lwc_cap_host_new(&u, wake_host, l, &l->cap);
    if (err != LWC_OK) {
        bool owns = l->owns_runtime;
        loop_memory_free(l);
        if (owns)
            runtime_give();
        return err;
    }
    *out = l;
    return LWC_OK;
}

void lwc_loop_free_anyway(lwc_loop_t *l)
{
    report_done(l);
    while (l->unfinished) {             /* their threads go with the runtime */
        struct eval *e = l->unfinished;
        eval_unlink(l, e);
        free(e);
    }
    lwc_cap_host_free(l->cap);
    if (l->owns_runtime)
        runtime_give();             /* first: a call in flight may still wake a thread */
    loop_memory_free(l);
}

int lwc_loop_free(lwc_loop_t *loop)
{
    if (!mine(loop))
        return LWC_EINVAL;
    if (loop->in_tick || loop->reporting || atomic_load(&loop->live) > 0)
        return LWC_EBUSY;
    lwc_loop_free_anyway(loop);
    return LWC_OK;
}
