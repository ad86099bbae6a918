// SPDX-License-Identifier: GPL-2.0

//! A backend's per-VM state, published in a pointer field of
//! `struct kvm_arch` (`kvm->arch.rme`, `kvm->arch.cove`) and owned by the
//! VM (kernel build only).
//!
//! The state is a `Pin<KBox<T>>` handed over with
//! [`ForeignOwnable::into_foreign`] once ([`publish`]), borrowed for one
//! call at a time ([`with`]), and taken back once, when the VM has no
//! other users ([`take`]).  No reference to it outlives the closure of a
//! [`with`]: the borrow's lifetime is the call's, not one a caller picks.

use core::ffi::c_void;
use core::pin::Pin;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::prelude::*;
use kernel::types::ForeignOwnable;

/// Publishes `state` in `slot`, which must be empty.  If it is not, the
/// new state is dropped and `false` returned.
#[must_use = "a state that lost the race to the slot was dropped"]
pub(crate) fn publish<T>(slot: &AtomicPtr<c_void>, state: Pin<KBox<T>>) -> bool {
    let p = state.into_foreign();
    match slot.compare_exchange(
        core::ptr::null_mut(),
        p,
        Ordering::Release,
        Ordering::Relaxed,
    ) {
        Ok(_) => true,
        Err(_) => {
            // SAFETY: `p` came from `into_foreign` just above and was not
            // published, so this is its only owner.
            drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(p) });
            false
        }
    }
}

/// Runs `f` on the state published in `slot`, or returns `None` if there
/// is none.
///
/// # Safety
///
/// `slot` holds null or a pointer [`publish`] stored for a `T`, and
/// [`take`] cannot run on it before this call returns (the caller holds
/// a reference on the VM the slot belongs to).
pub(crate) unsafe fn with<T, R>(slot: &AtomicPtr<c_void>, f: impl FnOnce(&T) -> R) -> Option<R> {
    let p = slot.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: a pointer `publish` stored for a `T` (this function's
    // contract), not taken back before the borrow ends with this call.
    let state = unsafe { <Pin<KBox<T>> as ForeignOwnable>::borrow(p) };
    Some(f(&state))
}

/// Takes the state out of `slot`, once.
///
/// # Safety
///
/// `slot` holds null or a pointer [`publish`] stored for a `T`, and no
/// [`with`] on it is running or can start (the VM has no other users).
pub(crate) unsafe fn take<T>(slot: &AtomicPtr<c_void>) -> Option<Pin<KBox<T>>> {
    let p = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: a pointer `publish` stored for a `T`, cleared above so that
    // it is taken back once, with no borrow left (this function's
    // contract).
    (!p.is_null()).then(|| unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(p) })
}
