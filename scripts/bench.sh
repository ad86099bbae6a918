#!/usr/bin/env bash
# Benchmarks, by hand (not a CI tier):
#
#   RME_RMM_IMAGE=<rmm.img> [REALM_VMM=qemu:/path] bash scripts/bench.sh realm-boot [RUNS]
#
# realm-boot: boots the arm64 host under TF-A with the given RMM and, in
# it, the Linux realm guest RUNS times (3) per configuration: the
# selftests' VMM and, with REALM_VMM, QEMU rme-guest; the default guest
# command line with transparent huge pages on and off, and "quiet
# swiotlb=1024".  Prints the medians of the boot time (VMM start to its
# exit), RMI calls (total and by command), REC exits by class, faults
# and data pages, all from the host's kvm_rme totals in debugfs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

what=${1:-}
runs=${2:-3}
[ "$what" = realm-boot ] || die "usage: bench.sh realm-boot [RUNS]"
[ -n "${RME_RMM_IMAGE:-}" ] || die "realm-boot needs a full RMM: RME_RMM_IMAGE=<rmm.img> (TF-RMM v0.8.0)"
bash "$here/setup.sh"
HOST_BENCH="realm-boot $runs" bash "$here/selftests.sh" arm64
bash "$here/kernel.sh" build arm64
bash "$here/firmware.sh" arm64 "$BUILD/obj-arm64/arch/arm64/boot/Image"
log "booting the host for $what ($runs runs per configuration)"
out=$BUILD/bench-$what.log
# The runner judges a test boot; here only the bench lines matter.
python3 "$here/run-qemu.py" arm64 --flash "$BUILD/flash-arm64.bin" --log "$out" \
    --timeout $((600 + runs * 6 * 120)) >/dev/null 2>&1 || true
grep -E '^# bench\|' "$out" | sed 's/^# bench| //' || die "no bench output (see $out)"
grep -q '^# bench| failed' "$out" && exit 1
if grep -qE 'kvm_rme: .*leak|WARNING: CPU:|BUG:' "$out"; then
    log "the host log has a leak or warning line (see $out)"
    exit 1
fi
exit 0
