/* x86-64 System V: lwc_tx_call and lwc_tx_unwind, Note [Leaving a body] in
 * ptm.c.  The buffer is the first thing in the lwc_tx_t:
 *   0: rbx, rbp, r12, r13, r14, r15; 48: rsp at entry (our caller's return
 *   address is there). */
#ifdef __CET__
#define LWC_ENDBR endbr64
#else
#define LWC_ENDBR
#endif

    .text
    .globl  lwc_tx_call
    .hidden lwc_tx_call
    .type   lwc_tx_call, @function
    .p2align 4
lwc_tx_call:                        /* rdi = tx, rsi = fn, rdx = arg */
    .cfi_startproc
    LWC_ENDBR
    movq    %rbx, 0(%rdi)
    movq    %rbp, 8(%rdi)
    movq    %r12, 16(%rdi)
    movq    %r13, 24(%rdi)
    movq    %r14, 32(%rdi)
    movq    %r15, 40(%rdi)
    movq    %rsp, 48(%rdi)
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
    movq    0(%rdi), %rbx
    movq    8(%rdi), %rbp
    movq    16(%rdi), %r12
    movq    24(%rdi), %r13
    movq    32(%rdi), %r14
    movq    40(%rdi), %r15
    movq    48(%rdi), %rsp
    xorl    %eax, %eax
    ret                             /* from lwc_tx_call, as if the body had returned 0 */
    .cfi_endproc
    .size   lwc_tx_unwind, .-lwc_tx_unwind

    .section .note.GNU-stack,"",@progbits
