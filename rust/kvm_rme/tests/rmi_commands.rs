// SPDX-License-Identifier: GPL-2.0
//! One test per RMI command against the RMM model: the status and index
//! the specification gives for each failure condition, and the state
//! transitions on success.

mod common;

use common::*;
use kvm_rme::abi::{Command, Ripas, RttEntryState};
use kvm_rme::abi::{ErrorStatus, Ipa, Pa, RmiError, RmiVersion};
use kvm_rme::logic::granule::undelegate;
use kvm_rme::logic::realm::{Geometry, RealmConfig};
use kvm_rme::logic::rmi::{RealmCreate, RecCreate, Rmi};
use kvm_rme::model::{GranuleState, ModelRealmState, RmmModel};

const BASE: u64 = 0x8000_0000;

fn rmm() -> RmmModel {
    RmmModel::new(BASE, 64 << 20)
}

fn rtt<T>(level: u8) -> Result<T, RmiError> {
    Err(RmiError::rtt(level))
}

fn params(base: Pa, bits: u8, vmid: u16) -> RealmCreate {
    let g = Geometry::new(bits).unwrap();
    RealmCreate {
        flags: 0,
        s2sz: bits,
        sve_vl: 0,
        num_bps: 2,
        num_wps: 2,
        pmu_num_ctrs: 0,
        hash_algo: kvm_rme::abi::HashAlgo::Sha256,
        rpv: [0; 64],
        vmid,
        rtt_base: base,
        rtt_level_start: g.start_level as i8,
        rtt_num_start: g.num_start,
    }
}

/// RD at BASE, roots after it (40-bit IPA: 2 concatenated L1 tables).
fn realm(m: &mut RmmModel) -> Pa {
    let rd = Pa(BASE);
    for i in 0..3 {
        m.granule_delegate(Pa(BASE).add_pages(i)).unwrap();
    }
    m.realm_create(rd, &params(Pa(BASE + 0x1000), 40, 7))
        .unwrap();
    rd
}

fn g(i: u64) -> Pa {
    Pa(BASE + 0x10_0000).add_pages(i)
}

#[test]
fn version_and_features() {
    let mut m = rmm();
    let r = m.version(RmiVersion::V1_0);
    assert_eq!(r.status, Ok(()));
    assert_eq!(r.info.lower, RmiVersion::V1_0);
    let r = m.version(RmiVersion { major: 2, minor: 0 });
    assert_eq!(r.status.map_err(|e| e.status), Err(ErrorStatus::Input));
    let f = kvm_rme::abi::Features0::decode(m.features(0).unwrap());
    assert_eq!(f, m.features);
    assert_eq!(m.counts.get(Command::Version), 2);
    assert_eq!(m.counts.get(Command::Features), 1);
}

#[test]
fn granule_delegate_undelegate() {
    let mut m = rmm();
    let pa = g(0);
    assert_eq!(m.granule_undelegate(pa), Err(RmiError::input()));
    m.granule_delegate(pa).unwrap();
    assert_eq!(m.granule(pa), GranuleState::Delegated);
    assert_eq!(m.granule_delegate(pa), Err(RmiError::input()));
    m.granule_undelegate(pa).unwrap();
    assert_eq!(m.granule(pa), GranuleState::Undelegated);
    // Unaligned and outside memory.
    assert_eq!(m.granule_delegate(Pa(pa.0 + 8)), Err(RmiError::input()));
    assert_eq!(m.granule_delegate(Pa(0x1000)), Err(RmiError::input()));
}

#[test]
fn realm_create_checks_params() {
    let mut m = rmm();
    let rd = Pa(BASE);
    let base = Pa(BASE + 0x1000);
    // RD not delegated.
    assert_eq!(
        m.realm_create(rd, &params(base, 40, 1)),
        Err(RmiError::input())
    );
    for i in 0..3 {
        m.granule_delegate(Pa(BASE).add_pages(i)).unwrap();
    }
    let mut p = params(base, 40, 1);
    p.rtt_level_start = 0;
    assert_eq!(
        m.realm_create(rd, &p),
        Err(RmiError::input()),
        "wrong start level"
    );
    let mut p = params(base, 40, 1);
    p.rtt_num_start = 1;
    assert_eq!(
        m.realm_create(rd, &p),
        Err(RmiError::input()),
        "wrong root count"
    );
    let mut p = params(base, 40, 1);
    p.num_bps = 0;
    assert_eq!(
        m.realm_create(rd, &p),
        Err(RmiError::input()),
        "no breakpoints"
    );
    let mut p = params(base, 40, 1);
    p.num_wps = 99;
    assert_eq!(
        m.realm_create(rd, &p),
        Err(RmiError::input()),
        "more watchpoints than FEATURES"
    );
    for (bit, what) in [(0, "LPA2"), (1, "SVE"), (2, "a PMU"), (3, "an unknown flag")] {
        let mut p = params(base, 40, 1);
        p.flags = 1 << bit;
        assert_eq!(
            m.realm_create(rd, &p),
            Err(RmiError::input()),
            "{what}, which FEATURES does not offer"
        );
    }
    let mut p = params(base, 40, 1);
    p.s2sz = 60;
    assert_eq!(
        m.realm_create(rd, &p),
        Err(RmiError::input()),
        "IPA too wide"
    );
    assert_eq!(
        m.realm_create(rd, &params(Pa(BASE + 0x3000), 40, 1)),
        Err(RmiError::input()),
        "roots not delegated"
    );
    m.realm_create(rd, &params(base, 40, 1)).unwrap();
    assert_eq!(m.granule(rd), GranuleState::Rd);
    assert_eq!(m.granule(base), GranuleState::Rtt);
    assert_eq!(m.realm_state(rd), Some(ModelRealmState::New));
    // The VMID is taken now.
    for i in 0..3 {
        m.granule_delegate(g(i)).unwrap();
    }
    assert_eq!(
        m.realm_create(g(0), &params(g(1), 40, 1)),
        Err(RmiError::input())
    );
    m.realm_create(g(0), &params(g(1), 40, 2)).unwrap();
    // An RD cannot be undelegated while the realm exists.
    assert_eq!(m.granule_undelegate(rd), Err(RmiError::input()));
}

#[test]
fn rtt_create_reports_walk_level() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..4 {
        m.granule_delegate(g(i)).unwrap();
    }
    // Level 3 needs level 2 first: the walk stops at level 1.
    assert_eq!(m.rtt_create(rd, g(0), Ipa(0x4000_0000), 3), rtt(1));
    // Unaligned for the level.
    assert_eq!(
        m.rtt_create(rd, g(0), Ipa(0x4000_1000), 2),
        Err(RmiError::input())
    );
    // Start level and below cannot be created.
    assert_eq!(m.rtt_create(rd, g(0), Ipa(0), 1), Err(RmiError::input()));
    m.rtt_create(rd, g(0), Ipa(0x4000_0000), 2).unwrap();
    // Already a table: the parent level.
    assert_eq!(m.rtt_create(rd, g(1), Ipa(0x4000_0000), 2), rtt(1));
    m.rtt_create(rd, g(1), Ipa(0x4000_0000), 3).unwrap();
    assert_eq!(m.granule(g(1)), GranuleState::Rtt);
    let e = m.rtt_read_entry(rd, Ipa(0x4000_0000), 2).unwrap();
    assert_eq!(
        (e.level, e.state, e.desc),
        (2, RttEntryState::Table, g(1).0)
    );
}

#[test]
fn data_create_and_destroy() {
    let mut m = rmm();
    let rd = realm(&mut m);
    let src = g(100);
    for i in 0..4 {
        m.granule_delegate(g(i)).unwrap();
    }
    let ipa = Ipa(0x4000_0000);
    assert_eq!(m.data_create(rd, g(0), ipa, src, 1), rtt(1));
    m.rtt_create(rd, g(1), ipa, 2).unwrap();
    assert_eq!(m.data_create(rd, g(0), ipa, src, 1), rtt(2));
    m.rtt_create(rd, g(2), ipa, 3).unwrap();
    // The source must be a normal-world page.
    assert_eq!(
        m.data_create(rd, g(0), ipa, g(3), 1),
        Err(RmiError::input())
    );
    // Unprotected IPA.
    assert_eq!(
        m.data_create(rd, g(0), Ipa(1 << 39), src, 1),
        Err(RmiError::input())
    );
    let before = m.measurement(rd);
    m.data_create(rd, g(0), ipa, src, 1).unwrap();
    assert_ne!(
        m.measurement(rd),
        before,
        "measured data extends the measurement"
    );
    assert_eq!(m.granule(g(0)), GranuleState::Data);
    // Occupied.
    assert_eq!(m.data_create(rd, g(3), ipa, src, 1), rtt(3));
    let d = m.data_destroy(rd, ipa).unwrap();
    assert_eq!(d.pa, g(0));
    assert_eq!(d.top, Ipa(ipa.0 + 0x20_0000), "no more data in this table");
    assert_eq!(m.granule(g(0)), GranuleState::Delegated);
    assert_eq!(
        m.leaf(rd, ipa.0),
        Some(kvm_rme::model::Entry::Unassigned(Ripas::Destroyed))
    );
    assert_eq!(m.data_destroy(rd, ipa), rtt(3));
    // After activation only DATA_CREATE_UNKNOWN maps data.
    m.realm_activate(rd).unwrap();
    assert_eq!(
        m.data_create(rd, g(0), Ipa(ipa.0 + 0x1000), src, 1),
        Err(RmiError::new(ErrorStatus::Realm, 0))
    );
    m.data_create_unknown(rd, g(0), Ipa(ipa.0 + 0x1000))
        .unwrap();
}

#[test]
fn rtt_destroy_and_fold() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..600 {
        m.granule_delegate(g(i)).unwrap();
    }
    let ipa = 0x4000_0000u64;
    m.rtt_create(rd, g(0), Ipa(ipa), 2).unwrap();
    m.rtt_create(rd, g(1), Ipa(ipa), 3).unwrap();
    // Data must be a 2 MiB-aligned contiguous run to fold: g(2).. is not aligned,
    // so use pages from a 2 MiB-aligned region.
    let run = Pa(BASE + 0x40_0000);
    for i in 0..512 {
        m.granule_delegate(run.add_pages(i)).unwrap();
        m.data_create_unknown(rd, run.add_pages(i), Ipa(ipa + i * 0x1000))
            .unwrap();
    }
    // Live: cannot destroy.
    assert_eq!(m.rtt_destroy(rd, Ipa(ipa), 3).0, rtt(3));
    // Folding level 2 is not allowed for a 40-bit realm (its parent is the start level).
    assert_eq!(m.rtt_fold(rd, Ipa(ipa), 2), Err(RmiError::input()));
    assert_eq!(m.rtt_fold(rd, Ipa(ipa), 3), Ok(g(1)));
    assert_eq!(m.granule(g(1)), GranuleState::Delegated);
    let e = m.rtt_read_entry(rd, Ipa(ipa), 3).unwrap();
    assert_eq!(
        (e.level, e.state, e.desc),
        (2, RttEntryState::Assigned, run.0)
    );
    // Unfold by creating the table again, then empty and destroy it.
    m.rtt_create(rd, g(1), Ipa(ipa), 3).unwrap();
    for i in 0..512 {
        assert_eq!(
            m.data_destroy(rd, Ipa(ipa + i * 0x1000)).unwrap().pa,
            run.add_pages(i)
        );
    }
    let (d, top) = m.rtt_destroy(rd, Ipa(ipa), 3);
    assert_eq!(d, Ok(g(1)));
    // Nothing else is live in the level-2 table: the end of it.
    assert_eq!(top, Ipa(0x8000_0000));
    // No table any more: the RMM says so, and where to go on.
    assert_eq!(m.rtt_destroy(rd, Ipa(ipa), 3), (rtt(2), Ipa(0x8000_0000)));
    m.rtt_create(rd, g(1), Ipa(ipa + 0x60_0000), 3).unwrap();
    assert_eq!(
        m.rtt_destroy(rd, Ipa(ipa), 3),
        (rtt(2), Ipa(ipa + 0x60_0000))
    );
    m.rtt_destroy(rd, Ipa(ipa + 0x60_0000), 3).0.unwrap();
    // A non-homogeneous table does not fold.
    m.rtt_create(rd, g(1), Ipa(ipa), 3).unwrap();
    m.data_create_unknown(rd, g(5), Ipa(ipa)).unwrap();
    assert_eq!(m.rtt_fold(rd, Ipa(ipa), 3), rtt(3));
}

#[test]
fn realm_destroy_needs_empty_realm() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..3 {
        m.granule_delegate(g(i)).unwrap();
    }
    m.rtt_create(rd, g(0), Ipa(0), 2).unwrap();
    assert_eq!(
        m.realm_destroy(rd),
        Err(RmiError::new(ErrorStatus::Realm, 0))
    );
    m.rtt_destroy(rd, Ipa(0), 2).0.unwrap();
    m.realm_destroy(rd).unwrap();
    assert_eq!(m.granule(rd), GranuleState::Delegated);
    assert_eq!(m.granule(Pa(BASE + 0x1000)), GranuleState::Delegated);
    assert_eq!(m.realm_count(), 0);
}

fn rec_params(aux: &[Pa], mpidr: u64) -> RecCreate {
    let mut p = RecCreate {
        runnable: true,
        mpidr,
        pc: 0x8000_0000,
        gprs: [0; 8],
        aux: [Pa(0); 16],
        num_aux: aux.len(),
    };
    p.aux[..aux.len()].copy_from_slice(aux);
    p
}

#[test]
fn rec_lifecycle() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..8 {
        m.granule_delegate(g(i)).unwrap();
    }
    assert_eq!(m.rec_aux_count(rd), Ok(2));
    assert_eq!(
        m.rec_create(rd, g(0), &rec_params(&[g(1)], 0)),
        Err(RmiError::input()),
        "aux count"
    );
    assert_eq!(
        m.rec_create(rd, g(0), &rec_params(&[g(1), g(1)], 0)),
        Err(RmiError::input()),
        "duplicate aux"
    );
    m.rec_create(rd, g(0), &rec_params(&[g(1), g(2)], 0))
        .unwrap();
    assert_eq!(m.granule(g(0)), GranuleState::Rec);
    assert_eq!(m.granule(g(2)), GranuleState::RecAux);
    assert_eq!(
        m.rec_create(rd, g(3), &rec_params(&[g(4), g(5)], 0)),
        Err(RmiError::input()),
        "same MPIDR"
    );
    let mut run = Box::<kvm_rme::abi::RecRun>::default();
    assert_eq!(
        m.rec_enter(g(0), &mut run),
        Err(RmiError::new(ErrorStatus::Realm, 0)),
        "realm NEW"
    );
    assert_eq!(
        m.realm_destroy(rd),
        Err(RmiError::new(ErrorStatus::Realm, 0)),
        "REC alive"
    );
    m.realm_activate(rd).unwrap();
    assert_eq!(
        m.realm_activate(rd),
        Err(RmiError::new(ErrorStatus::Realm, 0))
    );
    assert_eq!(
        m.rec_create(rd, g(3), &rec_params(&[g(4), g(5)], 1)),
        Err(RmiError::new(ErrorStatus::Realm, 0))
    );
    // Nothing scripted: the model's realm powers off...
    m.rec_enter(g(0), &mut run).unwrap();
    assert_eq!(run.exit.exit_reason, kvm_rme::abi::exit_reason::PSCI);
    // ...and further entries say SYSTEM_OFF.
    assert_eq!(
        m.rec_enter(g(0), &mut run),
        Err(RmiError::new(ErrorStatus::Realm, 1))
    );
    m.rec_destroy(g(0)).unwrap();
    assert_eq!(m.granule(g(1)), GranuleState::Delegated);
    assert_eq!(m.rec_destroy(g(0)), Err(RmiError::input()));
}

#[test]
fn psci_complete_matches_request() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..6 {
        m.granule_delegate(g(i)).unwrap();
    }
    m.rec_create(rd, g(0), &rec_params(&[g(1), g(2)], 0))
        .unwrap();
    m.rec_create(rd, g(3), &rec_params(&[g(4), g(5)], 1))
        .unwrap();
    assert_eq!(
        m.psci_complete(g(0), g(3), 0),
        Err(RmiError::input()),
        "no request pending"
    );
    m.set_pending_psci(g(0), 1);
    assert_eq!(
        m.psci_complete(g(0), g(0), 0),
        Err(RmiError::input()),
        "wrong target"
    );
    m.psci_complete(g(0), g(3), 0).unwrap();
}

#[test]
fn unprotected_map_unmap() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..3 {
        m.granule_delegate(g(i)).unwrap();
    }
    let ipa = (1u64 << 39) + 0x4000_0000;
    let desc = 0x9000_0000 | kvm_rme::logic::realm::UNPROTECTED_ATTRS;
    assert_eq!(m.rtt_map_unprotected(rd, Ipa(ipa), 3, desc), rtt(1));
    m.rtt_create(rd, g(0), Ipa(ipa), 2).unwrap();
    m.rtt_create(rd, g(1), Ipa(ipa), 3).unwrap();
    assert_eq!(
        m.rtt_map_unprotected(rd, Ipa(0x4000_0000), 3, desc),
        Err(RmiError::input()),
        "protected IPA"
    );
    m.rtt_map_unprotected(rd, Ipa(ipa), 3, desc).unwrap();
    assert_eq!(m.rtt_map_unprotected(rd, Ipa(ipa), 3, desc), rtt(3));
    let e = m.rtt_read_entry(rd, Ipa(ipa), 3).unwrap();
    assert_eq!((e.state, e.desc), (RttEntryState::Assigned, desc));
    assert_eq!(
        m.rtt_unmap_unprotected(rd, Ipa(ipa), 3),
        Ok(Ipa(ipa + 0x1000))
    );
    assert_eq!(m.rtt_unmap_unprotected(rd, Ipa(ipa), 3), rtt(3));
}

#[test]
fn init_ripas_blocks_and_edges() {
    let mut m = rmm();
    let rd = realm(&mut m);
    for i in 0..3 {
        m.granule_delegate(g(i)).unwrap();
    }
    // A whole 1 GiB L1 entry: one call.
    assert_eq!(
        m.rtt_init_ripas(rd, Ipa(0x4000_0000), Ipa(0x8000_0000)),
        Ok(Ipa(0x8000_0000))
    );
    // Not a whole L1 entry: the host must create a level 2 table.
    assert_eq!(m.rtt_init_ripas(rd, Ipa(0), Ipa(0x20_0000)), rtt(1));
    m.rtt_create(rd, g(0), Ipa(0), 2).unwrap();
    assert_eq!(
        m.rtt_init_ripas(rd, Ipa(0), Ipa(0x40_0000)),
        Ok(Ipa(0x40_0000))
    );
    let e = m.rtt_read_entry(rd, Ipa(0x20_0000), 2).unwrap();
    assert_eq!(e.ripas(), Some(Ripas::Ram));
    // Beyond the protected half.
    assert_eq!(
        m.rtt_init_ripas(rd, Ipa(0), Ipa(1 << 40)),
        Err(RmiError::input())
    );
    m.realm_activate(rd).unwrap();
    assert_eq!(
        m.rtt_init_ripas(rd, Ipa(0), Ipa(0x20_0000)),
        Err(RmiError::new(ErrorStatus::Realm, 0))
    );
}

#[test]
fn set_ripas_follows_the_request() {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    let rec = realm
        .rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true)
        .unwrap();
    let page = alloc.data_page().unwrap();
    realm
        .map_unknown(&mut rmi, &mut alloc, Ipa(0x1000), page)
        .unwrap();
    realm.activate(&mut rmi).unwrap();
    let rd = realm.rd();
    assert_eq!(
        rmi.rtt_set_ripas(rd, rec.pa(), Ipa(0x1000), Ipa(0x3000)),
        Err(RmiError::input()),
        "no request"
    );
    m.borrow_mut()
        .rmm
        .exits
        .push_back(kvm_rme::model::ScriptedExit {
            reason: kvm_rme::abi::exit_reason::RIPAS_CHANGE,
            esr: 0,
            far: 0,
            hpfar: 0,
            gprs: [0; 7],
            ripas: (0x1000, 0x3000, Ripas::Empty as u8),
            imm: 0,
        });
    let mut run = Box::<kvm_rme::abi::RecRun>::default();
    rmi.rec_enter(rec.pa(), &mut run).unwrap();
    assert_eq!(
        rmi.rtt_set_ripas(rd, rec.pa(), Ipa(0x2000), Ipa(0x3000)),
        Err(RmiError::input()),
        "wrong base"
    );
    // A shorter top first: the RMM goes no further than the host asks.
    assert_eq!(
        rmi.rtt_set_ripas(rd, rec.pa(), Ipa(0x1000), Ipa(0x2000)),
        Ok(Ipa(0x2000))
    );
    // The rest of the range in one call: every entry of the level-3
    // table that lies in it.
    assert_eq!(
        rmi.rtt_set_ripas(rd, rec.pa(), Ipa(0x2000), Ipa(0x3000)),
        Ok(Ipa(0x3000))
    );
    assert_eq!(
        rmi.rtt_set_ripas(rd, rec.pa(), Ipa(0x3000), Ipa(0x3000)),
        Err(RmiError::input()),
        "past the request"
    );
    for ipa in [0x1000, 0x2000] {
        let e = rmi.rtt_read_entry(rd, Ipa(ipa), 3).unwrap();
        assert_eq!(e.ripas(), Some(Ripas::Empty));
    }
    realm.rec_destroy(&mut rmi, &mut alloc, rec).unwrap();
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
    let _ = (
        RealmConfig::new(40, 0),
        undelegate::<kvm_rme::model::ModelRmi>,
    );
}
