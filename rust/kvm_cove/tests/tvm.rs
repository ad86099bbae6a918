// SPDX-License-Identifier: GPL-2.0
//! The TSM model's checks, and the TVM logic against it.

use kvm_cove::abi::Covh;
use kvm_cove::abi::{Gpa, Pa, PageType, SbiError, TsmInfo, TvmCreateParams};
use kvm_cove::logic::pool::PageAlloc;
use kvm_cove::logic::tsm::{global_fence, Tsm};
use kvm_cove::logic::tvm::{check_tsm, pgt_pages_for, Tvm, TvmError, TvmState};
use kvm_cove::model::{machine, ModelAlloc, ModelNacl, ModelTsm, PageState, Shared, TsmModel};

const BASE: u64 = 0x8000_0000;
const RAM: u64 = 0x8000_0000; // guest RAM GPA

fn tsm() -> TsmModel {
    TsmModel::new(BASE, 64 << 20)
}

fn assert_clean(m: &Shared) {
    let m = m.borrow();
    assert!(m.host.violations.is_empty(), "{:?}", m.host.violations);
    assert_eq!(m.tsm.confidential_pages(), 0, "converted pages left");
    assert_eq!(m.host.outstanding(), 0, "pages not returned");
}

fn new_tvm(t: &mut ModelTsm, a: &mut ModelAlloc, mb: u64) -> Tvm {
    let info = check_tsm(t).unwrap();
    let mut tvm = Tvm::create(t, a, &info, 512).unwrap();
    tvm.add_region(t, a, Gpa(RAM), mb << 20).unwrap();
    tvm
}

#[test]
fn convert_needs_a_fence_and_reclaim_needs_unassigned() {
    let mut m = tsm();
    let pa = Pa(BASE);
    m.convert_pages(pa, 4).unwrap();
    assert_eq!(m.page(pa), PageState::PendingFence);
    assert_eq!(m.convert_pages(pa, 1), Err(SbiError::InvalidAddress));
    // Not usable before the fence.
    let p = TvmCreateParams {
        tvm_page_directory_addr: pa.0,
        tvm_state_addr: BASE + 0x10000,
    };
    assert_eq!(m.create_tvm(&p), Err(SbiError::InvalidAddress));
    assert_eq!(
        m.local_fence(),
        Err(SbiError::Denied),
        "local fence without initiate"
    );
    global_fence(&mut m).unwrap();
    assert_eq!(m.page(pa), PageState::Converted);
    m.convert_pages(Pa(BASE + 0x10000), 4).unwrap();
    global_fence(&mut m).unwrap();
    // A misaligned root.
    let bad = TvmCreateParams {
        tvm_page_directory_addr: BASE + 0x1000,
        tvm_state_addr: BASE + 0x10000,
    };
    assert_eq!(m.create_tvm(&bad), Err(SbiError::InvalidParam));
    let gid = m.create_tvm(&p).unwrap();
    assert_eq!(m.page(pa), PageState::Assigned(gid));
    assert_eq!(
        m.reclaim_pages(pa, 4),
        Err(SbiError::Denied),
        "assigned pages cannot be reclaimed"
    );
    m.destroy_tvm(gid).unwrap();
    m.reclaim_pages(pa, 4).unwrap();
    assert_eq!(m.page(pa), PageState::NonConfidential);
    assert_eq!(m.counts.get(Covh::TsmInitiateFence), 2);
}

#[test]
fn lifecycle_order_is_enforced() {
    let (mut t, mut a, _n, m) = machine(64 << 20);
    let info = check_tsm(&mut t).unwrap();
    let mut tvm = Tvm::create(&mut t, &mut a, &info, 512).unwrap();
    assert_eq!(tvm.state(), TvmState::Initializing);
    assert_eq!(
        tvm.add_region(&mut t, &mut a, Gpa(RAM + 1), 4096),
        Err(TvmError::Invalid)
    );
    tvm.add_region(&mut t, &mut a, Gpa(RAM), 8 << 20).unwrap();
    assert_eq!(
        tvm.add_region(&mut t, &mut a, Gpa(RAM + 0x1000), 4096),
        Err(TvmError::Invalid),
        "overlap"
    );
    assert_eq!(tvm.stats().pgt_pages, pgt_pages_for(RAM, 8 << 20));
    assert_eq!(
        tvm.finalize(&mut t, RAM, 0),
        Err(TvmError::State),
        "no vCPU"
    );
    assert_eq!(
        tvm.map_zero(&mut t, &mut a, Gpa(RAM), false),
        Err(TvmError::State),
        "before finalize"
    );
    let src = a.alloc_contiguous(1).unwrap();
    tvm.measure_page(&mut t, &mut a, Gpa(RAM), src).unwrap();
    assert_eq!(
        tvm.measure_page(&mut t, &mut a, Gpa(0x1000), src),
        Err(TvmError::Invalid),
        "outside regions"
    );
    assert_eq!(
        tvm.measure_page(&mut t, &mut a, Gpa(RAM), src),
        Err(TvmError::Tsm(SbiError::InvalidAddress)),
        "measured twice: Salus's answer for a mapping that exists"
    );
    tvm.create_vcpu(&mut t, &mut a, 0).unwrap();
    assert_eq!(
        tvm.create_vcpu(&mut t, &mut a, 0),
        Err(TvmError::Tsm(SbiError::InvalidParam))
    );
    assert_eq!(tvm.create_vcpu(&mut t, &mut a, 99), Err(TvmError::Invalid));
    tvm.finalize(&mut t, RAM, 0).unwrap();
    assert_eq!(
        tvm.measure_page(&mut t, &mut a, Gpa(RAM + 0x1000), src),
        Err(TvmError::State)
    );
    assert_eq!(tvm.create_vcpu(&mut t, &mut a, 1), Err(TvmError::State));
    tvm.map_zero(&mut t, &mut a, Gpa(RAM + 0x3123), false)
        .unwrap();
    assert_eq!(m.borrow().tsm.mapped(tvm.gid(), RAM + 0x3000), Some(true));
    // A whole block only when the TVM allows them.
    tvm.map_zero(&mut t, &mut a, Gpa(RAM + 0x40_0000), true)
        .unwrap();
    assert_eq!(tvm.stats().zero_pages, 2);
    tvm.set_zero_blocks(true);
    tvm.map_zero(&mut t, &mut a, Gpa(RAM + 0x60_0000), true)
        .unwrap();
    assert_eq!(tvm.stats().zero_pages, 2 + 512);
    let host = a.alloc_contiguous(1).unwrap();
    assert_eq!(
        tvm.map_shared(&mut t, Gpa(RAM), host),
        Err(TvmError::Invalid),
        "confidential GPA"
    );
    tvm.map_shared(&mut t, Gpa(0x1000_0000), host).unwrap();
    assert_eq!(m.borrow().tsm.mapped(tvm.gid(), 0x1000_0000), Some(false));
    tvm.destroy(&mut t, &mut a).unwrap();
    assert_eq!(tvm.destroy(&mut t, &mut a), Err(TvmError::State));
    a.free(kvm_cove::logic::pool::Plain::from_host_page(src).unwrap());
    a.free(kvm_cove::logic::pool::Plain::from_host_page(host).unwrap());
    assert_clean(&m);
}

#[test]
fn pool_converts_in_batches() {
    let (mut t, mut a, _n, m) = machine(64 << 20);
    let mut tvm = new_tvm(&mut t, &mut a, 16);
    let c = &m.borrow().tsm.counts.clone();
    tvm.create_vcpu(&mut t, &mut a, 0).unwrap();
    tvm.finalize(&mut t, RAM, 0).unwrap();
    for i in 0..1024 {
        tvm.map_zero(&mut t, &mut a, Gpa(RAM + i * 4096), false)
            .unwrap();
    }
    let d = m.borrow().tsm.counts.since(c);
    assert_eq!(d.get(Covh::TvmAddZeroPages), 1024);
    // 1024 pages + 2 vCPU pages in 512-page batches: 3 conversions.
    assert!(d.get(Covh::TsmConvertPages) <= 3, "{d:?}");
    assert_eq!(d.get(Covh::TsmInitiateFence), d.get(Covh::TsmConvertPages));
    tvm.destroy(&mut t, &mut a).unwrap();
    assert_clean(&m);
}

#[test]
fn page_tables_must_be_provided() {
    let mut m = tsm();
    m.convert_pages(Pa(BASE), 32).unwrap();
    global_fence(&mut m).unwrap();
    let gid = m
        .create_tvm(&TvmCreateParams {
            tvm_page_directory_addr: BASE,
            tvm_state_addr: BASE + 0x4000,
        })
        .unwrap();
    m.add_memory_region(gid, Gpa(RAM), 4 << 20).unwrap();
    m.create_vcpu(gid, 0, Pa(BASE + 0x8000)).unwrap();
    // No page-table pages yet.
    assert_eq!(
        m.add_measured_pages(
            gid,
            Pa(BASE + 0x10_0000),
            Pa(BASE + 0xa000),
            PageType::Page4K,
            1,
            Gpa(RAM)
        ),
        Err(SbiError::Failed)
    );
    m.add_pgt_pages(gid, Pa(BASE + 0xb000), 3).unwrap();
    m.add_measured_pages(
        gid,
        Pa(BASE + 0x10_0000),
        Pa(BASE + 0xa000),
        PageType::Page4K,
        1,
        Gpa(RAM),
    )
    .unwrap();
    // The source must be non-confidential.
    assert_eq!(
        m.add_measured_pages(
            gid,
            Pa(BASE + 0xe000),
            Pa(BASE + 0xf000),
            PageType::Page4K,
            1,
            Gpa(RAM + 0x1000)
        ),
        Err(SbiError::InvalidAddress)
    );
}

#[test]
fn remove_needs_invalidate_and_fence() {
    let (mut t, mut a, _n, m) = machine(64 << 20);
    let mut tvm = new_tvm(&mut t, &mut a, 4);
    tvm.create_vcpu(&mut t, &mut a, 0).unwrap();
    tvm.finalize(&mut t, RAM, 0).unwrap();
    tvm.map_zero(&mut t, &mut a, Gpa(RAM), false).unwrap();
    let gid = tvm.gid();
    assert_eq!(
        t.remove_pages(gid, Gpa(RAM), 4096),
        Err(SbiError::InvalidAddress),
        "still mapped"
    );
    t.invalidate_pages(gid, Gpa(RAM), 4096).unwrap();
    assert_eq!(
        t.remove_pages(gid, Gpa(RAM), 4096),
        Err(SbiError::InvalidAddress),
        "not fenced"
    );
    t.validate_pages(gid, Gpa(RAM), 4096).unwrap();
    // Blocking a range with an unpopulated page blocks nothing.
    assert_eq!(
        t.invalidate_pages(gid, Gpa(RAM), 2 * 4096),
        Err(SbiError::InvalidAddress)
    );
    // The host's removal skips the unpopulated pages (removing them would
    // hang Salus).
    tvm.remove_range(&mut t, Gpa(RAM), 16 * 4096).unwrap();
    assert_eq!(m.borrow().tsm.mapped(gid, RAM), None);
    assert_eq!(m.borrow().tsm.would_hang, 0);
    assert_eq!(t.remove_pages(gid, Gpa(RAM), 4096), Err(SbiError::Failed));
    assert_eq!(m.borrow().tsm.would_hang, 1, "the model flags a removal Salus would hang on");
    tvm.destroy(&mut t, &mut a).unwrap();
    assert_clean(&m);
}

#[test]
fn failures_give_everything_back() {
    let (mut t, mut a, _n, m) = machine(64 << 20);
    let info = check_tsm(&mut t).unwrap();
    // CREATE_TVM refused.
    m.borrow_mut().tsm.inject_ppm = 1_000_000;
    assert!(Tvm::create(&mut t, &mut a, &info, 512).is_err());
    m.borrow_mut().tsm.inject_ppm = 0;
    assert_clean(&m);
    // Destroy refused, then retried.
    let mut tvm = new_tvm(&mut t, &mut a, 4);
    m.borrow_mut().tsm.inject_ppm = 1_000_000;
    assert!(tvm.destroy(&mut t, &mut a).is_err());
    m.borrow_mut().tsm.inject_ppm = 0;
    tvm.destroy(&mut t, &mut a).unwrap();
    assert_clean(&m);
}

#[test]
fn no_tsm_means_no_tvm() {
    let (mut t, _a, _n, m) = machine(1 << 20);
    m.borrow_mut().tsm.info = TsmInfo {
        tstate: 1,
        ..Default::default()
    };
    assert_eq!(check_tsm(&mut t), Err(TvmError::NoTsm));
    use kvm_cove::abi::SbiError;
    use kvm_cove::cvm_fw::errno;
    for (e, want) in [
        (TvmError::NoTsm, errno::EPERM),
        (TvmError::State, errno::EPERM),
        (TvmError::NoMemory, errno::ENOMEM),
        (TvmError::Invalid, errno::EINVAL),
        (TvmError::Tsm(SbiError::InvalidAddress), errno::EFAULT),
        (TvmError::Tsm(SbiError::Denied), errno::EPERM),
        (TvmError::Tsm(SbiError::Denied).in_run(), errno::EFAULT),
        (TvmError::Interrupted, errno::EINTR),
        (TvmError::NoDevice, errno::ENODEV),
        (TvmError::Kernel(errno::EAGAIN), errno::EAGAIN),
    ] {
        assert_eq!(e.errno(), want, "{e:?}");
    }
    let _: Option<ModelNacl> = None;
}

#[test]
fn measure_region_argument() {
    use kvm_cove::logic::tvm::MeasureRegion;
    let enc = |u: u64, g: u64, n: u64| {
        let mut b = [0u8; MeasureRegion::SIZE];
        b[..8].copy_from_slice(&u.to_le_bytes());
        b[8..16].copy_from_slice(&g.to_le_bytes());
        b[16..].copy_from_slice(&n.to_le_bytes());
        b
    };
    assert_eq!(
        MeasureRegion::parse(&enc(0x7000_0000, 0x8000_0000, 0x2000)),
        Ok(MeasureRegion {
            uaddr: 0x7000_0000,
            gpa: 0x8000_0000,
            size: 0x2000
        })
    );
    for (u, g, n) in [
        (0x7000_0001, 0x8000_0000, 0x1000),
        (0x7000_0000, 0x8000_0800, 0x1000),
        (0x7000_0000, 0x8000_0000, 0x1800),
        (0x7000_0000, 0x8000_0000, 0),
        (u64::MAX - 0xfff, 0x8000_0000, 0x2000),
        (0x7000_0000, u64::MAX - 0xfff, 0x2000),
    ] {
        assert_eq!(
            MeasureRegion::parse(&enc(u, g, n)),
            Err(TvmError::Invalid),
            "{u:#x} {g:#x} {n:#x}"
        );
    }
}

/// The boot probe tells the cases apart: no COVH, a TSM of another ABI
/// version (refusing our `TsmInfo`, as ACE does), one not ready, and one
/// ready.  A failing `TSM_GET_INFO` is not "no COVH".
#[test]
fn the_probe_classifies_the_tsm() {
    use kvm_cove::abi::SbiError;
    use kvm_cove::logic::tsm::{probe, TsmProbe};
    let (mut t, _a, _n, m) = machine(1 << 20);
    assert_eq!(
        probe(false, true, &mut t),
        TsmProbe::Absent {
            covh: false,
            nacl: true
        }
    );
    assert!(!probe(false, true, &mut t).covh());
    assert!(probe(true, false, &mut t).covh());
    assert_eq!(m.borrow().tsm.counts.get(kvm_cove::abi::Covh::TsmGetInfo), 0);
    let p = probe(true, true, &mut t);
    assert!(p.ready() && p.covh(), "{p:?}");
    m.borrow_mut().tsm.info_len_wanted = 48;
    assert_eq!(
        probe(true, true, &mut t),
        TsmProbe::OtherAbi(SbiError::InvalidParam)
    );
    assert_eq!(check_tsm(&mut t), Err(TvmError::NoTsm));
    m.borrow_mut().tsm.info_len_wanted = 32;
    m.borrow_mut().tsm.info.tstate = 1;
    assert!(matches!(probe(true, true, &mut t), TsmProbe::NotReady(i) if i.tstate == 1));
}
