// SPDX-License-Identifier: GPL-2.0
//! Helpers shared by the host tests.
#![allow(dead_code)]

use kvm_rme::abi::Pa;
use kvm_rme::logic::granule::{delegate, Delegated, GranuleAlloc};
use kvm_rme::logic::realm::{Realm, RealmConfig};
use kvm_rme::model::{machine, ModelAlloc, ModelRmi, Shared};

/// A machine with 64 MiB of host memory.
pub fn small() -> (ModelRmi, ModelAlloc, Shared) {
    machine(64 << 20)
}

/// A delegated granule fresh from the allocator.
pub fn delegated(rmi: &mut ModelRmi, alloc: &mut ModelAlloc) -> Delegated {
    let p = alloc.alloc().expect("memory");
    delegate(rmi, p).expect("delegate")
}

/// A NEW realm with `ipa_bits`.
pub fn new_realm(rmi: &mut ModelRmi, alloc: &mut ModelAlloc, ipa_bits: u8) -> Realm {
    Realm::create(rmi, alloc, &RealmConfig::new(ipa_bits, 1)).expect("realm")
}

/// No page left the logic's hands in a bad state; everything returned.
pub fn assert_clean(m: &Shared) {
    let m = m.borrow();
    assert!(
        m.host.violations.is_empty(),
        "violations: {:?}",
        m.host.violations
    );
    assert_eq!(m.rmm.not_undelegated(), 0, "granules still delegated");
    assert_eq!(m.host.outstanding, 0, "pages not returned to the host");
}

/// The command the logic delegates one granule with on the model's version
/// (no borrow of the machine, so it can name a failure to inject).
pub fn delegate_cmd() -> kvm_rme::abi::Command {
    if kvm_rme::model::model_version().major >= 2 {
        kvm_rme::abi::Command::GranuleRangeDelegate
    } else {
        kvm_rme::abi::Command::GranuleDelegate
    }
}

/// As [`delegate_cmd`], for undelegation.
pub fn undelegate_cmd() -> kvm_rme::abi::Command {
    if kvm_rme::model::model_version().major >= 2 {
        kvm_rme::abi::Command::GranuleRangeUndelegate
    } else {
        kvm_rme::abi::Command::GranuleUndelegate
    }
}

/// Whether the model speaks 2.0.
pub fn v2() -> bool {
    kvm_rme::model::model_version().major >= 2
}

/// Delegates the granule at `pa` with the command of the model's
/// version, bypassing the logic (for tests that break the rules).
pub fn raw_delegate(rmi: &mut ModelRmi, pa: Pa) -> kvm_rme::abi::RmiResult {
    use kvm_rme::logic::rmi::Rmi;
    if rmi.abi().major >= 2 {
        rmi.granule_range_delegate(pa, pa.add_pages(1)).map(|_| ())
    } else {
        rmi.granule_delegate(pa)
    }
}

/// A source page (normal world) for populate.
pub fn src(alloc: &mut ModelAlloc) -> Pa {
    alloc.alloc().expect("memory").pa()
}
