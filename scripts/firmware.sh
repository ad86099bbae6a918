#!/usr/bin/env bash
# Firmware for the test boots.
#
#   scripts/firmware.sh arm64 IMAGE   TF-A 2.12.1 (Debian's trixie source
#       package, our patches in firmware/tf-a) with ENABLE_RME=1 and IMAGE
#       as BL33; writes build/flash-arm64.bin.  The RMM is TF-A's TRP unless
#       RME_RMM_IMAGE=<rmm.img> names a full RMM (e.g. a TF-RMM Release
#       build for qemu_virt_defcfg, built by hand outside this repo), or
#       RME_RMM_IMAGE=test, our test RMM (tools/testing/rmm), built here.
#       With RME_TFA_BL1=<bl1.bin> RME_TFA_FIP=<fip.bin> (a TF-A built by
#       hand outside this repo, e.g. TF-A 2.15 with RMM=<TF-RMM v0.9.0
#       rmm.img> for RMI 2.0), that firmware is used instead: IMAGE goes
#       into a copy of the FIP as BL33 with fiptool (built from Debian's
#       TF-A source), and nothing else is built.
#
# riscv64 boots on the OpenSBI that QEMU ships (-bios default).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

TFA_VERSION=2.12.1+dfsg-1
TFA=$BUILD/tfa-src/tfa

tfa_source() {
    local id
    id="$TFA_VERSION:$(cat "$CONFVM_TOP"/firmware/tf-a/*.patch | sha256sum | cut -d' ' -f1)"
    if [ -f "$TFA/.confvm-source" ] && [ "$(cat "$TFA/.confvm-source")" = "$id" ]; then
        return 0
    fi
    log "fetching TF-A $TFA_VERSION source package"
    # Unpacked files keep the tarball's old mtimes, so objects built from
    # an earlier source would look up to date: drop them with it.
    rm -rf "$BUILD/tfa-src" "$BUILD/tfa-trp" "$BUILD/tfa-rmm"
    mkdir -p "$BUILD/tfa-src"
    (cd "$BUILD/tfa-src" &&
        apt-get source --download-only "arm-trusted-firmware=$TFA_VERSION" >/dev/null 2>&1 ||
        apt-get source --download-only arm-trusted-firmware >/dev/null) ||
        die "cannot fetch the TF-A source package (is the trixie deb-src line there? run scripts/setup.sh)"
    (cd "$BUILD/tfa-src" && dpkg-source -x --no-check ./*.dsc tfa >/dev/null)
    for p in "$CONFVM_TOP"/firmware/tf-a/*.patch; do
        log "applying $(basename "$p") to TF-A"
        patch -d "$TFA" -p1 --forward --quiet < "$p"
    done
    echo "$id" > "$TFA/.confvm-source"
}

# A TF-A the user built (RME_TFA_BL1, RME_TFA_FIP), with IMAGE as BL33.
arm64_flash_given() {
    local image=$1 out=$BUILD/flash-arm64.bin fip=$BUILD/tfa-given-fip.bin fiptool
    [ -f "$RME_TFA_BL1" ] || die "RME_TFA_BL1=$RME_TFA_BL1 does not exist"
    [ -f "${RME_TFA_FIP:-}" ] || die "RME_TFA_FIP=${RME_TFA_FIP:-} does not exist (both are needed)"
    fiptool=$TFA/tools/fiptool/fiptool
    if [ ! -x "$fiptool" ]; then
        log "building fiptool from Debian's TF-A source"
        make -C "$TFA/tools/fiptool" >"$BUILD/fiptool.log" 2>&1 ||
            { tail -n 20 "$BUILD/fiptool.log"; die "fiptool build failed"; }
    fi
    cp "$RME_TFA_FIP" "$fip"
    log "putting the kernel into $(basename "$RME_TFA_FIP") as BL33"
    "$fiptool" update --nt-fw "$image" "$fip" >/dev/null
    local fip_size
    fip_size=$(stat -c %s "$fip")
    [ "$fip_size" -le $(( (64 << 20) - (256 << 10) )) ] ||
        die "the FIP ($fip_size bytes) does not fit the 64 MiB flash"
    rm -f "$out.tmp"
    dd if="$RME_TFA_BL1" of="$out.tmp" bs=4096 conv=notrunc status=none
    dd if="$fip" of="$out.tmp" bs=4096 seek=64 conv=notrunc status=none
    truncate -s 64M "$out.tmp"
    mv "$out.tmp" "$out"
    log "wrote $out (BL1 and FIP given: $RME_TFA_BL1, $RME_TFA_FIP)"
}

arm64_flash() {
    local image=$1 rmm=${RME_RMM_IMAGE:-} bdir kind out
    [ -f "$image" ] || die "no kernel image $image"
    image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
    tfa_source
    if [ -n "${RME_TFA_BL1:-}" ]; then
        arm64_flash_given "$image"
        return
    fi
    if [ "$rmm" = test ]; then
        # Our test RMM (tools/testing/rmm), built here.
        log "building the test RMM"
        (cd "$CONFVM_TOP" && cargo build --release --locked -q -p confvm-test-rmm --features firmware \
            --target aarch64-unknown-none-softfloat --bin test-rmm)
        llvm-objcopy-19 -O binary "$CONFVM_TOP/target/aarch64-unknown-none-softfloat/release/test-rmm" \
            "$BUILD/test-rmm.bin"
        rmm=$BUILD/test-rmm.bin
        kind=test-rmm
    elif [ -n "$rmm" ]; then
        [ -f "$rmm" ] || die "RME_RMM_IMAGE=$rmm does not exist"
        rmm=$(cd "$(dirname "$rmm")" && pwd)/$(basename "$rmm")
        kind=rmm
    else
        kind=trp
    fi
    bdir=$BUILD/tfa-$kind
    out=$BUILD/flash-arm64.bin
    # 'make fip' does not repack when only BL33 or RMM changes.
    rm -f "$bdir/qemu/release/fip.bin"
    log "building TF-A (RMM: $kind)"
    make -C "$TFA" -j"$(nproc)" BUILD_BASE="$bdir" CROSS_COMPILE=aarch64-linux-gnu- \
        PLAT=qemu ENABLE_RME=1 QEMU_USE_GIC_DRIVER=QEMU_GICV3 \
        BL33="$image" ARM_LINUX_KERNEL_AS_BL33=1 ${rmm:+RMM="$rmm"} \
        all fip >"$bdir.log" 2>&1 || { tail -n 30 "$bdir.log"; die "TF-A build failed"; }
    # The flash holds BL1 and, from 256 KiB on, the FIP (BL33 inside).
    local fip_size
    fip_size=$(stat -c %s "$bdir/qemu/release/fip.bin")
    [ "$fip_size" -le $(( (64 << 20) - (256 << 10) )) ] ||
        die "the FIP ($fip_size bytes, BL33 $(stat -c %s "$image")) does not fit the 64 MiB flash"
    rm -f "$out.tmp"
    dd if="$bdir/qemu/release/bl1.bin" of="$out.tmp" bs=4096 conv=notrunc status=none
    dd if="$bdir/qemu/release/fip.bin" of="$out.tmp" bs=4096 seek=64 conv=notrunc status=none
    truncate -s 64M "$out.tmp"
    mv "$out.tmp" "$out"
    echo "$kind" > "$out.rmm"
    log "flash image $out ($kind)"
}

case "${1:-}" in
    arm64) arm64_flash "${2:?IMAGE}" ;;
    source) tfa_source ;;
    *) die "usage: $0 arm64 IMAGE | source" ;;
esac
