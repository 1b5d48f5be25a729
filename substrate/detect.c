/* The blocked-forever detector: lwc_gc, the pass that runs by itself when
 * every capability idles, and the whole-program deadlock report.  The rules
 * it applies are the README's "Threads blocked forever" and design.md's
 * "Blocked forever: the detector". */
#include "config.h"

#include <limits.h>
#include <link.h>
#include <lwc/detect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "futex.h"
#include "internal.h"

#if LWC_VALGRIND
#include <valgrind/memcheck.h>
#endif

/* Note [Stopping the world]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~
 * A pass reads what every SCont's stack, every PVar and every traced block
 * holds, so nothing may run while it reads.  Each capability's holder stops
 * at a safe point, where no transaction of its own is active and every stack
 * but its own is saved: after a landing (lwc_land, and a switch to itself in
 * lwc_tx_run), before a mailed SCont is swapped in (native_loop), and while it
 * sleeps in the kernel with nothing to run (sleep_thread in ptm.c).  There it
 * records the lowest live word of the stack it is on (`park_sp`, below the
 * callee-saved registers that __builtin_unwind_init spilled) and raises its
 * capability's `safe`.
 *
 * The collector raises `lwc_gc_request` and waits until every capability is
 * idle (nobody holds it: whoever takes it mails a worker, which stops before
 * running anything) or safe.  Both sides store then load, seq_cst: either the
 * holder sees the request and stops, or the collector sees it running and
 * waits.  A holder that wakes during a pass lowers `safe`, sees the request
 * and raises `safe` again before it touches anything.
 *
 * Plain OS threads are not stopped: they may commit at any time.  So the pass
 * takes the commit sequence once nobody holds the commit bias (a biased
 * holder commits without moving it: Note [Biased commit] in ptm/ptm.c), and
 * acts on its findings only if the sequence has not moved by the end of the
 * marking and at the start of the transaction that wakes the threads; else it
 * runs again, a few times, then gives up.  A reference such a thread holds
 * where lwc cannot see it is the program's to pin (detect.h). */

/* Note [Idle in a blocking switch]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * When an SCont blocks on a data structure and its scheduler has nothing else
 * to run, the switch_to_next upcall retries, and the capability idles apart
 * from it once its stop has committed (Note [Idling in a place of its own] in
 * idle.c): nothing here is needed for that.  What is left is a blocking
 * transaction that retries after its switch_to_next returned (its body read
 * something more and gave up): the capability sleeps inside the SCont's
 * blocking transaction, which has not committed.  The SCont still
 * reads LWC_RUNNING, its MVar does not list it, and a pass that believed that
 * would take it for a root, so the program's last blocked thread would never
 * be found.  So tx_wait records, before it sleeps, that its thread idles in a
 * blocking (or completing) switch of `idle_self`, with a copy of that
 * transaction's writes, and the pass sees the world as if it had committed:
 * the SCont LWC_BLOCKED_ON_CONCDS (or LWC_COMPLETED), and each PVar written
 * holding the value written (the overlay).  That world is one the program can
 * reach: the commit needs only another thread to run, and serializability
 * allows it to come first.
 *
 * Such an SCont found unreachable is not woken through its upcalls, for it
 * never blocked: the pass sets `error` in its retry waiter and fires it, and
 * the transaction gives up with that error instead of running again, so the
 * blocking call returns it and nothing of the switch commits.  The data
 * structure never linked the waiter. */

/* Note [Plain OS threads]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * An OS thread that is no capability's (a program's main thread driving lwc
 * by hand, lwc_main's caller, a library's callback thread) cannot be stopped
 * where it runs, and its stack cannot be read while it runs.  lwc keeps every
 * such thread that has a record (it called into lwc) on lwc_rt.foreign, and
 * knows when it sleeps in the kernel inside lwc (`asleep`): in a retry
 * (sleep_thread) or, as an lwc_eval host, for its mail.
 *  - While one is awake, something outside the capabilities may act: no pass
 *    runs by itself, and no deadlock is declared.  An lwc_gc pass still runs;
 *    what such a thread holds must be pinned (detect.h), except that the
 *    thread calling lwc_gc has its own stack scanned, from the pass's frame.
 *  - One asleep in a retry is stopped like a capability: woken during a pass,
 *    it waits for the pass to end before it returns into the program.  Its
 *    stack is data the SConts may use (lwc_main's caller passes its locals to
 *    the first thread), so the pass scans it as a root, from where it slept,
 *    or from the point lwc_host_enter named: lwc_main names its own frame, so
 *    that the SCont it created, whose address may linger in dead slots below,
 *    is not kept alive by the thread that only waits for it.
 *    Where it slept and the waiter that wakes it (sleep_sp, sleep_waiter)
 *    change only under lwc_rt.lock, which foreign_all_asleep holds: the
 *    waiter lives on the sleeper's stack and must not be read once the
 *    sleeper has left lwc_gc_sleep_end.
 * A thread that never called into lwc is invisible; detect.h says to pin. */

_Atomic uint32_t lwc_gc_request;

static struct {
    pthread_mutex_t lock;            /* one pass at a time */
    pthread_mutex_t report_lock;     /* the handler: never held across a pass */
    lwc_report_fn   report;
    /* Kept from pass to pass, under `lock`: allocated afresh, these two
     * (1.5 MiB) came from mmap and cost a page fault per 4 KiB each pass. */
    uint64_t       *filter;          /* Note [The chunk filter] */
    size_t         *radix_count;     /* sort_objs */
    void           *report_arg;
} gc = { .lock = PTHREAD_MUTEX_INITIALIZER, .report_lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- safe points ----------------------------------------------------------------------- */

static void safe_enter(struct lwc_thread *t, void *sp)
{
    struct lwc_cap *c = t->cap;
    c->park_sp = sp;
    c->park_scont = t->current;
    c->park_thread = t;
    atomic_store(&c->safe, 1);                      /* seq_cst: the Note */
}

/* Leave a safe point (a capability's `safe`, a plain thread's `asleep`);
 * stay while a pass runs. */
static void safe_leave(_Atomic int *flag)
{
    for (;;) {
        atomic_store(flag, 0);                      /* seq_cst: the Note */
        if (!atomic_load(&lwc_gc_request))
            return;
        atomic_store(flag, 1);
        while (atomic_load(&lwc_gc_request))
            lwc_futex_wait(&lwc_gc_request, 1);
    }
}

__attribute__((noinline)) void lwc_gc_park(struct lwc_thread *t)
{
    if (!t->cap)
        return;
    __builtin_unwind_init();                        /* callee-saved registers to the stack */
    volatile char here = 0;
    safe_enter(t, (void *)&here);
    safe_leave(&t->cap->safe);
    (void)here;
}

void lwc_gc_idle_record(struct lwc_thread *t, lwc_tx_t *tx, struct retry_waiter *w)
{
    if (!t->cap || !tx->self || !(tx->blocking || tx->completing))
        return;
    if (tx->h.nwrites > t->idle_cap_writes) {
        struct lwc_tx_write *p = realloc(t->idle_writes, tx->h.nwrites * sizeof *p);
        if (!p)
            return;                     /* then it counts as running: safe */
        t->idle_writes = p;
        t->idle_cap_writes = tx->h.nwrites;
    }
    memcpy(t->idle_writes, tx->h.writes, tx->h.nwrites * sizeof *tx->h.writes);
    t->idle_nwrites = tx->h.nwrites;
    t->idle_waiter = w;
    t->idle_completing = tx->completing;
    t->idle_self = tx->self;
}

void lwc_gc_idle_clear(struct lwc_thread *t)
{
    t->idle_self = NULL;
    t->idle_waiter = NULL;
    t->idle_nwrites = 0;
}

static int collect(struct lwc_thread *t, bool idle);
static int collect_locked(struct lwc_thread *t, bool idle);

/* Is every plain OS thread asleep inside lwc?  With lwc_rt.lock held. */
static bool foreign_all_asleep(void)
{
    for (struct lwc_thread *f = lwc_rt.foreign; f; f = f->foreign_next) {
        if (!atomic_load(&f->asleep))
            return false;
        struct retry_waiter *w = f->sleep_sp ? f->sleep_waiter : NULL;
        if (w && atomic_load(&w->state) == W_FIRED)
            return false;                           /* woken: about to act */
    }
    return true;
}

/* Every capability idle, and every plain OS thread asleep in lwc?  For good:
 * no capability sleeps to a deadline either. */
static bool all_idle(bool for_good)
{
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        if (atomic_load(&c->busy) == CAP_IDLE)
            continue;
        uint64_t until = atomic_load(&c->idle_until);
        if (for_good ? until != LWC_NEVER : until == 0)
            return false;
    }
    pthread_mutex_lock(&lwc_rt.lock);
    bool asleep = foreign_all_asleep();
    pthread_mutex_unlock(&lwc_rt.lock);
    return asleep;
}

static char *thread_stack_hi(void)
{
    pthread_attr_t a;
    void *lo;
    size_t n;
    if (pthread_getattr_np(pthread_self(), &a) != 0)
        return NULL;
    int err = pthread_attr_getstack(&a, &lo, &n);
    pthread_attr_destroy(&a);
    return err ? NULL : (char *)lo + n;
}

__attribute__((noinline)) void lwc_gc_sleep_begin(struct lwc_thread *t, struct retry_waiter *w,
                                                   bool forever)
{
    __builtin_unwind_init();
    volatile char here = 0;
    if (t->cap) {
        safe_enter(t, (void *)&here);
    } else {
        if (!t->stack_hi)
            t->stack_hi = thread_stack_hi();
        pthread_mutex_lock(&lwc_rt.lock);           /* Note [Plain OS threads] */
        t->sleep_sp = (void *)&here;
        t->sleep_waiter = w;
        pthread_mutex_unlock(&lwc_rt.lock);
        atomic_store(&t->asleep, 1);                /* seq_cst: Note [Stopping the world] */
    }
    if (forever && atomic_load(&lwc_rt.up) && all_idle(true))
        collect(t, true);
    (void)here;
}

/* Note [The idle timer]
 * ~~~~~~~~~~~~~~~~~~~~~
 * With lwc_config_t.idle_gc_ms (or LWC_IDLE_GC_MS), a capability that has
 * slept that long towards a deadline runs an idle pass if every capability is
 * idle by then, although a sleeper or a service may wake something later:
 * GHC's -I.  A partial deadlock beside an unrelated timer is found; the price
 * is the exactness of the pass that runs by itself, since the sleeper may
 * later act on references it keeps in malloc memory, hence opt-in, for
 * programs that keep theirs in lwc_alloc memory or pins.  Sleepers pin
 * themselves, so such a pass never declares a whole-program deadlock.  It
 * runs once per sleep: a capability that wakes for nothing does not pass
 * again until it has slept afresh.  Called from sleep_thread (ptm.c) while
 * the capability is parked (lwc_gc_sleep_begin).  A pass already running
 * makes it step aside. */
void lwc_gc_idle_timer(struct lwc_thread *t)
{
    if (!atomic_load(&lwc_rt.up) || !all_idle(false))
        return;
    if (pthread_mutex_trylock(&gc.lock) != 0)
        return;
    if (all_idle(false))
        collect_locked(t, true);
    pthread_mutex_unlock(&gc.lock);
}

void lwc_gc_sleep_end(struct lwc_thread *t)
{
    if (t->cap) {
        safe_leave(&t->cap->safe);
    } else {
        safe_leave(&t->asleep);
        pthread_mutex_lock(&lwc_rt.lock);           /* Note [Plain OS threads] */
        t->sleep_sp = NULL;
        pthread_mutex_unlock(&lwc_rt.lock);
    }
}

/* ---- the objects a word may point into ----------------------------------------------------- */

enum { OBJ_SCONT, OBJ_STACK, OBJ_BLOCK };

struct obj {
    uintptr_t lo, hi;
    uint32_t  index;        /* OBJ_SCONT, OBJ_STACK: into pass.sc */
    uint8_t   kind;
    bool      marked;       /* OBJ_BLOCK */
};

/* What the pass knows of one SCont. */
struct sc {
    lwc_scont_t  *s;
    lwc_status_t  st;       /* as the pass sees it: Note [Idle in a blocking switch] */
    bool          root, marked;
    bool          runs;     /* running, or runnable in a live scheduler */
    bool          stranded; /* runnable in a scheduler nothing reaches: Note [Orphans] */
    char         *sp;       /* lowest live word of its stack, or NULL */
    struct retry_waiter *idle_waiter;   /* idles in its blocking switch */
    const char   *kept_by;  /* LWC_GC_DEBUG: what reached it first ... */
    const void   *kept_at;  /* ... and the word, or object, that did */
    lwc_scont_t  *kept_in;  /* ... in this SCont */
    uintptr_t     kept_word;    /* ... and the word's value */
};

struct item { uint8_t kind; void *p; };

/* A runnable SCont and the env of its scheduler: Note [Orphans]. */
struct env_ref { uintptr_t env; uint32_t index; bool live; };

/* Memory scanned as a root: the program's static data, plain threads' stacks. */
struct range { uintptr_t lo, hi; };

struct pass {
    struct obj  *obj;
    size_t       nobj, cap_obj;
    struct sc   *sc;
    size_t       nsc, cap_sc;
    uintptr_t    min, max;      /* no object lies outside */
    uint64_t    *filter;        /* Note [The chunk filter] */
    const void **seen;          /* PVars visited: open-addressed set */
    size_t       seen_cap, seen_used;
    struct item *work;
    size_t       nwork, cap_work;
    struct lwc_tx_write *overlay;   /* the writes of blocking switches that idle */
    size_t       noverlay, cap_overlay;
    struct env_ref *envs;       /* sorted by env: Note [Orphans] */
    size_t       nenv, cap_env;
    uintptr_t    env_lo, env_hi;    /* no env lies outside */
    struct range *root_mem;
    size_t       nroot_mem, cap_root_mem;
    struct lwc_thread *caller;      /* who runs the pass ... */
    const void  *caller_sp;         /* ... and the lowest live word of its stack */
    bool         nomem;
    bool         foreign_asleep;    /* every plain OS thread asleep in lwc */
    const char  *region;            /* what is being scanned: for LWC_GC_DEBUG */
    lwc_scont_t *region_scont;
    const void  *region_at;
    uintptr_t    region_word;       /* the word being resolved */
};

static void *grow(void *arr, size_t *cap, size_t need, size_t elem, bool *nomem)
{
    if (need <= *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    void *p = realloc(arr, c * elem);
    if (!p) {
        *nomem = true;
        return NULL;
    }
    *cap = c;
    return p;
}

static void add_obj(struct pass *ps, uintptr_t lo, uintptr_t hi, uint8_t kind, uint32_t index)
{
    struct obj *o = grow(ps->obj, &ps->cap_obj, ps->nobj + 1, sizeof *o, &ps->nomem);
    if (!o)
        return;
    ps->obj = o;
    o[ps->nobj++] = (struct obj){ lo, hi, index, kind, false };
}

static void push(struct pass *ps, uint8_t kind, void *p)
{
    struct item *w = grow(ps->work, &ps->cap_work, ps->nwork + 1, sizeof *w, &ps->nomem);
    if (!w)
        return;
    ps->work = w;
    w[ps->nwork++] = (struct item){ kind, p };
}

static void add_block(void *arg, const void *p, size_t n)
{
    add_obj(arg, (uintptr_t)p, (uintptr_t)p + (n ? n : 1), OBJ_BLOCK, 0);
}

/* Sort the objects by address: LSD radix sort, 16 bits a round, over the
 * bits that differ at all (qsort took most of a pass over 100 000 SConts). */
static void sort_objs(struct pass *ps)
{
    size_t n = ps->nobj;
    if (n < 2)
        return;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = ps->obj[i].lo < lo ? ps->obj[i].lo : lo;
        hi = ps->obj[i].lo > hi ? ps->obj[i].lo : hi;
    }
    struct obj *tmp = malloc(n * sizeof *tmp);
    if (!gc.radix_count)
        gc.radix_count = malloc(65536 * sizeof *gc.radix_count);
    size_t *count = gc.radix_count;
    if (!tmp || !count) {
        free(tmp);
        ps->nomem = true;
        return;
    }
    struct obj *src = ps->obj, *dst = tmp;
    for (unsigned shift = 0; shift < 64 && ((lo ^ hi) >> shift); shift += 16) {
        memset(count, 0, 65536 * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(src[i].lo >> shift) & 0xffff]++;
        for (size_t d = 0, sum = 0; d < 65536; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].lo >> shift) & 0xffff]++] = src[i];
        struct obj *t = src;
        src = dst;
        dst = t;
    }
    if (src != ps->obj)
        memcpy(ps->obj, src, n * sizeof *src);
    free(tmp);
}

/* The object holding address p, or NULL. */
static struct obj *find_obj(struct pass *ps, uintptr_t p)
{
    size_t lo = 0, hi = ps->nobj;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ps->obj[mid].lo <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    struct obj *o = &ps->obj[lo - 1];
    return p < o->hi ? o : NULL;
}

/* Note [The chunk filter]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * Most words a pass reads are no reference: return addresses, numbers,
 * pointers into the stack being read.  Each would cost a hash probe for a
 * PVar and a binary search among the objects, both cache misses.  So the pass
 * first sets, in a bitmap of FILTER_BITS bits, one bit per 64 KiB chunk of
 * address space that holds an object or a PVar (hashed), and a word whose
 * chunk's bit is clear is dropped at the cost of one load.  Code and library
 * data seldom share a chunk with the heap or the stacks. */
#define FILTER_BITS  23
#define CHUNK_SHIFT  16

static inline size_t chunk_bit(uintptr_t a)
{
    return (size_t)(((uint64_t)(a >> CHUNK_SHIFT) * 0x9e3779b97f4a7c15ull) >> (64 - FILTER_BITS));
}

static void filter_add(struct pass *ps, uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t c = lo >> CHUNK_SHIFT; c <= (hi - 1) >> CHUNK_SHIFT; c++) {
        size_t b = chunk_bit(c << CHUNK_SHIFT);
        ps->filter[b / 64] |= (uint64_t)1 << (b % 64);
    }
}

static void filter_pvar(void *arg, const void *p)
{
    struct pass *ps = arg;
    uintptr_t a = (uintptr_t)p;
    filter_add(ps, a, a + sizeof(lwc_pvar_t));
    if (a < ps->min)
        ps->min = a;
    if (a + sizeof(lwc_pvar_t) > ps->max)
        ps->max = a + sizeof(lwc_pvar_t);
}

/* Add pv to the visited set; false if it was there. */
static bool see_pvar(struct pass *ps, const void *pv)
{
    if (2 * (ps->seen_used + 1) > ps->seen_cap) {
        size_t cap = ps->seen_cap ? 2 * ps->seen_cap : 1024, old_cap = ps->seen_cap;
        const void **old = ps->seen, **set = calloc(cap, sizeof *set);
        if (!set) {
            ps->nomem = true;
            return false;
        }
        ps->seen = set;
        ps->seen_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (!old[i])
                continue;
            size_t j = ((uintptr_t)old[i] * 0x9e3779b97f4a7c15ull >> 32) & (cap - 1);
            while (set[j])
                j = (j + 1) & (cap - 1);
            set[j] = old[i];
        }
        free(old);
    }
    size_t j = ((uintptr_t)pv * 0x9e3779b97f4a7c15ull >> 32) & (ps->seen_cap - 1);
    while (ps->seen[j]) {
        if (ps->seen[j] == pv)
            return false;
        j = (j + 1) & (ps->seen_cap - 1);
    }
    ps->seen[j] = pv;
    ps->seen_used++;
    return true;
}

/* LWC_GC_DEBUG=1: after each pass, say what kept each blocked SCont. */
static bool debug_passes(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("LWC_GC_DEBUG");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

static void mark_sc(struct pass *ps, size_t i)
{
    if (ps->sc[i].marked)
        return;
    ps->sc[i].marked = true;
    ps->sc[i].kept_by = ps->region;
    ps->sc[i].kept_at = ps->region_at;
    ps->sc[i].kept_in = ps->region_scont;
    ps->sc[i].kept_word = ps->region_word;
    push(ps, OBJ_SCONT, &ps->sc[i]);
}

/* The first of the runnable SConts whose scheduler's env is env, or nenv. */
static size_t env_find(const struct pass *ps, uintptr_t env)
{
    size_t lo = 0, hi = ps->nenv;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ps->envs[mid].env < env)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ps->nenv && ps->envs[lo].env == env ? lo : ps->nenv;
}

/* The scheduler whose env is env can still run its threads: mark them. */
static void env_live(struct pass *ps, uintptr_t env)
{
    for (size_t k = env_find(ps, env); k < ps->nenv && ps->envs[k].env == env; k++) {
        if (ps->envs[k].live)
            return;
        ps->envs[k].live = true;
        mark_sc(ps, ps->envs[k].index);
    }
}

enum { ITEM_PVAR = 3 };

/* w may be a reference: follow it. */
static void resolve(struct pass *ps, uintptr_t w)
{
    if (w < ps->min || w >= ps->max)
        return;
    size_t b = chunk_bit(w);
    if (!(ps->filter[b / 64] & (uint64_t)1 << (b % 64)))
        return;
    if (w >= ps->env_lo && w <= ps->env_hi) {
        ps->region_word = w;                        /* for LWC_GC_DEBUG */
        env_live(ps, w);                /* an env may also be an object: go on */
    }
    if (!(w & (sizeof(void *) - 1)) && lwc_traced_is_pvar((const void *)w)) {
        if (see_pvar(ps, (const void *)w)) {
            if (debug_passes())
                fprintf(stderr, "lwc: gc: PVar %p is reachable through %s (%p)\n", (void *)w,
                        ps->region, ps->region_at);
            push(ps, ITEM_PVAR, (void *)w);
        }
        return;
    }
    struct obj *o = find_obj(ps, w);
    if (!o)
        return;
    if (o->kind == OBJ_BLOCK) {
        if (!o->marked) {
            o->marked = true;
            push(ps, OBJ_BLOCK, o);
        }
    } else {
        ps->region_word = w;                        /* for LWC_GC_DEBUG */
        mark_sc(ps, o->index);
    }
}

/* Every aligned word of [lo, hi).  The words are whatever the memory holds:
 * uninitialised stack slots, and words other threads write, so the sanitizers
 * and memcheck are told not to mind. */
__attribute__((no_sanitize_address, no_sanitize_thread))
static void scan(struct pass *ps, const void *lo, const void *hi)
{
    uintptr_t a = ((uintptr_t)lo + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
    for (const volatile uintptr_t *p = (const uintptr_t *)a; (const void *)(p + 1) <= hi; p++) {
        uintptr_t w = *p;
        if (w - (uintptr_t)lo < (uintptr_t)((const char *)hi - (const char *)lo))
            continue;                   /* into what is being read: a frame link, a local */
        ps->region_at = (const void *)p;
        resolve(ps, w);
    }
}

static const char *stack_top(lwc_scont_t *s)
{
    return lwc_stack_lo(&s->stack) + lwc_stack_usable(&s->stack);
}

static lwc_word_t pvar_value(struct pass *ps, lwc_pvar_t *pv)
{
    for (size_t i = 0; i < ps->noverlay; i++)
        if (ps->overlay[i].pv == pv)
            return ps->overlay[i].val;
    return lwc_pvar_load(pv);
}

/* An SCont that retries on pv is reachable when pv is. */
static void pvar_waiters(struct pass *ps, lwc_pvar_t *pv)
{
    lwc_pvar_wlock(pv);
    for (struct retry_node *n = atomic_load(&pv->waiters); n; n = n->next)
        if (n->w->scont)
            resolve(ps, (uintptr_t)n->w->scont);
    lwc_pvar_wunlock(pv);
}

static void visit_pvar(struct pass *ps, lwc_pvar_t *pv)
{
    ps->region = "the value or a retry of PVar";
    ps->region_at = pv;
    ps->region_scont = NULL;
    resolve(ps, pvar_value(ps, pv));
    pvar_waiters(ps, pv);
}

/* The registers a suspended SCont saved outside its stack: with ucontext,
 * swapcontext's buffer.  It holds every register as that call found them,
 * its own arguments among them, and one of those points into the SCont it
 * switched to: scanned whole, it would keep every SCont reachable from the
 * one that ran before it (Note [Switch targets] in scont.c).  Only the
 * registers a callee must keep hold anything the suspended code still
 * uses.  The assembly switch saves those on the stack, scanned with it. */
static void scan_saved_registers(struct pass *ps, lwc_scont_t *s)
{
#if LWC_CONTEXT_UCONTEXT && defined(__x86_64__)
    static const int kept[] = { REG_RBX, REG_RBP, REG_R12, REG_R13, REG_R14, REG_R15 };
    const greg_t *r = s->ctx.uc.uc_mcontext.gregs;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        scan(ps, &r[kept[i]], &r[kept[i]] + 1);
#elif LWC_CONTEXT_UCONTEXT && defined(__aarch64__)
    const unsigned long long *r = s->ctx.uc.uc_mcontext.regs;
    scan(ps, &r[19], &r[30]);                       /* x19..x29 */
#elif LWC_CONTEXT_UCONTEXT
    scan(ps, &s->ctx, &s->ctx + 1);                 /* all of it: conservative */
#else
    (void)ps;
    (void)s;
#endif
}

static void visit_scont(struct pass *ps, struct sc *c)
{
    lwc_scont_t *s = c->s;
    if (c->st == LWC_COMPLETED)
        return;
    ps->region = "an SCont's stack, registers, arg, env or local";
    ps->region_at = s;
    ps->region_scont = s;
    resolve(ps, (uintptr_t)s->arg);
    resolve(ps, (uintptr_t)lwc_scont_env(s));
    resolve(ps, (uintptr_t)atomic_load(&s->local));
    pvar_waiters(ps, &s->status);
    pvar_waiters(ps, &s->retry_pv);
    pvar_waiters(ps, &s->pending);
    pvar_waiters(ps, &s->interrupt);
    scan_saved_registers(ps, s);
    if (c->sp)
        scan(ps, c->sp, stack_top(s));
}

static void drain(struct pass *ps)
{
    while (ps->nwork && !ps->nomem) {
        struct item it = ps->work[--ps->nwork];
        if (it.kind == OBJ_SCONT) {
            visit_scont(ps, it.p);
        } else if (it.kind == OBJ_BLOCK) {
            struct obj *o = it.p;
            ps->region = "an lwc_alloc block";
            ps->region_scont = NULL;
            scan(ps, (const void *)o->lo, (const void *)o->hi);
        } else {
            visit_pvar(ps, it.p);
        }
    }
}

/* ---- roots ---------------------------------------------------------------------------------- */

/* lwc's own statics: they link every SCont struct ever made, and the pass
 * must not count that as a reference. */
static void scan_static(struct pass *ps, const char *lo, const char *hi)
{
    const char *skip[][2] = {
        { (const char *)&lwc_rt, (const char *)(&lwc_rt + 1) },
        { (const char *)&gc, (const char *)(&gc + 1) },
    };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (skip[i][0] >= lo && skip[i][1] <= hi) {
            scan_static(ps, lo, skip[i][0]);
            scan_static(ps, skip[i][1], hi);
            return;
        }
    }
    scan(ps, lo, hi);
}

/* A tool's runtime loaded into the program (a sanitizer's, valgrind's
 * preload) or the dynamic linker: their data is the tool's bookkeeping, never
 * where the program keeps a reference.  ASan's allocator caches alone are
 * megabytes of addresses of chunks, freed ones too, which made a pass slow and
 * kept dead threads alive. */
static bool not_the_programs(const struct dl_phdr_info *info)
{
    static const char *tools[] = { "libasan.so", "libtsan.so", "liblsan.so", "libubsan.so",
                                   "libhwasan.so", "vgpreload_" };
    if (info->dlpi_addr && info->dlpi_addr == (ElfW(Addr))getauxval(AT_BASE))
        return true;                                /* the dynamic linker */
    const char *base = strrchr(info->dlpi_name, '/');
    base = base ? base + 1 : info->dlpi_name;
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (strncmp(base, tools[i], strlen(tools[i])) == 0)
            return true;
    return false;
}

static void add_root_mem(struct pass *ps, const void *lo, const void *hi)
{
    struct range *r = grow(ps->root_mem, &ps->cap_root_mem, ps->nroot_mem + 1, sizeof *r,
                           &ps->nomem);
    if (!r)
        return;
    ps->root_mem = r;
    r[ps->nroot_mem++] = (struct range){ (uintptr_t)lo, (uintptr_t)hi };
}

/* The writable segments of every loaded object, less the part that is
 * read-only after relocation (PT_GNU_RELRO): that holds only addresses fixed
 * at link time, never a thread's, and constants in it (libc keeps tables
 * there) can look like addresses where valgrind packs the address space. */
static int static_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    if (not_the_programs(info))
        return 0;
    const char *relro_lo = NULL, *relro_hi = NULL;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = (const char *)(info->dlpi_addr + ph->p_vaddr);
            relro_hi = relro_lo + ph->p_memsz;
        }
    }
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        const char *lo = (const char *)(info->dlpi_addr + ph->p_vaddr), *hi = lo + ph->p_memsz;
        add_root_mem(arg, lo, hi);
        ((struct pass *)arg)->region = *info->dlpi_name ? info->dlpi_name : "the program's static data";
        if (relro_lo && relro_lo < hi && relro_hi > lo) {
            scan_static(arg, lo, relro_lo > lo ? relro_lo : lo);
            scan_static(arg, relro_hi < hi ? relro_hi : hi, hi);
        } else {
            scan_static(arg, lo, hi);
        }
    }
    return 0;
}

static void pin_root(void *arg, const void *p)
{
    ((struct pass *)arg)->region_at = p;
    resolve(arg, (uintptr_t)p);
}

/* ---- one pass --------------------------------------------------------------------------------- */

static void pass_free(struct pass *ps)
{
    free(ps->obj);
    free(ps->sc);
    free(ps->seen);
    free(ps->work);
    free(ps->overlay);
    free(ps->envs);
    free(ps->root_mem);
    memset(ps, 0, sizeof *ps);
}

static char *ctx_sp(lwc_scont_t *s)
{
#if LWC_CONTEXT_UCONTEXT
#if defined(__x86_64__)
    return (char *)s->ctx.uc.uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (char *)s->ctx.uc.uc_mcontext.sp;
#else
    return NULL;
#endif
#else
    return s->ctx.sp;
#endif
}

/* The capability whose holder is parked on s's stack, or NULL. */
static struct lwc_cap *parked_on(lwc_scont_t *s)
{
    for (unsigned i = 0; i < lwc_rt.ncaps; i++)
        if (atomic_load(&lwc_rt.caps[i].safe) && lwc_rt.caps[i].park_scont == s)
            return &lwc_rt.caps[i];
    return NULL;
}

/* The upcalls of the scheduler a parked capability works for: those of the
 * SCont it is parked on, or, idle on its native stack, of the SCont whose
 * stop left it idle (Note [Idling in a place of its own] in idle.c).  False
 * if it is not parked or works for none. */
static bool cap_upcalls(struct lwc_cap *cap, lwc_upcalls_t *u)
{
    if (!atomic_load(&cap->safe))
        return false;
    if (cap->park_scont)
        lwc_scont_load_upcalls(cap->park_scont, u);
    else if (cap->idle_for)
        *u = cap->idle_up;
    else
        return false;
    return true;
}

/* Record that runnable s waits in the scheduler of its upcalls' env.  False
 * if it has no scheduler to wait in (no switch_to_next, env NULL): then only
 * whoever made it can run it, and it counts as a root, as it always did. */
static bool add_env_ref(struct pass *ps, lwc_scont_t *s)
{
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(s, &u);
    if (!u.switch_to_next || !u.env)
        return false;
    struct env_ref *e = grow(ps->envs, &ps->cap_env, ps->nenv + 1, sizeof *e, &ps->nomem);
    if (!e)
        return false;
    ps->envs = e;
    e[ps->nenv++] = (struct env_ref){ (uintptr_t)u.env, (uint32_t)ps->nsc, false };
    return true;
}

/* What each SCont is, as the pass sees it. */
static void gather_sconts(struct pass *ps)
{
    pthread_mutex_lock(&lwc_rt.lock);
    for (lwc_scont_t *s = lwc_rt.scont_made; s && !ps->nomem; s = s->made_next) {
        if (!s->alive || !s->stack.map)
            continue;
        struct sc *c = grow(ps->sc, &ps->cap_sc, ps->nsc + 1, sizeof *c, &ps->nomem);
        if (!c)
            break;
        ps->sc = c;
        c = &ps->sc[ps->nsc];
        *c = (struct sc){ .s = s, .st = status_of(lwc_pvar_load(&s->status)) };
        struct lwc_cap *cap = parked_on(s);
        struct lwc_thread *t = cap ? cap->park_thread : NULL;
        if (t && t->idle_self == s &&               /* fired: it runs again, a root */
            atomic_load(&t->idle_waiter->state) != W_FIRED) {
            c->st = t->idle_completing ? LWC_COMPLETED : LWC_BLOCKED_ON_CONCDS;
            if (!t->idle_completing)
                c->idle_waiter = t->idle_waiter;
        }
        char *lo = lwc_stack_lo(&s->stack), *hi = lo + lwc_stack_usable(&s->stack);
        c->sp = cap ? cap->park_sp : ctx_sp(s);
        if (c->sp < lo || c->sp >= hi)
            c->sp = NULL;
        if (c->st == LWC_RUNNING)
            c->root = true;
        else if (c->st == LWC_BLOCKED_ON_SCHED)
            c->root = !add_env_ref(ps, s);          /* Note [Orphans] */
        else if (c->st == LWC_BLOCKED_ON_CONCDS && s->retry_nodes && !c->idle_waiter &&
                 atomic_load(&s->retry_nodes[0].w->state) == W_FIRED)
            c->root = true;                         /* woken, the wake-up in flight */
        add_obj(ps, (uintptr_t)s, (uintptr_t)(s + 1), OBJ_SCONT, (uint32_t)ps->nsc);
        /* Below sp lie only dead frames: a word pointing there refers to
         * nothing (and under valgrind, where stacks sit low, an integer
         * often would). */
        add_obj(ps, (uintptr_t)(c->sp ? c->sp : lo), (uintptr_t)hi, OBJ_STACK,
                (uint32_t)ps->nsc);
        ps->nsc++;
    }
    pthread_mutex_unlock(&lwc_rt.lock);
}

static void gather_overlay(struct pass *ps)
{
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        struct lwc_cap *cap = &lwc_rt.caps[i];
        struct lwc_thread *t = atomic_load(&cap->safe) ? cap->park_thread : NULL;
        if (!t || !t->idle_self || atomic_load(&t->idle_waiter->state) == W_FIRED)
            continue;
        struct lwc_tx_write *o = grow(ps->overlay, &ps->cap_overlay, ps->noverlay + t->idle_nwrites,
                                  sizeof *o, &ps->nomem);
        if (!o)
            return;
        ps->overlay = o;
        memcpy(o + ps->noverlay, t->idle_writes, t->idle_nwrites * sizeof *o);
        ps->noverlay += t->idle_nwrites;
    }
}

static int env_ref_cmp(const void *a, const void *b)
{
    const struct env_ref *x = a, *y = b;
    if (x->env != y->env)
        return x->env < y->env ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sort the runnable SConts by env, and let the filter pass the envs. */
static void sort_envs(struct pass *ps)
{
    ps->env_lo = UINTPTR_MAX;
    ps->env_hi = 0;
    if (!ps->nenv)
        return;
    qsort(ps->envs, ps->nenv, sizeof *ps->envs, env_ref_cmp);
    ps->env_lo = ps->envs[0].env;
    ps->env_hi = ps->envs[ps->nenv - 1].env;
    for (size_t k = 0; k < ps->nenv; k++) {
        uintptr_t e = ps->envs[k].env;
        if (k && e == ps->envs[k - 1].env)
            continue;
        filter_add(ps, e, e + 1);
        ps->min = e < ps->min ? e : ps->min;
        ps->max = e + 1 > ps->max ? e + 1 : ps->max;
    }
}

/* Is address p inside memory the pass has found live: a root's, or an object
 * it marked? */
static bool inside_live_memory(struct pass *ps, uintptr_t p)
{
    for (size_t i = 0; i < ps->nroot_mem; i++)
        if (p >= ps->root_mem[i].lo && p < ps->root_mem[i].hi)
            return true;
    struct obj *o = find_obj(ps, p);
    if (!o)
        return false;
    return o->kind == OBJ_BLOCK ? o->marked : ps->sc[o->index].marked;
}

/* An env that no word names exactly but that lies inside live memory (a
 * scheduler in a static variable, on the host's stack, inside an lwc_alloc
 * block or an SCont's stack) is live too.  Marking its threads may mark more
 * memory, hence the loop. */
static void envs_inside_roots(struct pass *ps)
{
    bool more = true;
    while (more && !ps->nomem) {
        more = false;
        ps->region = "memory that holds the scheduler";
        ps->region_scont = NULL;
        for (size_t k = 0; k < ps->nenv; k++) {
            struct env_ref *e = &ps->envs[k];
            if (e->live || (k && e->env == e[-1].env))
                continue;
            if (inside_live_memory(ps, e->env)) {
                ps->region_at = (const void *)e->env;
                ps->region_word = e->env;
                env_live(ps, e->env);
                more = true;
            }
        }
        drain(ps);
    }
}

/* The runnable SConts left unmarked wait in schedulers that nothing can
 * reach.  They will run again, adopted (Note [Orphans]), so what they reach
 * is live: mark it, or a thread they would wake could be taken for dead. */
static void find_stranded(struct pass *ps)
{
    ps->region = "a thread to be adopted";
    ps->region_scont = NULL;
    for (size_t i = 0; i < ps->nsc; i++) {
        struct sc *c = &ps->sc[i];
        c->runs = c->root || (c->st == LWC_BLOCKED_ON_SCHED && c->marked);
        c->stranded = c->st == LWC_BLOCKED_ON_SCHED && !c->marked;
    }
    for (size_t i = 0; i < ps->nsc; i++) {
        if (ps->sc[i].stranded) {
            ps->region_at = ps->sc[i].s;
            mark_sc(ps, i);
        }
    }
    drain(ps);
}

static void scan_thread_stack(struct pass *ps, const void *lo, const void *hi)
{
    if (!lo || !hi || (const char *)lo >= (const char *)hi)
        return;
    ps->region = "the stack of a plain OS thread";
    ps->region_scont = NULL;
    scan(ps, lo, hi);
    add_root_mem(ps, lo, hi);
}

/* Mark everything the roots reach; the traced tables are held. */
static void mark(struct pass *ps)
{
    gather_overlay(ps);
    gather_sconts(ps);
    lwc_traced_each_block(add_block, ps);
    if (ps->nomem)
        return;
    sort_objs(ps);
    if (ps->nomem)
        return;
    size_t filter_bytes = (1u << FILTER_BITS) / 8;
    if (!gc.filter)
        gc.filter = malloc(filter_bytes);
    ps->filter = gc.filter;
    if (!ps->filter) {
        ps->nomem = true;
        return;
    }
    memset(ps->filter, 0, filter_bytes);
    ps->min = UINTPTR_MAX;
    ps->max = 0;
    for (size_t i = 0; i < ps->nobj; i++) {
        filter_add(ps, ps->obj[i].lo, ps->obj[i].hi);
        if (ps->obj[i].lo < ps->min)
            ps->min = ps->obj[i].lo;
        if (ps->obj[i].hi > ps->max)
            ps->max = ps->obj[i].hi;
    }
    lwc_traced_each_pvar(filter_pvar, ps);
    sort_envs(ps);
    ps->region = "running";
    ps->region_scont = NULL;
    for (size_t i = 0; i < ps->nsc; i++) {
        ps->region_at = ps->sc[i].s;
        if (ps->sc[i].root)
            mark_sc(ps, i);
    }
    ps->region = "the scheduler an idle capability sleeps in";
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        struct lwc_cap *cap = &lwc_rt.caps[i];
        lwc_upcalls_t u;
        if (cap_upcalls(cap, &u)) {
            ps->region_at = cap->park_scont ? (const void *)cap->park_scont : (const void *)cap;
            resolve(ps, (uintptr_t)u.env);
        }
    }
    ps->region = "a pin";
    lwc_traced_each_pin(pin_root, ps);
    dl_iterate_phdr(static_segments, ps);
    pthread_mutex_lock(&lwc_rt.lock);
    ps->foreign_asleep = foreign_all_asleep();
    for (struct lwc_thread *f = lwc_rt.foreign; f; f = f->foreign_next) {
        const char *lo = f->host_lo ? f->host_lo : f->sleep_sp;
        if (atomic_load(&f->asleep) && f->sleep_sp)
            scan_thread_stack(ps, lo, f->stack_hi);     /* Note [Plain OS threads] */
    }
    pthread_mutex_unlock(&lwc_rt.lock);
    struct lwc_thread *t = ps->caller;
    if (!t->cap) {                  /* lwc_gc from a plain OS thread: its stack is live */
        if (!t->stack_hi)
            t->stack_hi = thread_stack_hi();
        scan_thread_stack(ps, t->host_lo ? t->host_lo : ps->caller_sp, t->stack_hi);
    }
    drain(ps);
    envs_inside_roots(ps);
    find_stranded(ps);
}

/* ---- waking ------------------------------------------------------------------------------------ */

struct wake {
    struct pass *ps;
    uint64_t     seq;           /* the sequence the marking saw */
    int          err;
    bool         only_hosts;    /* a deadlock: wake the SConts a host waits for */
    size_t       next;          /* the first SCont the next batch looks at */
    unsigned     woken;
};

static bool is_victim(const struct wake *wk, const struct sc *c)
{
    if (c->st != LWC_BLOCKED_ON_CONCDS)
        return false;
    if (wk->only_hosts)
        return atomic_load(&c->s->host_waits) != 0;
    return !c->marked;
}

/* Note [Waking in batches]
 * ~~~~~~~~~~~~~~~~~~~~~~~~
 * The victims are woken by transactions of WAKE_BATCH wake-ups each: one
 * transaction for 100 000 would search a write set that large on every
 * access.  Batches do not make the wake-up less "all at once": every
 * capability is stopped until the last batch has committed, so no SCont runs
 * before all of them are woken, and only the first batch must find the
 * sequence where the marking left it. */
#define WAKE_BATCH 8

static lwc_word_t wake_body(lwc_tx_t *tx, void *arg)
{
    struct wake *wk = arg;
    if (wk->next == 0 && tx->snapshot != wk->seq)
        return 1;                                   /* something committed: pass again */
    unsigned n = 0;
    size_t i = wk->next;
    for (; i < wk->ps->nsc && n < WAKE_BATCH; i++) {
        struct sc *c = &wk->ps->sc[i];
        if (is_victim(wk, c) && !c->idle_waiter && lwc_scont_interrupt(tx, c->s, wk->err))
            n++;
    }
    return (lwc_word_t)(i - wk->next) << 16 | n;    /* how far it got, and how many */
}

/* Wake the victims: those blocked in a commit through lwc_scont_interrupt
 * (Note [Waking in batches]); those idling in their blocking switch through
 * their retry waiter (Note [Idle in a blocking switch]).  False: the world
 * moved before anything was woken. */
static bool wake(struct wake *wk)
{
    wk->next = 0;
    wk->woken = 0;
    while (wk->next < wk->ps->nsc) {
        lwc_word_t r = 0;
        int err = lwc_tx_run(wake_body, wk, &r, true);
        if (err != LWC_OK || r == 1) {
            if (wk->next == 0)
                return false;
            lwc_warn("a detection pass could not wake every thread it found: %s",
                     lwc_strerror(err));
            break;
        }
        wk->next += r >> 16;
        wk->woken += r & 0xffff;
    }
    for (size_t i = 0; i < wk->ps->nsc; i++) {
        struct sc *c = &wk->ps->sc[i];
        if (!is_victim(wk, c))
            continue;
        if (wk->err == LWC_EDEADLOCK)
            atomic_store(&c->s->deadlocked, 1);
        if (c->idle_waiter) {
            wk->woken++;
            c->idle_waiter->error = wk->err;
            if (atomic_exchange(&c->idle_waiter->state, W_FIRED) == W_SLEEPING)
                lwc_futex_wake(&c->idle_waiter->state, 1);
        }
    }
    return true;
}

/* ---- orphans ------------------------------------------------------------------------------------- */

/* Note [Orphans]
 * ~~~~~~~~~~~~~~~
 * A runnable SCont (LWC_BLOCKED_ON_SCHED) runs again only when its
 * scheduler's switch_to_next picks it, and that code runs only on a
 * capability working for the scheduler: one running a thread of it, or
 * idling in its switch_to_next.  A scheduler whose last capability has left
 * and that nothing refers to can never run its queue again.  LWC only logged
 * such threads; lwc adopts them into a live scheduler and wakes them with
 * LWC_EBLOCKED_SCHED.
 *
 * The pass knows a scheduler by the env of its upcalls.  A runnable SCont is
 * no root: it is marked when its scheduler is live, that is when its env is
 *  - named exactly by a word the pass reads: a reached SCont names it in its
 *    upcalls, lwc_main's static names its instance, a frame holds it;
 *  - the env of the SCont on whose stack an idle capability sleeps
 *    (design.md's "schedulers that idle capabilities sleep in");
 *  - inside memory the pass found live: static data, a sleeping plain
 *    thread's stack, a marked lwc_alloc block or SCont (envs_inside_roots).
 * A pointer into the middle of a scheduler's memory does not keep it: only
 * its env's own address, or a pin, does.  The runnable SConts left unmarked
 * are stranded (find_stranded), and will run again adopted, so what they
 * reach is marked before the victims are chosen: they may be the ones that
 * wake a blocked thread.
 *
 * Nothing races with the adoption: no capability works for their scheduler,
 * and no thread can reach them (a plain thread that holds an unpinned
 * reference breaks detect.h's rule).  So the adopter's upcalls and a NULL
 * local state are stored plainly, but only once the first wake-up batch has
 * committed, which proves the marking still holds (Note [Waking in
 * batches]): a pass that finds the world moved must leave them as they were.
 * Then transactions of ORPHAN_BATCH orphans each write `pending`
 * (LWC_EBLOCKED_SCHED, unless an error waits there already) and call the
 * adopter's unblock_thread, which takes the orphan in with a node of its own
 * and sets its local state; a re-run finds that node there.  `pending`, not
 * `interrupt` (Note [Delivering errors] in exception.c): an orphan may have
 * been woken from an MVar with a value that its blocking call must return;
 * the error comes at the switch it is suspended in if that was a yield, else
 * at its next switch point.  An orphan whose local state is still NULL after
 * the commit was not taken in (the adopter ran out of memory): its old
 * upcalls and local state go back, and a later pass tries again.
 *
 * The adopter is the scheduler of the SCont the pass runs on (lwc_gc's
 * caller, or the SCont an idle capability sleeps on), else that of an SCont a
 * host waits for (lwc_main's) while that scheduler runs, else any scheduler
 * that runs, provided it takes orphans (lwc_sched_adopts_orphans: rr and ws
 * do).  With none, the orphans stay where they are, and a whole-program
 * deadlock report lists them. */

#define ADOPTERS_MAX 16
static _Atomic(void *) adopters[ADOPTERS_MAX];

int lwc_sched_adopts_orphans(lwc_scont_t *(*switch_to_next)(lwc_tx_t *, lwc_scont_t *,
                                                            lwc_status_t, void *))
{
    if (!switch_to_next)
        return LWC_EINVAL;
    for (unsigned i = 0; i < ADOPTERS_MAX; i++) {
        void *seen = NULL;
        if (atomic_compare_exchange_strong(&adopters[i], &seen, (void *)switch_to_next) ||
            seen == (void *)switch_to_next)
            return LWC_OK;
    }
    return LWC_ENOMEM;
}

static bool takes_orphans(const lwc_upcalls_t *u)
{
    if (!u->switch_to_next || !u->unblock_thread || !u->env)
        return false;
    for (unsigned i = 0; i < ADOPTERS_MAX; i++)
        if (atomic_load(&adopters[i]) == (void *)u->switch_to_next)
            return true;
    return false;
}

/* s's upcalls, into *u, if they name a scheduler that takes orphans. */
static bool adopter_of(lwc_scont_t *s, lwc_upcalls_t *u)
{
    if (!s)
        return false;
    lwc_scont_load_upcalls(s, u);
    return takes_orphans(u);
}

/* The same for the scheduler a parked capability works for. */
static bool cap_adopter(struct lwc_cap *cap, lwc_upcalls_t *u)
{
    return cap_upcalls(cap, u) && takes_orphans(u);
}

/* Does a capability work for the scheduler whose env is env? */
static bool env_runs(const struct pass *ps, void *env)
{
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        lwc_upcalls_t u;
        if (cap_upcalls(&lwc_rt.caps[i], &u) && u.env == env)
            return true;
    }
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].runs && lwc_scont_env(ps->sc[i].s) == env)
            return true;
    return false;
}

/* Note [Orphans]: the scheduler that adopts, into *u; false if none will. */
static bool choose_adopter(const struct pass *ps, struct lwc_thread *t, lwc_upcalls_t *u)
{
    if (adopter_of(t->current, u) || (!t->current && t->cap && cap_adopter(t->cap, u)))
        return true;
    for (size_t i = 0; i < ps->nsc; i++)
        if (atomic_load(&ps->sc[i].s->host_waits) && adopter_of(ps->sc[i].s, u) &&
            env_runs(ps, u->env))
            return true;
    for (unsigned i = 0; i < lwc_rt.ncaps; i++)
        if (cap_adopter(&lwc_rt.caps[i], u))
            return true;
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].runs && adopter_of(ps->sc[i].s, u))
            return true;
    return false;
}

#define ORPHAN_BATCH 8

struct orphan { lwc_scont_t *s; lwc_upcalls_t old; void *old_local; };
struct adoption { struct orphan *o; size_t n, next; const lwc_upcalls_t *to; };

static lwc_word_t adopt_body(lwc_tx_t *tx, void *arg)
{
    struct adoption *a = arg;
    for (size_t i = a->next; i < a->n && i < a->next + ORPHAN_BATCH; i++) {
        lwc_scont_t *s = a->o[i].s;
        if (!lwc_tx_read(tx, &s->pending))
            lwc_tx_write(tx, &s->pending, (lwc_word_t)(intptr_t)LWC_EBLOCKED_SCHED);
        a->to->unblock_thread(tx, s, a->to->env);
    }
    return 0;
}

/* Note [Orphans]: hand every stranded SCont to the scheduler `to`.  How many
 * it took in. */
static unsigned adopt(struct pass *ps, const lwc_upcalls_t *to)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->nsc; i++)
        n += ps->sc[i].stranded;
    struct orphan *o = malloc(n * sizeof *o);
    if (!o) {
        lwc_warn("out of memory in a detection pass: %zu stranded threads not adopted", n);
        return 0;
    }
    for (size_t i = 0, k = 0; i < ps->nsc; i++) {
        lwc_scont_t *s = ps->sc[i].s;
        if (!ps->sc[i].stranded)
            continue;
        o[k].s = s;
        lwc_scont_load_upcalls(s, &o[k].old);
        o[k].old_local = atomic_load(&s->local);
        lwc_scont_set_upcalls(s, to);
        atomic_store(&s->local, NULL);
        k++;
    }
    struct adoption a = { o, n, 0, to };
    unsigned adopted = 0;
    for (; a.next < n; a.next += ORPHAN_BATCH) {
        int err = lwc_tx_run(adopt_body, &a, NULL, true);
        for (size_t i = a.next; i < n && i < a.next + ORPHAN_BATCH; i++) {
            if (err == LWC_OK && atomic_load(&o[i].s->local)) {
                adopted++;
                continue;
            }
            lwc_scont_set_upcalls(o[i].s, &o[i].old);
            atomic_store(&o[i].s->local, o[i].old_local);
        }
    }
    if (adopted < n)
        lwc_warn("%zu threads stranded in a scheduler nothing can reach could not be adopted",
                 n - adopted);
    free(o);
    return adopted;
}

static const char *status_name(lwc_status_t st);

static void debug_report(struct pass *ps)
{
    for (size_t i = 0; i < ps->nsc; i++) {
        struct sc *c = &ps->sc[i];
        unsigned long long id = lwc_scont_id(c->s);
        if (c->root)
            fprintf(stderr, "lwc: gc: SCont %llu is a root (%s)\n", id, status_name(c->st));
        if (c->stranded) {
            fprintf(stderr, "lwc: gc: SCont %llu is stranded in a scheduler nothing reaches\n", id);
            continue;
        }
        bool blocked = c->st == LWC_BLOCKED_ON_CONCDS;
        if (c->root || (!blocked && c->st != LWC_BLOCKED_ON_SCHED))
            continue;
        if (!c->marked) {
            fprintf(stderr, "lwc: gc: SCont %llu is blocked and unreachable\n", id);
            continue;
        }
        fprintf(stderr, "lwc: gc: SCont %llu is %s and reachable, first through %s", id,
                blocked ? "blocked" : "runnable", c->kept_by);
        if (c->kept_in && c->kept_in->stack.map)
            fprintf(stderr, " (SCont %llu, %td bytes below its stack's top)",
                    (unsigned long long)lwc_scont_id(c->kept_in),
                    stack_top(c->kept_in) - (const char *)c->kept_at);
        else
            fprintf(stderr, " (%p)", c->kept_at);
#if LWC_VALGRIND
        VALGRIND_MAKE_MEM_DEFINED(&c->kept_word, sizeof c->kept_word);    /* read from anywhere */
#endif
        const char *w = (const char *)c->kept_word;
        if (!blocked && w == (const char *)lwc_scont_env(c->s))
            fprintf(stderr, ": the word %p is its scheduler's env\n", (const void *)w);
        else if (w >= (const char *)c->s && w < (const char *)(c->s + 1))
            fprintf(stderr, ": the word %p points into its struct\n", (const void *)w);
        else
            fprintf(stderr, ": the word %p points %td bytes below its stack's top\n",
                    (const void *)w, stack_top(c->s) - w);
    }
}

/* ---- the report ----------------------------------------------------------------------------------- */

static const char *status_name(lwc_status_t st)
{
    static const char *names[] = { "running", "runnable", "blocked on a data structure",
                                   "completed" };
    return names[st & 3];
}

static void report(struct pass *ps)
{
    size_t cap = 256 + ps->nsc * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return;
    len += (size_t)snprintf(buf + len, cap - len,
                            "lwc: deadlock: no thread can run, and nothing outside lwc can wake "
                            "one (no pin, timer or foreign call)\n");
    for (size_t i = 0; i < ps->nsc && len < cap; i++) {
        struct sc *c = &ps->sc[i];
        if (c->st != LWC_BLOCKED_ON_CONCDS && !c->stranded)
            continue;
        lwc_scont_t *s = c->s;
        len += (size_t)snprintf(buf + len, cap - len, "lwc:   SCont %llu%s%s%s: %s",
                                (unsigned long long)lwc_scont_id(s), s->name ? " \"" : "",
                                s->name ? s->name : "", s->name ? "\"" : "", status_name(c->st));
        if (len < cap && c->stranded)
            len += (size_t)snprintf(buf + len, cap - len,
                                    ", in a scheduler that nothing reaches (none adopts it)");
        else if (len < cap && s->retry_nodes)
            len += (size_t)snprintf(buf + len, cap - len, ", in a PTM retry on %u PVars",
                                    s->retry_nnodes);
        else if (len < cap && s->wait_what)
            len += (size_t)snprintf(buf + len, cap - len, ", on %s %p", s->wait_what,
                                    s->wait_obj);
        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s\n",
                                    atomic_load(&s->host_waits) ? " (the host waits for it)" : "");
    }
    pthread_mutex_lock(&gc.report_lock);
    lwc_report_fn fn = gc.report;
    void *arg = gc.report_arg;
    pthread_mutex_unlock(&gc.report_lock);
    if (fn)
        fn(buf, arg);
    else
        fputs(buf, stderr);
    free(buf);
}

/* ---- the pass ------------------------------------------------------------------------------------ */

static void world_stop(struct lwc_thread *t, void *sp)
{
    if (t->cap && !atomic_load(&t->cap->safe))
        safe_enter(t, sp);
    atomic_store(&lwc_gc_request, 1);               /* seq_cst: Note [Stopping the world] */
    for (unsigned i = 0; i < lwc_rt.ncaps; i++) {
        struct lwc_cap *c = &lwc_rt.caps[i];
        for (unsigned n = 0; atomic_load(&c->busy) != CAP_IDLE && !atomic_load(&c->safe); n++)
            lwc_spin_step(n);
    }
}

static void world_start(void)
{
    atomic_store(&lwc_gc_request, 0);
    lwc_futex_wake(&lwc_gc_request, INT_MAX);
}

/* Note [When a pass runs by itself]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A pass reads references where lwc can see them; a program may keep some
 * where it cannot, in malloc memory (a spawned thread's argument block, say).
 * lwc_gc's caller has accepted the rule that such references be pinned; the
 * pass that runs by itself must be right without it.  It is, when nothing can
 * run: no SCont runs or waits in a scheduler's queue, every capability idles
 * with no timer due, and every plain OS thread lwc knows sleeps inside lwc.
 * Then no code at all will read that malloc memory until something outside
 * acts (a pin, the static data and the host's stack stand for what outside
 * can reach), and a blocked thread that no root reaches can never be woken.
 * So the idle pass acts only in that state: finding an SCont running, or
 * runnable in a live scheduler (Note [Orphans]), it wakes nobody. */
static bool nothing_runs(const struct pass *ps)
{
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].runs)
            return false;
    return true;
}

/* Deadlocked: nothing runs, and some SCont is blocked or stranded. */
static bool deadlocked(const struct pass *ps)
{
    if (!nothing_runs(ps))
        return false;
    for (size_t i = 0; i < ps->nsc; i++)
        if (ps->sc[i].st == LWC_BLOCKED_ON_CONCDS || ps->sc[i].stranded)
            return true;
    return false;
}

#define PASS_TRIES 8

/* The pass, with the lock held and every capability stopped.  Returns how
 * many SConts it woke, or -1 if the world kept moving. */
static int pass_run(struct lwc_thread *t, const void *sp, bool idle)
{
    for (unsigned attempt = 0; attempt < PASS_TRIES; attempt++) {
        struct pass ps = { .caller = t, .caller_sp = sp };
        uint64_t seq = lwc_ptm_quiet_seq();
        lwc_traced_lock();
        size_t npins = lwc_traced_npins();
#if LWC_VALGRIND
        VALGRIND_DISABLE_ERROR_REPORTING;
#endif
        mark(&ps);
#if LWC_VALGRIND
        VALGRIND_ENABLE_ERROR_REPORTING;
#endif
        lwc_traced_unlock();
        if (debug_passes())
            debug_report(&ps);
        if (ps.nomem) {
            pass_free(&ps);
            lwc_warn("out of memory in a detection pass: nothing woken");
            return 0;
        }
        if (atomic_load(&lwc_commit.seq) != seq) {
            if (debug_passes())
                fprintf(stderr, "lwc: gc: the sequence moved while marking\n");
            pass_free(&ps);
            continue;
        }
        if (debug_passes())
            fprintf(stderr, "lwc: gc: %s pass: %zu SConts, %s\n", idle ? "an idle" : "a",
                    ps.nsc, nothing_runs(&ps) ? "none runs" : "some run");
        if (idle && !nothing_runs(&ps)) {
            pass_free(&ps);                 /* Note [When a pass runs by itself] */
            return 0;
        }
        struct wake wk = { &ps, seq, LWC_EBLOCKED_CONCDS, false, 0, 0 };
        bool deadlock = false;
        size_t victims = 0, orphans = 0;
        for (size_t i = 0; i < ps.nsc; i++) {
            victims += is_victim(&wk, &ps.sc[i]);
            orphans += ps.sc[i].stranded;
        }
        lwc_upcalls_t adopter;
        if (orphans && !choose_adopter(&ps, t, &adopter)) {
            static atomic_flag warned = ATOMIC_FLAG_INIT;
            if (!atomic_flag_test_and_set(&warned))
                lwc_warn("%zu threads are stranded in a scheduler that nothing reaches, and "
                         "no live scheduler adopts orphans (lwc_sched_adopts_orphans)", orphans);
            orphans = 0;
        }
        if (!victims && !orphans && idle && npins == 0 && ps.foreign_asleep && deadlocked(&ps)) {
            deadlock = true;
            wk.err = LWC_EDEADLOCK;
            wk.only_hosts = true;
        }
        if (!victims && !orphans && !deadlock) {
            pass_free(&ps);
            return 0;
        }
        bool woke = wake(&wk);
        if (debug_passes())
            fprintf(stderr, "lwc: gc: woke %u%s\n", wk.woken, woke ? "" : ", the world moved");
        if (!woke) {
            pass_free(&ps);
            continue;
        }
        unsigned adopted = orphans ? adopt(&ps, &adopter) : 0;
        if (debug_passes() && orphans)
            fprintf(stderr, "lwc: gc: adopted %u\n", adopted);
        if (deadlock)
            report(&ps);
        pass_free(&ps);
        return (int)(wk.woken + adopted);
    }
    return -1;
}

/* An idle pass wanted while another ran: Note [Idle passes never lost]. */
static _Atomic int idle_again;

static int collect(struct lwc_thread *t, bool idle)
{
    if (idle) {
        /* Note [Idle passes never lost]
         * A capability that goes idle while a pass runs cannot wait for the
         * lock (the pass may be waiting for it to stop), so it leaves a
         * request in idle_again, and whoever holds the lock looks at it
         * again after unlocking: either the holder sees the request, or the
         * requester's trylock comes after the unlock and succeeds. */
        int n = 0;
        atomic_store(&idle_again, 1);
        while (pthread_mutex_trylock(&gc.lock) == 0) {
            while (atomic_exchange(&idle_again, 0))
                if (all_idle(true))
                    n += collect_locked(t, true);
            pthread_mutex_unlock(&gc.lock);
            if (!atomic_load(&idle_again))
                break;
        }
        return n;
    }
    while (pthread_mutex_trylock(&gc.lock) != 0) {
        lwc_gc_safepoint(t);                        /* the pass that holds it may wait for us */
        sched_yield();
    }
    int n = collect_locked(t, false);
    pthread_mutex_unlock(&gc.lock);
    return n;
}

/* One pass, with gc.lock held. */
static int collect_locked(struct lwc_thread *t, bool idle)
{
    __builtin_unwind_init();
    volatile char here = 0;
    bool was_safe = t->cap && atomic_load(&t->cap->safe);
    world_stop(t, (void *)&here);
    int n = pass_run(t, (const void *)&here, idle);
    world_start();
    if (t->cap && !was_safe)
        safe_leave(&t->cap->safe);
    (void)here;
    return n < 0 ? 0 : n;
}

/* ---- the public side ---------------------------------------------------------------------------- */

int lwc_gc(void)
{
    if (!atomic_load(&lwc_rt.up))
        return LWC_EINVAL;
    struct lwc_thread *t = lwc_thread_get();
    if (!t)
        return LWC_ENOMEM;
    if (t->tx.active || t->draining)
        return LWC_EINVAL;
    return collect(t, false);
}

void lwc_set_deadlock_report(lwc_report_fn fn, void *arg)
{
    pthread_mutex_lock(&gc.report_lock);
    gc.report = fn;
    gc.report_arg = arg;
    pthread_mutex_unlock(&gc.report_lock);
}

int lwc_host_wait_begin(lwc_scont_t *s)
{
    if (!s || !lwc_scont_id(s))
        return LWC_EINVAL;
    atomic_store(&s->deadlocked, 0);
    atomic_store(&s->host_waits, 1);
    return LWC_OK;
}

int lwc_host_wait_end(lwc_scont_t *s)
{
    if (!s)
        return LWC_EINVAL;
    atomic_store(&s->host_waits, 0);
    return atomic_exchange(&s->deadlocked, 0) ? LWC_EDEADLOCK : LWC_OK;
}

/* Note [Scrubbing the stack]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A stack is scanned from its lowest live word up, and the live frames have
 * slots their function never wrote: padding, locals not yet set, spills of
 * registers that held something else.  Those slots hold whatever the frames
 * that were there before left behind.  A thread that spawns a child and then
 * blocks would so keep, in the frames of its blocking call, the child's
 * address from the spawn's frames at the same depth: the child, and all it
 * reaches, could never be found blocked for good.  So the spawn of rr and ws
 * ends by zeroing, from a frame of its own, the stack its callees used, and
 * a switch that blocks its SCont zeroes what the transaction body left (Note
 * [Switch targets] in scont.c).  The cost is a memset of SCRUB_BYTES per
 * spawn and of SCRUB_BODY_BYTES per block.  768 bytes cover the frames of
 * a spawn on rr and ws where they hold the child's address (measured with a
 * canary-filled stack: all but two words within 550 bytes of the spawner's
 * frame), and the frames of a blocking call that will lie there later;
 * every 256 bytes more are 16 more stores in every spawn. */
#if LWC_ASAN || LWC_TSAN
#define SCRUB_BYTES 2048        /* instrumented frames are larger */
#else
#define SCRUB_BYTES 768
#endif
#define SCRUB_BODY_BYTES 512

/* Each is its own frame, right below its caller's, of the size it zeroes.
 * Plain 16-byte stores, 16 to a loop: memset of a constant size becomes `rep
 * stos`, whose start-up cost was most of the scrub (9% of the ring
 * benchmark), so GCC must not turn the loop into one; and the array is not
 * volatile, which made GCC compute each address apart (three instructions a
 * store, not one): the empty asm that reads it keeps the stores. */
#if defined(__GNUC__) && !defined(__clang__)
#define SCRUB_NO_MEMSET __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define SCRUB_NO_MEMSET
#endif
typedef uint64_t scrub_chunk __attribute__((vector_size(16)));
#define SCRUB(name, bytes)                                              \
    __attribute__((noinline)) SCRUB_NO_MEMSET void name(void)           \
    {                                                                   \
        scrub_chunk dead[(bytes) / sizeof(scrub_chunk)];                \
        _Pragma("GCC unroll 16")                                        \
        for (size_t i = 0; i < sizeof dead / sizeof dead[0]; i++)       \
            dead[i] = (scrub_chunk){ 0, 0 };                            \
        __asm__ __volatile__("" : : "r"(dead) : "memory");              \
    }
SCRUB(lwc_stack_scrub, SCRUB_BYTES)
SCRUB(lwc_stack_scrub_body, SCRUB_BODY_BYTES)

/* From lwc_shutdown: the buffers kept between passes go. */
void lwc_gc_shutdown(void)
{
    pthread_mutex_lock(&gc.lock);
    free(gc.filter);
    free(gc.radix_count);
    gc.filter = NULL;
    gc.radix_count = NULL;
    pthread_mutex_unlock(&gc.lock);
}

int lwc_host_enter(const void *stack_lo)
{
    struct lwc_thread *t = lwc_thread_get();
    if (!t)
        return LWC_ENOMEM;
    if (t->current || t->cap)
        return LWC_EINVAL;
    t->host_lo = stack_lo;
    return LWC_OK;
}

void lwc_host_leave(void)
{
    struct lwc_thread *t = lwc_thread_peek();
    if (t)
        t->host_lo = NULL;
}

void lwc_scont_note_wait(lwc_scont_t *s, const char *what, const void *obj)
{
    if (!s)
        return;
    s->wait_what = what;
    s->wait_obj = obj;
}
