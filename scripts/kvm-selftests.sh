#!/usr/bin/env bash
# Builds the kernel's own KVM selftests (tools/testing/selftests/kvm of the
# prepared v7.2 tree) that tools/testing/selftests/kvm/upstream/ARCH.list
# names, statically, with Debian's cross gcc, and prints the initramfs
# lines that put them and the list under /upstream (scripts/selftests.sh
# appends them).  /init runs them after our selftests
# (kvm_selftests --upstream).
#
#   scripts/kvm-selftests.sh ARCH      ARCH = arm64 | riscv
#
# KVM_SELFTESTS_LONG=1 (by hand) also runs the tests the list skips as
# long-running under TCG, each with a timeout of
# KVM_SELFTESTS_LONG_TIMEOUT seconds (default 1800); scripts/run-qemu.py
# then waits hours for the boot instead of minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

arch=${1:?ARCH}
case "$arch" in
    arm64) cross=aarch64-linux-gnu- ;;
    riscv) cross=riscv64-linux-gnu- ;;
    *) die "unknown ARCH $arch" ;;
esac
src=$BUILD/linux
list=$CONFVM_TOP/tools/testing/selftests/kvm/upstream/$arch.list
[ -f "$list" ] || die "no $list"
bash "$here/kernel.sh" prepare >&2
hdr=$BUILD/uapi-$arch out=$BUILD/kvm-upstream-$arch root=$BUILD/kvm-upstream-$arch-root
if [ -n "${KVM_SELFTESTS_LONG:-}" ]; then
    # The long-running skips become runs with the long timeout.
    long=$BUILD/kvm-upstream-$arch-long.list
    sed -E "s|^skip[[:space:]]+([^[:space:]]+)[[:space:]]+long-running.*|\1 ${KVM_SELFTESTS_LONG_TIMEOUT:-1800}|" \
        "$list" > "$long"
    log "KVM_SELFTESTS_LONG: $(grep -c long-running "$list") long-running upstream tests run too"
    list=$long
fi
# The uAPI headers of this tree (make headers: no rsync needed).
make -C "$src" O="$hdr" ARCH="$arch" -s headers >&2
# The tests the list runs; its "skip" lines are reported, not built.
mapfile -t tests < <(sed -e 's/#.*//' "$list" | awk 'NF && $1 != "skip" { print $1 }')
[ "${#tests[@]}" -gt 0 ] || die "$list names no test to run"
goals=()
for t in "${tests[@]}"; do goals+=("$out/$t"); done
log "building ${#tests[@]} upstream KVM selftests for $arch"
make -s -C "$src/tools/testing/selftests/kvm" ARCH="$arch" CROSS_COMPILE="$cross" \
    OUTPUT="$out" KHDR_INCLUDES="-isystem $hdr/usr/include" USERLDFLAGS=-static \
    -j"$(nproc)" "${goals[@]}" >&2
rm -rf "$root"
mkdir -p "$root"
echo "dir /upstream 0755 0 0"
declare -A dirs=()
for t in "${tests[@]}"; do
    d=$(dirname "$t")
    if [ "$d" != . ] && [ -z "${dirs[$d]:-}" ]; then
        dirs[$d]=1
        mkdir -p "$root/$d"
        echo "dir /upstream/$d 0755 0 0"
    fi
    "${cross}strip" -o "$root/$t" "$out/$t"
    echo "file /upstream/$t $root/$t 0755 0 0"
done
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" > "$root/list"
echo "file /upstream/list $root/list 0644 0 0"
