// SPDX-License-Identifier: GPL-2.0

//! What a CoVE TVM calls: COVG (numbered in `cvm_fw::sbi`, shared with
//! the host), the SBI base probe and the debug console.

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

pub use crate::cvm_fw::sbi::{Covg, SbiError, EXT_COVG};
