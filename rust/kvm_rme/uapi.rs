// SPDX-License-Identifier: GPL-2.0

//! Kernel side of the realm-VM uAPI: the `extern "C"` entry points the
//! arm64 KVM hooks call (patch 0004), on top of [`crate::vm::RealmVm`].
//!
//! Locking: the hooks call [`kvm_rme_enable_cap`] with `kvm->lock` held
//! and [`kvm_rme_vm_destroy`] when the VM has no other users, so the
//! per-VM state needs no lock of its own.

use core::ffi::{c_int, c_ulong, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::page::Page;
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::abi::v1_0::Features0;
use crate::abi::Pa;
use crate::granule::{GranuleAlloc, Undelegated};
use crate::realm::Rec;
use crate::smc::SmcRmi;
use crate::vm::{self, cmd, RealmVm, CONFIG_SIZE, RANGE_SIZE};

/// Realms are enabled (an RMI 1.0 RMM answered at boot).
static READY: AtomicBool = AtomicBool::new(false);
/// `RMI_FEATURES(0)` from the boot probe.
static FEATURES: AtomicU64 = AtomicU64::new(0);
/// VMID candidates for `REALM_CREATE` (the RMM refuses ones in use).
static NEXT_VMID: AtomicU32 = AtomicU32::new(1);
/// Warnings printed so far (a crude rate limit: the first few only).
static WARNINGS: AtomicU32 = AtomicU32::new(0);

/// Prints at most 16 warnings per boot.
macro_rules! warn_limited {
    ($($arg:tt)*) => {
        if WARNINGS.fetch_add(1, Ordering::Relaxed) < 16 {
            pr_warn!($($arg)*);
        }
    };
}

/// Records the boot probe's outcome.
pub(crate) fn set_ready(features: Option<Features0>) {
    if let Some(f) = features {
        FEATURES.store(f.encode(), Ordering::Relaxed);
        READY.store(true, Ordering::Release);
    }
}

/// A page lent to the RMM: an owned order-0 `Page`, or one page of a
/// split higher-order allocation (the concatenated start RTTs).
enum Lent {
    Owned(Page),
    /// # Invariants
    ///
    /// An order-0 page (after `split_page`) that only this entry owns.
    Split(NonNull<kernel::bindings::page>),
}

impl Lent {
    fn pa(&self) -> u64 {
        match self {
            Lent::Owned(p) => p.phys_addr(),
            // SAFETY: the page is valid by the type invariant.
            Lent::Split(p) => unsafe { kernel::bindings::page_to_phys(p.as_ptr()) },
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Lent::Split(p) = self {
            // SAFETY: an order-0 page this entry owns (type invariant);
            // dropping the entry gives it back exactly once.
            unsafe { kernel::bindings::__free_pages(p.as_ptr(), 0) };
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
struct KernelAlloc {
    pages: KVec<Lent>,
}

impl KernelAlloc {
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
            None => warn_limited!("page {:#x} returned but never lent: leaked\n", pa.0),
        }
    }

    /// Called when the realm is gone: pages still here were never given
    /// back (their undelegation failed), so they must never be freed.
    fn abandon(&mut self) -> usize {
        let n = self.pages.len();
        while let Some(p) = self.pages.pop() {
            core::mem::forget(p);
        }
        n
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
            // it, order 0 after the split and owned by us alone.
            let page = Lent::Split(unsafe { NonNull::new_unchecked(first.as_ptr().add(i)) });
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
                    self.give_back(b.add_granules(i));
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

/// Per-VM state behind `kvm->arch.rme`.
struct State {
    vm: RealmVm,
    rmi: SmcRmi,
    alloc: KernelAlloc,
    /// RECs by vCPU index.
    recs: KVec<(u32, Rec)>,
}

/// The state of a realm VM, created on first use.
///
/// # Safety
///
/// `slot` is `kvm->arch.rme` of a realm VM, only used by this module, and
/// the caller holds `kvm->lock`.
unsafe fn vm_state<'a>(slot: *mut *mut c_void, ipa_bits: u8) -> Result<&'a mut State, i32> {
    // SAFETY: by the function's contract `slot` is valid and ours.
    let slot = unsafe { &mut *slot };
    if slot.is_null() {
        let f = Features0::decode(FEATURES.load(Ordering::Relaxed));
        let rmi = SmcRmi::new().map_err(|_| crate::errno::ENOMEM)?;
        let new = State {
            vm: RealmVm::new(ipa_bits, f),
            rmi,
            alloc: KernelAlloc { pages: KVec::new() },
            recs: KVec::new(),
        };
        let b = KBox::new(new, GFP_KERNEL).map_err(|_| crate::errno::ENOMEM)?;
        *slot = KBox::into_raw(b).cast::<c_void>();
    }
    // SAFETY: a non-null slot holds a `State` from `KBox::into_raw` above,
    // not freed until `kvm_rme_vm_destroy`; `kvm->lock` makes this the only
    // reference.
    Ok(unsafe { &mut *slot.cast::<State>() })
}

fn next_vmid() -> u16 {
    loop {
        // CAST: VMIDs are 16 bits; 0 is skipped.
        let v = NEXT_VMID.fetch_add(1, Ordering::Relaxed) as u16;
        if v != 0 {
            return v;
        }
    }
}

/// Whether realms can be created: `KVM_CHECK_EXTENSION(KVM_CAP_ARM_RME)`.
#[no_mangle]
pub extern "C" fn kvm_rme_supported() -> c_int {
    c_int::from(READY.load(Ordering::Acquire))
}

/// Checks a `KVM_CREATE_VM` type with `KVM_VM_TYPE_ARM_REALM`: 0 or
/// `-EINVAL` (realms disabled, bad IPA size, or protected + realm).
#[no_mangle]
pub extern "C" fn kvm_rme_check_vm_type(vm_type: c_ulong) -> c_int {
    let f = Features0::decode(FEATURES.load(Ordering::Relaxed));
    match vm::check_vm_type(u64::from(vm_type), READY.load(Ordering::Acquire), &f) {
        Ok(_) => 0,
        Err(e) => -e,
    }
}

fn read_user<const N: usize>(uarg: u64) -> Result<[u8; N], i32> {
    let mut buf = [0u8; N];
    // CAST: user addresses fit in usize on 64-bit.
    let mut r = UserSlice::new(UserPtr::from_addr(uarg as usize), N).reader();
    r.read_slice(&mut buf).map_err(|_| crate::errno::EFAULT)?;
    Ok(buf)
}

fn enable_cap(state: &mut State, sub: u64, uarg: u64) -> Result<(), i32> {
    match sub {
        cmd::CONFIG_REALM => state
            .vm
            .config(vm::parse_config(&read_user::<CONFIG_SIZE>(uarg)?)?),
        cmd::CREATE_REALM => state
            .vm
            .create(&mut state.rmi, &mut state.alloc, &mut next_vmid),
        cmd::INIT_RIPAS_REALM => {
            let (base, size) = vm::parse_init_ripas(&read_user::<RANGE_SIZE>(uarg)?)?;
            state
                .vm
                .init_ripas(&mut state.rmi, &mut state.alloc, base, size)
        }
        cmd::POPULATE_REALM => {
            warn_limited!(
                "POPULATE_REALM needs guest_memfd support, which is not implemented yet\n"
            );
            Err(crate::errno::EOPNOTSUPP)
        }
        cmd::ACTIVATE_REALM => state.vm.activate(&mut state.rmi),
        _ => Err(crate::errno::EINVAL),
    }
}

/// `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)`: sub-command `sub` with its argument
/// at user address `uarg`.  Returns 0 or a negative errno.
///
/// # Safety
///
/// `state` points to `kvm->arch.rme` of a realm VM, which only this
/// module reads or writes, and the caller holds `kvm->lock`.
#[no_mangle]
pub unsafe extern "C" fn kvm_rme_enable_cap(
    state: *mut *mut c_void,
    ipa_bits: u8,
    sub: u64,
    uarg: u64,
) -> c_int {
    if !READY.load(Ordering::Acquire) {
        return -crate::errno::EINVAL;
    }
    // SAFETY: `state` is `kvm->arch.rme` and `kvm->lock` is held (contract).
    match unsafe { vm_state(state, ipa_bits) }.and_then(|st| enable_cap(st, sub, uarg)) {
        Ok(()) => 0,
        Err(e) => -e,
    }
}

/// `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)` of vCPU `idx`: creates its REC.
/// Returns 0 or a negative errno (`EEXIST` if it has one already).
///
/// # Safety
///
/// `state` is `kvm->arch.rme` of a realm VM and the caller holds
/// `kvm->lock`; `gprs` points to 8 readable `u64`.
#[no_mangle]
pub unsafe extern "C" fn kvm_rme_vcpu_finalize(
    state: *mut *mut c_void,
    idx: u32,
    mpidr: u64,
    pc: u64,
    gprs: *const u64,
    runnable: bool,
) -> c_int {
    // SAFETY: `gprs` points to 8 readable u64 (contract).
    let regs = unsafe { core::ptr::read(gprs.cast::<[u64; 8]>()) };
    // SAFETY: `state` is valid (contract).
    if unsafe { (*state).is_null() } {
        // No CREATE_REALM yet: a REC needs a realm.
        return -crate::errno::EPERM;
    }
    // SAFETY: contract; the state exists, so the IPA size is not used.
    let st = match unsafe { vm_state(state, 0) } {
        Ok(st) => st,
        Err(e) => return -e,
    };
    if st.recs.iter().any(|(i, _)| *i == idx) {
        return -crate::errno::EEXIST;
    }
    let State {
        vm,
        rmi,
        alloc,
        recs,
    } = st;
    // Room first, so a created REC is never dropped for want of memory.
    if recs.reserve(1, GFP_KERNEL).is_err() {
        return -crate::errno::ENOMEM;
    }
    match vm.rec_create(rmi, alloc, mpidr, pc, regs, runnable) {
        Ok(rec) => match recs.push_within_capacity((idx, rec)) {
            Ok(()) => 0,
            Err(e) => {
                // Cannot happen after `reserve`; keep the REC consistent.
                let (_, rec) = e.0;
                vm.rec_destroy(rmi, alloc, rec);
                -crate::errno::ENOMEM
            }
        },
        Err(e) => -e,
    }
}

/// vCPU destruction: destroys the vCPU's REC, if it has one.
///
/// # Safety
///
/// `state` is `kvm->arch.rme` of a VM being destroyed (no other users).
#[no_mangle]
pub unsafe extern "C" fn kvm_rme_vcpu_destroy(state: *mut *mut c_void, idx: u32) {
    // SAFETY: by the function's contract.
    let slot = unsafe { *state };
    if slot.is_null() {
        return;
    }
    // SAFETY: a non-null slot holds our `State` (see `state`), and nothing
    // else uses it during VM destruction.
    let st = unsafe { &mut *slot.cast::<State>() };
    if let Some(i) = st.recs.iter().position(|(j, _)| *j == idx) {
        if let Ok((_, rec)) = st.recs.remove(i) {
            st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, rec);
        }
    }
}

/// VM destruction: tears the realm down and frees the state.  Granules
/// the RMM did not give back are leaked on purpose and reported.
///
/// # Safety
///
/// `state` points to `kvm->arch.rme` of a VM being destroyed: nothing
/// else uses it any more.
#[no_mangle]
pub unsafe extern "C" fn kvm_rme_vm_destroy(state: *mut *mut c_void) {
    // SAFETY: by the function's contract.
    let slot = unsafe { &mut *state };
    if slot.is_null() {
        return;
    }
    // SAFETY: the slot holds a `State` from `KBox::into_raw` in
    // `kvm_rme_enable_cap`; it is cleared below, so it is reclaimed once.
    let mut st = unsafe { KBox::from_raw(slot.cast::<State>()) };
    *slot = core::ptr::null_mut();
    let State {
        vm,
        rmi,
        alloc,
        recs,
    } = &mut *st;
    // RECs whose vCPU destruction did not reach us.
    while let Some((_, rec)) = recs.pop() {
        vm.rec_destroy(rmi, alloc, rec);
    }
    let leaked = vm.destroy(rmi, alloc);
    let kept = alloc.abandon();
    if leaked != 0 || kept != 0 {
        warn_limited!(
            "realm teardown leaked {} granules ({} pages kept from the allocator)\n",
            leaked,
            kept
        );
    }
}

/// The realm counters for the VM's binary stats, in the order the hook
/// copies them: delegated granules, RTT pages, data pages, leaked
/// granules, RMI calls.  All zero before `CREATE_REALM`.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` (possibly null), read under
/// `kvm->lock`; `out` points to 5 writable `u64`.
#[no_mangle]
pub unsafe extern "C" fn kvm_rme_stats(state: *mut c_void, out: *mut u64) {
    let mut v = [0u64; 5];
    if !state.is_null() {
        // SAFETY: a non-null `kvm->arch.rme` holds our `State`; `kvm->lock`
        // keeps it from changing under us (contract).
        let st = unsafe { &*state.cast::<State>() };
        if let Some(r) = st.vm.realm() {
            let s = r.stats();
            v = [s.delegated, s.rtt_pages, s.data_pages, s.leaked, 0];
        }
        v[4] = st.rmi.counts.total();
    }
    // SAFETY: `out` points to 5 writable u64 (contract).
    unsafe { core::ptr::write(out.cast::<[u64; 5]>(), v) };
}
