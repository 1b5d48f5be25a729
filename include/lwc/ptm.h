/* lwc: primitive transactional memory.
 *
 * A PVar holds one word.  A transaction is a C function run by lwc_atomically:
 * it reads and writes PVars through the lwc_tx_t it is given and sees one
 * consistent snapshot while it runs (opacity), so code in it never observes a
 * torn or impossible state.  On conflict the function is simply run again, so it
 * must not have effects outside PVars: put those in lwc_tx_defer.
 *
 * PTM works from SConts and from plain OS threads; it needs no lwc_init. */
#ifndef LWC_PTM_H
#define LWC_PTM_H

#include <lwc/base.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef lwc_word_t (*lwc_tx_fn)(lwc_tx_t *tx, void *arg);

/* Run fn as one transaction; store its return value in *result (result may be
 * NULL).  Returns LWC_OK, the error that woke a retrying caller
 * (LWC_EBLOCKED_CONCDS ...), LWC_ESTATE if a switch it asked for could not be
 * made (nothing is committed then), or LWC_EINVAL when called inside another
 * transaction (transactions do not nest: use the tx you were given). */
LWC_API int lwc_atomically(lwc_tx_fn fn, void *arg, lwc_word_t *result);

/* NULL when out of memory. */
LWC_API lwc_pvar_t *lwc_pvar_new(lwc_word_t init);
/* The caller guarantees no transaction still uses pv.  NULL is ignored. */
LWC_API void        lwc_pvar_free(lwc_pvar_t *pv);

/* A PVar can also live inside a struct of yours, which saves a pointer and an
 * allocation per PVar: lwc_pvar_init makes one in place (or LWC_PVAR_INIT in
 * an initializer; memory whose bytes are all zero, as from lwc_alloc or
 * calloc, already holds a PVar whose value is 0), lwc_pvar_fini ends it
 * (with the guarantee lwc_pvar_free asks for), and lwc_pvar_free refuses it.
 * The blocked-forever detector sees such a PVar wherever it scans the memory
 * around it: an lwc_alloc block, static data, a stack (README.md, "Threads
 * blocked forever").  The fields are private. */
struct lwc_pvar { lwc_word_t value; uintptr_t waiters; };
#define LWC_PVAR_INIT(v) { (lwc_word_t)(v), 0 }
LWC_API void        lwc_pvar_init(lwc_pvar_t *pv, lwc_word_t init);
LWC_API void        lwc_pvar_fini(lwc_pvar_t *pv);

/* Read or write pv in tx.  With tx NULL: lwc_pvar_peek, or a transaction of
 * one write (writePVarIO).  Inline below; the functions stay exported. */
LWC_API lwc_word_t  lwc_pvar_read(lwc_tx_t *tx, lwc_pvar_t *pv);
LWC_API void        lwc_pvar_write(lwc_tx_t *tx, lwc_pvar_t *pv, lwc_word_t v);
/* readPVarIO: one atomic read outside any transaction: the value the last
 * commit left (never one a running transaction has not committed yet). */
LWC_API lwc_word_t  lwc_pvar_peek(lwc_pvar_t *pv);

/* The inline fast paths of lwc_pvar_read and lwc_pvar_write (Note [In-place
 * transactions] in ptm/ptm.c).  They read a PVar and the struct below, the
 * first words of a transaction; everything else in it is private, and both
 * may change between releases of the library (its version says so).  Define
 * LWC_PTM_NO_INLINE before including this header to call the exported
 * functions instead. */
struct lwc_tx_write { lwc_pvar_t *pv; lwc_word_t val; };
struct lwc_tx_head {
    struct lwc_tx_write *writes;    /* in place: the value each write replaced;
                                       otherwise: the values to publish */
    unsigned nwrites, cap_writes;
    unsigned char in_place;         /* reads are loads, writes are stores */
    uintptr_t waited;               /* in place: nonzero if a PVar written had waiters */
};

#if defined(__GNUC__)
/* The in-place write itself, with room in the log: record what pv held and
 * whether it has retry waiters, then store.  The one copy of this step; the
 * library's own write paths call it too. */
static inline void lwc_tx_store_in_place(struct lwc_tx_head *h, lwc_pvar_t *pv, lwc_word_t v)
{
    lwc_word_t old = __atomic_load_n(&pv->value, __ATOMIC_RELAXED);
    uintptr_t waiters = __atomic_load_n(&pv->waiters, __ATOMIC_RELAXED);
    unsigned n = h->nwrites;
    h->writes[n].pv = pv;
    h->writes[n].val = old;
    h->nwrites = n + 1;
    h->waited |= waiters;
    __atomic_store_n(&pv->value, v, __ATOMIC_RELEASE);
}
#endif

#if !defined(LWC_PTM_NO_INLINE) && defined(__GNUC__)
static inline lwc_word_t lwc_pvar_read_inline(lwc_tx_t *tx, lwc_pvar_t *pv)
{
    if (__builtin_expect(tx && ((struct lwc_tx_head *)tx)->in_place, 1))
        return __atomic_load_n(&pv->value, __ATOMIC_ACQUIRE);
    return (lwc_pvar_read)(tx, pv);
}

static inline void lwc_pvar_write_inline(lwc_tx_t *tx, lwc_pvar_t *pv, lwc_word_t v)
{
    struct lwc_tx_head *h = (struct lwc_tx_head *)tx;
    if (__builtin_expect(tx && h->in_place && h->nwrites < h->cap_writes, 1)) {
        lwc_tx_store_in_place(h, pv, v);
        return;
    }
    (lwc_pvar_write)(tx, pv, v);
}

#define lwc_pvar_read(tx, pv)     lwc_pvar_read_inline((tx), (pv))
#define lwc_pvar_write(tx, pv, v) lwc_pvar_write_inline((tx), (pv), (v))
#endif

/* Abandon the transaction (its writes are dropped) and wait until a PVar it read
 * is written, then run it again.  In an SCont's own transaction the SCont blocks
 * (LWC_BLOCKED_ON_CONCDS, through its upcalls); in a switch (lwc_switch, or once a
 * switch_to_next upcall has run in it) or on a plain OS thread, the OS thread
 * sleeps in the kernel.  A transaction that read no PVar can never be woken: its
 * lwc_atomically returns LWC_EBLOCKED_CONCDS at once. */
LWC_API _Noreturn void lwc_tx_retry(lwc_tx_t *tx);

/* Run fn(arg) once, after this transaction commits (never if it is re-run or
 * abandoned).  After a switch it runs on the capability that committed it,
 * before the next SCont continues; it may run transactions but must not switch. */
LWC_API void lwc_tx_defer(lwc_tx_t *tx, void (*fn)(void *), void *arg);

/* What the commit path has done in this process, for tuning and tests.
 * A thread that commits alone for a while is granted the commit bias: its
 * transactions then commit with no atomic read-modify-write, until another
 * thread's transaction revokes it (a membarrier(2) system call).  The bias is
 * off under ThreadSanitizer, where the kernel lacks private expedited
 * membarrier, and with LWC_PTM_BIAS=0 in the environment. */
typedef struct lwc_ptm_stats {
    uint64_t bias_grants;
    uint64_t bias_revocations;
    int      bias_enabled;      /* 1: threads may earn the bias here */
} lwc_ptm_stats_t;

LWC_API void lwc_ptm_get_stats(lwc_ptm_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
