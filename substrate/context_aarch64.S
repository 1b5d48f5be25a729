/* AArch64 (AAPCS64) context switch.  See context.h.
 *
 * Saved frame (176 bytes), from the saved stack pointer up:
 *   x19..x28, x29 (fp), x30 (lr), d8..d15 (the low halves of v8..v15 are all the
 *   ABI keeps), FPCR. */
    .text
    .globl  lwc_ctx_swap
    .hidden lwc_ctx_swap
    .type   lwc_ctx_swap, %function
    .p2align 4
lwc_ctx_swap:                       /* x0 = from, x1 = to, x2 = transfer */
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
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
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
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    mov     x0, x2
    ret
    .cfi_endproc
    .size   lwc_ctx_swap, .-lwc_ctx_swap

/* First code of a new context: x19 = arg, x20 = entry, x0 = transfer. */
    .globl  lwc_ctx_trampoline
    .hidden lwc_ctx_trampoline
    .type   lwc_ctx_trampoline, %function
    .p2align 4
lwc_ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x1, x19
    blr     x20
    brk     #0
    .cfi_endproc
    .size   lwc_ctx_trampoline, .-lwc_ctx_trampoline

    .section .note.GNU-stack,"",%progbits
