// SPDX-License-Identifier: GPL-2.0

//! The RISC-V CoVE uAPI (the CoVE RFC's numbers, patches 0003 and 0006):
//! the TVM VM type and `KVM_RISCV_COVE_MEASURE_REGION`.
//!
//! Own definitions and ioctl wrapper: kvm-bindings is generated from
//! upstream headers, which have no CoVE uAPI, and kvm-ioctls has no such
//! ioctl.

use core::mem::{offset_of, size_of};

use crate::kvm::{ioctl_with, ior, Req, Vm};

/// `KVM_VM_TYPE_RISCV_COVE`: `KVM_CREATE_VM` type of a TVM.
pub const KVM_VM_TYPE_RISCV_COVE: u64 = 1 << 9;

/// `struct kvm_riscv_cove_measure_region` (`unsigned long` fields, 64
/// bits on riscv64).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KvmRiscvCoveMeasureRegion {
    pub userspace_addr: u64,
    pub gpa: u64,
    pub size: u64,
}

const _: () = {
    assert!(size_of::<KvmRiscvCoveMeasureRegion>() == 24);
    assert!(size_of::<libc::c_ulong>() == 8);
    assert!(offset_of!(KvmRiscvCoveMeasureRegion, userspace_addr) == 0);
    assert!(offset_of!(KvmRiscvCoveMeasureRegion, gpa) == 8);
    assert!(offset_of!(KvmRiscvCoveMeasureRegion, size) == 16);
};

/// `KVM_RISCV_COVE_MEASURE_REGION`: the RFC's number, `_IOR` direction
/// included (the kernel reads the struct).
pub const KVM_RISCV_COVE_MEASURE_REGION: Req<KvmRiscvCoveMeasureRegion> = ior(0xb5);
const _: () = assert!(KVM_RISCV_COVE_MEASURE_REGION.nr() == 0x8018_aeb5);

impl Vm {
    /// `KVM_RISCV_COVE_MEASURE_REGION`; the error is the errno.  The
    /// kernel reads `region`, and `region.size` bytes at
    /// `region.userspace_addr` (a bad address is its EFAULT, not ours).
    pub fn cove_measure_region(&self, region: &mut KvmRiscvCoveMeasureRegion) -> Result<i32, i32> {
        ioctl_with(self, KVM_RISCV_COVE_MEASURE_REGION, region)
    }
}

/// The kernel log so far, from `/dev/kmsg` without blocking.
pub fn read_kmsg() -> std::io::Result<Vec<u8>> {
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

/// Whether the kernel log has `needle`.
fn kmsg_has(needle: &str) -> bool {
    read_kmsg().is_ok_and(|log| String::from_utf8_lossy(&log).contains(needle))
}

/// Whether kvm_cove found a ready TSM at boot (its log line says so).
pub fn tsm_ready() -> bool {
    kmsg_has("TVMs enabled")
}

/// Whether KVM came up in TVM-only mode: the host runs under a TSM, in
/// VS mode, and refuses plain VMs (patch 0007's log line).
pub fn tvm_only() -> bool {
    kmsg_has("TVM-only mode")
}

/// The skip reason of plain-VM tests in TVM-only mode.
pub const TVM_ONLY_SKIP: &str =
    "this host runs under a TSM (KVM in TVM-only mode): plain VMs are refused";
