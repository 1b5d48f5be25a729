#!/bin/sh
# Make a man page, section 3, for every public function and type, from the
# public headers: the headers are the reference, so the pages cannot drift
# from them.  `make` runs it (man/); `make install` installs the pages;
# tests/man.sh checks that every exported name has one.
#
#   sh tools/man.sh INCLUDE_DIR OUT_DIR VERSION
#
# A page holds the declaration and the comment of its group (declarations
# written together, with no blank line between, share the comment above
# them), any comment at the end of its own lines, and the overview at the
# top of its header.
set -eu
inc=$1
out=$2
version=${3:-}
mkdir -p "$out"
rm -f "$out"/*.3

for h in "$inc"/lwc/*.h; do
    header=lwc/$(basename "$h")
    awk -v header="$header" -v out="$out" -v version="$version" '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    # roff: a backslash is \e, and a line may not start with . or an apostrophe.
    function esc(s) {
        gsub(/\\/, "\\e", s)
        if (s ~ /^[.\047]/) s = "\\&" s
        return s
    }
    # The text of a comment block, stars and markers gone, one line each;
    # lines indented four spaces (code) are kept as they are.
    function comment_text(c,    n, i, lines, l, r, code) {
        n = split(c, lines, "\n"); r = ""; code = 0
        for (i = 1; i <= n; i++) {
            l = lines[i]
            sub(/^[ \t]*\/\*+ ?/, "", l); sub(/[ \t]*\*+\/[ \t]*$/, "", l)
            sub(/^[ \t]*\*( |$)/, "", l)
            if (l ~ /^    / && !code) { r = r ".nf\n"; code = 1 }
            else if (l !~ /^    / && l !~ /^[ \t]*$/ && code) { r = r ".fi\n"; code = 0 }
            r = r esc(l) "\n"
        }
        if (code) r = r ".fi\n"
        sub(/^\n+/, "", r); sub(/\n+$/, "", r)
        return r
    }
    # A paragraph break for each blank line, as roff wants it.
    function paragraphs(t) { gsub(/\n[ \t]*\n/, "\n.PP\n", t); return t }
    # The first sentence, for NAME.
    function summary(t,    s) {
        s = t; gsub(/\n\.(nf|fi|PP)\n/, " ", s); gsub(/\n/, " ", s); s = trim(s)
        sub(/^lwc: /, "", s)
        sub(/^-+ [^-]*-+ */, "", s)             # a section title: "---- Stacks ----"
        if (match(s, /[.:;]( |$)/)) s = substr(s, 1, RSTART - 1)
        return s
    }
    function name_of(d,    s) {
        s = d
        if (s ~ /^typedef/) {
            if (match(s, /\(\*[A-Za-z_0-9]+\)/)) return substr(s, RSTART + 2, RLENGTH - 3)
            if (match(s, /[A-Za-z_0-9]+[ \t]*;[ \t]*$/)) { s = substr(s, RSTART, RLENGTH); sub(/[ \t]*;.*/, "", s) }
            return s
        }
        sub(/\(.*/, "", s); sub(/.*[^A-Za-z_0-9]/, "", s)
        return s
    }
    function flush_group(    i, n, page, f, desc, see, j) {
        if (ngroup == 0) return
        desc = comment_text(group_comment)
        for (i = 1; i <= ngroup; i++) {
            n = gname[i]
            if (n == "" || n in done) continue
            done[n] = 1
            f = out "/" n ".3"
            print ".TH " toupper(n) " 3 \"\" \"lwc " version "\" \"lwc manual\"" > f
            print ".SH NAME" > f
            s = summary(desc != "" ? desc : (gtrail[i] != "" ? gtrail[i] : overview))
            print n " \\- " (s != "" ? s : "see " header) > f
            print ".SH SYNOPSIS\n.nf\n.B #include <" header ">\n.PP" > f
            for (j = 1; j <= ngroup; j++) print esc(gdecl[j]) > f
            print ".fi" > f
            print ".SH DESCRIPTION" > f
            if (desc != "") print paragraphs(desc) > f
            if (gtrail[i] != "") print (desc != "" ? ".PP\n" : "") gtrail[i] > f
            if (desc == "" && gtrail[i] == "") print "Declared in <" header ">; see below." > f
            print ".SS <" header ">" > f
            print paragraphs(comment_text(overview_raw)) > f
            see = ""
            for (j = 1; j <= ngroup; j++)
                if (gname[j] != n && gname[j] != "") see = see (see ? ",\n" : "") ".BR " gname[j] " (3)"
            print ".SH SEE ALSO" > f
            print (see != "" ? see ",\n" : "") ".BR lwc (7)" > f
            close(f)
        }
        ngroup = 0
    }
    BEGIN { ngroup = 0; incomment = 0; indecl = 0; overview = ""; pending = "" }
    {
        line = $0
        if (incomment) {
            cbuf = cbuf "\n" line
            if (line ~ /\*\//) {
                incomment = 0
                if (overview_raw == "") { overview_raw = cbuf; overview = comment_text(cbuf) }
                else { flush_group(); pending = cbuf }
            }
            next
        }
        if (indecl) {
            dbuf = dbuf "\n" line
            if ((!braced && line ~ /;/) || (braced && line ~ /^}[^;]*;/)) { indecl = 0; add_decl() }
            next
        }
        if (line ~ /^[ \t]*\/\*/ && line !~ /^[ \t]*\/\*.*\*\/.*[^ \t]/) {
            cbuf = line
            if (line ~ /\*\//) {
                if (overview_raw == "") { overview_raw = cbuf; overview = comment_text(cbuf) }
                else { flush_group(); pending = cbuf }
            } else incomment = 1
            next
        }
        if (line ~ /^[ \t]*$/) { flush_group(); pending = ""; next }
        if (line ~ /^LWC_API /) {
            dbuf = line; kind = "fn"; braced = 0
            if (line ~ /;/) add_decl(); else indecl = 1
            next
        }
        if (line ~ /^typedef /) {
            dbuf = line; kind = "ty"; braced = line ~ /{[^}]*$/
            if (line ~ /;/ && !braced) add_decl(); else indecl = 1
            next
        }
    }
    function add_decl(    d, trail, t) {
        d = dbuf; trail = ""
        # A comment at the end of the declaration is its own note.
        if (kind == "fn" || d !~ /\n/) {
            if (match(d, /\/\*.*\*\/[ \t]*$/)) { trail = substr(d, RSTART, RLENGTH); d = substr(d, 1, RSTART - 1) }
        }
        sub(/^LWC_API /, "", d)
        gsub(/[ \t]+\n/, "\n", d); d = trim(d)
        if (ngroup == 0) group_comment = pending
        pending = ""
        ngroup++
        gdecl[ngroup] = d
        gname[ngroup] = kind == "ty" ? name_of_type(d) : name_of(d)
        gtrail[ngroup] = trail != "" ? comment_text(trail) : ""
    }
    function name_of_type(d,    s) {
        if (d ~ /\n}/) { s = d; sub(/.*\n}[ \t]*/, "", s); sub(/[ \t]*;.*/, "", s); return s }
        return name_of(d)
    }
    END { flush_group() }
    ' "$h"
done

# lwc(7): the headers, and where to start.
{
    echo '.TH LWC 7 "" "lwc '"$version"'" "lwc manual"'
    echo '.SH NAME'
    echo 'lwc \- a C runtime for user-level schedulers'
    echo '.SH DESCRIPTION'
    echo 'One page per public function and type, in section 3, made from the headers.'
    echo 'The headers, and the first line of each:'
    echo '.PP'
    echo '.nf'
    for h in "$inc"/lwc/*.h; do
        first=$(sed -n '1s|^/\* *||p' "$h" | sed 's|\*/$||')
        echo "<lwc/$(basename "$h")>: $first" | sed 's/\\/\\e/g'
    done
    echo '.fi'
    echo '.PP'
    echo 'README.md, doc/design.md and doc/scheduler-guide.md in the source'
    echo 'distribution are the guide and the design.'
} > "$out/lwc.7"
