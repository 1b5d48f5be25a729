/* AArch64 (AAPCS64): lwc_tx_call and lwc_tx_unwind, Note [Leaving a body] in
 * ptm.c.  The buffer is at LWC_TX_JB_OFFSET (32) in the lwc_tx_t, after the
 * head that <lwc/ptm.h> reads: 0: the callee-saved
 * registers, x30 (lr) among them our caller's return address
 * (substrate/callee_saved.h); 160: the stack pointer at entry. */
#include "../substrate/callee_saved.h"

    .text
    .globl  lwc_tx_call
    .hidden lwc_tx_call
    .type   lwc_tx_call, %function
    .p2align 4
lwc_tx_call:                        /* x0 = tx, x1 = fn, x2 = arg */
    .cfi_startproc
    add     x10, x0, #32
    LWC_STORE_CALLEE_SAVED x10
    mov     x9, sp
    str     x9, [x10, #160]
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
    add     x0, x0, #32
    LWC_LOAD_CALLEE_SAVED x0
    ldr     x9, [x0, #160]
    mov     sp, x9
    mov     x0, #0
    ret                             /* from lwc_tx_call, as if the body had returned 0 */
    .cfi_endproc
    .size   lwc_tx_unwind, .-lwc_tx_unwind

    .section .note.GNU-stack,"",%progbits
