/* Substrate internals.  Nothing outside substrate/ and ptm/ may include this. */
#ifndef LWC_SUBSTRATE_INTERNAL_H
#define LWC_SUBSTRATE_INTERNAL_H

#include "config.h"
#include <lwc/lwc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "cache.h"
#include "context.h"
#include "../ptm/internal.h"

/* ---- Stacks (stack.c) ---------------------------------------------------- */

struct lwc_stack {
    char  *map;          /* the whole mapping, guard page included; NULL: none */
    size_t map_size;
    size_t guard;        /* bytes of guard at the bottom of the mapping */
    unsigned vg_id;      /* valgrind's id for the registered stack */
    bool   mprotected;   /* the guard is a PROT_NONE mapping (counts against the budget) */
    bool   pooled;       /* default size and kind: goes back to the pool */
    uint8_t kind;        /* lwc_stack_kind_t */
};

int  lwc_stack_get(struct lwc_stack *st, size_t size, lwc_stack_kind_t kind);
/* Note [Stacks on first run] in scont.c: a stack as an SCont asks for it,
 * in 32 bits (the mapping's size in 4 KiB units, and the kind; 0 if it is
 * too big to say so), its size, and st made one (kept if it is one already,
 * else given back and replaced). */
uint32_t lwc_stack_wanted(size_t size, lwc_stack_kind_t kind);
size_t lwc_stack_wanted_size(uint32_t wanted);
static inline lwc_stack_kind_t lwc_stack_wanted_kind(uint32_t wanted)
{
    return (lwc_stack_kind_t)(wanted & 3);
}
int  lwc_stack_refit(struct lwc_stack *st, uint32_t wanted);
void lwc_stack_put(struct lwc_stack *st);
void lwc_stack_pool_drain(void);
void lwc_stack_cache_flush(struct lwc_thread *t);
size_t lwc_stack_default_size(void);
void lwc_stack_set_default_size(size_t size);
/* An SCont's `map` is read by other threads' transaction bodies, which may
 * be doomed (lwc_scont_mark_running: Note [Stacks on first run] in scont.c),
 * while its owner sets or clears it: the one field accessed atomically.
 * Moving a stack into an SCont copies the rest first (lwc_stack_move). */
static inline char *lwc_stack_map(const struct lwc_stack *st)
{
    return __atomic_load_n(&st->map, __ATOMIC_RELAXED);
}

static inline void lwc_stack_set_map(struct lwc_stack *st, char *map)
{
    __atomic_store_n(&st->map, map, __ATOMIC_RELEASE);
}

/* to takes from's stack; from is left with none. */
static inline void lwc_stack_move(struct lwc_stack *to, struct lwc_stack *from)
{
    _Static_assert(offsetof(struct lwc_stack, map) == 0, "map first, the rest copied after it");
    memcpy(&to->map_size, &from->map_size, sizeof *to - offsetof(struct lwc_stack, map_size));
    lwc_stack_set_map(to, from->map);
    memset(from, 0, sizeof *from);
}

static inline char  *lwc_stack_lo(const struct lwc_stack *st) { return st->map + st->guard; }
static inline size_t lwc_stack_usable(const struct lwc_stack *st) { return st->map_size - st->guard; }

/* ---- SConts (scont.c) ---------------------------------------------------- */

/* Note [Retry state]
 * ~~~~~~~~~~~~~~~~~~
 * An SCont that retries in its own transaction blocks through its upcalls.  The
 * race to close is between its blocking and a writer waking it: both happen in
 * transactions over `retry_pv`, which holds 2*epoch for "epoch fired" and
 * 2*epoch+1 for "blocked in epoch".  The SCont blocks only if its epoch has not
 * fired; the waker unblocks it only if it is blocked in that very epoch (and
 * otherwise marks the epoch fired).  Serializability leaves no third order.
 * Anything else that resumes an SCont blocked in a retry must first move
 * retry_pv off 2*epoch+1, or a late waker could unblock it from a later wait. */

/* Note [What a blocked thread costs]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * What a thread blocked in lwc_mvar_take, on an MVar of its own, costs on
 * rr (64-bit, no sanitizers), every byte, beside its frames (issue 18 asked
 * for 512 at most):
 *
 *   its SCont, this struct, made SCONT_BATCH at a time (no malloc
 *   header or slack of its own: Note [Type-stable SConts] in scont.c)   256
 *     ctx 8; status, retry_pv, pending, interrupt, PVars of 16: 64;
 *     switching_out, masked 8; up, local, id 24; fn (free_next), arg,
 *     name, bound, retry_nodes 40; retry_epoch, retry_nnodes, refs,
 *     stack_wanted 16; exit_point, wait_what, wait_obj 24; host_waits,
 *     deadlocked 8; stack 32; home, saved 16; saved_len, saved_cap,
 *     saved_base 12; four flags 4
 *   its scheduler node (struct sched_thread, schedulers/common/thread.h),
 *   a 64-byte lwc_alloc slot (Note [Slabs] in traced.c)                  64
 *     next PVar 16; sched, s, fn, arg 32; round 4 and 4 of padding;
 *     waker 8
 *   the MVar (schedulers/mvar/mvar.c), an 80-byte slot                   80
 *     five PVars: state (full, and the generation), value, head, tail,
 *     readers
 *   its waiter node (struct waiter, mvar.c), a 64-byte slot              64
 *     next, value, served PVars 48; who, wait 16
 *                                                                       ---
 *                                                                       464
 *
 * The PVars live inside the objects (lwc_pvar_init; Note [PVars inside
 * other memory] in detect_mark.c): separate ones cost a pointer each beside
 * the PVar, 14 of them per thread.  Beyond the 464: each node's slot in its
 * pool's free array (8 bytes, three pools: schedulers/common/pool.h), the
 * slabs' bitmaps (a bit per 16 bytes), and the frames.  A copy SCont
 * (LWC_STACK_COPY) keeps the used part of its stack, 528 bytes for this
 * taker on x86-64, in a malloc chunk of 544; one with a stack of its own
 * keeps the pages it touched, one at least, 4 KiB.  So a million such
 * threads take 1040 bytes each with copy stacks (992 MiB peak RSS, the
 * program in tools/threads.c) and more than 4 KiB each with the default. */
struct lwc_scont {
    lwc_ctx_t        ctx;
    lwc_pvar_t       status;          /* Note [Status word]: status and wait token */
    lwc_pvar_t       retry_pv;        /* Note [Retry state] */
    _Atomic int      switching_out;   /* Note [Switching out] in scont.c */
    _Atomic unsigned masked;          /* lwc_mask depth; written only by the SCont:
                                       * Note [Delivering errors] in exception.c */
    _Atomic(const lwc_upcalls_t *) up; /* Note [Upcall records] in scont.c */
    _Atomic(void *)  local;
    _Atomic uint64_t id;              /* a reused struct gets a new one: a resume token */
    union {                           /* fn is read by its first frame alone, */
        void       (*fn)(void *);     /* never by a doomed body: a free struct may */
        struct lwc_scont *free_next;  /* hold its link here (Note [Type-stable SConts]) */
    };
    void            *arg;
    char            *name;
    struct lwc_thread *bound;         /* the OS thread it must run on, or NULL */
    struct retry_node *retry_nodes;   /* registered while blocked in a retry */
    uint32_t         retry_epoch;
    unsigned         retry_nnodes;
    _Atomic int      refs;
    _Atomic uint32_t stack_wanted;    /* until its first run: Note [Stacks on first
                                       * run] in scont.c */
    /* Note [Delivering errors] in exception.c */
    lwc_pvar_t       pending;         /* an error thrown at it, not yet delivered */
    lwc_pvar_t       interrupt;       /* the error that woke it from a wait */
    lwc_jmp_buf     *exit_point;      /* innermost lwc_scont_run: where lwc_exit lands */
    /* the detector (detect.c) */
    const char      *wait_what;       /* lwc_scont_note_wait: for the deadlock report */
    const void      *wait_obj;
    _Atomic int      host_waits;      /* lwc_host_wait_begin: woken by a deadlock */
    _Atomic int      deadlocked;      /* ... and it was */
    struct lwc_stack stack;           /* none (map NULL) until it first runs */
    /* LWC_STACK_COPY, which never has a stack of its own: Note [Copy stacks] in copy.c */
    _Atomic(struct lwc_cap *) home;   /* its capability, from its first run; else NULL */
    char            *saved;           /* its frames while another's use the shared stack */
    uint32_t         saved_len, saved_cap;
    uint32_t         saved_base;      /* its depth where its last switch's transaction began */
    bool             bound_own;       /* created by new_bound: bound for life */
    bool             completed;       /* set by its last switch, read when landing */
    bool             release_on_complete; /* its switch_to_next failed it once */
    _Atomic bool     alive;           /* created and not freed: lwc_shutdown frees it
                                       * (Note [Type-stable SConts] in scont.c) */
#if LWC_ASAN
    void            *asan_fake_stack;
#endif
#if LWC_TSAN
    void            *tsan_fiber;
#endif
};

#if UINTPTR_MAX == UINT64_MAX && !LWC_CONTEXT_UCONTEXT && !LWC_ASAN && !LWC_TSAN
_Static_assert(sizeof(struct lwc_scont) == 256, "Note [What a blocked thread costs]");
#endif

/* SCont structs are made in batches: Note [Type-stable SConts] in scont.c. */
#define SCONT_BATCH 64

struct scont_batch {
    struct scont_batch *next;
    unsigned            used;       /* handed out; the rest are zero */
    lwc_scont_t         s[SCONT_BATCH];
};

/* Note [Status word]
 * ~~~~~~~~~~~~~~~~~~
 * An SCont's `status` PVar holds its lwc_status_t in the low two bits and its
 * wait token (lwc_scont_wait_token) above them.  The token moves on with every
 * wake-up from LWC_BLOCKED_ON_CONCDS (lwc_scont_unblock), in the same write
 * that makes the SCont LWC_BLOCKED_ON_SCHED: a data structure that checks the
 * token before serving a waiter reads the one word that both wake-ups and
 * switches write, and a wake-up costs one read and one write.
 *
 * Every write keeps the token bits.  A switch writes its own SCont's status
 * from a plain load of the word (status_keep_token): while an SCont runs,
 * nothing else writes its status, since only a blocked SCont is woken or
 * resumed. */
#define STATUS_BITS     2
#define STATUS_MASK     ((lwc_word_t)3)

static inline lwc_status_t status_of(lwc_word_t w)
{
    return (lwc_status_t)(w & STATUS_MASK);
}

static inline lwc_word_t with_status(lwc_word_t w, lwc_status_t st)
{
    return (w & ~STATUS_MASK) | (lwc_word_t)st;
}

/* The word for a running SCont s to write as its own status. */
static inline lwc_word_t status_keep_token(lwc_scont_t *s, lwc_status_t st)
{
    return with_status(lwc_pvar_load(&s->status), st);
}

void lwc_scont_reserve_stack(lwc_tx_t *tx, lwc_scont_t *s, struct lwc_cap *cap);
/* After a commit with gives_stack, before anything else. */
void lwc_scont_first_run(lwc_tx_t *tx);
/* Lay out s's first frame on [lo, lo + size). */
void lwc_scont_make_context(lwc_scont_t *s, char *lo, size_t size);

/* In tx: s, which must be blocked, runs on capability cap (NULL: the one
 * this OS thread holds) when tx commits.  One that has never run has no
 * stack yet: one is reserved, and lwc_tx_run hands it over as the
 * transaction commits (Note [Stacks on first run] in scont.c); a copy SCont
 * never has one of its own, and runs only on its home (Note [Copy stacks]
 * in copy.c). */
/* A switch_to_next upcall named s, which cannot run (scont.c): say which. */
void lwc_scont_bad_target(lwc_tx_t *tx, lwc_scont_t *s, lwc_status_t st);
static inline void lwc_scont_mark_running_on(lwc_tx_t *tx, lwc_scont_t *s, struct lwc_cap *cap)
{
    lwc_word_t w = lwc_tx_read(tx, &s->status);
    if (status_of(w) != LWC_BLOCKED_ON_SCHED && status_of(w) != LWC_BLOCKED_ON_CONCDS) {
        if (tx->in_upcall)
            lwc_scont_bad_target(tx, s, status_of(w));
        lwc_tx_abort(tx, LWC_ESTATE);
    }
    if (__builtin_expect(!lwc_stack_map(&s->stack), 0))
        lwc_scont_reserve_stack(tx, s, cap);
    lwc_tx_write(tx, &s->status, with_status(w, LWC_RUNNING));
}

static inline void lwc_scont_mark_running(lwc_tx_t *tx, lwc_scont_t *s)
{
    lwc_scont_mark_running_on(tx, s, NULL);
}

/* ---- Copy stacks (copy.c): Note [Copy stacks] ----------------------------- */

static inline struct lwc_cap *lwc_scont_home(const lwc_scont_t *s)
{
    return atomic_load_explicit(&s->home, memory_order_relaxed);
}

/* Has s never run?  No stack of its own yet, and no home. */
static inline bool lwc_scont_never_ran(const lwc_scont_t *s)
{
    return !lwc_stack_map(&s->stack) && !lwc_scont_home(s);
}

/* Note [Dormant SConts]
 * ~~~~~~~~~~~~~~~~~~~~~
 * A new SCont's wait token starts at a multiple of four, and two more for
 * one made LWC_SCONT_DORMANT (scont_create).  Handing it over (Note
 * [Handing a new SCont over] in scont.c) adds one, and every later move
 * needs a run first.  So an SCont is dormant, made ahead of time and no
 * work yet, while it is runnable, has never run, and its token is 2 modulo
 * 4: the detector counts it neither running nor runnable (detect_roots.c). */
#define TOKEN_DORMANT 2

static inline bool lwc_scont_dormant(const lwc_scont_t *s, lwc_word_t status_word)
{
    return status_of(status_word) == LWC_BLOCKED_ON_SCHED &&
           (status_word >> STATUS_BITS & 3) == TOKEN_DORMANT && lwc_scont_never_ran(s);
}
/* In tx: copy SCont s is to run on cap; aborts tx if it cannot. */
void lwc_copy_claim(lwc_tx_t *tx, lwc_scont_t *s, struct lwc_cap *cap);
/* After the commit that first runs copy SCont s on cap. */
void lwc_copy_first_run(lwc_scont_t *s, struct lwc_cap *cap);
/* In tx: self, a copy SCont, switches out: room to save its frames, or abort. */
void lwc_copy_reserve(lwc_tx_t *tx, lwc_scont_t *self);
/* lwc_swap_to's switch to t->current, a copy SCont, from t->prev_ctx. */
lwc_transfer_t lwc_copy_switch(struct lwc_thread *t);
/* A copy SCont completed (landing) or is freed: its frames are dead. */
void lwc_copy_forget(lwc_scont_t *s);
void lwc_copy_stack_free(struct lwc_cap *cap);
/* The stack s runs on: its own, or its home's shared one; NULL if none. */
const struct lwc_stack *lwc_scont_stack(const lwc_scont_t *s);
/* Where a suspended copy SCont's frames are now: in place on the shared
 * stack, or at *saved (len bytes, standing for [hi - len, hi)). */
bool lwc_copy_in_place(const lwc_scont_t *s);
extern lwc_stack_kind_t lwc_default_stack_kind;    /* never LWC_STACK_DEFAULT */
void lwc_stack_set_default_kind(lwc_stack_kind_t kind);
size_t lwc_copy_stack_size(void);   /* the largest stack_size a copy SCont may ask for */
/* Copy stacks need the assembly switch's stack pointer in hand (context.h). */
#define LWC_COPY_STACKS (!LWC_CONTEXT_UCONTEXT)

void lwc_scont_unref(lwc_scont_t *s);
void lwc_scont_ref(lwc_scont_t *s);
/* Switch away from the current SCont as the transaction just committed says.
 * Returns, once the SCont is resumed, the thread it resumed on. */
struct lwc_thread *lwc_switch_after_commit(lwc_tx_t *tx);
/* Upcalls, read consistently (Note [Upcall records] in scont.c). */
static inline void lwc_scont_load_upcalls(lwc_scont_t *s, lwc_upcalls_t *u)
{
    *u = *atomic_load_explicit(&s->up, memory_order_acquire);
}

static inline void *lwc_scont_env(lwc_scont_t *s)
{
    return atomic_load_explicit(&s->up, memory_order_acquire)->env;
}
void lwc_scont_free_all(void);
void lwc_scont_cache_flush(struct lwc_thread *t);
/* Take s's error (exception.c): the interrupt, and the pending one too as
 * `pending` says (Note [Two masks] there). */
enum lwc_take_pending {
    LWC_TAKE_NO_PENDING,            /* a switch that blocked, resumed */
    LWC_TAKE_UNLESS_MASKED,         /* a switch that left it runnable, an unmask */
    LWC_TAKE_AT_BLOCK               /* a switch about to block: unless masked uninterruptibly */
};
int  lwc_scont_take(lwc_scont_t *s, enum lwc_take_pending pending);
/* Note [Two masks] in exception.c. */
bool lwc_scont_masked_uninterruptibly(lwc_scont_t *s);
/* s, running, keeps errors thrown at it pending (an uninterruptible mask
 * that delivers nothing as it ends), on and off. */
void lwc_scont_hold_errors(lwc_scont_t *s, bool on);

/* s resumed after a switch that left it with status `left`: the error to
 * return from that switch, or LWC_OK (Note [Delivering errors]).  Inline: every
 * switch returns through it, and nearly always finds nothing. */
static inline int lwc_scont_take_error(lwc_scont_t *s, lwc_status_t left)
{
    bool pending_too = left == LWC_BLOCKED_ON_SCHED;
    if (__builtin_expect(!lwc_pvar_load(&s->interrupt) &&
                         (!pending_too || !lwc_pvar_load(&s->pending)), 1))
        return LWC_OK;
    return lwc_scont_take(s, pending_too ? LWC_TAKE_UNLESS_MASKED : LWC_TAKE_NO_PENDING);
}
/* In tx: end s's wait on a data structure with err; false if s cannot be woken
 * (not LWC_BLOCKED_ON_CONCDS, or no unblock_thread upcall). */
bool lwc_scont_interrupt(lwc_tx_t *tx, lwc_scont_t *s, int err);
/* lwc_unblock_thread; false if it did nothing. */
bool lwc_scont_unblock(lwc_tx_t *tx, lwc_scont_t *s);
/* Finish s, the current SCont, now: what returning from its function does. */
_Noreturn void lwc_scont_complete(lwc_scont_t *s);

/* ---- OS threads and capabilities (cap.c) -------------------------------- */

struct lwc_cap {
    unsigned          id;
    _Atomic int       busy;       /* CAP_IDLE (anyone may take it), CAP_BUSY, CAP_RELEASING */
    struct lwc_thread *worker;    /* its own OS thread, runs every unbound SCont */
    /* asleep with nothing to run: Note [Idle services] in service.c */
    _Atomic uint64_t  idle_until; /* the deadline it sleeps until; 0: not asleep */
    _Atomic int       idle_lock;
    struct lwc_thread *idle_thread;
    /* Note [Stopping the world] in detect.c */
    _Atomic int       safe;       /* its holder is parked or asleep: the detector may scan */
    void             *park_sp;    /* ... the lowest live word of the stack it is on */
    lwc_scont_t      *park_scont; /* ... the SCont that stack belongs to, or NULL */
    struct lwc_thread *park_thread; /* ... and the thread parked there */
    /* Note [Idling in a place of its own] in idle.c: whose switch_to_next
     * the capability asks for work while nothing runs on it */
    lwc_scont_t      *idle_for;   /* the SCont that stopped (a reference), or NULL */
    lwc_status_t      idle_why;   /* ... the status it stopped with */
    lwc_upcalls_t     idle_up;    /* ... and its upcalls then */
    struct lwc_copy_stack *copy;  /* its shared stack, once a copy SCont ran: copy.c */
    /* Note [Outcalls] in outcall.c: calls made here << 2 | CALL_* */
    _Atomic uint64_t  call;
    /* Note [Hosted capabilities] in host.c: no worker; a host's thread runs
     * it inside lwc_cap_host_run, and wake asks the host for a turn */
    bool              hosted;
    _Atomic bool      host_used;   /* made by lwc_cap_host_new, not freed */
    lwc_upcalls_t     host_up;     /* the scheduler it works for, live between turns */
    void            (*host_wake)(void *ud);
    void             *host_wake_ud;
};

enum { CAP_IDLE, CAP_BUSY, CAP_RELEASING };
/* A transaction that will give its capability back is committing (or stops). */
void lwc_cap_set_releasing(struct lwc_cap *cap, bool on);

enum thread_request { REQ_NONE, REQ_RELEASE, REQ_HANDOFF, REQ_EXIT, REQ_IDLE };
enum thread_kind { THREAD_FOREIGN, THREAD_WORKER, THREAD_BOUND, THREAD_HOST };

struct pending_wake { lwc_scont_t *s; uint32_t epoch; };

/* Everything lwc keeps per OS thread.  Reached through TLS; see Note [TLS across
 * switches] in cap.c before caching a pointer to it across a switch. */
struct lwc_thread {
    lwc_ctx_t          native;      /* the OS thread's own stack: its dispatcher */
    enum thread_kind   kind;
    struct lwc_cap    *cap;         /* held now, or NULL */
    lwc_scont_t       *current;     /* running now, or NULL on the native stack */
    lwc_scont_t       *prev;        /* what the last swap left; read by the landing side */
    lwc_ctx_t         *prev_ctx;    /* ... and where its stack pointer goes (context.h) */
    enum thread_request request;    /* for the native stack, from the SCont that left */
    lwc_scont_t       *handoff;
    /* mailbox: a capability and an SCont to run on it, handed over by another thread */
    _Atomic uint32_t   mail;        /* 0 empty, 1 full, 2 empty with the owner asleep */
    struct lwc_cap    *mail_cap;
    lwc_scont_t       *mail_target;
    bool               mail_exit;
    struct offload    *mail_job;    /* a spare's job: Note [Calls from a hosted capability] */
    lwc_scont_t       *bound_scont; /* THREAD_BOUND / THREAD_HOST: the one it runs */
    bool               bound_done;  /* ... and it has completed */
    pthread_t          pthread;
    struct lwc_tx      tx;
    /* after-commit work (ptm.c) */
    struct pending_wake *wakes;
    unsigned           nwakes, cap_wakes;
    struct tx_defer   *defers;
    unsigned           ndefers, cap_defers;
    bool               draining;
    unsigned           service_countdown; /* landings until the next lwc_services_tick */
    /* free SCont structs (scont.c) and stacks (stack.c): cache.h */
    struct lwc_cache   scont_cache, stack_cache;
    struct lwc_stack   spare_stack; /* Note [Stacks on first run] in scont.c */
    const void        *last_upcalls; /* the upcall record last interned (scont.c) */
    /* retry sleep in progress, for lwc_shutdown to interrupt */
    _Atomic uint32_t  *sleep_word;
    _Atomic int        sleep_lock;  /* guards sleep_word against lwc_shutdown */
    /* Note [Idle in a blocking switch] in detect.c */
    lwc_scont_t       *idle_self;
    struct retry_waiter *idle_waiter;
    struct lwc_tx_write   *idle_writes;
    unsigned           idle_nwrites, idle_cap_writes;
    bool               idle_completing;
    /* a plain OS thread that has used lwc: Note [Plain OS threads] in detect.c */
    struct lwc_thread *foreign_next, *foreign_prev;
    bool               registered;  /* on lwc_rt.foreign */
    _Atomic int        asleep;      /* in the kernel, inside lwc */
    void              *sleep_sp;    /* ... in a retry: its stack's lowest live word */
    struct retry_waiter *sleep_waiter; /* ... and what wakes it */
    const void        *host_lo;     /* lwc_host_enter: scan from here instead */
    char              *stack_hi;
    void              *altstack;
    stack_t            altstack_old; /* the thread's own, put back on leaving */
    struct lwc_thread *all_next;    /* runtime-owned threads, for shutdown */
    /* Note [Outcalls] in outcall.c: the SCont in a safe call on this thread,
     * and the lowest word of its frames the detector scans; the capability
     * and the word its end compares with; a spare worker's link */
    _Atomic(lwc_scont_t *) call_scont;
    _Atomic bool       call_interruptible;
    _Atomic int        call_interrupt;  /* an error was thrown: signal it (outcall.c) */
    void              *call_sp;
    struct lwc_cap    *call_cap;
    uint64_t           call_word;
    struct lwc_thread *spare_next;
    /* Note [Calls from a hosted capability] in outcall.c: the job a spare
     * runs for a suspended SCont, and that SCont, for interrupts */
    struct offload    *offload;
    _Atomic(lwc_scont_t *) offload_scont;
#if LWC_ASAN
    void              *asan_fake_stack;
    void              *native_lo;
    size_t             native_size;
#endif
#if LWC_TSAN
    void              *tsan_fiber;
#endif
};

struct lwc_runtime {
    _Atomic int        up;          /* lwc_init done, lwc_shutdown not begun */
    _Atomic int        stopping;
    unsigned           ncaps;       /* with a worker: caps[0 .. ncaps) */
    _Atomic unsigned   ncaps_all;   /* and hosted ones after them: Note [Hosted capabilities] */
    uint64_t           idle_gc_ns;  /* Note [The idle timer] in detect.c; 0: off */
    struct lwc_cap    *caps;
    pthread_mutex_t    lock;        /* threads list, SCont structs */
    struct lwc_thread *threads;
    struct scont_batch *scont_batches; /* Note [Type-stable SConts] */
    struct lwc_thread *foreign;        /* plain OS threads with a record */
    struct lwc_depot   scont_depot;    /* free SCont structs */
};
extern struct lwc_runtime lwc_rt;

/* Hosted capabilities (host.c): Note [Hosted capabilities].  caps[] has room
 * for this many after the workers' from lwc_init on, so no lwc_cap moves. */
#define LWC_MAX_HOSTED_CAPS 64
/* Every capability slot in use, worker or hosted, for whoever must see them
 * all (the detector, shutdown). */
static inline unsigned lwc_cap_slots(void)
{
    return atomic_load_explicit(&lwc_rt.ncaps_all, memory_order_acquire);
}

/* Every OS thread with a record, with lwc_rt.lock held: the runtime's own
 * (lwc_rt.threads), then the plain ones that called into lwc (lwc_rt.foreign,
 * Note [Plain OS threads] in detect.c), which alone are `registered`. */
static inline struct lwc_thread *lwc_thread_next_known(const struct lwc_thread *t)
{
    if (!t)
        return lwc_rt.threads ? lwc_rt.threads : lwc_rt.foreign;
    if (t->registered)
        return t->foreign_next;
    return t->all_next ? t->all_next : lwc_rt.foreign;
}
#define LWC_EACH_KNOWN_THREAD(t) \
    for (struct lwc_thread *t = lwc_thread_next_known(NULL); t; t = lwc_thread_next_known(t))

struct lwc_thread *lwc_thread_get(void);      /* creates the record on first use */

/* This OS thread's record, NULL if it has none.  Never across a switch in one
 * function: Note [TLS across switches] in cap.c. */
extern __thread struct lwc_thread *lwc_tls_thread __attribute__((tls_model("initial-exec")));
static inline struct lwc_thread *lwc_thread_peek(void)
{
    return lwc_tls_thread;
}
struct lwc_thread *lwc_thread_reload(void);   /* Note [TLS across switches] */
struct lwc_thread *lwc_thread_new_bound(lwc_scont_t *s);
void lwc_thread_free(struct lwc_thread *t);
void lwc_thread_mail(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *target);
/* Leave the SCont running on t for t's native stack with request req. */
void lwc_thread_to_native(struct lwc_thread *t, enum thread_request req, lwc_scont_t *handoff);
/* Land after a swap: record where the context we left stopped, and finish the
 * SCont that was left (Note [Switching out]).  Returns the thread we are on. */
struct lwc_thread *lwc_land(lwc_transfer_t tr);
/* Swap from the running context (SCont `from`, or the native stack when NULL)
 * to SCont `to` on thread t.  Returns the thread it resumed on. */
struct lwc_thread *lwc_swap_to(struct lwc_thread *t, lwc_scont_t *from, lwc_scont_t *to);

/* Work a commit left for after it (ptm.c): wake-ups, deferred actions. */
static inline void lwc_tx_after_commit(struct lwc_thread *t)
{
    if (__builtin_expect((t->nwakes | t->ndefers) != 0, 0) && !t->draining)
        lwc_tx_drain(t);
}

/* ---- Idle capabilities (idle.c): Note [Idling in a place of its own] -------- */

/* After a commit with to_idle (its switch_to_next upcall retried, so the
 * transaction ran again and committed self's stop with no target): note in
 * t's capability what to ask for work, and ask for REQ_IDLE. */
void lwc_idle_prepare(struct lwc_thread *t, lwc_tx_t *tx);
/* On t's native stack, holding cap, which is idle (cap->idle_for): ask the
 * stopped SCont's switch_to_next until it names an SCont.  Returns it if it
 * may run on t; otherwise cap went to where it runs (or was released) and
 * the result is NULL. */
lwc_scont_t *lwc_idle_run(struct lwc_thread *t, struct lwc_cap *cap);
/* t holds cap and runs nothing: run s on t (returned), or mail cap and s to
 * the thread s must run on, or with s NULL give cap back (NULL returned). */
lwc_scont_t *lwc_cap_route(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *s);
/* t holds cap: run first (NULL: ask cap's idle upcall for work) and what
 * follows on cap, until cap leaves t (released, or mailed elsewhere). */
void lwc_cap_serve(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *first);
void lwc_cap_serve_hosted(struct lwc_thread *t, struct lwc_cap *cap, lwc_scont_t *first);
/* Hosted capabilities that are between turns and were told a later
 * deadline than `deadline` get their host's wake (host.c). */
void lwc_cap_host_kick(uint64_t deadline);
/* May s run on thread t?  A bound SCont on its own thread only, any other on
 * a worker (lwc_swap_to and lwc_cap_route ask the same).  Not instrumented
 * by ThreadSanitizer, so that it inlines into lwc_swap_to, which is not
 * either: called, it made the compiler keep the switch target in a
 * callee-saved register across the switch (Note [Switch targets] in
 * scont.c), and under TSan every island of test_many_islands kept the next
 * one alive. */
static inline __attribute__((no_sanitize_thread))
bool lwc_runs_on(const lwc_scont_t *s, const struct lwc_thread *t)
{
    return s->bound ? s->bound == t : t->kind == THREAD_WORKER;
}

/* ---- Outcalls (outcall.c): Note [Outcalls] -------------------------------- */

enum { CALL_NONE, CALL_IN, CALL_KEPT, CALL_TAKEN };
#define CALL_STATE(w) ((unsigned)((w) & 3))
/* A worker thread, for the pool of spares. */
struct lwc_thread *lwc_thread_new_worker(void);
void lwc_outcall_adopt(struct lwc_thread *t, struct lwc_cap *cap);
/* A spare got a job by mail: run it (outcall.c). */
void lwc_outcall_run_job(struct lwc_thread *t);
/* t got cap by mail (native_loop): take over from a monitor's hand-off, or
 * become cap's worker after a call (both rare: one load when neither). */
static inline void lwc_outcall_mail(struct lwc_thread *t, struct lwc_cap *cap)
{
    if (__builtin_expect(CALL_STATE(atomic_load_explicit(&cap->call, memory_order_acquire)) ==
                             CALL_TAKEN ||
                         (t->kind == THREAD_WORKER && cap->worker != t), 0))
        lwc_outcall_adopt(t, cap);
}
/* lwc_throw_to made s's error pending: if s is in an interruptible call,
 * signal its OS thread. */
void lwc_outcall_interrupt(lwc_scont_t *s);
/* lwc_init, and lwc_shutdown: the monitor stops first. */
void lwc_outcall_init(void);
void lwc_outcall_shutdown(void);
/* In tx: self, back from a call whose capability was taken, stops with no
 * target and is queued by its own unblock_thread (scont.c). */
void lwc_scont_come_back(lwc_tx_t *tx);

/* ---- Idle services (service.c): Note [Idle services] ------------------------ */

#define LWC_SERVICE_EVERY 64
/* Poll the services if their deadline has passed, and the poller if armed
 * and its period has passed (or anyway: a host's turn, host.c); the next
 * deadline. */
uint64_t lwc_services_serve(bool poll_anyway);
void     lwc_services_tick(struct lwc_thread *t);
/* A switch has committed and t is back on a stack where transactions may run
 * (after the landing, or at once when the switch was to itself). */
static inline void lwc_services_count(struct lwc_thread *t)
{
    if (__builtin_expect(--t->service_countdown == 0, 0))
        lwc_services_tick(t);
}
/* t sleeps on c with nothing to run until `until` at the latest; the deadline
 * as it stands after that was published (sleep no later than it). */
uint64_t lwc_idle_publish(struct lwc_cap *c, struct lwc_thread *t, uint64_t until);
void     lwc_idle_unpublish(struct lwc_cap *c);
/* Note [The poller] in service.c: an idle capability's sleep in it. */
bool     lwc_poller_claim(void);            /* armed, and now this thread's */
void     lwc_poller_release(void);
bool     lwc_poller_wait(uint64_t deadline); /* false: the deadline passed */
void     lwc_poller_handle(void);
void     lwc_poller_wake(void);

/* ---- The blocked-forever detector (detect*.c) ------------------------------ */

/* Note [Stopping the world] in detect.c */
extern _Atomic uint32_t lwc_gc_request;
void lwc_gc_park(struct lwc_thread *t);
/* Lower cap's `safe` that its last holder raised (waits out a pass). */
void lwc_gc_unpark(struct lwc_cap *cap);
static inline void lwc_gc_safepoint(struct lwc_thread *t)
{
    if (__builtin_expect(atomic_load_explicit(&lwc_gc_request, memory_order_relaxed) != 0, 0))
        lwc_gc_park(t);
}
void lwc_gc_sleep_begin(struct lwc_thread *t, struct retry_waiter *w, bool forever);
void lwc_gc_sleep_end(struct lwc_thread *t);
/* An lwc_eval host sleeps for its mail from now on: Note [Plain OS threads]. */
void lwc_gc_host_sleeps(struct lwc_thread *t);
void lwc_gc_idle_record(struct lwc_thread *t, lwc_tx_t *tx, struct retry_waiter *w);
void lwc_gc_idle_clear(struct lwc_thread *t);
void lwc_gc_shutdown(void);
/* view.c: LWC_SCONTS_SIGNAL's watcher, started by lwc_init, stopped first by
 * lwc_shutdown. */
void lwc_view_init(void);
void lwc_view_shutdown(void);
int  lwc_gc_idle_timer(struct lwc_thread *t);  /* Note [The idle timer] in detect.c; how many woken */
/* Zero the frames a transaction body left below the caller (Note [Switch
 * targets] in scont.c): lwc_stack_scrub's little sibling, for every block. */
void lwc_stack_scrub_body(void);

/* The tables of traced.c, for the detector: held across a pass. */
void lwc_traced_lock(void);
void lwc_traced_unlock(void);
bool lwc_traced_is_pvar(const void *p);
void lwc_traced_each_block(void (*fn)(void *arg, const void *p, size_t n), void *arg);
void lwc_traced_each_pin(void (*fn)(void *arg, const void *p), void *arg);
size_t lwc_traced_npins(void);
void lwc_traced_each_pvar(void (*fn)(void *arg, const void *p, size_t n), void *arg);
/* Room for a PVar the detector knows for one, and back (Note [Slabs]
 * in traced.c). */
lwc_pvar_t *lwc_pvar_alloc(void);
bool lwc_pvar_known(const lwc_pvar_t *pv);   /* made by lwc_pvar_new, not freed */
void lwc_pvar_release(lwc_pvar_t *pv);       /* one that is known */

/* Note [Allocator slack]
 * ~~~~~~~~~~~~~~~~~~~~~~~
 * The detector scans the C library's static data like any other, and the
 * allocator keeps there the addresses of chunk headers (free lists, the top
 * chunk).  glibc lends the first word of the next chunk's header to the chunk
 * before it, so an object that fills its chunk exactly ends on the word where
 * the next header begins, and a free list's pointer to that header reads as a
 * pointer into the object: a dead thread kept alive.  So objects the detector
 * knows (SCont structs, lwc_alloc blocks) are allocated one word larger than
 * they are, and the header after them starts past their end. */
#define LWC_MALLOC_SLACK sizeof(void *)

void lwc_overflow_install(void);
void lwc_overflow_uninstall(void);
void lwc_altstack_enter(struct lwc_thread *t);
void lwc_altstack_leave(struct lwc_thread *t);

/* Report a misuse that cannot be returned as an error, once per site. */
void lwc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
