/* SConts, switching and upcalls on one capability. */
#include "harness.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void setup(void)
{
    lwc_config_t cfg = { .ncaps = 1 };
    ck_assert_int_eq(lwc_init(&cfg), LWC_OK);
}

static void teardown(void)
{
    lwc_shutdown();
}

static void nothing(void *arg) { (void)arg; }

START_TEST(test_before_init)
{
    errno = 0;
    ck_assert_ptr_null(lwc_scont_new(nothing, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(lwc_cap_start(NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_eval(NULL), LWC_EINVAL);
    ck_assert_uint_eq(lwc_cap_count(), 0);
    ck_assert_ptr_null(lwc_scont_self());
    lwc_shutdown();                                     /* harmless */
}
END_TEST

START_TEST(test_new_defaults_and_errors)
{
    lwc_scont_attr_t named = { .name = "worker-7" };
    lwc_scont_t *a = lwc_scont_new(nothing, NULL, NULL);
    lwc_scont_t *b = lwc_scont_new(nothing, NULL, &named);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(lwc_scont_status(NULL, a), LWC_BLOCKED_ON_SCHED);
    ck_assert_uint_gt(lwc_scont_id(a), 0);
    ck_assert_uint_gt(lwc_scont_id(b), lwc_scont_id(a));
    ck_assert_str_eq(lwc_scont_name(a), "");
    ck_assert_str_eq(lwc_scont_name(b), "worker-7");
    ck_assert_int_eq(lwc_scont_is_bound(a), 0);
    ck_assert_ptr_null(lwc_scont_get_local(a));
    lwc_upcalls_t u;
    ck_assert_int_eq(lwc_scont_get_upcalls(a, &u), LWC_OK);
    ck_assert_ptr_null(u.switch_to_next);               /* created outside an SCont */
    ck_assert_ptr_null(u.unblock_thread);
    ck_assert_int_eq(lwc_scont_get_upcalls(NULL, &u), LWC_EINVAL);
    ck_assert_int_eq(lwc_scont_set_upcalls(NULL, &u), LWC_EINVAL);
    int dummy = 3;
    lwc_scont_set_local(a, &dummy);
    ck_assert_ptr_eq(lwc_scont_get_local(a), &dummy);
    ck_assert_uint_eq(lwc_scont_id(NULL), 0);

    errno = 0;
    ck_assert_ptr_null(lwc_scont_new(NULL, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    /* A copy SCont has no home until it runs; one bigger than the shared
     * stack cannot be; a bound one gets a stack of its own. */
    lwc_scont_attr_t copy = { .stack_kind = LWC_STACK_COPY };
    lwc_scont_t *c = lwc_scont_new(nothing, NULL, &copy);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(lwc_scont_home_cap(c), (unsigned)-1);
    ck_assert_uint_eq(lwc_scont_home_cap(a), (unsigned)-1);
    lwc_scont_release(c);
    ck_assert_ptr_nonnull(c = lwc_scont_new_bound(nothing, NULL, &copy));
    lwc_scont_release(c);
    copy.stack_size = (size_t)64 << 20;
    errno = 0;
    if (!LWC_CONTEXT_UCONTEXT) {                /* else COPY means GUARDED */
        ck_assert_ptr_null(lwc_scont_new(nothing, NULL, &copy));
        ck_assert_int_eq(errno, EINVAL);
    }
    lwc_scont_attr_t weird = { .stack_kind = (lwc_stack_kind_t)77 };
    ck_assert_ptr_null(lwc_scont_new(nothing, NULL, &weird));
    lwc_scont_release(a);
    lwc_scont_release(b);
    lwc_scont_release(NULL);
}
END_TEST

/* ---- lwc_eval ----------------------------------------------------------------- */

struct seen { lwc_scont_t *self; unsigned cap; lwc_status_t st; pthread_t os; };

static void record_self(void *arg)
{
    struct seen *s = arg;
    s->self = lwc_scont_self();
    s->cap = lwc_cap_self();
    s->st = lwc_scont_status(NULL, s->self);
    s->os = pthread_self();
}

START_TEST(test_eval_runs_to_completion)
{
    struct seen seen = { 0 };
    lwc_scont_t *s = lwc_scont_new(record_self, &seen, NULL);
    ck_assert_int_eq(lwc_eval(s), LWC_OK);
    ck_assert_ptr_eq(seen.self, s);
    ck_assert_uint_eq(seen.cap, 0);
    ck_assert_int_eq(seen.st, LWC_RUNNING);
    ck_assert(pthread_equal(seen.os, pthread_self()));  /* bound to the host */
    ck_assert_int_eq(lwc_scont_status(NULL, s), LWC_COMPLETED);
    ck_assert_int_eq(lwc_eval(s), LWC_ESTATE);           /* one-shot */
    ck_assert_int_eq(lwc_cap_start(s), LWC_ESTATE);
    ck_assert_ptr_null(lwc_scont_self());
    ck_assert_uint_eq(lwc_cap_self(), (unsigned)-1);
    lwc_scont_release(s);
}
END_TEST

/* ---- lwc_eval returns though its scheduler idles (issue 19, point 4) -----------------
 * A one-slot scheduler whose switch_to_next always retries on an empty slot,
 * as a plain FIFO may: the SCont lwc_eval runs queues a second one and
 * completes.  Its completion hands the capability on: the second one runs on
 * the capability's worker, the capability then idles in the retry, and the
 * host returns (Note [Idling in a place of its own] in substrate/idle.c). */

static lwc_pvar_t slot = LWC_PVAR_INIT(0);
static _Atomic int second_ran;
static pthread_t second_os;

static lwc_scont_t *slot_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why; (void)env;
    lwc_scont_t *s = (lwc_scont_t *)lwc_pvar_read(tx, &slot);
    if (!s)
        lwc_tx_retry(tx);                   /* always: nothing tells it to stop */
    lwc_pvar_write(tx, &slot, 0);
    return s;
}

static void slot_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    (void)env;
    lwc_pvar_write(tx, &slot, (lwc_word_t)s);
}

static void second(void *arg)
{
    (void)arg;
    second_os = pthread_self();
    atomic_store(&second_ran, 1);
}

static lwc_word_t queue_second(lwc_tx_t *tx, void *s)
{
    slot_unblock(tx, s, NULL);
    return 0;
}

static void first_of_two(void *arg)
{
    lwc_scont_t *s2 = lwc_scont_new(second, NULL, NULL);     /* its creator's upcalls */
    ck_assert_ptr_nonnull(s2);
    ck_assert_int_eq(lwc_atomically(queue_second, s2, NULL), LWC_OK);
    *(lwc_scont_t **)arg = s2;
}

START_TEST(test_eval_returns_while_its_scheduler_idles)
{
    lwc_upcalls_t u = { slot_next, slot_unblock, NULL };
    for (int round = 0; round < 3; round++) {
        atomic_store(&second_ran, 0);
        lwc_scont_t *s2 = NULL;
        lwc_scont_t *s = lwc_scont_new(first_of_two, &s2, NULL);
        ck_assert_int_eq(lwc_scont_set_upcalls(s, &u), LWC_OK);
        ck_assert_int_eq(lwc_eval(s), LWC_OK);
        ck_assert_int_eq(lwc_scont_status(NULL, s), LWC_COMPLETED);
        while (!atomic_load(&second_ran))   /* on the capability's worker */
            sched_yield();
        ck_assert(!pthread_equal(second_os, pthread_self()));
        lwc_scont_release(s);
        lwc_scont_release(s2);
    }
}
END_TEST

/* ---- lwc_unblock_thread hands a new SCont over, once ---------------------------------
 * Note [Handing a new SCont over] in substrate/scont.c. */

static _Atomic int handed;

static void count_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    (void)tx; (void)s; (void)env;
    atomic_fetch_add(&handed, 1);
}

static lwc_word_t unblock_twice(lwc_tx_t *tx, void *s)
{
    lwc_unblock_thread(tx, s);
    lwc_unblock_thread(tx, s);
    return 0;
}

START_TEST(test_unblock_thread_hands_a_new_scont_over)
{
    lwc_upcalls_t u = { slot_next, count_unblock, NULL };
    lwc_scont_t *s = lwc_scont_new(nothing, NULL, NULL);
    ck_assert_int_eq(lwc_scont_set_upcalls(s, &u), LWC_OK);
    atomic_store(&handed, 0);
    lwc_word_t token = lwc_scont_wait_token(NULL, s);
    ck_assert_int_eq(lwc_atomically(unblock_twice, s, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&handed), 1);
    ck_assert_int_eq(lwc_atomically(unblock_twice, s, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&handed), 1);          /* handed over already */
    ck_assert_uint_ne(lwc_scont_wait_token(NULL, s), token);
    ck_assert_int_eq(lwc_scont_status(NULL, s), LWC_BLOCKED_ON_SCHED);
    lwc_scont_t *none = lwc_scont_new(nothing, NULL, NULL); /* no upcalls: nothing */
    ck_assert_int_eq(lwc_atomically(unblock_twice, none, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&handed), 1);
    /* Made ahead of time (Note [Dormant SConts] in substrate/internal.h): handed
     * over once the same way. */
    lwc_scont_t *dormant = lwc_scont_new(nothing, NULL,
                                         &(lwc_scont_attr_t){ .upcalls = &u,
                                                              .flags = LWC_SCONT_DORMANT });
    ck_assert_ptr_nonnull(dormant);
    ck_assert_int_eq(lwc_atomically(unblock_twice, dormant, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&handed), 2);
    ck_assert_int_eq(lwc_atomically(unblock_twice, dormant, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&handed), 2);
    errno = 0;
    ck_assert_ptr_null(lwc_scont_new(nothing, NULL, &(lwc_scont_attr_t){ .flags = 2 }));
    ck_assert_int_eq(errno, EINVAL);
    lwc_scont_release(s);
    lwc_scont_release(none);
    lwc_scont_release(dormant);
}
END_TEST

/* ---- raw switching between two SConts ------------------------------------------- */

static lwc_scont_t *to_arg(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)tx; (void)self;
    *st = LWC_BLOCKED_ON_SCHED;
    return arg;
}

struct pingpong {
    lwc_scont_t *a, *b;
    unsigned rounds, count;
    pthread_t a_os, b_os;
    int a_moved, b_moved;
    lwc_pvar_t *done;
};

static void pong(void *arg)
{
    struct pingpong *p = arg;
    p->b_os = pthread_self();
    for (;;) {
        p->count++;
        if (!pthread_equal(p->b_os, pthread_self()))
            p->b_moved = 1;
        ck_assert_int_eq(lwc_switch(to_arg, p->a), LWC_OK);
    }
}

static void ping(void *arg)
{
    struct pingpong *p = arg;
    p->a_os = pthread_self();
    for (unsigned i = 0; i < p->rounds; i++) {
        ck_assert_int_eq(lwc_switch(to_arg, p->b), LWC_OK);
        if (!pthread_equal(p->a_os, pthread_self()))
            p->a_moved = 1;
        ck_assert_int_eq(lwc_scont_status(NULL, p->b), LWC_BLOCKED_ON_SCHED);
    }
    if (p->done)
        lwc_pvar_write(NULL, p->done, 1);
}

static lwc_word_t wait_flag(lwc_tx_t *tx, void *arg)
{
    if (!lwc_pvar_read(tx, arg))
        lwc_tx_retry(tx);
    return 0;
}

START_TEST(test_pingpong_on_worker)
{
    struct pingpong p = { .rounds = scaled(100000), .done = lwc_pvar_new(0) };
    p.a = lwc_scont_new(ping, &p, NULL);
    p.b = lwc_scont_new(pong, &p, NULL);
    ck_assert_int_eq(lwc_cap_start(p.a), LWC_OK);
    ck_assert_int_eq(lwc_atomically(wait_flag, p.done, NULL), LWC_OK);
    ck_assert_uint_eq(p.count, p.rounds);
    ck_assert(!pthread_equal(p.a_os, pthread_self()));  /* ran on the worker */
    ck_assert(pthread_equal(p.a_os, p.b_os));
    ck_assert_int_eq(p.a_moved + p.b_moved, 0);
    lwc_scont_release(p.a);
    lwc_scont_release(p.b);                             /* b stays suspended until shutdown */
    lwc_pvar_free(p.done);
}
END_TEST

START_TEST(test_pingpong_across_host_handoff)
{
    /* a is bound to the host by lwc_eval, b runs on the worker: every switch hands
     * the capability between two OS threads. */
    struct pingpong p = { .rounds = scaled(2000) };
    p.a = lwc_scont_new(ping, &p, NULL);
    p.b = lwc_scont_new(pong, &p, NULL);
    ck_assert_int_eq(lwc_eval(p.a), LWC_OK);
    ck_assert_uint_eq(p.count, p.rounds);
    ck_assert(pthread_equal(p.a_os, pthread_self()));
    ck_assert(!pthread_equal(p.b_os, pthread_self()));
    ck_assert_int_eq(p.a_moved + p.b_moved, 0);
    lwc_scont_release(p.a);
    lwc_scont_release(p.b);
}
END_TEST

/* ---- one-shot and bad switches ---------------------------------------------------- */

static lwc_scont_t *back_to_env(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)tx; (void)self; (void)why;
    return env;
}

struct oneshot { lwc_scont_t *child; lwc_pvar_t *pv; int r_dead, r_self, r_bad_status, r_twice; };

static lwc_scont_t *write_then_to_arg(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    struct oneshot *o = arg;
    (void)self;
    lwc_pvar_write(tx, o->pv, 666);
    *st = LWC_BLOCKED_ON_SCHED;
    return o->child;
}

static lwc_scont_t *to_self(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)tx; (void)arg;
    *st = LWC_BLOCKED_ON_SCHED;
    return self;
}

static lwc_scont_t *running_status(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)tx; (void)self;
    *st = LWC_RUNNING;                                  /* not a status to stop with */
    return arg;
}

static lwc_scont_t *switch_twice(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)self;
    *st = LWC_BLOCKED_ON_SCHED;
    lwc_switch_to(tx, arg, LWC_BLOCKED_ON_SCHED);
    lwc_switch_to(tx, arg, LWC_BLOCKED_ON_SCHED);       /* one switch per transaction */
    return arg;
}

static void oneshot_parent(void *arg)
{
    struct oneshot *o = arg;
    /* the child completes and its switch_to_next comes back here */
    lwc_upcalls_t u = { back_to_env, NULL, lwc_scont_self() };
    lwc_scont_set_upcalls(o->child, &u);
    ck_assert_int_eq(lwc_switch(to_arg, o->child), LWC_OK);
    ck_assert_int_eq(lwc_scont_status(NULL, o->child), LWC_COMPLETED);
    o->r_dead = lwc_switch(write_then_to_arg, o);
    o->r_self = lwc_switch(to_self, NULL);
    lwc_scont_t *fresh = lwc_scont_new(nothing, NULL, NULL);
    o->r_bad_status = lwc_switch(running_status, fresh);
    o->r_twice = lwc_switch(switch_twice, fresh);
    ck_assert_int_eq(lwc_scont_status(NULL, fresh), LWC_BLOCKED_ON_SCHED);
    lwc_scont_release(fresh);
}

START_TEST(test_one_shot_and_bad_switches)
{
    struct oneshot o = { .pv = lwc_pvar_new(1) };
    o.child = lwc_scont_new(nothing, NULL, NULL);
    lwc_scont_t *parent = lwc_scont_new(oneshot_parent, &o, NULL);
    ck_assert_int_eq(lwc_eval(parent), LWC_OK);
    ck_assert_int_eq(o.r_dead, LWC_ESTATE);
    ck_assert_uint_eq(lwc_pvar_peek(o.pv), 1);          /* nothing of it committed */
    ck_assert_int_eq(o.r_self, LWC_OK);                 /* self: no switch */
    ck_assert_int_eq(o.r_bad_status, LWC_EINVAL);
    ck_assert_int_eq(o.r_twice, LWC_EINVAL);
    lwc_scont_release(parent);
    lwc_scont_release(o.child);
    lwc_pvar_free(o.pv);
}
END_TEST

/* ---- releasing the capability and starting again ----------------------------------- */

static lwc_scont_t *release_cap(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)tx; (void)self; (void)arg;
    *st = LWC_BLOCKED_ON_CONCDS;
    return NULL;
}

struct resumed { int before, after; };

static void park_once(void *arg)
{
    struct resumed *r = arg;
    r->before = 1;
    ck_assert_int_eq(lwc_switch(release_cap, NULL), LWC_OK);
    r->after = 1;
}

START_TEST(test_release_capability_and_restart)
{
    struct resumed r = { 0 };
    lwc_scont_t *s = lwc_scont_new(park_once, &r, NULL);
    ck_assert_int_eq(lwc_cap_start(s), LWC_OK);
    struct status_wait w = { s, LWC_BLOCKED_ON_CONCDS };
    ck_assert_int_eq(lwc_atomically(wait_status, &w, NULL), LWC_OK);
    ck_assert_int_eq(r.before, 1);
    ck_assert_int_eq(r.after, 0);
    /* the capability was released: it can be started again, on s itself */
    cap_start_when_idle(s);
    w.want = LWC_COMPLETED;
    ck_assert_int_eq(lwc_atomically(wait_status, &w, NULL), LWC_OK);
    ck_assert_int_eq(r.after, 1);
    lwc_scont_release(s);
}
END_TEST

/* ---- completion goes through switch_to_next; upcalls are inherited ----------------- */

struct inherit { tsched_t *ts; lwc_upcalls_t child_up; lwc_scont_t *child; };

static void make_child(void *arg)
{
    struct inherit *in = arg;
    in->child = lwc_scont_new(nothing, NULL, NULL);
    lwc_scont_get_upcalls(in->child, &in->child_up);
}

START_TEST(test_upcalls_inherited)
{
    tsched_t ts;
    ts_init(&ts);
    struct inherit in = { .ts = &ts };
    ts_spawn(&ts, make_child, &in);
    ts_run(&ts, 1);
    ck_assert_ptr_eq(in.child_up.switch_to_next, ts_next);
    ck_assert_ptr_eq(in.child_up.unblock_thread, ts_unblock);
    ck_assert_ptr_eq(in.child_up.env, &ts);
    ck_assert_int_eq(lwc_scont_set_upcalls(in.child, NULL), LWC_OK);
    lwc_upcalls_t u;
    lwc_scont_get_upcalls(in.child, &u);
    ck_assert_ptr_null(u.switch_to_next);
    ck_assert_ptr_null(u.env);
    lwc_scont_release(in.child);
    ts_destroy(&ts);
}
END_TEST

/* Ten threads yielding: round-robin order, and every completion counted. */
struct order { tsched_t *ts; int log[64]; atomic_int n; };
struct member { struct order *o; int id; };

static void yielder(void *arg)
{
    struct member *m = arg;
    for (int i = 0; i < 5; i++) {
        m->o->log[atomic_fetch_add(&m->o->n, 1)] = m->id;
        ck_assert_int_eq(ts_yield(m->o->ts), LWC_OK);
    }
}

START_TEST(test_fifo_yield_and_completion)
{
    tsched_t ts;
    ts_init(&ts);
    struct order o = { .ts = &ts };
    struct member m[10];
    for (int i = 0; i < 10; i++) {
        m[i] = (struct member){ &o, i };
        ts_spawn(&ts, yielder, &m[i]);
    }
    ts_run(&ts, 1);
    ck_assert_int_eq(atomic_load(&o.n), 50);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(o.log[i], i % 10);
    for (unsigned i = 0; i < ts.nspawned; i++)
        ck_assert_int_eq(lwc_scont_status(NULL, ts.spawned[i]), LWC_COMPLETED);
    ck_assert_uint_eq(lwc_pvar_peek(ts.live), 0);       /* switch_to_next saw every COMPLETED */
    ts_destroy(&ts);
}
END_TEST

/* ---- an SCont that retries blocks through its upcalls --------------------------------- */

struct box { tsched_t *ts; lwc_pvar_t *slot; lwc_scont_t *consumer; lwc_word_t got;
             lwc_status_t seen; };

static lwc_word_t take_box(lwc_tx_t *tx, void *arg)
{
    struct box *b = arg;
    lwc_word_t v = lwc_pvar_read(tx, b->slot);
    if (!v)
        lwc_tx_retry(tx);
    lwc_pvar_write(tx, b->slot, 0);
    return v;
}

static void box_consumer(void *arg)
{
    struct box *b = arg;
    ck_assert_int_eq(lwc_atomically(take_box, b, &b->got), LWC_OK);
}

static void box_producer(void *arg)
{
    struct box *b = arg;
    for (int i = 0; i < 3; i++)
        ts_yield(b->ts);
    b->seen = lwc_scont_status(NULL, b->consumer);
    lwc_pvar_write(NULL, b->slot, 4242);
}

START_TEST(test_scont_retry_blocks_through_upcalls)
{
    tsched_t ts;
    ts_init(&ts);
    struct box b = { .ts = &ts, .slot = lwc_pvar_new(0) };
    b.consumer = ts_spawn(&ts, box_consumer, &b);
    ts_spawn(&ts, box_producer, &b);
    ts_run(&ts, 1);
    ck_assert_int_eq(b.seen, LWC_BLOCKED_ON_CONCDS);
    ck_assert_uint_eq(b.got, 4242);
    ck_assert_uint_ge(atomic_load(&ts.unblocks), 1);
    ts_destroy(&ts);
    lwc_pvar_free(b.slot);
}
END_TEST

/* ---- deferred actions run after the switch, before the target goes on --------------- */

struct deferral { lwc_scont_t *a, *b; atomic_int ran; int seen_by_b; };

static void mark(void *arg) { atomic_fetch_add(&((struct deferral *)arg)->ran, 1); }

static lwc_scont_t *defer_and_switch(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    struct deferral *d = arg;
    (void)self;
    lwc_tx_defer(tx, mark, d);
    *st = LWC_BLOCKED_ON_SCHED;
    return d->b;
}

static void defer_b(void *arg)
{
    struct deferral *d = arg;
    d->seen_by_b = atomic_load(&d->ran);
    lwc_switch(to_arg, d->a);
}

static void defer_a(void *arg)
{
    struct deferral *d = arg;
    ck_assert_int_eq(lwc_switch(defer_and_switch, d), LWC_OK);
}

START_TEST(test_defer_runs_after_switch)
{
    struct deferral d = { 0 };
    d.a = lwc_scont_new(defer_a, &d, NULL);
    d.b = lwc_scont_new(defer_b, &d, NULL);
    ck_assert_int_eq(lwc_eval(d.a), LWC_OK);
    ck_assert_int_eq(d.seen_by_b, 1);
    ck_assert_int_eq(atomic_load(&d.ran), 1);
    lwc_scont_release(d.a);
    lwc_scont_release(d.b);
}
END_TEST

/* ---- a switch_to_next that returns garbage at completion -------------------------------- */

static lwc_scont_t *return_dead(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)tx; (void)self; (void)why;
    return env;                                         /* a completed SCont */
}

START_TEST(test_bad_switch_to_next_releases_capability)
{
    lwc_scont_t *dead = lwc_scont_new(nothing, NULL, NULL);
    ck_assert_int_eq(lwc_eval(dead), LWC_OK);
    lwc_scont_t *s = lwc_scont_new(nothing, NULL, NULL);
    lwc_upcalls_t u = { return_dead, NULL, dead };
    lwc_scont_set_upcalls(s, &u);
    ck_assert_int_eq(lwc_cap_start(s), LWC_OK);
    struct status_wait w = { s, LWC_COMPLETED };
    ck_assert_int_eq(lwc_atomically(wait_status, &w, NULL), LWC_OK);
    /* the capability was released, so it can run something else */
    lwc_scont_t *again = lwc_scont_new(nothing, NULL, NULL);
    cap_start_when_idle(again);
    w.s = again;
    ck_assert_int_eq(lwc_atomically(wait_status, &w, NULL), LWC_OK);
    lwc_scont_release(dead);
    lwc_scont_release(s);
    lwc_scont_release(again);
}
END_TEST

/* ---- a scheduler that lost track of a thread says so -------------------------------- */

static lwc_scont_t *names_dead(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)tx, (void)self, (void)why;
    return env;                             /* a completed SCont: the bug */
}

static void never_queues(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    (void)tx, (void)s, (void)env;
}

static lwc_word_t block_here(lwc_tx_t *tx, void *arg)
{
    (void)arg;
    lwc_switch_to_next(tx, LWC_BLOCKED_ON_CONCDS);
    return 0;
}

static atomic_int lost_err = 1;

static void blocks_through_bad_scheduler(void *arg)
{
    (void)arg;
    atomic_store(&lost_err, lwc_atomically(block_here, NULL, NULL));
}

START_TEST(test_lost_thread_is_named)
{
    lwc_scont_t *dead = lwc_scont_new(nothing, NULL, NULL);
    ck_assert_int_eq(lwc_cap_start(dead), LWC_OK);
    wait_completed(dead);
    lwc_upcalls_t bad = { names_dead, never_queues, dead };
    lwc_scont_attr_t attr = { .upcalls = &bad };
    lwc_scont_t *s = lwc_scont_new(blocks_through_bad_scheduler, NULL, &attr);
    FILE *log = tmpfile();
    ck_assert_ptr_nonnull(log);
    int saved = dup(2);
    dup2(fileno(log), 2);
    ck_assert_int_eq(lwc_cap_start(s), LWC_OK);
    wait_completed(s);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(atomic_load(&lost_err), LWC_ESTATE);
    char buf[512] = { 0 };
    rewind(log);
    size_t n = fread(buf, 1, sizeof buf - 1, log);
    fclose(log);
    char want[160];
    snprintf(want, sizeof want, "of SCont %llu named SCont %llu, which is completed",
             (unsigned long long)lwc_scont_id(s), (unsigned long long)lwc_scont_id(dead));
    ck_assert_msg(n > 0 && strstr(buf, want), "said: %s", buf);
    lwc_scont_release(s);
    lwc_scont_release(dead);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scont");
    TCase *tc = tcase_create("no runtime");
    tcase_add_test(tc, test_before_init);
    suite_add_tcase(s, tc);
    tc = tcase_create("one capability");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_new_defaults_and_errors);
    tcase_add_test(tc, test_eval_runs_to_completion);
    tcase_add_test(tc, test_pingpong_on_worker);
    tcase_add_test(tc, test_pingpong_across_host_handoff);
    tcase_add_test(tc, test_one_shot_and_bad_switches);
    tcase_add_test(tc, test_release_capability_and_restart);
    tcase_add_test(tc, test_upcalls_inherited);
    tcase_add_test(tc, test_fifo_yield_and_completion);
    tcase_add_test(tc, test_scont_retry_blocks_through_upcalls);
    tcase_add_test(tc, test_eval_returns_while_its_scheduler_idles);
    tcase_add_test(tc, test_unblock_thread_hands_a_new_scont_over);
    tcase_add_test(tc, test_defer_runs_after_switch);
    tcase_add_test(tc, test_bad_switch_to_next_releases_capability);
    tcase_add_test(tc, test_lost_thread_is_named);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
