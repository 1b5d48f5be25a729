/* AArch64 (AAPCS64) context switch: lwc_ctx_jump.  See Note [Jumping between
 * contexts] in context.h.
 *
 * Saved frame (176 bytes), from the saved stack pointer up:
 *   x19..x28, x29 (fp), x30 (lr), d8..d15 (callee_saved.h), FPCR at 160. */
#include "callee_saved.h"
    .text
    .globl  lwc_ctx_jump
    .hidden lwc_ctx_jump
    .type   lwc_ctx_jump, %function
    .p2align 4
lwc_ctx_jump:                       /* x0 = to_sp, x1 = data; returns {old sp, data} */
    .cfi_startproc
    sub     sp, sp, #176
    LWC_STORE_CALLEE_SAVED sp
    mrs     x10, fpcr
    str     x10, [sp, #160]
    mov     x9, sp
    mov     sp, x0
    LWC_LOAD_CALLEE_SAVED sp
    ldr     x11, [sp, #160]
    cmp     x10, x11                /* writing FPCR is slow: only when it differs */
    b.eq    1f
    msr     fpcr, x11
1:  add     sp, sp, #176
    mov     x0, x9
    ret
    .cfi_endproc
    .size   lwc_ctx_jump, .-lwc_ctx_jump

/* First code of a new context: x0/x1 = the transfer, x19 = arg, x20 = entry. */
    .globl  lwc_ctx_trampoline
    .hidden lwc_ctx_trampoline
    .type   lwc_ctx_trampoline, %function
    .p2align 4
lwc_ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x2, x19
    blr     x20
    brk     #0
    .cfi_endproc
    .size   lwc_ctx_trampoline, .-lwc_ctx_trampoline

    .section .note.GNU-stack,"",%progbits
