// SPDX-License-Identifier: GPL-2.0

//! The selftests, one module per area, as tools/testing/selftests/kvm
//! has one file per area.  `src/bin/kvm_selftests.rs` lists them, in the
//! order they run.
//!
//! - [`plain`]: plain (non-confidential) VMs, both architectures.
//! - arm64 realms (Arm CCA): [`realm_uapi`] (capability, VM types,
//!   lifecycle, RECs, stats, PSCI_COMPLETE and host calls to the VMM),
//!   [`realm_run`] (payload runs, secondary vCPU, timer interrupt),
//!   [`realm_linux`] (the Linux realm guest VMM) and [`trace`] (the RMI
//!   error tracepoint), and [`vmm`] (a VMM users have, such as QEMU
//!   `rme-guest`, launching the Linux realm guest); `realm` and
//!   `realm_payloads` hold what they share.
//! - riscv64: [`cove`] (the CoVE uAPI, TVM-only mode), [`tvm`] (TVM
//!   payloads on a TSM) and [`cove_fuzz`].

pub mod plain;

mod fuzzing;

#[cfg(target_arch = "aarch64")]
pub mod fuzz;
#[cfg(target_arch = "aarch64")]
mod realm;
#[cfg(target_arch = "aarch64")]
pub mod realm_linux;
#[cfg(target_arch = "aarch64")]
mod realm_payloads;
#[cfg(target_arch = "aarch64")]
pub mod realm_run;
#[cfg(target_arch = "aarch64")]
pub mod realm_uapi;
#[cfg(target_arch = "aarch64")]
pub mod trace;
#[cfg(target_arch = "aarch64")]
pub mod vmm;

#[cfg(target_arch = "riscv64")]
pub mod cove;
#[cfg(target_arch = "riscv64")]
pub mod cove_fuzz;
#[cfg(target_arch = "riscv64")]
pub mod tvm;

use crate::kvm::Kvm;

/// `/dev/kvm`, or why it is missing.
pub(crate) fn open_kvm() -> Result<Kvm, String> {
    Kvm::open()?.ok_or_else(|| "/dev/kvm is missing: KVM did not initialise at EL2/HS".to_string())
}

/// ONE_REG ids of the vCPU registers the tests set.
#[cfg(target_arch = "aarch64")]
mod regs {
    use core::mem::offset_of;
    use kvm_bindings::{kvm_regs, KVM_REG_ARM64, KVM_REG_ARM_CORE, KVM_REG_SIZE_U64};

    /// A 64-bit core register at `offset` in `struct kvm_regs`.
    const fn core_reg(offset: usize) -> u64 {
        // CAST: offsets in kvm_regs are far below 2^32; ids count u32s.
        KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE as u64 | (offset / 4) as u64
    }

    /// `pc`.
    pub(crate) const REG_PC: u64 = core_reg(offset_of!(kvm_regs, regs.pc));
    /// `x0`.
    pub(crate) const REG_X0: u64 = core_reg(offset_of!(kvm_regs, regs.regs));

    const _: () = {
        assert!(REG_PC == 0x6030_0000_0010_0040);
        assert!(REG_X0 == 0x6030_0000_0010_0000);
    };
}

/// ONE_REG ids of the vCPU registers the tests set.
#[cfg(target_arch = "riscv64")]
mod regs {
    use core::mem::{offset_of, size_of};
    use kvm_bindings::{kvm_riscv_core, KVM_REG_RISCV, KVM_REG_RISCV_CORE, KVM_REG_SIZE_U64};

    /// `pc`: `KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE` and
    /// its index in `struct kvm_riscv_core`.
    // CAST: KVM_REG_RISCV is bit 63, bindgen made it i64; the index is small.
    pub(crate) const REG_PC: u64 = KVM_REG_RISCV as u64
        | KVM_REG_SIZE_U64
        | KVM_REG_RISCV_CORE as u64
        | (offset_of!(kvm_riscv_core, regs.pc) / size_of::<u64>()) as u64;
    /// `a1`: the device tree's address for a Linux guest.
    // CAST: as for REG_PC.
    pub(crate) const REG_A1: u64 = KVM_REG_RISCV as u64
        | KVM_REG_SIZE_U64
        | KVM_REG_RISCV_CORE as u64
        | (offset_of!(kvm_riscv_core, regs.a1) / size_of::<u64>()) as u64;

    const _: () = assert!(REG_PC == 0x8030_0000_0200_0000);
    const _: () = assert!(REG_A1 == 0x8030_0000_0200_000b);
}
