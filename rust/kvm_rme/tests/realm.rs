// SPDX-License-Identifier: GPL-2.0
//! The realm logic against the RMM model.

mod common;

use common::*;
use kvm_rme::abi::{Command, Ripas};
use kvm_rme::abi::{ErrorStatus, Ipa, Pa, RmiError};
use kvm_rme::logic::granule::GranuleAlloc;
use kvm_rme::logic::realm::{level_size, Geometry, Realm, RealmConfig, RealmError, RealmState};
use kvm_rme::logic::rmi::Rmi;
use kvm_rme::model::{machine, Entry, GranuleState, ModelRealmState};

#[test]
fn geometry_matches_linux_stage2_sizing() {
    let cases = [
        (32, 2, 4),
        (33, 2, 8),
        (34, 2, 16),
        (35, 1, 1),
        (36, 1, 1),
        (39, 1, 1),
        (40, 1, 2),
        (41, 1, 4),
        (42, 1, 8),
        (43, 1, 16),
        (44, 0, 1),
        (48, 0, 1),
    ];
    for (bits, level, num) in cases {
        let g = Geometry::new(bits).unwrap();
        assert_eq!((g.start_level, g.num_start), (level, num), "{bits} bits");
    }
    assert_eq!(Geometry::new(31), None);
    assert_eq!(Geometry::new(49), None);
    for bits in 32..=48 {
        let g = Geometry::new(bits).unwrap();
        // The start tables cover the IPA space exactly (or more, when a
        // single table is larger than the space).
        let covered = level_size(g.start_level) * g.start_entries() as u64;
        assert!(covered >= 1u64 << bits && g.num_start <= 16, "{bits} bits");
    }
}

#[test]
fn create_and_destroy_returns_everything() {
    for bits in [33, 40, 44, 48] {
        let (mut rmi, mut alloc, m) = small();
        let mut realm = new_realm(&mut rmi, &mut alloc, bits);
        let g = Geometry::new(bits).unwrap();
        assert_eq!(realm.stats().rtt_pages, u64::from(g.num_start));
        assert_eq!(realm.stats().delegated, 1 + u64::from(g.num_start));
        assert_eq!(
            m.borrow().rmm.realm_state(realm.rd()),
            Some(ModelRealmState::New)
        );
        realm.destroy(&mut rmi, &mut alloc).unwrap();
        assert_eq!(realm.state(), RealmState::Destroyed);
        assert_eq!(realm.stats().delegated, 0);
        assert_clean(&m);
    }
}

#[test]
fn create_failure_gives_back_everything() {
    let (mut rmi, mut alloc, m) = small();
    m.borrow_mut()
        .rmm
        .fail_next
        .push((Command::RealmCreate, RmiError::input()));
    let (e, stats) = Realm::create(&mut rmi, &mut alloc, &RealmConfig::new(40, 1)).unwrap_err();
    assert_eq!(
        e,
        RealmError::Rmi {
            cmd: Command::RealmCreate,
            err: RmiError::input()
        }
    );
    assert_eq!(e.errno(), kvm_rme::cvm_fw::errno::EINVAL);
    assert_eq!(stats.leaked, 0);
    assert_clean(&m);
    // A root that fails to delegate.
    m.borrow_mut()
        .rmm
        .fail_next
        .push((delegate_cmd(), RmiError::input()));
    assert!(Realm::create(&mut rmi, &mut alloc, &RealmConfig::new(40, 1)).is_err());
    assert_clean(&m);
    // Bad IPA width.
    let (e, _) = Realm::create(&mut rmi, &mut alloc, &RealmConfig::new(20, 1)).unwrap_err();
    assert_eq!(e, RealmError::Invalid);
}

#[test]
fn populate_measures_and_teardown_frees() {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    let base = 0x4000_0000u64;
    realm
        .init_ripas(&mut rmi, &mut alloc, Ipa(base), Ipa(base + 0x40_0000))
        .unwrap();
    let before = m.borrow().rmm.measurement(realm.rd());
    let s = src(&mut alloc);
    for i in 0..16 {
        let page = alloc.data_page().unwrap();
        realm
            .populate(&mut rmi, &mut alloc, Ipa(base + i * 0x1000), page, s, true)
            .unwrap();
    }
    assert_ne!(m.borrow().rmm.measurement(realm.rd()), before);
    assert_eq!(realm.stats().data_pages, 16);
    // L2 and L3 created on demand.
    assert_eq!(realm.stats().rtt_pages, 2 + 2);
    assert_eq!(
        m.borrow().rmm.leaf(realm.rd(), base),
        Some(Entry::Assigned(
            m.borrow().rmm_data(realm.rd(), base),
            Ripas::Ram
        ))
    );
    // Populating twice at one IPA fails, and the page comes back.
    let page = alloc.data_page().unwrap();
    let e = realm
        .populate(&mut rmi, &mut alloc, Ipa(base), page, s, true)
        .unwrap_err();
    assert_eq!(
        e,
        RealmError::Rmi {
            cmd: Command::DataCreate,
            err: RmiError::rtt(3)
        }
    );
    // Unaligned and shared IPAs are refused before any RMI call.
    let page = alloc.data_page().unwrap();
    assert_eq!(
        realm.populate(&mut rmi, &mut alloc, Ipa(base + 8), page, s, true),
        Err(RealmError::Invalid)
    );
    let page = alloc.data_page().unwrap();
    assert_eq!(
        realm.populate(&mut rmi, &mut alloc, Ipa(1 << 39), page, s, true),
        Err(RealmError::Invalid)
    );
    realm.activate(&mut rmi).unwrap();
    let page = alloc.data_page().unwrap();
    assert_eq!(
        realm.populate(&mut rmi, &mut alloc, Ipa(base + 0x10_0000), page, s, true),
        Err(RealmError::State)
    );
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    alloc.free(kvm_rme::logic::granule::Undelegated::from_host_page(s).unwrap());
    assert_clean(&m);
}

trait DataAt {
    fn rmm_data(&self, rd: Pa, ipa: u64) -> Pa;
}
impl DataAt for kvm_rme::model::Machine {
    fn rmm_data(&self, rd: Pa, ipa: u64) -> Pa {
        match self.rmm.leaf(rd, ipa) {
            Some(Entry::Assigned(pa, _)) => pa,
            e => panic!("no data at {ipa:#x}: {e:?}"),
        }
    }
}

/// Fault-time mapping of a whole 2 MiB block from contiguous pages folds
/// the L3 table; unmapping splits the block again.
#[test]
fn fault_map_folds_and_unmap_splits() {
    let (mut rmi, mut alloc, m) = machine(64 << 20);
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    realm.activate(&mut rmi).unwrap();
    let ipa = 0x8000_0000u64;
    // A 2 MiB-aligned run of host pages (a huge folio).
    let run = alloc.data_run(512, 0x20_0000).unwrap();
    for i in 0..512 {
        let page = kvm_rme::logic::granule::Undelegated::from_host_page(run.add_pages(i)).unwrap();
        realm
            .map_unknown(&mut rmi, &mut alloc, Ipa(ipa + i * 0x1000), page)
            .unwrap();
    }
    assert_eq!(realm.stats().rtt_pages, 2 + 2);
    assert!(realm.fold(&mut rmi, &mut alloc, Ipa(ipa), 3).unwrap());
    assert_eq!(realm.stats().rtt_pages, 2 + 1);
    let e = rmi.rtt_read_entry(realm.rd(), Ipa(ipa), 3).unwrap();
    assert_eq!((e.level, e.desc), (2, run.0));
    // Folding again finds no table.
    assert!(!realm.fold(&mut rmi, &mut alloc, Ipa(ipa), 3).unwrap());
    // Unmap the middle 1 MiB: the block is split, half the pages return.
    let released_before = m.borrow().host.outstanding;
    realm
        .unmap_private(
            &mut rmi,
            &mut alloc,
            Ipa(ipa + 0x8_0000),
            Ipa(ipa + 0x18_0000),
        )
        .unwrap();
    assert_eq!(realm.stats().data_pages, 256);
    assert_eq!(
        m.borrow().host.outstanding,
        released_before - 256 + 1,
        "256 data pages back, one RTT taken"
    );
    assert_eq!(
        m.borrow().rmm.granule(run.add_pages(128)),
        GranuleState::Undelegated
    );
    assert_eq!(m.borrow().rmm.granule(run.add_pages(0)), GranuleState::Data);
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_eq!(realm.stats().data_pages, 0);
    assert_clean(&m);
}

#[test]
fn shared_mappings_use_the_top_bit_alias() {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    let shared = 1u64 << 39;
    assert_eq!(
        realm.map_shared(&mut rmi, &mut alloc, Ipa(0x1000), Pa(0x9000_0000)),
        Err(RealmError::Invalid)
    );
    assert_eq!(
        realm.map_shared(&mut rmi, &mut alloc, Ipa(1 << 40), Pa(0x9000_0000)),
        Err(RealmError::Invalid)
    );
    let host = alloc.alloc().unwrap();
    realm
        .map_shared(&mut rmi, &mut alloc, Ipa(shared + 0x1000), host.pa())
        .unwrap();
    assert_eq!(
        realm.map_shared(&mut rmi, &mut alloc, Ipa(shared + 0x1000), host.pa()),
        Err(RealmError::Rmi {
            cmd: Command::RttMapUnprotected,
            err: RmiError::rtt(3)
        })
    );
    assert!(realm.unmap_shared(&mut rmi, Ipa(shared + 0x1000)).unwrap());
    assert!(!realm.unmap_shared(&mut rmi, Ipa(shared + 0x1000)).unwrap());
    // Teardown also clears shared mappings left behind.
    realm
        .map_shared(&mut rmi, &mut alloc, Ipa(shared + 0x2000), host.pa())
        .unwrap();
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    alloc.free(host);
    assert_clean(&m);
}

#[test]
fn recs_and_activation() {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    let r0 = realm
        .rec_create(&mut rmi, &mut alloc, 0, 0x8000_0000, [0; 8], true)
        .unwrap();
    let r1 = realm
        .rec_create(&mut rmi, &mut alloc, 1, 0, [0; 8], false)
        .unwrap();
    assert_eq!(m.borrow().rmm.count_state(GranuleState::RecAux), 4);
    assert_eq!(realm.destroy(&mut rmi, &mut alloc), Err(RealmError::Busy));
    realm.activate(&mut rmi).unwrap();
    assert_eq!(
        realm.rec_create(&mut rmi, &mut alloc, 2, 0, [0; 8], false),
        Err(RealmError::State)
    );
    // A REC the RMM refuses to destroy comes back to the caller.
    m.borrow_mut()
        .rmm
        .fail_next
        .push((Command::RecDestroy, RmiError::new(ErrorStatus::Rec, 0)));
    let (r1, e) = realm.rec_destroy(&mut rmi, &mut alloc, r1).unwrap_err();
    assert_eq!(e.errno(), kvm_rme::cvm_fw::errno::EBUSY);
    realm.rec_destroy(&mut rmi, &mut alloc, r1).unwrap();
    realm.rec_destroy(&mut rmi, &mut alloc, r0).unwrap();
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
}

/// An undelegation that fails leaks exactly that granule, counted, and
/// the page never reaches the allocator.
#[test]
fn failed_undelegate_is_a_counted_leak() {
    // One failure is tried again and passes.
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    m.borrow_mut()
        .rmm
        .fail_next
        .push((undelegate_cmd(), RmiError::input()));
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_eq!(realm.stats().leaked, 0, "a passing failure is retried");
    assert_clean(&m);
    // A granule that fails every try is given up on.
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    for _ in 0..kvm_rme::logic::granule::TEARDOWN_TRIES {
        m.borrow_mut()
            .rmm
            .fail_next
            .push((undelegate_cmd(), RmiError::input()));
    }
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_eq!(realm.stats().leaked, 1);
    let mm = m.borrow();
    assert!(mm.host.violations.is_empty());
    assert_eq!(
        mm.rmm.not_undelegated(),
        1,
        "the leaked granule stays delegated"
    );
    assert_eq!(mm.host.outstanding, 1, "and is never freed");
}

#[test]
fn teardown_errors_are_retryable() {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    realm
        .init_ripas(&mut rmi, &mut alloc, Ipa(0), Ipa(0x20_0000))
        .unwrap();
    for i in 0..4 {
        let p = alloc.data_page().unwrap();
        realm
            .map_unknown(&mut rmi, &mut alloc, Ipa(i * 0x1000), p)
            .unwrap();
    }
    // A refusal on every try of REALM_DESTROY.
    for _ in 0..kvm_rme::logic::granule::TEARDOWN_TRIES {
        m.borrow_mut()
            .rmm
            .fail_next
            .push((Command::RealmDestroy, RmiError::new(ErrorStatus::Realm, 0)));
    }
    assert!(realm.destroy(&mut rmi, &mut alloc).is_err());
    assert_eq!(realm.state(), RealmState::New);
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
}

#[test]
fn init_ripas_creates_tables_at_unaligned_edges() {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    // 1 GiB + 4 KiB: the whole L1 entry, then an L2 and L3 for the tail.
    realm
        .init_ripas(&mut rmi, &mut alloc, Ipa(0x4000_0000), Ipa(0x8000_1000))
        .unwrap();
    let e = rmi.rtt_read_entry(realm.rd(), Ipa(0x8000_0000), 3).unwrap();
    assert_eq!((e.level, e.ripas()), (3, Some(Ripas::Ram)));
    let e = rmi.rtt_read_entry(realm.rd(), Ipa(0x8000_1000), 3).unwrap();
    assert_eq!(e.ripas(), Some(Ripas::Empty));
    assert_eq!(
        realm.init_ripas(&mut rmi, &mut alloc, Ipa(0x1000), Ipa(0x1000)),
        Err(RealmError::Invalid)
    );
    assert_eq!(
        realm.init_ripas(&mut rmi, &mut alloc, Ipa(0), Ipa(1 << 40)),
        Err(RealmError::Invalid)
    );
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
}

#[test]
fn sparse_teardown_skips_absent_tables() {
    // INIT_RIPAS over 1 GiB + 4 KiB: one level-1 block entry, then a
    // level-2 table holding a single level-3 table.  Teardown must not
    // probe the 511 absent level-3 tables one by one.
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    realm
        .init_ripas(&mut rmi, &mut alloc, Ipa(0x4000_0000), Ipa(0x8000_1000))
        .unwrap();
    let before = m.borrow().rmm.counts.get(Command::RttDestroy);
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    let calls = m.borrow().rmm.counts.get(Command::RttDestroy) - before;
    assert!(calls <= 4, "{calls} RTT_DESTROY calls");
    eprintln!("sparse teardown: {calls} RTT_DESTROY calls");
    assert_clean(&m);
}
