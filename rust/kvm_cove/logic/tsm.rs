// SPDX-License-Identifier: GPL-2.0

//! The COVH calls as a trait, and per-function call counters.
//!
//! The kernel implements [`Tsm`] with `ecall`s; host tests with the
//! executable TSM model.

pub use crate::abi::CallCounts;
use crate::abi::{Gpa, Pa, PageType, SbiResult, TsmInfo, TvmCreateParams};

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
    /// `TVM_VCPU_RUN`: 0 if the vCPU can be resumed, else it terminated.
    fn vcpu_run(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult<u64>;
    /// `TVM_INITIATE_FENCE`.
    fn tvm_fence(&mut self, gid: Gid) -> SbiResult;
    /// `TVM_INVALIDATE_PAGES`.
    fn invalidate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    /// `TVM_VALIDATE_PAGES`.
    fn validate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    /// `TVM_REMOVE_PAGES`.
    fn remove_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
}

/// One global fence: initiate, then the local part.  The kernel runs the
/// local part on every CPU; the logic's counters see one of each.
pub fn global_fence<T: Tsm>(tsm: &mut T) -> SbiResult {
    tsm.initiate_fence()?;
    tsm.local_fence()
}
