// SPDX-License-Identifier: GPL-2.0
//! TVM interrupts through COVI against the TSM model: the host's guest
//! files, binding before a run, rebinding after a move, the allow list
//! and injection, and teardown giving the files back.

use kvm_cove::abi::{Covh, Covi, Gpa, Pa, SbiError, EXT_COVG};
use kvm_cove::logic::aia::{
    self, bind_here, evict_here, AllowList, BindError, Binding, Bound, HostFiles, Injected,
};
use kvm_cove::logic::exit::cause;
use kvm_cove::logic::run::{SharedMem, Step, VcpuRun};
use kvm_cove::logic::tsm::Tsm;
use kvm_cove::logic::tvm::{check_tsm, Tvm, TvmError};
use kvm_cove::model::{machine, ModelAlloc, ModelNacl, ModelTsm, PageState, ScriptedExit, Shared};

const RAM: u64 = 0x8000_0000;
/// HGEIE bits 1..=4: the four guest files per CPU the model's host has.
const FILES: u64 = 0b1_1110;

struct NoShared;

impl SharedMem for NoShared {
    fn shared_page(&mut self, _: Gpa) -> Result<Pa, TvmError> {
        Err(TvmError::Invalid)
    }
    fn release_shared(&mut self, _: Gpa) {}
    fn holds(&self, _: Gpa) -> bool {
        false
    }
}

struct Vm {
    t: ModelTsm,
    a: ModelAlloc,
    n: ModelNacl,
    m: Shared,
    tvm: Tvm,
    v: Vec<VcpuRun>,
}

fn file_pa(m: &Shared) -> impl Fn(usize, u32) -> Option<Pa> {
    let h = m.borrow().tsm.host_imsic;
    move |cpu, k| h?.file_pa(u32::try_from(cpu).ok()?, k)
}

/// A runnable TVM with an IMSIC per vCPU, `vcpus` vCPUs, 8 MiB at RAM.
fn vm(files: &HostFiles, vcpus: u64) -> Vm {
    let (mut t, mut a, n, m) = machine(64 << 20);
    assert_eq!(files.convert(&mut t, FILES, &file_pa(&m)), Ok(8));
    let info = check_tsm(&mut t).unwrap();
    let mut tvm = Tvm::create(&mut t, &mut a, &info, 512).unwrap();
    tvm.init_aia(&mut t, &mut a).unwrap();
    // One 2 MiB region with a measured page, as the selftests make: the
    // region's page-table pages are all used by that page, so the
    // interrupt files need their own.
    tvm.add_region(&mut t, &mut a, Gpa(RAM), 2 << 20).unwrap();
    let src = kvm_cove::logic::pool::PageAlloc::alloc_contiguous(&mut a, 1).unwrap();
    tvm.measure_page(&mut t, &mut a, Gpa(RAM), src).unwrap();
    for id in 0..vcpus {
        tvm.create_vcpu(&mut t, &mut a, id).unwrap();
    }
    tvm.finalize(&mut t, RAM, 0).unwrap();
    Vm {
        t,
        a,
        n,
        m,
        tvm,
        v: (0..vcpus).map(VcpuRun::new).collect(),
    }
}

impl Vm {
    fn script(&self, x: ScriptedExit) {
        self.m.borrow_mut().tsm.exits.push_back(x);
    }

    /// The guest's next exit: a timer interrupt.
    fn tick(&self) {
        self.script(ScriptedExit {
            scause: cause::INTERRUPT | 5,
            ..Default::default()
        });
    }

    fn covg(&self, fid: u64, a0: u64) {
        self.script(ScriptedExit {
            scause: cause::VS_ECALL,
            gprs: vec![(17, EXT_COVG), (16, fid), (10, a0)],
            ..Default::default()
        });
    }

    /// Binds vCPU `i` here, then runs and serves one exit.
    fn step(&mut self, files: &HostFiles, i: usize) -> Result<Step, TvmError> {
        let gid = self.tvm.gid();
        bind_here(&mut self.t, files, gid, i as u64, &mut self.v[i].binding)
            .map_err(|_| TvmError::State)?;
        let exit = self.v[i].enter(&mut self.tvm, &mut self.t, &mut self.n)?;
        self.v[i].handle(&mut self.tvm, &mut self.t, &mut self.a, &mut NoShared, exit)
    }

    fn covi(&self, f: Covi) -> u64 {
        self.m.borrow().tsm.covi_counts.get(f)
    }

    fn on_cpu(&self, cpu: u32) {
        self.m.borrow_mut().tsm.cpu = cpu;
    }

    fn inject(&mut self, i: usize, iid: u64) -> (Injected, bool) {
        let gid = self.tvm.gid();
        aia::inject(&mut self.t, gid, i as u64, iid, self.v[i].allowed()).unwrap()
    }
}

/// A one-vCPU TVM whose vCPU is bound on CPU 0.
fn bound_vm(files: &HostFiles) -> (Vm, u64) {
    let mut vm = vm(files, 1);
    let gid = vm.tvm.gid();
    bind_here(&mut vm.t, files, gid, 0, &mut vm.v[0].binding).unwrap();
    (vm, gid)
}

#[test]
fn layout() {
    assert_eq!(aia::hart_index_bits(1), 1);
    assert_eq!(aia::hart_index_bits(8), 3);
    assert_eq!(aia::hart_index_bits(9), 4);
    assert_eq!(aia::hart_index_bits(64), 6);
    let p = aia::params(64);
    assert_eq!((p.imsic_base_addr, p.group_index_shift, p.hart_index_bits), (0x2800_0000, 24, 6));
    assert_eq!((p.guests_per_hart, p.guest_index_bits, p.group_index_bits), (0, 0, 0));
    assert_eq!(aia::imsic_gpa(3), Gpa(0x2800_3000));
    assert_eq!(aia::msi_target(0x2800_3000, 8), Some(3));
    assert_eq!(aia::msi_target(0x2800_3004, 8), None);
    assert_eq!(aia::msi_target(0x2800_8000, 8), None);
    assert_eq!(aia::msi_target(0x27ff_f000, 8), None);
}

#[test]
fn files_convert_once_with_one_fence_and_never_the_supervisor_file() {
    let (mut t, _a, _n, m) = machine(16 << 20);
    let files = HostFiles::new();
    // Bit 0 (the supervisor file) is never asked for.
    assert_eq!(files.convert(&mut t, FILES | 1, &file_pa(&m)), Ok(8));
    {
        let tsm = &m.borrow().tsm;
        assert_eq!(tsm.covi_counts.get(Covi::ConvertImsic), 8);
        assert_eq!(tsm.counts.get(Covh::TsmInitiateFence), 1);
        assert_eq!(tsm.imsic_file_state(1, 4), Some(PageState::Converted));
    }
    assert_eq!(files.count(0), (4, 0));
    assert_eq!(files.count(1), (4, 0));
    // The model refuses the supervisor file, as Salus does.
    let s_file = Pa(0x2800_0000);
    assert_eq!(t.convert_imsic(s_file), Err(SbiError::InvalidParam));
}

#[test]
fn a_vcpu_runs_only_where_it_is_bound() {
    let files = HostFiles::new();
    let mut vm = vm(&files, 1);
    // Without a bind the TSM refuses the run.
    let gid = vm.tvm.gid();
    assert_eq!(vm.t.vcpu_run(gid, 0), Err(SbiError::InvalidParam));
    vm.tick();
    assert_eq!(vm.step(&files, 0), Ok(Step::Enter));
    assert_eq!(vm.v[0].binding, Binding::Bound { cpu: 0, file: 1 });
    assert_eq!(files.count(0), (4, 1));
    assert_eq!(vm.covi(Covi::CpuBindImsic), 1);
    // Bound already: no more COVI calls on this CPU.
    vm.tick();
    assert_eq!(vm.step(&files, 0), Ok(Step::Enter));
    assert_eq!(vm.covi(Covi::CpuBindImsic), 1);
    assert_eq!(
        vm.m.borrow().tsm.imsic_file_state(0, 1),
        Some(PageState::Assigned(gid))
    );
}

#[test]
fn a_moved_vcpu_is_rebound_with_a_fence_and_the_old_file_freed() {
    let files = HostFiles::new();
    let mut vm = vm(&files, 1);
    let gid = vm.tvm.gid();
    let mut b = Binding::Unbound;
    assert_eq!(bind_here(&mut vm.t, &files, gid, 0, &mut b), Ok(Bound::Bound));
    let fences = vm.m.borrow().tsm.counts.get(Covh::TvmInitiateFence);
    vm.on_cpu(1);
    assert_eq!(bind_here(&mut vm.t, &files, gid, 0, &mut b), Ok(Bound::Moved));
    assert_eq!(b, Binding::Bound { cpu: 1, file: 1 });
    assert_eq!(files.count(0), (4, 0));
    assert_eq!(files.count(1), (4, 1));
    {
        let tsm = &vm.m.borrow().tsm;
        assert_eq!(tsm.counts.get(Covh::TvmInitiateFence), fences + 1);
        for f in [Covi::RebindImsicBegin, Covi::RebindImsicClone, Covi::RebindImsicEnd] {
            assert_eq!(tsm.covi_counts.get(f), 1, "{f:?}");
        }
        assert_eq!(tsm.imsic_file_state(0, 1), Some(PageState::Converted));
    }
    // It runs on the new CPU, and not on the old one.
    vm.tick();
    assert!(vm.t.vcpu_run(gid, 0).is_ok());
    vm.on_cpu(0);
    assert_eq!(vm.t.vcpu_run(gid, 0), Err(SbiError::InvalidParam));
}

#[test]
fn the_model_refuses_a_clone_without_a_fence_or_on_the_wrong_cpu() {
    let files = HostFiles::new();
    let (mut vm, gid) = bound_vm(&files);
    vm.on_cpu(1);
    vm.t.rebind_begin(gid, 0, 1 << 2).unwrap();
    assert_eq!(vm.t.rebind_clone(gid, 0, 0), Err(SbiError::InvalidParam));
    vm.t.tvm_fence(gid).unwrap();
    assert_eq!(vm.t.rebind_clone(gid, 0, 1), Err(SbiError::InvalidParam));
    assert_eq!(vm.t.rebind_clone(gid, 0, 0), Ok(()));
    vm.on_cpu(0);
    assert_eq!(vm.t.rebind_end(gid, 0), Err(SbiError::InvalidParam));
    vm.on_cpu(1);
    assert_eq!(vm.t.rebind_end(gid, 0), Ok(()));
}

#[test]
fn a_cpu_without_a_free_file_fails_the_entry_and_leaks_nothing() {
    let files = HostFiles::new();
    let mut vm = vm(&files, 6);
    let gid = vm.tvm.gid();
    for i in 0..4 {
        let mut b = Binding::Unbound;
        assert_eq!(bind_here(&mut vm.t, &files, gid, i, &mut b), Ok(Bound::Bound));
    }
    let mut b = Binding::Unbound;
    assert_eq!(bind_here(&mut vm.t, &files, gid, 4, &mut b), Err(BindError::NoFile(0)));
    assert_eq!(b, Binding::Unbound);
    // The other CPU still has its four.
    vm.on_cpu(1);
    assert_eq!(bind_here(&mut vm.t, &files, gid, 4, &mut b), Ok(Bound::Bound));
    // A refused bind gives the file back.
    let mut b5 = Binding::Unbound;
    vm.m.borrow_mut().tsm.inject_ppm = 1_000_000;
    assert!(matches!(bind_here(&mut vm.t, &files, gid, 5, &mut b5), Err(BindError::Tsm(_))));
    vm.m.borrow_mut().tsm.inject_ppm = 0;
    assert_eq!(files.count(1), (4, 1));
}

#[test]
fn injection_follows_the_tvms_allow_list_and_the_host_tracks_it() {
    let files = HostFiles::new();
    let mut vm = vm(&files, 1);
    // Before the TVM allows anything, the TSM refuses.
    assert_eq!(vm.inject(0, 5), (Injected::Denied, false));
    vm.covg(4, 5);
    assert_eq!(vm.step(&files, 0), Ok(Step::Enter));
    assert!(vm.v[0].allowed().allows(5));
    assert_eq!(vm.inject(0, 5), (Injected::Delivered, false));
    assert_eq!(vm.inject(0, 6), (Injected::Denied, false));
    // ID 0 and IDs past the IMSIC's are refused to the guest, no exit.
    vm.covg(4, 0);
    vm.covg(4, 300);
    vm.covg(5, 5);
    assert_eq!(vm.step(&files, 0), Ok(Step::Enter));
    assert!(!vm.v[0].allowed().allows(5));
    assert_eq!(vm.inject(0, 5), (Injected::Denied, false));
    vm.covg(4, u64::MAX);
    assert_eq!(vm.step(&files, 0), Ok(Step::Enter));
    assert_eq!(vm.inject(0, 7), (Injected::Delivered, false));
    let gid = vm.tvm.gid();
    assert_eq!(
        vm.m.borrow().tsm.tvm_irq(gid).unwrap().delivered.get(&0),
        Some(&vec![5, 7])
    );
    // A host copy that disagrees with the TSM is reported.
    let stale = AllowList::default();
    assert_eq!(
        aia::inject(&mut vm.t, gid, 0, 9, &stale),
        Ok((Injected::Delivered, true))
    );
    assert_eq!(vm.covi(Covi::InjectExtInterrupt), 6);
}

#[test]
fn without_an_imsic_the_tsm_refuses_allow_and_inject() {
    let (mut t, mut a, mut n, m) = machine(64 << 20);
    let info = check_tsm(&mut t).unwrap();
    let mut tvm = Tvm::create(&mut t, &mut a, &info, 512).unwrap();
    tvm.add_region(&mut t, &mut a, Gpa(RAM), 8 << 20).unwrap();
    tvm.create_vcpu(&mut t, &mut a, 0).unwrap();
    // Too late for an IMSIC once a vCPU exists.
    assert_eq!(tvm.init_aia(&mut t, &mut a), Err(TvmError::State));
    tvm.finalize(&mut t, RAM, 0).unwrap();
    let mut v = VcpuRun::new(0);
    let mut x = ScriptedExit {
        scause: cause::VS_ECALL,
        gprs: vec![(17, EXT_COVG), (16, 4), (10, 5)],
        ..Default::default()
    };
    m.borrow_mut().tsm.exits.push_back(x.clone());
    x = ScriptedExit {
        scause: cause::INTERRUPT | 5,
        ..Default::default()
    };
    m.borrow_mut().tsm.exits.push_back(x);
    // The allow call made no exit: the first exit is the interrupt.
    let e = v.enter(&mut tvm, &mut t, &mut n).unwrap();
    assert_eq!(v.handle(&mut tvm, &mut t, &mut a, &mut NoShared, e), Ok(Step::Enter));
    assert_eq!(v.exits.interrupt, 1);
    assert!(!v.allowed().allows(5));
    assert_eq!(t.inject(tvm.gid(), 0, 5), Err(SbiError::NotSupported));
}

#[test]
fn finalize_needs_every_vcpus_imsic_address() {
    let (mut t, mut a, _n, _m) = machine(64 << 20);
    let info = check_tsm(&mut t).unwrap();
    let mut tvm = Tvm::create(&mut t, &mut a, &info, 512).unwrap();
    tvm.init_aia(&mut t, &mut a).unwrap();
    tvm.add_region(&mut t, &mut a, Gpa(RAM), 8 << 20).unwrap();
    tvm.create_vcpu(&mut t, &mut a, 0).unwrap();
    let gid = tvm.gid();
    // A vCPU created behind the logic's back has no IMSIC address.
    let state = {
        let p = kvm_cove::logic::pool::PageAlloc::alloc_contiguous(&mut a, 2).unwrap();
        t.convert_pages(p, 2).unwrap();
        kvm_cove::logic::tsm::global_fence(&mut t).unwrap();
        p
    };
    t.create_vcpu(gid, 1, state).unwrap();
    assert_eq!(t.finalize_tvm(gid, RAM, 0), Err(SbiError::InvalidParam));
    // Two vCPUs on one address are refused too.
    t.set_imsic_addr(gid, 1, aia::imsic_gpa(0)).unwrap();
    assert_eq!(t.finalize_tvm(gid, RAM, 0), Err(SbiError::InvalidParam));
    t.set_imsic_addr(gid, 1, aia::imsic_gpa(1)).unwrap();
    assert_eq!(t.finalize_tvm(gid, RAM, 0), Ok(()));
    // Geometry checks.
    assert_eq!(
        t.set_imsic_addr(gid, 0, Gpa(aia::IMSIC_BASE + 8)),
        Err(SbiError::InvalidParam)
    );
}

#[test]
fn teardown_gives_the_files_back_for_the_next_tvm() {
    let files = HostFiles::new();
    let mut vm = vm(&files, 2);
    vm.tick();
    vm.step(&files, 0).unwrap();
    let gid = vm.tvm.gid();
    vm.tvm.destroy(&mut vm.t, &mut vm.a).unwrap();
    for v in &mut vm.v {
        aia::release(&files, &mut v.binding);
    }
    assert_eq!(files.count(0), (4, 0));
    let tsm = &vm.m.borrow().tsm;
    assert_eq!(tsm.imsic_file_state(0, 1), Some(PageState::Converted));
    assert!(tsm.tvm_irq(gid).is_none());
    assert_eq!(tsm.confidential_pages(), 0);
}

/// Random binds, moves between two CPUs and injections over a sequence of
/// TVMs sharing one pool of files, with COVI and COVH failures injected:
/// after every step the host's pool and the TSM's view of each file
/// agree, and no vCPU is bound to a file the pool thinks free.
#[test]
fn files_stay_accounted_for_under_failures() {
    use kvm_cove::cvm_fw::testing::run_property;
    run_property(64, 400, "proptest-regressions/covi.txt", |tape| {
        let files = HostFiles::new();
        let (mut t, mut a, _n, m) = machine(64 << 20);
        files.convert(&mut t, FILES, &file_pa(&m)).unwrap();
        let info = check_tsm(&mut t).unwrap();
        m.borrow_mut().tsm.seed(tape.next_u64());
        m.borrow_mut().tsm.inject_ppm = [0, 20_000, 200_000][tape.below(3) as usize];
        let mut tvm: Option<(Tvm, Vec<Binding>)> = None;
        let mut lost = [0u32; 2];
        for step in 0..200 {
            match tape.below(8) {
                0 => {
                    // New TVM (the old one destroyed first).
                    if let Some((mut old, mut binds)) = tvm.take() {
                        if old.destroy(&mut t, &mut a).is_ok() {
                            binds.iter_mut().for_each(|b| aia::release(&files, b));
                        } else {
                            // Its files stay the TVM's, and out of the pool.
                            tvm = Some((old, binds));
                            continue;
                        }
                    }
                    let made = (|| {
                        let mut x = Tvm::create(&mut t, &mut a, &info, 16).ok()?;
                        x.init_aia(&mut t, &mut a).ok()?;
                        x.add_region(&mut t, &mut a, Gpa(RAM), 2 << 20).ok()?;
                        for id in 0..3 {
                            x.create_vcpu(&mut t, &mut a, id).ok()?;
                        }
                        x.finalize(&mut t, RAM, 0).ok()?;
                        Some(x)
                    })();
                    // A half-made TVM leaks its pages on purpose here: the
                    // property is about files only.
                    tvm = made.map(|x| (x, vec![Binding::Unbound; 3]));
                }
                1 => m.borrow_mut().tsm.cpu = tape.below(2) as u32,
                2..=5 => {
                    if let Some((x, binds)) = tvm.as_mut() {
                        let id = tape.below(3);
                        let b = &mut binds[id as usize];
                        let before = *b;
                        match bind_here(&mut t, &files, x.gid(), id, b) {
                            Err(BindError::Tsm(_)) if *b == Binding::Broken => {
                                // A rebind failed half way: both files stay out.
                                if let Binding::Bound { cpu, .. } = before {
                                    lost[cpu as usize] += 1;
                                }
                                lost[m.borrow().tsm.cpu as usize] += 1;
                            }
                            _ => {}
                        }
                    }
                }
                6 => {
                    if let Some((x, binds)) = tvm.as_mut() {
                        let mut runs: Vec<VcpuRun> = (0..3).map(VcpuRun::new).collect();
                        for (r, b) in runs.iter_mut().zip(binds.iter()) {
                            r.binding = *b;
                        }
                        let _ = evict_here(&mut t, &files, x.gid(), tape.below(3), &mut runs);
                        for (r, b) in runs.iter().zip(binds.iter_mut()) {
                            if let (Binding::Bound { cpu, .. }, Binding::Broken) = (*b, r.binding) {
                                // A half-done unbind keeps its file out.
                                lost[cpu as usize] += 1;
                            }
                            *b = r.binding;
                        }
                    }
                }
                _ => {
                    if let Some((x, _)) = tvm.as_mut() {
                        let _ = t.inject(x.gid(), tape.below(3), 1 + tape.below(10));
                    }
                }
            }
            // Invariant: per CPU, used files = bound vCPUs + files lost to
            // broken rebinds + files of TVMs whose destroy failed.
            let bound = |cpu: u32| {
                tvm.as_ref().map_or(0, |(_, bs)| {
                    bs.iter()
                        .filter(|b| matches!(b, Binding::Bound { cpu: c, .. } if *c == cpu))
                        .count() as u32
                })
            };
            for cpu in 0..2u32 {
                let (conv, used) = files.count(cpu as usize);
                assert_eq!(conv, 4, "step {step}");
                assert_eq!(used, bound(cpu) + lost[cpu as usize], "step {step}, cpu {cpu}");
                // Every file the pool thinks free, the TSM holds converted.
                for k in 1..=4 {
                    let st = m.borrow().tsm.imsic_file_state(cpu, k);
                    let mine = tvm.as_ref().is_some_and(|(_, bs)| {
                        bs.iter().any(|b| *b == Binding::Bound { cpu, file: k })
                    });
                    if mine {
                        assert!(matches!(st, Some(PageState::Assigned(_))), "step {step}: {cpu}/{k} {st:?}");
                    }
                }
            }
        }
    });
}

#[test]
fn a_vcpu_of_the_same_tvm_gives_up_its_file_when_the_cpu_has_none() {
    let files = HostFiles::new();
    let mut vm = vm(&files, 6);
    let gid = vm.tvm.gid();
    for i in 0..4 {
        assert_eq!(bind_here(&mut vm.t, &files, gid, i, &mut vm.v[i as usize].binding), Ok(Bound::Bound));
    }
    assert_eq!(
        bind_here(&mut vm.t, &files, gid, 4, &mut vm.v[4].binding),
        Err(BindError::NoFile(0))
    );
    let fences = vm.m.borrow().tsm.counts.get(Covh::TvmInitiateFence);
    // vCPU 4 needs one: a sibling bound here is unbound (never itself).
    assert_eq!(evict_here(&mut vm.t, &files, gid, 4, &mut vm.v), Ok(true));
    assert_eq!(vm.v[0].binding, Binding::Unbound);
    assert_eq!(vm.m.borrow().tsm.counts.get(Covh::TvmInitiateFence), fences + 1);
    assert_eq!(vm.covi(Covi::UnbindImsicBegin), 1);
    assert_eq!(vm.covi(Covi::UnbindImsicEnd), 1);
    assert_eq!(bind_here(&mut vm.t, &files, gid, 4, &mut vm.v[4].binding), Ok(Bound::Bound));
    assert_eq!(files.count(0), (4, 4));
    // The unbound vCPU binds again where it runs next.
    vm.on_cpu(1);
    assert_eq!(bind_here(&mut vm.t, &files, gid, 0, &mut vm.v[0].binding), Ok(Bound::Bound));
    vm.tick();
    assert!(vm.t.vcpu_run(gid, 0).is_ok());
    // On CPU 1 only vCPU 0 itself is bound: it has no sibling to evict.
    assert_eq!(evict_here(&mut vm.t, &files, gid, 0, &mut vm.v), Ok(false));
}

#[test]
fn the_model_unbinds_only_on_the_bound_cpu_after_a_fence() {
    let files = HostFiles::new();
    let (mut vm, gid) = bound_vm(&files);
    vm.on_cpu(1);
    assert_eq!(vm.t.unbind_begin(gid, 0), Err(SbiError::InvalidParam));
    vm.on_cpu(0);
    assert_eq!(vm.t.unbind_begin(gid, 0), Ok(()));
    assert_eq!(vm.t.unbind_end(gid, 0), Err(SbiError::InvalidParam));
    vm.t.tvm_fence(gid).unwrap();
    assert_eq!(vm.t.unbind_end(gid, 0), Ok(()));
    assert_eq!(vm.m.borrow().tsm.imsic_file_state(0, 1), Some(PageState::Converted));
}
