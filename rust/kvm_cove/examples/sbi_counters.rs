// SPDX-License-Identifier: GPL-2.0
//! COVH calls and global fences per MiB of TVM memory, against the TSM
//! model: measuring an image, then faulting in memory with zero pages,
//! with the batching pool (512 pages per conversion) against converting
//! and fencing every page (batch of 1, what the RFC code did).
//!
//!     cargo run --release -p kvm_cove --example sbi_counters --features model

use kvm_cove::abi::Covh;
use kvm_cove::abi::Gpa;
use kvm_cove::logic::pool::{PageAlloc, Plain, Pool};
use kvm_cove::logic::tsm::CallCounts;
use kvm_cove::logic::tvm::{check_tsm, Tvm};
use kvm_cove::model::{machine, Shared};

const RAM: u64 = 0x8000_0000;
const MIB: u64 = 1 << 20;

fn counts(m: &Shared) -> CallCounts {
    m.borrow().tsm.counts.clone()
}

fn report(name: &str, d: &CallCounts, mib: f64) {
    println!(
        "{name}: {} COVH calls, {:.2} per MiB; global fences {:.3} per MiB",
        d.total(),
        d.total() as f64 / mib,
        d.get(Covh::TsmInitiateFence) as f64 / mib
    );
    for (f, n) in d.iter() {
        println!("    {f:?}: {n}");
    }
}

fn run(batch: u64, blocks: bool, image_mib: u64, fault_kib: u64) {
    let fault_mib = fault_kib as f64 / 1024.0;
    let (mut t, mut a, _n, m) = machine(4 << 30);
    let info = check_tsm(&mut t).expect("TSM");
    let pool = if batch == 1 {
        Pool::fixed(1)
    } else {
        Pool::new(batch)
    };
    let mut tvm = Tvm::create_with_pool(&mut t, &mut a, &info, pool).expect("create");
    let c0 = counts(&m);
    tvm.add_region(&mut t, &mut a, Gpa(RAM), image_mib * MIB + fault_kib * 1024)
        .expect("region");
    // An image, measured page by page.
    let src = a.alloc_contiguous(1).expect("src");
    for i in 0..(image_mib * MIB / 4096) {
        tvm.measure_page(&mut t, &mut a, Gpa(RAM + i * 4096), src)
            .expect("measure");
    }
    tvm.create_vcpu(&mut t, &mut a, 0).expect("vcpu");
    let d = counts(&m).since(&c0);
    if image_mib > 0 {
        report(
            &format!("[batch {batch}] region + measure {image_mib} MiB"),
            &d,
            image_mib as f64,
        );
    }
    tvm.finalize(&mut t, RAM, 0).expect("finalize");
    // Fault in the rest.
    let c1 = counts(&m);
    let mut gpa = RAM + image_mib * MIB;
    while gpa < RAM + image_mib * MIB + fault_kib * 1024 {
        tvm.map_zero(&mut t, &mut a, Gpa(gpa), blocks)
            .expect("fault");
        gpa += if blocks { 2 * MIB } else { 4096 };
    }
    let d = counts(&m).since(&c1);
    report(
        &format!(
            "[batch {batch}{}] fault in {fault_mib} MiB",
            if blocks { ", 2 MiB blocks" } else { "" }
        ),
        &d,
        fault_mib,
    );
    let c2 = counts(&m);
    tvm.destroy(&mut t, &mut a).expect("destroy");
    let d = counts(&m).since(&c2);
    let total = image_mib as f64 + fault_mib;
    report(
        &format!("[batch {batch}] destroy + reclaim {total} MiB"),
        &d,
        total,
    );
    a.free(Plain::from_host_page(src).expect("page"));
    let mm = m.borrow();
    assert!(mm.host.violations.is_empty());
    assert_eq!(mm.tsm.confidential_pages(), 0);
}

fn main() {
    // The batching pool: 2 MiB batches, growing with the TVM.
    run(512, false, 16, 1008 * 1024);
    run(512, true, 16, 1008 * 1024);
    // Converting and fencing each page (the RFC's scheme), on a small TVM
    // (its batch table holds 512 single pages).
    run(1, false, 0, 128);
}
