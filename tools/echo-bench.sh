#!/bin/sh
# The echo server benchmark, in one run: examples/echo-ws (lwc, one thread
# per connection, fd waits) and tools/peers/echo.go (Go, one goroutine per
# connection, when Go is installed), each on loopback and loaded by the
# same client (examples/echo-ws load): first CONNS connections open at once,
# each echoing, then CLIENTS of them making ROUNDS round trips of 64 bytes.
# usage: tools/echo-bench.sh [CONNS CLIENTS ROUNDS]   (default 10000 100 2000)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
conns=${1:-10000} clients=${2:-100} rounds=${3:-2000}
bin=${ECHO_BIN:-$top/examples/echo-ws}
caps=${LWC_CAPS:-2}
tmp=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

# serve NAME CMD...: start a server on a free port; $port is where it listens.
serve() {
    name=$1
    shift
    "$@" >"$tmp/$name.out" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*serving on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    echo "echo-bench: the $name server did not start:" >&2
    cat "$tmp/$name.out" >&2
    return 1
}

echo "== echo server, $conns connections at once, then $clients clients x $rounds round trips =="
LWC_CAPS=$caps serve lwc "$bin" serve 0
echo "-- lwc ($(basename "$bin"), $caps capabilities)"
LWC_CAPS=$caps "$bin" load "$port" "$conns" "$clients" "$rounds"
if command -v go >/dev/null; then
    (cd "$top/tools/peers" && GOCACHE="$tmp/.gocache" GO111MODULE=off \
        go build -o "$tmp/echo-go" echo.go)
    GOMAXPROCS=$caps serve go "$tmp/echo-go" 0
    echo "-- Go ($(go version | cut -d' ' -f3), GOMAXPROCS=$caps)"
    LWC_CAPS=$caps "$bin" load "$port" "$conns" "$clients" "$rounds" | sed 's/echo_[a-z]*_rps/echo_go_rps/'
else
    echo "-- Go: not installed (apt-get install golang-go)"
fi
