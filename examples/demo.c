/* One program, any scheduler.  This file is compiled once and the object is
 * linked twice: with -llwc-rr (examples/demo-rr) and with -llwc-ws
 * (examples/demo-ws).  It uses only lwc/sched.h, lwc/mvar.h and lwc/io.h, so
 * nothing in it knows which scheduler runs it.
 *
 * A pipeline of workers squares numbers passed through MVars, a ticker sleeps
 * beside it (sleep blocks only the sleeper), and fib(20) spawns a joinable
 * thread per call. */
#include <lwc/io.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define WORKERS 4
#define ITEMS   20000
#define STOP    0               /* the numbers squared are 1..ITEMS */
#define TICKS   5
#define TICK_NS 10000000ull     /* 10 ms */

static lwc_mvar_t *todo, *done;
static unsigned long long finished_at_tick[TICKS];
static atomic_ullong finished;         /* read by the ticker, maybe on another capability */

static void die(int err, const char *what)
{
    if (err != LWC_OK) {
        fprintf(stderr, "demo: %s: %s\n", what, lwc_strerror(err));
        exit(1);
    }
}

static void worker(void *arg)
{
    (void)arg;
    for (;;) {
        lwc_word_t v;
        die(lwc_mvar_take(todo, &v), "take");
        if (v == STOP)
            return;
        die(lwc_mvar_put(done, v * v), "put");
    }
}

static void ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < TICKS; i++) {
        die(lwc_sleep_ns(TICK_NS), "sleep");
        finished_at_tick[i] = atomic_load_explicit(&finished, memory_order_relaxed);
    }
}

struct fib { unsigned n; unsigned long r; };

static void fib(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->r = f->n;
        return;
    }
    struct fib a = { f->n - 1, 0 }, b = { f->n - 2, 0 };
    lwc_joinable_t *j;
    die(lwc_spawn_joinable(fib, &a, &j), "spawn");
    fib(&b);
    die(lwc_join(j), "join");
    f->r = a.r + b.r;
}

static void feeder(void *arg)
{
    (void)arg;
    for (lwc_word_t i = 1; i <= ITEMS; i++)
        die(lwc_mvar_put(todo, i), "put");
    for (int i = 0; i < WORKERS; i++)
        die(lwc_mvar_put(todo, STOP), "put");
}

static void demo_main(void *arg)
{
    (void)arg;
    lwc_joinable_t *w[WORKERS], *tick;
    todo = lwc_mvar_new();
    done = lwc_mvar_new();
    if (!todo || !done)
        die(LWC_ENOMEM, "lwc_mvar_new");
    die(lwc_spawn_joinable(ticker, NULL, &tick), "spawn");
    for (int i = 0; i < WORKERS; i++)
        die(lwc_spawn_joinable(worker, NULL, &w[i]), "spawn");
    die(lwc_spawn(feeder, NULL), "spawn");

    unsigned long long sum = 0;
    for (int i = 0; i < ITEMS; i++) {
        lwc_word_t v;
        die(lwc_mvar_take(done, &v), "take");
        sum += v;
        atomic_fetch_add_explicit(&finished, 1, memory_order_relaxed);
        if (i % 64 == 0)
            lwc_yield();        /* let the ticker see progress between its sleeps */
    }
    for (int i = 0; i < WORKERS; i++)
        die(lwc_join(w[i]), "join");
    struct fib f = { 20, 0 };
    fib(&f);
    die(lwc_join(tick), "join");
    lwc_mvar_free(todo);
    lwc_mvar_free(done);

    unsigned long long want = (unsigned long long)ITEMS * (ITEMS + 1) * (2 * ITEMS + 1) / 6;
    if (lwc_cap_count() == 0)           /* the loop's own host: no worker capability */
        printf("  %s on the thread that called lwc_main:\n", lwc_sched_name());
    else
        printf("  %s on %u capabilit%s:\n", lwc_sched_name(), lwc_cap_count(),
               lwc_cap_count() == 1 ? "y" : "ies");
    printf("    %d workers squared 1..%d through MVars: sum %llu (%s)\n", WORKERS, ITEMS, sum,
           sum == want ? "right" : "WRONG");
    printf("    a ticker slept %d x 10 ms meanwhile; squares done at each tick:", TICKS);
    for (int i = 0; i < TICKS; i++)
        printf(" %llu", finished_at_tick[i]);
    printf("\n    fib(20) with a joinable spawn per call: %lu (%s)\n", f.r,
           f.r == 6765 ? "right" : "WRONG");
    if (sum != want || f.r != 6765)
        exit(1);
}

int main(void)
{
    die(lwc_main(demo_main, NULL), "lwc_main");
    return 0;
}
