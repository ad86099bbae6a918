// SPDX-License-Identifier: GPL-2.0
//! RMI call counts of the realm logic against the RMM model, per 4 KiB of
//! guest memory: populating 1 GiB (measured), faulting in 1 GiB of private
//! memory (with and without 2 MiB folds), RTT pages held per GiB mapped,
//! and the calls to tear 1 GiB down.  Counts, not time: they are the same
//! on every machine.
//!
//!     cargo run --release -p kvm_rme --example rmi_counters --features model
//!
//! `KVM_RME_MODEL_RMI=2.0` runs it against the model's RMI 2.0
//! personality (TF-RMM v0.9.0's answers: one granule per range call).

use kvm_rme::abi::Command;
use kvm_rme::abi::Ipa;
use kvm_rme::logic::granule::{GranuleAlloc, Undelegated};
use kvm_rme::logic::realm::{Realm, RealmConfig};
use kvm_rme::logic::rmi::CallCounts;
use kvm_rme::model::{machine, ModelAlloc, ModelRmi, Shared};

const GIB: u64 = 1 << 30;
const PAGES: u64 = GIB / 4096;
const BASE: u64 = GIB; // guest RAM at 1 GiB, as QEMU's virt machine

fn counts(m: &Shared) -> CallCounts {
    m.borrow().rmm.counts.clone()
}

fn report(name: &str, d: &CallCounts) {
    let total = d.total();
    println!(
        "{name}: {total} RMI calls, {:.4} per 4 KiB page",
        total as f64 / PAGES as f64
    );
    for (c, n) in d.iter() {
        println!("    {:<22} {n}", c.name().to_str().unwrap_or("?"));
    }
}

fn setup() -> (ModelRmi, ModelAlloc, Shared, Realm) {
    let (mut rmi, mut alloc, m) = machine(3 * GIB);
    let realm = Realm::create(&mut rmi, &mut alloc, &RealmConfig::new(40, 1)).expect("realm");
    (rmi, alloc, m, realm)
}

fn teardown(name: &str, mut rmi: ModelRmi, mut alloc: ModelAlloc, m: Shared, mut realm: Realm) {
    let before = counts(&m);
    realm.destroy(&mut rmi, &mut alloc).expect("destroy");
    report(name, &counts(&m).since(&before));
    let mm = m.borrow();
    assert!(mm.host.violations.is_empty());
    assert_eq!(mm.rmm.not_undelegated(), 0);
}

fn main() {
    let v = kvm_rme::model::model_version();
    println!("RMM model speaking RMI {}.{}", v.major, v.minor);
    // 1. Populate 1 GiB, measured, before activation.
    let (mut rmi, mut alloc, m, mut realm) = setup();
    let before = counts(&m);
    realm
        .init_ripas(&mut rmi, &mut alloc, Ipa(BASE), Ipa(BASE + GIB))
        .expect("ripas");
    let src = alloc.alloc().expect("src");
    for i in 0..PAGES {
        let page = alloc.data_page().expect("memory");
        realm
            .populate(
                &mut rmi,
                &mut alloc,
                Ipa(BASE + i * 4096),
                page,
                src.pa(),
                true,
            )
            .expect("populate");
    }
    let d = counts(&m).since(&before);
    report("populate 1 GiB (INIT_RIPAS + measured DATA_CREATE / RTT_DATA_MAP_INIT)", &d);
    println!(
        "    RTT pages held: {} (start level included: {})",
        realm.stats().rtt_pages,
        realm.geometry().num_start
    );
    alloc.free(src);
    teardown("teardown after populate", rmi, alloc, m, realm);

    // 2. Fault in 1 GiB at run time, 2 MiB folios folded into blocks.
    let (mut rmi, mut alloc, m, mut realm) = setup();
    realm.activate(&mut rmi).expect("activate");
    let before = counts(&m);
    for block in 0..GIB / (2 << 20) {
        let ipa = BASE + block * (2 << 20);
        let run = alloc.data_run(512, 2 << 20).expect("memory");
        for i in 0..512 {
            let page = Undelegated::from_host_page(run.add_pages(i)).expect("aligned");
            realm
                .map_unknown(&mut rmi, &mut alloc, Ipa(ipa + i * 4096), page)
                .expect("map");
        }
        assert!(realm.fold(&mut rmi, &mut alloc, Ipa(ipa), 3).expect("fold"));
    }
    let d = counts(&m).since(&before);
    report("fault in 1 GiB (DATA_CREATE_UNKNOWN / RTT_DATA_MAP, folded to 2 MiB)", &d);
    let per_page = d.total() as f64 / PAGES as f64;
    println!(
        "    floor with one granule per call: 2 per page + 1/512 for RTTs = {:.4}; this is {:.2}% above",
        2.0 + 1.0 / 512.0,
        (per_page / (2.0 + 1.0 / 512.0) - 1.0) * 100.0
    );
    println!(
        "    RTT pages held per GiB mapped: {} (of which start level: {})",
        realm.stats().rtt_pages,
        realm.geometry().num_start
    );
    teardown(
        "teardown of 1 GiB of folded private memory",
        rmi,
        alloc,
        m,
        realm,
    );

    // 3. The same without folding (4 KiB mappings only).
    let (mut rmi, mut alloc, m, mut realm) = setup();
    realm.activate(&mut rmi).expect("activate");
    let before = counts(&m);
    for i in 0..PAGES {
        let page = alloc.data_page().expect("memory");
        realm
            .map_unknown(&mut rmi, &mut alloc, Ipa(BASE + i * 4096), page)
            .expect("map");
    }
    let d = counts(&m).since(&before);
    report("fault in 1 GiB (4 KiB pages, no fold)", &d);
    println!(
        "    RTT pages held per GiB mapped: {}",
        realm.stats().rtt_pages
    );
    let _ = Command::ALL;
    teardown(
        "teardown of 1 GiB of 4 KiB private memory",
        rmi,
        alloc,
        m,
        realm,
    );
}
