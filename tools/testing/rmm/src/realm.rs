// SPDX-License-Identifier: GPL-2.0

//! What the RMM decides while a REC runs, without touching hardware:
//! the class of each trap from the realm, where a stage-2 fault goes
//! (the host, or an abort injected into the realm), the RSI calls and
//! the PSCI calls.  The firmware shell (`main.rs`) switches worlds and
//! applies the outcome; the tests drive these functions directly.

use kvm_rme::abi::{Pa, Ripas};
use kvm_rme::model::{Backing, Entry, RealmInfo, RmmModel};

/// `ESR_ELx.EC` values.
pub mod ec {
    /// Unknown reason (what an UNDEFINED instruction reports).
    pub const UNKNOWN: u64 = 0x00;
    /// WFI or WFE.
    pub const WFX: u64 = 0x01;
    /// HVC from AArch64.
    pub const HVC64: u64 = 0x16;
    /// SMC from AArch64.
    pub const SMC64: u64 = 0x17;
    /// MSR, MRS or system instruction.
    pub const SYS64: u64 = 0x18;
    /// Instruction abort from a lower EL.
    pub const IABT_LOW: u64 = 0x20;
    /// Instruction abort from the same EL.
    pub const IABT_CUR: u64 = 0x21;
    /// Data abort from a lower EL.
    pub const DABT_LOW: u64 = 0x24;
    /// Data abort from the same EL.
    pub const DABT_CUR: u64 = 0x25;
}

/// `ESR_ELx.IL`: a 32-bit instruction.
pub const ESR_IL: u64 = 1 << 25;
/// `ESR_ELx.ISV` of a data abort.
pub const ESR_ISV: u64 = 1 << 24;
/// `ESR_ELx.WnR` of a data abort.
pub const ESR_WNR: u64 = 1 << 6;
/// The syndrome bits the host sees for any stage-2 abort, as TF-RMM
/// passes them: EC, SET, FnV, EA and the fault status.
const ESR_FAULT_MASK: u64 = (0x3f << 26) | (0b11 << 11) | (1 << 10) | (1 << 9) | 0x3f;
/// For an emulatable access also ISV, SAS, SF and WnR (not SRT or SSE:
/// the value travels in `gprs[0]`).
const ESR_MMIO_MASK: u64 = ESR_FAULT_MASK | ESR_ISV | (0b11 << 22) | (1 << 15) | ESR_WNR;
/// Fault status: synchronous external abort.
const FSC_SEA: u64 = 0x10;

/// Which lower-EL vector the realm left through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    /// Synchronous exception.
    Sync,
    /// IRQ.
    Irq,
    /// FIQ.
    Fiq,
    /// SError.
    SError,
}

impl Vector {
    /// The vector's index in the lower-EL AArch64 group (0..3).
    pub fn from_index(i: u64) -> Vector {
        match i {
            0 => Vector::Sync,
            1 => Vector::Irq,
            2 => Vector::Fiq,
            _ => Vector::SError,
        }
    }
}

/// The exception class of a syndrome.
pub const fn class(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

/// The IPA of a stage-2 abort: `HPFAR_EL2.FIPA` (IPA[51:12] at bits
/// [43:4]) and the page offset from `FAR_EL2`.
pub const fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    (((hpfar >> 4) & ((1 << 40) - 1)) << 12) | (far & 0xfff)
}

/// The syndrome the host sees for a stage-2 abort.
pub const fn host_esr(esr: u64, emulatable: bool) -> u64 {
    esr & if emulatable { ESR_MMIO_MASK } else { ESR_FAULT_MASK }
}

/// The syndrome of a synchronous external abort injected into the realm
/// for a trap with syndrome `esr`, taken from `from_el1` or EL0.
pub const fn sea_esr(esr: u64, from_el1: bool) -> u64 {
    let ec = match (class(esr), from_el1) {
        (ec::IABT_LOW, true) => ec::IABT_CUR,
        (ec::IABT_LOW, false) => ec::IABT_LOW,
        (_, true) => ec::DABT_CUR,
        (_, false) => ec::DABT_LOW,
    };
    (ec << 26) | ESR_IL | FSC_SEA
}

/// The syndrome of an UNDEFINED instruction.
pub const UNDEF_ESR: u64 = (ec::UNKNOWN << 26) | ESR_IL;

/// Where a stage-2 abort goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    /// To the host, with the access syndrome if it may emulate it.
    Host {
        /// An emulatable MMIO access (unprotected IPA with a valid ISS).
        emulatable: bool,
    },
    /// A synchronous external abort into the realm: a protected IPA whose
    /// RIPAS is EMPTY, an instruction fetch from the unprotected half, or
    /// an IPA outside the realm.
    Sea,
}

/// Classifies a stage-2 abort at `ipa` with syndrome `esr`.
pub fn abort<B: Backing>(rmm: &RmmModel<B>, realm: &RealmInfo, esr: u64, ipa: u64) -> Abort {
    if ipa >= 1u64 << realm.ipa_bits {
        return Abort::Sea;
    }
    let fetch = class(esr) == ec::IABT_LOW;
    if !rmm.is_protected(realm.rd, ipa) {
        if fetch {
            return Abort::Sea;
        }
        return Abort::Host {
            emulatable: esr & ESR_ISV != 0,
        };
    }
    match rmm.lookup(realm.rd, ipa) {
        Some((Entry::Unassigned(Ripas::Empty) | Entry::Assigned(_, Ripas::Empty), _)) => Abort::Sea,
        // Unassigned RAM (the host maps it), DESTROYED (the host
        // decides), or a mapping the walk could not use.
        _ => Abort::Host { emulatable: false },
    }
}

/// The realm-PA of protected `ipa` if it is mapped as RAM: where the RMM
/// reads and writes realm structures (`REALM_CONFIG`, `HOST_CALL`).
pub fn realm_pa<B: Backing>(rmm: &RmmModel<B>, realm: &RealmInfo, ipa: u64) -> Option<u64> {
    match realm_ipa(rmm, realm, ipa) {
        RealmIpa::Ram(pa) => Some(pa),
        _ => None,
    }
}

/// What a protected IPA an RSI call names is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealmIpa {
    /// Mapped RAM at this realm PA.
    Ram(u64),
    /// Not mapped yet (unassigned RAM, or DESTROYED): the host must
    /// resolve a stage-2 fault at this level first.
    Unmapped(u8),
    /// EMPTY, or not protected, or outside the realm.
    Invalid,
}

/// Classifies `ipa` for an RSI call.
pub fn realm_ipa<B: Backing>(rmm: &RmmModel<B>, realm: &RealmInfo, ipa: u64) -> RealmIpa {
    if !rmm.is_protected(realm.rd, ipa) {
        return RealmIpa::Invalid;
    }
    let level = |size: u64| match size {
        s if s >= 1 << 30 => 1,
        s if s >= 1 << 21 => 2,
        _ => 3,
    };
    match rmm.lookup(realm.rd, ipa) {
        Some((Entry::Assigned(pa, Ripas::Ram), size)) => RealmIpa::Ram(pa.0 + ipa % size),
        Some((Entry::Unassigned(Ripas::Empty) | Entry::Assigned(_, Ripas::Empty), _)) | None => {
            RealmIpa::Invalid
        }
        Some((_, size)) => RealmIpa::Unmapped(level(size)),
    }
}

/// The syndrome of the stage-2 translation fault the RMM reports for an
/// RSI argument the host has not mapped (TF-RMM's), at `level`.
pub const fn translation_fault_esr(level: u8) -> u64 {
    // CAST: widening u8 -> u64.
    (ec::DABT_LOW << 26) | (0x04 + level as u64)
}

/// RSI function IDs (RMM 1.0) and statuses.
pub mod rsi {
    /// `RSI_VERSION`.
    pub const VERSION: u32 = 0xC400_0190;
    /// `RSI_FEATURES`.
    pub const FEATURES: u32 = 0xC400_0191;
    /// `RSI_MEASUREMENT_READ`.
    pub const MEASUREMENT_READ: u32 = 0xC400_0192;
    /// `RSI_MEASUREMENT_EXTEND`.
    pub const MEASUREMENT_EXTEND: u32 = 0xC400_0193;
    /// `RSI_ATTEST_TOKEN_INIT`.
    pub const ATTEST_TOKEN_INIT: u32 = 0xC400_0194;
    /// `RSI_ATTEST_TOKEN_CONTINUE`.
    pub const ATTEST_TOKEN_CONTINUE: u32 = 0xC400_0195;
    /// `RSI_REALM_CONFIG`.
    pub const REALM_CONFIG: u32 = 0xC400_0196;
    /// `RSI_IPA_STATE_SET`.
    pub const IPA_STATE_SET: u32 = 0xC400_0197;
    /// `RSI_IPA_STATE_GET`.
    pub const IPA_STATE_GET: u32 = 0xC400_0198;
    /// `RSI_HOST_CALL`.
    pub const HOST_CALL: u32 = 0xC400_0199;

    /// `RSI_SUCCESS`.
    pub const SUCCESS: u64 = 0;
    /// `RSI_ERROR_INPUT`.
    pub const ERROR_INPUT: u64 = 1;
    /// `RSI_ERROR_STATE`.
    pub const ERROR_STATE: u64 = 2;
    /// `RSI_ERROR_UNKNOWN`.
    pub const ERROR_UNKNOWN: u64 = 4;
    /// The RSI version this RMM implements: 1.0.
    pub const VERSION_1_0: u64 = 1 << 16;
    /// `RSI_IPA_STATE_SET` flag: DESTROYED entries may change.
    pub const CHANGE_DESTROYED: u64 = 1;
}

/// PSCI function IDs and statuses.
pub mod psci {
    pub use kvm_rme::logic::exit::psci::*;
    /// `CPU_SUSPEND` (SMC64).
    pub const CPU_SUSPEND: u32 = 0xC400_0001;
    /// `CPU_SUSPEND` (SMC32).
    pub const CPU_SUSPEND32: u32 = 0x8400_0001;
    /// `CPU_ON` (SMC32).
    pub const CPU_ON32: u32 = 0x8400_0003;
    /// `AFFINITY_INFO` (SMC32).
    pub const AFFINITY_INFO32: u32 = 0x8400_0004;
    /// `MIGRATE_INFO_TYPE`.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// `PSCI_FEATURES`.
    pub const FEATURES: u32 = 0x8400_000A;
    /// `SUCCESS`.
    pub const SUCCESS: u64 = 0;
    /// `NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: u64 = -1i64 as u64;
    /// `INVALID_PARAMETERS`.
    pub const INVALID_PARAMS: u64 = -2i64 as u64;
    /// `ALREADY_ON`.
    pub const ALREADY_ON: u64 = -4i64 as u64;
    /// `INVALID_ADDRESS`.
    pub const INVALID_ADDRESS: u64 = -9i64 as u64;
    /// `MIGRATE_INFO_TYPE`: no migration needed.
    pub const TOS_NOT_PRESENT: u64 = 2;
    /// PSCI 1.1.
    pub const VERSION_1_1: u64 = 0x1_0001;
    /// `SMCCC_VERSION`.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// SMCCC 1.2.
    pub const SMCCC_1_2: u64 = 0x1_0002;
}

/// What an SMC from the realm turns into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Back to the realm at once with these x0..x8 (`n` of them set).
    Return {
        /// x0..x8.
        x: [u64; 9],
        /// How many of `x` to write.
        n: usize,
    },
    /// `RSI_IPA_STATE_SET` accepted: exit `RIPAS_CHANGE`.
    RipasChange {
        /// Base.
        base: u64,
        /// Top.
        top: u64,
        /// Requested RIPAS.
        ripas: Ripas,
    },
    /// `RSI_HOST_CALL` with its structure at realm-PA `pa`: exit
    /// `HOST_CALL`.
    HostCall {
        /// Where the `rsi_host_call` structure is.
        pa: u64,
    },
    /// A PSCI call the host completes: exit `PSCI`.
    Psci {
        /// The function.
        function: u32,
        /// x1..x3.
        args: [u64; 3],
    },
    /// Measurement read or extend, answered by the shell's measurements.
    Measurement {
        /// Index (0 = RIM, 1..4 = REMs).
        index: u64,
        /// Extend with these bytes (`None`: read).
        extend: Option<([u64; 8], u64)>,
    },
    /// `RSI_REALM_CONFIG` into the granule at realm-PA `pa`.
    RealmConfig {
        /// The granule.
        pa: u64,
    },
    /// The call names protected memory the host has not mapped: a
    /// stage-2 fault exit at `ipa`, after which the realm repeats the
    /// call.
    Stage2Fault {
        /// The IPA.
        ipa: u64,
        /// The level the walk reached.
        level: u8,
    },
}

fn ret(vals: &[u64]) -> Call {
    let mut x = [0; 9];
    let n = vals.len().min(9);
    x[..n].copy_from_slice(&vals[..n]);
    Call::Return { x, n }
}

/// Decodes an SMC from `rec` of `realm` with registers `x` (x0..x10).
/// The RIPAS request is recorded in the core here; PSCI calls with a
/// target check it against the realm's RECs.
pub fn smc<B: Backing>(rmm: &mut RmmModel<B>, realm: &RealmInfo, rec: Pa, x: &[u64; 11]) -> Call {
    // CAST: SMCCC function IDs are 32 bits (x0[31:0]).
    let fid = x[0] as u32;
    match fid {
        rsi::VERSION => {
            let st = if x[1] == rsi::VERSION_1_0 { rsi::SUCCESS } else { rsi::ERROR_INPUT };
            ret(&[st, rsi::VERSION_1_0, rsi::VERSION_1_0])
        }
        rsi::FEATURES => ret(&[rsi::SUCCESS, 0]),
        rsi::REALM_CONFIG => match realm_ipa(rmm, realm, x[1]) {
            _ if x[1] % 4096 != 0 => ret(&[rsi::ERROR_INPUT]),
            RealmIpa::Ram(pa) => Call::RealmConfig { pa },
            RealmIpa::Unmapped(level) => Call::Stage2Fault { ipa: x[1], level },
            RealmIpa::Invalid => ret(&[rsi::ERROR_INPUT]),
        },
        rsi::IPA_STATE_SET => {
            let ripas = match x[3] {
                0 => Some(Ripas::Empty),
                1 => Some(Ripas::Ram),
                _ => None,
            };
            match ripas {
                Some(r) if rmm.ripas_request(rec, x[1], x[2], r, x[4] & rsi::CHANGE_DESTROYED != 0).is_ok() => {
                    Call::RipasChange { base: x[1], top: x[2], ripas: r }
                }
                _ => ret(&[rsi::ERROR_INPUT]),
            }
        }
        rsi::IPA_STATE_GET => ipa_state_get(rmm, realm, x[1], x[2]),
        // The structure (8 + 31 * 8 bytes) must not cross a granule.
        rsi::HOST_CALL => match realm_ipa(rmm, realm, x[1]) {
            _ if x[1] % 256 != 0 => ret(&[rsi::ERROR_INPUT]),
            RealmIpa::Ram(pa) => Call::HostCall { pa },
            RealmIpa::Unmapped(level) => Call::Stage2Fault { ipa: x[1], level },
            RealmIpa::Invalid => ret(&[rsi::ERROR_INPUT]),
        },
        rsi::MEASUREMENT_READ if x[1] <= 4 => Call::Measurement { index: x[1], extend: None },
        rsi::MEASUREMENT_EXTEND if (1..=4).contains(&x[1]) && x[2] <= 64 => {
            let mut v = [0; 8];
            v.copy_from_slice(&x[3..11]);
            Call::Measurement { index: x[1], extend: Some((v, x[2])) }
        }
        rsi::MEASUREMENT_READ | rsi::MEASUREMENT_EXTEND => ret(&[rsi::ERROR_INPUT]),
        // No attestation key: documented in test-rmm.rst.
        rsi::ATTEST_TOKEN_INIT | rsi::ATTEST_TOKEN_CONTINUE => ret(&[rsi::ERROR_UNKNOWN]),
        psci::SMCCC_VERSION => ret(&[psci::SMCCC_1_2]),
        psci::VERSION => ret(&[psci::VERSION_1_1]),
        psci::MIGRATE_INFO_TYPE => ret(&[psci::TOS_NOT_PRESENT]),
        psci::FEATURES => {
            // CAST: x1 is a 32-bit function ID.
            let known = matches!(
                x[1] as u32,
                psci::VERSION
                    | psci::CPU_SUSPEND
                    | psci::CPU_SUSPEND32
                    | psci::CPU_OFF
                    | psci::CPU_ON
                    | psci::CPU_ON32
                    | psci::AFFINITY_INFO
                    | psci::AFFINITY_INFO32
                    | psci::SYSTEM_OFF
                    | psci::SYSTEM_RESET
                    | psci::FEATURES
                    | psci::SMCCC_VERSION
            );
            ret(&[if known { psci::SUCCESS } else { psci::NOT_SUPPORTED }])
        }
        // As TF-RMM: the entry point must be protected, the target a REC
        // of the realm and not the caller; only x0 and x1 go to the host.
        psci::CPU_ON | psci::CPU_ON32 => {
            let target = x[1] & 0xff_00ff_ffff;
            if !rmm.is_protected(realm.rd, x[2]) {
                return ret(&[psci::INVALID_ADDRESS]);
            }
            match rmm.rec_by_mpidr(realm.rd, target) {
                None => ret(&[psci::INVALID_PARAMS]),
                Some(t) if t == rec => ret(&[psci::ALREADY_ON]),
                Some(_) => Call::Psci { function: psci::CPU_ON, args: [target, 0, 0] },
            }
        }
        psci::AFFINITY_INFO | psci::AFFINITY_INFO32 => {
            let target = x[1] & 0xff_00ff_ffff;
            match rmm.rec_by_mpidr(realm.rd, target) {
                _ if x[2] != 0 => ret(&[psci::INVALID_PARAMS]),
                None => ret(&[psci::INVALID_PARAMS]),
                Some(t) if t == rec => ret(&[0]),
                Some(_) => Call::Psci { function: psci::AFFINITY_INFO, args: [target, 0, 0] },
            }
        }
        // The caller gets SUCCESS at once; the host is told.
        psci::CPU_OFF => {
            rmm.set_runnable(rec, false);
            Call::Psci { function: fid, args: [0; 3] }
        }
        psci::CPU_SUSPEND | psci::CPU_SUSPEND32 | psci::SYSTEM_OFF | psci::SYSTEM_RESET => {
            Call::Psci { function: fid, args: [0; 3] }
        }
        _ => ret(&[psci::NOT_SUPPORTED]),
    }
}

/// `RSI_IPA_STATE_GET(base, top)`: the RIPAS at `base` and how far it
/// stays the same below `top` (at most 512 entries are looked at).
fn ipa_state_get<B: Backing>(rmm: &RmmModel<B>, realm: &RealmInfo, base: u64, top: u64) -> Call {
    if base % 4096 != 0 || top % 4096 != 0 || base >= top || !rmm.is_protected(realm.rd, top - 1) {
        return ret(&[rsi::ERROR_INPUT]);
    }
    let ripas_of = |e: Entry| match e {
        Entry::Unassigned(r) | Entry::Assigned(_, r) => Some(r),
        _ => None,
    };
    let Some((first, size)) = rmm.lookup(realm.rd, base) else {
        return ret(&[rsi::ERROR_INPUT]);
    };
    let Some(want) = ripas_of(first) else {
        return ret(&[rsi::ERROR_INPUT]);
    };
    let mut cur = (base - base % size).saturating_add(size);
    for _ in 0..512 {
        if cur >= top {
            break;
        }
        match rmm.lookup(realm.rd, cur) {
            Some((e, size)) if ripas_of(e) == Some(want) => cur = cur.saturating_add(size),
            _ => break,
        }
    }
    // CAST: fieldless `repr(u8)` enum to its discriminant.
    ret(&[rsi::SUCCESS, cur.min(top), want as u64])
}

/// An emulated MMIO read's value as the target register takes it:
/// truncated to the access size, then sign-extended if `SSE`, to 32 bits
/// unless `SF`.
pub fn mmio_read_value(esr: u64, v: u64) -> u64 {
    let size = 8u32 << ((esr >> 22) & 3);
    let mut v = if size == 64 { v } else { v & ((1u64 << size) - 1) };
    if esr & (1 << 21) != 0 && size < 64 && v & (1 << (size - 1)) != 0 {
        v |= !((1u64 << size) - 1);
    }
    if esr & (1 << 15) == 0 {
        v &= 0xffff_ffff;
    }
    v
}

/// The value an emulated MMIO write stores: the source register,
/// truncated to the access size.
pub fn mmio_write_value(esr: u64, reg: u64) -> u64 {
    let size = 8u32 << ((esr >> 22) & 3);
    if size == 64 {
        reg
    } else {
        reg & ((1u64 << size) - 1)
    }
}

/// The target register of a data abort with a valid ISS (`SRT`).
pub const fn srt(esr: u64) -> usize {
    // CAST: five bits.
    ((esr >> 16) & 0x1f) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_rme::model::NoBacking;

    #[test]
    fn syndromes() {
        // A 4-byte write of x3, ISV set, from a data abort at level 3.
        let esr = (ec::DABT_LOW << 26) | ESR_IL | ESR_ISV | (2 << 22) | (3 << 16) | ESR_WNR | 0x07;
        assert_eq!(host_esr(esr, true), (ec::DABT_LOW << 26) | ESR_ISV | (2 << 22) | ESR_WNR | 0x07);
        assert_eq!(host_esr(esr, false), (ec::DABT_LOW << 26) | 0x07);
        assert_eq!(srt(esr), 3);
        assert_eq!(sea_esr(esr, true), (ec::DABT_CUR << 26) | ESR_IL | 0x10);
        assert_eq!(class(sea_esr(ec::IABT_LOW << 26, false)), ec::IABT_LOW);
        assert_eq!(fault_ipa(0x8000_0 << 4, 0xffff_0123), 0x8000_0123);
        // Reads: a signed byte, a word into a W register, a doubleword.
        let b = (0u64 << 22) | (1 << 21) | (1 << 15);
        assert_eq!(mmio_read_value(b, 0x1ff), u64::MAX);
        assert_eq!(mmio_read_value(2 << 22, 0x1_2345_6789), 0x2345_6789);
        assert_eq!(mmio_read_value((3 << 22) | (1 << 15), u64::MAX), u64::MAX);
        assert_eq!(mmio_write_value(1 << 22, 0xabcd_ef01), 0xef01);
    }

    #[test]
    fn calls_answered_in_the_rmm() {
        let mut rmm: RmmModel<NoBacking> = RmmModel::new(0x4000_0000, 1 << 20);
        let realm = RealmInfo {
            rd: Pa(0x4000_1000),
            vmid: 1,
            ipa_bits: 40,
            start_level: 1,
            num_start: 2,
            rtt_base: Pa(0x4000_2000),
            flags: 0,
            hash_algo: 0,
            rpv: [0; 64],
        };
        let rec = Pa(0x4000_3000);
        let mut x = [0u64; 11];
        x[0] = u64::from(rsi::VERSION);
        x[1] = rsi::VERSION_1_0;
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[0, 1 << 16, 1 << 16]));
        x[1] = 2 << 16;
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[1, 1 << 16, 1 << 16]));
        x[0] = u64::from(psci::VERSION);
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[0x1_0001]));
        // Linux probes the SMC conduit with SMCCC_VERSION first.
        x[0] = u64::from(psci::SMCCC_VERSION);
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[0x1_0002]));
        x[0] = 0xC400_0FFF;
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[psci::NOT_SUPPORTED]));
        x[0] = u64::from(rsi::ATTEST_TOKEN_INIT);
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[rsi::ERROR_UNKNOWN]));
        // No such realm in the core: a RIPAS request or a CPU_ON target
        // cannot be accepted.
        x[0] = u64::from(rsi::IPA_STATE_SET);
        x[1] = 0;
        x[2] = 0x1000;
        x[3] = 1;
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[rsi::ERROR_INPUT]));
        x[0] = u64::from(psci::CPU_ON);
        x[1] = 1;
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[psci::INVALID_ADDRESS]));
        x[0] = u64::from(rsi::MEASUREMENT_EXTEND);
        x[1] = 0;
        assert_eq!(smc(&mut rmm, &realm, rec, &x), ret(&[rsi::ERROR_INPUT]), "the RIM cannot be extended");
    }
}
