/* For tests that run on any scheduler library (tests/generic, tests/deadlock):
 * the capability count, and waiting until a thread has blocked. */
#ifndef LWC_TEST_BLOCKED_H
#define LWC_TEST_BLOCKED_H

#include "../unit/harness.h"

#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <stdbool.h>

static inline void use_caps(int i)
{
    setenv("LWC_CAPS", i ? "2" : "1", 1);
}

/* Keeps the scheduler's queue from running empty.  A capability that finds
 * nothing to run idles inside the switch_to_next of the thread it switches
 * from, whose blocking switch commits only once there is something to run:
 * until then the thread reads as running.  With one busy thread per
 * capability a blocking switch always finds one queued. */
static atomic_bool stop_busy;
static lwc_joinable_t *busy_j[2];

static inline void busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_busy))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

static inline void start_busy(void)
{
    atomic_store(&stop_busy, false);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(lwc_spawn_joinable(busy, NULL, &busy_j[i]), LWC_OK);
}

static inline void stop_busy_threads(void)
{
    atomic_store(&stop_busy, true);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(lwc_join(busy_j[i]), LWC_OK);
}

/* A thread that counts its turns until told to stop: the proof, in tests of
 * threads that block an OS thread or wait on fds, that the others run. */
static atomic_int counted;
static atomic_bool counting_over;
static lwc_joinable_t *counter_j;

static inline void counter(void *arg)
{
    (void)arg;
    while (!atomic_load(&counting_over)) {
        atomic_fetch_add(&counted, 1);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

static inline void start_counter(void)
{
    atomic_store(&counted, 0);
    atomic_store(&counting_over, false);
    ck_assert_int_eq(lwc_spawn_joinable(counter, NULL, &counter_j), LWC_OK);
}

/* Yield until the counter has counted n more turns. */
static inline void counter_runs_on(int n)
{
    int before = atomic_load(&counted);
    while (atomic_load(&counted) < before + n)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}

static inline void stop_counter(void)
{
    atomic_store(&counting_over, true);
    ck_assert_int_eq(lwc_join(counter_j), LWC_OK);
}

/* Yield until s is blocked on a data structure (start_busy first).  Only for
 * an s that blocks once and stays blocked until this thread acts. */
static inline void await_blocked(lwc_scont_t *s)
{
    while (lwc_scont_status(NULL, s) != LWC_BLOCKED_ON_CONCDS)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
}


/* A transaction that waits for the PVar arg to be non-zero. */
static inline lwc_word_t wait_nonzero(lwc_tx_t *tx, void *arg)
{
    lwc_word_t v = lwc_pvar_read(tx, arg);
    if (!v)
        lwc_tx_retry(tx);
    return v;
}

/* For the detector's tests (tests/deadlock): a pointer kept where a pass
 * cannot read it as one, so a root that holds it does not keep its target
 * alive. */
typedef struct { _Atomic uintptr_t bits; } hidden_t;
static inline void hide(hidden_t *h, const void *p) { atomic_store(&h->bits, ~(uintptr_t)p); }
static inline void *unhide(hidden_t *h) { return (void *)~atomic_load(&h->bits); }

/* A child that takes from a private empty MVar (nothing else can ever put
 * into it) and reports: the detector's simplest catch. */
static atomic_int private_done, private_err;

static inline void private_taker(void *arg)
{
    (void)arg;
    lwc_mvar_t *m = lwc_mvar_new();
    lwc_word_t v;
    atomic_store(&private_err, lwc_mvar_take(m, &v));
    lwc_mvar_free(m);
    atomic_store(&private_done, 1);
}

/* Each loop that runs passes until one finds what the test expects gives up
 * after this many passes in a row that woke nothing while nothing else moved
 * (*idle counts them; the caller zeroes it on progress of its own): a word
 * that keeps an SCont reachable by mistake (the detector is conservative)
 * then fails the test instead of hanging it. */
#define GC_PASSES_MAX 5000

static inline int gc_pass(int *idle)
{
    int got = lwc_gc();
    ck_assert_int_ge(got, 0);
    if (got) {
        *idle = 0;
        return got;
    }
    ck_assert_msg(++*idle <= GC_PASSES_MAX,
                  "%d passes in a row found nothing (LWC_GC_DEBUG=1 says what kept each "
                  "blocked SCont)", GC_PASSES_MAX);
    return 0;
}

/* Run passes, sleeping between them, until *count reaches n: deterministic in
 * what it waits for, whatever the timing.  How many SConts the passes woke. */
static inline int gc_until_count(atomic_int *count, int n)
{
    int woken = 0, idle = 0;
    while (atomic_load(count) < n) {
        int got = gc_pass(&idle);
        woken += got;
        ck_assert_int_eq(lwc_sleep_ns(1000000), LWC_OK);
    }
    return woken;
}

#endif
