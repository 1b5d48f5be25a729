/* For the assembly files only: the registers the ABI makes callee-saved,
 * stored to and loaded from fixed offsets of a base register.  The context
 * switch (substrate/context_*.S) keeps them in its frame and lwc_tx_call
 * (ptm/tx_*.S) in the transaction's buffer, at the same offsets.
 *
 * x86-64 System V: base+8: r15, r14, r13, r12, rbx, rbp; base+0 is the
 * caller's (the context switch puts MXCSR and the x87 control word there,
 * lwc_tx_call the stack pointer).  Beside them the ABI keeps MXCSR's and
 * the x87 control word's control bits, which lwc_tx_call leaves alone: a
 * transaction body that changes them is wrong whether it commits or not.
 *
 * AArch64 (AAPCS64): base+0: x19..x28, x29 (fp), x30 (lr); base+96: d8..d15
 * (the low halves of v8..v15 are all the ABI keeps); base+160 is the caller's
 * (FPCR, or the stack pointer). */
#ifndef LWC_SUBSTRATE_CALLEE_SAVED_H
#define LWC_SUBSTRATE_CALLEE_SAVED_H

#if defined(__x86_64__)

#ifdef __CET__
#define LWC_ENDBR endbr64
#else
#define LWC_ENDBR
#endif

.macro LWC_STORE_CALLEE_SAVED base
    movq    %r15, 8(\base)
    movq    %r14, 16(\base)
    movq    %r13, 24(\base)
    movq    %r12, 32(\base)
    movq    %rbx, 40(\base)
    movq    %rbp, 48(\base)
.endm

.macro LWC_LOAD_CALLEE_SAVED base
    movq    8(\base), %r15
    movq    16(\base), %r14
    movq    24(\base), %r13
    movq    32(\base), %r12
    movq    40(\base), %rbx
    movq    48(\base), %rbp
.endm

#elif defined(__aarch64__)

.macro LWC_STORE_CALLEE_SAVED base
    stp     x19, x20, [\base, #0]
    stp     x21, x22, [\base, #16]
    stp     x23, x24, [\base, #32]
    stp     x25, x26, [\base, #48]
    stp     x27, x28, [\base, #64]
    stp     x29, x30, [\base, #80]
    stp     d8,  d9,  [\base, #96]
    stp     d10, d11, [\base, #112]
    stp     d12, d13, [\base, #128]
    stp     d14, d15, [\base, #144]
.endm

.macro LWC_LOAD_CALLEE_SAVED base
    ldp     x19, x20, [\base, #0]
    ldp     x21, x22, [\base, #16]
    ldp     x23, x24, [\base, #32]
    ldp     x25, x26, [\base, #48]
    ldp     x27, x28, [\base, #64]
    ldp     x29, x30, [\base, #80]
    ldp     d8,  d9,  [\base, #96]
    ldp     d10, d11, [\base, #112]
    ldp     d12, d13, [\base, #128]
    ldp     d14, d15, [\base, #144]
.endm

#endif
#endif
