// SPDX-License-Identifier: GPL-2.0

//! A small VMM that boots a Linux realm guest (the test kernel itself,
//! with a small initramfs) to its userspace on two vCPUs.

use std::collections::HashMap;
use std::sync::Mutex;

use super::open_kvm;
use super::realm::{
    finalize_rec, init_ripas, init_vcpu, populate, realm_vm, run_bounded, GICD, GICR, NO_REALMS,
    POWER_OFF, REC, REG_PC, REG_X0,
};
use crate::check;
use crate::kvm::{self, Vcpu, Vm};
use crate::rme::RmeCmd;
use crate::tap::{Outcome, TestResult};

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
    /// Print each line (`# realm-guest| ...`).
    echo: bool,
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
    vm: &Vm,
    vcpu: &Vcpu,
    console: &Mutex<Console>,
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
                            if c.echo {
                                println!("# realm-guest| {l}");
                            }
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
                let private = flags & u64::from(kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE);
                // KVM_MEMORY_EXIT_FLAG_PRIVATE and KVM_MEMORY_ATTRIBUTE_PRIVATE
                // are the same bit.
                vm.set_memory_attributes(gpa, size, private)?;
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

const _: () = assert!(kvm::KVM_MEMORY_EXIT_FLAG_PRIVATE == kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE);

/// One boot of the Linux realm guest by [`boot_guest`].
pub(crate) struct GuestBoot {
    /// The guest's console.
    pub text: String,
    /// Set-up and boot times, VM and vCPU stats at the end, and the
    /// exits the VMM handled.
    pub summary: String,
}

/// Boots the Linux realm guest: `image` (the kernel itself with a small
/// initramfs) and `dtb` on two vCPUs, each run by its own thread: RAM
/// from guest_memfd with RIPAS RAM, the Image and DTB populated
/// (measured), an in-kernel GICv3 (IPIs included), a PL011 emulated here
/// from MMIO exits (its lines printed if `echo`), RIPAS changes accepted
/// through memory attributes, the secondary CPU started with PSCI
/// CPU_ON.  `None` if realms cannot be created.
pub(crate) fn boot_guest(
    kvm: &crate::kvm::Kvm,
    image: &[u8],
    dtb: &[u8],
    echo: bool,
) -> Result<Option<GuestBoot>, String> {
    let Some(mut vm) = realm_vm(kvm)? else {
        return Ok(None);
    };
    let t0 = std::time::Instant::now();
    check!(
        image.len() < (64 << 20) && dtb.len() < 0x10000,
        "Image or DTB too large"
    );
    let user = vm.add_private_memory(0, GUEST_RAM, GUEST_RAM_SIZE, image)?;
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
        u64::from(kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE),
    )?;
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let r = init_ripas(&vm, GUEST_RAM, GUEST_RAM_SIZE as u64);
    check!(r == 0, "INIT_RIPAS: errno {r}");
    let pages = |len: usize| ((len + 4095) & !4095) as u64;
    let r = populate(&vm, GUEST_RAM, pages(image.len()));
    check!(r == 0, "POPULATE Image: errno {r}");
    let r = populate(&vm, GUEST_DTB, pages(dtb.len()));
    check!(r == 0, "POPULATE DTB: errno {r}");
    let v0 = vm.create_vcpu(0)?;
    let v1 = vm.create_vcpu(1)?;
    check!(init_vcpu(&vm, &v0, REC) == 0, "vCPU 0 init failed");
    // vCPU 1 waits for PSCI CPU_ON.
    check!(
        init_vcpu(&vm, &v1, REC | POWER_OFF) == 0,
        "vCPU 1 init failed"
    );
    let _gic = vm.add_gicv3(GICD, GICR)?;
    v0.set_one_reg(REG_PC, GUEST_RAM)?;
    // x0: the DTB.
    v0.set_one_reg(REG_X0, GUEST_DTB)?;
    check!(finalize_rec(&v0) == 0, "FINALIZE(REC) vCPU 0 failed");
    check!(finalize_rec(&v1) == 0, "FINALIZE(REC) vCPU 1 failed");
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM failed");
    let setup = t0.elapsed();

    let console = Mutex::new(Console {
        echo,
        ..Console::default()
    });
    let t1 = std::time::Instant::now();
    let (r0, r1) = std::thread::scope(|sc| {
        let (vm, console) = (&vm, &console);
        let h = sc.spawn(move || {
            // SIGALRM is the boot vCPU's watchdog: keep it off here.
            // SAFETY: a valid signal set on the stack, initialised by
            // sigemptyset before use.
            unsafe {
                let mut set: libc::sigset_t = core::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGALRM);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
            }
            let r = guest_vcpu_loop(vm, &v1, console, false);
            (r, v1.stats())
        });
        let r0 = guest_vcpu_loop(vm, &v0, console, true);
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
    let st = |m: &HashMap<String, u64>, n: &str| m.get(n).copied().unwrap_or(0);
    let summary = format!(
        "set-up {} ms, boot to power-off {} ms, {} + {} REC exits ({} + {} IRQ, {} + {} served faults), {} MMIO to userspace, {} RIPAS changes, {} RMI calls, {} data pages",
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
    Ok(Some(GuestBoot { text, summary }))
}

/// The Linux realm guest's Image and DTB from the initramfs, if there.
fn guest_files() -> Option<(Vec<u8>, Vec<u8>)> {
    Some((std::fs::read("/realm/Image").ok()?, std::fs::read("/realm/guest.dtb").ok()?))
}

/// Boots the Linux realm guest (/realm/Image and /realm/guest.dtb) with
/// [`boot_guest`] and checks that it found itself in a realm, brought up
/// its second CPU and reached its userspace, without a kernel warning
/// (needs an RMM that runs realms, RMI 1.0 or 2.0).
pub fn realm_linux_guest() -> TestResult {
    let kvm = open_kvm()?;
    let Some((image, dtb)) = guest_files() else {
        return Ok(Outcome::Skip(
            "no /realm/Image or /realm/guest.dtb in this initramfs".into(),
        ));
    };
    let Some(GuestBoot { text, summary, .. }) = boot_guest(&kvm, &image, &dtb, true)? else {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    };
    println!("# realm_linux_guest: {summary}");
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

/// What the RMM holds now, host-wide (debugfs `kvm_rme/granules`):
/// granules delegated, realms, granules leaked since boot.
pub(crate) fn held() -> Result<(i64, i64, i64), String> {
    const PATH: &str = "/sys/kernel/debug/kvm_rme/granules";
    if std::fs::metadata(PATH).is_err() {
        // SAFETY: NUL-terminated strings; mounting debugfs where the
        // kernel expects it changes nothing else.
        unsafe {
            libc::mount(
                c"debugfs".as_ptr(),
                c"/sys/kernel/debug".as_ptr(),
                c"debugfs".as_ptr(),
                0,
                core::ptr::null(),
            )
        };
    }
    let text = std::fs::read_to_string(PATH).map_err(|e| format!("{PATH}: {e}"))?;
    let get = |name: &str| -> Result<i64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .ok_or(format!("{PATH}: no {name:?} line"))
    };
    Ok((get("delegated ")?, get("realms ")?, get("leaked ")?))
}

/// SIGKILLs a VMM that is booting the Linux realm guest at points from
/// set-up (populate) to the middle of the guest's boot.  Each kill makes
/// the kernel tear the realm down in the dying process's exit path,
/// with its vCPUs stopped wherever they were.  Every time, once the
/// process is gone, the RMM holds nothing more than before except
/// counted leaks; while the VMM ran it held granules (so the gauge
/// counts).  After the last kill a new realm is created, activated and
/// torn down.
pub fn realm_vmm_killed() -> TestResult {
    let kvm = open_kvm()?;
    let Some((image, dtb)) = guest_files() else {
        return Ok(Outcome::Skip(
            "no /realm/Image or /realm/guest.dtb in this initramfs".into(),
        ));
    };
    if realm_vm(&kvm)?.is_none() {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    }
    let base = held()?;
    let mut report = Vec::new();
    for delay_ms in [100u64, 700, 3_000, 8_000] {
        // SAFETY: the test runs single-threaded here; the child only
        // boots the guest (its own threads) and exits.
        let pid = unsafe { libc::fork() };
        check!(pid >= 0, "fork failed");
        if pid == 0 {
            let r = boot_guest(&kvm, &image, &dtb, false);
            // SAFETY: ends the child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(if matches!(r, Ok(Some(_))) { 0 } else { 1 }) };
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let during = held()?;
        check!(
            delay_ms < 700 || during.0 > base.0,
            "{delay_ms} ms into the boot the RMM holds no granules of it"
        );
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a live int.
        let reaped = unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0)
        };
        check!(reaped == pid, "waitpid: {reaped}");
        let killed = libc::WIFSIGNALED(status);
        let now = held()?;
        let (d, r, l) = (now.0 - base.0, now.1 - base.1, now.2 - base.2);
        report.push(format!(
            "{delay_ms} ms: {} holding {} granules, then {d} granules and {r} realms left, {l} leaked",
            if killed { "killed" } else { "had exited" },
            during.0 - base.0
        ));
        check!(
            d == l && (l > 0 || r == 0),
            "after a kill at {delay_ms} ms the RMM holds {d} more granules and {r} more realms, with {l} counted leaks"
        );
    }
    println!("# realm_vmm_killed: {}", report.join("; "));
    // A new realm starts, runs its set-up and is torn down.
    let Some(mut vm) = realm_vm(&kvm)? else {
        return Err("no realm VM after the kills".into());
    };
    vm.add_private_memory(0, GUEST_RAM, 2 << 20, &[0u8; 4096])?;
    vm.set_memory_attributes(GUEST_RAM, 2 << 20, u64::from(kvm::KVM_MEMORY_ATTRIBUTE_PRIVATE))?;
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM after the kills failed");
    check!(init_ripas(&vm, GUEST_RAM, 2 << 20) == 0, "INIT_RIPAS after the kills failed");
    check!(populate(&vm, GUEST_RAM, 4096) == 0, "POPULATE after the kills failed");
    let v0 = vm.create_vcpu(0)?;
    check!(init_vcpu(&vm, &v0, REC) == 0, "vCPU init after the kills failed");
    check!(finalize_rec(&v0) == 0, "FINALIZE after the kills failed");
    check!(vm.rme(RmeCmd::ActivateRealm) == 0, "ACTIVATE_REALM after the kills failed");
    drop(v0);
    drop(vm);
    let end = held()?;
    check!(
        end.0 - base.0 == end.2 - base.2 && end.1 == base.1,
        "the new realm's teardown left {} granules, {} realms",
        end.0 - base.0,
        end.1 - base.1
    );
    Ok(Outcome::Pass)
}
