// SPDX-License-Identifier: GPL-2.0

//! SBI errors and the CoVE guest extension's numbering (COVG, as the CoVE
//! RFC and Salus number it), shared by the CoVE host (`kvm_cove`) and the
//! CoVE guest (`mem_encrypt`).

use super::errno;

/// One SBI call from S mode (the kernel's riscv64 builds): extension
/// `ext`, function `fid`, arguments a0..a5; returns `(error, value)`.
/// Callers pass no pointers the SBI implementation would write through
/// (physical addresses only, which the firmware checks itself).
#[cfg(all(CONFIG_RUST, target_arch = "riscv64"))]
pub fn ecall(ext: u64, fid: u64, args: [u64; 6]) -> (i64, u64) {
    let (error, value): (u64, u64);
    // SAFETY: the SBI calling convention: a7 = extension, a6 = function,
    // a0..a5 = arguments, a0/a1 = results, and the SBI implementation
    // preserves every other register, so nothing the compiler holds is
    // clobbered; no memory the compiler knows of is passed by pointer.
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
    (error as i64, value)
}

/// `COVG`: the CoVE guest extension, which a TSM offers to TVMs.
pub const EXT_COVG: u64 = 0x434F_5647;

/// SBI error codes (`sbiret.error`), never `SBI_SUCCESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SbiError {
    /// `SBI_ERR_FAILED` (-1).
    Failed,
    /// `SBI_ERR_NOT_SUPPORTED` (-2).
    NotSupported,
    /// `SBI_ERR_INVALID_PARAM` (-3).
    InvalidParam,
    /// `SBI_ERR_DENIED` (-4).
    Denied,
    /// `SBI_ERR_INVALID_ADDRESS` (-5).
    InvalidAddress,
    /// `SBI_ERR_ALREADY_AVAILABLE` (-6).
    AlreadyAvailable,
    /// `SBI_ERR_ALREADY_STARTED` (-7).
    AlreadyStarted,
    /// `SBI_ERR_ALREADY_STOPPED` (-8).
    AlreadyStopped,
    /// `SBI_ERR_NO_SHMEM` (-9).
    NoShmem,
    /// A code this host does not know.
    Unknown(i64),
}

impl SbiError {
    /// Decodes `sbiret.error`; `Ok` for `SBI_SUCCESS`.
    pub const fn decode(code: i64) -> Result<(), SbiError> {
        Err(match code {
            0 => return Ok(()),
            -1 => SbiError::Failed,
            -2 => SbiError::NotSupported,
            -3 => SbiError::InvalidParam,
            -4 => SbiError::Denied,
            -5 => SbiError::InvalidAddress,
            -6 => SbiError::AlreadyAvailable,
            -7 => SbiError::AlreadyStarted,
            -8 => SbiError::AlreadyStopped,
            -9 => SbiError::NoShmem,
            c => SbiError::Unknown(c),
        })
    }

    /// The wire code.
    pub const fn code(self) -> i64 {
        match self {
            SbiError::Failed => -1,
            SbiError::NotSupported => -2,
            SbiError::InvalidParam => -3,
            SbiError::Denied => -4,
            SbiError::InvalidAddress => -5,
            SbiError::AlreadyAvailable => -6,
            SbiError::AlreadyStarted => -7,
            SbiError::AlreadyStopped => -8,
            SbiError::NoShmem => -9,
            SbiError::Unknown(c) => c,
        }
    }

    /// The errno userspace sees when this ends an ioctl.
    pub const fn errno(self) -> i32 {
        match self {
            SbiError::NotSupported => errno::EOPNOTSUPP,
            SbiError::InvalidParam => errno::EINVAL,
            SbiError::Denied => errno::EPERM,
            SbiError::InvalidAddress => errno::EFAULT,
            SbiError::AlreadyAvailable | SbiError::AlreadyStarted | SbiError::AlreadyStopped => {
                errno::EALREADY
            }
            SbiError::NoShmem => errno::ENOMEM,
            SbiError::Failed | SbiError::Unknown(_) => errno::EIO,
        }
    }
}

/// COVG functions (made by a TVM; its host sees some as exits).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covg {
    /// `(gpa, len)`.
    AddMmioRegion = 0,
    /// `(gpa, len)`.
    RemoveMmioRegion = 1,
    /// `(gpa, len)`.
    ShareMemory = 2,
    /// `(gpa, len)`.
    UnshareMemory = 3,
    /// `(id; -1 = all)`.
    AllowExtInterrupt = 4,
    /// `(id)`.
    DenyExtInterrupt = 5,
}

impl Covg {
    /// The function with ID `fid`.
    pub const fn from_fid(fid: u64) -> Option<Covg> {
        Some(match fid {
            0 => Covg::AddMmioRegion,
            1 => Covg::RemoveMmioRegion,
            2 => Covg::ShareMemory,
            3 => Covg::UnshareMemory,
            4 => Covg::AllowExtInterrupt,
            5 => Covg::DenyExtInterrupt,
            _ => return None,
        })
    }
}

