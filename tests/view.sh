#!/bin/sh
# The thread view (lwc_sconts_print, LWC_SCONTS_SIGNAL) and tools/gdb/lwc.py
# on tests/view/target: what each says of the threads it shows.
set -u
top="${top_srcdir:-.}"
prog=tests/view/target
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
fail() { echo "view: $1"; cat "$out"; exit 1; }

$MEMCHECK ./$prog > "$out" 2>&1 || fail "the target failed"
grep -q 'view target: done' "$out" || fail "the target did not finish"
for how in 'by call' 'by signal'; do
    # The view after "$how": a line for each thread, with its verdict.
    sed -n "/^$how:/,/^by \|^forgotten/p" "$out" > "$out.part"
    grep -q 'SCont [0-9]* "taker": blocked on a data structure, on MVar 0x[0-9a-f]*; scheduler rr (.*); reachable, first through' "$out.part" ||
        fail "$how: no reachable taker"
done
# By call, the first thread runs; by signal it waits for the pipe, and its
# stack, scanned from deeper down, may hold a stale word that reaches the
# forgotten thread (the view is as conservative as the detector).
sed -n "/^by call:/,/^by signal/p" "$out" > "$out.part"
grep -q 'SCont [0-9]* "forgotten": blocked on a data structure, on MVar .*; scheduler rr .*; unreachable: blocked for good' "$out.part" ||
    fail "by call: no unreachable thread"
grep -q 'SCont [0-9]*: running; scheduler rr .*; a root (it runs)' "$out.part" ||
    fail "by call: no running thread"
sed -n "/^by signal:/,/^forgotten/p" "$out" > "$out.part"
grep -q 'SCont [0-9]*: blocked on a data structure, on fd; scheduler rr .*; reachable, first through a pin' "$out.part" ||
    fail "by signal: the first thread does not wait on its fd"
grep -q 'SCont [0-9]* "forgotten": blocked on a data structure' "$out.part" ||
    fail "by signal: no forgotten thread"
rm -f "$out.part"
grep -q 'forgotten woke with .*blocked' "$out" || fail "the forgotten thread was not woken"

# gdb: info sconts and a backtrace of the taker, stopped in view_stop_here.
command -v gdb >/dev/null || { echo "view: no gdb: the debugger part is skipped"; exit 77; }
# (Not on sanitized builds: their frames and stacks are the sanitizer's.)
if grep -q 'define LWC_ASAN 1\|define LWC_TSAN 1' config.h; then exit 0; fi
gdb -batch -nx -ex "source $top/tools/gdb/lwc.py" -ex 'handle SIGUSR1 nostop noprint pass' \
    -ex 'break view_stop_here' -ex run \
    -ex 'info sconts' -ex 'lwc bt taker' -ex 'continue' ./$prog > "$out" 2>&1
grep -q 'taker .*rr .*MVar 0x' "$out" || fail "gdb: info sconts shows no taker"
grep -q '^[0-9]* SConts' "$out" || fail "gdb: info sconts has no count"
if grep -q 'define LWC_CONTEXT_UCONTEXT 1' config.h; then
    grep -q 'switches with ucontext' "$out" || fail "gdb: lwc bt on ucontext"
else
    grep -q 'waits_in_take' "$out" || fail "gdb: lwc bt shows no waits_in_take"
    grep -q '<taker>\| taker ' "$out" || fail "gdb: lwc bt does not reach the thread's function"
fi
grep -q 'view target: done' "$out" || fail "gdb: the program did not finish after the look"
exit 0
