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

/// One SBI call with up to six arguments.
pub(crate) fn ecall(ext: u64, fid: u64, args: [u64; 6]) -> SbiRet {
    let (error, value): (u64, u64);
    // SAFETY: the SBI calling convention: a7 = extension, a6 = function,
    // a0..a5 = arguments, a0/a1 = results; the SBI implementation preserves
    // every other register.  Calls made here pass no pointers.
    unsafe {
        core::arch::asm!(
            "ecall",
            inlateout("a0") args[0] => error,
            inlateout("a1") args[1] => value,
            in("a2") args[2],
            in("a3") args[3],
            in("a4") args[4],
            in("a5") args[5],
            in("a6") fid,
            in("a7") ext,
            options(nostack),
        );
    }
    // CAST: a0 carries a signed SBI error code.
    SbiRet {
        error: error as i64,
        value,
    }
}

/// Whether the SBI implementation offers extension `ext`.
pub(crate) fn probe_extension(ext: u64) -> bool {
    let r = ecall(SBI_EXT_BASE, SBI_BASE_PROBE_EXT, [ext, 0, 0, 0, 0, 0]);
    r.error == 0 && r.value != 0
}

/// The base extension's own ID (always present on SBI >= 0.2).
pub(crate) const EXT_BASE: u64 = SBI_EXT_BASE;
