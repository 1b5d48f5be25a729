/* Timing helpers shared by the benchmark programs. */
#ifndef LWC_TOOLS_TIMING_H
#define LWC_TOOLS_TIMING_H

#include <stdlib.h>
#include <time.h>

/* tools/bench-instr.sh runs the benchmarks under callgrind uninstrumented,
 * and counts only between these two marks in each figure: the work itself,
 * without start-up, shut-down, threads spinning before they sleep, or a
 * detection pass that may run at the end when every capability idles at
 * once.  (config.h first, for LWC_VALGRIND.) */
#if LWC_VALGRIND
#include <valgrind/callgrind.h>
#define MEASURE_START() CALLGRIND_START_INSTRUMENTATION
#define MEASURE_STOP()  CALLGRIND_STOP_INSTRUMENTATION
#else
#define MEASURE_START() ((void)0)
#define MEASURE_STOP()  ((void)0)
#endif

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

#endif
