/* AArch64 (AAPCS64) context switch: lwc_ctx_jump.  See Note [Jumping between
 * contexts] in context.h.
 *
 * Saved frame (176 bytes), from the saved stack pointer up:
 *   x19..x28, x29 (fp), x30 (lr), d8..d15 (the low halves of v8..v15 are all the
 *   ABI keeps), FPCR. */
    .text
    .globl  lwc_ctx_jump
    .hidden lwc_ctx_jump
    .type   lwc_ctx_jump, %function
    .p2align 4
lwc_ctx_jump:                       /* x0 = to_sp, x1 = data; returns {old sp, data} */
    .cfi_startproc
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x10, fpcr
    str     x10, [sp, #160]
    mov     x9, sp
    mov     sp, x0
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
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
