// SPDX-License-Identifier: GPL-2.0
//! RMI 2.0 against the RMM model's 2.0 personality, command by command
//! (TF-RMM v0.9.0's answers), and the realm logic driving it: activation,
//! one-granule range calls, `RTT_DATA_MAP`/`UNMAP`, and `REC_CREATE`/
//! `REC_DESTROY` as stateful operations, their failure paths included.
//! These run whatever `KVM_RME_MODEL_RMI` says; the other suites run
//! under both versions.

mod common;

use common::assert_clean;
use kvm_rme::abi::v2::DonateReq;
use kvm_rme::abi::{Command, ErrorStatus, Ipa, Pa, RmiError, RmiVersion};
use kvm_rme::logic::granule::GranuleAlloc;
use kvm_rme::logic::probe::{probe, Probe};
use kvm_rme::logic::realm::{Realm, RealmConfig, RealmError};
use kvm_rme::logic::rmi::{RecCreate, Rmi, Sro, SroStep};
use kvm_rme::model::{machine_speaking, GranuleState, RmmModel};

const BASE: u64 = 0x8000_0000;

fn rmm2() -> RmmModel {
    let mut m = RmmModel::new(BASE, 64 << 20);
    m.speak(RmiVersion::V2_0);
    m
}

fn err<T>(s: ErrorStatus) -> Result<T, RmiError> {
    Err(RmiError::new(s, 0))
}

fn g(i: u64) -> Pa {
    Pa(BASE + 0x10_0000).add_pages(i)
}

#[test]
fn nothing_but_version_and_features_before_activation() {
    let mut m = rmm2();
    let r = m.version(RmiVersion::V1_0);
    assert_eq!(r.status, Err(RmiError::input()), "1.0 is not implemented");
    assert_eq!(
        (r.info.lower, r.info.higher),
        (RmiVersion::V2_0, RmiVersion::V2_0)
    );
    assert!(m.version(RmiVersion::V2_0).status.is_ok());
    assert!(m.features(0).is_ok() && m.features(1).is_ok());
    assert_eq!(
        m.granule_range_delegate(g(0), g(1)),
        err(ErrorStatus::Global)
    );
    assert_eq!(m.realm_activate(g(0)), err(ErrorStatus::Global));
    m.rmm_config_set().unwrap();
    m.rmm_activate().unwrap();
    assert_eq!(m.rmm_activate(), err(ErrorStatus::Global), "once");
    assert_eq!(
        m.rmm_config_set(),
        err(ErrorStatus::Global),
        "before activation only"
    );
    assert_eq!(m.granule_range_delegate(g(0), g(1)), Ok(g(1)));
}

#[test]
fn one_point_zero_commands_are_not_supported() {
    let mut m = rmm2();
    m.rmm_activate().unwrap();
    let ns = err(ErrorStatus::NotSupported);
    assert_eq!(m.granule_delegate(g(0)), ns);
    assert_eq!(m.granule_undelegate(g(0)), ns);
    assert_eq!(m.data_create_unknown(g(0), g(1), Ipa(0)), ns);
    assert_eq!(m.data_destroy(g(0), Ipa(0)).map(|_| ()), ns);
    assert_eq!(m.rec_aux_count(g(0)).map(|_| ()), ns);
    // And the other way round.
    let mut m1 = RmmModel::new(BASE, 64 << 20);
    assert_eq!(m1.granule_range_delegate(g(0), g(1)).map(|_| ()), ns);
    assert_eq!(m1.rmm_activate(), ns);
    assert_eq!(m1.op_continue(0).map(|_| ()), ns);
}

#[test]
fn range_delegation_stops_where_the_rmm_does() {
    let mut m = rmm2();
    m.rmm_activate().unwrap();
    // TF-RMM v0.9.0: one granule per call, whatever the range.
    assert_eq!(m.granule_range_delegate(g(0), g(8)), Ok(g(1)));
    // A model that takes more: the range up to its limit.
    m.range_chunk = 3;
    assert_eq!(m.granule_range_delegate(g(1), g(8)), Ok(g(4)));
    // It stops at the first granule it cannot delegate.
    assert_eq!(m.granule_range_delegate(g(2), g(8)), Err(RmiError::input()));
    assert_eq!(m.granule_range_delegate(g(4), g(6)), Ok(g(6)));
    assert_eq!(m.count_state(GranuleState::Delegated), 6);
    // Unaligned or empty ranges.
    assert_eq!(
        m.granule_range_delegate(Pa(g(9).0 + 8), g(10)),
        Err(RmiError::input())
    );
    assert_eq!(m.granule_range_delegate(g(9), g(9)), Err(RmiError::input()));
    assert_eq!(m.granule_range_undelegate(g(0), g(6)), Ok(g(3)));
    assert_eq!(m.granule_range_undelegate(g(3), g(6)), Ok(g(6)));
    assert_eq!(m.not_undelegated(), 0);
}

/// A NEW realm on an activated 2.0 machine, and its handles.
fn realm2() -> (
    kvm_rme::model::ModelRmi,
    kvm_rme::model::ModelAlloc,
    kvm_rme::model::Shared,
    Realm,
) {
    let (mut rmi, mut alloc, m) = machine_speaking(64 << 20, RmiVersion::V2_0, true);
    let realm = Realm::create(&mut rmi, &mut alloc, &RealmConfig::new(40, 1)).expect("realm");
    (rmi, alloc, m, realm)
}

#[test]
fn the_logic_speaks_only_two_point_zero() {
    let (mut rmi, mut alloc, m, mut realm) = realm2();
    let page = alloc.data_page().unwrap();
    realm
        .map_unknown(&mut rmi, &mut alloc, Ipa(0x20_0000), page)
        .unwrap();
    let src = alloc.alloc().unwrap().pa();
    let page = alloc.data_page().unwrap();
    realm
        .populate(&mut rmi, &mut alloc, Ipa(0x40_0000), page, src, true)
        .unwrap();
    let r0 = realm
        .rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true)
        .unwrap();
    realm
        .rec_destroy(&mut rmi, &mut alloc, r0)
        .map_err(|(_, e)| e)
        .unwrap();
    realm
        .unmap_private(&mut rmi, &mut alloc, Ipa(0), Ipa(0x80_0000))
        .unwrap();
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    let c = m.borrow().rmm.counts.clone();
    for cmd in Command::ALL {
        if !cmd.in_version(RmiVersion::V2_0) {
            assert_eq!(c.get(cmd), 0, "{cmd:?} is a 1.0 command");
        }
    }
    // Each map is tried again once after the RTTs it needed were made.
    assert_eq!(c.get(Command::RttDataMap), 2);
    assert_eq!(c.get(Command::DataCreate), 2, "RTT_DATA_MAP_INIT");
    assert!(c.get(Command::RttDataUnmap) >= 2);
    assert!(c.get(Command::OpMemDonate) >= 1 && c.get(Command::OpMemReclaim) >= 1);
    alloc.free(kvm_rme::logic::granule::Undelegated::from_host_page(src).unwrap());
    assert_clean(&m);
}

#[test]
fn rec_create_is_a_stateful_operation() {
    let (mut rmi, mut alloc, m, realm) = realm2();
    let rd = realm.rd();
    let rec = common::delegated(&mut rmi, &mut alloc).hand_over();
    let p = RecCreate {
        runnable: true,
        mpidr: 0,
        pc: 0,
        gprs: [0; 8],
        aux: [Pa(0); 16],
        num_aux: 0,
    };
    let aux = m.borrow().rmm.aux_count as u16;
    let Ok(Sro::Incomplete {
        handle,
        next: SroStep::Donate(req),
        can_cancel,
    }) = rmi.rec_create(rd, rec, &p)
    else {
        panic!("REC_CREATE must ask for memory");
    };
    assert_eq!(
        req,
        DonateReq {
            blk_size: 0,
            count: aux,
            contiguous: false,
            undelegated: false
        }
    );
    assert!(!can_cancel, "TF-RMM v0.9.0 cannot cancel REC operations");
    assert_eq!(rmi.op_cancel(handle), Err(RmiError::input()));
    // Only the step asked for is accepted, and only for this handle.
    assert_eq!(rmi.op_continue(handle).map(|_| ()), Err(RmiError::input()));
    assert_eq!(
        rmi.op_mem_donate(handle + 1, &[]).map(|_| ()),
        Err(RmiError::input())
    );
    // An undelegated granule is refused.
    let ns = alloc.alloc().unwrap();
    assert_eq!(
        rmi.op_mem_donate(handle, &[ns.pa()]).map(|_| ()),
        Err(RmiError::input())
    );
    alloc.free(ns);
    // Another object waits: REC_DESTROY is BLOCKED meanwhile.
    assert_eq!(
        rmi.rec_destroy(rec).map(|_| ()),
        Err(RmiError::new(ErrorStatus::Blocked, 0))
    );
    let a: Vec<Pa> = (0..aux)
        .map(|_| common::delegated(&mut rmi, &mut alloc).hand_over())
        .collect();
    let (n, s) = rmi.op_mem_donate(handle, &a[..1]).unwrap();
    assert_eq!(n, 1);
    assert!(matches!(s, Sro::Incomplete { next: SroStep::Donate(r), .. } if r.count == aux - 1));
    let (n, s) = rmi.op_mem_donate(handle, &a[1..]).unwrap();
    assert_eq!(n, a.len() - 1);
    assert!(matches!(
        s,
        Sro::Incomplete {
            next: SroStep::Continue,
            ..
        }
    ));
    assert_eq!(rmi.op_continue(handle), Ok(Sro::Done));
    assert_eq!(m.borrow().rmm.granule(rec), GranuleState::Rec);
    assert_eq!(
        m.borrow().rmm.count_state(GranuleState::RecAux),
        u64::from(aux)
    );
    // REC_DESTROY gives the auxiliary granules back, delegated.
    let Ok(Sro::Incomplete {
        handle,
        next: SroStep::Reclaim,
        ..
    }) = rmi.rec_destroy(rec)
    else {
        panic!("REC_DESTROY must reclaim");
    };
    let mut out = [Pa(0); 16];
    let (n, s) = rmi.op_mem_reclaim(handle, &mut out[..1]).unwrap();
    assert_eq!((n, out[0]), (1, a[0]));
    assert!(matches!(
        s,
        Sro::Incomplete {
            next: SroStep::Reclaim,
            ..
        }
    ));
    let (n, s) = rmi.op_mem_reclaim(handle, &mut out).unwrap();
    assert_eq!(n, a.len() - 1);
    assert!(matches!(
        s,
        Sro::Incomplete {
            next: SroStep::Continue,
            ..
        }
    ));
    assert_eq!(rmi.op_continue(handle), Ok(Sro::Done));
    assert_eq!(m.borrow().rmm.granule(rec), GranuleState::Delegated);
    assert_eq!(m.borrow().rmm.count_state(GranuleState::RecAux), 0);
}

#[test]
fn a_rec_out_of_mpidr_order_is_refused_after_its_memory_came_back() {
    let (mut rmi, mut alloc, m, mut realm) = realm2();
    // The RMM checks the order only at the last OP_CONTINUE; the logic
    // takes the granules back and reports the refusal as the REC's.
    let e = realm
        .rec_create(&mut rmi, &mut alloc, 1, 0, [0; 8], true)
        .unwrap_err();
    assert_eq!(
        e,
        RealmError::Rmi {
            cmd: Command::RecCreate,
            err: RmiError::input()
        }
    );
    assert_eq!(e.errno(), kvm_rme::cvm_fw::errno::EINVAL);
    assert_eq!(realm.stats().leaked, 0);
    assert!(m.borrow().rmm.counts.get(Command::OpMemReclaim) >= 1);
    assert!(!m.borrow().rmm.sro_in_progress());
    // In order, they are created.
    let r0 = realm
        .rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true)
        .unwrap();
    let r1 = realm
        .rec_create(&mut rmi, &mut alloc, 1, 0, [0; 8], false)
        .unwrap();
    realm
        .rec_destroy(&mut rmi, &mut alloc, r1)
        .map_err(|(_, e)| e)
        .unwrap();
    realm
        .rec_destroy(&mut rmi, &mut alloc, r0)
        .map_err(|(_, e)| e)
        .unwrap();
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
}

#[test]
fn a_rec_operation_the_rmm_fails_keeps_its_granules_counted() {
    // A donation the RMM refuses mid-way cannot be cancelled (v0.9.0):
    // the REC and what it holds are leaked, counted, never freed.
    let (mut rmi, mut alloc, m, mut realm) = realm2();
    let refusal = (Command::OpMemDonate, RmiError::new(ErrorStatus::Unknown(0x7f), 0));
    // One refusal is tried again and passes...
    m.borrow_mut().rmm.fail_next.push(refusal);
    let r0 = realm.rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true).unwrap();
    realm.rec_destroy(&mut rmi, &mut alloc, r0).map_err(|(_, e)| e).unwrap();
    // ...one that lasts is not.
    for _ in 0..kvm_rme::logic::granule::TEARDOWN_TRIES {
        m.borrow_mut().rmm.fail_next.push(refusal);
    }
    let e = realm
        .rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true)
        .unwrap_err();
    assert!(
        matches!(
            e,
            RealmError::Rmi {
                cmd: Command::OpMemDonate,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(realm.stats().leaked, 1, "the REC granule");
    assert!(m.borrow().host.violations.is_empty());
    // BUSY is retried.
    let (mut rmi, mut alloc, m, mut realm) = realm2();
    m.borrow_mut()
        .rmm
        .fail_next
        .push((Command::RecCreate, RmiError::new(ErrorStatus::Busy, 0)));
    m.borrow_mut()
        .rmm
        .fail_next
        .push((Command::OpContinue, RmiError::new(ErrorStatus::Busy, 0)));
    let r0 = realm
        .rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true)
        .unwrap();
    realm
        .rec_destroy(&mut rmi, &mut alloc, r0)
        .map_err(|(_, e)| e)
        .unwrap();
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
}

#[test]
fn rtt_data_unmap_reports_what_it_skipped() {
    let (mut rmi, mut alloc, m, mut realm) = realm2();
    let rd = realm.rd();
    let page = alloc.data_page().unwrap();
    let pa = page.pa();
    realm
        .map_unknown(&mut rmi, &mut alloc, Ipa(0x20_3000), page)
        .unwrap();
    // Before the page: nothing live, skip to it.
    let u = rmi
        .rtt_data_unmap(rd, Ipa(0x20_0000), Ipa(0x40_0000))
        .unwrap();
    assert_eq!((u.pa, u.top), (None, Ipa(0x20_3000)));
    let u = rmi
        .rtt_data_unmap(rd, Ipa(0x20_3000), Ipa(0x40_0000))
        .unwrap();
    // Nothing live after it in this table: the table's end.
    assert_eq!((u.pa, u.top), (Some(pa), Ipa(0x40_0000)));
    assert_eq!(
        m.borrow().rmm.granule(pa),
        GranuleState::Delegated,
        "unmapped, still delegated"
    );
    assert_eq!(
        rmi.rtt_data_unmap(rd, Ipa(0x20_3000), Ipa(0x20_3000))
            .map(|_| ()),
        Err(RmiError::input())
    );
    // Data map of one granule only.
    assert_eq!(
        rmi.rtt_data_map(rd, Ipa(0x20_3000), Ipa(0x20_3000), pa),
        Err(RmiError::input())
    );
    assert_eq!(
        rmi.rtt_data_map(rd, Ipa(0x20_3000), Ipa(0x20_5000), pa),
        Ok(Ipa(0x20_4000))
    );
    realm.destroy(&mut rmi, &mut alloc).unwrap();
    assert_clean(&m);
}

#[test]
fn the_probe_picks_two_point_zero_and_activates() {
    let (mut rmi, _alloc, m) = machine_speaking(16 << 20, RmiVersion::V2_0, false);
    let p = probe(&mut rmi, true);
    let Probe::Ready {
        version, features, ..
    } = p
    else {
        panic!("{p:?}");
    };
    assert_eq!(version, RmiVersion::V2_0);
    assert!(features.hash_sha256 && features.hash_sha512);
    let c = m.borrow().rmm.counts.clone();
    assert_eq!(
        (c.get(Command::RmmConfigSet), c.get(Command::RmmActivate)),
        (1, 1)
    );
    assert_eq!(c.get(Command::Version), 1, "asked for 2.0 first");
    // A second probe (kexec, a module reloaded) finds it activated.
    assert!(probe(&mut rmi, true).ready());
    // A 1.0 RMM is asked twice: 2.0 first, then the 1.0 it offers.
    let (mut rmi, _alloc, m) = machine_speaking(16 << 20, RmiVersion::V1_0, false);
    assert!(matches!(
        probe(&mut rmi, true),
        Probe::Ready {
            version: RmiVersion::V1_0,
            ..
        }
    ));
    assert_eq!(m.borrow().rmm.counts.get(Command::Version), 2);
    assert_eq!(m.borrow().rmm.counts.get(Command::RmmActivate), 0);
    // An activation refused for another reason disables realms.
    let (mut rmi, _alloc, m) = machine_speaking(16 << 20, RmiVersion::V2_0, false);
    m.borrow_mut()
        .rmm
        .fail_next
        .push((Command::RmmActivate, RmiError::input()));
    assert!(matches!(probe(&mut rmi, true), Probe::ActivationFailed(..)));
}
