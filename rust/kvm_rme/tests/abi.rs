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
