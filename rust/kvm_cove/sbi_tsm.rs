// SPDX-License-Identifier: GPL-2.0

//! COVH over `ecall`: the kernel's implementation of [`Tsm`].
//!
//! Structures the TSM reads or writes (`tsm_info`, TVM create
//! parameters) are staged in a page this module owns.

use core::mem::size_of;

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::page::Page;
use kernel::prelude::*;

use crate::abi::rfc::Covh;
use crate::abi::{Gpa, Pa, PageType, SbiError, SbiResult, TsmInfo, TvmCreateParams, EXT_COVH};
use crate::sbi;
use crate::tsm::{CallCounts, Gid, Tsm};

/// COVH through SBI calls, with per-function counters.
pub(crate) struct SbiTsm {
    stage: Page,
    /// Calls issued through this instance.
    pub(crate) counts: CallCounts,
}

impl SbiTsm {
    /// A conduit with its own staging page.
    pub(crate) fn new() -> Result<SbiTsm> {
        Ok(SbiTsm {
            stage: Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?,
            counts: CallCounts::default(),
        })
    }

    fn call(&mut self, f: Covh, args: [u64; 6]) -> SbiResult<u64> {
        self.counts.record(f);
        let r = sbi::ecall(EXT_COVH, f.fid(), args);
        SbiError::decode(r.error).map(|()| r.value)
    }
}

fn stage_err(_: Error) -> SbiError {
    SbiError::Failed
}

impl Tsm for SbiTsm {
    fn get_info(&mut self) -> SbiResult<TsmInfo> {
        let pa = self.stage.phys_addr();
        // CAST: size_of::<TsmInfo>() is 32.
        let n = self.call(
            Covh::TsmGetInfo,
            [pa, size_of::<TsmInfo>() as u64, 0, 0, 0, 0],
        )?;
        if n < size_of::<TsmInfo>() as u64 {
            return Err(SbiError::Failed);
        }
        let mut info = TsmInfo::default();
        // SAFETY: `info` is a writable `TsmInfo`, all of whose bit patterns
        // are valid (integers only); `read_raw` bounds-checks the page.
        unsafe {
            self.stage.read_raw(
                (&mut info as *mut TsmInfo).cast::<u8>(),
                0,
                size_of::<TsmInfo>(),
            )
        }
        .map_err(stage_err)?;
        Ok(info)
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
        // SAFETY: runs the fence ecall on each CPU; no pointers passed.
        let e = unsafe { crate::uapi::kvm_cove_local_fence_all() };
        SbiError::decode(i64::from(e))
    }

    fn create_tvm(&mut self, p: &TvmCreateParams) -> SbiResult<Gid> {
        // SAFETY: `p` is a live `repr(C)` struct of two u64 without padding,
        // readable for its size; `write_raw` bounds-checks the page.
        unsafe {
            self.stage.write_raw(
                (p as *const TvmCreateParams).cast::<u8>(),
                0,
                size_of::<TvmCreateParams>(),
            )
        }
        .map_err(stage_err)?;
        let pa = self.stage.phys_addr();
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

    fn vcpu_run(&mut self, gid: Gid, id: u64) -> SbiResult<u64> {
        self.call(Covh::TvmVcpuRun, [gid, id, 0, 0, 0, 0])
    }

    fn tvm_fence(&mut self, gid: Gid) -> SbiResult {
        self.call(Covh::TvmInitiateFence, [gid, 0, 0, 0, 0, 0])
            .map(drop)
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
}
