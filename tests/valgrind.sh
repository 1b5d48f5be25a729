#!/bin/sh
# Run one unit test (named by its -memcheck.vg twin) under valgrind memcheck.  Any memory
# error or definite/indirect leak fails it.  Check's fork mode is off so that
# valgrind sees the tests themselves.
t=${1%-memcheck.vg}
CK_FORK=no exec ${VALGRIND:-valgrind} -q --error-exitcode=99 \
    --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --fair-sched=yes "$t"
