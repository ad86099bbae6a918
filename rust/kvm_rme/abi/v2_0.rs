// SPDX-License-Identifier: GPL-2.0

//! RMI as of RMM specification 2.0, as TF-RMM v0.9.0 implements it
//! (`lib/smc/include/smc-rmi.h`): the structures shared through granules,
//! the second feature register, the RMM configuration, and the register
//! encodings of the stateful operations (`RMI_INCOMPLETE`, the donation
//! request, address-range descriptors).
//!
//! Where `arm-cca-host-reference.md` and TF-RMM v0.9.0 disagree, these
//! follow TF-RMM.  Layouts are pinned at compile time; the encodings are
//! tested byte for byte in `tests/abi.rs`.

use core::mem::{offset_of, size_of};

use super::v1_0;

/// `rmi_realm_params`: the granule `REALM_CREATE` reads.  Unlike 1.0 it
/// has no VMID: the RMM allocates one.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RealmParams {
    /// `flags0`: bit 0 LPA2, bit 1 SVE, bit 2 PMU (as in 1.0).
    pub flags0: u64,
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
    /// Measurement algorithm (u8 in a 64-bit slot; same values as 1.0).
    pub hash_algo: u8,
    _pad0: [u8; 7],
    /// Auxiliary planes (0: the host runs none).
    pub num_aux_planes: u64,
    _pad1: [u8; 0x400 - 0x40],
    /// Realm personalization value.
    pub rpv: [u8; 64],
    _pad2: [u8; 0x808 - 0x440],
    /// Address of the first start-level RTT.
    pub rtt_base: u64,
    /// Level of the start RTTs (signed).
    pub rtt_level_start: i64,
    /// Number of concatenated start RTTs.
    pub rtt_num_start: u32,
    _pad3: [u8; 4],
    /// `RmiRealmFlags1` (RTT tree per plane, S2AP encoding): 0.
    pub flags1: u64,
    _pad4: [u8; 0xF80 - 0x828],
    /// Auxiliary RTT bases (planes only).
    pub aux_rtt_base: [u64; 3],
    _pad5: [u8; 0x1000 - 0xF98],
}

/// `rmi_rec_params`: as 1.0 without `num_aux`/`aux`: auxiliary granules
/// are donated through `OP_MEM_DONATE` instead.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecParams {
    /// `REC_PARAMS_FLAG_RUNNABLE`.
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
    _pad3: [u8; 0x1000 - 0x340],
}

/// `rmi_rec_enter` in 2.0: flags and GPRs only.  The GIC list registers
/// and `ICH_HCR_EL2` are programmed by the host in the CPU before
/// `REC_ENTER` and read back from it afterwards.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecEnter {
    /// Entry flags (bits 0..4 as 1.0's [`v1_0::enter_flags`]).
    pub flags: u64,
    _pad0: [u8; 0x200 - 8],
    /// x0..x30.
    pub gprs: [u64; v1_0::REC_NUM_GPRS],
    _pad1: [u8; 0x800 - 0x2F8],
}

/// `rmi_rec_exit` in 2.0: 1.0's fields at 1.0's offsets, without the GIC
/// state, plus the plane and S2AP fields the host does not use.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecExit {
    /// Exit reason (64 bits; values as 1.0's [`v1_0::exit_reason`]).
    pub exit_reason: u64,
    _pad0: [u8; 0x100 - 8],
    /// `ESR_EL2` (sanitised).
    pub esr: u64,
    /// `FAR_EL2` (sanitised).
    pub far: u64,
    /// `HPFAR_EL2`.
    pub hpfar: u64,
    /// RTT tree of the fault (planes).
    pub rtt_tree: u64,
    /// Level of a requested RTT.
    pub rtt_level: i64,
    _pad1: [u8; 0x200 - 0x128],
    /// x0..x30.
    pub gprs: [u64; v1_0::REC_NUM_GPRS],
    _pad2: [u8; 0x400 - 0x2F8],
    /// `CNTP_CTL_EL0`.
    pub cntp_ctl: u64,
    /// `CNTP_CVAL_EL0`.
    pub cntp_cval: u64,
    /// `CNTV_CTL_EL0`.
    pub cntv_ctl: u64,
    /// `CNTV_CVAL_EL0`.
    pub cntv_cval: u64,
    _pad3: [u8; 0x500 - 0x420],
    /// Base of the RIPAS change request.
    pub ripas_base: u64,
    /// Top (exclusive) of the RIPAS change request.
    pub ripas_top: u64,
    /// Requested RIPAS.
    pub ripas_value: u8,
    _pad4: [u8; 0x600 - 0x511],
    /// Immediate of `RSI_HOST_CALL` (32 bits in 2.0).
    pub imm: u32,
    _pad5: [u8; 4],
    /// Plane index.
    pub plane: u64,
    _pad6: [u8; 0x700 - 0x610],
    /// PMU overflow pending.
    pub pmu_ovf_status: u64,
    _pad7: [u8; 0x800 - 0x708],
}

/// `rmi_rec_run` in 2.0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecRun {
    /// Written by the host.
    pub enter: RecEnter,
    /// Written by the RMM.
    pub exit: RecExit,
}

/// `rmi_rmm_config`, the NS granule `RMM_CONFIG_SET` reads.  TF-RMM
/// v0.9.0 accepts only zeroes (tracking-region size and RMI granule size
/// both the default: 4 KiB granules).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmmConfig {
    /// Tracking-region size (0: the default).
    pub tracking_region_size: u64,
    /// RMI granule size (0: 4 KiB).
    pub rmi_granule_size: u64,
    _pad: [u8; 0x1000 - 0x10],
}

/// `RTT_DATA_MAP`/`RTT_DATA_UNMAP` flags: `RMI_ADDR_TYPE_SINGLE` (1),
/// the output address is one granule, not an address list.  TF-RMM v0.9.0
/// accepts nothing else, and maps or unmaps one page per call.
pub const ADDR_TYPE_SINGLE: u64 = 1;

/// `OP_MEM_RECLAIM`'s `RMI_OP_RECLAIM_MEM_STATE` bit: granules come back
/// undelegated (1) or delegated (0).  TF-RMM v0.9.0 gives REC auxiliary
/// granules back delegated; the host undelegates them itself, so that a
/// refused undelegation stays a counted leak.
pub const RECLAIM_FLAG_UNDELEGATED: u64 = 1 << 0;

/// `RMI_FEATURES(1)`, decoded: what 2.0 moved out of register 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features1 {
    /// 4 KiB RMI granules supported.
    pub granule_4k: bool,
    /// SHA-256 supported for measurements.
    pub hash_sha256: bool,
    /// SHA-512 supported for measurements.
    pub hash_sha512: bool,
    /// `log2` of the largest number of RECs.
    pub max_recs_order: u8,
    /// `L0GPTSZ`.
    pub l0gptsz: u8,
    /// `PPS`.
    pub pps: u8,
}

const fn field(v: u64, lo: u32, width: u32) -> u8 {
    // CAST: every field is at most 8 bits wide.
    ((v >> lo) & ((1 << width) - 1)) as u8
}

impl Features1 {
    /// Decodes `RMI_FEATURES(1)`.
    pub const fn decode(v: u64) -> Features1 {
        Features1 {
            granule_4k: field(v, 0, 1) != 0,
            hash_sha256: field(v, 3, 1) != 0,
            hash_sha512: field(v, 5, 1) != 0,
            max_recs_order: field(v, 6, 4),
            l0gptsz: field(v, 10, 4),
            pps: field(v, 14, 3),
        }
    }

    /// Encodes (the RMM model's answer).
    pub const fn encode(&self) -> u64 {
        // CAST: widening u8/bool -> u64.
        self.granule_4k as u64
            | (self.hash_sha256 as u64) << 3
            | (self.hash_sha512 as u64) << 5
            | (self.max_recs_order as u64 & 0xf) << 6
            | (self.l0gptsz as u64 & 0xf) << 10
            | (self.pps as u64 & 0x7) << 14
    }

    /// 2.0's two registers as the neutral [`v1_0::Features0`]: register
    /// 0 has 1.0's low 32 bits, register 1 the hashes and the REC limit.
    /// 2.0 reports no list-register count (the host reads `ICH_VTR_EL2`);
    /// the value here is the 16 that `rec_run` could carry in 1.0, which
    /// the kernel clamps to the CPU's.
    pub const fn merge(f0: u64, f1: u64) -> v1_0::Features0 {
        let r1 = Features1::decode(f1);
        let mut f = v1_0::Features0::decode(f0 & 0xffff_ffff);
        f.hash_sha256 = r1.hash_sha256;
        f.hash_sha512 = r1.hash_sha512;
        f.max_recs_order = r1.max_recs_order;
        f.gicv3_num_lrs = 15;
        f
    }

    /// The inverse of [`Features1::merge`], for the model: registers 0
    /// and 1 of an RMM with `f`'s features.
    pub const fn split(f: &v1_0::Features0) -> (u64, u64) {
        let r1 = Features1 {
            granule_4k: true,
            hash_sha256: f.hash_sha256,
            hash_sha512: f.hash_sha512,
            max_recs_order: f.max_recs_order,
            l0gptsz: 0,
            pps: 0,
        };
        (f.encode() & 0xffff_ffff, r1.encode())
    }
}

/// The memory request of an `RMI_INCOMPLETE` (`x0[9:8]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemRequest {
    /// None: continue with `OP_CONTINUE`.
    None,
    /// Donate granules (`OP_MEM_DONATE`), as `x2` describes ([`DonateReq`]).
    Donate,
    /// Take granules back (`OP_MEM_RECLAIM`).
    Reclaim,
    /// A value 2.0 does not define.
    Unknown(u8),
}

/// `RMI_INCOMPLETE` results (`RmiResultDataIncomplete`).
pub mod incomplete {
    use super::MemRequest;

    /// The status code.
    pub const STATUS: u64 = 13;

    /// The `x0` of an incomplete result.
    pub const fn encode(req: MemRequest, can_cancel: bool) -> u64 {
        let r: u64 = match req {
            MemRequest::None => 0,
            MemRequest::Donate => 1,
            MemRequest::Reclaim => 2,
            // CAST: widening; only the field's two bits are kept.
            MemRequest::Unknown(v) => v as u64 & 3,
        };
        // CAST: widening bool -> u64.
        STATUS | r << 8 | (can_cancel as u64) << 10
    }

    /// Decodes `x0`: `None` unless the status is `RMI_INCOMPLETE`.
    pub const fn decode(x0: u64) -> Option<(MemRequest, bool)> {
        if x0 & 0xff != STATUS {
            return None;
        }
        let req = match (x0 >> 8) & 3 {
            0 => MemRequest::None,
            1 => MemRequest::Donate,
            2 => MemRequest::Reclaim,
            // CAST: two bits.
            v => MemRequest::Unknown(v as u8),
        };
        Some((req, (x0 >> 10) & 1 != 0))
    }
}

/// `RmiOpMemDonateReq`, in `x2` of an incomplete result asking for
/// memory: how many granules of which size, contiguous or not, delegated
/// or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DonateReq {
    /// Block size: 0 is one granule (4 KiB); the host handles no other.
    pub blk_size: u8,
    /// Number of blocks.
    pub count: u16,
    /// The blocks must be physically contiguous.
    pub contiguous: bool,
    /// The blocks must be undelegated (otherwise delegated).
    pub undelegated: bool,
}

impl DonateReq {
    /// Decodes `x2`.
    pub const fn decode(v: u64) -> DonateReq {
        DonateReq {
            // CAST: masked to the field widths.
            blk_size: (v & 3) as u8,
            count: ((v >> 2) & 0x3fff) as u16,
            contiguous: (v >> 16) & 1 != 0,
            undelegated: (v >> 17) & 1 != 0,
        }
    }

    /// Encodes (the model's request).
    pub const fn encode(&self) -> u64 {
        // CAST: widening.
        (self.blk_size as u64 & 3)
            | (self.count as u64 & 0x3fff) << 2
            | (self.contiguous as u64) << 16
            | (self.undelegated as u64) << 17
    }
}

/// `RmiAddrRangeDesc`: one 8-byte entry of an address list (donation,
/// reclaim, unmap), `count` granules of `size` from `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRangeDesc {
    /// Block size: 0 is 4 KiB.
    pub size: u8,
    /// Blocks in the range (1..=1023).
    pub count: u16,
    /// First address (granule aligned).
    pub pa: u64,
    /// `ST`: the range is undelegated.
    pub undelegated: bool,
}

impl AddrRangeDesc {
    /// Most blocks one descriptor describes.
    pub const MAX_COUNT: u16 = 0x3ff;

    /// Encodes: SZ `[1:0]`, CNT `[11:2]`, PA `[51:12]`, ST bit 63.
    pub const fn encode(&self) -> u64 {
        // CAST: widening.
        (self.size as u64 & 3)
            | (self.count as u64 & 0x3ff) << 2
            | (self.pa & 0x000f_ffff_ffff_f000)
            | (self.undelegated as u64) << 63
    }

    /// Decodes one entry.
    pub const fn decode(v: u64) -> AddrRangeDesc {
        AddrRangeDesc {
            // CAST: masked to the field widths.
            size: (v & 3) as u8,
            count: ((v >> 2) & 0x3ff) as u16,
            pa: v & 0x000f_ffff_ffff_f000,
            undelegated: v >> 63 != 0,
        }
    }
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
        flags0: 0, s2sz: 0, sve_vl: 0, num_bps: 0, num_wps: 0, pmu_num_ctrs: 0, hash_algo: 0,
        _pad0: [0; 7], num_aux_planes: 0, _pad1: [0; 0x400 - 0x40], rpv: [0; 64],
        _pad2: [0; 0x808 - 0x440], rtt_base: 0, rtt_level_start: 0, rtt_num_start: 0,
        _pad3: [0; 4], flags1: 0, _pad4: [0; 0xF80 - 0x828], aux_rtt_base: [0; 3],
        _pad5: [0; 0x1000 - 0xF98],
    },
    RecParams => {
        flags: 0, _pad0: [0; 0x100 - 8], mpidr: 0, _pad1: [0; 0x100 - 8], pc: 0,
        _pad2: [0; 0x100 - 8], gprs: [0; 8], _pad3: [0; 0x1000 - 0x340],
    },
    RecEnter => {
        flags: 0, _pad0: [0; 0x200 - 8], gprs: [0; v1_0::REC_NUM_GPRS], _pad1: [0; 0x800 - 0x2F8],
    },
    RecExit => {
        exit_reason: 0, _pad0: [0; 0x100 - 8], esr: 0, far: 0, hpfar: 0, rtt_tree: 0, rtt_level: 0,
        _pad1: [0; 0x200 - 0x128], gprs: [0; v1_0::REC_NUM_GPRS], _pad2: [0; 0x400 - 0x2F8],
        cntp_ctl: 0, cntp_cval: 0, cntv_ctl: 0, cntv_cval: 0, _pad3: [0; 0x500 - 0x420],
        ripas_base: 0, ripas_top: 0, ripas_value: 0, _pad4: [0; 0x600 - 0x511], imm: 0,
        _pad5: [0; 4], plane: 0, _pad6: [0; 0x700 - 0x610], pmu_ovf_status: 0,
        _pad7: [0; 0x800 - 0x708],
    },
    RmmConfig => { tracking_region_size: 0, rmi_granule_size: 0, _pad: [0; 0x1000 - 0x10] },
}

impl Default for RecRun {
    fn default() -> Self {
        RecRun {
            enter: RecEnter::default(),
            exit: RecExit::default(),
        }
    }
}

impl RealmParams {
    /// The 2.0 granule for the realm 1.0's `p` describes (its VMID is
    /// dropped: 2.0's RMM allocates VMIDs).
    pub fn from_v1(p: &v1_0::RealmParams) -> RealmParams {
        let mut g = RealmParams::default();
        g.flags0 = p.flags;
        g.s2sz = p.s2sz;
        g.sve_vl = p.sve_vl;
        g.num_bps = p.num_bps;
        g.num_wps = p.num_wps;
        g.pmu_num_ctrs = p.pmu_num_ctrs;
        g.hash_algo = p.hash_algo;
        g.rpv = p.rpv;
        g.rtt_base = p.rtt_base;
        g.rtt_level_start = p.rtt_level_start;
        g.rtt_num_start = p.rtt_num_start;
        g
    }

    /// The realm this granule describes, as 1.0's structure with VMID 0
    /// (the model's reading of a 2.0 request).
    pub fn to_v1(&self) -> v1_0::RealmParams {
        let mut p = v1_0::RealmParams::default();
        p.flags = self.flags0;
        p.s2sz = self.s2sz;
        p.sve_vl = self.sve_vl;
        p.num_bps = self.num_bps;
        p.num_wps = self.num_wps;
        p.pmu_num_ctrs = self.pmu_num_ctrs;
        p.hash_algo = self.hash_algo;
        p.rpv = self.rpv;
        p.rtt_base = self.rtt_base;
        p.rtt_level_start = self.rtt_level_start;
        p.rtt_num_start = self.rtt_num_start;
        p
    }
}

impl RecParams {
    /// The 2.0 granule for 1.0's `p` (auxiliary granules dropped).
    pub fn from_v1(p: &v1_0::RecParams) -> RecParams {
        let mut g = RecParams::default();
        g.flags = p.flags;
        g.mpidr = p.mpidr;
        g.pc = p.pc;
        g.gprs = p.gprs;
        g
    }

    /// As 1.0's structure without auxiliary granules.
    pub fn to_v1(&self) -> v1_0::RecParams {
        let mut p = v1_0::RecParams::default();
        p.flags = self.flags;
        p.mpidr = self.mpidr;
        p.pc = self.pc;
        p.gprs = self.gprs;
        p
    }
}

impl RecRun {
    /// The entry half for the neutral (1.0-layout) `run`; its GIC fields
    /// go to the CPU instead.
    pub fn set_enter(&mut self, run: &v1_0::RecRun) {
        self.enter.flags = run.enter.flags;
        self.enter.gprs = run.enter.gprs;
    }

    /// Copies the exit half into the neutral `run`.  The GIC fields are
    /// left for the caller, who reads them from the CPU.
    pub fn exit_into(&self, run: &mut v1_0::RecRun) {
        let (x, o) = (&self.exit, &mut run.exit);
        // CAST: 2.0 defines exit reasons 0..=10; a larger value stays
        // unknown to the decoder (0xff) instead of aliasing a known one.
        o.exit_reason = u8::try_from(x.exit_reason).unwrap_or(0xff);
        o.esr = x.esr;
        o.far = x.far;
        o.hpfar = x.hpfar;
        o.gprs = x.gprs;
        o.cntp_ctl = x.cntp_ctl;
        o.cntp_cval = x.cntp_cval;
        o.cntv_ctl = x.cntv_ctl;
        o.cntv_cval = x.cntv_cval;
        o.ripas_base = x.ripas_base;
        o.ripas_top = x.ripas_top;
        o.ripas_value = x.ripas_value;
        // CAST: the host-call immediate is 16 bits (RSI_HOST_CALL's
        // `imm`); higher bits are not the realm's.
        o.imm = (x.imm & 0xffff) as u16;
        o.pmu_ovf_status = u8::from(x.pmu_ovf_status != 0);
    }

    /// The inverse of [`RecRun::exit_into`] for the model: the exit half
    /// an RMM writes for the neutral `run`'s exit.
    pub fn set_exit(&mut self, run: &v1_0::RecRun) {
        let (x, o) = (&run.exit, &mut self.exit);
        o.exit_reason = u64::from(x.exit_reason);
        o.esr = x.esr;
        o.far = x.far;
        o.hpfar = x.hpfar;
        o.gprs = x.gprs;
        o.cntp_ctl = x.cntp_ctl;
        o.cntp_cval = x.cntp_cval;
        o.cntv_ctl = x.cntv_ctl;
        o.cntv_cval = x.cntv_cval;
        o.ripas_base = x.ripas_base;
        o.ripas_top = x.ripas_top;
        o.ripas_value = x.ripas_value;
        o.imm = u32::from(x.imm);
        o.pmu_ovf_status = u64::from(x.pmu_ovf_status);
    }
}

// Layouts from TF-RMM v0.9.0's `smc-rmi.h` (`SET_MEMBER_RMI` offsets).
const _: () = {
    assert!(size_of::<RealmParams>() == 0x1000);
    assert!(offset_of!(RealmParams, flags0) == 0x0);
    assert!(offset_of!(RealmParams, s2sz) == 0x8);
    assert!(offset_of!(RealmParams, sve_vl) == 0x10);
    assert!(offset_of!(RealmParams, num_bps) == 0x18);
    assert!(offset_of!(RealmParams, num_wps) == 0x20);
    assert!(offset_of!(RealmParams, pmu_num_ctrs) == 0x28);
    assert!(offset_of!(RealmParams, hash_algo) == 0x30);
    assert!(offset_of!(RealmParams, num_aux_planes) == 0x38);
    assert!(offset_of!(RealmParams, rpv) == 0x400);
    assert!(offset_of!(RealmParams, rtt_base) == 0x808);
    assert!(offset_of!(RealmParams, rtt_level_start) == 0x810);
    assert!(offset_of!(RealmParams, rtt_num_start) == 0x818);
    assert!(offset_of!(RealmParams, flags1) == 0x820);
    assert!(offset_of!(RealmParams, aux_rtt_base) == 0xF80);

    assert!(size_of::<RecParams>() == 0x1000);
    assert!(offset_of!(RecParams, flags) == 0x0);
    assert!(offset_of!(RecParams, mpidr) == 0x100);
    assert!(offset_of!(RecParams, pc) == 0x200);
    assert!(offset_of!(RecParams, gprs) == 0x300);

    assert!(size_of::<RecEnter>() == 0x800);
    assert!(offset_of!(RecEnter, flags) == 0x0);
    assert!(offset_of!(RecEnter, gprs) == 0x200);

    assert!(size_of::<RecExit>() == 0x800);
    assert!(offset_of!(RecExit, exit_reason) == 0x0);
    assert!(offset_of!(RecExit, esr) == 0x100);
    assert!(offset_of!(RecExit, far) == 0x108);
    assert!(offset_of!(RecExit, hpfar) == 0x110);
    assert!(offset_of!(RecExit, rtt_tree) == 0x118);
    assert!(offset_of!(RecExit, rtt_level) == 0x120);
    assert!(offset_of!(RecExit, gprs) == 0x200);
    assert!(offset_of!(RecExit, cntp_ctl) == 0x400);
    assert!(offset_of!(RecExit, cntp_cval) == 0x408);
    assert!(offset_of!(RecExit, cntv_ctl) == 0x410);
    assert!(offset_of!(RecExit, cntv_cval) == 0x418);
    assert!(offset_of!(RecExit, ripas_base) == 0x500);
    assert!(offset_of!(RecExit, ripas_top) == 0x508);
    assert!(offset_of!(RecExit, ripas_value) == 0x510);
    assert!(offset_of!(RecExit, imm) == 0x600);
    assert!(offset_of!(RecExit, plane) == 0x608);
    assert!(offset_of!(RecExit, pmu_ovf_status) == 0x700);

    assert!(size_of::<RecRun>() == 0x1000);
    assert!(offset_of!(RecRun, enter) == 0x0);
    assert!(offset_of!(RecRun, exit) == 0x800);

    assert!(size_of::<RmmConfig>() == 0x1000);
    assert!(offset_of!(RmmConfig, tracking_region_size) == 0x0);
    assert!(offset_of!(RmmConfig, rmi_granule_size) == 0x8);
};
