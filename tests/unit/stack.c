/* Stacks: guard pages and the overflow report, plain and big stacks, and a
 * million SConts alive at once. */
#include "harness.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
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

static unsigned recurse(unsigned depth, unsigned limit)
{
    volatile char frame[64];
    frame[0] = (char)depth;
    if (depth == limit)
        return frame[0];
    return recurse(depth + 1, limit) + frame[0];       /* not a tail call */
}

/* What recurse(0, limit) returns, computed without a deep stack. */
static unsigned expected_sum(unsigned limit)
{
    unsigned sum = 0;
    for (unsigned d = 0; d <= limit; d++)
        sum += (unsigned)(int)(char)d;
    return sum;
}

static void overflow(void *arg)
{
    (void)arg;
    recurse(0, ~0u);
}

/* Run an overflowing SCont in a child; return what it wrote on stderr. */
static int overflow_in_child(const char *env, char *out, size_t outsz)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        if (env)
            putenv((char *)env);
        lwc_config_t cfg = { .ncaps = 1 };
        if (lwc_init(&cfg) != LWC_OK)
            _exit(3);
        lwc_scont_attr_t attr = { .name = "deep", .stack_size = 64 * 1024 };
        lwc_scont_t *s = lwc_scont_new(overflow, NULL, &attr);
        lwc_eval(s);
        _exit(0);                                       /* not reached */
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < outsz && (k = read(fd[0], out + n, outsz - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

static void check_overflow(const char *env)
{
    /* valgrind has its own idea of SEGV; ThreadSanitizer defers signals to its
     * own safe points, so a fault on a guard page repeats forever there. */
    if (ON_VALGRIND() || LWC_TSAN)
        return;
    char msg[1024];
    int status = overflow_in_child(env, msg, sizeof msg);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child status %#x, stderr: %s", status, msg);
    ck_assert_ptr_nonnull(strstr(msg, "stack overflow in SCont "));
    ck_assert_ptr_nonnull(strstr(msg, "(deep)"));
    ck_assert_ptr_nonnull(strstr(msg, "65536 bytes"));
}

START_TEST(test_overflow_reported_madvise_guard)
{
    check_overflow(NULL);
}
END_TEST

START_TEST(test_overflow_reported_mprotect_guard)
{
    check_overflow("LWC_GUARD_NO_MADVISE=1");
}
END_TEST

/* ---- plain and big stacks -------------------------------------------------------- */

struct depth { unsigned limit; unsigned result; };

static void go_deep(void *arg)
{
    struct depth *d = arg;
    d->result = recurse(0, d->limit);
}

START_TEST(test_plain_stack)
{
    struct depth d = { 100, 0 };
    lwc_scont_attr_t attr = { .stack_kind = LWC_STACK_PLAIN, .stack_size = 20000 };
    lwc_scont_t *s = lwc_scont_new(go_deep, &d, &attr);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lwc_eval(s), LWC_OK);
    ck_assert_uint_eq(d.result, expected_sum(100));
    lwc_scont_release(s);
}
END_TEST

START_TEST(test_deep_recursion_big_stack)
{
    /* GHC T7636's 100 000 frames: fine with a stack that is big enough. */
    struct depth d = { 100000, 0 };
    lwc_scont_attr_t attr = { .stack_size = 64u << 20 };
    lwc_scont_t *s = lwc_scont_new(go_deep, &d, &attr);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lwc_eval(s), LWC_OK);
    ck_assert_uint_eq(d.result, expected_sum(100000));
    lwc_scont_release(s);
}
END_TEST

/* ---- many SConts alive at once ---------------------------------------------------------- */

struct many {
    unsigned n, ran, finished;
    lwc_scont_t *driver;
    lwc_scont_t **s;
    int failed;
    bool evens_first;           /* finish every other one first */
    int maps_before, maps_between; /* /proc/self/maps lines then */
};

static int map_count(void);

static lwc_scont_t *to_arg(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)tx; (void)self;
    *st = LWC_BLOCKED_ON_CONCDS;
    return arg;
}

static lwc_scont_t *back_to_env(lwc_tx_t *tx, lwc_scont_t *self, lwc_status_t why, void *env)
{
    (void)tx; (void)self; (void)why;
    return env;
}

static void member(void *arg)
{
    struct many *m = arg;
    m->ran++;
    lwc_switch(to_arg, m->driver);                      /* park, holding its stack */
    m->finished++;
}

static void driver(void *arg)
{
    struct many *m = arg;
    m->driver = lwc_scont_self();
    /* members inherit these: when one completes, the driver goes on */
    lwc_upcalls_t u = { back_to_env, NULL, m->driver };
    lwc_scont_set_upcalls(m->driver, &u);
    for (unsigned i = 0; i < m->n; i++) {
        if (!(m->s[i] = lwc_scont_new(member, m, NULL))) {
            m->failed = 1;
            return;
        }
        lwc_switch(to_arg, m->s[i]);
    }
    if (m->evens_first) {
        m->maps_before = map_count();
        for (unsigned i = 0; i < m->n; i += 2)
            lwc_switch(to_arg, m->s[i]);
        m->maps_between = map_count();
        for (unsigned i = 1; i < m->n; i += 2)
            lwc_switch(to_arg, m->s[i]);
    } else {
        for (unsigned i = 0; i < m->n; i++)
            lwc_switch(to_arg, m->s[i]);
    }
    lwc_scont_set_upcalls(m->driver, NULL);
}

static void run_many_in(struct many *mp)
{
    struct many m = *mp;
    unsigned n = m.n;
    m.s = calloc(n, sizeof(lwc_scont_t *));
    lwc_scont_t *d = lwc_scont_new(driver, &m, NULL);
    ck_assert_int_eq(lwc_eval(d), LWC_OK);
    ck_assert_int_eq(m.failed, 0);
    ck_assert_uint_eq(m.ran, n);
    ck_assert_uint_eq(m.finished, n);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(lwc_scont_status(NULL, m.s[i]), LWC_COMPLETED);
        lwc_scont_release(m.s[i]);
    }
    lwc_scont_release(d);
    free(m.s);
    *mp = m;
}

static void run_many(unsigned n)
{
    struct many m = { .n = n };
    run_many_in(&m);
}

START_TEST(test_a_million_sconts)
{
    /* The full million natively; valgrind and ASan track each stack.
     * ThreadSanitizer counts each SCont's fiber as a thread and dies past 8128. */
    run_many(LIGHT_RUN() || LWC_TSAN ? 2000 : SANITIZED ? 20000 : 1000000);
}
END_TEST

static int map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

START_TEST(test_finishing_splits_no_mappings)
{
    /* Note [Cold stacks] in substrate/stack.c: finishing every other one of
     * many live stacks, past what the pools keep, must not unmap them one by
     * one (each would split a mapping: a program with many threads would run
     * out of mappings), and a later run reuses them. */
    if (LWC_TSAN)
        return;                 /* more fibers than ThreadSanitizer allows, see above */
    unsigned n = 2 * 4096 + 2 * 3000;
    for (int run = 0; run < 2; run++) {
        struct many m = { .n = n, .evens_first = true };
        run_many_in(&m);
        ck_assert_int_lt(m.maps_between - m.maps_before, 100);
    }
}
END_TEST

START_TEST(test_mprotect_guards_are_rationed)
{
    /* Without MADV_GUARD_INSTALL every guard costs a mapping: past the ration the
     * stacks are plain, and creation never fails for want of mappings. */
    if (LIGHT_RUN() || LWC_TSAN)
        return;                 /* ThreadSanitizer: 8128 fibers at most, see above */
    pid_t pid = fork();
    if (pid == 0) {
        putenv("LWC_GUARD_NO_MADVISE=1");
        lwc_config_t cfg = { .ncaps = 1, .stack_size = 16 * 1024 };
        if (lwc_init(&cfg) != LWC_OK)
            _exit(3);
        run_many(SANITIZED ? 40000 : 100000);       /* past the ~28K ration either way */
        _exit(map_count() < 65530 ? 0 : 4);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stack");
    /* These fork, and a child must not inherit a running runtime (its worker
     * threads do not exist there): no fixture, each child starts its own. */
    TCase *tc = tcase_create("in a child");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_overflow_reported_madvise_guard);
    tcase_add_test(tc, test_overflow_reported_mprotect_guard);
    tcase_add_test(tc, test_mprotect_guards_are_rationed);
    suite_add_tcase(s, tc);
    tc = tcase_create("stacks");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_plain_stack);
    tcase_add_test(tc, test_deep_recursion_big_stack);
    tcase_add_test(tc, test_a_million_sconts);
    tcase_add_test(tc, test_finishing_splits_no_mappings);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
