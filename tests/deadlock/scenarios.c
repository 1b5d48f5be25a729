/* The blocked-forever scenarios of ../shared/scenarios.md that need no
 * detector pass: each test is named after its scenario and cites its source.
 * Compiled once and linked against every scheduler library; each runs on 1
 * and on 2 capabilities.  The scenarios that need lwc_gc or the automatic
 * pass come with the detector. */
#include "../generic/blocked.h"

#include <lwc/mvar.h>
#include <string.h>

/* A thread that publishes itself, then does one blocking operation. */
struct waiter {
    lwc_scont_t *_Atomic self;
    int err;
    lwc_joinable_t *j;
};

static lwc_scont_t *spawn_waiter(struct waiter *w, void (*fn)(void *), void *arg)
{
    ck_assert_int_eq(lwc_spawn_joinable(fn, arg, &w->j), LWC_OK);
    lwc_scont_t *s;
    while (!(s = atomic_load(&w->self)))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    return s;
}

/* ---- 11. Freeing an MVar with waiters --------------------------------------------------
 * Three threads block on an MVar; another frees it.  All three get
 * LWC_EBLOCKED_CONCDS, in the order they blocked. */

struct freed {
    lwc_mvar_t *mv;
    struct waiter w[3];
    atomic_int woken;
    int order[3];
};

struct freed_taker { struct freed *f; int i; };

static void freed_taker(void *arg)
{
    struct freed_taker *ft = arg;
    struct waiter *w = &ft->f->w[ft->i];
    atomic_store(&w->self, lwc_scont_self());
    lwc_word_t x;
    w->err = lwc_mvar_take(ft->f->mv, &x);
    ft->f->order[atomic_fetch_add(&ft->f->woken, 1)] = ft->i;
}

static void free_mvar_with_waiters(void *arg)
{
    (void)arg;
    start_busy();
    struct freed f = { .mv = lwc_mvar_new() };
    struct freed_taker ft[3];
    for (int i = 0; i < 3; i++) {
        ft[i] = (struct freed_taker){ &f, i };
        await_blocked(spawn_waiter(&f.w[i], freed_taker, &ft[i]));
    }
    lwc_mvar_free(f.mv);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(lwc_join(f.w[i].j), LWC_OK);
        ck_assert_int_eq(f.w[i].err, LWC_EBLOCKED_CONCDS);
    }
    ck_assert_int_eq(atomic_load(&f.woken), 3);
    /* rr on one capability runs them in the order they were made runnable. */
    if (!strcmp(lwc_sched_name(), "rr") && !strcmp(getenv("LWC_CAPS"), "1"))
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(f.order[i], i);
    stop_busy_threads();
}

START_TEST(test_free_mvar_with_waiters)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(free_mvar_with_waiters, NULL), LWC_OK);
}
END_TEST

/* ---- 14. Kill while blocked (GHC conc020, with an explicit kill) -----------------------
 * A thread blocked on an MVar that main still holds is killed: its take
 * returns LWC_EKILLED, and a later put on the MVar does not hand the value to
 * the dead waiter. */

struct killed { lwc_mvar_t *mv; struct waiter w; lwc_word_t got; };

static void killed_taker(void *arg)
{
    struct killed *k = arg;
    atomic_store(&k->w.self, lwc_scont_self());
    k->w.err = lwc_mvar_take(k->mv, &k->got);
}

static void kill_while_blocked(void *arg)
{
    (void)arg;
    start_busy();
    struct killed k = { .mv = lwc_mvar_new(), .got = 12345 };
    lwc_scont_t *s = spawn_waiter(&k.w, killed_taker, &k);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_join(k.w.j), LWC_OK);
    ck_assert_int_eq(k.w.err, LWC_EKILLED);
    ck_assert_uint_eq(k.got, 12345);                    /* handed nothing */
    ck_assert_int_eq(lwc_mvar_put(k.mv, 42), LWC_OK);
    lwc_word_t x = 0;
    ck_assert_int_eq(lwc_mvar_try_take(k.mv, &x), LWC_OK);
    ck_assert_uint_eq(x, 42);                           /* still there */
    lwc_mvar_free(k.mv);
    stop_busy_threads();
}

START_TEST(test_kill_while_blocked)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(kill_while_blocked, NULL), LWC_OK);
}
END_TEST

/* ---- 16. Pinned PVar, killed waiter (GHC T9379) ----------------------------------------
 * A thread blocks in a PTM retry on a pinned PVar; main kills it: the kill
 * arrives (LWC_EKILLED), nothing else does, nothing hangs. */

struct retrier { lwc_pvar_t *pv; struct waiter w; int after; };

static void retrier(void *arg)
{
    struct retrier *r = arg;
    atomic_store(&r->w.self, lwc_scont_self());
    r->w.err = lwc_atomically(wait_nonzero, r->pv, NULL);
    r->after = lwc_yield();                             /* nothing else arrives */
}

static void pinned_pvar_killed_waiter(void *arg)
{
    (void)arg;
    start_busy();
    struct retrier r = { .pv = lwc_pvar_new(0), .after = 1 };
    lwc_pin(r.pv);
    lwc_scont_t *s = spawn_waiter(&r.w, retrier, &r);
    await_blocked(s);
    ck_assert_int_eq(lwc_kill(s), LWC_OK);
    ck_assert_int_eq(lwc_join(r.w.j), LWC_OK);
    ck_assert_int_eq(r.w.err, LWC_EKILLED);
    ck_assert_int_eq(r.after, LWC_OK);
    ck_assert_uint_eq(lwc_pvar_read(NULL, r.pv), 0);
    lwc_unpin(r.pv);
    lwc_pvar_free(r.pv);
    stop_busy_threads();
}

START_TEST(test_pinned_pvar_killed_waiter)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(pinned_pvar_killed_waiter, NULL), LWC_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_free_mvar_with_waiters, 0, 2);
    tcase_add_loop_test(tc, test_kill_while_blocked, 0, 2);
    tcase_add_loop_test(tc, test_pinned_pvar_killed_waiter, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
