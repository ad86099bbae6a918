// SPDX-License-Identifier: GPL-2.0

//! An executable model of an RMM speaking RMI 1.0: the RMM core that the
//! host tests run the logic against and that the test RMM
//! (`tools/testing/rmm`) runs as firmware.  `no_std` with `alloc`.
//!
//! The model keeps granule states, realms (NEW / ACTIVE / SYSTEM_OFF),
//! RECs, and RTTs level by level with HIPAS and RIPAS per entry, and
//! answers each command with the status and index the specification gives
//! for the failure conditions it models.  It counts calls per command and
//! can be told to fail calls at random ("fault injection"), without
//! changing state, to exercise the host's error paths.
//!
//! What happens to real memory is the [`Backing`]'s: the host model has
//! none ([`NoBacking`]); the test RMM's backing asks EL3 to change the
//! granule's PAS, writes each RTT entry as a stage-2 descriptor into the
//! RTT granule and copies measured data in.  The state machine, the
//! argument checks and the statuses are this file's, once.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use crate::abi::{exit_reason, MAX_REC_AUX_GRANULES, REC_PARAMS_FLAG_RUNNABLE};
use crate::abi::{Command, Features0, RealmParams, RecExit, RecParams, RecRun, Ripas};
use crate::abi::{RttEntry, RttEntryState};
use crate::abi::{
    ErrorStatus, Ipa, Pa, RmiError, RmiResult, RmiVersion, VersionInfo, GRANULE_SIZE,
};
use crate::cvm_fw::xorshift::XorShift;
use crate::logic::realm::level_size;
use crate::abi::v2;
use crate::logic::rmi::{CallCounts, Destroyed, RealmCreate, RecCreate, Rmi, VersionReply};
use crate::logic::rmi::{Sro, SroStep, Unmapped};

/// Granule states (RMM specification, "Granule state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GranuleState {
    /// Normal world.
    Undelegated,
    /// Delegated, unused.
    Delegated,
    /// Realm descriptor.
    Rd,
    /// Realm execution context.
    Rec,
    /// REC auxiliary granule.
    RecAux,
    /// Realm data.
    Data,
    /// Realm translation table.
    Rtt,
}

/// Realm states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelRealmState {
    /// Created, not activated.
    New,
    /// Activated.
    Active,
    /// The realm called SYSTEM_OFF.
    SystemOff,
}

/// One RTT entry: HIPAS and RIPAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Nothing mapped; RIPAS kept (protected IPAs only).
    Unassigned(Ripas),
    /// Protected data page/block at `pa`.
    Assigned(Pa, Ripas),
    /// Unprotected mapping with descriptor `desc`.
    AssignedNs(u64),
    /// Next-level table.
    Table(Pa),
}

struct Rtt {
    entries: Vec<Entry>,
}

struct RealmM {
    state: ModelRealmState,
    ipa_bits: u8,
    start_level: u8,
    num_start: u8,
    rtt_base: Pa,
    recs: u64,
    rtts: u64,
    data: u64,
    vmid: u16,
    measure: u64,
    flags: u64,
    hash_algo: u8,
    rpv: [u8; 64],
}

struct RecM {
    rd: Pa,
    aux: Vec<Pa>,
    mpidr: u64,
    runnable: bool,
    ripas: Option<RipasRequest>,
    pending_psci: Option<u64>,
    /// The PSCI function of `pending_psci`.
    pending_psci_fn: u32,
}

/// An exit the model produces on `REC_ENTER`, scripted by a test.
#[derive(Clone, Debug)]
pub struct ScriptedExit {
    /// `rec_exit.exit_reason`.
    pub reason: u8,
    /// ESR.
    pub esr: u64,
    /// FAR.
    pub far: u64,
    /// HPFAR.
    pub hpfar: u64,
    /// x0..x6.
    pub gprs: [u64; 7],
    /// RIPAS request (base, top, value).
    pub ripas: (u64, u64, u8),
    /// Host-call immediate.
    pub imm: u16,
}

/// What an RMM does to real memory besides keeping state: the host
/// model's [`NoBacking`] does nothing; the test RMM's backing changes
/// PASes through EL3, writes descriptors and copies data.  Each hook runs
/// after the model has checked the command, before it changes state;
/// a hook that refuses makes the command fail with `ERROR_INPUT` and no
/// state change.
pub trait Backing {
    /// `GRANULE_DELEGATE` passed its checks: move `pa` to the realm PAS.
    fn delegate(&mut self, _pa: Pa) -> bool {
        true
    }
    /// `GRANULE_UNDELEGATE` passed its checks: scrub `pa` and move it
    /// back to the normal world.
    fn undelegate(&mut self, _pa: Pa) -> bool {
        true
    }
    /// `table` (an RTT at `level`) now holds `entries`.
    fn table_init(&mut self, _table: Pa, _level: u8, _entries: &[Entry]) {}
    /// Entry `index` of `table` (at `level`) is now `e`.
    fn entry_set(&mut self, _table: Pa, _level: u8, _index: usize, _e: Entry) {}
    /// `data` becomes a data granule: a copy of the normal world's `src`,
    /// or zeroes.  `false` if `src` cannot be read.
    fn data_init(&mut self, _data: Pa, _src: Option<Pa>) -> bool {
        true
    }
}

/// The host model's backing: state only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBacking;

impl Backing for NoBacking {}

/// What the realm a REC belongs to looks like to the code that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealmInfo {
    /// The RD.
    pub rd: Pa,
    /// VMID.
    pub vmid: u16,
    /// IPA width.
    pub ipa_bits: u8,
    /// RTT start level.
    pub start_level: u8,
    /// Concatenated start RTTs.
    pub num_start: u8,
    /// First start RTT.
    pub rtt_base: Pa,
    /// `REALM_CREATE`'s flags (LPA2, SVE, PMU).
    pub flags: u64,
    /// `RealmParams::hash_algo`.
    pub hash_algo: u8,
    /// `RealmParams::rpv`.
    pub rpv: [u8; 64],
}

/// A RIPAS change a REC asked for (`RSI_IPA_STATE_SET`) and how far the
/// host got with it (`RTT_SET_RIPAS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RipasRequest {
    /// Requested base.
    pub base: u64,
    /// Requested top.
    pub top: u64,
    /// Requested RIPAS.
    pub ripas: Ripas,
    /// Whether `DESTROYED` entries may change.
    pub change_destroyed: bool,
    /// Everything below this has its new RIPAS.
    pub next: u64,
}

/// A 2.0 stateful operation in progress.
enum SroKind {
    /// `REC_CREATE`, waiting for its auxiliary granules.
    RecCreate {
        rd: Pa,
        rec: Pa,
        params: v2::RecParams,
        donated: Vec<Pa>,
        /// Set when the final `OP_CONTINUE` found the request invalid:
        /// the granules are reclaimed, then `OP_CONTINUE` reports it.
        failed: Option<RmiError>,
    },
    /// `REC_DESTROY`, giving back `aux` (then the REC itself).
    RecDestroy { rec: Pa, aux: Vec<Pa> },
}

struct SroM {
    handle: u64,
    kind: SroKind,
    /// The step the host must take next.
    next: SroStep,
}

/// The RMM model's state, over the backing `B`.
pub struct RmmModel<B: Backing = NoBacking> {
    granules: BTreeMap<u64, GranuleState>,
    mem_base: u64,
    mem_end: u64,
    rtts: BTreeMap<u64, Rtt>,
    realms: BTreeMap<u64, RealmM>,
    recs: BTreeMap<u64, RecM>,
    vmids: BTreeSet<u16>,
    /// Calls per command.
    pub counts: CallCounts,
    /// What `RMI_FEATURES(0)` reports.
    pub features: Features0,
    /// What `RMI_VERSION` reports.
    pub version: VersionInfo,
    /// Auxiliary granules per REC.
    pub aux_count: u64,
    /// Exits `REC_ENTER` will report, in order.
    /// `x0..x6` the host passed at each successful `REC_ENTER`.
    pub entries: Vec<[u64; 7]>,
    pub exits: VecDeque<ScriptedExit>,
    /// Fail each call with this probability (per million), with a status
    /// that carries no RTT-walk information (INPUT, REALM, REC, unknown).
    pub inject_ppm: u32,
    /// One-shot failures: the next call of the command fails with the error.
    pub fail_next: Vec<(Command, RmiError)>,
    /// Calls failed by injection.
    pub injected: u64,
    /// If not 0, every `fail_every`-th call (but `VERSION`) fails with
    /// `ERROR_INPUT`: a firmware that fails now and then, predictably.
    pub fail_every: u64,
    rng: XorShift,
    /// Real memory, if any.
    pub backing: B,
    /// The interface version the model speaks ([`RmmModel::speak`]).
    pub abi: RmiVersion,
    /// 2.0: `RMM_ACTIVATE` was called (always true for 1.0).
    activated: bool,
    /// 2.0: granules one `GRANULE_RANGE_(UN)DELEGATE` handles at most
    /// (TF-RMM v0.9.0: 1), so hosts see partial ranges.
    pub range_chunk: u64,
    /// 2.0: the stateful operation in progress (TF-RMM keeps one per
    /// CPU; the model, one).
    sro: Option<SroM>,
    next_handle: u64,
    next_vmid: u16,
}

/// What the RMM accepts in an unprotected descriptor from the host: the
/// output address, MemAttr (bits 4:2, not the reserved FWB value 0b100)
/// and S2AP (bits 7:6); nothing else.
fn ns_desc_ok(desc: u64) -> bool {
    let addr = ((1u64 << 48) - 1) & !0xfff;
    let memattr = (desc >> 2) & 0b111;
    desc & !(addr | (0b111 << 2) | (0b11 << 6)) == 0 && memattr != 0b100
}

fn err<T>(status: ErrorStatus, index: u8) -> RmiResult<T> {
    Err(RmiError::new(status, index))
}
fn input<T>() -> RmiResult<T> {
    err(ErrorStatus::Input, 0)
}

/// Result of an RTT walk: the table and entry index at the level reached.
struct Walk {
    level: u8,
    table: Pa,
    index: usize,
}

impl RmmModel {
    /// A model with `[mem_base, mem_base + mem_size)` as delegable memory.
    pub fn new(mem_base: u64, mem_size: u64) -> RmmModel {
        RmmModel::with_backing(mem_base, mem_size, NoBacking)
    }
}

impl<B: Backing> RmmModel<B> {
    /// A model over `backing`.
    pub fn with_backing(mem_base: u64, mem_size: u64, backing: B) -> RmmModel<B> {
        RmmModel {
            granules: BTreeMap::new(),
            mem_base,
            mem_end: mem_base + mem_size,
            rtts: BTreeMap::new(),
            realms: BTreeMap::new(),
            recs: BTreeMap::new(),
            vmids: BTreeSet::new(),
            counts: CallCounts::default(),
            features: Features0 {
                max_ipa_bits: 48,
                lpa2: false,
                sve: false,
                sve_vl: 0,
                num_bps: 6,
                num_wps: 4,
                pmu: false,
                pmu_num_ctrs: 0,
                hash_sha256: true,
                hash_sha512: true,
                gicv3_num_lrs: 4,
                max_recs_order: 8,
            },
            version: VersionInfo {
                lower: RmiVersion::V1_0,
                higher: RmiVersion::V1_0,
            },
            aux_count: 2,
            entries: Vec::new(),
            exits: VecDeque::new(),
            inject_ppm: 0,
            fail_next: Vec::new(),
            injected: 0,
            fail_every: 0,
            rng: XorShift::new(0x9e37_79b9_7f4a_7c15),
            backing,
            abi: RmiVersion::V1_0,
            activated: true,
            range_chunk: 1,
            sro: None,
            next_handle: 0,
            next_vmid: 1,
        }
    }

    /// Makes the model speak interface version `v` (1.0 or 2.0) from now
    /// on: `RMI_VERSION`'s range, the commands it answers, and for 2.0
    /// the need for `RMM_ACTIVATE`, `RMI_INCOMPLETE` for RECs, one
    /// granule per range call, `BUSY` among the injected failures, and
    /// VMIDs allocated by the RMM.
    pub fn speak(&mut self, v: RmiVersion) {
        self.abi = v;
        self.version = VersionInfo { lower: v, higher: v };
        self.activated = v.major < 2;
        if v.major >= 2 {
            // 2.0 reports no list-register count.
            self.features.gicv3_num_lrs = 15;
        }
    }

    /// Whether the stateful operation of a REC is in progress.
    pub fn sro_in_progress(&self) -> bool {
        self.sro.is_some()
    }

    /// Seeds the fault-injection generator.
    pub fn seed(&mut self, seed: u64) {
        self.rng = XorShift::new(seed);
    }

    fn next_rand(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// State of the granule at `pa`.
    pub fn granule(&self, pa: Pa) -> GranuleState {
        self.granules
            .get(&pa.0)
            .copied()
            .unwrap_or(GranuleState::Undelegated)
    }

    /// Number of granules in `state`.
    pub fn count_state(&self, state: GranuleState) -> u64 {
        self.granules.values().filter(|s| **s == state).count() as u64
    }

    /// Number of granules not `UNDELEGATED`.
    pub fn not_undelegated(&self) -> u64 {
        self.granules.len() as u64
    }

    /// Number of realms that exist.
    pub fn realm_count(&self) -> usize {
        self.realms.len()
    }

    /// State of the realm with RD `rd`.
    pub fn realm_state(&self, rd: Pa) -> Option<ModelRealmState> {
        self.realms.get(&rd.0).map(|r| r.state)
    }

    /// The realm's running measurement (changes with each measured page).
    pub fn measurement(&self, rd: Pa) -> Option<u64> {
        self.realms.get(&rd.0).map(|r| r.measure)
    }

    /// The level-3 (or block) entry mapping protected `ipa`, if any.
    pub fn leaf(&self, rd: Pa, ipa: u64) -> Option<Entry> {
        let w = self.walk(rd, ipa, 3).ok()?;
        self.rtts.get(&w.table.0).map(|t| t.entries[w.index])
    }

    fn set(&mut self, pa: Pa, s: GranuleState) {
        if s == GranuleState::Undelegated {
            self.granules.remove(&pa.0);
        } else {
            self.granules.insert(pa.0, s);
        }
    }

    fn valid_pa(&self, pa: Pa) -> bool {
        pa.is_aligned() && pa.0 >= self.mem_base && pa.0 < self.mem_end
    }

    fn is(&self, pa: Pa, s: GranuleState) -> bool {
        self.valid_pa(pa) && self.granule(pa) == s
    }

    fn realm(&self, rd: Pa) -> RmiResult<&RealmM> {
        if !self.is(rd, GranuleState::Rd) {
            return input();
        }
        self.realms.get(&rd.0).ok_or(RmiError::input())
    }

    /// Walks from the start level towards `target`, stopping at the first
    /// entry that is not a table.
    fn walk(&self, rd: Pa, ipa: u64, target: u8) -> RmiResult<Walk> {
        let r = self.realm(rd)?;
        if ipa >= 1u64 << r.ipa_bits {
            return input();
        }
        let s = r.start_level;
        let idx = (ipa / level_size(s)) as usize;
        let mut w = Walk {
            level: s,
            table: r.rtt_base.add_pages((idx / 512) as u64),
            index: idx % 512,
        };
        while w.level < target {
            let t = self.rtts.get(&w.table.0).ok_or(RmiError::input())?;
            match t.entries[w.index] {
                Entry::Table(next) => {
                    let level = w.level + 1;
                    w = Walk {
                        level,
                        table: next,
                        index: ((ipa / level_size(level)) % 512) as usize,
                    };
                }
                _ => break,
            }
        }
        Ok(w)
    }

    /// The RTT at `level` whose parent entry covers `ipa` (aligned to the
    /// parent's entry size), for commands that act on a whole table.
    /// `level` must be at least `min_above_start` below the start level.
    fn table_at(&self, rd: Pa, ipa: Ipa, level: u8, min_above_start: u8) -> RmiResult<(Walk, Pa)> {
        let r = self.realm(rd)?;
        if level < r.start_level + min_above_start
            || level > 3
            || ipa.0 % level_size(level - 1) != 0
        {
            return input();
        }
        let w = self.walk(rd, ipa.0, level)?;
        if w.level < level {
            return err(ErrorStatus::Rtt, w.level);
        }
        // The walk reached `level`: the parent entry is a table.
        let parent = self.walk(rd, ipa.0, level - 1)?;
        match self.entry(&parent) {
            Entry::Table(table) => Ok((parent, table)),
            _ => err(ErrorStatus::Rtt, level - 1),
        }
    }

    fn entry(&self, w: &Walk) -> Entry {
        self.rtts
            .get(&w.table.0)
            .map(|t| t.entries[w.index])
            .unwrap_or(Entry::Unassigned(Ripas::Empty))
    }

    fn set_entry(&mut self, w: &Walk, e: Entry) {
        if let Some(t) = self.rtts.get_mut(&w.table.0) {
            t.entries[w.index] = e;
            self.backing.entry_set(w.table, w.level, w.index, e);
        }
    }

    /// A new RTT at `level` in `table`, holding `entries`.
    fn insert_rtt(&mut self, table: Pa, level: u8, entries: Vec<Entry>) {
        self.backing.table_init(table, level, &entries);
        self.rtts.insert(table.0, Rtt { entries });
    }

    fn protected(&self, rd: Pa, ipa: u64) -> bool {
        self.realms
            .get(&rd.0)
            .map(|r| ipa < 1u64 << (r.ipa_bits - 1))
            .unwrap_or(false)
    }

    /// The IPA of the first live entry at or after `ipa` in the table
    /// the walk for `ipa` ends in, or the end of that table.
    fn skip_non_live(&self, rd: Pa, ipa: Ipa) -> Ipa {
        let Ok(w) = self.walk(rd, ipa.0, 3) else {
            return ipa;
        };
        let size = level_size(w.level);
        let table_base = ipa.0 - ipa.0 % (size * 512);
        let Some(t) = self.rtts.get(&w.table.0) else {
            return ipa;
        };
        // As TF-RMM's `s2tt_skip_non_live_entries`: a live entry at the
        // walk's index gives `ipa` itself (unaligned), otherwise the first
        // live entry after it, or the table's end.
        if !matches!(t.entries[w.index], Entry::Unassigned(_)) {
            return ipa;
        }
        let next = (w.index + 1..512).find(|&i| !matches!(t.entries[i], Entry::Unassigned(_)));
        Ipa(table_base + next.unwrap_or(512) as u64 * size)
    }

    fn live(entries: &[Entry]) -> bool {
        entries.iter().any(|e| !matches!(e, Entry::Unassigned(_)))
    }

    fn inject(&mut self, cmd: Command) -> RmiResult {
        self.counts.record(cmd);
        if !cmd.in_version(self.abi) {
            return err(ErrorStatus::NotSupported, 0);
        }
        if !self.activated
            && !matches!(cmd, Command::Version | Command::Features | Command::RmmConfigSet | Command::RmmActivate)
        {
            return err(ErrorStatus::Global, 0);
        }
        if let Some(i) = self.fail_next.iter().position(|(c, _)| *c == cmd) {
            self.injected += 1;
            return Err(self.fail_next.remove(i).1);
        }
        if self.fail_every != 0
            && cmd != Command::Version
            && self.counts.total() % self.fail_every == 0
        {
            self.injected += 1;
            return input();
        }
        if self.inject_ppm == 0 || cmd == Command::Version {
            return Ok(());
        }
        if (self.next_rand() % 1_000_000) < u64::from(self.inject_ppm) {
            self.injected += 1;
            // ERROR_RTT is not injected: its index is walk information the
            // host acts on (create a level, skip an empty range), so a
            // fake one models an RMM that lies, not one that fails.
            let st = match self.next_rand() % 5 {
                0 => ErrorStatus::Input,
                1 => ErrorStatus::Realm,
                2 => ErrorStatus::Rec,
                // 2.0: a contended object; nothing changed.
                3 if self.abi.major >= 2 => ErrorStatus::Busy,
                _ => ErrorStatus::Unknown(0x7f),
            };
            return err(st, (self.next_rand() % 4) as u8);
        }
        Ok(())
    }
}

fn pa_of(desc: u64) -> u64 {
    desc & 0x0000_ffff_ffff_f000
}

impl<B: Backing> Rmi for RmmModel<B> {
    fn abi(&self) -> RmiVersion {
        self.abi
    }

    fn version(&mut self, requested: RmiVersion) -> VersionReply {
        self.counts.record(Command::Version);
        let ok = requested >= self.version.lower && requested <= self.version.higher;
        VersionReply {
            status: if ok { Ok(()) } else { input() },
            info: self.version,
        }
    }

    fn features(&mut self, index: u64) -> RmiResult<u64> {
        self.inject(Command::Features)?;
        if self.abi.major >= 2 {
            let (f0, f1) = v2::Features1::split(&self.features);
            return Ok(match index {
                0 => f0,
                1 => f1,
                _ => 0,
            });
        }
        Ok(if index == 0 {
            self.features.encode()
        } else {
            0
        })
    }

    fn granule_delegate(&mut self, pa: Pa) -> RmiResult {
        self.inject(Command::GranuleDelegate)?;
        if !self.is(pa, GranuleState::Undelegated) || !self.backing.delegate(pa) {
            return input();
        }
        self.set(pa, GranuleState::Delegated);
        Ok(())
    }

    fn granule_undelegate(&mut self, pa: Pa) -> RmiResult {
        self.inject(Command::GranuleUndelegate)?;
        if !self.is(pa, GranuleState::Delegated) || !self.backing.undelegate(pa) {
            return input();
        }
        self.set(pa, GranuleState::Undelegated);
        Ok(())
    }

    fn data_create(&mut self, rd: Pa, data: Pa, ipa: Ipa, src: Pa, flags: u64) -> RmiResult {
        self.inject(Command::DataCreate)?;
        self.data_create_common(rd, data, ipa, Some((src, flags)))
    }

    fn data_create_unknown(&mut self, rd: Pa, data: Pa, ipa: Ipa) -> RmiResult {
        self.inject(Command::DataCreateUnknown)?;
        self.data_create_common(rd, data, ipa, None)
    }

    fn data_destroy(&mut self, rd: Pa, ipa: Ipa) -> RmiResult<Destroyed> {
        self.inject(Command::DataDestroy)?;
        self.destroy_page(rd, ipa)
    }

    fn realm_activate(&mut self, rd: Pa) -> RmiResult {
        self.inject(Command::RealmActivate)?;
        let r = self.realm(rd)?;
        if r.state != ModelRealmState::New {
            return err(ErrorStatus::Realm, 0);
        }
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.state = ModelRealmState::Active;
        }
        Ok(())
    }

    fn realm_create(&mut self, rd: Pa, p: &RealmCreate) -> RmiResult {
        // Read the granule the host encoded, as an RMM does, not the
        // host's own structure.
        if self.abi.major >= 2 {
            return self.realm_create_v2(rd, &v2::RealmParams::from_v1(&p.params()));
        }
        self.realm_create_raw(rd, &p.params())
    }

    fn realm_destroy(&mut self, rd: Pa) -> RmiResult {
        self.realm_destroy_impl(rd)
    }

    fn rec_create(&mut self, rd: Pa, rec: Pa, p: &RecCreate) -> RmiResult<Sro> {
        // The granule the host encoded, as an RMM reads it.
        if self.abi.major >= 2 {
            return self.rec_create_v2(rd, rec, &v2::RecParams::from_v1(&p.params()));
        }
        self.rec_create_raw(rd, rec, &p.params()).map(|()| Sro::Done)
    }

    fn rec_destroy(&mut self, rec: Pa) -> RmiResult<Sro> {
        self.inject(Command::RecDestroy)?;
        if self.sro.is_some() {
            return err(ErrorStatus::Blocked, 0);
        }
        if !self.is(rec, GranuleState::Rec) {
            return input();
        }
        if self.abi.major >= 2 {
            let Some(m) = self.recs.get(&rec.0) else {
                return input();
            };
            let aux = m.aux.clone();
            return Ok(self.start_sro(SroKind::RecDestroy { rec, aux }, SroStep::Reclaim));
        }
        let Some(m) = self.recs.remove(&rec.0) else {
            return input();
        };
        self.set(rec, GranuleState::Delegated);
        for a in &m.aux {
            self.set(*a, GranuleState::Delegated);
        }
        if let Some(r) = self.realms.get_mut(&m.rd.0) {
            r.recs -= 1;
        }
        Ok(Sro::Done)
    }

    fn rec_enter(&mut self, rec: Pa, run: &mut RecRun) -> RmiResult {
        let info = self.rec_enter_begin(rec)?;
        // A pending RIPAS request is answered by this entry.
        let _ = self.ripas_response(rec);
        let mut gprs = [0u64; 7];
        gprs.copy_from_slice(&run.enter.gprs[..7]);
        self.entries.push(gprs);
        let Some(x) = self.exits.pop_front() else {
            // Nothing scripted: the realm powers off.
            run.exit = RecExit::default();
            run.exit.exit_reason = exit_reason::PSCI;
            run.exit.gprs[0] = u64::from(crate::logic::exit::psci::SYSTEM_OFF);
            self.rec_exited(rec, info.rd, &run.exit);
            return Ok(());
        };
        run.exit = RecExit::default();
        run.exit.exit_reason = x.reason;
        run.exit.esr = x.esr;
        run.exit.far = x.far;
        run.exit.hpfar = x.hpfar;
        run.exit.gprs[..7].copy_from_slice(&x.gprs);
        run.exit.imm = x.imm;
        if x.reason == exit_reason::RIPAS_CHANGE {
            run.exit.ripas_base = x.ripas.0;
            run.exit.ripas_top = x.ripas.1;
            run.exit.ripas_value = x.ripas.2;
            if let Some(v) = Ripas::from_u8(x.ripas.2) {
                // CAST: a scripted request is the model's to trust.
                let _ = self.ripas_request(rec, x.ripas.0, x.ripas.1, v, true);
            }
        }
        self.rec_exited(rec, info.rd, &run.exit);
        Ok(())
    }

    fn rtt_create(&mut self, rd: Pa, rtt: Pa, ipa: Ipa, level: u8) -> RmiResult {
        self.inject(Command::RttCreate)?;
        let r = self.realm(rd)?;
        if level <= r.start_level || level > 3 || !self.is(rtt, GranuleState::Delegated) {
            return input();
        }
        if ipa.0 % level_size(level - 1) != 0 {
            return input();
        }
        let w = self.walk(rd, ipa.0, level - 1)?;
        if w.level < level - 1 {
            return err(ErrorStatus::Rtt, w.level);
        }
        let protected = self.protected(rd, ipa.0);
        let entries = match self.entry(&w) {
            Entry::Table(_) => return err(ErrorStatus::Rtt, level - 1),
            Entry::Unassigned(ripas) => {
                vec![Entry::Unassigned(if protected { ripas } else { Ripas::Empty }); 512]
            }
            Entry::Assigned(pa, ripas) => (0..512)
                .map(|i| Entry::Assigned(Pa(pa.0 + i * level_size(level)), ripas))
                .collect(),
            Entry::AssignedNs(desc) => (0..512)
                .map(|i| Entry::AssignedNs(desc + i * level_size(level)))
                .collect(),
        };
        self.insert_rtt(rtt, level, entries);
        self.set_entry(&w, Entry::Table(rtt));
        self.set(rtt, GranuleState::Rtt);
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.rtts += 1;
        }
        Ok(())
    }

    fn rtt_destroy(&mut self, rd: Pa, ipa: Ipa, level: u8) -> (RmiResult<Pa>, Ipa) {
        if let Err(e) = self.inject(Command::RttDestroy) {
            return (Err(e), ipa);
        }
        let (parent, table) = match self.table_at(rd, ipa, level, 1) {
            Ok(t) => t,
            Err(e) if e.status == ErrorStatus::Rtt && e.index < level => {
                // No table: like the RMM, say where the next live entry
                // of the table the walk ended in is.
                let top = self.skip_non_live(rd, ipa);
                return (Err(e), top);
            }
            Err(e) => return (Err(e), ipa),
        };
        if Self::live(&self.rtts[&table.0].entries) {
            return (err(ErrorStatus::Rtt, level), ipa);
        }
        let protected = self.protected(rd, ipa.0);
        self.set_entry(
            &parent,
            Entry::Unassigned(if protected {
                Ripas::Destroyed
            } else {
                Ripas::Empty
            }),
        );
        self.rtts.remove(&table.0);
        self.set(table, GranuleState::Delegated);
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.rtts -= 1;
        }
        let top = self.skip_non_live(rd, ipa);
        (Ok(table), top)
    }

    fn rtt_map_unprotected(&mut self, rd: Pa, ipa: Ipa, level: u8, desc: u64) -> RmiResult {
        self.inject(Command::RttMapUnprotected)?;
        self.realm(rd)?;
        if level > 3
            || ipa.0 % level_size(level) != 0
            || self.protected(rd, ipa.0)
            || pa_of(desc) % level_size(level) != 0
            || !ns_desc_ok(desc)
        {
            return input();
        }
        let w = self.walk(rd, ipa.0, level)?;
        if w.level < level {
            return err(ErrorStatus::Rtt, w.level);
        }
        if !matches!(self.entry(&w), Entry::Unassigned(_)) {
            return err(ErrorStatus::Rtt, level);
        }
        self.set_entry(&w, Entry::AssignedNs(desc));
        Ok(())
    }

    fn rtt_read_entry(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<RttEntry> {
        self.inject(Command::RttReadEntry)?;
        if level > 3 || ipa.0 % level_size(level) != 0 {
            return input();
        }
        let w = self.walk(rd, ipa.0, level)?;
        let (state, desc, ripas) = match self.entry(&w) {
            Entry::Unassigned(r) => (RttEntryState::Unassigned, 0, r),
            Entry::Assigned(pa, r) => (RttEntryState::Assigned, pa.0, r),
            Entry::AssignedNs(d) => (RttEntryState::Assigned, d, Ripas::Empty),
            Entry::Table(pa) => (RttEntryState::Table, pa.0, Ripas::Empty),
        };
        // As an RMM answers: in registers, which the host decodes.
        // CAST: fieldless `repr(u8)` enum to its discriminant.
        Ok(RttEntry::decode([
            u64::from(w.level),
            state.encode(),
            desc,
            ripas as u64,
        ]))
    }

    fn rtt_unmap_unprotected(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Ipa> {
        self.inject(Command::RttUnmapUnprotected)?;
        self.realm(rd)?;
        if level > 3 || ipa.0 % level_size(level) != 0 || self.protected(rd, ipa.0) {
            return input();
        }
        let w = self.walk(rd, ipa.0, level)?;
        if w.level < level {
            return err(ErrorStatus::Rtt, w.level);
        }
        if !matches!(self.entry(&w), Entry::AssignedNs(_)) {
            return err(ErrorStatus::Rtt, level);
        }
        self.set_entry(&w, Entry::Unassigned(Ripas::Empty));
        Ok(Ipa(ipa.0 + level_size(level)))
    }

    fn psci_complete(&mut self, calling: Pa, target: Pa, status: u64) -> RmiResult {
        self.inject(Command::PsciComplete)?;
        if !self.is(calling, GranuleState::Rec) || !self.is(target, GranuleState::Rec) {
            return input();
        }
        let (Some(c), Some(t)) = (self.recs.get(&calling.0), self.recs.get(&target.0)) else {
            return input();
        };
        if c.rd != t.rd || c.pending_psci != Some(t.mpidr) {
            return input();
        }
        // As TF-RMM: CPU_ON takes SUCCESS or DENIED, AFFINITY_INFO SUCCESS.
        const DENIED: u64 = -3i64 as u64;
        let ok = match c.pending_psci_fn {
            crate::logic::exit::psci::AFFINITY_INFO => status == 0,
            _ => status == 0 || status == DENIED,
        };
        if !ok {
            return input();
        }
        if let Some(c) = self.recs.get_mut(&calling.0) {
            c.pending_psci = None;
        }
        Ok(())
    }

    fn rtt_fold(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Pa> {
        self.inject(Command::RttFold)?;
        // A table folds into a block of its parent, which cannot be the
        // start level's parent.
        let (parent, table) = self.table_at(rd, ipa, level, 2)?;
        let e = &self.rtts[&table.0].entries;
        let folded = match e[0] {
            Entry::Unassigned(r0) if e.iter().all(|x| *x == Entry::Unassigned(r0)) => {
                Entry::Unassigned(r0)
            }
            Entry::Assigned(pa0, r0)
                if pa0.0 % level_size(level - 1) == 0
                    && e.iter().enumerate().all(|(i, x)| {
                        *x == Entry::Assigned(Pa(pa0.0 + i as u64 * level_size(level)), r0)
                    }) =>
            {
                Entry::Assigned(pa0, r0)
            }
            Entry::AssignedNs(d0)
                if pa_of(d0) % level_size(level - 1) == 0
                    && e.iter().enumerate().all(|(i, x)| {
                        *x == Entry::AssignedNs(d0 + i as u64 * level_size(level))
                    }) =>
            {
                Entry::AssignedNs(d0)
            }
            _ => return err(ErrorStatus::Rtt, level),
        };
        self.set_entry(&parent, folded);
        self.rtts.remove(&table.0);
        self.set(table, GranuleState::Delegated);
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.rtts -= 1;
        }
        Ok(table)
    }

    fn rec_aux_count(&mut self, rd: Pa) -> RmiResult<u64> {
        self.inject(Command::RecAuxCount)?;
        self.realm(rd)?;
        Ok(self.aux_count)
    }

    fn rtt_init_ripas(&mut self, rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa> {
        self.inject(Command::RttInitRipas)?;
        let r = self.realm(rd)?;
        if r.state != ModelRealmState::New {
            return err(ErrorStatus::Realm, 0);
        }
        if base.0 % GRANULE_SIZE != 0
            || top.0 % GRANULE_SIZE != 0
            || base.0 >= top.0
            || !self.protected(rd, top.0 - 1)
        {
            return input();
        }
        let w = self.walk(rd, base.0, 3)?;
        let size = level_size(w.level);
        let mut cur = base.0;
        let mut index = w.index;
        // Process entries of this table while they lie wholly in range.
        while index < 512 && cur < top.0 {
            let entry_base = cur - cur % size;
            if entry_base != cur || cur + size > top.0 || w.level == 0 {
                if cur == base.0 {
                    return err(ErrorStatus::Rtt, w.level);
                }
                break;
            }
            let ww = Walk {
                level: w.level,
                table: w.table,
                index,
            };
            match self.entry(&ww) {
                Entry::Unassigned(_) => self.set_entry(&ww, Entry::Unassigned(Ripas::Ram)),
                Entry::Table(_) => break,
                _ => {
                    if cur == base.0 {
                        return err(ErrorStatus::Rtt, w.level);
                    }
                    break;
                }
            }
            cur += size;
            index += 1;
        }
        if cur == base.0 {
            return err(ErrorStatus::Rtt, w.level);
        }
        Ok(Ipa(cur))
    }

    fn rtt_set_ripas(&mut self, rd: Pa, rec: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa> {
        self.inject(Command::RttSetRipas)?;
        self.realm(rd)?;
        if !self.is(rec, GranuleState::Rec) {
            return input();
        }
        let Some(m) = self.recs.get(&rec.0) else {
            return input();
        };
        let Some(req) = m.ripas else {
            return input();
        };
        if m.rd != rd || base.0 != req.next || top.0 > req.top || base.0 >= top.0 {
            return input();
        }
        // As TF-RMM: every entry of the table the walk ends in that lies
        // wholly in `[base, top)`, at that entry's level (a block at
        // once); a range that starts inside a block needs a deeper RTT.
        let w = self.walk(rd, base.0, 3)?;
        let size = level_size(w.level);
        if base.0 % size != 0 || base.0 + size > top.0 {
            return err(ErrorStatus::Rtt, w.level);
        }
        let mut cur = base.0;
        let mut index = w.index;
        while index < 512 && cur + size <= top.0 {
            let ww = Walk {
                level: w.level,
                table: w.table,
                index,
            };
            let e = match self.entry(&ww) {
                Entry::Unassigned(_) => Entry::Unassigned(req.ripas),
                Entry::Assigned(pa, _) => Entry::Assigned(pa, req.ripas),
                _ if cur == base.0 => return err(ErrorStatus::Rtt, w.level),
                _ => break,
            };
            self.set_entry(&ww, e);
            cur += size;
            index += 1;
        }
        let next = cur;
        if let Some(r) = self.recs.get_mut(&rec.0).and_then(|m| m.ripas.as_mut()) {
            r.next = next;
        }
        Ok(Ipa(next))
    }

    fn rmm_config_set(&mut self) -> RmiResult {
        self.inject(Command::RmmConfigSet)?;
        // Only before activation, as TF-RMM v0.9.0.
        if self.activated {
            return err(ErrorStatus::Global, 0);
        }
        Ok(())
    }

    fn rmm_activate(&mut self) -> RmiResult {
        self.inject(Command::RmmActivate)?;
        if self.activated {
            return err(ErrorStatus::Global, 0);
        }
        self.activated = true;
        Ok(())
    }

    fn granule_range_delegate(&mut self, base: Pa, top: Pa) -> RmiResult<Pa> {
        self.inject(Command::GranuleRangeDelegate)?;
        self.range_transition(base, top, true)
    }

    fn granule_range_undelegate(&mut self, base: Pa, top: Pa) -> RmiResult<Pa> {
        self.inject(Command::GranuleRangeUndelegate)?;
        self.range_transition(base, top, false)
    }

    fn rtt_data_map(&mut self, rd: Pa, base: Ipa, top: Ipa, data: Pa) -> RmiResult<Ipa> {
        self.inject(Command::RttDataMap)?;
        if top.0 < base.0 || top.0 - base.0 < GRANULE_SIZE {
            return input();
        }
        self.data_create_common(rd, data, base, None)?;
        Ok(Ipa(base.0 + GRANULE_SIZE))
    }

    fn rtt_data_unmap(&mut self, rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Unmapped> {
        self.inject(Command::RttDataUnmap)?;
        if top.0 < base.0 || top.0 - base.0 < GRANULE_SIZE {
            return input();
        }
        // TF-RMM v0.9.0 runs 1.0's DATA_DESTROY and reports its walk: an
        // entry that is not live is skipped (success, nothing unmapped);
        // a block at `base` is ERROR_RTT at its level.
        match self.destroy_page(rd, base) {
            Ok(d) => Ok(Unmapped {
                pa: Some(d.pa),
                top: Ipa(d.top.0.min(top.0)),
            }),
            Err(e) if e.status == ErrorStatus::Rtt => {
                let next = self.skip_non_live(rd, base);
                if next == base {
                    Err(e)
                } else {
                    Ok(Unmapped {
                        pa: None,
                        top: Ipa(next.0.min(top.0)),
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    fn op_continue(&mut self, handle: u64) -> RmiResult<Sro> {
        self.inject(Command::OpContinue)?;
        let sro = self.expect_sro(handle, |s| matches!(s, SroStep::Continue))?;
        match sro.kind {
            SroKind::RecCreate {
                rec,
                failed: Some(e),
                ..
            } => {
                self.set(rec, GranuleState::Delegated);
                Err(e)
            }
            SroKind::RecCreate {
                rd,
                rec,
                params,
                donated,
                failed: None,
            } => {
                // As TF-RMM v0.9.0: the realm and the MPIDR are checked
                // only now.  A refusal is reported after the host has
                // taken the donated granules back.
                if let Err(e) = self.rec_create_check(rd, &params) {
                    let handle = sro.handle;
                    self.sro = Some(SroM {
                        handle,
                        kind: SroKind::RecCreate {
                            rd,
                            rec,
                            params,
                            donated,
                            failed: Some(e),
                        },
                        next: SroStep::Reclaim,
                    });
                    return Ok(Sro::Incomplete {
                        handle,
                        next: SroStep::Reclaim,
                        can_cancel: false,
                    });
                }
                let mut g = params.to_v1();
                // CAST: at most MAX_REC_AUX_GRANULES, checked on donation.
                g.num_aux = donated.len() as u64;
                for (d, a) in g.aux.iter_mut().zip(donated.iter()) {
                    *d = a.0;
                }
                self.finish_rec_create(rd, rec, &g, &donated);
                Ok(Sro::Done)
            }
            SroKind::RecDestroy { rec, .. } => {
                if let Some(m) = self.recs.remove(&rec.0) {
                    if let Some(r) = self.realms.get_mut(&m.rd.0) {
                        r.recs -= 1;
                    }
                }
                self.set(rec, GranuleState::Delegated);
                Ok(Sro::Done)
            }
        }
    }

    fn op_mem_donate(&mut self, handle: u64, granules: &[Pa]) -> RmiResult<(usize, Sro)> {
        self.inject(Command::OpMemDonate)?;
        let need = match self.sro.as_ref() {
            Some(SroM {
                handle: h,
                next: SroStep::Donate(req),
                ..
            }) if *h == handle => usize::from(req.count),
            _ => return input(),
        };
        let ok = granules.len() <= need
            && granules.iter().enumerate().all(|(i, g)| {
                self.is(*g, GranuleState::Delegated) && !granules[..i].contains(g)
            });
        if !ok {
            return input();
        }
        for g in granules {
            self.set(*g, GranuleState::RecAux);
        }
        let Some(sro) = self.sro.as_mut() else {
            return input();
        };
        let SroKind::RecCreate { donated, .. } = &mut sro.kind else {
            return input();
        };
        donated.extend_from_slice(granules);
        let left = need - granules.len();
        sro.next = if left == 0 {
            SroStep::Continue
        } else {
            SroStep::Donate(v2::DonateReq {
                blk_size: 0,
                // CAST: left < need <= MAX_REC_AUX_GRANULES.
                count: left as u16,
                contiguous: false,
                undelegated: false,
            })
        };
        let (handle, next) = (sro.handle, sro.next);
        Ok((
            granules.len(),
            Sro::Incomplete {
                handle,
                next,
                can_cancel: false,
            },
        ))
    }

    fn op_mem_reclaim(&mut self, handle: u64, out: &mut [Pa]) -> RmiResult<(usize, Sro)> {
        self.inject(Command::OpMemReclaim)?;
        let Some(sro) = self.sro.as_mut() else {
            return input();
        };
        if sro.handle != handle || sro.next != SroStep::Reclaim {
            return input();
        }
        let aux = match &mut sro.kind {
            SroKind::RecDestroy { aux, .. } => aux,
            SroKind::RecCreate { donated, .. } => donated,
        };
        let n = out.len().min(aux.len());
        let given: Vec<Pa> = aux.drain(..n).collect();
        if aux.is_empty() {
            sro.next = SroStep::Continue;
        }
        let (handle, next) = (sro.handle, sro.next);
        for (o, g) in out.iter_mut().zip(given.iter()) {
            *o = *g;
            self.set(*g, GranuleState::Delegated);
        }
        Ok((
            n,
            Sro::Incomplete {
                handle,
                next,
                can_cancel: false,
            },
        ))
    }

    fn op_cancel(&mut self, handle: u64) -> RmiResult {
        self.inject(Command::OpCancel)?;
        // TF-RMM v0.9.0 never offers cancelling a REC operation.
        let _ = handle;
        input()
    }
}

impl<B: Backing> RmmModel<B> {
    /// The checks of `REC_ENTER`, up to running the REC: the REC and its
    /// realm must be able to run.  Counts the call (and may inject a
    /// failure).  Returns the realm the REC runs in.
    pub fn rec_enter_begin(&mut self, rec: Pa) -> RmiResult<RealmInfo> {
        self.inject(Command::RecEnter)?;
        if !self.is(rec, GranuleState::Rec) {
            return input();
        }
        let Some(m) = self.recs.get(&rec.0) else {
            return input();
        };
        let rd = m.rd;
        let Some(r) = self.realms.get(&rd.0) else {
            return input();
        };
        match r.state {
            ModelRealmState::New => return err(ErrorStatus::Realm, 0),
            ModelRealmState::SystemOff => return err(ErrorStatus::Realm, 1),
            ModelRealmState::Active => {}
        }
        if !m.runnable || m.pending_psci.is_some() {
            return err(ErrorStatus::Rec, 0);
        }
        Ok(RealmInfo {
            rd,
            vmid: r.vmid,
            ipa_bits: r.ipa_bits,
            start_level: r.start_level,
            num_start: r.num_start,
            rtt_base: r.rtt_base,
            flags: r.flags,
            hash_algo: r.hash_algo,
            rpv: r.rpv,
        })
    }

    /// What the REC's exit `exit` leaves pending: `PSCI_COMPLETE` for
    /// CPU_ON and AFFINITY_INFO, and the realm's state after SYSTEM_OFF
    /// or SYSTEM_RESET.
    pub fn rec_exited(&mut self, rec: Pa, rd: Pa, exit: &RecExit) {
        if exit.exit_reason != exit_reason::PSCI {
            return;
        }
        use crate::logic::exit::psci;
        // CAST: PSCI function IDs are 32 bits.
        let f = exit.gprs[0] as u32;
        if f == psci::CPU_ON || f == psci::AFFINITY_INFO {
            if let Some(m) = self.recs.get_mut(&rec.0) {
                m.pending_psci = Some(exit.gprs[1]);
                m.pending_psci_fn = f;
            }
        }
        if f == psci::SYSTEM_OFF || f == psci::SYSTEM_RESET {
            if let Some(r) = self.realms.get_mut(&rd.0) {
                r.state = ModelRealmState::SystemOff;
            }
        }
    }

    /// `RSI_IPA_STATE_SET` from `rec`: records the request the host must
    /// answer before the REC runs again.  `ERROR_INPUT` for a range that
    /// is not granule-aligned, empty or outside the protected half, or a
    /// RIPAS other than EMPTY or RAM.
    pub fn ripas_request(
        &mut self,
        rec: Pa,
        base: u64,
        top: u64,
        ripas: Ripas,
        change_destroyed: bool,
    ) -> RmiResult {
        let Some(rd) = self.recs.get(&rec.0).map(|m| m.rd) else {
            return input();
        };
        if base % GRANULE_SIZE != 0
            || top % GRANULE_SIZE != 0
            || base >= top
            || !self.protected(rd, top - 1)
            || !matches!(ripas, Ripas::Empty | Ripas::Ram)
        {
            return input();
        }
        if let Some(m) = self.recs.get_mut(&rec.0) {
            m.ripas = Some(RipasRequest {
                base,
                top,
                ripas,
                change_destroyed,
                next: base,
            });
        }
        Ok(())
    }

    /// The REC's RIPAS request, taken by the entry that follows it (which
    /// answers it), with how far the host got (`next`).  `None` if the
    /// REC asked for nothing.
    pub fn ripas_response(&mut self, rec: Pa) -> Option<RipasRequest> {
        self.recs.get_mut(&rec.0)?.ripas.take()
    }

    /// Whether `pa` is a granule of the delegable memory that is in the
    /// normal world (`UNDELEGATED`): where the RMM may read host
    /// structures from.
    pub fn ns_granule(&self, pa: Pa) -> bool {
        self.is(pa, GranuleState::Undelegated)
    }

    /// The REC's RD and MPIDR.
    pub fn rec_of(&self, rec: Pa) -> Option<(Pa, u64)> {
        if !self.is(rec, GranuleState::Rec) {
            return None;
        }
        self.recs.get(&rec.0).map(|m| (m.rd, m.mpidr))
    }

    /// The REC of the realm `rd` with `mpidr`.
    pub fn rec_by_mpidr(&self, rd: Pa, mpidr: u64) -> Option<Pa> {
        self.recs
            .iter()
            .find(|(_, m)| m.rd == rd && m.mpidr == mpidr)
            .map(|(pa, _)| Pa(*pa))
    }

    /// Whether `rec` is runnable (PSCI CPU_ON makes it so).
    pub fn rec_runnable(&self, rec: Pa) -> bool {
        self.recs.get(&rec.0).map(|m| m.runnable).unwrap_or(false)
    }

    /// Makes `rec` runnable or not (PSCI CPU_ON and CPU_OFF).
    pub fn set_runnable(&mut self, rec: Pa, runnable: bool) {
        if let Some(m) = self.recs.get_mut(&rec.0) {
            m.runnable = runnable;
        }
    }

    /// The mapping of `ipa` in realm `rd`: the leaf entry and the size
    /// it covers, or `None` for an IPA outside the realm.
    pub fn lookup(&self, rd: Pa, ipa: u64) -> Option<(Entry, u64)> {
        let w = self.walk(rd, ipa, 3).ok()?;
        Some((self.entry(&w), level_size(w.level)))
    }

    /// Whether `ipa` is in the protected half of realm `rd`.
    pub fn is_protected(&self, rd: Pa, ipa: u64) -> bool {
        self.protected(rd, ipa)
    }
}

impl<B: Backing> RmmModel<B> {
    /// `REALM_CREATE` with the parameter granule as the RMM read it.
    pub fn realm_create_raw(&mut self, rd: Pa, g: &RealmParams) -> RmiResult {
        self.inject(Command::RealmCreate)?;
        if !self.is(rd, GranuleState::Delegated) {
            return input();
        }
        let f = self.features;
        let Ok(s2sz) = u8::try_from(g.s2sz) else {
            return input();
        };
        if s2sz < 32 || s2sz > f.max_ipa_bits || s2sz > 48 {
            return input();
        }
        // LPA2, SVE and PMU only where FEATURES offers them.
        let asks = |bit: u64| g.flags & (1 << bit) != 0;
        if (asks(0) && !f.lpa2) || (asks(1) && !f.sve) || (asks(2) && !f.pmu) || g.flags >> 3 != 0 {
            return input();
        }
        let hash_ok = match g.hash_algo {
            0 => f.hash_sha256,
            1 => f.hash_sha512,
            _ => false,
        };
        if !hash_ok || self.vmids.contains(&g.vmid) {
            return input();
        }
        // At least one breakpoint and watchpoint, at most what FEATURES says.
        let (bps, wps) = (g.num_bps, g.num_wps);
        if bps == 0 || bps > u64::from(f.num_bps) || wps == 0 || wps > u64::from(f.num_wps) {
            return input();
        }
        let Some(geo) = crate::logic::realm::Geometry::new(s2sz) else {
            return input();
        };
        if g.rtt_level_start != i64::from(geo.start_level)
            || g.rtt_num_start != u32::from(geo.num_start)
        {
            return input();
        }
        let rtt_base = Pa(g.rtt_base);
        let n = u64::from(g.rtt_num_start);
        if (0..n).any(|i| {
            !self.is(rtt_base.add_pages(i), GranuleState::Delegated) || rtt_base.add_pages(i) == rd
        }) {
            return input();
        }
        for i in 0..n {
            let pa = rtt_base.add_pages(i);
            self.set(pa, GranuleState::Rtt);
            self.insert_rtt(pa, geo.start_level, vec![Entry::Unassigned(Ripas::Empty); 512]);
        }
        self.set(rd, GranuleState::Rd);
        self.vmids.insert(g.vmid);
        self.realms.insert(
            rd.0,
            RealmM {
                state: ModelRealmState::New,
                ipa_bits: s2sz,
                start_level: geo.start_level,
                num_start: geo.num_start,
                rtt_base,
                recs: 0,
                rtts: 0,
                data: 0,
                vmid: g.vmid,
                measure: u64::from(g.vmid) ^ u64::from(g.rpv[0]),
                flags: g.flags,
                hash_algo: g.hash_algo,
                rpv: g.rpv,
            },
        );
        Ok(())
    }

    fn realm_destroy_impl(&mut self, rd: Pa) -> RmiResult {
        self.inject(Command::RealmDestroy)?;
        let r = self.realm(rd)?;
        if r.recs != 0 || r.rtts != 0 || r.data != 0 {
            return err(ErrorStatus::Realm, 0);
        }
        let (base, n, vmid) = (r.rtt_base, u64::from(r.num_start), r.vmid);
        for i in 0..n {
            let pa = base.add_pages(i);
            if self
                .rtts
                .get(&pa.0)
                .map(|t| Self::live(&t.entries))
                .unwrap_or(false)
            {
                return err(ErrorStatus::Realm, 0);
            }
        }
        for i in 0..n {
            let pa = base.add_pages(i);
            self.rtts.remove(&pa.0);
            self.set(pa, GranuleState::Delegated);
        }
        self.vmids.remove(&vmid);
        self.realms.remove(&rd.0);
        self.set(rd, GranuleState::Delegated);
        Ok(())
    }

    /// `REC_CREATE` with the parameter granule as the RMM read it.
    pub fn rec_create_raw(&mut self, rd: Pa, rec: Pa, g: &RecParams) -> RmiResult {
        self.inject(Command::RecCreate)?;
        let r = self.realm(rd)?;
        if !self.is(rec, GranuleState::Delegated) {
            return input();
        }
        if g.num_aux != self.aux_count || g.num_aux > MAX_REC_AUX_GRANULES as u64 {
            return input();
        }
        // CAST: at most MAX_REC_AUX_GRANULES, checked above.
        let aux: Vec<Pa> = g.aux[..g.num_aux as usize].iter().map(|a| Pa(*a)).collect();
        let aux = &aux[..];
        for (i, a) in aux.iter().enumerate() {
            if !self.is(*a, GranuleState::Delegated) || *a == rec || aux[..i].contains(a) {
                return input();
            }
        }
        if r.state != ModelRealmState::New {
            return err(ErrorStatus::Realm, 0);
        }
        if self.recs.values().any(|x| x.rd == rd && x.mpidr == g.mpidr) {
            return input();
        }
        for a in aux {
            self.set(*a, GranuleState::RecAux);
        }
        self.finish_rec_create(rd, rec, g, aux);
        Ok(())
    }

    fn data_create_common(
        &mut self,
        rd: Pa,
        data: Pa,
        ipa: Ipa,
        src: Option<(Pa, u64)>,
    ) -> RmiResult {
        let r = self.realm(rd)?;
        if src.is_some() && r.state != ModelRealmState::New {
            return err(ErrorStatus::Realm, 0);
        }
        if !self.is(data, GranuleState::Delegated)
            || ipa.0 % GRANULE_SIZE != 0
            || !self.protected(rd, ipa.0)
        {
            return input();
        }
        if let Some((src, flags)) = src {
            if !self.is(src, GranuleState::Undelegated) || flags > 1 {
                return input();
            }
        }
        let w = self.walk(rd, ipa.0, 3)?;
        if w.level != 3 {
            return err(ErrorStatus::Rtt, w.level);
        }
        let ripas = match self.entry(&w) {
            Entry::Unassigned(r) => r,
            _ => return err(ErrorStatus::Rtt, 3),
        };
        let new_ripas = if src.is_some() { Ripas::Ram } else { ripas };
        if !self.backing.data_init(data, src.map(|(s, _)| s)) {
            return input();
        }
        self.set_entry(&w, Entry::Assigned(data, new_ripas));
        self.set(data, GranuleState::Data);
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.data += 1;
            if let Some((src, flags)) = src {
                if flags & 1 != 0 {
                    r.measure = r.measure.rotate_left(7) ^ ipa.0 ^ src.0.wrapping_mul(31);
                }
            }
        }
        Ok(())
    }

    /// 1.0's `DATA_DESTROY` after the command's checks, which 2.0's
    /// `RTT_DATA_UNMAP` reuses (as TF-RMM v0.9.0 does).
    fn destroy_page(&mut self, rd: Pa, ipa: Ipa) -> RmiResult<Destroyed> {
        if ipa.0 % GRANULE_SIZE != 0 || !self.protected(rd, ipa.0) {
            return input();
        }
        let w = self.walk(rd, ipa.0, 3)?;
        if w.level != 3 {
            return err(ErrorStatus::Rtt, w.level);
        }
        let Entry::Assigned(pa, ripas) = self.entry(&w) else {
            return err(ErrorStatus::Rtt, 3);
        };
        let new_ripas = if ripas == Ripas::Ram {
            Ripas::Destroyed
        } else {
            ripas
        };
        self.set_entry(&w, Entry::Unassigned(new_ripas));
        self.set(pa, GranuleState::Delegated);
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.data -= 1;
        }
        // Top: the next assigned entry in this table, or the table's end.
        let table_base = ipa.0 - (w.index as u64) * GRANULE_SIZE;
        let entries = &self.rtts[&w.table.0].entries;
        let next = (w.index + 1..512)
            .find(|&i| matches!(entries[i], Entry::Assigned(..)))
            .unwrap_or(512);
        Ok(Destroyed {
            pa,
            top: Ipa(table_base + next as u64 * GRANULE_SIZE),
        })
    }

    fn range_transition(&mut self, base: Pa, top: Pa, delegate: bool) -> RmiResult<Pa> {
        if base.0 % GRANULE_SIZE != 0 || top.0 % GRANULE_SIZE != 0 || top.0 <= base.0 {
            return input();
        }
        let (from, to) = if delegate {
            (GranuleState::Undelegated, GranuleState::Delegated)
        } else {
            (GranuleState::Delegated, GranuleState::Undelegated)
        };
        let mut cur = base;
        let mut done = 0;
        while cur.0 < top.0 && done < self.range_chunk.max(1) {
            let ok = self.is(cur, from)
                && if delegate {
                    self.backing.delegate(cur)
                } else {
                    self.backing.undelegate(cur)
                };
            if !ok {
                break;
            }
            self.set(cur, to);
            cur = cur.add_pages(1);
            done += 1;
        }
        if done == 0 {
            return input();
        }
        Ok(cur)
    }

    fn start_sro(&mut self, kind: SroKind, next: SroStep) -> Sro {
        let handle = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1);
        self.sro = Some(SroM { handle, kind, next });
        Sro::Incomplete {
            handle,
            next,
            can_cancel: false,
        }
    }

    fn expect_sro(&mut self, handle: u64, ok: impl Fn(&SroStep) -> bool) -> RmiResult<SroM> {
        match self.sro.take() {
            Some(s) if s.handle == handle && ok(&s.next) => Ok(s),
            other => {
                self.sro = other;
                input()
            }
        }
    }

    /// 2.0 `REC_CREATE`: checked as 1.0's, then the REC waits for its
    /// auxiliary granules.
    fn rec_create_v2(&mut self, rd: Pa, rec: Pa, g: &v2::RecParams) -> RmiResult<Sro> {
        self.inject(Command::RecCreate)?;
        if self.sro.is_some() {
            return err(ErrorStatus::Blocked, 0);
        }
        if !self.is(rec, GranuleState::Delegated) {
            return input();
        }
        self.set(rec, GranuleState::Rec);
        let req = v2::DonateReq {
            blk_size: 0,
            // CAST: aux_count <= MAX_REC_AUX_GRANULES (16).
            count: self.aux_count.min(MAX_REC_AUX_GRANULES as u64) as u16,
            contiguous: false,
            undelegated: false,
        };
        let kind = SroKind::RecCreate {
            rd,
            rec,
            params: *g,
            donated: Vec::new(),
            failed: None,
        };
        Ok(self.start_sro(kind, SroStep::Donate(req)))
    }

    /// What 2.0's final `OP_CONTINUE` of `REC_CREATE` checks: the realm
    /// is NEW and the REC is the next in MPIDR-index order
    /// (`Aff0 | Aff1 << 4 | Aff2 << 12 | Aff3 << 20`, other bits 0).
    fn rec_create_check(&self, rd: Pa, g: &v2::RecParams) -> RmiResult {
        let r = self.realm(rd)?;
        if r.state != ModelRealmState::New {
            return err(ErrorStatus::Realm, 0);
        }
        let m = g.mpidr;
        if m & !0xff_ff_ff_0f != 0 {
            return input();
        }
        let index = (m & 0xf) | ((m >> 8) & 0xff) << 4 | ((m >> 16) & 0xff) << 12 | ((m >> 24) & 0xff) << 20;
        if index != r.recs {
            return input();
        }
        Ok(())
    }

    /// A REC created: 1.0's `REC_CREATE`, 2.0's last `OP_CONTINUE`.
    fn finish_rec_create(&mut self, rd: Pa, rec: Pa, g: &RecParams, aux: &[Pa]) {
        self.set(rec, GranuleState::Rec);
        self.recs.insert(
            rec.0,
            RecM {
                rd,
                aux: aux.to_vec(),
                mpidr: g.mpidr,
                runnable: g.flags & REC_PARAMS_FLAG_RUNNABLE != 0,
                ripas: None,
                pending_psci: None,
                pending_psci_fn: 0,
            },
        );
        if let Some(r) = self.realms.get_mut(&rd.0) {
            r.recs += 1;
        }
    }

    /// 2.0 `REALM_CREATE`: 1.0's checks without the VMID, which the RMM
    /// allocates.
    fn realm_create_v2(&mut self, rd: Pa, g: &v2::RealmParams) -> RmiResult {
        let mut p = g.to_v1();
        let mut vmid = self.next_vmid;
        while self.vmids.contains(&vmid) || vmid == 0 {
            vmid = vmid.wrapping_add(1);
        }
        self.next_vmid = vmid.wrapping_add(1);
        p.vmid = vmid;
        self.realm_create_raw(rd, &p)
    }

    /// Marks a pending PSCI request on `rec` targeting `mpidr` (tests).
    pub fn set_pending_psci(&mut self, rec: Pa, mpidr: u64) {
        if let Some(m) = self.recs.get_mut(&rec.0) {
            m.pending_psci = Some(mpidr);
            m.pending_psci_fn = crate::logic::exit::psci::CPU_ON;
        }
    }
}
