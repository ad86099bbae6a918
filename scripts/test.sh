#!/usr/bin/env bash
# The test command (README, .ci/run).  Installs what is missing, then runs
# every tier and ends with "N passed, N failed, N skipped":
#
#   host     cargo test: ABI, RMM model, realm logic, property tests
#   arm64    Rust selftests + kernel, TF-A with RME (TRP, or RME_RMM_IMAGE),
#            QEMU boot: KUnit suites and kselftest TAP
#   riscv    Rust selftests + kernel, QEMU boot on OpenSBI: KUnit + TAP;
#            with COVE_TSM_IMAGE=<salus> (by hand) the kernel boots as the
#            host of that TSM instead, and TVMs run
#
# TIERS="host arm64" runs a subset.  Logs go to build/logs/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

TIERS=${TIERS:-host arm64 riscv}
logs=$BUILD/logs
mkdir -p "$logs"
passed=0 failed=0 skipped=0
t_start=$SECONDS

count() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3)); }
fail_step() { log "FAIL: $1 (log: $2)"; echo "FAIL $1"; count 0 1 0; }

log "setting up the toolchain"
if ! bash "$here/setup.sh" >"$logs/setup.log" 2>&1; then
    tail -n 20 "$logs/setup.log"
    fail_step setup "$logs/setup.log"
    echo "$passed passed, $failed failed, $skipped skipped"
    exit 1
fi

host_tier() {
    local t0=$SECONDS out=$logs/cargo-test.log
    log "host: cargo test"
    (cd "$CONFVM_TOP" && cargo test --workspace --locked) >"$out" 2>&1
    local rc=$?
    # The realm logic's suites again, with the RMM model speaking RMI 2.0
    # (TF-RMM v0.9.0's personality).
    echo "== kvm_rme against the RMI 2.0 model ==" >>"$out"
    (cd "$CONFVM_TOP" && KVM_RME_MODEL_RMI=2.0 cargo test -p kvm_rme --locked) >>"$out" 2>&1 || rc=$?
    local p f i
    p=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1/p' "$out" | paste -sd+ | bc)
    f=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\2/p' "$out" | paste -sd+ | bc)
    i=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\3/p' "$out" | paste -sd+ | bc)
    grep -E '^test .* (FAILED|ok)$|property steps' "$out" | sed 's/^/  /'
    count "${p:-0}" "${f:-0}" "${i:-0}"
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then fail_step "host/cargo-test (exit $rc)" "$out"; fi
    # The test RMM's firmware image builds (its library ran above).
    if (cd "$CONFVM_TOP" && cargo build --release --locked -q -p confvm-test-rmm --features firmware \
            --target aarch64-unknown-none-softfloat --bin test-rmm) >"$logs/test-rmm.log" 2>&1; then
        echo "PASS host/test-rmm-firmware-build"
        count 1 0 0
    else
        tail -n 20 "$logs/test-rmm.log"
        fail_step host/test-rmm-firmware-build "$logs/test-rmm.log"
    fi
    log "host tier: ${p:-0} passed, ${f:-0} failed in $((SECONDS - t0)) s"
}

# The upstream KVM selftests run in the riscv boot and in the arm64 boot
# with realms enabled; their results must equal a stock v7.2 kernel's,
# recorded by scripts/stock-kvm-selftests.sh.
stock_arg() {
    local f=$CONFVM_TOP/tools/testing/selftests/kvm/upstream/$1.stock
    [ "${UPSTREAM_KVM_SELFTESTS:-1}" = 0 ] && return 0
    # Without a recorded stock result the tests still run and count.
    [ -f "$f" ] && echo "--stock $f"
}

boot_tier() {
    local arch=$1 t0=$SECONDS tb image out
    log "$arch: building selftests"
    bash "$here/selftests.sh" "$arch" >"$logs/selftests-$arch.log" 2>&1 ||
        { fail_step "$arch/selftests-build" "$logs/selftests-$arch.log"; return; }
    tb=$SECONDS
    bash "$here/kernel.sh" build "$arch" >"$logs/kernel-$arch.log" 2>&1 ||
        { tail -n 30 "$logs/kernel-$arch.log"; fail_step "$arch/kernel-build" "$logs/kernel-$arch.log"; return; }
    log "$arch: kernel built in $((SECONDS - tb)) s"
    image=$BUILD/obj-$arch/arch/$arch/boot/Image
    out=$logs/boot-$arch.txt
    if [ "$arch" = arm64 ]; then
        bash "$here/firmware.sh" arm64 "$image" >"$logs/firmware.log" 2>&1 ||
            { tail -n 30 "$logs/firmware.log"; fail_step arm64/firmware-build "$logs/firmware.log"; return; }
        # With a full RMM by hand (RME_RMM_IMAGE), this boot has realms
        # enabled and runs the upstream KVM selftests.
        local stock=""
        case "${RME_RMM_IMAGE:-trp}" in trp) ;; *) stock=$(stock_arg arm64) ;; esac
        [ -n "${RME_TFA_BL1:-}" ] && stock=$(stock_arg arm64)
        # shellcheck disable=SC2086
        python3 "$here/run-qemu.py" arm64 --flash "$BUILD/flash-arm64.bin" --log "$logs/console-arm64.log" \
            $stock >"$out" 2>&1
    elif [ -n "${COVE_TSM_IMAGE:-}" ]; then
        # By hand: the host under a TSM (Salus, built outside this
        # repository): KVM in TVM-only mode, TVMs created and run.  The
        # upstream KVM selftests need plain VMs and do not run there.
        [ -f "$COVE_TSM_IMAGE" ] || { fail_step "riscv/tsm-image (COVE_TSM_IMAGE=$COVE_TSM_IMAGE missing)" /dev/null; return; }
        python3 "$here/run-qemu.py" riscv --image "$image" --tsm "$COVE_TSM_IMAGE" \
            --log "$logs/console-riscv-tsm.log" --timeout 1500 \
            --expect "cove/tvm-only-mode=TVM-only mode: running under a TSM" \
            --expect "cove/tsm-ready=kvm_cove: TSM version 0x[0-9a-f]+ ready: TVMs enabled" \
            >"$out" 2>&1
    else
        python3 "$here/run-qemu.py" riscv --image "$image" --log "$logs/console-riscv.log" \
            $(stock_arg riscv) >"$out" 2>&1
    fi
    grep -E '^(PASS|FAIL|SKIP|#)' "$out" | sed 's/^/  /'
    local r
    r=$(sed -n 's/^RESULT [a-z0-9]* //p' "$out")
    if [ -z "$r" ]; then
        fail_step "$arch/boot (runner crashed)" "$out"
        return
    fi
    # shellcheck disable=SC2086
    count $r
    if [ "$arch" = arm64 ] && [ -z "${RME_RMM_IMAGE:-}" ] && [ -z "${RME_TFA_BL1:-}" ]; then
        test_rmm_boot
    fi
    log "$arch tier done in $((SECONDS - t0)) s"
}

# The same kernel and selftests on our test RMM (tools/testing/rmm)
# instead of TRP: it must boot under TF-A 2.12.1 (cold boot, and a warm
# boot per secondary CPU) and answer the probe, and then every realm
# selftest runs against it, the Linux realm guest among them.  The TRP
# boot before it checks the path where the RMM cannot run realms.
test_rmm_boot() {
    local out=$logs/boot-arm64-test-rmm.txt image=$BUILD/obj-arm64/arch/arm64/boot/Image r
    log "arm64: the host on the test RMM"
    RME_RMM_IMAGE=test bash "$here/firmware.sh" arm64 "$image" >"$logs/test-rmm-build.log" 2>&1 ||
        { tail -n 30 "$logs/test-rmm-build.log"; fail_step arm64/test-rmm-build "$logs/test-rmm-build.log"; return; }
    python3 "$here/run-qemu.py" arm64 --flash "$BUILD/flash-arm64.bin" --log "$logs/console-arm64-test-rmm.log" \
        --expect "test-rmm/banner=^confvm test RMM: test firmware, not a security boundary" \
        --expect "test-rmm/warm-boot=^confvm test RMM: CPU 1 up" \
        --expect "test-rmm/probe=kvm_rme: RMM implements RMI 1\.0: realms enabled" \
        $(stock_arg arm64) >"$out" 2>&1
    grep -E '^(PASS|FAIL|SKIP|#)' "$out" | sed 's/^/  [test RMM] /'
    r=$(sed -n 's/^RESULT [a-z0-9]* //p' "$out")
    if [ -z "$r" ]; then
        fail_step "arm64/test-rmm-boot (runner crashed)" "$out"
        return
    fi
    # shellcheck disable=SC2086
    count $r
}

for t in $TIERS; do
    case "$t" in
        host) host_tier ;;
        arm64|riscv) boot_tier "$t" ;;
        *) fail_step "unknown tier $t" /dev/null ;;
    esac
done

log "all tiers done in $((SECONDS - t_start)) s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
