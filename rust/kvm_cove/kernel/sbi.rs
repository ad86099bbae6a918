// SPDX-License-Identifier: GPL-2.0

//! SBI calls (`ecall` from HS mode) for the CoVE host.

/// Base extension ID.
const SBI_EXT_BASE: u64 = 0x10;
/// `sbi_probe_extension` in the base extension.
const SBI_BASE_PROBE_EXT: u64 = 3;

/// Result of an SBI call: `a0` (error) and `a1` (value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SbiRet {
    /// SBI error code (0 on success, negative otherwise).
    pub(crate) error: i64,
    /// Return value.
    pub(crate) value: u64,
}

/// One SBI call with up to six arguments (`cvm_fw::sbi::ecall`, shared
/// with the CoVE guest).  Calls made here pass no pointers.
pub(crate) fn ecall(ext: u64, fid: u64, args: [u64; 6]) -> SbiRet {
    let (error, value) = crate::cvm_fw::sbi::ecall(ext, fid, args);
    SbiRet { error, value }
}

/// `TVM_VCPU_RUN` of COVH (`ext`, `fid`): an SBI call that also returns
/// the exit's `scause` and `stval`, which the TSM leaves in this CPU's own
/// CSRs (Salus writes them to the host's `vscause`/`vstval`).  Interrupts
/// are masked from before the `ecall` until both CSRs are read: a trap in
/// between would overwrite them.
pub(crate) fn ecall_vcpu_run(ext: u64, fid: u64, gid: u64, vcpu: u64) -> (SbiRet, u64, u64) {
    let (error, value, scause, stval): (u64, u64, u64, u64);
    // SAFETY: the SBI calling convention, as in `ecall`.  `sstatus.SIE`
    // (bit 1) is cleared first and set back to its old value last, so the
    // interrupt state on return is the caller's; no memory is touched and
    // the stack is not used.  `{old}` survives the `ecall` (the TSM
    // preserves every register but a0 and a1).
    unsafe {
        core::arch::asm!(
            "csrrci {old}, sstatus, 2",
            "ecall",
            "csrr {scause}, scause",
            "csrr {stval}, stval",
            "andi {old}, {old}, 2",
            "csrs sstatus, {old}",
            old = out(reg) _,
            scause = out(reg) scause,
            stval = out(reg) stval,
            inlateout("a0") gid => error,
            inlateout("a1") vcpu => value,
            in("a2") 0u64,
            in("a3") 0u64,
            in("a4") 0u64,
            in("a5") 0u64,
            in("a6") fid,
            in("a7") ext,
            options(nostack),
        );
    }
    // CAST: a0 carries a signed SBI error code.
    let r = SbiRet {
        error: error as i64,
        value,
    };
    (r, scause, stval)
}

/// Whether the SBI implementation offers extension `ext`.
pub(crate) fn probe_extension(ext: u64) -> bool {
    let r = ecall(SBI_EXT_BASE, SBI_BASE_PROBE_EXT, [ext, 0, 0, 0, 0, 0]);
    r.error == 0 && r.value != 0
}

/// The base extension's own ID (always present on SBI >= 0.2).
pub(crate) const EXT_BASE: u64 = SBI_EXT_BASE;
