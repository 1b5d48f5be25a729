#!/bin/sh
# Each scheduler library defines the whole scheduler interface
# (tools/check-sched-lib.sh), and the check fails a library that does not
# (liblwc-mvar defines none of it).
set -u
check="${top_srcdir:-.}/tools/check-sched-lib.sh"
# The static archive, or the shared library of a --disable-static build.
built() {
    for f in .libs/liblwc-$1.a .libs/liblwc-$1.so; do
        [ -r "$f" ] && { echo "$f"; return; }
    done
    echo ".libs/liblwc-$1.a"
}
for lib in rr ws loop; do
    sh "$check" "$(built $lib)" || exit 1
done
# The priority scheduler of examples/prio/, a library on the kit.
sh "$check" examples/.libs/libprio.a || exit 1
if sh "$check" "$(built mvar)" >/dev/null; then
    echo "sched-symbols: liblwc-mvar passed the check, which it should not"
    exit 1
fi
exit 0
