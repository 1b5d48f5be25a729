/* Building the first frame of a new context for the assembly switch: the frame
 * lwc_ctx_jump restores, with lwc_ctx_trampoline as its return address. */
#include "context.h"

#include <stdint.h>
#include <string.h>

#if !LWC_CONTEXT_UCONTEXT

void lwc_ctx_trampoline(void);

void lwc_ctx_make(lwc_ctx_t *c, void *stack_lo, size_t size,
                  void (*entry)(lwc_transfer_t, void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* 8 (MXCSR, FCW) + 6 registers + return address = 64 bytes; 16 more above it
     * so that the trampoline starts 16-byte aligned with room for a fake frame. */
    uint64_t *f = (uint64_t *)(top - 80);
    memset(f, 0, 80);
    ((uint32_t *)f)[0] = 0x1F80;              /* MXCSR: all exceptions masked */
    ((uint16_t *)f)[2] = 0x037F;              /* x87: extended precision, masked */
    f[4] = (uint64_t)(uintptr_t)entry;        /* r12 */
    f[5] = (uint64_t)(uintptr_t)arg;          /* rbx */
    f[7] = (uint64_t)(uintptr_t)lwc_ctx_trampoline;
    c->sp = f;
#elif defined(__aarch64__)
    uint64_t *f = (uint64_t *)(top - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)arg;          /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;        /* x20 */
    f[11] = (uint64_t)(uintptr_t)lwc_ctx_trampoline; /* x30 */
    c->sp = f;
#else
#error "no assembly context switch for this architecture: configure --with-context=ucontext"
#endif
}

#endif
