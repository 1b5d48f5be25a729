/* Scheduler benchmarks for `make bench`: compiled once, linked against each
 * scheduler library (tools/sched-bench-rr, tools/sched-bench-ws), run with
 * LWC_CAPS=1 and 2.  Uses only lwc/sched.h and lwc/mvar.h.  Each figure is the
 * median of 3 runs (--quick: at a tenth of the size); one table row and one "BENCH {...}" line each. */
#include <lwc/detect.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "timing.h"

/* --quick: a tenth of each size (the showcase); the figures that count come
 * from the full sizes. */
static int runs = 3;
static long yields = 2000000, spawns = 1000000, hops = 10000000, rounds = 1000000;
static uint64_t leaves = 1000000;
static unsigned fib_n = 30;

static const char *caps_env(void)
{
    const char *c = getenv("LWC_CAPS");
    return c && *c ? c : "1";
}

static void report(const char *what, double value, const char *unit, const char *target)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s_%scap", what, lwc_sched_name(), caps_env());
    printf("%-28s %12.2f %-4s %s\n", name, value, unit, target);
    printf("BENCH {\"name\":\"%s\",\"%s\":%.3f,\"target\":\"%s\"}\n", name, unit, value, target);
    fflush(stdout);
}

static void check(int err, const char *what)
{
    if (err != LWC_OK) {
        fprintf(stderr, "sched_bench: %s failed: %s\n", what, lwc_strerror(err));
        exit(1);
    }
}

/* Run fn under lwc_main `runs` times; the median wall time in ns. */
static double time_main(void (*fn)(void *), void *arg)
{
    double t[3];
    for (int r = 0; r < runs; r++) {
        double t0 = now_ns();
        check(lwc_main(fn, arg), "lwc_main");
        t[r] = now_ns() - t0;
    }
    return median(t, runs);
}

/* ---- yield: two threads, per yield --------------------------------------------------- */

static void yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < yields; i++)
        lwc_yield();
}

static void yield_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *a, *b;
    MEASURE_START();
    check(lwc_spawn_joinable(yielder, NULL, &a), "spawn");
    check(lwc_spawn_joinable(yielder, NULL, &b), "spawn");
    check(lwc_join(a), "join");
    check(lwc_join(b), "join");
    MEASURE_STOP();
}

/* ---- spawn: spawn, run and finish 1M threads --------------------------------------- */

static void nothing(void *arg) { (void)arg; }

/* In batches, yielding between them so that each batch runs and finishes and
 * its stacks go back to the pool: 1M threads, never 1M alive at once. */
#define BATCH 1000

static void spawn_main(void *arg)
{
    (void)arg;
    MEASURE_START();
    for (long i = 0; i < spawns; i++) {
        check(lwc_spawn(nothing, NULL), "spawn");
        if (i % BATCH == BATCH - 1)
            lwc_yield();
    }
    lwc_yield();                                /* the last batch runs */
    MEASURE_STOP();
    /* lwc_main returns once the runnable threads have run */
}

/* ---- ring: 503 threads, a token through MVars ------------------------------------------ */

#define RING 503

static lwc_mvar_t *ring[RING];

static void ring_member(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    for (;;) {
        lwc_word_t v;
        check(lwc_mvar_take(ring[i], &v), "take");
        check(lwc_mvar_put(ring[(i + 1) % RING], v ? v - 1 : 0), "put");
        if (v == 0)
            return;                             /* 0 goes round once more, ending everyone */
    }
}

static void ring_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *j[RING];
    for (uintptr_t i = 0; i < RING; i++)
        ring[i] = lwc_mvar_new();
    for (uintptr_t i = 0; i < RING; i++)
        check(lwc_spawn_joinable(ring_member, (void *)i, &j[i]), "spawn");
    MEASURE_START();
    check(lwc_mvar_put(ring[0], (lwc_word_t)hops), "put");
    for (uintptr_t i = 0; i < RING; i++)
        check(lwc_join(j[i]), "join");
    MEASURE_STOP();
    /* Cleared, not left dangling: a freed MVar goes back to a pool and is the
     * next lwc_mvar_new's, and the detector follows this static array to it
     * (the gc figure's blocked threads would be found reachable). */
    for (uintptr_t i = 0; i < RING; i++) {
        lwc_mvar_free(ring[i]);
        ring[i] = NULL;
    }
}

/* ---- pingpong: two threads, two MVars, per round trip -------------------------------------- */

static lwc_mvar_t *ping, *pong;

static void ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        lwc_word_t v;
        check(lwc_mvar_take(ping, &v), "take");
        check(lwc_mvar_put(pong, v), "put");
    }
}

static void pingpong_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *j;
    MEASURE_START();
    check(lwc_spawn_joinable(ponger, NULL, &j), "spawn");
    for (long i = 0; i < rounds; i++) {
        lwc_word_t v;
        check(lwc_mvar_put(ping, (lwc_word_t)i), "put");
        check(lwc_mvar_take(pong, &v), "take");
    }
    check(lwc_join(j), "join");
    MEASURE_STOP();
}

/* ---- skynet: a tree of 1M leaves, 10 children per node ---------------------------------------- */

struct sky { lwc_mvar_t *out; uint64_t num, size; };

static void skynet(void *arg)
{
    struct sky *s = arg;
    if (s->size == 1) {
        check(lwc_mvar_put(s->out, s->num), "put");
        free(s);
        return;
    }
    lwc_mvar_t *mine = lwc_mvar_new();
    uint64_t step = s->size / 10;
    for (uint64_t i = 0; i < 10; i++) {
        struct sky *c = malloc(sizeof *c);
        *c = (struct sky){ mine, s->num + i * step, step };
        check(lwc_spawn(skynet, c), "spawn");
    }
    uint64_t sum = 0;
    for (int i = 0; i < 10; i++) {
        lwc_word_t v;
        check(lwc_mvar_take(mine, &v), "take");
        sum += v;
    }
    lwc_mvar_free(mine);
    check(lwc_mvar_put(s->out, sum), "put");
    free(s);
}

static void skynet_main(void *arg)
{
    uint64_t *result = arg;
    lwc_mvar_t *out = lwc_mvar_new();
    struct sky *root = malloc(sizeof *root);
    *root = (struct sky){ out, 0, leaves };
    skynet(root);
    lwc_word_t v;
    check(lwc_mvar_take(out, &v), "take");
    *result = v;
    lwc_mvar_free(out);
}

/* ---- gc: one detection pass over 100 000 blocked threads ------------------------------------- */

static long gc_threads = 100000;
static _Atomic long gc_started;
static lwc_mvar_t **gc_kept;                 /* reachable run: an lwc_alloc array keeps them */

static void gc_blocker(void *arg)
{
    lwc_mvar_t *m = lwc_mvar_new();
    if (gc_kept)
        gc_kept[(intptr_t)arg] = m;
    gc_started++;
    lwc_word_t v;
    lwc_mvar_take(m, &v);                   /* woken by the pass, or by the put below */
    lwc_mvar_free(m);
}

static double gc_pass_ns;

static void gc_main(void *arg)
{
    bool reachable = arg != NULL;
    gc_started = 0;
    gc_kept = reachable ? lwc_alloc(gc_threads * sizeof *gc_kept) : NULL;
    for (long i = 0; i < gc_threads; i++)
        check(lwc_spawn(gc_blocker, (void *)(intptr_t)i), "spawn");
    while (gc_started < gc_threads)
        check(lwc_yield(), "yield");
    for (int i = 0; i < 10; i++)
        check(lwc_yield(), "yield");        /* the last ones reach their take */
    double t0 = now_ns();
    int woken = lwc_gc();
    gc_pass_ns = now_ns() - t0;
    if (woken != (reachable ? 0 : gc_threads)) {
        fprintf(stderr, "sched_bench: the pass woke %d of %ld\n", woken, gc_threads);
        exit(1);
    }
    if (reachable) {
        for (long i = 0; i < gc_threads; i++)
            check(lwc_mvar_put(gc_kept[i], 1), "put");
        lwc_free(gc_kept);
        gc_kept = NULL;
    }
}

static double time_gc_pass(bool reachable)
{
    double t[3];
    setenv("LWC_STACK_SIZE", "65536", 1);
    for (int r = 0; r < runs; r++) {
        check(lwc_main(gc_main, reachable ? (void *)1 : NULL), "lwc_main");
        t[r] = gc_pass_ns;
    }
    unsetenv("LWC_STACK_SIZE");
    return median(t, runs);
}

/* ---- fib(30): a joinable spawn per call, against serial C ----------------------------------- */

struct fib { unsigned n; uint64_t r; };

static void fib_spawning(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    struct fib a = { f->n - 1, 0 }, b = { f->n - 2, 0 };
    lwc_joinable_t *j;
    check(lwc_spawn_joinable(fib_spawning, &a, &j), "spawn");
    fib_spawning(&b);
    check(lwc_join(j), "join");
    f->r = a.r + b.r;
}

static __attribute__((noinline)) uint64_t fib_serial(unsigned n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* Is figure x in the comma-separated list? */
static bool named(const char *list, const char *x)
{
    size_t n = strlen(x);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, x, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        yields /= 10, spawns /= 10, hops /= 10, rounds /= 10, leaves /= 10, gc_threads /= 10;
        fib_n = 22;
        argc--, argv++;
    }
    /* --size N: one run of every figure at size N (yields per thread, spawns,
     * hops, round trips, leaves, blocked threads), for
     * tools/bench-instr.sh, which counts instructions at two sizes. */
    if (argc > 2 && strcmp(argv[1], "--size") == 0) {
        long n = atol(argv[2]);
        if (n <= 0) {
            fprintf(stderr, "sched_bench: --size takes a positive count\n");
            return 2;
        }
        yields = spawns = hops = rounds = gc_threads = n;
        leaves = (uint64_t)n;
        runs = 1;
        argc -= 2, argv += 2;
    }
    const char *only = argc > 1 ? argv[1] : NULL;     /* a figure, or several: "ring,gc" */
#define WANT(x) (!only || named(only, x))
    if (WANT("yield"))
        report("yield", time_main(yield_main, NULL) / (2.0 * yields), "ns", "<= 20 ns (rr)");
    if (WANT("spawn"))
        report("spawn", time_main(spawn_main, NULL) / spawns, "ns", "<= 45 ns (rr)");
    if (WANT("ring"))
        report("ring", time_main(ring_main, NULL) / hops, "ns", "<= 30 ns/hop");
    if (WANT("pingpong")) {
        ping = lwc_mvar_new();
        pong = lwc_mvar_new();
        report("pingpong", time_main(pingpong_main, NULL) / rounds, "ns", "<= 60 ns");
        lwc_mvar_free(ping);
        lwc_mvar_free(pong);
        ping = pong = NULL;                     /* as ring's: not left dangling */
    }
    if (WANT("skynet")) {
        uint64_t sum = 0;
        double ns = time_main(skynet_main, &sum);
        if (sum != leaves * (leaves - 1) / 2) {
            fprintf(stderr, "sched_bench: skynet summed %llu\n", (unsigned long long)sum);
            return 1;
        }
        report("skynet", ns / 1e9, "s", "<= 0.25 s (ws, 2 caps)");
    }
    if (WANT("gc")) {
        report("gc_unreachable", time_gc_pass(false) / 1e6, "ms", "<= 100 ms (100k blocked)");
        report("gc_reachable", time_gc_pass(true) / 1e6, "ms", "");
    }
    if (WANT("fib")) {
        struct fib f = { fib_n, 0 };
        /* The fastest of five, before the runtime starts threads: one run of
         * a few ms varies by half, and more beside idle capabilities. */
        uint64_t r = 0;
        double serial = 0;
        for (int i = 0; i < 5; i++) {
            double t0 = now_ns();
            r = fib_serial(fib_n);
            double t = now_ns() - t0;
            serial = i == 0 || t < serial ? t : serial;
        }
        double ns = time_main(fib_spawning, &f);
        if (f.r != r) {
            fprintf(stderr, "sched_bench: fib(%u) = %llu, not %llu\n", fib_n,
                    (unsigned long long)f.r, (unsigned long long)r);
            return 1;
        }
        char name[32];
        snprintf(name, sizeof name, "fib%u", fib_n);
        report(name, ns / 1e9, "s", "");
        snprintf(name, sizeof name, "fib%u_vs_serial", fib_n);
        report(name, ns / serial, "x", "<= 15x (1 cap)");
    }
    return 0;
}
