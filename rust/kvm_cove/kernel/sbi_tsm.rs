// SPDX-License-Identifier: GPL-2.0

//! COVH over `ecall`: the kernel's implementation of [`Tsm`].
//!
//! Structures the TSM reads or writes (`tsm_info`, TVM create
//! parameters) are staged in a page this module owns, written and read as
//! typed values: staging cannot fail, and nothing but the TSM's answer
//! becomes an [`SbiError`].

use core::mem::size_of;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::abi::{Covh, Covi, CoviCounts};
use crate::abi::{
    Gpa, Pa, PageType, RunExit, SbiError, SbiResult, TsmInfo, TvmAiaParams, TvmCreateParams,
    EXT_COVH, EXT_COVI,
};
use crate::abi::PAGE_SIZE;
use crate::cvm_fw::staging::Staging;
use crate::glue::sbi;
use crate::logic::tsm::{CallCounts, Gid, Tsm};

/// The staging page: the structure of the call in flight.  Both fields
/// are integers only, so any bit pattern is a valid value of each.
#[repr(C, align(4096))]
union Stage {
    info: TsmInfo,
    create: TvmCreateParams,
    aia: TvmAiaParams,
}

const _: () = assert!(size_of::<Stage>() == PAGE_SIZE as usize);

/// COVH through SBI calls, with per-function counters.
pub(crate) struct SbiTsm {
    stage: Staging<Stage>,
    /// Calls issued through this instance.
    pub(crate) counts: CallCounts,
    /// COVI calls issued through this instance.
    pub(crate) covi: CoviCounts,
    /// The CPUs (bit per CPU below 64) in `TVM_VCPU_RUN` of the TVM this
    /// conduit serves: [`Tsm::tvm_fence`] kicks them out of the TVM.
    pub(crate) running: Arc<AtomicU64>,
    /// CPUs kicked out of the TVM after its fences.
    pub(crate) kicks: u64,
}

impl SbiTsm {
    /// A conduit with its own staging page.
    pub(crate) fn new() -> Result<SbiTsm> {
        Ok(SbiTsm {
            // SAFETY: `Stage` is a 4 KiB, 4 KiB-aligned union of integer
            // structures (asserted above and by `Staging::new`).
            stage: unsafe { Staging::new() }?,
            counts: CallCounts::default(),
            covi: CoviCounts::default(),
            running: Arc::new(AtomicU64::new(0), GFP_KERNEL)?,
            kicks: 0,
        })
    }

    fn call(&mut self, f: Covh, args: [u64; 6]) -> SbiResult<u64> {
        self.counts.record(f);
        self.stage.escape();
        let r = sbi::ecall(EXT_COVH, f.fid(), args);
        self.stage.escape();
        SbiError::decode(r.error).map(|()| r.value)
    }

    fn covi_call(&mut self, f: Covi, args: [u64; 6]) -> SbiResult {
        self.covi.record(f);
        self.stage.escape();
        let r = sbi::ecall(EXT_COVI, f.fid(), args);
        self.stage.escape();
        SbiError::decode(r.error)
    }
}

/// Nothing: the IPI that carries it is the point (see
/// [`SbiTsm::kick_running`]).
///
/// # Safety
///
/// Any `info`: it is not used.
unsafe extern "C" fn kick(_info: *mut core::ffi::c_void) {}

impl SbiTsm {
    /// Makes every CPU in `running` leave the TVM it runs: an IPI there
    /// ends its `TVM_VCPU_RUN` (an interrupt exit), and waiting for the
    /// IPI's function waits for that.  A CPU that left meanwhile just runs
    /// the empty function.
    fn kick_running(&mut self) {
        let mut m = self.running.load(Ordering::Acquire);
        while m != 0 {
            let cpu = m.trailing_zeros();
            m &= m - 1;
            // CAST: below 64.
            // SAFETY: `kick` matches `smp_call_func_t` and touches
            // nothing; interrupts are on (the callers are in process
            // context), as a waiting cross call needs.  An offline CPU
            // runs no vCPU; the error is then moot.
            unsafe { bindings::smp_call_function_single(cpu as i32, Some(kick), core::ptr::null_mut(), 1) };
            self.kicks = self.kicks.saturating_add(1);
        }
    }
}

/// A COVI call to run on another CPU, and its SBI error.
#[repr(C)]
struct Remote {
    fid: u64,
    args: [u64; 6],
    error: i64,
}

/// Runs the COVI call `info` points to on this CPU (from
/// `smp_call_function_single()`).
///
/// # Safety
///
/// `info` points to a `Remote` that lives across the call and that
/// nothing else touches meanwhile.
unsafe extern "C" fn covi_on_this_cpu(info: *mut core::ffi::c_void) {
    // SAFETY: a live `Remote`, ours alone for the call (this function's
    // contract).
    let r = unsafe { &mut *info.cast::<Remote>() };
    r.error = sbi::ecall(EXT_COVI, r.fid, r.args).error;
}

/// One CPU's `TSM_LOCAL_FENCE`, called on every CPU by
/// `on_each_cpu_cond_mask()`; a failure is stored in the `AtomicI64`
/// `info` points to.
///
/// # Safety
///
/// `info` points to an `AtomicI64` that lives across the call.
unsafe extern "C" fn local_fence_on_this_cpu(info: *mut core::ffi::c_void) {
    let r = sbi::ecall(EXT_COVH, Covh::TsmLocalFence.fid(), [0; 6]);
    if r.error != 0 {
        // SAFETY: a live `AtomicI64` (this function's contract).
        let failed = unsafe { &*info.cast::<AtomicI64>() };
        failed.store(r.error, Ordering::Relaxed);
    }
}

impl Tsm for SbiTsm {
    fn get_info(&mut self) -> SbiResult<(TsmInfo, u64)> {
        self.stage.get().info = TsmInfo::default();
        let pa = self.stage.pa();
        // CAST: size_of::<TsmInfo>() is 32.
        let n = self.call(
            Covh::TsmGetInfo,
            [pa, size_of::<TsmInfo>() as u64, 0, 0, 0, 0],
        )?;
        // SAFETY: `info` is the field last written, and every bit pattern
        // is a valid `TsmInfo` (integers only).
        Ok((unsafe { self.stage.get().info }, n))
    }

    fn convert_pages(&mut self, pa: Pa, npages: u64) -> SbiResult {
        self.call(Covh::TsmConvertPages, [pa.0, npages, 0, 0, 0, 0])
            .map(drop)
    }

    fn reclaim_pages(&mut self, pa: Pa, npages: u64) -> SbiResult {
        self.call(Covh::TsmReclaimPages, [pa.0, npages, 0, 0, 0, 0])
            .map(drop)
    }

    fn initiate_fence(&mut self) -> SbiResult {
        self.call(Covh::TsmInitiateFence, [0; 6]).map(drop)
    }

    /// `TSM_LOCAL_FENCE` on every CPU (counted once), as the global
    /// fence after `TSM_INITIATE_FENCE` requires.
    fn local_fence(&mut self) -> SbiResult {
        self.counts.record(Covh::TsmLocalFence);
        let failed = AtomicI64::new(0);
        // SAFETY: `local_fence_on_this_cpu` matches `smp_call_func_t` and
        // only touches the `AtomicI64` it is given, which lives until
        // `on_each_cpu_cond_mask` returns (`wait` is true); the online
        // mask is the kernel's, valid at all times.
        unsafe {
            bindings::on_each_cpu_cond_mask(
                None,
                Some(local_fence_on_this_cpu),
                core::ptr::from_ref(&failed).cast_mut().cast(),
                true,
                &raw const bindings::__cpu_online_mask,
            )
        };
        SbiError::decode(failed.load(Ordering::Relaxed))
    }

    fn create_tvm(&mut self, p: &TvmCreateParams) -> SbiResult<Gid> {
        self.stage.get().create = *p;
        let pa = self.stage.pa();
        // CAST: size_of::<TvmCreateParams>() is 16.
        self.call(
            Covh::CreateTvm,
            [pa, size_of::<TvmCreateParams>() as u64, 0, 0, 0, 0],
        )
    }

    fn finalize_tvm(&mut self, gid: Gid, sepc: u64, arg: u64) -> SbiResult {
        self.call(Covh::FinalizeTvm, [gid, sepc, arg, 0, 0, 0])
            .map(drop)
    }

    fn destroy_tvm(&mut self, gid: Gid) -> SbiResult {
        self.call(Covh::DestroyTvm, [gid, 0, 0, 0, 0, 0]).map(drop)
    }

    fn add_memory_region(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmAddMemoryRegion, [gid, gpa.0, len, 0, 0, 0])
            .map(drop)
    }

    fn add_pgt_pages(&mut self, gid: Gid, pa: Pa, npages: u64) -> SbiResult {
        self.call(Covh::TvmAddPgtPages, [gid, pa.0, npages, 0, 0, 0])
            .map(drop)
    }

    fn add_measured_pages(
        &mut self,
        gid: Gid,
        src: Pa,
        dst: Pa,
        ty: PageType,
        n: u64,
        gpa: Gpa,
    ) -> SbiResult {
        // CAST: fieldless `repr(u64)` enum to its discriminant.
        self.call(
            Covh::TvmAddMeasuredPages,
            [gid, src.0, dst.0, ty as u64, n, gpa.0],
        )
        .map(drop)
    }

    fn add_zero_pages(&mut self, gid: Gid, pa: Pa, ty: PageType, n: u64, gpa: Gpa) -> SbiResult {
        // CAST: as above.
        self.call(Covh::TvmAddZeroPages, [gid, pa.0, ty as u64, n, gpa.0, 0])
            .map(drop)
    }

    fn add_shared_pages(&mut self, gid: Gid, pa: Pa, ty: PageType, n: u64, gpa: Gpa) -> SbiResult {
        // CAST: as above.
        self.call(Covh::TvmAddSharedPages, [gid, pa.0, ty as u64, n, gpa.0, 0])
            .map(drop)
    }

    fn create_vcpu(&mut self, gid: Gid, id: u64, state: Pa) -> SbiResult {
        self.call(Covh::TvmCreateVcpu, [gid, id, state.0, 0, 0, 0])
            .map(drop)
    }

    /// `TVM_VCPU_RUN`, with the exit's `scause` and `stval` from the
    /// host CSRs the TSM left them in.
    fn vcpu_run(&mut self, gid: Gid, id: u64) -> SbiResult<RunExit> {
        self.counts.record(Covh::TvmVcpuRun);
        let (r, scause, stval) = sbi::ecall_vcpu_run(EXT_COVH, Covh::TvmVcpuRun.fid(), gid, id);
        SbiError::decode(r.error).map(|()| RunExit {
            ret: r.value,
            scause,
            stval,
        })
    }

    /// `TVM_INITIATE_FENCE`, then the vCPUs of the TVM that are running
    /// are kicked out of it, so that the TSM sees the fence complete.
    fn tvm_fence(&mut self, gid: Gid) -> SbiResult {
        self.call(Covh::TvmInitiateFence, [gid, 0, 0, 0, 0, 0])?;
        self.kick_running();
        Ok(())
    }

    fn invalidate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmInvalidatePages, [gid, gpa.0, len, 0, 0, 0])
            .map(drop)
    }

    fn validate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmValidatePages, [gid, gpa.0, len, 0, 0, 0])
            .map(drop)
    }

    fn remove_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmRemovePages, [gid, gpa.0, len, 0, 0, 0])
            .map(drop)
    }

    fn this_cpu(&self) -> u32 {
        // SAFETY: reads this CPU's number; the callers of the COVI calls
        // that act on "this CPU" keep it (preemption off, NACL held).
        unsafe { bindings::raw_smp_processor_id() }
    }

    fn aia_init(&mut self, gid: Gid, params: &TvmAiaParams) -> SbiResult {
        self.stage.get().aia = *params;
        let pa = self.stage.pa();
        // CAST: size_of::<TvmAiaParams>() is 32.
        self.covi_call(
            Covi::TvmAiaInit,
            [gid, pa, size_of::<TvmAiaParams>() as u64, 0, 0, 0],
        )
    }

    fn set_imsic_addr(&mut self, gid: Gid, vcpu_id: u64, gpa: Gpa) -> SbiResult {
        self.covi_call(Covi::CpuSetImsicAddr, [gid, vcpu_id, gpa.0, 0, 0, 0])
    }

    fn convert_imsic(&mut self, pa: Pa) -> SbiResult {
        self.covi_call(Covi::ConvertImsic, [pa.0, 0, 0, 0, 0, 0])
    }

    fn reclaim_imsic(&mut self, pa: Pa) -> SbiResult {
        self.covi_call(Covi::ReclaimImsic, [pa.0, 0, 0, 0, 0, 0])
    }

    fn bind_imsic(&mut self, gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult {
        self.covi_call(Covi::CpuBindImsic, [gid, vcpu_id, mask, 0, 0, 0])
    }

    fn rebind_begin(&mut self, gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult {
        self.covi_call(Covi::RebindImsicBegin, [gid, vcpu_id, mask, 0, 0, 0])
    }

    /// `TVM_CPU_REBIND_IMSIC_CLONE` on `old_cpu`, through an IPI there
    /// that this CPU waits for.
    fn rebind_clone(&mut self, gid: Gid, vcpu_id: u64, old_cpu: u32) -> SbiResult {
        self.covi.record(Covi::RebindImsicClone);
        let mut r = Remote {
            fid: Covi::RebindImsicClone.fid(),
            args: [gid, vcpu_id, 0, 0, 0, 0],
            error: SbiError::Failed.code(),
        };
        let Ok(cpu) = i32::try_from(old_cpu) else {
            return Err(SbiError::InvalidParam);
        };
        // SAFETY: `covi_on_this_cpu` matches `smp_call_func_t` and only
        // touches the `Remote` it is given, which lives until the call
        // returns (`wait` is 1).  Interrupts are on (process context), as
        // a waiting cross call needs.
        let e = unsafe {
            bindings::smp_call_function_single(
                cpu,
                Some(covi_on_this_cpu),
                core::ptr::from_mut(&mut r).cast(),
                1,
            )
        };
        if e != 0 {
            // The CPU is offline: the file stays bound there.
            return Err(SbiError::Failed);
        }
        SbiError::decode(r.error)
    }

    fn rebind_end(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult {
        self.covi_call(Covi::RebindImsicEnd, [gid, vcpu_id, 0, 0, 0, 0])
    }

    fn unbind_begin(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult {
        self.covi_call(Covi::UnbindImsicBegin, [gid, vcpu_id, 0, 0, 0, 0])
    }

    fn unbind_end(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult {
        self.covi_call(Covi::UnbindImsicEnd, [gid, vcpu_id, 0, 0, 0, 0])
    }

    fn inject(&mut self, gid: Gid, vcpu_id: u64, iid: u64) -> SbiResult {
        self.covi_call(Covi::InjectExtInterrupt, [gid, vcpu_id, iid, 0, 0, 0])
    }
}
