/* The scheduler author's kit (lwc/kit.h), through the priority scheduler of
 * examples/prio/, which this test links as its lwc/sched.h, and a LIFO
 * policy of its own on an explicit instance. */
#include "harness.h"

#include <errno.h>
#include <lwc/kit.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <lwc/detect.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../examples/prio/prio.h"

/* ---- priorities, with one capability: the order is the policy's ------------------ */

static char order[64];
static atomic_uint order_n;

static void note(char c)
{
    unsigned i = atomic_fetch_add(&order_n, 1);
    if (i < sizeof order - 1)
        order[i] = c;
}

static lwc_mvar_t *finished;

static void record_level(void *arg)
{
    note((char)(uintptr_t)arg);
    ck_assert_int_eq(prio_level(), ((char)(uintptr_t)arg) - '0');
    ck_assert_int_eq(lwc_mvar_put(finished, 1), LWC_OK);
}

static void take_n(int n)
{
    lwc_word_t v;
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(lwc_mvar_take(finished, &v), LWC_OK);
}

static void spawns_by_level(void *arg)
{
    (void)arg;
    ck_assert_int_eq(prio_level(), 0);              /* lwc_main's thread */
    ck_assert_str_eq(lwc_sched_name(), "prio");
    const char levels[] = "7350614";
    for (const char *c = levels; *c; c++)
        ck_assert_int_eq(prio_spawn((unsigned)(*c - '0'), record_level, (void *)(uintptr_t)*c),
                         LWC_OK);
    take_n((int)strlen(levels));                    /* blocks: they run, best first */
}

static void run_one_cap(void (*fn)(void *))
{
    setenv("LWC_CAPS", "1", 1);
    memset(order, 0, sizeof order);
    atomic_store(&order_n, 0);
    finished = lwc_mvar_new();
    ck_assert_ptr_nonnull(finished);
    lwc_pin(finished);
    ck_assert_int_eq(lwc_main(fn, NULL), LWC_OK);
    unsetenv("LWC_CAPS");
}

static void finish_run(void)
{
    lwc_unpin(finished);
    lwc_mvar_free(finished);
    finished = NULL;
}

START_TEST(test_best_level_first)
{
    run_one_cap(spawns_by_level);
    ck_assert_str_eq(order, "0134567");
    finish_run();
}
END_TEST

/* Two threads of one level take turns at each yield; a thread that moves to
 * a worse level lets the better one run first. */
static void yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        note((char)(uintptr_t)arg);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
    ck_assert_int_eq(lwc_mvar_put(finished, 1), LWC_OK);
}

static void demoted(void *arg)
{
    (void)arg;
    note('d');
    ck_assert_int_eq(prio_set_level(6), LWC_OK);     /* 'm' (level 5) runs now */
    note('D');
    ck_assert_int_eq(lwc_mvar_put(finished, 1), LWC_OK);
}

static void middle(void *arg)
{
    (void)arg;
    note('m');
    ck_assert_int_eq(lwc_mvar_put(finished, 1), LWC_OK);
}

static void turns_and_demotion(void *arg)
{
    (void)arg;
    ck_assert_int_eq(prio_spawn(2, yielder, (void *)'a'), LWC_OK);
    ck_assert_int_eq(prio_spawn(2, yielder, (void *)'b'), LWC_OK);
    take_n(2);
    ck_assert_int_eq(prio_spawn(4, demoted, NULL), LWC_OK);
    ck_assert_int_eq(prio_spawn(5, middle, NULL), LWC_OK);
    take_n(2);
}

START_TEST(test_turns_within_a_level)
{
    run_one_cap(turns_and_demotion);
    ck_assert_str_eq(order, "abababdmD");
    finish_run();
}
END_TEST

/* ---- the scheduler interface on prio, with two capabilities --------------------------- */

static atomic_int fib_spawns;

struct fibarg { int n, r; };

static void fib_thread(void *arg)
{
    struct fibarg *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    struct fibarg a = { f->n - 1, 0 }, b = { f->n - 2, 0 };
    lwc_joinable_t *ja, *jb;
    ck_assert_int_eq(lwc_spawn_joinable(fib_thread, &a, &ja), LWC_OK);
    ck_assert_int_eq(lwc_spawn_joinable(fib_thread, &b, &jb), LWC_OK);
    ck_assert_int_eq(lwc_join(ja), LWC_OK);
    ck_assert_int_eq(lwc_join(jb), LWC_OK);
    atomic_fetch_add(&fib_spawns, 2);
    f->r = a.r + b.r;
}

static void fib_main(void *arg)
{
    fib_thread(arg);
}

START_TEST(test_joins_on_two_caps)
{
    setenv("LWC_CAPS", "2", 1);
    struct fibarg f = { LIGHT_RUN() ? 10 : 15, 0 };
    atomic_store(&fib_spawns, 0);
    ck_assert_int_eq(lwc_main(fib_main, &f), LWC_OK);
    ck_assert_int_eq(f.r, LIGHT_RUN() ? 55 : 610);
    ck_assert_int_gt(atomic_load(&fib_spawns), 0);
    unsetenv("LWC_CAPS");
}
END_TEST

/* A thread blocked for good on the kit's scheduler gets the detector's
 * error, as on rr and ws: the kit keeps the rules. */
static int lost_err;

static void waits_on_private(void *arg)
{
    (void)arg;
    lwc_mvar_t *mine = lwc_mvar_new();
    lwc_word_t v;
    lost_err = lwc_mvar_take(mine, &v);
    lwc_mvar_free(mine);
    ck_assert_int_eq(lwc_mvar_put(finished, 1), LWC_OK);
}

static void spawns_a_lost_thread(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lwc_spawn(waits_on_private, NULL), LWC_OK);
    take_n(1);
}

START_TEST(test_blocked_forever_is_found)
{
    lost_err = LWC_OK;
    run_one_cap(spawns_a_lost_thread);
    ck_assert_int_eq(lost_err, LWC_EBLOCKED_CONCDS);
    finish_run();
}
END_TEST

/* ---- a policy of the test's own on an explicit instance ------------------------------ */

/* LIFO: a stack of PVars (everything a policy changes is in PVars). */
#define LIFO_MAX 64
struct lifo { lwc_pvar_t top; lwc_pvar_t slot[LIFO_MAX]; };

static void lifo_push(lwc_tx_t *tx, void *state, lwc_kit_thread_t *t)
{
    struct lifo *l = state;
    lwc_word_t n = lwc_pvar_read(tx, &l->top);
    ck_assert_uint_lt(n, LIFO_MAX);
    lwc_pvar_write(tx, &l->slot[n], (lwc_word_t)t);
    lwc_pvar_write(tx, &l->top, n + 1);
}

static lwc_kit_thread_t *lifo_pop(lwc_tx_t *tx, void *state)
{
    struct lifo *l = state;
    lwc_word_t n = lwc_pvar_read(tx, &l->top);
    if (!n)
        return NULL;
    lwc_pvar_write(tx, &l->top, n - 1);
    return (lwc_kit_thread_t *)lwc_pvar_read(tx, &l->slot[n - 1]);
}

static const lwc_kit_policy_t lifo_policy = { lifo_push, lifo_pop, "lifo" };

static void lifo_thread(void *arg)
{
    note((char)(uintptr_t)arg);
    ck_assert_ptr_eq(lwc_kit_policy(lwc_kit_self()), &lifo_policy);
    ck_assert_uint_eq(lwc_kit_thread_word(lwc_kit_thread_self()), (lwc_word_t)arg);
    ck_assert_ptr_eq(lwc_kit_thread_scont(lwc_kit_thread_self()), lwc_scont_self());
}

/* An in-call's thread has word 0. */
static void incalled(void *arg)
{
    (void)arg;
    note('9');
    ck_assert_uint_eq(lwc_kit_thread_word(lwc_kit_thread_self()), 0);
}

static lwc_kit_t *lifo_k;

/* The thread view names the policy and the thread. */
static void view_names_the_policy(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(lwc_scont_set_name(lwc_scont_self(), "first"), LWC_OK);
    ck_assert_int_eq(lwc_scont_set_name(lwc_scont_self(), "again"), LWC_EBUSY);
    ck_assert_int_eq(lwc_scont_set_name(NULL, "x"), LWC_EINVAL);
    ck_assert_int_eq(lwc_sconts_print(p[1]), LWC_OK);
    char buf[4096];
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = 0;
    ck_assert_msg(strstr(buf, "\"first\": running; scheduler lifo (") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, ": runnable; scheduler lifo (") != NULL, "%s", buf);
    close(p[0]);
    close(p[1]);
}

static void lifo_first(void *arg)
{
    (void)arg;
    note('<');
    for (char c = '1'; c <= '4'; c++)
        ck_assert_int_eq(lwc_kit_spawn(lifo_k, lifo_thread, (void *)(uintptr_t)c, (lwc_word_t)c),
                         LWC_OK);
    view_names_the_policy();
    ck_assert_int_eq(lwc_kit_yield(), LWC_OK);       /* pushed last, popped first: goes on */
    note('>');
}

START_TEST(test_a_policy_of_ones_own)
{
    lwc_config_t cfg = { .ncaps = 1 };
    ck_assert_int_eq(lwc_init(&cfg), LWC_OK);
    static struct lifo state;
    memset(order, 0, sizeof order);
    atomic_store(&order_n, 0);
    lifo_k = lwc_kit_new(&lifo_policy, &state, 0);
    ck_assert_ptr_nonnull(lifo_k);
    ck_assert_ptr_eq(lwc_kit_state(lifo_k), &state);
    ck_assert_int_eq(lwc_kit_spawn(lifo_k, lifo_first, NULL, 0), LWC_OK);
    ck_assert_int_eq(lwc_kit_wait(lifo_k), LWC_OK);
    ck_assert_str_eq(order, "<>4321");
    ck_assert_int_eq(lwc_kit_incall(lifo_k, incalled, NULL), LWC_OK);
    ck_assert_str_eq(order, "<>43219");
    lwc_kit_free(lifo_k);
    lifo_k = NULL;
    lwc_shutdown();
}
END_TEST

/* ---- misuse ---------------------------------------------------------------------------- */

static void *no_instance(void *ctx) { (void)ctx; return NULL; }

static const lwc_kit_main_ops_t failing_ops = { no_instance, NULL, NULL, NULL };

START_TEST(test_misuse)
{
    static const lwc_kit_policy_t half = { lifo_push, NULL, NULL };
    lwc_joinable_t *j;
    ck_assert_ptr_null(lwc_kit_new(&lifo_policy, NULL, 0));     /* before lwc_init */
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(lwc_init(NULL), LWC_OK);
    errno = 0;
    ck_assert_ptr_null(lwc_kit_new(&half, NULL, 0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(lwc_kit_spawn(NULL, lifo_thread, NULL, 0), LWC_EINVAL);
    ck_assert_int_eq(lwc_kit_yield(), LWC_EINVAL);              /* not a kit thread */
    ck_assert_int_eq(lwc_kit_set_word(3), LWC_EINVAL);
    ck_assert_ptr_null(lwc_kit_self());
    ck_assert_ptr_null(lwc_kit_thread_self());
    ck_assert_ptr_null(lwc_kit_main_instance());
    ck_assert_int_eq(lwc_kit_wait(NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_kit_incall(NULL, lifo_thread, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_kit_spawn_joinable(NULL, lifo_thread, NULL, &j), LWC_EINVAL);
    ck_assert_int_eq(lwc_kit_spawn_joinable(lwc_spawn, NULL, NULL, &j), LWC_EINVAL);
    ck_assert_int_eq(lwc_kit_join(NULL), LWC_EINVAL);
    ck_assert_int_eq(prio_spawn(PRIO_LEVELS, lifo_thread, NULL), LWC_EINVAL);
    ck_assert_int_eq(prio_set_level(1), LWC_EINVAL);            /* not a prio thread */
    ck_assert_int_eq(prio_level(), -1);
    lwc_kit_free(NULL);
    lwc_shutdown();
    void *current = NULL;
    ck_assert_int_eq(lwc_kit_main_run(NULL, NULL, &current, lifo_thread, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_kit_main_run(&failing_ops, NULL, &current, lifo_thread, NULL),
                     LWC_ENOMEM);
    ck_assert_ptr_null(current);
    ck_assert_int_eq(lwc_main(NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_sconts_print(2), LWC_EINVAL);             /* no runtime */
    ck_assert_int_eq(lwc_sched_set_namer(NULL, NULL), LWC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kit");
    TCase *tc = tcase_create("kit");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_best_level_first);
    tcase_add_test(tc, test_turns_within_a_level);
    tcase_add_test(tc, test_joins_on_two_caps);
    tcase_add_test(tc, test_blocked_forever_is_found);
    tcase_add_test(tc, test_a_policy_of_ones_own);
    tcase_add_test(tc, test_misuse);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
