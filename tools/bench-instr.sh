#!/bin/sh
# Instructions per operation, counted by callgrind at two sizes so that
# start-up and shut-down cancel: (I(2N) - I(N)) / (ops(2N) - ops(N)).  The first
# figure to quote on a noisy machine: it does not depend on what else runs.
# `make bench-instr` runs it after building the benchmark programs.
#
# usage: tools/bench-instr.sh [figure...]
#   figure    yield lwc_switch ptm spawn ring pingpong loop ffi safe (default:
#             all; ffi and safe when tools/ffi-bench is built; loop: yield,
#             ring and pingpong on the loop scheduler, an empty tick, a
#             token's settle and resume)
# Environment: LWC_INSTR_SIZE (default 20000) is N; PEERS_DIR, when set, is a
# folder of peer programs built by tools/peers/build.sh (ghc-peer, go-peer),
# counted the same way beside ours (GHC with -N1, Go with GOMAXPROCS=1).
set -eu
dir=$(dirname "$0")
n=${LWC_INSTR_SIZE:-20000}
figures=${*:-yield lwc_switch ptm spawn ring pingpong loop ffi safe}
command -v valgrind >/dev/null || { echo "bench-instr: needs valgrind" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Instructions of "$@" (callgrind's "Collected" line), the least of three
# runs: threads that wait spin a bounded while before they sleep, and how
# long depends on how valgrind interleaves them, noise that only adds.  Our
# scheduler benchmarks mark the work (MEASURE_START in sched_bench.c) and run
# uninstrumented until then ($collect); anything else counts whole.
count() {
    best=
    for run in 1 2 3; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null $collect "$@" >"$tmp/out" 2>"$tmp/err" || {
            echo "bench-instr: failed: $*" >&2; tail -n 5 "$tmp/err" >&2; return 1; }
        c=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$tmp/err")
        [ -z "$best" ] || [ "$c" -lt "$best" ] && best=$c
    done
    echo "$best"
}

# per_op NAME OPS_PER_N CMD...: CMD is run with "--size N" and "--size 2N"
# inserted after its first word.
per_op() {
    name=$1 mult=$2; shift 2
    prog=$1; shift
    collect=
    case $prog in */sched-bench-*|*/bench|*/ffi-bench|*/loop-bench) collect=--instr-atstart=no ;; esac
    a=$(count "$prog" --size "$n" "$@") || { printf '%-26s failed\n' "$name"; return 0; }
    b=$(count "$prog" --size $((2 * n)) "$@") || { printf '%-26s failed\n' "$name"; return 0; }
    awk -v name="$name" -v a="$a" -v b="$b" -v ops="$((n * mult))" 'BEGIN {
        v = (b - a) / ops
        printf "%-26s %10.0f instructions\n", name, v
        printf "BENCH {\"name\":\"instr_%s\",\"instructions\":%.1f}\n", name, v }'
}

# peer FIGURE OPS_PER_N: the figure in each peer program there is.
peer() {
    [ -n "${PEERS_DIR:-}" ] || return 0
    for p in ghc go; do
        [ -x "$PEERS_DIR/$p-peer" ] && per_op "${1}_$p" "$2" "$PEERS_DIR/$p-peer" "$1"
    done
    return 0
}

# Go's asynchronous preemption signals the running goroutine when it has run
# 10 ms, which happens under valgrind's slowness, and callgrind asserts on
# the signal's return: off, so the Go figures count.
export LWC_CAPS=1 GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1
for fig in $figures; do
    case $fig in
        yield)      per_op yield_rr 2 "$dir/sched-bench-rr" yield; peer yield 2 ;;
        lwc_switch) per_op lwc_switch 1 "$dir/bench" lwc_switch ;;
        ptm)        per_op ptm_read_write_tx 1 "$dir/bench" ptm_read_write ;;
        spawn)      per_op spawn_rr 1 "$dir/sched-bench-rr" spawn; peer spawn 1 ;;
        ring)       per_op ring_hop_rr 1 "$dir/sched-bench-rr" ring; peer ring 1 ;;
        pingpong)   per_op pingpong_rr 1 "$dir/sched-bench-rr" pingpong; peer pingpong 1 ;;
        loop)       per_op yield_loop 2 "$dir/sched-bench-loop" yield
                    per_op ring_hop_loop 1 "$dir/sched-bench-loop" ring
                    per_op pingpong_loop 1 "$dir/sched-bench-loop" pingpong
                    per_op loop_empty_tick 1 "$dir/loop-bench" tick
                    per_op loop_token_settle_resume 1 "$dir/loop-bench" token ;;
        ffi)        [ -x "$dir/ffi-bench" ] && per_op ffi_unsafe_call 1 "$dir/ffi-bench" unsafe ;;
        # The caller's fast path: under valgrind's slowness the monitor
        # would take calls and add its own looks to the count.
        safe)       [ -x "$dir/ffi-bench" ] && export LWC_CALL_HANDOFF=never &&
                    per_op ffi_safe_call 1 "$dir/ffi-bench" safe &&
                    per_op call_safe_fast 1 "$dir/ffi-bench" call_safe; unset LWC_CALL_HANDOFF ;;
        *) echo "bench-instr: no figure '$fig'" >&2; exit 2 ;;
    esac
done
