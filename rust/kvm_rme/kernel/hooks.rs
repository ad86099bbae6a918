// SPDX-License-Identifier: GPL-2.0

//! The entry points the arm64 KVM hooks call (declared in
//! `asm/kvm_host.h`).  Each is a thin shim: it wraps the raw pointers in
//! [`Kvm`]/[`Vcpu`] handles, calls the kernel layer, and turns its typed
//! error into a negative errno, here and nowhere else.

use core::ffi::{c_int, c_ulong};

use kernel::bindings;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::glue::kvm::{Kvm, Vcpu};
use crate::glue::{run, vm};
use crate::logic::realm::RealmError;
use crate::logic::vm::PsciComplete;

/// `Ok` as 0, a failure as its negative errno.
fn errno_of(r: Result<(), RealmError>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => -e.errno(),
    }
}

/// `KVM_ARM_VCPU_REC`, and the features a realm vCPU may not have.
const VCPU_REC: u32 = 8;
const VCPU_EL1_32BIT: u32 = 1;
const VCPU_HAS_EL2: u32 = 7;

/// `KVM_CHECK_EXTENSION(KVM_CAP_ARM_RME)`: 1 if realms can be created.
#[no_mangle]
pub(crate) extern "C" fn kvm_rme_supported() -> c_int {
    c_int::from(vm::ready())
}

/// `KVM_CREATE_VM` with `KVM_VM_TYPE_ARM_REALM` in `vm_type`: makes `kvm`
/// a realm VM of the requested IPA size, or returns `-EINVAL` (realms
/// disabled, bad IPA size, or protected + realm).
///
/// # Safety
///
/// `kvm` is the VM `kvm_arch_init_vm()` is initialising, which nothing
/// else sees yet.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_init_vm(kvm: *mut bindings::kvm, vm_type: c_ulong) -> c_int {
    match vm::check_vm_type(u64::from(vm_type)) {
        Ok(ipa_bits) => {
            // SAFETY: `kvm` is live and not yet shared (this function's
            // contract).
            unsafe {
                (*kvm).arch.is_realm = true;
                (*kvm).arch.realm_ipa_bits = ipa_bits;
            }
            0
        }
        Err(e) => -e.errno(),
    }
}

/// `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)`: sub-command `sub` with its argument
/// at user address `uarg`.
///
/// # Safety
///
/// `kvm` is a live realm VM and the caller holds `kvm->lock`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_enable_cap(kvm: *mut bindings::kvm, sub: u64, uarg: u64) -> c_int {
    // SAFETY: a live realm VM for this call (this function's contract).
    let Some(kvm) = (unsafe { Kvm::from_raw(kvm) }) else {
        return -RealmError::Invalid.errno();
    };
    errno_of(vm::enable_cap(kvm, sub, uarg))
}

/// `KVM_ARM_VCPU_INIT` of a realm vCPU.  AArch32 and nested
/// virtualisation are refused (`EINVAL`).  The REC bit is optional:
/// QEMU's `rme-guest` never sets it (its host-CPU probe initialises a
/// vCPU of a scratch realm VM that never runs, and its realm vCPUs get
/// their REC from `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)` alone), while
/// kvmtool sets it; either way the REC is made at FINALIZE.  The bit,
/// which stock KVM knows as `KVM_ARM_VCPU_HAS_EL2_E2H0`, is consumed here.
/// A vCPU may be initialised again (QEMU does at its start-up reset).
///
/// # Safety
///
/// `init` points to the `struct kvm_vcpu_init` being applied, which the
/// caller owns for the call.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_init(
    _vcpu: *mut bindings::kvm_vcpu,
    init: *mut bindings::kvm_vcpu_init,
) -> c_int {
    // SAFETY: `init` is valid and exclusively ours for the call (this
    // function's contract).
    let f = unsafe { &mut (*init).features[0] };
    if *f & ((1 << VCPU_HAS_EL2) | (1 << VCPU_EL1_32BIT)) != 0 {
        return -RealmError::Invalid.errno();
    }
    *f &= !(1 << VCPU_REC);
    0
}

/// `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)`: creates the vCPU's REC from
/// its MPIDR, PC and x0..x7 (`gprs`), runnable unless the vCPU starts
/// powered off.
///
/// # Safety
///
/// `vcpu` is a live realm vCPU, the caller holds `vcpu->mutex` and
/// `kvm->lock`, and `gprs` points to 8 readable `u64`.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_finalize(
    vcpu: *mut bindings::kvm_vcpu,
    mpidr: u64,
    pc: u64,
    gprs: *const u64,
    runnable: bool,
) -> c_int {
    // SAFETY: held by the caller for this call (this function's contract).
    let Some(v) = (unsafe { Vcpu::from_raw(vcpu) }) else {
        return -RealmError::Invalid.errno();
    };
    // SAFETY: `gprs` points to 8 readable u64 (this function's contract).
    let regs = unsafe { core::ptr::read(gprs.cast::<[u64; 8]>()) };
    errno_of(vm::vcpu_finalize(v.kvm(), v.idx(), mpidr, pc, regs, runnable))
}

/// vCPU destruction: destroys the vCPU's REC, if it has one.
///
/// # Safety
///
/// `vcpu` is a realm vCPU being destroyed, with its VM still live.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_destroy(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: the vCPU and its VM are live for this call, and nothing else
    // uses the vCPU (this function's contract).
    if let Some(v) = unsafe { Vcpu::from_raw(vcpu) } {
        vm::vcpu_destroy(v.kvm(), v.idx());
    }
}

/// VM destruction (after its vCPUs): tears the realm down.
///
/// # Safety
///
/// `kvm` is a realm VM being destroyed, with no other users.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vm_destroy(kvm: *mut bindings::kvm) {
    // SAFETY: live for this call (this function's contract).
    if let Some(kvm) = unsafe { Kvm::from_raw(kvm) } {
        vm::vm_destroy(kvm);
    }
}

/// `KVM_RUN` of a realm vCPU.
///
/// # Safety
///
/// `vcpu` is a live realm vCPU whose `vcpu->mutex` the caller holds.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_vcpu_run(vcpu: *mut bindings::kvm_vcpu) -> c_int {
    // SAFETY: held by the caller for this call (this function's contract).
    match unsafe { Vcpu::from_raw(vcpu) } {
        Some(v) => run::vcpu_run(v),
        None => -RealmError::Invalid.errno(),
    }
}

/// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`: the VMM completes the forwarded
/// `CPU_ON`/`AFFINITY_INFO` of this vCPU (`struct
/// kvm_arm_rmm_psci_complete` at user address `argp`).
///
/// # Safety
///
/// `vcpu` is a live realm vCPU whose `vcpu->mutex` the caller holds.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_psci_complete(
    vcpu: *mut bindings::kvm_vcpu,
    argp: *mut core::ffi::c_void,
) -> c_int {
    // SAFETY: held by the caller for this call (this function's contract).
    let Some(v) = (unsafe { Vcpu::from_raw(vcpu) }) else {
        return -RealmError::Invalid.errno();
    };
    let mut buf = [0u8; PsciComplete::SIZE];
    let mut r = UserSlice::new(UserPtr::from_ptr(argp), buf.len()).reader();
    if r.read_slice(&mut buf).is_err() {
        return -RealmError::Fault.errno();
    }
    errno_of(PsciComplete::parse(&buf).and_then(|req| run::psci_complete(&v, req)))
}

/// Memslot deletion or move over `[gpa, gpa + size)`.
///
/// # Safety
///
/// `kvm` is a live realm VM.
#[no_mangle]
pub(crate) unsafe extern "C" fn kvm_rme_unmap_range(kvm: *mut bindings::kvm, gpa: u64, size: u64) {
    // SAFETY: live for this call (this function's contract).
    if let Some(kvm) = unsafe { Kvm::from_raw(kvm) } {
        vm::unmap_range(kvm, gpa, size);
    }
}
