// SPDX-License-Identifier: GPL-2.0
//! The TVM vCPU run step against the TSM model: exits served in the
//! kernel, exits that go to userspace and the answers that come back.

use std::collections::HashMap;

use kvm_cove::abi::{Covg, Covh};
use kvm_cove::abi::{Gpa, Pa, EXT_COVG};
use kvm_cove::logic::exit::cause;
use kvm_cove::logic::exit::forwarded::{DBCN, HSM, HSM_HART_START, HSM_HART_STOP, SRST};
use kvm_cove::logic::pool::{PageAlloc, Plain};
use kvm_cove::logic::run::{self, Power, SharedMem, Step, UserExit, VcpuRun};
use kvm_cove::logic::tvm::{check_tsm, Tvm, TvmError};
use kvm_cove::model::{machine, ModelAlloc, ModelNacl, ModelTsm, ScriptedExit, Shared};

const RAM: u64 = 0x8000_0000;
const MMIO: u64 = 0x1000_0000;

struct Vm {
    t: ModelTsm,
    a: ModelAlloc,
    n: ModelNacl,
    m: Shared,
    tvm: Tvm,
    v: VcpuRun,
    vmm: VmmPages,
}

/// The VMM's memory behind shared GPAs: pages from the model's allocator,
/// so that a page never unpinned shows as outstanding.
struct VmmPages {
    a: ModelAlloc,
    pinned: HashMap<u64, Pa>,
    pins: u64,
}

impl SharedMem for VmmPages {
    fn shared_page(&mut self, gpa: Gpa) -> Result<Pa, TvmError> {
        if self.pinned.contains_key(&gpa.0) {
            return Err(TvmError::Invalid);
        }
        let pa = self.a.alloc_contiguous(1).ok_or(TvmError::NoMemory)?;
        self.pinned.insert(gpa.0, pa);
        self.pins += 1;
        Ok(pa)
    }

    fn holds(&self, gpa: Gpa) -> bool {
        self.pinned.contains_key(&gpa.0)
    }

    fn release_shared(&mut self, gpa: Gpa) {
        if let Some(pa) = self.pinned.remove(&gpa.0) {
            self.a.free(Plain::from_host_page(pa).unwrap());
        }
    }
}

/// A runnable TVM with 8 MiB at `RAM` and one vCPU.
fn vm() -> Vm {
    vm_with(64 << 20, 512, 8 << 20, |_, _, _| {})
}

/// A runnable TVM on `host` bytes of host memory, its pool converting
/// `batch` pages at first, with `region` bytes at `RAM` and one vCPU;
/// `setup` runs before finalize.
fn vm_with(
    host: u64,
    batch: u64,
    region: u64,
    setup: impl FnOnce(&mut Tvm, &mut ModelTsm, &mut ModelAlloc),
) -> Vm {
    let (mut t, mut a, n, m) = machine(host);
    let info = check_tsm(&mut t).unwrap();
    let mut tvm = Tvm::create(&mut t, &mut a, &info, batch).unwrap();
    tvm.add_region(&mut t, &mut a, Gpa(RAM), region).unwrap();
    setup(&mut tvm, &mut t, &mut a);
    tvm.create_vcpu(&mut t, &mut a, 0).unwrap();
    tvm.finalize(&mut t, RAM, 0).unwrap();
    let vmm = VmmPages {
        a: ModelAlloc(m.clone()),
        pinned: HashMap::new(),
        pins: 0,
    };
    Vm {
        t,
        a,
        n,
        m,
        tvm,
        v: VcpuRun::new(0),
        vmm,
    }
}

impl Vm {
    fn script(&self, x: ScriptedExit) {
        self.m.borrow_mut().tsm.exits.push_back(x);
    }

    /// One entry and its handling.
    fn step(&mut self) -> Result<Step, TvmError> {
        let exit = self.v.enter(&mut self.tvm, &mut self.t, &mut self.n)?;
        self.v
            .handle(&mut self.tvm, &mut self.t, &mut self.a, &mut self.vmm, exit)
    }

    /// a0/a1 the host wrote before the last entry.
    fn answered(&self) -> (i64, u64) {
        let g = self.m.borrow().tsm.entry_gprs;
        (g[10] as i64, g[11])
    }

    fn mapped(&self, gpa: u64) -> Option<bool> {
        self.m.borrow().tsm.mapped(self.tvm.gid(), gpa)
    }

    fn calls(&self, f: Covh) -> u64 {
        self.m.borrow().tsm.counts.get(f)
    }

    fn destroy_clean(mut self) {
        self.tvm.destroy(&mut self.t, &mut self.a).unwrap();
        for g in self.vmm.pinned.keys().copied().collect::<Vec<_>>() {
            self.vmm.release_shared(Gpa(g));
        }
        let m = self.m.borrow();
        assert!(m.host.violations.is_empty(), "{:?}", m.host.violations);
        assert_eq!(m.tsm.confidential_pages(), 0);
        assert_eq!(m.host.outstanding(), 0);
    }
}

fn fault(scause: u64, gpa: u64, htinst: u64) -> ScriptedExit {
    ScriptedExit {
        scause,
        htval: gpa >> 2,
        stval: gpa & 3,
        htinst,
        ..Default::default()
    }
}

/// An interrupt exit: the vCPU is entered again.
fn irq() -> ScriptedExit {
    ScriptedExit {
        scause: cause::INTERRUPT | 5,
        ..Default::default()
    }
}

fn ecall(ext: u64, fid: u64, args: &[u64]) -> ScriptedExit {
    let mut gprs = vec![(17, ext), (16, fid)];
    gprs.extend(args.iter().enumerate().map(|(i, v)| (10 + i, *v)));
    ScriptedExit {
        scause: cause::VS_ECALL,
        gprs,
        ..Default::default()
    }
}

/// COVG `ADD_MMIO_REGION` of the page at `MMIO`, which the TSM serves
/// and reports: the host acknowledges it and enters again.
fn register_mmio(vm: &mut Vm) {
    vm.script(ecall(EXT_COVG, Covg::AddMmioRegion as u64, &[MMIO, 0x1000]));
    assert_eq!(vm.step(), Ok(Step::Enter));
}

#[test]
fn mmio_load_goes_to_userspace_and_its_value_comes_back() {
    let mut vm = vm();
    register_mmio(&mut vm);
    // lh a2 (x12) from an MMIO page.
    vm.script(fault(
        cause::LOAD_GUEST_PAGE_FAULT,
        MMIO + 8,
        (12 << 7) | (1 << 12) | 0x03,
    ));
    vm.script(irq());
    let s = vm.step().unwrap();
    assert_eq!(
        s,
        Step::User(UserExit::Mmio {
            gpa: MMIO + 8,
            len: 2,
            write: false,
            data: 0
        })
    );
    assert!(vm.v.awaiting());
    // The next entry without an answer is refused.
    assert_eq!(
        vm.v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap_err(),
        TvmError::State
    );
    vm.v.resume(0xdead_8001, [0, 0]);
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(vm.m.borrow().tsm.entry_gprs[12], 0xffff_ffff_ffff_8001);
    assert_eq!(vm.v.exits.mmio, 1);
    vm.destroy_clean();
}

#[test]
fn mmio_store_carries_the_value_and_needs_no_answer() {
    let mut vm = vm();
    register_mmio(&mut vm);
    let mut x = fault(
        cause::STORE_GUEST_PAGE_FAULT,
        MMIO,
        (11 << 20) | (2 << 12) | 0x23,
    );
    x.gprs.push((11, 0x1_2345_6789));
    vm.script(x);
    assert_eq!(
        vm.step().unwrap(),
        Step::User(UserExit::Mmio {
            gpa: MMIO,
            len: 4,
            write: true,
            data: 0x2345_6789
        })
    );
    assert!(!vm.v.awaiting());
    vm.destroy_clean();
}

/// An access outside the confidential regions and the registered MMIO
/// regions: the TSM powers the vCPU off (as Salus does), `KVM_RUN` exits
/// with `KVM_EXIT_SHUTDOWN`, and so does every later `KVM_RUN`, without
/// calling the TSM again.
#[test]
fn an_access_outside_every_region_ends_the_vcpu() {
    let mut vm = vm();
    let mut x = fault(
        cause::STORE_GUEST_PAGE_FAULT,
        MMIO + 0x1000,
        (11 << 20) | (2 << 12) | 0x23,
    );
    x.gprs.push((11, 7));
    register_mmio(&mut vm);
    vm.script(x);
    assert_eq!(vm.step().unwrap(), Step::User(UserExit::Terminated));
    assert_eq!(vm.v.power(), Power::Ended(UserExit::Terminated));
    let runs = vm.calls(Covh::TvmVcpuRun);
    for _ in 0..3 {
        assert_eq!(vm.step().unwrap(), Step::User(UserExit::Terminated));
    }
    assert_eq!(vm.calls(Covh::TvmVcpuRun), runs);
    // The TSM would have refused it.
    let gid = vm.tvm.gid();
    assert_eq!(
        kvm_cove::logic::tsm::Tsm::vcpu_run(&mut vm.t, gid, 0),
        Err(kvm_cove::abi::SbiError::InvalidParam)
    );
    vm.destroy_clean();
}

#[test]
fn faults_map_whole_blocks_unless_a_small_page_is_there() {
    // By default a fault maps its 4 KiB page only (see
    // `Tvm::set_zero_blocks`).
    let mut vm = vm();
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, RAM + 0x1234, 0));
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(vm.mapped(RAM + 0x1000), Some(true));
    assert_eq!(vm.mapped(RAM + 0x2000), None);
    assert_eq!(vm.tvm.stats().zero_pages, 1);
    vm.destroy_clean();

    let mut vm = vm_with(64 << 20, 512, 8 << 20, |tvm, _, _| tvm.set_zero_blocks(true));
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, RAM + 0x1234, 0));
    assert_eq!(vm.step().unwrap(), Step::Enter);
    // One 2 MiB add covers the block.
    assert_eq!(vm.calls(Covh::TvmAddZeroPages), 1);
    assert_eq!(vm.mapped(RAM + 0x1f_f000), Some(true));
    assert_eq!(vm.tvm.stats().zero_pages, 512);
    vm.destroy_clean();

    // A measured page makes its block 4 KiB only (measuring is before
    // finalize).
    let mut src = None;
    let mut vm = vm_with(64 << 20, 512, 4 << 20, |tvm, t, a| {
        tvm.set_zero_blocks(true);
        let p = a.alloc_contiguous(1).unwrap();
        tvm.measure_page(t, a, Gpa(RAM + 0x20_0000), p).unwrap();
        src = Some(p);
    });
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, RAM + 0x20_1000, 0));
    assert_eq!(vm.step(), Ok(Step::Enter));
    assert_eq!(vm.tvm.stats().zero_pages, 1);
    assert_eq!(vm.mapped(RAM + 0x20_2000), None);
    // The source was copied: it is the VMM's again.
    vm.a.free(Plain::from_host_page(src.unwrap()).unwrap());
    vm.destroy_clean();
}

#[test]
fn share_fault_unshare_round_trip() {
    let mut vm = vm();
    let page = RAM + 0x40_0000;
    // The TVM touches the page first: a zero block.
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, page, 0));
    // Then shares 2 pages of it.
    vm.script(ecall(EXT_COVG, Covg::ShareMemory as u64, &[page, 0x2000]));
    // Touches the shared page.
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, page + 8, 0));
    // Takes it back.
    vm.script(ecall(EXT_COVG, Covg::UnshareMemory as u64, &[page, 0x2000]));
    // Touches it again.
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, page, 0));
    for _ in 0..5 {
        assert_eq!(vm.step().unwrap(), Step::Enter);
    }
    // The share was accepted...
    assert!(!vm.tvm.is_shared(Gpa(page)));
    // ...the shared fault pinned one VMM page, the unshare released it...
    assert_eq!(vm.vmm.pins, 1);
    assert!(vm.vmm.pinned.is_empty());
    // ...and the last fault mapped a confidential 4 KiB page again.
    assert_eq!(vm.mapped(page), Some(true));
    assert_eq!(vm.mapped(page + 0x1000), None);
    assert_eq!(vm.calls(Covh::TvmAddSharedPages), 1);
    assert_eq!(vm.calls(Covh::TvmRemovePages), 2);
    assert_eq!(vm.v.exits.share, 2);
    // The unshare's answer: success.
    assert_eq!(vm.step().unwrap(), Step::User(UserExit::Terminated));
    vm.destroy_clean();
}

#[test]
fn shared_page_is_mapped_from_the_vmm() {
    let mut vm = vm();
    let page = RAM + 0x10_0000;
    vm.script(ecall(EXT_COVG, Covg::ShareMemory as u64, &[page, 0x1000]));
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, page, 0));
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(vm.answered(), (0, 0));
    assert_eq!(vm.mapped(page), Some(false));
    // The rest of the block was not mapped whole: it holds a shared page.
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, page + 0x1000, 0));
    vm.step().unwrap();
    assert_eq!(vm.mapped(page + 0x1000), Some(true));
    assert_eq!(vm.mapped(page + 0x2000), None);
    vm.destroy_clean();
}

#[test]
fn bad_share_is_the_tvms_error() {
    let mut vm = vm();
    // Outside every region, then misaligned, then across the region end.
    for (gpa, len) in [
        (MMIO, 0x1000),
        (RAM + 1, 0x1000),
        (RAM + (8 << 20) - 0x1000, 0x2000),
    ] {
        vm.script(ecall(EXT_COVG, Covg::ShareMemory as u64, &[gpa, len]));
    }
    // Unshare of a range never shared.
    vm.script(ecall(EXT_COVG, Covg::UnshareMemory as u64, &[RAM, 0x1000]));
    for _ in 0..4 {
        assert_eq!(vm.step().unwrap(), Step::Enter);
    }
    assert_eq!(vm.step().unwrap(), Step::User(UserExit::Terminated));
    // The last answer before termination: SBI_ERR_INVALID_PARAM.
    assert_eq!(vm.answered(), (-3, 0));
    assert_eq!(vm.calls(Covh::TvmRemovePages), 0);
    vm.destroy_clean();
}

#[test]
fn sbi_calls_forwarded_refused_or_ending_the_vm() {
    let mut vm = vm();
    // Debug console write: to userspace, its ret comes back in a0/a1.
    vm.script(ecall(DBCN, 0, &[5, 0x9000_0000, 0]));
    // Base extension: not for TVMs through the host.
    vm.script(ecall(0x10, 3, &[]));
    // An unknown COVG function: refused by the TSM, no exit.
    vm.script(ecall(EXT_COVG, 99, &[]));
    // MMIO region registration: the TSM's, reported to the host.
    vm.script(ecall(EXT_COVG, Covg::AddMmioRegion as u64, &[MMIO, 0x1000]));
    // SRST reset: the TSM powers the vCPU off.
    vm.script(ecall(SRST, 0, &[1, 0]));
    assert_eq!(
        vm.step().unwrap(),
        Step::User(UserExit::Sbi {
            ext: DBCN,
            fid: 0,
            args: [5, 0x9000_0000, 0, 0, 0, 0]
        })
    );
    vm.v.resume(0, [0, 5]);
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(vm.answered(), (0, 5));
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(vm.answered(), (-2, 0));
    assert_eq!(
        vm.step().unwrap(),
        Step::User(UserExit::SystemEvent { reset: true })
    );
    // The acknowledgement of the MMIO region.
    assert_eq!(vm.answered(), (0, 0));
    assert_eq!(vm.v.exits.sbi, 4);
    // Final: reported again, the TSM not called.
    let runs = vm.calls(Covh::TvmVcpuRun);
    assert_eq!(
        vm.step().unwrap(),
        Step::User(UserExit::SystemEvent { reset: true })
    );
    assert_eq!(vm.calls(Covh::TvmVcpuRun), runs);
    vm.destroy_clean();
}

#[test]
fn wfi_idles_and_odd_exits_are_internal_errors() {
    let mut vm = vm();
    register_mmio(&mut vm);
    vm.script(ScriptedExit {
        scause: cause::VIRTUAL_INSN,
        ..Default::default()
    });
    vm.script(ScriptedExit {
        scause: cause::INTERRUPT | 5,
        ..Default::default()
    });
    // An MMIO load the TSM did not transform (no htinst): the host
    // cannot emulate it.
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, MMIO, 0));
    // An instruction fetch from MMIO space: the TSM ends the vCPU.
    vm.script(fault(cause::INSN_GUEST_PAGE_FAULT, MMIO, 0));
    assert_eq!(vm.step().unwrap(), Step::Idle);
    assert_eq!(vm.step().unwrap(), Step::Enter);
    assert_eq!(
        vm.step().unwrap(),
        Step::User(UserExit::Internal {
            scause: cause::LOAD_GUEST_PAGE_FAULT
        })
    );
    assert_eq!(vm.step().unwrap(), Step::User(UserExit::Terminated));
    let e = vm.v.exits;
    // The total counts the MMIO region's acknowledgement too.
    assert_eq!((e.idle, e.interrupt, e.other, e.sbi, e.total()), (1, 1, 2, 1, 5));
    vm.destroy_clean();
}

#[test]
fn out_of_memory_fails_the_run_without_leaks() {
    // 1 MiB of host memory: the TVM fits, a 2 MiB block does not.
    let mut vm = vm_with(1 << 20, 16, 4 << 20, |tvm, _, _| tvm.set_zero_blocks(true));
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, RAM, 0));
    assert_eq!(vm.step(), Err(TvmError::NoMemory));
    vm.destroy_clean();
}

/// A TVM with `n` vCPUs (ids 0..n) on 64 MiB, 8 MiB at `RAM`, vCPU 0
/// having started the others (HSM).
fn smp_vm(n: u64) -> (Vm, Vec<VcpuRun>) {
    let mut vm = vm_with(64 << 20, 512, 8 << 20, |tvm, t, a| {
        for id in 1..n {
            tvm.create_vcpu(t, a, id).unwrap();
        }
    });
    let mut others: Vec<VcpuRun> = (1..n).map(VcpuRun::new).collect();
    for id in 1..n {
        vm.script(ecall(HSM, HSM_HART_START, &[id, RAM, 0]));
        assert_eq!(vm.step(), Ok(Step::Started(id)));
        run::start(&mut others, id);
    }
    (vm, others)
}

/// Secondary vCPUs wait, without calling the TSM, until the TVM starts
/// them (HSM `HART_START`, which the TSM serves, masking the start
/// address); `HART_STOP` powers one off again, and a start makes it run.
#[test]
fn secondary_vcpus_run_once_started() {
    let mut vm = vm_with(64 << 20, 512, 8 << 20, |tvm, t, a| {
        tvm.create_vcpu(t, a, 1).unwrap();
    });
    let mut others = vec![VcpuRun::new(1)];
    let step1 = |vm: &mut Vm, others: &mut Vec<VcpuRun>| {
        let x = others[0].enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
        others[0].handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x)
    };
    assert_eq!(step1(&mut vm, &mut others), Ok(Step::Idle));
    assert_eq!(vm.calls(Covh::TvmVcpuRun), 0);
    // Starting an unknown vCPU: refused by the TSM to the guest, no exit.
    vm.script(ecall(HSM, HSM_HART_START, &[7, RAM, 0]));
    vm.script(ecall(HSM, HSM_HART_START, &[1, RAM + 0x100, 42]));
    assert_eq!(vm.step(), Ok(Step::Started(1)));
    {
        let m = vm.m.borrow();
        let g = |i| kvm_cove::logic::exit::NaclShmem::gpr(&m.tsm.nacl, i);
        assert_eq!((g(10), g(11), g(12)), (1, 0, 0), "start address masked");
    }
    run::start(&mut others, 1);
    assert_eq!(others[0].power(), Power::On);
    vm.script(irq());
    assert_eq!(step1(&mut vm, &mut others), Ok(Step::Enter));
    vm.script(ecall(HSM, HSM_HART_STOP, &[]));
    assert_eq!(step1(&mut vm, &mut others), Ok(Step::Idle));
    assert_eq!(others[0].power(), Power::Off);
    let runs = vm.calls(Covh::TvmVcpuRun);
    assert_eq!(step1(&mut vm, &mut others), Ok(Step::Idle));
    assert_eq!(vm.calls(Covh::TvmVcpuRun), runs);
    vm.script(ecall(HSM, HSM_HART_START, &[1, RAM, 0]));
    assert_eq!(vm.step(), Ok(Step::Started(1)));
    run::start(&mut others, 1);
    vm.script(irq());
    assert_eq!(step1(&mut vm, &mut others), Ok(Step::Enter));
    vm.destroy_clean();
}

/// Exits are served one at a time (under the TVM's mutex), but once the
/// vCPUs of a TVM run at once (the mutex not held across `TVM_VCPU_RUN`,
/// as on arm64; needed for SMP TVMs in parallel), several can exit on the
/// same GPA before the first exit is served.  Four vCPUs fault one page, then one 4 KiB page of a
/// block another vCPU is about to map whole: every exit is served, the
/// page is mapped once, and nothing leaks.
#[test]
fn a_page_faulted_by_several_vcpus_at_once_is_mapped_once() {
    let (mut vm, mut others) = smp_vm(4);
    for gpa in [RAM + 0x1234, RAM + 0x40_0000 + 0x5000] {
        // All four are in the TSM (entered) before any exit is served.
        let mut exits = Vec::new();
        vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, gpa, 0));
        exits.push(vm.v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap());
        for v in others.iter_mut() {
            vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, gpa + 8, 0));
            exits.push(v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap());
        }
        let mut exits = exits.into_iter();
        let first = exits.next().unwrap();
        assert_eq!(
            vm.v.handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, first),
            Ok(Step::Enter)
        );
        for (v, x) in others.iter_mut().zip(exits) {
            assert_eq!(
                v.handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x),
                Ok(Step::Enter),
                "vCPU {}'s fault at {gpa:#x}, served after vCPU 0's",
                v.id()
            );
        }
        assert_eq!(vm.mapped(gpa & !0xfff), Some(true));
    }
    // Both faults mapped their page, once each; the three others of each
    // found it among the host's recent mappings, with no TSM call (Salus
    // would answer a second mapping with INVALID_ADDRESS, which says
    // nothing about why).
    assert_eq!(vm.calls(Covh::TvmAddZeroPages), 2);
    assert_eq!(vm.tvm.stats().zero_pages, 2);
    vm.destroy_clean();
}

/// A share (COVG) on one vCPU races with faults on the others: faults on
/// the range before and after the share are served, the shared page comes
/// from the VMM, and teardown leaves nothing converted or pinned.
#[test]
fn a_share_racing_with_faults_on_other_vcpus() {
    let (mut vm, mut others) = smp_vm(3);
    let page = RAM + 0x60_0000;
    // vCPU 1 faults the page as confidential; vCPU 0 shares it before
    // that fault is served; vCPU 2 then faults it again, as shared.
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, page, 0));
    let x1 = others[0].enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    vm.script(ecall(EXT_COVG, Covg::ShareMemory as u64, &[page, 0x1000]));
    let x0 = vm.v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    assert_eq!(
        vm.v.handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x0),
        Ok(Step::Enter)
    );
    vm.script(irq());
    vm.v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    assert_eq!(vm.answered().0, 0, "the share succeeded");
    // vCPU 1's fault, now on a shared page, maps the VMM's page.
    assert_eq!(
        others[0].handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x1),
        Ok(Step::Enter)
    );
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, page + 4, 0));
    let x2 = others[1].enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    assert_eq!(
        others[1].handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x2),
        Ok(Step::Enter),
        "a second fault on the shared page"
    );
    assert_eq!(vm.mapped(page), Some(false), "mapped shared");
    assert_eq!(vm.vmm.pins, 1, "the VMM's page pinned once");
    // Unshared again while vCPU 2 faults next to it.
    vm.script(ecall(EXT_COVG, Covg::UnshareMemory as u64, &[page, 0x1000]));
    let x0 = vm.v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, page + 0x1000, 0));
    let x2 = others[1].enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    assert_eq!(
        vm.v.handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x0),
        Ok(Step::Enter)
    );
    assert!(vm.vmm.pinned.is_empty(), "unpinned at unshare");
    assert_eq!(
        others[1].handle(&mut vm.tvm, &mut vm.t, &mut vm.a, &mut vm.vmm, x2),
        Ok(Step::Enter)
    );
    vm.script(irq());
    vm.v.enter(&mut vm.tvm, &mut vm.t, &mut vm.n).unwrap();
    assert_eq!(vm.answered().0, 0, "the unshare succeeded");
    vm.destroy_clean();
}

/// A vCPU that faults again on a page the TSM says is mapped is taken for
/// a race once; the second time in a row the TSM and the host disagree,
/// and `KVM_RUN` fails instead of entering the vCPU for ever.
#[test]
fn a_fault_on_a_mapped_page_twice_in_a_row_is_an_error() {
    let mut vm = vm();
    for _ in 0..2 {
        vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, RAM, 0));
        assert_eq!(vm.step(), Ok(Step::Enter));
    }
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, RAM + 8, 0));
    assert_eq!(
        vm.step(),
        Err(TvmError::Tsm(kvm_cove::abi::SbiError::AlreadyAvailable))
    );
    // Another page in between resets it.
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, RAM + 0x20_0000, 0));
    assert_eq!(vm.step(), Ok(Step::Enter));
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, RAM, 0));
    assert_eq!(vm.step(), Ok(Step::Enter));
    vm.destroy_clean();
}

/// Why whole zero blocks are off by default: with them, a share of part
/// of a block mapped whole cannot be emptied 4 KiB at a time, and a TSM
/// as strict as Salus does not run the vCPU again (INVALID_ADDRESS).
#[test]
fn a_partial_share_of_a_whole_zero_block_cannot_complete() {
    let mut vm = vm_with(64 << 20, 512, 8 << 20, |tvm, _, _| tvm.set_zero_blocks(true));
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, RAM, 0));
    vm.script(ecall(EXT_COVG, Covg::ShareMemory as u64, &[RAM + 0x1000, 0x1000]));
    assert_eq!(vm.step(), Ok(Step::Enter));
    assert_eq!(vm.tvm.stats().zero_pages, 512);
    assert_eq!(vm.step(), Ok(Step::Enter), "the host answered the share");
    vm.script(irq());
    assert_eq!(
        vm.step(),
        Err(TvmError::Tsm(kvm_cove::abi::SbiError::InvalidAddress))
    );
    vm.tvm.destroy(&mut vm.t, &mut vm.a).unwrap();

    // 4 KiB zero pages (the default): the same sequence completes.
    let mut vm = crate::vm();
    vm.script(fault(cause::STORE_GUEST_PAGE_FAULT, RAM + 0x1000, 0));
    vm.script(ecall(EXT_COVG, Covg::ShareMemory as u64, &[RAM + 0x1000, 0x1000]));
    vm.script(irq());
    for _ in 0..3 {
        assert_eq!(vm.step(), Ok(Step::Enter));
    }
    assert_eq!(vm.calls(Covh::TvmRemovePages), 1);
    vm.destroy_clean();
}

/// INVALID_ADDRESS for a page the host did not just map is no race: the
/// run fails (Salus's answer for every paging failure must not hide one).
#[test]
fn invalid_address_on_a_page_not_just_mapped_fails_the_run() {
    let mut vm = vm();
    // Map the page behind the host's back: a mapping the host does not
    // know of.
    let gid = vm.tvm.gid();
    {
        let mut m = vm.m.borrow_mut();
        let pa = Pa(0x8000_0000 + (60 << 20));
        kvm_cove::logic::tsm::Tsm::convert_pages(&mut m.tsm, pa, 1).unwrap();
        kvm_cove::logic::tsm::global_fence(&mut m.tsm).unwrap();
        kvm_cove::logic::tsm::Tsm::add_zero_pages(
            &mut m.tsm,
            gid,
            pa,
            kvm_cove::abi::PageType::Page4K,
            1,
            Gpa(RAM + 0x60_0000),
        )
        .unwrap();
    }
    vm.script(fault(cause::LOAD_GUEST_PAGE_FAULT, RAM + 0x60_0010, 0));
    assert_eq!(
        vm.step(),
        Err(TvmError::Tsm(kvm_cove::abi::SbiError::InvalidAddress))
    );
    vm.tvm.destroy(&mut vm.t, &mut vm.a).unwrap();
}
