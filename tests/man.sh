#!/bin/sh
# Every name the shared libraries export has a man page (made by tools/man.sh
# from the headers), with a summary; and the pages render without a warning
# where man is installed.
set -u
[ -d man ] || { echo "man: no man/ (make builds it)"; exit 1; }
libs=$(ls .libs/liblwc*.so 2>/dev/null)
[ -n "$libs" ] || { echo "man: no shared libraries to list names from"; exit 77; }
missing=0
names=$(for l in $libs; do nm -D --defined-only "$l"; done | awk '$2 == "T" { print $3 }' | sort -u)
for n in $names; do
    if [ ! -s "man/$n.3" ]; then
        echo "man: $n is exported and has no page"
        missing=$((missing + 1))
    elif ! sed -n '/^\.SH NAME/{n;p}' "man/$n.3" | grep -q "^$n \\\\- ."; then
        echo "man: $n's page has no summary"
        missing=$((missing + 1))
    fi
done
[ "$missing" -eq 0 ] || exit 1
echo "man: $(echo "$names" | wc -l) exported names, each with a page ($(ls man/*.3 | wc -l) pages)"
if command -v man >/dev/null && man --help 2>&1 | grep -q -- '--local-file'; then
    for p in man/lwc_switch.3 man/lwc_kit_spawn.3 man/lwc_config_t.3 man/lwc.7; do
        warn=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
        [ -z "$warn" ] || { echo "man: $p: $warn"; exit 1; }
        MANWIDTH=80 man -l "$p" 2>/dev/null | grep -q 'SYNOPSIS\|DESCRIPTION' ||
            { echo "man: $p does not render"; exit 1; }
    done
fi
exit 0
