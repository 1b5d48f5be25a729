/* Where the detector's marking starts: the SConts a pass gathers, and which
 * of them are roots; the program's static data, pins and plain OS threads'
 * stacks; the writes of blocking switches that idle; the schedulers' envs
 * and the threads stranded in schedulers nothing reaches (Note [Orphans] in
 * detect_wake.c). */
#include "config.h"

#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "detect.h"

/* ---- roots ---------------------------------------------------------------------------------- */

/* lwc's own statics: they link every SCont struct ever made, and the pass
 * must not count that as a reference. */
static void scan_static(struct pass *ps, const char *lo, const char *hi)
{
    const char *skip[][2] = {
        { (const char *)&lwc_rt, (const char *)(&lwc_rt + 1) },
        { (const char *)&lwc_detector, (const char *)(&lwc_detector + 1) },
    };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (skip[i][0] >= lo && skip[i][1] <= hi) {
            scan_static(ps, lo, skip[i][0]);
            scan_static(ps, skip[i][1], hi);
            return;
        }
    }
    lwc_gc_scan(ps, lo, hi);
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
    struct range *r = lwc_gc_grow(ps->root_mem, &ps->cap_root_mem, ps->nroot_mem + 1, sizeof *r,
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
int lwc_gc_static_segments(struct dl_phdr_info *info, size_t size, void *arg)
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

void lwc_gc_pin_root(void *arg, const void *p)
{
    ((struct pass *)arg)->region_at = p;
    lwc_gc_resolve(arg, (uintptr_t)p);
}

/* ---- one pass ------------------------------------------------------------------------------- */

void lwc_gc_pass_free(struct pass *ps)
{
    free(ps->obj);
    free(ps->sc);
    free(ps->seen);
    free(ps->work);
    free(ps->overlay);
    free(ps->envs);
    free(ps->edges);
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
    for (unsigned i = 0; i < lwc_cap_slots(); i++)
        if (atomic_load(&lwc_rt.caps[i].safe) && lwc_rt.caps[i].park_scont == s)
            return &lwc_rt.caps[i];
    return NULL;
}

/* The upcalls of the scheduler a parked capability works for: those of the
 * SCont it is parked on, or, idle on its native stack, of the SCont whose
 * stop left it idle (Note [Idling in a place of its own] in idle.c).  False
 * if it is not parked or works for none. */
bool lwc_gc_cap_upcalls(struct lwc_cap *cap, lwc_upcalls_t *u)
{
    if (cap->host_used && atomic_load(&cap->busy) == CAP_IDLE) {
        *u = cap->host_up;                  /* Note [Hosted capabilities] in host.c */
        return true;
    }
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
 * whoever made it can run it, and it counts as a root, as it always did;
 * with no switch_to_next at all, an inert one (Note [Work]). */
static bool add_env_ref(struct pass *ps, lwc_scont_t *s, bool *inert)
{
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(s, &u);
    *inert = !u.switch_to_next;
    if (!u.switch_to_next || !u.env)
        return false;
    struct env_ref *e = lwc_gc_grow(ps->envs, &ps->cap_env, ps->nenv + 1, sizeof *e, &ps->nomem);
    if (!e)
        return false;
    ps->envs = e;
    e[ps->nenv++] = (struct env_ref){ (uintptr_t)u.env, (uint32_t)ps->nsc, false };
    return true;
}

/* What each SCont is, as the pass sees it. */
/* The SCont being gathered, ps->nsc, retries on nodes' PVars. */
static void add_retry_edges(struct pass *ps, const struct retry_node *nodes, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct retry_edge *e = lwc_gc_grow(ps->edges, &ps->cap_edges, ps->nedges + 1, sizeof *e,
                                           &ps->nomem);
        if (!e)
            return;
        ps->edges = e;
        e[ps->nedges++] = (struct retry_edge){ (uintptr_t)nodes[i].pv, (uint32_t)ps->nsc };
    }
}

static int edge_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const struct retry_edge *)a)->pv, y = ((const struct retry_edge *)b)->pv;
    return x < y ? -1 : x > y;
}

void lwc_gc_sort_edges(struct pass *ps)
{
    if (ps->nedges > 1)
        qsort(ps->edges, ps->nedges, sizeof *ps->edges, edge_cmp);
}

/* Note [Work]
 * ~~~~~~~~~~~
 * The pass that runs by itself acts only when nothing can run (Note [When a
 * pass runs by itself] in detect.c), and a scheduler may idle in an SCont
 * of its own: a per-capability idle thread with no upcalls that sleeps in a
 * retry until its run queue is written.  That SCont reads LWC_RUNNING, and
 * the one idle thread that a scheduler made ahead of time for a capability
 * it never used reads as runnable; taken for work, either kept every
 * deadlock from being found (issue 19).  Neither can run by itself: the
 * first sleeps until a PVar is written, which only a thread that runs can
 * do, and the second, having no switch_to_next, runs only when a running
 * thread switches to it or starts it.  So both are roots (what they reach
 * stays live: the sleeper's stack holds its scheduler) but inert: no work.
 * An SCont sleeps for good when its capability's holder sleeps in a retry
 * with no deadline (`idle_until` LWC_NEVER, published before it parks) and
 * its waiter has not fired: a fired one runs on when the pass ends.  Its
 * blocking switch, if that is where it sleeps, is Note [Idle in a blocking
 * switch] in detect.c: it is no root at all.  A dormant SCont (Note
 * [Dormant SConts] in internal.h) is no work and no root: an object like
 * any other, never adopted. */
static bool sleeps_for_good(const struct lwc_cap *cap, const struct lwc_thread *t)
{
    if (atomic_load(&cap->idle_until) != LWC_NEVER || !t->sleep_word)
        return false;
    return atomic_load(t->sleep_word) != W_FIRED;
}

/* The SConts in safe calls, and their calls' frames (Note [Outcalls] in
 * outcall.c), from every thread lwc knows: with lwc_rt.lock held.  Few, so
 * a short array searched by each SCont; NULL with *n 0 if none. */
struct in_call { lwc_scont_t *s; char *sp; };

static struct in_call *calls_gather(struct pass *ps, size_t *n)
{
    struct in_call *calls = NULL;
    size_t cap = 0;
    *n = 0;
    LWC_EACH_KNOWN_THREAD(t) {
        lwc_scont_t *s = atomic_load_explicit(&t->call_scont, memory_order_acquire);
        if (!s)
            continue;
        struct in_call *c = lwc_gc_grow(calls, &cap, *n + 1, sizeof *c, &ps->nomem);
        if (!c)
            break;
        calls = c;
        calls[(*n)++] = (struct in_call){ s, t->call_sp };
    }
    return calls;
}

static char *call_sp_of(const struct in_call *calls, size_t n, const lwc_scont_t *s)
{
    for (size_t i = 0; i < n; i++)
        if (calls[i].s == s)
            return calls[i].sp;
    return NULL;
}

void lwc_gc_gather_sconts(struct pass *ps)
{
    pthread_mutex_lock(&lwc_rt.lock);
    size_t ncalls;
    struct in_call *calls = calls_gather(ps, &ncalls);
    for (struct scont_batch *b = lwc_rt.scont_batches; b && !ps->nomem; b = b->next)
    for (lwc_scont_t *s = b->s; s < b->s + b->used && !ps->nomem; s++) {
        /* First: a plain OS thread may be making this one (scont_create).
         * Then: a completed one is nothing to the pass (its frames are
         * dead), and once the capabilities have let it go a plain OS thread
         * may drop its last handle and free its stack at any time. */
        if (!atomic_load_explicit(&s->alive, memory_order_acquire) || s->completed)
            continue;
        /* Not yet run: Note [Stacks on first run] in scont.c.  The record
         * is all there is to scan.  A copy SCont's frames are on the shared
         * stack only while it owns it, else in its buffer (Note [Copy
         * stacks] in copy.c). */
        const struct lwc_stack *st = lwc_scont_stack(s);
        bool stackless = !st, in_buffer = false;
        if (st && lwc_scont_home(s) && !lwc_copy_in_place(s)) {
            stackless = true;
            in_buffer = lwc_ctx_sp(&s->ctx) && s->saved_len;
        }
        struct sc *c = lwc_gc_grow(ps->sc, &ps->cap_sc, ps->nsc + 1, sizeof *c, &ps->nomem);
        if (!c)
            break;
        ps->sc = c;
        c = &ps->sc[ps->nsc];
        lwc_word_t w = lwc_pvar_load(&s->status);
        *c = (struct sc){ .s = s, .st = status_of(w), .in_buffer = in_buffer };
        struct lwc_cap *cap = parked_on(s);
        struct lwc_thread *t = cap ? cap->park_thread : NULL;
        if (t && t->idle_self == s &&               /* fired: it runs again, a root */
            atomic_load(&t->idle_waiter->state) != W_FIRED) {
            c->st = t->idle_completing ? LWC_COMPLETED : LWC_BLOCKED_ON_CONCDS;
            if (!t->idle_completing)
                c->idle_waiter = t->idle_waiter;
        }
        char *lo = stackless ? NULL : lwc_stack_lo(st);
        char *hi = stackless ? NULL : lo + lwc_stack_usable(st);
        /* In a safe call, its saved context may be being written by a
         * thread that is no capability's, coming back (Note [Outcalls] in
         * outcall.c): the call's frame, or a parked capability's lower
         * point, says where its frames start. */
        char *call_sp = ncalls && !stackless ? call_sp_of(calls, ncalls, s) : NULL;
        bool in_call = call_sp && call_sp >= lo && call_sp < hi;
        c->sp = stackless ? NULL : cap ? cap->park_sp : in_call ? call_sp : ctx_sp(s);
        if (c->sp < lo || c->sp >= hi)
            c->sp = NULL;
        if (in_call && (!c->sp || c->sp > call_sp))
            c->sp = call_sp;
        if (c->st == LWC_RUNNING) {
            c->root = true;
            c->inert = t && sleeps_for_good(cap, t);    /* Note [Work] */
        } else if (c->st == LWC_BLOCKED_ON_SCHED && lwc_scont_dormant(s, w)) {
            c->dormant = true;
        } else if (c->st == LWC_BLOCKED_ON_SCHED) {
            c->root = !add_env_ref(ps, s, &c->inert);   /* Note [Orphans] in detect_wake.c */
        }
        else if (c->st == LWC_BLOCKED_ON_CONCDS && s->retry_nodes && !c->idle_waiter &&
                 atomic_load(&s->retry_nodes[0].w->state) == W_FIRED)
            c->root = true;                         /* woken, the wake-up in flight */
        else if (c->st == LWC_BLOCKED_ON_CONCDS && s->retry_nodes && !c->idle_waiter)
            add_retry_edges(ps, s->retry_nodes, s->retry_nnodes);
        if (in_call && !c->dormant)
            c->root = true;
        lwc_gc_add_obj(ps, (uintptr_t)s, (uintptr_t)(s + 1), OBJ_SCONT, (uint32_t)ps->nsc);
        /* Below sp lie only dead frames: a word pointing there refers to
         * nothing (and under valgrind, where stacks sit low, an integer
         * often would). */
        if (!stackless)
            lwc_gc_add_obj(ps, (uintptr_t)(c->sp ? c->sp : lo), (uintptr_t)hi, OBJ_STACK,
                           (uint32_t)ps->nsc);
        ps->nsc++;
    }
    pthread_mutex_unlock(&lwc_rt.lock);
    free(calls);
}

void lwc_gc_gather_overlay(struct pass *ps)
{
    for (unsigned i = 0; i < lwc_cap_slots(); i++) {
        struct lwc_cap *cap = &lwc_rt.caps[i];
        struct lwc_thread *t = atomic_load(&cap->safe) ? cap->park_thread : NULL;
        if (!t || !t->idle_self || atomic_load(&t->idle_waiter->state) == W_FIRED)
            continue;
        struct lwc_tx_write *o = lwc_gc_grow(ps->overlay, &ps->cap_overlay,
                                             ps->noverlay + t->idle_nwrites, sizeof *o,
                                             &ps->nomem);
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
void lwc_gc_sort_envs(struct pass *ps)
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
        lwc_gc_filter_add(ps, e, e + 1);
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
    struct obj *o = lwc_gc_find_obj(ps, p);
    if (!o)
        return false;
    return o->kind == OBJ_BLOCK ? o->marked : ps->sc[o->index].marked;
}

/* An env that no word names exactly but that lies inside live memory (a
 * scheduler in a static variable, on the host's stack, inside an lwc_alloc
 * block or an SCont's stack) is live too.  Marking its threads may mark more
 * memory, hence the loop. */
void lwc_gc_envs_inside_roots(struct pass *ps)
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
                lwc_gc_env_live(ps, e->env);
                more = true;
            }
        }
        lwc_gc_drain(ps);
    }
}

/* The runnable SConts left unmarked wait in schedulers that nothing can
 * reach.  They will run again, adopted (Note [Orphans] in detect_wake.c), so what they reach
 * is live: mark it, or a thread they would wake could be taken for dead. */
void lwc_gc_find_stranded(struct pass *ps)
{
    ps->region = "a thread to be adopted";
    ps->region_scont = NULL;
    for (size_t i = 0; i < ps->nsc; i++) {
        struct sc *c = &ps->sc[i];
        bool waits = c->st == LWC_BLOCKED_ON_SCHED && !c->dormant;
        c->runs = !c->inert && (c->root || (waits && c->marked));    /* Note [Work] */
        c->stranded = waits && !c->marked;
    }
    for (size_t i = 0; i < ps->nsc; i++) {
        if (ps->sc[i].stranded) {
            ps->region_at = ps->sc[i].s;
            lwc_gc_mark_sc(ps, i);
        }
    }
    lwc_gc_drain(ps);
}

void lwc_gc_scan_thread_stack(struct pass *ps, const void *lo, const void *hi)
{
    if (!lo || !hi || (const char *)lo >= (const char *)hi)
        return;
    ps->region = "the stack of a plain OS thread";
    ps->region_scont = NULL;
    lwc_gc_scan(ps, lo, hi);
    add_root_mem(ps, lo, hi);
}

