/* SConts: creation, upcalls, switching and completion. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "futex.h"
#include "internal.h"
#include "trace.h"
#include "sanitize.h"

static _Atomic uint64_t next_id = 1;

/* Note [Switching out]
 * ~~~~~~~~~~~~~~~~~~~~
 * A switch commits first and saves registers after: between the two, the old
 * SCont is already LWC_BLOCKED_* for every other capability, yet its stack is
 * still in use.  So the commit raises `switching_out` on it before the new status
 * is published (tx_commit in ptm.c: a relaxed store before the release stores of
 * the status values, so a resumer that reads the new status with acquire sees
 * the flag), and whoever lands after the swap (lwc_land), now off that stack,
 * lowers it.  A resumer that won the status spins on the flag before it swaps in
 * (lwc_swap_to).  The wait is a handful of instructions: the register save. */

static void scont_entry(lwc_transfer_t tr, void *arg);

/* Note [Type-stable SConts]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~
 * A transaction that another capability has already doomed may hold a pointer
 * to an SCont that has since completed and been freed (it read a waiter's or a
 * queue's stale link), and it reads the SCont's upcalls and status before PTM
 * validation throws it away.  Those loads must land on an SCont, never on memory
 * malloc has handed to something else.  So a freed SCont struct goes to a
 * free list and is reused by a later lwc_scont_new, even after
 * lwc_shutdown; only the process's exit gives the structs back.  A
 * reused SCont is re-initialised field by field, the words others may read
 * (status, upcalls, local) with atomic stores: a doomed reader then sees old or
 * new values, and validation rejects it either way because the link it followed
 * has changed.  Upcalls must therefore act only through their transaction: a
 * doomed one may call them on a recycled SCont (schedulers/README.md).  A
 * freed SCont's id becomes 0 and a reused one gets a new id and a new wait
 * token (Note [Status word] in internal.h), so a data structure that recorded
 * the wait token of a waiter can tell whether that thread is still in the wait
 * it queued for (lwc_unblock_waiter, Note [Waiter nodes] in
 * schedulers/mvar/mvar.c).
 *
 * Structs are made SCONT_BATCH at a time, in batches on one list
 * (lwc_rt.scont_batches), and `alive` marks those in use: lwc_shutdown and
 * the detector (lwc_gc_gather_sconts) walk the batches, and the exit
 * destructor frees them all.  A batch costs no malloc header and no link per
 * struct, which is 16 of the bytes a blocked thread costs (Note [What a
 * blocked thread costs] in internal.h).  Creating and freeing an SCont touches
 * no shared list: free structs wait in a cache per OS thread in front of
 * lwc_rt.scont_depot (cache.h), and only a struct never used before takes
 * lwc_rt.lock. */
#define SCONT_LINK offsetof(struct lwc_scont, free_next)

static lwc_scont_t *scont_make(void)
{
    lwc_scont_t *s = NULL;
    pthread_mutex_lock(&lwc_rt.lock);
    struct scont_batch *b = lwc_rt.scont_batches;
    if (!b || b->used == SCONT_BATCH) {
        b = calloc(1, sizeof *b + LWC_MALLOC_SLACK);       /* Note [Allocator slack] */
        if (b) {
            b->next = lwc_rt.scont_batches;
            lwc_rt.scont_batches = b;
        }
    }
    if (b)
        s = &b->s[b->used++];
    pthread_mutex_unlock(&lwc_rt.lock);
    return s;
}

/* Note [Upcall records] */
struct upcall_rec {
    lwc_upcalls_t      u;
    struct upcall_rec *next;        /* in its hash bucket */
};
static const struct upcall_rec no_upcalls;
static const struct upcall_rec *upcall_rec_of(const lwc_upcalls_t *u);

static lwc_scont_t *scont_alloc(void)
{
    struct lwc_thread *t = lwc_thread_peek();
    lwc_scont_t *s = lwc_cache_take(t ? &t->scont_cache : NULL, &lwc_rt.scont_depot, SCONT_LINK);
    if (!s)
        return scont_make();
    atomic_store_explicit(lwc_pvar_value_word(&s->retry_pv), 0, memory_order_relaxed);
    atomic_store_explicit(&s->switching_out, 0, memory_order_relaxed);
    atomic_store_explicit(&s->local, NULL, memory_order_relaxed);
    s->name = NULL;
    __atomic_store_n(&s->bound, NULL, __ATOMIC_RELAXED);    /* lwc_scont_reserve_stack */
    s->bound_own = s->completed = s->release_on_complete = false;
    s->retry_nodes = NULL;
    s->retry_nnodes = 0;
    atomic_store_explicit(&s->masked, 0, memory_order_relaxed);
    s->exit_point = NULL;
    s->wait_what = NULL;
    s->wait_obj = NULL;
    atomic_store_explicit(&s->host_waits, 0, memory_order_relaxed);
    atomic_store_explicit(&s->deadlocked, 0, memory_order_relaxed);
    s->retry_epoch = 0;
    lwc_stack_move(&s->stack, &(struct lwc_stack){ 0 });    /* none: it has not run */
    atomic_store_explicit(&s->home, NULL, memory_order_relaxed);
    return s;
}

static void scont_recycle(lwc_scont_t *s)
{
    atomic_store_explicit(&s->alive, false, memory_order_relaxed);
    atomic_store_explicit(&s->id, 0, memory_order_release);    /* no longer that thread */
    struct lwc_thread *t = lwc_thread_peek();
    lwc_cache_give(t ? &t->scont_cache : NULL, &lwc_rt.scont_depot, SCONT_LINK, s);
}

void lwc_scont_cache_flush(struct lwc_thread *t)
{
    lwc_cache_flush(&t->scont_cache, &lwc_rt.scont_depot, SCONT_LINK);
}

static lwc_scont_t *scont_create(void (*fn)(void *), void *arg,
                                 const lwc_scont_attr_t *attr, bool bound)
{
    lwc_stack_kind_t kind = attr && attr->stack_kind ? attr->stack_kind : lwc_default_stack_kind;
    size_t size = attr && attr->stack_size ? attr->stack_size : lwc_stack_default_size();
    if (__builtin_expect(kind == LWC_STACK_COPY, 0)) {
        if (bound || !LWC_COPY_STACKS)
            kind = LWC_STACK_GUARDED;   /* a stack of its own: Note [Copy stacks] in copy.c */
        else if (size > lwc_copy_stack_size())
            kind = LWC_STACK_DEFAULT;   /* refused below */
    }
    uint32_t wanted = lwc_stack_wanted(size, kind);
    unsigned flags = attr ? attr->flags : 0;
    if (!fn || !atomic_load(&lwc_rt.up) || (unsigned)kind - LWC_STACK_GUARDED > 2 || !wanted ||
        (flags & ~LWC_SCONT_DORMANT)) {
        errno = EINVAL;
        return NULL;
    }
    /* Its upcalls: those given, else its creator's (the same record). */
    struct lwc_thread *t = lwc_thread_peek();
    const lwc_upcalls_t *up = &no_upcalls.u;
    if (attr && attr->upcalls) {
        const struct upcall_rec *r = upcall_rec_of(attr->upcalls);
        up = r ? &r->u : NULL;
    } else if (t && t->current)
        up = atomic_load_explicit(&t->current->up, memory_order_relaxed);
    lwc_scont_t *s = up ? scont_alloc() : NULL;
    if (!s)
        goto nomem;
    if (attr && attr->name && !(s->name = strdup(attr->name)))
        goto nomem;
    atomic_store_explicit(&s->stack_wanted, wanted, memory_order_relaxed); /* Note [Stacks on
                                                                            * first run] */
    /* Note [Status word]: the token moves on, so no waiter recorded in an
     * earlier life of the struct matches this one; and it starts even: Note
     * [Handing a new SCont over], Note [Dormant SConts] in internal.h. */
    lwc_word_t w = atomic_load_explicit(lwc_pvar_value_word(&s->status), memory_order_relaxed);
    lwc_word_t token = ((w >> STATUS_BITS) + 4) & ~(lwc_word_t)3;
    if (flags & LWC_SCONT_DORMANT)
        token += TOKEN_DORMANT;
    lwc_pvar_init(&s->status, token << STATUS_BITS | LWC_BLOCKED_ON_SCHED);
    lwc_pvar_init(&s->retry_pv, 0);
    lwc_pvar_init(&s->pending, 0);
    lwc_pvar_init(&s->interrupt, 0);
    atomic_store_explicit(&s->id, atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed),
                          memory_order_release);
    s->fn = fn;
    s->arg = arg;
    atomic_store_explicit(&s->refs, 2, memory_order_relaxed);   /* the handle, and being alive */
    atomic_store_explicit(&s->up, up, memory_order_release);    /* Note [Upcall records] */
    lwc_san_scont_new(s);
    if (bound) {
        s->bound_own = true;
        struct lwc_thread *own = lwc_thread_new_bound(s);
        __atomic_store_n(&s->bound, own, __ATOMIC_RELAXED);
        if (!own) {
            lwc_san_scont_free(s);
            goto nomem;
        }
    }
    /* Last, and released: a detector pass gathers SConts while a plain OS
     * thread may be making one (an in-call), and must see it whole or not
     * at all (lwc_gc_gather_sconts). */
    atomic_store_explicit(&s->alive, true, memory_order_release);
    if (lwc_tracing())
        lwc_trace_created(s);
    return s;
nomem:
    if (s) {
        free(s->name);
        scont_recycle(s);
    }
    errno = ENOMEM;
    return NULL;
}

lwc_scont_t *lwc_scont_new(void (*fn)(void *), void *arg, const lwc_scont_attr_t *attr)
{
    return scont_create(fn, arg, attr, false);
}

lwc_scont_t *lwc_scont_new_bound(void (*fn)(void *), void *arg, const lwc_scont_attr_t *attr)
{
    return scont_create(fn, arg, attr, true);
}

/* s's frames are dead (it completed, or is freed): its stack goes back,
 * its own or, for a copy SCont, its saved frames and its claim on the
 * shared one. */
static void scont_drop_stack(lwc_scont_t *s)
{
    if (__builtin_expect(lwc_scont_home(s) != NULL, 0))
        lwc_copy_forget(s);
    else
        lwc_stack_put(&s->stack);
}

static void scont_free(lwc_scont_t *s)
{
    scont_drop_stack(s);
    lwc_san_scont_free(s);
    free(s->name);
    s->name = NULL;
    scont_recycle(s);
}

void lwc_scont_ref(lwc_scont_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void lwc_scont_unref(lwc_scont_t *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    scont_free(s);
}

void lwc_scont_release(lwc_scont_t *s)
{
    if (s)
        lwc_scont_unref(s);
}

/* Called by lwc_shutdown once every runtime thread has stopped. */
void lwc_scont_free_all(void)
{
    for (struct scont_batch *b = lwc_rt.scont_batches; b; b = b->next)
        for (unsigned i = 0; i < b->used; i++) {
            lwc_scont_t *s = &b->s[i];
            if (!atomic_load_explicit(&s->alive, memory_order_relaxed))
                continue;
            if (s->retry_nodes)
                lwc_retry_forget(s->retry_nodes, s->retry_nnodes);
            scont_free(s);
        }
}

/* The structs themselves outlive the runtime (Note [Type-stable SConts]): a
 * waiter left in an MVar by a run that ended may name one, and its id tells
 * the MVar that thread is gone.  They go back to malloc at exit only. */
__attribute__((destructor)) static void scont_pool_drain(void)
{
    for (struct scont_batch *b = lwc_rt.scont_batches, *next; b; b = next) {
        next = b->next;
        for (unsigned i = 0; i < b->used; i++)
            if (atomic_load_explicit(&b->s[i].alive, memory_order_relaxed)) {   /* never freed:
                                                          * the runtime was not shut down */
                free(b->s[i].name);
                free(b->s[i].saved);
            }
        free(b);
    }
    lwc_rt.scont_batches = NULL;
    lwc_rt.scont_depot.head = NULL;
    lwc_rt.scont_depot.n = 0;
}

lwc_scont_t *lwc_scont_self(void)
{
    struct lwc_thread *t = lwc_thread_peek();
    return t ? t->current : NULL;
}

uint64_t lwc_scont_id(const lwc_scont_t *s)
{
    return s ? atomic_load_explicit(&s->id, memory_order_acquire) : 0;
}

const char *lwc_scont_name(const lwc_scont_t *s)
{
    return s && s->name ? s->name : "";
}

/* Once only: the view and the debugger read a name while its SCont runs,
 * and a name replaced would be freed under them. */
int lwc_scont_set_name(lwc_scont_t *s, const char *name)
{
    if (!s || !name || !lwc_scont_id(s))
        return LWC_EINVAL;
    if (s->name)
        return LWC_EBUSY;
    char *copy = strdup(name);
    if (!copy)
        return LWC_ENOMEM;
    s->name = copy;
    if (lwc_tracing())
        lwc_trace_named(s);
    return LWC_OK;
}

int lwc_scont_is_bound(const lwc_scont_t *s)
{
    return s && s->bound_own;
}

unsigned lwc_scont_home_cap(const lwc_scont_t *s)
{
    struct lwc_cap *home = s ? lwc_scont_home(s) : NULL;
    return home ? home->id : (unsigned)-1;
}

lwc_status_t lwc_scont_status(lwc_tx_t *tx, lwc_scont_t *s)
{
    if (!s)
        return LWC_COMPLETED;
    return status_of(lwc_pvar_read(tx, &s->status));
}

void lwc_scont_set_local(lwc_scont_t *s, void *p)
{
    if (s)
        atomic_store_explicit(&s->local, p, memory_order_release);
}

void *lwc_scont_get_local(lwc_scont_t *s)
{
    return s ? atomic_load_explicit(&s->local, memory_order_acquire) : NULL;
}

/* ---- Upcalls ------------------------------------------------------------- */

/* Note [Upcall records]
 * ~~~~~~~~~~~~~~~~~~~~~
 * The upcalls are three words that every switch reads and that anyone may
 * change at any time, so a reader must never pair one scheduler's
 * switch_to_next with another's env.  An SCont therefore holds one pointer,
 * `up`, to an immutable record of the three: a reader loads it (acquire)
 * and copies the record, a writer stores a pointer to another record
 * (release).  No lock, no retry loop, and lwc_scont_load_upcalls is inline.
 *
 * A record is never freed while the process runs: a reader, a doomed
 * transaction on a recycled SCont even (Note [Type-stable SConts]), may hold
 * an old pointer for as long as it likes.  So records are interned, one per
 * distinct triple ever set, in a hash table under `recs.lock`; most programs
 * use a handful (one per scheduler instance), and a program that makes and
 * drops instances keeps 32 bytes for each triple it used.  Each OS thread
 * remembers the last record it interned, so spawning threads with the same
 * upcalls again and again takes no lock.  Records live in malloc memory,
 * which the detector does not scan: an env named only by an old record is
 * not kept alive by it.  `no_upcalls` is the record of a triple of NULLs. */

static struct {
    pthread_mutex_t     lock;
    struct upcall_rec **buckets;
    size_t              nbuckets, n;
} recs = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool same_upcalls(const lwc_upcalls_t *a, const lwc_upcalls_t *b)
{
    return a->switch_to_next == b->switch_to_next && a->unblock_thread == b->unblock_thread &&
           a->env == b->env;
}

static size_t upcalls_hash(const lwc_upcalls_t *u, size_t nbuckets)
{
    uint64_t h = (uint64_t)(uintptr_t)u->switch_to_next * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)(uintptr_t)u->unblock_thread * 0xC2B2AE3D27D4EB4Full;
    h ^= (uint64_t)(uintptr_t)u->env * 0x165667B19E3779F9ull;
    return (size_t)(h >> 20) & (nbuckets - 1);
}

/* Double the table; false when out of memory (the table stays as it was). */
static bool recs_grow(void)
{
    size_t n = recs.nbuckets ? 2 * recs.nbuckets : 64;
    struct upcall_rec **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < recs.nbuckets; i++)
        for (struct upcall_rec *r = recs.buckets[i], *next; r; r = next) {
            next = r->next;
            size_t k = upcalls_hash(&r->u, n);
            r->next = b[k];
            b[k] = r;
        }
    free(recs.buckets);
    recs.buckets = b;
    recs.nbuckets = n;
    return true;
}

static const struct upcall_rec *recs_intern(const lwc_upcalls_t *u)
{
    pthread_mutex_lock(&recs.lock);
    struct upcall_rec *r = NULL;
    if (recs.n >= recs.nbuckets && !recs_grow() && !recs.nbuckets)
        goto out;
    size_t k = upcalls_hash(u, recs.nbuckets);
    for (r = recs.buckets[k]; r; r = r->next)
        if (same_upcalls(&r->u, u))
            goto out;
    if ((r = malloc(sizeof *r))) {
        r->u = *u;
        r->next = recs.buckets[k];
        recs.buckets[k] = r;
        recs.n++;
    }
out:
    pthread_mutex_unlock(&recs.lock);
    return r;
}

/* The record of *u (NULL: no upcalls); NULL when out of memory. */
static const struct upcall_rec *upcall_rec_of(const lwc_upcalls_t *u)
{
    if (!u || (!u->switch_to_next && !u->unblock_thread && !u->env))
        return &no_upcalls;
    struct lwc_thread *t = lwc_thread_peek();
    const struct upcall_rec *r = t ? (const struct upcall_rec *)t->last_upcalls : NULL;
    if (r && same_upcalls(&r->u, u))
        return r;
    if ((r = recs_intern(u)) && t)
        t->last_upcalls = r;
    return r;
}

__attribute__((destructor)) static void recs_drain(void)
{
    for (size_t i = 0; i < recs.nbuckets; i++)
        for (struct upcall_rec *r = recs.buckets[i], *next; r; r = next) {
            next = r->next;
            free(r);
        }
    free(recs.buckets);
    recs.buckets = NULL;
    recs.nbuckets = recs.n = 0;
}

int lwc_scont_set_upcalls(lwc_scont_t *s, const lwc_upcalls_t *u)
{
    if (!s)
        return LWC_EINVAL;
    const struct upcall_rec *r = upcall_rec_of(u);
    if (!r)
        return LWC_ENOMEM;
    atomic_store_explicit(&s->up, &r->u, memory_order_release);
    return LWC_OK;
}

int lwc_scont_get_upcalls(lwc_scont_t *s, lwc_upcalls_t *out)
{
    if (!s || !out)
        return LWC_EINVAL;
    lwc_scont_load_upcalls(s, out);
    return LWC_OK;
}

int lwc_scont_has_scheduler(const lwc_scont_t *s)
{
    if (!s)
        return 0;
    const lwc_upcalls_t *u = atomic_load_explicit(&s->up, memory_order_acquire);
    return u->switch_to_next && u->unblock_thread;
}

/* ---- Switching ----------------------------------------------------------- */

static struct lwc_thread *tx_thread(lwc_tx_t *tx)
{
    return (struct lwc_thread *)((char *)tx - offsetof(struct lwc_thread, tx));
}

/* Note [Stacks on first run]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * An SCont gets its stack when it first runs, not when it is made: a
 * million threads spawned and not yet run cost their records alone, and a
 * FIFO scheduler that runs them one by one to completion passes one warm
 * stack from each to the next (a completed SCont's stack goes back to the
 * OS thread's cache as the next one lands, lwc_land, and the next first run
 * takes it from there).  The size and kind asked for wait in the SCont
 * until then, as one word (`stack_wanted`, made by lwc_stack_wanted).  A
 * doomed body may read it, and the stack's `map`, from an SCont struct
 * being reused for another: both are read and written atomically, and
 * whatever such a body reserves only waits as the spare.
 *
 * The stack cannot be handed over inside the transaction that marks the
 * SCont running: on two capabilities two such bodies may run at once for one
 * SCont, and only one commits.  Nor only after the commit: taking a stack
 * can fail, and a commit cannot be taken back.  So the body that marks an
 * SCont without a stack running (lwc_scont_mark_running, the one place that
 * does) reserves one on its own OS thread (`spare_stack`; LWC_ENOMEM ends
 * the transaction if there is none to be had), and after the commit, which
 * made the SCont this OS thread's alone, the same OS thread hands the spare
 * over and lays out the first frame (lwc_scont_first_run) before anything
 * else: a switch just before its swap (lwc_switch_after_commit, with its
 * other rare cases), any other commit (an idle capability's, lwc_cap_start's)
 * in lwc_tx_run before the commit's wake-ups and deferred actions run, for
 * one of those may itself start an SCont (a spawn that starts a capability)
 * and take the spare; the SCont is mailed to the OS thread it must run on
 * only after that.  The reservation says so in the transaction
 * (`gives_stack`, `first_run`): a body marks at most one SCont running.  A body run again, or one that chose another SCont, finds the
 * spare already there; one that never committed leaves it for the next,
 * and lwc_stack_cache_flush gives it back with the OS thread.
 *
 * So a switch that first runs an SCont can fail with LWC_ENOMEM, nothing of
 * it committed: a yield returns it, and a completion whose switch_to_next
 * chose such an SCont releases the capability instead (lwc_scont_complete).
 * The detector sees a stackless SCont as its record: no stack to scan, its
 * argument a reference (detect_roots.c). */
__attribute__((noinline, cold))
void lwc_scont_reserve_stack(lwc_tx_t *tx, lwc_scont_t *s, struct lwc_cap *cap)
{
    struct lwc_thread *t = tx_thread(tx);
    uint32_t wanted = atomic_load_explicit(&s->stack_wanted, memory_order_relaxed);
    if (lwc_stack_wanted_kind(wanted) == LWC_STACK_COPY) {              /* Note [Copy stacks] in copy.c */
        /* A doomed body may read a struct being reused: atomic. */
        if (!__atomic_load_n(&s->bound, __ATOMIC_RELAXED)) {
            lwc_copy_claim(tx, s, cap ? cap : t->cap);
            return;
        }
        wanted = lwc_stack_wanted(lwc_stack_wanted_size(wanted), LWC_STACK_GUARDED); /* lwc_eval'd */
    }
    if (lwc_stack_refit(&t->spare_stack, wanted) != LWC_OK)
        lwc_tx_abort(tx, LWC_ENOMEM);
    tx->gives_stack = true;
    tx->first_run = s;
    tx->first_cap = NULL;
}

/* A function of its own, so that lwc_tx_run's frame never holds the SCont
 * across a switch (Note [Switch targets]). */
__attribute__((noinline, cold)) void lwc_scont_first_run(lwc_tx_t *tx)
{
    struct lwc_thread *t = tx_thread(tx);
    lwc_scont_t *s = tx->first_run;
    if (tx->first_cap) {
        lwc_copy_first_run(s, tx->first_cap);
        return;
    }
    if (s->stack.map)
        return;
    if (!t->spare_stack.map) {
        lwc_warn("SCont %llu runs, but no stack was reserved for it",
                 (unsigned long long)lwc_scont_id(s));
        abort();
    }
    lwc_stack_move(&s->stack, &t->spare_stack);
    lwc_san_stack_fresh(&s->stack);
    lwc_scont_make_context(s, lwc_stack_lo(&s->stack), lwc_stack_usable(&s->stack));
}

void lwc_scont_make_context(lwc_scont_t *s, char *lo, size_t size)
{
    lwc_ctx_make(&s->ctx, lo, size, scont_entry, s);
}

/* Note [Delivering errors] in exception.c: a switch that blocks self on a data
 * structure reads self's pending error in its transaction first, and hands it
 * over instead of blocking, unless an uninterruptible mask is on (Note [Two
 * masks] there). */
static void deliver_instead_of_blocking(lwc_tx_t *tx, lwc_scont_t *self)
{
    if (lwc_tx_read(tx, &self->pending) && !lwc_scont_masked_uninterruptibly(self))
        lwc_tx_abort(tx, LWC_TX_DELIVER);
}

/* The switch's own writes, once every check has passed: target (unless
 * NULL) runs, self takes self_status; both with switch_to and switch_to_any. */
static inline __attribute__((always_inline))
void switch_statuses(lwc_tx_t *tx, lwc_scont_t *self, lwc_scont_t *target, lwc_status_t self_status)
{
    if (target)
        lwc_scont_mark_running(tx, target);
    if (__builtin_expect(lwc_scont_home(self) != NULL, 0) && self_status != LWC_COMPLETED)
        lwc_copy_reserve(tx, self);                 /* Note [Copy stacks] in copy.c */
    lwc_tx_write(tx, &self->status, status_keep_token(self, self_status));
    tx->left_as = self_status;
    tx->has_switch = true;
    tx->target = target;
}

/* A NULL target releases the capability, unless the caller then sets
 * to_idle (Note [Idling in a place of its own] in idle.c).  Every case; the
 * common one is switch_to below. */
static __attribute__((noinline)) void switch_to_any(lwc_tx_t *tx, lwc_scont_t *target,
                                                    lwc_status_t self_status, bool pending_read)
{
    lwc_scont_t *self = tx->self;
    /* No SCont, a second switch, or a wake-up / deferred action (those run
     * between two SConts and must not switch either). */
    if (!self || tx->has_switch || tx_thread(tx)->draining)
        lwc_tx_abort(tx, LWC_EINVAL);
    if (tx->completing)
        self_status = LWC_COMPLETED;
    else if (target != self && self_status != LWC_BLOCKED_ON_SCHED &&
             self_status != LWC_BLOCKED_ON_CONCDS)
        lwc_tx_abort(tx, LWC_EINVAL);
    tx->sleeps_thread = true;
    if (target == self) {
        if (tx->completing)
            lwc_tx_abort(tx, LWC_ESTATE);
        tx->has_switch = true;
        tx->target = self;
        return;
    }
    if (self_status == LWC_BLOCKED_ON_CONCDS && !pending_read)
        deliver_instead_of_blocking(tx, self);
    switch_statuses(tx, self, target, self_status);
}

/* Switch from self to another SCont that stays runnable, or that blocks with
 * its pending error read already: no checks but the ones that can fail. */
static void switch_to(lwc_tx_t *tx, lwc_scont_t *target, lwc_status_t self_status,
                      bool pending_read)
{
    lwc_scont_t *self = tx->self;
    bool common = self_status == LWC_BLOCKED_ON_SCHED ||
                  (self_status == LWC_BLOCKED_ON_CONCDS && pending_read);
    if (__builtin_expect(!common || !self || !target || target == self || tx->has_switch ||
                         tx->completing || tx_thread(tx)->draining, 0)) {
        switch_to_any(tx, target, self_status, pending_read);
        return;
    }
    tx->sleeps_thread = true;
    switch_statuses(tx, self, target, self_status);
}

void lwc_scont_come_back(lwc_tx_t *tx)
{
    lwc_scont_t *self = tx->self;
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(self, &u);
    tx->sleeps_thread = true;
    switch_statuses(tx, self, NULL, LWC_BLOCKED_ON_SCHED);
    u.unblock_thread(tx, self, u.env);
}

void lwc_switch_to(lwc_tx_t *tx, lwc_scont_t *target, lwc_status_t self_status)
{
    if (!tx) {
        lwc_warn("lwc_switch_to called without a transaction");
        return;
    }
    switch_to(tx, target, self_status, false);
}

/* A scheduler that lost track of a thread (queued it twice, kept a finished
 * one) shows up as LWC_ESTATE from whatever switch its switch_to_next served,
 * an MVar take say: the message names the upcall and what it returned.  A
 * doomed transaction may read a stale queue too, so the message waits for
 * the abort to stand: it is printed only if the reads were current. */
__attribute__((noinline, cold)) void lwc_scont_bad_target(lwc_tx_t *tx, lwc_scont_t *s,
                                                          lwc_status_t st)
{
    static _Atomic unsigned said;
    if (!lwc_tx_reads_current(tx) || atomic_fetch_add(&said, 1) >= 8)
        return;
    lwc_upcalls_t u = { 0 };
    if (tx->self)
        lwc_scont_load_upcalls(tx->self, &u);
    lwc_warn("the switch_to_next upcall %p (env %p) of SCont %llu named SCont %llu, which is "
             "%s: its scheduler lost track of it, and the switch fails with LWC_ESTATE",
             (void *)(uintptr_t)u.switch_to_next, u.env,
             (unsigned long long)lwc_scont_id(tx->self), (unsigned long long)lwc_scont_id(s),
             st == LWC_RUNNING ? "running" : st == LWC_COMPLETED ? "completed" : "not resumable");
}

void lwc_switch_to_next(lwc_tx_t *tx, lwc_status_t why)
{
    if (!tx || !tx->self) {
        if (tx)
            lwc_tx_abort(tx, LWC_EINVAL);
        return;
    }
    /* Before the upcall, which may idle the capability in a retry: the
     * pending error is then in the read set, and a throw wakes it. */
    bool pending_read = why == LWC_BLOCKED_ON_CONCDS && !tx->completing;
    if (pending_read)
        deliver_instead_of_blocking(tx, tx->self);
    tx->blocking = pending_read;    /* Note [Idle in a blocking switch] in detect.c */
    tx->sleeps_thread = true;
    if (tx->rerun_idle) {           /* Note [Idling in a place of its own] in idle.c */
        switch_to(tx, NULL, why, pending_read);
        tx->to_idle = true;
        return;
    }
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(tx->self, &u);
    lwc_scont_t *next = NULL;
    if (u.switch_to_next) {
        tx->in_upcall = true;       /* a retry in it idles the capability */
        next = u.switch_to_next(tx, tx->self, why, u.env);
    }
    switch_to(tx, next, why, pending_read);
}

/* Note [Delivering errors] in exception.c: the wait token moves on with every
 * wake-up, and only a waiting SCont is woken, so a wait ends exactly once. */
static bool unblock(lwc_tx_t *tx, lwc_scont_t *s, lwc_word_t token, bool any_token)
{
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(s, &u);
    if (!u.unblock_thread)
        return false;
    lwc_word_t w = lwc_tx_read(tx, &s->status);
    if (status_of(w) != LWC_BLOCKED_ON_CONCDS || (!any_token && w >> STATUS_BITS != token))
        return false;
    lwc_tx_write(tx, &s->status, with_status(w + (1u << STATUS_BITS), LWC_BLOCKED_ON_SCHED));
    if (lwc_tracing())
        lwc_trace_wake_in(tx, s);
    u.unblock_thread(tx, s, u.env);
    return true;
}

bool lwc_scont_unblock(lwc_tx_t *tx, lwc_scont_t *s)
{
    return unblock(tx, s, 0, true);
}

/* Note [Handing a new SCont over]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A scheduler queues the SConts it makes itself; a program that makes one
 * with lwc_scont_new and its creator's upcalls (a task pool of its own, a
 * bound worker) hands it over with lwc_unblock_thread, which for a thread
 * blocked on a data structure is the wake-up.  A new SCont is
 * LWC_BLOCKED_ON_SCHED already, so that call did nothing: the SCont never
 * ran, and as a runnable thread of a live scheduler it kept everything its
 * argument reached alive for the detector, the pool's other workers blocked
 * for good among them (issue 19).  So lwc_unblock_thread hands over an
 * SCont that has never run, once: its wait token starts even
 * (scont_create), and handing it over makes it odd, in the transaction that
 * calls the upcall; a second call, or one after it has run (it has a stack
 * or a home), does nothing.  The token moves on only by wake-ups, which
 * need a run first, so its parity means nothing after the first run. */
static void hand_over_new(lwc_tx_t *tx, lwc_scont_t *s)
{
    lwc_upcalls_t u;
    lwc_scont_load_upcalls(s, &u);
    if (!u.unblock_thread)
        return;
    lwc_word_t w = lwc_tx_read(tx, &s->status);
    if (status_of(w) != LWC_BLOCKED_ON_SCHED || (w >> STATUS_BITS & 1) ||
        !lwc_scont_never_ran(s))
        return;
    lwc_tx_write(tx, &s->status, w + (1u << STATUS_BITS));
    if (lwc_tracing())
        lwc_trace_wake_in(tx, s);
    u.unblock_thread(tx, s, u.env);
}

void lwc_unblock_thread(lwc_tx_t *tx, lwc_scont_t *s)
{
    if (tx && s && !lwc_scont_unblock(tx, s))
        hand_over_new(tx, s);
}

int lwc_unblock_waiter(lwc_tx_t *tx, lwc_scont_t *s, lwc_word_t token)
{
    /* A freed struct (id 0) keeps the status it had: the id tells. */
    return tx && s && lwc_scont_id(s) && unblock(tx, s, token, false);
}

lwc_word_t lwc_scont_wait_token(lwc_tx_t *tx, lwc_scont_t *s)
{
    if (!s)
        return 0;
    /* Note [Status word]: nothing else writes a running SCont's status. */
    if (tx && s == tx->self)
        return lwc_pvar_load(&s->status) >> STATUS_BITS;
    return lwc_pvar_read(tx, &s->status) >> STATUS_BITS;
}

struct switch_call { lwc_switch_fn fn; void *arg; };

static lwc_word_t switch_body(lwc_tx_t *tx, void *arg)
{
    struct switch_call *sc = arg;
    lwc_status_t st = LWC_BLOCKED_ON_SCHED;
    lwc_scont_t *target = sc->fn(tx, tx->self, sc->arg, &st);
    if (!tx->has_switch)
        lwc_switch_to(tx, target, st);
    else if (tx->target != target)
        lwc_tx_abort(tx, LWC_EINVAL);
    return 0;
}

int lwc_switch(lwc_switch_fn fn, void *arg)
{
    struct lwc_thread *t = lwc_thread_peek();
    if (!fn || !t || !t->current || t->draining)
        return LWC_EINVAL;
    struct switch_call sc = { fn, arg };
    return lwc_tx_run(switch_body, &sc, NULL, true);
}

/* Not instrumented by ThreadSanitizer, as lwc_swap_to is not: its calls at
 * entry made the compiler keep the target in a callee-saved register, which
 * the switch then saved on the blocked stack (Note [Switch targets]). */
static __attribute__((noinline, no_sanitize_thread))
struct lwc_thread *switch_after_commit_rare(lwc_tx_t *tx)
{
    struct lwc_thread *t = tx_thread(tx);
    if (tx->completing)
        tx->self->completed = true;
    if (tx->to_idle)
        lwc_idle_prepare(t, tx);
    if (tx->gives_stack)
        lwc_scont_first_run(tx);
    return lwc_swap_to(t, tx->self, tx->target);
}

__attribute__((no_sanitize_thread))
struct lwc_thread *lwc_switch_after_commit(lwc_tx_t *tx)
{
    if (__builtin_expect(tx->completing | tx->to_idle | tx->gives_stack, 0))
        return switch_after_commit_rare(tx);
    return lwc_swap_to(tx_thread(tx), tx->self, tx->target);
}

/* ---- The swap and the landing ---------------------------------------------- */

/* Note [Switch targets]
 * ~~~~~~~~~~~~~~~~~~~~~
 * The registers a context saves when it switches out stay on its stack for
 * as long as it is suspended, and the detector reads them as references
 * (substrate/detect.c).  Were the SCont switched to still in one of them, as
 * a compiler keeps a value it needs across a call, every suspended SCont
 * would keep alive the one that ran after it, and a chain of threads that
 * blocked one after another would keep each other reachable.  So lwc_swap_to
 * makes no call while it holds the target: it publishes it in t->current and
 * reads it back from there, and waits for a target still switching out in a
 * function of its own.  lwc_tx_run zeroes the frames its transaction body
 * left (lwc_stack_scrub_body) before it switches out to block, for the same
 * reason, and zeroes the callee-saved registers it holds nothing live in
 * (LWC_CLEAR_CALLEE_SAVED): the switch saves them on the blocked stack, and
 * ThreadSanitizer's instrumentation made the compiler keep the target in
 * one.  A yield needs neither: its SCont stays runnable, and is marked while
 * its scheduler lives (Note [Orphans] in detect_wake.c). */
static __attribute__((noinline, cold)) void wait_switched_out(struct lwc_thread *t)
{
    for (unsigned i = 0; atomic_load_explicit(&t->current->switching_out, memory_order_acquire); i++)
        lwc_spin_step(i);
}

/* Note [TLS across switches] in cap.c: every path below takes the thread it runs
 * on from the swap's transfer value, never from TLS read before the swap.
 * Not instrumented by ThreadSanitizer, whose calls around every access made
 * the compiler keep `to` in a callee-saved register (Note [Switch targets]);
 * the fiber switch in lwc_san_switch_begin still tells TSan of the switch. */
__attribute__((no_sanitize_thread))
struct lwc_thread *lwc_swap_to(struct lwc_thread *t, lwc_scont_t *from, lwc_scont_t *to)
{
    lwc_ctx_t *from_ctx = from ? &from->ctx : &t->native;
    bool dying = from && from->completed;
    lwc_transfer_t tr;
    t->prev = from;
    t->prev_ctx = from_ctx;
    if (to && lwc_runs_on(to, t)) {
        /* Note [Switch targets]: from here on `to` is read from t->current. */
        t->current = to;
        if (atomic_load_explicit(&to->switching_out, memory_order_acquire))
            wait_switched_out(t);
        lwc_san_switch_begin(t, from, t->current, dying);
        if (__builtin_expect(lwc_scont_home(t->current) != NULL, 0))
            tr = lwc_copy_switch(t);                /* Note [Copy stacks] in copy.c */
        else
            tr = lwc_ctx_switch(from_ctx, &t->current->ctx, t);
    } else {
        if (t->request == REQ_NONE) {
            t->request = to ? REQ_HANDOFF : REQ_RELEASE;
            t->handoff = to;
        }
        t->current = NULL;
        lwc_san_switch_begin(t, from, NULL, dying);
        tr = lwc_ctx_switch(from_ctx, &t->native, t);
    }
    return lwc_land(tr);
}

void lwc_thread_to_native(struct lwc_thread *t, enum thread_request req, lwc_scont_t *handoff)
{
    t->request = req;
    t->handoff = handoff;
    lwc_swap_to(t, t->current, NULL);
}

struct lwc_thread *lwc_land(lwc_transfer_t tr)
{
    struct lwc_thread *t = tr.data;
    lwc_ctx_saved(t->prev_ctx, tr);
    lwc_san_switch_end(t);
    lwc_scont_t *prev = t->prev;
    /* The switch is traced here, on the stack switched to, and not in
     * lwc_swap_to: a call there would leave `to` in the frames of the SCont
     * that goes out (Note [Switch targets]). */
    if (lwc_tracing())
        lwc_trace_landed(t, prev);
    if (prev) {
        t->prev = NULL;
        if (prev->completed) {
            if (prev == t->bound_scont)
                t->bound_done = true;
            scont_drop_stack(prev);
            lwc_scont_unref(prev);
        } else {
            atomic_store_explicit(&prev->switching_out, 0, memory_order_release);
        }
    }
    lwc_tx_after_commit(t);
    lwc_services_count(t);                   /* Note [Idle services] in service.c */
    lwc_gc_safepoint(t);                     /* Note [Stopping the world] in detect.c */
    return t;
}

/* ---- Start and completion ----------------------------------------------------- */

static lwc_word_t complete_body(lwc_tx_t *tx, void *arg)
{
    lwc_scont_t *s = arg;
    tx->completing = true;
    lwc_scont_t *next = NULL;
    tx->sleeps_thread = true;
    if (tx->rerun_idle) {           /* Note [Idling in a place of its own] in idle.c */
        switch_to_any(tx, NULL, LWC_COMPLETED, false);
        tx->to_idle = true;
        return 0;
    }
    if (!s->release_on_complete) {
        lwc_upcalls_t u;
        lwc_scont_load_upcalls(s, &u);
        if (u.switch_to_next) {
            tx->in_upcall = true;
            next = u.switch_to_next(tx, s, LWC_COMPLETED, u.env);
        }
    }
    switch_to_any(tx, next, LWC_COMPLETED, false);
    return 0;
}

_Noreturn void lwc_scont_complete(lwc_scont_t *s)
{
    for (;;) {
        /* Returns only if the switch could not be made. */
        int err = lwc_tx_run(complete_body, s, NULL, true);
        lwc_warn("SCont %llu completed, but its switch_to_next upcall failed (%s): "
                 "its capability is released instead",
                 (unsigned long long)lwc_scont_id(s), lwc_strerror(err));
        s->release_on_complete = true;
    }
}

static void scont_entry(lwc_transfer_t tr, void *arg)
{
    lwc_scont_t *s = arg;
    lwc_land(tr);
    s->fn(s->arg);
    lwc_scont_complete(s);
}
