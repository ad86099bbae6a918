// SPDX-License-Identifier: GPL-2.0

//! What the realm tests share: creating a realm VM, setting one up with a
//! payload and RECs, and running its vCPUs to the exits they expect.

use crate::kvm::{self, Kvm, Vcpu, Vm};
use crate::rme::{
    ArmRmeInitRipas, ArmRmePopulateRealm, RmeCmd, KVM_ARM_RME_POPULATE_FLAGS_MEASURE,
    KVM_ARM_VCPU_REC, KVM_CAP_ARM_RME, KVM_VM_TYPE_ARM_REALM,
};

pub(crate) use super::regs::{REG_PC, REG_X0};

/// Why the realm tests skip under TF-A's TRP.
pub(crate) const NO_REALMS: &str =
    "KVM_CAP_ARM_RME is 0: no RMM speaking RMI 1.0 or 2.0 (TF-A's TRP cannot create realms)";

/// Realm RAM of the payload tests: the payload runs from its start.
pub(crate) const PAYLOAD_RAM: u64 = 0x8000_0000;
pub(crate) const PAYLOAD_RAM_SIZE: usize = 64 << 10;
/// The payloads report through MMIO writes to the shared alias of this
/// address (exits report it with the shared bit clear).
pub(crate) const PAYLOAD_MMIO: u64 = 0x0a00_0000;

/// The in-kernel GICv3 of the realms that have one.
pub(crate) const GICD: u64 = 0x0800_0000;
pub(crate) const GICR: u64 = 0x080a_0000;

/// PSCI function IDs the VMM takes over.
pub(crate) const PSCI_CPU_ON: u32 = 0xC400_0003;
pub(crate) const PSCI_AFFINITY_INFO: u32 = 0xC400_0004;

/// `KVM_ARM_VCPU_INIT` feature bits of a realm vCPU.
pub(crate) const REC: u32 = 1 << KVM_ARM_VCPU_REC;
/// `KVM_ARM_VCPU_POWER_OFF`.
pub(crate) const POWER_OFF: u32 = 1 << kvm_bindings::KVM_ARM_VCPU_POWER_OFF;

/// A realm VM with a 40-bit IPA space, or `None` if realms are not
/// offered.
pub(crate) fn realm_vm(kvm: &Kvm) -> Result<Option<Vm>, String> {
    let cap = kvm
        .check_extension(KVM_CAP_ARM_RME)
        .map_err(|e| format!("KVM_CHECK_EXTENSION(KVM_CAP_ARM_RME): errno {e}"))?;
    if cap == 0 {
        return Ok(None);
    }
    kvm.create_vm(KVM_VM_TYPE_ARM_REALM | 40)
        .map(Some)
        .map_err(|e| format!("KVM_CREATE_VM(realm, 40 bits): errno {e}"))
}

/// `INIT_RIPAS_REALM` over `[base, base + size)`: the errno, 0 on success.
pub(crate) fn init_ripas(vm: &Vm, base: u64, size: u64) -> i32 {
    vm.rme(RmeCmd::InitRipasRealm(&ArmRmeInitRipas::new(base, size)))
}

/// `POPULATE_REALM` of `[base, base + size)`, measured: the errno, 0 on
/// success.
pub(crate) fn populate(vm: &Vm, base: u64, size: u64) -> i32 {
    let p = ArmRmePopulateRealm::new(base, size, KVM_ARM_RME_POPULATE_FLAGS_MEASURE);
    vm.rme(RmeCmd::PopulateRealm(&p))
}

/// Initializes a realm vCPU with `features`; returns the errno (0 on
/// success).
pub(crate) fn init_vcpu(vm: &Vm, vcpu: &Vcpu, features: u32) -> i32 {
    let mut init = match vm.preferred_target() {
        Ok(init) => init,
        Err(e) => return e,
    };
    init.features[0] = features;
    vcpu.init(&init).err().unwrap_or(0)
}

/// `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)`: creates the REC; returns the
/// errno (0 on success).
pub(crate) fn finalize_rec(vcpu: &Vcpu) -> i32 {
    // CAST: 8 fits in i32.
    vcpu.finalize(KVM_ARM_VCPU_REC as i32).err().unwrap_or(0)
}

/// `Err(what)` unless `ok`.
pub(crate) fn check_ok(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// A realm with `code` at PAYLOAD_RAM (one page populated and
/// measured), the SMCCC functions `[fwd.0, fwd.0 + fwd.1)` forwarded
/// to userspace, and `vcpus` RECs (the ones after the first off),
/// activated.
pub(crate) fn realm_with(
    vm: &mut Vm,
    code: &[u8],
    fwd: Option<(u32, u32)>,
    vcpus: u64,
) -> Result<Vec<Vcpu>, String> {
    vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, code)?;
    if let Some((base, nr)) = fwd {
        vm.forward_smccc(base, nr)?;
    }
    check_ok(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed")?;
    let r = init_ripas(vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64);
    check_ok(r == 0, &format!("INIT_RIPAS: errno {r}"))?;
    let r = populate(vm, PAYLOAD_RAM, 0x1000);
    check_ok(r == 0, &format!("POPULATE: errno {r}"))?;
    let mut out = Vec::new();
    for i in 0..vcpus {
        let v = vm.create_vcpu(i)?;
        let off = if i == 0 { 0 } else { POWER_OFF };
        check_ok(
            init_vcpu(vm, &v, REC | off) == 0,
            &format!("vCPU {i} init failed"),
        )?;
        if i == 0 {
            v.set_one_reg(REG_PC, PAYLOAD_RAM)?;
        }
        check_ok(
            finalize_rec(&v) == 0,
            &format!("FINALIZE(REC) vCPU {i} failed"),
        )?;
        out.push(v);
    }
    check_ok(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed")?;
    Ok(out)
}

/// KVM_RUN of `v` ends in an MMIO write at PAYLOAD_MMIO + `off`: its
/// value.
pub(crate) fn mmio_at(v: &Vcpu, what: &str, off: u64) -> Result<u64, String> {
    let (e, reason) = v.run_raw();
    let m = v.mmio();
    if e != 0 || reason != kvm::KVM_EXIT_MMIO || m.phys_addr != PAYLOAD_MMIO + off {
        return Err(format!(
            "{what}: KVM_RUN errno {e}, exit {reason}, MMIO at {:#x}; want MMIO at {:#x}",
            m.phys_addr,
            PAYLOAD_MMIO + off
        ));
    }
    Ok(u64::from_le_bytes(m.data))
}

/// KVM_RUN of `v` ends in KVM_EXIT_HYPERCALL: (nr, args, flags).
pub(crate) fn hypercall_exit(v: &Vcpu, what: &str) -> Result<(u64, [u64; 6], u64), String> {
    let (e, reason) = v.run_raw();
    if e != 0 || reason != kvm::KVM_EXIT_HYPERCALL {
        return Err(format!(
            "{what}: KVM_RUN errno {e}, exit {reason}; want KVM_EXIT_HYPERCALL"
        ));
    }
    Ok(v.hypercall())
}

extern "C" fn on_alarm(_: libc::c_int) {}

/// Installs a SIGALRM handler that does nothing, without SA_RESTART, so
/// that the signal interrupts a `KVM_RUN` (EINTR) on the thread it hits.
pub(crate) fn install_alarm() -> Result<(), String> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the
    // handler does nothing.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
        if libc::sigaction(libc::SIGALRM, &sa, core::ptr::null_mut()) != 0 {
            return Err("sigaction".into());
        }
    }
    Ok(())
}

/// KVM_RUN with a watchdog: a realm that never exits to userspace is
/// stopped by SIGALRM after `ms` milliseconds (EINTR).  The timer is the
/// process's, so only one thread at a time may use this.
pub(crate) fn run_bounded(vcpu: &Vcpu, ms: i64) -> Result<(i32, u32), String> {
    install_alarm()?;
    let arm = |us: i64| libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: us / 1_000_000,
            tv_usec: us % 1_000_000,
        },
    };
    // SAFETY: plain syscalls with valid timer values.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &arm(ms * 1000), core::ptr::null_mut()) };
    let r = vcpu.run_raw();
    // SAFETY: as above; disarms the timer.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &arm(0), core::ptr::null_mut()) };
    Ok(r)
}
