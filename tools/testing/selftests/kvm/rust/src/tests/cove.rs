// SPDX-License-Identifier: GPL-2.0

//! RISC-V CoVE: TVMs need a ready TSM, and TVM-only ioctls leave normal
//! VMs alone.

use super::open_kvm;
use super::plain::{run_to_mmio, start_at_ram, GUEST, RAM_GPA};
use crate::cove::{KvmRiscvCoveMeasureRegion, KVM_VM_TYPE_RISCV_COVE};
use crate::tap::{Outcome, TestResult};

/// Whether the kernel log says kvm_cove found a ready TSM.
fn tsm_ready() -> bool {
    let Ok(log) = read_kmsg() else {
        return false;
    };
    String::from_utf8_lossy(&log).contains("TVMs enabled")
}

/// The kernel log so far, from `/dev/kmsg` without blocking.
fn read_kmsg() -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    let mut out = Vec::new();
    let mut rec = [0u8; 8192];
    loop {
        match f.read(&mut rec) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&rec[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // A record overwritten while reading: go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

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
