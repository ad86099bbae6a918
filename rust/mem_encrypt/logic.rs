// SPDX-License-Identifier: GPL-2.0

//! What a CoVE TVM guest asks of its TSM: checked COVG ranges, the errno
//! of each refusal, and the SBI console written a byte at a time.
//!
//! The kernel implements [`Sbi`] with `ecall`s; the host tests with a
//! model that checks what the TSM checks.

use crate::covg::{
    Covg, SbiError, BASE_PROBE_EXT, DBCN_WRITE, DBCN_WRITE_BYTE, EXT_BASE, EXT_COVG, EXT_DBCN,
    PAGE_SIZE,
};
use crate::cvm_fw::errno;

/// One SBI call: `(ext, fid, a0, a1) -> (error, value)`.
pub trait Sbi {
    /// The `ecall`.
    fn call(&mut self, ext: u64, fid: u64, a0: u64, a1: u64) -> (i64, u64);
}

/// Why a COVG request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CovgError {
    /// Not page aligned, empty or wrapping: not sent.
    Invalid,
    /// Not in a TVM (no COVG).
    NotTvm,
    /// The TSM (or the host behind it) refused.
    Sbi(SbiError),
}

impl CovgError {
    /// The errno for the kernel's callers (`set_memory_decrypted()` and
    /// friends): the one place a COVG failure becomes one.
    pub const fn errno(self) -> i32 {
        match self {
            CovgError::Invalid | CovgError::Sbi(SbiError::InvalidParam) => errno::EINVAL,
            CovgError::NotTvm | CovgError::Sbi(SbiError::NotSupported) => errno::ENODEV,
            CovgError::Sbi(SbiError::InvalidAddress) => errno::EFAULT,
            CovgError::Sbi(SbiError::Denied) => errno::EPERM,
            CovgError::Sbi(_) => errno::EIO,
        }
    }
}

/// Whether this kernel runs in a CoVE TVM: the TSM offers COVG to TVM
/// vCPUs only (Salus answers the probe with 0 for its host).
pub fn in_tvm<S: Sbi>(sbi: &mut S) -> bool {
    let (e, v) = sbi.call(EXT_BASE, BASE_PROBE_EXT, EXT_COVG, 0);
    e == 0 && v != 0
}

/// A page-aligned, non-empty, non-wrapping range.
fn range(gpa: u64, len: u64) -> Result<(u64, u64), CovgError> {
    if gpa % PAGE_SIZE != 0 || len == 0 || len % PAGE_SIZE != 0 || gpa.checked_add(len).is_none() {
        return Err(CovgError::Invalid);
    }
    Ok((gpa, len))
}

/// One COVG range call.
pub fn covg_range<S: Sbi>(sbi: &mut S, f: Covg, gpa: u64, len: u64) -> Result<(), CovgError> {
    let (gpa, len) = range(gpa, len)?;
    let (e, _) = sbi.call(EXT_COVG, f as u64, gpa, len);
    SbiError::decode(e).map_err(CovgError::Sbi)
}

/// `SHARE_MEMORY`: `[gpa, gpa + len)` becomes the host's.  The TSM shares
/// the whole range or nothing; what the pages held is gone.
pub fn share<S: Sbi>(sbi: &mut S, gpa: u64, len: u64) -> Result<(), CovgError> {
    covg_range(sbi, Covg::ShareMemory, gpa, len)
}

/// `UNSHARE_MEMORY`: `[gpa, gpa + len)` becomes confidential again.
pub fn unshare<S: Sbi>(sbi: &mut S, gpa: u64, len: u64) -> Result<(), CovgError> {
    covg_range(sbi, Covg::UnshareMemory, gpa, len)
}

/// `ADD_MMIO_REGION`: accesses to `[gpa, gpa + len)` exit to the host as
/// MMIO (a TSM ends a vCPU that touches a GPA in no region).
pub fn add_mmio_region<S: Sbi>(sbi: &mut S, gpa: u64, len: u64) -> Result<(), CovgError> {
    covg_range(sbi, Covg::AddMmioRegion, gpa, len)
}

/// Writes the first `len` bytes of the shared page at `pa` to the SBI
/// console with one DBCN `CONSOLE_WRITE`; returns the bytes the host
/// took.  A page-sized write at most, and only from a shared page.
pub fn console_write_shared<S: Sbi>(sbi: &mut S, pa: u64, len: u64) -> Result<u64, CovgError> {
    if pa % PAGE_SIZE != 0 || len == 0 || len > PAGE_SIZE {
        return Err(CovgError::Invalid);
    }
    let (e, v) = sbi.call(EXT_DBCN, DBCN_WRITE, len, pa);
    SbiError::decode(e).map_err(CovgError::Sbi)?;
    Ok(v.min(len))
}

/// Writes `bytes` to the SBI console one DBCN `CONSOLE_WRITE_BYTE` each:
/// a DBCN `CONSOLE_WRITE` names a buffer by address, and a TVM's buffer
/// is confidential, out of the host's reach.  Returns the bytes written
/// before the first refusal.
pub fn console_write<S: Sbi>(sbi: &mut S, bytes: &[u8]) -> usize {
    for (i, b) in bytes.iter().enumerate() {
        let (e, _) = sbi.call(EXT_DBCN, DBCN_WRITE_BYTE, u64::from(*b), 0);
        if e != 0 {
            return i;
        }
    }
    bytes.len()
}
