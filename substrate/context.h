/* Machine contexts: the one primitive every switch in lwc ends in.
 *
 * lwc_ctx_swap saves the callee-saved registers (and the FP control words) of the
 * running code on its own stack, stores the stack pointer in *from, and resumes
 * *to.  The value passed as `transfer` comes out of the lwc_ctx_swap call that
 * suspended *to (or is the first argument of a new context's entry function). */
#ifndef LWC_SUBSTRATE_CONTEXT_H
#define LWC_SUBSTRATE_CONTEXT_H

#include <stddef.h>
#include "config.h"

#if LWC_CONTEXT_UCONTEXT
#include <ucontext.h>
typedef struct lwc_ctx { ucontext_t uc; } lwc_ctx_t;
#else
typedef struct lwc_ctx { void *sp; } lwc_ctx_t;
#endif

void *lwc_ctx_swap(lwc_ctx_t *from, lwc_ctx_t *to, void *transfer);

/* Prepare *c to run entry(transfer, arg) on [stack_lo, stack_lo + size) when first
 * swapped to.  entry must never return. */
void lwc_ctx_make(lwc_ctx_t *c, void *stack_lo, size_t size,
                  void (*entry)(void *transfer, void *arg), void *arg);

#endif
