// SPDX-License-Identifier: GPL-2.0

//! The realm uAPI: the capability, realm VM types, the lifecycle
//! sub-commands, RECs, the realm stats, and what the VMM is handed
//! (PSCI calls it completes with KVM_ARM_VCPU_RMM_PSCI_COMPLETE, host
//! calls).

use super::open_kvm;
use super::realm::{
    finalize_rec, hypercall_exit, init_ripas, init_vcpu, mmio_at, realm_vm, realm_with, NO_REALMS,
    PAYLOAD_RAM, PAYLOAD_RAM_SIZE, POWER_OFF, PSCI_AFFINITY_INFO, PSCI_CPU_ON, REC, REG_PC, REG_X0,
};
use super::realm_payloads::payload;
use super::realm_payloads::{hc_payload, smp_payload};
use crate::check;
use crate::kvm;
use crate::rme::{
    ArmRmeConfig, ArmRmeInitRipas, ArmRmePopulateRealm, RmeCmd,
    KVM_ARM_RME_POPULATE_FLAGS_MEASURE as MEASURE, KVM_CAP_ARM_RME, KVM_CAP_ARM_RME_CONFIG_REALM,
    KVM_CAP_ARM_RME_MEASUREMENT_ALGO_SHA256 as SHA256,
    KVM_CAP_ARM_RME_MEASUREMENT_ALGO_SHA512 as SHA512, KVM_VM_TYPE_ARM_PROTECTED,
    KVM_VM_TYPE_ARM_REALM,
};
use crate::tap::{Outcome, TestResult};
use kvm_bindings::KVM_ARM_VCPU_HAS_EL2;

/// KVM_CHECK_EXTENSION(KVM_CAP_ARM_RME) answers.
pub fn rme_cap() -> TestResult {
    let kvm = open_kvm()?;
    let v = kvm
        .check_extension(KVM_CAP_ARM_RME)
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
pub fn realm_type_refused_without_cap() -> TestResult {
    let kvm = open_kvm()?;
    let cap = kvm
        .check_extension(KVM_CAP_ARM_RME)
        .map_err(|e| format!("errno {e}"))?;
    if cap != 0 {
        return Ok(Outcome::Skip(
            "realm support is offered; covered by the realm tests".into(),
        ));
    }
    match kvm.create_vm(KVM_VM_TYPE_ARM_REALM) {
        Ok(_) => {
            Err("KVM_CREATE_VM(KVM_VM_TYPE_ARM_REALM) succeeded without KVM_CAP_ARM_RME".into())
        }
        Err(e) if e == libc::EINVAL => Ok(Outcome::Pass),
        Err(e) => Err(format!(
            "KVM_CREATE_VM(KVM_VM_TYPE_ARM_REALM): errno {e}, want EINVAL"
        )),
    }
}

/// Realm VM types the RMM cannot back are refused.
pub fn realm_type_checks() -> TestResult {
    let kvm = open_kvm()?;
    let cap = kvm
        .check_extension(KVM_CAP_ARM_RME)
        .map_err(|e| format!("errno {e}"))?;
    if cap == 0 {
        return Ok(Outcome::Skip(
            "KVM_CAP_ARM_RME is 0: covered by realm_type_refused_without_cap".into(),
        ));
    }
    // 52 bits (LPA2): created, as QEMU's probe needs when the RMM offers
    // it, but no realm of that size can be made (EINVAL at CREATE_REALM);
    // refused at once otherwise.
    match kvm.create_vm(KVM_VM_TYPE_ARM_REALM | 52) {
        Ok(vm) => {
            let r = vm.rme(RmeCmd::CreateRealm);
            check!(
                r == libc::EINVAL,
                "CREATE_REALM of 52 bits: errno {r}, want EINVAL"
            );
        }
        Err(e) if e == libc::EINVAL => {}
        Err(e) => {
            return Err(format!(
                "52-bit realm VM: errno {e}, want EINVAL or success"
            ))
        }
    }
    for (t, what) in [
        (20u64, "20-bit IPA"),
        (KVM_VM_TYPE_ARM_PROTECTED, "protected and realm"),
    ] {
        match kvm.create_vm(KVM_VM_TYPE_ARM_REALM | t) {
            Ok(_) => return Err(format!("realm VM with {what} was created")),
            Err(e) if e == libc::EINVAL => {}
            Err(e) => return Err(format!("{what}: errno {e}, want EINVAL")),
        }
    }
    Ok(Outcome::Pass)
}

/// One `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` call of [`realm_lifecycle`].
enum Call<'a> {
    /// A sub-command the uAPI knows, with its typed argument.
    Cmd(RmeCmd<'a>),
    /// `args[0]`, `args[1]` as given.
    Raw(u64, u64),
}

/// A realm VM through the uAPI sub-commands, good and bad arguments,
/// in and out of order (needs an RMM that runs realms, RMI 1.0 or 2.0).
pub fn realm_lifecycle() -> TestResult {
    use Call::{Cmd, Raw};
    use RmeCmd::{ActivateRealm, ConfigRealm, CreateRealm, InitRipasRealm, PopulateRealm};
    let kvm = open_kvm()?;
    let Some(vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let (einval, eperm, eexist, efault) = (libc::EINVAL, libc::EPERM, libc::EEXIST, libc::EFAULT);
    let mut rpv = [0u8; 64];
    rpv[..4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    let ripas = ArmRmeInitRipas::new;
    let pop = ArmRmePopulateRealm::new;
    let steps: &[(&str, Call<'_>, i32)] = &[
        (
            "INIT_RIPAS before CREATE",
            Cmd(InitRipasRealm(&ripas(0, 0x1000))),
            eperm,
        ),
        ("ACTIVATE before CREATE", Cmd(ActivateRealm), eperm),
        (
            "CONFIG unknown item",
            Cmd(ConfigRealm(&ArmRmeConfig::item(7))),
            einval,
        ),
        (
            "CONFIG unknown hash",
            Cmd(ConfigRealm(&ArmRmeConfig::hash_algo(9))),
            einval,
        ),
        (
            "CONFIG SHA-512",
            Cmd(ConfigRealm(&ArmRmeConfig::hash_algo(SHA512))),
            0,
        ),
        ("CONFIG RPV", Cmd(ConfigRealm(&ArmRmeConfig::rpv(rpv))), 0),
        ("CREATE", Cmd(CreateRealm), 0),
        ("CREATE again", Cmd(CreateRealm), eexist),
        (
            "CONFIG after CREATE",
            Cmd(ConfigRealm(&ArmRmeConfig::hash_algo(SHA256))),
            eperm,
        ),
        (
            "INIT_RIPAS unaligned",
            Cmd(InitRipasRealm(&ripas(0x4000_0800, 0x1000))),
            einval,
        ),
        (
            "INIT_RIPAS empty",
            Cmd(InitRipasRealm(&ripas(0x4000_0000, 0))),
            einval,
        ),
        (
            "INIT_RIPAS reserved set",
            Cmd(InitRipasRealm(&ArmRmeInitRipas {
                base: 0x4000_0000,
                size: 0x1000,
                reserved: [0, 1],
            })),
            einval,
        ),
        (
            "INIT_RIPAS shared half",
            Cmd(InitRipasRealm(&ripas(1 << 39, 0x1000))),
            einval,
        ),
        (
            "INIT_RIPAS 1 GiB + 4 KiB",
            Cmd(InitRipasRealm(&ripas(0x4000_0000, 0x4000_1000))),
            0,
        ),
        (
            "POPULATE without a guest_memfd memslot",
            Cmd(PopulateRealm(&pop(0x4000_0000, 0x1000, 0))),
            efault,
        ),
        (
            "POPULATE unknown flag",
            Cmd(PopulateRealm(&pop(0x4000_0000, 0x1000, 2))),
            einval,
        ),
        (
            "POPULATE unaligned",
            Cmd(PopulateRealm(&pop(0x4000_0800, 0x1000, MEASURE))),
            einval,
        ),
        ("unknown sub-command", Raw(9, 0), einval),
        ("ACTIVATE", Cmd(ActivateRealm), 0),
        ("ACTIVATE again", Cmd(ActivateRealm), eperm),
        (
            "INIT_RIPAS after ACTIVATE",
            Cmd(InitRipasRealm(&ripas(0x4000_0000, 0x1000))),
            eperm,
        ),
        // A pointer the kernel cannot read.
        (
            "CONFIG with a bad pointer",
            Raw(KVM_CAP_ARM_RME_CONFIG_REALM, 8),
            efault,
        ),
    ];
    for (what, call, want) in steps {
        let got = match call {
            Cmd(cmd) => vm.rme(*cmd),
            Raw(sub, arg) => vm.rme_raw(*sub, *arg),
        };
        check!(got == *want, "{what}: errno {got}, want {want}");
    }
    // A normal VM has no realm sub-commands.
    let plain = kvm
        .create_vm(0)
        .map_err(|e| format!("KVM_CREATE_VM: errno {e}"))?;
    let got = plain.rme(CreateRealm);
    check!(
        got == einval,
        "CREATE on a normal VM: errno {got}, want EINVAL"
    );
    // Closing the VM tears the realm down (a leak would warn in dmesg,
    // which fails the boot).
    drop(vm);
    Ok(Outcome::Pass)
}

/// Realm vCPUs: feature 8 is KVM_ARM_VCPU_REC; finalizing creates the
/// REC (in MPIDR order, before activation); closing destroys them
/// before the realm (needs an RMM that runs realms, RMI 1.0 or 2.0).
pub fn realm_recs() -> TestResult {
    let kvm = open_kvm()?;
    let Some(vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let v0 = vm.create_vcpu(0)?;
    let v1 = vm.create_vcpu(1)?;
    let v2 = vm.create_vcpu(2)?;
    let v3 = vm.create_vcpu(3)?;
    // As QEMU does: the REC bit is optional at INIT, FINALIZE(REC) makes
    // the REC either way.
    let r = init_vcpu(&vm, &v2, 0);
    check!(
        r == 0,
        "realm vCPU without KVM_ARM_VCPU_REC: errno {r}, want 0"
    );
    let r = init_vcpu(&vm, &v2, REC | (1 << KVM_ARM_VCPU_HAS_EL2));
    check!(
        r == libc::EINVAL,
        "realm vCPU with HAS_EL2: errno {r}, want EINVAL"
    );
    let r = init_vcpu(&vm, &v0, REC);
    check!(r == 0, "KVM_ARM_VCPU_INIT(REC) vCPU 0: errno {r}");
    let r = finalize_rec(&v0);
    check!(
        r == libc::EPERM,
        "FINALIZE(REC) before CREATE_REALM: errno {r}, want EPERM"
    );
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    v0.set_one_reg(REG_PC, 0x8000_0000)?;
    let r = finalize_rec(&v0);
    check!(r == 0, "FINALIZE(REC) vCPU 0: errno {r}");
    let r = finalize_rec(&v0);
    check!(
        r == libc::EEXIST,
        "FINALIZE(REC) twice: errno {r}, want EEXIST"
    );
    // Secondary vCPUs start powered off.
    let r = init_vcpu(&vm, &v1, REC | POWER_OFF);
    check!(r == 0, "KVM_ARM_VCPU_INIT(REC|POWER_OFF) vCPU 1: errno {r}");
    let r = finalize_rec(&v1);
    check!(r == 0, "FINALIZE(REC) vCPU 1: errno {r}");
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");
    let r = init_vcpu(&vm, &v3, REC | POWER_OFF);
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
pub fn realm_stats() -> TestResult {
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
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
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
        init_ripas(&vm, 0x4000_0000, 0x4000_1000) == 0,
        "INIT_RIPAS failed"
    );
    let (d, r, l, c1) = get("after INIT_RIPAS")?;
    check!(
        (d, r, l) == (5, 4, 0),
        "after INIT_RIPAS: delegated {d}, RTTs {r}, leaked {l}; want 5, 4, 0"
    );
    check!(c1 > c0, "RMI calls did not grow: {c0} -> {c1}");
    let v0 = vm.create_vcpu(0)?;
    check!(init_vcpu(&vm, &v0, REC) == 0, "vCPU init failed");
    check!(finalize_rec(&v0) == 0, "FINALIZE(REC) failed");
    let (d, r, l, _) = get("after FINALIZE")?;
    check!(
        d >= 6 && r == 4 && l == 0,
        "after a REC: delegated {d} (want >= 6), RTTs {r}, leaked {l}"
    );
    Ok(Outcome::Pass)
}

/// KVM_ARM_VCPU_RMM_PSCI_COMPLETE is for realm vCPUs: EINVAL on a
/// normal VM's vCPU (runs under TRP too).
pub fn psci_complete_needs_a_realm() -> TestResult {
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

/// The VMM takes PSCI CPU_ON and AFFINITY_INFO (its SMCCC filter
/// forwards them): they exit as KVM_EXIT_HYPERCALL, KVM_RUN is refused
/// until KVM_ARM_VCPU_RMM_PSCI_COMPLETE, whose bad arguments are
/// refused with EINVAL; then the secondary starts as with in-kernel
/// PSCI (needs an RMM that runs realms, RMI 1.0 or 2.0).
pub fn realm_psci_to_vmm() -> TestResult {
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
        flags & u64::from(kvm_bindings::KVM_HYPERCALL_EXIT_SMC) != 0,
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

/// RSI_HOST_CALL reaches the VMM that forwards its function ID, as
/// KVM_EXIT_HYPERCALL (no SMC flag) whose `ret` the realm reads back
/// as x0; without forwarding the kernel answers NOT_SUPPORTED (needs
/// an RMM that runs realms, RMI 1.0 or 2.0).
pub fn realm_host_call_to_vmm() -> TestResult {
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

/// QEMU's `rme-guest` start-up, replayed (QEMU cca/v3 `5ccab349dc`,
/// `target/arm/kvm.c` and `kvm-rme.c`):
///
/// 1. its host-CPU probe: a scratch realm VM of the host's largest IPA
///    size, a vCPU initialised with the host's features and no REC bit,
///    ID registers read with `KVM_GET_ONE_REG`, then closed unrun;
/// 2. its realm set-up: vCPUs initialised without the REC bit, registers,
///    vCPU events and MP state written, `KVM_ARM_VCPU_INIT` again at the
///    start-up reset, then CONFIG, CREATE, INIT_RIPAS, POPULATE, the RECs
///    made by `FINALIZE(REC)` alone, ACTIVATE; the realm then runs.
pub fn realm_qemu_sequence() -> TestResult {
    let kvm = open_kvm()?;
    if kvm.check_extension(KVM_CAP_ARM_RME).unwrap_or(0) == 0 {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    }
    // 1. The probe.
    let max = kvm
        .check_extension(kvm::KVM_CAP_ARM_VM_IPA_SIZE)
        .map_err(|e| format!("KVM_CAP_ARM_VM_IPA_SIZE: errno {e}"))?;
    // CAST: an IPA size in bits.
    let scratch = kvm
        .create_vm(KVM_VM_TYPE_ARM_REALM | max.max(0) as u64)
        .map_err(|e| format!("scratch realm VM of {max} bits: errno {e}"))?;
    let v = scratch.create_vcpu(0)?;
    let mut init = scratch
        .preferred_target()
        .map_err(|e| format!("KVM_ARM_PREFERRED_TARGET: errno {e}"))?;
    // QEMU asks the VM it is about to create, which answers as /dev/kvm
    // for these capabilities.
    let has = |cap| kvm.check_extension(cap).unwrap_or(0) > 0;
    let mut f = 0u32;
    if has(kvm_bindings::KVM_CAP_ARM_SVE) {
        f |= 1 << kvm_bindings::KVM_ARM_VCPU_SVE;
    }
    if has(kvm_bindings::KVM_CAP_ARM_PTRAUTH_ADDRESS)
        && has(kvm_bindings::KVM_CAP_ARM_PTRAUTH_GENERIC)
    {
        f |= (1 << kvm_bindings::KVM_ARM_VCPU_PTRAUTH_ADDRESS)
            | (1 << kvm_bindings::KVM_ARM_VCPU_PTRAUTH_GENERIC);
    }
    if has(kvm_bindings::KVM_CAP_ARM_PMU_V3) {
        f |= 1 << kvm_bindings::KVM_ARM_VCPU_PMU_V3;
    }
    init.features[0] = f;
    v.init(&init)
        .map_err(|e| format!("probe KVM_ARM_VCPU_INIT({f:#x}) without REC: errno {e}"))?;
    // ID_AA64PFR0_EL1, ID_AA64ISAR0_EL1, ID_AA64MMFR0_EL1 (op0 3, op1 0,
    // CRn 0, CRm 4/6/7, op2 0), as QEMU reads them.
    for id in [
        0x6030_0000_0013_c020u64,
        0x6030_0000_0013_c030,
        0x6030_0000_0013_c038,
    ] {
        v.get_one_reg(id)
            .map_err(|e| format!("probe KVM_GET_ONE_REG {id:#x}: errno {e}"))?;
    }
    drop(v);
    drop(scratch);

    // 2. The realm, in QEMU's order.
    let Some((vm, v0)) = payload_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let psci = 1 << kvm_bindings::KVM_ARM_VCPU_PSCI_0_2;
    let r = init_vcpu(&vm, &v0, psci);
    check!(r == 0, "KVM_ARM_VCPU_INIT without REC: errno {r}");
    for i in 0..8 {
        v0.set_one_reg(REG_X0 + 2 * i, 0)?;
    }
    v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
    v0.clear_vcpu_events()
        .map_err(|e| format!("KVM_SET_VCPU_EVENTS before the REC: errno {e}"))?;
    v0.set_mp_state(kvm_bindings::KVM_MP_STATE_RUNNABLE)
        .map_err(|e| format!("KVM_SET_MP_STATE before the REC: errno {e}"))?;
    // The start-up reset initialises the vCPU again, then rewrites it.
    let r = init_vcpu(&vm, &v0, psci);
    check!(r == 0, "second KVM_ARM_VCPU_INIT: errno {r}");
    v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
    let hash = ArmRmeConfig::hash_algo(SHA512);
    check!(
        vm.rme(RmeCmd::ConfigRealm(&hash)) == 0,
        "CONFIG hash SHA512 failed"
    );
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let r = init_ripas(&vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64);
    check!(r == 0, "INIT_RIPAS: errno {r}");
    let p = ArmRmePopulateRealm::new(PAYLOAD_RAM, 0x1000, MEASURE);
    check!(vm.rme(RmeCmd::PopulateRealm(&p)) == 0, "POPULATE failed");
    let r = finalize_rec(&v0);
    check!(
        r == 0,
        "FINALIZE(REC) of a vCPU initialised without REC: errno {r}"
    );
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");
    // The REC starts at the PC written before it existed: the payload's
    // first MMIO write.
    mmio_at(&v0, "first exit", 0)?;
    drop(v0);
    drop(vm);
    Ok(Outcome::Pass)
}

/// A realm VM with the payload in private RAM (all of it private, as
/// VMMs set it up) and vCPU 0, not initialised; `None` without realms.
fn payload_vm(kvm: &crate::kvm::Kvm) -> Result<Option<(crate::kvm::Vm, crate::kvm::Vcpu)>, String> {
    let Some(mut vm) = realm_vm(kvm)? else {
        return Ok(None);
    };
    vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, payload())?;
    vm.set_memory_attributes(
        PAYLOAD_RAM,
        PAYLOAD_RAM_SIZE as u64,
        u64::from(kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE),
    )?;
    let v0 = vm.create_vcpu(0)?;
    Ok(Some((vm, v0)))
}

/// kvmtool's order, the other one the v7 uAPI allows: the REC bit at
/// `KVM_ARM_VCPU_INIT`, CONFIG(SHA256), the images populated first (which
/// makes them RAM), then INIT_RIPAS only over the RAM around them.
pub fn realm_kvmtool_sequence() -> TestResult {
    let kvm = open_kvm()?;
    let Some((vm, v0)) = payload_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let r = init_vcpu(&vm, &v0, REC | (1 << kvm_bindings::KVM_ARM_VCPU_PSCI_0_2));
    check!(r == 0, "KVM_ARM_VCPU_INIT with REC: errno {r}");
    v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
    let hash = ArmRmeConfig::hash_algo(SHA256);
    check!(
        vm.rme(RmeCmd::ConfigRealm(&hash)) == 0,
        "CONFIG hash SHA256 failed"
    );
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let p = ArmRmePopulateRealm::new(PAYLOAD_RAM, 0x1000, MEASURE);
    let r = vm.rme(RmeCmd::PopulateRealm(&p));
    check!(r == 0, "POPULATE before any INIT_RIPAS: errno {r}");
    let rest = PAYLOAD_RAM_SIZE as u64 - 0x1000;
    let r = init_ripas(&vm, PAYLOAD_RAM + 0x1000, rest);
    check!(r == 0, "INIT_RIPAS over the RAM after the image: errno {r}");
    let r = finalize_rec(&v0);
    check!(r == 0, "FINALIZE(REC): errno {r}");
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");
    mmio_at(&v0, "first exit", 0)?;
    Ok(Outcome::Pass)
}

/// `KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_ITS)` is `ENODEV` on a realm
/// VM (QEMU then needs `its=off`), while a normal VM still gets its ITS.
pub fn realm_its_refused() -> TestResult {
    let kvm = open_kvm()?;
    let plain = kvm
        .create_vm(0)
        .map_err(|e| format!("KVM_CREATE_VM(0): errno {e}"))?;
    let r = plain.create_its();
    check!(r.is_ok(), "a normal VM's ITS: {r:?}");
    let Some(vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let r = vm.create_its();
    check!(
        r == Err(libc::ENODEV),
        "a realm VM's ITS: {r:?}, not ENODEV"
    );
    Ok(Outcome::Pass)
}
