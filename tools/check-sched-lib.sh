#!/bin/sh
# Does a scheduler library define the whole of <lwc/sched.h>?  Any author can
# run it against their own library (a .so or a .a):
#   tools/check-sched-lib.sh path/to/libmysched.so
# It lists what is missing and fails, or says the library is complete.
# make check runs it on liblwc-rr, liblwc-ws and liblwc-loop
# (tests/sched-symbols.sh).  lwc_sleep_ns is not the scheduler's: liblwc-io
# defines it for every scheduler.
set -u
SYMBOLS="lwc_main lwc_spawn lwc_spawn_bound lwc_yield lwc_sched_name lwc_spawn_joinable lwc_join"
[ $# -eq 1 ] || { echo "usage: $0 LIBRARY" >&2; exit 2; }
lib=$1
[ -r "$lib" ] || { echo "$0: cannot read $lib" >&2; exit 2; }
case $lib in
    *.a) defined=$(nm --defined-only "$lib" 2>/dev/null) ;;
    *)   defined=$(nm -D --defined-only "$lib" 2>/dev/null) ;;
esac
missing=
for s in $SYMBOLS; do
    echo "$defined" | grep -Eq "[[:space:]]T[[:space:]]$s\$" || missing="$missing $s"
done
if [ -n "$missing" ]; then
    echo "$lib does not define:$missing (lwc/sched.h lists what a scheduler library defines)"
    exit 1
fi
echo "$lib defines all of lwc/sched.h:$(echo " $SYMBOLS")"
