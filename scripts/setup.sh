#!/usr/bin/env bash
# Installs everything the build and the tests need, from Debian's archive,
# bookworm-backports, crates.io and rustup only.  Idempotent: a second run
# checks and returns in seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

apt_list=/etc/apt/sources.list.d/confvm.list
want_list='# Added by confvm scripts/setup.sh.
# bookworm-backports: QEMU 10 with FEAT_RME emulation (binary suite, safe).
deb http://deb.debian.org/debian bookworm-backports main
# trixie: source only, for the TF-A 2.12.1 source package.  Never a binary suite.
deb-src http://deb.debian.org/debian trixie main'

pkgs=(clang-19 lld-19 llvm-19 libclang-19-dev make patch bc flex bison libelf-dev
      libssl-dev cpio xz-utils python3 dpkg-dev device-tree-compiler
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      gcc-riscv64-linux-gnu libc6-dev-riscv64-cross ca-certificates)
bpo_pkgs=(qemu-system-arm qemu-system-misc)

need_apt=0
if [ ! -f "$apt_list" ] || [ "$(cat "$apt_list")" != "$want_list" ]; then
    printf '%s\n' "$want_list" | $SUDO tee "$apt_list" >/dev/null
    need_apt=1
fi
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_apt=1
done
qemu_ok=0
if command -v qemu-system-aarch64 >/dev/null && command -v qemu-system-riscv64 >/dev/null; then
    v=$(qemu-system-aarch64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
    [ "${v:-0}" -ge 10 ] && qemu_ok=1
fi
if [ "$need_apt" = 1 ] || [ "$qemu_ok" = 0 ]; then
    log "installing Debian packages"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends -t bookworm "${pkgs[@]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo_pkgs[@]}"
fi

# The arm64 host's shell: Debian's busybox-static for arm64, unpacked
# under build/ (never installed: the machine's own busybox stays).
bb_dir=$BUILD/busybox-arm64
if [ ! -x "$bb_dir/bin/busybox" ]; then
    log "fetching Debian's busybox-static:arm64"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $SUDO dpkg --add-architecture arm64
        $SUDO apt-get update -q
    fi
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q busybox-static:arm64 >/dev/null 2>&1) ||
        { $SUDO apt-get update -q && (cd "$tmp" && apt-get download -q busybox-static:arm64); }
    rm -rf "$bb_dir.new" && mkdir -p "$bb_dir.new/bin"
    dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x"
    found=$(find "$tmp/x" -name busybox -type f | head -n1)
    [ -n "$found" ] || die "busybox-static:arm64 has no busybox binary"
    install -m 0755 "$found" "$bb_dir.new/bin/busybox"
    rm -rf "$tmp" "$bb_dir" && mv "$bb_dir.new" "$bb_dir"
fi

# Rust: the kernel needs the core sources; the selftests are static
# userspace binaries for both guests' architectures.
if ! command -v rustup >/dev/null; then
    die "rustup not found: install a Rust toolchain with rustup first"
fi
sysroot=$(rustc --print sysroot)
if [ ! -f "$sysroot/lib/rustlib/src/rust/library/core/src/lib.rs" ]; then
    log "adding rust-src"
    rustup component add rust-src || true
fi
if [ ! -f "$sysroot/lib/rustlib/src/rust/library/core/src/lib.rs" ]; then
    log "rust-src unavailable from rustup; falling back to Debian's rust-web-src"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q rust-web-src
fi
installed_targets=$(rustup target list --installed)
for t in aarch64-unknown-linux-musl riscv64gc-unknown-linux-gnu aarch64-unknown-none-softfloat; do
    grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done

# bindgen >= 0.71.1 for Linux 7.2.
bg_ok=0
if command -v bindgen >/dev/null; then
    bv=$(bindgen --version | awk '{print $2}')
    [ "$(printf '%s\n0.71.1\n' "$bv" | sort -V | head -n1)" = 0.71.1 ] && bg_ok=1
fi
if [ "$bg_ok" = 0 ]; then
    log "installing bindgen-cli 0.72.1"
    LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install --locked bindgen-cli@0.72.1
fi
log "toolchain ready: $(clang-19 --version | head -n1); $(rustc --version); $(bindgen --version); $(qemu-system-aarch64 --version | head -n1)"
