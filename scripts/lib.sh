# Shared helpers for the scripts; sourced, not run.
# shellcheck shell=bash
CONFVM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFVM_SHARED=${CONFVM_SHARED:-$CONFVM_TOP/../shared}
BUILD=${BUILD:-$CONFVM_TOP/build}
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
