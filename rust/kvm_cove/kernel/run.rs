// SPDX-License-Identifier: GPL-2.0

//! `KVM_RUN` of a TVM vCPU: the loop around one `TVM_VCPU_RUN` and its
//! exit, and `struct kvm_run` on the way out.  The decisions are the
//! host-tested logic in `logic/run.rs`.

use core::ffi::c_int;

use kernel::bindings;
use kernel::prelude::*;

use crate::cvm_fw::kvm_run;
use crate::glue::kvm::Vcpu;
use crate::glue::nacl::CpuNacl;
use crate::glue::vm::{with_locked, with_state, State};
use core::sync::atomic::{AtomicU64, Ordering};

use kernel::sync::{Arc, Mutex};

use crate::abi::{Covh, RunExit, SbiError, EXT_COVH};
use crate::glue::sbi;
use crate::logic::aia::{self, BindError, Bound};
use crate::logic::exit::Exit;
use crate::logic::tvm::Regions;
use crate::logic::run::{self, Power, Step, UserExit};
use crate::logic::tvm::{TvmError, TvmState};

/// `KVM_RUN`: answers the exit userspace saw, then runs the vCPU until an
/// exit userspace must see, a signal, or an error.  Returns 0 or a
/// negative errno.
pub(crate) fn vcpu_run(mut vcpu: Vcpu) -> c_int {
    let kvm = vcpu.kvm();
    let id = vcpu.id();
    let (mmio_data, sbi_ret) = previous_answer(vcpu.run());
    let resumed = with_locked(kvm, |st| {
        let v = st
            .vcpus
            .iter_mut()
            .find(|v| v.id() == id)
            .ok_or(TvmError::Invalid)?;
        v.resume(mmio_data, sbi_ret);
        Ok(())
    });
    if let Err(e) = resumed {
        return -e.errno();
    }
    if !vcpu.wants_to_run() {
        return -TvmError::Interrupted.errno();
    }
    // SAFETY: the caller holds the vCPU (`Vcpu`'s invariant), as
    // `kvm_sigset_activate()` requires; undone below on every path.
    unsafe { bindings::kvm_sigset_activate(vcpu.as_ptr()) };
    vcpu.run().exit_reason = bindings::KVM_EXIT_UNKNOWN;
    let r = run_loop(&mut vcpu, id);
    // SAFETY: activated above.
    unsafe { bindings::kvm_sigset_deactivate(vcpu.as_ptr()) };
    r
}

/// The value of an MMIO read, and the SBI return values, from the exit
/// userspace just handled.
fn previous_answer(run: &bindings::kvm_run) -> (u64, [u64; 2]) {
    let ret = if run.exit_reason == bindings::KVM_EXIT_RISCV_SBI {
        // SAFETY: `riscv_sbi` is the union member of this exit reason; all
        // its bit patterns are valid (integers).
        let s = unsafe { run.__bindgen_anon_1.riscv_sbi };
        // CAST: `unsigned long` is 64 bits on riscv64.
        [s.ret[0] as u64, s.ret[1] as u64]
    } else {
        [0, 0]
    };
    (kvm_run::mmio_read_value(run), ret)
}

fn run_loop(vcpu: &mut Vcpu, id: u64) -> c_int {
    let kvm = vcpu.kvm();
    let entry = vcpu.entry();
    loop {
        if kernel::current!().signal_pending() {
            vcpu.run().exit_reason = bindings::KVM_EXIT_INTR;
            vcpu.stat().signal_exits += 1;
            return -TvmError::Interrupted.errno();
        }
        // SAFETY: process context, no locks held.
        unsafe { bindings::cond_resched() };
        let step = with_state(kvm, |m| enter(m, id, entry))
            .unwrap_or(Err(TvmError::Invalid))
            .map_err(TvmError::in_run);
        vcpu.stat().exits += 1;
        match step {
            Ok(Step::Enter | Step::Started(_)) => {}
            Ok(Step::Idle) => {
                vcpu.stat().wfi_exit_stat += 1;
                // SAFETY: process context, no locks held.
                unsafe { bindings::schedule_timeout_interruptible(1) };
            }
            Ok(Step::User(u)) => return exit_to_user(vcpu, u),
            Err(e) => {
                kernel::pr_warn_ratelimited!("TVM vCPU {}: run failed: {:?}\n", id, e);
                return -e.errno();
            }
        }
    }
}

/// One `TVM_VCPU_RUN` of vCPU `id` and its exit.  The boot vCPU's first
/// run finalizes the TVM with `entry` (its `sepc` and `a1`).
///
/// The TVM's mutex is held to prepare the entry (finalize, bind the
/// interrupt file, the answers to the last exit) and to serve the exit,
/// and dropped for the run itself, so the vCPUs of one TVM run at once.
/// While a vCPU runs, its CPU's bit is set in the TVM's `running` mask: a
/// TVM fence kicks those CPUs out of the TVM (`SbiTsm::tvm_fence`), as
/// the TSM completes a fence only once every vCPU that entered before it
/// has left.  The CPU is kept (`nacl`) from the bind until the exit is
/// decoded from its NACL area; the mutex is taken before and after, never
/// while the CPU is kept.
fn enter(m: &Mutex<State>, id: u64, entry: (u64, u64)) -> Result<Step, TvmError> {
    let mut guard = m.lock();
    finalize(&mut guard, id, entry)?;
    let mut nacl = CpuNacl::get().ok_or(TvmError::NoDevice)?;
    let (gid, regions, running) = match begin(&mut guard, id, &mut nacl)? {
        Begun::Step(s) => return Ok(s),
        Begun::NotRunning => {
            drop(nacl);
            return serve(&mut guard, id, Ok(Exit::NotRunning));
        }
        Begun::Run { gid, regions, running } => (gid, regions, running),
    };
    // SAFETY: reads this CPU's number; `nacl` keeps the CPU.
    let cpu = unsafe { bindings::raw_smp_processor_id() };
    let bit = if cpu < 64 { 1u64 << cpu } else { 0 };
    // Past CPU 63 the run keeps the mutex: no bit to kick it by.
    let mut guard = if bit != 0 {
        running.fetch_or(bit, Ordering::AcqRel);
        drop(guard);
        None
    } else {
        Some(guard)
    };
    let (r, scause, stval) = sbi::ecall_vcpu_run(EXT_COVH, Covh::TvmVcpuRun.fid(), gid, id);
    running.fetch_and(!bit, Ordering::AcqRel);
    let exit = SbiError::decode(r.error).map(|()| {
        regions.decode(
            RunExit {
                ret: r.value,
                scause,
                stval,
            },
            &nacl,
        )
    });
    // `nacl` dropped: preemption is enabled again.
    drop(nacl);
    let mut st = match guard.take() {
        Some(g) => g,
        None => m.lock(),
    };
    st.tsm.counts.record(Covh::TvmVcpuRun);
    serve(&mut st, id, exit.map_err(TvmError::Tsm))
}

/// The boot vCPU's first run finalizes the TVM (only it: a secondary
/// vCPU's `KVM_RUN` may come first and waits to be started).
fn finalize(st: &mut State, id: u64, entry: (u64, u64)) -> Result<(), TvmError> {
    let v = st.vcpus.iter().find(|v| v.id() == id).ok_or(TvmError::Invalid)?;
    if st.tvm.state() == TvmState::Initializing && v.power() == Power::On {
        st.tvm.finalize(&mut st.tsm, entry.0, entry.1).inspect_err(|e| {
            kernel::pr_warn_ratelimited!("FINALIZE_TVM failed: {:?}\n", e);
        })?;
    }
    Ok(())
}

/// What [`begin`] found.
enum Begun {
    /// The vCPU is off: no run ([`Exit::NotRunning`]).
    NotRunning,
    /// No run: go back to the loop with this.
    Step(Step),
    /// Run it: its TVM, the regions to decode the exit with, and the
    /// TVM's set of CPUs in `TVM_VCPU_RUN`.
    Run {
        gid: u64,
        regions: Regions,
        running: Arc<AtomicU64>,
    },
}

/// Binds the vCPU's interrupt file on this CPU (a TVM with an IMSIC runs
/// only where it is bound) and writes the answers to its last exit into
/// this CPU's NACL area.
fn begin(st: &mut State, id: u64, nacl: &mut CpuNacl) -> Result<Begun, TvmError> {
    let State { tsm, tvm, vcpus, .. } = st;
    let i = vcpus.iter().position(|v| v.id() == id).ok_or(TvmError::Invalid)?;
    if tvm.aia() && vcpus[i].power() == Power::On {
        let gid = tvm.gid();
        let mut r = aia::bind_here(tsm, &crate::FILES, gid, id, &mut vcpus[i].binding);
        if let Err(BindError::NoFile(_)) = r {
            // This CPU's files are all bound: one of them may be another
            // vCPU of this TVM's, which then binds again where it runs.
            match aia::evict_here(tsm, &crate::FILES, gid, id, vcpus) {
                Ok(true) => {
                    let s = tvm.stats_mut();
                    s.unbinds = s.unbinds.saturating_add(1);
                    r = aia::bind_here(tsm, &crate::FILES, gid, id, &mut vcpus[i].binding);
                }
                Ok(false) => {}
                Err(e) => r = Err(e),
            }
        }
        match r {
            Ok(Bound::Already) => {}
            Ok(Bound::Bound) => {
                let s = tvm.stats_mut();
                s.binds = s.binds.saturating_add(1);
            }
            Ok(Bound::Moved) => {
                let s = tvm.stats_mut();
                s.rebinds = s.rebinds.saturating_add(1);
            }
            Err(BindError::NoFile(cpu)) => return Ok(Begun::Step(Step::User(UserExit::NoImsicFile { cpu }))),
            Err(BindError::Tsm(e)) => {
                kernel::pr_warn_ratelimited!("TVM vCPU {}: binding its interrupt file failed: {:?}\n", id, e);
                return Err(TvmError::Run(e));
            }
            Err(BindError::Broken) => return Err(TvmError::Run(SbiError::Failed)),
        }
    }
    let v = &mut vcpus[i];
    if !v.begin_run(nacl)? {
        return Ok(Begun::NotRunning);
    }
    if tvm.state() != TvmState::Runnable {
        return Err(TvmError::State);
    }
    Ok(Begun::Run {
        gid: tvm.gid(),
        regions: tvm.regions(),
        running: tsm.running.clone(),
    })
}

/// Serves the exit of vCPU `id`'s run (or the TSM's refusal of it).
fn serve(st: &mut State, id: u64, exit: Result<Exit, TvmError>) -> Result<Step, TvmError> {
    let State {
        tsm,
        alloc,
        pinned,
        tvm,
        vcpus,
    } = st;
    let v = vcpus.iter_mut().find(|v| v.id() == id).ok_or(TvmError::Invalid)?;
    let exit = exit?;
    if exit != Exit::NotRunning {
        v.end_run();
    }
    match v.handle(tvm, tsm, alloc, pinned, exit)? {
        Step::Started(hart) => {
            run::start(vcpus, hart);
            Ok(Step::Enter)
        }
        step => Ok(step),
    }
}

/// Maps an exit onto `struct kvm_run`.
fn exit_to_user(vcpu: &mut Vcpu, u: UserExit) -> c_int {
    match u {
        UserExit::Mmio { .. } => vcpu.stat().mmio_exit_user += 1,
        UserExit::Sbi { .. } => vcpu.stat().ecall_exit_stat += 1,
        _ => {}
    }
    let run = vcpu.run();
    match u {
        UserExit::Mmio {
            gpa,
            len,
            write,
            data,
        } => kvm_run::mmio(run, gpa, len, write, data),
        UserExit::Sbi { ext, fid, args } => {
            let x = kvm_run::begin_exit(run, bindings::KVM_EXIT_RISCV_SBI);
            // CAST: `unsigned long` is 64 bits on riscv64; the error is
            // sign-extended, as SBI returns it.
            x.riscv_sbi.extension_id = ext as _;
            x.riscv_sbi.function_id = fid as _;
            x.riscv_sbi.args = args.map(|a| a as _);
            x.riscv_sbi.ret = [bindings::SBI_ERR_NOT_SUPPORTED as _, 0];
        }
        UserExit::SystemEvent { reset } => kvm_run::system_event(run, reset),
        UserExit::Terminated => {
            kvm_run::begin_exit(run, bindings::KVM_EXIT_SHUTDOWN);
        }
        UserExit::NoImsicFile { cpu } => {
            let x = kvm_run::begin_exit(run, bindings::KVM_EXIT_FAIL_ENTRY);
            x.fail_entry.hardware_entry_failure_reason = run::FAIL_ENTRY_IMSIC_FILE_UNAVAILABLE;
            x.fail_entry.cpu = cpu;
        }
        UserExit::Internal { scause } => {
            kvm_run::internal_error(run, bindings::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, &[scause]);
        }
    }
    0
}
