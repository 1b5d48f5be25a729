/* The loop scheduler inside a libuv loop (liblwc-loop-uv): uv_run serves
 * lwc's timers, fds and wakes, keeps going exactly while lwc has something
 * that could happen, and returns when nothing is left. */
#include "harness.h"
#include "loop_done.h"

#include <lwc/io.h>
#include <lwc/loop_uv.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <unistd.h>

static lwc_loop_t *attach(uv_loop_t *uv)
{
    lwc_loop_t *l;
    ck_assert_int_eq(uv_loop_init(uv), 0);
    ck_assert_int_eq(lwc_loop_new(&l, NULL), LWC_OK);
    ck_assert_int_eq(lwc_loop_uv_attach(l, uv), LWC_OK);
    return l;
}

static void detach(lwc_loop_t *l, uv_loop_t *uv)
{
    ck_assert_int_eq(lwc_loop_uv_detach(l), LWC_OK);
    ck_assert_int_eq(uv_run(uv, UV_RUN_DEFAULT), 0);   /* the close callbacks */
    ck_assert_int_eq(uv_loop_close(uv), 0);
    ck_assert_int_eq(lwc_loop_free(l), LWC_OK);
}

static lwc_word_t sleep_then_count(void *arg)
{
    lwc_word_t n = 0;
    for (int i = 0; i < 3; i++, n++)
        ck_assert_int_eq(lwc_sleep_ns((uint64_t)(uintptr_t)arg), LWC_OK);
    return n;
}

/* lwc's timers keep uv_run going, and it returns once they are done. */
START_TEST(test_timers)
{
    uv_loop_t uv;
    lwc_loop_t *l = attach(&uv);
    struct done d = { 0 };
    uint64_t start = lwc_clock_ns();
    ck_assert_int_eq(lwc_loop_eval_async(l, sleep_then_count, (void *)2000000, record_done, &d,
                                         NULL), LWC_EAGAIN);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.result, 3);
    ck_assert_uint_ge(lwc_clock_ns() - start, 6000000);
    detach(l, &uv);
}
END_TEST

static int pipefd[2];

static lwc_word_t read_pipe(void *arg)
{
    (void)arg;
    unsigned rev = 0;
    ck_assert_int_eq(lwc_wait_fd(pipefd[0], LWC_FD_READ, LWC_NEVER, &rev), LWC_OK);
    char c = 0;
    ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
    return (lwc_word_t)c;
}

static void write_pipe(uv_timer_t *t)
{
    ck_assert_int_eq(write(pipefd[1], "z", 1), 1);
    uv_close((uv_handle_t *)t, NULL);
}

/* An fd lwc waits on, made ready by a uv timer's callback. */
START_TEST(test_fds)
{
    uv_loop_t uv;
    lwc_loop_t *l = attach(&uv);
    ck_assert_int_eq(pipe(pipefd), 0);
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, read_pipe, NULL, record_done, &d, NULL), LWC_EAGAIN);
    uv_timer_t t;
    uv_timer_init(&uv, &t);
    uv_timer_start(&t, write_pipe, 5, 0);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.result, 'z');
    close(pipefd[0]);
    close(pipefd[1]);
    detach(l, &uv);
}
END_TEST

static lwc_token_t *tok;

static lwc_word_t await_tok(void *arg)
{
    (void)arg;
    lwc_word_t v = 0;
    ck_assert_int_eq(lwc_token_await(tok, &v), LWC_OK);
    return v + 1;
}

static void *resolve_later(void *arg)
{
    (void)arg;
    usleep(LIGHT_RUN() ? 100000 : 10000);
    ck_assert_int_eq(lwc_token_resolve(tok, 41), LWC_OK);
    return NULL;
}

/* A thread awaiting a token keeps uv_run going; a pthread settles it. */
START_TEST(test_token_from_pthread)
{
    uv_loop_t uv;
    lwc_loop_t *l = attach(&uv);
    tok = lwc_token_new();
    struct done d = { 0 };
    ck_assert_int_eq(lwc_loop_eval_async(l, await_tok, NULL, record_done, &d, NULL), LWC_EAGAIN);
    pthread_t p;
    ck_assert_int_eq(pthread_create(&p, NULL, resolve_later, NULL), 0);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);
    pthread_join(p, NULL);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_uint_eq(d.result, 42);
    lwc_token_free(tok);
    detach(l, &uv);
}
END_TEST

static void yielder(void *arg)
{
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    (*(int *)arg)++;
}

/* Runnable threads keep it going, a budget's worth of switches a turn. */
START_TEST(test_budget_and_misuse)
{
    uv_loop_t uv;
    lwc_loop_t *l = attach(&uv);
    ck_assert_int_eq(lwc_loop_uv_attach(l, &uv), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_uv_attach(NULL, &uv), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_uv_detach(NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_loop_uv_set_budget(l, LWC_NEVER, 10), LWC_OK);
    int finished = 0;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(lwc_loop_spawn(l, yielder, &finished), LWC_OK);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_NOWAIT), 1);   /* one turn, 10 switches: more to do */
    ck_assert_int_eq(finished, 0);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(finished, 4);
    detach(l, &uv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop_uv");
    TCase *tc = tcase_create("uv");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timers);
    tcase_add_test(tc, test_fds);
    tcase_add_test(tc, test_token_from_pthread);
    tcase_add_test(tc, test_budget_and_misuse);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
