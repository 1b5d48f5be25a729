/* make bench's foreign-call rows (liblwc-ffi, on rr): a call of int32_t
 * f(int32_t) through a signature, unsafe and safe; lwc_call_safe of an
 * empty function (the fast path: the capability is still there); how long
 * a call whose capability was handed on takes to come back (the slow
 * path); an in-call from a plain pthread; a callback from inside a safe
 * call.  `--size N` for tools/bench-instr.sh, which counts between the
 * MEASURE marks. */
#include "config.h"

#include <lwc/ffi.h>
#include <lwc/rr.h>
#include <lwc/sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "timing.h"

static long calls = 1000000;

static __attribute__((noinline)) int32_t same(int32_t x)
{
    __asm__ __volatile__("");
    return x;
}

typedef int (*ffi_call_fn)(const lwc_ffi_sig_t *, void (*)(void), void *, void **);

/* lwc_ffi_call_unsafe or lwc_ffi_call of same(1), `calls` times. */
static double bench_ffi(ffi_call_fn call)
{
    lwc_ffi_kind_t k = LWC_FFI_SINT32;
    lwc_ffi_sig_t *sig;
    if (lwc_ffi_sig_new(&sig, LWC_FFI_SINT32, 1, &k) != LWC_OK)
        return -1;
    int32_t a = 1, r = 0, sum = 0;
    void *args[] = { &a };
    MEASURE_START();
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        call(sig, (void (*)(void))same, &r, args);
        sum += r;
    }
    double t = now_ns() - t0;
    MEASURE_STOP();
    lwc_ffi_sig_free(sig);
    return sum == (int32_t)calls ? t / (double)calls : -1;
}

static __attribute__((noinline)) void *empty(void *arg)
{
    __asm__ __volatile__("");
    return arg;
}

static double bench_call_safe(void)
{
    long sum = 0;
    MEASURE_START();
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        void *r;
        lwc_call_safe(empty, (void *)1, &r);
        sum += (long)r;
    }
    double t = now_ns() - t0;
    MEASURE_STOP();
    return sum == calls ? t / (double)calls : -1;
}

/* The slow path: the callee waits until another thread has run, which on
 * one capability means the capability was handed on, and notes when it
 * returns; the caller, back on a capability, measures from there. */
static atomic_bool other_ran, slow_over;
static double returned_at;

static void *wait_taken(void *arg)
{
    while (!atomic_load(&other_ran))
        __asm__ __volatile__("pause");
    atomic_store(&other_ran, false);
    returned_at = now_ns();
    return arg;
}

static void other(void *arg)
{
    (void)arg;
    while (!atomic_load(&slow_over)) {
        atomic_store(&other_ran, true);
        lwc_yield();
    }
}

static double bench_slow(void)
{
    lwc_joinable_t *j;
    atomic_store(&slow_over, false);
    if (lwc_spawn_joinable(other, NULL, &j) != LWC_OK)
        return -1;
    long n = calls / 1000 ? calls / 1000 : 1;
    double *v = calloc((size_t)n, sizeof *v);
    for (long i = 0; v && i < n; i++) {
        lwc_call_safe(wait_taken, NULL, NULL);
        v[i] = now_ns() - returned_at;
    }
    atomic_store(&slow_over, true);
    lwc_join(j);
    double m = v ? median(v, (int)n) : -1;
    free(v);
    return m;
}

/* How long a blocked call holds up the capability's other threads: from
 * the callee's start to another thread running (lazy: the monitor's
 * period; eager: a worker's wake-up). */
static double began_at;
static atomic_bool handed;

static void *block_until_handed(void *arg)
{
    began_at = now_ns();
    while (!atomic_load(&handed))
        __asm__ __volatile__("pause");
    return arg;
}

static void note_handed(void *arg)
{
    atomic_store(&handed, true);
    *(double *)arg = now_ns() - began_at;
}

static double bench_handoff(void)
{
    long n = calls / 1000 ? calls / 1000 : 1;
    double *v = calloc((size_t)n, sizeof *v);
    for (long i = 0; v && i < n; i++) {
        lwc_joinable_t *j;
        atomic_store(&handed, false);
        if (lwc_spawn_joinable(note_handed, &v[i], &j) != LWC_OK)
            return -1;
        lwc_call_safe(block_until_handed, NULL, NULL);
        lwc_join(j);
    }
    double m = v ? median(v, (int)n) : -1;
    free(v);
    return m;
}

/* Callbacks: a closure int32_t cb(int32_t) whose handler returns its
 * argument, called from inside a safe call (nested: the SCont takes its
 * capability back for the handler) and from a plain pthread (an in-call). */
static void echo(void *ret, void **args, void *ud)
{
    (void)ud;
    memcpy(ret, args[0], sizeof(int32_t));
}

static int32_t (*echo_code)(int32_t);
static long echo_calls;

static void *call_echo_many(void *arg)
{
    long sum = 0;
    for (long i = 0; i < echo_calls; i++)
        sum += echo_code(1);
    *(long *)arg = sum;
    return NULL;
}

static double bench_callback(bool from_pthread)
{
    lwc_ffi_kind_t k = LWC_FFI_SINT32;
    lwc_ffi_sig_t *sig;
    lwc_ffi_closure_t *c;
    void (*code)(void);
    if (lwc_ffi_sig_new(&sig, LWC_FFI_SINT32, 1, &k) != LWC_OK ||
        lwc_ffi_closure_new(&c, sig, echo, NULL, &code) != LWC_OK)
        return -1;
    echo_code = (int32_t (*)(int32_t))code;
    echo_calls = from_pthread ? (calls / 20 ? calls / 20 : 1) : calls;
    long sum = 0;
    double t0 = now_ns();
    if (from_pthread) {
        pthread_t pt;
        pthread_create(&pt, NULL, call_echo_many, &sum);
        while (pthread_tryjoin_np(pt, NULL) != 0)  /* this thread's capability serves them */
            lwc_yield();
    } else {
        lwc_call_safe(call_echo_many, &sum, NULL);
    }
    double t = now_ns() - t0;
    lwc_ffi_closure_free(c);
    lwc_ffi_sig_free(sig);
    return sum == echo_calls ? t / (double)echo_calls : -1;
}

/* lwc_rr_incall from a plain pthread into the running rr instance. */
static atomic_long incall_sum;

static void add_one(void *arg)
{
    (void)arg;
    atomic_fetch_add(&incall_sum, 1);
}

static void *incall_many(void *arg)
{
    lwc_rr_t *rr = arg;
    for (long i = 0; i < echo_calls; i++)
        lwc_rr_incall(rr, add_one, NULL);
    return NULL;
}

static double bench_rr_incall(void)
{
    echo_calls = calls / 20 ? calls / 20 : 1;
    atomic_store(&incall_sum, 0);
    double t0 = now_ns();
    pthread_t pt;
    pthread_create(&pt, NULL, incall_many, lwc_rr_self());
    while (pthread_tryjoin_np(pt, NULL) != 0)
        lwc_yield();
    double t = now_ns() - t0;
    return atomic_load(&incall_sum) == echo_calls ? t / (double)echo_calls : -1;
}

static const char *only;

static void row(const char *name, double ns)
{
    printf("%-26s %8.1f ns\n", name, ns);
    printf("BENCH {\"name\":\"%s\",\"ns\":%.1f}\n", name, ns);
}

static bool wanted(const char *name)
{
    return !only || !strcmp(only, name);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (wanted("unsafe"))
        row("ffi_unsafe_call", bench_ffi(lwc_ffi_call_unsafe));
    if (wanted("safe"))
        row("ffi_safe_call", bench_ffi(lwc_ffi_call));
    if (wanted("call_safe"))
        row("call_safe_fast", bench_call_safe());
    if (wanted("slow"))
        row("call_safe_slow_return", bench_slow());
    if (wanted("handoff"))
        row("call_handoff_latency", bench_handoff());
    if (wanted("callback"))
        row("callback_in_safe_call", bench_callback(false));
    if (wanted("incall"))
        row("incall_from_pthread", bench_callback(true));
    if (wanted("rr_incall"))
        row("rr_incall_from_pthread", bench_rr_incall());
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "--size")) {
        calls = atol(argv[2]);
        argc -= 2, argv += 2;
    }
    only = argc > 1 ? argv[1] : NULL;
    setenv("LWC_CAPS", "1", 1);
    return lwc_main(bench_main, NULL) == LWC_OK ? 0 : 1;
}
