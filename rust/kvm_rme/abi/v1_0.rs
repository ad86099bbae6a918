// SPDX-License-Identifier: GPL-2.0

//! RMI as of RMM specification 1.0-rel0: constants and the 4 KiB
//! structures shared with the RMM through granules (the function IDs of
//! both versions are in `command.rs`).
//!
//! Layouts are pinned at compile time against the specification's offset
//! tables; nothing outside the crate depends on this module's version.

use core::mem::{offset_of, size_of};

/// Realm IPA state.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ripas {
    /// Not usable by the realm (shared, or never set).
    Empty = 0,
    /// Private RAM.
    Ram = 1,
    /// Was RAM, its contents destroyed by the host; faults until reset.
    Destroyed = 2,
}

impl Ripas {
    /// Decodes a RIPAS value from the wire.
    pub const fn from_u8(v: u8) -> Option<Ripas> {
        match v {
            0 => Some(Ripas::Empty),
            1 => Some(Ripas::Ram),
            2 => Some(Ripas::Destroyed),
            _ => None,
        }
    }
}

/// RTT entry state as `RTT_READ_ENTRY` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RttEntryState {
    /// Nothing mapped (`RMI_UNASSIGNED`, 0).
    Unassigned,
    /// A page or block is mapped, protected DATA or unprotected
    /// (`RMI_ASSIGNED`, 1).
    Assigned,
    /// Points to a next-level RTT (`RMI_TABLE`, 2).
    Table,
    /// A value this host does not know (a newer RMM, or a firmware bug).
    Unknown(u64),
}

impl RttEntryState {
    /// Decodes the wire value.
    pub const fn decode(v: u64) -> RttEntryState {
        match v {
            0 => RttEntryState::Unassigned,
            1 => RttEntryState::Assigned,
            2 => RttEntryState::Table,
            v => RttEntryState::Unknown(v),
        }
    }

    /// The wire value.
    pub const fn encode(self) -> u64 {
        match self {
            RttEntryState::Unassigned => 0,
            RttEntryState::Assigned => 1,
            RttEntryState::Table => 2,
            RttEntryState::Unknown(v) => v,
        }
    }
}

/// What `RTT_READ_ENTRY` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEntry {
    /// Level the walk reached.
    pub level: u8,
    /// Entry state.
    pub state: RttEntryState,
    /// Descriptor (output address and attributes) if assigned.
    pub desc: u64,
    /// RIPAS as the RMM reported it (protected IPAs only; 0, `EMPTY`, for
    /// unprotected ones); [`RttEntry::ripas`] decodes it.
    pub ripas_value: u8,
}

impl RttEntry {
    /// Decodes `x1..x4` of a successful `RTT_READ_ENTRY`: level, state,
    /// descriptor, RIPAS.  Values outside the specification stay visible
    /// ([`RttEntryState::Unknown`], [`RttEntry::ripas`] `None`) for the
    /// caller to refuse; the answer itself is the RMM's.
    pub const fn decode(x: [u64; 4]) -> RttEntry {
        // CAST: the level is x1[7:0] and the RIPAS x4[7:0]; higher bits are
        // RES0.
        RttEntry {
            level: (x[0] & 0xff) as u8,
            state: RttEntryState::decode(x[1]),
            desc: x[2],
            ripas_value: (x[3] & 0xff) as u8,
        }
    }

    /// Encodes `x1..x4` as the RMM returns them (the inverse of
    /// [`RttEntry::decode`]).
    pub const fn encode(&self) -> [u64; 4] {
        // CAST: widening u8 -> u64.
        [self.level as u64, self.state.encode(), self.desc, self.ripas_value as u64]
    }

    /// The RIPAS, if it is one the specification defines.
    pub const fn ripas(&self) -> Option<Ripas> {
        Ripas::from_u8(self.ripas_value)
    }
}

/// Measurement hash algorithm (`RMI_HASH_*`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    /// SHA-256.
    Sha256 = 0,
    /// SHA-512.
    Sha512 = 1,
}

/// `DATA_CREATE` flag: extend the realm initial measurement with the page.
pub const DATA_FLAG_MEASURE: u64 = 1 << 0;

/// `REC_PARAMS` flag: the REC may run (set for the boot vCPU).
pub const REC_PARAMS_FLAG_RUNNABLE: u64 = 1 << 0;

/// Most auxiliary granules a REC may need.
pub const MAX_REC_AUX_GRANULES: usize = 16;

/// Most concatenated start-level RTTs.
pub const MAX_START_RTTS: usize = 16;

/// Number of GICv3 list registers in `rec_enter`/`rec_exit`.
pub const REC_GIC_NUM_LRS: usize = 16;

/// Number of GPRs in `rec_enter`/`rec_exit`.
pub const REC_NUM_GPRS: usize = 31;

/// `rec_enter.flags` bits.
pub mod enter_flags {
    /// The host emulated the MMIO access of the last exit.
    pub const EMULATED_MMIO: u64 = 1 << 0;
    /// Inject a synchronous external abort.
    pub const INJECT_SEA: u64 = 1 << 1;
    /// Trap WFI to the host.
    pub const TRAP_WFI: u64 = 1 << 2;
    /// Trap WFE to the host.
    pub const TRAP_WFE: u64 = 1 << 3;
    /// Reject the RIPAS change the realm asked for.
    pub const RIPAS_RESPONSE_REJECT: u64 = 1 << 4;
}

/// `rec_exit.exit_reason` values.
pub mod exit_reason {
    /// Synchronous exception (data/instruction abort, WFx, sysreg...).
    pub const SYNC: u8 = 0;
    /// Physical IRQ.
    pub const IRQ: u8 = 1;
    /// Physical FIQ.
    pub const FIQ: u8 = 2;
    /// PSCI call the host must complete.
    pub const PSCI: u8 = 3;
    /// The realm asked to change the RIPAS of a range.
    pub const RIPAS_CHANGE: u8 = 4;
    /// `RSI_HOST_CALL`.
    pub const HOST_CALL: u8 = 5;
    /// SError.
    pub const SERROR: u8 = 6;
}

/// `RMI_FEATURES` register 0, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features0 {
    /// Largest supported stage-2 input size (`S2SZ`, bits).
    pub max_ipa_bits: u8,
    /// LPA2 supported.
    pub lpa2: bool,
    /// SVE supported.
    pub sve: bool,
    /// Largest SVE vector length (`SVE_VL`, in 128-bit quanta minus one).
    pub sve_vl: u8,
    /// Number of breakpoints (`NUM_BPS`).
    pub num_bps: u8,
    /// Number of watchpoints (`NUM_WPS`).
    pub num_wps: u8,
    /// PMU supported.
    pub pmu: bool,
    /// Number of PMU counters.
    pub pmu_num_ctrs: u8,
    /// SHA-256 supported for measurements.
    pub hash_sha256: bool,
    /// SHA-512 supported for measurements.
    pub hash_sha512: bool,
    /// `GICV3_NUM_LRS`: the number of GICv3 list registers minus one
    /// (see [`Features0::gic_lrs`]).
    pub gicv3_num_lrs: u8,
    /// `log2` of the largest number of RECs (`MAX_RECS_ORDER`).
    pub max_recs_order: u8,
}

impl Features0 {
    /// The number of GICv3 list registers a REC entry may fill.
    pub const fn gic_lrs(&self) -> usize {
        self.gicv3_num_lrs as usize + 1
    }
}

/// The `ICH_HCR_EL2` bits the host may set in `rec_enter.gicv3_hcr`
/// (UIE, LRENPIE, NPIE, VGrp0EIE, VGrp0DIE, VGrp1EIE, VGrp1DIE, TDIR);
/// the RMM refuses an entry with any other bit, `En` included.
pub const GICV3_HCR_HOST_MASK: u64 = 0b1111_1110 | (1 << 14);

const fn field(v: u64, lo: u32, width: u32) -> u8 {
    // CAST: every field is at most 8 bits wide.
    ((v >> lo) & ((1 << width) - 1)) as u8
}

impl Features0 {
    /// Decodes the value of `RMI_FEATURES(0)`.
    pub const fn decode(v: u64) -> Features0 {
        Features0 {
            max_ipa_bits: field(v, 0, 8),
            lpa2: field(v, 8, 1) != 0,
            sve: field(v, 9, 1) != 0,
            sve_vl: field(v, 10, 4),
            num_bps: field(v, 14, 6),
            num_wps: field(v, 20, 6),
            pmu: field(v, 26, 1) != 0,
            pmu_num_ctrs: field(v, 27, 5),
            hash_sha256: field(v, 32, 1) != 0,
            hash_sha512: field(v, 33, 1) != 0,
            gicv3_num_lrs: field(v, 34, 4),
            max_recs_order: field(v, 38, 4),
        }
    }

    /// Encodes (used by the RMM model and tests).
    pub const fn encode(&self) -> u64 {
        // CAST: widening u8/bool -> u64.
        self.max_ipa_bits as u64
            | (self.lpa2 as u64) << 8
            | (self.sve as u64) << 9
            | (self.sve_vl as u64 & 0xf) << 10
            | (self.num_bps as u64 & 0x3f) << 14
            | (self.num_wps as u64 & 0x3f) << 20
            | (self.pmu as u64) << 26
            | (self.pmu_num_ctrs as u64 & 0x1f) << 27
            | (self.hash_sha256 as u64) << 32
            | (self.hash_sha512 as u64) << 33
            | (self.gicv3_num_lrs as u64 & 0xf) << 34
            | (self.max_recs_order as u64 & 0xf) << 38
    }
}

/// `rmi_realm_params`: the granule `REALM_CREATE` reads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RealmParams {
    /// Bit 0 LPA2, bit 1 SVE, bit 2 PMU.
    pub flags: u64,
    /// Stage-2 input size in bits.
    pub s2sz: u64,
    /// SVE vector length.
    pub sve_vl: u64,
    /// Breakpoints.
    pub num_bps: u64,
    /// Watchpoints.
    pub num_wps: u64,
    /// PMU counters.
    pub pmu_num_ctrs: u64,
    /// [`HashAlgo`] (u8 in a 64-bit slot).
    pub hash_algo: u8,
    _pad0: [u8; 0x400 - 0x31],
    /// Realm personalization value.
    pub rpv: [u8; 64],
    _pad1: [u8; 0x800 - 0x440],
    /// VMID chosen by the host.
    pub vmid: u16,
    _pad2: [u8; 6],
    /// Address of the first start-level RTT.
    pub rtt_base: u64,
    /// Level of the start RTTs (signed).
    pub rtt_level_start: i64,
    /// Number of concatenated start RTTs.
    pub rtt_num_start: u32,
    _pad3: [u8; 0x1000 - 0x81c],
}

/// `rmi_rec_params`: the granule `REC_CREATE` reads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecParams {
    /// [`REC_PARAMS_FLAG_RUNNABLE`].
    pub flags: u64,
    _pad0: [u8; 0x100 - 8],
    /// MPIDR of the vCPU.
    pub mpidr: u64,
    _pad1: [u8; 0x100 - 8],
    /// Entry point.
    pub pc: u64,
    _pad2: [u8; 0x100 - 8],
    /// x0..x7 at entry.
    pub gprs: [u64; 8],
    _pad3: [u8; 0x500 - 64],
    /// Number of auxiliary granules.
    pub num_aux: u64,
    /// Auxiliary granule addresses.
    pub aux: [u64; MAX_REC_AUX_GRANULES],
    _pad4: [u8; 0x1000 - 0x888],
}

/// `rmi_rec_enter`: what the host passes on `REC_ENTER`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecEnter {
    /// [`enter_flags`].
    pub flags: u64,
    _pad0: [u8; 0x200 - 8],
    /// x0..x30 (x0 carries an emulated MMIO read).
    pub gprs: [u64; REC_NUM_GPRS],
    _pad1: [u8; 0x100 - 8 * REC_NUM_GPRS],
    /// `ICH_HCR_EL2` for the realm.
    pub gicv3_hcr: u64,
    /// `ICH_LR<n>_EL2`.
    pub gicv3_lrs: [u64; REC_GIC_NUM_LRS],
    _pad2: [u8; 0x800 - 0x388],
}

/// `rmi_rec_exit`: what the RMM reports when `REC_ENTER` returns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecExit {
    /// One of [`exit_reason`].
    pub exit_reason: u8,
    _pad0: [u8; 0x100 - 1],
    /// `ESR_EL2` (sanitised).
    pub esr: u64,
    /// `FAR_EL2` (sanitised).
    pub far: u64,
    /// `HPFAR_EL2`.
    pub hpfar: u64,
    _pad1: [u8; 0x200 - 0x118],
    /// x0..x30 (x0..x6 for PSCI/host call, the MMIO write value...).
    pub gprs: [u64; REC_NUM_GPRS],
    _pad2: [u8; 0x100 - 8 * REC_NUM_GPRS],
    /// `ICH_HCR_EL2`.
    pub gicv3_hcr: u64,
    /// `ICH_LR<n>_EL2`.
    pub gicv3_lrs: [u64; REC_GIC_NUM_LRS],
    /// `ICH_MISR_EL2`.
    pub gicv3_misr: u64,
    /// `ICH_VMCR_EL2`.
    pub gicv3_vmcr: u64,
    _pad3: [u8; 0x400 - 0x398],
    /// `CNTP_CTL_EL0`.
    pub cntp_ctl: u64,
    /// `CNTP_CVAL_EL0`.
    pub cntp_cval: u64,
    /// `CNTV_CTL_EL0`.
    pub cntv_ctl: u64,
    /// `CNTV_CVAL_EL0`.
    pub cntv_cval: u64,
    _pad4: [u8; 0x500 - 0x420],
    /// Base of the RIPAS change request.
    pub ripas_base: u64,
    /// Top (exclusive) of the RIPAS change request.
    pub ripas_top: u64,
    /// Requested [`Ripas`].
    pub ripas_value: u8,
    _pad5: [u8; 0x600 - 0x511],
    /// Immediate of `RSI_HOST_CALL`.
    pub imm: u16,
    _pad6: [u8; 0x700 - 0x602],
    /// PMU overflow pending.
    pub pmu_ovf_status: u8,
    _pad7: [u8; 0x800 - 0x701],
}

/// `rmi_rec_run`: one granule, entry half then exit half.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecRun {
    /// Written by the host.
    pub enter: RecEnter,
    /// Written by the RMM.
    pub exit: RecExit,
}

macro_rules! zeroed_default {
    ($($t:ty => { $($f:ident : $v:expr),* $(,)? }),* $(,)?) => {$(
        impl Default for $t {
            fn default() -> Self {
                Self { $($f: $v),* }
            }
        }
    )*};
}

zeroed_default! {
    RealmParams => {
        flags: 0, s2sz: 0, sve_vl: 0, num_bps: 0, num_wps: 0, pmu_num_ctrs: 0, hash_algo: 0,
        _pad0: [0; 0x400 - 0x31], rpv: [0; 64], _pad1: [0; 0x800 - 0x440], vmid: 0, _pad2: [0; 6],
        rtt_base: 0, rtt_level_start: 0, rtt_num_start: 0, _pad3: [0; 0x1000 - 0x81c],
    },
    RecParams => {
        flags: 0, _pad0: [0; 0x100 - 8], mpidr: 0, _pad1: [0; 0x100 - 8], pc: 0,
        _pad2: [0; 0x100 - 8], gprs: [0; 8], _pad3: [0; 0x500 - 64], num_aux: 0,
        aux: [0; MAX_REC_AUX_GRANULES], _pad4: [0; 0x1000 - 0x888],
    },
    RecEnter => {
        flags: 0, _pad0: [0; 0x200 - 8], gprs: [0; REC_NUM_GPRS], _pad1: [0; 0x100 - 8 * REC_NUM_GPRS],
        gicv3_hcr: 0, gicv3_lrs: [0; REC_GIC_NUM_LRS], _pad2: [0; 0x800 - 0x388],
    },
    RecExit => {
        exit_reason: 0, _pad0: [0; 0x100 - 1], esr: 0, far: 0, hpfar: 0, _pad1: [0; 0x200 - 0x118],
        gprs: [0; REC_NUM_GPRS], _pad2: [0; 0x100 - 8 * REC_NUM_GPRS], gicv3_hcr: 0,
        gicv3_lrs: [0; REC_GIC_NUM_LRS], gicv3_misr: 0, gicv3_vmcr: 0, _pad3: [0; 0x400 - 0x398],
        cntp_ctl: 0, cntp_cval: 0, cntv_ctl: 0, cntv_cval: 0, _pad4: [0; 0x500 - 0x420],
        ripas_base: 0, ripas_top: 0, ripas_value: 0, _pad5: [0; 0x600 - 0x511], imm: 0,
        _pad6: [0; 0x700 - 0x602], pmu_ovf_status: 0, _pad7: [0; 0x800 - 0x701],
    },
}

impl Default for RecRun {
    fn default() -> Self {
        RecRun {
            enter: RecEnter::default(),
            exit: RecExit::default(),
        }
    }
}

// Layouts from the RMM 1.0 specification (see
// arm-cca-host-reference.md, "Structures").
const _: () = {
    assert!(size_of::<RealmParams>() == 0x1000);
    assert!(offset_of!(RealmParams, flags) == 0x0);
    assert!(offset_of!(RealmParams, s2sz) == 0x8);
    assert!(offset_of!(RealmParams, sve_vl) == 0x10);
    assert!(offset_of!(RealmParams, num_bps) == 0x18);
    assert!(offset_of!(RealmParams, num_wps) == 0x20);
    assert!(offset_of!(RealmParams, pmu_num_ctrs) == 0x28);
    assert!(offset_of!(RealmParams, hash_algo) == 0x30);
    assert!(offset_of!(RealmParams, rpv) == 0x400);
    assert!(offset_of!(RealmParams, vmid) == 0x800);
    assert!(offset_of!(RealmParams, rtt_base) == 0x808);
    assert!(offset_of!(RealmParams, rtt_level_start) == 0x810);
    assert!(offset_of!(RealmParams, rtt_num_start) == 0x818);

    assert!(size_of::<RecParams>() == 0x1000);
    assert!(offset_of!(RecParams, flags) == 0x0);
    assert!(offset_of!(RecParams, mpidr) == 0x100);
    assert!(offset_of!(RecParams, pc) == 0x200);
    assert!(offset_of!(RecParams, gprs) == 0x300);
    assert!(offset_of!(RecParams, num_aux) == 0x800);
    assert!(offset_of!(RecParams, aux) == 0x808);

    assert!(size_of::<RecEnter>() == 0x800);
    assert!(offset_of!(RecEnter, flags) == 0x0);
    assert!(offset_of!(RecEnter, gprs) == 0x200);
    assert!(offset_of!(RecEnter, gicv3_hcr) == 0x300);
    assert!(offset_of!(RecEnter, gicv3_lrs) == 0x308);

    assert!(size_of::<RecExit>() == 0x800);
    assert!(offset_of!(RecExit, exit_reason) == 0x0);
    assert!(offset_of!(RecExit, esr) == 0x100);
    assert!(offset_of!(RecExit, far) == 0x108);
    assert!(offset_of!(RecExit, hpfar) == 0x110);
    assert!(offset_of!(RecExit, gprs) == 0x200);
    assert!(offset_of!(RecExit, gicv3_hcr) == 0x300);
    assert!(offset_of!(RecExit, gicv3_lrs) == 0x308);
    assert!(offset_of!(RecExit, gicv3_misr) == 0x388);
    assert!(offset_of!(RecExit, gicv3_vmcr) == 0x390);
    assert!(offset_of!(RecExit, cntp_ctl) == 0x400);
    assert!(offset_of!(RecExit, cntp_cval) == 0x408);
    assert!(offset_of!(RecExit, cntv_ctl) == 0x410);
    assert!(offset_of!(RecExit, cntv_cval) == 0x418);
    assert!(offset_of!(RecExit, ripas_base) == 0x500);
    assert!(offset_of!(RecExit, ripas_top) == 0x508);
    assert!(offset_of!(RecExit, ripas_value) == 0x510);
    assert!(offset_of!(RecExit, imm) == 0x600);
    assert!(offset_of!(RecExit, pmu_ovf_status) == 0x700);

    assert!(size_of::<RecRun>() == 0x1000);
    assert!(offset_of!(RecRun, enter) == 0x0);
    assert!(offset_of!(RecRun, exit) == 0x800);
};
