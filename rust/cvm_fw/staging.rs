// SPDX-License-Identifier: GPL-2.0

//! The page a firmware conduit stages its call's structures in (kernel
//! build only).
//!
//! A conduit fills a typed value here (a union of the structures of its
//! calls), passes the page's physical address to the firmware, and reads
//! the answer back as a typed value.  Nothing in this can fail once the
//! page is allocated, so the conduits report nothing but the firmware's
//! own statuses.

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::bindings;
use kernel::prelude::*;

use super::addr::PAGE_SIZE;

/// A staging page holding a `T`.
///
/// # Invariants
///
/// `pa` is the physical address of `*page`, a naturally aligned,
/// physically contiguous 4 KiB kmalloc allocation.
pub(crate) struct Staging<T> {
    page: KBox<T>,
    pa: u64,
}

impl<T> Staging<T> {
    /// A zeroed staging page.
    ///
    /// # Safety
    ///
    /// `T` is 4 KiB, 4 KiB aligned, and every field of it is integers and
    /// arrays of them, so that all zeroes (and every bit pattern the
    /// firmware may write) is a valid `T`.
    pub(crate) unsafe fn new() -> Result<Staging<T>> {
        build_assert!(core::mem::size_of::<T>() == PAGE_SIZE as usize);
        build_assert!(core::mem::align_of::<T>() == PAGE_SIZE as usize);
        let page = KBox::<T>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: the memory is zeroed, a valid `T` (this function's
        // contract).
        let page = unsafe { page.assume_init() };
        // SAFETY: `page` is live kmalloc memory, which is in the linear
        // map, where `virt_to_phys()` is defined.
        let pa = unsafe { bindings::virt_to_phys(core::ptr::from_ref(&*page).cast_mut().cast()) };
        // INVARIANT: a 4 KiB kmalloc allocation aligned to 4 KiB is one
        // naturally aligned, physically contiguous page; `pa` is its
        // address.
        Ok(Staging { page, pa })
    }

    /// The page's physical address, for the firmware.
    pub(crate) fn pa(&self) -> u64 {
        self.pa
    }

    /// The staged value.
    pub(crate) fn get(&mut self) -> &mut T {
        &mut self.page
    }

    /// Around the firmware call: the firmware reads and writes the page by
    /// its physical address, which the compiler cannot see, so the
    /// pointer escapes here; writes before the call are done and reads
    /// after it are not taken from before.
    pub(crate) fn escape(&mut self) {
        core::hint::black_box(core::ptr::from_mut(&mut *self.page));
    }
}
