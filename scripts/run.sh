#!/usr/bin/env bash
# The main job (README): set up, build both host kernels and the firmware,
# boot them in QEMU and go as far towards a confidential guest as the
# firmware and the code allow, then print the RMI cost counters.
#
#   arm64: TF-A + our test RMM (tools/testing/rmm; RME_RMM_IMAGE=<rmm.img>
#          swaps in another RMM, e.g. TF-RMM, and RME_RMM_IMAGE=trp TF-A's
#          TRP) -> Linux at NS-EL2 -> kvm_rme probes the RMM and delegates
#          real granules (KUnit) -> selftests run realm payloads and boot
#          a Linux realm guest to its userspace.
#   riscv: OpenSBI -> Linux at HS -> kvm_cove probes COVH (absent: TVMs are
#          refused with EPERM) -> selftests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

bash "$here/setup.sh"
status=0
for arch in arm64 riscv; do
    bash "$here/selftests.sh" "$arch"
    bash "$here/kernel.sh" build "$arch"
    image=$BUILD/obj-$arch/arch/$arch/boot/Image
    if [ "$arch" = arm64 ]; then
        case "${RME_RMM_IMAGE:-test}" in
            trp) RME_RMM_IMAGE= bash "$here/firmware.sh" arm64 "$image" ;;
            *) RME_RMM_IMAGE=${RME_RMM_IMAGE:-test} bash "$here/firmware.sh" arm64 "$image" ;;
        esac
        python3 "$here/run-qemu.py" arm64 --flash "$BUILD/flash-arm64.bin" --log "$BUILD/console-arm64.log" || status=1
        log "firmware and host on arm64:"
        grep -v '^# realm-guest|' "$BUILD/console-arm64.log" |
            grep -E 'TRP:|RMM|kvm_rme:|VHE mode|All CPU\(s\) started' | sed 's/^/    /' || true
    else
        python3 "$here/run-qemu.py" riscv --image "$image" --log "$BUILD/console-riscv.log" || status=1
        log "host on riscv64:"
        grep -E 'kvm_cove:|kvm \[1\]: (hypervisor|AIA)' "$BUILD/console-riscv.log" | sed 's/^/    /' || true
    fi
done

if grep -q 'kvm_rme: .*realms enabled' "$BUILD/console-arm64.log"; then
    log "realm: the RMM speaks RMI 1.0; the boot's selftests ran realms (payloads, then a Linux realm guest):"
    grep -E '^(ok|not ok) [0-9]+ realm_|^# realm_' "$BUILD/console-arm64.log" | sed 's/^/    /' || true
    log "the Linux realm guest's console (first and last lines):"
    grep -E '^# realm-guest\|' "$BUILD/console-arm64.log" | sed -n '1,12p;$p' | sed 's/^/    /' || true
else
    log "realm: not possible with this firmware (see the kvm_rme line above; TRP implements only VERSION and GRANULE_(UN)DELEGATE); leave RME_RMM_IMAGE unset for the test RMM, or name a full RMM"
fi

log "RMI calls per 4 KiB of realm memory (realm logic against the RMM model):"
(cd "$CONFVM_TOP" && cargo run --release -q --locked -p kvm_rme --example rmi_counters --features kvm_rme/model)
log "COVH calls and global fences per MiB of TVM memory (TVM logic against the TSM model):"
(cd "$CONFVM_TOP" && cargo run --release -q --locked -p kvm_cove --example sbi_counters --features kvm_cove/model)
exit $status
