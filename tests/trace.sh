#!/bin/sh
# A trace of a small known program (tests/trace/target.c) is valid JSON, each
# capability's runs are in order, every arrow pairs up (tools/lwc-trace
# check), and the events the program made are there: ping and pong take
# turns on capability 0, the span, the mark, the foreign call, the detector
# pass, and an arrow into each of their runs.
set -u
out=$(mktemp) || exit 1
json="$out.json"
trap 'rm -f "$out" "$json" "$out.runs"' EXIT
fail() { echo "trace: $1"; exit 1; }

LWC_TRACE="$json" $MEMCHECK ./tests/trace/target > "$out" 2>&1 || { cat "$out"; fail "the target failed"; }
grep -q 'trace target: done' "$out" || fail "the target did not finish"
./tools/lwc-trace check "$json" || fail "lwc-trace check"
./tools/lwc-trace runs "$json" > "$out.runs"
# On capability 0: ping, pong, ping, pong ... with the MVars between them.
turns=$(grep '^0 ' "$out.runs" | sed -n 's/.*"\(p[io]ng\)".*/\1/p' | uniq | wc -l)
[ "$turns" -ge 20 ] || { cat "$out.runs"; fail "ping and pong took $turns turns, not 20 or more"; }
grep -q '"ping": blocked on a data structure' "$out.runs" || fail "ping never blocked"
grep -q '"pong": completed' "$out.runs" || fail "pong never completed"
grep -q '"ph":"b".*"cat":"span","id":"0x2","name":"exchange"' "$json" || fail "no span begins"
grep -q '"ph":"e".*"cat":"span","id":"0x2"' "$json" || fail "no span ends"
grep -q '"ph":"i".*"name":"halfway"' "$json" || fail "no mark"
grep -q '"cat":"call","name":"foreign call of SCont 1"' "$json" || fail "no foreign call"
grep -q '"cat":"detector","name":"detector pass: ' "$json" || fail "no detector pass"
grep -q '"name":"capability 0"' "$json" || fail "no track for capability 0"
[ "$(grep -c '"ph":"f"' "$json")" -ge 40 ] || fail "fewer than 40 arrows"
# Each of ping's runs after its first was a wake by pong, and said so.
grep -q '"name":"SCont [0-9]* \\"ping\\"".*"woken_by":"SCont [0-9]* \\"pong\\""' "$json" ||
    fail "no run of ping woken by pong"
[ "$(grep -c '"first_run":true' "$json")" -eq 3 ] || fail "not three first runs"
./tools/lwc-trace summary "$json" | grep -q '^SCont [0-9]* "ping" ' || fail "summary has no ping"

# The demo on ws with two capabilities (steals, idle capabilities, a
# thread per fib call): a valid trace whose tracks both ran threads.
LWC_TRACE="$json" LWC_CAPS=2 ./examples/demo-ws > "$out" 2>&1 || fail "the demo failed"
./tools/lwc-trace check "$json" || fail "lwc-trace check of the demo"
./tools/lwc-trace summary "$json" > "$out"
grep -q '^0 .*[0-9]' "$out" && grep -q '^1 .*[0-9]' "$out" || { cat "$out"; fail "not both capabilities"; }
exit 0
