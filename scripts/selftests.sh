#!/usr/bin/env bash
# Builds the Rust KVM selftests for ARCH (arm64 | riscv) as static binaries
# and writes build/initramfs-ARCH.list for CONFIG_INITRAMFS_SOURCE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

arch=${1:?ARCH}
case "$arch" in
    arm64) target=aarch64-unknown-linux-musl ;;
    riscv) target=riscv64gc-unknown-linux-gnu ;;
    *) die "unknown ARCH $arch" ;;
esac
dir=$CONFVM_TOP/tools/testing/selftests/kvm/rust
tdir=$BUILD/selftests-target
log "building selftests for $target"
(cd "$dir" && cargo build --locked --release --target "$target" --target-dir "$tdir" --bins)
bin=$tdir/$target/release
list=$BUILD/initramfs-$arch.list
cat > "$list.new" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /bin 0755 0 0
file /init $bin/init 0755 0 0
file /bin/kvm_selftests $bin/kvm_selftests 0755 0 0
LIST
if [ "$arch" = arm64 ]; then
    # The Linux realm guest of the realm_linux_guest selftest: the same
    # kernel, built first with the small initramfs below (kernel.sh), and
    # its device tree.  Both go into the host's initramfs under /realm.
    dtc -q -I dts -O dtb -o "$BUILD/realm-guest.dtb" "$dir/realm-guest.dts"
    cat > "$BUILD/initramfs-arm64-guest.list.new" <<GLIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
file /init $bin/init 0755 0 0
GLIST
    g=$BUILD/initramfs-arm64-guest.list
    cmp -s "$g.new" "$g" && rm "$g.new" || mv "$g.new" "$g"
    cat >> "$list.new" <<LIST
dir /realm 0755 0 0
file /realm/guest.dtb $BUILD/realm-guest.dtb 0644 0 0
file /realm/Image $BUILD/realm-guest-Image 0644 0 0
LIST
fi
cmp -s "$list.new" "$list" && rm "$list.new" || mv "$list.new" "$list"
