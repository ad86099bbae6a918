// SPDX-License-Identifier: GPL-2.0

//! Function IDs as numbered by the CoVE RFC series and Salus (`sbi-rs`).
//! Spec v0.7 inserts `PROMOTE_TO_TVM` at COVH 7 and shifts the rest; it
//! would be a sibling module.

crate::cvm_fw::calls::call_table! {
    /// COVH functions (a6).
    pub enum Covh: u64, counted by CallCounts {
        /// `(pa(info), len) -> bytes written`.
        TsmGetInfo = 0,
        /// `(pa, npages)`.
        TsmConvertPages = 1,
        /// `(pa, npages)`.
        TsmReclaimPages = 2,
        /// Global fence, initiated.
        TsmInitiateFence = 3,
        /// Global fence, local part.
        TsmLocalFence = 4,
        /// `(pa(params), len) -> guest id`.
        CreateTvm = 5,
        /// `(gid, entry_sepc, entry_arg)`.
        FinalizeTvm = 6,
        /// `(gid)`.
        DestroyTvm = 7,
        /// `(gid, gpa, len)`.
        TvmAddMemoryRegion = 8,
        /// `(gid, pa, npages)`.
        TvmAddPgtPages = 9,
        /// `(gid, src_pa, dst_pa, page_type, npages, gpa)`.
        TvmAddMeasuredPages = 10,
        /// `(gid, pa, page_type, npages, gpa)`.
        TvmAddZeroPages = 11,
        /// `(gid, pa, page_type, npages, gpa)`.
        TvmAddSharedPages = 12,
        /// `(gid, vcpu_id, state_pa)`.
        TvmCreateVcpu = 13,
        /// `(gid, vcpu_id) -> 0 resumable, else terminated`.
        TvmVcpuRun = 14,
        /// `(gid)`.
        TvmInitiateFence = 15,
        /// `(gid, gpa, len)`.
        TvmInvalidatePages = 16,
        /// `(gid, gpa, len)`.
        TvmValidatePages = 17,
        /// `(gid, gpa, page_type)`.
        TvmPromotePage = 18,
        /// `(gid, gpa, page_type)`.
        TvmDemotePage = 19,
        /// `(gid, gpa, len)`.
        TvmRemovePages = 20,
    }
}

impl Covh {
    /// The function ID.
    pub const fn fid(self) -> u64 {
        self.number()
    }

    /// The function with ID `fid`.
    pub fn from_fid(fid: u64) -> Option<Covh> {
        Covh::from_number(fid)
    }
}

crate::cvm_fw::calls::call_table! {
    /// COVI functions (a6).
    pub enum Covi: u64, counted by CoviCounts {
        /// `(gid, pa(params), len)`.
        TvmAiaInit = 0,
        /// `(gid, vcpu, imsic_gpa)`.
        CpuSetImsicAddr = 1,
        /// `(imsic_pa)`; needs a global fence afterwards.
        ConvertImsic = 2,
        /// `(imsic_pa)`.
        ReclaimImsic = 3,
        /// `(gid, vcpu, mask)`, on the CPU the vCPU will run on.
        CpuBindImsic = 4,
        /// `(gid, vcpu)`, on the bound CPU.
        UnbindImsicBegin = 5,
        /// `(gid, vcpu)`, on the bound CPU, after a TVM fence.
        UnbindImsicEnd = 6,
        /// `(gid, vcpu, iid)`.
        InjectExtInterrupt = 7,
        /// `(gid, vcpu, mask)`, on the new CPU.
        RebindImsicBegin = 8,
        /// `(gid, vcpu)`, on the old CPU, after a TVM fence.
        RebindImsicClone = 9,
        /// `(gid, vcpu)`, on the new CPU.
        RebindImsicEnd = 10,
    }
}

impl Covi {
    /// The function ID.
    pub const fn fid(self) -> u64 {
        self.number()
    }
}

pub use crate::cvm_fw::sbi::Covg;

/// `sbi_cove_tsm_info` (RFC/Salus layout, RV64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TsmInfo {
    /// [`TsmState`](super::TsmState) as u32.
    pub tstate: u32,
    /// TSM version.
    pub version: u32,
    /// Pages of TVM state per TVM.
    pub tvm_pages_needed: u64,
    /// vCPUs per TVM.
    pub tvm_max_vcpus: u64,
    /// Pages of state per vCPU.
    pub tvcpu_pages_needed: u64,
}

const _: () = {
    assert!(core::mem::size_of::<TsmInfo>() == 32);
    assert!(core::mem::offset_of!(TsmInfo, tstate) == 0);
    assert!(core::mem::offset_of!(TsmInfo, version) == 4);
    assert!(core::mem::offset_of!(TsmInfo, tvm_pages_needed) == 8);
    assert!(core::mem::offset_of!(TsmInfo, tvm_max_vcpus) == 16);
    assert!(core::mem::offset_of!(TsmInfo, tvcpu_pages_needed) == 24);
};
