/* Thin wrappers over futex(2), and the spin hint used before sleeping. */
#ifndef LWC_SUBSTRATE_FUTEX_H
#define LWC_SUBSTRATE_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void lwc_futex_wait(_Atomic uint32_t *w, uint32_t expect)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
}

/* Wait while *w == expect, until CLOCK_MONOTONIC reads `deadline` ns at most.
 * False once the deadline has passed; true for a wake-up (or a spurious one). */
static inline bool lwc_futex_wait_until(_Atomic uint32_t *w, uint32_t expect, uint64_t deadline)
{
    struct timespec ts = { (time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u) };
    long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_BITSET_PRIVATE, expect, &ts, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return !(r == -1 && errno == ETIMEDOUT);
}

static inline void lwc_futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void lwc_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* How long a waiter spins before it sleeps in the kernel: long enough to catch a
 * wake-up from the other core in a ping-pong, short enough not to burn a core. */
#define LWC_SPIN_BOUND 2000

/* One step of a wait for another thread that is known to be about to act (it
 * holds a short lock, or is saving its registers).  If that thread has been
 * preempted, spinning cannot help it: every so often give the core away. */
static inline void lwc_spin_step(unsigned i)
{
    if ((i & 255) == 255)
        sched_yield();
    else
        lwc_cpu_relax();
}

#endif
