#!/bin/sh
# Build the peer programs of tools/bench-instr.sh into DIR (outside the
# source tree is fine): ghc-peer with GHC (Debian's ghc), go-peer with Go
# (golang-go), each only if its compiler is installed; and ghc-ffi-peer,
# GHC's side of tools/ffi-bench (safe and unsafe calls, a callback inside a
# safe call, an in-call from a pthread).
# usage: tools/peers/build.sh DIR
set -eu
src=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: tools/peers/build.sh DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if command -v ghc >/dev/null; then
    tmp=$(mktemp -d)
    ghc -O2 -threaded -rtsopts -with-rtsopts=-N1 -outputdir "$tmp" \
        -o "$out/ghc-peer" "$src/peer.hs" >/dev/null
    ghc -O2 -threaded -rtsopts -with-rtsopts=-N1 -outputdir "$tmp" \
        -o "$out/ghc-ffi-peer" "$src/ffi_peer.hs" "$src/ffi_peer.c" >/dev/null
    rm -rf "$tmp"
    echo "built $out/ghc-peer and $out/ghc-ffi-peer ($(ghc --numeric-version))"
fi
if command -v go >/dev/null; then
    (cd "$src" && GOCACHE="${GOCACHE:-$out/.gocache}" GO111MODULE=off \
        go build -o "$out/go-peer" peer.go)
    echo "built $out/go-peer ($(go version | cut -d' ' -f3))"
fi
