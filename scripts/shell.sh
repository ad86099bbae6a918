#!/usr/bin/env bash
# By hand: boots the arm64 host (TF-A + TRP, or RME_RMM_IMAGE=<rmm.img>)
# in QEMU on this terminal with a busybox shell instead of the selftests,
# for starting a VMM by hand.  REALM_VMM=qemu:/path/to/qemu-system-aarch64
# puts that VMM in /vmm, with the Linux realm guest's line in /vmm/run.sh.
# Leave QEMU with Ctrl-A X, or power off with `exit`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

bash "$here/setup.sh"
HOST_SHELL=1 bash "$here/selftests.sh" arm64
bash "$here/kernel.sh" build arm64
bash "$here/firmware.sh" arm64 "$BUILD/obj-arm64/arch/arm64/boot/Image"
exec python3 "$here/run-qemu.py" arm64 --interactive --flash "$BUILD/flash-arm64.bin"
