#!/bin/sh
# examples/echo.c, the TCP echo server with a thread per connection, on rr
# and ws, 1 and 2 capabilities, and on the loop scheduler (lwc_main's host): 300 connections open at once, then 20 of
# them making 50 round trips each; the client fails on any wrong echo.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for sched in rr ws loop; do
    for caps in 1 2; do
        [ $sched = loop ] && [ $caps = 2 ] && continue     # the loop runs on its host's thread
        LWC_CAPS=$caps ./examples/echo-$sched serve 0 >"$out" 2>&1 &
        server=$!
        port=
        for _ in $(seq 1 100); do
            port=$(sed -n 's/.*serving on 127.0.0.1:\([0-9]*\).*/\1/p' "$out")
            [ -n "$port" ] && break
            sleep 0.1
        done
        ok=false
        if [ -n "$port" ] && LWC_CAPS=$caps ./examples/echo-$sched load "$port" 300 20 50; then
            ok=true
        fi
        kill $server 2>/dev/null
        wait $server 2>/dev/null
        if ! $ok; then
            echo "echo: $sched on $caps capabilities failed"
            cat "$out"
            exit 1
        fi
    done
done
