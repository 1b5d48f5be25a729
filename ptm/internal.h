/* PTM internals shared with the substrate.  Nothing outside substrate/ and ptm/
 * may include this. */
#ifndef LWC_PTM_INTERNAL_H
#define LWC_PTM_INTERNAL_H

#include <lwc/scont.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>

struct retry_node;
struct lwc_thread;

/* Note [PVar layout]
 * ~~~~~~~~~~~~~~~~~~
 * `lock` is a versioned lock: bit 0 set while a committing transaction owns the
 * PVar, the other bits the global clock value of the last commit that wrote it.
 * A reader samples lock, value, lock again; equal, unlocked and not newer than its
 * snapshot means the value belongs to the snapshot (see Note [Opacity]).
 * `waiters` lists the transactions asleep in lwc_tx_retry that read this PVar;
 * `wlock` guards that list only. */
struct lwc_pvar {
    _Atomic uint64_t          lock;
    _Atomic lwc_word_t        value;
    struct retry_node *_Atomic waiters;
    _Atomic uint32_t          wlock;
};

struct tx_write { lwc_pvar_t *pv; lwc_word_t val; uint64_t seen; };
struct tx_defer { void (*fn)(void *); void *arg; };

#define TX_INLINE_READS  32
#define TX_INLINE_WRITES 16
#define TX_INLINE_DEFERS 4

/* One descriptor per OS thread, reused by every transaction that thread runs.
 * A transaction never outlives a switch: it commits (or is abandoned) first. */
struct lwc_tx {
    uint64_t         rv;          /* snapshot: global clock at start (or extension) */
    lwc_pvar_t     **reads;
    struct tx_write *writes;
    struct tx_defer *defers;
    unsigned         nreads, nwrites, ndefers;
    unsigned         cap_reads, cap_writes, cap_defers;
    uint64_t         bloom;       /* which PVars may be in the write set */
    bool             active;
    bool             sleeps_thread; /* retry sleeps the OS thread, not the SCont */
    bool             has_switch;
    bool             completing;  /* the substrate's own completion transaction */
    lwc_scont_t     *self;        /* SCont running the transaction, or NULL */
    lwc_scont_t     *target;      /* with has_switch: NULL releases the capability */
    int              abort_code;  /* why the body was left by longjmp */
    jmp_buf          jb;
    lwc_pvar_t      *inline_reads[TX_INLINE_READS];
    struct tx_write  inline_writes[TX_INLINE_WRITES];
    struct tx_defer  inline_defers[TX_INLINE_DEFERS];
};

/* Initialise a PVar that lives inside another object (SCont status ...). */
void lwc_pvar_init(lwc_pvar_t *pv, lwc_word_t init);

void lwc_tx_init(lwc_tx_t *tx);
void lwc_tx_destroy(lwc_tx_t *tx);

/* Leave the running transaction body with err; lwc_atomically returns it. */
_Noreturn void lwc_tx_abort(lwc_tx_t *tx, int err);

/* Run fn as a transaction for `self` (NULL on a plain OS thread).  sleeps_thread
 * makes a retry sleep the OS thread from the start.  Commits, performs any switch
 * it asked for, and returns what lwc_atomically returns. */
int lwc_tx_run(lwc_tx_fn fn, void *arg, lwc_word_t *result, bool sleeps_thread);

/* Work a commit leaves for after it on thread t: wake-ups of SConts that retried
 * on a PVar it wrote, and deferred functions.  Run by the committing OS thread
 * once it is off the old SCont's stack (or at once when the commit did not
 * switch).  Cheap to call with nothing queued. */
void lwc_tx_after_commit(struct lwc_thread *t);

/* Take a node list out of the PVars' waiter lists (an SCont freed at shutdown
 * while blocked in a retry), and wake an OS thread asleep in one. */
void lwc_retry_forget(struct retry_node *nodes, unsigned n);
void lwc_retry_interrupt(struct lwc_thread *t);

#endif
