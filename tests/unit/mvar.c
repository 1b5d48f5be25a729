/* MVars: from OS threads, from rr threads, and shared by two schedulers. */
#include "harness.h"

#include <lwc/mvar.h>
#include <lwc/rr.h>

START_TEST(test_try_forms_and_bad_arguments)
{
    lwc_mvar_t *mv = lwc_mvar_new();
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_mvar_try_take(mv, &v), LWC_EAGAIN);
    ck_assert_int_eq(lwc_mvar_try_put(mv, 7), LWC_OK);
    ck_assert_int_eq(lwc_mvar_try_put(mv, 8), LWC_EAGAIN);
    ck_assert_int_eq(lwc_mvar_read(mv, &v), LWC_OK);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(lwc_mvar_try_take(mv, &v), LWC_OK);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(lwc_mvar_try_take(mv, &v), LWC_EAGAIN);
    ck_assert_int_eq(lwc_mvar_take(NULL, &v), LWC_EINVAL);
    ck_assert_int_eq(lwc_mvar_take(mv, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_mvar_put(NULL, 1), LWC_EINVAL);
    ck_assert_int_eq(lwc_mvar_take_tx(NULL, mv, &v), LWC_EINVAL);
    lwc_mvar_free(mv);
    lwc_mvar_free(NULL);
    mv = lwc_mvar_new_full(5);
    ck_assert_int_eq(lwc_mvar_take(mv, &v), LWC_OK);
    ck_assert_uint_eq(v, 5);
    lwc_mvar_free(mv);
}
END_TEST

/* ---- OS threads: no runtime, blocking sleeps the OS thread -------------------------------- */

struct relay { lwc_mvar_t *in, *out; unsigned n; };

static void *relay_thread(void *arg)
{
    struct relay *r = arg;
    for (unsigned i = 0; i < r->n; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(r->in, &v), LWC_OK);
        ck_assert_int_eq(lwc_mvar_put(r->out, v * 2), LWC_OK);
    }
    return NULL;
}

START_TEST(test_os_threads_relay)
{
    struct relay r = { lwc_mvar_new(), lwc_mvar_new(), scaled(20000) };
    pthread_t th;
    pthread_create(&th, NULL, relay_thread, &r);
    for (unsigned i = 0; i < r.n; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_put(r.in, i), LWC_OK);
        ck_assert_int_eq(lwc_mvar_take(r.out, &v), LWC_OK);
        ck_assert_uint_eq(v, 2 * (lwc_word_t)i);
    }
    pthread_join(th, NULL);
    lwc_mvar_free(r.in);
    lwc_mvar_free(r.out);
}
END_TEST

/* ---- rr threads: FIFO among waiters, readers first, free wakes waiters --------------------- */

struct order { lwc_mvar_t *mv; atomic_int blocked; lwc_word_t got[8]; int res[8]; int kind[8]; };
struct order_arg { struct order *o; int i; };

static void order_waiter(void *arg)
{
    struct order_arg *a = arg;
    struct order *o = a->o;
    atomic_fetch_add(&o->blocked, 1);
    o->res[a->i] = o->kind[a->i] ? lwc_mvar_read(o->mv, &o->got[a->i])
                                 : lwc_mvar_take(o->mv, &o->got[a->i]);
}

/* Spawn waiters one at a time on a 1-capability rr instance, so they block in
 * order i = 0, 1, ...; each yields the capability back by blocking. */
static lwc_rr_t *spawn_waiters(struct order *o, struct order_arg *a, int n)
{
    lwc_rr_t *rr = lwc_rr_new(1);
    ck_assert_ptr_nonnull(rr);
    for (int i = 0; i < n; i++) {
        a[i] = (struct order_arg){ o, i };
        ck_assert_int_eq(lwc_rr_spawn(rr, order_waiter, &a[i]), LWC_OK);
        while (atomic_load(&o->blocked) < i + 1)
            sched_yield();
        spin_for(20000);        /* let it get from the count into the MVar */
    }
    return rr;
}

START_TEST(test_fifo_single_wakeup_readers_first)
{
    lwc_init(&(lwc_config_t){ .ncaps = 1 });
    struct order o = { .mv = lwc_mvar_new() };
    o.kind[2] = o.kind[4] = 1;                  /* 2 and 4 read, the rest take */
    struct order_arg a[6];
    lwc_rr_t *rr = spawn_waiters(&o, a, 6);
    for (lwc_word_t v = 100; v < 104; v++)
        ck_assert_int_eq(lwc_mvar_put(o.mv, v), LWC_OK);   /* blocks until taken */
    lwc_rr_free(rr);
    /* Readers saw the first value, before taker 0 took it; takers in order. */
    ck_assert_uint_eq(o.got[2], 100);
    ck_assert_uint_eq(o.got[4], 100);
    ck_assert_uint_eq(o.got[0], 100);
    ck_assert_uint_eq(o.got[1], 101);
    ck_assert_uint_eq(o.got[3], 102);
    ck_assert_uint_eq(o.got[5], 103);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(o.res[i], LWC_OK);
    lwc_mvar_free(o.mv);
    lwc_shutdown();
}
END_TEST

static void *os_taker(void *arg)
{
    struct order *o = arg;
    atomic_fetch_add(&o->blocked, 1);
    o->res[7] = lwc_mvar_take(o->mv, &o->got[7]);
    return NULL;
}

START_TEST(test_free_wakes_every_waiter)
{
    lwc_init(&(lwc_config_t){ .ncaps = 1 });
    struct order o = { .mv = lwc_mvar_new() };
    o.kind[1] = 1;
    struct order_arg a[3];
    lwc_rr_t *rr = spawn_waiters(&o, a, 3);
    pthread_t th;
    pthread_create(&th, NULL, os_taker, &o);
    while (atomic_load(&o.blocked) < 4)
        sched_yield();
    spin_for(200000);
    lwc_mvar_free(o.mv);
    pthread_join(th, NULL);
    lwc_rr_free(rr);
    ck_assert_int_eq(o.res[0], LWC_EBLOCKED_CONCDS);
    ck_assert_int_eq(o.res[1], LWC_EBLOCKED_CONCDS);
    ck_assert_int_eq(o.res[2], LWC_EBLOCKED_CONCDS);
    ck_assert_int_eq(o.res[7], LWC_EBLOCKED_CONCDS);
    lwc_shutdown();
}
END_TEST

/* ---- composable: take from one and put into another, atomically ---------------------------- */

struct pipe2 { lwc_mvar_t *a, *b; };

static lwc_word_t move_tx(lwc_tx_t *tx, void *arg)
{
    struct pipe2 *p = arg;
    lwc_word_t v;
    lwc_mvar_take_tx(tx, p->a, &v);
    lwc_mvar_put_tx(tx, p->b, v + 1);
    return v;
}

static void *delayed_put(void *arg)
{
    spin_for(200000);
    lwc_mvar_put(arg, 41);
    return NULL;
}

START_TEST(test_composable_move)
{
    struct pipe2 p = { lwc_mvar_new(), lwc_mvar_new_full(0) };
    pthread_t th;
    pthread_create(&th, NULL, delayed_put, p.a);
    lwc_word_t v;
    /* b is full: the move waits for that, and for a to fill. */
    ck_assert_int_eq(lwc_mvar_take(p.b, &v), LWC_OK);
    lwc_word_t moved = 0;
    ck_assert_int_eq(lwc_atomically(move_tx, &p, &moved), LWC_OK);
    ck_assert_uint_eq(moved, 41);
    ck_assert_int_eq(lwc_mvar_try_take(p.a, &v), LWC_EAGAIN);
    ck_assert_int_eq(lwc_mvar_take(p.b, &v), LWC_OK);
    ck_assert_uint_eq(v, 42);
    pthread_join(th, NULL);
    lwc_mvar_free(p.a);
    lwc_mvar_free(p.b);
}
END_TEST

/* ---- two schedulers share MVars: rr threads and the test scheduler's ---------------------- */

struct shared { lwc_mvar_t *to_ts, *to_rr; unsigned n; lwc_word_t ts_sum, rr_sum; };

static void rr_side(void *arg)
{
    struct shared *sh = arg;
    for (unsigned i = 1; i <= sh->n; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_put(sh->to_ts, i), LWC_OK);
        ck_assert_int_eq(lwc_mvar_take(sh->to_rr, &v), LWC_OK);
        sh->rr_sum += v;
    }
}

static void ts_side(void *arg)
{
    struct shared *sh = arg;
    for (unsigned i = 1; i <= sh->n; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(sh->to_ts, &v), LWC_OK);
        sh->ts_sum += v;
        ck_assert_int_eq(lwc_mvar_put(sh->to_rr, 10 * v), LWC_OK);
    }
}

START_TEST(test_two_schedulers_share_mvars)
{
    for (unsigned caps = 2; caps <= 3; caps++) {
        lwc_init(&(lwc_config_t){ .ncaps = caps });
        struct shared sh = { lwc_mvar_new(), lwc_mvar_new(), scaled(20000), 0, 0 };
        tsched_t ts;
        ts_init(&ts);
        ts_spawn(&ts, ts_side, &sh);
        lwc_rr_t *rr = lwc_rr_new(1);
        ck_assert_int_eq(lwc_rr_spawn(rr, rr_side, &sh), LWC_OK);
        ts_run(&ts, 1);
        lwc_rr_free(rr);
        ts_destroy(&ts);
        lwc_word_t n = sh.n;
        ck_assert_uint_eq(sh.ts_sum, n * (n + 1) / 2);
        ck_assert_uint_eq(sh.rr_sum, 10 * n * (n + 1) / 2);
        lwc_mvar_free(sh.to_ts);
        lwc_mvar_free(sh.to_rr);
        lwc_shutdown();
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvar");
    TCase *tc = tcase_create("mvar");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_try_forms_and_bad_arguments);
    tcase_add_test(tc, test_os_threads_relay);
    tcase_add_test(tc, test_fifo_single_wakeup_readers_first);
    tcase_add_test(tc, test_free_wakes_every_waiter);
    tcase_add_test(tc, test_composable_move);
    tcase_add_test(tc, test_two_schedulers_share_mvars);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
