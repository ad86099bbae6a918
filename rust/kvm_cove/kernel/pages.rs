// SPDX-License-Identifier: GPL-2.0

//! Host pages for TVMs: confidential pages from the page allocator
//! ([`KernelAlloc`]), the VMM's pages behind shared GPAs ([`Pinned`]) and
//! the VMM's pages a measured region is copied from ([`user_page`]).

use core::ffi::c_uint;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use kernel::alloc::flags::GFP_KERNEL;
use kernel::bindings;
use kernel::prelude::*;

use crate::abi::{Gpa, Pa, PAGE_SIZE};
use crate::glue::kvm::Kvm;
use crate::logic::pool::{PageAlloc, Plain};
use crate::logic::run::SharedMem;
use crate::logic::tvm::TvmError;

/// Host pages from the page allocator.
pub(crate) struct KernelAlloc;

/// Pages of the kernel image kept out of TVMs (see [`in_image`]).
static IMAGE_PAGES_KEPT: AtomicU64 = AtomicU64::new(0);
/// Tries before an allocation that keeps meeting image pages gives up.
const IMAGE_RETRIES: u32 = 64;

/// Whether `[pa, pa + len)` overlaps the kernel image in TVM-only mode.
///
/// Salus gives its host the image's memory (its "host kernel" region)
/// but does not map that region itself: converting a page of it (the
/// kernel's freed init memory, back in the page allocator) makes Salus
/// fault on it and stop the machine.  So such pages never become a TVM's.
fn in_image(pa: u64, len: u64) -> bool {
    // SAFETY: `kvm_cove_tvm_only()` only reads a static key set at KVM
    // init; it takes no arguments and may be called from any context.
    if !unsafe { bindings::kvm_cove_tvm_only() } {
        return false;
    }
    let (mut start, mut end) = (0u64, 0u64);
    // SAFETY: `start` and `end` are live locals, which the helper only
    // writes (the image's bounds from `__pa_symbol`).
    unsafe { bindings::kvm_cove_image_range(&mut start, &mut end) };
    pa < end && start < pa.saturating_add(len)
}

impl PageAlloc for KernelAlloc {
    /// `count` zeroed, physically contiguous pages, naturally aligned to
    /// the power of two at or above `count`, each freeable on its own,
    /// none in the kernel image under Salus ([`in_image`]: those are kept
    /// allocated, never used, and counted).
    fn alloc_contiguous(&mut self, count: u64) -> Option<Pa> {
        for _ in 0..IMAGE_RETRIES {
            let pa = Self::alloc_run(count)?;
            if !in_image(pa.0, count * PAGE_SIZE) {
                return Some(pa);
            }
            let kept = IMAGE_PAGES_KEPT.fetch_add(count, Ordering::Relaxed);
            if kept == 0 {
                pr_info!("keeping freed kernel-image pages out of TVMs: the TSM cannot convert them\n");
            }
        }
        None
    }

    fn free(&mut self, page: Plain) {
        // SAFETY: a `Plain` page came from `alloc_contiguous` (each page of
        // a run is freeable alone) and is normal memory again: the pool
        // only hands back pages the TSM reclaimed.
        unsafe { bindings::__free_pages(bindings::phys_to_page(page.pa().0), 0) }
    }
}

impl KernelAlloc {
    /// One run of `count` pages from the page allocator.
    fn alloc_run(count: u64) -> Option<Pa> {
        let order = count.checked_next_power_of_two()?.trailing_zeros();
        if count == 0 || order > bindings::MAX_PAGE_ORDER {
            return None;
        }
        let mut gfp = bindings::GFP_KERNEL_ACCOUNT | bindings::__GFP_ZERO;
        if order > 0 {
            // The pool asks for less when a large run is not there.
            gfp |= bindings::__GFP_NOWARN | (1 << bindings::___GFP_NORETRY_BIT);
        }
        // SAFETY: a plain allocation; the result is checked for NULL.
        let first = NonNull::new(unsafe { bindings::alloc_pages(gfp, order as c_uint) })?;
        // SAFETY: `first` is a fresh, non-compound allocation of `order`;
        // splitting makes each of its pages an order-0 page of its own.
        unsafe { bindings::split_page(first.as_ptr(), order as c_uint) };
        for i in count..(1u64 << order) {
            // SAFETY: with SPARSEMEM_VMEMMAP the `struct page`s of one
            // allocation are contiguous, so `first + i` is its page `i`, an
            // order-0 page after the split that nothing else holds.
            // CAST: i < 2^MAX_PAGE_ORDER.
            unsafe { bindings::__free_pages(first.as_ptr().add(i as usize), 0) };
        }
        // SAFETY: `first` is a valid page.
        Some(Pa(unsafe { bindings::page_to_phys(first.as_ptr()) }))
    }
}

/// The VMM page at userspace address `hva`, referenced until [`put_page`]
/// (a measured page's source).
pub(crate) fn user_page(hva: usize) -> Result<Pa, TvmError> {
    let mut page = core::ptr::null_mut();
    // SAFETY: `page` is a valid out-pointer for one page; GUP refuses
    // kernel addresses itself.
    let n = unsafe { bindings::get_user_pages_fast(hva, 1, 0, &mut page) };
    if n != 1 || page.is_null() {
        return Err(TvmError::Kernel(crate::cvm_fw::errno::EFAULT));
    }
    // SAFETY: a valid page, referenced above.
    Ok(Pa(unsafe { bindings::page_to_phys(page) }))
}

/// Drops the reference [`user_page`] took on the page at `pa`.
///
/// # Safety
///
/// The caller holds that reference and gives it up.
pub(crate) unsafe fn put_page(pa: Pa) {
    // SAFETY: the reference the caller holds (this function's contract).
    unsafe { bindings::put_page(bindings::phys_to_page(pa.0)) }
}

/// The VMM pages pinned behind shared GPAs.
///
/// # Invariants
///
/// Each `(gpa, pa)` in `pages` holds one long-term pin on the page at
/// `pa`, which only [`Pinned`] releases.
pub(crate) struct Pinned {
    kvm: Kvm,
    pages: KVec<(u64, u64)>,
}

impl Pinned {
    /// No pages pinned yet for `kvm`.
    pub(crate) fn new(kvm: Kvm) -> Pinned {
        Pinned {
            kvm,
            pages: KVec::new(),
        }
    }

    /// The TVM is gone: unpins every page.  If `tvm_gone` is false (the
    /// TSM may still map them), the pins are kept for good.
    pub(crate) fn release_all(&mut self, tvm_gone: bool) {
        if !tvm_gone {
            core::mem::forget(core::mem::take(&mut self.pages));
            return;
        }
        while let Some((_, pa)) = self.pages.pop() {
            // SAFETY: the pin this entry held (type invariant); the TVM
            // is destroyed, so nothing maps the page any more.
            unsafe { bindings::unpin_user_page(bindings::phys_to_page(pa)) };
        }
    }
}

impl SharedMem for Pinned {
    fn shared_page(&mut self, gpa: Gpa) -> core::result::Result<Pa, TvmError> {
        if self.pages.iter().any(|&(g, _)| g == gpa.0) {
            return Err(TvmError::Invalid);
        }
        self.pages
            .reserve(1, GFP_KERNEL)
            .map_err(|_| TvmError::NoMemory)?;
        let fault = TvmError::Kernel(crate::cvm_fw::errno::EFAULT);
        let hva = self.kvm.user_address(gpa.0 / PAGE_SIZE).ok_or(fault)?;
        let mut page = core::ptr::null_mut();
        let flags = bindings::FOLL_WRITE | bindings::FOLL_LONGTERM;
        // SAFETY: `page` is a valid out-pointer for one page; GUP refuses
        // kernel addresses (KVM's error addresses among them) itself.
        // CAST: FOLL_* flags fit in u32.
        let n = unsafe { bindings::pin_user_pages_fast(hva, 1, flags as c_uint, &mut page) };
        if n != 1 || page.is_null() {
            return Err(fault);
        }
        // SAFETY: a valid page, pinned above.
        let pa = unsafe { bindings::page_to_phys(page) };
        // INVARIANT: the pin is recorded; cannot fail after `reserve`.
        if self.pages.push((gpa.0, pa), GFP_KERNEL).is_err() {
            // SAFETY: pinned just above and not recorded.
            unsafe { bindings::unpin_user_page(page) };
            return Err(TvmError::NoMemory);
        }
        Ok(Pa(pa))
    }

    fn holds(&self, gpa: Gpa) -> bool {
        self.pages.iter().any(|&(g, _)| g == gpa.0)
    }

    fn release_shared(&mut self, gpa: Gpa) {
        if let Some(i) = self.pages.iter().position(|&(g, _)| g == gpa.0) {
            if let Ok((_, pa)) = self.pages.remove(i) {
                // SAFETY: the pin this entry held (type invariant); the
                // caller removed the page from the TVM.
                unsafe { bindings::unpin_user_page(bindings::phys_to_page(pa)) };
            }
        }
    }
}
