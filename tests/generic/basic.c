/* The scheduler interface, compiled once and linked against every scheduler
 * library (Makefile.am): nothing here may assume which one. */
#include "../unit/harness.h"

#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <string.h>

/* ---- spawn, yield, join ------------------------------------------------------------ */

#define WORKERS 50
#define ROUNDS  20

struct counts { atomic_int ran, yields_ok; lwc_joinable_t *j[WORKERS]; int joined; };

static void worker(void *arg)
{
    struct counts *c = arg;
    for (int i = 0; i < ROUNDS; i++)
        if (lwc_yield() == LWC_OK)
            atomic_fetch_add(&c->yields_ok, 1);
    atomic_fetch_add(&c->ran, 1);
}

static void spawn_join_main(void *arg)
{
    struct counts *c = arg;
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(lwc_spawn_joinable(worker, c, &c->j[i]), LWC_OK);
    for (int i = 0; i < WORKERS; i++) {
        ck_assert_int_eq(lwc_join(c->j[i]), LWC_OK);
        c->joined++;
    }
}

START_TEST(test_spawn_yield_join)
{
    struct counts c = { 0 };
    ck_assert_int_eq(lwc_main(spawn_join_main, &c), LWC_OK);
    ck_assert_int_eq(c.joined, WORKERS);
    ck_assert_int_eq(atomic_load(&c.ran), WORKERS);
    ck_assert_int_eq(atomic_load(&c.yields_ok), WORKERS * ROUNDS);
}
END_TEST

/* ---- detached threads counted down through an MVar --------------------------------- */

struct fan { lwc_mvar_t *mv; unsigned n; };

static void leaf(void *arg)
{
    struct fan *f = arg;
    ck_assert_int_eq(lwc_mvar_put(f->mv, 1), LWC_OK);
}

static void fan_main(void *arg)
{
    struct fan *f = arg;
    for (unsigned i = 0; i < f->n; i++)
        ck_assert_int_eq(lwc_spawn(leaf, f), LWC_OK);
    for (unsigned i = 0; i < f->n; i++) {
        lwc_word_t v = 0;
        ck_assert_int_eq(lwc_mvar_take(f->mv, &v), LWC_OK);
        ck_assert_uint_eq(v, 1);
    }
}

START_TEST(test_detached_threads_and_mvar)
{
    struct fan f = { lwc_mvar_new(), scaled(20000) };
    ck_assert_int_eq(lwc_main(fan_main, &f), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_try_take(f.mv, &v), LWC_EAGAIN);  /* every put was taken */
    lwc_mvar_free(f.mv);
}
END_TEST

/* ---- a ping-pong through two MVars ---------------------------------------------------- */

struct pingpong { lwc_mvar_t *ping, *pong; unsigned rounds; lwc_word_t sum; };

static void ponger(void *arg)
{
    struct pingpong *p = arg;
    for (unsigned i = 0; i < p->rounds; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(p->ping, &v), LWC_OK);
        ck_assert_int_eq(lwc_mvar_put(p->pong, v + 1), LWC_OK);
    }
}

static void pinger(void *arg)
{
    struct pingpong *p = arg;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(ponger, p, &j), LWC_OK);
    for (unsigned i = 0; i < p->rounds; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_put(p->ping, 2 * i), LWC_OK);
        ck_assert_int_eq(lwc_mvar_take(p->pong, &v), LWC_OK);
        ck_assert_uint_eq(v, 2 * i + 1);
        p->sum += v;
    }
    ck_assert_int_eq(lwc_join(j), LWC_OK);
}

START_TEST(test_pingpong)
{
    struct pingpong p = { lwc_mvar_new(), lwc_mvar_new(), scaled(50000), 0 };
    ck_assert_int_eq(lwc_main(pinger, &p), LWC_OK);
    ck_assert_uint_eq(p.sum, (lwc_word_t)p.rounds * p.rounds);   /* sum of 2i+1 */
    lwc_mvar_free(p.ping);
    lwc_mvar_free(p.pong);
}
END_TEST

/* ---- misuse ---------------------------------------------------------------------------- */

static void noop(void *arg) { (void)arg; }

START_TEST(test_outside_the_runtime)
{
    ck_assert_int_eq(lwc_spawn(noop, NULL), LWC_EINVAL);    /* no lwc_main running */
    ck_assert_int_eq(lwc_yield(), LWC_EINVAL);
    ck_assert_int_eq(lwc_main(NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_join(NULL), LWC_EINVAL);
    ck_assert_ptr_nonnull(lwc_sched_name());
    ck_assert_int_gt(strlen(lwc_sched_name()), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("generic");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_spawn_yield_join);
    tcase_add_test(tc, test_detached_threads_and_mvar);
    tcase_add_test(tc, test_pingpong);
    tcase_add_test(tc, test_outside_the_runtime);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
