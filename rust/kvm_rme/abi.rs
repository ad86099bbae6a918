// SPDX-License-Identifier: GPL-2.0

//! The Realm Management Interface: version-neutral types.
//!
//! Each RMM specification version the host speaks has its own private
//! submodule (`v1_0`) with function IDs and shared-memory layouts.  This
//! module is the one face the rest of the backend sees: it holds what the
//! versions share (addresses, the status word, version numbers) and
//! re-exports the versioned items the logic is written against, so no
//! caller names a version.
//! Status codes from the firmware stay [`RmiError`]; they become an errno
//! only at the uAPI edge, through [`RmiError::errno`].

mod v1_0;

pub use v1_0::{enter_flags, exit_reason};
pub use v1_0::{CallCounts, Command, Features0, HashAlgo, RealmParams};
pub use v1_0::{RecEnter, RecExit, RecParams, RecRun, Ripas, RttEntry, RttEntryState};
pub use v1_0::{DATA_FLAG_MEASURE, GICV3_HCR_HOST_MASK, MAX_REC_AUX_GRANULES, MAX_START_RTTS};
pub use v1_0::{REC_GIC_NUM_LRS, REC_NUM_GPRS, REC_PARAMS_FLAG_RUNNABLE};

/// A physical address the host hands to the RMM.
pub use crate::cvm_fw::addr::Pa;

/// Size of a granule, the unit the RMM tracks (4 KiB in RMI 1.0).
pub const GRANULE_SIZE: u64 = crate::cvm_fw::addr::PAGE_SIZE;
/// `log2(GRANULE_SIZE)`.
pub const GRANULE_SHIFT: u32 = crate::cvm_fw::addr::PAGE_SHIFT;

/// An intermediate physical address in a realm's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipa(pub u64);

/// Error statuses of an RMI command (`x0 & 0xff`, never 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorStatus {
    /// `RMI_ERROR_INPUT` (1): an input argument is invalid.
    Input,
    /// `RMI_ERROR_REALM` (2): the realm is in the wrong state.
    Realm,
    /// `RMI_ERROR_REC` (3): the REC is in the wrong state.
    Rec,
    /// `RMI_ERROR_RTT` (4): an RTT walk ended early; the index is the level.
    Rtt,
    /// A status this host does not know (newer RMM, or firmware bug).
    Unknown(u8),
}

impl ErrorStatus {
    /// The status code.
    pub const fn code(self) -> u8 {
        match self {
            ErrorStatus::Input => 1,
            ErrorStatus::Realm => 2,
            ErrorStatus::Rec => 3,
            ErrorStatus::Rtt => 4,
            ErrorStatus::Unknown(c) => c,
        }
    }

    const fn from_code(c: u8) -> ErrorStatus {
        match c {
            1 => ErrorStatus::Input,
            2 => ErrorStatus::Realm,
            3 => ErrorStatus::Rec,
            4 => ErrorStatus::Rtt,
            c => ErrorStatus::Unknown(c),
        }
    }
}

/// A failed RMI command: the status and its index field (`x0[15:8]`).
///
/// For [`ErrorStatus::Rtt`] the index is the RTT level the walk reached;
/// for [`ErrorStatus::Realm`] on REC entry, 0 means the realm is not
/// activated and 1 that it is `SYSTEM_OFF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RmiError {
    /// What failed.
    pub status: ErrorStatus,
    /// The status' index field.
    pub index: u8,
}

/// Result of an RMI command.
pub type RmiResult<T = ()> = core::result::Result<T, RmiError>;

impl RmiError {
    /// An error with the given status and index.
    pub const fn new(status: ErrorStatus, index: u8) -> RmiError {
        RmiError { status, index }
    }

    /// `RMI_ERROR_RTT` at `level`.
    pub const fn rtt(level: u8) -> RmiError {
        RmiError::new(ErrorStatus::Rtt, level)
    }

    /// `RMI_ERROR_INPUT`.
    pub const fn input() -> RmiError {
        RmiError::new(ErrorStatus::Input, 0)
    }

    /// Decodes the `x0` of an RMI return.
    pub const fn decode(x0: u64) -> RmiResult {
        // CAST: the status is x0[7:0], the index x0[15:8]; higher bits are RES0.
        let code = (x0 & 0xff) as u8;
        let index = ((x0 >> 8) & 0xff) as u8;
        if code == 0 {
            Ok(())
        } else {
            Err(RmiError::new(ErrorStatus::from_code(code), index))
        }
    }

    /// Encodes back into an `x0` value (used by the RMM model).
    pub const fn encode(self) -> u64 {
        // CAST: widening u8 -> u64.
        self.status.code() as u64 | ((self.index as u64) << 8)
    }

    /// The errno userspace sees when this RMI failure ends an ioctl.
    ///
    /// `ERROR_INPUT` is `EINVAL`; a realm or REC in the wrong state is
    /// `EPERM`/`EBUSY`; an RTT the host failed to prepare is `ENXIO`
    /// (a host bug, also reported in the log); anything else is `EIO`.
    pub const fn errno(self) -> i32 {
        match self.status {
            ErrorStatus::Input => crate::cvm_fw::errno::EINVAL,
            ErrorStatus::Realm => crate::cvm_fw::errno::EPERM,
            ErrorStatus::Rec => crate::cvm_fw::errno::EBUSY,
            ErrorStatus::Rtt => crate::cvm_fw::errno::ENXIO,
            ErrorStatus::Unknown(_) => crate::cvm_fw::errno::EIO,
        }
    }
}

/// An RMI interface version, `major << 16 | minor` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RmiVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl RmiVersion {
    /// RMM specification 1.0.
    pub const V1_0: RmiVersion = RmiVersion { major: 1, minor: 0 };

    /// The wire encoding.
    pub const fn encode(self) -> u64 {
        // CAST: widening u16 -> u64.
        ((self.major as u64) << 16) | self.minor as u64
    }

    /// Decodes the wire encoding (bits above 31 are ignored, as RES0).
    pub const fn decode(v: u64) -> RmiVersion {
        // CAST: masked to 16 bits each.
        RmiVersion {
            major: ((v >> 16) & 0x7fff) as u16,
            minor: (v & 0xffff) as u16,
        }
    }
}

/// What `RMI_VERSION` reported, and which ABI the host will speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Lowest version the RMM implements.
    pub lower: RmiVersion,
    /// Highest version the RMM implements.
    pub higher: RmiVersion,
}

/// The interface versions this host implements, newest first.
pub const SUPPORTED: [RmiVersion; 1] = [RmiVersion::V1_0];

/// Picks the ABI to speak: the newest [`SUPPORTED`] version inside the
/// RMM's `[lower, higher]` range, where a minor revision the host does not
/// know is accepted for a major it does (minor versions are compatible).
pub fn negotiate(info: VersionInfo) -> Option<RmiVersion> {
    SUPPORTED.iter().copied().find(|v| {
        (info.lower.major < v.major || (info.lower.major == v.major && info.lower.minor <= v.minor))
            && (info.higher.major > v.major
                || (info.higher.major == v.major && info.higher.minor >= v.minor))
    })
}
