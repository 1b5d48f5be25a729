/* Machine contexts: the one primitive every switch in lwc ends in.
 *
 * Note [Jumping between contexts]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * lwc_ctx_switch saves the callee-saved registers and the FP control words of the
 * running code on its own stack and resumes `to`.  It does not write the
 * suspended context's stack pointer anywhere: it hands it, with `data`, to the
 * side it resumes, as the lwc_transfer_t that side's own lwc_ctx_switch call (or
 * a new context's entry function) returns.  That side records it with
 * lwc_ctx_saved(where the suspended context lives, transfer).  Passing the stack
 * pointer in registers, as Boost.Context's fcontext does, matters: storing %rsp
 * to memory and loading the next one from memory inside the switch made it
 * fifteen times slower on this project's machine (tools/bench, raw_switch_*).
 * It also tells the runtime exactly when a suspended SCont is resumable: once
 * lwc_ctx_saved has run (Note [Switching out] in scont.c). */
#ifndef LWC_SUBSTRATE_CONTEXT_H
#define LWC_SUBSTRATE_CONTEXT_H

#include <stddef.h>
#include "config.h"

typedef struct lwc_transfer { void *sp; void *data; } lwc_transfer_t;

#if LWC_CONTEXT_UCONTEXT
#include <ucontext.h>
typedef struct lwc_ctx { ucontext_t uc; } lwc_ctx_t;
lwc_transfer_t lwc_ctx_switch(lwc_ctx_t *from, lwc_ctx_t *to, void *data);
static inline void lwc_ctx_saved(lwc_ctx_t *from, lwc_transfer_t t) { (void)from; (void)t; }
#else
typedef struct lwc_ctx { void *sp; } lwc_ctx_t;
lwc_transfer_t lwc_ctx_jump(void *to_sp, void *data);
/* Always inlined: a call of its own would keep `to`, the SCont switched to,
 * in its frame under ThreadSanitizer (Note [Switch targets] in scont.c). */
static inline __attribute__((always_inline)) lwc_transfer_t lwc_ctx_switch(lwc_ctx_t *from,
                                                                          lwc_ctx_t *to,
                                                                          void *data)
{
    (void)from;
    return lwc_ctx_jump(to->sp, data);
}
static inline void lwc_ctx_saved(lwc_ctx_t *from, lwc_transfer_t t) { from->sp = t.sp; }
#endif

/* A suspended context's stack pointer, NULL if it has none (never with
 * ucontext, which copy stacks, its only user, do without: copy.c). */
#if LWC_CONTEXT_UCONTEXT
static inline char *lwc_ctx_sp(const lwc_ctx_t *c) { (void)c; return NULL; }
static inline void lwc_ctx_clear(lwc_ctx_t *c) { (void)c; }
#else
static inline char *lwc_ctx_sp(const lwc_ctx_t *c) { return c->sp; }
static inline void lwc_ctx_clear(lwc_ctx_t *c) { c->sp = NULL; }
#endif

/* Zero the callee-saved registers the calling function holds nothing live
 * in: the compiler keeps what is live elsewhere.  A switch saves these
 * registers on the suspended stack, and a dead copy of the SCont switched to
 * must not stay there (Note [Switch targets] in scont.c).  The frame
 * pointer is left alone. */
#if defined(__x86_64__)
#define LWC_CLEAR_CALLEE_SAVED() \
    __asm__ __volatile__("xor %%ebx, %%ebx\n\txor %%r12d, %%r12d\n\txor %%r13d, %%r13d\n\t" \
                         "xor %%r14d, %%r14d\n\txor %%r15d, %%r15d" \
                         ::: "rbx", "r12", "r13", "r14", "r15")
#elif defined(__aarch64__)
#define LWC_CLEAR_CALLEE_SAVED() \
    __asm__ __volatile__("mov x19, xzr\n\tmov x20, xzr\n\tmov x21, xzr\n\tmov x22, xzr\n\t" \
                         "mov x23, xzr\n\tmov x24, xzr\n\tmov x25, xzr\n\tmov x26, xzr\n\t" \
                         "mov x27, xzr\n\tmov x28, xzr" \
                         ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28")
#else
#define LWC_CLEAR_CALLEE_SAVED() ((void)0)
#endif

/* Prepare *c to run entry(transfer, arg) on [stack_lo, stack_lo + size) when first
 * switched to.  entry must never return. */
void lwc_ctx_make(lwc_ctx_t *c, void *stack_lo, size_t size,
                  void (*entry)(lwc_transfer_t t, void *arg), void *arg);

#endif
