// SPDX-License-Identifier: GPL-2.0

//! The COVH calls as a trait, and per-function call counters.
//!
//! The kernel implements [`Tsm`] with `ecall`s; host tests with the
//! executable TSM model.

pub use crate::abi::CallCounts;
use crate::abi::{Gpa, Pa, PageType, RunExit, SbiResult, TsmInfo, TvmAiaParams, TvmCreateParams};

/// A TVM's guest ID as the TSM returned it.
pub type Gid = u64;

/// The COVH functions the host calls, one method each.
pub trait Tsm {
    /// `TSM_GET_INFO`.
    fn get_info(&mut self) -> SbiResult<(TsmInfo, u64)>;
    /// `TSM_CONVERT_PAGES`: make `npages` pages at `pa` confidential (takes
    /// effect after a global fence).
    fn convert_pages(&mut self, pa: Pa, npages: u64) -> SbiResult;
    /// `TSM_RECLAIM_PAGES`: give converted, unassigned pages back.
    fn reclaim_pages(&mut self, pa: Pa, npages: u64) -> SbiResult;
    /// `TSM_INITIATE_FENCE`.
    fn initiate_fence(&mut self) -> SbiResult;
    /// `TSM_LOCAL_FENCE` (on every CPU, after initiating).
    fn local_fence(&mut self) -> SbiResult;
    /// `CREATE_TVM`.
    fn create_tvm(&mut self, params: &TvmCreateParams) -> SbiResult<Gid>;
    /// `FINALIZE_TVM`.
    fn finalize_tvm(&mut self, gid: Gid, entry_sepc: u64, entry_arg: u64) -> SbiResult;
    /// `DESTROY_TVM`.
    fn destroy_tvm(&mut self, gid: Gid) -> SbiResult;
    /// `TVM_ADD_MEMORY_REGION`.
    fn add_memory_region(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    /// `TVM_ADD_PGT_PAGES`.
    fn add_pgt_pages(&mut self, gid: Gid, pa: Pa, npages: u64) -> SbiResult;
    /// `TVM_ADD_MEASURED_PAGES`.
    fn add_measured_pages(
        &mut self,
        gid: Gid,
        src: Pa,
        dst: Pa,
        ty: PageType,
        npages: u64,
        gpa: Gpa,
    ) -> SbiResult;
    /// `TVM_ADD_ZERO_PAGES`.
    fn add_zero_pages(
        &mut self,
        gid: Gid,
        pa: Pa,
        ty: PageType,
        npages: u64,
        gpa: Gpa,
    ) -> SbiResult;
    /// `TVM_ADD_SHARED_PAGES`.
    fn add_shared_pages(
        &mut self,
        gid: Gid,
        pa: Pa,
        ty: PageType,
        npages: u64,
        gpa: Gpa,
    ) -> SbiResult;
    /// `TVM_CREATE_VCPU`.
    fn create_vcpu(&mut self, gid: Gid, vcpu_id: u64, state: Pa) -> SbiResult;
    /// `TVM_VCPU_RUN`: the exit, with the `scause` and `stval` the TSM
    /// left in the host's CSRs (see [`RunExit`]).
    fn vcpu_run(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult<RunExit>;
    /// `TVM_INITIATE_FENCE`.
    fn tvm_fence(&mut self, gid: Gid) -> SbiResult;
    /// `TVM_INVALIDATE_PAGES`.
    fn invalidate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    /// `TVM_VALIDATE_PAGES`.
    fn validate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    /// `TVM_REMOVE_PAGES`.
    fn remove_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;

    /// The CPU the caller runs on; the COVI calls that act on "this CPU"
    /// act on it.  Callers keep the CPU across such a sequence.
    fn this_cpu(&self) -> u32;
    /// COVI `TVM_AIA_INIT` (before finalize).
    fn aia_init(&mut self, gid: Gid, params: &TvmAiaParams) -> SbiResult;
    /// COVI `TVM_CPU_SET_IMSIC_ADDR` (before finalize).
    fn set_imsic_addr(&mut self, gid: Gid, vcpu_id: u64, gpa: Gpa) -> SbiResult;
    /// COVI `TSM_CONVERT_IMSIC` of the host guest file at `pa` (takes
    /// effect after a global fence).
    fn convert_imsic(&mut self, pa: Pa) -> SbiResult;
    /// COVI `TSM_RECLAIM_IMSIC`.
    fn reclaim_imsic(&mut self, pa: Pa) -> SbiResult;
    /// COVI `TVM_CPU_BIND_IMSIC` on this CPU; `mask` has one HGEIE bit.
    fn bind_imsic(&mut self, gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult;
    /// COVI `TVM_CPU_REBIND_IMSIC_BEGIN` on this CPU (the new one).
    fn rebind_begin(&mut self, gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult;
    /// COVI `TVM_CPU_REBIND_IMSIC_CLONE`, run on `old_cpu` (the CPU the
    /// vCPU was bound on), after a TVM fence.
    fn rebind_clone(&mut self, gid: Gid, vcpu_id: u64, old_cpu: u32) -> SbiResult;
    /// COVI `TVM_CPU_REBIND_IMSIC_END` on this CPU.
    fn rebind_end(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult;
    /// COVI `TVM_CPU_UNBIND_IMSIC_BEGIN` on this CPU (the bound one).
    fn unbind_begin(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult;
    /// COVI `TVM_CPU_UNBIND_IMSIC_END` on this CPU, after a TVM fence.
    fn unbind_end(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult;
    /// COVI `TVM_CPU_INJECT_EXTERNAL_INTERRUPT`.
    fn inject(&mut self, gid: Gid, vcpu_id: u64, iid: u64) -> SbiResult;
}

/// One global fence: initiate, then the local part.  The kernel runs the
/// local part on every CPU; the logic's counters see one of each.
pub fn global_fence<T: Tsm>(tsm: &mut T) -> SbiResult {
    tsm.initiate_fence()?;
    tsm.local_fence()
}

/// What the boot probe found (COVH and NACL presence, then
/// `TSM_GET_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsmProbe {
    /// COVH or NACL is missing: no TSM under this kernel.
    Absent {
        /// COVH answered the base probe.
        covh: bool,
        /// NACL answered the base probe.
        nacl: bool,
    },
    /// COVH is there but refuses `TSM_GET_INFO` with our 32-byte
    /// `TsmInfo`: a TSM of another ABI version (IBM's ACE, on spec
    /// v0.7, wants 48 bytes and numbers the calls differently).
    OtherAbi(crate::abi::SbiError),
    /// `TSM_GET_INFO` wrote fewer bytes than our `TsmInfo`.
    ShortInfo(u64),
    /// The TSM answered, but cannot run TVMs (state, vCPU limit).
    NotReady(TsmInfo),
    /// A ready TSM speaking our ABI.
    Ready(TsmInfo),
}

impl TsmProbe {
    /// Whether TVMs can be created.
    pub fn ready(&self) -> bool {
        matches!(self, TsmProbe::Ready(_))
    }

    /// Whether COVH is present at all (KVM then runs in TVM-only mode).
    pub fn covh(&self) -> bool {
        !matches!(self, TsmProbe::Absent { covh: false, .. })
    }
}

/// Classifies the TSM from the extension probes and `TSM_GET_INFO`.
pub fn probe<T: Tsm>(covh: bool, nacl: bool, tsm: &mut T) -> TsmProbe {
    if !(covh && nacl) {
        return TsmProbe::Absent { covh, nacl };
    }
    let (info, written) = match tsm.get_info() {
        Ok(r) => r,
        Err(e) => return TsmProbe::OtherAbi(e),
    };
    // CAST: the structure is 32 bytes.
    if written < core::mem::size_of::<TsmInfo>() as u64 {
        return TsmProbe::ShortInfo(written);
    }
    if info.tstate != crate::abi::TsmState::Ready as u32 || info.tvm_max_vcpus == 0 {
        return TsmProbe::NotReady(info);
    }
    TsmProbe::Ready(info)
}
