// SPDX-License-Identifier: GPL-2.0

//! What a TVM needs of `struct kvm` and `struct kvm_vcpu` on riscv, on
//! the shared handles of `cvm_fw::kvm`.

use core::ffi::c_void;
use core::sync::atomic::AtomicPtr;

use kernel::bindings;

pub(crate) use crate::cvm_fw::kvm::{Kvm, Vcpu};

impl Kvm {
    /// `kvm->arch.cove`, the backend's published per-VM state.  KVM only
    /// reads it (`kvm_is_cove()`); this backend writes it atomically.
    pub(crate) fn state_slot(&self) -> &AtomicPtr<c_void> {
        // SAFETY: the VM is live (the handle's invariant), so the field is
        // valid and aligned for a pointer; this backend accesses it
        // atomically.
        unsafe { AtomicPtr::from_ptr(&raw mut (*self.as_ptr()).arch.cove) }
    }

    /// The userspace address of guest frame `gfn` in the VM's memslots, if
    /// the caller runs in the VM's own process.  Without a memslot it is
    /// one of KVM's error addresses (`KVM_HVA_ERR_BAD`, at `PAGE_OFFSET`),
    /// which the page pinning that follows refuses as a kernel address.
    pub(crate) fn user_address(&self, gfn: u64) -> Option<usize> {
        let kvm = self.as_ptr();
        // SAFETY: `kvm->srcu` of a live VM (the handle's invariant);
        // unlocked below.
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

impl Vcpu {
    /// `vcpu->vcpu_id`, the TSM's vCPU id (`vcpu_idx` is not assigned yet
    /// when the vCPU is created).
    pub(crate) fn id(&self) -> u64 {
        // SAFETY: the vCPU is live (the handle's invariant); the id never
        // changes.
        let id = unsafe { (*self.as_ptr()).vcpu_id };
        // CAST: ids are non-negative, below KVM_MAX_VCPU_IDS.
        id as u64
    }

    /// The entry point and `a1` userspace set, which finalize the TVM on
    /// its first run.
    pub(crate) fn entry(&self) -> (u64, u64) {
        // SAFETY: the vCPU is live and held by the caller (the handle's
        // invariant).
        let c = unsafe { &(*self.as_ptr()).arch.guest_context };
        // CAST: `unsigned long` is 64 bits on riscv64.
        (c.sepc as u64, c.a1 as u64)
    }
}
