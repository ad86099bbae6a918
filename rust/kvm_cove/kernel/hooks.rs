// SPDX-License-Identifier: GPL-2.0

//! The entry points the riscv KVM hooks call (declared in
//! `asm/kvm_cove.h`).  Each is a thin shim: it wraps the raw pointers in
//! [`Kvm`]/[`Vcpu`] handles, calls the kernel layer, and turns its typed
//! error into a negative errno, here and nowhere else.

use core::ffi::{c_int, c_long, c_uint, c_ulong};

use kernel::bindings;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::glue::kvm::{Kvm, Vcpu};
use crate::glue::{run, vm};
use crate::logic::tvm::{MeasureRegion, TvmError};

/// `Ok` as 0, a failure as its negative errno.
fn errno_of(r: Result<(), TvmError>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => -e.errno(),
    }
}

/// `KVM_VM_TYPE_RISCV_COVE` (`arch/riscv/include/uapi/asm/kvm.h`).
pub(crate) const VM_TYPE_COVE: c_ulong = 1 << 9;

/// Checks a `KVM_CREATE_VM` type for riscv (from `kvm_arch_init_vm()`):
/// 0 for a normal VM or a TVM with a ready TSM, `-EINVAL` for unknown
/// type bits and `-EPERM` for a TVM when TVMs are disabled (no ready
/// TSM), as the CoVE RFC documents.  In TVM-only mode (`tvm_only`: the
/// kernel runs under a TSM, in VS mode) a plain VM is `-EINVAL`: there is
/// no H extension of our own to run it with.
#[no_mangle]
pub(crate) extern "C" fn kvm_cove_check_vm_type(vm_type: c_ulong, tvm_only: bool) -> c_int {
    if vm_type & !VM_TYPE_COVE != 0 {
        return -TvmError::Invalid.errno();
    }
    if vm_type & VM_TYPE_COVE == 0 {
        if tvm_only {
            kernel::pr_info_ratelimited!(
                "plain VM refused: this host runs under a TSM, only TVMs (KVM_VM_TYPE_RISCV_COVE)\n"
            );
            return -TvmError::Invalid.errno();
        }
        return 0;
    }
    if !crate::tsm_ready() {
        return -TvmError::NoTsm.errno();
    }
    0
}

/// Creates the TVM of a `KVM_VM_TYPE_RISCV_COVE` VM.
///
/// # Safety
///
/// `kvm` is the VM `kvm_arch_init_vm()` is creating, which nothing else
/// sees yet.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vm_init(kvm: *mut bindings::kvm) -> c_int {
    // SAFETY: live for this call (this function's contract).
    match unsafe { Kvm::from_raw(kvm) } {
        Some(kvm) => errno_of(vm::vm_init(kvm)),
        None => -TvmError::Invalid.errno(),
    }
}

/// VM destruction of a TVM.
///
/// # Safety
///
/// `kvm` is a VM being destroyed, with no other users.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vm_destroy(kvm: *mut bindings::kvm) {
    // SAFETY: live for this call (this function's contract).
    if let Some(kvm) = unsafe { Kvm::from_raw(kvm) } {
        vm::vm_destroy(kvm);
    }
}

/// A memslot change of a TVM (`enum kvm_mr_change` `change`).
///
/// # Safety
///
/// `kvm` is a live TVM; the caller holds `kvm->slots_lock`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_prepare_memslot(
    kvm: *mut bindings::kvm,
    change: u32,
    gpa: u64,
    size: u64,
) -> c_int {
    // SAFETY: live for this call (this function's contract).
    match unsafe { Kvm::from_raw(kvm) } {
        Some(kvm) => errno_of(vm::prepare_memslot(kvm, change, gpa, size)),
        None => -TvmError::Invalid.errno(),
    }
}

/// `KVM_CREATE_VCPU` of a TVM.
///
/// # Safety
///
/// `vcpu` is the vCPU `kvm_arch_vcpu_create()` is creating, of a live TVM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vcpu_create(vcpu: *mut bindings::kvm_vcpu) -> c_int {
    // SAFETY: live and not yet shared (this function's contract).
    match unsafe { Vcpu::from_raw(vcpu) } {
        Some(v) => errno_of(vm::vcpu_create(v.kvm(), v.id())),
        None => -TvmError::Invalid.errno(),
    }
}

/// `KVM_RUN` of a TVM vCPU.
///
/// # Safety
///
/// `vcpu` is a live vCPU of a TVM whose `vcpu->mutex` the caller holds.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vcpu_run(vcpu: *mut bindings::kvm_vcpu) -> c_int {
    // SAFETY: held by the caller for this call (this function's contract).
    match unsafe { Vcpu::from_raw(vcpu) } {
        Some(v) => run::vcpu_run(v),
        None => -TvmError::Invalid.errno(),
    }
}

/// `KVM_RISCV_COVE_MEASURE_REGION`, the one TVM VM ioctl (`kvm_arch_vm_ioctl()`
/// dispatches only it here, as `_ioctl`): `EINVAL` on a normal VM.
///
/// # Safety
///
/// `kvm` is a live VM; called from its process's ioctl, without locks.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_vm_ioctl(kvm: *mut bindings::kvm, _ioctl: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: live for this call (this function's contract).
    let Some(k) = (unsafe { Kvm::from_raw(kvm) }) else {
        return (-TvmError::Invalid.errno()).into();
    };
    if vm::with_state(k, |_| ()).is_none() {
        return (-TvmError::Invalid.errno()).into();
    }
    let mut buf = [0u8; MeasureRegion::SIZE];
    // CAST: user addresses fit in usize on 64-bit.
    let mut r = UserSlice::new(UserPtr::from_addr(arg as usize), buf.len()).reader();
    if r.read_slice(&mut buf).is_err() {
        return (-TvmError::Kernel(crate::cvm_fw::errno::EFAULT).errno()).into();
    }
    let region = match MeasureRegion::parse(&buf) {
        Ok(m) => m,
        Err(e) => return (-e.errno()).into(),
    };
    // SAFETY: `kvm->lock` of a live VM; released below.
    unsafe { bindings::mutex_lock(&raw mut (*kvm).lock) };
    let res = vm::measure_region(k, region);
    // SAFETY: taken above.
    unsafe { bindings::mutex_unlock(&raw mut (*kvm).lock) };
    errno_of(res).into()
}

/// An MSI to a TVM (from `kvm_set_msi()`): see [`vm::set_msi`].  0 or a
/// negative errno, as `KVM_SIGNAL_MSI` returns it.
///
/// # Safety
///
/// `kvm` is a live TVM (`kvm_is_cove()`), held by the caller.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_cove_set_msi(kvm: *mut bindings::kvm, addr: u64, data: u32) -> c_int {
    // SAFETY: live for this call (this function's contract).
    match unsafe { Kvm::from_raw(kvm) } {
        Some(kvm) => errno_of(vm::set_msi(kvm, addr, data)),
        None => -TvmError::Invalid.errno(),
    }
}
