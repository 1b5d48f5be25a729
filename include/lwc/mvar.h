/* lwc: MVars, a one-slot box that threads of any scheduler share.
 *
 * take empties a full MVar (or waits until it is full); put fills an empty one
 * (or waits until it is empty); read waits like take but leaves the value.
 * Waiters are served first come, first served, and a put or take wakes exactly
 * the one waiter it serves (readers: all of them, before the first taker).
 * Blocking parks the calling SCont through its own scheduler's upcalls; called
 * from an OS thread that is not running an SCont, it sleeps that OS thread.
 *
 * Every call returns LWC_OK or an error, with values through out-parameters:
 * LWC_EAGAIN from a try-form that would have blocked, LWC_EBLOCKED_CONCDS to a
 * waiter whose MVar was freed under it, LWC_EINVAL for a NULL MVar or out. */
#ifndef LWC_MVAR_H
#define LWC_MVAR_H

#include <lwc/base.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lwc_mvar lwc_mvar_t;

/* NULL when out of memory. */
LWC_API lwc_mvar_t *lwc_mvar_new(void);
LWC_API lwc_mvar_t *lwc_mvar_new_full(lwc_word_t v);
/* Wakes every waiter with LWC_EBLOCKED_CONCDS.  No call may be in progress on
 * mv, nor start after this one; NULL is ignored. */
LWC_API void lwc_mvar_free(lwc_mvar_t *mv);

LWC_API int lwc_mvar_take(lwc_mvar_t *mv, lwc_word_t *out);
LWC_API int lwc_mvar_put(lwc_mvar_t *mv, lwc_word_t v);
LWC_API int lwc_mvar_read(lwc_mvar_t *mv, lwc_word_t *out);
LWC_API int lwc_mvar_try_take(lwc_mvar_t *mv, lwc_word_t *out);   /* LWC_EAGAIN if empty */
LWC_API int lwc_mvar_try_put(lwc_mvar_t *mv, lwc_word_t v);       /* LWC_EAGAIN if full */

/* The composable forms, inside a transaction the caller runs: take or put now,
 * or lwc_tx_retry the whole transaction until the MVar changes (as GHC's
 * TMVar).  They serve waiters exactly as the blocking forms do. */
LWC_API int lwc_mvar_take_tx(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t *out);
LWC_API int lwc_mvar_put_tx(lwc_tx_t *tx, lwc_mvar_t *mv, lwc_word_t v);

#ifdef __cplusplus
}
#endif
#endif
