// SPDX-License-Identifier: GPL-2.0

//! The KVM structures the arm64 hooks hand to the backend, behind small
//! handles: [`Kvm`] for a realm VM and [`Vcpu`] for one of its vCPUs.
//! All field access to `struct kvm` and `struct kvm_vcpu` is here.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::AtomicPtr;

use kernel::bindings;

/// A realm VM that a hook was called for.
///
/// # Invariants
///
/// `self.0` points to a live `struct kvm` with `arch.is_realm` set, for as
/// long as the handle is used: the hooks' caller (KVM) keeps the VM alive
/// across each call, and handles do not outlive the call.
#[derive(Clone, Copy)]
pub(crate) struct Kvm(NonNull<bindings::kvm>);

impl Kvm {
    /// A handle for `kvm`.
    ///
    /// # Safety
    ///
    /// `kvm` is a live realm VM, which stays alive for as long as the
    /// handle is used.
    pub(crate) unsafe fn from_raw(kvm: *mut bindings::kvm) -> Option<Kvm> {
        // INVARIANT: by this function's contract.
        NonNull::new(kvm).map(Kvm)
    }

    /// The raw VM, for the C glue.
    pub(crate) fn as_ptr(self) -> *mut bindings::kvm {
        self.0.as_ptr()
    }

    /// `kvm->arch.rme`, the backend's published per-VM state.  KVM only
    /// ever passes it through; this backend writes it atomically.
    pub(crate) fn state_slot(&self) -> &AtomicPtr<c_void> {
        // SAFETY: the VM is live (type invariant), so the field is valid
        // and aligned for a pointer; nothing accesses it but this backend,
        // and only atomically.
        unsafe { AtomicPtr::from_ptr(&raw mut (*self.0.as_ptr()).arch.rme) }
    }

    /// The IPA size the VMM asked for at `KVM_CREATE_VM`.
    pub(crate) fn ipa_bits(&self) -> u8 {
        // SAFETY: the VM is live (type invariant); the field is written
        // once, at creation, before any hook can see the VM.
        unsafe { (*self.0.as_ptr()).arch.realm_ipa_bits }
    }

    /// Whether the VM has an in-kernel vgic that is initialised.
    pub(crate) fn has_vgic(&self) -> bool {
        // SAFETY: the VM is live (type invariant); these are the fields
        // `irqchip_in_kernel()` and `vgic_initialized()` read.
        unsafe {
            let d = &(*self.0.as_ptr()).arch.vgic;
            d.in_kernel && d.initialized
        }
    }

    /// Copies the realm counters into the VM's binary stats.
    pub(crate) fn set_stats(&self, s: &VmStats) {
        // SAFETY: the VM is live (type invariant); KVM's stats reader
        // takes these words as they are (no lock), as for C counters.
        unsafe {
            let st = &mut (*self.0.as_ptr()).stat;
            st.realm_delegated_granules = s.delegated;
            st.realm_rtt_pages = s.rtt_pages;
            st.realm_data_pages = s.data_pages;
            st.realm_leaked_granules = s.leaked;
            st.realm_rmi_calls = s.rmi_calls;
        }
    }
}

/// The counters a realm VM exports in its binary stats.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct VmStats {
    pub(crate) delegated: u64,
    pub(crate) rtt_pages: u64,
    pub(crate) data_pages: u64,
    pub(crate) leaked: u64,
    pub(crate) rmi_calls: u64,
}

/// A vCPU of a realm VM that a hook was called for.
///
/// # Invariants
///
/// `self.0` points to a live `struct kvm_vcpu` of a realm VM for as long
/// as the handle is used, and the caller of the hook holds `vcpu->mutex`
/// (or the vCPU is being destroyed), so nothing else uses its `run` page
/// or its stats meanwhile.
pub(crate) struct Vcpu(NonNull<bindings::kvm_vcpu>);

impl Vcpu {
    /// A handle for `vcpu`.
    ///
    /// # Safety
    ///
    /// `vcpu` is a live vCPU of a realm VM, which the caller holds (its
    /// `vcpu->mutex`, or its destruction) for as long as the handle is
    /// used.
    pub(crate) unsafe fn from_raw(vcpu: *mut bindings::kvm_vcpu) -> Option<Vcpu> {
        // INVARIANT: by this function's contract.
        NonNull::new(vcpu).map(Vcpu)
    }

    /// The raw vCPU, for the C glue.
    pub(crate) fn as_ptr(&self) -> *mut bindings::kvm_vcpu {
        self.0.as_ptr()
    }

    /// Its VM.
    pub(crate) fn kvm(&self) -> Kvm {
        // SAFETY: the vCPU is live (type invariant), and so is its VM,
        // which outlives it: a realm VM, as the vCPU's handle requires.
        // INVARIANT: used only while this vCPU handle is.
        Kvm(unsafe { NonNull::new_unchecked((*self.0.as_ptr()).kvm) })
    }

    /// `vcpu->vcpu_idx`, the key of its REC.
    pub(crate) fn idx(&self) -> u32 {
        // SAFETY: the vCPU is live (type invariant); the index is set
        // before the vCPU is visible to userspace and never changes.
        let idx = unsafe { (*self.0.as_ptr()).vcpu_idx };
        // CAST: vCPU indexes are below KVM_MAX_VCPUS, non-negative.
        idx as u32
    }

    /// `vcpu->wants_to_run`: false for a `KVM_RUN` with `immediate_exit`.
    pub(crate) fn wants_to_run(&self) -> bool {
        // SAFETY: the vCPU is live and the caller holds it (invariant).
        unsafe { (*self.0.as_ptr()).wants_to_run }
    }

    /// The shared `struct kvm_run` page.
    pub(crate) fn run(&mut self) -> &mut bindings::kvm_run {
        // SAFETY: the vCPU is live and the caller holds `vcpu->mutex`
        // (type invariant), so this is the only reference to its `run`
        // page in the kernel; userspace may write it concurrently, which
        // is KVM's usual contract for this page (plain integers only).
        unsafe { &mut *(*self.0.as_ptr()).run }
    }

    /// The vCPU's stats.
    pub(crate) fn stat(&mut self) -> &mut bindings::kvm_vcpu_stat {
        // SAFETY: as for `run`: the caller holds the vCPU.
        unsafe { &mut (*self.0.as_ptr()).stat }
    }
}
