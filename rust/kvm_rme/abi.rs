// SPDX-License-Identifier: GPL-2.0

//! The Realm Management Interface: version-neutral types.
//!
//! Each RMM specification version the host speaks has its own private
//! submodule (`v1_0`, `v2_0`) with its shared-memory layouts and register
//! encodings; the function IDs of both are one table (`command`).  This
//! module is the one face the rest of the backend sees: it holds what the
//! versions share (addresses, the status word, version numbers, the
//! commands) and re-exports the versioned items.  The logic is written
//! against the neutral items and asks the conduit which version it speaks
//! ([`crate::logic::rmi::Rmi::abi`]); only the conduits (the SMC conduit,
//! the RMM model, the test RMM's decoder) encode a version's layouts, the
//! 2.0 ones through [`v2`].
//! Status codes from the firmware stay [`RmiError`]; they become an errno
//! only at the uAPI edge, through [`RmiError::errno`].

mod command;
mod v1_0;
mod v2_0;

pub use command::{CallCounts, Command};
pub use v1_0::{enter_flags, exit_reason};
pub use v1_0::{Features0, HashAlgo, RealmParams};
pub use v1_0::{RecEnter, RecExit, RecParams, RecRun, Ripas, RttEntry, RttEntryState};
pub use v1_0::{DATA_FLAG_MEASURE, GICV3_HCR_HOST_MASK, MAX_REC_AUX_GRANULES, MAX_START_RTTS};
pub use v1_0::{REC_GIC_NUM_LRS, REC_NUM_GPRS, REC_PARAMS_FLAG_RUNNABLE};

/// A physical address the host hands to the RMM.
pub use crate::cvm_fw::addr::Pa;

/// The RMI 2.0 wire formats, for the conduits.
pub mod v2 {
    pub use super::v2_0::{incomplete, AddrRangeDesc, DonateReq, Features1, MemRequest};
    pub use super::v2_0::{RealmParams, RecParams, RecRun, RmmConfig};
    pub use super::v2_0::{ADDR_TYPE_SINGLE, RECLAIM_FLAG_UNDELEGATED};
}

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
    /// 2.0 `RMI_ERROR_NOT_SUPPORTED` (5): the command is not implemented.
    NotSupported,
    /// 2.0 `RMI_BUSY` (10): a shared object is in use; nothing changed and
    /// the same call may be made again.
    Busy,
    /// 2.0 `RMI_ERROR_GLOBAL` (11): the RMM is not in the state the
    /// command needs (not activated, for one).
    Global,
    /// 2.0 `RMI_INCOMPLETE` (13): a stateful operation is in progress; the
    /// conduits turn it into [`crate::logic::rmi::Sro::Incomplete`].
    Incomplete,
    /// 2.0 `RMI_BLOCKED` (14): another operation on the object must finish
    /// first; nothing changed.
    Blocked,
    /// 2.0 `RMI_ERROR_GPT` (15): a GPT walk ended at an unexpected level.
    Gpt,
    /// A status this host does not know (device, SMMU and plane statuses
    /// 6 to 9 and 12 included: the host uses none of those features).
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
            ErrorStatus::NotSupported => 5,
            ErrorStatus::Busy => 10,
            ErrorStatus::Global => 11,
            ErrorStatus::Incomplete => 13,
            ErrorStatus::Blocked => 14,
            ErrorStatus::Gpt => 15,
            ErrorStatus::Unknown(c) => c,
        }
    }

    const fn from_code(c: u8) -> ErrorStatus {
        match c {
            1 => ErrorStatus::Input,
            2 => ErrorStatus::Realm,
            3 => ErrorStatus::Rec,
            4 => ErrorStatus::Rtt,
            5 => ErrorStatus::NotSupported,
            10 => ErrorStatus::Busy,
            11 => ErrorStatus::Global,
            13 => ErrorStatus::Incomplete,
            14 => ErrorStatus::Blocked,
            15 => ErrorStatus::Gpt,
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

    /// Decodes the `x0` of an RMI return.  A 2.0 `RMI_INCOMPLETE` is an
    /// [`ErrorStatus::Incomplete`] here, its memory request in the index;
    /// the commands that start stateful operations decode it further.
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
    /// (a host bug, also reported in the log); a `BUSY` or `BLOCKED` the
    /// host's retries did not get past is `EBUSY`; a command the RMM does
    /// not implement is `EOPNOTSUPP`; anything else is `EIO`.
    pub const fn errno(self) -> i32 {
        match self.status {
            ErrorStatus::Input => crate::cvm_fw::errno::EINVAL,
            ErrorStatus::Realm => crate::cvm_fw::errno::EPERM,
            ErrorStatus::Rec | ErrorStatus::Busy | ErrorStatus::Blocked => {
                crate::cvm_fw::errno::EBUSY
            }
            ErrorStatus::Rtt => crate::cvm_fw::errno::ENXIO,
            ErrorStatus::NotSupported => crate::cvm_fw::errno::EOPNOTSUPP,
            ErrorStatus::Global
            | ErrorStatus::Incomplete
            | ErrorStatus::Gpt
            | ErrorStatus::Unknown(_) => crate::cvm_fw::errno::EIO,
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
    /// RMM specification 2.0 (TF-RMM v0.9.0).
    pub const V2_0: RmiVersion = RmiVersion { major: 2, minor: 0 };

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
pub const SUPPORTED: [RmiVersion; 2] = [RmiVersion::V2_0, RmiVersion::V1_0];

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
