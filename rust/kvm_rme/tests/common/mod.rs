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

/// A source page (normal world) for populate.
pub fn src(alloc: &mut ModelAlloc) -> Pa {
    alloc.alloc().expect("memory").pa()
}
