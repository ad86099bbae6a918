// SPDX-License-Identifier: GPL-2.0

//! COVG, the CoVE guest SBI extension, as the CoVE RFC and Salus number
//! it, and the SBI error codes a TVM's calls return.

/// `COVG`: guest-side extension.
pub const EXT_COVG: u64 = 0x434F_5647;
/// `DBCN`: debug console.
pub const EXT_DBCN: u64 = 0x4442_434E;
/// DBCN `CONSOLE_WRITE_BYTE`: one byte in a0, nothing in memory.
pub const DBCN_WRITE_BYTE: u64 = 2;
/// DBCN `CONSOLE_WRITE`: `(bytes, address low, address high)`; the host
/// reads the buffer, so in a TVM it must be shared.
pub const DBCN_WRITE: u64 = 0;
/// The base extension.
pub const EXT_BASE: u64 = 0x10;
/// Base `PROBE_EXTENSION`.
pub const BASE_PROBE_EXT: u64 = 3;

/// Page size of COVG ranges.
pub const PAGE_SIZE: u64 = 4096;

/// COVG functions (a6).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covg {
    /// `(gpa, len)`: accesses there exit to the host as MMIO.
    AddMmioRegion = 0,
    /// `(gpa, len)`.
    RemoveMmioRegion = 1,
    /// `(gpa, len)`: the pages become the host's (their contents are lost).
    ShareMemory = 2,
    /// `(gpa, len)`: the pages become confidential again, zeroed.
    UnshareMemory = 3,
    /// `(id; -1 = all)`: the host may inject external interrupt `id`.
    AllowExtInterrupt = 4,
    /// `(id; -1 = all)`.
    DenyExtInterrupt = 5,
}

/// SBI errors (`sbiret.error`), never success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbiError {
    /// -1.
    Failed,
    /// -2.
    NotSupported,
    /// -3.
    InvalidParam,
    /// -4.
    Denied,
    /// -5.
    InvalidAddress,
    /// Any other code.
    Other(i64),
}

impl SbiError {
    /// `Ok` for 0, else the error.
    pub const fn decode(code: i64) -> Result<(), SbiError> {
        Err(match code {
            0 => return Ok(()),
            -1 => SbiError::Failed,
            -2 => SbiError::NotSupported,
            -3 => SbiError::InvalidParam,
            -4 => SbiError::Denied,
            -5 => SbiError::InvalidAddress,
            c => SbiError::Other(c),
        })
    }
}
