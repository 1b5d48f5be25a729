/* x86-64 System V: lwc_tx_call and lwc_tx_unwind, Note [Leaving a body] in
 * ptm.c.  The buffer is at LWC_TX_JB_OFFSET (32) in the lwc_tx_t, after the
 * head that <lwc/ptm.h> reads: 0: the stack pointer at entry (our caller's
 * return address is there); 8: the callee-saved registers
 * (substrate/callee_saved.h). */
#include "../substrate/callee_saved.h"

    .text
    .globl  lwc_tx_call
    .hidden lwc_tx_call
    .type   lwc_tx_call, @function
    .p2align 4
lwc_tx_call:                        /* rdi = tx, rsi = fn, rdx = arg */
    .cfi_startproc
    LWC_ENDBR
    leaq    32(%rdi), %rcx
    movq    %rsp, 0(%rcx)
    LWC_STORE_CALLEE_SAVED %rcx
    movq    %rsi, %rax
    movq    %rdx, %rsi
    jmp     *%rax                   /* fn(tx, arg) returns straight to our caller */
    .cfi_endproc
    .size   lwc_tx_call, .-lwc_tx_call

    .globl  lwc_tx_unwind
    .hidden lwc_tx_unwind
    .type   lwc_tx_unwind, @function
    .p2align 4
lwc_tx_unwind:                      /* rdi = tx */
    .cfi_startproc
    LWC_ENDBR
    addq    $32, %rdi
    LWC_LOAD_CALLEE_SAVED %rdi
    movq    0(%rdi), %rsp
    xorl    %eax, %eax
    ret                             /* from lwc_tx_call, as if the body had returned 0 */
    .cfi_endproc
    .size   lwc_tx_unwind, .-lwc_tx_unwind

    .section .note.GNU-stack,"",@progbits
