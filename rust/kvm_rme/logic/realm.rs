// SPDX-License-Identifier: GPL-2.0

//! Realm lifecycle over the RMI 1.0 commands.
//!
//! [`Realm`] owns the realm's granules and keeps the counters KVM exports:
//! it creates the RD and the concatenated start-level RTTs, sets RIPAS,
//! populates measured data, maps private pages at fault time (creating
//! RTTs on demand and folding full 2 MiB tables into blocks), maps shared
//! pages at the unprotected alias, creates and destroys RECs, activates
//! the realm and tears it down in an order the RMM accepts.  A granule
//! whose undelegation fails is leaked on purpose and counted in
//! [`RealmStats::leaked`]; no delegated granule reaches the allocator.
//!
//! Every loop that reacts to RMM answers is bounded, so a misbehaving RMM
//! yields an error, never a livelock.

use crate::abi::{
    Command, HashAlgo, RttEntryState, DATA_FLAG_MEASURE, MAX_REC_AUX_GRANULES, MAX_START_RTTS,
};
use crate::abi::{ErrorStatus, Ipa, Pa, RmiError, GRANULE_SIZE};
use crate::cvm_fw::{count, errno};
use crate::logic::granule::{busy_retried, delegate, delegate_command, retried, undelegate, TEARDOWN_TRIES};
use crate::logic::granule::{Delegated, GranuleAlloc, Undelegated};
use crate::logic::rmi::{Destroyed, RealmCreate, RecCreate, Rmi, Sro, SroStep};

/// Deepest RTT level (4 KiB pages).
pub const RTT_PAGE_LEVEL: u8 = 3;
/// Level whose entries map 2 MiB blocks.
pub const RTT_BLOCK_LEVEL: u8 = 2;

/// Bytes mapped by one entry of an RTT at `level` (0..=3).
pub const fn level_size(level: u8) -> u64 {
    1u64 << (12 + 9 * (3 - level as u32))
}

const fn align_down(x: u64, size: u64) -> u64 {
    x & !(size - 1)
}

/// Stage-2 shape of a realm's IPA space with 4 KiB granules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// IPA width in bits; the top bit selects the unprotected alias.
    pub ipa_bits: u8,
    /// Level of the start RTTs.
    pub start_level: u8,
    /// Number of concatenated start RTTs (1..=16).
    pub num_start: u8,
}

impl Geometry {
    /// Smallest IPA width accepted.
    pub const MIN_IPA_BITS: u8 = 32;
    /// Largest IPA width accepted without LPA2.
    pub const MAX_IPA_BITS: u8 = 48;

    /// The geometry for `ipa_bits`, the way Linux sizes stage 2: as few
    /// levels as possible, concatenating up to 16 start tables.
    pub const fn new(ipa_bits: u8) -> Option<Geometry> {
        if ipa_bits < Self::MIN_IPA_BITS || ipa_bits > Self::MAX_IPA_BITS {
            return None;
        }
        let levels = (ipa_bits - 8) / 9;
        let start_level = 4 - levels;
        let span_bits = 12 + 9 * (4 - start_level as u32);
        let num = if ipa_bits as u32 > span_bits {
            1u32 << (ipa_bits as u32 - span_bits)
        } else {
            1
        };
        // CAST: num <= 16 for 32..=48 bits (checked by the tests).
        Some(Geometry {
            ipa_bits,
            start_level,
            num_start: num as u8,
        })
    }

    /// The IPA bit that selects the unprotected (shared) alias.
    pub const fn shared_bit(&self) -> u64 {
        1u64 << (self.ipa_bits - 1)
    }

    /// Whether `ipa` is in the protected (private) half.
    pub const fn is_protected(&self, ipa: Ipa) -> bool {
        ipa.0 < self.shared_bit()
    }

    /// Whether `ipa` is inside the IPA space.
    pub const fn contains(&self, ipa: Ipa) -> bool {
        ipa.0 < (1u64 << self.ipa_bits)
    }

    /// Number of entries across the concatenated start tables.
    pub const fn start_entries(&self) -> usize {
        512 * self.num_start as usize
    }
}

/// Why a realm operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealmError {
    /// The RMM refused `cmd`.
    Rmi {
        /// The command.
        cmd: Command,
        /// Its status.
        err: RmiError,
    },
    /// No memory for a granule.
    NoMemory,
    /// Bad argument from the VMM (alignment, range, alias).
    Invalid,
    /// Not allowed in the realm's current state.
    State,
    /// Busy: RECs still exist, the vCPU is in use, or no VMID the RMM
    /// accepts was found.
    Busy,
    /// The thing to create exists already (the realm, a vCPU's REC).
    Exists,
    /// A guest address no memslot backs the way the operation needs.
    Fault,
    /// Interrupted by a signal, or asked not to run (`immediate_exit`).
    Interrupted,
    /// A kernel service the host logic called (guest_memfd, page pinning)
    /// failed with this errno (positive); it reaches userspace unchanged.
    Kernel(i32),
    /// The RMM answered in a way the specification does not allow, or a
    /// count it drives would overflow or go negative.
    Protocol,
}

impl RealmError {
    /// The errno for userspace: the one place a realm failure becomes
    /// one (the kernel shims negate it for C).
    pub const fn errno(self) -> i32 {
        match self {
            RealmError::Rmi { err, .. } => err.errno(),
            RealmError::NoMemory => errno::ENOMEM,
            RealmError::Invalid => errno::EINVAL,
            RealmError::State => errno::EPERM,
            RealmError::Busy => errno::EBUSY,
            RealmError::Exists => errno::EEXIST,
            RealmError::Fault => errno::EFAULT,
            RealmError::Interrupted => errno::EINTR,
            RealmError::Kernel(e) => e,
            RealmError::Protocol => errno::EIO,
        }
    }

    fn rmi(cmd: Command) -> impl FnOnce(RmiError) -> RealmError {
        move |err| RealmError::Rmi { cmd, err }
    }
}

/// Result of realm operations.
pub type Result<T = ()> = core::result::Result<T, RealmError>;

/// What the VMM chose for a realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmConfig {
    /// IPA width, including the shared bit.
    pub ipa_bits: u8,
    /// Measurement algorithm.
    pub hash_algo: HashAlgo,
    /// Realm personalization value.
    pub rpv: [u8; 64],
    /// VMID.
    pub vmid: u16,
    /// `RealmParams::flags`.
    pub flags: u64,
    /// SVE vector length.
    pub sve_vl: u8,
    /// Breakpoints.
    pub num_bps: u8,
    /// Watchpoints.
    pub num_wps: u8,
    /// PMU counters.
    pub pmu_num_ctrs: u8,
}

impl RealmConfig {
    /// SHA-256, zero RPV, no optional features, one breakpoint and one
    /// watchpoint (the RMM refuses zero).
    pub const fn new(ipa_bits: u8, vmid: u16) -> RealmConfig {
        RealmConfig {
            ipa_bits,
            hash_algo: HashAlgo::Sha256,
            rpv: [0; 64],
            vmid,
            flags: 0,
            sve_vl: 0,
            num_bps: 1,
            num_wps: 1,
            pmu_num_ctrs: 0,
        }
    }
}

/// Lifecycle state as the host tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealmState {
    /// Created, not yet activated: data may be populated, RECs created.
    New,
    /// Activated: RECs may run.
    Active,
    /// The realm called `SYSTEM_OFF`; only teardown remains.
    SystemOff,
    /// Torn down: the RD no longer exists.
    Destroyed,
}

/// Counters KVM exports per realm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealmStats {
    /// Granules the realm currently holds delegated (leaks excluded).
    pub delegated: u64,
    /// RTT granules, the start-level ones included.
    pub rtt_pages: u64,
    /// Private pages mapped (each 4 KiB, also inside folded blocks).
    pub data_pages: u64,
    /// Granules whose undelegation failed, deliberately never freed.
    pub leaked: u64,
    /// RMM answers that contradict the host's counts (it gave back more
    /// than it was lent); the counts stop at zero.  Always 0 with an RMM
    /// that follows the specification; the kernel warns otherwise.
    pub anomalies: u64,
}

/// A REC: one realm vCPU's context, and its auxiliary granules.
#[derive(Debug, PartialEq, Eq)]
pub struct Rec {
    pa: Pa,
    aux: [Pa; MAX_REC_AUX_GRANULES],
    num_aux: usize,
    mpidr: u64,
}

impl Rec {
    /// The REC granule.
    pub fn pa(&self) -> Pa {
        self.pa
    }

    /// The vCPU's MPIDR.
    pub fn mpidr(&self) -> u64 {
        self.mpidr
    }
}

/// Unprotected stage-2 descriptor attributes the host may set: MemAttr
/// (bits 4:2, FEAT_S2FWB encoding 0b110: normal write-back) and S2AP
/// (bits 7:6, read/write).  Shareability and the access flag belong to
/// the RMM: a descriptor with other bits set is refused.
pub const UNPROTECTED_ATTRS: u64 = (0b110 << 2) | (0b11 << 6);

/// Bound on the RTT-creation retries of one operation (one per level).
const MAX_RETRIES: usize = 4;

/// One realm, as the host sees it.
#[derive(Debug)]
pub struct Realm {
    rd: Pa,
    roots: Pa,
    geo: Geometry,
    state: RealmState,
    aux_count: Option<usize>,
    recs: usize,
    stats: RealmStats,
    /// Start-level entries that point to a table the host created.
    tables: [u64; MAX_START_RTTS * 512 / 64],
}

impl Realm {
    /// Delegates an RD and the start RTTs and issues `REALM_CREATE`.
    ///
    /// On failure everything taken is given back (or counted as leaked in
    /// the returned stats, if an undelegation fails).
    pub fn create<R: Rmi, A: GranuleAlloc>(
        rmi: &mut R,
        alloc: &mut A,
        cfg: &RealmConfig,
    ) -> core::result::Result<Realm, (RealmError, RealmStats)> {
        let Some(geo) = Geometry::new(cfg.ipa_bits) else {
            return Err((RealmError::Invalid, RealmStats::default()));
        };
        let mut realm = Realm {
            rd: Pa(0),
            roots: Pa(0),
            geo,
            state: RealmState::Destroyed,
            aux_count: None,
            recs: 0,
            stats: RealmStats::default(),
            tables: [0; MAX_START_RTTS * 512 / 64],
        };
        let rd = match realm.take_granule(rmi, alloc) {
            Ok(g) => g,
            Err(e) => return Err((e, realm.stats)),
        };
        let n = usize::from(geo.num_start);
        let Some(base) = alloc.alloc_contiguous(n) else {
            realm.give_back(rmi, alloc, rd);
            return Err((RealmError::NoMemory, realm.stats));
        };
        let mut roots: [Option<Delegated>; MAX_START_RTTS] = Default::default();
        let mut failed = None;
        for i in 0..n {
            // CAST: i < 16.
            let page = Undelegated::from_host_page(base.add_pages(i as u64));
            let Some(page) = page else {
                failed = Some(RealmError::Protocol);
                break;
            };
            if failed.is_some() {
                alloc.free(page);
                continue;
            }
            match delegate(rmi, page) {
                Ok(g) => {
                    count::add(&mut realm.stats.delegated, 1);
                    roots[i] = Some(g);
                }
                Err((page, e)) => {
                    alloc.free(page);
                    failed = Some(RealmError::Rmi {
                        cmd: delegate_command(rmi),
                        err: e,
                    });
                }
            }
        }
        let params = RealmCreate {
            flags: cfg.flags,
            s2sz: cfg.ipa_bits,
            sve_vl: cfg.sve_vl,
            num_bps: cfg.num_bps,
            num_wps: cfg.num_wps,
            pmu_num_ctrs: cfg.pmu_num_ctrs,
            hash_algo: cfg.hash_algo,
            rpv: cfg.rpv,
            vmid: cfg.vmid,
            rtt_base: base,
            // CAST: the start level is 0..=3.
            rtt_level_start: geo.start_level as i8,
            rtt_num_start: geo.num_start,
        };
        let created = match failed {
            Some(e) => Err(e),
            None => rmi
                .realm_create(rd.pa(), &params)
                .map_err(RealmError::rmi(Command::RealmCreate)),
        };
        if let Err(e) = created {
            for g in roots.into_iter().flatten() {
                realm.give_back(rmi, alloc, g);
            }
            realm.give_back(rmi, alloc, rd);
            return Err((e, realm.stats));
        }
        for g in roots.into_iter().flatten() {
            let _ = g.hand_over();
        }
        realm.rd = rd.hand_over();
        realm.roots = base;
        realm.stats.rtt_pages = u64::from(geo.num_start);
        realm.state = RealmState::New;
        Ok(realm)
    }

    /// The RD's address.
    pub fn rd(&self) -> Pa {
        self.rd
    }

    /// The realm's stage-2 geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Lifecycle state.
    pub fn state(&self) -> RealmState {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> RealmStats {
        self.stats
    }

    /// Number of live RECs.
    pub fn recs(&self) -> usize {
        self.recs
    }

    /// Records that the realm reported `SYSTEM_OFF` (from REC entry).
    pub fn mark_system_off(&mut self) {
        if self.state != RealmState::Destroyed {
            self.state = RealmState::SystemOff;
        }
    }

    fn alive(&self) -> Result {
        if self.state == RealmState::Destroyed {
            Err(RealmError::State)
        } else {
            Ok(())
        }
    }

    fn take_granule<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
    ) -> Result<Delegated> {
        let page = alloc.alloc().ok_or(RealmError::NoMemory)?;
        match delegate(rmi, page) {
            Ok(g) => {
                count::add(&mut self.stats.delegated, 1);
                Ok(g)
            }
            Err((page, e)) => {
                alloc.free(page);
                Err(RealmError::Rmi {
                    cmd: delegate_command(rmi),
                    err: e,
                })
            }
        }
    }

    /// Undelegates `g` and frees it; leaks it (counted) if that fails.
    fn give_back<R: Rmi, A: GranuleAlloc>(&mut self, rmi: &mut R, alloc: &mut A, g: Delegated) {
        count::take_or_note(&mut self.stats.delegated, 1, &mut self.stats.anomalies);
        match undelegate(rmi, g) {
            Ok(page) => alloc.free(page),
            Err((_leaked, _)) => count::add(&mut self.stats.leaked, 1),
        }
    }

    /// As [`Realm::give_back`], for a data page owned by the VMM.
    fn give_back_data<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        g: Delegated,
    ) {
        count::take_or_note(&mut self.stats.delegated, 1, &mut self.stats.anomalies);
        match undelegate(rmi, g) {
            Ok(page) => alloc.release_data(page),
            Err((_leaked, _)) => count::add(&mut self.stats.leaked, 1),
        }
    }

    fn start_index(&self, ipa: u64) -> usize {
        // CAST: bounded by start_entries() <= 8192.
        (ipa / level_size(self.geo.start_level)) as usize
    }

    fn mark_table(&mut self, ipa: u64, present: bool) {
        let i = self.start_index(ipa);
        if let Some(w) = self.tables.get_mut(i / 64) {
            if present {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Creates the RTTs for `ipa` from level `reached + 1` down to
    /// `target`, after an RMI command reported `ERROR_RTT(reached)`.
    fn create_rtts<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        reached: u8,
        target: u8,
    ) -> Result {
        if reached < self.geo.start_level || target > RTT_PAGE_LEVEL {
            return Err(RealmError::Protocol);
        }
        for level in reached + 1..=target {
            let g = self.take_granule(rmi, alloc)?;
            let base = Ipa(align_down(ipa.0, level_size(level - 1)));
            match rmi.rtt_create(self.rd, g.pa(), base, level) {
                Ok(()) => {
                    let _ = g.hand_over();
                    count::add(&mut self.stats.rtt_pages, 1);
                    if level == self.geo.start_level + 1 {
                        self.mark_table(base.0, true);
                    }
                }
                // The table exists already (created by a concurrent path).
                Err(e) if e.status == ErrorStatus::Rtt && e.index == level - 1 => {
                    self.give_back(rmi, alloc, g);
                }
                Err(e) => {
                    self.give_back(rmi, alloc, g);
                    return Err(RealmError::Rmi {
                        cmd: Command::RttCreate,
                        err: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs `op`, creating missing RTTs down to `target` when it reports
    /// `ERROR_RTT` at a shallower level, and retries (boundedly).
    fn with_rtts<R: Rmi, A: GranuleAlloc, T>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        target: u8,
        cmd: Command,
        mut op: impl FnMut(&mut R, Pa) -> crate::abi::RmiResult<T>,
    ) -> Result<T> {
        for _ in 0..MAX_RETRIES {
            match op(rmi, self.rd) {
                Ok(v) => return Ok(v),
                Err(e) if e.status == ErrorStatus::Rtt && e.index < target => {
                    self.create_rtts(rmi, alloc, ipa, e.index, target)?;
                }
                Err(e) => return Err(RealmError::Rmi { cmd, err: e }),
            }
        }
        Err(RealmError::Protocol)
    }

    fn check_private(&self, ipa: Ipa) -> Result {
        if ipa.0 % GRANULE_SIZE != 0 || !self.geo.is_protected(ipa) {
            return Err(RealmError::Invalid);
        }
        Ok(())
    }

    /// Sets RIPAS to RAM over `[base, top)` (realm NEW only), creating
    /// RTTs where a range edge does not fall on a block boundary.
    pub fn init_ripas<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        base: Ipa,
        top: Ipa,
    ) -> Result {
        if self.state != RealmState::New {
            return Err(RealmError::State);
        }
        let rd = self.rd;
        self.walk_ripas(
            rmi,
            alloc,
            base,
            top,
            Command::RttInitRipas,
            false,
            |rmi, cur| rmi.rtt_init_ripas(rd, cur, top),
        )
        .map(|_| ())
    }

    /// Answers a REC's RIPAS change request (`RTT_SET_RIPAS`) over
    /// `[base, top)`, creating RTTs where the RMM needs a deeper level.
    /// Returns where the RMM stopped: it may stop early (for example at a
    /// block it will not split), and the REC then reports that progress to
    /// the realm.  Active realm only.
    pub fn set_ripas<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        rec: &Rec,
        base: Ipa,
        top: Ipa,
    ) -> Result<Ipa> {
        self.alive()?;
        if self.state != RealmState::Active {
            return Err(RealmError::State);
        }
        let (rd, rec) = (self.rd, rec.pa);
        self.walk_ripas(
            rmi,
            alloc,
            base,
            top,
            Command::RttSetRipas,
            true,
            |rmi, cur| rmi.rtt_set_ripas(rd, rec, cur, top),
        )
    }

    /// Calls `op` (`RTT_INIT_RIPAS` or `RTT_SET_RIPAS` from an IPA) until
    /// `[base, top)` is covered, creating the RTT level the RMM asks for on
    /// `ERROR_RTT`.  With `partial`, another failure after some progress
    /// ends the walk where it stopped instead of failing it.  Returns where
    /// the walk ended.
    #[allow(clippy::too_many_arguments)]
    fn walk_ripas<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        base: Ipa,
        top: Ipa,
        cmd: Command,
        partial: bool,
        mut op: impl FnMut(&mut R, Ipa) -> crate::abi::RmiResult<Ipa>,
    ) -> Result<Ipa> {
        if base.0 % GRANULE_SIZE != 0
            || top.0 % GRANULE_SIZE != 0
            || base.0 >= top.0
            || top.0 > self.geo.shared_bit()
        {
            return Err(RealmError::Invalid);
        }
        let mut cur = base.0;
        // Each call either advances or creates one RTT level; both are
        // bounded by the range's page count and the level count.
        let mut budget = 4 + 2 * ((top.0 - base.0) / GRANULE_SIZE);
        while cur < top.0 {
            if budget == 0 {
                return Err(RealmError::Protocol);
            }
            budget -= 1;
            match op(rmi, Ipa(cur)) {
                Ok(next) if next.0 > cur && next.0 <= top.0 => cur = next.0,
                Ok(_) => return Err(RealmError::Protocol),
                Err(e) if e.status == ErrorStatus::Rtt && e.index < RTT_PAGE_LEVEL => {
                    self.create_rtts(rmi, alloc, Ipa(cur), e.index, e.index + 1)?;
                }
                // Progress already made stands; the realm sees where it
                // stopped.
                Err(_) if partial && cur > base.0 => break,
                Err(err) => return Err(RealmError::Rmi { cmd, err }),
            }
        }
        Ok(Ipa(cur))
    }

    /// Delegates `page`, and maps it at `ipa` with the contents of `src`
    /// (`DATA_CREATE`), extending the measurement if `measure`.  Realm NEW
    /// only.  On failure the page goes back through
    /// [`GranuleAlloc::release_data`] (or is leaked, counted).
    pub fn populate<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        page: Undelegated,
        src: Pa,
        measure: bool,
    ) -> Result {
        let flags = if measure { DATA_FLAG_MEASURE } else { 0 };
        let ok = self.state == RealmState::New;
        self.map_data(
            rmi,
            alloc,
            ipa,
            page,
            ok,
            Command::DataCreate,
            move |rmi, rd, data| rmi.data_create(rd, data, ipa, src, flags),
        )
    }

    /// Maps `page` at private `ipa` with unknown contents
    /// (`DATA_CREATE_UNKNOWN`): the stage-2 fault path.
    pub fn map_unknown<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        page: Undelegated,
    ) -> Result {
        let ok = matches!(self.state, RealmState::New | RealmState::Active);
        if rmi.abi().major >= 2 {
            // 2.0: `RTT_DATA_MAP` of the one granule, which the RMM zeroes.
            let top = Ipa(ipa.0 + GRANULE_SIZE);
            return self.map_data(rmi, alloc, ipa, page, ok, Command::RttDataMap, move |rmi, rd, data| {
                match rmi.rtt_data_map(rd, ipa, top, data)? {
                    next if next == top => Ok(()),
                    // Mapped or not, the RMM said something else: the
                    // granule is the RMM's, and the map is refused.
                    _ => Err(RmiError::input()),
                }
            });
        }
        self.map_data(
            rmi,
            alloc,
            ipa,
            page,
            ok,
            Command::DataCreateUnknown,
            move |rmi, rd, data| rmi.data_create_unknown(rd, data, ipa),
        )
    }

    fn map_data<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        page: Undelegated,
        state_ok: bool,
        cmd: Command,
        mut op: impl FnMut(&mut R, Pa, Pa) -> crate::abi::RmiResult,
    ) -> Result {
        if let Err(e) = self
            .alive()
            .and_then(|()| {
                if state_ok {
                    Ok(())
                } else {
                    Err(RealmError::State)
                }
            })
            .and_then(|()| self.check_private(ipa))
        {
            alloc.release_data(page);
            return Err(e);
        }
        let data = match delegate(rmi, page) {
            Ok(g) => g,
            Err((page, err)) => {
                alloc.release_data(page);
                return Err(RealmError::Rmi {
                    cmd: delegate_command(rmi),
                    err,
                });
            }
        };
        count::add(&mut self.stats.delegated, 1);
        let pa = data.pa();
        match self.with_rtts(rmi, alloc, ipa, RTT_PAGE_LEVEL, cmd, |rmi, rd| {
            op(rmi, rd, pa)
        }) {
            Ok(()) => {
                let _ = data.hand_over();
                count::add(&mut self.stats.data_pages, 1);
                Ok(())
            }
            Err(e) => {
                self.give_back_data(rmi, alloc, data);
                Err(e)
            }
        }
    }

    /// Folds the full RTT at `level` covering `ipa` into a block entry of
    /// its parent (`RTT_FOLD`) and frees it.  `Ok(false)` if the table is
    /// not foldable (not homogeneous, or not there).
    pub fn fold<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        level: u8,
    ) -> Result<bool> {
        self.alive()?;
        if level <= self.geo.start_level + 1 || level > RTT_PAGE_LEVEL {
            return Err(RealmError::Invalid);
        }
        let base = Ipa(align_down(ipa.0, level_size(level - 1)));
        match rmi.rtt_fold(self.rd, base, level) {
            Ok(pa) => {
                count::take_or_note(&mut self.stats.rtt_pages, 1, &mut self.stats.anomalies);
                self.give_back(rmi, alloc, Delegated::returned_by_firmware(pa));
                Ok(true)
            }
            Err(e) if e.status == ErrorStatus::Rtt => Ok(false),
            Err(e) => Err(RealmError::Rmi {
                cmd: Command::RttFold,
                err: e,
            }),
        }
    }

    /// A live realm and a granule-aligned IPA in the unprotected half.
    fn check_shared(&self, ipa: Ipa) -> Result {
        self.alive()?;
        if ipa.0 % GRANULE_SIZE != 0 || self.geo.is_protected(ipa) || !self.geo.contains(ipa) {
            return Err(RealmError::Invalid);
        }
        Ok(())
    }

    /// Maps host page `pa` at the unprotected IPA `ipa` (top bit set).
    pub fn map_shared<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        pa: Pa,
    ) -> Result {
        self.map_unprotected(rmi, alloc, ipa, pa, RTT_PAGE_LEVEL)
    }

    /// Maps the 2 MiB of host memory at `pa` (a huge page) as one block at
    /// the unprotected IPA `ipa`, both 2 MiB aligned.  The RMM refuses
    /// (`Rmi` with an RTT status) where a page table exists already.
    pub fn map_shared_block<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        pa: Pa,
    ) -> Result {
        self.map_unprotected(rmi, alloc, ipa, pa, RTT_BLOCK_LEVEL)
    }

    fn map_unprotected<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        ipa: Ipa,
        pa: Pa,
        level: u8,
    ) -> Result {
        self.check_shared(ipa)?;
        let size = level_size(level);
        if ipa.0 % size != 0 || pa.0 % size != 0 {
            return Err(RealmError::Invalid);
        }
        let desc = pa.0 | UNPROTECTED_ATTRS;
        self.with_rtts(
            rmi,
            alloc,
            ipa,
            level,
            Command::RttMapUnprotected,
            |rmi, rd| rmi.rtt_map_unprotected(rd, ipa, level, desc),
        )
    }

    /// Unmaps the unprotected page or block at `ipa` (a block where the
    /// RMM's walk stops above the page level, if `ipa` is its start);
    /// `Ok(false)` if none was mapped.
    pub fn unmap_shared<R: Rmi>(&mut self, rmi: &mut R, ipa: Ipa) -> Result<bool> {
        self.check_shared(ipa)?;
        let mut level = RTT_PAGE_LEVEL;
        let rd = self.rd;
        loop {
            match retried(|| rmi.rtt_unmap_unprotected(rd, ipa, level)) {
                Ok(_) => return Ok(true),
                Err(e)
                    if e.status == ErrorStatus::Rtt
                        && e.index < level
                        && e.index >= RTT_BLOCK_LEVEL
                        && ipa.0 % level_size(e.index) == 0 =>
                {
                    level = e.index
                }
                Err(e) if e.status == ErrorStatus::Rtt => return Ok(false),
                Err(e) => {
                    return Err(RealmError::Rmi {
                        cmd: Command::RttUnmapUnprotected,
                        err: e,
                    })
                }
            }
        }
    }

    /// Destroys the private pages mapped in `[start, end)` and returns them
    /// to the VMM: memslot removal, or a private-to-shared conversion.
    /// Folded blocks in the range are split first.
    pub fn unmap_private<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        start: Ipa,
        end: Ipa,
    ) -> Result {
        self.alive()?;
        if start.0 % GRANULE_SIZE != 0
            || end.0 % GRANULE_SIZE != 0
            || start.0 > end.0
            || end.0 > self.geo.shared_bit()
        {
            return Err(RealmError::Invalid);
        }
        self.clear_leaves(rmi, alloc, start.0, end.0)
    }

    /// Destroys every data page / unprotected mapping in `[start, end)`.
    fn clear_leaves<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        start: u64,
        end: u64,
    ) -> Result {
        let mut cur = start;
        let mut splits = 0;
        let rd = self.rd;
        while cur < end {
            if !self.geo.is_protected(Ipa(cur)) {
                match retried(|| rmi.rtt_unmap_unprotected(rd, Ipa(cur), RTT_PAGE_LEVEL)) {
                    Ok(top) => cur = top.0.max(cur + GRANULE_SIZE),
                    Err(e) if e.status == ErrorStatus::Rtt => {
                        // The walk stopped above the pages: at a block
                        // (unmapped whole), or at an empty entry.
                        let level = e.index.min(RTT_PAGE_LEVEL);
                        let base = align_down(cur, level_size(level));
                        if level >= RTT_BLOCK_LEVEL && level < RTT_PAGE_LEVEL {
                            self.unmap_shared(rmi, Ipa(base))?;
                        }
                        cur = base + level_size(level);
                    }
                    Err(e) => {
                        return Err(RealmError::Rmi {
                            cmd: Command::RttUnmapUnprotected,
                            err: e,
                        })
                    }
                }
                continue;
            }
            let v2 = rmi.abi().major >= 2;
            let destroyed = if v2 {
                // 2.0: `RTT_DATA_UNMAP` of one page, which also reports
                // where the next live entry is when there is none here.
                retried(|| rmi.rtt_data_unmap(rd, Ipa(cur), Ipa(end))).map(|u| match u.pa {
                    Some(pa) => Ok(Destroyed { pa, top: u.top }),
                    None => Err(u.top),
                })
            } else {
                retried(|| rmi.data_destroy(rd, Ipa(cur))).map(Ok)
            };
            match destroyed {
                Ok(Err(top)) => cur = top.0.clamp(cur + GRANULE_SIZE, end.max(cur + GRANULE_SIZE)),
                Ok(Ok(d)) => {
                    count::take_or_note(&mut self.stats.data_pages, 1, &mut self.stats.anomalies);
                    self.give_back_data(rmi, alloc, Delegated::returned_by_firmware(d.pa));
                    cur = d
                        .top
                        .0
                        .clamp(cur + GRANULE_SIZE, end.max(cur + GRANULE_SIZE));
                }
                Err(e) if e.status == ErrorStatus::Rtt && e.index < RTT_PAGE_LEVEL => {
                    // The walk stopped at a block or an empty entry.
                    let level = e.index;
                    let entry = rmi
                        .rtt_read_entry(self.rd, Ipa(align_down(cur, level_size(level))), level)
                        .map_err(RealmError::rmi(Command::RttReadEntry))?;
                    if let RttEntryState::Unknown(_) = entry.state {
                        return Err(RealmError::Protocol);
                    }
                    if entry.state == RttEntryState::Assigned && level >= 1 {
                        // A folded block: split it back into pages.
                        splits += 1;
                        if splits
                            > 2 * MAX_RETRIES
                                + ((end - start) / level_size(RTT_BLOCK_LEVEL)) as usize
                        {
                            return Err(RealmError::Protocol);
                        }
                        self.create_rtts(rmi, alloc, Ipa(cur), level, RTT_PAGE_LEVEL)?;
                    } else {
                        cur = align_down(cur, level_size(level)) + level_size(level);
                    }
                }
                Err(e) if e.status == ErrorStatus::Rtt => cur += GRANULE_SIZE,
                Err(e) => {
                    return Err(RealmError::Rmi {
                        cmd: if v2 {
                            Command::RttDataUnmap
                        } else {
                            Command::DataDestroy
                        },
                        err: e,
                    })
                }
            }
        }
        Ok(())
    }

    /// Creates a REC for vCPU `mpidr` (realm NEW only; RMI 1.0 creates all
    /// RECs before activation), with its auxiliary granules.
    pub fn rec_create<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        mpidr: u64,
        pc: u64,
        gprs: [u64; 8],
        runnable: bool,
    ) -> Result<Rec> {
        if self.state != RealmState::New {
            return Err(RealmError::State);
        }
        if rmi.abi().major >= 2 {
            return self.rec_create_sro(rmi, alloc, mpidr, pc, gprs, runnable);
        }
        let num_aux = match self.aux_count {
            Some(n) => n,
            None => {
                let n = rmi
                    .rec_aux_count(self.rd)
                    .map_err(RealmError::rmi(Command::RecAuxCount))?;
                // CAST: bounded by MAX_REC_AUX_GRANULES just below.
                let n = n as usize;
                if n > MAX_REC_AUX_GRANULES {
                    return Err(RealmError::Protocol);
                }
                self.aux_count = Some(n);
                n
            }
        };
        let rec = self.take_granule(rmi, alloc)?;
        let mut aux: [Option<Delegated>; MAX_REC_AUX_GRANULES] = Default::default();
        let mut failed = None;
        for slot in aux.iter_mut().take(num_aux) {
            match self.take_granule(rmi, alloc) {
                Ok(g) => *slot = Some(g),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let mut params = RecCreate {
            runnable,
            mpidr,
            pc,
            gprs,
            aux: [Pa(0); MAX_REC_AUX_GRANULES],
            num_aux,
        };
        for (p, g) in params.aux.iter_mut().zip(aux.iter()) {
            if let Some(g) = g {
                *p = g.pa();
            }
        }
        let res = match failed {
            Some(e) => Err(e),
            None => rmi
                .rec_create(self.rd, rec.pa(), &params)
                .map_err(RealmError::rmi(Command::RecCreate)),
        };
        if let Err(e) = res {
            for g in aux.into_iter().flatten() {
                self.give_back(rmi, alloc, g);
            }
            self.give_back(rmi, alloc, rec);
            return Err(e);
        }
        for g in aux.into_iter().flatten() {
            let _ = g.hand_over();
        }
        self.recs = self.recs.saturating_add(1);
        Ok(Rec {
            pa: rec.hand_over(),
            aux: params.aux,
            num_aux,
            mpidr,
        })
    }

    /// 2.0's `REC_CREATE`, a stateful operation: the RMM asks for its
    /// auxiliary granules (`OP_MEM_DONATE`) and finishes on
    /// `OP_CONTINUE`.  Granules are delegated as the RMM asks for them.
    /// If the operation cannot go on (no memory, an RMM error, an answer
    /// outside the protocol), it is cancelled where the RMM allows that;
    /// otherwise the REC and every granule donated stay the RMM's and are
    /// counted as leaked: none returns to the allocator.
    fn rec_create_sro<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        mpidr: u64,
        pc: u64,
        gprs: [u64; 8],
        runnable: bool,
    ) -> Result<Rec> {
        let rec = self.take_granule(rmi, alloc)?;
        let params = RecCreate {
            runnable,
            mpidr,
            pc,
            gprs,
            aux: [Pa(0); MAX_REC_AUX_GRANULES],
            num_aux: 0,
        };
        let rd = self.rd;
        let mut sro = match busy_retried(|| rmi.rec_create(rd, rec.pa(), &params)) {
            Ok(s) => s,
            Err(err) => {
                self.give_back(rmi, alloc, rec);
                return Err(RealmError::Rmi {
                    cmd: Command::RecCreate,
                    err,
                });
            }
        };
        // From here the RMM holds the REC granule.
        let rec_pa = rec.hand_over();
        let mut aux = [Pa(0); MAX_REC_AUX_GRANULES];
        let mut num_aux = 0usize;
        // Each step donates at least one granule or continues; a
        // well-behaved RMM needs at most MAX + 2 of them.
        let mut failure = RealmError::Protocol;
        let mut refused = false;
        for _ in 0..2 * MAX_REC_AUX_GRANULES + 6 {
            let (handle, next, can_cancel) = match sro {
                Sro::Done => {
                    self.recs = self.recs.saturating_add(1);
                    return Ok(Rec {
                        pa: rec_pa,
                        aux,
                        num_aux,
                        mpidr,
                    });
                }
                Sro::Incomplete {
                    handle,
                    next,
                    can_cancel,
                } => (handle, next, can_cancel),
            };
            let step = match next {
                SroStep::Continue => {
                    // A refused step changes nothing: tried again as a
                    // teardown call is (an injected failure, a BUSY).
                    let r = retried(|| rmi.op_continue(handle));
                    match r {
                        // The RMM refused the REC (2.0 checks the realm
                        // and the MPIDR order only now) after taking
                        // back what it was given: the REC granule is
                        // delegated again.
                        Err(err) if refused && num_aux == 0 => {
                            self.give_back(rmi, alloc, Delegated::returned_by_firmware(rec_pa));
                            return Err(RealmError::Rmi {
                                cmd: Command::RecCreate,
                                err,
                            });
                        }
                        r => r.map_err(RealmError::rmi(Command::OpContinue)),
                    }
                }
                SroStep::Donate(req) => {
                    self.donate(rmi, alloc, handle, req, &mut aux, &mut num_aux)
                }
                SroStep::Reclaim => {
                    refused = true;
                    self.reclaim(rmi, alloc, handle, &mut aux, &mut num_aux)
                }
            };
            match step {
                Ok(s) => sro = s,
                Err(e) => {
                    failure = e;
                    if can_cancel && busy_retried(|| rmi.op_cancel(handle)).is_ok() {
                        // Cancelled: the REC and what was donated are
                        // delegated and the host's again.
                        self.give_back(rmi, alloc, Delegated::returned_by_firmware(rec_pa));
                        for pa in aux.iter().take(num_aux) {
                            self.give_back(rmi, alloc, Delegated::returned_by_firmware(*pa));
                        }
                        return Err(failure);
                    }
                    break;
                }
            }
        }
        // Stuck in an intermediate state the host cannot leave.
        // CAST: num_aux <= 16.
        let n = 1 + num_aux as u64;
        count::take_or_note(&mut self.stats.delegated, n, &mut self.stats.anomalies);
        count::add(&mut self.stats.leaked, n);
        Err(failure)
    }

    /// Delegates the granules `req` asks for and donates them; records
    /// those the RMM took in `aux`.
    fn donate<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        handle: u64,
        req: crate::abi::v2::DonateReq,
        aux: &mut [Pa; MAX_REC_AUX_GRANULES],
        num_aux: &mut usize,
    ) -> Result<Sro> {
        let want = usize::from(req.count);
        // One granule per block, delegated, wherever they are: all that a
        // REC asks for.  Anything else the host cannot provide.
        if req.blk_size != 0
            || req.undelegated
            || (req.contiguous && want > 1)
            || want == 0
            || want > MAX_REC_AUX_GRANULES - *num_aux
        {
            return Err(RealmError::Protocol);
        }
        let mut pas = [Pa(0); MAX_REC_AUX_GRANULES];
        let mut got = 0;
        // The operation cannot be given up (v0.9.0 offers no OP_CANCEL
        // for RECs), so a refused delegation is tried again, with
        // another page, as a teardown call would be.
        let mut refused = 0;
        while got < want {
            match self.take_granule(rmi, alloc) {
                Ok(g) => {
                    pas[got] = g.hand_over();
                    got += 1;
                }
                Err(RealmError::Rmi { .. }) if refused + 1 < TEARDOWN_TRIES => refused += 1,
                Err(e) => {
                    for pa in pas.iter().take(got) {
                        self.give_back(rmi, alloc, Delegated::returned_by_firmware(*pa));
                    }
                    return Err(e);
                }
            }
        }
        let r = retried(|| rmi.op_mem_donate(handle, &pas[..got]));
        let taken = match &r {
            Ok((n, _)) => (*n).min(got),
            Err(_) => 0,
        };
        for (i, pa) in pas.iter().take(got).enumerate() {
            if i < taken {
                aux[*num_aux] = *pa;
                *num_aux += 1;
            } else {
                self.give_back(rmi, alloc, Delegated::returned_by_firmware(*pa));
            }
        }
        match r {
            Ok((n, sro)) if n <= got => Ok(sro),
            Ok(_) => Err(RealmError::Protocol),
            Err(err) => Err(RealmError::Rmi {
                cmd: Command::OpMemDonate,
                err,
            }),
        }
    }

    /// `OP_MEM_RECLAIM`: takes back from the RMM granules of `owned`
    /// (the first `n`), undelegates and frees them, and removes them from
    /// `owned`.  A granule the host did not give is a protocol error (and
    /// stays unfreed).
    fn reclaim<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        handle: u64,
        owned: &mut [Pa; MAX_REC_AUX_GRANULES],
        n: &mut usize,
    ) -> Result<Sro> {
        let mut out = [Pa(0); MAX_REC_AUX_GRANULES];
        let (got, sro) = retried(|| rmi.op_mem_reclaim(handle, &mut out)).map_err(RealmError::rmi(Command::OpMemReclaim))?;
        if got > MAX_REC_AUX_GRANULES {
            return Err(RealmError::Protocol);
        }
        for pa in out.iter().take(got) {
            let Some(i) = owned.iter().take(*n).position(|a| a == pa) else {
                return Err(RealmError::Protocol);
            };
            // Keep `owned[..n]` the granules still the RMM's.
            *n -= 1;
            owned.swap(i, *n);
            self.give_back(rmi, alloc, Delegated::returned_by_firmware(*pa));
        }
        Ok(sro)
    }

    /// 2.0's `REC_DESTROY`: the RMM gives the auxiliary granules back
    /// (`OP_MEM_RECLAIM`, still delegated) and finishes on `OP_CONTINUE`.
    /// Only granules the REC was given are taken back.  A REC whose
    /// operation fails after it started stays the RMM's, with every
    /// granule not reclaimed, and is counted as leaked; that is not an
    /// error for the caller, which would otherwise destroy it again.
    fn rec_destroy_sro<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        rec: Rec,
    ) -> core::result::Result<(), (Rec, RealmError)> {
        let mut sro = match rmi.rec_destroy(rec.pa) {
            Ok(s) => s,
            Err(err) => {
                return Err((
                    rec,
                    RealmError::Rmi {
                        cmd: Command::RecDestroy,
                        err,
                    },
                ))
            }
        };
        let mut owned = rec.aux;
        let mut n = rec.num_aux.min(MAX_REC_AUX_GRANULES);
        let mut ended = false;
        for _ in 0..MAX_REC_AUX_GRANULES + 4 {
            let (handle, next) = match sro {
                Sro::Done => {
                    self.take_rec();
                    self.give_back(rmi, alloc, Delegated::returned_by_firmware(rec.pa));
                    ended = true;
                    break;
                }
                Sro::Incomplete { handle, next, .. } => (handle, next),
            };
            let step = match next {
                SroStep::Continue => retried(|| rmi.op_continue(handle))
                    .map_err(RealmError::rmi(Command::OpContinue)),
                SroStep::Reclaim => self.reclaim(rmi, alloc, handle, &mut owned, &mut n),
                SroStep::Donate(_) => Err(RealmError::Protocol),
            };
            match step {
                Ok(s) => sro = s,
                Err(_) => break,
            }
        }
        if !ended {
            // Half-destroyed: the REC stays the RMM's.
            self.take_rec();
            n += 1;
        }
        // Whatever was not given back stays the RMM's: leaked, counted.
        // The REC is consumed either way; a caller that retried would
        // count it twice.
        if n != 0 {
            // CAST: at most 17.
            let n = n as u64;
            count::take_or_note(&mut self.stats.delegated, n, &mut self.stats.anomalies);
            count::add(&mut self.stats.leaked, n);
        }
        Ok(())
    }

    /// Destroys a REC and frees its granules.  On an RMM error the REC is
    /// handed back so the caller can retry or [`Realm::rec_leak`] it.
    pub fn rec_destroy<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        rec: Rec,
    ) -> core::result::Result<(), (Rec, RealmError)> {
        if rmi.abi().major >= 2 {
            return self.rec_destroy_sro(rmi, alloc, rec);
        }
        if let Err(err) = rmi.rec_destroy(rec.pa) {
            return Err((
                rec,
                RealmError::Rmi {
                    cmd: Command::RecDestroy,
                    err,
                },
            ));
        }
        self.take_rec();
        self.give_back(rmi, alloc, Delegated::returned_by_firmware(rec.pa));
        for pa in rec.aux.iter().take(rec.num_aux) {
            self.give_back(rmi, alloc, Delegated::returned_by_firmware(*pa));
        }
        Ok(())
    }

    /// One REC fewer.  Every `Rec` value was counted when created, so the
    /// count cannot be 0 here; if it were, it stays 0 and is an anomaly.
    fn take_rec(&mut self) {
        match self.recs.checked_sub(1) {
            Some(n) => self.recs = n,
            None => count::add(&mut self.stats.anomalies, 1),
        }
    }

    /// Gives up on a REC the RMM will not destroy: its granules are leaked
    /// and counted.
    pub fn rec_leak(&mut self, rec: Rec) {
        self.take_rec();
        // CAST: num_aux <= 16.
        let n = 1 + rec.num_aux as u64;
        count::take_or_note(&mut self.stats.delegated, n, &mut self.stats.anomalies);
        count::add(&mut self.stats.leaked, n);
    }

    /// `REALM_ACTIVATE`.
    pub fn activate<R: Rmi>(&mut self, rmi: &mut R) -> Result {
        if self.state != RealmState::New {
            return Err(RealmError::State);
        }
        rmi.realm_activate(self.rd)
            .map_err(RealmError::rmi(Command::RealmActivate))?;
        self.state = RealmState::Active;
        Ok(())
    }

    /// Tears the realm down: destroys every RTT below the start level
    /// (and the data and shared mappings in them), then the realm, then
    /// gives back the RD and the start RTTs.
    ///
    /// Fails with [`RealmError::Busy`] while RECs exist.  After any other
    /// error the realm is still consistent and teardown may be retried, or
    /// abandoned with [`Realm::leak`].
    pub fn destroy<R: Rmi, A: GranuleAlloc>(&mut self, rmi: &mut R, alloc: &mut A) -> Result {
        self.alive()?;
        if self.recs != 0 {
            return Err(RealmError::Busy);
        }
        let span = level_size(self.geo.start_level);
        for i in 0..self.geo.start_entries() {
            if self.tables[i / 64] & (1 << (i % 64)) == 0 {
                continue;
            }
            // CAST: i < 8192.
            let base = i as u64 * span;
            let _ = self.destroy_table(rmi, alloc, self.geo.start_level + 1, base)?;
            self.mark_table(base, false);
        }
        let rd = self.rd;
        retried(|| rmi.realm_destroy(rd))
            .map_err(RealmError::rmi(Command::RealmDestroy))?;
        self.state = RealmState::Destroyed;
        self.give_back(rmi, alloc, Delegated::returned_by_firmware(self.rd));
        for i in 0..u64::from(self.geo.num_start) {
            self.give_back(
                rmi,
                alloc,
                Delegated::returned_by_firmware(self.roots.add_pages(i)),
            );
        }
        count::take_or_note(
            &mut self.stats.rtt_pages,
            u64::from(self.geo.num_start),
            &mut self.stats.anomalies,
        );
        Ok(())
    }

    /// Destroys the RTT at `level` whose parent entry covers `base`, after
    /// emptying it.  A missing table is not an error.  Returns the RMM's
    /// `top`: the next parent entry worth visiting.
    fn destroy_table<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        level: u8,
        base: u64,
    ) -> Result<u64> {
        let span = level_size(level - 1);
        let rd = self.rd;
        for _ in 0..MAX_RETRIES {
            // The RMM's `top` comes with either answer; retried only
            // while the status carries no walk information.
            let mut top = Ipa(0);
            let r = retried(|| {
                let (r, t) = rmi.rtt_destroy(rd, Ipa(base), level);
                top = t;
                r
            });
            match (r, top) {
                (Ok(pa), top) => {
                    count::take_or_note(&mut self.stats.rtt_pages, 1, &mut self.stats.anomalies);
                    self.give_back(rmi, alloc, Delegated::returned_by_firmware(pa));
                    return Ok(top.0);
                }
                (Err(e), top) if e.status == ErrorStatus::Rtt && e.index < level => {
                    // No table here.  A block in the parent still holds
                    // data, or maps the VMM's memory (a shared block).
                    if !self.geo.is_protected(Ipa(base)) {
                        if e.index >= RTT_BLOCK_LEVEL {
                            self.unmap_shared(rmi, Ipa(align_down(base, level_size(e.index))))?;
                        }
                        return Ok(top.0);
                    }
                    if e.index >= 1 {
                        let entry = rmi
                            .rtt_read_entry(self.rd, Ipa(base), e.index)
                            .map_err(RealmError::rmi(Command::RttReadEntry))?;
                        if let RttEntryState::Unknown(_) = entry.state {
                            return Err(RealmError::Protocol);
                        }
                        if entry.state == RttEntryState::Assigned {
                            // Split the block back into a (live) table,
                            // which the next round empties and destroys.
                            self.create_rtts(rmi, alloc, Ipa(base), e.index, level)?;
                            continue;
                        }
                    }
                    return Ok(top.0);
                }
                (Err(e), _) if e.status == ErrorStatus::Rtt && e.index == level => {
                    // Live: empty it, then try again.
                    if level == RTT_PAGE_LEVEL {
                        self.clear_leaves(rmi, alloc, base, base + span)?;
                    } else {
                        // The RMM says where the next live entry is, so
                        // absent child tables cost no call each.
                        let child = level_size(level);
                        let mut addr = base;
                        while addr < base + span {
                            let top =
                                align_down(self.destroy_table(rmi, alloc, level + 1, addr)?, child);
                            addr = if top > addr { top } else { addr + child };
                        }
                    }
                }
                (Err(e), _) => {
                    return Err(RealmError::Rmi {
                        cmd: Command::RttDestroy,
                        err: e,
                    })
                }
            }
        }
        Err(RealmError::Protocol)
    }

    /// Abandons a realm whose teardown cannot finish: every granule it
    /// still holds is leaked on purpose and counted.  Returns the number.
    pub fn leak(&mut self) -> u64 {
        let n = self.stats.delegated;
        count::add(&mut self.stats.leaked, n);
        self.stats.delegated = 0;
        self.state = RealmState::Destroyed;
        n
    }
}
