// SPDX-License-Identifier: GPL-2.0

//! The realm's stage 2 as the hardware walks it: each RTT entry the RMM
//! core keeps becomes a VMSAv8-64 stage-2 descriptor in the RTT granule
//! itself (4 KiB granule, `HCR_EL2.FWB` set), and `VTCR_EL2`/`VTTBR_EL2`
//! point the walk at the realm's start-level RTTs.

use kvm_rme::model::Entry;

/// Descriptor type bits: a table (levels 0-2) or a page (level 3).
const TABLE_OR_PAGE: u64 = 0b11;
/// A block (levels 1 and 2).
const BLOCK: u64 = 0b01;
/// MemAttr with FWB: Normal, Write-Back, whatever stage 1 says.
pub const MEMATTR_NORMAL_WB: u64 = 0b110 << 2;
/// MemAttr with FWB: Device-nGnRE.
pub const MEMATTR_DEVICE_NGNRE: u64 = 0b001 << 2;
/// S2AP: read and write.
const S2AP_RW: u64 = 0b11 << 6;
/// Inner Shareable.
const SH_INNER: u64 = 0b11 << 8;
/// Access flag.
const AF: u64 = 1 << 10;
/// In a Realm stage 2, the output address is in the NS PAS.
pub const NS: u64 = 1 << 55;
/// What the host chooses in an unprotected descriptor: MemAttr and S2AP.
const HOST_ATTRS: u64 = (0b111 << 2) | (0b11 << 6);
/// Output-address bits (48-bit PA).
const OA: u64 = ((1 << 48) - 1) & !0xfff;

/// The stage-2 descriptor for `e` at `level`.  Protected data maps only
/// while its RIPAS is RAM (EMPTY and DESTROYED fault, and the RMM
/// decides what the fault means); unprotected mappings take the host's
/// MemAttr and S2AP, in the NS PAS.
pub fn descriptor(level: u8, e: Entry) -> u64 {
    let kind = if level == 3 { TABLE_OR_PAGE } else { BLOCK };
    match e {
        Entry::Unassigned(_) => 0,
        Entry::Table(pa) => (pa.0 & OA) | TABLE_OR_PAGE,
        Entry::Assigned(pa, kvm_rme::abi::Ripas::Ram) => {
            (pa.0 & OA) | MEMATTR_NORMAL_WB | S2AP_RW | SH_INNER | AF | kind
        }
        Entry::Assigned(..) => 0,
        Entry::AssignedNs(desc) => (desc & OA) | (desc & HOST_ATTRS) | SH_INNER | AF | NS | kind,
    }
}

/// Whether a descriptor maps something (a TLB may hold it).
pub const fn valid(desc: u64) -> bool {
    desc & 1 != 0
}

/// `VTCR_EL2` for a realm of `ipa_bits` whose walk starts at
/// `start_level`: 4 KiB granule, Inner Shareable Write-Back walks,
/// 48-bit PA, 16-bit VMID.
pub fn vtcr(ipa_bits: u8, start_level: u8) -> u64 {
    let t0sz = 64 - u64::from(ipa_bits);
    // SL0 for a 4 KiB granule: 2 = level 0, 1 = level 1, 0 = level 2.
    let sl0 = 2u64.saturating_sub(u64::from(start_level));
    const IRGN0_WB: u64 = 1 << 8;
    const ORGN0_WB: u64 = 1 << 10;
    const SH0_INNER: u64 = 3 << 12;
    const PS_48: u64 = 0b101 << 16;
    const VS_16: u64 = 1 << 19;
    const RES1: u64 = 1 << 31;
    t0sz | (sl0 << 6) | IRGN0_WB | ORGN0_WB | SH0_INNER | PS_48 | VS_16 | RES1
}

/// `VTTBR_EL2`: the first start-level RTT and the VMID.
pub fn vttbr(rtt_base: u64, vmid: u16) -> u64 {
    (rtt_base & OA) | (u64::from(vmid) << 48)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_rme::abi::{Pa, Ripas};

    #[test]
    fn descriptors() {
        assert_eq!(descriptor(3, Entry::Unassigned(Ripas::Ram)), 0);
        assert_eq!(descriptor(2, Entry::Table(Pa(0x4000_1000))), 0x4000_1003);
        assert_eq!(descriptor(3, Entry::Assigned(Pa(0x4000_2000), Ripas::Ram)), 0x4000_27db);
        assert_eq!(descriptor(2, Entry::Assigned(Pa(0x4020_0000), Ripas::Ram)), 0x4020_07d9);
        assert_eq!(descriptor(3, Entry::Assigned(Pa(0x4000_2000), Ripas::Empty)), 0);
        assert_eq!(descriptor(3, Entry::Assigned(Pa(0x4000_2000), Ripas::Destroyed)), 0);
        // The host's MemAttr (Device-nGnRE) and S2AP (read-only) are kept.
        let d = descriptor(3, Entry::AssignedNs(0x8000_3000 | (0b001 << 2) | (0b01 << 6)));
        assert_eq!(d, 0x8000_3000 | 0b0111 | (0b01 << 6) | (3 << 8) | AF | NS);
        assert!(valid(d) && !valid(0));
    }

    #[test]
    fn vtcr_and_vttbr() {
        // 40 bits from level 1 (two concatenated tables): T0SZ 24, SL0 1.
        assert_eq!(vtcr(40, 1), 24 | (1 << 6) | (1 << 8) | (1 << 10) | (3 << 12) | (5 << 16) | (1 << 19) | (1 << 31));
        assert_eq!(vtcr(48, 0) & 0xff, 16 | (2 << 6));
        assert_eq!(vttbr(0x4000_0000, 7), 0x0007_0000_4000_0000);
    }
}
