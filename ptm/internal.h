/* PTM internals shared with the substrate.  Nothing outside substrate/ and ptm/
 * may include this. */
#ifndef LWC_PTM_INTERNAL_H
#define LWC_PTM_INTERNAL_H

#include <lwc/ptm.h>
#include <lwc/scont.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Non-local exits within one stack (lwc_exit).  The builtins save only what
 * they must; the sanitizers intercept longjmp to keep their shadow stacks
 * right, so they get the library's. */
#if LWC_ASAN || LWC_TSAN
typedef jmp_buf lwc_jmp_buf;
#define LWC_SETJMP(jb)  setjmp(jb)
#define LWC_LONGJMP(jb) longjmp((jb), 1)
#else
/* Five words where a jmp_buf is 200 bytes: lwc_scont_run keeps one in
 * every thread's outermost frame, and a copy SCont saves its frames. */
typedef void *lwc_jmp_buf[5];
#define LWC_SETJMP(jb)  __builtin_setjmp((void **)(jb))
#define LWC_LONGJMP(jb) __builtin_longjmp((void **)(jb), 1)
#endif

/* How lwc_tx_abort leaves a transaction body: Note [Leaving a body] in ptm.c.
 * The sanitizers must see the frames go, so they get setjmp. */
#if !LWC_CONTEXT_UCONTEXT && !LWC_ASAN && !LWC_TSAN && \
    (defined(__x86_64__) || defined(__aarch64__))
#define LWC_TX_ASM 1
#if defined(__x86_64__)
#define LWC_TX_JB_WORDS 7           /* ptm/tx_x86_64.S */
#define LWC_TX_JB_SP    0           /* ... the word that holds the body's stack pointer */
#else
#define LWC_TX_JB_WORDS 21          /* ptm/tx_aarch64.S */
#define LWC_TX_JB_SP    20
#endif
#else
#define LWC_TX_ASM 0
#endif

struct lwc_thread;

/* Note [PVar layout]
 * ~~~~~~~~~~~~~~~~~~
 * A PVar is two words, <lwc/ptm.h>'s struct lwc_pvar, so that modules can
 * embed them.  It is its value and nothing else on the hot path:
 * transactions are validated by value against the global commit sequence
 * (Note [Opacity] in ptm.c), so there is no per-PVar lock or version.  The
 * second word lists the transactions asleep in lwc_tx_retry that read this
 * PVar, and its low bit is the lock that guards that list (retry nodes are
 * word-aligned).  A committer that reads the word nonzero takes the slow way
 * and looks under the lock (Note [Retry wake-up]); so does one that finds the
 * lock held on an empty list, which costs it a look and nothing more.  The
 * fields are plain in the public header, and every access here is atomic,
 * through these two.  A PVar holding 0 with no waiters is two zero words,
 * as lwc_pvar_init leaves it: <lwc/ptm.h> promises that zeroed memory holds
 * such a PVar, and the modules' pools and inboxes make theirs so. */
static inline _Atomic lwc_word_t *lwc_pvar_value_word(lwc_pvar_t *pv)
{
    return (_Atomic lwc_word_t *)&pv->value;
}

static inline _Atomic uintptr_t *lwc_pvar_waiter_word(lwc_pvar_t *pv)
{
    return (_Atomic uintptr_t *)&pv->waiters;
}

#define LWC_PVAR_LOCKED ((uintptr_t)1)

/* Note [Retry wake-up] in ptm.c.  A waiter is an OS thread asleep in a retry
 * (scont NULL) or an SCont blocked in one; each PVar it read lists one node. */
enum { W_WAITING, W_FIRED, W_SLEEPING, W_POLLING };   /* POLLING: asleep in the poller */

struct retry_waiter {
    _Atomic uint32_t state;
    lwc_scont_t     *scont;   /* NULL: the OS thread sleeps */
    uint32_t         epoch;
    int              error;   /* set by the detector: the retry returns it (detect.c) */
};

/* A sleeper's `sleep_word` is &w->state: lwc_retry_interrupt finds w from it. */
_Static_assert(offsetof(struct retry_waiter, state) == 0, "state first");

struct retry_node {
    struct retry_node   *next, *prev;
    struct retry_waiter *w;
    lwc_pvar_t          *pv;
};

struct tx_read  { lwc_pvar_t *pv; lwc_word_t val; };
struct tx_defer { void (*fn)(void *); void *arg; };

#define TX_INLINE_READS  32
#define TX_INLINE_WRITES 16
#define TX_INLINE_DEFERS 4

/* One descriptor per OS thread, reused by every transaction that thread runs.
 * A transaction never outlives a switch: it commits (or is abandoned) first.
 * `h` comes first: the inline paths of <lwc/ptm.h> read it (Note [In-place
 * transactions] in ptm.c); `jb` at LWC_TX_JB_OFFSET, where ptm/tx_*.S put it. */
#define LWC_TX_JB_OFFSET 32
struct lwc_tx {
    struct lwc_tx_head h;
#if LWC_TX_ASM
    void            *jb[LWC_TX_JB_WORDS];
#else
    jmp_buf          jb;
#endif
    uint64_t         snapshot;    /* the commit sequence every read so far is current at */
    struct tx_read  *reads;
    struct tx_defer *defers;
    unsigned         nreads, ndefers;
    unsigned         cap_reads, cap_defers;
    uint64_t         bloom;       /* which PVars may be in the write set */
    bool             active;
    bool             direct;      /* this thread holds the commit bias: Note [Biased commit] */
    bool             sleeps_thread; /* retry sleeps the OS thread, not the SCont */
    union {                       /* tx_begin clears these in one store */
        struct {
            bool     has_switch;
            bool     completing;  /* the substrate's own completion transaction */
            bool     blocking;    /* in lwc_switch_to_next, blocking self on a data structure */
            /* Note [Idling in a place of its own] in substrate/idle.c */
            bool     in_upcall;   /* a switch_to_next upcall for self began (no has_switch yet) */
            bool     rerun_idle;  /* run again because that upcall retried */
            bool     to_idle;     /* the switch leaves self for an idle capability */
            bool     releases;    /* the commit gives the capability back, with no switch */
            bool     gives_stack; /* the target first runs: Note [Stacks on first run] in scont.c */
        };
        uint64_t     flags;
    };
    lwc_scont_t     *self;        /* SCont running the transaction, or NULL */
    lwc_scont_t     *target;      /* with has_switch: NULL releases the capability */
    lwc_status_t     left_as;     /* with has_switch: the status self takes */
    int              abort_code;  /* 0, or why lwc_tx_abort left the body */
    lwc_scont_t     *first_run;   /* with gives_stack: the SCont it marked running */
    struct lwc_cap  *first_cap;   /* ... a copy SCont: the capability it runs on; else NULL */
    /* lwc_tx_run's arguments, kept here across the body's first run (Note
     * [The first run] in ptm.c). */
    lwc_tx_fn        run_fn;
    void            *run_arg;
    lwc_word_t      *run_result;
    bool             run_sleeps_thread;
    struct tx_read   inline_reads[TX_INLINE_READS];
    struct lwc_tx_write inline_writes[TX_INLINE_WRITES];
    struct tx_defer  inline_defers[TX_INLINE_DEFERS];
};

#if LWC_TX_ASM
/* ptm/tx_*.S: Note [Leaving a body] in ptm.c. */
lwc_word_t lwc_tx_call(lwc_tx_t *tx, lwc_tx_fn fn, void *arg);
_Noreturn void lwc_tx_unwind(lwc_tx_t *tx);
#endif

/* The commit sequence (Note [Opacity] in ptm.c) and the bias over it
 * (Note [Biased commit]).  Two cache lines: every transaction that begins
 * loads `bias`, and every peek `epoch`, which change only with the bias;
 * every commit that is not biased takes `seq` with a CAS.  On one line, each
 * commit on one capability cost every transaction and peek on the other a
 * cache miss (fib(30) on ws, 2 capabilities: 10% of its time in peeks). */
struct lwc_commit {
    _Alignas(64) _Atomic uintptr_t bias;  /* the lwc_thread that holds seq between commits, |1 while revoked */
    _Atomic uint64_t  epoch;      /* odd while the bias holder is inside a transaction */
    _Alignas(64) _Atomic uint64_t seq;
    /* Written only by whoever holds the sequence. */
    const struct lwc_thread *last_committer;
    unsigned          streak;     /* writing commits in a row by last_committer */
    unsigned          grant_after; /* streak that earns the bias; doubles on each revocation */
    _Atomic uint64_t  grants, revocations;  /* lwc_ptm_get_stats */
};
extern struct lwc_commit lwc_commit;

/* PVars are 16 bytes apart in a slab or a struct: the bits above those. */
static inline uint64_t lwc_bloom_bit(const lwc_pvar_t *pv)
{
    return (uint64_t)1 << (((uintptr_t)pv >> 4) & 63);
}

/* Read and write inside a running transaction.  The fast paths are inline and
 * call nothing: several run in every switch.  In place (Note [In-place
 * transactions] in ptm.c) a read is a load and a write a logged store, as in
 * <lwc/ptm.h>; otherwise a read is logged and a write buffered.  The slow
 * paths handle a PVar already written, a moved sequence, and full logs. */
lwc_word_t lwc_tx_read_slow(lwc_tx_t *tx, lwc_pvar_t *pv);
void lwc_tx_write_slow(lwc_tx_t *tx, lwc_pvar_t *pv, lwc_word_t v);

static inline lwc_word_t lwc_tx_read(lwc_tx_t *tx, lwc_pvar_t *pv)
{
    if (__builtin_expect(tx->h.in_place, 1))
        return atomic_load_explicit(lwc_pvar_value_word(pv), memory_order_acquire);
    if (__builtin_expect(!(tx->bloom & lwc_bloom_bit(pv)), 1)) {
        /* Note [Opacity] in ptm.c: the value, then the sequence. */
        lwc_word_t v = atomic_load_explicit(lwc_pvar_value_word(pv), memory_order_acquire);
        if (__builtin_expect(tx->nreads < tx->cap_reads &&
                             atomic_load_explicit(&lwc_commit.seq, memory_order_relaxed) ==
                             tx->snapshot, 1)) {
            tx->reads[tx->nreads++] = (struct tx_read){ pv, v };
            return v;
        }
    }
    return lwc_tx_read_slow(tx, pv);
}

static inline void lwc_tx_write(lwc_tx_t *tx, lwc_pvar_t *pv, lwc_word_t v)
{
    if (__builtin_expect(tx->h.nwrites < tx->h.cap_writes, 1)) {
        if (__builtin_expect(tx->h.in_place, 1)) {
            lwc_tx_store_in_place(&tx->h, pv, v);
            return;
        }
        uint64_t bit = lwc_bloom_bit(pv);
        if (__builtin_expect(!(tx->bloom & bit), 1)) {
            tx->h.writes[tx->h.nwrites++] = (struct lwc_tx_write){ pv, v };
            tx->bloom |= bit;
            return;
        }
    }
    lwc_tx_write_slow(tx, pv, v);
}

/* A PVar's value now, with no wait: what lwc_pvar_peek returns, or a value an
 * in-place transaction of the bias holder has stored and may yet undo (Note
 * [In-place transactions] in ptm.c).  For words that only the caller writes
 * (its own status), and for hints that a transaction then checks. */
static inline lwc_word_t lwc_pvar_load(lwc_pvar_t *pv)
{
    return atomic_load_explicit(lwc_pvar_value_word(pv), memory_order_acquire);
}


void lwc_tx_init(lwc_tx_t *tx);
void lwc_tx_destroy(lwc_tx_t *tx);

/* Leave the running transaction body with err; lwc_atomically returns it.
 * Besides the lwc errors, the positive codes below; never LWC_OK (0 becomes
 * LWC_EINVAL: Note [Leaving a body] in ptm.c). */
_Noreturn void lwc_tx_abort(lwc_tx_t *tx, int err);
#define LWC_TX_RERUN    1       /* a read was stale: run the body again */
#define LWC_TX_RETRY    2       /* lwc_tx_retry */
#define LWC_TX_DELIVER  3       /* a blocking switch found an error pending for self */
/* Is everything the running body has read still current?  Always, in place
 * (Note [In-place transactions]).  For a body that read a word outside PTM
 * and found it at odds with what it read through it. */
bool lwc_tx_reads_current(lwc_tx_t *tx);
/* Give up the running transaction of this thread, if any, committing nothing
 * (lwc_exit). */
void lwc_tx_abandon(lwc_tx_t *tx);

/* Run fn as a transaction for `self` (NULL on a plain OS thread).  sleeps_thread
 * makes a retry sleep the OS thread from the start.  Commits, performs any switch
 * it asked for, and returns what lwc_atomically returns. */
int lwc_tx_run(lwc_tx_fn fn, void *arg, lwc_word_t *result, bool sleeps_thread);

/* Work a commit leaves for after it on thread t: wake-ups of SConts that retried
 * on a PVar it wrote, and deferred functions.  Run by the committing OS thread
 * once it is off the old SCont's stack (or at once when the commit did not
 * switch), through lwc_tx_after_commit (substrate/internal.h), which calls
 * this only when something is queued. */
void lwc_tx_drain(struct lwc_thread *t);

/* Take a node list out of the PVars' waiter lists (an SCont freed at shutdown
 * while blocked in a retry), and wake an OS thread asleep in one. */
void lwc_retry_forget(struct retry_node *nodes, unsigned n);
/* A thread record is going away: if it holds the commit bias, release it. */
void lwc_ptm_thread_gone(const struct lwc_thread *t);
void lwc_retry_interrupt(struct lwc_thread *t);
/* Wake t from its sleep in the kernel without firing its retry: it serves
 * the idle services and sleeps again to the deadline they leave (a service
 * deadline was lowered: Note [Idle services] in substrate/service.c). */
void lwc_retry_nudge(struct lwc_thread *t);
/* w's state was `old` when it was fired or nudged: wake its sleeper, in the
 * kernel or in the poller (Note [The poller] in substrate/service.c). */
void lwc_waiter_rouse(struct retry_waiter *w, uint32_t old);
/* The commit sequence once nothing publishes and nobody holds the bias. */
uint64_t lwc_ptm_quiet_seq(void);
/* Guard a PVar's waiter list (the detector walks it), and its first node. */
void lwc_pvar_wlock(lwc_pvar_t *pv);
void lwc_pvar_wunlock(lwc_pvar_t *pv);
static inline struct retry_node *lwc_pvar_first_waiter(lwc_pvar_t *pv)
{
    uintptr_t w = atomic_load_explicit(lwc_pvar_waiter_word(pv), memory_order_relaxed);
    return (struct retry_node *)(w & ~LWC_PVAR_LOCKED);
}

#endif
