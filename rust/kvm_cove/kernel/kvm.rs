// SPDX-License-Identifier: GPL-2.0

//! The KVM structures the riscv hooks hand to the backend, behind small
//! handles: [`Kvm`] for a TVM and [`Vcpu`] for one of its vCPUs.  All
//! field access to `struct kvm` and `struct kvm_vcpu` is here.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::AtomicPtr;

use kernel::bindings;

/// A VM a hook was called for (a TVM, or one becoming one).
///
/// # Invariants
///
/// `self.0` points to a live `struct kvm` for as long as the handle is
/// used: the hooks' caller (KVM) keeps the VM alive across each call, and
/// handles do not outlive the call.
#[derive(Clone, Copy)]
pub(crate) struct Kvm(NonNull<bindings::kvm>);

impl Kvm {
    /// A handle for `kvm`.
    ///
    /// # Safety
    ///
    /// `kvm` is a live VM, which stays alive for as long as the handle is
    /// used.
    pub(crate) unsafe fn from_raw(kvm: *mut bindings::kvm) -> Option<Kvm> {
        // INVARIANT: by this function's contract.
        NonNull::new(kvm).map(Kvm)
    }

    /// `kvm->arch.cove`, the backend's published per-VM state.  KVM only
    /// reads it (`kvm_is_cove()`); this backend writes it atomically.
    pub(crate) fn state_slot(&self) -> &AtomicPtr<c_void> {
        // SAFETY: the VM is live (type invariant), so the field is valid
        // and aligned for a pointer; this backend accesses it atomically.
        unsafe { AtomicPtr::from_ptr(&raw mut (*self.0.as_ptr()).arch.cove) }
    }

    /// The userspace address of guest frame `gfn` in the VM's memslots, if
    /// the caller runs in the VM's own process.  Without a memslot it is
    /// one of KVM's error addresses (`KVM_HVA_ERR_BAD`, at `PAGE_OFFSET`),
    /// which the page pinning that follows refuses as a kernel address.
    pub(crate) fn user_address(&self, gfn: u64) -> Option<usize> {
        let kvm = self.0.as_ptr();
        // SAFETY: `kvm->srcu` of a live VM (type invariant); unlocked below.
        let idx = unsafe { bindings::__srcu_read_lock(&raw mut (*kvm).srcu) };
        // SAFETY: the memslots are read under `kvm->srcu`, held here.
        let hva = unsafe { bindings::gfn_to_hva(kvm, gfn) };
        // SAFETY: the lock taken above.
        unsafe { bindings::__srcu_read_unlock(&raw mut (*kvm).srcu, idx) };
        // SAFETY: `current` is always valid; `kvm->mm` is set at creation.
        let own = unsafe { (*bindings::get_current()).mm == (*kvm).mm };
        // CAST: `unsigned long` is 64 bits on riscv64.
        own.then_some(hva as usize)
    }
}

/// A vCPU a hook was called for.
///
/// # Invariants
///
/// `self.0` points to a live `struct kvm_vcpu` for as long as the handle
/// is used, and the caller of the hook holds `vcpu->mutex` (or is
/// creating the vCPU), so nothing else uses its `run` page or its stats.
pub(crate) struct Vcpu(NonNull<bindings::kvm_vcpu>);

impl Vcpu {
    /// A handle for `vcpu`.
    ///
    /// # Safety
    ///
    /// `vcpu` is a live vCPU the caller holds (`vcpu->mutex`, or its
    /// creation) for as long as the handle is used.
    pub(crate) unsafe fn from_raw(vcpu: *mut bindings::kvm_vcpu) -> Option<Vcpu> {
        // INVARIANT: by this function's contract.
        NonNull::new(vcpu).map(Vcpu)
    }

    /// The raw vCPU, for the kernel's own vCPU functions.
    pub(crate) fn run_owner(&self) -> *mut bindings::kvm_vcpu {
        self.0.as_ptr()
    }

    /// Its VM.
    pub(crate) fn kvm(&self) -> Kvm {
        // SAFETY: the vCPU is live (type invariant), and so is its VM,
        // which outlives it.
        // INVARIANT: used only while this vCPU handle is.
        Kvm(unsafe { NonNull::new_unchecked((*self.0.as_ptr()).kvm) })
    }

    /// `vcpu->vcpu_id`, the TSM's vCPU id (`vcpu_idx` is not assigned yet
    /// when the vCPU is created).
    pub(crate) fn id(&self) -> u64 {
        // SAFETY: the vCPU is live (type invariant); the id never changes.
        let id = unsafe { (*self.0.as_ptr()).vcpu_id };
        // CAST: ids are non-negative, below KVM_MAX_VCPU_IDS.
        id as u64
    }

    /// `vcpu->wants_to_run`: false for a `KVM_RUN` with `immediate_exit`.
    pub(crate) fn wants_to_run(&self) -> bool {
        // SAFETY: the vCPU is live and held by the caller (invariant).
        unsafe { (*self.0.as_ptr()).wants_to_run }
    }

    /// The entry point and `a1` userspace set, which finalize the TVM on
    /// its first run.
    pub(crate) fn entry(&self) -> (u64, u64) {
        // SAFETY: the vCPU is live and held by the caller (invariant).
        let c = unsafe { &(*self.0.as_ptr()).arch.guest_context };
        // CAST: `unsigned long` is 64 bits on riscv64.
        (c.sepc as u64, c.a1 as u64)
    }

    /// The shared `struct kvm_run` page.
    pub(crate) fn run(&mut self) -> &mut bindings::kvm_run {
        // SAFETY: the vCPU is live and the caller holds `vcpu->mutex`
        // (type invariant), so this is the only kernel reference to its
        // `run` page; userspace may write it concurrently, which is KVM's
        // usual contract for this page (plain integers only).
        unsafe { &mut *(*self.0.as_ptr()).run }
    }

    /// The vCPU's stats.
    pub(crate) fn stat(&mut self) -> &mut bindings::kvm_vcpu_stat {
        // SAFETY: as for `run`: the caller holds the vCPU.
        unsafe { &mut (*self.0.as_ptr()).stat }
    }
}
