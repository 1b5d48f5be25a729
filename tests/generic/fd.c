/* fd waits (lwc_wait_fd, lwc_fd_close) on any scheduler library: only the
 * waiter blocks, readiness arrives whether the capabilities idle or are
 * busy, deadlines, hang-ups, closing, one waiter per direction, errors
 * thrown at a waiter, and a waiter is a root.  1 and 2 capabilities. */
#include "blocked.h"

#include <errno.h>
#include <fcntl.h>
#include <lwc/detect.h>
#include <lwc/exception.h>
#include <lwc/io.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void nonblocking_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* ---- many waiters beside a counter ------------------------------------------------- */

#define WAITERS_FULL 100
static unsigned nwaiters;
static int pipes[WAITERS_FULL][2];
static atomic_int waiting;

static void fd_reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    unsigned rev = 0;
    atomic_fetch_add(&waiting, 1);
    ck_assert_int_eq(lwc_wait_fd(pipes[i][0], LWC_FD_READ, LWC_NEVER, &rev), LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_READ);
    char c = 0;
    ck_assert_int_eq(read(pipes[i][0], &c, 1), 1);
    ck_assert_int_eq(c, 'a' + i % 26);
}

static void many_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *j[WAITERS_FULL];
    start_counter();
    for (unsigned i = 0; i < nwaiters; i++)
        ck_assert_int_eq(lwc_spawn_joinable(fd_reader, (void *)(intptr_t)i, &j[i]), LWC_OK);
    while (atomic_load(&waiting) < (int)nwaiters)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    counter_runs_on(100);
    for (unsigned i = nwaiters; i-- > 0;) {           /* in the reverse order */
        char c = (char)('a' + i % 26);
        ck_assert_int_eq(write(pipes[i][1], &c, 1), 1);
    }
    for (unsigned i = 0; i < nwaiters; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
    stop_counter();
}

START_TEST(test_many_waiters_beside_a_counter)
{
    use_caps(_i);
    nwaiters = LIGHT_RUN() ? 20 : WAITERS_FULL;
    for (unsigned i = 0; i < nwaiters; i++)
        nonblocking_pipe(pipes[i]);
    atomic_store(&waiting, 0);
    ck_assert_int_eq(lwc_main(many_main, NULL), LWC_OK);
    for (unsigned i = 0; i < nwaiters; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
}
END_TEST

/* ---- readiness from outside, capabilities idle or busy ----------------------------- */

static int outside[2];
static atomic_bool registered_flag;

static void *late_writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&registered_flag))
        usleep(1000);
    usleep(5000);                                   /* the waiter is asleep by now, mostly */
    ck_assert_int_eq(write(outside[1], "x", 1), 1);
    return NULL;
}

static atomic_bool spin_over;

static void spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_over))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

static void outside_main(void *arg)
{
    bool busy = arg != NULL;
    lwc_joinable_t *js[2] = { NULL, NULL };
    atomic_store(&spin_over, false);
    if (busy)                                       /* every capability kept busy */
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(lwc_spawn_joinable(spinner, NULL, &js[i]), LWC_OK);
    pthread_t pt;
    ck_assert_int_eq(pthread_create(&pt, NULL, late_writer, NULL), 0);
    atomic_store(&registered_flag, true);
    unsigned rev = 0;
    ck_assert_int_eq(lwc_wait_fd(outside[0], LWC_FD_READ, LWC_NEVER, &rev), LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_READ);
    atomic_store(&spin_over, true);
    for (int i = 0; i < 2; i++)
        if (js[i])
            ck_assert_int_eq(lwc_join(js[i]), LWC_OK);
    while (pthread_tryjoin_np(pt, NULL) != 0)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

START_TEST(test_ready_from_outside)
{
    use_caps(_i % 2);
    nonblocking_pipe(outside);
    atomic_store(&registered_flag, false);
    ck_assert_int_eq(lwc_main(outside_main, (void *)(intptr_t)(_i / 2)), LWC_OK);
    close(outside[0]);
    close(outside[1]);
}
END_TEST

/* ---- deadlines, hang-ups, closing, one waiter per direction ------------------------ */

static int ends[2];
static _Atomic(lwc_scont_t *) second;   /* the other waiter, once it runs */

static void second_reader(void *arg)
{
    int *got = arg;
    second = lwc_scont_self();
    *got = lwc_wait_fd(ends[0], LWC_FD_READ, LWC_NEVER, NULL);
}

static void semantics_main(void *arg)
{
    (void)arg;
    unsigned rev = 99;
    /* a deadline: nothing ready, revents 0, and not before it */
    nonblocking_pipe(ends);
    uint64_t deadline = lwc_clock_ns() + 5000000;
    ck_assert_int_eq(lwc_wait_fd(ends[0], LWC_FD_READ, deadline, &rev), LWC_OK);
    ck_assert_uint_eq(rev, 0);
    ck_assert_uint_ge(lwc_clock_ns(), deadline);
    /* passed already: one look, no switch */
    ck_assert_int_eq(lwc_wait_fd(ends[1], LWC_FD_WRITE, 0, &rev), LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_WRITE);
    /* one waiter per direction: a second reader is LWC_EBUSY */
    int got = 1;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(second_reader, &got, &j), LWC_OK);
    while (!second || lwc_scont_status(NULL, second) != LWC_BLOCKED_ON_CONCDS)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_wait_fd(ends[0], LWC_FD_READ, LWC_NEVER, &rev), LWC_EBUSY);
    /* a hang-up: the writer closes, the reader sees READ | HANGUP */
    close(ends[1]);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(got, LWC_OK);
    ck_assert_int_eq(lwc_wait_fd(ends[0], LWC_FD_READ, LWC_NEVER, &rev), LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_READ | LWC_FD_HANGUP);
    close(ends[0]);
    /* closing with lwc_fd_close wakes the waiter with LWC_ECLOSED */
    nonblocking_pipe(ends);
    second = NULL;
    got = 1;
    ck_assert_int_eq(lwc_spawn_joinable(second_reader, &got, &j), LWC_OK);
    while (!second || lwc_scont_status(NULL, second) != LWC_BLOCKED_ON_CONCDS)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_fd_close(ends[0]), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(got, LWC_ECLOSED);
    close(ends[1]);
    /* both directions of a socket at once, by two threads */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ends[0] = sv[0];
    second = NULL;
    ck_assert_int_eq(lwc_spawn_joinable(second_reader, &got, &j), LWC_OK);
    while (!second || lwc_scont_status(NULL, second) != LWC_BLOCKED_ON_CONCDS)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_wait_fd(sv[0], LWC_FD_WRITE, LWC_NEVER, &rev), LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_WRITE);
    ck_assert_int_eq(write(sv[1], "y", 1), 1);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(got, LWC_OK);
    close(sv[0]);
    close(sv[1]);
    /* bad input; a regular file is always ready */
    ck_assert_int_eq(lwc_wait_fd(-1, LWC_FD_READ, LWC_NEVER, &rev), LWC_EINVAL);
    ck_assert_int_eq(lwc_wait_fd(ends[1], LWC_FD_READ, LWC_NEVER, &rev), LWC_EINVAL);  /* closed */
    ck_assert_int_eq(lwc_wait_fd(0, 0, LWC_NEVER, &rev), LWC_EINVAL);
    ck_assert_int_eq(lwc_wait_fd(0, 0x2, LWC_NEVER, &rev), LWC_EINVAL);
    ck_assert_int_eq(lwc_fd_close(-1), LWC_EINVAL);
    FILE *file = tmpfile();                         /* a regular file, already unlinked */
    ck_assert_ptr_nonnull(file);
    ck_assert_int_eq(lwc_wait_fd(fileno(file), LWC_FD_READ | LWC_FD_WRITE, LWC_NEVER, &rev),
                     LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_READ | LWC_FD_WRITE);
    fclose(file);
}

START_TEST(test_deadline_hangup_close_busy)
{
    use_caps(_i);
    second = NULL;
    ck_assert_int_eq(lwc_main(semantics_main, NULL), LWC_OK);
    /* from a plain OS thread: poll(2) */
    int p[2];
    nonblocking_pipe(p);
    unsigned rev = 0;
    ck_assert_int_eq(lwc_wait_fd(p[1], LWC_FD_WRITE, LWC_NEVER, &rev), LWC_OK);
    ck_assert_uint_eq(rev, LWC_FD_WRITE);
    ck_assert_int_eq(lwc_wait_fd(p[0], LWC_FD_READ, lwc_clock_ns() + 1000000, &rev), LWC_OK);
    ck_assert_uint_eq(rev, 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- an error thrown at a waiter; a waiter is a root ------------------------------- */

#define THROWN (-2002)

static void thrown_waiter(void *arg)
{
    int *got = arg;
    second = lwc_scont_self();
    *got = lwc_wait_fd(ends[0], LWC_FD_READ, LWC_NEVER, NULL);
    /* unregistered: the same fd can be waited on again */
    unsigned rev = 0;
    ck_assert_int_eq(lwc_wait_fd(ends[0], LWC_FD_READ, lwc_clock_ns() + 1000000, &rev), LWC_OK);
    ck_assert_uint_eq(rev, 0);
}

static void taker_on(void *arg)
{
    lwc_word_t v;
    ck_assert_int_eq(lwc_mvar_take(arg, &v), LWC_OK);   /* never woken with an error */
    ck_assert_int_eq((int)v, 24);
}

static lwc_mvar_t *filled;                          /* set once it is put: to free it */

static void filler(void *arg)
{
    lwc_mvar_t *m = arg;
    unsigned rev = 0;
    ck_assert_int_eq(lwc_wait_fd(ends[0], LWC_FD_READ, LWC_NEVER, &rev), LWC_OK);
    ck_assert_int_eq(lwc_mvar_put(m, 24), LWC_OK);
    filled = m;
}

/* The MVar lives on in the two threads' frames only. */
static __attribute__((noinline)) void spawn_pair(lwc_joinable_t **jf, lwc_joinable_t **jt)
{
    lwc_mvar_t *m = lwc_mvar_new();
    ck_assert_int_eq(lwc_spawn_joinable(taker_on, m, jt), LWC_OK);
    ck_assert_int_eq(lwc_spawn_joinable(filler, m, jf), LWC_OK);
}

static void throw_root_main(void *arg)
{
    (void)arg;
    nonblocking_pipe(ends);
    int got = 1;
    second = NULL;
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(thrown_waiter, &got, &j), LWC_OK);
    while (!second || lwc_scont_status(NULL, second) != LWC_BLOCKED_ON_CONCDS)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_throw_to(second, THROWN), LWC_OK);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    ck_assert_int_eq(got, THROWN);
    /* a thread waiting on an fd keeps what it will fill alive */
    lwc_joinable_t *jf, *jt;
    filled = NULL;
    spawn_pair(&jf, &jt);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(lwc_gc(), 0);
    ck_assert_int_eq(write(ends[1], "z", 1), 1);
    ck_assert_int_eq(lwc_join(jf), LWC_OK);
    ck_assert_int_eq(lwc_join(jt), LWC_OK);
    lwc_mvar_free(filled);
    close(ends[0]);
    close(ends[1]);
}

START_TEST(test_throw_and_root)
{
    use_caps(_i);
    ck_assert_int_eq(lwc_main(throw_root_main, NULL), LWC_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(lwc_sched_name());
    TCase *tc = tcase_create("fd");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_many_waiters_beside_a_counter, 0, 2);
    tcase_add_loop_test(tc, test_ready_from_outside, 0, 4);
    tcase_add_loop_test(tc, test_deadline_hangup_close_busy, 0, 2);
    tcase_add_loop_test(tc, test_throw_and_root, 0, 2);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
