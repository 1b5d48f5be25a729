/* Copy stacks (LWC_STACK_COPY): SConts that share their capability's stack. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sanitize.h"
#if LWC_VALGRIND
#include <valgrind/memcheck.h>
#endif

/* Note [Copy stacks]
 * ~~~~~~~~~~~~~~~~~~
 * A copy SCont has no stack of its own.  It runs on its capability's shared
 * stack, and while another copy SCont runs there, its frames wait in a
 * malloc'd buffer (`saved`) that holds only the part it used: a thread
 * blocked in an MVar take keeps 528 bytes (x86-64) instead of the pages it
 * touched (at least one, 4 KiB).  libaco has the same shape.
 *
 * The frames hold their own addresses (frame links, pointers to locals), so
 * they must come back to the very addresses they left: a copy SCont runs on
 * one capability for life, the one it first ran on (`home`, set after the
 * commit of its first run: lwc_copy_first_run).  A body that marks it
 * running elsewhere ends with LWC_ESTATE (lwc_copy_claim), and a scheduler
 * with several capabilities routes it home (lwc_scont_home_cap).  `home`
 * is not a PVar: a body may read it set by a first run committed after the
 * body's own reads, and such a body is run again instead (it is doomed).  Only
 * unbound SConts run on a capability's worker, so a bound SCont that asks
 * for a copy stack gets a guarded one, and a copy SCont that has run cannot
 * be lwc_eval'd.  For the same reason a pointer into a copy SCont's stack
 * means something only while it runs: lwc's own records of a blocked thread
 * (MVar waiters, retry nodes and waiters) live in the heap.
 *
 * Copying is lazy.  The shared stack has an `owner`, the SCont whose frames
 * are in it.  A copy SCont that switches to an SCont with a stack of its own,
 * or to the native stack, leaves its frames where they are: if it is the next
 * copy SCont to run there, it runs with no copy at all.  Only when another
 * copy SCont is to run is the owner's used part, from its saved stack
 * pointer to the top, copied out (`save`), and the newcomer's copied in
 * (`restore`), or its first frame laid out.  Both copies must run off the
 * shared stack: from the native stack or a stack of its own, lwc_copy_switch
 * does them before it jumps; from a copy SCont, which runs on the very
 * frames the newcomer's overwrite, it jumps first to the capability's
 * `copier`, a small context of its own that copies and jumps on.  The
 * copier records where the SCont it left stopped (what lwc_land would), and
 * the landing side records the copier's stack pointer instead, ready for
 * next time.  A completed owner's frames are dead: nothing is saved.
 *
 * Two invariants carry this without a lock.  A copy SCont that runs owns
 * its shared stack (it was restored, or was the owner already), so a
 * switch from a copy SCont is a switch from the shared stack
 * (lwc_copy_switch asks just that).  And only whoever holds capability c
 * touches c's shared stack, its owner field, its copier and the buffers of
 * the SConts homed there: the body that creates the stack runs on the
 * holder (lwc_copy_claim; lwc_cap_start took the capability idle first),
 * the copies run on the holder's OS thread between commit and landing,
 * and a suspended copy SCont's buffer is grown only by its own switch-out.
 * The detector reads them with the world stopped.
 *
 * Saving happens after a commit, and a commit cannot fail.  So the switch
 * that suspends a copy SCont makes room for its frames in its transaction
 * (lwc_copy_reserve: the depth where its transaction body began, plus the
 * most any swap has taken below such a start, learned as frames are saved;
 * or, where the start is not to be had, the body's depth plus COPY_SLACK),
 * and LWC_ENOMEM ends the switch, nothing committed, if there is none.
 *
 * The detector scans an owner's frames in place, and anyone else's in its
 * buffer, as standing for the shared stack's addresses (detect_roots.c).
 * The tools are told: valgrind that the frames copied in are what they
 * hold (the addresses below the last owner's stack pointer are no-access
 * to memcheck), AddressSanitizer that the shared stack holds no redzones
 * (the owner's are not the newcomer's), and every tool of the switch as of
 * any other, to the shared stack (sanitize.h); the copier is not a context
 * the tools need to know of, since it touches only the stacks' bytes. */
#define COPY_SLACK   512             /* bytes: see lwc_copy_reserve */
#define COPIER_STACK (64 * 1024)

struct lwc_copy_stack {
    struct lwc_stack  stack;         /* the shared stack */
    char             *lo, *hi;
    lwc_scont_t      *owner;         /* whose frames are in it, or NULL */
    lwc_ctx_t         copier;
    struct lwc_stack  copier_stack;
};

lwc_stack_kind_t lwc_default_stack_kind = LWC_STACK_GUARDED;

void lwc_stack_set_default_kind(lwc_stack_kind_t kind)
{
    lwc_default_stack_kind = kind == LWC_STACK_DEFAULT ? LWC_STACK_GUARDED : kind;
}

size_t lwc_copy_stack_size(void)
{
    size_t size = lwc_stack_default_size();
    return size > ((size_t)1 << 20) ? size : (size_t)1 << 20;
}

static void copier_main(lwc_transfer_t tr, void *arg);

static struct lwc_copy_stack *copy_stack_make(void)
{
    struct lwc_copy_stack *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    if (lwc_stack_get(&cs->stack, lwc_copy_stack_size(), LWC_STACK_GUARDED) != LWC_OK) {
        free(cs);
        return NULL;
    }
    if (lwc_stack_get(&cs->copier_stack, COPIER_STACK, LWC_STACK_PLAIN) != LWC_OK) {
        lwc_stack_put(&cs->stack);
        free(cs);
        return NULL;
    }
    cs->lo = lwc_stack_lo(&cs->stack);
    cs->hi = cs->lo + lwc_stack_usable(&cs->stack);
    lwc_ctx_make(&cs->copier, lwc_stack_lo(&cs->copier_stack),
                 lwc_stack_usable(&cs->copier_stack), copier_main, cs);
    return cs;
}

void lwc_copy_stack_free(struct lwc_cap *cap)
{
    struct lwc_copy_stack *cs = cap->copy;
    if (!cs)
        return;
    lwc_stack_put(&cs->stack);
    lwc_stack_put(&cs->copier_stack);
    free(cs);
    cap->copy = NULL;
}

const struct lwc_stack *lwc_scont_stack(const lwc_scont_t *s)
{
    struct lwc_cap *home = lwc_scont_home(s);
    if (home)
        return home->copy ? &home->copy->stack : NULL;
    return s->stack.map ? &s->stack : NULL;
}

bool lwc_copy_in_place(const lwc_scont_t *s)
{
    struct lwc_cap *home = lwc_scont_home(s);
    return home && home->copy && home->copy->owner == s;
}

void lwc_copy_claim(lwc_tx_t *tx, lwc_scont_t *s, struct lwc_cap *cap)
{
    struct lwc_cap *home = lwc_scont_home(s);
    if (!cap)
        lwc_tx_abort(tx, LWC_ESTATE);
    /* Note [Copy stacks]: a doomed body is run again, not failed. */
    if (home && home != cap)
        lwc_tx_abort(tx, lwc_tx_reads_current(tx) ? LWC_ESTATE : LWC_TX_RERUN);
    if (home)
        return;
    /* Its first run: the body runs on whoever holds cap, alone. */
    if (!cap->copy && !(cap->copy = copy_stack_make()))
        lwc_tx_abort(tx, LWC_ENOMEM);
    tx->gives_stack = true;
    tx->first_run = s;
    tx->first_cap = cap;
}

void lwc_copy_first_run(lwc_scont_t *s, struct lwc_cap *cap)
{
    if (lwc_scont_home(s))
        return;
    lwc_ctx_clear(&s->ctx);                 /* restore lays out its first frame */
    s->saved_len = 0;
    atomic_store_explicit(&s->home, cap, memory_order_release);
}

/* Make s->saved hold at least n bytes. */
static bool saved_room(lwc_scont_t *s, size_t n)
{
    if (n <= s->saved_cap)
        return true;
    size_t cap = (n + 15) & ~(size_t)15;    /* what malloc would round it to */
    char *p = realloc(s->saved, cap);
    if (!p)
        return false;
    s->saved = p;
    s->saved_cap = (uint32_t)cap;
    return true;
}

/* How deep will self be when it swaps?  Its transaction's body began at
 * the stack pointer lwc_tx_call saved (ptm/tx_*.S), and the commit's path
 * down to the swap is the same few functions every time, from that frame or
 * one below it: so the depth is known to within the most a swap took below
 * its body's start, learned from every save (`swap_below`; a save that
 * finds too little room makes it, as the first few do).  Reserving from the body's own
 * depth instead kept a blocked MVar taker's 768 bytes in 1536.  Where the
 * body is left by setjmp (the sanitizers' builds) the start is not to be
 * had, and the body's depth plus COPY_SLACK, more than the swap's frames
 * below it, does. */
#if LWC_TX_ASM
static _Atomic uint32_t swap_below;
#endif

void lwc_copy_reserve(lwc_tx_t *tx, lwc_scont_t *self)
{
    struct lwc_copy_stack *cs = lwc_scont_home(self)->copy;
    size_t depth = (size_t)(cs->hi - (char *)__builtin_frame_address(0));
#if LWC_TX_ASM
    char *body = tx->jb[LWC_TX_JB_SP];
    if (body > cs->lo && body <= cs->hi)
        depth = (size_t)(cs->hi - body);
    size_t need = depth + atomic_load_explicit(&swap_below, memory_order_relaxed);
#else
    size_t need = depth + COPY_SLACK;
#endif
    self->saved_base = (uint32_t)depth;
    if (!saved_room(self, need))
        lwc_tx_abort(tx, LWC_ENOMEM);
}

static void learn_swap_below(lwc_scont_t *o, size_t len)
{
#if LWC_TX_ASM
    uint32_t below = len > o->saved_base ? (uint32_t)(len - o->saved_base) : 0;
    uint32_t known = atomic_load_explicit(&swap_below, memory_order_relaxed);
    while (below > known &&
           !atomic_compare_exchange_weak_explicit(&swap_below, &known, below,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
#else
    (void)o;
    (void)len;
#endif
}

__attribute__((no_sanitize_address))
static void save(struct lwc_copy_stack *cs, lwc_scont_t *o)
{
    if (!LWC_COPY_STACKS)
        abort();                            /* no SCont has a home: scont_create */
    char *sp = lwc_ctx_sp(&o->ctx);
    size_t len = (size_t)(cs->hi - sp);
    learn_swap_below(o, len);
    if (!saved_room(o, len)) {
        lwc_warn("SCont %llu: no memory to save its copy stack (%zu bytes)",
                 (unsigned long long)lwc_scont_id(o), len);
        abort();
    }
#if LWC_ASAN
    __asan_unpoison_memory_region(sp, len);
#endif
    memcpy(o->saved, sp, len);
    o->saved_len = (uint32_t)len;
}

__attribute__((no_sanitize_address))
static void restore(struct lwc_copy_stack *cs, lwc_scont_t *s)
{
#if LWC_ASAN
    __asan_unpoison_memory_region(cs->lo, (size_t)(cs->hi - cs->lo));
#endif
#if LWC_VALGRIND
    /* Where the frames go: below the last owner's stack pointer, memcheck
     * holds the bytes no-access.  (Deeper frames are its own to mark.) */
    size_t len = lwc_ctx_sp(&s->ctx) ? s->saved_len : 512;
    VALGRIND_MAKE_MEM_UNDEFINED(cs->hi - len, len);
#endif
    if (!lwc_ctx_sp(&s->ctx)) {
        lwc_scont_make_context(s, cs->lo, (size_t)(cs->hi - cs->lo));
        return;
    }
    memcpy(cs->hi - s->saved_len, s->saved, s->saved_len);
}

/* Off the shared stack: t->current's frames go in, the owner's out. */
static void copy_in(struct lwc_copy_stack *cs, struct lwc_thread *t)
{
    lwc_scont_t *o = cs->owner;
    if (o && !o->completed)
        save(cs, o);
    restore(cs, t->current);
    cs->owner = t->current;
}

static void copier_main(lwc_transfer_t tr, void *arg)
{
    struct lwc_copy_stack *cs = arg;
    for (;;) {
        struct lwc_thread *t = tr.data;
        lwc_ctx_saved(t->prev_ctx, tr);     /* the SCont that left, as lwc_land would */
        t->prev_ctx = &cs->copier;          /* and the landing records us */
        copy_in(cs, t);
        tr = lwc_ctx_switch(&cs->copier, &t->current->ctx, t);
    }
}

/* Note [Switch targets] in scont.c: the target is read from t->current,
 * never held across a call. */
__attribute__((noinline, no_sanitize_thread))
lwc_transfer_t lwc_copy_switch(struct lwc_thread *t)
{
    struct lwc_copy_stack *cs = lwc_scont_home(t->current)->copy;
    if (cs->owner != t->current) {
        if (t->prev && lwc_scont_home(t->prev))     /* we run on the shared stack */
            return lwc_ctx_switch(t->prev_ctx, &cs->copier, t);
        copy_in(cs, t);
    }
    return lwc_ctx_switch(t->prev_ctx, &t->current->ctx, t);
}

void lwc_copy_forget(lwc_scont_t *s)
{
    struct lwc_cap *home = lwc_scont_home(s);
    if (home && home->copy && home->copy->owner == s)
        home->copy->owner = NULL;
    free(s->saved);
    s->saved = NULL;
    s->saved_len = s->saved_cap = 0;
    atomic_store_explicit(&s->home, NULL, memory_order_relaxed);
}
