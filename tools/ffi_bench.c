/* make bench's foreign-call rows (liblwc-ffi): a call of int32_t f(int32_t)
 * through a signature, unsafe.  `--size N` for tools/bench-instr.sh, which
 * counts between the MEASURE marks. */
#include "config.h"

#include <lwc/ffi.h>
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

static double bench_unsafe(void)
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
        lwc_ffi_call_unsafe(sig, (void (*)(void))same, &r, args);
        sum += r;
    }
    double t = now_ns() - t0;
    MEASURE_STOP();
    lwc_ffi_sig_free(sig);
    return sum == (int32_t)calls ? t / (double)calls : -1;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "--size")) {
        calls = atol(argv[2]);
        argc -= 2, argv += 2;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    if (!only || !strcmp(only, "unsafe")) {
        double ns = bench_unsafe();
        printf("%-26s %8.1f ns\n", "ffi_unsafe_call", ns);
        printf("BENCH {\"name\":\"ffi_unsafe_call\",\"ns\":%.1f}\n", ns);
    }
    return 0;
}
