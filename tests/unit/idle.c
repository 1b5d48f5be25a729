/* Idle capabilities keep the policy (Note [Idling in a place of its own] in
 * substrate/idle.c): a thread that blocked runs again only once its
 * scheduler's unblock_thread has taken it and its switch_to_next has chosen
 * it, even when the capability went idle right after it blocked.  Linked
 * against rr for the FIFO case; the priority case is a scheduler of its own
 * built from two of the harness's queues. */
#include "harness.h"

#include <lwc/io.h>
#include <lwc/mvar.h>
#include <lwc/rr.h>
#include <lwc/sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char order[8];
static _Atomic unsigned norder;
static uint64_t deadline;

static void record(char c)
{
    order[atomic_fetch_add(&norder, 1)] = c;
}

/* Far enough ahead that every sleeper is asleep first (valgrind is slow);
 * if one is not, the order asserted holds all the same. */
static uint64_t soon(void)
{
    return lwc_clock_ns() + (LIGHT_RUN() ? 300 : 30) * 1000000ull;
}

static void sleeper(void *arg)
{
    ck_assert_int_eq(lwc_sleep_until(deadline), LWC_OK);
    record((char)(uintptr_t)arg);
}

static void spawn_three(void *arg)
{
    (void)arg;
    lwc_joinable_t *j[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(lwc_spawn_joinable(sleeper, (void *)(uintptr_t)("ABC"[i]), &j[i]),
                         LWC_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
}

/* rr is FIFO: A, B and C, spawned in that order and asleep until one
 * deadline, are woken in that order (the timers' ties go by age) and run in
 * it.  C blocked last, so the capability idled right after C's switch: it
 * used to idle inside C's blocking transaction, and on the wake-up ran C on
 * at once, ahead of A and B ("CAB"). */
START_TEST(test_rr_wakes_in_fifo_order)
{
    for (int round = 0; round < 3; round++) {
        memset(order, 0, sizeof order);
        atomic_store(&norder, 0);
        deadline = soon();
        ck_assert_int_eq(lwc_main(spawn_three, NULL), 0);
        ck_assert_str_eq(order, "ABC");
    }
}
END_TEST

/* rr's yield is FIFO: with two threads it hands over and back (the queue of
 * one that fifo_rotate writes twice, not four times), with three it goes
 * round in spawn order. */
static char trail[64];
static _Atomic unsigned ntrail;

static void yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        trail[atomic_fetch_add(&ntrail, 1)] = (char)(uintptr_t)arg;
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

static void spawn_yielders(void *arg)
{
    const char *names = arg;
    lwc_joinable_t *j[3];
    size_t n = strlen(names);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(lwc_spawn_joinable(yielder, (void *)(uintptr_t)names[i], &j[i]), LWC_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
}

START_TEST(test_rr_yield_order)
{
    static const char *names[] = { "AB", "ABC" }, *want[] = { "ABABAB", "ABCABCABC" };
    for (int k = 0; k < 2; k++) {
        memset(trail, 0, sizeof trail);
        atomic_store(&ntrail, 0);
        ck_assert_int_eq(lwc_main(spawn_yielders, (void *)names[k]), 0);
        ck_assert_str_eq(trail, want[k]);
    }
}
END_TEST

/* ---- a priority scheduler: two FIFO queues, the high one first ---------------- */

struct prio { tsched_t hi, lo; };

static lwc_scont_t *prio_next(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)self; (void)why;
    struct prio *p = env;
    lwc_scont_t *n = tq_pop(tx, &p->hi);
    if (!n)
        n = tq_pop(tx, &p->lo);
    if (!n && lwc_pvar_read(tx, p->hi.live) + lwc_pvar_read(tx, p->lo.live) > 0)
        lwc_tx_retry(tx);
    if (!n)                         /* all done: the capability goes back */
        lwc_pvar_write(tx, p->hi.caps, lwc_pvar_read(tx, p->hi.caps) - 1);
    return n;
}

static void prio_unblock(lwc_tx_t *tx, lwc_scont_t *s, void *env)
{
    (void)env;
    struct tnode *n = lwc_scont_get_local(s);
    tq_push(tx, n->ts, s);
}

static lwc_word_t prio_wait_tx(lwc_tx_t *tx, void *arg)
{
    struct prio *p = arg;
    ts_wait_tx(tx, &p->hi);
    return ts_wait_tx(tx, &p->lo);
}

/* H (high priority) and L (low) sleep until one deadline; L blocks last, so
 * the capability idles right after L's switch.  Both wake in one poll of
 * the timers: the scheduler must run H first.  Idling inside L's blocking
 * transaction ran L first. */
START_TEST(test_priority_survives_idle)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 1 }), LWC_OK);
    for (int round = 0; round < 3; round++) {
        struct prio p;
        ts_init(&p.hi);
        ts_init(&p.lo);
        memset(order, 0, sizeof order);
        atomic_store(&norder, 0);
        deadline = soon();
        lwc_upcalls_t u = { prio_next, prio_unblock, &p };
        /* H first, not queued: it is started below; L queued behind it. */
        lwc_scont_t *h = ts_spawn_full(&p.hi, sleeper, (void *)(uintptr_t)'H', NULL, 0, 0);
        lwc_scont_t *l = ts_spawn_full(&p.lo, sleeper, (void *)(uintptr_t)'L', NULL, 0, 1);
        lwc_scont_set_upcalls(h, &u);
        lwc_scont_set_upcalls(l, &u);
        ts_cap_start(&p.hi, h);
        ck_assert_int_eq(lwc_atomically(prio_wait_tx, &p, NULL), LWC_OK);
        ck_assert_str_eq(order, "HL");
        ts_destroy(&p.hi);
        ts_destroy(&p.lo);
    }
    lwc_shutdown();
}
END_TEST

/* ---- a deadline moved earlier leaves a busy capability's bias alone ----------- */

/* A service deadline that moves earlier wakes the idle capabilities that
 * sleep past it, to sleep again to it (Note [Idle services] in
 * substrate/service.c).  That must not run their switch_to_next again: a
 * transaction begun there would revoke the commit bias of the capability that
 * is busy, with a membarrier (Note [Biased commit] in ptm/ptm.c). */
struct kick { lwc_mvar_t *never; lwc_pvar_t *pv; lwc_ptm_stats_t before, after; };

static uint64_t nothing_due(void *arg, uint64_t now)
{
    (void)arg; (void)now;
    return LWC_NEVER;
}

static void idler(void *arg)
{
    struct kick *k = arg;
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(k->never, &v), LWC_OK);     /* its capability idles */
}

static lwc_word_t bump(lwc_tx_t *tx, void *pv)
{
    lwc_pvar_write(tx, pv, lwc_pvar_read(tx, pv) + 1);
    return 0;
}

static void busy(void *arg)
{
    struct kick *k = arg;
    ck_assert_int_eq(lwc_rr_spawn(lwc_rr_self(), idler, k), LWC_OK);  /* on the other cap */
    usleep(LIGHT_RUN() ? 300000 : 30000);       /* it is asleep by then, as a rule */
    do {                                        /* commit alone until granted the bias */
        ck_assert_int_eq(lwc_atomically(bump, k->pv, NULL), LWC_OK);
        lwc_ptm_get_stats(&k->before);
    } while (k->before.bias_enabled && k->before.bias_grants <= k->before.bias_revocations);
    lwc_service_due(lwc_clock_ns() + 2000000);  /* the idle capability slept to LWC_NEVER */
    for (uint64_t end = lwc_clock_ns() + 20000000; lwc_clock_ns() < end;)
        ck_assert_int_eq(lwc_atomically(bump, k->pv, NULL), LWC_OK);
    lwc_ptm_get_stats(&k->after);
    ck_assert_int_eq(lwc_mvar_put(k->never, 1), LWC_OK);
}

START_TEST(test_deadline_leaves_bias)
{
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 2 }), LWC_OK);
    ck_assert_int_eq(lwc_service_add(nothing_due, NULL), LWC_OK);
    struct kick k = { .never = lwc_mvar_new(), .pv = lwc_pvar_new(0) };
    lwc_rr_t *rr = lwc_rr_new(2);
    ck_assert_int_eq(lwc_rr_spawn(rr, busy, &k), LWC_OK);
    lwc_rr_free(rr);
    if (k.before.bias_enabled)
        ck_assert_uint_eq(k.after.bias_revocations, k.before.bias_revocations);
    lwc_mvar_free(k.never);
    lwc_pvar_free(k.pv);
    lwc_shutdown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idle");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rr_wakes_in_fifo_order);
    tcase_add_test(tc, test_rr_yield_order);
    tcase_add_test(tc, test_priority_survives_idle);
    tcase_add_test(tc, test_deadline_leaves_bias);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
