#!/bin/sh
# Run one unit test (named by its -memcheck.vg twin) under valgrind memcheck.  Any memory
# error or definite/indirect leak fails it.  Check's fork mode is off so that
# valgrind sees the tests themselves, which also means Check's own timeout
# is off: `timeout` stands in for it, so that a hang fails the test instead
# of the whole run.
#
# --aspace-minaddr: valgrind puts the heap and every mmap in the lowest 4 GiB
# by default, where a timestamp or a counter held anywhere reads as an
# address in a heap block or a thread's stack, and the blocked-forever
# detector (conservative) then keeps alive what the tests expect it to find
# unreachable.  Natively these addresses lie above 2^44.
t=${1%-memcheck.vg}
CK_FORK=no exec timeout -k 10 900 ${VALGRIND:-valgrind} -q --error-exitcode=99 \
    --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --fair-sched=yes \
    --aspace-minaddr=0x100000000 "$t"
