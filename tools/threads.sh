#!/bin/sh
# What a thread costs (make bench): tools/threads.c on rr with one capability
# and ws with one and two, each figure a process of its own so that its peak
# RSS is its alone.  LWC_THREADS_N sets N (1000000).
n=${LWC_THREADS_N:-1000000}
for what in blocked spawn; do
    LWC_CAPS=1 ./tools/threads-rr "$what" "$n" || exit 1
    LWC_CAPS=1 ./tools/threads-ws "$what" "$n" || exit 1
    LWC_CAPS=2 ./tools/threads-ws "$what" "$n" || exit 1
done
