// SPDX-License-Identifier: GPL-2.0

//! Kernel pages the realm logic lends to the RMM, and the guest memory it
//! maps: [`KernelAlloc`] implements [`GranuleAlloc`] with the page
//! allocator (metadata granules) and [`GuestMemory`] with the VM's
//! memslots (guest_memfd pages, userspace pages of the shared alias and of
//! `POPULATE_REALM` sources), through the glue in `rme_glue.c`.

use core::ptr::NonNull;

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::bindings;
use kernel::page::Page;
use kernel::prelude::*;

use crate::abi::{Ipa, Pa, GRANULE_SIZE};
use crate::logic::granule::{GranuleAlloc, Undelegated};
use crate::logic::realm::{level_size, RealmError, RTT_BLOCK_LEVEL};
use crate::logic::run::GuestMemory;

/// The size of a shared block (`kvm_rme_user_block`).
const BLOCK_SIZE: u64 = level_size(RTT_BLOCK_LEVEL);

/// A page lent to the RMM: an owned order-0 `Page`, or one page of a
/// split higher-order allocation (the concatenated start RTTs).
enum Lent {
    Owned(Page),
    /// # Invariants
    ///
    /// An order-0 page (after `split_page`) that only this entry owns.
    Split(NonNull<bindings::page>),
    /// # Invariants
    ///
    /// A guest_memfd page on which this entry holds one reference (from
    /// `kvm_gmem_get_pfn`), so it cannot return to the allocator while
    /// the RMM may hold it, even if guest_memfd drops it.
    Gmem(NonNull<bindings::page>),
}

impl Lent {
    fn pa(&self) -> u64 {
        match self {
            Lent::Owned(p) => p.phys_addr(),
            // SAFETY: the page is valid by the type invariants.
            Lent::Split(p) | Lent::Gmem(p) => unsafe { bindings::page_to_phys(p.as_ptr()) },
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        match self {
            Lent::Owned(_) => {}
            // SAFETY: an order-0 page this entry owns (type invariant);
            // dropping the entry gives it back exactly once.
            Lent::Split(p) => unsafe { bindings::__free_pages(p.as_ptr(), 0) },
            // SAFETY: drops the reference this entry holds (invariant),
            // once: the entry goes with it.
            Lent::Gmem(p) => unsafe { bindings::put_page(p.as_ptr()) },
        }
    }
}

/// Host pages lent to the RMM, kept here until they come back.
///
/// # Invariants
///
/// `pages` holds exactly the pages handed out by `alloc*` and not yet
/// returned through `free`/`release_data`.  Any of them may be delegated,
/// so they are never freed implicitly: see [`KernelAlloc::abandon`].
pub(crate) struct KernelAlloc {
    pages: KVec<Lent>,
    /// The `struct kvm` whose memslots back the realm (for guest_memfd
    /// and userspace page lookups); it outlives this state, which
    /// `kvm_arch_destroy_vm` frees.
    kvm: *mut bindings::kvm,
    /// Pinned `POPULATE_REALM` sources: physical address and page.
    sources: KVec<(u64, NonNull<bindings::page>)>,
    /// Long-term pins of the pages mapped at the shared alias: guest
    /// physical address (shared bit clear) and page.
    shared: KVec<(u64, NonNull<bindings::page>)>,
    /// The same for 2 MiB blocks: the pin on a huge page's first page
    /// holds the whole folio (`kvm_rme_user_block`).
    shared_blocks: KVec<(u64, NonNull<bindings::page>)>,
}

impl KernelAlloc {
    /// An allocator for the realm of `kvm`, lending nothing yet.
    pub(crate) fn new(kvm: *mut bindings::kvm) -> KernelAlloc {
        KernelAlloc {
            pages: KVec::new(),
            kvm,
            sources: KVec::new(),
            shared: KVec::new(),
            shared_blocks: KVec::new(),
        }
    }

    fn keep(&mut self, page: Lent) -> Option<Pa> {
        let pa = Pa(page.pa());
        match self.pages.push(page, GFP_KERNEL) {
            Ok(()) => Some(pa),
            // The page was never lent: dropping it (in `push`'s error)
            // frees it, which is what we want.
            Err(_) => None,
        }
    }

    fn give_back(&mut self, pa: Pa) {
        match self.pages.iter().position(|p| p.pa() == pa.0) {
            Some(i) => drop(self.pages.remove(i)),
            None => kernel::pr_warn_ratelimited!("page {:#x} returned but never lent: leaked\n", pa.0),
        }
    }

    /// Called when the realm is gone: unpins the shared pages, which its
    /// RTTs no longer map.  If the realm was leaked instead, they stay
    /// pinned for good.
    pub(crate) fn unpin_all_shared(&mut self, realm_gone: bool) {
        while let Some((_, page)) = self.shared.pop().or_else(|| self.shared_blocks.pop()) {
            if realm_gone {
                // SAFETY: drops the pin `shared_page` or `shared_block`
                // took (the entry owned it); the realm and its RTTs are
                // destroyed, so no stage 2 maps the memory any more.
                unsafe { bindings::unpin_user_page(page.as_ptr()) };
            }
        }
    }

    /// Called when the realm is gone: pages still here were never given
    /// back (their undelegation failed), so they must never be freed.
    pub(crate) fn abandon(&mut self) -> usize {
        let n = self.pages.len();
        while let Some(p) = self.pages.pop() {
            core::mem::forget(p);
        }
        n
    }
}

/// What a lookup of [`lookup`] asks the glue for.
#[derive(Clone, Copy)]
enum Lookup {
    /// A reference on the guest_memfd page of a private IPA.
    Gmem,
    /// A reference on the memslot's userspace page (a populate source).
    User,
    /// A long-term, writable pin of the memslot's userspace page (the
    /// shared alias).
    Pin,
}

/// The page `how` finds for `ipa` in the memslots of `kvm`, with the
/// reference or pin the glue took on it (the caller's to drop), or the
/// errno of the kernel service that failed.
fn lookup(how: Lookup, kvm: *mut bindings::kvm, ipa: Ipa) -> Result<NonNull<bindings::page>, RealmError> {
    let mut page = core::ptr::null_mut();
    let gfn = ipa.0 / GRANULE_SIZE;
    let r = match how {
        // SAFETY: `kvm` is the live VM this state belongs to (it outlives
        // the state); `page` is a valid out-pointer.
        Lookup::Gmem => unsafe { bindings::kvm_rme_gmem_page(kvm, gfn, &mut page) },
        // SAFETY: as above.
        Lookup::User => unsafe { bindings::kvm_rme_user_page(kvm, gfn, &mut page, false) },
        // SAFETY: as above.
        Lookup::Pin => unsafe { bindings::kvm_rme_user_page(kvm, gfn, &mut page, true) },
    };
    if r < 0 {
        return Err(RealmError::Kernel(-r));
    }
    NonNull::new(page).ok_or(RealmError::Fault)
}

/// How a page from [`lookup`] is given back.
#[derive(Clone, Copy)]
enum Release {
    /// `put_page()`: a reference (`Lookup::Gmem`, `Lookup::User`).
    Put,
    /// `unpin_user_page()`: a pin (`Lookup::Pin`).
    Unpin,
}

/// Gives back what [`lookup`] took on `page`.
///
/// # Safety
///
/// The caller holds the reference or pin `how` releases on `page`, and
/// gives it up.
unsafe fn release(how: Release, page: NonNull<bindings::page>) {
    match how {
        // SAFETY: the caller's reference (contract of this function).
        Release::Put => unsafe { bindings::put_page(page.as_ptr()) },
        // SAFETY: the caller's pin (contract of this function).
        Release::Unpin => unsafe { bindings::unpin_user_page(page.as_ptr()) },
    }
}

/// Removes the entry for `key` from a list of (key, page) and returns its
/// page, whose reference or pin the caller then drops.
fn take_page(
    list: &mut KVec<(u64, NonNull<bindings::page>)>,
    key: u64,
) -> Option<NonNull<bindings::page>> {
    let i = list.iter().position(|(k, _)| *k == key)?;
    list.remove(i).ok().map(|(_, page)| page)
}

/// Records `page`, which the caller holds a reference or pin on, in
/// `list` under `key` (its physical address if `None`) and returns that
/// address.  Without memory for the entry, `drop_ref` gives the page back.
///
/// # Safety
///
/// `page` is a valid page on which the caller holds what `how` releases,
/// and gives it to the list.
unsafe fn track(
    list: &mut KVec<(u64, NonNull<bindings::page>)>,
    key: Option<u64>,
    page: NonNull<bindings::page>,
    how: Release,
) -> Result<u64, RealmError> {
    // SAFETY: `page` is a valid page (this function's contract).
    let pa = unsafe { bindings::page_to_phys(page.as_ptr()) };
    if list.push((key.unwrap_or(pa), page), GFP_KERNEL).is_err() {
        // SAFETY: the reference or pin the caller gave us, which nothing
        // recorded.
        unsafe { release(how, page) };
        return Err(RealmError::NoMemory);
    }
    Ok(pa)
}

impl GuestMemory for KernelAlloc {
    fn private_page(&mut self, ipa: Ipa) -> Result<Undelegated, RealmError> {
        let page = lookup(Lookup::Gmem, self.kvm, ipa)?;
        // The reference from kvm_gmem_get_pfn moves into the entry.
        // INVARIANT: the entry takes over the reference the lookup took.
        let pa = self.keep(Lent::Gmem(page)).ok_or(RealmError::NoMemory)?;
        Undelegated::from_host_page(pa).ok_or(RealmError::Invalid)
    }

    fn source_page(&mut self, ipa: Ipa) -> Result<Pa, RealmError> {
        let page = lookup(Lookup::User, self.kvm, ipa)?;
        // SAFETY: `lookup` took a reference on `page`, which `Put` drops.
        let pa = unsafe { track(&mut self.sources, None, page, Release::Put) }?;
        Ok(Pa(pa))
    }

    fn release_source(&mut self, pa: Pa) {
        if let Some(page) = take_page(&mut self.sources, pa.0) {
            // SAFETY: the reference `source_page` took, which the list
            // held until now.
            unsafe { release(Release::Put, page) };
        }
    }

    fn shared_page(&mut self, gpa: Ipa) -> Result<Pa, RealmError> {
        let page = lookup(Lookup::Pin, self.kvm, gpa)?;
        // SAFETY: `lookup` pinned `page`, which `Unpin` releases.
        let pa = unsafe { track(&mut self.shared, Some(gpa.0), page, Release::Unpin) }?;
        Ok(Pa(pa))
    }

    fn shared_block(&mut self, gpa: Ipa) -> Option<Pa> {
        let mut page = core::ptr::null_mut();
        // SAFETY: `kvm` is the live VM this state belongs to (it outlives
        // the state); `page` is a valid out-pointer.
        let r = unsafe { bindings::kvm_rme_user_block(self.kvm, gpa.0 / GRANULE_SIZE, &mut page) };
        let page = NonNull::new(page).filter(|_| r == 0)?;
        // SAFETY: `kvm_rme_user_block` pinned `page`, the first page of
        // the block, whose pin `Unpin` releases.
        let pa = unsafe { track(&mut self.shared_blocks, Some(gpa.0), page, Release::Unpin) };
        pa.ok().map(Pa)
    }

    fn release_shared(&mut self, gpa: Ipa) {
        let page = take_page(&mut self.shared, gpa.0)
            .or_else(|| take_page(&mut self.shared_blocks, gpa.0));
        if let Some(page) = page {
            // SAFETY: the pin `shared_page` or `shared_block` took, which
            // the list held until now; the realm no longer maps the memory.
            unsafe { release(Release::Unpin, page) };
        }
    }

    fn shared_in(&self, start: Ipa, end: Ipa) -> Option<(Ipa, u64)> {
        let find = |list: &KVec<(u64, NonNull<bindings::page>)>| {
            list.iter()
                .find(|(g, _)| (start.0..end.0).contains(g))
                .map(|(g, _)| Ipa(*g))
        };
        find(&self.shared)
            .map(|g| (g, GRANULE_SIZE))
            .or_else(|| find(&self.shared_blocks).map(|g| (g, BLOCK_SIZE)))
    }

    fn vmm_agrees(&mut self, base: Ipa, top: Ipa, ram: bool) -> bool {
        // CAST: a bit flag, as the C `unsigned long` attribute mask.
        let private = bindings::KVM_MEMORY_ATTRIBUTE_PRIVATE as usize;
        // SAFETY: `kvm` is the live VM this state belongs to; the callee
        // reads the attributes under its own lock.
        unsafe {
            bindings::kvm_range_has_memory_attributes(
                self.kvm,
                base.0 / GRANULE_SIZE,
                top.0 / GRANULE_SIZE,
                private,
                if ram { private } else { 0 },
            )
        }
    }

    fn forwards_to_user(&mut self, function: u32) -> bool {
        // SAFETY: `kvm` is the live VM this state belongs to; the callee
        // reads its SMCCC filter under RCU.
        unsafe { bindings::kvm_smccc_fwd_to_user(self.kvm, function) }
    }
}

impl GranuleAlloc for KernelAlloc {
    fn alloc(&mut self) -> Option<Undelegated> {
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO).ok()?;
        Undelegated::from_host_page(self.keep(Lent::Owned(page))?)
    }

    fn alloc_contiguous(&mut self, count: usize) -> Option<Pa> {
        if count == 0 || count > 16 {
            return None;
        }
        let order = count.next_power_of_two().trailing_zeros();
        // SAFETY: plain page allocation; the result is checked for NULL.
        let raw = unsafe {
            kernel::bindings::alloc_pages(
                kernel::bindings::GFP_KERNEL | kernel::bindings::__GFP_ZERO,
                order,
            )
        };
        let first = NonNull::new(raw)?;
        // SAFETY: `first` is a fresh, non-compound allocation of `order`;
        // splitting makes each of its pages an independent order-0 page.
        unsafe { kernel::bindings::split_page(first.as_ptr(), order) };
        let mut base = None;
        let mut ok = true;
        for i in 0..(1usize << order) {
            // SAFETY: with SPARSEMEM_VMEMMAP (arm64) the `struct page`s of
            // one allocation are contiguous, so `first + i` is page `i` of
            // it, non-null.
            let p = unsafe { NonNull::new_unchecked(first.as_ptr().add(i)) };
            // INVARIANT: order 0 after the split, and nothing but this
            // entry holds it: each page of the run gets one entry.
            let page = Lent::Split(p);
            if i >= count || !ok {
                // Not needed (or the run is incomplete): freed at once.
                drop(page);
                continue;
            }
            match self.keep(page) {
                Some(pa) if i == 0 => base = Some(pa),
                Some(_) => {}
                None => ok = false,
            }
        }
        if ok {
            base
        } else {
            // Give back the part of the run already kept.
            if let Some(b) = base {
                for i in 0..count as u64 {
                    self.give_back(b.add_pages(i));
                }
            }
            None
        }
    }

    fn free(&mut self, page: Undelegated) {
        self.give_back(page.pa());
    }

    fn release_data(&mut self, page: Undelegated) {
        self.give_back(page.pa());
    }
}

