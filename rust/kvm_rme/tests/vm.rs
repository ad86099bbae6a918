// SPDX-License-Identifier: GPL-2.0
//! The realm-VM uAPI state machine against the RMM model.

mod common;

use common::*;
use kvm_rme::abi::RmiError;
use kvm_rme::abi::{Command, HashAlgo};
use kvm_rme::cvm_fw::errno;
use kvm_rme::logic::realm::RealmError;

// The uAPI's errnos as the typed errors that carry them.
const EEXIST: RealmError = RealmError::Exists;
const EINVAL: RealmError = RealmError::Invalid;
const EPERM: RealmError = RealmError::State;
use kvm_rme::logic::vm::{self, ConfigItem, RealmVm, CONFIG_SIZE, RANGE_SIZE};
use kvm_rme::model::ModelRealmState;

fn features() -> kvm_rme::abi::Features0 {
    kvm_rme::model::RmmModel::new(0, 0).features
}

#[test]
fn vm_type_checks() {
    let f = features();
    assert_eq!(vm::check_vm_type(1 << 8, true, &f), Ok(40));
    assert_eq!(vm::check_vm_type((1 << 8) | 44, true, &f), Ok(44));
    assert_eq!(
        vm::check_vm_type(1 << 8, false, &f),
        Err(EINVAL),
        "realms disabled"
    );
    // QEMU's probe: the host's largest size is accepted at creation; only
    // CREATE_REALM needs a geometry this host serves (48 bits at most).
    let mut lpa2 = f;
    lpa2.max_ipa_bits = 52;
    assert_eq!(vm::check_vm_type((1 << 8) | 52, true, &lpa2), Ok(52));
    assert_eq!(
        vm::check_vm_type((1 << 8) | 52, true, &f),
        if f.max_ipa_bits >= 52 {
            Ok(52)
        } else {
            Err(EINVAL)
        },
        "beyond the RMM"
    );
    assert_eq!(vm::check_vm_type((1 << 8) | 20, true, &f), Err(EINVAL));
    assert_eq!(
        vm::check_vm_type((1 << 8) | (1 << 31), true, &f),
        Err(EINVAL),
        "protected and realm"
    );
    let mut small = f;
    small.max_ipa_bits = 40;
    assert_eq!(
        vm::check_vm_type((1 << 8) | 44, true, &small),
        Err(EINVAL),
        "beyond the RMM's S2SZ"
    );
}

#[test]
fn argument_parsing() {
    let mut c = [0u8; CONFIG_SIZE];
    c[0] = 1;
    c[4] = 1;
    assert_eq!(vm::parse_config(&c), Ok(ConfigItem::Hash(HashAlgo::Sha512)));
    c[4] = 2;
    assert_eq!(vm::parse_config(&c), Err(EINVAL));
    c[0] = 0;
    c[4] = 0xaa;
    c[67] = 0x55;
    let Ok(ConfigItem::Rpv(rpv)) = vm::parse_config(&c) else {
        panic!()
    };
    assert_eq!((rpv[0], rpv[63]), (0xaa, 0x55));
    c[0] = 7;
    assert_eq!(vm::parse_config(&c), Err(EINVAL));
    let mut r = [0u8; RANGE_SIZE];
    r[0..8].copy_from_slice(&0x4000_0000u64.to_le_bytes());
    r[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
    assert_eq!(vm::parse_init_ripas(&r), Ok((0x4000_0000, 0x20_0000)));
    r[24] = 1;
    assert_eq!(
        vm::parse_init_ripas(&r),
        Err(EINVAL),
        "reserved words must be zero"
    );
}

#[test]
fn lifecycle_order_and_errnos() {
    let (mut rmi, mut alloc, m) = small();
    let mut vmid = 0u16;
    let mut next = || {
        vmid += 1;
        vmid
    };
    let mut v = RealmVm::new(40, features());
    assert_eq!(
        v.init_ripas(&mut rmi, &mut alloc, 0, 0x1000),
        Err(EPERM),
        "before create"
    );
    assert_eq!(v.activate(&mut rmi), Err(EPERM), "before create");
    v.config(ConfigItem::Hash(HashAlgo::Sha512)).unwrap();
    v.config(ConfigItem::Rpv([7; 64])).unwrap();
    v.create(&mut rmi, &mut alloc, &mut next).unwrap();
    assert_eq!(v.create(&mut rmi, &mut alloc, &mut next), Err(EEXIST));
    assert_eq!(
        v.config(ConfigItem::Hash(HashAlgo::Sha256)),
        Err(EPERM),
        "after create"
    );
    assert_eq!(
        v.init_ripas(&mut rmi, &mut alloc, 0x1001, 0x1000),
        Err(EINVAL)
    );
    assert_eq!(v.init_ripas(&mut rmi, &mut alloc, 0x1000, 0), Err(EINVAL));
    assert_eq!(
        v.init_ripas(&mut rmi, &mut alloc, u64::MAX - 0xfff, 0x2000),
        Err(EINVAL)
    );
    assert_eq!(
        v.init_ripas(&mut rmi, &mut alloc, 0, 1 << 40),
        Err(EINVAL),
        "beyond the protected half"
    );
    v.init_ripas(&mut rmi, &mut alloc, 0x4000_0000, 0x4000_0000 + 0x1000)
        .unwrap();
    v.activate(&mut rmi).unwrap();
    assert_eq!(
        m.borrow().rmm.realm_state(v.realm().unwrap().rd()),
        Some(ModelRealmState::Active)
    );
    assert_eq!(v.activate(&mut rmi), Err(EPERM));
    assert_eq!(
        v.init_ripas(&mut rmi, &mut alloc, 0, 0x1000),
        Err(EPERM),
        "after activate"
    );
    assert_eq!(v.destroy(&mut rmi, &mut alloc), 0);
    assert_clean(&m);
}

#[test]
fn vmid_in_use_is_skipped() {
    let (mut rmi, mut alloc, m) = small();
    let mut a = RealmVm::new(40, features());
    let mut b = RealmVm::new(40, features());
    let mut same = || 5u16;
    a.create(&mut rmi, &mut alloc, &mut same).unwrap();
    if v2() {
        // 2.0: the RMM allocates VMIDs; the host's choice is not used.
        assert_eq!(b.create(&mut rmi, &mut alloc, &mut same), Ok(()));
        b.destroy(&mut rmi, &mut alloc);
        a.destroy(&mut rmi, &mut alloc);
        assert_clean(&m);
        return;
    }
    assert_eq!(
        b.create(&mut rmi, &mut alloc, &mut same),
        Err(RealmError::Busy),
        "every candidate taken"
    );
    let mut n = 5u16;
    let mut next = || {
        n += 1;
        n
    };
    b.create(&mut rmi, &mut alloc, &mut next).unwrap();
    a.destroy(&mut rmi, &mut alloc);
    b.destroy(&mut rmi, &mut alloc);
    assert_clean(&m);
}

#[test]
fn destroy_gives_up_after_retries_and_counts() {
    let (mut rmi, mut alloc, m) = small();
    let mut v = RealmVm::new(40, features());
    v.create(&mut rmi, &mut alloc, &mut || 1).unwrap();
    // Every try of every teardown refused, without progress.
    let refusals = kvm_rme::logic::granule::TEARDOWN_TRIES * kvm_rme::logic::vm::TEARDOWN_STALLS;
    for _ in 0..refusals {
        m.borrow_mut().rmm.fail_next.push((
            Command::RealmDestroy,
            RmiError::new(kvm_rme::abi::ErrorStatus::Realm, 0),
        ));
    }
    // RD and two start RTTs stay with the RMM.
    assert_eq!(v.destroy(&mut rmi, &mut alloc), 3);
    assert!(m.borrow().host.violations.is_empty());
    assert_eq!(m.borrow().rmm.not_undelegated(), 3);
}

#[test]
fn recs_before_activation_only() {
    let (mut rmi, mut alloc, m) = small();
    let mut v = RealmVm::new(40, features());
    assert_eq!(
        v.rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], true)
            .err()
            .map(|e| e.errno()),
        Some(EPERM.errno()),
        "before create"
    );
    v.create(&mut rmi, &mut alloc, &mut || 1).unwrap();
    let r0 = v
        .rec_create(&mut rmi, &mut alloc, 0, 0x8000_0000, [1; 8], true)
        .unwrap();
    assert_eq!(
        v.rec_create(&mut rmi, &mut alloc, 0, 0, [0; 8], false)
            .err()
            .map(|e| e.errno()),
        Some(EINVAL.errno()),
        "same MPIDR"
    );
    let r1 = v
        .rec_create(&mut rmi, &mut alloc, 1, 0, [0; 8], false)
        .unwrap();
    v.activate(&mut rmi).unwrap();
    assert_eq!(
        v.rec_create(&mut rmi, &mut alloc, 2, 0, [0; 8], false)
            .err()
            .map(|e| e.errno()),
        Some(EPERM.errno()),
        "after activate"
    );
    // A REC destroy that fails three times is leaked and counted.
    for _ in 0..3 {
        m.borrow_mut().rmm.fail_next.push((
            Command::RecDestroy,
            RmiError::new(kvm_rme::abi::ErrorStatus::Rec, 0),
        ));
    }
    v.rec_destroy(&mut rmi, &mut alloc, r1);
    v.rec_destroy(&mut rmi, &mut alloc, r0);
    // The leaked REC keeps the realm alive: teardown gives up and counts.
    let leaked = v.destroy(&mut rmi, &mut alloc);
    assert!(leaked >= 1 + 2, "REC + aux granules counted, got {leaked}");
    assert!(m.borrow().host.violations.is_empty());
}

/// Each typed error reaches userspace as the errno the uAPI documents.
#[test]
fn errnos_of_typed_errors() {
    use kvm_rme::abi::RmiError;
    let cases = [
        (RealmError::NoMemory, errno::ENOMEM),
        (RealmError::Invalid, errno::EINVAL),
        (RealmError::State, errno::EPERM),
        (RealmError::Busy, errno::EBUSY),
        (RealmError::Exists, errno::EEXIST),
        (RealmError::Fault, errno::EFAULT),
        (RealmError::Interrupted, errno::EINTR),
        (RealmError::Kernel(errno::EAGAIN), errno::EAGAIN),
        (RealmError::Protocol, errno::EIO),
        (
            RealmError::Rmi {
                cmd: kvm_rme::abi::Command::RttCreate,
                err: RmiError::rtt(2),
            },
            errno::ENXIO,
        ),
        (
            RealmError::Rmi {
                cmd: kvm_rme::abi::Command::DataCreate,
                err: RmiError::input(),
            },
            errno::EINVAL,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.errno(), want, "{e:?}");
    }
}

#[test]
fn psci_complete_argument() {
    use kvm_rme::logic::vm::PsciComplete;
    let mut b = [0u8; PsciComplete::SIZE];
    b[..8].copy_from_slice(&0x8000_0101u64.to_le_bytes());
    b[8..12].copy_from_slice(&(-3i32 as u32).to_le_bytes());
    assert_eq!(
        PsciComplete::parse(&b),
        Ok(PsciComplete {
            target_mpidr: 0x8000_0101,
            status: -3i32 as u32
        })
    );
    for i in 12..PsciComplete::SIZE {
        let mut p = b;
        p[i] = 1;
        assert_eq!(PsciComplete::parse(&p), Err(EINVAL), "padding byte {i}");
    }
}

/// A realm VM of an IPA size this host's RTT geometry cannot serve (QEMU's
/// scratch VM, 52 bits) is created, but its CREATE_REALM fails.
#[test]
fn lpa2_sizes_fail_at_create_realm() {
    let (mut rmi, mut alloc, _m) = small();
    let mut f = features();
    f.max_ipa_bits = 52;
    let bits = vm::check_vm_type((1 << 8) | 52, true, &f).unwrap();
    let mut v = RealmVm::new(bits, f);
    assert_eq!(v.create(&mut rmi, &mut alloc, &mut || 1), Err(EINVAL));
    assert!(v.realm().is_none());
}
