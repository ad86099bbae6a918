// SPDX-License-Identifier: GPL-2.0

//! The RMI command sets of 1.0 and 2.0 as one trait, and per-command call
//! counters.
//!
//! The kernel implements [`Rmi`] with SMCs; host tests implement it with
//! the executable RMM model, in either version's personality.  Realm logic
//! is written against the trait, so everything above the SMC is tested on
//! the host.  Each method is one command of one version (the commands both
//! versions have are shared); [`Rmi::abi`] says which version the other
//! side speaks, and the logic calls that version's commands only.  A
//! command the other side lacks answers `ERROR_NOT_SUPPORTED`.

pub use crate::abi::CallCounts;
use crate::abi::{HashAlgo, RealmParams, RecParams, RecRun, RttEntry};
use crate::abi::v2::DonateReq;
use crate::abi::{Ipa, Pa, RmiResult, RmiVersion, VersionInfo};
use crate::abi::{MAX_REC_AUX_GRANULES, REC_PARAMS_FLAG_RUNNABLE};

/// What `REALM_CREATE` is given; [`RealmCreate::params`] encodes the
/// 4 KiB [`RealmParams`] granule the real RMM reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmCreate {
    /// `RealmParams::flags` (LPA2, SVE, PMU).
    pub flags: u64,
    /// Stage-2 input size in bits.
    pub s2sz: u8,
    /// SVE vector length.
    pub sve_vl: u8,
    /// Breakpoints.
    pub num_bps: u8,
    /// Watchpoints.
    pub num_wps: u8,
    /// PMU counters.
    pub pmu_num_ctrs: u8,
    /// Measurement algorithm.
    pub hash_algo: HashAlgo,
    /// Realm personalization value.
    pub rpv: [u8; 64],
    /// VMID.
    pub vmid: u16,
    /// First start-level RTT.
    pub rtt_base: Pa,
    /// Start level.
    pub rtt_level_start: i8,
    /// Number of concatenated start RTTs.
    pub rtt_num_start: u8,
}

impl RealmCreate {
    /// The parameter granule, encoded once here for every conduit.
    pub fn params(&self) -> RealmParams {
        let mut p = RealmParams::default();
        p.flags = self.flags;
        p.s2sz = u64::from(self.s2sz);
        p.sve_vl = u64::from(self.sve_vl);
        p.num_bps = u64::from(self.num_bps);
        p.num_wps = u64::from(self.num_wps);
        p.pmu_num_ctrs = u64::from(self.pmu_num_ctrs);
        // CAST: fieldless `repr(u8)` enum to its discriminant.
        p.hash_algo = self.hash_algo as u8;
        p.rpv = self.rpv;
        p.vmid = self.vmid;
        p.rtt_base = self.rtt_base.0;
        p.rtt_level_start = i64::from(self.rtt_level_start);
        p.rtt_num_start = u32::from(self.rtt_num_start);
        p
    }
}

/// What `REC_CREATE` is given; [`RecCreate::params`] encodes [`RecParams`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecCreate {
    /// Whether the REC may run at once (the boot vCPU).
    pub runnable: bool,
    /// MPIDR.
    pub mpidr: u64,
    /// Entry point.
    pub pc: u64,
    /// x0..x7.
    pub gprs: [u64; 8],
    /// Auxiliary granules (the first `num_aux` are used).
    pub aux: [Pa; MAX_REC_AUX_GRANULES],
    /// How many auxiliary granules.
    pub num_aux: usize,
}

impl RecCreate {
    /// The parameter granule, encoded once here for every conduit.
    pub fn params(&self) -> RecParams {
        let mut p = RecParams::default();
        p.flags = if self.runnable {
            REC_PARAMS_FLAG_RUNNABLE
        } else {
            0
        };
        p.mpidr = self.mpidr;
        p.pc = self.pc;
        p.gprs = self.gprs;
        let n = self.num_aux.min(MAX_REC_AUX_GRANULES);
        // CAST: n <= 16.
        p.num_aux = n as u64;
        for (dst, src) in p.aux.iter_mut().zip(self.aux.iter().take(n)) {
            *dst = src.0;
        }
        p
    }
}

/// What `RMI_VERSION` returns: whether the requested version is
/// implemented, and the range the RMM implements either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionReply {
    /// `Ok` if the requested version is implemented.
    pub status: RmiResult,
    /// The RMM's range.
    pub info: VersionInfo,
}

/// Results of `DATA_DESTROY` and `RTT_DESTROY`: the granule handed back
/// (now `DELEGATED`) and the next IPA worth visiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destroyed {
    /// The released granule.
    pub pa: Pa,
    /// Top of the non-live range that follows.
    pub top: Ipa,
}

/// Where a 2.0 stateful operation (SRO) stands after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sro {
    /// The command, and the operation it started, completed.
    Done,
    /// `RMI_INCOMPLETE`: the object is in an intermediate state until the
    /// host takes [`SroStep`] on `handle`.
    Incomplete {
        /// The operation's handle (any value, 0 included).
        handle: u64,
        /// What the RMM asks for next.
        next: SroStep,
        /// Whether `OP_CANCEL` may end the operation.
        can_cancel: bool,
    },
}

/// The next step of an incomplete operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SroStep {
    /// `OP_CONTINUE`.
    Continue,
    /// `OP_MEM_DONATE` with granules as described.
    Donate(DonateReq),
    /// `OP_MEM_RECLAIM`.
    Reclaim,
}

/// Result of 2.0's `RTT_DATA_UNMAP` over one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The data granule unmapped, now `DELEGATED`; `None` when the entry
    /// at `base` was not live (nothing to unmap).
    pub pa: Option<Pa>,
    /// The next IPA worth visiting.
    pub top: Ipa,
}

/// The RMI commands of both versions, one method each.
///
/// Implementations return the firmware's status untouched; they neither
/// retry nor translate errors.
pub trait Rmi {
    /// The interface version this conduit speaks.
    fn abi(&self) -> RmiVersion;
    /// `RMI_VERSION`.  The RMM reports its range even when it does not
    /// implement `requested` (status `ERROR_INPUT`).
    fn version(&mut self, requested: RmiVersion) -> VersionReply;
    /// `RMI_FEATURES`.
    fn features(&mut self, index: u64) -> RmiResult<u64>;
    /// `RMI_GRANULE_DELEGATE`.
    fn granule_delegate(&mut self, pa: Pa) -> RmiResult;
    /// `RMI_GRANULE_UNDELEGATE`.
    fn granule_undelegate(&mut self, pa: Pa) -> RmiResult;
    /// `RMI_DATA_CREATE`.
    fn data_create(&mut self, rd: Pa, data: Pa, ipa: Ipa, src: Pa, flags: u64) -> RmiResult;
    /// `RMI_DATA_CREATE_UNKNOWN`.
    fn data_create_unknown(&mut self, rd: Pa, data: Pa, ipa: Ipa) -> RmiResult;
    /// `RMI_DATA_DESTROY`.
    fn data_destroy(&mut self, rd: Pa, ipa: Ipa) -> RmiResult<Destroyed>;
    /// `RMI_REALM_ACTIVATE`.
    fn realm_activate(&mut self, rd: Pa) -> RmiResult;
    /// `RMI_REALM_CREATE`.
    fn realm_create(&mut self, rd: Pa, params: &RealmCreate) -> RmiResult;
    /// `RMI_REALM_DESTROY`.
    fn realm_destroy(&mut self, rd: Pa) -> RmiResult;
    /// `RMI_REC_CREATE`.  In 1.0 always [`Sro::Done`] on success; in 2.0
    /// the auxiliary granules are asked for through [`Sro::Incomplete`].
    fn rec_create(&mut self, rd: Pa, rec: Pa, params: &RecCreate) -> RmiResult<Sro>;
    /// `RMI_REC_DESTROY`.  In 2.0 the auxiliary granules come back
    /// through [`SroStep::Reclaim`].
    fn rec_destroy(&mut self, rec: Pa) -> RmiResult<Sro>;
    /// `RMI_REC_ENTER`: `run` lives in a granule the RMM reads and writes.
    fn rec_enter(&mut self, rec: Pa, run: &mut RecRun) -> RmiResult;
    /// `RMI_RTT_CREATE`.
    fn rtt_create(&mut self, rd: Pa, rtt: Pa, ipa: Ipa, level: u8) -> RmiResult;
    /// `RMI_RTT_DESTROY`: the table granule, and `top`, the IPA after the
    /// non-live entries that follow in the parent table.  The RMM reports
    /// `top` on success and when the walk found no table at `level`
    /// (`ERROR_RTT` below `level`), so a caller can skip empty ranges.
    fn rtt_destroy(&mut self, rd: Pa, ipa: Ipa, level: u8) -> (RmiResult<Pa>, Ipa);
    /// `RMI_RTT_MAP_UNPROTECTED`.
    fn rtt_map_unprotected(&mut self, rd: Pa, ipa: Ipa, level: u8, desc: u64) -> RmiResult;
    /// `RMI_RTT_READ_ENTRY`.
    fn rtt_read_entry(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<RttEntry>;
    /// `RMI_RTT_UNMAP_UNPROTECTED`; returns the top of the non-live range.
    fn rtt_unmap_unprotected(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Ipa>;
    /// `RMI_PSCI_COMPLETE`.
    fn psci_complete(&mut self, calling_rec: Pa, target_rec: Pa, status: u64) -> RmiResult;
    /// `RMI_RTT_FOLD`; returns the RTT that is now free (`DELEGATED`).
    fn rtt_fold(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Pa>;
    /// `RMI_REC_AUX_COUNT`.
    fn rec_aux_count(&mut self, rd: Pa) -> RmiResult<u64>;
    /// `RMI_RTT_INIT_RIPAS`; returns how far it got.
    fn rtt_init_ripas(&mut self, rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa>;
    /// `RMI_RTT_SET_RIPAS`; returns how far it got.
    fn rtt_set_ripas(&mut self, rd: Pa, rec: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa>;

    /// 2.0 `RMI_RMM_CONFIG_SET` with the default configuration (4 KiB RMI
    /// granules, the default tracking region).
    fn rmm_config_set(&mut self) -> RmiResult;
    /// 2.0 `RMI_RMM_ACTIVATE`.
    fn rmm_activate(&mut self) -> RmiResult;
    /// 2.0 `RMI_GRANULE_RANGE_DELEGATE`: delegates from `base` towards
    /// `top`; returns where it stopped (the RMM may stop early).
    fn granule_range_delegate(&mut self, base: Pa, top: Pa) -> RmiResult<Pa>;
    /// 2.0 `RMI_GRANULE_RANGE_UNDELEGATE`, as the delegation.
    fn granule_range_undelegate(&mut self, base: Pa, top: Pa) -> RmiResult<Pa>;
    /// 2.0 `RMI_RTT_DATA_MAP` of the delegated granule `data` at `base`
    /// (one granule, zeroed; `top` bounds the range); returns the next IPA.
    fn rtt_data_map(&mut self, rd: Pa, base: Ipa, top: Ipa, data: Pa) -> RmiResult<Ipa>;
    /// 2.0 `RMI_RTT_DATA_UNMAP` from `base` (one granule per call).  On
    /// `ERROR_RTT` the walk stopped above the page level at a block.
    fn rtt_data_unmap(&mut self, rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Unmapped>;
    /// 2.0 `RMI_OP_CONTINUE`.
    fn op_continue(&mut self, handle: u64) -> RmiResult<Sro>;
    /// 2.0 `RMI_OP_MEM_DONATE` of delegated `granules`; returns how many
    /// the RMM took (the rest stay the host's) and where the operation
    /// stands.
    fn op_mem_donate(&mut self, handle: u64, granules: &[Pa]) -> RmiResult<(usize, Sro)>;
    /// 2.0 `RMI_OP_MEM_RECLAIM`: granules the RMM gives back (delegated)
    /// are written to `out`; returns how many, and where the operation
    /// stands.
    fn op_mem_reclaim(&mut self, handle: u64, out: &mut [Pa]) -> RmiResult<(usize, Sro)>;
    /// 2.0 `RMI_OP_CANCEL`.
    fn op_cancel(&mut self, handle: u64) -> RmiResult;
}
