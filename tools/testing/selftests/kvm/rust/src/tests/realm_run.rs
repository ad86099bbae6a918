// SPDX-License-Identifier: GPL-2.0

//! Running realm payloads: the main payload end to end (faults, RIPAS
//! changes, the shared alias, an ioeventfd), a secondary vCPU started
//! with PSCI CPU_ON, and a virtual timer interrupt through the in-kernel
//! vgic.

use std::os::fd::AsRawFd;

use super::open_kvm;
use super::realm::{
    finalize_rec, init_ripas, init_vcpu, mmio_at, populate, realm_vm, realm_with, run_bounded,
    GICD, GICR, NO_REALMS, PAYLOAD_MMIO, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, REC, REG_PC,
};
use super::realm_payloads::{irq_payload, payload, smp_payload, sweep_payload};
use crate::check;
use crate::kvm;
use crate::rme::{ArmRmePopulateRealm, RmeCmd};
use crate::tap::{Outcome, TestResult};

/// A realm runs the payload end to end: POPULATE from guest_memfd,
/// RSI calls, a private fault served from guest_memfd, MMIO exits, a
/// RIPAS change refused (memory attributes left private) then one
/// accepted (KVM_SET_MEMORY_ATTRIBUTES to shared), a write through the
/// shared alias that lands in the VMM's page, an MMIO doorbell served
/// by an ioeventfd in the kernel, PSCI SYSTEM_OFF; then the counters
/// (needs an RMM speaking RMI 1.0).
pub fn realm_run() -> TestResult {
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
        u64::from(kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE),
    )?;
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let r = init_ripas(&vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64);
    check!(r == 0, "INIT_RIPAS: errno {r}");
    let r = populate(&vm, PAYLOAD_RAM, 0x1000);
    check!(r == 0, "POPULATE: errno {r}");
    let r = populate(&vm, PAYLOAD_RAM, 0x1000);
    check!(r != 0, "POPULATE of a populated granule succeeded");
    let doorbell = vm.ioeventfd(PAYLOAD_MMIO + 0x200, 8)?;
    let past_end = ArmRmePopulateRealm::new(PAYLOAD_RAM + PAYLOAD_RAM_SIZE as u64, 0x1000, 0);
    let r = vm.rme(RmeCmd::PopulateRealm(&past_end));
    check!(
        r == libc::EFAULT,
        "POPULATE past the memslot: errno {r}, want EFAULT"
    );
    let v0 = vm.create_vcpu(0)?;
    check!(init_vcpu(&vm, &v0, REC) == 0, "vCPU init failed");
    v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
    check!(finalize_rec(&v0) == 0, "FINALIZE(REC) failed");
    let (e, _) = v0.run_raw();
    check!(
        e == libc::EPERM,
        "KVM_RUN before ACTIVATE: errno {e}, want EPERM"
    );
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");

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
        if flags & u64::from(kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE) != 0
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
    // SAFETY: `user` maps PAYLOAD_RAM_SIZE bytes; 0xc000 + 8 is inside,
    // 8-byte aligned (the mapping is page aligned).
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
    // SAFETY: reads at most 8 bytes into a local 8-byte buffer from our
    // eventfd.
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

/// Two realm vCPUs: the secondary's REC is not runnable until the
/// boot vCPU's PSCI CPU_ON, which the kernel completes towards it
/// (RMI_PSCI_COMPLETE); until then KVM_RUN on it waits, and a signal
/// ends the wait with EINTR (needs an RMM speaking RMI 1.0).
pub fn realm_secondary_vcpu() -> TestResult {
    let kvm = open_kvm()?;
    let Some(mut vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    // vCPU 1's REC is created not runnable (POWER_OFF).
    let v = realm_with(&mut vm, smp_payload(), None, 2)?;
    let (v0, v1) = (&v[0], &v[1]);

    let (e, reason) = run_bounded(v1, 200)?;
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

/// A realm takes a virtual timer interrupt: the in-kernel vgic (its
/// distributor and redistributor emulated through the shared alias)
/// and the timer state of each REC exit inject PPI 27, which reaches
/// the realm through the list registers of rec_run (needs an RMM
/// speaking RMI 1.0).
pub fn realm_timer_irq() -> TestResult {
    let kvm = open_kvm()?;
    let Some(mut vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let code = irq_payload();
    check!(code.len() <= 4096, "payload of {} bytes", code.len());
    vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, code)?;
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let r = init_ripas(&vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64);
    check!(r == 0, "INIT_RIPAS: errno {r}");
    let r = populate(&vm, PAYLOAD_RAM, 0x1000);
    check!(r == 0, "POPULATE: errno {r}");
    let v0 = vm.create_vcpu(0)?;
    check!(init_vcpu(&vm, &v0, REC) == 0, "vCPU init failed");
    let _gic = vm.add_gicv3(GICD, GICR)?;
    v0.set_one_reg(REG_PC, PAYLOAD_RAM)?;
    check!(finalize_rec(&v0) == 0, "FINALIZE(REC) failed");
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");
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

/// The shared memory the sweep payload writes, through its shared alias.
const SWEEP: u64 = 0xc000_0000;
const SWEEP_SIZE: usize = 4 << 20;

/// One run of the sweep payload with the VMM's memory for it advised
/// `advice` (`MADV_HUGEPAGE` or `MADV_NOHUGEPAGE`): the faults it took.
fn sweep(kvm: &crate::kvm::Kvm, advice: i32) -> Result<Option<u64>, String> {
    let Some(mut vm) = realm_vm(kvm)? else {
        return Ok(None);
    };
    let mem = vm.add_private_memory(1, SWEEP, SWEEP_SIZE, &[])?;
    // SAFETY: `mem` is the start of a SWEEP_SIZE mapping of ours; advice
    // changes no contents.
    if unsafe { libc::madvise(mem.cast(), SWEEP_SIZE, advice) } != 0 {
        return Err(format!("madvise: {}", std::io::Error::last_os_error()));
    }
    let v = realm_with(&mut vm, sweep_payload(), None, 1)?;
    let n = mmio_at(&v[0], "pages written", 0)?;
    check!(n == (SWEEP_SIZE >> 12) as u64, "the payload wrote {n} pages");
    let (e, reason) = v[0].run_raw();
    check!(
        e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
        "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
    );
    for page in 0..SWEEP_SIZE >> 12 {
        // SAFETY: inside the mapping; the realm has stopped.
        let got = unsafe { core::ptr::read_volatile(mem.add(page << 12).cast::<u64>()) };
        let want = (1u64 << 39) | (SWEEP + ((page as u64) << 12));
        check!(got == want, "page {page} of the VMM's memory holds {got:#x}, want {want:#x}");
    }
    Ok(Some(v[0].stats()?.get("rec_exit_fault").copied().unwrap_or(0)))
}

/// A realm writes 4 MiB through its shared alias: with transparent huge
/// pages behind the VMM's memory the host maps it in 2 MiB blocks, so
/// it faults once per 2 MiB, not once per 4 KiB; either way every write
/// lands in the VMM's memory.
pub fn realm_shared_blocks() -> TestResult {
    let kvm = open_kvm()?;
    let Some(small) = sweep(&kvm, libc::MADV_NOHUGEPAGE)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !thp.contains("[always]") && !thp.contains("[madvise]") {
        return Ok(Outcome::Skip(format!("no transparent huge pages ({}); 4 KiB: {small} faults", thp.trim())));
    }
    let huge = sweep(&kvm, libc::MADV_HUGEPAGE)?.unwrap_or(0);
    println!("# realm_shared_blocks: 4 MiB of shared alias: {huge} faults with huge pages, {small} without");
    check!(small >= (SWEEP_SIZE >> 12) as u64, "{small} faults with 4 KiB pages, want at least one a page");
    check!(huge <= 4, "{huge} faults with huge pages, want about one per 2 MiB");
    Ok(Outcome::Pass)
}
