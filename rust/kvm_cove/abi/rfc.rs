// SPDX-License-Identifier: GPL-2.0

//! Function IDs as numbered by the CoVE RFC series and Salus (`sbi-rs`).
//! Spec v0.7 inserts `PROMOTE_TO_TVM` at COVH 7 and shifts the rest; it
//! would be a sibling module.

/// COVH functions (a6).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Covh {
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

impl Covh {
    /// Every COVH function, in FID order.
    pub const ALL: [Covh; 21] = [
        Covh::TsmGetInfo,
        Covh::TsmConvertPages,
        Covh::TsmReclaimPages,
        Covh::TsmInitiateFence,
        Covh::TsmLocalFence,
        Covh::CreateTvm,
        Covh::FinalizeTvm,
        Covh::DestroyTvm,
        Covh::TvmAddMemoryRegion,
        Covh::TvmAddPgtPages,
        Covh::TvmAddMeasuredPages,
        Covh::TvmAddZeroPages,
        Covh::TvmAddSharedPages,
        Covh::TvmCreateVcpu,
        Covh::TvmVcpuRun,
        Covh::TvmInitiateFence,
        Covh::TvmInvalidatePages,
        Covh::TvmValidatePages,
        Covh::TvmPromotePage,
        Covh::TvmDemotePage,
        Covh::TvmRemovePages,
    ];

    /// The function ID.
    pub const fn fid(self) -> u64 {
        // CAST: fieldless `repr(u64)` enum to its discriminant.
        self as u64
    }

    /// The function with ID `fid`.
    pub fn from_fid(fid: u64) -> Option<Covh> {
        Covh::ALL.get(usize::try_from(fid).ok()?).copied()
    }
}

/// COVI functions.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covi {
    /// `(gid, pa(params), len)`.
    TvmAiaInit = 0,
    /// `(gid, vcpu, imsic_gpa)`.
    CpuSetImsicAddr = 1,
    /// `(imsic_pa)`; needs a global fence afterwards.
    ConvertImsic = 2,
    /// `(imsic_pa)`.
    ReclaimImsic = 3,
    /// `(gid, vcpu, mask)`.
    CpuBindImsic = 4,
    /// `(gid, vcpu)`.
    UnbindImsicBegin = 5,
    /// `(gid, vcpu)`.
    UnbindImsicEnd = 6,
    /// `(gid, vcpu, iid)`.
    InjectExtInterrupt = 7,
    /// `(gid, vcpu, mask)`.
    RebindImsicBegin = 8,
    /// `(gid, vcpu)`.
    RebindImsicClone = 9,
    /// `(gid, vcpu)`.
    RebindImsicEnd = 10,
}

/// COVG functions (made by the TVM; the host sees some as exits).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covg {
    /// `(gpa, len)`.
    AddMmioRegion = 0,
    /// `(gpa, len)`.
    RemoveMmioRegion = 1,
    /// `(gpa, len)`.
    ShareMemory = 2,
    /// `(gpa, len)`.
    UnshareMemory = 3,
    /// `(id; -1 = all)`.
    AllowExtInterrupt = 4,
    /// `(id)`.
    DenyExtInterrupt = 5,
}

impl Covg {
    /// The function with ID `fid`.
    pub const fn from_fid(fid: u64) -> Option<Covg> {
        Some(match fid {
            0 => Covg::AddMmioRegion,
            1 => Covg::RemoveMmioRegion,
            2 => Covg::ShareMemory,
            3 => Covg::UnshareMemory,
            4 => Covg::AllowExtInterrupt,
            5 => Covg::DenyExtInterrupt,
            _ => return None,
        })
    }
}
