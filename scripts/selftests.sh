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
cmp -s "$list.new" "$list" && rm "$list.new" || mv "$list.new" "$list"
