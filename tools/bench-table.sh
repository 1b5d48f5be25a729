#!/bin/sh
# The scheduler benchmarks as one table: a row per figure, a column per
# configuration (rr on 1 capability, ws on 1 and on 2, the loop scheduler's
# lwc_main on its host's thread).  Each figure runs in a
# process of its own, so one that fails leaves its cell "failed" and the rest
# still run.  The raw BENCH lines go to stdout as they come, for machines.
#
# usage: tools/bench-table.sh [--quick] [figure...]
#   --quick   a tenth of each size, one run (./bootstrap demo)
#   figure    yield spawn ring pingpong skynet fib (default: all)
dir=$(dirname "$0")
quick=
if [ "$1" = --quick ]; then quick=--quick; shift; fi
figures=${*:-yield spawn ring pingpong skynet fib}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT INT TERM
for fig in $figures; do
    for cfg in rr:1 ws:1 ws:2 loop:1; do
        sched=${cfg%:*} caps=${cfg#*:}
        printf '  running %-8s on %s, %s cap%s\n' "$fig" "$sched" "$caps" \
            "$( [ "$caps" = 1 ] || echo s)" >&2
        if ! LWC_CAPS=$caps "$dir/sched-bench-$sched" $quick "$fig" >"$raw.one" 2>"$raw.err"; then
            echo "FAILED $fig $sched $caps $(tail -n 1 "$raw.err")" >>"$raw"
        fi
        grep '^BENCH ' "$raw.one" | tee -a "$raw"
    done
done
rm -f "$raw.one" "$raw.err"
echo
awk '
function cell(v, u) { return u == "s" ? sprintf("%.3f s", v) : u == "x" ? sprintf("%.1fx", v) : sprintf("%.0f ns", v) }
/^BENCH/ {
    line = substr($0, 7)
    match(line, /"name":"[^"]*"/); name = substr(line, RSTART + 8, RLENGTH - 9)
    match(line, /"target":"[^"]*"/); target = substr(line, RSTART + 10, RLENGTH - 11)
    match(line, /"(ns|s|x)":[0-9.]+/); kv = substr(line, RSTART + 1, RLENGTH - 1)
    split(kv, p, "\":"); unit = p[1]; value = p[2]
    n = split(name, parts, "_"); cfg = parts[n - 1] "_" parts[n]
    fig = parts[1]; for (i = 2; i <= n - 2; i++) fig = fig "_" parts[i]
    if (!(fig in order)) { order[fig] = ++nfig; figs[nfig] = fig }
    val[fig, cfg] = cell(value, unit); if (target != "") tgt[fig] = target
}
END {
    printf "%-22s %12s %12s %12s %12s   %s\n", "figure", "rr 1 cap", "ws 1 cap", "ws 2 caps", "loop", "target"
    split("rr_1cap ws_1cap ws_2cap loop_1cap", cfgs, " ")
    for (k = 1; k <= nfig; k++) {
        f = figs[k]
        printf "%-22s", f
        for (c = 1; c <= 4; c++)
            printf " %12s", val[f, cfgs[c]] == "" ? "-" : val[f, cfgs[c]]
        printf "   %s\n", tgt[f]
    }
}' "$raw" | sed 's/^/  /'
grep '^FAILED' "$raw" | sed 's/^FAILED \([^ ]*\) \([^ ]*\) \([^ ]*\) /  \1 failed on \2, \3 cap(s): /'
