# Sourced by check-aarch64.sh and check-ucontext.sh: copy_tree TOP BUILD puts a
# clean copy of the sources in BUILD.  A copy, not a VPATH build: the tree
# itself may be configured for the host, and automake then refuses a second
# configuration beside it.
copy_tree() {
    rm -rf "$2"
    mkdir -p "$2"
    (cd "$1" && tar -cf - configure.ac Makefile.am bootstrap lwc*.pc.in README.md ChangeLog \
        DEVELOPERS.md m4/.keep include substrate ptm schedulers tests tools examples doc) |
        (cd "$2" && tar -xf -)
    (cd "$2" && find . -name '*.o' -o -name '*.lo' -o -name '*.la' -o -name '.deps' -o \
        -name '.libs' -o -name '.dirstamp' -o -name '*.log' -o -name '*.trs' | xargs rm -rf)
    # programs built in the tree (make would take them as up to date)
    (cd "$2" && find . -type f -perm -u+x | while read -r f; do
        if [ "$(head -c 4 "$f" | tail -c 3)" = ELF ]; then rm -f "$f"; fi
    done)
}
