/* x86-64 System V context switch.  See context.h.
 *
 * Saved frame, from the saved stack pointer up:
 *   0: MXCSR (4 bytes) and the x87 control word (2 bytes)
 *   8: r15, r14, r13, r12, rbx, rbp, then the return address.
 * Everything else is caller-saved in the ABI, so the compiler has already spilled
 * whatever it needs across the call. */
#ifdef __CET__
#define LWC_ENDBR endbr64
#else
#define LWC_ENDBR
#endif

    .text
    .globl  lwc_ctx_swap
    .hidden lwc_ctx_swap
    .type   lwc_ctx_swap, @function
    .p2align 4
lwc_ctx_swap:                       /* rdi = from, rsi = to, rdx = transfer */
    .cfi_startproc
    LWC_ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    movq    %rdx, %rax
    ret
    .cfi_endproc
    .size   lwc_ctx_swap, .-lwc_ctx_swap

/* First code of a new context: rbx = arg, r12 = entry, rax = transfer.
 * The stack is 16-byte aligned here, as a call needs. */
    .globl  lwc_ctx_trampoline
    .hidden lwc_ctx_trampoline
    .type   lwc_ctx_trampoline, @function
    .p2align 4
lwc_ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    LWC_ENDBR
    movq    %rax, %rdi
    movq    %rbx, %rsi
    call    *%r12
    ud2
    .cfi_endproc
    .size   lwc_ctx_trampoline, .-lwc_ctx_trampoline

    .section .note.GNU-stack,"",@progbits
