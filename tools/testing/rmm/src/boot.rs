// SPDX-License-Identifier: GPL-2.0

//! The RMM–EL3 boot interface of TF-A 2.12.1 (`rmm-el3-comms-spec.rst`,
//! interface version 0.4): what EL3 passes at cold and warm boot, and
//! the status `RMM_BOOT_COMPLETE` reports.

/// `RMM_BOOT_COMPLETE`: x1 = status; the first RMI request comes back.
pub const BOOT_COMPLETE: u64 = 0xC400_01CF;
/// `RMM_RMI_REQ_COMPLETE`: x1..x5 = the host's x0..x4.
pub const REQ_COMPLETE: u64 = 0xC400_018F;
/// `RMM_GTSI_DELEGATE` / `UNDELEGATE`: x1 = the granule.
pub const GTSI_DELEGATE: u64 = 0xC400_01B0;
pub const GTSI_UNDELEGATE: u64 = 0xC400_01B1;

/// The boot interface version this RMM takes: 0.x with x >= 4.
pub const INTERFACE: u64 = 4;
/// CPUs this RMM has stacks for.
pub const MAX_CPUS: u64 = 32;

/// `RMM_BOOT_COMPLETE` statuses (`E_RMM_BOOT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum BootError {
    Unknown = -1,
    Version = -2,
    CpusOutOfRange = -3,
    CpuIdOutOfRange = -4,
    SharedBuffer = -5,
    ManifestVersion = -6,
    ManifestData = -7,
}

/// Checks the cold-boot arguments: x0 = this CPU, x1 = interface
/// version, x2 = CPUs, x3 = the shared page.
pub fn check_cold(cpu: u64, version: u64, cpus: u64, shared: u64) -> Result<(), BootError> {
    if version >> 16 != 0 || version & 0xffff < INTERFACE {
        return Err(BootError::Version);
    }
    if cpus > MAX_CPUS {
        return Err(BootError::CpusOutOfRange);
    }
    if cpu >= cpus {
        return Err(BootError::CpuIdOutOfRange);
    }
    if shared == 0 || shared % 4096 != 0 {
        return Err(BootError::SharedBuffer);
    }
    Ok(())
}

/// Checks a warm boot (PSCI `CPU_ON` of `cpu`): x1..x3 are 0.
pub fn check_warm(cpu: u64, x1: u64, x2: u64, x3: u64) -> Result<(), BootError> {
    if cpu >= MAX_CPUS {
        return Err(BootError::CpuIdOutOfRange);
    }
    if x1 | x2 | x3 != 0 {
        return Err(BootError::Unknown);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_arguments() {
        assert_eq!(check_cold(0, 4, 32, 0x418f_f000), Ok(()));
        assert_eq!(check_cold(0, 5, 32, 0x418f_f000), Ok(()), "a later 0.x");
        assert_eq!(check_cold(0, 3, 32, 0x418f_f000), Err(BootError::Version));
        assert_eq!(check_cold(0, 1 << 16, 32, 0x418f_f000), Err(BootError::Version));
        assert_eq!(check_cold(0, 4, 33, 0x418f_f000), Err(BootError::CpusOutOfRange));
        assert_eq!(check_cold(4, 4, 4, 0x418f_f000), Err(BootError::CpuIdOutOfRange));
        assert_eq!(check_cold(0, 4, 32, 0x418f_f008), Err(BootError::SharedBuffer));
        assert_eq!(check_warm(3, 0, 0, 0), Ok(()));
        assert_eq!(check_warm(32, 0, 0, 0), Err(BootError::CpuIdOutOfRange));
        assert_eq!(check_warm(3, 4, 0, 0), Err(BootError::Unknown));
    }
}
