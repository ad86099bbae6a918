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
use super::realm_payloads::{
    bad_rsi_payload, irq_payload, payload, race_payload, smp_payload, sweep_payload,
};
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
/// (needs an RMM that runs realms, RMI 1.0 or 2.0).
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
/// ends the wait with EINTR (needs an RMM that runs realms, RMI 1.0 or 2.0).
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

/// Runs vCPU `n` of the race realm until the realm is off: its report
/// (an MMIO write at PAYLOAD_MMIO + 0x200 + 8n), RIPAS changes answered
/// with memory attributes, nothing else.
fn race_vcpu(vm: &kvm::Vm, v: &kvm::Vcpu, n: u64, abort: &Abort) -> Result<(u64, u64), String> {
    let mut report = None;
    let mut ripas = 0;
    loop {
        let (e, reason) = v.run_raw();
        match (e, reason) {
            (libc::EINTR, _) if abort.stop.load(std::sync::atomic::Ordering::SeqCst) => {
                return Err(format!("vCPU {n}: stopped, another vCPU failed"));
            }
            (0, kvm::KVM_EXIT_MMIO) => {
                let m = v.mmio();
                check!(
                    m.is_write && m.phys_addr == PAYLOAD_MMIO + 0x200 + 8 * n,
                    "vCPU {n}: MMIO at {:#x}",
                    m.phys_addr
                );
                report = Some(u64::from_le_bytes(m.data));
            }
            (e, kvm::KVM_EXIT_MEMORY_FAULT) if e == libc::EFAULT => {
                ripas += 1;
                let (flags, gpa, size) = v.memory_fault();
                check!(
                    gpa >= PAYLOAD_RAM && gpa + size <= PAYLOAD_RAM + RACE_RAM,
                    "vCPU {n}: memory fault outside RAM: {gpa:#x}+{size:#x}"
                );
                vm.set_memory_attributes(gpa, size, flags & u64::from(kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE))?;
            }
            (0, kvm::KVM_EXIT_SYSTEM_EVENT) => {
                return report.map(|r| (r, ripas)).ok_or(format!("vCPU {n}: no report"));
            }
            (e, r) => return Err(format!("vCPU {n}: KVM_RUN errno {e}, exit {r}")),
        }
    }
}

/// RAM of the race realm.
const RACE_RAM: u64 = 2 << 20;

/// Stops the other vCPU threads of a test when one fails: they would
/// wait for it in the realm for good.  SIGUSR1 (a handler that does
/// nothing, without SA_RESTART) makes their KVM_RUN return EINTR.
#[derive(Default)]
struct Abort {
    stop: std::sync::atomic::AtomicBool,
    /// `pthread_t`s, as integers (musl's is a pointer).
    threads: std::sync::Mutex<Vec<usize>>,
}

extern "C" fn on_usr1(_: libc::c_int) {}

impl Abort {
    fn install() -> Result<(), String> {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags);
        // the handler does nothing.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
            if libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut()) != 0 {
                return Err("sigaction(SIGUSR1)".into());
            }
        }
        Ok(())
    }

    fn join(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Ok(mut t) = self.threads.lock() {
            // CAST: a thread handle kept as an integer.
            t.push(me as usize);
        }
    }

    fn fire(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        if let Ok(t) = self.threads.lock() {
            // CAST: the integer form `join` stored.
            for &th in t.iter().filter(|&&th| th != me as usize) {
                // SAFETY: `th` is a thread of this test's scope, alive
                // until the scope joins it; SIGUSR1's handler does
                // nothing.
                unsafe { libc::pthread_kill(th as libc::pthread_t, libc::SIGUSR1) };
            }
        }
    }
}

/// Four vCPUs of one realm, each on its own thread, fault the same 64
/// private pages at once, while the fourth first changes another range
/// to EMPTY and back to RAM twice, faulting it in after each change.
/// Every word written must read back on every vCPU, every RIPAS change
/// must be accepted in full, and teardown must leave nothing with the
/// RMM (needs an RMM that runs realms, RMI 1.0 or 2.0).
pub fn realm_concurrent_faults() -> TestResult {
    let kvm = open_kvm()?;
    let Some(mut vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    vm.add_private_memory(0, PAYLOAD_RAM, RACE_RAM as usize, race_payload())?;
    vm.set_memory_attributes(PAYLOAD_RAM, RACE_RAM, u64::from(kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE))?;
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let r = init_ripas(&vm, PAYLOAD_RAM, RACE_RAM);
    check!(r == 0, "INIT_RIPAS: errno {r}");
    let r = populate(&vm, PAYLOAD_RAM, 0x1000);
    check!(r == 0, "POPULATE: errno {r}");
    let mut v = Vec::new();
    for i in 0..4 {
        let c = vm.create_vcpu(i)?;
        check!(init_vcpu(&vm, &c, REC) == 0, "vCPU {i} init failed");
        c.set_one_reg(REG_PC, PAYLOAD_RAM)?;
        check!(finalize_rec(&c) == 0, "FINALIZE(REC) vCPU {i} failed");
        v.push(c);
    }
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");
    // Each thread owns its vCPU and gives back (report, RIPAS exits,
    // served faults); the first to fail stops the others.
    Abort::install()?;
    let abort = Abort::default();
    let results: Vec<Result<(u64, u64, u64), String>> = std::thread::scope(|sc| {
        let (vm, abort) = (&vm, &abort);
        let hs: Vec<_> = v
            .into_iter()
            .enumerate()
            .map(|(n, c)| {
                sc.spawn(move || {
                    abort.join();
                    let r = race_vcpu(vm, &c, n as u64, abort);
                    if r.is_err() {
                        abort.fire();
                    }
                    let (report, ripas) = r?;
                    let faults = c.stats()?.get("rec_exit_fault").copied().unwrap_or(0);
                    Ok((report, ripas, faults))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a vCPU thread panicked".into())))
            .collect()
    });
    let mut faults = 0;
    let mut ripas_exits = 0;
    for (n, r) in results.into_iter().enumerate() {
        let (report, ripas, f) = r?;
        let (errors, ripas_bad) = (report & 0xffff_ffff, report >> 32);
        check!(errors == 0, "vCPU {n}: {errors} words of the shared range read back wrong");
        check!(ripas_bad == 0, "vCPU {n}: RIPAS changes went wrong: {ripas_bad:#x}");
        ripas_exits += ripas;
        faults += f;
    }
    check!(ripas_exits >= 4, "{ripas_exits} RIPAS memory faults, want at least 4");
    check!(faults >= 64, "{faults} served faults for 64 shared and 128 changed pages, want at least 64");
    println!("# realm_concurrent_faults: 4 vCPUs, {faults} faults served, {ripas_exits} RIPAS changes answered");
    drop(vm);
    Ok(Outcome::Pass)
}

/// Writes `value` to debugfs `fail_rmi/<name>`.
fn fail_rmi(name: &str, value: &str) -> Result<(), String> {
    let p = format!("/sys/kernel/debug/fail_rmi/{name}");
    std::fs::write(&p, value).map_err(|e| format!("{p}: {e}"))
}

/// One realm under RMI failure injection: set-up, then the `realm_run`
/// payload until it powers off, every MMIO read answered 0 and every
/// RIPAS change accepted.  `Ok(None)` if it ran to its end; `Ok(Some)`
/// with the step that failed and its errno; `Err` only for what must not
/// happen: a KVM_RUN that neither returns nor fails (the 5 s watchdog).
fn realm_under_injection(kvm: &kvm::Kvm) -> Result<Option<(&'static str, i32)>, String> {
    let Some(mut vm) = realm_vm(kvm)? else {
        return Err("no realm VM".into());
    };
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, payload()).is_err() {
        return Ok(Some(("memslot", errno())));
    }
    let private = u64::from(kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE);
    if vm.set_memory_attributes(PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64, private).is_err() {
        return Ok(Some(("attributes", errno())));
    }
    let r = vm.rme(RmeCmd::CreateRealm);
    if r != 0 {
        return Ok(Some(("CREATE_REALM", r)));
    }
    let r = init_ripas(&vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64);
    if r != 0 {
        return Ok(Some(("INIT_RIPAS", r)));
    }
    let r = populate(&vm, PAYLOAD_RAM, 0x1000);
    if r != 0 {
        return Ok(Some(("POPULATE", r)));
    }
    let Ok(v0) = vm.create_vcpu(0) else {
        return Ok(Some(("CREATE_VCPU", errno())));
    };
    let r = init_vcpu(&vm, &v0, REC);
    if r != 0 {
        return Ok(Some(("VCPU_INIT", r)));
    }
    if v0.set_one_reg(REG_PC, PAYLOAD_RAM).is_err() {
        return Ok(Some(("SET_ONE_REG", errno())));
    }
    let r = finalize_rec(&v0);
    if r != 0 {
        return Ok(Some(("FINALIZE", r)));
    }
    let r = vm.rme(RmeCmd::ActivateRealm);
    if r != 0 {
        return Ok(Some(("ACTIVATE_REALM", r)));
    }
    for _ in 0..200 {
        let (e, reason) = run_bounded(&v0, 5_000)?;
        match (e, reason) {
            (libc::EINTR, _) => return Err("KVM_RUN stuck for 5 s under injection".into()),
            (0, kvm::KVM_EXIT_MMIO) => {
                if !v0.mmio().is_write {
                    v0.set_mmio_data([0; 8]);
                }
            }
            (e, kvm::KVM_EXIT_MEMORY_FAULT) if e == libc::EFAULT => {
                let (flags, gpa, size) = v0.memory_fault();
                let p = flags & u64::from(kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE);
                if vm.set_memory_attributes(gpa, size, p).is_err() {
                    return Ok(Some(("attributes", errno())));
                }
            }
            (0, kvm::KVM_EXIT_SYSTEM_EVENT) => return Ok(None),
            (0, r) => return Err(format!("KVM_RUN: unexpected exit {r}")),
            (e, _) => return Ok(Some(("KVM_RUN", e))),
        }
    }
    Err("the payload did not end in 200 exits".into())
}

/// RMI failures injected in the kernel (debugfs `fail_rmi/`, the
/// fault-injection framework) while 40 realms are set up, run the
/// `realm_run` payload (RSI calls, faults, RIPAS changes, MMIO, a
/// shared-page write) and are torn down: every failure must surface as
/// an errno of the step it hit, never a stuck KVM_RUN, a WARN or a
/// crash; after each realm's teardown the RMM holds no more granules
/// than before except counted leaks.  Then, with injection off, a realm
/// runs to its end.
pub fn realm_rmi_fault_injection() -> TestResult {
    let kvm = open_kvm()?;
    if realm_vm(&kvm)?.is_none() {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    }
    let base = super::realm_linux::held()?;
    if std::fs::metadata("/sys/kernel/debug/fail_rmi").is_err() {
        return Ok(Outcome::Skip(
            "no debugfs fail_rmi/ (CONFIG_FAULT_INJECTION_DEBUG_FS)".into(),
        ));
    }
    let injected = || -> Result<i64, String> {
        let t = std::fs::read_to_string("/sys/kernel/debug/kvm_rme/granules").map_err(|e| e.to_string())?;
        t.lines()
            .find_map(|l| l.strip_prefix("injected ")?.trim().parse().ok())
            .ok_or("no injected line".into())
    };
    let injected0 = injected()?;
    fail_rmi("verbose", "0")?;
    fail_rmi("interval", "1")?;
    fail_rmi("times", "-1")?;
    fail_rmi("probability", "3")?;
    let mut failed_at: std::collections::BTreeMap<String, u32> = Default::default();
    let mut completed = 0;
    let mut leaky_teardowns = 0;
    let mut last_leaked = base.2;
    let mut outcome = Ok(());
    for i in 0..40 {
        match realm_under_injection(&kvm) {
            Ok(None) => completed += 1,
            Ok(Some((step, e))) => *failed_at.entry(format!("{step}:{e}")).or_default() += 1,
            Err(e) => {
                outcome = Err(format!("realm {i}: {e}"));
                break;
            }
        }
        let now = super::realm_linux::held()?;
        if now.2 > last_leaked {
            leaky_teardowns += 1;
            last_leaked = now.2;
        }
        if now.0 - base.0 != now.2 - base.2 {
            outcome = Err(format!(
                "after realm {i} the RMM holds {} more granules, with {} counted leaks",
                now.0 - base.0,
                now.2 - base.2
            ));
            break;
        }
    }
    fail_rmi("probability", "0")?;
    // The boot runner tolerates this many teardown leak warnings.
    println!("# allow-leak-warnings: {leaky_teardowns}");
    outcome?;
    let n = injected()? - injected0;
    println!(
        "# realm_rmi_fault_injection: 40 realms at 3%: {n} RMI calls failed by injection, {completed} realms ran to their end, failures by step and errno: {failed_at:?}, {leaky_teardowns} teardowns leaked"
    );
    check!(n > 0, "no RMI call was failed by injection");
    check!(!failed_at.is_empty(), "no injected failure reached userspace");
    check!(
        realm_under_injection(&kvm)? == None,
        "with injection off, a realm did not run to its end"
    );
    Ok(Outcome::Pass)
}

/// Malformed RSI and PSCI calls from a realm get the specification's
/// statuses, and the realm goes on (the payload's table); a well-formed
/// REM extension afterwards works and changes the measurement.  The
/// same expectations hold on TF-RMM and on the test RMM (needs an RMM
/// speaking RMI 1.0).
pub fn realm_rsi_bad_input() -> TestResult {
    let kvm = open_kvm()?;
    let Some(mut vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    let v = realm_with(&mut vm, bad_rsi_payload(), None, 1)?;
    const INPUT: u64 = 1;
    const NOT_SUPPORTED: u64 = -1i64 as u64;
    const INVALID_PARAMS: u64 = -2i64 as u64;
    let want: [(&str, Option<u64>); 18] = [
        ("REALM_CONFIG, unaligned", Some(INPUT)),
        ("REALM_CONFIG, unprotected", Some(INPUT)),
        ("IPA_STATE_SET, empty range", Some(INPUT)),
        ("IPA_STATE_SET, RIPAS 5", Some(INPUT)),
        ("IPA_STATE_SET, unaligned base", Some(INPUT)),
        ("IPA_STATE_GET, base above top", Some(INPUT)),
        ("MEASUREMENT_EXTEND of the RIM", Some(INPUT)),
        ("MEASUREMENT_EXTEND, 65 bytes", Some(INPUT)),
        ("MEASUREMENT_READ(5)", Some(INPUT)),
        ("HOST_CALL, unaligned", Some(INPUT)),
        ("RSI_VERSION(2.0)", Some(INPUT)),
        ("RSI_VERSION(2.0) lower revision", Some(1 << 16)),
        ("an unknown SMC", Some(NOT_SUPPORTED)),
        ("CPU_ON of a missing REC", Some(INVALID_PARAMS)),
        ("PSCI_FEATURES, unknown", Some(NOT_SUPPORTED)),
        ("MEASUREMENT_EXTEND(1)", Some(0)),
        ("MEASUREMENT_READ(1)", Some(0)),
        ("REM 1's first word", None),
    ];
    for (i, (what, w)) in want.iter().enumerate() {
        let got = mmio_at(&v[0], what, 0x300 + 8 * i as u64)?;
        match w {
            // The RMM's own RSI revision: 1.0 on TF-RMM v0.8.0 and the
            // test RMM, 1.1 on TF-RMM v0.9.0.  Any 1.x will do.
            Some(w) if what.ends_with("lower revision") => {
                check!(got >> 16 == *w >> 16, "{what}: {got:#x}, want a {}.x revision", w >> 16)
            }
            Some(w) => check!(got == *w, "{what}: {got:#x}, want {w:#x}"),
            None => check!(got != 0, "{what}: 0 after an extension"),
        }
    }
    let (e, reason) = v[0].run_raw();
    check!(
        e == 0 && reason == kvm::KVM_EXIT_SYSTEM_EVENT,
        "SYSTEM_OFF: KVM_RUN errno {e}, exit {reason}"
    );
    drop(v);
    drop(vm);
    Ok(Outcome::Pass)
}
