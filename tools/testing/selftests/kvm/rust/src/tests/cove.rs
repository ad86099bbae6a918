// SPDX-License-Identifier: GPL-2.0

//! RISC-V CoVE: TVMs need a ready TSM, and TVM-only ioctls leave normal
//! VMs alone.

use super::open_kvm;
use super::plain::{run_to_mmio, start_at_ram, GUEST, RAM_GPA};
use crate::cove::{tsm_ready, tvm_only, KvmRiscvCoveMeasureRegion, KVM_VM_TYPE_RISCV_COVE};
use crate::tap::{Outcome, TestResult};

/// Without a ready TSM, a TVM is refused with EPERM; with one (the
/// kernel log says so), it is created.
pub fn cove_vm_type_refused_without_tsm() -> TestResult {
    let kvm = open_kvm()?;
    let ready = tsm_ready();
    match (kvm.create_vm(KVM_VM_TYPE_RISCV_COVE), ready) {
        (Ok(_), true) => Ok(Outcome::Skip(
            "a TSM is present: TVMs are enabled, nothing to refuse".into(),
        )),
        (Ok(_), false) => {
            Err("KVM_CREATE_VM(KVM_VM_TYPE_RISCV_COVE) created a VM without a ready TSM".into())
        }
        (Err(e), false) if e == libc::EPERM => Ok(Outcome::Pass),
        (Err(e), _) => Err(format!(
            "KVM_CREATE_VM(KVM_VM_TYPE_RISCV_COVE): errno {e} (TSM ready: {ready})"
        )),
    }
}

/// `KVM_RISCV_COVE_MEASURE_REGION` is for TVMs only: EINVAL on a
/// normal VM, which stays usable.
pub fn cove_measure_region_needs_a_tvm() -> TestResult {
    if tvm_only() {
        return Ok(Outcome::Skip(crate::cove::TVM_ONLY_SKIP.into()));
    }
    let kvm = open_kvm()?;
    let mut vm = kvm
        .create_vm(0)
        .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
    let page = vec![0u8; 4096];
    let mut mr = KvmRiscvCoveMeasureRegion {
        userspace_addr: page.as_ptr() as u64,
        gpa: RAM_GPA,
        size: 4096,
    };
    match vm.cove_measure_region(&mut mr) {
        Ok(_) => return Err("MEASURE_REGION succeeded on a normal VM".into()),
        Err(e) if e == libc::EINVAL => {}
        Err(e) => {
            return Err(format!(
                "MEASURE_REGION on a normal VM: errno {e}, want EINVAL"
            ))
        }
    }
    run_to_mmio(&mut vm, RAM_GPA, &GUEST, start_at_ram)
}

/// In TVM-only mode (the host runs under a TSM) a plain VM is refused
/// with EINVAL, and a TVM is not.
pub fn plain_vm_refused_in_tvm_only_mode() -> TestResult {
    if !tvm_only() {
        return Ok(Outcome::Skip(
            "KVM has the H extension here (no TSM underneath): plain VMs run".into(),
        ));
    }
    let kvm = open_kvm()?;
    match kvm.create_vm(0) {
        Ok(_) => return Err("KVM_CREATE_VM(0) succeeded in TVM-only mode".into()),
        Err(e) if e == libc::EINVAL => {}
        Err(e) => return Err(format!("KVM_CREATE_VM(0): errno {e}, want EINVAL")),
    }
    if tsm_ready() {
        kvm.create_vm(KVM_VM_TYPE_RISCV_COVE)
            .map_err(|e| format!("KVM_CREATE_VM(KVM_VM_TYPE_RISCV_COVE): errno {e}"))?;
    }
    Ok(Outcome::Pass)
}
