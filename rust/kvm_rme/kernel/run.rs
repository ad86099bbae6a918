// SPDX-License-Identifier: GPL-2.0

//! `KVM_RUN` of a realm vCPU: the loop around one `REC_ENTER` and its
//! exit, and `struct kvm_run` on the way out.
//!
//! Each pass checks for signals and rescheduling, loads the vgic's list
//! registers (the C glue), enters the REC without holding the realm's
//! mutex, and carries out what [`VcpuRun::finish`] decided: enter again,
//! dispatch an SGI, sleep in WFI until an interrupt or the earlier timer,
//! wait for a PSCI target, hand MMIO to an in-kernel device, or return to
//! userspace.  The decisions themselves are the host-tested logic in
//! `logic/run.rs`.

use core::ffi::c_int;

use kernel::bindings;
use kernel::prelude::*;

use crate::abi::{Pa, REC_GIC_NUM_LRS};
use crate::cvm_fw::kvm_run;
use crate::glue::kvm::{Kvm, Vcpu};
use crate::glue::vm::{self, with_state, EntryCtx, State};
use crate::logic::exit::{self, Timers};
use crate::logic::realm::RealmError;
use crate::logic::run::{ExitClass, Step, UserExit};
use crate::logic::vm::PsciComplete;

/// The vgic's list registers around one entry.
struct Gic {
    hcr: u64,
    lrs: [u64; REC_GIC_NUM_LRS],
    n: u32,
}

/// What one entry reported besides its step: whether the REC ran, and
/// then the GIC and timer state of its exit.
struct Exited {
    entered: bool,
    lrs: [u64; REC_GIC_NUM_LRS],
    vmcr: u64,
    timers: Timers,
}

/// The physical counter, which realms see without offset, and its rate.
fn counter() -> (u64, u32) {
    // SAFETY: `arch_timer_read_counter` is set by the arch timer driver
    // before KVM initialises (KVM needs the timer); it reads the counter
    // with the errata workarounds of this CPU.
    let now = unsafe { bindings::arch_timer_read_counter.map(|f| f()) };
    // SAFETY: a plain getter of the timer driver's rate.
    let rate = unsafe { bindings::arch_timer_get_rate() };
    (now.unwrap_or(0), rate)
}

/// `KVM_RUN`: answers the exit userspace saw, then runs the vCPU until an
/// exit userspace must see, a signal, or an error.  Returns 0 or a
/// negative errno, as `kvm_arch_vcpu_ioctl_run()` does.
pub(crate) fn vcpu_run(mut vcpu: Vcpu) -> c_int {
    let kvm = vcpu.kvm();
    let idx = vcpu.idx();
    let (mmio_data, hypercall_ret) = previous_answer(vcpu.run());
    if let Err(e) = resume(kvm, idx, mmio_data, hypercall_ret) {
        return -e.errno();
    }
    if !vcpu.wants_to_run() {
        return -RealmError::Interrupted.errno();
    }
    // SAFETY: the caller holds the vCPU (`Vcpu`'s invariant), as
    // `kvm_sigset_activate()` requires; `kvm_sigset_deactivate()` below
    // undoes it on every path.
    unsafe { bindings::kvm_sigset_activate(vcpu.as_ptr()) };
    let run = vcpu.run();
    run.exit_reason = bindings::KVM_EXIT_UNKNOWN;
    run.flags = 0;
    let ret = run_loop(&mut vcpu, kvm, idx);
    // SAFETY: activated above.
    unsafe { bindings::kvm_sigset_deactivate(vcpu.as_ptr()) };
    // Faults may have mapped pages: refresh the VM's realm counters.
    with_state(kvm, |m| vm::sync_stats(kvm, &m.lock()));
    ret
}

/// The value of an MMIO read, and `x0` of a forwarded host call, from the
/// exit userspace just handled.
fn previous_answer(run: &bindings::kvm_run) -> (u64, u64) {
    let ret = if run.exit_reason == bindings::KVM_EXIT_HYPERCALL {
        // SAFETY: `hypercall` is the union member of this exit reason; all
        // its bit patterns are valid (integers).
        unsafe { run.__bindgen_anon_1.hypercall.ret }
    } else {
        0
    };
    (kvm_run::mmio_read_value(run), ret)
}

/// Answers the exit userspace saw: `EPERM` when the vCPU has no REC or
/// the realm is not active, `EBUSY` if its entry context is away.
fn resume(kvm: Kvm, idx: u32, mmio_data: u64, hypercall_ret: u64) -> Result<(), RealmError> {
    with_state(kvm, |m| {
        let mut guard = m.lock();
        let State {
            vm,
            rmi,
            alloc,
            vcpus,
            ..
        } = &mut *guard;
        let (Some(v), Ok(realm)) = (vcpus.iter_mut().find(|v| v.idx == idx), vm.active_realm())
        else {
            return Err(RealmError::State);
        };
        // `KVM_RUN` of one vCPU is serialized (`vcpu->mutex`): the context
        // is home.
        let ctx = v.ctx.as_mut().ok_or(RealmError::Busy)?;
        v.state.resume(
            realm,
            rmi,
            alloc,
            &v.rec,
            &mut ctx.run,
            mmio_data,
            hypercall_ret,
        );
        Ok(())
    })
    .unwrap_or(Err(RealmError::State))
}

fn run_loop(vcpu: &mut Vcpu, kvm: Kvm, idx: u32) -> c_int {
    loop {
        if kernel::current!().signal_pending() {
            vcpu.run().exit_reason = bindings::KVM_EXIT_INTR;
            vcpu.stat().signal_exits += 1;
            return -RealmError::Interrupted.errno();
        }
        // SAFETY: process context, no locks held.
        unsafe { bindings::cond_resched() };
        // The vgic keeps per-CPU state between flush and sync: stay on
        // this CPU (the entry may sleep on the realm's mutex).
        // SAFETY: paired with `migrate_enable()` below on every path.
        unsafe { bindings::migrate_disable() };
        let vgic = kvm.has_vgic();
        let gic = if vgic { flush_gic(vcpu) } else { Gic { hcr: 0, lrs: [0; REC_GIC_NUM_LRS], n: 0 } };
        let (step, exited) = enter(vcpu, kvm, idx, &gic);
        if vgic {
            sync_gic(vcpu, gic.n, &exited);
        }
        // SAFETY: disabled above.
        unsafe { bindings::migrate_enable() };
        vcpu.stat().exits += 1;
        let step = match step {
            Ok(s) => s,
            Err(e) => {
                kernel::pr_warn_ratelimited!("realm vCPU {}: REC run failed: {:?}\n", idx, e);
                return -e.errno();
            }
        };
        match step {
            Step::Enter => {}
            Step::SysRegWrite { esr, value } => {
                if vgic {
                    dispatch_sgi(vcpu, esr, value);
                }
            }
            Step::Idle => {
                let (now, rate) = counter();
                // CAST: at most a second's worth of jiffies.
                let timeout = exited.timers.idle_jiffies(now, rate, bindings::HZ) as isize;
                // SAFETY: the caller holds the vCPU; the glue sleeps on
                // its `vcpu->wait` without any lock of ours held.
                unsafe { bindings::kvm_rme_idle(vcpu.as_ptr(), timeout) };
            }
            Step::Wait => {
                // Not runnable yet (PSCI CPU_ON pending): sleep a tick.
                // SAFETY: process context, no locks held.
                unsafe { bindings::schedule_timeout_interruptible(1) };
            }
            Step::User(
                u @ UserExit::Mmio {
                    addr,
                    len,
                    write,
                    data,
                },
            ) => match mmio_in_kernel(vcpu, kvm, addr, len, write, data) {
                // An in-kernel device took it: answer the realm, go on.
                Some(value) => {
                    vcpu.stat().mmio_exit_kernel += 1;
                    if let Err(e) = resume(kvm, idx, value, 0) {
                        return -e.errno();
                    }
                }
                None => return exit_to_user(vcpu, u),
            },
            Step::User(u) => return exit_to_user(vcpu, u),
        }
    }
}

/// One `REC_ENTER` of vCPU `idx` and its exit.  The realm's mutex is taken
/// before and after the entry, not across it.
fn enter(vcpu: &mut Vcpu, kvm: Kvm, idx: u32, gic: &Gic) -> (Result<Step, RealmError>, Exited) {
    let mut exited = Exited {
        entered: false,
        lrs: [0; REC_GIC_NUM_LRS],
        vmcr: 0,
        timers: Timers::default(),
    };
    let taken = with_state(kvm, |m| take_ctx(&mut m.lock(), idx, gic))
        .unwrap_or(Err(RealmError::State));
    let (mut ctx, rec) = match taken {
        Ok(c) => c,
        Err(e) => return (Err(e), exited),
    };
    // The REC runs without the realm's mutex: other vCPUs enter theirs,
    // fault in pages and change RIPAS meanwhile; the RMM orders them.
    let entered = crate::logic::rmi::Rmi::rec_enter(&mut ctx.rmi, rec, &mut ctx.run);
    let step = with_state(kvm, |m| finish(&mut m.lock(), vcpu, idx, ctx, entered, &mut exited))
        .unwrap_or(Err(RealmError::State));
    (step, exited)
}

/// Before `REC_ENTER`: checks that vCPU `idx` may enter, loads the vgic's
/// list registers, and takes its entry context out of the state.
fn take_ctx(st: &mut State, idx: u32, gic: &Gic) -> Result<(EntryCtx, Pa), RealmError> {
    st.vm.active_realm()?;
    let v = st
        .vcpus
        .iter_mut()
        .find(|v| v.idx == idx)
        .ok_or(RealmError::State)?;
    v.state.begin()?;
    let mut ctx = v.ctx.take().ok_or(RealmError::Busy)?;
    let lrs = vm::features().gic_lrs();
    // CAST: u32 to usize.
    let n = (gic.n as usize).min(REC_GIC_NUM_LRS);
    if exit::load_gic(&mut ctx.run.enter, gic.hcr, &gic.lrs[..n], lrs) < n {
        kernel::pr_warn_ratelimited!(
            "vCPU {}: {} pending interrupts, {} list registers\n",
            idx,
            n,
            lrs
        );
    }
    Ok((ctx, v.rec.pa()))
}

/// After `REC_ENTER`: handles the exit of vCPU `idx` under the realm's
/// mutex, counts it, and puts its entry context back.
fn finish(
    st: &mut State,
    vcpu: &mut Vcpu,
    idx: u32,
    mut ctx: EntryCtx,
    entered: crate::abi::RmiResult,
    exited: &mut Exited,
) -> Result<Step, RealmError> {
    st.vcpu_rmi_calls = st
        .vcpu_rmi_calls
        .saturating_add(ctx.rmi.counts.total());
    ctx.rmi.counts = Default::default();
    let State {
        vm,
        rmi,
        alloc,
        vcpus,
        ..
    } = st;
    // vCPUs go away only with the VM, so it is still there.
    let i = vcpus
        .iter()
        .position(|v| v.idx == idx)
        .ok_or(RealmError::State)?;
    // This vCPU, and the others, among which PSCI targets are looked up.
    let (before, rest) = vcpus.split_at_mut(i);
    let (v, after) = rest.split_first_mut().ok_or(RealmError::State)?;
    let exits_before = v.state.exits;
    let r = vm.active_realm().and_then(|realm| {
        v.state.finish(
            entered,
            realm,
            rmi,
            alloc,
            &v.rec,
            &mut ctx.run,
            &mut |mpidr| {
                // `Iterator::chain`: the prelude's `Init` has a `chain` too.
                Iterator::chain(before.iter(), after.iter())
                    .find(|o| o.rec.mpidr() == mpidr)
                    .map(|o| o.rec.pa())
            },
        )
    });
    crate::glue::totals::rec_exits(&exits_before, &v.state.exits);
    count_exits(vcpu, &v.state.exits);
    exited.entered = v.state.entered();
    if exited.entered {
        // What the realm did with the list registers, and its timers.
        let x = &ctx.run.exit;
        (exited.lrs, exited.vmcr) = (x.gicv3_lrs, x.gicv3_vmcr);
        exited.timers = Timers::from_exit(x);
    }
    v.ctx = Some(ctx);
    r
}

/// REC exits by class into the vCPU's binary stats, by name.
fn count_exits(vcpu: &mut Vcpu, exits: &[u64; crate::logic::run::EXIT_CLASSES]) {
    let n = |c: ExitClass| exits.get(c as usize).copied().unwrap_or(0);
    let s = vcpu.stat();
    s.rec_exit_mmio = n(ExitClass::Mmio);
    s.rec_exit_fault = n(ExitClass::Fault);
    s.rec_exit_irq = n(ExitClass::Irq);
    s.rec_exit_psci = n(ExitClass::Psci);
    s.rec_exit_ripas = n(ExitClass::Ripas);
    s.rec_exit_host_call = n(ExitClass::HostCall);
    s.rec_exit_other = n(ExitClass::Other);
}

/// The vgic's pending interrupts for this entry.
fn flush_gic(vcpu: &mut Vcpu) -> Gic {
    let mut g = Gic {
        hcr: 0,
        lrs: [0; REC_GIC_NUM_LRS],
        n: 0,
    };
    // SAFETY: the caller holds the vCPU, which has an initialised vgic,
    // and migration is disabled until `sync_gic`; `hcr` and `lrs` are
    // writable, `lrs` for `REC_GIC_NUM_LRS` words.
    // CAST: 16 list registers.
    g.n = unsafe {
        bindings::kvm_rme_gic_flush(
            vcpu.as_ptr(),
            &mut g.hcr,
            g.lrs.as_mut_ptr(),
            REC_GIC_NUM_LRS as u32,
        )
    };
    g
}

/// The `n` list registers of the entry, and the timers of the exit, back
/// into the emulation.
fn sync_gic(vcpu: &mut Vcpu, n: u32, x: &Exited) {
    let (now, _) = counter();
    let vmcr: *const u64 = if x.entered { &x.vmcr } else { core::ptr::null() };
    // CAST: 16 list registers.
    let n = n.min(REC_GIC_NUM_LRS as u32);
    // SAFETY: the caller holds the vCPU, on the CPU of `flush_gic`; `lrs`
    // has `n` readable words, and `vmcr` is null or points to one.
    unsafe { bindings::kvm_rme_gic_sync(vcpu.as_ptr(), x.lrs.as_ptr(), n, vmcr) };
    if x.entered {
        let (ctl, cval, fire) = (x.timers.ctl(), x.timers.cval(), x.timers.firing(now));
        // SAFETY: the caller holds the vCPU; each array has the two
        // elements (virtual, physical) the callee reads.
        unsafe {
            bindings::kvm_realm_timers_update(vcpu.as_ptr(), ctl.as_ptr(), cval.as_ptr(), fire.as_ptr())
        };
    }
}

/// `ICC_SGI1R_EL1`, `ICC_ASGI1R_EL1` and `ICC_SGI0R_EL1` as `ESR_ELx`
/// names them (`Op0`, `Op2`, `Op1`, `CRn`, `CRm` of an EC 0x18 syndrome).
const fn sysreg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
    (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (crm << 1)
}
const ISS_SYSREG_MASK: u64 = sysreg(3, 7, 15, 15, 7);
const ICC_SGI1R_EL1: u64 = sysreg(3, 0, 12, 11, 5);
const ICC_ASGI1R_EL1: u64 = sysreg(3, 1, 12, 11, 6);
const ICC_SGI0R_EL1: u64 = sysreg(3, 2, 12, 11, 7);

/// A system register write the RMM leaves to the host: the SGI generation
/// registers go to the vgic (IPIs between realm vCPUs); others are ignored.
fn dispatch_sgi(vcpu: &mut Vcpu, esr: u64, value: u64) {
    let group1 = match esr & ISS_SYSREG_MASK {
        ICC_SGI1R_EL1 => true,
        ICC_ASGI1R_EL1 | ICC_SGI0R_EL1 => false,
        _ => return,
    };
    // SAFETY: the caller holds the vCPU, whose VM has an initialised vgic.
    unsafe { bindings::vgic_v3_dispatch_sgi(vcpu.as_ptr(), value, group1) };
}

/// Offers an MMIO access to the in-kernel devices on `KVM_MMIO_BUS`
/// (ioeventfd, in-kernel emulation); `Some(value read)` if one took it.
fn mmio_in_kernel(vcpu: &mut Vcpu, kvm: Kvm, addr: u64, len: u8, write: bool, data: u64) -> Option<u64> {
    let len = usize::from(len);
    if len == 0 || len > 8 {
        return None;
    }
    let mut buf = data.to_le_bytes();
    // SAFETY: `kvm->srcu` of a live VM; unlocked below.
    let idx = unsafe { bindings::__srcu_read_lock(&raw mut (*kvm.as_ptr()).srcu) };
    // SAFETY: the caller holds the vCPU; `buf` has `len` (at most 8)
    // bytes; the bus is read under `kvm->srcu`, held here.
    // CAST: len <= 8.
    let ret = unsafe {
        if write {
            bindings::kvm_io_bus_write(vcpu.as_ptr(), bindings::kvm_bus_KVM_MMIO_BUS, addr, len as i32, buf.as_ptr().cast())
        } else {
            bindings::kvm_io_bus_read(vcpu.as_ptr(), bindings::kvm_bus_KVM_MMIO_BUS, addr, len as i32, buf.as_mut_ptr().cast())
        }
    };
    // SAFETY: the lock taken above.
    unsafe { bindings::__srcu_read_unlock(&raw mut (*kvm.as_ptr()).srcu, idx) };
    if ret != 0 {
        return None;
    }
    let mut v = [0u8; 8];
    v[..len].copy_from_slice(&buf[..len]);
    Some(u64::from_le_bytes(v))
}

/// Maps an exit onto `struct kvm_run`: 0, or `-EFAULT` for a memory fault
/// (`KVM_EXIT_MEMORY_FAULT` is reported with `EFAULT`, as KVM does).
fn exit_to_user(vcpu: &mut Vcpu, u: UserExit) -> c_int {
    if let UserExit::Mmio { .. } = u {
        vcpu.stat().mmio_exit_user += 1;
    }
    let run = vcpu.run();
    match u {
        UserExit::Mmio {
            addr,
            len,
            write,
            data,
        } => {
            kvm_run::mmio(run, addr, len, write, data);
            0
        }
        UserExit::SystemEvent { reset } => {
            kvm_run::system_event(run, reset);
            0
        }
        UserExit::MemoryFault { gpa, size, private } => {
            // As `kvm_prepare_memory_fault_exit()`.
            let x = kvm_run::begin_exit(run, bindings::KVM_EXIT_MEMORY_FAULT);
            if private {
                x.memory_fault.flags = u64::from(bindings::KVM_MEMORY_EXIT_FLAG_PRIVATE);
            }
            (x.memory_fault.gpa, x.memory_fault.size) = (gpa, size);
            -RealmError::Fault.errno()
        }
        UserExit::Hypercall { nr, args, smc } => {
            let x = kvm_run::begin_exit(run, bindings::KVM_EXIT_HYPERCALL);
            (x.hypercall.nr, x.hypercall.args) = (nr, args);
            if smc {
                x.hypercall.__bindgen_anon_1.flags = u64::from(bindings::KVM_HYPERCALL_EXIT_SMC);
            }
            0
        }
        UserExit::Internal { reason, esr } => {
            kvm_run::internal_error(run, bindings::KVM_INTERNAL_ERROR_EMULATION, &[u64::from(reason), esr]);
            0
        }
    }
}

/// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`: completes the forwarded
/// `CPU_ON`/`AFFINITY_INFO` of `vcpu` towards the REC of
/// `req.target_mpidr`.  `EINVAL` if nothing is pending for that MPIDR, it
/// has no REC, or the RMM refuses the status; `EPERM` without a REC.
pub(crate) fn psci_complete(vcpu: &Vcpu, req: PsciComplete) -> Result<(), RealmError> {
    let idx = vcpu.idx();
    with_state(vcpu.kvm(), |m| {
        let mut guard = m.lock();
        let State { rmi, vcpus, .. } = &mut *guard;
        let target = vcpus
            .iter()
            .find(|o| o.rec.mpidr() == req.target_mpidr)
            .map(|o| o.rec.pa());
        let v = vcpus
            .iter_mut()
            .find(|v| v.idx == idx)
            .ok_or(RealmError::State)?;
        v.state
            .psci_complete(rmi, &v.rec, req.target_mpidr, target, req.status)
            .inspect_err(|_| {
                kernel::pr_warn_ratelimited!(
                    "realm vCPU {}: PSCI_COMPLETE for MPIDR {:#x} refused\n",
                    idx,
                    req.target_mpidr
                );
            })
    })
    .unwrap_or(Err(RealmError::State))
}
