/* SCont stacks: mapping, guard pages, pooling, and the overflow report. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/syscall.h>
#include <sys/uio.h>

#include "cache.h"
#include "internal.h"
#include "sanitize.h"
#if LWC_VALGRIND
#include <valgrind/valgrind.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102          /* Linux 6.13; glibc headers may lag */
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

/* Note [Guard pages]
 * ~~~~~~~~~~~~~~~~~~
 * Each guarded stack has one page below it that faults on access.  Where the
 * kernel has MADV_GUARD_INSTALL the guard is a page-table marker and adds no
 * mapping, so a million stacks cost no more VMAs than a million plain ones (the
 * kernel merges adjacent anonymous mappings).  Elsewhere a PROT_NONE page splits
 * the mapping into two VMAs, and vm.max_map_count (65530 by default) would stop
 * us at about 32K stacks: so mprotect guards are rationed to half the map count
 * less a reserve, and stacks past the ration are plain.  Pooled stacks keep their
 * guard: MADV_GUARD_INSTALL markers survive reuse, and so does PROT_NONE.
 *
 * An madvise that returns 0 is not proof: qemu-user, for one, accepts advice it
 * does not carry out.  So the first guard installed is probed once per process
 * (madv_guard, page_faults): a write(2) from the guard page into a pipe must fail with
 * EFAULT.  If it does not, lwc uses mprotect guards from then on. */
static size_t page_size;
static size_t default_size = 256 * 1024;
static _Atomic int madv_guard_works = 1;
enum { PROBE_NOT_YET, PROBE_FAULTS, PROBE_DOES_NOT };
static _Atomic int madv_guard_probed = PROBE_NOT_YET;   /* for the life of the process */
static _Atomic long mprotect_guards;
static long mprotect_budget = -1;
static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;

/* A free stack in a pool keeps this record at its top.  Pools: a cache per
 * OS thread in front of a depot of at most POOL_MAX stacks (cache.h). */
struct pool_entry {
    struct pool_entry *next;
    struct lwc_stack   st;
};

#define POOL_MAX 4096

static struct lwc_depot depot = LWC_DEPOT_INIT(POOL_MAX);
#define LINK offsetof(struct pool_entry, next)

/* Note [Stacks in batches]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * Each system call on a stack's memory costs microseconds, and an madvise
 * that drops pages also interrupts every other core that runs the process
 * to flush its TLB.  A new stack cost two (its mapping and its guard: Note
 * [Guard pages]), a cold one a third (Note [Cold stacks]).  So stacks of the
 * pooled kind are mapped STACK_BATCH at a time with one mmap, their guards
 * installed with one process_madvise(2) over a vector of ranges, and the
 * rest of the batch goes to the pool; and the stacks that go cold together
 * (the batch the depot has no room for) give their pages back with one
 * process_madvise as well.  Since Linux 6.13 process_madvise takes any
 * advice for the calling process.  Where it does not (an older kernel, a
 * seccomp filter, valgrind, which does not know the call), each range gets
 * an madvise of its own, as before: never worse.
 *
 * A batch is one mapping, so its stacks merge with their neighbours as
 * separately mapped ones did; they are unmapped apart only by a change of
 * the default size or by lwc_shutdown, in address order (Note [Cold
 * stacks]), so batches split no mapping while threads run.  A thread takes
 * a new batch only when the pools are empty: at most STACK_BATCH - 1 stacks
 * sit mapped and unused because of it, each with one page touched (its pool
 * record). */
#define STACK_BATCH 64

static struct {
    pthread_mutex_t lock;
    pid_t           pid;        /* whose pidfd `fd` is: a forked child opens its own */
    int             fd;         /* -1: process_madvise is not to be had */
} self_fd = { PTHREAD_MUTEX_INITIALIZER, 0, -1 };

/* A pidfd for this process, or -1. */
static int pidfd_self(void)
{
#if defined(SYS_pidfd_open) && defined(SYS_process_madvise)
#if LWC_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return -1;
#endif
    pthread_mutex_lock(&self_fd.lock);
    if (self_fd.pid != getpid()) {
        self_fd.pid = getpid();
        self_fd.fd = (int)syscall(SYS_pidfd_open, self_fd.pid, 0);
    }
    int fd = self_fd.fd;
    pthread_mutex_unlock(&self_fd.lock);
    return fd;
#else
    return -1;
#endif
}

/* The same advice for v[0..n): one system call if the kernel takes it so.
 * False if any range was refused. */
static bool advise_all(struct iovec *v, size_t n, int advice)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].iov_len;
#if defined(SYS_process_madvise)
    int fd = pidfd_self();
    if (fd >= 0 && syscall(SYS_process_madvise, fd, v, n, advice, 0) == (long)total)
        return true;
#endif
    bool all = true;
    for (size_t i = 0; i < n; i++)
        all &= madvise(v[i].iov_base, v[i].iov_len, advice) == 0;
    return all;
}

/* Note [Cold stacks]
 * ~~~~~~~~~~~~~~~~~~
 * A pooled stack that the depot has no room for is not unmapped: its pages go
 * back to the kernel (MADV_DONTNEED over all but the guard) and its record
 * goes on the cold list, from which lwc_stack_get takes once the pools are
 * empty.  The reason is vm.max_map_count.  Stacks mapped one after another
 * merge into a few large mappings, so a million of them alive cost a handful
 * of the 65530 mappings a process may have.  Unmapping one that lies among
 * live ones splits its mapping in two: a program that had a million threads
 * and finished most of them in no particular order (skynet on rr) reached
 * the limit, and then every mmap failed, malloc's included.  Advice splits
 * nothing, so the address range of the peak number of stacks stays reserved
 * (not resident) until lwc_shutdown or a change of the default size, which
 * unmap the cold stacks in address order, each run of adjacent ones with one
 * munmap, so that unmapping never splits either.  It is cheaper too: going
 * cold and coming back is one madvise, where unmapping and mapping anew were
 * three system calls (munmap, mmap, and the guard's madvise). */
static struct {
    pthread_mutex_t   lock;
    struct lwc_stack *v;
    size_t            n, cap;
} cold = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

size_t lwc_stack_default_size(void)
{
    return default_size;
}

void lwc_stack_set_default_size(size_t size)
{
    if (size != default_size)
        lwc_stack_pool_drain();
    default_size = size;
    /* LWC_GUARD_NO_MADVISE=1 forces the mprotect guards (for testing them). */
    atomic_store(&madv_guard_works, !getenv("LWC_GUARD_NO_MADVISE") &&
                                    atomic_load(&madv_guard_probed) != PROBE_DOES_NOT);
}

static size_t page(void)
{
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    return page_size;
}

static long guard_budget(void)
{
    pthread_mutex_lock(&budget_lock);
    if (mprotect_budget < 0) {
        long maps = 65530;
        FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
        if (f) {
            if (fscanf(f, "%ld", &maps) != 1)
                maps = 65530;
            fclose(f);
        }
        mprotect_budget = maps > 16384 ? (maps - 8192) / 2 : maps / 4;
    }
    pthread_mutex_unlock(&budget_lock);
    return mprotect_budget;
}

/* Does reading the page fault?  The kernel copying from it for write(2) tells
 * without a signal.  If we cannot tell (no pipe), trust madvise. */
static bool page_faults(const void *p)
{
    int fd[2];
    if (pipe(fd) != 0)
        return true;
    ssize_t n = write(fd[1], p, 1);
    bool faults = n < 0 && errno == EFAULT;
    close(fd[0]);
    close(fd[1]);
    return faults;
}

/* A guard installed at st->map: does it fault?  Probed once a process. */
static bool madv_guard_faults(struct lwc_stack *st)
{
    int probed = atomic_load(&madv_guard_probed);
    if (probed == PROBE_NOT_YET) {
        probed = page_faults(st->map) ? PROBE_FAULTS : PROBE_DOES_NOT;
        atomic_store(&madv_guard_probed, probed);
    }
    if (probed == PROBE_FAULTS)
        return true;
    atomic_store(&madv_guard_works, 0);
    return false;
}

static bool madv_guard(struct lwc_stack *st)
{
    if (madvise(st->map, page(), MADV_GUARD_INSTALL) != 0) {
        if (errno == EINVAL)
            atomic_store(&madv_guard_works, 0);
        return false;
    }
    if (madv_guard_faults(st))
        return true;
    madvise(st->map, page(), MADV_GUARD_REMOVE);
    return false;
}

static void guard_install(struct lwc_stack *st)
{
    long budget = guard_budget();
    if (atomic_load_explicit(&madv_guard_works, memory_order_relaxed) && madv_guard(st)) {
        st->guard = page();
        return;
    }
    if (atomic_fetch_add(&mprotect_guards, 1) < budget &&
        mprotect(st->map, page(), PROT_NONE) == 0) {
        st->guard = page();
        st->mprotected = true;
        return;
    }
    atomic_fetch_sub(&mprotect_guards, 1);
}

/* What the runtime keeps about a mapping that is about to go. */
static void stack_forget(struct lwc_stack *st)
{
    lwc_san_stack_forget(st);
    if (st->mprotected)
        atomic_fetch_sub(&mprotect_guards, 1);
}

static void stack_unmap(struct lwc_stack *st)
{
    stack_forget(st);
    munmap(st->map, st->map_size);
    lwc_stack_set_map(st, NULL);
}

static struct pool_entry *entry_of(struct lwc_stack *st)
{
    return (struct pool_entry *)(st->map + st->map_size - sizeof(struct pool_entry));
}

/* Put st on the cold list; unmap it if there is no memory for the record. */
static void cold_push(struct lwc_stack *st)
{
    pthread_mutex_lock(&cold.lock);
    if (cold.n == cold.cap) {
        size_t c = cold.cap ? cold.cap * 2 : 1024;
        struct lwc_stack *v = realloc(cold.v, c * sizeof *v);
        if (v) {
            cold.v = v;
            cold.cap = c;
        }
    }
    bool kept = cold.n < cold.cap;
    if (kept)
        cold.v[cold.n++] = *st;
    pthread_mutex_unlock(&cold.lock);
    if (!kept)
        stack_unmap(st);
}

/* Take the stacks of a pool list, each to the cold list; `release`: their
 * pages go back to the kernel first (Note [Cold stacks]). */
static void cool_entries(struct pool_entry *e, bool release)
{
    while (e) {
        struct lwc_stack batch[STACK_BATCH];
        struct iovec v[STACK_BATCH];
        size_t n = 0;
        for (; e && n < STACK_BATCH; e = e->next, n++) {
            batch[n] = e->st;
            v[n] = (struct iovec){ lwc_stack_lo(&batch[n]), lwc_stack_usable(&batch[n]) };
        }
        if (release)                        /* Note [Stacks in batches] */
            advise_all(v, n, MADV_DONTNEED);
        for (size_t i = 0; i < n; i++)
            cold_push(&batch[i]);
    }
}

static int by_address(const void *a, const void *b)
{
    const struct lwc_stack *x = a, *y = b;
    return x->map < y->map ? -1 : x->map > y->map;
}

/* Unmap v[0..n), sorted, a run of adjacent mappings at a time. */
static void unmap_sorted(struct lwc_stack *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1, len = v[i].map_size;
        while (j < n && v[j].map == v[i].map + len)
            len += v[j++].map_size;
        for (size_t k = i; k < j; k++)
            stack_forget(&v[k]);
        munmap(v[i].map, len);
        i = j;
    }
}

/* A pooled stack of map_size bytes.  One of another size (pooled before the
 * default changed) is unmapped. */
static bool pool_take(struct lwc_stack *st, size_t map_size)
{
    struct lwc_thread *t = lwc_thread_peek();
    struct pool_entry *e;
    while ((e = lwc_cache_take(t ? &t->stack_cache : NULL, &depot, LINK))) {
        *st = e->st;
        /* A stale link at the top of a live stack would read, to the
         * detector, as a reference to the stack it named (detect.c). */
        memset(e, 0, sizeof *e);
        if (st->map_size == map_size)
            return true;
        stack_unmap(st);
    }
    for (;;) {
        pthread_mutex_lock(&cold.lock);
        bool any = cold.n > 0;
        if (any)
            *st = cold.v[--cold.n];
        pthread_mutex_unlock(&cold.lock);
        if (!any)
            return false;
        if (st->map_size == map_size)
            return true;
        stack_unmap(st);
    }
}

/* The mapping for a stack of `size` usable bytes (whole pages) of `kind`. */
static size_t map_size_of(size_t size, lwc_stack_kind_t kind)
{
    return size + (kind == LWC_STACK_GUARDED ? page() : 0);
}

static size_t round_to_pages(size_t size)
{
    return (size + page() - 1) & ~(page() - 1);
}

/* Note [Stacks on first run] in scont.c: what an SCont asks for, in one
 * word, the size of the mapping or'ed with the kind (a page is more than 3
 * bytes, so the kind's two bits are free). */
_Static_assert(LWC_STACK_COPY < 4, "a kind fits the two low bits of a wanted word");

#define WANTED_UNIT 4096         /* a page divides every mapping's size */

uint32_t lwc_stack_wanted(size_t size, lwc_stack_kind_t kind)
{
    size_t p = page();
    if (size > ((size_t)UINT32_MAX >> 2) * WANTED_UNIT - 2 * p)
        return 0;
    size_t map_size = ((size + p - 1) & ~(p - 1)) + (kind == LWC_STACK_GUARDED ? p : 0);
    return (uint32_t)(map_size / WANTED_UNIT) << 2 | (uint32_t)kind;
}

size_t lwc_stack_wanted_size(uint32_t wanted)
{
    return (size_t)(wanted >> 2) * WANTED_UNIT;
}

int lwc_stack_refit(struct lwc_stack *st, uint32_t wanted)
{
    lwc_stack_kind_t kind = lwc_stack_wanted_kind(wanted);
    size_t map_size = lwc_stack_wanted_size(wanted);
    if (st->map) {
        if (st->kind == kind && st->map_size == map_size)
            return LWC_OK;
        lwc_stack_put(st);
    }
    size_t guard = map_size_of(0, kind);
    return lwc_stack_get(st, map_size - guard, kind);
}

/* Put st, not in use, in the pool (Note [Cold stacks]); `release`: its pages
 * may have been touched, and go back to the kernel if it goes cold. */
static void pool_give(struct lwc_stack *st, bool release)
{
    struct lwc_thread *t = lwc_thread_peek();
    struct pool_entry *e = entry_of(st);
    e->st = *st;
    lwc_stack_set_map(st, NULL);
    struct pool_entry *spill = lwc_cache_give(t ? &t->stack_cache : NULL, &depot, LINK, e);
    if (spill)
        cool_entries(spill, release);
}

/* STACK_BATCH guarded stacks of `size`, in one mapping: the first in *st,
 * the rest to the pool (Note [Stacks in batches]).  False if the mapping
 * cannot be had. */
static bool batch_get(struct lwc_stack *st, size_t size)
{
    size_t map_size = map_size_of(size, LWC_STACK_GUARDED);
    char *m = mmap(NULL, STACK_BATCH * map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return false;
    struct lwc_stack b[STACK_BATCH];
    struct iovec guards[STACK_BATCH];
    for (size_t i = 0; i < STACK_BATCH; i++) {
        b[i] = (struct lwc_stack){ .map = m + i * map_size, .map_size = map_size,
                                   .pooled = true, .kind = LWC_STACK_GUARDED };
        guards[i] = (struct iovec){ b[i].map, page() };
    }
    bool madv = atomic_load_explicit(&madv_guard_works, memory_order_relaxed) &&
                advise_all(guards, STACK_BATCH, MADV_GUARD_INSTALL) &&
                madv_guard_faults(&b[0]);
    for (size_t i = 0; i < STACK_BATCH; i++) {
        if (madv)
            b[i].guard = page();
        else
            guard_install(&b[i]);
        lwc_san_stack_register(&b[i]);
        if (i > 0)
            pool_give(&b[i], false);        /* untouched: nothing to give back */
    }
    *st = b[0];
    return true;
}

int lwc_stack_get(struct lwc_stack *st, size_t size, lwc_stack_kind_t kind)
{
    size = round_to_pages(size);
    bool pooled = kind == LWC_STACK_GUARDED && size == default_size;
    if (pooled && (pool_take(st, map_size_of(size, kind)) || batch_get(st, size)))
        return LWC_OK;
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->map_size = map_size_of(size, kind);
    void *m = mmap(NULL, st->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return LWC_ENOMEM;
    st->map = m;
    st->pooled = pooled;
    if (kind == LWC_STACK_GUARDED)
        guard_install(st);
    lwc_san_stack_register(st);
    return LWC_OK;
}

void lwc_stack_put(struct lwc_stack *st)
{
    if (!st->map)
        return;
    if (!st->pooled) {
        stack_unmap(st);
        return;
    }
    pool_give(st, true);
}

void lwc_stack_cache_flush(struct lwc_thread *t)
{
    lwc_stack_put(&t->spare_stack);
    cool_entries(lwc_cache_flush(&t->stack_cache, &depot, LINK), true);
}

/* Unmap every stack in the depot and on the cold list, in address order
 * (Note [Cold stacks]).  The caches of OS threads are flushed before. */
void lwc_stack_pool_drain(void)
{
    pthread_mutex_lock(&depot.lock);
    struct pool_entry *e = depot.head;
    depot.head = NULL;
    depot.n = 0;
    pthread_mutex_unlock(&depot.lock);
    cool_entries(e, false);
    pthread_mutex_lock(&cold.lock);
    struct lwc_stack *v = cold.v;
    size_t n = cold.n;
    cold.v = NULL;
    cold.n = cold.cap = 0;
    pthread_mutex_unlock(&cold.lock);
    if (n) {
        qsort(v, n, sizeof *v, by_address);
        unmap_sorted(v, n);
    }
    free(v);
}

/* ---- Overflow --------------------------------------------------------------- */

static struct sigaction old_segv;
static int overflow_installed;

/* async-signal-safe: decimal of n into buf, returns its length */
static size_t fmt_u64(char *buf, unsigned long long n)
{
    char tmp[24];
    size_t k = 0;
    do tmp[k++] = (char)('0' + n % 10); while ((n /= 10));
    for (size_t i = 0; i < k; i++)
        buf[i] = tmp[k - 1 - i];
    return k;
}

static void say(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void overflow_handler(int sig, siginfo_t *si, void *uc)
{
    struct lwc_thread *t = lwc_thread_peek();
    lwc_scont_t *s = t ? t->current : NULL;
    const struct lwc_stack *st = s ? lwc_scont_stack(s) : NULL;    /* a copy SCont's is shared */
    uintptr_t addr = (uintptr_t)si->si_addr, lo = st ? (uintptr_t)st->map : 0;
    /* The guard page, or a frame that jumped a little past it. */
    if (st && st->guard && addr + 65536 >= lo && addr < lo + st->guard) {
        char buf[64];
        say("lwc: stack overflow in SCont ", 29);
        say(buf, fmt_u64(buf, atomic_load_explicit(&s->id, memory_order_relaxed)));
        if (s->name) {
            say(" (", 2);
            say(s->name, strlen(s->name));
            say(")", 1);
        }
        say(": its stack of ", 15);
        say(buf, fmt_u64(buf, lwc_stack_usable(st)));
        say(" bytes is too small\n", 20);
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* Not ours: hand it to whoever was there before, or die as we would have. */
    if ((old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_sigaction) {
        old_segv.sa_sigaction(sig, si, uc);
    } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL);               /* the fault repeats and kills us */
    }
}

void lwc_overflow_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) == 0)
        overflow_installed = 1;
}

void lwc_overflow_uninstall(void)
{
    if (overflow_installed)
        sigaction(SIGSEGV, &old_segv, NULL);
    overflow_installed = 0;
}

/* The overflow handler needs a stack of its own: the faulting one is full. */
void lwc_altstack_enter(struct lwc_thread *t)
{
    size_t size = 64 * 1024;
    long min = sysconf(_SC_SIGSTKSZ);
    if (min > 0 && (size_t)min > size)
        size = (size_t)min;
    if (!t->altstack && !(t->altstack = malloc(size)))
        return;
    stack_t ss = { .ss_sp = t->altstack, .ss_size = size, .ss_flags = 0 };
    if (sigaltstack(&ss, &t->altstack_old) != 0)
        t->altstack_old.ss_flags = SS_DISABLE;
}

/* A host's thread (lwc_eval, a hosted capability's turn) gets back the
 * alternate stack it had. */
void lwc_altstack_leave(struct lwc_thread *t)
{
    if (!t->altstack)
        return;
    if (t->altstack_old.ss_flags & SS_ONSTACK)
        t->altstack_old.ss_flags &= ~SS_ONSTACK;
    sigaltstack(&t->altstack_old, NULL);
}
