// SPDX-License-Identifier: GPL-2.0

//! Plain (non-confidential) VMs: KVM is there, and a normal VM still runs
//! guest code next to the confidential-VM backends.

use super::open_kvm;
use super::regs::REG_PC;
use crate::check;
use crate::kvm::{self, Vcpu, Vm};
use crate::tap::{Outcome, TestResult};

/// Guest physical address of the MMIO window the guest code writes to
/// (never backed by a memslot).
const MMIO_GPA: u64 = 0x1000_0000;

/// Guest RAM of the plain VMs.
#[cfg(target_arch = "aarch64")]
pub(crate) const RAM_GPA: u64 = 0x4000_0000;
/// Guest RAM of the plain VMs.
#[cfg(target_arch = "riscv64")]
pub(crate) const RAM_GPA: u64 = 0x8000_0000;

/// mov x0, #0x10000000; mov x1, #40; add x1, x1, #2; str x1, [x0];
/// add x1, x1, #1; str x1, [x0]; b .
#[cfg(target_arch = "aarch64")]
pub(crate) const GUEST: [u32; 7] = [
    0xd2a2_0000,
    0xd280_0501,
    0x9100_0821,
    0xf900_0001,
    0x9100_0421,
    0xf900_0001,
    0x1400_0000,
];

/// lui a0, 0x10000; li a1, 40; addi a1, a1, 2; sd a1, 0(a0);
/// addi a1, a1, 1; sd a1, 0(a0); j .
#[cfg(target_arch = "riscv64")]
pub(crate) const GUEST: [u32; 7] = [
    0x1000_0537,
    0x0280_0593,
    0x0025_8593,
    0x00b5_3023,
    0x0015_8593,
    0x00b5_3023,
    0x0000_006f,
];

/// `/dev/kvm` exists (KVM found EL2 or the H extension), speaks API 12 and
/// creates a default VM.
pub fn kvm_present() -> TestResult {
    let kvm = open_kvm()?;
    let v = kvm
        .api_version()
        .map_err(|e| format!("KVM_GET_API_VERSION: errno {e}"))?;
    check!(
        v == kvm::KVM_API_VERSION,
        "KVM_GET_API_VERSION = {v}, want {}",
        kvm::KVM_API_VERSION
    );
    #[cfg(target_arch = "riscv64")]
    if crate::cove::tvm_only() {
        // Only TVMs here: cove::plain_vm_refused_in_tvm_only_mode checks
        // the refusal.
        return Ok(Outcome::Pass);
    }
    kvm.create_vm(0)
        .map_err(|e| format!("KVM_CREATE_VM(0): errno {e}"))?;
    Ok(Outcome::Pass)
}

/// Runs `code` at `ram_gpa` in a plain VM and checks that it reaches the
/// two MMIO writes it makes (values 42 and 43, computed by the guest).
/// `setup` prepares the vCPU before its first run.
pub(crate) fn run_to_mmio(
    vm: &mut Vm,
    ram_gpa: u64,
    code: &[u32],
    setup: impl FnOnce(&Vm, &Vcpu) -> Result<(), String>,
) -> TestResult {
    let image: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    vm.add_memory(0, ram_gpa, 0x10000, &image)?;
    let vcpu = vm.create_vcpu(0)?;
    setup(vm, &vcpu)?;
    for want in [42u64, 43] {
        let reason = vcpu.run()?;
        check!(
            reason == kvm::KVM_EXIT_MMIO,
            "exit reason {reason}, want KVM_EXIT_MMIO ({})",
            kvm::KVM_EXIT_MMIO
        );
        let mmio = vcpu.mmio();
        check!(
            mmio.phys_addr == MMIO_GPA,
            "MMIO at {:#x}, want {MMIO_GPA:#x}",
            mmio.phys_addr
        );
        check!(
            mmio.is_write && mmio.len == 8,
            "MMIO write={} len={}, want an 8-byte write",
            mmio.is_write,
            mmio.len
        );
        let got = u64::from_le_bytes(mmio.data);
        check!(got == want, "guest wrote {got}, want {want}");
    }
    Ok(Outcome::Pass)
}

/// Sets up a plain vCPU to start at `RAM_GPA`: on arm64 with
/// KVM_ARM_VCPU_INIT of the preferred target first.
pub(crate) fn start_at_ram(vm: &Vm, vcpu: &Vcpu) -> Result<(), String> {
    #[cfg(target_arch = "aarch64")]
    {
        let init = vm
            .preferred_target()
            .map_err(|e| format!("KVM_ARM_PREFERRED_TARGET: errno {e}"))?;
        vcpu.init(&init)
            .map_err(|e| format!("KVM_ARM_VCPU_INIT: errno {e}"))?;
    }
    #[cfg(target_arch = "riscv64")]
    let _ = vm;
    vcpu.set_one_reg(REG_PC, RAM_GPA)
}

/// A non-confidential VM still runs guest code to an MMIO exit.
pub fn plain_vm_mmio() -> TestResult {
    #[cfg(target_arch = "riscv64")]
    if crate::cove::tvm_only() {
        return Ok(Outcome::Skip(crate::cove::TVM_ONLY_SKIP.into()));
    }
    let kvm = open_kvm()?;
    let mut vm = kvm
        .create_vm(0)
        .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
    run_to_mmio(&mut vm, RAM_GPA, &GUEST, start_at_ram)
}

/// The IPA-size capability answers: KVM runs at EL2 with stage 2.
#[cfg(target_arch = "aarch64")]
pub fn ipa_size_cap() -> TestResult {
    let kvm = open_kvm()?;
    let bits = kvm
        .check_extension(kvm::KVM_CAP_ARM_VM_IPA_SIZE)
        .map_err(|e| format!("errno {e}"))?;
    check!(bits >= 32, "KVM_CAP_ARM_VM_IPA_SIZE = {bits}, want >= 32");
    Ok(Outcome::Pass)
}

/// Unknown VM type bits are refused with EINVAL (stock riscv KVM
/// ignored the type).
#[cfg(target_arch = "riscv64")]
pub fn unknown_vm_type_refused() -> TestResult {
    let kvm = open_kvm()?;
    match kvm.create_vm(1 << 20) {
        Ok(_) => Err("KVM_CREATE_VM(1 << 20) succeeded".into()),
        Err(e) if e == libc::EINVAL => Ok(Outcome::Pass),
        Err(e) => Err(format!("KVM_CREATE_VM(1 << 20): errno {e}, want EINVAL")),
    }
}
