#!/usr/bin/env bash
# Soak run, by hand (not a CI tier): the property tests of both backends
# (random sequences of the realm and TVM logic against the RMM and TSM
# models, with injected firmware failures, invariants checked after every
# step) for STEPS steps each, 1,000,000 by default, in release mode.
#
#   bash scripts/soak.sh [STEPS]          a fresh seed, printed
#   SOAK_SEED=<seed> bash scripts/soak.sh the same run again
#
# A failure is shrunk by proptest and saved in the crate's
# proptest-regressions/, and it reproduces from the printed seed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

steps=${1:-1000000}
seed=${SOAK_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}
log "soak: seed $seed, $steps steps per backend (replay: SOAK_SEED=$seed bash scripts/soak.sh $steps)"
cd "$CONFVM_TOP"
status=0
run() {
    local crate=$1 test=$2 var=$3 t0=$SECONDS out
    out=$(env "$var=$steps" PROPTEST_RNG_SEED="$seed" \
        cargo test --release --locked -q -p "$crate" --test properties -- --nocapture --exact "$test" 2>&1) || status=1
    grep -E 'property steps|test result|panicked|property failed' <<<"$out" | sed "s/^/  $crate: /"
    log "$crate: $((SECONDS - t0)) s"
}
run kvm_rme random_sequences_keep_invariants KVM_RME_PROP_STEPS
run kvm_cove random_tvm_sequences_keep_invariants KVM_COVE_PROP_STEPS
[ "$status" = 0 ] && log "soak: no violation (seed $seed)" || log "soak: FAILED (seed $seed)"
exit $status
