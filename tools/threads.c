/* What a thread costs, for `make bench`: wall time and peak RSS of one
 * program, run in a process of its own so that the peak is its alone.
 * Compiled once, linked against each scheduler (tools/threads-rr,
 * tools/threads-ws), run with LWC_CAPS=1 or 2:
 *
 *   threads blocked N   N threads, each blocked on an MVar of its own, then
 *                       all released; the first thread waits for the last
 *   threads spawn N     N threads that each decrement a counter; the first
 *                       thread waits for the last (on one capability all N
 *                       are alive at once: none runs before the first waits)
 *
 * Prints one table row and one "BENCH {...}" line per figure. */
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "timing.h"

static long n;
static lwc_mvar_t **gates, *done;
static _Atomic long left;

static void check(int err, const char *what)
{
    if (err != LWC_OK) {
        fprintf(stderr, "threads: %s failed: %s\n", what, lwc_strerror(err));
        exit(1);
    }
}

static void gated_child(void *a)
{
    lwc_word_t v;
    check(lwc_mvar_take(gates[(long)a], &v), "take");
    check(lwc_mvar_put(done, 1), "put");
}

/* The program of issue 18, as a user wrote it. */
static void blocked_main(void *a)
{
    (void)a;
    gates = malloc((size_t)n * sizeof *gates);
    done = lwc_mvar_new();
    if (!gates || !done)
        check(LWC_ENOMEM, "malloc");
    for (long i = 0; i < n; i++)
        if (!(gates[i] = lwc_mvar_new()))
            check(LWC_ENOMEM, "lwc_mvar_new");
    for (long i = 0; i < n; i++)
        check(lwc_spawn(gated_child, (void *)i), "spawn");
    check(lwc_yield(), "yield");
    for (long i = 0; i < n; i++)
        check(lwc_mvar_put(gates[i], 1), "put");
    for (long i = 0; i < n; i++) {
        lwc_word_t v;
        check(lwc_mvar_take(done, &v), "take");
    }
    for (long i = 0; i < n; i++)
        lwc_mvar_free(gates[i]);
    lwc_mvar_free(done);
    free(gates);
}

static void counting_child(void *a)
{
    (void)a;
    if (atomic_fetch_sub_explicit(&left, 1, memory_order_acq_rel) == 1)
        check(lwc_mvar_put(done, 1), "put");
}

static void spawn_main(void *a)
{
    (void)a;
    if (!(done = lwc_mvar_new()))
        check(LWC_ENOMEM, "lwc_mvar_new");
    atomic_store(&left, n);
    for (long i = 0; i < n; i++)
        check(lwc_spawn(counting_child, NULL), "spawn");
    lwc_word_t v;
    check(lwc_mvar_take(done, &v), "take");
    lwc_mvar_free(done);
}

int main(int argc, char **argv)
{
    void (*fn)(void *) = NULL;
    if (argc == 3 && strcmp(argv[1], "blocked") == 0)
        fn = blocked_main;
    else if (argc == 3 && strcmp(argv[1], "spawn") == 0)
        fn = spawn_main;
    n = argc == 3 ? atol(argv[2]) : 0;
    if (!fn || n <= 0) {
        fprintf(stderr, "usage: threads blocked|spawn N\n");
        return 2;
    }
    double t0 = now_ns();
    check(lwc_main(fn, NULL), "lwc_main");
    double s = (now_ns() - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const char *caps = getenv("LWC_CAPS");
    char name[80];
    snprintf(name, sizeof name, "%s%ld_%s_%scap", argv[1], n, lwc_sched_name(),
             caps && *caps ? caps : "1");
    double mb = ru.ru_maxrss / 1024.0;
    printf("%-28s %9.2f s %9.1f MB peak RSS\n", name, s, mb);
    printf("BENCH {\"name\":\"%s\",\"s\":%.3f,\"peak_rss_mb\":%.1f}\n", name, s, mb);
    return 0;
}
