/* x86-64 System V context switch: lwc_ctx_jump.  See Note [Jumping between
 * contexts] in context.h.
 *
 * Note [FP control words]
 * ~~~~~~~~~~~~~~~~~~~~~~~
 * The ABI makes the control bits of MXCSR and the x87 control word callee-saved,
 * and the MXCSR status flags caller-saved.  Loading MXCSR with a value that
 * differs from the current one is very slow (about 110 ns on this project's
 * machine), and any program that has done inexact floating point has a status
 * flag set: restoring the whole saved word on every switch, as fcontext does,
 * pays that on every switch between two contexts whose flags differ.  So each
 * word is compared with the live one and loaded only when a control bit differs;
 * the status flags flow through, as a caller-saved register may.
 *
 * Saved frame, from the saved stack pointer up:
 *   0: MXCSR (4 bytes) and the x87 control word (2 bytes)
 *   8: r15, r14, r13, r12, rbx, rbp (callee_saved.h); 56: the return address.
 * Everything else is caller-saved in the ABI, so the compiler has already spilled
 * whatever it needs across the call.
 *
 * Note [Returning from a switch]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * lwc_ctx_jump ends with `ret`, where fcontext ends with `jmp *`.  A `ret` is
 * predicted from the return stack, that is, as a return to the caller of *this*
 * context's jump: right when the context resumed had jumped out from the same
 * call site, wrong otherwise.  A `jmp *` is predicted from history, but leaves
 * the return stack one entry out of step, so every later `ret` of the resumed
 * context mispredicts.  lwc switches every SCont through one call site
 * (lwc_swap_to), so `ret` is right there and the returns up the chain stay in
 * step: lwc_switch went from about 117 to 80 ns with it on this project's
 * machine.  Two contexts that each switch from their own loop pay a mispredict
 * per switch instead (tools/bench, raw_switch_two_sites). */
#include "callee_saved.h"

    .text
    .globl  lwc_ctx_jump
    .hidden lwc_ctx_jump
    .type   lwc_ctx_jump, @function
    .p2align 4
lwc_ctx_jump:                       /* rdi = to_sp, rsi = data; returns {old sp, data} */
    .cfi_startproc
    LWC_ENDBR
    leaq    -56(%rsp), %rsp
    .cfi_adjust_cfa_offset 56
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    LWC_STORE_CALLEE_SAVED %rsp
    movl    (%rsp), %r9d            /* our MXCSR and FCW, read back at the widths */
    movzwl  4(%rsp), %r10d          /* they were stored at, so the stores forward */
    movq    %rsp, %rax
    movq    %rdi, %rsp
    /* Note [FP control words]: load them only when they differ. */
    movl    (%rsp), %r11d
    xorl    %r9d, %r11d
    testl   $0xffc0, %r11d          /* MXCSR control bits; 0..5 are status flags */
    jnz     .Lload_mxcsr
.Lmxcsr_done:
    cmpw    4(%rsp), %r10w
    jne     .Lload_fcw
.Lfcw_done:
    LWC_LOAD_CALLEE_SAVED %rsp
    leaq    56(%rsp), %rsp
    movq    %rsi, %rdx
    ret                             /* Note [Returning from a switch] */
.Lload_mxcsr:
    ldmxcsr (%rsp)
    jmp     .Lmxcsr_done
.Lload_fcw:
    fldcw   4(%rsp)
    jmp     .Lfcw_done
    .cfi_endproc
    .size   lwc_ctx_jump, .-lwc_ctx_jump

/* First code of a new context: rax/rdx = the transfer, rbx = arg, r12 = entry.
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
    movq    %rdx, %rsi
    movq    %rbx, %rdx
    call    *%r12
    ud2
    .cfi_endproc
    .size   lwc_ctx_trampoline, .-lwc_ctx_trampoline

    .section .note.GNU-stack,"",@progbits
