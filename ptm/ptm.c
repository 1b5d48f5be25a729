/* PVars and transactions.
 *
 * The algorithm is NOrec's (Dalessandro, Spear, Scott, PPoPP 2010): one global
 * commit sequence, reads validated by value, writes buffered and published
 * while the sequence is held.  An uncontended writing transaction costs one
 * atomic read-modify-write however many PVars it writes, and a read-only one
 * none.  What lwc adds: retry (a transaction sleeps until a PVar it read is
 * written) and the commit that carries a switch (scont.c). */
#include "config.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../substrate/futex.h"
#include "../substrate/internal.h"
#include "../substrate/trace.h"
#include "internal.h"

/* Note [Opacity]
 * ~~~~~~~~~~~~~~
 * `lwc_commit.seq` is even while no transaction is publishing and odd while one is;
 * each writing commit moves it up by two.  A transaction starts with a snapshot,
 * an even value of it.  A read loads the PVar's value, then the sequence: if the
 * sequence still equals the snapshot, no commit has published since the
 * snapshot, so the value and every value read before it were current together.
 * If it moved, the transaction revalidates: it waits for an even sequence s,
 * reloads every value it has read, and if all are unchanged and the sequence is
 * still s, they are all current at s, which becomes the snapshot.  A changed
 * value abandons the body with a longjmp to run it again.  So a body never sees
 * two values that were not current together (opacity), and C code in it cannot
 * crash on an impossible state.
 *
 * A writing commit takes the sequence from its snapshot to snapshot+1 with one
 * compare-and-swap, which succeeds only if nobody committed since: the reads are
 * then current, and stay so while it holds the odd value.  It stores the values
 * (release) and moves the sequence to snapshot+2 (release).  A failed CAS
 * revalidates and tries again.  A reader that sees a new value has therefore
 * also seen the odd sequence that came before it (the value stores are releases
 * after the CAS), and rejects the value unless it revalidates past that commit.
 *
 * Validation by value accepts a PVar that changed and changed back (A-B-A): the
 * transaction sees a state that was current at the new snapshot, which is all
 * serializability asks.  The cost of the design is that every writing commit
 * touches one cache line: commits from all capabilities are serialized.  They
 * are short (a CAS, the stores, a store), and with the capability counts lwc
 * targets that line costs less than what it replaced: TL2, with a lock per
 * written PVar and a global clock increment, paid three atomic read-modify-
 * writes for a switch where this pays one. */
struct lwc_commit lwc_commit = { .grant_after = 256 };

/* Note [In-place transactions]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * A direct transaction (Note [Biased commit]) runs in place: no other thread
 * can read or commit a PVar while it runs, so it need not buffer its writes
 * or validate its reads (the Transactional Mutex Lock's insight; TinySTM
 * calls the write half write-through).  A read is one load; a write records
 * the value it replaces in the write log (`h.writes`, now an undo log),
 * notes whether the PVar has retry waiters (`h.waited`), and stores.  The
 * commit stores nothing: it leaves the bias, and only if a PVar written had
 * waiters does it walk the log to fire them (Note [Retry wake-up]).  Noting
 * waiters as it writes misses none that a look at the commit would find: no
 * other thread can register on a PVar and then sleep while the bias is held,
 * since it checks its reads first (reads_current), which revokes the bias
 * and so waits for this commit, whose new value then keeps it awake.  Every way out of the
 * body but a commit (an error, a retry, lwc_exit) puts the old values back,
 * newest first, before the epoch moves on.  Measured when this went in
 * (`make bench-instr`, instructions per operation): yield 742 -> 550, ring
 * hop 2231 -> 1726, pingpong round trip 4957 -> 3454.
 *
 * The fast paths are inline in <lwc/ptm.h>, for every module: they read the
 * head of the descriptor (`h`: the log and the in-place flag) and the first
 * word of a PVar, and call the exported functions for everything else.
 *
 * Three things see memory while an in-place body runs, and each is kept
 * from its stores:
 *  - Other threads' transactions: they must revoke the bias to begin, and
 *    revocation waits until `epoch` is even, after the commit or the undo.
 *  - lwc_pvar_peek from another thread: a seqlock over `epoch`.  The holder
 *    makes it odd before its first store (the stores are releases, so they
 *    follow it) and even after the last (a release); a peek loads `epoch`,
 *    the value (acquire), `epoch` again, and keeps the value only if both
 *    loads found the same even number.  The holder's own peeks are served
 *    at once.  So a peek never returns a value that was not committed, and
 *    never revokes the bias: it waits, at most one transaction long.
 *  - lwc_pvar_load inside the substrate (internal.h): no wait, used only for
 *    words that nobody else writes (a running SCont's own status) and for
 *    hints that a transaction then checks (pending errors).
 *
 * A PVar written twice is logged twice: the inline write does not look.
 * undo_make_room folds repeats away when the log fills, and the commit locks
 * each PVar with waiters once (in_place_waited).
 *
 * Note [Unlogged reads]
 * ~~~~~~~~~~~~~~~~~~~~~
 * An in-place transaction keeps no read log: no other thread can commit
 * while it runs, so every value it reads stays current, there is nothing to
 * validate, and a read is one load.  The log has one other use: a
 * transaction that retries sleeps on the PVars it read (Note [Retry
 * wake-up]).  So an in-place body that calls lwc_tx_retry is undone and run
 * again from the start with its reads logged and its writes buffered
 * (`log_reads` in lwc_tx_run), direct or not as the bias then stands; only
 * that run waits, and the detector finds its writes where a blocking switch
 * keeps them (Note [Idle in a blocking switch] in substrate/detect.c).  (A
 * retry inside a switch_to_next upcall is run again otherwise: Note [Idling
 * in a place of its own] in substrate/idle.c.)  The
 * second run is an ordinary transaction: if the state it sees no longer makes
 * it retry (another thread committed in between), it commits.  A retry thus
 * costs one more run of the body, and every other direct transaction saves
 * a log entry, a load of the sequence and a compare per read.
 *
 * Note [Biased commit]
 * ~~~~~~~~~~~~~~~~~~~~
 * On one capability every commit comes from one OS thread, and the CAS that
 * takes the sequence is most of what an uncontended transaction costs (a
 * lock-prefixed instruction takes 10 ns on the machine this was tuned on).  So a
 * thread that makes `grant_after` writing commits in a row keeps the sequence:
 * it publishes, leaves the sequence odd, and records itself in `bias`.  While it
 * holds the bias its transactions run direct: the snapshot is the odd sequence
 * (nobody else can move it), and the commit publishes with no read-modify-write
 * at all.  To every other thread the sequence looks like a commit in progress.
 *
 * A thread that finds the sequence odd and the bias held revokes it: it sets the
 * low bit of `bias` with a CAS (so one revoker wins), waits until the holder is
 * outside any transaction (`epoch` is even), and releases the sequence for it.
 * The holder makes `epoch` odd and then re-reads `bias` at the start of every
 * transaction, with no fence between.  The revoker provides the fence for both
 * sides: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) between its CAS and its
 * load of `epoch` makes every running thread of the process pass a full barrier.
 * Either the holder's load of `bias` comes after that barrier and sees the
 * revocation (it makes `epoch` even and runs an ordinary transaction), or its
 * store to `epoch` came before it and the revoker sees it and waits.  That is Dekker's
 * exclusion with the expensive half on the rare side.  The wait is short: no
 * transaction sleeps with `epoch` odd (a retry moves it on once its waiters are
 * registered, tx_wait).
 *
 * The holder never revokes itself on a hot path: only a transaction that is not
 * direct waits in stable_seq (its begin, its revalidation, its commit CAS), and
 * a transaction of the holder is direct unless the bias is already being
 * revoked; a direct one never finds the sequence moved, because only the
 * holder or a revoker moves it, and revocation waits for an even `epoch`.  Only
 * lwc_thread_free revokes its own thread's bias, on purpose.  The grant is the
 * one place a thread takes the bias, inside its own commit, so no transaction
 * of a thread is in flight when it becomes the holder.
 *
 * A revocation costs a system call and an interrupt per busy core, microseconds,
 * so each one doubles `grant_after`: threads that take turns committing stop
 * earning the bias and pay the CAS as before.  `bias` is cleared before the
 * sequence goes even, or a thread that took the even sequence and earned the
 * bias could see its grant overwritten.  `bias` is an identity only, never
 * dereferenced: a thread record freed while holding it leaves nothing dangling
 * (lwc_thread_free revokes it all the same).
 *
 * Off under ThreadSanitizer (it cannot see membarrier's barriers), on kernels
 * without private expedited membarrier (before 4.14), and with LWC_PTM_BIAS=0
 * in the environment: there every writing commit takes the CAS. */

#define GRANT_AFTER_MAX (1u << 16)

enum { BIAS_UNKNOWN, BIAS_ON, BIAS_OFF };
static _Atomic int bias_mode;

static bool bias_enabled(void)
{
    int m = atomic_load_explicit(&bias_mode, memory_order_relaxed);
    if (m == BIAS_UNKNOWN) {
        m = BIAS_OFF;
#if !LWC_TSAN && defined(__NR_membarrier)
        const char *env = getenv("LWC_PTM_BIAS");
        if (!(env && strcmp(env, "0") == 0) &&
            syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
            m = BIAS_ON;
#endif
        atomic_store_explicit(&bias_mode, m, memory_order_relaxed);
    }
    return m == BIAS_ON;
}

/* A statistic written only by whoever holds the sequence: no read-modify-write. */
static void count(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void lwc_ptm_get_stats(lwc_ptm_stats_t *out)
{
    if (!out)
        return;
    out->bias_enabled = bias_enabled();
    out->bias_grants = atomic_load_explicit(&lwc_commit.grants, memory_order_relaxed);
    out->bias_revocations = atomic_load_explicit(&lwc_commit.revocations, memory_order_relaxed);
}

/* Called by a committer that holds the sequence: has t earned the bias? */
static bool bias_earned(const struct lwc_thread *t)
{
    if (lwc_commit.last_committer != t) {
        lwc_commit.last_committer = t;
        lwc_commit.streak = 1;
        return false;
    }
    if (++lwc_commit.streak < lwc_commit.grant_after || !bias_enabled())
        return false;
    count(&lwc_commit.grants);
    return true;
}

/* At the start of a transaction: does t hold the bias, and may it run direct?
 * Makes `epoch` odd if so. */
static inline void epoch_step(memory_order mo)
{
    uint64_t e = atomic_load_explicit(&lwc_commit.epoch, memory_order_relaxed);
    atomic_store_explicit(&lwc_commit.epoch, e + 1, mo);     /* only the holder writes it */
}

static inline bool bias_enter(const struct lwc_thread *t)
{
    if (atomic_load_explicit(&lwc_commit.bias, memory_order_relaxed) != (uintptr_t)t)
        return false;
    epoch_step(memory_order_relaxed);
    /* The revoker's membarrier is the fence (Note [Biased commit]).  In-place
     * stores are releases, so they follow the odd epoch for lwc_pvar_peek. */
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&lwc_commit.bias, memory_order_relaxed) == (uintptr_t)t)
        return true;
    epoch_step(memory_order_release);
    return false;
}

static inline void bias_leave(void)
{
    epoch_step(memory_order_release);
}

/* End the bias of holder b and release the sequence for it. */
static void bias_revoke(uintptr_t b)
{
    if (!atomic_compare_exchange_strong(&lwc_commit.bias, &b, b | 1))
        return;                                 /* another revoker won */
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        lwc_warn("membarrier failed after registration: %s", strerror(errno));
        abort();
    }
    for (unsigned i = 0; atomic_load_explicit(&lwc_commit.epoch, memory_order_acquire) & 1; i++)
        lwc_spin_step(i);
    lwc_commit.last_committer = NULL;
    count(&lwc_commit.revocations);
    if (lwc_commit.grant_after < GRANT_AFTER_MAX)
        lwc_commit.grant_after *= 2;
    uint64_t s = atomic_load_explicit(&lwc_commit.seq, memory_order_relaxed);
    atomic_store_explicit(&lwc_commit.bias, 0, memory_order_relaxed);
    atomic_store_explicit(&lwc_commit.seq, s + 1, memory_order_release);
}

void lwc_ptm_thread_gone(const struct lwc_thread *t)
{
    if (atomic_load(&lwc_commit.bias) == (uintptr_t)t)
        bias_revoke((uintptr_t)t);
}

/* ---- PVars ---------------------------------------------------------------- */

void lwc_pvar_init(lwc_pvar_t *pv, lwc_word_t init)
{
    atomic_init(lwc_pvar_value_word(pv), init);
    atomic_init(lwc_pvar_waiter_word(pv), 0);
}

lwc_pvar_t *lwc_pvar_new(lwc_word_t init)
{
    lwc_pvar_t *pv = lwc_pvar_alloc();     /* the detector knows it for a PVar */
    if (pv)
        lwc_pvar_init(pv, init);
    return pv;
}

/* The low bit of a PVar's waiter word guards its list: Note [PVar layout]. */
static void wlock(lwc_pvar_t *pv)
{
    for (unsigned i = 0; atomic_fetch_or_explicit(lwc_pvar_waiter_word(pv), LWC_PVAR_LOCKED,
                                                  memory_order_acquire) & LWC_PVAR_LOCKED; i++)
        lwc_spin_step(i);
}

static void wunlock(lwc_pvar_t *pv)
{
    atomic_fetch_and_explicit(lwc_pvar_waiter_word(pv), ~LWC_PVAR_LOCKED, memory_order_release);
}

/* The list's first node; the lock held. */
static void set_first_waiter(lwc_pvar_t *pv, struct retry_node *n, memory_order mo)
{
    atomic_store_explicit(lwc_pvar_waiter_word(pv), (uintptr_t)n | LWC_PVAR_LOCKED, mo);
}

void lwc_pvar_wlock(lwc_pvar_t *pv)   { wlock(pv); }
void lwc_pvar_wunlock(lwc_pvar_t *pv) { wunlock(pv); }

/* Note [Freeing a PVar]
 * ~~~~~~~~~~~~~~~~~~~~~
 * A committer fires the waiters of the PVars it wrote after it has released
 * the sequence, so whoever sees the new value may already be running, and may
 * free the PVar (a scheduler instance freed once its last capability is seen
 * gone) while the committer still walks its waiter list.  So publish takes the
 * wlock of every PVar it finds waiters on *before* it stores the value, and
 * fire_waiters drops it after firing; lwc_pvar_fini (and so lwc_pvar_free)
 * takes and drops the lock first.  Anyone who saw the value (acquire) sees
 * the lock held, and waits for the fire to finish.  A PVar that had no waiters at publish is not touched
 * again: a waiter registered later finds the new value (Note [Retry wake-up]). */
void lwc_pvar_fini(lwc_pvar_t *pv)
{
    if (!pv)
        return;
    wlock(pv);
    wunlock(pv);
}

void lwc_pvar_free(lwc_pvar_t *pv)
{
    if (!pv)
        return;
    if (!lwc_pvar_known(pv)) {
        lwc_warn("lwc_pvar_free: %p is not a PVar lwc_pvar_new made, or was freed already",
                 (void *)pv);
        return;
    }
    lwc_pvar_fini(pv);
    lwc_pvar_release(pv);
}


/* Note [In-place transactions]: a value is committed once the epoch that was
 * even before it was loaded is the same after. */
lwc_word_t lwc_pvar_peek(lwc_pvar_t *pv)
{
    for (unsigned i = 0;; i++) {
        uint64_t e = atomic_load_explicit(&lwc_commit.epoch, memory_order_acquire);
        lwc_word_t v = atomic_load_explicit(lwc_pvar_value_word(pv), memory_order_acquire);
        if (!(e & 1) && atomic_load_explicit(&lwc_commit.epoch, memory_order_relaxed) == e)
            return v;
        struct lwc_thread *t = lwc_thread_peek();
        if (t && atomic_load_explicit(&lwc_commit.bias, memory_order_relaxed) == (uintptr_t)t)
            return v;                   /* our own transaction: what it wrote is ours */
        lwc_spin_step(i);
    }
}

/* ---- The descriptor ------------------------------------------------------- */

void lwc_tx_init(lwc_tx_t *tx)
{
    memset(tx, 0, sizeof *tx);
    tx->reads = tx->inline_reads;
    tx->h.writes = tx->inline_writes;
    tx->defers = tx->inline_defers;
    tx->cap_reads = TX_INLINE_READS;
    tx->h.cap_writes = TX_INLINE_WRITES;
    tx->cap_defers = TX_INLINE_DEFERS;
}

void lwc_tx_destroy(lwc_tx_t *tx)
{
    if (tx->reads != tx->inline_reads) free(tx->reads);
    if (tx->h.writes != tx->inline_writes) free(tx->h.writes);
    if (tx->defers != tx->inline_defers) free(tx->defers);
}

/* A handle that is no running transaction's (NULL, or kept from one that
 * has committed): there is no body to leave, and going on would jump
 * through a stale context.  Named, as a stack overflow is. */
static _Noreturn __attribute__((noinline, cold)) void misused(const char *what, lwc_tx_t *tx)
{
    fprintf(stderr, "lwc: %s(%p) outside the body of a running transaction: a NULL tx, or "
            "one kept from a transaction that has ended; aborting\n", what, (void *)tx);
    abort();
}

_Noreturn void lwc_tx_abort(lwc_tx_t *tx, int err)
{
    if (__builtin_expect(!tx || !tx->active, 0))
        misused(err == LWC_TX_RETRY ? "lwc_tx_retry" : "lwc_tx_abort", tx);
    /* Never 0: lwc_tx_run would take the abandoned body for one that returned
     * and commit it (Note [Leaving a body]). */
    tx->abort_code = err ? err : LWC_EINVAL;
#if LWC_TX_ASM
    lwc_tx_unwind(tx);          /* Note [Leaving a body] */
#else
    LWC_LONGJMP(tx->jb);
#endif
}

static void undo(lwc_tx_t *tx);

void lwc_tx_abandon(lwc_tx_t *tx)
{
    if (!tx->active)
        return;
    if (tx->h.in_place)
        undo(tx);
    if (tx->direct)
        bias_leave();
    tx->active = false;
}

/* Double an array that started inline; on failure the transaction ends ENOMEM. */
static void *grow(lwc_tx_t *tx, void *arr, void *inline_arr, unsigned *cap, size_t elem)
{
    size_t n = (size_t)*cap * 2;
    void *p = malloc(n * elem);
    if (!p)
        lwc_tx_abort(tx, LWC_ENOMEM);
    memcpy(p, arr, (size_t)*cap * elem);
    if (arr != inline_arr)
        free(arr);
    *cap = (unsigned)n;
    return p;
}

/* The commit sequence once no commit is publishing.  seq_cst, for
 * Note [Retry wake-up]; on x86-64 and aarch64 that costs what acquire does. */
static uint64_t stable_seq(void)
{
    for (unsigned i = 0;; i++) {
        uint64_t s = atomic_load(&lwc_commit.seq);
        if (!(s & 1))
            return s;
        uintptr_t b = atomic_load_explicit(&lwc_commit.bias, memory_order_relaxed);
        if (b && !(b & 1))
            bias_revoke(b);             /* Note [Biased commit] */
        else
            lwc_spin_step(i);
    }
}

uint64_t lwc_ptm_quiet_seq(void)
{
    return stable_seq();
}

/* Are the values of reads[0..n) what they were?  True: yes, all current at
 * *at (an even commit sequence).  Note [Opacity]. */
static bool reads_current(const struct tx_read *reads, unsigned n, uint64_t *at)
{
    for (;;) {
        uint64_t s = stable_seq();
        unsigned i = 0;
        while (i < n && atomic_load_explicit(lwc_pvar_value_word(reads[i].pv), memory_order_acquire) ==
                        reads[i].val)
            i++;
        if (i < n)
            return false;
        if (atomic_load(&lwc_commit.seq) == s) {
            *at = s;
            return true;
        }
    }
}

/* What every transaction starts from; `direct` is bias_enter's answer. */
static inline void tx_begin_with(struct lwc_thread *t, lwc_tx_t *tx, bool sleeps_thread,
                                 bool direct, bool log_reads, bool rerun_idle)
{
    tx->nreads = tx->h.nwrites = tx->ndefers = 0;
    tx->h.waited = 0;
    tx->abort_code = 0;
    tx->bloom = 0;
    tx->flags = 0;              /* `target` is read only with has_switch */
    tx->rerun_idle = rerun_idle;
    tx->self = t->current;
    tx->sleeps_thread = sleeps_thread | !t->current;
    tx->active = true;
    tx->direct = direct;
    tx->h.in_place = direct & !log_reads;
    tx->snapshot = direct ? atomic_load_explicit(&lwc_commit.seq, memory_order_relaxed)
                          : stable_seq();
}

static inline void tx_begin(struct lwc_thread *t, lwc_tx_t *tx, bool sleeps_thread,
                            bool log_reads, bool rerun_idle)
{
    tx_begin_with(t, tx, sleeps_thread, bias_enter(t), log_reads, rerun_idle);
}

/* ---- Reads and writes ------------------------------------------------------ */

static inline struct lwc_tx_write *find_write(lwc_tx_t *tx, const lwc_pvar_t *pv)
{
    if (!(tx->bloom & lwc_bloom_bit(pv)))
        return NULL;
    for (unsigned i = tx->h.nwrites; i-- > 0;)
        if (tx->h.writes[i].pv == pv)
            return &tx->h.writes[i];
    return NULL;
}

/* In place, a PVar written twice is logged twice (the inline write does not
 * look).  A full log first drops those repeats, keeping each PVar's first
 * entry, which holds the value the transaction found; only if that frees too
 * little does it grow.  So a body that writes one PVar in a loop keeps a log
 * the size of what it writes, not of how often. */
static void undo_make_room(lwc_tx_t *tx)
{
    unsigned n = tx->h.nwrites, size = 64;
    while (size < 2 * n)
        size *= 2;
    lwc_pvar_t **seen = calloc(size, sizeof *seen);
    if (seen) {
        unsigned kept = 0;
        for (unsigned i = 0; i < n; i++) {
            lwc_pvar_t *pv = tx->h.writes[i].pv;
            size_t k = (size_t)(((uintptr_t)pv >> 4) * 0x9E3779B97F4A7C15ull >> 7);
            bool dup = false;
            for (;; k++) {
                lwc_pvar_t **slot = &seen[k & (size - 1)];
                if (!*slot) {
                    *slot = pv;
                    break;
                }
                if (*slot == pv) {
                    dup = true;
                    break;
                }
            }
            if (!dup)
                tx->h.writes[kept++] = tx->h.writes[i];
        }
        free(seen);
        tx->h.nwrites = kept;
        if (kept <= tx->h.cap_writes / 2)
            return;
    }
    tx->h.writes = grow(tx, tx->h.writes, tx->inline_writes, &tx->h.cap_writes,
                        sizeof *tx->h.writes);
}

/* Put back what an in-place body overwrote, newest first, so a PVar written
 * twice ends with the value the transaction found.  Relaxed: nobody reads
 * these words before the epoch moves on with a release (bias_leave), after
 * this (Note [In-place transactions]). */
static void undo(lwc_tx_t *tx)
{
    for (unsigned i = tx->h.nwrites; i-- > 0;)
        atomic_store_explicit(lwc_pvar_value_word(tx->h.writes[i].pv), tx->h.writes[i].val,
                              memory_order_relaxed);
    tx->h.nwrites = 0;
}

bool lwc_tx_reads_current(lwc_tx_t *tx)
{
    return tx->h.in_place || reads_current(tx->reads, tx->nreads, &tx->snapshot);
}

lwc_word_t lwc_tx_read_slow(lwc_tx_t *tx, lwc_pvar_t *pv)
{
    struct lwc_tx_write *w = find_write(tx, pv);
    if (w)
        return w->val;
    for (;;) {
        lwc_word_t v = atomic_load_explicit(lwc_pvar_value_word(pv), memory_order_acquire);
        if (atomic_load_explicit(&lwc_commit.seq, memory_order_relaxed) == tx->snapshot) {
            if (tx->nreads == tx->cap_reads)
                tx->reads = grow(tx, tx->reads, tx->inline_reads, &tx->cap_reads,
                                 sizeof *tx->reads);
            tx->reads[tx->nreads++] = (struct tx_read){ pv, v };
            return v;
        }
        if (!reads_current(tx->reads, tx->nreads, &tx->snapshot))
            lwc_tx_abort(tx, LWC_TX_RERUN);
    }
}

lwc_word_t (lwc_pvar_read)(lwc_tx_t *tx, lwc_pvar_t *pv)
{
    return tx ? lwc_tx_read(tx, pv) : lwc_pvar_peek(pv);
}

void lwc_tx_write_slow(lwc_tx_t *tx, lwc_pvar_t *pv, lwc_word_t v)
{
    if (tx->h.in_place) {
        if (tx->h.nwrites == tx->h.cap_writes)
            undo_make_room(tx);
        lwc_tx_store_in_place(&tx->h, pv, v);
        return;
    }
    struct lwc_tx_write *w = find_write(tx, pv);
    if (w) {
        w->val = v;
        return;
    }
    if (tx->h.nwrites == tx->h.cap_writes)
        tx->h.writes = grow(tx, tx->h.writes, tx->inline_writes, &tx->h.cap_writes,
                          sizeof *tx->h.writes);
    tx->h.writes[tx->h.nwrites++] = (struct lwc_tx_write){ pv, v };
    tx->bloom |= lwc_bloom_bit(pv);
}

static lwc_word_t write_once(lwc_tx_t *tx, void *arg)
{
    lwc_word_t *pv_and_v = arg;
    lwc_tx_write(tx, (lwc_pvar_t *)pv_and_v[0], pv_and_v[1]);
    return 0;
}

void (lwc_pvar_write)(lwc_tx_t *tx, lwc_pvar_t *pv, lwc_word_t v)
{
    if (tx) {
        lwc_tx_write(tx, pv, v);
        return;
    }
    /* No transaction: a transaction of one write (writePVarIO). */
    lwc_word_t args[2] = { (lwc_word_t)pv, v };
    lwc_atomically(write_once, args, NULL);
}

void lwc_tx_defer(lwc_tx_t *tx, void (*fn)(void *), void *arg)
{
    if (!tx || !fn)
        return;
    if (tx->ndefers == tx->cap_defers)
        tx->defers = grow(tx, tx->defers, tx->inline_defers, &tx->cap_defers,
                          sizeof *tx->defers);
    tx->defers[tx->ndefers++] = (struct tx_defer){ fn, arg };
}

_Noreturn void lwc_tx_retry(lwc_tx_t *tx)
{
    lwc_tx_abort(tx, LWC_TX_RETRY);
}

/* ---- Retry ------------------------------------------------------------------ */

/* Note [Retry wake-up]
 * ~~~~~~~~~~~~~~~~~~~~
 * A retrying transaction puts one node on the `waiters` list of every PVar it
 * read, then checks that the values it read are still current (reads_current,
 * whose first load of the commit sequence is seq_cst), and only then sleeps.
 * A committer loads `waiters` of each PVar it wrote (seq_cst) after the CAS that
 * took the sequence (seq_cst).  In the single total order of those four
 * accesses, either the committer's load comes after the waiter's insertion (it
 * sees the node and fires it), or the waiter's load of the sequence comes after
 * the committer's CAS: it sees the commit (waiting for it to finish if it is
 * still publishing) and the value it wrote, and does not sleep.  No wake-up is
 * lost, and no sleeper waits for a write that already happened.  A write that
 * leaves the value as it was may find nobody to wake: rerunning would retry
 * again on the same values.
 *
 * A transaction that ran direct (Note [Biased commit]) registers its nodes while
 * `epoch` is still odd, and skips the check: no other thread can commit
 * without revoking the bias first, and the revocation waits for an even `epoch`,
 * so any later committer loads `waiters` after the nodes are in, and nothing it
 * read can have changed before.
 *
 * Firing sets the waiter's state with an exchange, so exactly one committer wakes
 * each waiter.  An OS-thread sleeper is woken with a futex; an SCont that blocked
 * through its upcalls is woken by a transaction the committer runs after its own
 * commit (Note [Retry state] in substrate/internal.h). */

/* Make room for one more entry in an after-commit queue.  Work that a commit
 * has promised (a wake-up, a deferred action) must not be dropped: with no
 * memory to record it, stop loudly instead. */
static void *queue_room(void *arr, unsigned n, unsigned *cap, size_t elem, const char *what)
{
    if (n < *cap)
        return arr;
    unsigned c = *cap ? *cap * 2 : 16;
    void *p = realloc(arr, c * elem);
    if (!p) {
        lwc_warn("out of memory recording a %s", what);
        abort();
    }
    *cap = c;
    return p;
}

static void queue_wake(struct lwc_thread *t, lwc_scont_t *s, uint32_t epoch)
{
    t->wakes = queue_room(t->wakes, t->nwakes, &t->cap_wakes, sizeof *t->wakes, "retry wake-up");
    t->wakes[t->nwakes++] = (struct pending_wake){ s, epoch };
}

/* Called by a committer after publishing a write to pv, with pv's wlock taken
 * in publish (Note [Freeing a PVar]): fire every waiter on pv. */
static void pvar_fire(struct lwc_thread *t, lwc_pvar_t *pv)
{
    for (struct retry_node *n = lwc_pvar_first_waiter(pv); n; n = n->next) {
        struct retry_waiter *w = n->w;
        uint32_t old = atomic_exchange(&w->state, W_FIRED);
        if (old == W_FIRED)
            continue;
        if (w->scont) {
            lwc_scont_ref(w->scont);
            queue_wake(t, w->scont, w->epoch);
        } else {
            lwc_waiter_rouse(w, old);
        }
    }
}

static void waiter_register(struct retry_node *nodes, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        lwc_pvar_t *pv = nodes[i].pv;
        wlock(pv);
        struct retry_node *head = lwc_pvar_first_waiter(pv);
        nodes[i].prev = NULL;
        nodes[i].next = head;
        if (head)
            head->prev = &nodes[i];
        set_first_waiter(pv, &nodes[i], memory_order_seq_cst);     /* Note [Retry wake-up] */
        wunlock(pv);
    }
}

static void waiter_unregister(struct retry_node *nodes, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        lwc_pvar_t *pv = nodes[i].pv;
        wlock(pv);
        if (nodes[i].prev)
            nodes[i].prev->next = nodes[i].next;
        else
            set_first_waiter(pv, nodes[i].next, memory_order_relaxed);
        if (nodes[i].next)
            nodes[i].next->prev = nodes[i].prev;
        wunlock(pv);
    }
}

static void sleep_lock(struct lwc_thread *t)
{
    for (unsigned i = 0; atomic_exchange_explicit(&t->sleep_lock, 1, memory_order_acquire); i++)
        lwc_spin_step(i);
}

static void sleep_unlock(struct lwc_thread *t)
{
    atomic_store_explicit(&t->sleep_lock, 0, memory_order_release);
}

void lwc_waiter_rouse(struct retry_waiter *w, uint32_t old)
{
    if (old == W_SLEEPING)
        lwc_futex_wake(&w->state, 1);
    else if (old == W_POLLING)
        lwc_poller_wake();
}

/* Sleep until w fires.  A capability (asleep in a switch_to_next retry, with
 * nothing to run) first serves the idle services, and wakes no later than
 * their next deadline, or when a kick says it moved earlier (Note [Idle
 * services] in substrate/service.c); one of them sleeps in the poller
 * instead of the kernel's futex while it is armed, and handles what it
 * found once it is awake and no longer parked (Note [The poller] there); a
 * plain OS thread has no deadline. */
static void sleep_thread(struct lwc_thread *t, struct retry_waiter *w)
{
    for (unsigned i = 0; i < LWC_SPIN_BOUND; i++) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) == W_FIRED)
            return;
        lwc_cpu_relax();
    }
    sleep_lock(t);
    t->sleep_word = &w->state;
    sleep_unlock(t);
    if (lwc_tracing())
        lwc_trace_put(t, TR_IDLE, 1, 0, 0);
    struct lwc_cap *cap = t->cap;
    while (!atomic_load(&lwc_rt.stopping)) {
        uint64_t until = cap ? lwc_services_serve(false) : LWC_NEVER;
        bool polls = cap && lwc_poller_claim();
        uint32_t asleep_as = polls ? W_POLLING : W_SLEEPING;
        uint32_t expect = W_WAITING;
        if (!atomic_compare_exchange_strong(&w->state, &expect, asleep_as)) {
            if (polls)
                lwc_poller_release();
            break;                                  /* fired (perhaps by the services' work) */
        }
        bool again = cap && lwc_idle_publish(cap, t, until) < until;   /* lowered meanwhile */
        bool asleep = !again;
        if (asleep)
            lwc_gc_sleep_begin(t, w, until == LWC_NEVER);  /* Note [Stopping the world] */
        uint64_t wake = until;                      /* Note [The idle timer] in detect.c */
        if (asleep && cap && until != LWC_NEVER && lwc_rt.idle_gc_ns) {
            uint64_t timer = lwc_clock_ns() + lwc_rt.idle_gc_ns;
            wake = timer < until ? timer : until;
        }
        while (!again && atomic_load_explicit(&w->state, memory_order_acquire) == asleep_as) {
            bool woken = polls ? lwc_poller_wait(wake)
                         : wake == LWC_NEVER ? (lwc_futex_wait(&w->state, W_SLEEPING), true)
                         : lwc_futex_wait_until(&w->state, W_SLEEPING, wake);
            if (polls && woken)
                break;                              /* events, or a wake: handle them below */
            if (!woken) {
                again = wake == until;
                if (!again) {
                    lwc_gc_idle_timer(t);
                    wake = until;
                }
            }
        }
        if (asleep)
            lwc_gc_sleep_end(t);
        if (cap)
            lwc_idle_unpublish(cap);
        /* Timed out, or nudged by a service deadline (W_WAITING): serve and
         * sleep again.  Fired: the transaction runs again.  The poller's
         * events are handled awake, with w no longer asleep: the wake-ups
         * they make may fire w, at no more cost than a store. */
        expect = asleep_as;
        bool fired = !atomic_compare_exchange_strong(&w->state, &expect, W_WAITING) &&
                     expect == W_FIRED;
        if (polls) {
            lwc_poller_handle();
            lwc_poller_release();
        }
        if (fired)
            break;
    }
    if (lwc_tracing())
        lwc_trace_put(t, TR_IDLE, 0, 0, 0);
    sleep_lock(t);
    t->sleep_word = NULL;
    sleep_unlock(t);
}

/* The block half of an SCont-level retry: Note [Retry state]. */
static lwc_word_t retry_block(lwc_tx_t *tx, void *arg)
{
    uint32_t e = *(uint32_t *)arg;
    lwc_scont_t *self = tx->self;
    if (lwc_pvar_read(tx, &self->retry_pv) == 2 * (lwc_word_t)e)
        return 0;                                   /* fired already: do not block */
    lwc_tx_write(tx, &self->retry_pv, 2 * (lwc_word_t)e + 1);
    lwc_switch_to_next(tx, LWC_BLOCKED_ON_CONCDS);
    return 0;
}

/* The waker's half, run after the commit that fired the waiter. */
static lwc_word_t retry_wake(lwc_tx_t *tx, void *arg)
{
    struct pending_wake *pw = arg;
    lwc_word_t fired = 2 * (lwc_word_t)pw->epoch;
    lwc_word_t x = lwc_pvar_read(tx, &pw->s->retry_pv);
    if (x > fired + 1 || x == fired)
        return 0;                                   /* a later wait, or done already */
    lwc_tx_write(tx, &pw->s->retry_pv, fired);
    if (x == fired + 1 && lwc_scont_status(tx, pw->s) == LWC_BLOCKED_ON_CONCDS)
        lwc_unblock_thread(tx, pw->s);
    return 0;
}

/* Wait until a PVar the abandoned transaction read is written.  LWC_OK means run
 * it again.  May return on another OS thread than it was called on. */
static int tx_wait(struct lwc_thread *t, lwc_tx_t *tx)
{
    unsigned n = tx->nreads;
    /* Not on the stack: a node links to the nodes of other waiters on the
     * same PVar, and the detector reads stacks as references (Note [Switch
     * targets] in substrate/scont.c); and the waiter, which wakers write,
     * must stay put while a copy SCont's frames are saved away (Note [Copy
     * stacks] in substrate/copy.c).  A retry sleeps; a malloc is cheap. */
    struct retry_wait { struct retry_waiter w; struct retry_node nodes[]; } *rw =
        n ? malloc(sizeof *rw + n * sizeof rw->nodes[0]) : NULL;
    struct retry_node *nodes = rw ? rw->nodes : NULL;
    if (n == 0 || !rw) {
        if (tx->direct)
            bias_leave();
        return n == 0 ? LWC_EBLOCKED_CONCDS : LWC_ENOMEM;  /* none: nothing can ever wake it */
    }
    lwc_scont_t *self = tx->self;
    lwc_upcalls_t up = { 0 };
    if (self)
        lwc_scont_load_upcalls(self, &up);
    bool scont_level = !tx->sleeps_thread && up.switch_to_next && up.unblock_thread;
    struct retry_waiter *w = &rw->w;
    *w = (struct retry_waiter){ .scont = scont_level ? self : NULL };
    atomic_init(&w->state, W_WAITING);
    if (scont_level)
        w->epoch = ++self->retry_epoch;
    for (unsigned i = 0; i < n; i++)
        nodes[i] = (struct retry_node){ .w = w, .pv = tx->reads[i].pv };
    tx->active = false;

    int err = LWC_OK;
    uint64_t at;
    waiter_register(nodes, n);
    bool current = tx->direct || reads_current(tx->reads, n, &at);
    if (tx->direct)
        bias_leave();
    if (current) {
        if (scont_level) {
            self->retry_nodes = nodes;          /* for lwc_shutdown's sweep */
            self->retry_nnodes = n;
            err = lwc_tx_run(retry_block, &w->epoch, NULL, true);
            self->retry_nodes = NULL;
        } else {
            lwc_gc_idle_record(t, tx, w);   /* Note [Idle in a blocking switch] in detect.c */
            sleep_thread(t, w);
            lwc_gc_idle_clear(t);
            if (w->error)
                err = w->error;             /* the detector found it blocked for good */
        }
    }
    waiter_unregister(nodes, n);
    free(rw);
    /* lwc_shutdown woke us: a runtime thread leaves its SCont where it is. */
    t = lwc_thread_reload();
    if (atomic_load(&lwc_rt.stopping) && t->current &&
        (t->kind == THREAD_WORKER || t->kind == THREAD_BOUND))
        lwc_thread_to_native(t, REQ_EXIT, NULL);
    if (atomic_load(&lwc_rt.stopping) && !t->current && t->cap && err == LWC_OK)
        err = LWC_EBUSY;            /* an idle capability (idle.c): its native loop ends */
    return err;
}

void lwc_retry_forget(struct retry_node *nodes, unsigned n)
{
    waiter_unregister(nodes, n);
}

/* lwc_shutdown: wake t if it sleeps in a retry (it then sees `stopping`). */
void lwc_retry_interrupt(struct lwc_thread *t)
{
    sleep_lock(t);
    if (t->sleep_word)
        lwc_waiter_rouse((struct retry_waiter *)t->sleep_word,
                         atomic_exchange(t->sleep_word, W_FIRED));
    sleep_unlock(t);
}

void lwc_retry_nudge(struct lwc_thread *t)
{
    sleep_lock(t);
    for (uint32_t asleep = W_SLEEPING; t->sleep_word && asleep <= W_POLLING; asleep++) {
        uint32_t expect = asleep;
        if (atomic_compare_exchange_strong(t->sleep_word, &expect, W_WAITING))
            lwc_waiter_rouse((struct retry_waiter *)t->sleep_word, asleep);
    }
    sleep_unlock(t);
}

/* ---- Commit ------------------------------------------------------------------ */

/* publish's way past the first PVar that has waiters, writes[i]: those move to
 * the front of the write set, locked (Note [Freeing a PVar]).  Returns how many,
 * to fire once the sequence is released. */
static __attribute__((noinline)) unsigned publish_waited(lwc_tx_t *tx, unsigned i)
{
    unsigned nfire = 0;
    for (; i < tx->h.nwrites; i++) {
        struct lwc_tx_write w = tx->h.writes[i];
        if (atomic_load(lwc_pvar_waiter_word(w.pv)) != 0) {      /* seq_cst: Note [Retry wake-up] */
            wlock(w.pv);
            tx->h.writes[i] = tx->h.writes[nfire];
            tx->h.writes[nfire++] = w;
        }
        atomic_store_explicit(lwc_pvar_value_word(w.pv), w.val, memory_order_release);
    }
    return nfire;
}

/* The commit of an in-place body that wrote a PVar with waiters: as
 * publish_waited, but the values are stored already, and a PVar written
 * twice is logged twice and must be locked once. */
static __attribute__((noinline)) unsigned in_place_waited(lwc_tx_t *tx)
{
    unsigned nfire = 0;
    for (unsigned i = 0; i < tx->h.nwrites; i++) {
        struct lwc_tx_write w = tx->h.writes[i];
        if (atomic_load(lwc_pvar_waiter_word(w.pv)) == 0)        /* seq_cst: Note [Retry wake-up] */
            continue;
        unsigned j = 0;
        while (j < nfire && tx->h.writes[j].pv != w.pv)
            j++;
        if (j < nfire)
            continue;
        wlock(w.pv);
        tx->h.writes[i] = tx->h.writes[nfire];
        tx->h.writes[nfire++] = w;
    }
    return nfire;
}

/* Where the commit of tx leaves its SCont: the one place lwc_tx_run's path
 * reads `target` before the switch.  A blocked SCont's frames must not keep
 * it (Note [Switch targets] in substrate/scont.c); under ThreadSanitizer,
 * whose calls around every access make the compiler keep values in
 * callee-saved registers and stack slots, this is a function of its own
 * (GCC does not inline it into instrumented code). */
enum { STAYS, SWITCHES, RELEASES };
static inline __attribute__((no_sanitize_thread)) int tx_leaves(const lwc_tx_t *tx)
{
    if (!tx->has_switch || tx->target == tx->self)
        return STAYS;
    return tx->target ? SWITCHES : RELEASES;
}

/* Note [Switching out] in scont.c: raised before the new statuses show. */
static inline void raise_switching_out(lwc_tx_t *tx)
{
    if (tx_leaves(tx) != STAYS)
        atomic_store_explicit(&tx->self->switching_out, 1, memory_order_relaxed);
}

/* Commit an in-place body: what publish does, less the stores.  Nobody else
 * sees the values before bias_leave (Note [In-place transactions]), so the
 * locks of Note [Freeing a PVar] are taken in time here too. */
static inline unsigned publish_in_place(lwc_tx_t *tx)
{
    raise_switching_out(tx);
    /* Note [In-place transactions]: the writes looked for waiters already. */
    return __builtin_expect(!tx->h.waited, 1) ? 0 : in_place_waited(tx);
}

/* Store the write set, with the sequence held.  Returns how many PVars had
 * waiters (publish_waited); they are writes[0..n). */
static inline unsigned publish(lwc_tx_t *tx)
{
    raise_switching_out(tx);
    const struct lwc_tx_write *w = tx->h.writes, *end = w + tx->h.nwrites;
    for (; w < end; w++) {
        if (__builtin_expect(atomic_load(lwc_pvar_waiter_word(w->pv)) != 0, 0))  /* seq_cst: Note [Retry wake-up] */
            return publish_waited(tx, (unsigned)(w - tx->h.writes));
        atomic_store_explicit(lwc_pvar_value_word(w->pv), w->val, memory_order_release);
    }
    return 0;
}

static __attribute__((noinline)) void fire_waiters(struct lwc_thread *t, lwc_tx_t *tx,
                                                  unsigned nfire)
{
    for (unsigned i = 0; i < nfire; i++) {
        pvar_fire(t, tx->h.writes[i].pv);
        wunlock(tx->h.writes[i].pv);
    }
}

/* Note [Opacity]: take the sequence at the snapshot, publish, release; or
 * keep the sequence (Note [Biased commit]).  Returns how many PVars had
 * waiters (publish), or -1 when a read went stale first. */
static __attribute__((noinline)) int commit_sequenced(struct lwc_thread *t, lwc_tx_t *tx)
{
    uint64_t s = tx->snapshot;
    while (!atomic_compare_exchange_weak(&lwc_commit.seq, &s, s + 1)) {
        if (!reads_current(tx->reads, tx->nreads, &tx->snapshot))
            return -1;
        s = tx->snapshot;
    }
    bool grant = bias_earned(t);
    if (grant) {
        epoch_step(memory_order_relaxed);
        atomic_store_explicit(&lwc_commit.bias, (uintptr_t)t, memory_order_release);
    }
    unsigned waiters = publish(tx);
    if (grant)
        bias_leave();
    else
        atomic_store_explicit(&lwc_commit.seq, s + 2, memory_order_release);
    return (int)waiters;
}

/* Commit: direct under the bias, or through the sequence.  False: a read
 * went stale, run the body again. */
static inline bool tx_commit(struct lwc_thread *t, lwc_tx_t *tx)
{
    int waiters;
    if (tx->h.in_place) {
        waiters = (int)publish_in_place(tx);
        bias_leave();
    } else if (tx->direct) {
        waiters = (int)publish(tx);
        bias_leave();
    } else {
        if (tx->h.nwrites == 0)
            return true;        /* read-only: every read was current at the snapshot */
        waiters = commit_sequenced(t, tx);
        if (waiters < 0)
            return false;
    }
    if (__builtin_expect(waiters, 0))
        fire_waiters(t, tx, (unsigned)waiters);
    return true;
}

/* Exponential back-off between re-runs, so that two transactions that keep
 * conflicting stop meeting; past a few, the one we conflict with may well be
 * preempted while it holds its locks, so give it the core. */
static void backoff(unsigned attempt)
{
    if (attempt >= 6) {
        sched_yield();
        return;
    }
    for (unsigned i = 0, n = 1u << attempt; i < n; i++)
        lwc_cpu_relax();
}

static __attribute__((noinline)) void stash_defers(struct lwc_thread *t, lwc_tx_t *tx)
{
    for (unsigned i = 0; i < tx->ndefers; i++) {
        t->defers = queue_room(t->defers, t->ndefers, &t->cap_defers, sizeof *t->defers,
                               "deferred action");
        t->defers[t->ndefers++] = tx->defers[i];
    }
}

/* Note [Leaving a body]
 * ~~~~~~~~~~~~~~~~~~~~~~
 * lwc_tx_abort (a stale read, a retry, an error) leaves the body from any depth
 * and lands in lwc_tx_run, which runs the body again, waits, or returns.  A
 * setjmp in lwc_tx_run would make that a function that returns twice, whose
 * locals the compiler must keep in memory and reload at every use: on the
 * machine this was tuned on, an empty transaction took 11.5 ns that way and
 * takes 8.7 ns now, a read+write one 184 instructions against 175.  So the body is
 * called through lwc_tx_call, a few instructions of assembly that store the
 * callee-saved registers and the stack pointer in tx->jb and jump to the
 * body, which returns straight to lwc_tx_run.  lwc_tx_unwind loads them back
 * and returns from lwc_tx_call with 0: to lwc_tx_run an abort is an ordinary
 * return, with the registers the ABI promises, and `abort_code` (zeroed in
 * tx_begin, never 0 after an abort: lwc_tx_abort makes sure) tells the two
 * apart.  Under the sanitizers, which must see the
 * frames go, and with ucontext, lwc_tx_call is C with a setjmp. */
_Static_assert(offsetof(struct lwc_tx, h) == 0, "<lwc/ptm.h>: the head comes first");
_Static_assert(sizeof(struct lwc_pvar) == 2 * sizeof(void *), "Note [PVar layout]");
#if LWC_TX_ASM
_Static_assert(offsetof(struct lwc_tx, jb) == LWC_TX_JB_OFFSET, "ptm/tx_*.S: where the buffer is");
#else
static __attribute__((noinline)) lwc_word_t lwc_tx_call(lwc_tx_t *tx, lwc_tx_fn fn, void *arg)
{
    if (LWC_SETJMP(tx->jb) != 0)
        return 0;
    return fn(tx, arg);
}
#endif

/* What lwc_tx_run does after an abort, besides returning a code. */
enum { TX_AGAIN = 100, TX_AGAIN_LOGGED, TX_AGAIN_IDLE, TX_WAITED };

/* The body left by lwc_tx_abort with tx->abort_code: run it again (after a
 * back-off, or logging its reads), wait and run it again, or return. */
static __attribute__((noinline)) int tx_aborted(struct lwc_thread *t, lwc_tx_t *tx,
                                                unsigned attempt)
{
    int code = tx->abort_code;
    tx->active = false;
    if (tx->h.in_place)
        undo(tx);
    if (code == LWC_TX_RETRY && tx->in_upcall && !tx->has_switch) {
        if (tx->direct)
            bias_leave();
        return TX_AGAIN_IDLE;       /* Note [Idling in a place of its own] */
    }
    if (code == LWC_TX_RETRY && tx->h.in_place) {
        bias_leave();       /* Note [Unlogged reads]: only a direct one is unlogged */
        return TX_AGAIN_LOGGED;
    }
    if (tx->direct && code != LWC_TX_RETRY)
        bias_leave();                           /* tx_wait lowers it after registering */
    if (code == LWC_TX_RERUN) {
        backoff(attempt);
        return TX_AGAIN;
    }
    if (code == LWC_TX_DELIVER)
        return lwc_scont_take(t->current, LWC_TAKE_AT_BLOCK);
    if (code == LWC_TX_RETRY) {
        int err = tx_wait(t, tx);
        return err == LWC_OK ? TX_WAITED : err;
    }
    return code;
}

/* A committed switch to another SCont: go, and return once resumed (maybe on
 * another OS thread) what lwc_atomically returns.  Blocking on a data
 * structure scrubs first (Note [Switch targets] in substrate/scont.c), in a
 * function of its own: the register clearing makes its caller save every
 * callee-saved register, which lwc_tx_run, on every transaction's path,
 * should not. */
static __attribute__((noinline)) int tx_block_out(lwc_tx_t *tx)
{
    lwc_stack_scrub_body();
    LWC_CLEAR_CALLEE_SAVED();
    struct lwc_thread *t = lwc_switch_after_commit(tx);
    return lwc_scont_take_error(t->current, LWC_BLOCKED_ON_CONCDS);
}

static inline int tx_switch_out(lwc_tx_t *tx)
{
    lwc_status_t left = tx->left_as;
    if (left == LWC_BLOCKED_ON_CONCDS)
        return tx_block_out(tx);
    struct lwc_thread *t = lwc_switch_after_commit(tx);   /* returns once we are resumed */
    return lwc_scont_take_error(t->current, left);
}

/* The loop of lwc_tx_run: commit, or handle an abort, and run the body
 * again until it is done.  `ran`: the first run has been made (r is what it
 * returned), by lwc_tx_run's fast path. */
static __attribute__((noinline)) int tx_run_loop(struct lwc_thread *t, lwc_tx_fn fn, void *arg,
                                                 lwc_word_t *result, bool sleeps_thread,
                                                 bool ran, lwc_word_t r)
{
    bool log_reads = false, rerun_idle = false;
    for (unsigned attempt = 0;; attempt++) {
        lwc_tx_t *tx = &t->tx;
        if (!ran) {
            if (tx->active)
                return LWC_EINVAL;                  /* transactions do not nest */
            tx_begin(t, tx, sleeps_thread, log_reads, rerun_idle);
            log_reads = rerun_idle = false;
            r = lwc_tx_call(tx, fn, arg);
        }
        ran = false;
        if (__builtin_expect(tx->abort_code == 0, 1)) {
            /* Note [Releasing a capability] in substrate/cap.c */
            bool releasing = ((tx_leaves(tx) == RELEASES && !tx->to_idle) || tx->releases) &&
                             t->cap && t->request == REQ_NONE;
            if (__builtin_expect(releasing, 0))
                lwc_cap_set_releasing(t->cap, true);
            if (__builtin_expect(tx_commit(t, tx), 1)) {
                tx->active = false;
                /* Note [Stacks on first run] in scont.c; a switch hands it over itself */
                if (__builtin_expect(tx->gives_stack, 0) && tx_leaves(tx) == STAYS)
                    lwc_scont_first_run(tx);
                if (result)
                    *result = r;
                if (tx->ndefers)
                    stash_defers(t, tx);
                if (tx_leaves(tx) != STAYS)
                    return tx_switch_out(tx);
                bool switched = tx->has_switch;
                lwc_tx_after_commit(t);         /* may run transactions: tx is reused */
                if (!switched)
                    return LWC_OK;
                lwc_services_count(t);          /* a switch to itself: no landing */
                lwc_gc_safepoint(t);
                return lwc_scont_take_error(t->current, LWC_BLOCKED_ON_SCHED);
            }
            tx->active = false;
            if (releasing)
                lwc_cap_set_releasing(t->cap, false);
            backoff(attempt);
            continue;
        }
        /* The body left by lwc_tx_abort. */
        int next = tx_aborted(t, tx, attempt);
        if (next == TX_AGAIN_LOGGED) {
            log_reads = true;
        } else if (next == TX_AGAIN_IDLE) {
            rerun_idle = true;
        } else if (next == TX_WAITED) {
            t = lwc_thread_reload();            /* the wait may have switched */
            attempt = 0;
        } else if (next != TX_AGAIN) {
            return next;
        }
    }
}

/* Note [The first run]
 * ~~~~~~~~~~~~~~~~~~~~~
 * Most transactions run once, in place (Note [In-place transactions]), and
 * commit with nothing to do after: no PVar written had waiters, nothing
 * deferred, and either no switch or a switch to another SCont (self
 * blocked, runnable or completed).  Such a commit is all that tx_commit
 * does in place (publish_in_place, bias_leave) less the walk for waiters:
 * raising self's `switching_out` when it switches, and lowering the epoch.
 * lwc_tx_run makes that run and that commit itself, and hands everything else (an abort, a retry, a commit that wakes
 * or defers or releases, a transaction not in place) to tx_run_loop, which
 * takes over from the run already made.  Keeping the loop out of lwc_tx_run
 * is what makes it cheap: only the thread is live across the body, so the
 * function saves three registers where the loop saved six, and a yield runs
 * about 25 instructions fewer here. */
int lwc_tx_run(lwc_tx_fn fn, void *arg, lwc_word_t *result, bool sleeps_thread)
{
    struct lwc_thread *t = lwc_thread_peek();
    if (__builtin_expect(!t, 0) && !(t = lwc_thread_get()))
        return LWC_ENOMEM;
    lwc_tx_t *tx = &t->tx;
    if (__builtin_expect(tx->active || !bias_enter(t), 0))
        return tx_run_loop(t, fn, arg, result, sleeps_thread, false, 0);
    tx_begin_with(t, tx, sleeps_thread, true, false, false);
    tx->run_fn = fn;
    tx->run_arg = arg;
    tx->run_result = result;
    tx->run_sleeps_thread = sleeps_thread;
    lwc_word_t r = lwc_tx_call(tx, fn, arg);
    if (__builtin_expect(tx->abort_code == 0 &&
                         !(tx->h.waited | tx->ndefers | tx->releases | tx->to_idle), 1)) {
        bool switches = tx_leaves(tx) == SWITCHES;
        if (switches || !tx->has_switch) {
            /* tx_commit, less what cannot apply (Note [The first run]) */
            if (switches)
                atomic_store_explicit(&tx->self->switching_out, 1, memory_order_relaxed);
            bias_leave();
            tx->active = false;
            if (tx->run_result)
                *tx->run_result = r;
            if (switches)
                return tx_switch_out(tx);
            if (__builtin_expect(tx->gives_stack, 0))
                lwc_scont_first_run(tx);        /* Note [Stacks on first run] in scont.c */
            lwc_tx_after_commit(t);
            return LWC_OK;
        }
    }
    return tx_run_loop(t, tx->run_fn, tx->run_arg, tx->run_result, tx->run_sleeps_thread, true, r);
}

int lwc_atomically(lwc_tx_fn fn, void *arg, lwc_word_t *result)
{
    if (!fn)
        return LWC_EINVAL;
    return lwc_tx_run(fn, arg, result, false);
}

/* ---- After commit -------------------------------------------------------------- */

void lwc_tx_drain(struct lwc_thread *t)
{
    t->draining = true;
    /* What runs here may queue more; the indices keep up with it. */
    while (t->nwakes || t->ndefers) {
        for (unsigned i = 0; i < t->nwakes; i++) {
            struct pending_wake pw = t->wakes[i];
            int err = lwc_tx_run(retry_wake, &pw, NULL, true);
            if (err != LWC_OK)
                lwc_warn("waking SCont %llu from a retry failed: %s",
                         (unsigned long long)lwc_scont_id(pw.s), lwc_strerror(err));
            lwc_scont_unref(pw.s);
        }
        t->nwakes = 0;
        for (unsigned i = 0; i < t->ndefers; i++) {
            struct tx_defer d = t->defers[i];
            d.fn(d.arg);
        }
        t->ndefers = 0;
    }
    t->draining = false;
}
