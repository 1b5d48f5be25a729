/* The portable fallback: POSIX ucontext.  Slower (swapcontext saves the signal
 * mask with a system call) but runs anywhere glibc does. */
#include "context.h"

#if LWC_CONTEXT_UCONTEXT
#include <stdint.h>

static __thread void *ctx_transfer;

lwc_transfer_t lwc_ctx_switch(lwc_ctx_t *from, lwc_ctx_t *to, void *data)
{
    ctx_transfer = data;
    swapcontext(&from->uc, &to->uc);
    return (lwc_transfer_t){ NULL, ctx_transfer };
}

/* makecontext passes only ints: each pointer travels as two halves. */
static void ctx_start(unsigned elo, unsigned ehi, unsigned alo, unsigned ahi)
{
    void (*entry)(lwc_transfer_t, void *) =
        (void (*)(lwc_transfer_t, void *))(((uintptr_t)ehi << 32) | elo);
    void *arg = (void *)(((uintptr_t)ahi << 32) | alo);
    entry((lwc_transfer_t){ NULL, ctx_transfer }, arg);
}

void lwc_ctx_make(lwc_ctx_t *c, void *stack_lo, size_t size,
                  void (*entry)(lwc_transfer_t, void *), void *arg)
{
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))ctx_start, 4,
                (unsigned)e, (unsigned)(e >> 32), (unsigned)a, (unsigned)(a >> 32));
}
#endif
