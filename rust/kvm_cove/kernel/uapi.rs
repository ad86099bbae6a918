// SPDX-License-Identifier: GPL-2.0

//! Kernel side of TVMs: the `extern "C"` entry points the riscv KVM hooks
//! call (patch 0006), on top of [`crate::logic::tvm::Tvm`] and
//! [`crate::logic::run::VcpuRun`].
//!
//! Locking: a TVM's state is created by `KVM_CREATE_VM` and published in
//! `kvm->arch.cove`; every entry point takes the state's own mutex, the
//! innermost lock (taken under `kvm->lock`, `kvm->slots_lock` or
//! `vcpu->mutex`; nothing is taken under it).  It is held across
//! `TVM_VCPU_RUN`, so the vCPUs of one TVM run one at a time, but not
//! while a vCPU idles.  [`kvm_cove_vm_destroy`] runs when the VM has no
//! other users.

use core::ffi::{c_int, c_long, c_ulong, c_void};
use core::mem::offset_of;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::abi::{nacl, Gpa, Pa, PAGE_SIZE};
use crate::logic::exit::NaclShmem;
use crate::logic::pool::{Batch, BatchTable, PageAlloc, Plain, Pool};
use crate::logic::run::{SharedMem, Step, UserExit, VcpuRun};
use crate::glue::sbi_tsm::SbiTsm;
use crate::logic::tvm::{self, Tvm, TvmError, TvmState};

extern "C" {
    // arch/riscv/kvm/cove_glue.c (patch 0006).
    fn kvm_cove_alloc_pages(count: c_ulong) -> u64;
    fn kvm_cove_free_page(pa: u64);
    fn kvm_cove_get_user(hva: c_ulong, pa: *mut u64) -> c_int;
    fn kvm_cove_put_user(pa: u64);
    fn kvm_cove_pin_shared(kvm: *mut c_void, gpa: u64, pa: *mut u64) -> c_int;
    fn kvm_cove_unpin_shared(pa: u64);
    fn kvm_cove_nacl_get() -> *mut c_void;
    fn kvm_cove_nacl_put();
    pub(crate) fn kvm_cove_local_fence_all() -> c_long;
}

/// Conversion batch of a TVM's pool at first (2 MiB); it grows.
const BATCH_PAGES: u64 = 512;

/// `enum kvm_mr_change`.
mod mr {
    pub(super) const CREATE: u32 = 0;
    pub(super) const DELETE: u32 = 1;
    pub(super) const MOVE: u32 = 2;
}

/// A pool's batches in a vector: a TVM needs one per contiguous run the
/// page allocator gave (4 MiB at most), so no fixed table fits all.
struct KVecTable(KVec<Batch>);

impl BatchTable for KVecTable {
    fn as_slice(&self) -> &[Batch] {
        &self.0
    }

    fn as_mut_slice(&mut self) -> &mut [Batch] {
        &mut self.0
    }

    fn push(&mut self, b: Batch) -> bool {
        self.0.push(b, GFP_KERNEL).is_ok()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Host pages from the page allocator (`cove_glue.c`).
struct KernelAlloc;

impl PageAlloc for KernelAlloc {
    fn alloc_contiguous(&mut self, count: u64) -> Option<Pa> {
        let count = c_ulong::try_from(count).ok()?;
        // SAFETY: allocates and returns fresh pages; no pointers passed.
        let pa = unsafe { kvm_cove_alloc_pages(count) };
        (pa != 0).then_some(Pa(pa))
    }

    fn free(&mut self, page: Plain) {
        // SAFETY: a `Plain` page came from `alloc_contiguous` (each page
        // of a run is freeable alone) and is normal memory again: the pool
        // only hands back pages the TSM reclaimed.
        unsafe { kvm_cove_free_page(page.pa().0) }
    }
}

/// The VMM pages pinned behind shared GPAs.
struct Pinned {
    kvm: *mut c_void,
    pages: KVec<(u64, u64)>,
}

impl SharedMem for Pinned {
    fn shared_page(&mut self, gpa: Gpa) -> core::result::Result<Pa, TvmError> {
        if self.pages.iter().any(|&(g, _)| g == gpa.0) {
            return Err(TvmError::Invalid);
        }
        self.pages
            .reserve(1, GFP_KERNEL)
            .map_err(|_| TvmError::NoMemory)?;
        let mut pa = 0u64;
        // SAFETY: `kvm` is the live VM of this state; `pa` is writable.
        let r = unsafe { kvm_cove_pin_shared(self.kvm, gpa.0, &mut pa) };
        if r != 0 {
            return Err(TvmError::Kernel(-r));
        }
        // Cannot fail: reserved above.
        if self.pages.push((gpa.0, pa), GFP_KERNEL).is_err() {
            // SAFETY: pinned just above and not recorded.
            unsafe { kvm_cove_unpin_shared(pa) };
            return Err(TvmError::NoMemory);
        }
        Ok(Pa(pa))
    }

    fn release_shared(&mut self, gpa: Gpa) {
        if let Some(i) = self.pages.iter().position(|&(g, _)| g == gpa.0) {
            if let Ok((_, pa)) = self.pages.remove(i) {
                // SAFETY: pinned by `shared_page` and no longer mapped in
                // the TVM (the caller removed it).
                unsafe { kvm_cove_unpin_shared(pa) };
            }
        }
    }
}

/// This CPU's NACL shared memory, with preemption disabled while it
/// lives.
struct CpuNacl(NonNull<u64>);

impl CpuNacl {
    fn get() -> Option<CpuNacl> {
        // SAFETY: returns this CPU's NACL area and disables preemption, or
        // NULL with preemption untouched.
        NonNull::new(unsafe { kvm_cove_nacl_get() }.cast::<u64>()).map(CpuNacl)
    }

    fn slot(&self, i: usize) -> *mut u64 {
        // The area is `nacl::SIZE` bytes; callers pass in-range slots.
        self.0.as_ptr().wrapping_add(i)
    }
}

impl Drop for CpuNacl {
    fn drop(&mut self) {
        // SAFETY: pairs with the `kvm_cove_nacl_get` that made `self`.
        unsafe { kvm_cove_nacl_put() }
    }
}

impl NaclShmem for CpuNacl {
    fn csr(&self, csr: u16) -> u64 {
        let i = nacl::CSR_OFFSET / 8 + nacl::csr_index(csr);
        if i >= nacl::SIZE / 8 {
            return 0;
        }
        // SAFETY: slot `i` lies in this CPU's NACL area, which stays
        // mapped and ours (preemption is off) while `self` lives; the TSM
        // writes it only during `TVM_VCPU_RUN`.
        u64::from_le(unsafe { self.slot(i).read_volatile() })
    }

    fn gpr(&self, i: usize) -> u64 {
        if i >= 32 {
            return 0;
        }
        // SAFETY: as in `csr`; scratch slot `i` < 32 is in the area.
        u64::from_le(unsafe { self.slot(nacl::gpr_offset(i) / 8).read_volatile() })
    }

    fn set_gpr(&mut self, i: usize, v: u64) {
        if i == 0 || i >= 32 {
            return;
        }
        // SAFETY: as in `gpr`.
        unsafe { self.slot(nacl::gpr_offset(i) / 8).write_volatile(v.to_le()) }
    }
}

/// The state of one TVM.
struct State {
    tsm: SbiTsm,
    alloc: KernelAlloc,
    pinned: Pinned,
    tvm: Tvm<KVecTable>,
    vcpus: KVec<VcpuRun>,
}

/// `kvm->arch.cove` as an atomic pointer.
///
/// # Safety
///
/// `slot` is `kvm->arch.cove` of a live VM.
unsafe fn slot_ptr<'a>(slot: *mut *mut c_void) -> &'a AtomicPtr<c_void> {
    // SAFETY: `slot` is valid and pointer-aligned; only this module writes
    // it, atomically.
    unsafe { AtomicPtr::from_ptr(slot) }
}

/// The published state, if any.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.cove` of a live VM.
unsafe fn published<'a>(state: *mut c_void) -> Option<&'a Mutex<State>> {
    // SAFETY: a non-null `kvm->arch.cove` holds a `Mutex<State>` from
    // `kvm_cove_vm_init`, freed only when the VM has no users left.
    (!state.is_null()).then(|| unsafe { &*state.cast::<Mutex<State>>() })
}

/// Runs `f` on the state under its mutex; `-EINVAL` for a normal VM.
///
/// # Safety
///
/// As for [`published`].
unsafe fn with_state(state: *mut c_void, f: impl FnOnce(&mut State) -> c_int) -> c_int {
    // SAFETY: by the function's contract.
    match unsafe { published(state) } {
        Some(m) => f(&mut m.lock()),
        None => -TvmError::Invalid.errno(),
    }
}

/// Creates the TVM of a `KVM_VM_TYPE_RISCV_COVE` VM: converts its root
/// and state pages and calls `CREATE_TVM`.  0 or a negative errno (the
/// VM is not created).
///
/// # Safety
///
/// `kvm` is the VM being created and `slot` its `kvm->arch.cove`, which
/// nothing else uses yet.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vm_init(kvm: *mut c_void, slot: *mut *mut c_void) -> c_int {
    let Ok(mut tsm) = SbiTsm::new() else {
        return -TvmError::NoMemory.errno();
    };
    let info = match tvm::check_tsm(&mut tsm) {
        Ok(i) => i,
        Err(e) => return -e.errno(),
    };
    let mut alloc = KernelAlloc;
    let pool = Pool::with_table(KVecTable(KVec::new()), BATCH_PAGES.max(tvm::PGD_PAGES));
    let tvm = match Tvm::create_with_pool(&mut tsm, &mut alloc, &info, pool) {
        Ok(t) => t,
        Err((e, stats)) => {
            if stats.leaked != 0 {
                kernel::pr_warn_ratelimited!(
                    "TVM creation failed; {} pages left with the TSM\n",
                    stats.leaked
                );
            }
            return -e.errno();
        }
    };
    let st = State {
        tsm,
        alloc,
        pinned: Pinned {
            kvm,
            pages: KVec::new(),
        },
        tvm,
        vcpus: KVec::new(),
    };
    match KBox::pin_init(new_mutex!(st), GFP_KERNEL) {
        Ok(b) => {
            // SAFETY: the mutex is never moved out of the box: the raw
            // pointer is only dereferenced in place and freed by
            // `kvm_cove_vm_destroy`.
            let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(b) });
            // SAFETY: by the function's contract.
            unsafe { slot_ptr(slot) }.store(raw.cast::<c_void>(), Ordering::Release);
            0
        }
        // The state (and its TVM) was dropped with the failed allocation:
        // its pages stay with the TSM, which cannot be undone here.
        Err(_) => {
            kernel::pr_warn_ratelimited!("TVM state allocation failed after CREATE_TVM\n");
            -TvmError::NoMemory.errno()
        }
    }
}

/// VM destruction: `DESTROY_TVM`, reclaim and free of every confidential
/// page, then the VMM pages are unpinned.  If the TSM refuses, its pages
/// are leaked on purpose (and the VMM pages stay pinned) with a warning.
///
/// # Safety
///
/// `slot` is `kvm->arch.cove` of a VM being destroyed: nothing else uses
/// it any more.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vm_destroy(slot: *mut *mut c_void) {
    // SAFETY: by the function's contract.
    let raw = unsafe { slot_ptr(slot) }.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if raw.is_null() {
        return;
    }
    // SAFETY: the slot held a `Mutex<State>` from `KBox::into_raw` in
    // `kvm_cove_vm_init`; it was cleared above, so it is reclaimed once.
    let m = unsafe { KBox::from_raw(raw.cast::<Mutex<State>>()) };
    let mut guard = m.lock();
    let st = &mut *guard;
    match st.tvm.destroy(&mut st.tsm, &mut st.alloc) {
        Ok(()) => {
            while let Some((_, pa)) = st.pinned.pages.pop() {
                // SAFETY: pinned by `shared_page`; the TVM is gone.
                unsafe { kvm_cove_unpin_shared(pa) };
            }
        }
        Err(e) => {
            kernel::pr_warn_ratelimited!(
                "DESTROY_TVM failed ({:?}): its pages stay with the TSM\n",
                e
            );
            // Keep the pins: the TSM may still map those pages.
            core::mem::forget(core::mem::take(&mut st.pinned.pages));
        }
    }
    let leaked = st.tvm.pool_stats().leaked;
    if leaked != 0 {
        kernel::pr_warn_ratelimited!("TVM teardown leaked {} confidential pages\n", leaked);
    }
}

/// A memslot change of a TVM: a new memslot becomes a confidential
/// region (before the first `KVM_RUN` only: `-EPERM` after); moving one is
/// refused with `-EPERM`.  Deleting one leaves its pages with the TVM
/// until it is destroyed.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.cove` of a live VM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_prepare_memslot(
    state: *mut c_void,
    change: u32,
    gpa: u64,
    size: u64,
) -> c_int {
    // SAFETY: by the function's contract.
    unsafe {
        with_state(state, |st| match change {
            mr::CREATE => match st
                .tvm
                .add_region(&mut st.tsm, &mut st.alloc, Gpa(gpa), size)
            {
                Ok(()) => 0,
                Err(e) => -e.errno(),
            },
            mr::MOVE => -TvmError::State.errno(),
            mr::DELETE => 0,
            _ => 0,
        })
    }
}

/// `KVM_CREATE_VCPU` of a TVM: the TSM's vCPU with its state pages.
/// `-EPERM` after the first `KVM_RUN`, `-EINVAL` beyond the TSM's vCPU
/// limit.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.cove` of a live VM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vcpu_create(state: *mut c_void, idx: u32) -> c_int {
    // SAFETY: by the function's contract.
    unsafe {
        with_state(state, |st| {
            if st.vcpus.reserve(1, GFP_KERNEL).is_err() {
                return -TvmError::NoMemory.errno();
            }
            let id = u64::from(idx);
            if let Err(e) = st.tvm.create_vcpu(&mut st.tsm, &mut st.alloc, id) {
                return -e.errno();
            }
            // Cannot fail: reserved above.
            match st.vcpus.push(VcpuRun::new(id), GFP_KERNEL) {
                Ok(()) => 0,
                Err(_) => -TvmError::NoMemory.errno(),
            }
        })
    }
}

/// `KVM_RISCV_COVE_MEASURE_REGION`: copies and measures `size` bytes of
/// the VMM's memory at `uaddr` into confidential pages at `gpa`, page by
/// page.  `-EINVAL` for misaligned or empty ranges and ranges outside the
/// confidential regions, `-EPERM` after the first `KVM_RUN`, `-EFAULT` for
/// unmapped VMM memory.  Pages measured before a failure stay measured.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.cove` of a live VM; called from the
/// VMM's process.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_measure_region(
    state: *mut c_void,
    uaddr: u64,
    gpa: u64,
    size: u64,
) -> c_int {
    if uaddr % PAGE_SIZE != 0
        || gpa % PAGE_SIZE != 0
        || size == 0
        || size % PAGE_SIZE != 0
        || uaddr.checked_add(size).is_none()
        || gpa.checked_add(size).is_none()
    {
        return -TvmError::Invalid.errno();
    }
    // SAFETY: by the function's contract.
    unsafe { with_state(state, |st| measure(st, uaddr, gpa, size)) }
}

/// [`kvm_cove_measure_region`] on a checked range, under the mutex.
fn measure(st: &mut State, uaddr: u64, gpa: u64, size: u64) -> c_int {
    if st.tvm.state() != TvmState::Initializing {
        return -TvmError::State.errno();
    }
    if !st.tvm.is_confidential(Gpa(gpa)) || !st.tvm.is_confidential(Gpa(gpa + size - 1)) {
        return -TvmError::Invalid.errno();
    }
    let mut off = 0;
    while off < size {
        // CAST: `unsigned long` is 64 bits on riscv64.
        let hva = (uaddr + off) as c_ulong;
        let mut src = 0u64;
        // SAFETY: `src` is writable; the page stays referenced until
        // `kvm_cove_put_user` below.
        let r = unsafe { kvm_cove_get_user(hva, &mut src) };
        if r != 0 {
            return r;
        }
        let m = st
            .tvm
            .measure_page(&mut st.tsm, &mut st.alloc, Gpa(gpa + off), Pa(src));
        // SAFETY: referenced by `kvm_cove_get_user` above; the TSM copied
        // it.
        unsafe { kvm_cove_put_user(src) };
        if let Err(e) = m {
            return -e.errno();
        }
        off += PAGE_SIZE;
        if off % (256 * PAGE_SIZE) == 0 && kernel::current!().signal_pending() {
            return -TvmError::Interrupted.errno();
        }
    }
    0
}

/// `struct kvm_cove_io` (`asm/kvm_cove.h`).
#[repr(C)]
pub(crate) struct RunIo {
    sepc: u64,
    a1: u64,
    kind: u32,
    flags: u32,
    addr: u64,
    data: u64,
    len: u64,
    ext: u64,
    fid: u64,
    args: [u64; 6],
    scause: u64,
}

const _: () = {
    assert!(core::mem::size_of::<RunIo>() == 120);
    assert!(offset_of!(RunIo, kind) == 16);
    assert!(offset_of!(RunIo, addr) == 24);
    assert!(offset_of!(RunIo, args) == 64);
    assert!(offset_of!(RunIo, scause) == 112);
};

/// `KVM_COVE_IO_*` and `KVM_COVE_IO_F_*`.
mod io {
    pub(super) const MMIO: u32 = 1;
    pub(super) const SBI: u32 = 2;
    pub(super) const SYSTEM_EVENT: u32 = 3;
    pub(super) const SHUTDOWN: u32 = 4;
    pub(super) const INTERNAL: u32 = 5;
    pub(super) const F_WRITE: u32 = 1 << 0;
    pub(super) const F_RESET: u32 = 1 << 1;
}

/// `KVM_COVE_RUN_*`.
const RUN_ENTER: c_int = 0;
const RUN_USER: c_int = 1;
const RUN_IDLE: c_int = 2;

impl RunIo {
    fn set(&mut self, u: UserExit) {
        (self.flags, self.addr, self.data, self.len) = (0, 0, 0, 0);
        match u {
            UserExit::Mmio {
                gpa,
                len,
                write,
                data,
            } => {
                self.kind = io::MMIO;
                (self.addr, self.len, self.data) = (gpa, u64::from(len), data);
                if write {
                    self.flags = io::F_WRITE;
                }
            }
            UserExit::Sbi { ext, fid, args } => {
                self.kind = io::SBI;
                (self.ext, self.fid, self.args) = (ext, fid, args);
            }
            UserExit::SystemEvent { reset } => {
                self.kind = io::SYSTEM_EVENT;
                if reset {
                    self.flags = io::F_RESET;
                }
            }
            UserExit::Terminated => self.kind = io::SHUTDOWN,
            UserExit::Internal { scause } => {
                self.kind = io::INTERNAL;
                self.scause = scause;
            }
        }
    }
}

/// The index of vCPU `idx` in `vcpus`.
fn vcpu_index(vcpus: &KVec<VcpuRun>, idx: u32) -> Option<usize> {
    vcpus.iter().position(|v| v.id() == u64::from(idx))
}

/// Start of `KVM_RUN` on TVM vCPU `idx`: userspace's answer to the last
/// exit (`mmio_data`, or `sbi_ret`: `kvm_run.riscv_sbi.ret`, may be
/// null).  0, or `-EINVAL` for an unknown vCPU.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.cove` of a live VM; `sbi_ret` is
/// null or points to two readable `unsigned long`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vcpu_resume(
    state: *mut c_void,
    idx: u32,
    mmio_data: u64,
    sbi_ret: *const c_ulong,
) -> c_int {
    let ret = if sbi_ret.is_null() {
        [0, 0]
    } else {
        // SAFETY: by the function's contract.
        unsafe { [u64::from(*sbi_ret), u64::from(*sbi_ret.add(1))] }
    };
    // SAFETY: by the function's contract.
    unsafe {
        with_state(state, |st| match vcpu_index(&st.vcpus, idx) {
            Some(i) => {
                if let Some(v) = st.vcpus.get_mut(i) {
                    v.resume(mmio_data, ret);
                }
                0
            }
            None => -TvmError::Invalid.errno(),
        })
    }
}

/// One `TVM_VCPU_RUN` of vCPU `idx` and its exit: `KVM_COVE_RUN_ENTER`,
/// `KVM_COVE_RUN_USER` (`io` says what userspace sees),
/// `KVM_COVE_RUN_IDLE`, or a negative errno.  The first run of the TVM
/// finalizes it with `io.sepc` and `io.a1` as the boot vCPU's entry.
///
/// # Safety
///
/// `state` is the value of `kvm->arch.cove` of a live VM; `io` points to
/// a writable `struct kvm_cove_io`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vcpu_enter(
    state: *mut c_void,
    idx: u32,
    io: *mut RunIo,
) -> c_int {
    // SAFETY: by the function's contract.
    let io = unsafe { &mut *io };
    // SAFETY: by the function's contract.
    unsafe { with_state(state, |st| enter_vcpu(st, idx, io)) }
}

fn enter_vcpu(st: &mut State, idx: u32, io: &mut RunIo) -> c_int {
    let State {
        tsm,
        alloc,
        pinned,
        tvm,
        vcpus,
    } = st;
    let Some(v) = vcpu_index(vcpus, idx).and_then(|i| vcpus.get_mut(i)) else {
        return -TvmError::Invalid.errno();
    };
    if tvm.state() == TvmState::Initializing {
        if let Err(e) = tvm.finalize(tsm, io.sepc, io.a1) {
            kernel::pr_warn_ratelimited!("FINALIZE_TVM failed: {:?}\n", e);
            return -e.errno();
        }
    }
    let exit = {
        let Some(mut nacl) = CpuNacl::get() else {
            return -TvmError::NoDevice.errno();
        };
        v.enter(tvm, tsm, &mut nacl)
        // `nacl` dropped: preemption is enabled again.
    };
    let step = exit.and_then(|x| v.handle(tvm, tsm, alloc, pinned, x));
    match step {
        Ok(Step::Enter) => RUN_ENTER,
        Ok(Step::Idle) => RUN_IDLE,
        Ok(Step::User(u)) => {
            io.set(u);
            RUN_USER
        }
        Err(e) => {
            kernel::pr_warn_ratelimited!("TVM vCPU {}: run failed: {:?}\n", idx, e);
            -e.in_run().errno()
        }
    }
}
