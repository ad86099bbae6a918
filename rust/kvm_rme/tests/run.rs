// SPDX-License-Identifier: GPL-2.0
//! The REC run loop against the RMM model: exits handled in the host,
//! exits handed to userspace, and the answers on the next entry.

mod common;

use common::{assert_clean, new_realm, small};
use kvm_rme::abi::{enter_flags, exit_reason, Command, RecRun, Ripas};
use kvm_rme::abi::{ErrorStatus, Ipa, Pa, RmiError};
use kvm_rme::cvm_fw::errno;
use kvm_rme::logic::granule::{GranuleAlloc, Undelegated};
use kvm_rme::logic::realm::{Realm, RealmError, Rec};
use kvm_rme::logic::run::{ExitClass, GuestMemory, Step, UserExit, VcpuRun};
use kvm_rme::logic::vm::RealmVm;
use kvm_rme::model::{ModelAlloc, ModelRmi, ScriptedExit, Shared};

const RAM: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 64 << 10;
const SHARED: u64 = 1 << 39;
const BLOCK: u64 = 2 << 20;

/// The allocator plus a guest_memfd stand-in, the test double of the
/// kernel's `KernelAlloc`.
struct Gmem {
    /// Where pages come from.
    alloc: ModelAlloc,
    /// Private pages handed out (for `[RAM, RAM + RAM_SIZE)` only).
    private_pages: u64,
    /// `POPULATE_REALM` sources currently pinned.
    sources: u64,
    /// Whether the VMM agrees to RIPAS changes.
    vmm_agrees: bool,
    /// Pinned shared pages and blocks: (gpa, pa, size).
    shared: Vec<(u64, Pa, u64)>,
    /// Where the VMM's memory for the shared alias is.
    shared_range: core::ops::Range<u64>,
    /// Whether huge pages back that memory (2 MiB blocks may be mapped).
    huge: bool,
    /// Huge pages handed out, for fake physical addresses.
    blocks: u64,
    /// The SMCCC functions the VMM forwards to itself.
    forwarded: Vec<u32>,
    /// guest_memfd: the page of each private IPA handed out, and the
    /// references on it (as `kvm_gmem_get_pfn` gives the same page to
    /// every lookup of one offset).
    gmem: std::collections::BTreeMap<u64, (Pa, u32)>,
}

impl Gmem {
    /// A guest memory over `alloc` whose VMM agrees to RIPAS changes and
    /// forwards `forwarded` to itself.
    fn new(alloc: ModelAlloc, forwarded: &[u32]) -> Gmem {
        Gmem {
            alloc,
            private_pages: 0,
            sources: 0,
            vmm_agrees: true,
            shared: Vec::new(),
            shared_range: RAM..RAM + RAM_SIZE,
            huge: false,
            blocks: 0,
            forwarded: forwarded.to_vec(),
            gmem: Default::default(),
        }
    }
}

impl GranuleAlloc for Gmem {
    fn alloc(&mut self) -> Option<Undelegated> {
        self.alloc.alloc()
    }
    fn alloc_contiguous(&mut self, count: usize) -> Option<Pa> {
        self.alloc.alloc_contiguous(count)
    }
    fn free(&mut self, page: Undelegated) {
        self.alloc.free(page)
    }
    fn release_data(&mut self, page: Undelegated) {
        // A guest_memfd page goes back when its last reference does.
        let key = self.gmem.iter().find(|(_, (pa, _))| *pa == page.pa()).map(|(k, _)| *k);
        if let Some(k) = key {
            let e = self.gmem.get_mut(&k).unwrap();
            e.1 -= 1;
            if e.1 > 0 {
                return;
            }
            self.gmem.remove(&k);
        }
        self.alloc.release_data(page)
    }
}

impl GuestMemory for Gmem {
    fn private_page(&mut self, ipa: Ipa) -> Result<Undelegated, RealmError> {
        if !(RAM..RAM + RAM_SIZE).contains(&ipa.0) {
            return Err(RealmError::Fault);
        }
        self.private_pages += 1;
        let key = ipa.0 & !0xfff;
        if let Some((pa, refs)) = self.gmem.get_mut(&key) {
            *refs += 1;
            return Undelegated::from_host_page(*pa).ok_or(RealmError::Invalid);
        }
        let page = self.alloc.data_page().ok_or(RealmError::NoMemory)?;
        self.gmem.insert(key, (page.pa(), 1));
        Ok(page)
    }

    fn source_page(&mut self, ipa: Ipa) -> Result<Pa, RealmError> {
        if !(RAM..RAM + RAM_SIZE).contains(&ipa.0) {
            return Err(RealmError::Fault);
        }
        self.sources += 1;
        Ok(self.alloc.alloc().ok_or(RealmError::NoMemory)?.pa())
    }

    fn release_source(&mut self, pa: Pa) {
        self.sources -= 1;
        self.alloc.free(Undelegated::from_host_page(pa).unwrap());
    }

    fn vmm_agrees(&mut self, _base: Ipa, _top: Ipa, _ram: bool) -> bool {
        self.vmm_agrees
    }

    fn shared_page(&mut self, gpa: Ipa) -> Result<Pa, RealmError> {
        if !self.shared_range.contains(&gpa.0) {
            return Err(RealmError::Fault);
        }
        let pa = self.alloc.alloc().ok_or(RealmError::NoMemory)?.pa();
        self.shared.push((gpa.0, pa, 4096));
        Ok(pa)
    }

    fn shared_block(&mut self, gpa: Ipa) -> Option<Pa> {
        assert_eq!(gpa.0 % BLOCK, 0, "blocks are asked for at 2 MiB");
        if !self.huge || !self.shared_range.contains(&gpa.0) || gpa.0 + BLOCK > self.shared_range.end {
            return None;
        }
        // Host memory the RMM never sees as granules: any aligned address.
        self.blocks += 1;
        let pa = Pa((1 << 36) + self.blocks * BLOCK);
        self.shared.push((gpa.0, pa, BLOCK));
        Some(pa)
    }

    fn release_shared(&mut self, gpa: Ipa) {
        let i = self
            .shared
            .iter()
            .position(|(g, _, _)| *g == gpa.0)
            .expect("pinned");
        let (_, pa, size) = self.shared.remove(i);
        if size == 4096 {
            self.alloc.free(Undelegated::from_host_page(pa).unwrap());
        }
    }

    fn forwards_to_user(&mut self, function: u32) -> bool {
        self.forwarded.contains(&function)
    }

    fn shared_in(&self, start: Ipa, end: Ipa) -> Option<(Ipa, u64)> {
        self.shared
            .iter()
            .find(|(g, _, _)| (start.0..end.0).contains(g))
            .map(|(g, _, size)| (Ipa(*g), *size))
    }
}

/// A realm VM of 40 bits after `CREATE_REALM`, with guest memory whose
/// VMM forwards nothing.
fn created_vm() -> (RealmVm, ModelRmi, Gmem, Shared) {
    let (mut rmi, alloc, m) = small();
    let mut alloc = Gmem::new(alloc, &[]);
    let mut vm = RealmVm::new(40, m.borrow().rmm.features);
    create(&mut vm, &mut rmi, &mut alloc);
    (vm, rmi, alloc, m)
}

/// `CREATE_REALM` on `vm` with a fresh VMID.
fn create(vm: &mut RealmVm, rmi: &mut ModelRmi, alloc: &mut Gmem) {
    let mut vmid = 1u16;
    vm.create(rmi, alloc, &mut || {
        vmid += 1;
        vmid
    })
    .unwrap();
}

fn scripted(reason: u8) -> ScriptedExit {
    ScriptedExit {
        reason,
        esr: 0,
        far: 0,
        hpfar: 0,
        gprs: [0; 7],
        ripas: (0, 0, 0),
        imm: 0,
    }
}

/// A data abort at `ipa`; with `isv`, an emulatable 4-byte write of x0.
fn dabt(ipa: u64, isv: bool, value: u64) -> ScriptedExit {
    let mut x = scripted(exit_reason::SYNC);
    x.esr = (0x24 << 26) | (1 << 25) | (1 << 6) | 0x07;
    if isv {
        x.esr |= (1 << 24) | (2 << 22);
    }
    x.hpfar = (ipa >> 12) << 4;
    x.far = ipa & 0xfff;
    x.gprs[0] = value;
    x
}

struct Vm {
    rmi: ModelRmi,
    alloc: Gmem,
    m: Shared,
    realm: Realm,
    rec: Rec,
    run: Box<RecRun>,
    vcpu: VcpuRun,
    sysreg_writes: Vec<(u64, u64)>,
    /// What the VMM answers a forwarded host call with.
    hypercall_ret: u64,
}

fn active_vm() -> Vm {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    realm
        .init_ripas(&mut rmi, &mut alloc, Ipa(RAM), Ipa(RAM + RAM_SIZE))
        .unwrap();
    let rec = realm
        .rec_create(&mut rmi, &mut alloc, 0, RAM, [0; 8], true)
        .unwrap();
    realm.activate(&mut rmi).unwrap();
    Vm {
        rmi,
        alloc: Gmem::new(alloc, &[]),
        m,
        realm,
        rec,
        run: Box::default(),
        vcpu: VcpuRun::new(),
        sysreg_writes: Vec::new(),
        hypercall_ret: 0,
    }
}

impl Vm {
    fn script(&mut self, x: ScriptedExit) {
        self.m.borrow_mut().rmm.exits.push_back(x);
    }

    /// Like `KVM_RUN`: answer the last exit, enter until userspace.
    fn run(&mut self, mmio_data: u64) -> Result<UserExit, i32> {
        self.vcpu.resume(
            &mut self.realm,
            &mut self.rmi,
            &mut self.alloc,
            &self.rec,
            &mut self.run,
            mmio_data,
            self.hypercall_ret,
        );
        for _ in 0..100 {
            let step = self.enter_once(&mut |_| None)?;
            match step {
                Step::Enter | Step::Idle => {}
                Step::SysRegWrite { esr, value } => self.sysreg_writes.push((esr, value)),
                Step::Wait => return Err(errno::EAGAIN),
                Step::User(u) => return Ok(u),
            }
        }
        panic!("no user exit in 100 entries");
    }

    /// One entry with `target` finding PSCI targets, as `KVM_RUN` would.
    fn enter_once(&mut self, target: &mut dyn FnMut(u64) -> Option<Pa>) -> Result<Step, i32> {
        self.enter_typed(target).map_err(|e| e.errno())
    }

    /// [`Vm::enter_once`] with the typed error.
    fn enter_typed(
        &mut self,
        target: &mut dyn FnMut(u64) -> Option<Pa>,
    ) -> Result<Step, RealmError> {
        self.vcpu.enter(
            &mut self.realm,
            &mut self.rmi,
            &mut self.alloc,
            &self.rec,
            &mut self.run,
            target,
        )
    }

    /// [`Vm::finish`] for a VM with a second REC.
    fn finish_with(mut self, rec1: Rec) {
        self.realm
            .rec_destroy(&mut self.rmi, &mut self.alloc, rec1)
            .unwrap();
        self.finish();
    }

    fn finish(mut self) {
        // Teardown unmaps shared pages with the RTTs; their pins go after.
        let pinned: Vec<u64> = self.alloc.shared.iter().map(|(g, _, _)| *g).collect();
        self.realm
            .rec_destroy(&mut self.rmi, &mut self.alloc, self.rec)
            .unwrap();
        self.realm.destroy(&mut self.rmi, &mut self.alloc).unwrap();
        for g in pinned {
            self.alloc.release_shared(Ipa(g));
        }
        assert_eq!(self.realm.stats().leaked, 0);
        assert_clean(&self.m);
    }
}

#[test]
fn payload_like_sequence() {
    let mut vm = active_vm();
    // A fault on private RAM is served from guest memory, silently.
    vm.script(dabt(RAM + 0x2000, false, 0));
    vm.script(scripted(exit_reason::IRQ));
    vm.script(scripted(exit_reason::HOST_CALL));
    // An MMIO write on the shared alias goes to userspace.
    vm.script(dabt(SHARED | 0x0900_0000, true, 0xdead_beef));
    let u = vm.run(0).unwrap();
    assert_eq!(
        u,
        UserExit::Mmio {
            addr: 0x0900_0000,
            len: 4,
            write: true,
            data: 0xdead_beef
        }
    );
    assert_eq!(vm.alloc.private_pages, 1);
    assert_eq!(vm.realm.stats().data_pages, 1);
    // The host call was answered NOT_SUPPORTED in x0.
    assert_eq!(vm.run.enter.gprs[0], u64::MAX);

    // A RIPAS change to EMPTY over the faulted page: a memory fault.
    let mut x = scripted(exit_reason::RIPAS_CHANGE);
    x.ripas = (RAM, RAM + 0x4000, Ripas::Empty as u8);
    vm.script(x);
    let u = vm.run(0).unwrap();
    assert_eq!(
        u,
        UserExit::MemoryFault {
            gpa: RAM,
            size: 0x4000,
            private: false
        }
    );
    assert!(vm.vcpu.has_pending());
    // Nothing more scripted: the model realm powers off on the next entry,
    // after the RIPAS change was carried out and accepted.
    let u = vm.run(0).unwrap();
    assert_eq!(u, UserExit::SystemEvent { reset: false });
    assert_eq!(
        vm.run.enter.flags & enter_flags::RIPAS_RESPONSE_REJECT,
        0,
        "RIPAS change accepted"
    );
    // The page that left RAM went back to guest memory.
    assert_eq!(vm.realm.stats().data_pages, 0);
    let e = vm.vcpu.exits;
    assert_eq!(e[ExitClass::Fault as usize], 1);
    assert_eq!(e[ExitClass::Irq as usize], 1);
    assert_eq!(e[ExitClass::HostCall as usize], 1);
    assert_eq!(e[ExitClass::Mmio as usize], 1);
    assert_eq!(e[ExitClass::Ripas as usize], 1);
    assert_eq!(e[ExitClass::Psci as usize], 1);
    // Entering a powered-off realm reports the shutdown again.
    assert_eq!(vm.run(0).unwrap(), UserExit::SystemEvent { reset: false });
    vm.finish();
}

#[test]
fn mmio_read_value_reaches_the_realm() {
    let mut vm = active_vm();
    let mut x = dabt(SHARED | 0x1000, true, 0);
    x.esr &= !(1 << 6); // a read
    vm.script(x);
    let u = vm.run(0).unwrap();
    assert!(matches!(u, UserExit::Mmio { write: false, .. }));
    let _ = vm.run(0x1_2345_6789).unwrap();
    assert_eq!(vm.run.enter.gprs[0], 0x2345_6789);
    // 4-byte read: truncated, with the emulated-MMIO flag.  (The model
    // powered off on that entry; the entry side is what matters.)
    assert_eq!(vm.m.borrow().rmm.counts.get(Command::RecEnter), 2);
    vm.finish();
}

#[test]
fn fault_outside_guest_memory_goes_to_userspace() {
    let mut vm = active_vm();
    vm.script(dabt(0x4000_0000, false, 0));
    let u = vm.run(0).unwrap();
    assert_eq!(
        u,
        UserExit::MemoryFault {
            gpa: 0x4000_0000,
            size: 4096,
            private: true
        }
    );
    assert_eq!(vm.alloc.private_pages, 0);
    vm.finish();
}

#[test]
fn refused_ripas_change_is_rejected() {
    let mut vm = active_vm();
    let mut x = scripted(exit_reason::RIPAS_CHANGE);
    x.ripas = (RAM, RAM + 0x1000, Ripas::Empty as u8);
    vm.script(x);
    vm.script(scripted(exit_reason::IRQ));
    vm.script(dabt(SHARED | 0x1000, true, 1));
    assert!(matches!(vm.run(0), Ok(UserExit::MemoryFault { .. })));
    vm.m.borrow_mut()
        .rmm
        .fail_next
        .push((Command::RttSetRipas, RmiError::new(ErrorStatus::Input, 0)));
    // Resume rejects; the first entry carries the flag and the next exits
    // are handled as usual.
    vm.vcpu.resume(
        &mut vm.realm,
        &mut vm.rmi,
        &mut vm.alloc,
        &vm.rec,
        &mut vm.run,
        0,
        0,
    );
    assert_ne!(vm.run.enter.flags & enter_flags::RIPAS_RESPONSE_REJECT, 0);
    assert!(matches!(vm.run(0), Ok(UserExit::Mmio { .. })));
    vm.finish();
}

#[test]
fn enter_without_answering_is_refused() {
    let mut vm = active_vm();
    vm.script(dabt(SHARED | 0x1000, true, 1));
    assert!(matches!(vm.run(0), Ok(UserExit::Mmio { .. })));
    let r = vm.enter_once(&mut |_| None);
    assert_eq!(r, Err(errno::EINVAL));
    vm.finish();
}

#[test]
fn psci_cpu_on_completes_towards_the_target() {
    let (mut vm, rec1) = two_rec_vm(&[]);
    let t1: Pa = rec1.pa();
    let mut target = |mpidr: u64| (mpidr == 1).then_some(t1);
    vm.script(psci_exit(0xC400_0003, 1));
    let step = vm.enter_once(&mut target);
    assert_eq!(step, Ok(Step::Enter));
    assert_eq!(vm.m.borrow().rmm.counts.get(Command::PsciComplete), 1);
    // A target with no REC: EINVAL, no completion.
    vm.script(psci_exit(0xC400_0003, 7));
    let r = vm.enter_once(&mut target);
    assert_eq!(r, Err(errno::EINVAL));
    assert_eq!(vm.m.borrow().rmm.counts.get(Command::PsciComplete), 1);
    let _ = rec1;
}

/// A teardown that fails every few calls still finishes: each failed try
/// keeps what it undid, and teardown goes on while tries give granules
/// back (the RMI failure-injection selftest's leaky teardowns).
#[test]
fn a_teardown_failing_now_and_then_finishes_without_leaks() {
    // Every n-th call fails, for each n: no period lines up with the
    // teardown's steps so that it stops.
    for every in 2..=9 {
        let (mut vm, mut rmi, mut alloc, m) = created_vm();
        vm.init_ripas(&mut rmi, &mut alloc, RAM, RAM_SIZE).unwrap();
        vm.populate(&mut rmi, &mut alloc, RAM, RAM_SIZE, true)
            .unwrap();
        assert_eq!(vm.realm().unwrap().stats().data_pages, 16);
        m.borrow_mut().rmm.fail_every = every;
        let stats = vm.destroy_counted(&mut rmi, &mut alloc);
        let injected = m.borrow().rmm.injected;
        assert!(injected > 3, "every {every}: only {injected} failures");
        assert_eq!(stats.leaked, 0, "every {every}-th call failing");
        assert_clean(&m);
    }
}

#[test]
fn populate_from_guest_memory() {
    let (mut rmi, alloc, m) = small();
    let mut alloc = Gmem::new(alloc, &[]);
    let mut vm = RealmVm::new(40, m.borrow().rmm.features);
    assert_eq!(
        vm.populate(&mut rmi, &mut alloc, RAM, 4096, true)
            .map_err(|e| e.errno()),
        Err(errno::EPERM),
        "before CREATE_REALM"
    );
    create(&mut vm, &mut rmi, &mut alloc);
    vm.init_ripas(&mut rmi, &mut alloc, RAM, RAM_SIZE).unwrap();
    for (base, size) in [
        (RAM + 1, 4096),
        (RAM, 0),
        (RAM, 100),
        (SHARED, 4096),
        (u64::MAX - 4095, 4096),
    ] {
        assert_eq!(
            vm.populate(&mut rmi, &mut alloc, base, size, true)
                .map_err(|e| e.errno()),
            Err(errno::EINVAL),
            "{base:#x}+{size:#x}"
        );
    }
    vm.populate(&mut rmi, &mut alloc, RAM, 0x4000, true)
        .unwrap();
    assert_eq!(vm.realm().unwrap().stats().data_pages, 4);
    assert_eq!(alloc.sources, 0, "sources unpinned");
    // Again: the RMM refuses, the guest page goes back.
    assert!(matches!(
        vm.populate(&mut rmi, &mut alloc, RAM, 0x1000, false)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL | errno::ENXIO)
    ));
    // Runs off the end of guest memory: EFAULT, earlier pages stay.
    assert_eq!(
        vm.populate(&mut rmi, &mut alloc, RAM + RAM_SIZE - 0x1000, 0x2000, false)
            .map_err(|e| e.errno()),
        Err(errno::EFAULT)
    );
    assert_eq!(vm.realm().unwrap().stats().data_pages, 5);
    assert_eq!(alloc.sources, 0, "sources unpinned");
    // Memslot removal over the first two pages; the shared half is clipped.
    vm.unmap_range(&mut rmi, &mut alloc, RAM, 0x2000).unwrap();
    assert_eq!(vm.realm().unwrap().stats().data_pages, 3);
    vm.unmap_range(&mut rmi, &mut alloc, SHARED, 0x2000)
        .unwrap();
    assert_eq!(
        vm.unmap_range(&mut rmi, &mut alloc, RAM + 1, 0x2000)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    vm.activate(&mut rmi).unwrap();
    assert_eq!(
        vm.populate(&mut rmi, &mut alloc, RAM + 0x8000, 0x1000, false)
            .map_err(|e| e.errno()),
        Err(errno::EPERM),
        "after ACTIVATE_REALM"
    );
    assert!(vm.active_realm().is_ok());
    assert_eq!(vm.destroy(&mut rmi, &mut alloc), 0);
    assert_clean(&m);
}

#[test]
fn memslot_removal_gives_private_pages_back() {
    let mut vm = active_vm();
    vm.script(dabt(RAM + 0x3000, false, 0));
    vm.script(dabt(RAM + 0x5000, false, 0));
    vm.script(dabt(SHARED | 0x1000, true, 1));
    assert!(matches!(vm.run(0), Ok(UserExit::Mmio { .. })));
    assert_eq!(vm.realm.stats().data_pages, 2);
    let mut rvm = RealmVm::new(40, vm.m.borrow().rmm.features);
    // No realm: nothing to do.
    assert_eq!(
        rvm.unmap_range(&mut vm.rmi, &mut vm.alloc, RAM, RAM_SIZE),
        Ok(())
    );
    // The slot covering the second page only.
    vm.realm
        .unmap_private(
            &mut vm.rmi,
            &mut vm.alloc,
            Ipa(RAM + 0x4000),
            Ipa(RAM + 0x6000),
        )
        .unwrap();
    assert_eq!(vm.realm.stats().data_pages, 1);
    vm.finish();
}

#[test]
fn ripas_change_the_vmm_did_not_agree_to_is_rejected() {
    let mut vm = active_vm();
    vm.script(dabt(RAM + 0x1000, false, 0));
    let mut x = scripted(exit_reason::RIPAS_CHANGE);
    x.ripas = (RAM, RAM + 0x2000, Ripas::Empty as u8);
    vm.script(x);
    vm.script(dabt(SHARED | 0x1000, true, 1));
    assert!(matches!(vm.run(0), Ok(UserExit::MemoryFault { .. })));
    assert_eq!(vm.realm.stats().data_pages, 1);
    vm.alloc.vmm_agrees = false;
    assert!(matches!(vm.run(0), Ok(UserExit::Mmio { .. })));
    // Rejected on that entry: no RTT_SET_RIPAS, the page stays mapped.
    assert_eq!(vm.m.borrow().rmm.counts.get(Command::RttSetRipas), 0);
    assert_eq!(vm.realm.stats().data_pages, 1);
    vm.finish();
}

#[test]
fn shared_memory_faults_map_the_vmm_page() {
    let (mut vm, mut rmi, mut alloc, m) = created_vm();
    let rec = vm
        .rec_create(&mut rmi, &mut alloc, 0, RAM, [0; 8], true)
        .unwrap();
    vm.activate(&mut rmi).unwrap();
    // An emulatable access to the shared alias of RAM: a memslot backs
    // it, so it is mapped, not MMIO; a second access (as from another
    // vCPU) finds it mapped; an access outside memory is MMIO.
    for x in [
        dabt(SHARED | (RAM + 0x3008), true, 7),
        dabt(SHARED | (RAM + 0x3000), false, 0),
        dabt(SHARED | 0x1000, true, 1),
    ] {
        m.borrow_mut().rmm.exits.push_back(x);
    }
    let mut run: Box<RecRun> = Box::default();
    let mut v = VcpuRun::new();
    let mut steps = Vec::new();
    for _ in 0..3 {
        let realm = vm.active_realm().unwrap();
        steps.push(
            v.enter(realm, &mut rmi, &mut alloc, &rec, &mut run, &mut |_| None)
                .unwrap(),
        );
    }
    assert_eq!(steps[0], Step::Enter);
    assert_eq!(steps[1], Step::Enter);
    assert!(matches!(
        steps[2],
        Step::User(UserExit::Mmio { addr: 0x1000, .. })
    ));
    assert_eq!(alloc.shared.len(), 1, "one page pinned");
    assert_eq!(v.exits[ExitClass::Fault as usize], 2);
    // Memslot removal unmaps and unpins it.
    vm.unmap_range(&mut rmi, &mut alloc, RAM, RAM_SIZE).unwrap();
    assert!(alloc.shared.is_empty());
    assert_eq!(m.borrow().rmm.counts.get(Command::RttUnmapUnprotected), 1);
    vm.rec_destroy(&mut rmi, &mut alloc, rec);
    assert_eq!(vm.destroy(&mut rmi, &mut alloc), 0);
    assert_clean(&m);
}

#[test]
fn sysreg_writes_go_to_the_kernel_reads_are_zero() {
    let mut vm = active_vm();
    // MSR ICC_SGI1R_EL1, x3 (Op0 3, Op1 0, CRn 12, CRm 11, Op2 5): a write.
    let iss = (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
    let mut x = scripted(exit_reason::SYNC);
    x.esr = (0x18 << 26) | (1 << 25) | iss;
    x.gprs[0] = 0x0001_0000_0000_0002;
    vm.script(x.clone());
    // The same register read (direction bit set): zero, no kernel work.
    x.esr |= 1;
    vm.script(x);
    vm.script(dabt(SHARED | 0x1000, true, 1));
    assert!(matches!(vm.run(0), Ok(UserExit::Mmio { .. })));
    assert_eq!(
        vm.sysreg_writes,
        vec![((0x18 << 26) | (1 << 25) | iss, 0x0001_0000_0000_0002)]
    );
    vm.finish();
}

#[test]
fn wfi_is_an_idle_step_wfe_is_not() {
    let mut vm = active_vm();
    let mut wfi = scripted(exit_reason::SYNC);
    wfi.esr = (0x01 << 26) | (1 << 25);
    let mut wfe = wfi.clone();
    wfe.esr |= 1;
    for x in [wfi, wfe] {
        vm.script(x);
    }
    let mut steps = Vec::new();
    for _ in 0..2 {
        steps.push(
            vm.vcpu
                .enter(
                    &mut vm.realm,
                    &mut vm.rmi,
                    &mut vm.alloc,
                    &vm.rec,
                    &mut vm.run,
                    &mut |_| None,
                )
                .unwrap(),
        );
    }
    assert_eq!(steps, vec![Step::Idle, Step::Enter]);
    vm.finish();
}

/// A realm with two RECs, the second off; `forwarded` is what the VMM's
/// SMCCC filter sends to userspace.
fn two_rec_vm(forwarded: &[u32]) -> (Vm, Rec) {
    let (mut rmi, mut alloc, m) = small();
    let mut realm = new_realm(&mut rmi, &mut alloc, 40);
    let rec = realm
        .rec_create(&mut rmi, &mut alloc, 0, RAM, [0; 8], true)
        .unwrap();
    let rec1 = realm
        .rec_create(&mut rmi, &mut alloc, 1, 0, [0; 8], false)
        .unwrap();
    realm.activate(&mut rmi).unwrap();
    let vm = Vm {
        rmi,
        alloc: Gmem::new(alloc, forwarded),
        m,
        realm,
        rec,
        run: Box::default(),
        vcpu: VcpuRun::new(),
        sysreg_writes: Vec::new(),
        hypercall_ret: 0,
    };
    (vm, rec1)
}

fn psci_exit(function: u32, mpidr: u64) -> ScriptedExit {
    let mut x = scripted(exit_reason::PSCI);
    x.gprs[0] = u64::from(function);
    x.gprs[1] = mpidr;
    x.gprs[2] = 0x8000_1000;
    x
}

#[test]
fn forwarded_cpu_on_waits_for_psci_complete() {
    const CPU_ON: u32 = 0xC400_0003;
    const DENIED: u32 = -3i32 as u32;
    let (mut vm, rec1) = two_rec_vm(&[CPU_ON]);
    vm.script(psci_exit(CPU_ON, 1));
    assert_eq!(
        vm.run(0),
        Ok(UserExit::Hypercall {
            nr: u64::from(CPU_ON),
            args: [1, 0x8000_1000, 0, 0, 0, 0],
            smc: true
        })
    );
    // KVM_RUN before the completion: refused, nothing entered.
    let entries = vm.m.borrow().rmm.counts.get(Command::RecEnter);
    assert_eq!(vm.run(0), Err(errno::EINVAL));
    assert_eq!(vm.m.borrow().rmm.counts.get(Command::RecEnter), entries);
    let t1 = Some(rec1.pa());
    // The wrong MPIDR, a target without a REC, a status the RMM refuses.
    assert_eq!(
        vm.vcpu
            .psci_complete(&mut vm.rmi, &vm.rec, 2, t1, 0)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    assert_eq!(
        vm.vcpu
            .psci_complete(&mut vm.rmi, &vm.rec, 1, None, 0)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    assert_eq!(
        vm.vcpu
            .psci_complete(&mut vm.rmi, &vm.rec, 1, t1, 5)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    assert_eq!(vm.m.borrow().rmm.counts.get(Command::PsciComplete), 1);
    // DENIED is a valid answer to CPU_ON.
    assert_eq!(
        vm.vcpu.psci_complete(&mut vm.rmi, &vm.rec, 1, t1, DENIED),
        Ok(())
    );
    // Once only.
    assert_eq!(
        vm.vcpu
            .psci_complete(&mut vm.rmi, &vm.rec, 1, t1, 0)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    // The realm runs on (and powers off: nothing more is scripted).
    assert_eq!(vm.run(0), Ok(UserExit::SystemEvent { reset: false }));
    assert_eq!(vm.vcpu.exits[ExitClass::Psci as usize], 2);
    vm.finish_with(rec1);
}

#[test]
fn affinity_info_takes_success_only_and_unforwarded_psci_stays_in_the_kernel() {
    const AFFINITY_INFO: u32 = 0xC400_0004;
    let (mut vm, rec1) = two_rec_vm(&[AFFINITY_INFO, 0x8400_0008]);
    vm.script(psci_exit(AFFINITY_INFO, 1));
    assert!(matches!(
        vm.run(0),
        Ok(UserExit::Hypercall { smc: true, .. })
    ));
    let t1 = Some(rec1.pa());
    assert_eq!(
        vm.vcpu
            .psci_complete(&mut vm.rmi, &vm.rec, 1, t1, -3i32 as u32)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    assert_eq!(
        vm.vcpu.psci_complete(&mut vm.rmi, &vm.rec, 1, t1, 0),
        Ok(())
    );
    // SYSTEM_OFF is forwarded too: a hypercall exit, and the realm is off.
    vm.script(psci_exit(0x8400_0008, 0));
    assert!(matches!(
        vm.run(0),
        Ok(UserExit::Hypercall {
            nr: 0x8400_0008,
            ..
        })
    ));
    vm.finish_with(rec1);

    // Without forwarding, PSCI_COMPLETE from userspace has nothing to do.
    let (mut vm, rec1) = two_rec_vm(&[]);
    vm.script(psci_exit(0xC400_0003, 1));
    let t1 = rec1.pa();
    let mut step = vm.enter_once(&mut |m| (m == 1).then_some(t1));
    assert_eq!(step, Ok(Step::Enter));
    assert_eq!(
        vm.vcpu
            .psci_complete(&mut vm.rmi, &vm.rec, 1, Some(t1), 0)
            .map_err(|e| e.errno()),
        Err(errno::EINVAL)
    );
    step = vm.enter_once(&mut |_| None);
    assert_eq!(step, Ok(Step::User(UserExit::SystemEvent { reset: false })));
    vm.finish_with(rec1);
}

#[test]
fn host_calls_go_to_the_vmm_that_forwards_them() {
    const VENDOR: u32 = 0xC600_0001;
    let mut vm = active_vm();
    vm.alloc.forwarded.push(VENDOR);
    let mut x = scripted(exit_reason::HOST_CALL);
    x.gprs = [u64::from(VENDOR), 11, 12, 13, 14, 15, 16];
    vm.script(x.clone());
    // Not forwarded: answered NOT_SUPPORTED in the kernel.
    x.gprs[0] = 0xC600_0002;
    vm.script(x);
    assert_eq!(
        vm.run(0),
        Ok(UserExit::Hypercall {
            nr: u64::from(VENDOR),
            args: [11, 12, 13, 14, 15, 16],
            smc: false
        })
    );
    vm.hypercall_ret = 0x1234;
    // The answer goes in with the next entry; the second call is refused
    // without userspace, then the realm powers off.
    assert_eq!(vm.run(0), Ok(UserExit::SystemEvent { reset: false }));
    let gprs = vm.m.borrow().rmm.entries.clone();
    assert_eq!(gprs[gprs.len() - 2][..3], [0x1234, 11, 12]);
    assert_eq!(gprs[gprs.len() - 1][0], u64::MAX);
    assert_eq!(vm.vcpu.exits[ExitClass::HostCall as usize], 2);
    vm.finish();
}

/// The VMM's memory behind 4 MiB of shared alias at `BIG`.
const BIG: u64 = 0xC000_0000;

fn shared_block_vm() -> (RealmVm, ModelRmi, Gmem, Shared, Rec) {
    let (mut vm, mut rmi, mut alloc, m) = created_vm();
    alloc.shared_range = BIG..BIG + 2 * BLOCK;
    let rec = vm
        .rec_create(&mut rmi, &mut alloc, 0, RAM, [0; 8], true)
        .unwrap();
    vm.activate(&mut rmi).unwrap();
    (vm, rmi, alloc, m, rec)
}

/// Faults on the shared alias at `ipas`, one entry each; every one must
/// be handled in the kernel.
fn shared_faults(vm: &mut RealmVm, rmi: &mut ModelRmi, alloc: &mut Gmem, m: &Shared, rec: &Rec, ipas: &[u64]) {
    let mut run: Box<RecRun> = Box::default();
    let mut v = VcpuRun::new();
    for &ipa in ipas {
        let mut x = dabt(SHARED | ipa, false, 0);
        x.esr &= !(1 << 6);
        m.borrow_mut().rmm.exits.push_back(x);
        let realm = vm.active_realm().unwrap();
        assert_eq!(
            v.enter(realm, rmi, alloc, rec, &mut run, &mut |_| None),
            Ok(Step::Enter),
            "{ipa:#x}"
        );
    }
}

/// The level and output address of the shared alias mapping of `gpa`.
fn mapped_level(vm: &mut RealmVm, rmi: &mut ModelRmi, gpa: u64) -> (u8, u64) {
    use kvm_rme::abi::RttEntryState;
    use kvm_rme::logic::rmi::Rmi;
    let rd = vm.realm().unwrap().rd();
    for level in [2u8, 3] {
        let size = 1u64 << (12 + 9 * (3 - u32::from(level)));
        let e = rmi.rtt_read_entry(rd, Ipa((SHARED | gpa) & !(size - 1)), level).unwrap();
        if e.level == level && e.state == RttEntryState::Assigned {
            return (level, e.desc & 0xffff_ffff_f000 & !(size - 1));
        }
    }
    panic!("{gpa:#x} is not mapped");
}

#[test]
fn huge_pages_behind_the_shared_alias_are_mapped_as_2mib_blocks() {
    let (mut vm, mut rmi, mut alloc, m, rec) = shared_block_vm();
    alloc.huge = true;
    // The first fault maps the whole 2 MiB; the next ones in that block
    // (as from other vCPUs that faulted at the same time) map nothing.
    shared_faults(&mut vm, &mut rmi, &mut alloc, &m, &rec, &[BIG + 0x5000]);
    let maps = m.borrow().rmm.counts.get(Command::RttMapUnprotected);
    shared_faults(&mut vm, &mut rmi, &mut alloc, &m, &rec, &[BIG + 0x1f_f000, BIG]);
    assert_eq!(m.borrow().rmm.counts.get(Command::RttMapUnprotected), maps);
    assert_eq!(alloc.shared.len(), 1);
    assert_eq!(alloc.shared[0].2, BLOCK, "one block pinned");
    assert_eq!(mapped_level(&mut vm, &mut rmi, BIG + 0x1f_f000), (2, alloc.shared[0].1 .0));
    // The second block is backed by small pages: 4 KiB mappings.
    alloc.huge = false;
    shared_faults(&mut vm, &mut rmi, &mut alloc, &m, &rec, &[BIG + BLOCK + 0x3000, BIG + BLOCK + 0x3000]);
    assert_eq!(alloc.shared.len(), 2);
    assert_eq!(mapped_level(&mut vm, &mut rmi, BIG + BLOCK + 0x3000), (3, alloc.shared[1].1 .0));
    // Memslot removal unmaps the block and the page and unpins both.
    vm.unmap_range(&mut rmi, &mut alloc, BIG, 2 * BLOCK).unwrap();
    assert!(alloc.shared.is_empty());
    vm.rec_destroy(&mut rmi, &mut alloc, rec);
    assert_eq!(vm.destroy(&mut rmi, &mut alloc), 0);
    assert_clean(&m);
}

#[test]
fn a_shared_block_needs_its_range_free_of_page_tables() {
    let (mut vm, mut rmi, mut alloc, m, rec) = shared_block_vm();
    // A page mapped and unmapped leaves a page table in the block.
    shared_faults(&mut vm, &mut rmi, &mut alloc, &m, &rec, &[BIG + 0x1000]);
    vm.unmap_range(&mut rmi, &mut alloc, BIG, BLOCK).unwrap();
    alloc.huge = true;
    shared_faults(&mut vm, &mut rmi, &mut alloc, &m, &rec, &[BIG + 0x2000, BIG + BLOCK]);
    let sizes: Vec<u64> = alloc.shared.iter().map(|s| s.2).collect();
    assert_eq!(sizes, [4096, BLOCK], "a page where the table is, a block where none is");
    // Teardown without memslot removal unmaps the block as well; the
    // kernel then unpins what is left (`unpin_all_shared`).
    vm.rec_destroy(&mut rmi, &mut alloc, rec);
    assert_eq!(vm.destroy(&mut rmi, &mut alloc), 0);
    while let Some(&(g, _, _)) = alloc.shared.first() {
        alloc.release_shared(Ipa(g));
    }
    assert_clean(&m);
}

#[test]
fn populate_first_then_init_ripas_over_the_rest_only() {
    // kvmtool's order: the images are populated (which makes them RAM)
    // and INIT_RIPAS covers only the RAM around them, in any GPA order.
    let (mut vm, mut rmi, mut alloc, m) = created_vm();
    vm.populate(&mut rmi, &mut alloc, RAM + 0x8000, 0x2000, true)
        .unwrap();
    vm.populate(&mut rmi, &mut alloc, RAM, 0x1000, true).unwrap();
    for (base, size) in [
        (RAM + 0xa000, RAM_SIZE - 0xa000),
        (RAM + 0x1000, 0x7000),
    ] {
        vm.init_ripas(&mut rmi, &mut alloc, base, size)
            .unwrap_or_else(|e| panic!("INIT_RIPAS {base:#x}+{size:#x}: {e:?}"));
    }
    // Over a populated granule, the RMM refuses.
    assert_eq!(
        vm.init_ripas(&mut rmi, &mut alloc, RAM, 0x1000)
            .map_err(|e| e.errno()),
        Err(errno::ENXIO)
    );
    let rec = vm
        .rec_create(&mut rmi, &mut alloc, 0, RAM, [0; 8], true)
        .unwrap();
    vm.activate(&mut rmi).unwrap();
    assert_eq!(vm.realm().unwrap().stats().data_pages, 3);
    // The rest of RAM is RAM: a fault there is served from guest_memfd.
    let mut run: Box<RecRun> = Box::default();
    let mut v = VcpuRun::new();
    let mut x = scripted(exit_reason::SYNC);
    x.esr = (0x24 << 26) | 0x07;
    x.hpfar = ((RAM + 0xc000) >> 12) << 4;
    m.borrow_mut().rmm.exits.push_back(x);
    let realm = vm.active_realm().unwrap();
    assert_eq!(
        v.enter(realm, &mut rmi, &mut alloc, &rec, &mut run, &mut |_| None),
        Ok(Step::Enter)
    );
    assert_eq!(vm.realm().unwrap().stats().data_pages, 4);
    vm.rec_destroy(&mut rmi, &mut alloc, rec);
    assert_eq!(vm.destroy(&mut rmi, &mut alloc), 0);
    assert_clean(&m);
}

/// Two vCPUs fault the same private page: the second finds the
/// guest_memfd page (the same page, a second reference) already
/// delegated and mapped by the first.  Its delegation is refused; the
/// mapping is there, so it enters again, drops its reference, and
/// nothing leaks or returns to the host still delegated.
#[test]
fn a_private_page_faulted_by_two_vcpus_is_mapped_once() {
    let mut vm = active_vm();
    let ipa = RAM + 0x5000;
    vm.script(dabt(ipa, false, 0));
    vm.script(dabt(ipa, false, 0));
    vm.script(scripted(exit_reason::PSCI));
    let delegate = kvm_rme::logic::granule::delegate_command(&vm.rmi);
    let calls0 = vm.m.borrow().rmm.counts.get(delegate);
    let r = vm.run(0);
    assert!(matches!(r, Ok(UserExit::SystemEvent { .. }) | Ok(UserExit::Hypercall { .. })), "{r:?}");
    assert_eq!(vm.alloc.private_pages, 2, "both faults looked the page up");
    assert_eq!(vm.realm.stats().data_pages, 1, "mapped once");
    assert_eq!(
        vm.m.borrow().rmm.counts.get(delegate) - calls0,
        2,
        "the second delegation was tried and refused"
    );
    assert_eq!(vm.alloc.gmem.values().map(|(_, n)| *n).sum::<u32>(), 1, "one reference left");
    vm.finish();
}
