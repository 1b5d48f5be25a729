/* What the loop scheduler costs its host, for `make bench`: a tick that finds
 * nothing to do, a token's settle-to-resume on the host's thread (resolve,
 * tick, the thread runs and awaits the next), and the same settled from
 * another OS thread, which wakes the host through an eventfd (the latency
 * from lwc_token_resolve to the thread running).  Yield, ring and pingpong on
 * the loop are tools/sched-bench-loop's.  Median of 3 runs; one table row
 * and one "BENCH {...}" line each.
 *
 *   tools/loop-bench [--size N] [tick|token|token_thread] */
#include "config.h"

#include <lwc/loop.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "timing.h"

static long n_ticks = 2000000, n_tokens = 500000, n_thread = 20000;
static int runs = 3;

static void report(const char *name, double value, const char *unit)
{
    printf("%-28s %12.2f %-4s\n", name, value, unit);
    printf("BENCH {\"name\":\"%s\",\"%s\":%.3f}\n", name, unit, value);
    fflush(stdout);
}

static void check(int err, const char *what)
{
    if (err != LWC_OK) {
        fprintf(stderr, "loop_bench: %s: %s\n", what, lwc_strerror(err));
        exit(1);
    }
}

static double empty_ticks(long n)
{
    lwc_loop_t *l;
    check(lwc_loop_new(&l, NULL), "lwc_loop_new");
    lwc_loop_status_t st;
    MEASURE_START();
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        lwc_loop_tick(l, LWC_NEVER, &st);
    double t = now_ns() - t0;
    MEASURE_STOP();
    check(lwc_loop_free(l), "lwc_loop_free");
    return t / n;
}

/* ---- tokens -------------------------------------------------------------------- */

static lwc_token_t *volatile current;
static long awaited;

static lwc_word_t awaiter(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        lwc_token_t *t = lwc_token_new();
        current = t;
        lwc_word_t v;
        check(lwc_token_await(t, &v), "lwc_token_await");
        lwc_token_free(t);
        awaited++;
    }
    current = NULL;
    return 0;
}

/* The host resolves each token itself, then ticks: the thread runs, takes a
 * new token and awaits it. */
static double tokens_here(long n)
{
    lwc_loop_t *l;
    check(lwc_loop_new(&l, NULL), "lwc_loop_new");
    awaited = 0;
    lwc_loop_status_t st;
    int err = lwc_loop_eval_async(l, awaiter, (void *)(intptr_t)n, NULL, NULL, NULL);
    if (err != LWC_EAGAIN)
        check(err, "lwc_loop_eval_async");
    MEASURE_START();
    double t0 = now_ns();
    while (current) {
        lwc_token_resolve(current, 1);
        lwc_loop_tick(l, LWC_NEVER, &st);
    }
    double t = now_ns() - t0;
    MEASURE_STOP();
    check(lwc_loop_free(l), "lwc_loop_free");
    return t / n;
}

/* A pthread resolves each token; the host sleeps in poll on the wake eventfd,
 * ticks, and the thread records when it ran. */
static int wakefd;
static _Atomic double resolved_at;
static double latency_sum;
static _Atomic long turn;

static void wake(void *ud)
{
    (void)ud;
    uint64_t one = 1;
    ssize_t rc = write(wakefd, &one, sizeof one);
    (void)rc;
}

static lwc_word_t timed_awaiter(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        lwc_token_t *t = lwc_token_new();
        current = t;
        atomic_store(&turn, i + 1);
        lwc_word_t v;
        check(lwc_token_await(t, &v), "lwc_token_await");
        latency_sum += now_ns() - atomic_load(&resolved_at);
        lwc_token_free(t);
    }
    current = NULL;
    atomic_store(&turn, -1);
    return 0;
}

static void *resolver(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 1; i <= n; i++) {
        while (atomic_load(&turn) != i)
            ;                                   /* the next token is not awaited yet */
        lwc_token_t *t = current;
        atomic_store(&resolved_at, now_ns());
        lwc_token_resolve(t, 1);
        while (atomic_load(&turn) == i)
            ;
    }
    return NULL;
}

static double tokens_from_thread(long n)
{
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    lwc_loop_t *l;
    check(lwc_loop_new(&l, &(lwc_loop_config_t){ .wake = wake }), "lwc_loop_new");
    latency_sum = 0;
    atomic_store(&turn, 0);
    pthread_t p;
    pthread_create(&p, NULL, resolver, (void *)(intptr_t)n);
    lwc_loop_status_t st;
    int err = lwc_loop_eval_async(l, timed_awaiter, (void *)(intptr_t)n, NULL, NULL, NULL);
    if (err != LWC_EAGAIN)
        check(err, "lwc_loop_eval_async");
    while (atomic_load(&turn) != -1) {
        struct pollfd pf = { wakefd, POLLIN, 0 };
        poll(&pf, 1, -1);
        uint64_t v;
        ssize_t rc = read(wakefd, &v, sizeof v);
        (void)rc;
        lwc_loop_tick(l, LWC_NEVER, &st);
    }
    pthread_join(p, NULL);
    check(lwc_loop_free(l), "lwc_loop_free");
    close(wakefd);
    return latency_sum / n;
}

static void figure(const char *name, double (*fn)(long), long n, const char *unit)
{
    double v[3];
    for (int r = 0; r < runs; r++)
        v[r] = fn(n);
    report(name, median(v, runs), unit);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--size") == 0) {
        long n = atol(argv[2]);
        if (n <= 0) {
            fprintf(stderr, "loop_bench: --size takes a positive count\n");
            return 2;
        }
        n_ticks = n_tokens = n_thread = n;
        runs = 1;
        argc -= 2, argv += 2;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    if (!only || !strcmp(only, "tick"))
        figure("loop_empty_tick", empty_ticks, n_ticks, "ns");
    if (!only || !strcmp(only, "token"))
        figure("loop_token_settle_resume", tokens_here, n_tokens, "ns");
    if (!only || !strcmp(only, "token_thread"))
        figure("loop_token_from_pthread", tokens_from_thread, n_thread, "ns");
    return 0;
}
