// SPDX-License-Identifier: GPL-2.0

//! Kernel side of the realm-VM uAPI: the `extern "C"` entry points the
//! arm64 KVM hooks call (patch 0004), on top of [`crate::logic::vm::RealmVm`].
//!
//! Locking: the per-VM state is created by the first `KVM_ENABLE_CAP`
//! (under `kvm->lock`) and published in `kvm->arch.rme`; from then on every
//! entry point takes the state's own mutex, the innermost lock: it is
//! taken under `kvm->lock` (capabilities, vCPU finalization) or
//! `vcpu->mutex` (`KVM_RUN`) and nothing is taken under it.  It is not
//! held across `REC_ENTER`: a vCPU takes its entry context (`rec_run` and
//! an RMI conduit of its own) out of the state, enters without the mutex,
//! and puts it back with the exit, so the vCPUs of a realm run in
//! parallel.
//! [`kvm_rme_vm_destroy`] runs when the VM has no other users.

use core::ffi::{c_int, c_ulong, c_void};
use core::mem::offset_of;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::bindings;
use kernel::new_mutex;
use kernel::page::Page;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::abi::{Features0, RecRun, REC_GIC_NUM_LRS};
use crate::abi::{Ipa, Pa, GRANULE_SIZE};
use crate::logic::granule::{GranuleAlloc, Undelegated};
use crate::logic::realm::{RealmError, Rec};
use crate::logic::run::{GuestMemory, Step, UserExit, VcpuRun, EXIT_CLASSES};
use crate::glue::smc::SmcRmi;
use crate::logic::vm::{self, cmd, RealmVm, CONFIG_SIZE, RANGE_SIZE};

extern "C" {
    // arch/arm64/kvm/rme_glue.c (patch 0005).  Pages are `struct page *`.
    fn kvm_rme_gmem_page(kvm: *mut c_void, gfn: u64, page: *mut *mut c_void) -> c_int;
    fn kvm_rme_user_page(kvm: *mut c_void, gfn: u64, page: *mut *mut c_void) -> c_int;
    fn kvm_rme_put_page(page: *mut c_void);
    fn kvm_rme_attrs_match(kvm: *mut c_void, gpa: u64, size: u64, private: bool) -> bool;
    fn kvm_rme_pin_shared(kvm: *mut c_void, gfn: u64, page: *mut *mut c_void) -> c_int;
    fn kvm_rme_unpin_shared(page: *mut c_void);
    fn kvm_rme_smccc_fwd_to_user(kvm: *mut c_void, func_id: u32) -> bool;
}

/// Realms are enabled (an RMI 1.0 RMM answered at boot).
static READY: AtomicBool = AtomicBool::new(false);
/// `RMI_FEATURES(0)` from the boot probe.
static FEATURES: AtomicU64 = AtomicU64::new(0);
/// VMID candidates for `REALM_CREATE` (the RMM refuses ones in use).
static NEXT_VMID: AtomicU32 = AtomicU32::new(1);
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
            // SAFETY: drops the reference this entry holds (invariant).
            Lent::Gmem(p) => unsafe { kvm_rme_put_page(p.as_ptr().cast()) },
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
    /// The `struct kvm` whose memslots back the realm (for guest_memfd
    /// and userspace page lookups).
    kvm: *mut c_void,
    /// Pinned `POPULATE_REALM` sources: physical address and page.
    sources: KVec<(u64, NonNull<bindings::page>)>,
    /// Long-term pins of the pages mapped at the shared alias: guest
    /// physical address (shared bit clear) and page.
    shared: KVec<(u64, NonNull<bindings::page>)>,
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
            None => kernel::pr_warn_ratelimited!("page {:#x} returned but never lent: leaked\n", pa.0),
        }
    }

    /// Called when the realm is gone: unpins the shared pages, which its
    /// RTTs no longer map.  If the realm was leaked instead, they stay
    /// pinned for good.
    fn unpin_all_shared(&mut self, realm_gone: bool) {
        while let Some((_, page)) = self.shared.pop() {
            if realm_gone {
                // SAFETY: drops the pin `shared_page` took; the realm and
                // its RTTs are destroyed.
                unsafe { kvm_rme_unpin_shared(page.as_ptr().cast()) };
            }
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

/// A page from one of the glue's lookups, or its errno.
fn lookup(
    f: unsafe extern "C" fn(*mut c_void, u64, *mut *mut c_void) -> c_int,
    kvm: *mut c_void,
    ipa: Ipa,
) -> Result<NonNull<bindings::page>, RealmError> {
    let mut page = core::ptr::null_mut();
    // SAFETY: `kvm` is the VM this state belongs to, alive while it is;
    // `page` is a valid out-pointer.
    let r = unsafe { f(kvm, ipa.0 / GRANULE_SIZE, &mut page) };
    if r < 0 {
        return Err(RealmError::Kernel(-r));
    }
    NonNull::new(page.cast::<bindings::page>()).ok_or(RealmError::Fault)
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
/// `page` is a valid page, and `drop_ref` releases exactly what the
/// caller holds on it.
unsafe fn track(
    list: &mut KVec<(u64, NonNull<bindings::page>)>,
    key: Option<u64>,
    page: NonNull<bindings::page>,
    drop_ref: unsafe extern "C" fn(*mut c_void),
) -> Result<u64, RealmError> {
    // SAFETY: `page` is valid (contract).
    let pa = unsafe { bindings::page_to_phys(page.as_ptr()) };
    if list.push((key.unwrap_or(pa), page), GFP_KERNEL).is_err() {
        // SAFETY: by the function's contract.
        unsafe { drop_ref(page.as_ptr().cast()) };
        return Err(RealmError::NoMemory);
    }
    Ok(pa)
}

impl GuestMemory for KernelAlloc {
    fn private_page(&mut self, ipa: Ipa) -> Result<Undelegated, RealmError> {
        let page = lookup(kvm_rme_gmem_page, self.kvm, ipa)?;
        // The reference from kvm_gmem_get_pfn moves into the entry.
        let pa = self.keep(Lent::Gmem(page)).ok_or(RealmError::NoMemory)?;
        Undelegated::from_host_page(pa).ok_or(RealmError::Invalid)
    }

    fn source_page(&mut self, ipa: Ipa) -> Result<Pa, RealmError> {
        let page = lookup(kvm_rme_user_page, self.kvm, ipa)?;
        // SAFETY: `kvm_rme_put_page` drops the reference `lookup` took.
        let pa = unsafe { track(&mut self.sources, None, page, kvm_rme_put_page) }?;
        Ok(Pa(pa))
    }

    fn release_source(&mut self, pa: Pa) {
        if let Some(page) = take_page(&mut self.sources, pa.0) {
            // SAFETY: drops the reference `source_page` took.
            unsafe { kvm_rme_put_page(page.as_ptr().cast()) };
        }
    }

    fn shared_page(&mut self, gpa: Ipa) -> Result<Pa, RealmError> {
        let page = lookup(kvm_rme_pin_shared, self.kvm, gpa)?;
        // SAFETY: `kvm_rme_unpin_shared` drops the pin `lookup` took.
        let pa = unsafe { track(&mut self.shared, Some(gpa.0), page, kvm_rme_unpin_shared) }?;
        Ok(Pa(pa))
    }

    fn release_shared(&mut self, gpa: Ipa) {
        if let Some(page) = take_page(&mut self.shared, gpa.0) {
            // SAFETY: drops the pin `shared_page` took; the realm no longer
            // maps the page.
            unsafe { kvm_rme_unpin_shared(page.as_ptr().cast()) };
        }
    }

    fn shared_in(&self, start: Ipa, end: Ipa) -> Option<Ipa> {
        self.shared
            .iter()
            .find(|(g, _)| (start.0..end.0).contains(g))
            .map(|(g, _)| Ipa(*g))
    }

    fn vmm_agrees(&mut self, base: Ipa, top: Ipa, ram: bool) -> bool {
        // SAFETY: `kvm` is the live VM this state belongs to.
        unsafe { kvm_rme_attrs_match(self.kvm, base.0, top.0 - base.0, ram) }
    }

    fn forwards_to_user(&mut self, function: u32) -> bool {
        // SAFETY: `kvm` is the live VM this state belongs to; the filter
        // is read under RCU by the callee.
        unsafe { kvm_rme_smccc_fwd_to_user(self.kvm, function) }
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

/// What a vCPU enters its REC with: the `rec_run` page and an RMI
/// conduit of its own (its own staging page).  It leaves the realm's
/// state, which the realm's mutex guards, for the time of `REC_ENTER`:
/// the mutex is not held then, and the vCPUs of a realm run in parallel.
struct EntryCtx {
    rmi: SmcRmi,
    run: KBox<RecRun>,
}

/// A realm vCPU: its REC, its entry context (`None` while it is in
/// `REC_ENTER`), and what it owes the RMM between two `KVM_RUN`s.
struct Vcpu {
    idx: u32,
    rec: Rec,
    ctx: Option<EntryCtx>,
    state: VcpuRun,
}

/// Per-VM state behind `kvm->arch.rme`.
struct State {
    vm: RealmVm,
    rmi: SmcRmi,
    alloc: KernelAlloc,
    vcpus: KVec<Vcpu>,
    /// RMI calls the vCPUs' own conduits made (`REC_ENTER`).
    vcpu_rmi_calls: u64,
}

/// The published state pointer in `kvm->arch.rme`.
///
/// # Safety
///
/// `slot` is `kvm->arch.rme` of a realm VM, valid for the VM's life.
unsafe fn slot_ptr<'a>(slot: *mut *mut c_void) -> &'a AtomicPtr<c_void> {
    // SAFETY: `slot` is valid and suitably aligned for a pointer, and only
    // accessed atomically by this module (and `READ_ONCE` in the glue).
    unsafe { AtomicPtr::from_ptr(slot) }
}

/// The state of a realm VM, created on first use.
///
/// # Safety
///
/// `slot` is `kvm->arch.rme` of realm VM `kvm`, and the caller holds
/// `kvm->lock` (creation is not racy).
unsafe fn vm_state<'a>(
    kvm: *mut c_void,
    slot: *mut *mut c_void,
    ipa_bits: u8,
) -> Result<&'a Mutex<State>, RealmError> {
    // SAFETY: by the function's contract.
    let p = unsafe { slot_ptr(slot) };
    let cur = p.load(Ordering::Acquire);
    if !cur.is_null() {
        // SAFETY: a published state (see `published`).
        return Ok(unsafe { &*cur.cast::<Mutex<State>>() });
    }
    let f = Features0::decode(FEATURES.load(Ordering::Relaxed));
    let rmi = SmcRmi::new().map_err(|_| RealmError::NoMemory)?;
    let new = State {
        vm: RealmVm::new(ipa_bits, f),
        rmi,
        alloc: KernelAlloc {
            pages: KVec::new(),
            kvm,
            sources: KVec::new(),
            shared: KVec::new(),
        },
        vcpus: KVec::new(),
        vcpu_rmi_calls: 0,
    };
    let b = KBox::pin_init(new_mutex!(new), GFP_KERNEL).map_err(|_| RealmError::NoMemory)?;
    // SAFETY: the mutex is never moved out of the box: the raw pointer is
    // only dereferenced in place and freed by `kvm_rme_vm_destroy`.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(b) });
    p.store(raw.cast::<c_void>(), Ordering::Release);
    // SAFETY: just published; freed only by `kvm_rme_vm_destroy`.
    Ok(unsafe { &*raw })
}

/// The published state, if any.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` of a live realm VM.
unsafe fn published<'a>(state: *mut c_void) -> Option<&'a Mutex<State>> {
    // SAFETY: a non-null `kvm->arch.rme` holds a `Mutex<State>` from
    // `vm_state`, freed only when the VM has no users left.
    (!state.is_null()).then(|| unsafe { &*state.cast::<Mutex<State>>() })
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
pub(crate) extern "C" fn kvm_rme_supported() -> c_int {
    c_int::from(READY.load(Ordering::Acquire))
}

/// Checks a `KVM_CREATE_VM` type with `KVM_VM_TYPE_ARM_REALM`: 0 or
/// `-EINVAL` (realms disabled, bad IPA size, or protected + realm).
#[no_mangle]
pub(crate) extern "C" fn kvm_rme_check_vm_type(vm_type: c_ulong) -> c_int {
    let f = Features0::decode(FEATURES.load(Ordering::Relaxed));
    match vm::check_vm_type(u64::from(vm_type), READY.load(Ordering::Acquire), &f) {
        Ok(_) => 0,
        Err(e) => -e.errno(),
    }
}

/// `Ok` as 0, a failure as its negative errno, for the C hooks.
fn errno_of(r: Result<(), RealmError>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => -e.errno(),
    }
}

fn read_user<const N: usize>(uarg: u64) -> Result<[u8; N], RealmError> {
    let mut buf = [0u8; N];
    // CAST: user addresses fit in usize on 64-bit.
    let mut r = UserSlice::new(UserPtr::from_addr(uarg as usize), N).reader();
    r.read_slice(&mut buf).map_err(|_| RealmError::Fault)?;
    Ok(buf)
}

fn enable_cap(st: &mut State, sub: u64, uarg: u64) -> Result<(), RealmError> {
    match sub {
        cmd::CONFIG_REALM => st
            .vm
            .config(vm::parse_config(&read_user::<CONFIG_SIZE>(uarg)?)?),
        cmd::CREATE_REALM => st.vm.create(&mut st.rmi, &mut st.alloc, &mut next_vmid),
        cmd::INIT_RIPAS_REALM => {
            let (base, size) = vm::parse_init_ripas(&read_user::<RANGE_SIZE>(uarg)?)?;
            st.vm.init_ripas(&mut st.rmi, &mut st.alloc, base, size)
        }
        cmd::POPULATE_REALM => {
            let (base, size, measure) = vm::parse_populate(&read_user::<RANGE_SIZE>(uarg)?)?;
            st.vm
                .populate(&mut st.rmi, &mut st.alloc, base, size, measure)
        }
        cmd::ACTIVATE_REALM => st.vm.activate(&mut st.rmi),
        _ => Err(RealmError::Invalid),
    }
}

/// `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` on VM `kvm`: sub-command `sub` with
/// its argument at user address `uarg`.  Returns 0 or a negative errno.
///
/// # Safety
///
/// `kvm` is a live realm VM and `state` points to its `kvm->arch.rme`,
/// which only this module writes; the caller holds `kvm->lock`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_enable_cap(
    kvm: *mut c_void,
    state: *mut *mut c_void,
    ipa_bits: u8,
    sub: u64,
    uarg: u64,
) -> c_int {
    if !READY.load(Ordering::Acquire) {
        return -RealmError::Invalid.errno();
    }
    // SAFETY: by the function's contract.
    let r = unsafe { vm_state(kvm, state, ipa_bits) }
        .and_then(|m| enable_cap(&mut m.lock(), sub, uarg));
    errno_of(r)
}

/// `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)` of vCPU `idx`: creates its REC.
/// Returns 0 or a negative errno (`EEXIST` if it has one already).
///
/// # Safety
///
/// `state` is `kvm->arch.rme` of a live realm VM; `gprs` points to 8
/// readable `u64`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_finalize(
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
    let Some(m) = (unsafe { published(slot_ptr(state).load(Ordering::Acquire)) }) else {
        // No CREATE_REALM yet: a REC needs a realm.
        return -RealmError::State.errno();
    };
    let mut guard = m.lock();
    let st = &mut *guard;
    if st.vcpus.iter().any(|v| v.idx == idx) {
        return -RealmError::Exists.errno();
    }
    // Everything that can fail for want of memory first, so a created REC
    // is never dropped.
    if st.vcpus.reserve(1, GFP_KERNEL).is_err() {
        return -RealmError::NoMemory.errno();
    }
    let run = match KBox::<RecRun>::new_uninit(GFP_KERNEL | __GFP_ZERO) {
        // SAFETY: zeroed memory is a valid `RecRun` (integers and byte
        // arrays only), the state the RMM expects before a first entry.
        Ok(b) => unsafe { b.assume_init() },
        Err(_) => return -RealmError::NoMemory.errno(),
    };
    let Ok(vcpu_rmi) = SmcRmi::new() else {
        return -RealmError::NoMemory.errno();
    };
    match st
        .vm
        .rec_create(&mut st.rmi, &mut st.alloc, mpidr, pc, regs, runnable)
    {
        Ok(rec) => {
            let mut run = run;
            // A realm vCPU's WFI comes to the host, which sleeps it
            // without holding the realm (see `Step::Idle`).
            crate::logic::exit::trap_wfx(&mut run.enter, true, false);
            let v = Vcpu {
                idx,
                rec,
                ctx: Some(EntryCtx { rmi: vcpu_rmi, run }),
                state: VcpuRun::new(),
            };
            match st.vcpus.push_within_capacity(v) {
                Ok(()) => 0,
                Err(e) => {
                    // Cannot happen after `reserve`; keep the REC consistent.
                    st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, e.0.rec);
                    -RealmError::NoMemory.errno()
                }
            }
        }
        Err(e) => -e.errno(),
    }
}

/// vCPU destruction: destroys the vCPU's REC, if it has one.
///
/// # Safety
///
/// `state` is `kvm->arch.rme` of a VM being destroyed (no other users).
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_destroy(state: *mut *mut c_void, idx: u32) {
    // SAFETY: by the function's contract.
    let Some(m) = (unsafe { published(slot_ptr(state).load(Ordering::Acquire)) }) else {
        return;
    };
    let mut guard = m.lock();
    let st = &mut *guard;
    if let Some(i) = st.vcpus.iter().position(|v| v.idx == idx) {
        if let Ok(v) = st.vcpus.remove(i) {
            st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, v.rec);
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
pub(crate) unsafe extern "C" fn kvm_rme_vm_destroy(state: *mut *mut c_void) {
    // SAFETY: by the function's contract.
    let raw = unsafe { slot_ptr(state) }.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if raw.is_null() {
        return;
    }
    // SAFETY: the slot held a `Mutex<State>` from `KBox::into_raw` in
    // `vm_state`; it was cleared above, so it is reclaimed once.
    let m = unsafe { KBox::from_raw(raw.cast::<Mutex<State>>()) };
    let (leaked, kept) = {
        let mut guard = m.lock();
        let st = &mut *guard;
        // RECs whose vCPU destruction did not reach us.
        while let Some(v) = st.vcpus.pop() {
            st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, v.rec);
        }
        let end = st.vm.destroy_counted(&mut st.rmi, &mut st.alloc);
        if end.anomalies != 0 {
            kernel::pr_warn_ratelimited!(
                "the RMM gave back more than the host lent it ({} answers)\n",
                end.anomalies
            );
        }
        st.alloc.unpin_all_shared(end.leaked == 0);
        (end.leaked, st.alloc.abandon())
    };
    if leaked != 0 || kept != 0 {
        kernel::pr_warn_ratelimited!(
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
/// `state` is the value of `kvm->arch.rme` of a live VM (possibly null);
/// `out` points to 5 writable `u64`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_stats(state: *mut c_void, out: *mut u64) {
    let mut v = [0u64; 5];
    // SAFETY: by the function's contract.
    if let Some(m) = unsafe { published(state) } {
        let st = m.lock();
        if let Some(r) = st.vm.realm() {
            let s = r.stats();
            v = [s.delegated, s.rtt_pages, s.data_pages, s.leaked, 0];
        }
        v[4] = st.rmi.counts.total() + st.vcpu_rmi_calls;
    }
    // SAFETY: `out` points to 5 writable u64 (contract).
    unsafe { core::ptr::write(out.cast::<[u64; 5]>(), v) };
}

/// `struct kvm_rme_io` (`asm/kvm_host.h`, patches 0005 and 0007): one run-loop step
/// between [`kvm_rme_vcpu_enter`] and the glue that fills `struct kvm_run`.
#[repr(C)]
pub(crate) struct RunIo {
    data: u64,
    addr: u64,
    size: u64,
    esr: u64,
    kind: u32,
    flags: u32,
    exits: [u64; EXIT_CLASSES],
    gic_hcr: u64,
    gic_lrs: [u64; REC_GIC_NUM_LRS],
    gic_nr_lrs: u32,
    entered: u32,
    gic_vmcr: u64,
    gic_misr: u64,
    timers: [u64; 4],
    args: [u64; 6],
}

const _: () = {
    assert!(core::mem::size_of::<RunIo>() == 336);
    assert!(offset_of!(RunIo, args) == 288);
    assert!(offset_of!(RunIo, gic_hcr) == 96);
    assert!(offset_of!(RunIo, gic_lrs) == 104);
    assert!(offset_of!(RunIo, gic_nr_lrs) == 232);
    assert!(offset_of!(RunIo, entered) == 236);
    assert!(offset_of!(RunIo, gic_vmcr) == 240);
    assert!(offset_of!(RunIo, gic_misr) == 248);
    assert!(offset_of!(RunIo, timers) == 256);
    assert!(offset_of!(RunIo, data) == 0);
    assert!(offset_of!(RunIo, addr) == 8);
    assert!(offset_of!(RunIo, size) == 16);
    assert!(offset_of!(RunIo, esr) == 24);
    assert!(offset_of!(RunIo, kind) == 32);
    assert!(offset_of!(RunIo, flags) == 36);
    assert!(offset_of!(RunIo, exits) == 40);
};

/// `KVM_RME_IO_*` and `KVM_RME_IO_F_*`.
mod io {
    pub(super) const MMIO: u32 = 1;
    pub(super) const SYSTEM_EVENT: u32 = 2;
    pub(super) const MEMORY_FAULT: u32 = 3;
    pub(super) const INTERNAL: u32 = 4;
    pub(super) const HYPERCALL: u32 = 5;
    pub(super) const F_WRITE: u32 = 1 << 0;
    pub(super) const F_RESET: u32 = 1 << 1;
    pub(super) const F_PRIVATE: u32 = 1 << 2;
    pub(super) const F_SMC: u32 = 1 << 3;
}

/// `KVM_RME_RUN_*`.
const RUN_ENTER: c_int = 0;
const RUN_USER: c_int = 1;
const RUN_WAIT: c_int = 2;
const RUN_SYSREG: c_int = 3;
const RUN_IDLE: c_int = 4;

impl RunIo {
    fn set(&mut self, u: UserExit) {
        (self.data, self.addr, self.size, self.esr, self.flags) = (0, 0, 0, 0, 0);
        match u {
            UserExit::Mmio {
                addr,
                len,
                write,
                data,
            } => {
                self.kind = io::MMIO;
                (self.addr, self.size, self.data) = (addr, u64::from(len), data);
                if write {
                    self.flags = io::F_WRITE;
                }
            }
            UserExit::SystemEvent { reset } => {
                self.kind = io::SYSTEM_EVENT;
                if reset {
                    self.flags = io::F_RESET;
                }
            }
            UserExit::MemoryFault { gpa, size, private } => {
                self.kind = io::MEMORY_FAULT;
                (self.addr, self.size) = (gpa, size);
                if private {
                    self.flags = io::F_PRIVATE;
                }
            }
            UserExit::Hypercall { nr, args, smc } => {
                self.kind = io::HYPERCALL;
                (self.addr, self.args) = (nr, args);
                if smc {
                    self.flags = io::F_SMC;
                }
            }
            UserExit::Internal { reason, esr } => {
                self.kind = io::INTERNAL;
                (self.addr, self.esr) = (u64::from(reason), esr);
            }
        }
    }
}

/// Start of `KVM_RUN` on realm vCPU `idx`: answers the exit userspace saw
/// (`mmio_data`: the value of an MMIO read; `hypercall_ret`: `x0` for a
/// forwarded host call).  0, or `-EPERM` when the vCPU has no REC or the
/// realm is not active.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` of a live realm VM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_resume(
    state: *mut c_void,
    idx: u32,
    mmio_data: u64,
    hypercall_ret: u64,
) -> c_int {
    // SAFETY: by the function's contract.
    unsafe {
        with_vcpu(state, idx, |st, i| {
            let State {
                vm,
                rmi,
                alloc,
                vcpus,
                ..
            } = st;
            let (Some(v), Ok(realm)) = (vcpus.get_mut(i), vm.runnable()) else {
                return -RealmError::State.errno();
            };
            // `KVM_RUN` of one vCPU is serialized (`vcpu->mutex`): the
            // context is home.
            let Some(ctx) = v.ctx.as_mut() else {
                return -RealmError::Busy.errno();
            };
            v.state.resume(
                realm,
                rmi,
                alloc,
                &v.rec,
                &mut ctx.run,
                mmio_data,
                hypercall_ret,
            );
            0
        })
    }
}

/// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE` on realm vCPU `idx`: completes its
/// forwarded `CPU_ON`/`AFFINITY_INFO` towards the REC of `target_mpidr`.
/// 0, or `-EINVAL` (nothing pending for that MPIDR, no such REC, a status
/// the RMM refuses), `-EPERM` (no REC, realm not active).
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` of a live realm VM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_psci_complete(
    state: *mut c_void,
    idx: u32,
    target_mpidr: u64,
    psci_status: u32,
) -> c_int {
    // SAFETY: by the function's contract.
    unsafe {
        with_vcpu(state, idx, |st, i| {
            let State { rmi, vcpus, .. } = st;
            let target = vcpus
                .iter()
                .find(|o| o.rec.mpidr() == target_mpidr)
                .map(|o| o.rec.pa());
            let Some(v) = vcpus.get_mut(i) else {
                return -RealmError::State.errno();
            };
            match v
                .state
                .psci_complete(rmi, &v.rec, target_mpidr, target, psci_status)
            {
                Ok(()) => 0,
                Err(e) => {
                    kernel::pr_warn_ratelimited!(
                        "realm vCPU {}: PSCI_COMPLETE for MPIDR {:#x} refused\n",
                        idx,
                        target_mpidr
                    );
                    -e.errno()
                }
            }
        })
    }
}

/// Runs `f` on the state of realm VM `state` and the index of vCPU `idx`
/// in it, under the realm's mutex.  `-EPERM` if there is no realm state
/// or the vCPU has no REC.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` of a live realm VM.
unsafe fn with_vcpu(
    state: *mut c_void,
    idx: u32,
    f: impl FnOnce(&mut State, usize) -> c_int,
) -> c_int {
    // SAFETY: by the function's contract.
    let Some(m) = (unsafe { published(state) }) else {
        return -RealmError::State.errno();
    };
    let mut guard = m.lock();
    match guard.vcpus.iter().position(|v| v.idx == idx) {
        Some(i) => f(&mut guard, i),
        None => -RealmError::State.errno(),
    }
}

/// One `REC_ENTER` of realm vCPU `idx` and its exit: `KVM_RME_RUN_ENTER`
/// (enter again), `KVM_RME_RUN_USER` (`io` says what userspace sees),
/// `KVM_RME_RUN_WAIT` (not runnable now), or a negative errno.  The
/// realm's mutex is taken before and after the entry, not across it.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` of a live realm VM; `io` points
/// to a writable `struct kvm_rme_io`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_enter(state: *mut c_void, idx: u32, io: *mut RunIo) -> c_int {
    // SAFETY: by the function's contract.
    let io = unsafe { &mut *io };
    // SAFETY: by the function's contract.
    let Some(m) = (unsafe { published(state) }) else {
        return -RealmError::State.errno();
    };
    let (mut ctx, rec) = match take_ctx(&mut m.lock(), idx, io) {
        Ok(c) => c,
        Err(e) => return -e.errno(),
    };
    // The REC runs without the realm's mutex: other vCPUs enter theirs,
    // fault in pages and change RIPAS meanwhile; the RMM orders them.
    let entered = crate::logic::rmi::Rmi::rec_enter(&mut ctx.rmi, rec, &mut ctx.run);
    finish_vcpu(&mut m.lock(), idx, ctx, entered, io)
}

/// Before `REC_ENTER`: checks that vCPU `idx` may enter, loads the vgic's
/// list registers, and takes its entry context out of the state.
fn take_ctx(st: &mut State, idx: u32, io: &RunIo) -> Result<(EntryCtx, Pa), RealmError> {
    if let Err(e) = st.vm.runnable() {
        return Err(e);
    }
    let v = st
        .vcpus
        .iter_mut()
        .find(|v| v.idx == idx)
        .ok_or(RealmError::State)?;
    v.state.begin()?;
    let mut ctx = v.ctx.take().ok_or(RealmError::Busy)?;
    // The interrupts the vgic put in its list registers.
    let lrs = Features0::decode(FEATURES.load(Ordering::Relaxed)).gic_lrs();
    // CAST: u32 to usize.
    let n = (io.gic_nr_lrs as usize).min(REC_GIC_NUM_LRS);
    if crate::logic::exit::load_gic(&mut ctx.run.enter, io.gic_hcr, &io.gic_lrs[..n], lrs) < n {
        kernel::pr_warn_ratelimited!(
            "vCPU {}: {} pending interrupts, {} list registers\n",
            idx,
            n,
            lrs
        );
    }
    Ok((ctx, v.rec.pa()))
}

/// After `REC_ENTER`: handles the exit of vCPU `idx` under the realm's
/// mutex and puts its entry context back.
fn finish_vcpu(
    st: &mut State,
    idx: u32,
    mut ctx: EntryCtx,
    entered: crate::abi::RmiResult,
    io: &mut RunIo,
) -> c_int {
    st.vcpu_rmi_calls += ctx.rmi.counts.total();
    ctx.rmi.counts = Default::default();
    let State {
        vm,
        rmi,
        alloc,
        vcpus,
        ..
    } = st;
    let Some(i) = vcpus.iter().position(|v| v.idx == idx) else {
        // Cannot happen: vCPUs go away only with the VM.
        return -RealmError::State.errno();
    };
    // This vCPU, and the others, among which PSCI targets are looked up.
    let (before, rest) = vcpus.split_at_mut(i);
    let Some((v, after)) = rest.split_first_mut() else {
        return -RealmError::State.errno();
    };
    let r = match vm.runnable() {
        Ok(realm) => v.state.finish(
            entered,
            realm,
            rmi,
            alloc,
            &v.rec,
            &mut ctx.run,
            &mut |mpidr| {
                // `Iterator::chain`: the prelude's `Init` has a `chain` too.
                Iterator::chain(before.iter(), after.iter())
                    .find(|o| o.rec.mpidr() == mpidr)
                    .map(|o| o.rec.pa())
            },
        ),
        Err(e) => Err(e),
    };
    io.exits = v.state.exits;
    io.entered = u32::from(v.state.entered());
    if v.state.entered() {
        // What the realm did with them, and its timers, for the vgic and
        // the timer emulation.
        let x = &ctx.run.exit;
        io.gic_lrs = x.gicv3_lrs;
        (io.gic_hcr, io.gic_vmcr, io.gic_misr) = (x.gicv3_hcr, x.gicv3_vmcr, x.gicv3_misr);
        io.timers = [x.cntv_ctl, x.cntv_cval, x.cntp_ctl, x.cntp_cval];
    }
    v.ctx = Some(ctx);
    match r {
        Ok(Step::Enter) => RUN_ENTER,
        Ok(Step::Wait) => RUN_WAIT,
        Ok(Step::Idle) => RUN_IDLE,
        Ok(Step::SysRegWrite { esr, value }) => {
            (io.esr, io.data) = (esr, value);
            RUN_SYSREG
        }
        Ok(Step::User(u)) => {
            io.set(u);
            RUN_USER
        }
        Err(e) => {
            kernel::pr_warn_ratelimited!("realm vCPU {}: REC run failed: {:?}\n", idx, e);
            -e.errno()
        }
    }
}

/// Memslot deletion or move: the private pages mapped in `[gpa, gpa +
/// size)` are destroyed, undelegated and given back to guest_memfd.
/// Failures leave the pages with the RMM until teardown (counted there).
///
/// # Safety
///
/// `state` is the value of `kvm->arch.rme` of a live realm VM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_unmap_range(state: *mut c_void, gpa: u64, size: u64) {
    // SAFETY: by the function's contract.
    let Some(m) = (unsafe { published(state) }) else {
        return;
    };
    let mut guard = m.lock();
    let State { vm, rmi, alloc, .. } = &mut *guard;
    if let Err(e) = vm.unmap_range(rmi, alloc, gpa, size) {
        kernel::pr_warn_ratelimited!(
            "unmapping {:#x}+{:#x} from the realm failed: {:?}\n",
            gpa,
            size,
            e
        );
    }
}
