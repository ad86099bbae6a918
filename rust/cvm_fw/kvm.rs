// SPDX-License-Identifier: GPL-2.0

//! Handles for the KVM structures the hooks pass to a backend (kernel
//! build only): [`Kvm`] and [`Vcpu`] wrap `struct kvm` and
//! `struct kvm_vcpu`; each backend adds the fields of its architecture
//! (`kvm->arch.rme`, `kvm->arch.cove`, the guest context) in its own
//! `kernel/kvm.rs`.  All access to those structures goes through them.

use core::ptr::NonNull;

use kernel::bindings;

/// A VM a hook was called for.
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

    /// The raw VM, live while the handle is (type invariant).
    pub(crate) fn as_ptr(self) -> *mut bindings::kvm {
        self.0.as_ptr()
    }
}

/// A vCPU a hook was called for.
///
/// # Invariants
///
/// `self.0` points to a live `struct kvm_vcpu` for as long as the handle
/// is used, and the caller of the hook holds `vcpu->mutex` (or is
/// creating or destroying the vCPU), so nothing else uses its `run` page
/// or its stats meanwhile.
pub(crate) struct Vcpu(NonNull<bindings::kvm_vcpu>);

impl Vcpu {
    /// A handle for `vcpu`.
    ///
    /// # Safety
    ///
    /// `vcpu` is a live vCPU the caller holds (`vcpu->mutex`, or its
    /// creation or destruction) for as long as the handle is used.
    pub(crate) unsafe fn from_raw(vcpu: *mut bindings::kvm_vcpu) -> Option<Vcpu> {
        // INVARIANT: by this function's contract.
        NonNull::new(vcpu).map(Vcpu)
    }

    /// The raw vCPU, live and held while the handle is (type invariant).
    pub(crate) fn as_ptr(&self) -> *mut bindings::kvm_vcpu {
        self.0.as_ptr()
    }

    /// Its VM.
    pub(crate) fn kvm(&self) -> Kvm {
        // SAFETY: the vCPU is live (type invariant), and so is its VM,
        // which outlives it.
        // INVARIANT: used only while this vCPU handle is.
        Kvm(unsafe { NonNull::new_unchecked((*self.0.as_ptr()).kvm) })
    }

    /// `vcpu->wants_to_run`: false for a `KVM_RUN` with `immediate_exit`.
    pub(crate) fn wants_to_run(&self) -> bool {
        // SAFETY: the vCPU is live and held by the caller (invariant).
        unsafe { (*self.0.as_ptr()).wants_to_run }
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
