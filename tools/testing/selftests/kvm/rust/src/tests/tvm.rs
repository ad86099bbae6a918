// SPDX-License-Identifier: GPL-2.0

//! TVMs that run: small VS-mode payloads, assembled into the test binary
//! and measured into a TVM at `RAM`, on a host under a TSM (Salus).
//! Without a ready TSM every test here skips.
//!
//! The payloads report by 8-byte MMIO stores to `MMIO` + 8 * n, after
//! registering that page with COVG `ADD_MMIO_REGION` (a TSM ends a vCPU
//! that touches a GPA outside its regions), and end with SRST shutdown.
//! After each TVM is closed, the kernel's teardown line must say that no
//! page stayed converted.

use super::open_kvm;
use super::regs::{REG_A1, REG_PC};
use crate::check;
use crate::cove::KVM_VM_TYPE_RISCV_COVE;
use crate::cove::{tsm_ready, KvmRiscvCoveMeasureRegion};
use crate::kvm::{Vcpu, Vm};
use crate::tap::{Outcome, TestResult};

/// Guest RAM of the TVMs: one 4 MiB memslot, a confidential region.
const RAM: u64 = 0x8000_0000;
const RAM_SIZE: usize = 4 << 20;
/// The MMIO page the payloads register and report to.
const MMIO: u64 = 0x1000_0000;

/// SBI extensions and functions the payloads call through the host.
const EXT_DBCN: u64 = 0x4442_434E;
const DBCN_WRITE: u64 = 0;
const DBCN_READ: u64 = 1;
const DBCN_WRITE_BYTE: u64 = 2;

/// What the VMM answers to the payloads' DBCN call, in a1.
const DBCN_VALUE: u64 = 7;
/// What the VMM answers to the basic payload's MMIO load.
const MMIO_LOAD: u64 = 41;

/// Defines `fn $name() -> &'static [u8]`: the machine code a
/// `global_asm!` payload assembled between symbols `$start` and `$end`.
macro_rules! payload_fn {
    ($name:ident, $start:ident, $end:ident) => {
        fn $name() -> &'static [u8] {
            extern "C" {
                static $start: u8;
                static $end: u8;
            }
            let (s, e) = (
                core::ptr::addr_of!($start),
                core::ptr::addr_of!($end),
            );
            // SAFETY: both symbols delimit one payload in one read-only
            // section of this binary, `e` after `s`.
            unsafe { core::slice::from_raw_parts(s, e as usize - s as usize) }
        }
    };
}

// The payloads, uncompressed (`norvc`) so that every load and store is
// one the TSM decodes for MMIO.  `confvm_register_mmio` and
// `confvm_shutdown` are assembler macros defined first.
core::arch::global_asm!(
    ".pushsection .rodata.confvm_tvm_payloads, \"a\"",
    ".option push",
    ".option norvc",
    // COVG ADD_MMIO_REGION of the report page; a0 is its error.
    ".macro confvm_register_mmio",
    "li a7, 0x434F5647",
    "li a6, 0",
    "li a0, 0x10000000",
    "li a1, 0x1000",
    "ecall",
    ".endm",
    // SRST shutdown.
    ".macro confvm_shutdown",
    "li a7, 0x53525354",
    "li a6, 0",
    "li a0, 0",
    "li a1, 0",
    "ecall",
    ".endm",
    ".balign 4",
    // basic: MMIO store, load and store; 768 zero-page faults (3 MiB);
    // DBCN; SRST.
    ".global confvm_tvm_basic_start",
    ".global confvm_tvm_basic_end",
    "confvm_tvm_basic_start:",
    "confvm_register_mmio",
    "li t0, 0x10000000",
    "sd a0, 0(t0)",
    "ld t1, 8(t0)",
    "addi t1, t1, 1",
    "sd t1, 16(t0)",
    "li t2, 0x80100000",
    "li t3, 768",
    "li t4, 0",
    "1:",
    "sd t3, 0(t2)",
    "ld t5, 0(t2)",
    "add t4, t4, t5",
    "li t6, 4096",
    "add t2, t2, t6",
    "addi t3, t3, -1",
    "bnez t3, 1b",
    "sd t4, 24(t0)",
    "li a7, 0x4442434E",
    "li a6, 2",
    "li a0, 90",
    "ecall",
    "sd a0, 32(t0)",
    "sd a1, 40(t0)",
    "confvm_shutdown",
    "2:",
    "j 2b",
    "confvm_tvm_basic_end:",
    // share: touch two pages, share the second (the host takes its
    // confidential page out), write it, unshare it, write it again.
    ".balign 4",
    ".global confvm_tvm_share_start",
    ".global confvm_tvm_share_end",
    "confvm_tvm_share_start:",
    "confvm_register_mmio",
    "li t0, 0x10000000",
    "li s1, 0x80300000",
    "li t1, 1",
    "sd t1, 0(s1)",
    "li s2, 0x80280000",
    "sd t1, 0(s2)",
    "li a7, 0x434F5647",
    "li a6, 2",
    "mv a0, s2",
    "li a1, 0x1000",
    "ecall",
    "sd a0, 0(t0)",
    "li t1, 0x5a5a",
    "sd t1, 0(s2)",
    "sd t1, 8(t0)",
    "li a7, 0x434F5647",
    "li a6, 3",
    "mv a0, s2",
    "li a1, 0x1000",
    "ecall",
    "sd a0, 16(t0)",
    "li t1, 0x7777",
    "sd t1, 0(s2)",
    "ld t2, 0(s2)",
    "sd t2, 24(t0)",
    "ld t2, 0(s1)",
    "sd t2, 32(t0)",
    "confvm_shutdown",
    "3:",
    "j 3b",
    "confvm_tvm_share_end:",
    // stray: a store to a GPA in no region.
    ".balign 4",
    ".global confvm_tvm_stray_start",
    ".global confvm_tvm_stray_end",
    "confvm_tvm_stray_start:",
    "li t0, 0x20000000",
    "li t1, 1",
    "sd t1, 0(t0)",
    "4:",
    "j 4b",
    "confvm_tvm_stray_end:",
    // smp: vCPU 0 starts vCPU 1 (HSM) with opaque 7 and shuts down; vCPU 1
    // reports its a0 (hart ID) and a1 (opaque) and shuts down.
    ".balign 4",
    ".global confvm_tvm_smp_start",
    ".global confvm_tvm_smp_end",
    "confvm_tvm_smp_start:",
    "confvm_register_mmio",
    "li t0, 0x10000000",
    "li a7, 0x48534D",
    "li a6, 0",
    "li a0, 1",
    "lla a1, 5f",
    "li a2, 7",
    "ecall",
    "sd a0, 0(t0)",
    "confvm_shutdown",
    "6:",
    "j 6b",
    ".balign 4",
    "5:",
    "li t0, 0x10000000",
    "sd a0, 8(t0)",
    "sd a1, 16(t0)",
    "confvm_shutdown",
    "7:",
    "j 7b",
    "confvm_tvm_smp_end:",
    // irq: enable interrupt ID 9 in the IMSIC (eidelivery, eithreshold,
    // eie0 through siselect/sireg), SEIE in sie, allow ID 9 (COVG), say
    // "ready" (slot 1), wait for it in stopei, claim it, deny ID 9, say
    // "denied" (slot 4), shut down.  sstatus.SIE stays 0: no trap.
    ".balign 4",
    ".global confvm_tvm_irq_start",
    ".global confvm_tvm_irq_end",
    "confvm_tvm_irq_start:",
    "confvm_register_mmio",
    "li t0, 0x10000000",
    "li t1, 0x70",
    "csrw 0x150, t1",
    "li t1, 1",
    "csrw 0x151, t1",
    "li t1, 0x72",
    "csrw 0x150, t1",
    "csrw 0x151, zero",
    "li t1, 0xc0",
    "csrw 0x150, t1",
    "li t1, 0x200",
    "csrw 0x151, t1",
    "li t1, 0x200",
    "csrs sie, t1",
    "li a7, 0x434F5647",
    "li a6, 4",
    "li a0, 9",
    "ecall",
    "sd a0, 0(t0)",
    "li t1, 1",
    "sd t1, 8(t0)",
    "li t3, 0",
    "8:",
    "csrr t2, 0x15c",
    "bnez t2, 9f",
    "addi t3, t3, 1",
    "wfi",
    "j 8b",
    "9:",
    "sd t2, 16(t0)",
    "csrw 0x15c, zero",
    "csrr t2, 0x15c",
    "sd t2, 40(t0)",
    "li a7, 0x434F5647",
    "li a6, 5",
    "li a0, 9",
    "ecall",
    "sd a0, 24(t0)",
    "li t1, 2",
    "sd t1, 32(t0)",
    "confvm_shutdown",
    "10:",
    "j 10b",
    "confvm_tvm_irq_end:",
    // kick: vCPU 0 starts vCPU 1, which spins with no exit of its own;
    // vCPU 0 waits a while, touches, shares and unshares a page (each a
    // TVM fence on the host while vCPU 1 runs), and shuts down.
    ".balign 4",
    ".global confvm_tvm_kick_start",
    ".global confvm_tvm_kick_end",
    "confvm_tvm_kick_start:",
    "confvm_register_mmio",
    "li t0, 0x10000000",
    "li a7, 0x48534D",
    "li a6, 0",
    "li a0, 1",
    "lla a1, 12f",
    "li a2, 0",
    "ecall",
    "sd a0, 0(t0)",
    "li t1, 20000000",
    "11:",
    "addi t1, t1, -1",
    "bnez t1, 11b",
    "li s2, 0x80280000",
    "li t1, 1",
    "sd t1, 0(s2)",
    "li a7, 0x434F5647",
    "li a6, 2",
    "mv a0, s2",
    "li a1, 0x1000",
    "ecall",
    "sd a0, 8(t0)",
    "li t1, 0x5a5a",
    "sd t1, 0(s2)",
    "li a7, 0x434F5647",
    "li a6, 3",
    "mv a0, s2",
    "li a1, 0x1000",
    "ecall",
    "sd a0, 16(t0)",
    "confvm_shutdown",
    "13:",
    "j 13b",
    ".balign 4",
    "12:",
    "j 12b",
    "confvm_tvm_kick_end:",
    // many: vCPU 0 starts vCPUs 1-5 (HSM, opaque = hart ID), reports
    // each start's error in slot ID, and shuts down; each vCPU reports its
    // opaque in slot 8 + ID and shuts down.
    ".balign 4",
    ".global confvm_tvm_many_start",
    ".global confvm_tvm_many_end",
    "confvm_tvm_many_start:",
    "confvm_register_mmio",
    "li t0, 0x10000000",
    "li s1, 1",
    "14:",
    "li a7, 0x48534D",
    "li a6, 0",
    "mv a0, s1",
    "lla a1, 15f",
    "mv a2, s1",
    "ecall",
    "slli t2, s1, 3",
    "add t2, t2, t0",
    "sd a0, 0(t2)",
    "addi s1, s1, 1",
    "li t3, 6",
    "blt s1, t3, 14b",
    "confvm_shutdown",
    "16:",
    "j 16b",
    ".balign 4",
    "15:",
    "li t0, 0x10000000",
    "addi t2, a0, 8",
    "slli t2, t2, 3",
    "add t2, t2, t0",
    "sd a1, 0(t2)",
    "confvm_shutdown",
    "17:",
    "j 17b",
    "confvm_tvm_many_end:",
    ".option pop",
    ".popsection",
);

payload_fn!(basic_payload, confvm_tvm_basic_start, confvm_tvm_basic_end);
payload_fn!(share_payload, confvm_tvm_share_start, confvm_tvm_share_end);
payload_fn!(stray_payload, confvm_tvm_stray_start, confvm_tvm_stray_end);
payload_fn!(smp_payload, confvm_tvm_smp_start, confvm_tvm_smp_end);
payload_fn!(irq_payload, confvm_tvm_irq_start, confvm_tvm_irq_end);
payload_fn!(kick_payload, confvm_tvm_kick_start, confvm_tvm_kick_end);
payload_fn!(many_payload, confvm_tvm_many_start, confvm_tvm_many_end);

/// The skip of every test here on a host without a ready TSM.
fn no_tsm() -> Outcome {
    Outcome::Skip("no ready TSM (kvm_cove did not enable TVMs): COVE_TSM_IMAGE boots one".into())
}

/// A TVM with `payload` measured at `RAM`, `vcpus` vCPUs, vCPU 0 entering
/// at `RAM`; also the VMM's mapping of the memslot.
fn tvm(payload: &[u8], vcpus: u64) -> Result<(Vm, Vec<Vcpu>, *mut u8), String> {
    let kvm = open_kvm()?;
    let mut vm = kvm
        .create_vm(KVM_VM_TYPE_RISCV_COVE)
        .map_err(|e| format!("KVM_CREATE_VM(KVM_VM_TYPE_RISCV_COVE): errno {e}"))?;
    let mem = vm.add_memory_mapped(0, RAM, RAM_SIZE, &[])?;
    // The payload, page-aligned and padded to whole pages.
    let pages = payload.len().div_ceil(4096).max(1);
    let mut image = vec![0u8; (pages + 1) * 4096];
    let off = image.as_ptr().align_offset(4096);
    image[off..off + payload.len()].copy_from_slice(payload);
    let mut mr = KvmRiscvCoveMeasureRegion {
        userspace_addr: image[off..].as_ptr() as u64,
        gpa: RAM,
        size: (pages * 4096) as u64,
    };
    vm.cove_measure_region(&mut mr)
        .map_err(|e| format!("KVM_RISCV_COVE_MEASURE_REGION: errno {e}"))?;
    let mut v = Vec::new();
    for id in 0..vcpus {
        v.push(vm.create_vcpu(id)?);
    }
    v[0].set_one_reg(REG_PC, RAM)?;
    Ok((vm, v, mem))
}

/// How a vCPU's run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// `KVM_EXIT_SYSTEM_EVENT` of this type.
    SystemEvent(u32),
    /// `KVM_EXIT_SHUTDOWN`: the TSM ended the vCPU.
    Shutdown,
}

/// What a vCPU's payload reported: MMIO stores by slot, DBCN bytes.
#[derive(Debug, Default)]
struct Report {
    stores: std::collections::BTreeMap<u64, u64>,
    console: Vec<u8>,
}

/// Runs `vcpu` to its end, serving MMIO (loads answer `MMIO_LOAD`) and
/// DBCN (answer `[0, DBCN_VALUE]`); at most `max` exits.
fn drive(vcpu: &Vcpu, max: u32) -> Result<(End, Report), String> {
    let mut rep = Report::default();
    for _ in 0..max {
        let reason = vcpu.run()?;
        match reason {
            kvm_bindings::KVM_EXIT_MMIO => {
                let m = vcpu.mmio();
                check!(
                    m.phys_addr >= MMIO && m.phys_addr < MMIO + 0x1000 && m.len == 8,
                    "MMIO at {:#x}, {} bytes: not a report slot",
                    m.phys_addr,
                    m.len
                );
                let slot = (m.phys_addr - MMIO) / 8;
                if m.is_write {
                    rep.stores.insert(slot, u64::from_le_bytes(m.data));
                } else {
                    vcpu.set_mmio_data(MMIO_LOAD.to_le_bytes());
                }
            }
            kvm_bindings::KVM_EXIT_RISCV_SBI => {
                let (ext, fid, args) = vcpu.riscv_sbi();
                check!(
                    ext == EXT_DBCN && fid == DBCN_WRITE_BYTE,
                    "SBI call {ext:#x}/{fid} reached the VMM"
                );
                // CAST: the byte DBCN writes is in the low 8 bits.
                rep.console.push(args[0] as u8);
                vcpu.set_riscv_sbi_ret([0, DBCN_VALUE]);
            }
            kvm_bindings::KVM_EXIT_SYSTEM_EVENT => return Ok((End::SystemEvent(vcpu.system_event()), rep)),
            kvm_bindings::KVM_EXIT_SHUTDOWN => return Ok((End::Shutdown, rep)),
            r => return Err(format!("exit reason {r} (stores so far {:?})", rep.stores)),
        }
    }
    Err(format!("no end after {max} exits (stores {:?})", rep.stores))
}

/// Runs `payload` in a one-vCPU TVM to its SRST shutdown.
fn run_to_shutdown(payload: &[u8]) -> Result<(Vm, Vec<Vcpu>, *mut u8, Report), String> {
    let (vm, vcpus, mem) = tvm(payload, 1)?;
    let (end, rep) = drive(&vcpus[0], 10_000)?;
    check!(
        end == End::SystemEvent(kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN),
        "ended with {end:?}, want a shutdown system event (stores {:?})",
        rep.stores
    );
    Ok((vm, vcpus, mem, rep))
}

/// Checks a payload's report slots: `(slot, value, what it is)`.
fn expect_stores(rep: &Report, want: &[(u64, u64, &str)]) -> Result<(), String> {
    for &(slot, value, what) in want {
        let got = rep.stores.get(&slot).copied();
        check!(got == Some(value), "{what}: slot {slot} holds {got:?}, want {value:#x}");
    }
    Ok(())
}

/// The kernel's teardown line of the last TVM destroyed.
fn last_teardown() -> Result<String, String> {
    let log = crate::cove::read_kmsg().map_err(|e| format!("/dev/kmsg: {e}"))?;
    let log = String::from_utf8_lossy(&log);
    log.lines()
        .rev()
        .find(|l| l.contains("kvm_cove: TVM") && l.contains("destroyed:"))
        .map(|l| l.to_string())
        .ok_or_else(|| "no TVM teardown line in the kernel log".into())
}

/// Drops the TVM, then checks its teardown: nothing left converted.
fn teardown(vm: Vm, vcpus: Vec<Vcpu>) -> Result<String, String> {
    drop(vcpus);
    drop(vm);
    let line = last_teardown()?;
    check!(
        line.ends_with(" 0 pages left converted"),
        "teardown left pages converted: {line}"
    );
    println!("# {}", line.split("kvm_cove: ").nth(1).unwrap_or(&line));
    Ok(line)
}

/// MMIO after registering the region (a store, a load the VMM answers, a
/// store of the loaded value + 1), 768 zero-page faults (3 MiB) checked
/// by their sum, an SBI console call the VMM answers, and SRST shutdown; teardown
/// reclaims every page.
pub fn tvm_mmio_sbi_zero_pages() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    let (vm, vcpus, _mem, rep) = run_to_shutdown(basic_payload())?;
    expect_stores(
        &rep,
        &[
            (0, 0, "ADD_MMIO_REGION's error"),
            (2, MMIO_LOAD + 1, "the MMIO load + 1"),
            (3, 768 * 769 / 2, "the zero pages' sum"),
            (4, 0, "DBCN's error"),
            (5, DBCN_VALUE, "DBCN's value"),
        ],
    )?;
    check!(rep.console == b"Z", "console bytes {:?}", rep.console);
    let line = teardown(vm, vcpus)?;
    check!(!line.contains(" 0 zero,"), "no zero page was mapped: {line}");
    Ok(Outcome::Pass)
}

/// COVG share and unshare of a page the TVM wrote before: the host takes
/// the confidential page out, the shared page is the VMM's memory, the
/// TVM's other page keeps its data, and after the unshare the TVM's
/// writes no longer reach the VMM.
pub fn tvm_share_unshare() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    let (vm, vcpus, mem, rep) = run_to_shutdown(share_payload())?;
    expect_stores(
        &rep,
        &[
            (0, 0, "SHARE_MEMORY's error"),
            (1, 0x5a5a, "the shared write"),
            (2, 0, "UNSHARE_MEMORY's error"),
            (3, 0x7777, "the confidential page read back"),
            (4, 1, "the other page read back"),
        ],
    )?;
    // SAFETY: the memslot mapping is RAM_SIZE bytes and lives with `vm`;
    // the TVM's vCPU has ended, nothing writes the page now.
    let shared = unsafe { mem.add(0x28_0000).cast::<u64>().read_volatile() };
    check!(
        shared == 0x5a5a,
        "the VMM's page holds {shared:#x}: want the TVM's shared write 0x5a5a and not its later confidential one"
    );
    let line = teardown(vm, vcpus)?;
    check!(line.contains(" 1 shared pages;"), "{line}");
    Ok(Outcome::Pass)
}

/// A store outside every region and registered MMIO region: the TSM ends
/// the vCPU, `KVM_RUN` exits with `KVM_EXIT_SHUTDOWN`, and so does the
/// next `KVM_RUN`.
pub fn tvm_stray_access_shuts_down() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    let (vm, vcpus, _mem) = tvm(stray_payload(), 1)?;
    let (end, _) = drive(&vcpus[0], 100)?;
    check!(end == End::Shutdown, "ended with {end:?}, want KVM_EXIT_SHUTDOWN");
    let again = vcpus[0].run()?;
    check!(
        again == kvm_bindings::KVM_EXIT_SHUTDOWN,
        "KVM_RUN after the shutdown: exit reason {again}"
    );
    teardown(vm, vcpus)?;
    Ok(Outcome::Pass)
}

/// An SMP TVM: vCPU 1's `KVM_RUN` waits until vCPU 0 starts it (HSM
/// `HART_START`, which the TSM serves); it then runs with its hart ID in
/// a0 and the opaque value in a1.
pub fn tvm_smp_hart_start() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    let (vm, mut vcpus, _mem) = tvm(smp_payload(), 2)?;
    let v1 = vcpus.pop().ok_or("no vCPU 1")?;
    let (r0, r1, v1) = std::thread::scope(|sc| {
        // vCPU 1's thread owns it; it is in KVM_RUN, off, before vCPU 0
        // starts it.
        let second = sc.spawn(move || {
            let r = drive(&v1, 1000);
            (r, v1)
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let first = drive(&vcpus[0], 1000);
        match second.join() {
            Ok((r1, v1)) => (first, r1, Some(v1)),
            Err(_) => (first, Err("vCPU 1 thread panicked".into()), None),
        }
    });
    vcpus.extend(v1);
    let ((e0, rep0), (e1, rep1)) = (r0?, r1?);
    let shutdown = End::SystemEvent(kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN);
    check!(e0 == shutdown && e1 == shutdown, "ends {e0:?} and {e1:?}");
    expect_stores(&rep0, &[(0, 0, "HART_START's error")])?;
    expect_stores(&rep1, &[(1, 1, "vCPU 1's a0 (hart ID)"), (2, 7, "vCPU 1's a1 (opaque)")])?;
    teardown(vm, vcpus)?;
    Ok(Outcome::Pass)
}

// The Linux TVM guest's machine (tvm-guest.dts).
const GUEST_RAM_SIZE: usize = 256 << 20;
/// Where an rv64 Image goes: 2 MiB into RAM.
const GUEST_KERNEL: u64 = RAM + 0x20_0000;
const GUEST_DTB: u64 = RAM + (240 << 20);
/// What the guest's /init prints in userspace.
const GUEST_USERSPACE: &str = "confvm-realm-guest: userspace reached";

/// `bytes` measured into `vm` at `gpa`, from a page-aligned copy.
fn measure(vm: &Vm, gpa: u64, bytes: &[u8]) -> Result<(), String> {
    let pages = bytes.len().div_ceil(4096).max(1);
    let mut buf = vec![0u8; (pages + 1) * 4096];
    let off = buf.as_ptr().align_offset(4096);
    buf[off..off + bytes.len()].copy_from_slice(bytes);
    let mut mr = KvmRiscvCoveMeasureRegion {
        userspace_addr: buf[off..].as_ptr() as u64,
        gpa,
        size: (pages * 4096) as u64,
    };
    vm.cove_measure_region(&mut mr)
        .map_err(|e| format!("KVM_RISCV_COVE_MEASURE_REGION at {gpa:#x}: errno {e}"))
        .map(drop)
}

/// The guest console's bytes from one SBI call: DBCN `CONSOLE_WRITE`
/// names a buffer in guest memory (the guest's shared console page, read
/// from the VMM's memslot), `CONSOLE_WRITE_BYTE` carries one byte.
fn console_bytes(mem: *const u8, fid: u64, args: [u64; 6]) -> Result<Vec<u8>, String> {
    match fid {
        DBCN_WRITE_BYTE => Ok(vec![args[0] as u8]),
        DBCN_WRITE => {
            let (n, gpa) = (args[0], args[1]);
            check!(
                n <= 4096 && gpa >= RAM && gpa + n <= RAM + GUEST_RAM_SIZE as u64,
                "DBCN write of {n} bytes at {gpa:#x}: outside guest RAM"
            );
            // CAST: offsets in the 256 MiB memslot fit usize.
            // SAFETY: the range lies in the memslot's mapping, which the
            // VM owns while the test runs; the guest shared the page, so
            // these are the bytes it wrote.
            Ok(unsafe { core::slice::from_raw_parts(mem.add((gpa - RAM) as usize), n as usize) }.to_vec())
        }
        // CONSOLE_READ: no input for the guest (0 bytes read).
        DBCN_READ => Ok(Vec::new()),
        f => Err(format!("DBCN function {f} reached the VMM")),
    }
}

/// A Linux TVM guest (this kernel, with a small initramfs) boots to its
/// userspace on one vCPU and powers off ([`run_linux_guest`]): its
/// console comes through DBCN, its memory is measured (kernel, device tree) and zero pages,
/// it shares its swiotlb pool at boot, and its own KUnit suite
/// `mem_encrypt_tvm` shares and takes back a page.  Teardown reclaims
/// every page.
pub fn tvm_linux_guest() -> TestResult {
    let g = match run_linux_guest("/tvm/guest.dtb", 1)? {
        Ok(g) => g,
        Err(skip) => return Ok(skip),
    };
    let c = &g.console;
    check!(c.shared_writes > 0, "the guest's console never used its shared page");
    check!(
        c.text.contains("mem_encrypt: running in a CoVE TVM"),
        "the guest did not find itself in a TVM"
    );
    check!(
        c.text.contains("# mem_encrypt_tvm: pass:2 fail:0"),
        "the guest's mem_encrypt_tvm KUnit suite did not pass"
    );
    println!(
        "# tvm_linux_guest: measured {} KiB in {:.1} s, powered off after {:.1} s, {} console bytes in {} shared-page writes",
        g.kib,
        g.measured.as_secs_f64(),
        g.booted.as_secs_f64(),
        c.text.len(),
        c.shared_writes
    );
    let line = teardown(g.vm, g.vcpus)?;
    check!(!line.contains(" 0 shared pages;"), "the guest shared no page: {line}");
    Ok(Outcome::Pass)
}

/// vCPU 0's interrupt file in a TVM, as the kernel lays the TVM's IMSIC
/// out (`KVM_RISCV_COVE_IMSIC_BASE`).
const IMSIC: u64 = 0x2800_0000;
/// The interrupt ID the irq payload allows.
const IRQ_ID: u32 = 9;

/// An interrupt through COVI: the payload enables ID 9 in its IMSIC and
/// allows it (COVG); the VMM injects with `KVM_SIGNAL_MSI` when the
/// payload says it is ready, then moves the vCPU thread from CPU 0 to
/// CPU 1 (the host rebinds the vCPU's file; the pending interrupt must
/// move with it); the payload finds it in `stopei`, claims it, denies it
/// again.  Injections the TVM did not allow fail with EPERM,
/// MSIs to no vCPU's file with EINVAL.
pub fn tvm_covi_interrupt() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    let (vm, vcpus, _mem) = tvm(irq_payload(), 1)?;
    let vcpu = &vcpus[0];
    // Run on CPU 0 until the interrupt is pending, then on CPU 1: the TSM
    // must move the pending interrupt with the vCPU's file (rebind).
    let moved = pin_to(0) && cpus_online() > 1;
    let mut rep = Report::default();
    let mut end = None;
    for _ in 0..10_000 {
        match vcpu.run()? {
            kvm_bindings::KVM_EXIT_MMIO => {
                let m = vcpu.mmio();
                check!(m.is_write && m.phys_addr >= MMIO && m.len == 8, "unexpected MMIO {:#x}", m.phys_addr);
                let slot = (m.phys_addr - MMIO) / 8;
                rep.stores.insert(slot, u64::from_le_bytes(m.data));
                match slot {
                    1 => {
                        match vm.signal_msi(IMSIC, IRQ_ID + 1) {
                            Err(libc::EPERM) => {}
                            Err(libc::ENXIO) => {
                                return Ok(Outcome::Skip("the TSM gave this TVM no interrupt files (no COVI)".into()))
                            }
                            r => return Err(format!("MSI of an ID the TVM did not allow: {r:?}, want EPERM")),
                        }
                        let r = vm.signal_msi(IMSIC + 4, IRQ_ID);
                        check!(r == Err(libc::EINVAL), "MSI inside the file, not at its start: {r:?}, want EINVAL");
                        let r = vm.signal_msi(IMSIC + 0x1000, IRQ_ID);
                        check!(r == Err(libc::EINVAL), "MSI to a vCPU that does not exist: {r:?}, want EINVAL");
                        let r = vm.signal_msi(IMSIC, IRQ_ID);
                        check!(r == Ok(0), "MSI of the allowed ID: {r:?}, want 0");
                        if moved {
                            check!(pin_to(1), "sched_setaffinity(CPU 1) failed");
                        }
                    }
                    4 => {
                        let r = vm.signal_msi(IMSIC, IRQ_ID);
                        check!(r == Err(libc::EPERM), "MSI after the TVM denied the ID: {r:?}, want EPERM");
                    }
                    _ => {}
                }
            }
            kvm_bindings::KVM_EXIT_SYSTEM_EVENT => {
                end = Some(vcpu.system_event());
                break;
            }
            r => return Err(format!("exit reason {r} (stores so far {:?})", rep.stores)),
        }
    }
    check!(
        end == Some(kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN),
        "ended with {end:?}, want a shutdown (stores {:?})",
        rep.stores
    );
    expect_stores(
        &rep,
        &[
            (0, 0, "ALLOW_EXTERNAL_INTERRUPT's error"),
            (2, u64::from(IRQ_ID) << 16 | u64::from(IRQ_ID), "stopei: the injected ID"),
            (5, 0, "stopei after the claim"),
            (3, 0, "DENY_EXTERNAL_INTERRUPT's error"),
        ],
    )?;
    let line = teardown(vm, vcpus)?;
    let rebinds = if moved { " 1 rebinds," } else { " 0 rebinds," };
    check!(
        line.contains(" 1 interrupts injected, 2 denied;") && line.contains(" 1 binds,") && line.contains(rebinds),
        "teardown counts (moved to another CPU: {moved}): {line}"
    );
    // Let the thread run anywhere again.
    unpin();
    Ok(Outcome::Pass)
}

/// Pins this thread to `cpu`; false if that fails.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only touch the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Lets this thread run on every CPU again.
fn unpin() {
    // SAFETY: as in `pin_to`.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for c in 0..cpus_online() {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Online CPUs.
fn cpus_online() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1)
}

/// `KVM_EXIT_FAIL_ENTRY_COVE_IMSIC_FILE_UNAVAILABLE`.
const FAIL_ENTRY_IMSIC_FILE_UNAVAILABLE: u64 = 1;

/// Host CPU 0's guest interrupt files run out: four TVMs whose vCPU ran
/// there hold all four (QEMU's `aia-guests=5` under Salus), so a fifth
/// vCPU's `KVM_RUN` there ends in `KVM_EXIT_FAIL_ENTRY` naming CPU 0;
/// once one of the four TVMs is gone, the fifth runs.
pub fn tvm_covi_files_exhausted() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    if !pin_to(0) {
        return Err("sched_setaffinity(CPU 0) failed".into());
    }
    let r = files_exhausted();
    unpin();
    r
}

fn files_exhausted() -> TestResult {
    let mut held = Vec::new();
    let mut fifth = None;
    for i in 0..8 {
        let (vm, vcpus, _mem) = tvm(irq_payload(), 1)?;
        match vcpus[0].run()? {
            // The payload's first exit to the VMM: it ran, so it is bound.
            kvm_bindings::KVM_EXIT_MMIO => held.push((vm, vcpus)),
            kvm_bindings::KVM_EXIT_FAIL_ENTRY => {
                let (reason, cpu) = vcpus[0].fail_entry();
                check!(
                    reason == FAIL_ENTRY_IMSIC_FILE_UNAVAILABLE && cpu == 0,
                    "fail_entry of TVM {i}: reason {reason:#x}, cpu {cpu}"
                );
                fifth = Some((vm, vcpus, i));
                break;
            }
            r => return Err(format!("TVM {i}: exit reason {r}")),
        }
    }
    let Some((_vm, vcpus, n)) = fifth else {
        return Ok(Outcome::Skip(format!("{} TVMs bound on CPU 0 without running out of files", held.len())));
    };
    check!(n >= 1, "no TVM could bind on CPU 0 at all");
    // Again: still none free.
    let r = vcpus[0].run()?;
    check!(r == kvm_bindings::KVM_EXIT_FAIL_ENTRY, "second try: exit reason {r}");
    held.truncate(held.len() - 1);
    let r = vcpus[0].run()?;
    check!(
        r == kvm_bindings::KVM_EXIT_MMIO,
        "after a TVM went: exit reason {r}, want the payload's MMIO store"
    );
    println!("# {n} vCPUs bound on CPU 0 before its files ran out");
    Ok(Outcome::Pass)
}

/// What the vCPU threads of [`run_linux_guest`] share.
struct GuestConsole {
    text: String,
    line: Vec<u8>,
    shared_writes: u64,
}

extern "C" fn on_usr1(_: libc::c_int) {}

/// Runs one vCPU of the SMP Linux TVM guest until `done`: serves its DBCN
/// console calls into `con`; a system event ends the guest for both.
fn guest_vcpu(
    v: &Vcpu,
    mem: usize,
    con: &std::sync::Mutex<GuestConsole>,
    done: &std::sync::atomic::AtomicBool,
    event: &std::sync::atomic::AtomicU32,
    me: &std::sync::atomic::AtomicU64,
) -> Result<(), String> {
    use std::sync::atomic::Ordering::SeqCst;
    // SAFETY: pthread_self has no preconditions.
    me.store(unsafe { libc::pthread_self() } as u64, SeqCst);
    while !done.load(SeqCst) {
        let (e, reason) = v.run_raw();
        if e == libc::EINTR {
            continue;
        }
        check!(e == 0, "KVM_RUN: errno {e}");
        match reason {
            kvm_bindings::KVM_EXIT_RISCV_SBI => {
                let (ext, fid, args) = v.riscv_sbi();
                check!(ext == EXT_DBCN, "the guest's SBI call {ext:#x}/{fid} reached the VMM");
                let bytes = console_bytes(mem as *const u8, fid, args)?;
                v.set_riscv_sbi_ret([0, bytes.len() as u64]);
                let mut c = con.lock().map_err(|_| "console lock poisoned")?;
                if fid == DBCN_WRITE {
                    c.shared_writes += 1;
                }
                for b in bytes {
                    if b == b'\n' {
                        let l = String::from_utf8_lossy(&c.line).trim_end().to_string();
                        println!("# tvm-guest| {l}");
                        c.text.push_str(&l);
                        c.text.push('\n');
                        c.line.clear();
                    } else {
                        c.line.push(b);
                    }
                }
            }
            kvm_bindings::KVM_EXIT_SYSTEM_EVENT => {
                event.store(v.system_event(), SeqCst);
                done.store(true, SeqCst);
            }
            r => {
                done.store(true, SeqCst);
                return Err(format!("exit reason {r}"));
            }
        }
    }
    Ok(())
}

/// A Linux TVM guest on two vCPUs with IMSICs (`tvm-guest-smp.dts`):
/// vCPU 0 boots, starts vCPU 1 through HSM (the TSM serves it), and the
/// two exchange IPIs through their interrupt files, which the host binds
/// on the CPUs their threads run on.  The guest must bring up both CPUs,
/// reach userspace and power off ([`run_linux_guest`]).
pub fn tvm_linux_guest_smp() -> TestResult {
    let g = match run_linux_guest("/tvm/guest-smp.dtb", 2)? {
        Ok(g) => g,
        Err(skip) => return Ok(skip),
    };
    let c = &g.console;
    check!(
        c.text.contains("Brought up 1 node, 2 CPUs"),
        "the guest did not bring up both CPUs; console ends: {}",
        console_tail(&c.text)
    );
    println!(
        "# tvm_linux_guest_smp: 2 vCPUs, powered off after {:.1} s, {} console bytes in {} shared-page writes",
        g.booted.as_secs_f64(),
        c.text.len(),
        c.shared_writes
    );
    teardown(g.vm, g.vcpus)?;
    Ok(Outcome::Pass)
}

/// The end of a guest's console, for messages.
fn console_tail(t: &str) -> &str {
    let mut i = t.len().saturating_sub(2000);
    while !t.is_char_boundary(i) {
        i += 1;
    }
    &t[i..]
}

/// Makes SIGUSR1 end the `KVM_RUN` it hits (EINTR): a no-op handler
/// without SA_RESTART, so that a VMM thread can be told to stop.
fn usr1_interrupts_kvm_run() -> Result<(), String> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the
    // handler does nothing.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
        check!(libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut()) == 0, "sigaction");
    }
    Ok(())
}

/// Signals the threads in `tids` (0: not started yet) until `finished`.
fn stop_threads(tids: &[std::sync::atomic::AtomicU64], finished: &dyn Fn() -> bool) {
    while !finished() {
        for id in tids {
            let t = id.load(std::sync::atomic::Ordering::SeqCst);
            if t != 0 {
                // SAFETY: a thread of the caller's scope, alive until
                // joined; SIGUSR1 only ends its KVM_RUN.
                unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGUSR1) };
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Joins the vCPU threads `hs`, each of which gives its result and its
/// vCPU back: the results after `first`, and the vCPUs (a thread that
/// panicked took its vCPU with it).
fn join_vcpus<R>(
    first: Vec<Result<R, String>>,
    hs: Vec<std::thread::ScopedJoinHandle<'_, (Result<R, String>, Vcpu)>>,
) -> (Vec<Result<R, String>>, Vec<Vcpu>) {
    let (mut rs, mut back) = (first, Vec::new());
    for h in hs {
        match h.join() {
            Ok((r, v)) => {
                rs.push(r);
                back.push(v);
            }
            Err(_) => rs.push(Err("vCPU thread panicked".to_string())),
        }
    }
    (rs, back)
}

/// A Linux TVM guest's run.
struct GuestRun {
    vm: Vm,
    vcpus: Vec<Vcpu>,
    console: GuestConsole,
    kib: usize,
    measured: std::time::Duration,
    booted: std::time::Duration,
}

/// Boots the Linux TVM guest (`/tvm/Image`) with device tree `dtb` on
/// `n` vCPUs, each in its own VMM thread, until it powers off (900 s at
/// most): it must shut down, reach userspace and print no WARN, BUG or
/// panic; the vCPUs that did not power off are stopped with a signal.
/// `Ok(Err(skip))` without a ready TSM or when the initramfs carries no
/// guest.
fn run_linux_guest(dtb: &str, n: u64) -> Result<Result<GuestRun, Outcome>, String> {
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
    if !tsm_ready() {
        return Ok(Err(no_tsm()));
    }
    let (Ok(image), Ok(dtb)) = (std::fs::read("/tvm/Image"), std::fs::read(dtb)) else {
        return Ok(Err(Outcome::Skip(
            "no Linux TVM guest in this initramfs (scripts/selftests.sh adds it with COVE_TSM_IMAGE)".into(),
        )));
    };
    let t0 = std::time::Instant::now();
    let kvm = open_kvm()?;
    let mut vm = kvm
        .create_vm(KVM_VM_TYPE_RISCV_COVE)
        .map_err(|e| format!("KVM_CREATE_VM(KVM_VM_TYPE_RISCV_COVE): errno {e}"))?;
    let mem = vm.add_memory_mapped(0, RAM, GUEST_RAM_SIZE, &[])?;
    measure(&vm, GUEST_KERNEL, &image)?;
    measure(&vm, GUEST_DTB, &dtb)?;
    let mut vcpus = Vec::new();
    for id in 0..n {
        vcpus.push(vm.create_vcpu(id)?);
    }
    vcpus[0].set_one_reg(REG_PC, GUEST_KERNEL)?;
    vcpus[0].set_one_reg(REG_A1, GUEST_DTB)?;
    let measured = t0.elapsed();
    usr1_interrupts_kvm_run()?;
    let con = std::sync::Mutex::new(GuestConsole {
        text: String::new(),
        line: Vec::new(),
        shared_writes: 0,
    });
    let (done, event) = (AtomicBool::new(false), AtomicU32::new(u32::MAX));
    let tids: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let mem_addr = mem as usize;
    let (results, back) = std::thread::scope(|sc| {
        let (con, done, event) = (&con, &done, &event);
        let hs: Vec<_> = vcpus
            .drain(..)
            .zip(tids.iter())
            .map(|(v, tid)| {
                sc.spawn(move || {
                    let r = guest_vcpu(&v, mem_addr, con, done, event, tid);
                    (r, v)
                })
            })
            .collect();
        while !done.load(SeqCst) && t0.elapsed().as_secs() < 900 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        done.store(true, SeqCst);
        stop_threads(&tids, &|| hs.iter().all(|h| h.is_finished()));
        join_vcpus(Vec::new(), hs)
    });
    let booted = t0.elapsed();
    let console = con.into_inner().map_err(|_| "console lock poisoned")?;
    for (i, r) in results.into_iter().enumerate() {
        r.map_err(|e| format!("vCPU {i}: {e}; console ends: {}", console_tail(&console.text)))?;
    }
    let end = event.load(SeqCst);
    check!(
        end == kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN,
        "system event {end} after {:.0} s, want a shutdown; console ends: {}",
        booted.as_secs_f64(),
        console_tail(&console.text)
    );
    check!(console.text.contains(GUEST_USERSPACE), "the guest never reached userspace");
    for bad in ["WARNING: CPU:", "BUG:", "Kernel panic", "Oops"] {
        check!(!console.text.contains(bad), "the guest's console has {bad:?}");
    }
    Ok(Ok(GuestRun {
        vm,
        vcpus: back,
        console,
        kib: (image.len() + dtb.len()) / 1024,
        measured,
        booted,
    }))
}

/// vCPUs of one TVM run at once, and a TVM fence reaches the running
/// ones: vCPU 1 spins inside the TVM while vCPU 0 shares and unshares a
/// page, each of which the host completes with a TVM fence and a
/// removal.  The TSM removes the page only once vCPU 1 has left the TVM
/// after the fence, so the host must kick it out (the teardown line
/// counts the kicks); without, the share fails with EFAULT.
pub fn tvm_smp_fence_kicks_running_vcpu() -> TestResult {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    if cpus_online() < 2 {
        return Ok(Outcome::Skip("one CPU: the two vCPUs cannot run at once".into()));
    }
    let (vm, mut vcpus, _mem) = tvm(kick_payload(), 2)?;
    let v1 = vcpus.pop().ok_or("no vCPU 1")?;
    usr1_interrupts_kvm_run()?;
    let done = AtomicBool::new(false);
    let tids = [AtomicU64::new(0)];
    let (r0, r1, v1) = std::thread::scope(|sc| {
        let (done, tid) = (&done, &tids[0]);
        let second = sc.spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tid.store(unsafe { libc::pthread_self() } as u64, SeqCst);
            let mut runs = 0u64;
            let r = loop {
                if done.load(SeqCst) {
                    break Ok(runs);
                }
                let (e, reason) = v1.run_raw();
                runs += 1;
                if e == libc::EINTR {
                    continue;
                }
                if e != 0 {
                    break Err(format!("vCPU 1: KVM_RUN errno {e}"));
                }
                break Err(format!("vCPU 1: exit reason {reason}, want none (it spins)"));
            };
            (r, v1)
        });
        let first = drive(&vcpus[0], 1000);
        done.store(true, SeqCst);
        stop_threads(&tids, &|| second.is_finished());
        match second.join() {
            Ok((r1, v1)) => (first, r1, Some(v1)),
            Err(_) => (first, Err("vCPU 1 thread panicked".into()), None),
        }
    });
    vcpus.extend(v1);
    let (e0, rep0) = r0?;
    r1?;
    check!(
        e0 == End::SystemEvent(kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN),
        "vCPU 0 ended with {e0:?} (stores {:?})",
        rep0.stores
    );
    expect_stores(
        &rep0,
        &[
            (0, 0, "HART_START's error"),
            (1, 0, "SHARE_MEMORY's error"),
            (2, 0, "UNSHARE_MEMORY's error"),
        ],
    )?;
    let line = teardown(vm, vcpus)?;
    let kicks = line
        .split("; ")
        .find_map(|p| p.strip_suffix(" fence kicks"))
        .and_then(|n| n.parse::<u64>().ok());
    check!(kicks.is_some_and(|k| k > 0), "no fence kick counted: {line}");
    Ok(Outcome::Pass)
}

/// Six vCPUs of one TVM on CPU 0, which has four guest interrupt files:
/// every vCPU thread is pinned there, so the fifth and sixth vCPU to run
/// each take the file of another vCPU of the TVM (unbind: begin, TVM
/// fence, end) instead of failing the entry.  vCPU 0 starts vCPUs 1-5
/// through HSM; all six report and shut down.
pub fn tvm_covi_vcpus_share_a_cpus_files() -> TestResult {
    if !tsm_ready() {
        return Ok(no_tsm());
    }
    let (vm, mut vcpus, _mem) = tvm(many_payload(), 6)?;
    let rest = vcpus.split_off(1);
    let (results, back) = std::thread::scope(|sc| {
        let hs: Vec<_> = rest
            .into_iter()
            .map(|v| {
                sc.spawn(move || {
                    let r = if pin_to(0) {
                        drive(&v, 1000)
                    } else {
                        Err("sched_setaffinity(CPU 0) failed".to_string())
                    };
                    (r, v)
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let first = if pin_to(0) {
            drive(&vcpus[0], 1000)
        } else {
            Err("sched_setaffinity(CPU 0) failed".to_string())
        };
        unpin();
        join_vcpus(vec![first], hs)
    });
    vcpus.extend(back);
    let results: Vec<Result<(End, Report), String>> = results;
    let shutdown = End::SystemEvent(kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN);
    for (i, r) in results.into_iter().enumerate() {
        let (end, rep) = r.map_err(|e| format!("vCPU {i}: {e}"))?;
        check!(end == shutdown, "vCPU {i} ended with {end:?}");
        if i == 0 {
            for h in 1..6u64 {
                expect_stores(&rep, &[(h, 0, "HART_START's error")])?;
            }
        } else {
            let id = i as u64;
            expect_stores(&rep, &[(8 + id, id, "the vCPU's opaque (its ID)")])?;
        }
    }
    let line = teardown(vm, vcpus)?;
    let unbinds = line
        .split(", ")
        .find_map(|p| p.strip_suffix(" unbinds"))
        .and_then(|n| n.parse::<u64>().ok());
    check!(unbinds.is_some_and(|n| n >= 2), "want at least 2 unbinds: {line}");
    Ok(Outcome::Pass)
}
