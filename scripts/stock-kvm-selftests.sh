#!/usr/bin/env bash
# By hand (not a tier): the upstream KVM selftests on a STOCK v7.2 kernel,
# to record what they give without our patches, on the same machine and
# the same config (configs/, less the options only our overlay has).
#
#   scripts/stock-kvm-selftests.sh ARCH [build|boot]   ARCH = arm64 | riscv
#
# Both steps by default; "build" and "boot" do one.
#
# Builds v7.2 from ../shared/kernel unpatched into build/linux-stock,
# with an initramfs holding /init and the same upstream test binaries as
# the CI boot (scripts/kvm-selftests.sh), boots it as CI boots ours
# (arm64: TF-A with the test RMM; riscv: OpenSBI) and writes the results
# to tools/testing/selftests/kvm/upstream/ARCH.stock, which CI's boots
# compare against (scripts/run-qemu.py --stock).  Commit that file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

arch=${1:?ARCH}
step=${2:-all}
case "$arch" in arm64|riscv) ;; *) die "unknown ARCH $arch" ;; esac
case "$step" in all|build|boot) ;; *) die "unknown step $step" ;; esac
SRC=$BUILD/linux-stock obj=$BUILD/obj-stock-$arch
TARBALL=$CONFVM_SHARED/kernel/linux-source-7.2.tar.xz
logs=$BUILD/logs
mkdir -p "$logs"

build() {
if [ ! -f "$SRC/.confvm-stock" ]; then
    log "unpacking stock v7.2 into $SRC"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    (cd "$(dirname "$TARBALL")" && sha256sum -c --quiet SHA256SUMS) || die "sha256 mismatch for $TARBALL"
    tar -C "$SRC" --strip-components=1 -xf "$TARBALL"
    touch "$SRC/.confvm-stock"
fi

# Our /init and selftest binary (it runs the upstream tests), and the
# upstream tests as CI builds them.
case "$arch" in
    arm64) target=aarch64-unknown-linux-musl ;;
    riscv) target=riscv64gc-unknown-linux-gnu ;;
esac
(cd "$CONFVM_TOP/tools/testing/selftests/kvm/rust" &&
    cargo build --locked --release --target "$target" --target-dir "$BUILD/selftests-target" --bins) \
    >"$logs/stock-selftests-$arch.log" 2>&1 || die "selftests build failed: $logs/stock-selftests-$arch.log"
bin=$BUILD/selftests-target/$target/release
upstream=$(bash "$here/kvm-selftests.sh" "$arch" 2>>"$logs/stock-selftests-$arch.log") ||
    die "upstream KVM selftests build failed: $logs/stock-selftests-$arch.log"
list=$obj/initramfs.list
mkdir -p "$obj"
: > "$BUILD/empty"
{
    cat <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /bin 0755 0 0
dir /etc 0755 0 0
file /init $bin/init 0755 0 0
file /bin/kvm_selftests $bin/kvm_selftests 0755 0 0
file /etc/confvm-upstream-only $BUILD/empty 0644 0 0
file /etc/confvm-upstream-always $BUILD/empty 0644 0 0
LIST
    echo "$upstream"
} > "$list"

# The same fragment, less the overlay's own options (stock has no such
# symbols) and its KUnit suites.
grep -hv -e '^CONFIG_KVM_RME' -e '^CONFIG_KVM_COVE' \
    "$CONFVM_TOP/configs/common.config" "$CONFVM_TOP/configs/$arch.config" > "$obj/stock.fragment"
echo "CONFIG_INITRAMFS_SOURCE=\"$list\"" >> "$obj/stock.fragment"
kmake() {
    make -C "$SRC" O="$obj" ARCH="$arch" LLVM=-19 LIBCLANG_PATH=/usr/lib/llvm-19/lib -j"$(nproc)" "$@"
}
log "configuring and building stock v7.2 for $arch"
t0=$SECONDS
kmake KCONFIG_ALLCONFIG="$obj/stock.fragment" allnoconfig >/dev/null
kmake Image >"$logs/stock-kernel-$arch.log" 2>&1 || die "stock kernel build failed: $logs/stock-kernel-$arch.log"
log "stock $arch Image built in $((SECONDS - t0)) s"
}

boot() {
image=$obj/arch/$arch/boot/Image
stock=$CONFVM_TOP/tools/testing/selftests/kvm/upstream/$arch.stock
out=$logs/boot-stock-$arch.txt
if [ "$arch" = arm64 ]; then
    RME_RMM_IMAGE=test bash "$here/firmware.sh" arm64 "$image" >"$logs/stock-firmware.log" 2>&1 ||
        die "firmware build failed: $logs/stock-firmware.log"
    python3 "$here/run-qemu.py" arm64 --flash "$BUILD/flash-arm64.bin" \
        --log "$logs/console-stock-arm64.log" --record-stock "$stock" >"$out" 2>&1 || true
else
    python3 "$here/run-qemu.py" riscv --image "$image" \
        --log "$logs/console-stock-riscv.log" --record-stock "$stock" >"$out" 2>&1 || true
fi
grep -E '^(PASS|FAIL|SKIP)' "$out" | grep upstream || true
n=$(grep -vc '^#' "$stock" || true)
[ "$n" -gt 0 ] || die "no upstream results in $out"
log "stock v7.2 ($arch): $n upstream KVM selftests recorded in $stock"
}

case "$step" in
    build) build ;;
    boot) boot ;;
    all) build; boot ;;
esac
