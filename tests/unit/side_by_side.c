/* Three schedulers in one program: an rr instance, a ws instance and a LIFO
 * scheduler written here on the public API, their threads passing a token
 * around one ring of MVars. */
#include "harness.h"

#include <lwc/mvar.h>
#include <lwc/rr.h>
#include <lwc/ws.h>
#include <stdbool.h>

/* ---- a LIFO scheduler in 60 lines ------------------------------------------------------
 * A stack of runnable threads in PVars; `live` counts threads not finished, so
 * the capability sleeps while some are blocked and leaves when all are done. */
typedef struct lifo { lwc_pvar_t *top, *live; } lifo_t;
struct lifo_thread { lwc_pvar_t *below; lwc_scont_t *s; lifo_t *l; void (*fn)(void *); void *arg; };

static void lifo_push(lwc_tx_t *tx, lifo_t *l, struct lifo_thread *t)
{
    lwc_pvar_write(tx, t->below, lwc_pvar_read(tx, l->top));
    lwc_pvar_write(tx, l->top, (lwc_word_t)t);
}

static lwc_scont_t *lifo_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why;
    lifo_t *l = env;
    struct lifo_thread *t = (struct lifo_thread *)lwc_pvar_read(tx, l->top);
    if (t) {
        lwc_pvar_write(tx, l->top, lwc_pvar_read(tx, t->below));
        return t->s;
    }
    if (lwc_pvar_read(tx, l->live) > 0)
        lwc_tx_retry(tx);                       /* sleep until a push or the last exit */
    return NULL;
}

static void lifo_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    lifo_push(tx, env, lwc_scont_get_local(s));
}

static lwc_word_t lifo_exit(lwc_tx_t *tx, void *l)
{
    lwc_pvar_write(tx, ((lifo_t *)l)->live, lwc_pvar_read(tx, ((lifo_t *)l)->live) - 1);
    return 0;
}

static void lifo_trampoline(void *arg)
{
    struct lifo_thread *t = arg;
    t->fn(t->arg);
    lwc_atomically(lifo_exit, t->l, NULL);      /* before completing: see rr's Note */
}

static lwc_word_t lifo_enter(lwc_tx_t *tx, void *arg)
{
    struct lifo_thread *t = arg;
    lwc_pvar_write(tx, t->l->live, lwc_pvar_read(tx, t->l->live) + 1);
    lifo_push(tx, t->l, t);
    return 0;
}

/* Queue a thread; the caller starts the first one with lwc_cap_start. */
static struct lifo_thread *lifo_spawn(lifo_t *l, void (*fn)(void *), void *arg, bool queue)
{
    struct lifo_thread *t = calloc(1, sizeof *t);
    *t = (struct lifo_thread){ lwc_pvar_new(0), lwc_scont_new(lifo_trampoline, t, NULL), l, fn, arg };
    lwc_upcalls_t u = { lifo_next, lifo_unblock, l };
    lwc_scont_set_upcalls(t->s, &u);
    lwc_scont_set_local(t->s, t);
    if (queue)
        lwc_atomically(lifo_enter, t, NULL);
    else
        lwc_pvar_write(NULL, l->live, lwc_pvar_peek(l->live) + 1);
    return t;
}

/* ---- the ring ------------------------------------------------------------------------------ */

#define PER_SCHED 4
#define HOPS      (3 * PER_SCHED)

struct ring { lwc_mvar_t *mv[HOPS]; unsigned laps; };
struct member { struct ring *r; unsigned i; };

/* Member i takes from mv[i] and puts into mv[i+1]; member 0 starts and ends
 * each lap, adding 1 per lap. */
static void member(void *arg)
{
    struct member *m = arg;
    struct ring *r = m->r;
    for (unsigned lap = 0; lap < r->laps; lap++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(r->mv[m->i], &v), LWC_OK);
        ck_assert_uint_eq(v, lap * HOPS + m->i);
        ck_assert_int_eq(lwc_mvar_put(r->mv[(m->i + 1) % HOPS], v + 1), LWC_OK);
    }
}

START_TEST(test_three_schedulers_share_a_ring)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 4 }), LWC_OK);
    struct ring r = { .laps = scaled(2000) };
    struct member m[HOPS];
    for (unsigned i = 0; i < HOPS; i++) {
        r.mv[i] = lwc_mvar_new();
        m[i] = (struct member){ &r, i };
    }
    lwc_rr_t *rr = lwc_rr_new(1);
    lwc_ws_t *ws = lwc_ws_new(2);
    lifo_t lifo = { lwc_pvar_new(0), lwc_pvar_new(0) };
    struct lifo_thread *lt[PER_SCHED];
    /* Members alternate schedulers around the ring: rr, ws, lifo, rr, ... */
    for (unsigned i = 0; i < HOPS; i++) {
        if (i % 3 == 0)
            ck_assert_int_eq(lwc_rr_spawn(rr, member, &m[i]), LWC_OK);
        else if (i % 3 == 1)
            ck_assert_int_eq(lwc_ws_spawn(ws, member, &m[i]), LWC_OK);
        else
            lt[i / 3] = lifo_spawn(&lifo, member, &m[i], i / 3 > 0);
    }
    ck_assert_int_eq(lwc_cap_start(lt[0]->s), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(r.mv[0], 0), LWC_OK);        /* the token */
    lwc_rr_free(rr);
    lwc_ws_free(ws);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(r.mv[0], &v), LWC_OK);
    ck_assert_uint_eq(v, (lwc_word_t)r.laps * HOPS);
    for (unsigned i = 0; i < PER_SCHED; i++)
        lwc_scont_release(lt[i]->s);
    lwc_shutdown();
    for (unsigned i = 0; i < PER_SCHED; i++) {
        lwc_pvar_free(lt[i]->below);
        free(lt[i]);
    }
    lwc_pvar_free(lifo.top);
    lwc_pvar_free(lifo.live);
    for (unsigned i = 0; i < HOPS; i++)
        lwc_mvar_free(r.mv[i]);
}
END_TEST

/* In-calls into an rr and a ws instance, from plain pthreads at once and
 * from a thread of the other scheduler: each runs as a thread of its
 * instance (it yields), and hands a value across to the other through an
 * MVar. */
#define INCALL_THREADS 4
static lwc_rr_t *in_rr;
static lwc_ws_t *in_ws;
static lwc_mvar_t *across;
static atomic_int incalls_ran, incalls_wrong;

static void in_rr_thread(void *arg)
{
    (void)arg;
    if (lwc_rr_self() != in_rr)
        atomic_fetch_add(&incalls_wrong, 1);
    ck_assert_int_eq(lwc_rr_yield(), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(across, 1), LWC_OK);
    atomic_fetch_add(&incalls_ran, 1);
}

static void in_ws_thread(void *arg)
{
    (void)arg;
    if (lwc_ws_self() != in_ws)
        atomic_fetch_add(&incalls_wrong, 1);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(across, &v), LWC_OK);
    atomic_fetch_add(&incalls_ran, 1);
}

static void ws_calls_into_rr(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lwc_rr_incall(in_rr, in_rr_thread, NULL), LWC_OK);
}

static void *incaller(void *arg)
{
    unsigned n = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(lwc_rr_incall(in_rr, in_rr_thread, NULL), LWC_OK);
        ck_assert_int_eq(lwc_ws_incall(in_ws, in_ws_thread, NULL), LWC_OK);
    }
    return NULL;
}

START_TEST(test_incalls_into_instances)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 2 }), LWC_OK);
    in_rr = lwc_rr_new(1);
    in_ws = lwc_ws_new(1);
    across = lwc_mvar_new();
    lwc_pin(across);
    atomic_store(&incalls_ran, 0);
    atomic_store(&incalls_wrong, 0);
    unsigned n = scaled(200);
    pthread_t pt[INCALL_THREADS];
    for (int i = 0; i < INCALL_THREADS; i++)
        ck_assert_int_eq(pthread_create(&pt[i], NULL, incaller, (void *)(uintptr_t)n), 0);
    for (int i = 0; i < INCALL_THREADS; i++)
        ck_assert_int_eq(pthread_join(pt[i], NULL), 0);
    /* from a thread of ws into rr, and the matching take */
    ck_assert_int_eq(lwc_ws_incall(in_ws, ws_calls_into_rr, NULL), LWC_OK);
    ck_assert_int_eq(lwc_ws_incall(in_ws, in_ws_thread, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&incalls_ran), (int)(2 * INCALL_THREADS * n + 2));
    ck_assert_int_eq(atomic_load(&incalls_wrong), 0);
    ck_assert_int_eq(lwc_rr_incall(NULL, in_rr_thread, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ws_incall(in_ws, NULL, NULL), LWC_EINVAL);
    lwc_rr_free(in_rr);
    lwc_ws_free(in_ws);
    lwc_unpin(across);
    lwc_mvar_free(across);
    lwc_shutdown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("side_by_side");
    TCase *tc = tcase_create("three");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_three_schedulers_share_a_ring);
    tcase_add_test(tc, test_incalls_into_instances);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
