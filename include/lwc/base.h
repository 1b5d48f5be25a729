/* lwc: base types and error codes shared by every public header. */
#ifndef LWC_BASE_H
#define LWC_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's exported functions (everything else is hidden). */
#if defined(__GNUC__) && !defined(LWC_API)
#define LWC_API __attribute__((visibility("default")))
#elif !defined(LWC_API)
#define LWC_API
#endif

/* What a PVar or an MVar holds: one machine word. */
typedef uintptr_t lwc_word_t;

typedef struct lwc_scont lwc_scont_t;
typedef struct lwc_pvar  lwc_pvar_t;
typedef struct lwc_tx    lwc_tx_t;

typedef enum lwc_status {
    LWC_RUNNING,            /* executing on some capability */
    LWC_BLOCKED_ON_SCHED,   /* suspended, owned by a scheduler (a new SCont starts here) */
    LWC_BLOCKED_ON_CONCDS,  /* suspended on a user-level concurrent data structure */
    LWC_COMPLETED           /* its function returned: never runs again */
} lwc_status_t;

/* Errors are negative ints; 0 is success.  lwc_strerror() names each. */
enum {
    LWC_OK              = 0,
    LWC_EINVAL          = -1,   /* bad argument (NULL, wrong object, out of range) */
    LWC_ENOMEM          = -2,
    LWC_ESTATE          = -3,   /* switch target cannot be resumed */
    LWC_EBLOCKED_CONCDS = -4,   /* blocked indefinitely on a concurrent data structure */
    LWC_EBLOCKED_SCHED  = -5,   /* blocked indefinitely: its scheduler can never run it */
    LWC_EDEADLOCK       = -6,   /* the whole program can make no progress */
    LWC_EKILLED         = -7,   /* an asynchronous kill */
    LWC_EAGAIN          = -8,   /* a try-operation would have blocked */
    LWC_EWOULDBLOCK     = -9,   /* a synchronous evaluation met a foreign event */
    LWC_EBUSY           = -10,  /* no idle capability / re-entered / resource in use */
    LWC_ECLOSED         = -11,  /* the fd waited on was closed (lwc_fd_close) */
    LWC_ECANCELED       = -12   /* a token's waiter is gone: nobody sees the value */
};

/* A short English description of err; never NULL, also for unknown codes. */
LWC_API const char *lwc_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
