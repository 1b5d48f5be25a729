/* The detector's marking: the objects a word may point into (SConts, their
 * stacks, lwc_alloc blocks, PVars), the filter that drops most words at
 * once, and the walk from the roots to everything they reach.  Note
 * [Stopping the world] in detect.c says why nothing moves meanwhile. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

/* ---- the objects a word may point into ------------------------------------------------------ */

void *lwc_gc_grow(void *arr, size_t *cap, size_t need, size_t elem, bool *nomem)
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

void lwc_gc_add_obj(struct pass *ps, uintptr_t lo, uintptr_t hi, uint8_t kind, uint32_t index)
{
    struct obj *o = lwc_gc_grow(ps->obj, &ps->cap_obj, ps->nobj + 1, sizeof *o, &ps->nomem);
    if (!o)
        return;
    ps->obj = o;
    o[ps->nobj++] = (struct obj){ lo, hi, index, kind, false };
}

static void push(struct pass *ps, uint8_t kind, void *p)
{
    struct item *w = lwc_gc_grow(ps->work, &ps->cap_work, ps->nwork + 1, sizeof *w, &ps->nomem);
    if (!w)
        return;
    ps->work = w;
    w[ps->nwork++] = (struct item){ kind, p };
}

static void add_block(void *arg, const void *p, size_t n)
{
    lwc_gc_add_obj(arg, (uintptr_t)p, (uintptr_t)p + (n ? n : 1), OBJ_BLOCK, 0);
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
    if (!lwc_detector.radix_count)
        lwc_detector.radix_count = malloc(65536 * sizeof *lwc_detector.radix_count);
    size_t *count = lwc_detector.radix_count;
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
struct obj *lwc_gc_find_obj(struct pass *ps, uintptr_t p)
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

void lwc_gc_filter_add(struct pass *ps, uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t c = lo >> CHUNK_SHIFT; c <= (hi - 1) >> CHUNK_SHIFT; c++) {
        size_t b = chunk_bit(c << CHUNK_SHIFT);
        ps->filter[b / 64] |= (uint64_t)1 << (b % 64);
    }
}

static void filter_pvar(void *arg, const void *p, size_t n)
{
    struct pass *ps = arg;
    (void)n;
    uintptr_t a = (uintptr_t)p;
    lwc_gc_filter_add(ps, a, a + sizeof(lwc_pvar_t));
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
bool lwc_gc_debug(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("LWC_GC_DEBUG");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

void lwc_gc_mark_sc(struct pass *ps, size_t i)
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

/* The first of n records, sorted by a key that is their first word, whose
 * key is at least key (n if none). */
static size_t first_at_least(const void *records, size_t n, size_t size, uintptr_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (*(const uintptr_t *)((const char *)records + mid * size) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first of the runnable SConts whose scheduler's env is env, or nenv. */
static size_t env_find(const struct pass *ps, uintptr_t env)
{
    size_t k = first_at_least(ps->envs, ps->nenv, sizeof *ps->envs, env);
    return k < ps->nenv && ps->envs[k].env == env ? k : ps->nenv;
}

/* The scheduler whose env is env can still run its threads: mark them. */
void lwc_gc_env_live(struct pass *ps, uintptr_t env)
{
    for (size_t k = env_find(ps, env); k < ps->nenv && ps->envs[k].env == env; k++) {
        if (ps->envs[k].live)
            return;
        ps->envs[k].live = true;
        lwc_gc_mark_sc(ps, ps->envs[k].index);
    }
}

enum { ITEM_PVAR = 3 };

/* w may be a reference: follow it. */
void lwc_gc_resolve(struct pass *ps, uintptr_t w)
{
    if (w < ps->min || w >= ps->max)
        return;
    size_t b = chunk_bit(w);
    if (!(ps->filter[b / 64] & (uint64_t)1 << (b % 64)))
        return;
    if (w >= ps->env_lo && w <= ps->env_hi) {
        ps->region_word = w;                        /* for LWC_GC_DEBUG */
        lwc_gc_env_live(ps, w);                /* an env may also be an object: go on */
    }
    if (!(w & (sizeof(void *) - 1)) && lwc_traced_is_pvar((const void *)w)) {
        if (see_pvar(ps, (const void *)w)) {
            if (lwc_gc_debug())
                fprintf(stderr, "lwc: gc: PVar %p is reachable through %s (%p)\n", (void *)w,
                        ps->region, ps->region_at);
            push(ps, ITEM_PVAR, (void *)w);
        }
        return;
    }
    struct obj *o = lwc_gc_find_obj(ps, w);
    if (!o)
        return;
    if (o->kind == OBJ_BLOCK) {
        if (!o->marked) {
            o->marked = true;
            push(ps, OBJ_BLOCK, o);
        }
    } else {
        ps->region_word = w;                        /* for LWC_GC_DEBUG */
        lwc_gc_mark_sc(ps, o->index);
    }
}

/* Note [PVars inside other memory]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A PVar that lwc_pvar_new made is known by its address (Note [Slabs]
 * in traced.c), and a word pointing at it leads to its value and to the
 * SConts retrying on it (visit_pvar).  One that lives inside other memory
 * (lwc_pvar_init: an MVar's, a scheduler node's, an SCont's own) is not: a
 * word pointing at it leads to the memory around it, whose scan reads the
 * value like any other word.  What that scan cannot read is who retries on
 * it, for the retry nodes live in malloc'd memory.  So the pass turns the
 * retry nodes of every SCont blocked in a retry into edges, sorted by the
 * PVar's address, and every scan of a range marks the SConts whose PVars lie
 * in it: whatever reaches the memory reaches the PVar, and a write to it
 * would wake them. */
static void mark_retrying_in(struct pass *ps, uintptr_t lo, uintptr_t hi)
{
    size_t a = first_at_least(ps->edges, ps->nedges, sizeof *ps->edges, lo);
    for (; a < ps->nedges && ps->edges[a].pv < hi; a++) {
        ps->region_word = ps->edges[a].pv;          /* for LWC_GC_DEBUG */
        lwc_gc_mark_sc(ps, ps->edges[a].index);
    }
}

/* Every aligned word of [lo, hi).  The words are whatever the memory holds:
 * uninitialised stack slots, and words other threads write, so the sanitizers
 * and memcheck are told not to mind. */
__attribute__((no_sanitize_address, no_sanitize_thread))
void lwc_gc_scan_as(struct pass *ps, const void *lo, const void *hi,
                    const void *own_lo, const void *own_hi)
{
    uintptr_t a = ((uintptr_t)lo + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
    uintptr_t own = (uintptr_t)own_lo, own_size = (uintptr_t)own_hi - own;
    for (const volatile uintptr_t *p = (const uintptr_t *)a; (const void *)(p + 1) <= hi; p++) {
        uintptr_t w = *p;
        if (w - own < own_size)
            continue;                   /* into what is being read: a frame link, a local */
        ps->region_at = (const void *)p;
        lwc_gc_resolve(ps, w);
    }
    if (ps->nedges)
        mark_retrying_in(ps, (uintptr_t)lo, (uintptr_t)hi);
}

void lwc_gc_scan(struct pass *ps, const void *lo, const void *hi)
{
    lwc_gc_scan_as(ps, lo, hi, lo, hi);
}

const char *lwc_gc_stack_top(lwc_scont_t *s)
{
    const struct lwc_stack *st = lwc_scont_stack(s);
    return lwc_stack_lo(st) + lwc_stack_usable(st);
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
    for (struct retry_node *n = lwc_pvar_first_waiter(pv); n; n = n->next)
        if (n->w->scont)
            lwc_gc_resolve(ps, (uintptr_t)n->w->scont);
    lwc_pvar_wunlock(pv);
}

static void visit_pvar(struct pass *ps, lwc_pvar_t *pv)
{
    ps->region = "the value or a retry of PVar";
    ps->region_at = pv;
    ps->region_scont = NULL;
    lwc_gc_resolve(ps, pvar_value(ps, pv));
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
        lwc_gc_scan(ps, &r[kept[i]], &r[kept[i]] + 1);
#elif LWC_CONTEXT_UCONTEXT && defined(__aarch64__)
    const unsigned long long *r = s->ctx.uc.uc_mcontext.regs;
    lwc_gc_scan(ps, &r[19], &r[30]);                       /* x19..x29 */
#elif LWC_CONTEXT_UCONTEXT
    lwc_gc_scan(ps, &s->ctx, &s->ctx + 1);                 /* all of it: conservative */
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
    lwc_gc_resolve(ps, (uintptr_t)s->arg);
    lwc_gc_resolve(ps, (uintptr_t)lwc_scont_env(s));
    lwc_gc_resolve(ps, (uintptr_t)atomic_load(&s->local));
    pvar_waiters(ps, &s->status);
    pvar_waiters(ps, &s->retry_pv);
    pvar_waiters(ps, &s->pending);
    pvar_waiters(ps, &s->interrupt);
    if (s->stack.map)
        scan_saved_registers(ps, s);
    if (c->sp) {
        lwc_gc_scan(ps, c->sp, lwc_gc_stack_top(s));
    } else if (c->in_buffer) {                  /* Note [Copy stacks] in copy.c */
        const struct lwc_stack *st = lwc_scont_stack(s);
        lwc_gc_scan_as(ps, s->saved, s->saved + s->saved_len, lwc_stack_lo(st),
                       lwc_gc_stack_top(s));
    }
}

void lwc_gc_drain(struct pass *ps)
{
    while (ps->nwork && !ps->nomem) {
        struct item it = ps->work[--ps->nwork];
        if (it.kind == OBJ_SCONT) {
            visit_scont(ps, it.p);
        } else if (it.kind == OBJ_BLOCK) {
            struct obj *o = it.p;
            ps->region = "an lwc_alloc block";
            ps->region_scont = NULL;
            lwc_gc_scan(ps, (const void *)o->lo, (const void *)o->hi);
        } else {
            visit_pvar(ps, it.p);
        }
    }
}

/* Mark everything the roots reach; the traced tables are held. */
void lwc_gc_mark(struct pass *ps)
{
    lwc_gc_gather_overlay(ps);
    lwc_gc_gather_sconts(ps);
    lwc_traced_each_block(add_block, ps);
    if (ps->nomem)
        return;
    sort_objs(ps);
    if (ps->nomem)
        return;
    size_t filter_bytes = (1u << FILTER_BITS) / 8;
    if (!lwc_detector.filter)
        lwc_detector.filter = malloc(filter_bytes);
    ps->filter = lwc_detector.filter;
    if (!ps->filter) {
        ps->nomem = true;
        return;
    }
    memset(ps->filter, 0, filter_bytes);
    ps->min = UINTPTR_MAX;
    ps->max = 0;
    for (size_t i = 0; i < ps->nobj; i++) {
        lwc_gc_filter_add(ps, ps->obj[i].lo, ps->obj[i].hi);
        if (ps->obj[i].lo < ps->min)
            ps->min = ps->obj[i].lo;
        if (ps->obj[i].hi > ps->max)
            ps->max = ps->obj[i].hi;
    }
    lwc_traced_each_pvar(filter_pvar, ps);
    lwc_gc_sort_envs(ps);
    lwc_gc_sort_edges(ps);
    ps->region = "running";
    ps->region_scont = NULL;
    for (size_t i = 0; i < ps->nsc; i++) {
        ps->region_at = ps->sc[i].s;
        if (ps->sc[i].root)
            lwc_gc_mark_sc(ps, i);
    }
    ps->region = "the scheduler an idle capability sleeps in";
    for (unsigned i = 0; i < lwc_cap_slots(); i++) {
        struct lwc_cap *cap = &lwc_rt.caps[i];
        lwc_upcalls_t u;
        if (lwc_gc_cap_upcalls(cap, &u)) {
            ps->region_at = cap->park_scont ? (const void *)cap->park_scont : (const void *)cap;
            lwc_gc_resolve(ps, (uintptr_t)u.env);
        }
    }
    ps->region = "a pin";
    lwc_traced_each_pin(lwc_gc_pin_root, ps);
    dl_iterate_phdr(lwc_gc_static_segments, ps);
    pthread_mutex_lock(&lwc_rt.lock);
    ps->foreign_asleep = lwc_gc_foreign_all_asleep();
    for (struct lwc_thread *f = lwc_rt.foreign; f; f = f->foreign_next) {
        const char *lo = f->host_lo ? f->host_lo : f->sleep_sp;
        if (atomic_load(&f->asleep) && f->sleep_sp)
            lwc_gc_scan_thread_stack(ps, lo, f->stack_hi);     /* Note [Plain OS threads] */
    }
    pthread_mutex_unlock(&lwc_rt.lock);
    struct lwc_thread *t = ps->caller;
    if (!t->cap) {                  /* lwc_gc from a plain OS thread: its stack is live */
        if (!t->stack_hi)
            t->stack_hi = lwc_gc_thread_stack_hi();
        lwc_gc_scan_thread_stack(ps, t->host_lo ? t->host_lo : ps->caller_sp, t->stack_hi);
    }
    lwc_gc_drain(ps);
    lwc_gc_envs_inside_roots(ps);
    lwc_gc_find_stranded(ps);
}

