/* Errors thrown between threads (lwc/exception.h), compiled once and linked
 * against every scheduler library: each test runs on 1 and on 2 capabilities. */
#include "blocked.h"

#include <lwc/io.h>
#include <lwc/mvar.h>

#define MY_ERROR (-1001)        /* a program's own error code */

/* Publishes its SCont, then does one operation on the MVar. */
struct victim {
    lwc_mvar_t *mv;
    lwc_scont_t *_Atomic self;
    int err;
    lwc_word_t got;
    lwc_joinable_t *j;
};

static lwc_scont_t *spawn_victim(struct victim *v, void (*fn)(void *))
{
    ck_assert_int_eq(lwc_spawn_joinable(fn, v, &v->j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&v->self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    return s;
}

static void taker(void *arg)
{
    struct victim *v = arg;
    atomic_store(&v->self, lwc_scont_self());
    v->err = lwc_mvar_take(v->mv, &v->got);
}

static void putter(void *arg)
{
    struct victim *v = arg;
    atomic_store(&v->self, lwc_scont_self());
    v->err = lwc_mvar_put(v->mv, 2);
}

/* ---- a blocked taker is woken, and the MVar drops it ------------------------------------- */

static void kill_taker_main(void *arg)
{
    (void)arg;
    start_busy();
    struct victim v = { .mv = lwc_mvar_new() };
    lwc_scont_t *s = spawn_victim(&v, taker);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_join(v.j), LWC_OK);
    ck_assert_int_eq(v.err, LWC_EKILLED);
    /* Its node is still linked: the put must pass it over, not hand it 7. */
    ck_assert_int_eq(lwc_mvar_put(v.mv, 7), LWC_OK);
    lwc_word_t x = 0;
    ck_assert_int_eq(lwc_mvar_take(v.mv, &x), LWC_OK);
    ck_assert_uint_eq(x, 7);
    lwc_mvar_free(v.mv);
    stop_busy_threads();
}

START_TEST(test_kill_blocked_taker)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(kill_taker_main, NULL), LWC_OK);
}
END_TEST

/* ---- a taker whose capability idles in its blocking switch ------------------------------
 * With nothing else to run, the capability sleeps inside the taker's
 * switch_to_next: the block has not committed and the taker reads as
 * running.  The kill must reach it there too (its retry has the pending
 * error in its read set).  Whether the kill finds it idle or still on its
 * way, the take returns LWC_EKILLED. */

static void kill_idle_main(void *arg)
{
    (void)arg;
    struct victim v = { .mv = lwc_mvar_new() };
    lwc_scont_t *s = spawn_victim(&v, taker);
    for (int i = 0; i < 100; i++)               /* give it time to get there */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_join(v.j), LWC_OK);
    ck_assert_int_eq(v.err, LWC_EKILLED);
    lwc_mvar_free(v.mv);
}

START_TEST(test_kill_taker_on_idle_capability)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(kill_idle_main, NULL), LWC_OK);
}
END_TEST

/* ---- a joiner killed while it waits can join again ----------------------------------------- */

struct gate { lwc_mvar_t *mv; };

static void wait_gate(void *arg)
{
    lwc_word_t x;
    ck_assert_int_eq(lwc_mvar_read(((struct gate *)arg)->mv, &x), LWC_OK);
}

struct joiner { lwc_joinable_t *target; lwc_scont_t *_Atomic self; int first, second; };

static void joiner(void *arg)
{
    struct joiner *jn = arg;
    atomic_store(&jn->self, lwc_scont_self());
    jn->first = lwc_join(jn->target);
    jn->second = lwc_join(jn->target);
}

static void join_again_main(void *arg)
{
    (void)arg;
    start_busy();
    struct gate g = { lwc_mvar_new() };
    struct joiner jn = { 0 };
    ck_assert_int_eq(lwc_spawn_joinable(wait_gate, &g, &jn.target), LWC_OK);
    lwc_joinable_t *jj;
    ck_assert_int_eq(lwc_spawn_joinable(joiner, &jn, &jj), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&jn.self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(g.mv, 1), LWC_OK);    /* let the target finish */
    ck_assert_int_eq(lwc_join(jj), LWC_OK);
    ck_assert_int_eq(jn.first, LWC_EKILLED);
    ck_assert_int_eq(jn.second, LWC_OK);
    lwc_mvar_free(g.mv);
    stop_busy_threads();
}

START_TEST(test_killed_joiner_joins_again)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(join_again_main, NULL), LWC_OK);
}
END_TEST

/* ---- a blocked putter: its value is dropped, the MVar keeps its own ----------------------- */

static void throw_putter_main(void *arg)
{
    (void)arg;
    start_busy();
    struct victim v = { .mv = lwc_mvar_new_full(1) };
    lwc_scont_t *s = spawn_victim(&v, putter);
    await_blocked(s);
    ck_assert_int_eq(lwc_throw_to(s, MY_ERROR), LWC_OK);
    ck_assert_int_eq(lwc_join(v.j), LWC_OK);
    ck_assert_int_eq(v.err, MY_ERROR);
    lwc_word_t x = 0;
    ck_assert_int_eq(lwc_mvar_take(v.mv, &x), LWC_OK);
    ck_assert_uint_eq(x, 1);
    ck_assert_int_eq(lwc_mvar_try_take(v.mv, &x), LWC_EAGAIN);   /* 2 never went in */
    lwc_mvar_free(v.mv);
    stop_busy_threads();
}

START_TEST(test_throw_to_blocked_putter)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(throw_putter_main, NULL), LWC_OK);
}
END_TEST

/* ---- a running thread sees it at its next switch point ------------------------------------ */

struct spinner { lwc_scont_t *_Atomic self; atomic_int yields; int err; lwc_joinable_t *j; };

static void spinner(void *arg)
{
    struct spinner *sp = arg;
    atomic_store(&sp->self, lwc_scont_self());
    int err;
    while ((err = lwc_yield()) == LWC_OK)
        atomic_fetch_add(&sp->yields, 1);
    sp->err = err;
}

static void kill_running_main(void *arg)
{
    (void)arg;
    struct spinner sp = { 0 };
    ck_assert_int_eq(lwc_spawn_joinable(spinner, &sp, &sp.j), LWC_OK);
    while (atomic_load(&sp.yields) < 10)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_kill(atomic_load(&sp.self)), LWC_OK);
    ck_assert_int_eq(lwc_join(sp.j), LWC_OK);
    ck_assert_int_eq(sp.err, LWC_EKILLED);
}

START_TEST(test_kill_running_thread)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(kill_running_main, NULL), LWC_OK);
}
END_TEST

/* ---- an error pending stops the next block before it happens ------------------------------- */

static void pending_main(void *arg)
{
    (void)arg;
    lwc_mvar_t *mv = lwc_mvar_new();
    ck_assert_int_eq(lwc_throw_to(lwc_scont_self(), MY_ERROR), LWC_OK);
    ck_assert_int_eq(lwc_throw_to(lwc_scont_self(), MY_ERROR), LWC_OK);  /* the same: once */
    ck_assert_int_eq(lwc_throw_to(lwc_scont_self(), MY_ERROR - 1), LWC_EBUSY);
    lwc_word_t x;
    ck_assert_int_eq(lwc_mvar_take(mv, &x), MY_ERROR);   /* would block forever otherwise */
    ck_assert_int_eq(lwc_mvar_try_take(mv, &x), LWC_EAGAIN);  /* delivered once */
    ck_assert_int_eq(lwc_mvar_put(mv, 3), LWC_OK);
    ck_assert_int_eq(lwc_mvar_take(mv, &x), LWC_OK);
    ck_assert_uint_eq(x, 3);
    /* Kill replaces any other error. */
    ck_assert_int_eq(lwc_throw_to(lwc_scont_self(), MY_ERROR), LWC_OK);
    ck_assert_int_eq(lwc_kill(lwc_scont_self()), LWC_OK);
    ck_assert_int_eq(lwc_mvar_take(mv, &x), LWC_EKILLED);
    lwc_mvar_free(mv);
}

START_TEST(test_pending_error_stops_a_block)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(pending_main, NULL), LWC_OK);
}
END_TEST

/* ---- an uninterruptible mask: a masked waiter is served; the error waits for the unmask ---- */

struct masked {
    lwc_mvar_t *mv;
    lwc_scont_t *_Atomic self;
    int take_err, first_unmask, last_unmask, yield_err;
    lwc_word_t got;
    lwc_joinable_t *j;
};

static void masked_taker(void *arg)
{
    struct masked *m = arg;
    lwc_mask_uninterruptible();
    lwc_mask_uninterruptible();                 /* nests */
    atomic_store(&m->self, lwc_scont_self());
    m->take_err = lwc_mvar_take(m->mv, &m->got);
    m->first_unmask = lwc_unmask_uninterruptible();
    ck_assert_int_eq(lwc_yield(), LWC_OK);      /* still masked once */
    m->last_unmask = lwc_unmask_uninterruptible();
    m->yield_err = lwc_yield();
}

static void mask_main(void *arg)
{
    (void)arg;
    start_busy();
    struct masked m = { .mv = lwc_mvar_new() };
    ck_assert_int_eq(lwc_spawn_joinable(masked_taker, &m, &m.j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&m.self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_scont_status(NULL, s), LWC_BLOCKED_ON_CONCDS);   /* not woken */
    ck_assert_int_eq(lwc_mvar_put(m.mv, 5), LWC_OK);
    ck_assert_int_eq(lwc_join(m.j), LWC_OK);
    ck_assert_int_eq(m.take_err, LWC_OK);
    ck_assert_uint_eq(m.got, 5);
    ck_assert_int_eq(m.first_unmask, LWC_OK);
    ck_assert_int_eq(m.last_unmask, LWC_EKILLED);   /* the unmask delivers it ... */
    ck_assert_int_eq(m.yield_err, LWC_OK);          /* ... once */
    lwc_mvar_free(m.mv);
    stop_busy_threads();
}

START_TEST(test_uninterruptible_mask_defers_delivery)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(mask_main, NULL), LWC_OK);
}
END_TEST

/* ---- lwc_mask is interruptible where it blocks (GHC conc020, T9379) ---------------------
 * A masked thread blocked in a take, then in a retry, is killed out of each;
 * its unmask then has nothing left to deliver. */

struct interruptible {
    lwc_mvar_t *mv;
    lwc_pvar_t *pv;
    lwc_scont_t *_Atomic self;
    atomic_int stage;
    int take_err, retry_err, unmask_err;
    lwc_word_t got;
    lwc_joinable_t *j;
};

static void interruptible_waiter(void *arg)
{
    struct interruptible *w = arg;
    lwc_mask();
    atomic_store(&w->self, lwc_scont_self());
    w->take_err = lwc_mvar_take(w->mv, &w->got);
    atomic_store(&w->stage, 1);
    w->retry_err = lwc_atomically(wait_nonzero, w->pv, NULL);
    w->unmask_err = lwc_unmask();
}

static void interruptible_main(void *arg)
{
    (void)arg;
    start_busy();
    struct interruptible w = { .mv = lwc_mvar_new(), .pv = lwc_pvar_new(0) };
    ck_assert_int_eq(lwc_spawn_joinable(interruptible_waiter, &w, &w.j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&w.self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    while (atomic_load(&w.stage) < 1)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    await_blocked(s);
    ck_assert_int_eq(lwc_throw_to(s, MY_ERROR), LWC_OK);
    ck_assert_int_eq(lwc_join(w.j), LWC_OK);
    ck_assert_int_eq(w.take_err, LWC_EKILLED);
    ck_assert_int_eq(w.retry_err, MY_ERROR);
    ck_assert_int_eq(w.unmask_err, LWC_OK);
    /* The take's node is still linked: a put passes it over. */
    ck_assert_int_eq(lwc_mvar_put(w.mv, 7), LWC_OK);
    lwc_word_t x = 0;
    ck_assert_int_eq(lwc_mvar_take(w.mv, &x), LWC_OK);
    ck_assert_uint_eq(x, 7);
    lwc_mvar_free(w.mv);
    lwc_pvar_free(w.pv);
    stop_busy_threads();
}

START_TEST(test_mask_is_interruptible)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(interruptible_main, NULL), LWC_OK);
}
END_TEST

/* ---- a pending error at the unmask, and at a block under a mask (GHC conc066) -----------
 * Thrown at a masked thread that runs, an error waits through its yields and
 * an inner unmask, and the last unmask returns it.  Thrown again, it stops
 * the next take under a mask, which would block, before it blocks. */

struct unmasker {
    lwc_mvar_t *mv;
    lwc_scont_t *_Atomic self;
    atomic_int thrown, unmasked;
    int yield_err, inner_unmask, outer_unmask, take_err, last_unmask;
    lwc_joinable_t *j;
};

static void unmasker(void *arg)
{
    struct unmasker *u = arg;
    lwc_mask();
    lwc_mask();
    atomic_store(&u->self, lwc_scont_self());
    while (atomic_load(&u->thrown) < 1)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    u->yield_err = lwc_yield();
    u->inner_unmask = lwc_unmask();
    u->outer_unmask = lwc_unmask();
    lwc_mask();
    atomic_store(&u->unmasked, 1);
    while (atomic_load(&u->thrown) < 2)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    lwc_word_t v;
    u->take_err = lwc_mvar_take(u->mv, &v);
    u->last_unmask = lwc_unmask();
}

static void unmask_main(void *arg)
{
    (void)arg;
    struct unmasker u = { .mv = lwc_mvar_new() };
    ck_assert_int_eq(lwc_spawn_joinable(unmasker, &u, &u.j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&u.self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_throw_to(s, MY_ERROR), LWC_OK);
    atomic_store(&u.thrown, 1);
    while (!atomic_load(&u.unmasked))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    atomic_store(&u.thrown, 2);
    ck_assert_int_eq(lwc_join(u.j), LWC_OK);
    ck_assert_int_eq(u.yield_err, LWC_OK);
    ck_assert_int_eq(u.inner_unmask, LWC_OK);
    ck_assert_int_eq(u.outer_unmask, MY_ERROR);
    ck_assert_int_eq(u.take_err, LWC_EKILLED);
    ck_assert_int_eq(u.last_unmask, LWC_OK);
    lwc_mvar_free(u.mv);
}

START_TEST(test_unmask_delivers)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(unmask_main, NULL), LWC_OK);
}
END_TEST

/* ---- a sleeper and a retrying transaction are woken early ----------------------------------- */

struct waits {
    lwc_pvar_t *pv;
    lwc_mvar_t *mv;
    lwc_scont_t *_Atomic self;
    atomic_int stage;
    int sleep_err, retry_err, take_err;
    lwc_word_t got;
    lwc_joinable_t *j;
};

static void waits_victim(void *arg)
{
    struct waits *w = arg;
    atomic_store(&w->self, lwc_scont_self());
    w->sleep_err = lwc_sleep_until(LWC_NEVER);
    atomic_store(&w->stage, 1);
    w->retry_err = lwc_atomically(wait_nonzero, w->pv, NULL);
    atomic_store(&w->stage, 2);
    w->take_err = lwc_mvar_take(w->mv, &w->got);
}

static void await_stage(struct waits *w, lwc_scont_t *s, int stage)
{
    while (atomic_load(&w->stage) < stage)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    await_blocked(s);
}

static void waits_main(void *arg)
{
    (void)arg;
    start_busy();
    struct waits w = { .pv = lwc_pvar_new(0), .mv = lwc_mvar_new() };
    ck_assert_int_eq(lwc_spawn_joinable(waits_victim, &w, &w.j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&w.self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    await_blocked(s);
    ck_assert_int_eq(lwc_throw_to(s, MY_ERROR), LWC_OK);     /* ends the sleep */
    await_stage(&w, s, 1);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);                   /* ends the retry */
    await_stage(&w, s, 2);
    /* The retry's wait is over: this write must not wake the take. */
    lwc_pvar_write(NULL, w.pv, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_scont_status(NULL, s), LWC_BLOCKED_ON_CONCDS);
    ck_assert_int_eq(lwc_mvar_put(w.mv, 9), LWC_OK);
    ck_assert_int_eq(lwc_join(w.j), LWC_OK);
    ck_assert_int_eq(w.sleep_err, MY_ERROR);
    ck_assert_int_eq(w.retry_err, LWC_EKILLED);
    ck_assert_int_eq(w.take_err, LWC_OK);
    ck_assert_uint_eq(w.got, 9);
    lwc_mvar_free(w.mv);
    lwc_pvar_free(w.pv);
    stop_busy_threads();
}

START_TEST(test_sleep_and_retry_woken)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(waits_main, NULL), LWC_OK);
}
END_TEST

/* ---- lwc_exit ---------------------------------------------------------------------------- */

struct exiting { lwc_pvar_t *pv; int after; };

static lwc_word_t write_then_exit(lwc_tx_t *tx, void *arg)
{
    lwc_pvar_write(tx, arg, 99);
    lwc_exit();
}

static void exiter(void *arg)
{
    struct exiting *e = arg;
    lwc_pvar_write(NULL, e->pv, 1);
    lwc_atomically(write_then_exit, e->pv, NULL);
    e->after = 1;                               /* never */
}

static void exit_main(void *arg)
{
    struct exiting *e = arg;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(exiter, e, &j), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
}

START_TEST(test_exit_abandons_its_transaction)
{
    use_caps(_i);
    struct exiting e = { lwc_pvar_new(0), 0 };
    ck_assert_int_eq(lwc_main(exit_main, &e), LWC_OK);
    ck_assert_int_eq(e.after, 0);
    ck_assert_uint_eq(lwc_pvar_peek(e.pv), 1);           /* 99 was never committed */
    lwc_pvar_free(e.pv);
}
END_TEST

/* ---- many takers killed while values flow: nothing lost, nothing doubled -------------------- */

#define TAKERS 32

struct flow {
    lwc_mvar_t *mv;
    lwc_scont_t *_Atomic who[TAKERS];
    atomic_ulong taken;                 /* the sum of the values the takers got */
    atomic_int killed;
    lwc_joinable_t *j[TAKERS];
};

static struct flow *the_flow;

static void flow_taker(void *arg)
{
    struct flow *f = the_flow;
    unsigned i = (unsigned)(uintptr_t)arg;
    atomic_store(&f->who[i], lwc_scont_self());
    for (;;) {
        lwc_word_t v;
        int err = lwc_mvar_take(f->mv, &v);
        if (err == LWC_EKILLED) {
            atomic_fetch_add(&f->killed, 1);
            return;
        }
        ck_assert_int_eq(err, LWC_OK);
        atomic_fetch_add(&f->taken, v);
    }
}

static void flow_main(void *arg)
{
    unsigned *seed = arg;
    struct flow *f = the_flow;
    for (unsigned i = 0; i < TAKERS; i++) {
        ck_assert_int_eq(lwc_spawn_joinable(flow_taker, (void *)(uintptr_t)i, &f->j[i]), LWC_OK);
        while (!atomic_load(&f->who[i]))
            ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
    unsigned long put = 0;
    unsigned values = scaled(20000);
    for (unsigned n = 1; n <= values; n++) {
        ck_assert_int_eq(lwc_mvar_put(f->mv, n), LWC_OK);
        put += n;
        if (n % (values / TAKERS) == 0) {
            unsigned k = n / (values / TAKERS) - 1;
            if (k < TAKERS / 2) {
                /* Two picks may meet: a second kill finds it pending or completed. */
                int err = lwc_kill(atomic_load(&f->who[(k * 7 + next_rand(seed) % 2) % TAKERS]));
                ck_assert(err == LWC_OK || err == LWC_ESTATE);
            }
        }
        if (next_rand(seed) % 4 == 0)
            ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
    /* Kill them all; whatever is left in the MVar was never taken. */
    for (unsigned i = 0; i < TAKERS; i++) {
        int err = lwc_kill(atomic_load(&f->who[i]));
        ck_assert(err == LWC_OK || err == LWC_ESTATE);
    }
    for (unsigned i = 0; i < TAKERS; i++)
        ck_assert_int_eq(lwc_join(f->j[i]), LWC_OK);
    lwc_word_t rest = 0;
    if (lwc_mvar_try_take(f->mv, &rest) != LWC_OK)
        rest = 0;
    ck_assert_uint_eq(atomic_load(&f->taken) + rest, put);
    ck_assert_int_eq(atomic_load(&f->killed), TAKERS);
}

START_TEST(test_kills_while_values_flow)
{
    use_caps(_i % 2);
    struct flow f = { .mv = lwc_mvar_new() };
    the_flow = &f;
    unsigned seed = 17 + (unsigned)_i;
    ck_assert_int_eq(lwc_main(flow_main, &seed), LWC_OK);
    lwc_mvar_free(f.mv);
}
END_TEST

/* ---- bad input ---------------------------------------------------------------------------- */

static void done_quickly(void *arg)
{
    *(lwc_scont_t **)arg = lwc_scont_self();
}

static void bad_input_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lwc_throw_to(NULL, LWC_EKILLED), LWC_EINVAL);
    ck_assert_int_eq(lwc_throw_to(lwc_scont_self(), 0), LWC_EINVAL);
    ck_assert_int_eq(lwc_throw_to(lwc_scont_self(), 5), LWC_EINVAL);
    ck_assert_int_eq(lwc_kill(NULL), LWC_EINVAL);
    lwc_scont_t *gone = NULL;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(done_quickly, &gone, &j), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    /* Its function has returned; wait for the completion to commit.  Freed,
     * the struct is type-stable and its id is 0. */
    while (lwc_scont_id(gone) && lwc_scont_status(NULL, gone) != LWC_COMPLETED)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_kill(gone), LWC_ESTATE);
    ck_assert_int_eq(lwc_unmask(), LWC_OK);     /* unbalanced: ignored */
    lwc_mask();
    ck_assert_int_eq(lwc_unmask_uninterruptible(), LWC_OK);    /* not its kind: ignored */
    ck_assert_int_eq(lwc_unmask(), LWC_OK);
    lwc_mask_uninterruptible();
    ck_assert_int_eq(lwc_unmask(), LWC_OK);     /* not its kind either */
    ck_assert_int_eq(lwc_unmask_uninterruptible(), LWC_OK);
    ck_assert_int_eq(lwc_yield(), LWC_OK);
}

START_TEST(test_bad_input)
{
    use_caps(0);
    ck_assert_int_eq(lwc_main(bad_input_main, NULL), LWC_OK);
    lwc_mask();                                 /* outside any SCont: nothing */
    ck_assert_int_eq(lwc_unmask(), LWC_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("throw");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_kill_blocked_taker, 0, 2);
    tcase_add_loop_test(tc, test_kill_taker_on_idle_capability, 0, 2);
    tcase_add_loop_test(tc, test_killed_joiner_joins_again, 0, 2);
    tcase_add_loop_test(tc, test_throw_to_blocked_putter, 0, 2);
    tcase_add_loop_test(tc, test_kill_running_thread, 0, 2);
    tcase_add_loop_test(tc, test_pending_error_stops_a_block, 0, 2);
    tcase_add_loop_test(tc, test_uninterruptible_mask_defers_delivery, 0, 2);
    tcase_add_loop_test(tc, test_mask_is_interruptible, 0, 2);
    tcase_add_loop_test(tc, test_unmask_delivers, 0, 2);
    tcase_add_loop_test(tc, test_sleep_and_retry_woken, 0, 2);
    tcase_add_loop_test(tc, test_exit_abandons_its_transaction, 0, 2);
    tcase_add_loop_test(tc, test_kills_while_values_flow, 0, LIGHT_RUN() ? 2 : 16);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
