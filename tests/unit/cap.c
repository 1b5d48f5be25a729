/* Capabilities, races between them, bound SConts and lwc_eval. */
#include "harness.h"

#include <sched.h>

#include <dirent.h>
#include <lwc/io.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void setup2(void)
{
    lwc_config_t cfg = { .ncaps = 2 };
    ck_assert_int_eq(lwc_init(&cfg), LWC_OK);
}

static void teardown(void)
{
    lwc_shutdown();
}

/* lwc_config_t.stack_kind is the default kind: an SCont made with no attr
 * is a copy SCont, homed where it first runs. */
static atomic_uint home_seen = -1u, cap_seen = -2u;
static atomic_int copy_done;

static void note_home(void *arg)
{
    (void)arg;
    atomic_store(&home_seen, lwc_scont_home_cap(lwc_scont_self()));
    atomic_store(&cap_seen, lwc_cap_self());
    atomic_store(&copy_done, 1);
}

START_TEST(test_default_stack_kind)
{
    lwc_config_t cfg = { .ncaps = 2, .stack_kind = LWC_STACK_COPY };
    ck_assert_int_eq(lwc_init(&cfg), LWC_OK);
    atomic_store(&copy_done, 0);
    lwc_scont_t *s = lwc_scont_new(note_home, NULL, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(lwc_scont_home_cap(s), -1u);
    ck_assert_int_eq(lwc_cap_start(s), LWC_OK);
    while (!atomic_load(&copy_done))
        sched_yield();
    if (!LWC_CONTEXT_UCONTEXT) {                /* else copy stacks are guarded ones */
        ck_assert_uint_lt(atomic_load(&home_seen), 2);
        ck_assert_uint_eq(atomic_load(&home_seen), atomic_load(&cap_seen));
    }
    lwc_scont_release(s);
    lwc_shutdown();
}
END_TEST

START_TEST(test_init_config)
{
    lwc_config_t too_many = { .ncaps = 5000 };
    ck_assert_int_eq(lwc_init(&too_many), LWC_EINVAL);
    lwc_config_t tiny_stack = { .ncaps = 1, .stack_size = 100 };
    ck_assert_int_eq(lwc_init(&tiny_stack), LWC_EINVAL);
    lwc_config_t bad_kind = { .ncaps = 1, .stack_kind = (lwc_stack_kind_t)9 };
    ck_assert_int_eq(lwc_init(&bad_kind), LWC_EINVAL);
    ck_assert_uint_eq(lwc_cap_count(), 0);

    setenv("LWC_CAPS", "2", 1);
    ck_assert_int_eq(lwc_init(NULL), LWC_OK);
    ck_assert_uint_eq(lwc_cap_count(), 2);
    ck_assert_int_eq(lwc_init(NULL), LWC_EBUSY);
    lwc_shutdown();
    lwc_shutdown();
    ck_assert_uint_eq(lwc_cap_count(), 0);
    setenv("LWC_CAPS", "banana", 1);                    /* ignored, with a warning */
    ck_assert_int_eq(lwc_init(NULL), LWC_OK);
    ck_assert_uint_eq(lwc_cap_count(), 1);
    lwc_shutdown();
    unsetenv("LWC_CAPS");
}
END_TEST

/* ---- no idle capability ----------------------------------------------------------- */

struct spinner { atomic_int started, stop; };

static void spin_until_stop(void *arg)
{
    struct spinner *sp = arg;
    atomic_fetch_add(&sp->started, 1);
    while (!atomic_load(&sp->stop))
        sched_yield();
}

static void nothing(void *arg) { (void)arg; }

START_TEST(test_cap_start_busy)
{
    struct spinner sp = { 0 };
    lwc_scont_t *a = lwc_scont_new(spin_until_stop, &sp, NULL);
    lwc_scont_t *b = lwc_scont_new(spin_until_stop, &sp, NULL);
    lwc_scont_t *c = lwc_scont_new(nothing, NULL, NULL);
    ck_assert_int_eq(lwc_cap_start(a), LWC_OK);
    ck_assert_int_eq(lwc_cap_start(b), LWC_OK);
    ck_assert_int_eq(lwc_cap_start(a), LWC_ESTATE);     /* running: whatever is idle */
    while (atomic_load(&sp.started) < 2)
        sched_yield();
    ck_assert_int_eq(lwc_cap_start(a), LWC_ESTATE);
    ck_assert_int_eq(lwc_cap_start(c), LWC_EBUSY);      /* both capabilities are busy */
    ck_assert_int_eq(lwc_scont_status(NULL, c), LWC_BLOCKED_ON_SCHED);
    atomic_store(&sp.stop, 1);
    wait_completed(a);
    wait_completed(b);
    cap_start_when_idle(c);
    wait_completed(c);
    lwc_scont_release(a);
    lwc_scont_release(b);
    lwc_scont_release(c);
}
END_TEST

/* ---- two capabilities resume one SCont: exactly one wins ------------------------------- */

struct race {
    lwc_scont_t *target, *racer[2];
    lwc_pvar_t *winner;                 /* which racer won, written in its switch */
    atomic_int ready, go, target_runs;
    int result[2];
    unsigned delay[2];
    lwc_pvar_t *finished;
};

struct racer_arg { struct race *r; int me; };

static lwc_scont_t *claim_target(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    struct racer_arg *ra = arg;
    (void)self;
    lwc_pvar_write(tx, ra->r->winner, (lwc_word_t)ra->me + 1);
    *st = LWC_BLOCKED_ON_SCHED;
    return ra->r->target;
}

static lwc_word_t count_finished(lwc_tx_t *tx, void *arg)
{
    lwc_pvar_t *pv = arg;
    lwc_pvar_write(tx, pv, lwc_pvar_read(tx, pv) + 1);
    return 0;
}

static void racer(void *arg)
{
    struct racer_arg *ra = arg;
    struct race *r = ra->r;
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load(&r->go))
        sched_yield();
    spin_for(r->delay[ra->me]);
    r->result[ra->me] = lwc_switch(claim_target, ra);
    lwc_atomically(count_finished, r->finished, NULL);
}

static lwc_scont_t *to_winner(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    struct race *r = arg;
    (void)self;
    *st = LWC_BLOCKED_ON_SCHED;
    return r->racer[lwc_pvar_read(tx, r->winner) - 1];
}

static void race_target(void *arg)
{
    struct race *r = arg;
    atomic_fetch_add(&r->target_runs, 1);
    /* Stay running until the loser has made its attempt: once we switch back to
     * the winner we are suspended, and so resumable, again. */
    while (lwc_pvar_peek(r->finished) < 1)
        sched_yield();
    lwc_switch(to_winner, r);                           /* never resumed after this */
}

static lwc_word_t wait_count(lwc_tx_t *tx, void *arg)
{
    if (lwc_pvar_read(tx, arg) < 2)
        lwc_tx_retry(tx);
    return 0;
}

START_TEST(test_two_caps_resume_one_scont)
{
    unsigned seeds = scaled(300);
    for (unsigned seed = 1; seed <= seeds; seed++) {
        unsigned rnd = seed;
        struct race r = { .winner = lwc_pvar_new(0), .finished = lwc_pvar_new(0) };
        r.delay[0] = next_rand(&rnd) % 2000;
        r.delay[1] = next_rand(&rnd) % 2000;
        struct racer_arg ra[2] = { { &r, 0 }, { &r, 1 } };
        r.target = lwc_scont_new(race_target, &r, NULL);
        for (int i = 0; i < 2; i++)
            r.racer[i] = lwc_scont_new(racer, &ra[i], NULL);
        cap_start_when_idle(r.racer[0]);
        cap_start_when_idle(r.racer[1]);
        while (atomic_load(&r.ready) < 2)
            sched_yield();
        atomic_store(&r.go, 1);
        ck_assert_int_eq(lwc_atomically(wait_count, r.finished, NULL), LWC_OK);
        int wins = (r.result[0] == LWC_OK) + (r.result[1] == LWC_OK);
        int losses = (r.result[0] == LWC_ESTATE) + (r.result[1] == LWC_ESTATE);
        ck_assert_msg(wins == 1 && losses == 1, "seed %u: results %d %d", seed,
                      r.result[0], r.result[1]);
        ck_assert_int_eq(atomic_load(&r.target_runs), 1);
        ck_assert_int_eq(r.result[lwc_pvar_peek(r.winner) - 1], LWC_OK);
        for (int i = 0; i < 2; i++) {
            wait_completed(r.racer[i]);
            lwc_scont_release(r.racer[i]);
        }
        lwc_scont_release(r.target);
        lwc_pvar_free(r.winner);
        lwc_pvar_free(r.finished);
    }
}
END_TEST

/* ---- bound SConts always run on their own OS thread ------------------------------------- */

struct bound_check {
    tsched_t *ts;
    pthread_t os[3];
    int moved[3];
    pthread_t unbound_os;
    int unbound_moved;
    int bound_flag[3];
};
struct bound_arg { struct bound_check *bc; int i; };

static void bound_body(void *arg)
{
    struct bound_arg *ba = arg;
    struct bound_check *bc = ba->bc;
    bc->os[ba->i] = pthread_self();
    bc->bound_flag[ba->i] = lwc_scont_is_bound(lwc_scont_self());
    for (int k = 0; k < 20; k++) {
        ck_assert_int_eq(ts_yield(bc->ts), LWC_OK);
        if (!pthread_equal(bc->os[ba->i], pthread_self()))
            bc->moved[ba->i] = 1;
    }
}

static void unbound_body(void *arg)
{
    struct bound_check *bc = arg;
    bc->unbound_os = pthread_self();
    for (int k = 0; k < 40; k++)
        ts_yield(bc->ts);
}

START_TEST(test_bound_sconts_keep_their_thread)
{
    tsched_t ts;
    ts_init(&ts);
    struct bound_check bc = { .ts = &ts };
    struct bound_arg ba[3];
    ts_spawn(&ts, unbound_body, &bc);
    for (int i = 0; i < 3; i++) {
        ba[i] = (struct bound_arg){ &bc, i };
        ts_spawn_attr(&ts, bound_body, &ba[i], NULL, 1);
    }
    ts_run(&ts, 2);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(bc.moved[i], 0);
        ck_assert_int_eq(bc.bound_flag[i], 1);
        ck_assert(!pthread_equal(bc.os[i], pthread_self()));
        ck_assert(!pthread_equal(bc.os[i], bc.unbound_os));
        for (int j = 0; j < i; j++)
            ck_assert(!pthread_equal(bc.os[i], bc.os[j]));
    }
    ts_destroy(&ts);
}
END_TEST

/* ---- the bank, from SConts on two capabilities and from OS threads at once ------------- */

static void scont_teller(void *arg) { teller_loop(arg); }
static void *os_teller(void *arg) { teller_loop(arg); return NULL; }

START_TEST(test_bank_sconts_and_os_threads)
{
    for (unsigned seed = 1; seed <= 4; seed++) {
        struct bank b;
        bank_open(&b, scaled(20000));
        struct teller t[4];
        for (int i = 0; i < 4; i++)
            t[i] = (struct teller){ &b, seed * 131 + (unsigned)i };
        lwc_scont_t *s[2];
        for (int i = 0; i < 2; i++) {
            s[i] = lwc_scont_new(scont_teller, &t[i], NULL);
            cap_start_when_idle(s[i]);
        }
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, os_teller, &t[2 + i]);
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            wait_completed(s[i]);
            lwc_scont_release(s[i]);
        }
        bank_close(&b);
    }
}
END_TEST

/* ---- SCont retries woken across capabilities: nothing lost --------------------------- */

struct pipe { tsched_t *ts; lwc_pvar_t *slot; unsigned n; lwc_word_t sum; int in_order;
              unsigned seed; };

static void pipe_producer(void *arg)
{
    struct pipe *p = arg;
    unsigned seed = p->seed;
    for (lwc_word_t i = 1; i <= p->n; i++) {
        slot_put(p->slot, i);
        if (next_rand(&seed) % 4 == 0)
            ts_yield(p->ts);
    }
}

static void pipe_consumer(void *arg)
{
    struct pipe *p = arg;
    p->in_order = 1;
    for (lwc_word_t i = 1; i <= p->n; i++) {
        lwc_word_t v = slot_take(p->slot);
        p->in_order &= v == i;
        p->sum += v;
    }
}

static void noise(void *arg)
{
    tsched_t *ts = arg;
    for (int i = 0; i < 50; i++)
        ts_yield(ts);
}

START_TEST(test_retry_wakeups_across_caps)
{
    unsigned seeds = scaled(40) < 4 ? 4 : scaled(40);
    for (unsigned seed = 1; seed <= seeds; seed++) {
        tsched_t ts;
        ts_init(&ts);
        struct pipe p = { .ts = &ts, .slot = lwc_pvar_new(0), .n = scaled(5000), .seed = seed };
        if (seed % 2)
            ts_spawn(&ts, pipe_consumer, &p);
        ts_spawn(&ts, pipe_producer, &p);
        if (!(seed % 2))
            ts_spawn(&ts, pipe_consumer, &p);
        ts_spawn(&ts, noise, &ts);
        ts_run(&ts, 2);
        ck_assert_int_eq(p.in_order, 1);
        ck_assert_uint_eq(p.sum, (lwc_word_t)p.n * (p.n + 1) / 2);
        ts_destroy(&ts);
        lwc_pvar_free(p.slot);
    }
}
END_TEST

/* ---- lwc_eval with every capability busy goes through unblock_thread ----------------- */

struct eval_busy { tsched_t *ts; struct spinner sp; pthread_t os; int ran; };

static void yield_until_stop(void *arg)
{
    struct eval_busy *e = arg;
    atomic_fetch_add(&e->sp.started, 1);
    while (!atomic_load(&e->sp.stop))
        ts_yield(e->ts);                                /* busy, but fair */
}

static void eval_body(void *arg)
{
    struct eval_busy *e = arg;
    e->os = pthread_self();
    e->ran = 1;
    atomic_store(&e->sp.stop, 1);
}

START_TEST(test_eval_when_no_cap_is_idle)
{
    tsched_t ts;
    ts_init(&ts);
    struct eval_busy e = { .ts = &ts };
    ts_spawn(&ts, yield_until_stop, &e);
    ts_spawn(&ts, yield_until_stop, &e);
    lwc_word_t first, second;
    lwc_atomically(ts_pop_tx, &ts, &first);
    lwc_atomically(ts_pop_tx, &ts, &second);
    ts_cap_start(&ts, (lwc_scont_t *)first);
    ts_cap_start(&ts, (lwc_scont_t *)second);
    while (atomic_load(&e.sp.started) < 2)
        sched_yield();
    /* s belongs to ts; with both capabilities spinning it must wait its turn */
    lwc_scont_t *s = ts_spawn_full(&ts, eval_body, &e, NULL, 0, 0);
    ck_assert_int_eq(lwc_eval(s), LWC_OK);              /* queued again via unblock_thread */
    ck_assert_int_eq(e.ran, 1);
    ck_assert(pthread_equal(e.os, pthread_self()));
    ck_assert_uint_ge(atomic_load(&ts.unblocks), 1);
    ck_assert_int_eq(lwc_atomically(ts_wait_tx, &ts, NULL), LWC_OK);
    ts_destroy(&ts);
    lwc_scont_t *plain = lwc_scont_new(nothing, NULL, NULL);
    ck_assert_int_eq(lwc_eval_queued(plain), LWC_EINVAL);   /* no scheduler to queue it in */
    ck_assert_int_eq(lwc_eval(plain), LWC_OK);
    lwc_scont_release(plain);
}
END_TEST

/* lwc_eval_queued never takes an idle capability: with both idle, s still
 * goes through unblock_thread, and a capability the scheduler started runs it. */
START_TEST(test_eval_queued_goes_through_the_scheduler)
{
    tsched_t ts;
    ts_init(&ts);
    struct eval_busy e = { .ts = &ts };
    lwc_scont_t *s = ts_spawn_full(&ts, eval_body, &e, NULL, 0, 0);
    ts_spawn(&ts, nothing, NULL);
    lwc_word_t first;
    lwc_atomically(ts_pop_tx, &ts, &first);         /* a capability works for ts */
    ts_cap_start(&ts, (lwc_scont_t *)first);
    unsigned before = atomic_load(&ts.unblocks);
    ck_assert_int_eq(lwc_eval_queued(s), LWC_OK);
    ck_assert_int_eq(e.ran, 1);
    ck_assert(pthread_equal(e.os, pthread_self()));
    ck_assert_uint_gt(atomic_load(&ts.unblocks), before);
    ck_assert_int_eq(lwc_atomically(ts_wait_tx, &ts, NULL), LWC_OK);
    ts_destroy(&ts);
}
END_TEST

/* ---- idle capabilities sleep in the kernel ---------------------------------------------- */

/* Count this process's threads that the kernel reports as sleeping (state S). */
static int sleeping_threads(int *total)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    *total = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        char *p = strrchr(buf, ')');
        (*total)++;
        if (p && p[2] == 'S')
            n++;
    }
    closedir(d);
    return n;
}

START_TEST(test_idle_capabilities_sleep)
{
    /* Both workers run, go idle, and end up asleep in the kernel: not spinning. */
    lwc_scont_t *a = lwc_scont_new(nothing, NULL, NULL);
    ck_assert_int_eq(lwc_cap_start(a), LWC_OK);
    wait_completed(a);
    int total = 0, asleep = 0;
    for (int tries = 0; tries < 2000; tries++) {        /* up to 20 s: not a timing assert */
        asleep = sleeping_threads(&total);
        if (asleep >= total - 1)                        /* everyone but this thread */
            break;
        usleep(10000);
    }
    ck_assert_int_ge(total, 3);
    ck_assert_int_ge(asleep, total - 1);
    lwc_scont_release(a);
}
END_TEST

/* ---- idle services ------------------------------------------------------------------ */

/* A service that rings a bell (a PVar) at its deadline, once. */
struct bell_service {
    atomic_ullong deadline;
    lwc_pvar_t *bell;
    atomic_int polls;
    atomic_ullong rung_at;          /* the `now` it rang with; 0: not yet */
};

static lwc_word_t ring_body(lwc_tx_t *tx, void *arg)
{
    lwc_pvar_write(tx, arg, 1);
    return 0;
}

static uint64_t bell_poll(void *arg, uint64_t now)
{
    struct bell_service *b = arg;
    atomic_fetch_add(&b->polls, 1);
    uint64_t d = atomic_load(&b->deadline);
    if (atomic_load(&b->rung_at))
        return LWC_NEVER;
    if (now < d)
        return d;
    unsigned long long not_yet = 0;
    if (atomic_compare_exchange_strong(&b->rung_at, &not_yet, now))   /* before the waiter can see it */
        ck_assert_int_eq(lwc_atomically(ring_body, b->bell, NULL), LWC_OK);
    return LWC_NEVER;
}

static lwc_word_t wait_bell(lwc_tx_t *tx, void *arg)
{
    if (!lwc_pvar_read(tx, arg))
        lwc_tx_retry(tx);           /* the SCont blocks; its capability idles */
    return 0;
}

static void bell_waiter(void *arg)
{
    ck_assert_int_eq(lwc_atomically(wait_bell, arg, NULL), LWC_OK);
}

static void *announce_later(void *arg)
{
    struct bell_service *b = arg;
    usleep(20000);                  /* most often the capability sleeps by now */
    b->deadline = lwc_clock_ns() + 2000000;
    lwc_service_due(b->deadline);
    return NULL;
}

START_TEST(test_idle_service_wakes_a_sleeping_capability)
{
    /* _i == 0: the deadline is announced before the capability idles; 1: after,
     * from another OS thread, so the sleeping capability must be kicked. */
    static struct bell_service bells[2];    /* services stay registered for good */
    struct bell_service *b = &bells[_i];
    b->deadline = LWC_NEVER;
    b->bell = lwc_pvar_new(0);
    lwc_pin(b->bell);               /* a thread unknown to lwc will ring it: detect.h */
    ck_assert_int_eq(lwc_service_add(bell_poll, b), LWC_OK);
    ck_assert_int_eq(lwc_service_add(bell_poll, b), LWC_OK);      /* once only */
    tsched_t ts;
    ts_init(&ts);
    ts_spawn(&ts, bell_waiter, b->bell);
    pthread_t th;
    if (_i == 0) {
        b->deadline = lwc_clock_ns() + 5000000;
        lwc_service_due(b->deadline);
    } else {
        ck_assert_int_eq(pthread_create(&th, NULL, announce_later, b), 0);
    }
    ts_run(&ts, 1);
    if (_i == 1)
        pthread_join(th, NULL);
    ck_assert_uint_ge(atomic_load(&b->rung_at), b->deadline);
    ck_assert_int_ge(atomic_load(&b->polls), 1);
    ts_destroy(&ts);
    b->deadline = LWC_NEVER;         /* it stays registered: keep it quiet */
    atomic_store(&b->rung_at, 1);
    lwc_unpin(b->bell);
    lwc_pvar_free(b->bell);
}
END_TEST

/* A thread that only yields keeps its capability busy: the services are then
 * polled at its switch points. */
struct yield_until { tsched_t *ts; lwc_pvar_t *bell; atomic_ullong yields; };

static lwc_word_t peek_bell(lwc_tx_t *tx, void *arg)
{
    return lwc_pvar_read(tx, arg);
}

static void yield_until_rung(void *arg)
{
    struct yield_until *y = arg;
    lwc_word_t rung = 0;
    while (!rung) {
        ck_assert_int_eq(ts_yield(y->ts), LWC_OK);
        atomic_fetch_add(&y->yields, 1);
        ck_assert_int_eq(lwc_atomically(peek_bell, y->bell, &rung), LWC_OK);
    }
}

START_TEST(test_busy_capability_polls_at_switch_points)
{
    static struct bell_service b;          /* services stay registered for good */
    b.deadline = lwc_clock_ns() + 5000000;
    b.bell = lwc_pvar_new(0);
    atomic_store(&b.rung_at, 0);
    ck_assert_int_eq(lwc_service_add(bell_poll, &b), LWC_OK);
    lwc_service_due(b.deadline);
    tsched_t ts;
    ts_init(&ts);
    struct yield_until y = { &ts, b.bell, 0 };
    ts_spawn(&ts, yield_until_rung, &y);
    ts_run(&ts, 1);
    ck_assert_uint_ge(atomic_load(&b.rung_at), b.deadline);
    ck_assert_uint_gt(atomic_load(&y.yields), 0);
    ts_destroy(&ts);
    b.deadline = LWC_NEVER;
    atomic_store(&b.rung_at, 1);
    lwc_pvar_free(b.bell);
}
END_TEST

static uint64_t never_poll(void *arg, uint64_t now)
{
    (void)arg; (void)now;
    return LWC_NEVER;
}

static char service_args[16];

START_TEST(test_service_add_limits)
{
    ck_assert_int_eq(lwc_service_add(NULL, NULL), LWC_EINVAL);
    int err = LWC_OK;
    for (int i = 0; i < 16 && err == LWC_OK; i++)
        err = lwc_service_add(never_poll, &service_args[i]);
    ck_assert_int_eq(err, LWC_ENOMEM);
    lwc_service_due(LWC_NEVER);                 /* no deadline: nothing happens */
    ck_assert_uint_gt(lwc_clock_ns(), 0);
}
END_TEST

/* Sleep blocks through the caller's upcalls: an SCont without them gets
 * LWC_EINVAL and keeps its capability. */
static void sleep_without_upcalls(void *arg)
{
    *(int *)arg = lwc_sleep_until(lwc_clock_ns() + 1000000);
}

START_TEST(test_sleep_needs_upcalls)
{
    int err = 1;
    lwc_scont_t *s = lwc_scont_new(sleep_without_upcalls, &err, NULL);
    cap_start_when_idle(s);
    wait_completed(s);
    ck_assert_int_eq(err, LWC_EINVAL);
    lwc_scont_release(s);
}
END_TEST

/* lwc_shutdown while an SCont is in a safe call: it waits for the call to
 * return (the SCont then completes), and nothing leaks. */
static atomic_int flight_stage;

static void flight(void *arg)
{
    (void)arg;
    atomic_store(&flight_stage, 1);
    usleep(30000);
}

static void flyer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lwc_outcall(flight, NULL), LWC_OK);
    atomic_store(&flight_stage, 2);
}

START_TEST(test_shutdown_with_a_call_in_flight)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 2 }), LWC_OK);
    atomic_store(&flight_stage, 0);
    lwc_scont_t *s = lwc_scont_new(flyer, NULL, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lwc_cap_start(s), LWC_OK);
    lwc_scont_release(s);
    while (atomic_load(&flight_stage) == 0)
        sched_yield();
    lwc_shutdown();
    ck_assert_int_eq(atomic_load(&flight_stage), 2);
    ck_assert_uint_eq(lwc_cap_count(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cap");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_init_config);
    tcase_add_test(tc, test_default_stack_kind);
    tcase_add_test(tc, test_shutdown_with_a_call_in_flight);
    suite_add_tcase(s, tc);
    tc = tcase_create("two capabilities");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup2, teardown);
    tcase_add_test(tc, test_cap_start_busy);
    tcase_add_test(tc, test_two_caps_resume_one_scont);
    tcase_add_test(tc, test_bound_sconts_keep_their_thread);
    tcase_add_test(tc, test_bank_sconts_and_os_threads);
    tcase_add_test(tc, test_retry_wakeups_across_caps);
    tcase_add_test(tc, test_eval_when_no_cap_is_idle);
    tcase_add_test(tc, test_eval_queued_goes_through_the_scheduler);
    tcase_add_test(tc, test_idle_capabilities_sleep);
    tcase_add_loop_test(tc, test_idle_service_wakes_a_sleeping_capability, 0, 2);
    tcase_add_test(tc, test_busy_capability_polls_at_switch_points);
    tcase_add_test(tc, test_sleep_needs_upcalls);
    tcase_add_test(tc, test_service_add_limits);      /* last: fills the registry */
    suite_add_tcase(s, tc);
    return run_suite(s);
}
