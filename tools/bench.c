/* lwc benchmarks: `make bench`.  Prints a table for people and one JSON line per
 * figure for machines ("BENCH {...}").  Each figure is the median of 5 runs on
 * this machine, in the same process as its peer where it has one.  Never run by
 * make check: speed is measured here, not asserted there. */
#include "config.h"

#include <lwc/lwc.h>
#include <lwc/trace.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "timing.h"
#include "../substrate/context.h"   /* the raw switch: a private primitive */

static int runs = 5;

static void report(const char *name, double ns, const char *target, const char *peer)
{
    printf("%-28s %9.2f ns   %-22s %s\n", name, ns, target, peer ? peer : "");
    printf("BENCH {\"name\":\"%s\",\"ns\":%.3f,\"target\":\"%s\"}\n", name, ns, target);
}

/* ---- raw context switch: lwc_ctx_swap against Boost's fcontext ------------------ */

/* Two call patterns, each measured for both switches in the same run (Note
 * [Returning from a switch] in substrate/context_x86_64.S): "one_site", every
 * context switching through one function as a runtime does (the target's
 * figure), and "two_sites", each context switching from its own loop. */

static long SWITCHES = 20000000L;
static lwc_ctx_t main_ctx, other_ctx;
static int two_sites;

static __attribute__((noinline)) void raw_swap(lwc_ctx_t *from, lwc_ctx_t *to)
{
    lwc_transfer_t t = lwc_ctx_switch(from, to, from);
    lwc_ctx_saved(t.data, t);
}

static void raw_other(lwc_transfer_t t, void *arg)
{
    (void)arg;
    lwc_ctx_saved(t.data, t);
    if (two_sites)
        for (;;)
            lwc_ctx_saved(&main_ctx, lwc_ctx_switch(&other_ctx, &main_ctx, &other_ctx));
    for (;;)
        raw_swap(&other_ctx, &main_ctx);
}

static double bench_raw_switch(void)
{
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    lwc_ctx_make(&other_ctx, stack, size, raw_other, NULL);
    raw_swap(&main_ctx, &other_ctx);        /* start it */
    double t0 = now_ns();
    if (two_sites)
        for (long i = 0; i < SWITCHES / 2; i++)
            lwc_ctx_saved(&other_ctx, lwc_ctx_switch(&main_ctx, &other_ctx, &main_ctx));
    else
        for (long i = 0; i < SWITCHES / 2; i++)
            raw_swap(&main_ctx, &other_ctx);
    double t = (now_ns() - t0) / SWITCHES;
    munmap(stack, size);
    return t;
}

#if HAVE_FCONTEXT
typedef void *fcontext_t;
typedef struct { fcontext_t fctx; void *data; } transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static __attribute__((noinline)) fcontext_t fctx_swap(fcontext_t to)
{
    return jump_fcontext(to, NULL).fctx;
}

static void fctx_other(transfer_t t)
{
    if (two_sites)
        for (;;)
            t = jump_fcontext(t.fctx, NULL);
    for (;;)
        t.fctx = fctx_swap(t.fctx);
}

static double bench_fcontext(void)
{
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fcontext_t other = make_fcontext(stack + size, size, fctx_other);
    double t0 = now_ns();
    if (two_sites)
        for (long i = 0; i < SWITCHES / 2; i++)
            other = jump_fcontext(other, NULL).fctx;
    else
        for (long i = 0; i < SWITCHES / 2; i++)
            other = fctx_swap(other);
    double t = (now_ns() - t0) / SWITCHES;
    munmap(stack, size);
    return t;
}
#endif

/* ---- lwc_switch between two SConts on one capability ------------------------------ */

static long SCONT_SWITCHES = 10000000L;
struct sw { lwc_scont_t *a, *b; double ns; lwc_pvar_t *done; };

static lwc_scont_t *to_arg(lwc_tx_t *tx, lwc_scont_t *self, void *arg, lwc_status_t *st)
{
    (void)tx; (void)self;
    *st = LWC_BLOCKED_ON_SCHED;
    return arg;
}

/* The two call patterns of the raw switch, at the level of lwc_switch: "own
 * loops", a and b each switch from a loop of their own, so every switch returns
 * to a call site the return stack did not predict; "same loop", both run
 * switch_loop, as every thread of a scheduler yields through one function. */
static void switch_loop(struct sw *s, lwc_scont_t *other)
{
    bool timing = other == s->b;
    if (timing)
        MEASURE_START();
    double t0 = now_ns();
    for (long i = 0; i < SCONT_SWITCHES / 2; i++)
        lwc_switch(to_arg, other);
    if (timing) {
        MEASURE_STOP();
        s->ns = (now_ns() - t0) / SCONT_SWITCHES;
        lwc_pvar_write(NULL, s->done, 1);
    }
}

static void same_a(void *arg)
{
    struct sw *s = arg;
    switch_loop(s, s->b);
}

static void same_b(void *arg)
{
    struct sw *s = arg;
    for (;;)
        switch_loop(s, s->a);
}

static void own_b(void *arg)
{
    struct sw *s = arg;
    for (;;)
        lwc_switch(to_arg, s->a);
}

static void own_a(void *arg)
{
    struct sw *s = arg;
    double t0 = now_ns();
    for (long i = 0; i < SCONT_SWITCHES / 2; i++)
        lwc_switch(to_arg, s->b);
    s->ns = (now_ns() - t0) / SCONT_SWITCHES;
    lwc_pvar_write(NULL, s->done, 1);
}

static lwc_word_t wait_done(lwc_tx_t *tx, void *arg)
{
    if (!lwc_pvar_read(tx, arg))
        lwc_tx_retry(tx);
    return 0;
}

static double switch_pair(void (*a)(void *), void (*b)(void *))
{
    struct sw s = { .done = lwc_pvar_new(0) };
    s.a = lwc_scont_new(a, &s, NULL);
    s.b = lwc_scont_new(b, &s, NULL);
    lwc_cap_start(s.a);
    lwc_atomically(wait_done, s.done, NULL);
    lwc_scont_release(s.a);
    lwc_scont_release(s.b);
    lwc_pvar_free(s.done);
    return s.ns;
}

static double bench_lwc_switch(void)
{
    return switch_pair(own_a, own_b);
}

static double bench_lwc_switch_same_loop(void)
{
    return switch_pair(same_a, same_b);
}

/* ---- one uncontended transaction ------------------------------------------------ */

/* The target's read+write transaction, and beside it an empty and a read-only
 * one: what every transaction pays whatever it does. */
static long TXS = 20000000L;
static lwc_word_t incr(lwc_tx_t *tx, void *arg)
{
    lwc_word_t v = lwc_pvar_read(tx, arg);
    lwc_pvar_write(tx, arg, v + 1);
    return v;
}

static lwc_word_t read_only(lwc_tx_t *tx, void *arg)
{
    return lwc_pvar_read(tx, arg);
}

static lwc_word_t empty(lwc_tx_t *tx, void *arg)
{
    (void)tx;
    (void)arg;
    return 0;
}

static double time_txs(lwc_tx_fn fn, lwc_word_t expect)
{
    lwc_pvar_t *pv = lwc_pvar_new(0);
    MEASURE_START();
    double t0 = now_ns();
    for (long i = 0; i < TXS; i++)
        lwc_atomically(fn, pv, NULL);
    double t = (now_ns() - t0) / TXS;
    MEASURE_STOP();
    if (lwc_pvar_peek(pv) != expect)
        fprintf(stderr, "bench: ptm lost an update\n");
    lwc_pvar_free(pv);
    return t;
}

static double bench_ptm(void)       { return time_txs(incr, (lwc_word_t)TXS); }
static double bench_ptm_read(void)  { return time_txs(read_only, 0); }
static double bench_ptm_empty(void) { return time_txs(empty, 0); }

/* ---- tracing: what an event costs while a trace records (lwc/trace.h) ---------- */

/* Traces are written to /dev/null, after the timed part.  Fewer operations
 * than untraced: every one is 32 bytes of buffer, and a line of JSON. */
static long MARKS = 1000000L;

static double bench_trace_mark(void)
{
    lwc_trace_start("/dev/null");
    MEASURE_START();
    double t0 = now_ns();
    for (long i = 0; i < MARKS; i++)
        lwc_trace_mark("bench");
    double t = (now_ns() - t0) / MARKS;
    MEASURE_STOP();
    lwc_trace_stop();
    return t;
}

static double bench_lwc_switch_traced(void)
{
    long untraced = SCONT_SWITCHES;
    SCONT_SWITCHES = MARKS;
    lwc_trace_start("/dev/null");
    double t = switch_pair(own_a, own_b);
    lwc_trace_stop();
    SCONT_SWITCHES = untraced;
    return t;
}

/* MXCSR status flags: set by any inexact floating-point result (printf of a
 * double sets them).  Note [FP control words] in substrate/context_x86_64.S. */
static void mxcsr_flags(int set)
{
#if defined(__x86_64__)
    unsigned m = _mm_getcsr() & ~0x3fu;
    _mm_setcsr(set ? m | 0x20u : m);
#else
    (void)set;
#endif
}

typedef double (*bench_fn)(void);

static double run(bench_fn fn)
{
    double v[5];
    for (int i = 0; i < runs; i++)
        v[i] = fn();
    return median(v, runs);
}

int main(int argc, char **argv)
{
    /* --size N: one run of each figure, N switches or transactions, for
     * tools/bench-instr.sh, which counts instructions at two sizes. */
    if (argc > 2 && strcmp(argv[1], "--size") == 0) {
        long n = atol(argv[2]);
        if (n <= 0) {
            fprintf(stderr, "bench: --size takes a positive count\n");
            return 2;
        }
        SWITCHES = SCONT_SWITCHES = TXS = MARKS = n;
        runs = 1;
        argc -= 2, argv += 2;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    lwc_config_t cfg = { .ncaps = 1 };
    if (lwc_init(&cfg) != LWC_OK)
        return 1;
    printf("%-28s %12s   %-22s %s\n", "benchmark", "median/op", "target", "peer, same run");
    if (!only || !strcmp(only, "switch")) {
        /* The raw switch in both call patterns (Note [Returning from a switch] in
         * substrate/context_x86_64.S), with MXCSR's status flags clear and set as
         * they are in any program that has done floating point. */
        for (int pattern = 0; pattern <= 2; pattern++) {
            static const char *const names[] = { "one_site", "one_site_fpflags", "two_sites" };
            char name[64], peer[64] = "(no Boost.Context)";
            two_sites = pattern == 2;
            mxcsr_flags(pattern == 1);
            double raw = run(bench_raw_switch);
#if HAVE_FCONTEXT
            mxcsr_flags(pattern == 1);
            double fctx = run(bench_fcontext);
            snprintf(peer, sizeof peer, "fcontext %.2f ns", fctx);
            snprintf(name, sizeof name, "fcontext_%s", names[pattern]);
            report(name, fctx, "(peer)", "Boost.Context 1.74");
#endif
            snprintf(name, sizeof name, "raw_switch_%s", names[pattern]);
            report(name, raw, pattern == 2 ? "(for comparison)" : "<= fcontext", peer);
        }
        mxcsr_flags(0);
        report("lwc_switch", run(bench_lwc_switch), "<= 15 ns", NULL);
        report("lwc_switch_same_loop", run(bench_lwc_switch_same_loop), "(for comparison)", NULL);
    }
    if (only && !strcmp(only, "lwc_switch"))
        report("lwc_switch_same_loop", run(bench_lwc_switch_same_loop), "(for comparison)", NULL);
    if (only && !strcmp(only, "ptm_read_write"))
        report("ptm_read_write_tx", run(bench_ptm), "<= 15 ns", NULL);
    if (!only || !strcmp(only, "ptm")) {
        report("ptm_read_write_tx", run(bench_ptm), "<= 15 ns", NULL);
        report("ptm_read_only_tx", run(bench_ptm_read), "(for comparison)", NULL);
        report("ptm_empty_tx", run(bench_ptm_empty), "(for comparison)", NULL);
    }
    if (!only || !strcmp(only, "trace")) {
        report("trace_mark", run(bench_trace_mark), "(an event, recording)", NULL);
        report("lwc_switch_traced", run(bench_lwc_switch_traced), "(lwc_switch, recording)",
               NULL);
    }
    lwc_shutdown();
    return 0;
}
