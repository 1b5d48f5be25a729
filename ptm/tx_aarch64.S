/* AArch64 (AAPCS64): lwc_tx_call and lwc_tx_unwind, Note [Leaving a body] in
 * ptm.c.  The buffer is the first thing in the lwc_tx_t:
 *   0: x19..x28, x29 (fp), x30 (lr: our caller's return address);
 *   96: sp at entry; 104: d8..d15 (the low halves of v8..v15 are all the ABI
 *   keeps). */
    .text
    .globl  lwc_tx_call
    .hidden lwc_tx_call
    .type   lwc_tx_call, %function
    .p2align 4
lwc_tx_call:                        /* x0 = tx, x1 = fn, x2 = arg */
    .cfi_startproc
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    mov     x9, sp
    str     x9, [x0, #96]
    stp     d8,  d9,  [x0, #104]
    stp     d10, d11, [x0, #120]
    stp     d12, d13, [x0, #136]
    stp     d14, d15, [x0, #152]
    mov     x16, x1
    mov     x1, x2
    br      x16                     /* fn(tx, arg) returns straight to our caller */
    .cfi_endproc
    .size   lwc_tx_call, .-lwc_tx_call

    .globl  lwc_tx_unwind
    .hidden lwc_tx_unwind
    .type   lwc_tx_unwind, %function
    .p2align 4
lwc_tx_unwind:                      /* x0 = tx */
    .cfi_startproc
    ldp     x19, x20, [x0, #0]
    ldp     x21, x22, [x0, #16]
    ldp     x23, x24, [x0, #32]
    ldp     x25, x26, [x0, #48]
    ldp     x27, x28, [x0, #64]
    ldp     x29, x30, [x0, #80]
    ldr     x9, [x0, #96]
    mov     sp, x9
    ldp     d8,  d9,  [x0, #104]
    ldp     d10, d11, [x0, #120]
    ldp     d12, d13, [x0, #136]
    ldp     d14, d15, [x0, #152]
    mov     x0, #0
    ret                             /* from lwc_tx_call, as if the body had returned 0 */
    .cfi_endproc
    .size   lwc_tx_unwind, .-lwc_tx_unwind

    .section .note.GNU-stack,"",@progbits
