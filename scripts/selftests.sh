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
# The confidential guest's initramfs (the realm guest on arm64, the TVM
# guest on riscv): only /init, which finds no selftests and reports
# userspace.  kernel.sh builds the guest kernel with it first.
guest_list() {
    local g=$BUILD/initramfs-$arch-guest.list
    cat > "$g.new" <<GLIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
file /init $bin/init 0755 0 0
GLIST
    cmp -s "$g.new" "$g" && rm "$g.new" || mv "$g.new" "$g"
}
if [ "$arch" = arm64 ]; then
    # The Linux realm guest of the realm_linux_guest selftest: the same
    # kernel, built first with the small initramfs below (kernel.sh), and
    # its device tree.  Both go into the host's initramfs under /realm.
    dtc -q -I dts -O dtb -o "$BUILD/realm-guest.dtb" "$dir/realm-guest.dts"
    # The same machine with "quiet swiotlb=1024" (scripts/bench.sh).
    sed 's/\(bootargs = "[^"]*\)"/\1 quiet swiotlb=1024"/' "$dir/realm-guest.dts" |
        dtc -q -I dts -O dtb -o "$BUILD/realm-guest-quiet.dtb" -
    guest_list
    # A shell for starting VMMs by hand (scripts/shell.sh): Debian's
    # busybox-static (setup.sh unpacks it), sh and the applets on PATH.
    bb=$BUILD/busybox-arm64/bin/busybox
    [ -x "$bb" ] || die "no $bb: run scripts/setup.sh"
    cat >> "$list.new" <<LIST
dir /realm 0755 0 0
file /realm/guest.dtb $BUILD/realm-guest.dtb 0644 0 0
file /realm/guest-quiet.dtb $BUILD/realm-guest-quiet.dtb 0644 0 0
file /realm/Image $BUILD/realm-guest-Image 0644 0 0
file /bin/busybox $bb 0755 0 0
slink /bin/sh busybox 0777 0 0
dir /tmp 01777 0 0
dir /root 0700 0 0
dir /etc 0755 0 0
LIST
    # HOST_SHELL=1: /init starts the shell instead of the selftests.
    if [ -n "${HOST_SHELL:-}" ]; then
        echo "file /etc/confvm-shell $BUILD/empty 0644 0 0" >> "$list.new"
        : > "$BUILD/empty"
    fi
    # HOST_KUNIT_ONLY=1: /init runs no selftests (scripts/test.sh's boot
    # on the test RMM, where KUnit is the test).
    if [ -n "${HOST_KUNIT_ONLY:-}" ]; then
        : > "$BUILD/empty"
        echo "file /etc/confvm-kunit-only $BUILD/empty 0644 0 0" >> "$list.new"
    fi
    # HOST_BENCH="realm-boot 3": /init runs that benchmark instead.
    if [ -n "${HOST_BENCH:-}" ]; then
        echo "$HOST_BENCH" > "$BUILD/bench-args"
        echo "file /etc/confvm-bench $BUILD/bench-args 0644 0 0" >> "$list.new"
    fi
fi
if [ "$arch" = riscv ] && [ -n "${COVE_TSM_IMAGE:-}" ]; then
    # Under a TSM (by hand): the Linux TVM guest of the tvm_linux_guest
    # selftest, the same kernel built first with the small initramfs
    # below (kernel.sh), and its device tree, under /tvm.
    dtc -q -I dts -O dtb -o "$BUILD/tvm-guest.dtb" "$dir/tvm-guest.dts"
    dtc -q -I dts -O dtb -o "$BUILD/tvm-guest-smp.dtb" "$dir/tvm-guest-smp.dts"
    guest_list
    cat >> "$list.new" <<LIST
dir /tvm 0755 0 0
file /tvm/guest.dtb $BUILD/tvm-guest.dtb 0644 0 0
file /tvm/guest-smp.dtb $BUILD/tvm-guest-smp.dtb 0644 0 0
file /tvm/Image $BUILD/tvm-guest-Image 0644 0 0
LIST
elif [ "$arch" = riscv ]; then
    rm -f "$BUILD/initramfs-riscv-guest.list"
fi
# FUZZ_SEED=<seed>: uapi_fuzz (arm64) or cove_uapi_fuzz (riscv64) replays
# that run (each prints its seed).
if [ -n "${FUZZ_SEED:-}" ]; then
    echo "$FUZZ_SEED" > "$BUILD/fuzz-seed"
    grep -q '^dir /etc ' "$list.new" || echo "dir /etc 0755 0 0" >> "$list.new"
    echo "file /etc/confvm-fuzz-seed $BUILD/fuzz-seed 0644 0 0" >> "$list.new"
fi
if [ "$arch" = arm64 ] && [ -n "${REALM_VMM:-}" ]; then
    # A VMM users have, given by path (built outside this repo), for the
    # realm_vmm_guest selftest: REALM_VMM=qemu:/path/to/qemu-system-aarch64
    # (QEMU with rme-guest, a static aarch64 binary).  REALM_VMM_APPEND
    # replaces the guest's command line.
    kind=${REALM_VMM%%:*} vmm=${REALM_VMM#*:}
    [ "$kind" = qemu ] || die "REALM_VMM=$REALM_VMM: only qemu:/path is known"
    [ -f "$vmm" ] || die "REALM_VMM: no file $vmm"
    # The command line that boots the Linux realm guest (README): no ITS,
    # no reboot, and no earlycon (the UART is at a protected address until
    # the guest knows it is a realm).
    printf '%s\n' /vmm/qemu-system-aarch64 -accel kvm -cpu host -smp 2 -m 256M \
        -M virt,gic-version=3,its=off,confidential-guest-support=rme0 \
        -object rme-guest,id=rme0,measurement-algorithm=sha512 \
        -nodefaults -display none -serial stdio -no-reboot \
        -kernel /realm/Image -append "${REALM_VMM_APPEND:-console=ttyAMA0 rdinit=/init}" > "$BUILD/vmm-run"
    # The same line as a script, for the shell.
    { echo '#!/bin/sh'; printf 'exec'; while IFS= read -r a; do printf " '%s'" "$a"; done < "$BUILD/vmm-run"; echo; } > "$BUILD/vmm-run.sh"
    cat >> "$list.new" <<LIST
dir /vmm 0755 0 0
file /vmm/qemu-system-aarch64 $vmm 0755 0 0
file /vmm/run $BUILD/vmm-run 0644 0 0
file /vmm/run.sh $BUILD/vmm-run.sh 0755 0 0
LIST
fi
# The kernel's own KVM selftests under /upstream; UPSTREAM_KVM_SELFTESTS=0
# leaves them out.
if [ "${UPSTREAM_KVM_SELFTESTS:-1}" != 0 ]; then
    bash "$here/kvm-selftests.sh" "$arch" >> "$list.new"
fi
cmp -s "$list.new" "$list" && rm "$list.new" || mv "$list.new" "$list"
