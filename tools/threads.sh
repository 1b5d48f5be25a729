#!/bin/sh
# What a thread costs (make bench): tools/threads.c on rr with one capability
# and ws with one and two, each figure a process of its own so that its peak
# RSS is its alone.  LWC_THREADS_N sets N (1000000).  With PEERS_DIR (built by
# tools/peers/build.sh) and GNU time, the same programs in GHC (-N1) and Go
# (GOMAXPROCS=1) beside them.
n=${LWC_THREADS_N:-1000000}
peer() {    # name figure program...: wall and peak RSS as threads.c prints them
    name=$1 fig=$2; shift 2
    [ -x "$1" ] && [ -x /usr/bin/time ] || return 0
    out=$(/usr/bin/time -f '%e %M' "$@" --size "$n" "$fig" 2>&1 >/dev/null | tail -n 1)
    set -- $out
    awk -v name="$name" -v s="$1" -v kb="$2" 'BEGIN {
        printf "%-28s %9.2f s %9.1f MB peak RSS\n", name, s, kb / 1024
        printf "BENCH {\"name\":\"%s\",\"s\":%.3f,\"peak_rss_mb\":%.1f}\n", name, s, kb / 1024 }'
}
for what in blocked spawn; do
    LWC_CAPS=1 ./tools/threads-rr "$what" "$n" || exit 1
    LWC_CAPS=1 ./tools/threads-ws "$what" "$n" || exit 1
    LWC_CAPS=2 ./tools/threads-ws "$what" "$n" || exit 1
    if [ -n "${PEERS_DIR:-}" ]; then
        fig=$what
        [ "$what" = spawn ] && fig=spawnall
        peer "$what${n}_ghc_1cap" "$fig" "$PEERS_DIR/ghc-peer"
        GOMAXPROCS=1 peer "$what${n}_go_1cap" "$fig" "$PEERS_DIR/go-peer"
    fi
done
