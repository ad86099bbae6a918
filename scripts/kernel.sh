#!/usr/bin/env bash
# Prepares a Linux v7.2 source tree with the overlay and builds Image.
#
#   scripts/kernel.sh prepare          unpack (once), overlay, apply patches
#   scripts/kernel.sh build ARCH       ARCH = arm64 | riscv; needs the
#                                      initramfs list from selftests.sh
#
# KERNEL_SRC=<v7.2 tree> uses that tree instead of the tarball in
# ../shared/kernel.  Objects go to build/obj-ARCH, so rebuilds are
# incremental: the overlay copies only files whose contents changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

SRC=$BUILD/linux
TARBALL=$CONFVM_SHARED/kernel/linux-source-7.2.tar.xz

# Files and directories of the repo that land in the kernel tree.
overlay_paths=(rust/cvm_fw rust/kvm_rme rust/kvm_cove rust/mem_encrypt Documentation)
patch_sum() { cat "$CONFVM_TOP"/patches/*.patch | sha256sum | cut -d' ' -f1; }

unpack() {
    local want_id
    if [ -n "${KERNEL_SRC:-}" ]; then
        [ -f "$KERNEL_SRC/Makefile" ] || die "KERNEL_SRC=$KERNEL_SRC is not a kernel tree"
        want_id="dir:$(cd "$KERNEL_SRC" && pwd):$(patch_sum)"
    else
        want_id="tar:$(patch_sum)"
    fi
    if [ -f "$SRC/.confvm-source" ] && [ "$(cat "$SRC/.confvm-source")" = "$want_id" ]; then
        return 0
    fi
    log "unpacking kernel source into $SRC"
    # Unpacked files keep the tarball's mtimes, older than the objects in
    # build/obj-*: files an earlier patch set changed must look new, or a
    # dropped patch would leave its objects in place.
    local stale=""
    [ -f "$SRC/.confvm-patched" ] && stale=$(cat "$SRC/.confvm-patched")
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    if [ -n "${KERNEL_SRC:-}" ]; then
        cp -a "$KERNEL_SRC/." "$SRC.tmp/"
    else
        [ -f "$TARBALL" ] || die "missing $TARBALL"
        (cd "$(dirname "$TARBALL")" && sha256sum -c --quiet SHA256SUMS) ||
            die "sha256 mismatch for $TARBALL"
        tar -C "$SRC.tmp" --strip-components=1 -xf "$TARBALL"
    fi
    grep -q '^PATCHLEVEL = 2$' "$SRC.tmp/Makefile" && grep -q '^VERSION = 7$' "$SRC.tmp/Makefile" ||
        die "kernel source is not v7.2"
    for p in "$CONFVM_TOP"/patches/*.patch; do
        log "applying $(basename "$p")"
        patch -d "$SRC.tmp" -p1 --forward --quiet < "$p"
    done
    sed -n 's|^+++ b/||p' "$CONFVM_TOP"/patches/*.patch | sort -u > "$SRC.tmp/.confvm-patched"
    local f
    for f in $stale; do
        [ -e "$SRC.tmp/$f" ] && touch "$SRC.tmp/$f"
    done
    echo "$want_id" > "$SRC.tmp/.confvm-source"
    mv "$SRC.tmp" "$SRC"
}

# Copies $1 (relative to the repo) to the same place in the kernel tree,
# touching only files whose contents differ.
sync_path() {
    local rel=$1 f
    [ -e "$CONFVM_TOP/$rel" ] || return 0
    while IFS= read -r -d '' f; do
        f=${f#"$CONFVM_TOP"/}
        case "$f" in */target/*|*/Cargo.toml|*/Cargo.lock|*/lib.rs) continue ;; esac
        if ! cmp -s "$CONFVM_TOP/$f" "$SRC/$f"; then
            mkdir -p "$(dirname "$SRC/$f")"
            cp "$CONFVM_TOP/$f" "$SRC/$f"
        fi
    done < <(find "$CONFVM_TOP/$rel" -type f -print0)
}

overlay() {
    for p in "${overlay_paths[@]}"; do sync_path "$p"; done
    cmp -s "$CONFVM_TOP/Kbuild" "$SRC/Kbuild.confvm" || cp "$CONFVM_TOP/Kbuild" "$SRC/Kbuild.confvm"
    cmp -s "$CONFVM_TOP/Kconfig" "$SRC/Kconfig.confvm" || cp "$CONFVM_TOP/Kconfig" "$SRC/Kconfig.confvm"
}

prepare() { unpack; overlay; }

kmake() {
    local arch=$1; shift
    make -C "$SRC" O="$BUILD/obj-$arch" ARCH="$arch" LLVM=-19 \
        LIBCLANG_PATH=/usr/lib/llvm-19/lib -j"$(nproc)" "$@"
}

configure() {
    local arch=$1 obj=$BUILD/obj-$1 frag initramfs
    initramfs=$BUILD/initramfs-$arch.list
    [ -f "$initramfs" ] || die "no $initramfs: run scripts/selftests.sh first"
    mkdir -p "$obj"
    frag=$obj/confvm.fragment
    { cat "$CONFVM_TOP/configs/common.config" "$CONFVM_TOP/configs/$arch.config"
      echo "CONFIG_INITRAMFS_SOURCE=\"$initramfs\""; } > "$frag.new"
    if [ -f "$obj/.config" ] && cmp -s "$frag.new" "$frag" && [ "$obj/.config" -nt "$SRC/Kconfig.confvm" ]; then
        rm "$frag.new"; return 0
    fi
    mv "$frag.new" "$frag"
    log "configuring $arch"
    kmake "$arch" KCONFIG_ALLCONFIG="$frag" allnoconfig >/dev/null
    # Every option the fragment sets must have survived dependency checks.
    local missing=0 line
    while IFS= read -r line; do
        case "$line" in CONFIG_*=n|CONFIG_NR_CPUS=*|CONFIG_CMDLINE=*|CONFIG_INITRAMFS_SOURCE=*|'#'*|'') continue ;; esac
        grep -qxF "$line" "$obj/.config" || { log "config option lost: $line"; missing=1; }
    done < "$frag"
    if [ "$missing" = 1 ]; then
        rm -f "$obj/.config"
        die "kernel config for $arch is incomplete"
    fi
}

build() {
    local arch=$1
    case "$arch" in arm64|riscv) ;; *) die "unknown ARCH $arch" ;; esac
    prepare
    configure "$arch"
    local t0=$SECONDS list=$BUILD/initramfs-$arch.list guest=$BUILD/initramfs-$arch-guest.list
    if [ -f "$guest" ]; then
        # Stage 1: the same kernel with the guest's initramfs, kept as the
        # Linux realm (arm64) or TVM (riscv) guest that stage 2 (the host)
        # carries in its own.
        local gimg=$BUILD/realm-guest-Image
        [ "$arch" = riscv ] && gimg=$BUILD/tvm-guest-Image
        log "building $arch Image for the confidential guest"
        cp "$list" "$list.host"
        cp "$guest" "$list"
        kmake "$arch" Image || { mv "$list.host" "$list"; touch "$list"; return 1; }
        # Restored, and newer than the initramfs just built from the other
        # list, so that make rebuilds it (the check is by time).
        mv "$list.host" "$list"
        touch "$list"
        cp "$BUILD/obj-$arch/arch/$arch/boot/Image" "$gimg"
    fi
    log "building $arch Image"
    kmake "$arch" Image
    log "$arch Image built in $((SECONDS - t0)) s"
}

case "${1:-}" in
    prepare) prepare ;;
    build) build "${2:?ARCH}" ;;
    make) shift; a=${1:?ARCH}; shift; prepare; kmake "$a" "$@" ;;
    *) die "usage: $0 prepare | build ARCH | make ARCH TARGET..." ;;
esac
