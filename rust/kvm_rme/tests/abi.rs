// SPDX-License-Identifier: GPL-2.0

//! The granules the host encodes for the RMM, byte for byte against the
//! RMM 1.0 specification's offsets (`RmiRealmParams`, `RmiRecParams`).
//! The kernel's conduit copies exactly these structures into its staging
//! page, so this is the one encoding the RMM ever reads.

use kvm_rme::abi::{HashAlgo, Pa, RealmParams, RecParams, MAX_REC_AUX_GRANULES};
use kvm_rme::logic::rmi::{RealmCreate, RecCreate};

fn bytes<T>(v: &T) -> &[u8] {
    // SAFETY: `v` is a live `repr(C)` ABI structure of integers and byte
    // arrays with explicit padding fields, so all its bytes are
    // initialised; the slice borrows it for its size.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn realm_params_bytes() {
    let mut rpv = [0u8; 64];
    rpv[0] = 0xa5;
    rpv[63] = 0x5a;
    let c = RealmCreate {
        flags: 0b10,
        s2sz: 40,
        sve_vl: 3,
        num_bps: 6,
        num_wps: 4,
        pmu_num_ctrs: 2,
        hash_algo: HashAlgo::Sha512,
        rpv,
        vmid: 0x1234,
        rtt_base: Pa(0x8765_4000),
        rtt_level_start: -1,
        rtt_num_start: 2,
    };
    let p: RealmParams = c.params();
    let b = bytes(&p);
    assert_eq!(b.len(), 4096);
    assert_eq!(u64_at(b, 0x0), 0b10, "flags");
    assert_eq!(b[0x8], 40, "s2sz");
    assert_eq!(b[0x10], 3, "sve_vl");
    assert_eq!(b[0x18], 6, "num_bps");
    assert_eq!(b[0x20], 4, "num_wps");
    assert_eq!(b[0x28], 2, "pmu_num_ctrs");
    assert_eq!(b[0x30], 1, "hash_algo (SHA-512)");
    assert_eq!((b[0x400], b[0x43f]), (0xa5, 0x5a), "rpv");
    assert_eq!(u16::from_le_bytes([b[0x800], b[0x801]]), 0x1234, "vmid");
    assert_eq!(u64_at(b, 0x808), 0x8765_4000, "rtt_base");
    assert_eq!(
        i64::from_le_bytes(b[0x810..0x818].try_into().unwrap()),
        -1,
        "rtt_level_start"
    );
    assert_eq!(
        u32::from_le_bytes(b[0x818..0x81c].try_into().unwrap()),
        2,
        "rtt_num_start"
    );
    // Everything else is zero: a stale byte would be read by the RMM.
    let set = [
        0x0, 0x8, 0x10, 0x18, 0x20, 0x28, 0x30, 0x400, 0x43f, 0x800, 0x801, 0x80a, 0x80b,
    ];
    for (i, v) in b.iter().enumerate() {
        let in_field = (0x808..0x820).contains(&i);
        if !set.contains(&i) && !in_field {
            assert_eq!(*v, 0, "byte {i:#x}");
        }
    }
}

#[test]
fn rec_params_bytes() {
    let mut aux = [Pa(0); MAX_REC_AUX_GRANULES];
    aux[0] = Pa(0x1000);
    aux[1] = Pa(0x2000);
    aux[2] = Pa(0x3000);
    let c = RecCreate {
        runnable: true,
        mpidr: 0x101,
        pc: 0x8008_0000,
        gprs: [1, 2, 3, 4, 5, 6, 7, 8],
        aux,
        num_aux: 2,
    };
    let p: RecParams = c.params();
    let b = bytes(&p);
    assert_eq!(b.len(), 4096);
    assert_eq!(u64_at(b, 0x0), 1, "flags: RUNNABLE");
    assert_eq!(u64_at(b, 0x100), 0x101, "mpidr");
    assert_eq!(u64_at(b, 0x200), 0x8008_0000, "pc");
    for i in 0..8 {
        assert_eq!(u64_at(b, 0x300 + 8 * i), i as u64 + 1, "gprs[{i}]");
    }
    assert_eq!(u64_at(b, 0x800), 2, "num_aux");
    assert_eq!(
        (u64_at(b, 0x808), u64_at(b, 0x810)),
        (0x1000, 0x2000),
        "aux"
    );
    assert_eq!(u64_at(b, 0x818), 0, "only num_aux granules are passed");
    let not_runnable = RecCreate {
        runnable: false,
        ..c
    };
    assert_eq!(u64_at(bytes(&not_runnable.params()), 0), 0);
}

#[test]
fn rtt_entry_decoding() {
    use kvm_rme::abi::{Ripas, RttEntry, RttEntryState};
    let e = RttEntry::decode([3, 1, 0x8000_0000 | 0x4c3, 1]);
    assert_eq!(
        (e.level, e.state, e.desc),
        (3, RttEntryState::Assigned, 0x8000_04c3)
    );
    assert_eq!(e.ripas(), Some(Ripas::Ram));
    // RES0 bits above the fields are ignored.
    let e = RttEntry::decode([0x100 | 2, 2, 0, 0x300]);
    assert_eq!(
        (e.level, e.state, e.ripas()),
        (2, RttEntryState::Table, Some(Ripas::Empty))
    );
    // Values the specification does not define stay visible to refuse.
    let e = RttEntry::decode([3, 7, 0, 9]);
    assert_eq!((e.state, e.ripas()), (RttEntryState::Unknown(7), None));
    assert_eq!(RttEntryState::Unknown(7).encode(), 7);
    // What an RMM encodes decodes to the same entry.
    for x in [[3, 1, 0x8000_04c3, 1], [2, 2, 0x4000_1000, 0], [1, 0, 0, 2]] {
        assert_eq!(RttEntry::decode(x).encode(), x);
    }
}

// RMI 2.0, as TF-RMM v0.9.0's `smc-rmi.h` lays it out.

#[test]
fn v2_realm_params_bytes() {
    let mut rpv = [0u8; 64];
    rpv[1] = 0x77;
    let c = RealmCreate {
        flags: 0b1,
        s2sz: 44,
        sve_vl: 0,
        num_bps: 2,
        num_wps: 3,
        pmu_num_ctrs: 0,
        hash_algo: HashAlgo::Sha256,
        rpv,
        vmid: 0x1234,
        rtt_base: Pa(0x8000_2000),
        rtt_level_start: 0,
        rtt_num_start: 1,
    };
    let g = kvm_rme::abi::v2::RealmParams::from_v1(&c.params());
    let b = bytes(&g);
    assert_eq!(b.len(), 4096);
    assert_eq!(u64_at(b, 0x0), 1, "flags0");
    assert_eq!(b[0x8], 44, "s2sz");
    assert_eq!((b[0x18], b[0x20]), (2, 3), "bps, wps");
    assert_eq!(b[0x30], 0, "algorithm");
    assert_eq!(u64_at(b, 0x38), 0, "num_aux_planes");
    assert_eq!(b[0x401], 0x77, "rpv");
    // No VMID in 2.0: the bytes where 1.0 had it stay 0 (ats_plane).
    assert_eq!(u64_at(b, 0x800), 0, "no VMID");
    assert_eq!(u64_at(b, 0x808), 0x8000_2000, "rtt_base");
    assert_eq!(u64_at(b, 0x810), 0, "rtt_level_start");
    assert_eq!(u32::from_le_bytes(b[0x818..0x81c].try_into().unwrap()), 1, "rtt_num_start");
    assert_eq!(u64_at(b, 0x820), 0, "flags1");
    assert!(b[0x828..].iter().all(|x| *x == 0));
}

#[test]
fn v2_rec_params_have_no_aux() {
    let c = RecCreate {
        runnable: true,
        mpidr: 0x101,
        pc: 0x8008_0000,
        gprs: [9, 8, 7, 6, 5, 4, 3, 2],
        aux: [Pa(0x1000); MAX_REC_AUX_GRANULES],
        num_aux: 16,
    };
    let g = kvm_rme::abi::v2::RecParams::from_v1(&c.params());
    let b = bytes(&g);
    assert_eq!(u64_at(b, 0x0), 1, "flags: runnable");
    assert_eq!(u64_at(b, 0x100), 0x101, "mpidr");
    assert_eq!(u64_at(b, 0x200), 0x8008_0000, "pc");
    assert_eq!(u64_at(b, 0x300), 9, "x0");
    assert_eq!(u64_at(b, 0x338), 2, "x7");
    // 1.0's num_aux at 0x800 and aux[] at 0x808 are gone.
    assert!(b[0x340..].iter().all(|x| *x == 0));
}

#[test]
fn v2_rec_run_round_trip() {
    use kvm_rme::abi::RecRun;
    let mut neutral = RecRun::default();
    neutral.enter.flags = 0b101;
    neutral.enter.gprs[0] = 0x11;
    neutral.enter.gprs[30] = 0x33;
    neutral.enter.gicv3_lrs[0] = 0xdead;
    let mut g = kvm_rme::abi::v2::RecRun::default();
    g.set_enter(&neutral);
    let b = bytes(&g);
    assert_eq!(u64_at(b, 0x0), 0b101, "entry flags");
    assert_eq!(u64_at(b, 0x200), 0x11, "entry x0");
    assert_eq!(u64_at(b, 0x2f0), 0x33, "entry x30");
    // 1.0's entry GIC fields (0x300..) are not written in 2.0.
    assert!(b[0x2f8..0x800].iter().all(|x| *x == 0));
    // The exit half: the RMM's layout read back into the neutral one.
    let mut x = neutral;
    x.exit.exit_reason = 5;
    x.exit.esr = 0x9200_0046;
    x.exit.hpfar = 0x88;
    x.exit.gprs[1] = 0x44;
    x.exit.cntv_ctl = 5;
    x.exit.cntv_cval = 0x1234;
    x.exit.ripas_base = 0x1000;
    x.exit.ripas_top = 0x3000;
    x.exit.ripas_value = 1;
    x.exit.imm = 0xabcd;
    g.set_exit(&x);
    let b = bytes(&g);
    assert_eq!(u64_at(b, 0x800), 5, "exit_reason");
    assert_eq!(u64_at(b, 0x900), 0x9200_0046, "esr");
    assert_eq!(u64_at(b, 0x910), 0x88, "hpfar");
    assert_eq!(u64_at(b, 0xa08), 0x44, "exit x1");
    assert_eq!(u64_at(b, 0xc10), 5, "cntv_ctl");
    assert_eq!(u64_at(b, 0xc18), 0x1234, "cntv_cval");
    assert_eq!(u64_at(b, 0xd00), 0x1000, "ripas_base");
    assert_eq!(u64_at(b, 0xd08), 0x3000, "ripas_top");
    assert_eq!(b[0xd10], 1, "ripas_value");
    assert_eq!(u32::from_le_bytes(b[0xe00..0xe04].try_into().unwrap()), 0xabcd, "imm");
    let mut back = RecRun::default();
    g.exit_into(&mut back);
    assert_eq!(
        (back.exit.exit_reason, back.exit.esr, back.exit.gprs[1], back.exit.cntv_cval, back.exit.imm),
        (5, 0x9200_0046, 0x44, 0x1234, 0xabcd)
    );
    // An exit reason beyond what the host decodes stays unknown.
    let mut odd = g;
    odd.exit.exit_reason = 0x1_0000_0003;
    odd.exit_into(&mut back);
    assert_eq!(back.exit.exit_reason, 0xff);
}

#[test]
fn v2_register_encodings() {
    use kvm_rme::abi::v2::{incomplete, AddrRangeDesc, DonateReq, Features1, MemRequest};
    // What TF-RMM v0.9.0 answers REC_CREATE with: 0x10D, x2 = 0x40.
    assert_eq!(incomplete::decode(0x10d), Some((MemRequest::Donate, false)));
    assert_eq!(incomplete::decode(0x20d), Some((MemRequest::Reclaim, false)));
    assert_eq!(incomplete::decode(0x00d), Some((MemRequest::None, false)));
    assert_eq!(incomplete::decode(0x40d), Some((MemRequest::None, true)));
    assert_eq!(incomplete::decode(0x104), None, "ERROR_RTT is not incomplete");
    assert_eq!(incomplete::encode(MemRequest::Reclaim, false), 0x20d);
    let r = DonateReq::decode(0x40);
    assert_eq!(r, DonateReq { blk_size: 0, count: 16, contiguous: false, undelegated: false });
    assert_eq!(DonateReq::decode(0x28).count, 10);
    assert_eq!(r.encode(), 0x40);
    assert!(DonateReq::decode(1 << 16).contiguous && DonateReq::decode(1 << 17).undelegated);
    // One 4 KiB granule in a list: `PA | 4` (count 1), as TF-RMM's
    // RTT_DATA_UNMAP reports it.
    let d = AddrRangeDesc { size: 0, count: 1, pa: 0x8812_3000, undelegated: false };
    assert_eq!(d.encode(), 0x8812_3004);
    assert_eq!(AddrRangeDesc::decode(0x8812_3004), d);
    assert_eq!(AddrRangeDesc::decode(0x8812_3000 | (3 << 2)).count, 3);
    assert!(AddrRangeDesc::decode(1 << 63).undelegated);
    // FEATURES(1) of TF-RMM v0.9.0 on QEMU.
    let f = Features1::decode(0x142a9);
    assert!(f.granule_4k && f.hash_sha256 && f.hash_sha512);
    assert_eq!((f.max_recs_order, f.l0gptsz, f.pps), (10, 0, 5));
    assert_eq!(Features1::decode(f.encode()), f);
    let m = Features1::merge(0x30 | (6 << 14) | (4 << 20), 0x142a9);
    assert_eq!((m.max_ipa_bits, m.num_bps, m.num_wps, m.max_recs_order), (0x30, 6, 4, 10));
    assert!(m.hash_sha256 && m.hash_sha512);
}

#[test]
fn commands_by_version() {
    use kvm_rme::abi::{Command, RmiVersion};
    let (v1, v2) = (RmiVersion::V1_0, RmiVersion::V2_0);
    assert!(Command::GranuleDelegate.in_version(v1) && !Command::GranuleDelegate.in_version(v2));
    assert!(Command::GranuleRangeDelegate.in_version(v2) && !Command::GranuleRangeDelegate.in_version(v1));
    assert!(Command::DataCreate.in_version(v1) && Command::DataCreate.in_version(v2));
    assert!(!Command::RecAuxCount.in_version(v2) && !Command::DataDestroy.in_version(v2));
    assert_eq!(Command::RmmActivate.fid(), 0xC400_0202);
    assert_eq!(Command::RttDataUnmap.fid(), 0xC400_01F6);
    assert_eq!(Command::RmmConfigSet.fid(), 0xC400_016E);
    assert_eq!(Command::OpCancel.fid(), 0xC400_020A);
    for c in Command::ALL {
        assert_eq!(Command::from_fid(c.fid()), Some(c));
        assert!(c.in_version(v1) || c.in_version(v2));
    }
}
