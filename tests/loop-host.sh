#!/bin/sh
# The loop scheduler's examples say what they should: examples/loop-host.c (a
# host's own epoll loop with lwc threads inside, tokens settled by the host
# and by a pthread), examples/loop-uv.c (a libuv TCP server whose connection
# handlers are lwc threads; built when libuv is found) and examples/demo.c
# linked against liblwc-loop; under valgrind too when make check names one
# ($MEMCHECK, empty in a sanitized build: zero errors, zero definite leaks).
set -u
fail() { echo "loop-host: $*"; exit 1; }
out=$(./examples/loop-host) || fail "examples/loop-host exited $?"
echo "$out" | grep -q 'sum of squares 55; resolved at frame 5; the pthread said 42' ||
    fail "loop-host said: $out"
echo "$out" | grep -q 'evaluation done: success, result 55' || fail "loop-host said: $out"
progs="loop-host demo-loop"
if [ -x ./examples/loop-uv ]; then                  # built when libuv is found
    out=$(./examples/loop-uv) || fail "examples/loop-uv exited $?"
    echo "$out" | grep -q '160 of 160 lines answered (success); the handlers counted 160' ||
        fail "loop-uv said: $out"
    echo "$out" | grep -q 'every lwc thread finished; the loop is freed' || fail "loop-uv said: $out"
    progs="$progs loop-uv"
fi
out=$(./examples/demo-loop) || fail "examples/demo-loop exited $?"
[ "$(echo "$out" | grep -c '(right)')" = 2 ] || fail "demo-loop said: $out"
if [ -n "${MEMCHECK:-}" ]; then
    for prog in $progs; do
        $MEMCHECK -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect --aspace-minaddr=0x100000000 \
            ./examples/$prog >/dev/null || fail "$prog under valgrind"
    done
fi
exit 0
