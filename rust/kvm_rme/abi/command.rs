// SPDX-License-Identifier: GPL-2.0

//! The RMI commands of every version the host speaks, in one table.
//!
//! Function numbers are unique across RMI 1.0 and 2.0: 2.0 removed five
//! 1.0 commands, added its own at new numbers, and kept the rest, 0x153
//! among them, which 2.0 calls `RTT_DATA_MAP_INIT` and which takes the
//! arguments of 1.0's `DATA_CREATE`.  One table therefore names every call
//! a host can make, and one set of counters ([`CallCounts`]) reports both
//! versions.  [`Command::in_version`] says which version has a command.

use super::RmiVersion;

/// Function-ID base: SMC64, fast call, standard-service range.
const FID_BASE: u32 = 0xC400_0000;

crate::cvm_fw::calls::call_table! {
    /// The RMI commands.  The discriminant is the function-number part of
    /// the SMC function ID ([`Command::fid`]).
    pub enum Command: u32, counted by CallCounts {
        /// `RMI_VERSION(req) -> (lower, higher)`.
        Version = 0x150,
        /// 1.0 `RMI_GRANULE_DELEGATE(pa)`.
        GranuleDelegate = 0x151,
        /// 1.0 `RMI_GRANULE_UNDELEGATE(pa)`.
        GranuleUndelegate = 0x152,
        /// 1.0 `RMI_DATA_CREATE`, 2.0 `RMI_RTT_DATA_MAP_INIT`:
        /// `(rd, data, ipa, src, flags)`.
        DataCreate = 0x153,
        /// 1.0 `RMI_DATA_CREATE_UNKNOWN(rd, data, ipa)`.
        DataCreateUnknown = 0x154,
        /// 1.0 `RMI_DATA_DESTROY(rd, ipa) -> (data, top)`.
        DataDestroy = 0x155,
        /// `RMI_REALM_ACTIVATE(rd)`.
        RealmActivate = 0x157,
        /// `RMI_REALM_CREATE(rd, params)`.
        RealmCreate = 0x158,
        /// `RMI_REALM_DESTROY(rd)`.
        RealmDestroy = 0x159,
        /// `RMI_REC_CREATE(rd, rec, params)`; in 2.0 a stateful operation.
        RecCreate = 0x15A,
        /// `RMI_REC_DESTROY(rec)`; in 2.0 a stateful operation.
        RecDestroy = 0x15B,
        /// `RMI_REC_ENTER(rec, run)`.
        RecEnter = 0x15C,
        /// `RMI_RTT_CREATE(rd, rtt, ipa, level)`.
        RttCreate = 0x15D,
        /// `RMI_RTT_DESTROY(rd, ipa, level) -> (rtt, top)`.
        RttDestroy = 0x15E,
        /// `RMI_RTT_MAP_UNPROTECTED(rd, ipa, level, desc)`.
        RttMapUnprotected = 0x15F,
        /// `RMI_RTT_READ_ENTRY(rd, ipa, level) -> (level, state, desc, ripas)`.
        RttReadEntry = 0x161,
        /// `RMI_RTT_UNMAP_UNPROTECTED(rd, ipa, level) -> top`.
        RttUnmapUnprotected = 0x162,
        /// `RMI_PSCI_COMPLETE(calling_rec, target_rec, status)`.
        PsciComplete = 0x164,
        /// `RMI_FEATURES(index) -> value`.
        Features = 0x165,
        /// `RMI_RTT_FOLD(rd, ipa, level) -> rtt`.
        RttFold = 0x166,
        /// 1.0 `RMI_REC_AUX_COUNT(rd) -> count`.
        RecAuxCount = 0x167,
        /// `RMI_RTT_INIT_RIPAS(rd, base, top) -> top`.
        RttInitRipas = 0x168,
        /// `RMI_RTT_SET_RIPAS(rd, rec, base, top) -> top`.
        RttSetRipas = 0x169,
        /// 2.0 `RMI_RMM_CONFIG_SET(config)`.
        RmmConfigSet = 0x16E,
        /// 2.0 `RMI_GRANULE_RANGE_DELEGATE(base, top) -> next`.
        GranuleRangeDelegate = 0x1F1,
        /// 2.0 `RMI_GRANULE_RANGE_UNDELEGATE(base, top) -> next`.
        GranuleRangeUndelegate = 0x1F2,
        /// 2.0 `RMI_RTT_DATA_MAP(rd, base, top, flags, oaddr) -> next`.
        RttDataMap = 0x1F5,
        /// 2.0 `RMI_RTT_DATA_UNMAP(rd, base, top, flags, list) -> (top, range, count)`.
        RttDataUnmap = 0x1F6,
        /// 2.0 `RMI_RMM_ACTIVATE()`.
        RmmActivate = 0x202,
        /// 2.0 `RMI_OP_CONTINUE(handle, flags)`.
        OpContinue = 0x203,
        /// 2.0 `RMI_OP_MEM_DONATE(handle, list, count) -> consumed`.
        OpMemDonate = 0x208,
        /// 2.0 `RMI_OP_MEM_RECLAIM(handle, list, count) -> written`.
        OpMemReclaim = 0x209,
        /// 2.0 `RMI_OP_CANCEL(handle)`.
        OpCancel = 0x20A,
    }
}

impl Command {
    /// The SMC function ID.
    pub const fn fid(self) -> u32 {
        FID_BASE | self.number()
    }

    /// The command with function ID `fid`, if the table has it.
    pub fn from_fid(fid: u32) -> Option<Command> {
        Command::from_number(fid.checked_sub(FID_BASE)?)
    }

    /// Whether interface version `v` (major 1 or 2) has this command.
    pub const fn in_version(self, v: RmiVersion) -> bool {
        let only_1_0 = matches!(
            self,
            Command::GranuleDelegate
                | Command::GranuleUndelegate
                | Command::DataCreateUnknown
                | Command::DataDestroy
                | Command::RecAuxCount
        );
        let only_2_0 = self.number() > Command::RttSetRipas.number();
        match v.major {
            1 => !only_2_0,
            2 => !only_1_0,
            _ => false,
        }
    }

    /// The specification's name, as a C string for the
    /// `kvm_rme:kvm_rme_rmi_error` tracepoint.  0x153 has 1.0's name; the
    /// trace line's function ID tells the versions apart.
    pub const fn name(self) -> &'static core::ffi::CStr {
        match self {
            Command::Version => c"VERSION",
            Command::GranuleDelegate => c"GRANULE_DELEGATE",
            Command::GranuleUndelegate => c"GRANULE_UNDELEGATE",
            Command::DataCreate => c"DATA_CREATE",
            Command::DataCreateUnknown => c"DATA_CREATE_UNKNOWN",
            Command::DataDestroy => c"DATA_DESTROY",
            Command::RealmActivate => c"REALM_ACTIVATE",
            Command::RealmCreate => c"REALM_CREATE",
            Command::RealmDestroy => c"REALM_DESTROY",
            Command::RecCreate => c"REC_CREATE",
            Command::RecDestroy => c"REC_DESTROY",
            Command::RecEnter => c"REC_ENTER",
            Command::RttCreate => c"RTT_CREATE",
            Command::RttDestroy => c"RTT_DESTROY",
            Command::RttMapUnprotected => c"RTT_MAP_UNPROTECTED",
            Command::RttReadEntry => c"RTT_READ_ENTRY",
            Command::RttUnmapUnprotected => c"RTT_UNMAP_UNPROTECTED",
            Command::PsciComplete => c"PSCI_COMPLETE",
            Command::Features => c"FEATURES",
            Command::RttFold => c"RTT_FOLD",
            Command::RecAuxCount => c"REC_AUX_COUNT",
            Command::RttInitRipas => c"RTT_INIT_RIPAS",
            Command::RttSetRipas => c"RTT_SET_RIPAS",
            Command::RmmConfigSet => c"RMM_CONFIG_SET",
            Command::GranuleRangeDelegate => c"GRANULE_RANGE_DELEGATE",
            Command::GranuleRangeUndelegate => c"GRANULE_RANGE_UNDELEGATE",
            Command::RttDataMap => c"RTT_DATA_MAP",
            Command::RttDataUnmap => c"RTT_DATA_UNMAP",
            Command::RmmActivate => c"RMM_ACTIVATE",
            Command::OpContinue => c"OP_CONTINUE",
            Command::OpMemDonate => c"OP_MEM_DONATE",
            Command::OpMemReclaim => c"OP_MEM_RECLAIM",
            Command::OpCancel => c"OP_CANCEL",
        }
    }
}
