// SPDX-License-Identifier: GPL-2.0

//! The per-VM state of a TVM, its publication in `kvm->arch.cove`, and
//! the VM-level operations: creation, memslots, vCPUs, measured regions
//! and teardown.
//!
//! # Ownership and locking
//!
//! The state is a `Pin<KBox<Mutex<State>>>`, created by `KVM_CREATE_VM`
//! and published in `kvm->arch.cove` (`cvm_fw::published`, on
//! `ForeignOwnable`) before the VM is visible to userspace.  It belongs to
//! the VM: only [`vm_destroy`] takes it back, when the VM has no other
//! users; every other access borrows it for one call ([`with_state`]).
//!
//! The state's mutex is the innermost lock (taken under `kvm->lock`,
//! `kvm->slots_lock` or `vcpu->mutex`; nothing is taken under it).  It is
//! not held across `TVM_VCPU_RUN` (nor while a vCPU idles), so the vCPUs
//! of one TVM run at once; `run.rs` says how TVM fences reach them.

use core::pin::Pin;

use kernel::alloc::flags::GFP_KERNEL;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::abi::{Covh, Gpa, PAGE_SIZE};
use crate::cvm_fw::published;
use crate::glue::kvm::Kvm;
use crate::glue::pages::{self, KernelAlloc, Pinned};
use crate::glue::sbi_tsm::SbiTsm;
use crate::logic::aia::{self, Injected};
use crate::logic::pool::{Batch, BatchTable, Pool};
use crate::logic::run::VcpuRun;
use crate::logic::tvm::{self, MeasureRegion, Tvm, TvmError, TvmState};

/// Conversion batch of a TVM's pool at first (2 MiB); it grows.
const BATCH_PAGES: u64 = 512;

/// A pool's batches in a vector: a TVM needs one per contiguous run the
/// page allocator gave (4 MiB at most), so no fixed table fits all.
pub(crate) struct KVecTable(KVec<Batch>);

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

/// The state of one TVM.
pub(crate) struct State {
    pub(crate) tsm: SbiTsm,
    pub(crate) alloc: KernelAlloc,
    pub(crate) pinned: Pinned,
    pub(crate) tvm: Tvm<KVecTable>,
    pub(crate) vcpus: KVec<VcpuRun>,
}

// SAFETY: `State` is not `Send` only for the raw pointer to its
// `struct kvm` (in `Pinned`), which outlives it and whose memslots may be
// looked up from any thread of the VM's process, as KVM's own are.  Every
// access is under the state's mutex.
unsafe impl Send for State {}

/// The published state of a TVM.
type Published = Pin<KBox<Mutex<State>>>;

/// Runs `f` on the published state of `kvm`, or returns `None` for a
/// normal VM.  The borrow lasts for the call of `f` only.
pub(crate) fn with_state<R>(kvm: Kvm, f: impl FnOnce(&Mutex<State>) -> R) -> Option<R> {
    // SAFETY: only this module publishes in `kvm->arch.cove`, a
    // `Mutex<State>`; `vm_destroy` takes it back when the VM has no other
    // users, and `kvm` is live (its type's invariant), so it has not run.
    unsafe { published::with(kvm.state_slot(), f) }
}

/// [`with_state`] under the mutex; `EINVAL` for a normal VM.
pub(crate) fn with_locked<R>(
    kvm: Kvm,
    f: impl FnOnce(&mut State) -> Result<R, TvmError>,
) -> Result<R, TvmError> {
    with_state(kvm, |m| f(&mut m.lock())).unwrap_or(Err(TvmError::Invalid))
}

/// Creates the TVM of a `KVM_VM_TYPE_RISCV_COVE` VM: converts its root
/// and state pages and calls `CREATE_TVM`.  On failure the VM is not
/// created.
pub(crate) fn vm_init(kvm: Kvm) -> Result<(), TvmError> {
    let mut tsm = SbiTsm::new().map_err(|_| TvmError::NoMemory)?;
    let info = tvm::check_tsm(&mut tsm)?;
    let mut alloc = KernelAlloc;
    let pool = Pool::with_table(KVecTable(KVec::new()), BATCH_PAGES.max(tvm::PGD_PAGES));
    let mut tvm = Tvm::create_with_pool(&mut tsm, &mut alloc, &info, pool).map_err(|(e, stats)| {
        if stats.leaked != 0 {
            kernel::pr_warn_ratelimited!(
                "TVM creation failed; {} pages left with the TSM\n",
                stats.leaked
            );
        }
        e
    })?;
    if crate::covi_ready() {
        // A TVM the TSM gives no IMSIC still runs, without interrupts.
        if let Err(e) = tvm.init_aia(&mut tsm, &mut alloc) {
            kernel::pr_warn_ratelimited!("TVM_AIA_INIT failed ({:?}): TVM without interrupt files\n", e);
        }
    }
    let st = State {
        tsm,
        alloc,
        pinned: Pinned::new(kvm),
        tvm,
        vcpus: KVec::new(),
    };
    match KBox::pin_init(new_mutex!(st), GFP_KERNEL) {
        Ok(b) => {
            let b: Published = b;
            // The VM is being created, so nothing else is published yet;
            // were something there, the new TVM's pages would stay with
            // the TSM, dropped with its state.
            if published::publish(kvm.state_slot(), b) {
                Ok(())
            } else {
                kernel::pr_warn_ratelimited!("a TVM state was published already; new TVM dropped\n");
                Err(TvmError::State)
            }
        }
        // The state (and its TVM) was dropped with the failed allocation:
        // its pages stay with the TSM, which cannot be undone here.
        Err(_) => {
            kernel::pr_warn_ratelimited!("TVM state allocation failed after CREATE_TVM\n");
            Err(TvmError::NoMemory)
        }
    }
}

/// VM destruction: `DESTROY_TVM`, reclaim and free of every confidential
/// page, then the VMM pages are unpinned.  If the TSM refuses, its pages
/// are leaked on purpose (and the VMM pages stay pinned) with a warning.
pub(crate) fn vm_destroy(kvm: Kvm) {
    // SAFETY: only this module publishes in `kvm->arch.cove`, a
    // `Mutex<State>`; the VM has no other users, so no `with_state` runs.
    let Some(m) = (unsafe { published::take::<Mutex<State>>(kvm.state_slot()) }) else {
        return;
    };
    let mut guard = m.lock();
    let st = &mut *guard;
    let gone = match st.tvm.destroy(&mut st.tsm, &mut st.alloc) {
        Ok(()) => true,
        Err(e) => {
            kernel::pr_warn_ratelimited!(
                "DESTROY_TVM failed ({:?}): its pages stay with the TSM\n",
                e
            );
            false
        }
    };
    // Keep the pins if the TSM may still map those pages.
    st.pinned.release_all(gone);
    if gone {
        // The TSM took back the guest files it mapped for the TVM.
        for v in st.vcpus.iter_mut() {
            aia::release(&crate::FILES, &mut v.binding);
        }
    }
    let p = st.tvm.pool_stats();
    let t = st.tvm.stats();
    let c = &st.tsm.counts;
    // One line per TVM for the selftests and the by-hand tiers: what the
    // TVM used and what the host asked of the TSM for it.
    kernel::pr_info!(
        "TVM {} destroyed: {} zero, {} measured, {} shared pages; {} COVH calls, {} conversions, {} global fences; {} COVI calls, {} binds, {} rebinds, {} unbinds, {} interrupts injected, {} denied; {} fence kicks; {} pages left converted\n",
        st.tvm.gid(),
        t.zero_pages,
        t.measured_pages,
        t.shared_pages,
        c.total(),
        c.get(Covh::TsmConvertPages),
        p.fences,
        st.tsm.covi.total(),
        t.binds,
        t.rebinds,
        t.unbinds,
        t.injected,
        t.denied,
        st.tsm.kicks,
        p.converted
    );
    if t.allow_mismatch != 0 {
        kernel::pr_warn_ratelimited!(
            "TVM {}: {} injections where the TSM and the host's allow list disagreed\n",
            st.tvm.gid(),
            t.allow_mismatch
        );
    }
    if p.leaked != 0 || p.anomalies != 0 {
        kernel::pr_warn_ratelimited!(
            "TVM teardown leaked {} confidential pages ({} count anomalies)\n",
            p.leaked,
            p.anomalies
        );
    }
}

/// `enum kvm_mr_change`.
mod mr {
    pub(super) const CREATE: u32 = 0;
    pub(super) const MOVE: u32 = 2;
}

/// A memslot change of a TVM: a new memslot becomes a confidential
/// region (before the first `KVM_RUN` only: `EPERM` after); moving one is
/// refused with `EPERM`.  Deleting one leaves its pages with the TVM
/// until it is destroyed.
pub(crate) fn prepare_memslot(kvm: Kvm, change: u32, gpa: u64, size: u64) -> Result<(), TvmError> {
    with_locked(kvm, |st| match change {
        mr::CREATE => st
            .tvm
            .add_region(&mut st.tsm, &mut st.alloc, Gpa(gpa), size),
        mr::MOVE => Err(TvmError::State),
        _ => Ok(()),
    })
}

/// `KVM_CREATE_VCPU` of a TVM: the TSM's vCPU `id` with its state pages.
/// `EPERM` after the first `KVM_RUN`, `EINVAL` beyond the TSM's limit.
pub(crate) fn vcpu_create(kvm: Kvm, id: u64) -> Result<(), TvmError> {
    with_locked(kvm, |st| {
        st.vcpus
            .reserve(1, GFP_KERNEL)
            .map_err(|_| TvmError::NoMemory)?;
        st.tvm.create_vcpu(&mut st.tsm, &mut st.alloc, id)?;
        // Cannot fail: reserved above.
        st.vcpus
            .push(VcpuRun::new(id), GFP_KERNEL)
            .map_err(|_| TvmError::NoMemory)
    })
}

/// `KVM_RISCV_COVE_MEASURE_REGION`: copies and measures the VMM's memory
/// into confidential pages, page by page.  `EPERM` after the first
/// `KVM_RUN`, `EINVAL` outside the confidential regions, `EFAULT` for
/// unmapped VMM memory, `EINTR` on a signal.  Pages measured before a
/// failure stay measured.  The caller holds `kvm->lock`.
pub(crate) fn measure_region(kvm: Kvm, r: MeasureRegion) -> Result<(), TvmError> {
    with_locked(kvm, |st| {
        if st.tvm.state() != TvmState::Initializing {
            return Err(TvmError::State);
        }
        if !st.tvm.is_confidential(Gpa(r.gpa)) || !st.tvm.is_confidential(Gpa(r.gpa + r.size - 1)) {
            return Err(TvmError::Invalid);
        }
        let mut off = 0;
        while off < r.size {
            // CAST: user addresses fit in usize on 64-bit.
            let src = pages::user_page((r.uaddr + off) as usize)?;
            let m = st
                .tvm
                .measure_page(&mut st.tsm, &mut st.alloc, Gpa(r.gpa + off), src);
            // SAFETY: referenced by `user_page` above; the TSM copied it.
            unsafe { pages::put_page(src) };
            m?;
            off += PAGE_SIZE;
            if off % (256 * PAGE_SIZE) == 0 && kernel::current!().signal_pending() {
                return Err(TvmError::Interrupted);
            }
        }
        Ok(())
    })
}


/// An MSI to a TVM (`KVM_SIGNAL_MSI`, MSI routes, irqfds): interrupt ID
/// `data` to the vCPU whose interrupt file is at `addr`, through COVI
/// `INJECT`.  0 once the TSM delivered it; `EPERM` if the TVM has not
/// allowed that ID; `EINVAL` for an address that is no vCPU's file or an
/// ID out of range; `ENXIO` for a TVM without interrupt files.
pub(crate) fn set_msi(kvm: Kvm, addr: u64, data: u32) -> Result<(), TvmError> {
    with_locked(kvm, |st| {
        if !st.tvm.aia() {
            return Err(TvmError::Kernel(crate::cvm_fw::errno::ENXIO));
        }
        let id = aia::msi_target(addr, st.tvm.max_vcpus()).ok_or(TvmError::Invalid)?;
        let iid = u64::from(data);
        if iid == 0 || iid >= aia::MAX_IDS {
            return Err(TvmError::Invalid);
        }
        let v = st.vcpus.iter().find(|v| v.id() == id).ok_or(TvmError::Invalid)?;
        let gid = st.tvm.gid();
        let (r, mismatch) = aia::inject(&mut st.tsm, gid, id, iid, v.allowed())?;
        let t = st.tvm.stats_mut();
        if mismatch {
            t.allow_mismatch = t.allow_mismatch.saturating_add(1);
        }
        match r {
            Injected::Delivered => {
                t.injected = t.injected.saturating_add(1);
                Ok(())
            }
            Injected::Denied => {
                t.denied = t.denied.saturating_add(1);
                Err(TvmError::State)
            }
        }
    })
}
