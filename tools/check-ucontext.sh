#!/bin/sh
# make check-ucontext: build lwc with the portable switch (--with-context=ucontext)
# in a copy of the tree and run the whole suite there, natively and under
# valgrind.  It covers what only that build has: swapcontext, lwc_tx_call in C
# (Note [Leaving a body] in ptm/ptm.c), and the detector reading the registers
# swapcontext saved (scan_saved_registers in substrate/detect_mark.c).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${LWC_UCONTEXT_BUILD:-$top/build-ucontext}
. "$top/tools/copy-tree.sh"
copy_tree "$top" "$build"
cd "$build"
autoreconf -fi >/dev/null
./configure --with-context=ucontext --enable-werror >/dev/null
grep -q 'define LWC_CONTEXT_UCONTEXT 1' config.h || { echo "check-ucontext: not the ucontext switch" >&2; exit 1; }
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check
