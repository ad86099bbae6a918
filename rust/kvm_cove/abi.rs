// SPDX-License-Identifier: GPL-2.0

//! The CoVE SBI interface: extension IDs, SBI errors and the structures
//! shared with the TSM.
//!
//! Function numbering differs between the CoVE RFC (and Salus) and spec
//! v0.7, so each numbering lives in its own submodule (`rfc`); callers use
//! the typed functions of [`crate::logic::tsm::Tsm`] and never see the numbers.

use core::mem::{offset_of, size_of};

mod rfc;

pub use rfc::{CallCounts, CoviCounts, Covg, Covh, Covi, TsmInfo};

/// `COVH`: host-side extension.
pub const EXT_COVH: u64 = 0x434F_5648;
/// `COVI`: interrupt extension.
pub const EXT_COVI: u64 = 0x434F_5649;
pub use crate::cvm_fw::sbi::EXT_COVG;
/// `NACL`: nested acceleration (shared memory with the TSM).
pub const EXT_NACL: u64 = 0x4E41_434C;

/// Page size the TSM tracks.
pub const PAGE_SIZE: u64 = crate::cvm_fw::addr::PAGE_SIZE;

/// A host physical address.
pub use crate::cvm_fw::addr::Pa;

/// A guest physical address of a TVM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gpa(pub u64);

pub use crate::cvm_fw::sbi::SbiError;

/// Result of an SBI call.
pub type SbiResult<T = ()> = core::result::Result<T, SbiError>;

/// What `TVM_VCPU_RUN` reports about the exit it returns on.
///
/// The TSM returns the exit's `scause` and `stval` in the host's own
/// `scause` and `stval` CSRs (Salus writes them to the host's `vscause`
/// and `vstval`, which the host, in VS mode, reads as its own), and only
/// `htval`, `htinst`, `vstimecmp`, `vsie` and the guest's `a0`-`a7` in the
/// NACL shared memory.  The conduit reads the two CSRs right after the
/// `ecall`, before anything can trap and overwrite them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunExit {
    /// `a1`: 0 if the vCPU can be run again, else it was powered off.
    pub ret: u64,
    /// The exit's cause.
    pub scause: u64,
    /// The exit's trap value: the low two GPA bits of a guest-page fault,
    /// the instruction of a virtual-instruction exit.
    pub stval: u64,
}

impl RunExit {
    /// Whether the vCPU can be run again.
    pub const fn resumable(&self) -> bool {
        self.ret == 0
    }
}

/// TSM state in [`TsmInfo::tstate`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsmState {
    /// No TSM loaded.
    NotLoaded = 0,
    /// Loaded, not ready.
    Loaded = 1,
    /// Ready to create TVMs.
    Ready = 2,
}

/// `sbi_cove_tvm_create_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TvmCreateParams {
    /// 16 KiB-aligned, 16 KiB confidential G-stage root.
    pub tvm_page_directory_addr: u64,
    /// TVM state pages (`tvm_pages_needed` contiguous).
    pub tvm_state_addr: u64,
}

/// `sbi_cove_tvm_aia_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TvmAiaParams {
    /// Guest IMSIC base.
    pub imsic_base_addr: u64,
    /// Group index bits.
    pub group_index_bits: u32,
    /// Group index shift (>= 24).
    pub group_index_shift: u32,
    /// Hart index bits.
    pub hart_index_bits: u32,
    /// Guest index bits.
    pub guest_index_bits: u32,
    /// Guests per hart.
    pub guests_per_hart: u32,
    _pad: u32,
}

impl TvmAiaParams {
    /// A TVM IMSIC at `base` with `hart_index_bits` bits of vCPU index,
    /// one group at `group_index_shift`, and no guest files of its own
    /// (`guests_per_hart` 0: TSMs refuse nested IMSIC virtualization).
    pub const fn new(base: u64, hart_index_bits: u32, group_index_shift: u32) -> TvmAiaParams {
        TvmAiaParams {
            imsic_base_addr: base,
            group_index_bits: 0,
            group_index_shift,
            hart_index_bits,
            guest_index_bits: 0,
            guests_per_hart: 0,
            _pad: 0,
        }
    }
}

/// Page sizes in `page_type` arguments.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageType {
    /// 4 KiB.
    Page4K = 0,
    /// 2 MiB.
    Page2M = 1,
    /// 1 GiB.
    Page1G = 2,
    /// 512 GiB.
    Page512G = 3,
}

impl PageType {
    /// Bytes in one page of this type.
    pub const fn size(self) -> u64 {
        match self {
            PageType::Page4K => 1 << 12,
            PageType::Page2M => 1 << 21,
            PageType::Page1G => 1 << 30,
            PageType::Page512G => 1 << 39,
        }
    }
}

/// Layout of the NACL shared memory the TSM and the host exchange vCPU
/// state through (per physical CPU).
pub mod nacl {
    /// Scratch area: after `TVM_VCPU_RUN`, `guest_gprs[32]` at its start.
    pub const SCRATCH_OFFSET: usize = 0x0;
    /// Scratch bytes.
    pub const SCRATCH_SIZE: usize = 0x800;
    /// CSR dirty bitmap.
    pub const DIRTY_BITMAP_OFFSET: usize = 0xF80;
    /// CSR area: 1024 u64 slots.
    pub const CSR_OFFSET: usize = 0x1000;
    /// CSR slots.
    pub const CSR_SLOTS: usize = 1024;
    /// Whole shared memory.
    pub const SIZE: usize = CSR_OFFSET + 8 * CSR_SLOTS;

    /// Slot of CSR `csr` in the CSR area.
    pub const fn csr_index(csr: u16) -> usize {
        (((csr & 0xc00) >> 2) | (csr & 0xff)) as usize
    }

    /// Byte offset of GPR `x<i>` in the scratch area.
    pub const fn gpr_offset(i: usize) -> usize {
        SCRATCH_OFFSET + 8 * i
    }

    /// `scause`.
    pub const CSR_SCAUSE: u16 = 0x142;
    /// `stval`.
    pub const CSR_STVAL: u16 = 0x143;
    /// `htval`.
    pub const CSR_HTVAL: u16 = 0x643;
    /// `htinst`.
    pub const CSR_HTINST: u16 = 0x64A;
    /// `vsie`.
    pub const CSR_VSIE: u16 = 0x204;
}

const _: () = {
    assert!(size_of::<TvmCreateParams>() == 16);
    assert!(offset_of!(TvmCreateParams, tvm_state_addr) == 8);
    assert!(size_of::<TvmAiaParams>() == 32);
    assert!(offset_of!(TvmAiaParams, group_index_bits) == 8);
    assert!(offset_of!(TvmAiaParams, guests_per_hart) == 24);
    assert!(nacl::SCRATCH_SIZE + 0x780 == nacl::DIRTY_BITMAP_OFFSET);
    assert!(nacl::DIRTY_BITMAP_OFFSET + 16 * 8 == nacl::CSR_OFFSET);
    assert!(nacl::SIZE == 0x3000);
    assert!(nacl::csr_index(0xfff) < nacl::CSR_SLOTS);
};
