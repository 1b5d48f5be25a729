/* Safe foreign calls (lwc_outcall, lwc_call_safe, lwc_outcall_callback) on
 * any scheduler library: the capability goes to the other threads while C
 * code blocks, errno is the callee's, errors wait for the call's end, and a
 * thread in a call is a root.  Each test runs on 1 and 2 capabilities. */
#include "blocked.h"

#include <errno.h>
#include <lwc/detect.h>
#include <lwc/exception.h>
#include <lwc/mvar.h>
#include <string.h>
#include <unistd.h>

/* ---- 100 threads blocked in read() while a counter keeps running ------------------ */

#define READERS_FULL 100
static unsigned readers;
static int pipes[READERS_FULL][2];
static atomic_int entered;

static void *read_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    atomic_fetch_add(&entered, 1);
    char c = 0;
    ssize_t n = read(fd, &c, 1);                    /* blocks until main writes */
    return (void *)(intptr_t)(n == 1 ? c : -1);
}

static void reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    void *r = NULL;
    ck_assert_int_eq(lwc_call_safe(read_one, (void *)(intptr_t)pipes[i][0], &r), LWC_OK);
    ck_assert_int_eq((int)(intptr_t)r, 'a' + i % 26);
}

static void readers_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *j[READERS_FULL];
    start_counter();
    for (unsigned i = 0; i < readers; i++)
        ck_assert_int_eq(lwc_spawn_joinable(reader, (void *)(intptr_t)i, &j[i]), LWC_OK);
    /* Every reader gets into its read although each blocks its OS thread:
     * on one capability that is possible only if each call gave it up. */
    while (atomic_load(&entered) < (int)readers)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    counter_runs_on(100);                           /* and the counter runs on */
    for (unsigned i = 0; i < readers; i++) {
        char c = (char)('a' + i % 26);
        ck_assert_int_eq(write(pipes[i][1], &c, 1), 1);
    }
    for (unsigned i = 0; i < readers; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
    stop_counter();
}

START_TEST(test_blocked_calls_beside_a_counter)
{
    use_caps(_i);
    readers = LIGHT_RUN() ? 20 : READERS_FULL;
    for (unsigned i = 0; i < readers; i++)
        ck_assert_int_eq(pipe(pipes[i]), 0);
    atomic_store(&entered, 0);
    ck_assert_int_eq(lwc_main(readers_main, NULL), LWC_OK);
    for (unsigned i = 0; i < readers; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
}
END_TEST

/* ---- errno, results, and the two ways back ----------------------------------------- */

/* Set while another thread has run: on one capability, only once the
 * caller's was handed on, so a callee that waits for it returns by the
 * slow path. */
static atomic_bool other_ran;

/* In a callee: with slow set, return only once another thread has run. */
static void wait_if_slow(void *slow)
{
    if (slow)
        while (!atomic_load(&other_ran))
            usleep(100);
}

static void *errno_after(void *arg)
{
    wait_if_slow(arg);
    errno = 4321;
    return (void *)(intptr_t)77;
}

static void mark_ran(void *arg)
{
    (void)arg;
    atomic_store(&other_ran, true);
}

/* Before a call: for the slow path, the thread whose run ends the wait. */
static lwc_joinable_t *arrange(int slow)
{
    lwc_joinable_t *j = NULL;
    atomic_store(&other_ran, false);
    if (slow)
        ck_assert_int_eq(lwc_spawn_joinable(mark_ran, NULL, &j), LWC_OK);
    return j;
}

static void errno_main(void *arg)
{
    (void)arg;
    for (int slow = 0; slow < 2; slow++) {
        lwc_joinable_t *j = arrange(slow);
        errno = 0;
        void *r = NULL;
        ck_assert_int_eq(lwc_call_safe(errno_after, (void *)(intptr_t)slow, &r), LWC_OK);
        ck_assert_int_eq(errno, 4321);
        ck_assert_int_eq((int)(intptr_t)r, 77);
        if (j)
            ck_assert_int_eq(lwc_join(j), LWC_OK);
        /* still a thread of its scheduler, on a capability */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
        ck_assert_uint_ne(lwc_cap_self(), -1u);             /* holding one again */
    }
    ck_assert_int_eq(lwc_call_safe(NULL, NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_outcall(NULL, NULL), LWC_EINVAL);
}

START_TEST(test_errno_and_result)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(errno_main, NULL), LWC_OK);
    /* outside the runtime: a plain call */
    errno = 0;
    void *r = NULL;
    ck_assert_int_eq(lwc_call_safe(errno_after, NULL, &r), LWC_OK);
    ck_assert_int_eq(errno, 4321);
    ck_assert_int_eq((int)(intptr_t)r, 77);
}
END_TEST

/* ---- a bound thread's calls run on its own OS thread -------------------------------- */

static void *which_thread(void *arg)
{
    wait_if_slow(arg);
    return (void *)pthread_self();
}

static atomic_int bound_ok;

static void bound_caller(void *arg)
{
    (void)arg;
    for (int slow = 0; slow < 2; slow++) {
        lwc_joinable_t *j = arrange(slow);
        pthread_t before = pthread_self();
        void *r = NULL;
        ck_assert_int_eq(lwc_call_safe(which_thread, (void *)(intptr_t)slow, &r), LWC_OK);
        ck_assert(pthread_equal((pthread_t)r, before));
        ck_assert(pthread_equal(pthread_self(), before));
        if (j)
            ck_assert_int_eq(lwc_join(j), LWC_OK);
        atomic_fetch_add(&bound_ok, 1);
    }
}

static void bound_main(void *arg)
{
    (void)arg;
    atomic_store(&bound_ok, 0);
    ck_assert_int_eq(lwc_spawn_bound(bound_caller, NULL), LWC_OK);
    while (atomic_load(&bound_ok) < 2)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

START_TEST(test_bound_calls_stay_on_their_thread)
{
    /* The loop's threads are not bound (all run on its host's thread), and
     * its calls run on a spare (Note [Calls from a hosted capability]). */
    if (!strcmp(lwc_sched_name(), "loop"))
        return;
    use_caps(_i);
    ck_assert_int_eq(lwc_main(bound_main, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&bound_ok), 2);
}
END_TEST

/* ---- an error thrown at a thread in a call ----------------------------------------- */

#define THROWN (-2001)
static atomic_bool let_go, in_call;
static lwc_scont_t *victim;

static void *wait_let_go(void *arg)
{
    atomic_store(&in_call, true);
    while (!atomic_load(&let_go))
        usleep(100);
    return arg;
}

static void thrown_at(void *arg)
{
    int *got = arg;
    victim = lwc_scont_self();
    void *r = NULL;
    *got = lwc_call_safe(wait_let_go, (void *)(intptr_t)5, &r);
    ck_assert_int_eq((int)(intptr_t)r, 5);          /* the call ran to its end */
}

static void throw_main(void *arg)
{
    (void)arg;
    int got = 0;
    atomic_store(&let_go, false);
    atomic_store(&in_call, false);
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(thrown_at, &got, &j), LWC_OK);
    while (!atomic_load(&in_call))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_throw_to(victim, THROWN), LWC_OK);
    for (int i = 0; i < 20; i++)                    /* not delivered inside C code */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(got, 0);
    atomic_store(&let_go, true);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(got, THROWN);
}

START_TEST(test_throw_at_a_thread_in_a_call)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(throw_main, NULL), LWC_OK);
}
END_TEST

/* ---- an interruptible call: the throw makes a blocked read() return EINTR ---------- */

static int intr_pipe[2];

struct intr { atomic_bool in; int saw; };

static void read_until_interrupted(void *arg)
{
    struct intr *x = arg;
    char c;
    atomic_store(&x->in, true);
    ssize_t n = read(intr_pipe[0], &c, 1);          /* a blocking fd, empty: only EINTR ends it */
    x->saw = n < 0 ? errno : 0;
}

static void interruptible_caller(void *arg)
{
    struct intr *x = arg;
    victim = lwc_scont_self();
    ck_assert_int_eq(lwc_outcall_interruptible(read_until_interrupted, x), THROWN);
}

static void interruptible_main(void *arg)
{
    (void)arg;
    struct intr x = { .saw = -1 };
    atomic_store(&x.in, false);
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(interruptible_caller, &x, &j), LWC_OK);
    while (!atomic_load(&x.in))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_throw_to(victim, THROWN), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(x.saw, EINTR);
}

START_TEST(test_interruptible_call)
{
    use_caps(_i);
    ck_assert_int_eq(pipe(intr_pipe), 0);
    ck_assert_int_eq(lwc_main(interruptible_main, NULL), LWC_OK);
    close(intr_pipe[0]);
    close(intr_pipe[1]);
}
END_TEST

/* ---- callbacks from inside a call, nested ------------------------------------------ */

static lwc_mvar_t *cb_mv;
static atomic_int cb_depth_max;

struct nest { int depth; unsigned thread; };

static void *call_back(void *arg);

static void callback_body(void *arg)
{
    struct nest *n = arg;
    ck_assert_ptr_nonnull(lwc_scont_self());
    ck_assert_uint_ne(lwc_cap_self(), -1u);
    for (int i = 0; i < 5; i++)                     /* lwc code again: it may switch, */
        ck_assert_int_eq(lwc_yield(), LWC_OK);      /* and on ws resume elsewhere */
    ck_assert_int_eq(lwc_mvar_put(cb_mv, (lwc_word_t)n->depth), LWC_OK);
    if (n->depth < 3) {
        struct nest deeper = { n->depth + 1, 0 };
        ck_assert_int_eq(lwc_call_safe(call_back, &deeper, NULL), LWC_OK);
    }
    if (n->depth > atomic_load(&cb_depth_max))
        atomic_store(&cb_depth_max, n->depth);
}

/* C code inside a call that calls back into lwc, after blocking a while
 * (so that on one capability its capability has been handed on). */
static void *call_back(void *arg)
{
    struct nest *n = arg;
    errno = 99;
    usleep(2000);
    ck_assert_int_eq(lwc_outcall_callback(callback_body, n), LWC_OK);
    ck_assert_int_eq(errno, 99);                    /* the callback keeps the C code's */
    return NULL;
}

static void taker(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 3; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(cb_mv, &v), LWC_OK);
        ck_assert_int_eq((int)v, i);
    }
}

static void callback_main(void *arg)
{
    (void)arg;
    cb_mv = lwc_mvar_new();
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(taker, NULL, &j), LWC_OK);
    struct nest n = { 1, 0 };
    ck_assert_int_eq(lwc_call_safe(call_back, &n, NULL), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(atomic_load(&cb_depth_max), 3);
    /* outside a call, a callback simply runs */
    n.depth = 4;
    ck_assert_int_eq(lwc_outcall_callback(callback_body, &n), LWC_OK);
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(cb_mv, &v), LWC_OK);
    ck_assert_int_eq((int)v, 4);
    ck_assert_int_eq(lwc_outcall_callback(NULL, NULL), LWC_EINVAL);
    lwc_mvar_free(cb_mv);
}

START_TEST(test_nested_callbacks)
{
    use_caps(_i);
    atomic_store(&cb_depth_max, 0);
    ck_assert_int_eq(lwc_main(callback_main, NULL), LWC_OK);
}
END_TEST

/* ---- scenario 21: a thread in a foreign call is a root (GHC conc040) --------------- */

static void *sleep_20ms(void *arg)
{
    usleep(20000);
    return arg;
}

static void putter_after_call(void *arg)
{
    lwc_mvar_t *m = arg;
    ck_assert_int_eq(lwc_call_safe(sleep_20ms, NULL, NULL), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(m, 21), LWC_OK);
}

static void waiter_on(void *arg)
{
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(arg, &v), LWC_OK);   /* never woken with an error */
    ck_assert_int_eq((int)v, 21);
}

static void scenario21_main(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_joinable_t *jp, *jw;
    ck_assert_int_eq(lwc_spawn_joinable(waiter_on, m, &jw), LWC_OK);
    ck_assert_int_eq(lwc_spawn_joinable(putter_after_call, m, &jp), LWC_OK);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_gc(), 0);                  /* during the call: wakes nobody */
    ck_assert_int_eq(lwc_join(jp), LWC_OK);
    ck_assert_int_eq(lwc_join(jw), LWC_OK);
    lwc_mvar_free(m);
}

START_TEST(test_scenario21_thread_in_a_call_is_a_root)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(scenario21_main, NULL), LWC_OK);
}
END_TEST

/* ---- lwc_main's thread returns with calls in flight ------------------------------- */

static atomic_int flights_entered;

static void *flight(void *arg)
{
    atomic_fetch_add(&flights_entered, 1);
    usleep(30000);
    return arg;
}

static void flyer(void *arg)
{
    (void)arg;
    lwc_call_safe(flight, NULL, NULL);
    lwc_word_t v;
    lwc_mvar_take(lwc_mvar_new(), &v);              /* blocked for good after */
}

static void flights_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(lwc_spawn(flyer, NULL), LWC_OK);
    while (atomic_load(&flights_entered) < 4)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    /* returns with the calls in flight: lwc_main waits for them to return
     * (the threads then block for good, and lwc_main shuts the runtime down) */
}

START_TEST(test_main_returns_with_calls_in_flight)
{
    use_caps(_i);
    atomic_store(&flights_entered, 0);
    ck_assert_int_eq(lwc_main(flights_main, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&flights_entered), 4);
    ck_assert_int_eq(lwc_cap_count(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("outcall");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_blocked_calls_beside_a_counter, 0, 2);
    tcase_add_loop_test(tc, test_errno_and_result, 0, 2);
    tcase_add_loop_test(tc, test_bound_calls_stay_on_their_thread, 0, 2);
    tcase_add_loop_test(tc, test_throw_at_a_thread_in_a_call, 0, 2);
    tcase_add_loop_test(tc, test_interruptible_call, 0, 2);
    tcase_add_loop_test(tc, test_nested_callbacks, 0, 2);
    tcase_add_loop_test(tc, test_scenario21_thread_in_a_call_is_a_root, 0, 2);
    tcase_add_loop_test(tc, test_main_returns_with_calls_in_flight, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
