// SPDX-License-Identifier: GPL-2.0

//! KVM selftests for the confidential-VM host backends (kselftest TAP).
//!
//! Run on an arm64 or riscv64 host kernel; each architecture has its own
//! list.  Tests that need a facility the running system lacks say SKIP
//! with the reason instead of passing.

use std::os::fd::AsRawFd;

use confvm_kvm_selftests::check;
use confvm_kvm_selftests::kvm::{self, Kvm, Vm};
use confvm_kvm_selftests::tap::{self, Outcome, Test, TestResult};

/// Guest physical address of the MMIO window the guest code writes to
/// (never backed by a memslot).
const MMIO_GPA: u64 = 0x1000_0000;

fn open_kvm() -> Result<Kvm, String> {
    Kvm::open()?.ok_or_else(|| "/dev/kvm is missing: KVM did not initialise at EL2/HS".to_string())
}

/// `/dev/kvm` exists (KVM found EL2 or the H extension), speaks API 12 and
/// creates a default VM.
fn kvm_present() -> TestResult {
    let kvm = open_kvm()?;
    let v = kvm
        .api_version()
        .map_err(|e| format!("KVM_GET_API_VERSION: errno {e}"))?;
    check!(
        v == kvm::KVM_API_VERSION,
        "KVM_GET_API_VERSION = {v}, want {}",
        kvm::KVM_API_VERSION
    );
    kvm.create_vm(0)
        .map_err(|e| format!("KVM_CREATE_VM(0): errno {e}"))?;
    Ok(Outcome::Pass)
}

/// Runs `code` at `entry` in a plain VM and checks that it reaches the two
/// MMIO writes it makes (values 42 and 43, computed by the guest).
fn run_to_mmio(
    vm: &mut Vm,
    ram_gpa: u64,
    code: &[u32],
    setup: impl FnOnce(&kvm::Vcpu) -> Result<(), String>,
) -> TestResult {
    let image: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    vm.add_memory(0, ram_gpa, 0x10000, &image)?;
    let vcpu = vm.create_vcpu(0)?;
    setup(&vcpu)?;
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

#[cfg(target_arch = "aarch64")]
mod arch {
    use super::*;

    /// Defines `fn $name() -> &'static [u8]`: the machine code a
    /// `global_asm!` payload assembled between symbols `$start` and `$end`.
    macro_rules! payload_fn {
        ($name:ident, $start:ident, $end:ident, $doc:literal) => {
            #[doc = $doc]
            fn $name() -> &'static [u8] {
                extern "C" {
                    static $start: u8;
                    static $end: u8;
                }
                // SAFETY: both symbols delimit the payload in one section.
                unsafe { asm_bytes(core::ptr::addr_of!($start), core::ptr::addr_of!($end)) }
            }
        };
    }

    /// `KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | pc`.
    const REG_PC: u64 = 0x6030_0000_0010_0040;
    const RAM_GPA: u64 = 0x4000_0000;

    /// mov x0, #0x10000000; mov x1, #40; add x1, x1, #2; str x1, [x0];
    /// add x1, x1, #1; str x1, [x0]; b .
    const GUEST: [u32; 7] = [
        0xd2a2_0000,
        0xd280_0501,
        0x9100_0821,
        0xf900_0001,
        0x9100_0421,
        0xf900_0001,
        0x1400_0000,
    ];

    /// A non-confidential VM still runs guest code to an MMIO exit.
    fn plain_vm_mmio() -> TestResult {
        let kvm = open_kvm()?;
        let mut vm = kvm
            .create_vm(0)
            .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
        run_to_mmio(&mut vm, RAM_GPA, &GUEST, |vcpu| {
            let mut init = kvm::VcpuInit::default();
            kvm::ioctl_ptr(vm_fd(&kvm)?, kvm::KVM_ARM_PREFERRED_TARGET, &mut init)
                .map_err(|e| format!("KVM_ARM_PREFERRED_TARGET: errno {e}"))?;
            kvm::ioctl_ptr(vcpu.fd(), kvm::KVM_ARM_VCPU_INIT, &mut init)
                .map_err(|e| format!("KVM_ARM_VCPU_INIT: errno {e}"))?;
            vcpu.set_one_reg(REG_PC, RAM_GPA)
        })
    }

    /// KVM_ARM_PREFERRED_TARGET is a VM ioctl: use a scratch VM for it.
    fn vm_fd(kvm: &Kvm) -> Result<i32, String> {
        let vm = kvm
            .create_vm(0)
            .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
        let fd = vm.fd();
        // The scratch VM lives until the process exits; it is tiny.
        core::mem::forget(vm);
        Ok(fd)
    }

    /// The IPA-size capability answers: KVM runs at EL2 with stage 2.
    fn ipa_size_cap() -> TestResult {
        let kvm = open_kvm()?;
        let bits = kvm
            .check_extension(kvm::KVM_CAP_ARM_VM_IPA_SIZE)
            .map_err(|e| format!("errno {e}"))?;
        check!(bits >= 32, "KVM_CAP_ARM_VM_IPA_SIZE = {bits}, want >= 32");
        Ok(Outcome::Pass)
    }

    /// KVM_CHECK_EXTENSION(KVM_CAP_ARM_RME) answers.
    fn rme_cap() -> TestResult {
        let kvm = open_kvm()?;
        let v = kvm
            .check_extension(kvm::KVM_CAP_ARM_RME)
            .map_err(|e| format!("errno {e}"))?;
        if v == 0 {
            return Ok(Outcome::Skip(
                "KVM_CAP_ARM_RME is 0: realms are not offered by this kernel".into(),
            ));
        }
        check!(v == 1, "KVM_CAP_ARM_RME = {v}, want 0 or 1");
        Ok(Outcome::Pass)
    }

    /// Without realm support, a realm VM type is refused with EINVAL.
    fn realm_type_refused_without_cap() -> TestResult {
        let kvm = open_kvm()?;
        let cap = kvm
            .check_extension(kvm::KVM_CAP_ARM_RME)
            .map_err(|e| format!("errno {e}"))?;
        if cap != 0 {
            return Ok(Outcome::Skip(
                "realm support is offered; covered by the realm tests".into(),
            ));
        }
        match kvm.create_vm(kvm::KVM_VM_TYPE_ARM_REALM) {
            Ok(_) => {
                Err("KVM_CREATE_VM(KVM_VM_TYPE_ARM_REALM) succeeded without KVM_CAP_ARM_RME".into())
            }
            Err(e) if e == libc::EINVAL => Ok(Outcome::Pass),
            Err(e) => Err(format!(
                "KVM_CREATE_VM(KVM_VM_TYPE_ARM_REALM): errno {e}, want EINVAL"
            )),
        }
    }

    /// Why the realm tests skip under TF-A's TRP.
    const NO_REALMS: &str =
        "KVM_CAP_ARM_RME is 0: no RMM speaking RMI 1.0 (TF-A's TRP cannot create realms)";

    /// A realm VM with a 40-bit IPA space, or `None` if realms are not
    /// offered.
    fn realm_vm(kvm: &Kvm) -> Result<Option<Vm>, String> {
        let cap = kvm
            .check_extension(kvm::KVM_CAP_ARM_RME)
            .map_err(|e| format!("KVM_CHECK_EXTENSION(KVM_CAP_ARM_RME): errno {e}"))?;
        if cap == 0 {
            return Ok(None);
        }
        kvm.create_vm(kvm::KVM_VM_TYPE_ARM_REALM | 40)
            .map(Some)
            .map_err(|e| format!("KVM_CREATE_VM(realm, 40 bits): errno {e}"))
    }

    /// `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` sub-command with an argument
    /// buffer; returns the errno (0 on success).
    fn rme(vm: &Vm, sub: u64, arg: &[u8]) -> i32 {
        let cap = kvm::KVM_CAP_ARM_RME as u32;
        match vm.enable_cap(cap, sub, arg.as_ptr() as u64) {
            Ok(_) => 0,
            Err(e) => e,
        }
    }

    fn config(cfg: u32, word: u32) -> [u8; 260] {
        let mut b = [0u8; 260];
        b[0..4].copy_from_slice(&cfg.to_le_bytes());
        b[4..8].copy_from_slice(&word.to_le_bytes());
        b
    }

    fn range(base: u64, size: u64, reserved: u64) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&base.to_le_bytes());
        b[8..16].copy_from_slice(&size.to_le_bytes());
        b[24..32].copy_from_slice(&reserved.to_le_bytes());
        b
    }

    /// `struct arm_rme_populate_realm` with `flags`.
    fn populate(base: u64, size: u64, flags: u32) -> [u8; 32] {
        let mut b = range(base, size, 0);
        b[16..20].copy_from_slice(&flags.to_le_bytes());
        b
    }

    // The realm payload: RSI calls, results reported by MMIO writes to the
    // shared alias of PAYLOAD_MMIO, a RIPAS change to EMPTY, SYSTEM_OFF.
    // Runs at EL1 with the MMU off from the start of realm RAM.
    core::arch::global_asm!(
        ".pushsection .rodata.realm_payload, \"a\"",
        ".balign 4",
        ".global confvm_realm_payload_start",
        ".global confvm_realm_payload_end",
        "confvm_realm_payload_start:",
        "adr x21, confvm_realm_payload_start",
        // x20 = shared alias (bit 39 of a 40-bit IPA) of 0x0a000000.
        "movz x20, #0x0a00, lsl #16",
        "orr x20, x20, #0x8000000000",
        // RSI_VERSION(1.0): status, lower revision.
        "movz x0, #0x0190",
        "movk x0, #0xc400, lsl #16",
        "movz x1, #1, lsl #16",
        "smc #0",
        "str x0, [x20]",
        "str x1, [x20, #8]",
        // RSI_REALM_CONFIG into RAM + 0x2000 (not populated: a fault
        // the host serves from guest_memfd): status, ipa_width.
        "movz x0, #0x0196",
        "movk x0, #0xc400, lsl #16",
        "add x1, x21, #0x2000",
        "smc #0",
        "str x0, [x20, #16]",
        "add x1, x21, #0x2000",
        "ldr x2, [x1]",
        "str x2, [x20, #24]",
        // RSI_IPA_STATE_SET [RAM + 0x8000, RAM + 0xa000) to EMPTY, twice
        // (the test refuses the first): status, next address, response.
        "movz x0, #0x0197",
        "movk x0, #0xc400, lsl #16",
        "add x1, x21, #0x8000",
        "add x2, x21, #0xa000",
        "mov x3, #0",
        "mov x4, #0",
        "smc #0",
        "str x0, [x20, #32]",
        "str x1, [x20, #40]",
        "str x2, [x20, #48]",
        "movz x0, #0x0197",
        "movk x0, #0xc400, lsl #16",
        "add x1, x21, #0x8000",
        "add x2, x21, #0xa000",
        "mov x3, #0",
        "mov x4, #0",
        "smc #0",
        "str x0, [x20, #56]",
        "str x1, [x20, #64]",
        "str x2, [x20, #72]",
        // Through the shared alias of RAM + 0xc000 (the VMM's own page):
        // write a marker, read it back, report it.
        "add x1, x21, #0xc000",
        "orr x1, x1, #0x8000000000",
        "movz x3, #0xf00d",
        "movk x3, #0x5eed, lsl #16",
        "str x3, [x1]",
        "ldr x4, [x1]",
        "str x4, [x20, #80]",
        // Ring a doorbell the test backs with an ioeventfd: handled in
        // the kernel, no exit to userspace.
        "str x4, [x20, #0x200]",
        // PSCI SYSTEM_OFF.
        "movz x0, #0x0008",
        "movk x0, #0x8400, lsl #16",
        "smc #0",
        "1: b 1b",
        "confvm_realm_payload_end:",
        ".popsection",
    );

    payload_fn!(
        payload,
        confvm_realm_payload_start,
        confvm_realm_payload_end,
        "The payload of `realm_run`."
    );

    /// The bytes assembled between two symbols.
    ///
    /// # Safety
    ///
    /// `start` and `end` are in the same section, `end` after `start`.
    unsafe fn asm_bytes(start: *const u8, end: *const u8) -> &'static [u8] {
        // SAFETY: by the function's contract the range is one readable,
        // immutable object that lives for the whole program.
        unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
    }

    // Two-vCPU payload: vCPU 0 starts vCPU 1 with PSCI CPU_ON, asks
    // AFFINITY_INFO about it, and powers off; vCPU 1 reports its context
    // ID and MPIDR.  Results go to MMIO offsets 0x100.. of PAYLOAD_MMIO.
    core::arch::global_asm!(
        ".pushsection .rodata.realm_smp_payload, \"a\"",
        ".balign 4",
        ".global confvm_realm_smp_start",
        ".global confvm_realm_smp_end",
        "confvm_realm_smp_start:",
        "movz x20, #0x0a00, lsl #16",
        "orr x20, x20, #0x8000000000",
        // CPU_ON(1, secondary, 0x77).
        "movz x0, #0x0003",
        "movk x0, #0xc400, lsl #16",
        "mov x1, #1",
        "adr x2, 2f",
        "mov x3, #0x77",
        "smc #0",
        "str x0, [x20, #0x100]",
        // AFFINITY_INFO(1, 0).
        "movz x0, #0x0004",
        "movk x0, #0xc400, lsl #16",
        "mov x1, #1",
        "mov x2, #0",
        "smc #0",
        "str x0, [x20, #0x108]",
        // SYSTEM_OFF.
        "movz x0, #0x0008",
        "movk x0, #0x8400, lsl #16",
        "smc #0",
        "1: b 1b",
        // vCPU 1: x0 holds the context ID.
        "2: movz x20, #0x0a00, lsl #16",
        "orr x20, x20, #0x8000000000",
        "str x0, [x20, #0x110]",
        "mrs x1, mpidr_el1",
        "str x1, [x20, #0x118]",
        "3: b 3b",
        "confvm_realm_smp_end:",
        ".popsection",
    );

    payload_fn!(
        smp_payload,
        confvm_realm_smp_start,
        confvm_realm_smp_end,
        "The two-vCPU payload."
    );

    extern "C" fn on_alarm(_: libc::c_int) {}

    /// Two realm vCPUs: the secondary's REC is not runnable until the
    /// boot vCPU's PSCI CPU_ON, which the kernel completes towards it
    /// (RMI_PSCI_COMPLETE); until then KVM_RUN on it waits, and a signal
    /// ends the wait with EINTR (needs an RMM speaking RMI 1.0).
    fn realm_secondary_vcpu() -> TestResult {
        let kvm = open_kvm()?;
        let Some(mut vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        // vCPU 1's REC is created not runnable (POWER_OFF).
        let v = realm_with(&mut vm, smp_payload(), None, 2)?;
        let (v0, v1) = (&v[0], &v[1]);

        let (e, reason) = run_bounded(&v1, 200)?;
        check!(
            e == libc::EINTR && reason == kvm::KVM_EXIT_INTR,
            "vCPU 1 before CPU_ON: KVM_RUN errno {e}, exit {reason}; want EINTR, KVM_EXIT_INTR"
        );
        let r = mmio_at(v0, "CPU_ON", 0x100)?;
        check!(r == 0, "PSCI CPU_ON returned {r:#x}, want SUCCESS");
        let ctx = mmio_at(v1, "vCPU 1 context ID", 0x110)?;
        check!(ctx == 0x77, "vCPU 1 context ID {ctx:#x}, want 0x77");
        let mpidr = mmio_at(v1, "vCPU 1 MPIDR", 0x118)?;
        check!(
            mpidr & 0xff_ffff == 1,
            "vCPU 1 MPIDR {mpidr:#x}, want affinity 1"
        );
        let r = mmio_at(v0, "AFFINITY_INFO", 0x108)?;
        check!(r == 0, "PSCI AFFINITY_INFO(1) returned {r:#x}, want ON (0)");
        let (e, reason) = v0.run_raw();
        check!(
            e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
            "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
        );
        let s0 = v0.stats()?;
        let psci = s0.get("rec_exit_psci").copied().unwrap_or(0);
        check!(psci == 3, "vCPU 0: {psci} PSCI exits, want 3");
        let sig = v1.stats()?.get("signal_exits").copied().unwrap_or(0);
        check!(sig == 1, "vCPU 1: {sig} signal exits, want 1");
        drop(v);
        drop(vm);
        Ok(Outcome::Pass)
    }

    /// A realm with `code` at PAYLOAD_RAM (one page populated and
    /// measured), the SMCCC functions `[fwd.0, fwd.0 + fwd.1)` forwarded
    /// to userspace, and `vcpus` RECs (the ones after the first off),
    /// activated.
    fn realm_with(
        vm: &mut Vm,
        code: &[u8],
        fwd: Option<(u32, u32)>,
        vcpus: u64,
    ) -> Result<Vec<kvm::Vcpu>, String> {
        vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, code)?;
        if let Some((base, nr)) = fwd {
            vm.forward_smccc(base, nr)?;
        }
        check_ok(rme(vm, 1, &[]) == 0, "CREATE_REALM failed")?;
        let r = rme(vm, 2, &range(PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64, 0));
        check_ok(r == 0, &format!("INIT_RIPAS: errno {r}"))?;
        let r = rme(vm, 3, &populate(PAYLOAD_RAM, 0x1000, 1));
        check_ok(r == 0, &format!("POPULATE: errno {r}"))?;
        let rec = 1u32 << kvm::KVM_ARM_VCPU_REC;
        let mut out = Vec::new();
        for i in 0..vcpus {
            let v = vm.create_vcpu(i)?;
            let off = if i == 0 { 0 } else { 1 };
            check_ok(
                init_vcpu(vm, &v, rec | off) == 0,
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
        check_ok(rme(vm, 4, &[]) == 0, "ACTIVATE_REALM failed")?;
        Ok(out)
    }

    fn check_ok(ok: bool, what: &str) -> Result<(), String> {
        if ok {
            Ok(())
        } else {
            Err(what.into())
        }
    }

    /// KVM_RUN of `v` ends in an MMIO write at PAYLOAD_MMIO + `off`: its
    /// value.
    fn mmio_at(v: &kvm::Vcpu, what: &str, off: u64) -> Result<u64, String> {
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
    fn hypercall_exit(v: &kvm::Vcpu, what: &str) -> Result<(u64, [u64; 6], u64), String> {
        let (e, reason) = v.run_raw();
        if e != 0 || reason != kvm::KVM_EXIT_HYPERCALL {
            return Err(format!(
                "{what}: KVM_RUN errno {e}, exit {reason}; want KVM_EXIT_HYPERCALL"
            ));
        }
        Ok(v.hypercall())
    }

    const PSCI_CPU_ON: u32 = 0xC400_0003;
    const PSCI_AFFINITY_INFO: u32 = 0xC400_0004;

    /// The VMM takes PSCI CPU_ON and AFFINITY_INFO (its SMCCC filter
    /// forwards them): they exit as KVM_EXIT_HYPERCALL, KVM_RUN is refused
    /// until KVM_ARM_VCPU_RMM_PSCI_COMPLETE, whose bad arguments are
    /// refused with EINVAL; then the secondary starts as with in-kernel
    /// PSCI (needs an RMM speaking RMI 1.0).
    fn realm_psci_to_vmm() -> TestResult {
        let kvm = open_kvm()?;
        let Some(mut vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let v = realm_with(&mut vm, smp_payload(), Some((PSCI_CPU_ON, 2)), 2)?;
        let (v0, v1) = (&v[0], &v[1]);
        let (nr, args, flags) = hypercall_exit(v0, "CPU_ON")?;
        // The RMM passes the function ID and the target MPIDR only.
        check!(
            nr == u64::from(PSCI_CPU_ON) && args[0] == 1,
            "CPU_ON exit: nr {nr:#x}, args {args:x?}; want CPU_ON(1, ...)"
        );
        check!(
            flags & kvm::KVM_HYPERCALL_EXIT_SMC != 0,
            "CPU_ON exit flags {flags:#x}: want KVM_HYPERCALL_EXIT_SMC"
        );
        let (e, _) = v0.run_raw();
        check!(
            e == libc::EINVAL,
            "KVM_RUN before PSCI_COMPLETE: errno {e}, want EINVAL"
        );
        for (mpidr, status, pad, what) in [
            (2, 0, 0, "an MPIDR the call did not name"),
            (1, 0, 1, "non-zero padding"),
            (1, 5, 0, "a status the RMM refuses"),
        ] {
            let r = v0.psci_complete(mpidr, status, pad);
            check!(
                r == Err(libc::EINVAL),
                "PSCI_COMPLETE with {what}: {r:?}, want EINVAL"
            );
        }
        let r = v1.psci_complete(1, 0, 0);
        check!(
            r == Err(libc::EINVAL),
            "PSCI_COMPLETE on vCPU 1 (no call pending): {r:?}"
        );
        let r = v0.psci_complete(1, 0, 0);
        check!(r == Ok(0), "PSCI_COMPLETE(1, SUCCESS): {r:?}");
        let r = mmio_at(v0, "CPU_ON result", 0x100)?;
        check!(r == 0, "PSCI CPU_ON returned {r:#x}, want SUCCESS");
        let ctx = mmio_at(v1, "vCPU 1 context ID", 0x110)?;
        check!(ctx == 0x77, "vCPU 1 context ID {ctx:#x}, want 0x77");
        let (nr, args, _) = hypercall_exit(v0, "AFFINITY_INFO")?;
        check!(
            nr == u64::from(PSCI_AFFINITY_INFO) && args[0] == 1,
            "AFFINITY_INFO exit: nr {nr:#x}, args {args:x?}"
        );
        let r = v0.psci_complete(1, -3, 0);
        check!(
            r == Err(libc::EINVAL),
            "AFFINITY_INFO completed with DENIED: {r:?}, want EINVAL"
        );
        let r = v0.psci_complete(1, 0, 0);
        check!(
            r == Ok(0),
            "PSCI_COMPLETE(1, SUCCESS) for AFFINITY_INFO: {r:?}"
        );
        let r = mmio_at(v0, "AFFINITY_INFO result", 0x108)?;
        check!(r == 0, "PSCI AFFINITY_INFO(1) returned {r:#x}, want ON (0)");
        // SYSTEM_OFF is not forwarded: the kernel's system event.
        let (e, reason) = v0.run_raw();
        check!(
            e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
            "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
        );
        let psci = v0.stats()?.get("rec_exit_psci").copied().unwrap_or(0);
        check!(psci == 3, "vCPU 0: {psci} PSCI exits, want 3");
        drop(v);
        drop(vm);
        Ok(Outcome::Pass)
    }

    // Host-call payload: RSI_HOST_CALL with a SiP function ID and one
    // argument in a struct at RAM + 0x1000 (not populated: served from
    // guest_memfd on the fault); reports the RSI status and the x0 the
    // host put back, then powers off.
    core::arch::global_asm!(
        ".pushsection .rodata.realm_hc_payload, \"a\"",
        ".balign 4",
        ".global confvm_realm_hc_start",
        ".global confvm_realm_hc_end",
        "confvm_realm_hc_start:",
        "adr x21, confvm_realm_hc_start",
        "movz x20, #0x0a00, lsl #16",
        "orr x20, x20, #0x8000000000",
        "add x1, x21, #0x1000",
        "movz x2, #0x0001",
        "movk x2, #0xc200, lsl #16",
        "str x2, [x1, #8]",
        "mov x3, #0x55",
        "str x3, [x1, #16]",
        "movz x0, #0x0199",
        "movk x0, #0xc400, lsl #16",
        "smc #0",
        "str x0, [x20]",
        "add x1, x21, #0x1000",
        "ldr x2, [x1, #8]",
        "str x2, [x20, #8]",
        "movz x0, #0x0008",
        "movk x0, #0x8400, lsl #16",
        "smc #0",
        "1: b 1b",
        "confvm_realm_hc_end:",
        ".popsection",
    );

    payload_fn!(
        hc_payload,
        confvm_realm_hc_start,
        confvm_realm_hc_end,
        "The host-call payload."
    );

    /// RSI_HOST_CALL reaches the VMM that forwards its function ID, as
    /// KVM_EXIT_HYPERCALL (no SMC flag) whose `ret` the realm reads back
    /// as x0; without forwarding the kernel answers NOT_SUPPORTED (needs
    /// an RMM speaking RMI 1.0).
    fn realm_host_call_to_vmm() -> TestResult {
        const SIP_FN: u32 = 0xC200_0001;
        let kvm = open_kvm()?;
        for forwarded in [true, false] {
            let Some(mut vm) = realm_vm(&kvm)? else {
                return Ok(Outcome::Skip(NO_REALMS.into()));
            };
            let v = realm_with(&mut vm, hc_payload(), forwarded.then_some((SIP_FN, 1)), 1)?;
            let want = if forwarded {
                let (nr, args, flags) = hypercall_exit(&v[0], "host call")?;
                check!(
                    nr == u64::from(SIP_FN) && args[0] == 0x55 && flags == 0,
                    "host call exit: nr {nr:#x}, args {args:x?}, flags {flags:#x}"
                );
                v[0].set_hypercall_ret(0xabc);
                0xabc
            } else {
                u64::MAX
            };
            let st = mmio_at(&v[0], "RSI_HOST_CALL status", 0)?;
            check!(st == 0, "RSI_HOST_CALL status {st:#x}, want SUCCESS");
            let x0 = mmio_at(&v[0], "host call x0", 8)?;
            check!(
                x0 == want,
                "forwarded {forwarded}: x0 {x0:#x} after the call, want {want:#x}"
            );
            let (e, reason) = v[0].run_raw();
            check!(
                e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
                "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
            );
            let hc = v[0]
                .stats()?
                .get("rec_exit_host_call")
                .copied()
                .unwrap_or(0);
            check!(hc == 1, "{hc} host-call exits, want 1");
        }
        Ok(Outcome::Pass)
    }

    /// KVM_ARM_VCPU_RMM_PSCI_COMPLETE is for realm vCPUs: EINVAL on a
    /// normal VM's vCPU (runs under TRP too).
    fn psci_complete_needs_a_realm() -> TestResult {
        let kvm = open_kvm()?;
        let vm = kvm
            .create_vm(0)
            .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
        let v = vm.create_vcpu(0)?;
        match v.psci_complete(0, 0, 0) {
            Err(e) if e == libc::EINVAL => Ok(Outcome::Pass),
            r => Err(format!(
                "PSCI_COMPLETE on a normal vCPU: {r:?}, want EINVAL"
            )),
        }
    }

    // Timer-interrupt payload: sets up the distributor and redistributor
    // (through their shared alias: emulated by the in-kernel vgic), the
    // CPU interface and a vector table, arms the EL1 virtual timer, waits
    // in WFI; its IRQ handler reports the INTID it acknowledged and powers
    // off.  An unexpected synchronous exception reports ESR_EL1 instead.
    core::arch::global_asm!(
        ".pushsection .rodata.realm_irq_payload, \"a\"",
        ".balign 4096",
        ".global confvm_realm_irq_start",
        ".global confvm_realm_irq_end",
        "confvm_realm_irq_start:",
        "movz x20, #0x0a00, lsl #16",
        "orr x20, x20, #0x8000000000",
        "movz x22, #0x0800, lsl #16",
        "orr x22, x22, #0x8000000000",
        "movz x23, #0x080b, lsl #16",
        "orr x23, x23, #0x8000000000",
        // GICD_CTLR = ARE_NS | EnableGrp1A.
        "mov w0, #0x12",
        "str w0, [x22]",
        // GICR_ISENABLER0: PPI 27, the virtual timer.
        "mov w0, #0x8000000",
        "str w0, [x23, #0x100]",
        "mrs x0, ICC_SRE_EL1",
        "orr x0, x0, #1",
        "msr ICC_SRE_EL1, x0",
        "isb",
        "mov x0, #0xff",
        "msr ICC_PMR_EL1, x0",
        "mov x0, #1",
        "msr ICC_IGRPEN1_EL1, x0",
        "adr x0, 8f",
        "msr VBAR_EL1, x0",
        "isb",
        "mrs x0, CNTVCT_EL0",
        "add x0, x0, #0x10, lsl #12",
        "msr CNTV_CVAL_EL0, x0",
        "mov x0, #1",
        "msr CNTV_CTL_EL0, x0",
        "isb",
        "str xzr, [x20, #0x400]",
        "msr DAIFClr, #2",
        "1: wfi",
        "b 1b",
        ".balign 2048",
        "8:",
        ".skip 0x200",
        // Current EL, SPx, synchronous.
        "mrs x1, ESR_EL1",
        "str x1, [x20, #0x410]",
        "2: b 2b",
        ".balign 0x80",
        // Current EL, SPx, IRQ.
        "mrs x0, ICC_IAR1_EL1",
        "str x0, [x20, #0x408]",
        "mov x1, #0",
        "msr CNTV_CTL_EL0, x1",
        "msr ICC_EOIR1_EL1, x0",
        "movz x0, #0x0008",
        "movk x0, #0x8400, lsl #16",
        "smc #0",
        "3: b 3b",
        "confvm_realm_irq_end:",
        ".popsection",
    );

    payload_fn!(
        irq_payload,
        confvm_realm_irq_start,
        confvm_realm_irq_end,
        "The timer-interrupt payload."
    );

    /// KVM_RUN with a watchdog: a realm that never exits to userspace is
    /// stopped by SIGALRM after `ms` milliseconds (EINTR).
    fn run_bounded(vcpu: &kvm::Vcpu, ms: i64) -> Result<(i32, u32), String> {
        // SAFETY: installs a handler that does nothing, without
        // SA_RESTART, so the signal interrupts KVM_RUN.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
            if libc::sigaction(libc::SIGALRM, &sa, core::ptr::null_mut()) != 0 {
                return Err("sigaction".into());
            }
        }
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

    /// A realm takes a virtual timer interrupt: the in-kernel vgic (its
    /// distributor and redistributor emulated through the shared alias)
    /// and the timer state of each REC exit inject PPI 27, which reaches
    /// the realm through the list registers of rec_run (needs an RMM
    /// speaking RMI 1.0).
    fn realm_timer_irq() -> TestResult {
        let kvm = open_kvm()?;
        let Some(mut vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let code = irq_payload();
        check!(code.len() <= 4096, "payload of {} bytes", code.len());
        vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, code)?;
        check!(rme(&vm, 1, &[]) == 0, "CREATE_REALM failed");
        let r = rme(&vm, 2, &range(PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64, 0));
        check!(r == 0, "INIT_RIPAS: errno {r}");
        let r = rme(&vm, 3, &populate(PAYLOAD_RAM, 0x1000, 1));
        check!(r == 0, "POPULATE: errno {r}");
        let v0 = vm.create_vcpu(0)?;
        check!(
            init_vcpu(&vm, &v0, 1 << kvm::KVM_ARM_VCPU_REC) == 0,
            "vCPU init failed"
        );
        let _gic = vm.add_gicv3(0x0800_0000, 0x080a_0000)?;
        v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
        check!(finalize_rec(&v0) == 0, "FINALIZE(REC) failed");
        check!(rme(&vm, 4, &[]) == 0, "ACTIVATE_REALM failed");
        let mmio = |what: &str, off: u64| -> Result<u64, String> {
            let (e, reason) = run_bounded(&v0, 5000)?;
            let m = v0.mmio();
            if e != 0 || reason != kvm::KVM_EXIT_MMIO || m.phys_addr != PAYLOAD_MMIO + off {
                return Err(format!(
                    "{what}: KVM_RUN errno {e}, exit {reason}, MMIO at {:#x} (data {:#x}); want MMIO at {:#x}",
                    m.phys_addr,
                    u64::from_le_bytes(m.data),
                    PAYLOAD_MMIO + off
                ));
            }
            Ok(u64::from_le_bytes(m.data))
        };
        mmio("GIC set up, timer armed", 0x400)?;
        let intid = mmio("timer interrupt taken", 0x408)?;
        check!(intid == 27, "the realm acknowledged INTID {intid}, want 27");
        let (e, reason) = run_bounded(&v0, 5000)?;
        check!(
            e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
            "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
        );
        let s = v0.stats()?;
        let st = |n: &str| s.get(n).copied().unwrap_or(0);
        println!(
            "# realm_timer_irq: {} REC exits ({} IRQ), {} MMIO in the kernel (vgic)",
            st("exits"),
            st("rec_exit_irq"),
            st("mmio_exit_kernel")
        );
        check!(
            st("mmio_exit_kernel") >= 2,
            "GIC accesses not emulated in the kernel"
        );
        Ok(Outcome::Pass)
    }

    // The Linux realm guest's machine (realm-guest.dts).
    const GUEST_RAM: u64 = 0x4000_0000;
    const GUEST_RAM_SIZE: usize = 256 << 20;
    const GUEST_DTB: u64 = GUEST_RAM + (128 << 20);
    const GUEST_UART: u64 = 0x0900_0000;

    /// The guest's console: the PL011 transmit register, line by line.
    #[derive(Default)]
    struct Console {
        line: Vec<u8>,
        text: String,
    }

    /// What one realm vCPU of the Linux guest did until the realm ended.
    #[derive(Default)]
    struct VcpuLoop {
        mmio: u64,
        ripas: u64,
    }

    /// Runs one vCPU of the Linux realm guest until the realm powers off:
    /// PL011 MMIO, RIPAS changes (answered with memory attributes).  With
    /// `bounded`, each KVM_RUN is cut by SIGALRM after 60 s.
    fn guest_vcpu_loop(
        vm_fd: i32,
        vcpu: &kvm::Vcpu,
        console: &std::sync::Mutex<Console>,
        bounded: bool,
    ) -> Result<VcpuLoop, String> {
        let mut out = VcpuLoop::default();
        let t0 = std::time::Instant::now();
        loop {
            if t0.elapsed().as_secs() > 600 {
                return Err("the guest did not finish in 600 s".into());
            }
            let (e, reason) = if bounded {
                run_bounded(vcpu, 60_000)?
            } else {
                vcpu.run_raw()
            };
            match (e, reason) {
                (0, kvm::KVM_EXIT_MMIO) => {
                    out.mmio += 1;
                    let m = vcpu.mmio();
                    if m.phys_addr < GUEST_UART || m.phys_addr >= GUEST_UART + 0x1000 {
                        // Nothing else is emulated: reads are zero.
                        continue;
                    }
                    let off = m.phys_addr - GUEST_UART;
                    if m.is_write && off == 0 {
                        let mut c = console.lock().map_err(|_| "console lock poisoned")?;
                        match m.data[0] {
                            b'\n' => {
                                let l = String::from_utf8_lossy(&c.line).to_string();
                                println!("# realm-guest| {l}");
                                c.text.push_str(&l);
                                c.text.push('\n');
                                c.line.clear();
                            }
                            b'\r' => {}
                            ch => c.line.push(ch),
                        }
                    } else if !m.is_write && off == 0x18 {
                        // UARTFR: transmit FIFO empty, receive FIFO empty.
                        vcpu.set_mmio_data(0x90u64.to_le_bytes());
                    } else if !m.is_write {
                        vcpu.set_mmio_data([0; 8]);
                    }
                }
                (e, kvm::KVM_EXIT_MEMORY_FAULT) if e == libc::EFAULT => {
                    out.ripas += 1;
                    let (flags, gpa, size) = vcpu.memory_fault();
                    if gpa < GUEST_RAM || gpa + size > GUEST_RAM + GUEST_RAM_SIZE as u64 {
                        return Err(format!("memory fault outside RAM: {gpa:#x}+{size:#x}"));
                    }
                    let mut a = kvm::MemoryAttributes {
                        address: gpa,
                        size,
                        attributes: flags & kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE,
                        flags: 0,
                    };
                    kvm::ioctl_ptr(vm_fd, kvm::KVM_SET_MEMORY_ATTRIBUTES, &mut a)
                        .map_err(|e| format!("KVM_SET_MEMORY_ATTRIBUTES: errno {e}"))?;
                }
                (0, kvm::KVM_EXIT_SYSTEM_EVENT) => return Ok(out),
                (e, r) => {
                    return Err(format!(
                        "KVM_RUN errno {e}, exit {r} after {} MMIO exits",
                        out.mmio
                    ))
                }
            }
        }
    }

    /// A realm vCPU handed to the thread that runs it.
    struct SendVcpu(kvm::Vcpu);
    // SAFETY: a vCPU fd and its kvm_run mapping may be used from any
    // thread; only the thread it is moved to uses it.
    unsafe impl Send for SendVcpu {}

    /// Boots the Linux realm guest (/realm/Image, the kernel itself with
    /// a small initramfs, and /realm/guest.dtb) to its userspace on two
    /// vCPUs, each run by its own thread: RAM from guest_memfd with RIPAS
    /// RAM, the Image and DTB populated (measured), an in-kernel GICv3
    /// (IPIs included), a PL011 emulated here from MMIO exits, RIPAS
    /// changes accepted through memory attributes, the secondary CPU
    /// started with PSCI CPU_ON (needs an RMM speaking RMI 1.0).
    fn realm_linux_guest() -> TestResult {
        let kvm = open_kvm()?;
        let (Ok(image), Ok(dtb)) = (
            std::fs::read("/realm/Image"),
            std::fs::read("/realm/guest.dtb"),
        ) else {
            return Ok(Outcome::Skip(
                "no /realm/Image or /realm/guest.dtb in this initramfs".into(),
            ));
        };
        let Some(mut vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let t0 = std::time::Instant::now();
        check!(
            image.len() < (64 << 20) && dtb.len() < 0x10000,
            "Image or DTB too large"
        );
        let user = vm.add_private_memory(0, GUEST_RAM, GUEST_RAM_SIZE, &image)?;
        // SAFETY: the mapping is GUEST_RAM_SIZE bytes; the DTB fits at its
        // offset (checked above) and does not overlap `dtb`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                dtb.as_ptr(),
                user.add((GUEST_DTB - GUEST_RAM) as usize),
                dtb.len(),
            )
        };
        vm.set_memory_attributes(
            GUEST_RAM,
            GUEST_RAM_SIZE as u64,
            kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE,
        )?;
        check!(rme(&vm, 1, &[]) == 0, "CREATE_REALM failed");
        let r = rme(&vm, 2, &range(GUEST_RAM, GUEST_RAM_SIZE as u64, 0));
        check!(r == 0, "INIT_RIPAS: errno {r}");
        let pages = |len: usize| ((len + 4095) & !4095) as u64;
        let r = rme(&vm, 3, &populate(GUEST_RAM, pages(image.len()), 1));
        check!(r == 0, "POPULATE Image: errno {r}");
        let r = rme(&vm, 3, &populate(GUEST_DTB, pages(dtb.len()), 1));
        check!(r == 0, "POPULATE DTB: errno {r}");
        let rec = 1u32 << kvm::KVM_ARM_VCPU_REC;
        let v0 = vm.create_vcpu(0)?;
        let v1 = vm.create_vcpu(1)?;
        check!(init_vcpu(&vm, &v0, rec) == 0, "vCPU 0 init failed");
        // vCPU 1 waits for PSCI CPU_ON.
        check!(init_vcpu(&vm, &v1, rec | 1) == 0, "vCPU 1 init failed");
        let _gic = vm.add_gicv3(0x0800_0000, 0x080a_0000)?;
        v0.set_one_reg(REG_PC, GUEST_RAM)?;
        // x0: the DTB.
        v0.set_one_reg(0x6030_0000_0010_0000, GUEST_DTB)?;
        check!(finalize_rec(&v0) == 0, "FINALIZE(REC) vCPU 0 failed");
        check!(finalize_rec(&v1) == 0, "FINALIZE(REC) vCPU 1 failed");
        check!(rme(&vm, 4, &[]) == 0, "ACTIVATE_REALM failed");
        let setup = t0.elapsed();

        let console = std::sync::Mutex::new(Console::default());
        let vm_fd = vm.fd();
        let t1 = std::time::Instant::now();
        let secondary = SendVcpu(v1);
        let (r0, r1) = std::thread::scope(|sc| {
            let console = &console;
            let h = sc.spawn(move || {
                let v1 = secondary;
                // SIGALRM is the boot vCPU's watchdog: keep it off here.
                // SAFETY: a valid signal set on the stack.
                unsafe {
                    let mut set: libc::sigset_t = core::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGALRM);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
                }
                let r = guest_vcpu_loop(vm_fd, &v1.0, console, false);
                (r, v1.0.stats())
            });
            let r0 = guest_vcpu_loop(vm_fd, &v0, console, true);
            let r1 = h.join().map_err(|_| "vCPU 1 thread panicked".to_string());
            (r0, r1)
        });
        let boot = t1.elapsed();
        let l0 = r0?;
        let (l1, s1) = r1?;
        let l1 = l1.map_err(|e| format!("vCPU 1: {e}"))?;
        let s1 = s1?;
        let text = console
            .lock()
            .map_err(|_| "console lock poisoned")?
            .text
            .clone();
        let s = vm.stats()?;
        let s0 = v0.stats()?;
        let st =
            |m: &std::collections::HashMap<String, u64>, n: &str| m.get(n).copied().unwrap_or(0);
        println!(
            "# realm_linux_guest: set-up {} ms, boot to power-off {} ms, {} + {} REC exits ({} + {} IRQ, {} + {} served faults), {} MMIO to userspace, {} RIPAS changes, {} RMI calls, {} data pages",
            setup.as_millis(),
            boot.as_millis(),
            st(&s0, "exits"),
            st(&s1, "exits"),
            st(&s0, "rec_exit_irq"),
            st(&s1, "rec_exit_irq"),
            st(&s0, "rec_exit_fault"),
            st(&s1, "rec_exit_fault"),
            l0.mmio + l1.mmio,
            l0.ripas + l1.ripas,
            st(&s, "realm_rmi_calls"),
            st(&s, "realm_data_pages")
        );
        check!(
            text.contains("RME: Using RSI version"),
            "the guest did not find itself in a realm (no RSI line)"
        );
        check!(
            text.contains("Brought up 1 node, 2 CPUs"),
            "the guest did not bring up its second CPU"
        );
        check!(
            text.contains("confvm-realm-guest: userspace reached"),
            "the guest did not reach userspace"
        );
        for bad in ["WARNING:", "BUG:", "Oops", "Kernel panic"] {
            check!(!text.contains(bad), "the guest kernel printed {bad:?}");
        }
        Ok(Outcome::Pass)
    }

    const PAYLOAD_RAM: u64 = 0x8000_0000;
    const PAYLOAD_RAM_SIZE: usize = 64 << 10;
    const PAYLOAD_MMIO: u64 = 0x0a00_0000;

    /// A realm runs the payload end to end: POPULATE from guest_memfd,
    /// RSI calls, a private fault served from guest_memfd, MMIO exits, a
    /// RIPAS change refused (memory attributes left private) then one
    /// accepted (KVM_SET_MEMORY_ATTRIBUTES to shared), a write through the
    /// shared alias that lands in the VMM's page, an MMIO doorbell served
    /// by an ioeventfd in the kernel, PSCI SYSTEM_OFF; then the counters
    /// (needs an RMM speaking RMI 1.0).
    fn realm_run() -> TestResult {
        let kvm = open_kvm()?;
        let Some(mut vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let code = payload();
        check!(
            !code.is_empty() && code.len() <= 4096,
            "payload of {} bytes",
            code.len()
        );
        let user = vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, code)?;
        // Like kvmtool: all of RAM private from the start.
        vm.set_memory_attributes(
            PAYLOAD_RAM,
            PAYLOAD_RAM_SIZE as u64,
            kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE,
        )?;
        check!(rme(&vm, 1, &[]) == 0, "CREATE_REALM failed");
        let r = rme(&vm, 2, &range(PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64, 0));
        check!(r == 0, "INIT_RIPAS: errno {r}");
        let r = rme(&vm, 3, &populate(PAYLOAD_RAM, 0x1000, 1));
        check!(r == 0, "POPULATE: errno {r}");
        let r = rme(&vm, 3, &populate(PAYLOAD_RAM, 0x1000, 1));
        check!(r != 0, "POPULATE of a populated granule succeeded");
        let doorbell = vm.ioeventfd(PAYLOAD_MMIO + 0x200, 8)?;
        let r = rme(
            &vm,
            3,
            &populate(PAYLOAD_RAM + PAYLOAD_RAM_SIZE as u64, 0x1000, 0),
        );
        check!(
            r == libc::EFAULT,
            "POPULATE past the memslot: errno {r}, want EFAULT"
        );
        let v0 = vm.create_vcpu(0)?;
        check!(
            init_vcpu(&vm, &v0, 1 << kvm::KVM_ARM_VCPU_REC) == 0,
            "vCPU init failed"
        );
        v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
        check!(finalize_rec(&v0) == 0, "FINALIZE(REC) failed");
        let (e, _) = v0.run_raw();
        check!(
            e == libc::EPERM,
            "KVM_RUN before ACTIVATE: errno {e}, want EPERM"
        );
        check!(rme(&vm, 4, &[]) == 0, "ACTIVATE_REALM failed");

        // (offset, value) of each MMIO write, in order.
        const REVISION_1: u64 = u64::MAX;
        const ANY: u64 = u64::MAX - 1;
        let ram = PAYLOAD_RAM;
        let writes_1: [(u64, u64); 4] = [(0, 0), (8, REVISION_1), (16, 0), (24, 40)];
        let writes_2: [(u64, u64); 3] = [(32, 0), (40, ram + 0x8000), (48, ANY)];
        let writes_3: [(u64, u64); 3] = [(56, 0), (64, ram + 0xa000), (72, 0)];
        let expect_mmio = |what: &str, off: u64, want: u64| -> Result<(), String> {
            let (e, reason) = v0.run_raw();
            if e != 0 || reason != kvm::KVM_EXIT_MMIO {
                return Err(format!(
                    "{what}: KVM_RUN errno {e}, exit {reason}, want MMIO"
                ));
            }
            let m = v0.mmio();
            let got = u64::from_le_bytes(m.data);
            let value_ok = match want {
                // A revision: major 1, any minor.
                REVISION_1 => got >> 16 == 1,
                ANY => true,
                _ => got == want,
            };
            if m.phys_addr != PAYLOAD_MMIO + off || !m.is_write || m.len != 8 || !value_ok {
                return Err(format!(
                    "{what}: MMIO {:#x} len {} write {} data {got:#x}, want {:#x} = {want:#x}",
                    m.phys_addr,
                    m.len,
                    m.is_write,
                    PAYLOAD_MMIO + off
                ));
            }
            Ok(())
        };
        let names = [
            "RSI_VERSION status",
            "RSI_VERSION revision",
            "REALM_CONFIG status",
            "ipa_width",
        ];
        for ((off, want), what) in writes_1.iter().zip(names) {
            expect_mmio(what, *off, *want)?;
        }
        // Each RIPAS change reaches userspace as a memory fault (to
        // shared).  The first is refused (RAM stays private: no progress),
        // the second accepted by making the range shared.
        let expect_fault = |what: &str| -> Result<(), String> {
            let (e, reason) = v0.run_raw();
            if e != libc::EFAULT || reason != kvm::KVM_EXIT_MEMORY_FAULT {
                return Err(format!(
                    "{what}: KVM_RUN errno {e}, exit {reason}; want EFAULT, MEMORY_FAULT"
                ));
            }
            let (flags, gpa, size) = v0.memory_fault();
            if flags & kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE != 0
                || gpa != ram + 0x8000
                || size != 0x2000
            {
                return Err(format!(
                    "{what}: memory fault flags {flags:#x} gpa {gpa:#x} size {size:#x}"
                ));
            }
            Ok(())
        };
        expect_fault("first RIPAS change")?;
        let names = ["refused: status", "refused: next", "refused: response"];
        for ((off, want), what) in writes_2.iter().zip(names) {
            expect_mmio(what, *off, *want)?;
        }
        expect_fault("second RIPAS change")?;
        vm.set_memory_attributes(ram + 0x8000, 0x2000, 0)?;
        let names = ["accepted: status", "accepted: next", "accepted: response"];
        for ((off, want), what) in writes_3.iter().zip(names) {
            expect_mmio(what, *off, *want)?;
        }
        expect_mmio("shared page read back", 80, 0x5eed_f00d)?;
        // SAFETY: `user` maps PAYLOAD_RAM_SIZE bytes; 0xc000 + 8 is inside.
        let seen = unsafe { core::ptr::read_volatile(user.add(0xc000).cast::<u64>()) };
        check!(
            seen == 0x5eed_f00d,
            "the realm's shared write is not in the VMM's page: {seen:#x}"
        );
        let (e, reason) = v0.run_raw();
        check!(
            e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
            "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
        );
        let mut rung = [0u8; 8];
        // SAFETY: reads 8 bytes into a local buffer from our eventfd.
        let n = unsafe { libc::read(doorbell.as_raw_fd(), rung.as_mut_ptr().cast(), 8) };
        let rung = u64::from_ne_bytes(rung);
        check!(
            n == 8 && rung == 1,
            "doorbell eventfd: read {n}, count {rung}; want 1"
        );
        let t = v0.system_event();
        check!(
            t == kvm::KVM_SYSTEM_EVENT_SHUTDOWN,
            "system event {t}, want SHUTDOWN"
        );

        let s = v0.stats()?;
        let st = |n: &str| s.get(n).copied().unwrap_or(u64::MAX);
        check!(
            st("mmio_exit_kernel") == 1 && st("mmio_exit_user") == 11,
            "MMIO exits: {} in the kernel, {} to userspace; want 1, 11",
            st("mmio_exit_kernel"),
            st("mmio_exit_user")
        );
        check!(
            st("rec_exit_mmio") == 12 && st("rec_exit_ripas") == 2 && st("rec_exit_psci") == 1,
            "REC exits: mmio {} ripas {} psci {}",
            st("rec_exit_mmio"),
            st("rec_exit_ripas"),
            st("rec_exit_psci")
        );
        check!(
            st("rec_exit_fault") >= 2,
            "{} fault exits served, want a private and a shared one",
            st("rec_exit_fault")
        );
        let s = vm.stats()?;
        let data = s.get("realm_data_pages").copied().unwrap_or(0);
        check!(
            data == 2,
            "realm_data_pages {data}, want 2 (populated + faulted)"
        );
        println!(
            "# realm_run: {} RMI calls, {} REC exits ({} fault, {} IRQ)",
            s.get("realm_rmi_calls").copied().unwrap_or(0),
            v0.stats()?.get("exits").copied().unwrap_or(0),
            st("rec_exit_fault"),
            st("rec_exit_irq")
        );
        // Teardown returns everything; a leak warns and fails the boot.
        drop(v0);
        drop(vm);
        Ok(Outcome::Pass)
    }

    /// Failed RMI calls reach the kvm_rme:kvm_rme_rmi_error tracepoint
    /// (enabled on the kernel command line).  The kvm_rme_rmm KUnit suite
    /// makes some on purpose at boot (delegating a granule twice,
    /// undelegating one twice), under TRP as under a full RMM.
    fn rmi_error_trace() -> TestResult {
        let dir = "/sys/kernel/tracing";
        let c = |s: &str| std::ffi::CString::new(s).map_err(|e| e.to_string());
        let (src, target, fstype) = (c("tracefs")?, c(dir)?, c("tracefs")?);
        // SAFETY: valid NUL-terminated strings; no data argument.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                core::ptr::null(),
            )
        };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EBUSY) {
            return Err(format!(
                "mount tracefs: {}",
                std::io::Error::last_os_error()
            ));
        }
        let enabled =
            std::fs::read_to_string(format!("{dir}/events/kvm_rme/kvm_rme_rmi_error/enable"))
                .map_err(|e| format!("kvm_rme_rmi_error event: {e}"))?;
        check!(
            enabled.trim() == "1",
            "the event is not enabled: {enabled:?}"
        );
        let trace = std::fs::read_to_string(format!("{dir}/trace"))
            .map_err(|e| format!("reading the trace: {e}"))?;
        let lines: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains("kvm_rme_rmi_error:"))
            .collect();
        let delegate = lines
            .iter()
            .filter(|l| l.contains("RMI_GRANULE_DELEGATE("))
            .count();
        let undelegate = lines
            .iter()
            .filter(|l| l.contains("RMI_GRANULE_UNDELEGATE("))
            .count();
        check!(
            delegate >= 1 && undelegate >= 1,
            "traced failures: {} in all, {delegate} GRANULE_DELEGATE, {undelegate} GRANULE_UNDELEGATE",
            lines.len()
        );
        let mut by_cmd: Vec<(String, usize)> = Vec::new();
        for l in &lines {
            let name = l
                .split("kvm_rme_rmi_error: ")
                .nth(1)
                .and_then(|r| r.split('(').next())
                .unwrap_or("?");
            let status = l.split("status ").nth(1).unwrap_or("?");
            let key = format!("{name} status {status}");
            match by_cmd.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => by_cmd.push((key, 1)),
            }
        }
        let summary: Vec<String> = by_cmd.iter().map(|(k, n)| format!("{n} x {k}")).collect();
        println!(
            "# rmi_error_trace: {} failed RMI calls traced: {}",
            lines.len(),
            summary.join(", ")
        );
        Ok(Outcome::Pass)
    }

    /// A realm VM through the uAPI sub-commands, good and bad arguments,
    /// in and out of order (needs an RMM speaking RMI 1.0).
    fn realm_lifecycle() -> TestResult {
        let kvm = open_kvm()?;
        let Some(vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let (einval, eperm, eexist) = (libc::EINVAL, libc::EPERM, libc::EEXIST);
        let steps: &[(&str, u64, &[u8], i32)] = &[
            ("INIT_RIPAS before CREATE", 2, &range(0, 0x1000, 0), eperm),
            ("ACTIVATE before CREATE", 4, &[], eperm),
            ("CONFIG unknown item", 0, &config(7, 0), einval),
            ("CONFIG unknown hash", 0, &config(1, 9), einval),
            ("CONFIG SHA-512", 0, &config(1, 1), 0),
            ("CONFIG RPV", 0, &config(0, 0x1234_5678), 0),
            ("CREATE", 1, &[], 0),
            ("CREATE again", 1, &[], eexist),
            ("CONFIG after CREATE", 0, &config(1, 0), eperm),
            (
                "INIT_RIPAS unaligned",
                2,
                &range(0x4000_0800, 0x1000, 0),
                einval,
            ),
            ("INIT_RIPAS empty", 2, &range(0x4000_0000, 0, 0), einval),
            (
                "INIT_RIPAS reserved set",
                2,
                &range(0x4000_0000, 0x1000, 1),
                einval,
            ),
            (
                "INIT_RIPAS shared half",
                2,
                &range(1 << 39, 0x1000, 0),
                einval,
            ),
            (
                "INIT_RIPAS 1 GiB + 4 KiB",
                2,
                &range(0x4000_0000, 0x4000_1000, 0),
                0,
            ),
            (
                "POPULATE without a guest_memfd memslot",
                3,
                &range(0x4000_0000, 0x1000, 0),
                libc::EFAULT,
            ),
            (
                "POPULATE unknown flag",
                3,
                &populate(0x4000_0000, 0x1000, 2),
                einval,
            ),
            (
                "POPULATE unaligned",
                3,
                &populate(0x4000_0800, 0x1000, 1),
                einval,
            ),
            ("unknown sub-command", 9, &[], einval),
            ("ACTIVATE", 4, &[], 0),
            ("ACTIVATE again", 4, &[], eperm),
            (
                "INIT_RIPAS after ACTIVATE",
                2,
                &range(0x4000_0000, 0x1000, 0),
                eperm,
            ),
        ];
        for (what, sub, arg, want) in steps {
            let got = rme(&vm, *sub, arg);
            check!(got == *want, "{what}: errno {got}, want {want}");
        }
        // A bad user pointer.
        let cap = kvm::KVM_CAP_ARM_RME as u32;
        let got = vm.enable_cap(cap, 0, 8).err().unwrap_or(0);
        check!(
            got == libc::EFAULT,
            "CONFIG with a bad pointer: errno {got}, want EFAULT"
        );
        // A normal VM has no realm sub-commands.
        let plain = kvm
            .create_vm(0)
            .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
        let got = rme(&plain, 1, &[]);
        check!(
            got == einval,
            "CREATE on a normal VM: errno {got}, want EINVAL"
        );
        // Closing the VM tears the realm down (a leak would warn in dmesg,
        // which fails the boot).
        drop(vm);
        Ok(Outcome::Pass)
    }

    /// Initializes a realm vCPU with `features`; returns the errno.
    fn init_vcpu(vm: &Vm, vcpu: &kvm::Vcpu, features: u32) -> i32 {
        let mut init = kvm::VcpuInit::default();
        if let Err(e) = kvm::ioctl_ptr(vm.fd(), kvm::KVM_ARM_PREFERRED_TARGET, &mut init) {
            return e;
        }
        init.features[0] = features;
        kvm::ioctl_ptr(vcpu.fd(), kvm::KVM_ARM_VCPU_INIT, &mut init)
            .err()
            .unwrap_or(0)
    }

    fn finalize_rec(vcpu: &kvm::Vcpu) -> i32 {
        let mut what = kvm::KVM_ARM_VCPU_REC as i32;
        kvm::ioctl_ptr(vcpu.fd(), kvm::KVM_ARM_VCPU_FINALIZE, &mut what)
            .err()
            .unwrap_or(0)
    }

    /// Realm vCPUs: feature 8 is KVM_ARM_VCPU_REC; finalizing creates the
    /// REC (in MPIDR order, before activation); closing destroys them
    /// before the realm (needs an RMM speaking RMI 1.0).
    fn realm_recs() -> TestResult {
        let kvm = open_kvm()?;
        let Some(vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let rec = 1u32 << kvm::KVM_ARM_VCPU_REC;
        let v0 = vm.create_vcpu(0)?;
        let v1 = vm.create_vcpu(1)?;
        let v2 = vm.create_vcpu(2)?;
        let v3 = vm.create_vcpu(3)?;
        let r = init_vcpu(&vm, &v2, 0);
        check!(
            r == libc::EINVAL,
            "realm vCPU without KVM_ARM_VCPU_REC: errno {r}, want EINVAL"
        );
        let r = init_vcpu(&vm, &v2, rec | (1 << 7));
        check!(
            r == libc::EINVAL,
            "realm vCPU with HAS_EL2: errno {r}, want EINVAL"
        );
        let r = init_vcpu(&vm, &v0, rec);
        check!(r == 0, "KVM_ARM_VCPU_INIT(REC) vCPU 0: errno {r}");
        let r = finalize_rec(&v0);
        check!(
            r == libc::EPERM,
            "FINALIZE(REC) before CREATE_REALM: errno {r}, want EPERM"
        );
        check!(rme(&vm, 1, &[]) == 0, "CREATE_REALM failed");
        v0.set_one_reg(REG_PC, 0x8000_0000)?;
        let r = finalize_rec(&v0);
        check!(r == 0, "FINALIZE(REC) vCPU 0: errno {r}");
        let r = finalize_rec(&v0);
        check!(
            r == libc::EEXIST,
            "FINALIZE(REC) twice: errno {r}, want EEXIST"
        );
        // Secondary vCPUs start powered off.
        let r = init_vcpu(&vm, &v1, rec | 1);
        check!(r == 0, "KVM_ARM_VCPU_INIT(REC|POWER_OFF) vCPU 1: errno {r}");
        let r = finalize_rec(&v1);
        check!(r == 0, "FINALIZE(REC) vCPU 1: errno {r}");
        check!(rme(&vm, 4, &[]) == 0, "ACTIVATE_REALM failed");
        let r = init_vcpu(&vm, &v3, rec | 1);
        check!(r == 0, "KVM_ARM_VCPU_INIT(REC) vCPU 3: errno {r}");
        let r = finalize_rec(&v3);
        check!(
            r == libc::EPERM,
            "FINALIZE(REC) after ACTIVATE: errno {r}, want EPERM"
        );
        // Closing everything destroys the RECs, then the realm; a leak
        // would warn and fail the boot.
        drop((v0, v1, v2, v3));
        drop(vm);
        Ok(Outcome::Pass)
    }

    /// The realm counters in the VM's binary stats follow the realm: RD and
    /// start RTTs after CREATE, RTTs made by INIT_RIPAS, RECs, no leaks.
    fn realm_stats() -> TestResult {
        let kvm = open_kvm()?;
        let Some(vm) = realm_vm(&kvm)? else {
            return Ok(Outcome::Skip(NO_REALMS.into()));
        };
        let get = |what: &str| -> Result<(u64, u64, u64, u64), String> {
            let s = vm.stats()?;
            let v = |n: &str| {
                s.get(n)
                    .copied()
                    .ok_or_else(|| format!("{what}: no stat {n}"))
            };
            Ok((
                v("realm_delegated_granules")?,
                v("realm_rtt_pages")?,
                v("realm_leaked_granules")?,
                v("realm_rmi_calls")?,
            ))
        };
        let (d, r, l, c) = get("before CREATE")?;
        check!(
            (d, r, l, c) == (0, 0, 0, 0),
            "before CREATE: delegated {d}, RTTs {r}, leaked {l}, calls {c}"
        );
        check!(rme(&vm, 1, &[]) == 0, "CREATE_REALM failed");
        // 40 bits: RD + two concatenated level-1 tables.
        let (d, r, l, c0) = get("after CREATE")?;
        check!(
            (d, r, l) == (3, 2, 0),
            "after CREATE: delegated {d}, RTTs {r}, leaked {l}; want 3, 2, 0"
        );
        check!(
            c0 >= 4,
            "after CREATE: {c0} RMI calls, want at least 3 delegations + REALM_CREATE"
        );
        // 1 GiB + 4 KiB: the GiB is one level-1 entry; the tail needs a
        // level-2 and a level-3 table.
        check!(
            rme(&vm, 2, &range(0x4000_0000, 0x4000_1000, 0)) == 0,
            "INIT_RIPAS failed"
        );
        let (d, r, l, c1) = get("after INIT_RIPAS")?;
        check!(
            (d, r, l) == (5, 4, 0),
            "after INIT_RIPAS: delegated {d}, RTTs {r}, leaked {l}; want 5, 4, 0"
        );
        check!(c1 > c0, "RMI calls did not grow: {c0} -> {c1}");
        let v0 = vm.create_vcpu(0)?;
        check!(
            init_vcpu(&vm, &v0, 1 << kvm::KVM_ARM_VCPU_REC) == 0,
            "vCPU init failed"
        );
        check!(finalize_rec(&v0) == 0, "FINALIZE(REC) failed");
        let (d, r, l, _) = get("after FINALIZE")?;
        check!(
            d >= 6 && r == 4 && l == 0,
            "after a REC: delegated {d} (want >= 6), RTTs {r}, leaked {l}"
        );
        Ok(Outcome::Pass)
    }

    /// Realm VM types the RMM cannot back are refused.
    fn realm_type_checks() -> TestResult {
        let kvm = open_kvm()?;
        let cap = kvm
            .check_extension(kvm::KVM_CAP_ARM_RME)
            .map_err(|e| format!("errno {e}"))?;
        if cap == 0 {
            return Ok(Outcome::Skip(
                "KVM_CAP_ARM_RME is 0: covered by realm_type_refused_without_cap".into(),
            ));
        }
        for (t, what) in [
            (52u64, "52-bit IPA needs LPA2"),
            (20, "20-bit IPA"),
            (1 << 31, "protected and realm"),
        ] {
            match kvm.create_vm(kvm::KVM_VM_TYPE_ARM_REALM | t) {
                Ok(_) => return Err(format!("realm VM with {what} was created")),
                Err(e) if e == libc::EINVAL => {}
                Err(e) => return Err(format!("{what}: errno {e}, want EINVAL")),
            }
        }
        Ok(Outcome::Pass)
    }

    pub const TESTS: &[Test] = &[
        Test {
            name: "realm_lifecycle",
            run: realm_lifecycle,
        },
        Test {
            name: "realm_run",
            run: realm_run,
        },
        Test {
            name: "realm_secondary_vcpu",
            run: realm_secondary_vcpu,
        },
        Test {
            name: "realm_psci_to_vmm",
            run: realm_psci_to_vmm,
        },
        Test {
            name: "realm_host_call_to_vmm",
            run: realm_host_call_to_vmm,
        },
        Test {
            name: "psci_complete_needs_a_realm",
            run: psci_complete_needs_a_realm,
        },
        Test {
            name: "realm_timer_irq",
            run: realm_timer_irq,
        },
        Test {
            name: "realm_linux_guest",
            run: realm_linux_guest,
        },
        Test {
            name: "rmi_error_trace",
            run: rmi_error_trace,
        },
        Test {
            name: "realm_type_checks",
            run: realm_type_checks,
        },
        Test {
            name: "realm_recs",
            run: realm_recs,
        },
        Test {
            name: "realm_stats",
            run: realm_stats,
        },
        Test {
            name: "kvm_present",
            run: kvm_present,
        },
        Test {
            name: "ipa_size_cap",
            run: ipa_size_cap,
        },
        Test {
            name: "plain_vm_mmio",
            run: plain_vm_mmio,
        },
        Test {
            name: "rme_cap",
            run: rme_cap,
        },
        Test {
            name: "realm_type_refused_without_cap",
            run: realm_type_refused_without_cap,
        },
    ];
}

#[cfg(target_arch = "riscv64")]
mod arch {
    use super::*;

    /// `KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | pc`.
    const REG_PC: u64 = 0x8030_0000_0200_0000;
    const RAM_GPA: u64 = 0x8000_0000;

    /// lui a0, 0x10000; li a1, 40; addi a1, a1, 2; sd a1, 0(a0);
    /// addi a1, a1, 1; sd a1, 0(a0); j .
    const GUEST: [u32; 7] = [
        0x1000_0537,
        0x0280_0593,
        0x0025_8593,
        0x00b5_3023,
        0x0015_8593,
        0x00b5_3023,
        0x0000_006f,
    ];

    /// A non-confidential VM still runs guest code to an MMIO exit.
    fn plain_vm_mmio() -> TestResult {
        let kvm = open_kvm()?;
        let mut vm = kvm
            .create_vm(0)
            .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
        run_to_mmio(&mut vm, RAM_GPA, &GUEST, |vcpu| {
            vcpu.set_one_reg(REG_PC, RAM_GPA)
        })
    }

    /// `KVM_VM_TYPE_RISCV_COVE` (CoVE RFC uAPI).
    const VM_TYPE_COVE: u64 = 1 << 9;

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
    fn cove_vm_type_refused_without_tsm() -> TestResult {
        let kvm = open_kvm()?;
        let ready = tsm_ready();
        match (kvm.create_vm(VM_TYPE_COVE), ready) {
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
    fn cove_measure_region_needs_a_tvm() -> TestResult {
        let kvm = open_kvm()?;
        let mut vm = kvm
            .create_vm(0)
            .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
        let page = vec![0u8; 4096];
        let mut mr = kvm::CoveMeasureRegion {
            userspace_addr: page.as_ptr() as u64,
            gpa: RAM_GPA,
            size: 4096,
        };
        match kvm::ioctl_ptr(vm.fd(), kvm::KVM_RISCV_COVE_MEASURE_REGION, &mut mr) {
            Ok(_) => return Err("MEASURE_REGION succeeded on a normal VM".into()),
            Err(e) if e == libc::EINVAL => {}
            Err(e) => {
                return Err(format!(
                    "MEASURE_REGION on a normal VM: errno {e}, want EINVAL"
                ))
            }
        }
        run_to_mmio(&mut vm, RAM_GPA, &GUEST, |vcpu| {
            vcpu.set_one_reg(REG_PC, RAM_GPA)
        })
    }

    /// Unknown VM type bits are refused with EINVAL (stock riscv KVM
    /// ignored the type).
    fn unknown_vm_type_refused() -> TestResult {
        let kvm = open_kvm()?;
        match kvm.create_vm(1 << 20) {
            Ok(_) => Err("KVM_CREATE_VM(1 << 20) succeeded".into()),
            Err(e) if e == libc::EINVAL => Ok(Outcome::Pass),
            Err(e) => Err(format!("KVM_CREATE_VM(1 << 20): errno {e}, want EINVAL")),
        }
    }

    pub const TESTS: &[Test] = &[
        Test {
            name: "kvm_present",
            run: kvm_present,
        },
        Test {
            name: "plain_vm_mmio",
            run: plain_vm_mmio,
        },
        Test {
            name: "cove_vm_type_refused_without_tsm",
            run: cove_vm_type_refused_without_tsm,
        },
        Test {
            name: "cove_measure_region_needs_a_tvm",
            run: cove_measure_region_needs_a_tvm,
        },
        Test {
            name: "unknown_vm_type_refused",
            run: unknown_vm_type_refused,
        },
    ];
}

fn main() {
    std::process::exit(tap::run("kvm_confvm", arch::TESTS));
}
