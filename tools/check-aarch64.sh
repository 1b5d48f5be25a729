#!/bin/sh
# make check-aarch64: cross-build lwc for aarch64 (the AAPCS64 context switch) and
# run the substrate's unit tests under qemu-user.  Installs what it needs from
# Debian (the cross compiler, qemu-user, Check for arm64 through multiarch).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${LWC_AARCH64_BUILD:-$top/build-aarch64}
triplet=aarch64-linux-gnu

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user check:arm64; do
    installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

. "$top/tools/copy-tree.sh"
copy_tree "$top" "$build"
cd "$build"
autoreconf -fi >/dev/null
PKG_CONFIG_LIBDIR=/usr/lib/$triplet/pkgconfig ./configure --host=$triplet --enable-werror \
    --disable-shared >/dev/null
grep -q 'S\["CTX_ASM_AARCH64_TRUE"\]=""' config.status || { echo "check-aarch64: not the asm switch" >&2; exit 1; }
make -j"$(nproc)" >/dev/null
export LWC_TEST_LIGHT=1                 # emulated: the stress loops run small
# The programs run on the arm64 multiarch libraries (libc6:arm64 comes with
# check:arm64), so qemu takes the dynamic loader from / as well.  Taking it from
# /usr/$triplet (libc6-arm64-cross) pairs one build's ld.so with another's libc.so:
# their private interface differs, and the first pthread_create loops forever.
make -j"$(nproc)" check TESTS="tests/unit/ptm tests/unit/scont tests/unit/cap tests/unit/stack tests/generic/copy-rr tests/generic/copy-ws" \
    LOG_COMPILER="timeout 600 qemu-aarch64 -L /"
