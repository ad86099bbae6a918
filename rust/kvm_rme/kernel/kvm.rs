// SPDX-License-Identifier: GPL-2.0

//! What a realm needs of `struct kvm` and `struct kvm_vcpu` on arm64,
//! on the shared handles of `cvm_fw::kvm`.

use core::ffi::c_void;
use core::sync::atomic::AtomicPtr;

pub(crate) use crate::cvm_fw::kvm::{Kvm, Vcpu};

impl Kvm {
    /// `kvm->arch.rme`, the backend's published per-VM state.  KVM only
    /// ever passes it through; this backend writes it atomically.
    pub(crate) fn state_slot(&self) -> &AtomicPtr<c_void> {
        // SAFETY: the VM is live (the handle's invariant), so the field is
        // valid and aligned for a pointer; nothing accesses it but this
        // backend, and only atomically.
        unsafe { AtomicPtr::from_ptr(&raw mut (*self.as_ptr()).arch.rme) }
    }

    /// The IPA size the VMM asked for at `KVM_CREATE_VM`.
    pub(crate) fn ipa_bits(&self) -> u8 {
        // SAFETY: the VM is live (the handle's invariant); the field is
        // written once, at creation, before any hook can see the VM.
        unsafe { (*self.as_ptr()).arch.realm_ipa_bits }
    }

    /// Whether the VM has an in-kernel vgic that is initialised.
    pub(crate) fn has_vgic(&self) -> bool {
        // SAFETY: the VM is live (the handle's invariant); these are the
        // fields `irqchip_in_kernel()` and `vgic_initialized()` read.
        unsafe {
            let d = &(*self.as_ptr()).arch.vgic;
            d.in_kernel && d.initialized
        }
    }

    /// Copies the realm counters into the VM's binary stats.
    pub(crate) fn set_stats(&self, s: &VmStats) {
        // SAFETY: the VM is live (the handle's invariant); KVM's stats
        // reader takes these words as they are (no lock), as for C
        // counters.
        unsafe {
            let st = &mut (*self.as_ptr()).stat;
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

impl Vcpu {
    /// `vcpu->vcpu_idx`, the key of its REC.
    pub(crate) fn idx(&self) -> u32 {
        // SAFETY: the vCPU is live (the handle's invariant); the index is
        // set before the vCPU is visible to userspace and never changes.
        let idx = unsafe { (*self.as_ptr()).vcpu_idx };
        // CAST: vCPU indexes are below KVM_MAX_VCPUS, non-negative.
        idx as u32
    }
}
