// SPDX-License-Identifier: GPL-2.0

//! The firmware shell of the confvm test RMM: entry from EL3 (cold and
//! warm boot), per-CPU stacks, the MMU (the realm PAS mapped at its
//! addresses, the normal world's DRAM at `NS_ALIAS` above them), the
//! PL011 console, the SMCs to EL3, and the RMI request loop.  The logic
//! is in the library (`lib.rs`).  Test firmware, not a security boundary.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use confvm_test_rmm::boot::{self, BootError};
use confvm_test_rmm::granule::{El3, Granules, GRANULE};
use confvm_test_rmm::manifest::{self, Bank, MAX_BANKS};
use confvm_test_rmm::rmi;

/// Stack per CPU.
const STACK_SHIFT: u32 = 14;
/// Granule states for up to 4 GiB of DRAM.
const MAX_GRANULES: usize = 1 << 20;
/// Where the normal world's physical memory appears (NS PAS), so the RMM
/// can read host structures.
const NS_ALIAS: u64 = 64 << 30;

#[repr(C, align(4096))]
struct Stacks([[u8; 1 << STACK_SHIFT]; boot::MAX_CPUS as usize]);

#[no_mangle]
static mut RMM_STACKS: Stacks = Stacks([[0; 1 << STACK_SHIFT]; boot::MAX_CPUS as usize]);

/// The level-1 table of the EL2 stage 1: 512 blocks of 1 GiB.
#[repr(C, align(4096))]
struct Table([u64; 512]);

#[no_mangle]
static mut RMM_TTBR0: Table = Table([0; 512]);

global_asm!(
    r#"
    .section .data
    .balign 8
rmm_cold_flag:
    .quad 1

    .section .text.entry, "ax"
    .global rmm_entry
rmm_entry:
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    mov     x22, x3
    cmp     x19, #{max_cpus}
    b.hs    9f
    adrp    x9, RMM_STACKS
    add     x9, x9, :lo12:RMM_STACKS
    add     x10, x19, #1
    lsl     x10, x10, #{stack_shift}
    add     x9, x9, x10
    mov     sp, x9
    adrp    x9, rmm_vectors
    add     x9, x9, :lo12:rmm_vectors
    msr     vbar_el2, x9
    isb
    adrp    x9, rmm_cold_flag
    ldr     x10, [x9, :lo12:rmm_cold_flag]
    cbz     x10, 2f
    str     xzr, [x9, :lo12:rmm_cold_flag]
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
    // Zero .bss, not the stack this CPU is on (it is empty yet).
1:  str     xzr, [x9], #8
    cmp     x9, x10
    b.lo    1b
    mov     x0, x19
    mov     x1, x20
    mov     x2, x21
    mov     x3, x22
    bl      rmm_cold_boot
    b       3f
2:  mov     x0, x19
    mov     x1, x20
    mov     x2, x21
    mov     x3, x22
    bl      rmm_warm_boot
3:  mov     x1, x0
    ldr     x0, ={boot_complete}
    b       rmm_loop
9:  mov     x1, #-4
    ldr     x0, ={boot_complete}
    smc     #0
    b       9b

    // Issues the SMC in x0 (x1..x5 its arguments); EL3 returns with the
    // next RMI request: x0 = function ID, x1..x7 = the host's x1..x7.
rmm_loop:
    smc     #0
    sub     sp, sp, #112
    stp     x1, x2, [sp, #0]
    stp     x3, x4, [sp, #16]
    stp     x5, x6, [sp, #32]
    str     x7, [sp, #48]
    mov     x1, sp
    add     x2, sp, #64
    bl      rmm_request
    ldp     x1, x2, [sp, #64]
    ldp     x3, x4, [sp, #80]
    ldr     x5, [sp, #96]
    add     sp, sp, #112
    ldr     x0, ={req_complete}
    b       rmm_loop

    // Any exception in the RMM is a bug of this firmware: report it.
    .balign 2048
rmm_vectors:
    .set    i, 0
    .rept   16
    .balign 128
    mov     x0, #i
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    b       rmm_exception
    .set    i, i + 1
    .endr
"#,
    max_cpus = const boot::MAX_CPUS,
    stack_shift = const STACK_SHIFT,
    boot_complete = const boot::BOOT_COMPLETE,
    req_complete = const boot::REQ_COMPLETE,
);

/// The console, once the manifest has named it.
static mut UART: u64 = 0;

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // SAFETY: `UART` is written once, at cold boot, before any
        // other CPU runs here.
        let base = unsafe { UART };
        if base == 0 {
            return Ok(());
        }
        for b in s.bytes() {
            // SAFETY: `base` is the PL011 the manifest names, mapped as
            // Device memory at its address; FR (0x18) bit 5 is TXFF, DR
            // (0x00) takes a byte.
            unsafe {
                while core::ptr::read_volatile((base + 0x18) as *const u32) & (1 << 5) != 0 {}
                core::ptr::write_volatile(base as *mut u32, u32::from(b));
            }
        }
        Ok(())
    }
}

macro_rules! println {
    ($($t:tt)*) => {{
        let _ = writeln!(Console, $($t)*);
    }};
}

/// An SMC to EL3 with `fid` and `x1`; returns x0.
fn smc(fid: u64, x1: u64) -> u64 {
    let r: u64;
    // SAFETY: an SMCCC call to EL3's RMM service; EL3 restores every
    // register but the results, which are declared clobbered here.
    unsafe {
        asm!("smc #0",
            inout("x0") fid => r, inout("x1") x1 => _,
            out("x2") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
            out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack));
    }
    r
}

struct Gtsi;

impl El3 for Gtsi {
    fn delegate(&mut self, pa: u64) -> Result<(), i64> {
        // CAST: EL3's status is a signed value in x0.
        match smc(boot::GTSI_DELEGATE, pa) as i64 {
            0 => Ok(()),
            e => Err(e),
        }
    }
    fn undelegate(&mut self, pa: u64) -> Result<(), i64> {
        // CAST: as above.
        match smc(boot::GTSI_UNDELEGATE, pa) as i64 {
            0 => Ok(()),
            e => Err(e),
        }
    }
    fn scrub(&mut self, pa: u64) {
        // SAFETY: `pa` is a delegated granule of a manifest bank (the
        // caller checked its state), mapped at its address in the realm
        // PAS; nothing else uses it while its state is `Delegated`.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, GRANULE as usize) };
    }
}

/// What the cold boot found, fixed afterwards.
struct Rmm {
    banks: [Bank; MAX_BANKS],
    num_banks: usize,
    cfg: rmi::Config,
}

static mut RMM: Rmm = Rmm {
    banks: [Bank { base: 0, size: 0 }; MAX_BANKS],
    num_banks: 0,
    cfg: rmi::Config { features0: 0 },
};
static mut STATES: [u8; MAX_GRANULES] = [0; MAX_GRANULES];
/// Serialises RMI requests (one CPU in the RMM state at a time).
static LOCK: AtomicBool = AtomicBool::new(false);

const BLOCK_VALID: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const NS: u64 = 1 << 5;
const AP1: u64 = 1 << 6;
const INNER_SHAREABLE: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54;

/// Fills the level-1 table: the first 4 GiB at their addresses (device
/// memory below 1 GiB, normal above), and DRAM again at `NS_ALIAS` in
/// the normal world's PAS.
fn build_tables() {
    let mut t = [0u64; 512];
    t[0] = ATTR_DEVICE | AF | AP1 | XN | BLOCK_VALID;
    for gib in 1..4u64 {
        // CAST: below 512.
        t[gib as usize] = (gib << 30) | ATTR_NORMAL | INNER_SHAREABLE | AF | AP1 | BLOCK_VALID;
        t[((NS_ALIAS >> 30) + gib) as usize] =
            (gib << 30) | ATTR_NORMAL | INNER_SHAREABLE | AF | AP1 | NS | XN | BLOCK_VALID;
    }
    // SAFETY: cold boot, on the only CPU in the RMM, with the MMU off;
    // the other CPUs only read the table after this.
    unsafe { (*core::ptr::addr_of_mut!(RMM_TTBR0)).0 = t };
}

/// Turns this CPU's MMU on with the table `build_tables` filled.
fn mmu_on() {
    const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 23) | (1 << 31);
    const MAIR: u64 = 0x04 | (0xff << 8);
    let ttbr = core::ptr::addr_of!(RMM_TTBR0) as u64;
    // SAFETY: the table maps this image (code, data, stacks) at its own
    // addresses with the attributes it had, so execution continues
    // across the switch; the sequence is the architecture's (invalidate,
    // barriers, then SCTLR_EL2.M, C and I).
    unsafe {
        asm!(
            "msr mair_el2, {mair}",
            "msr tcr_el2, {tcr}",
            "msr ttbr0_el2, {ttbr}",
            "dsb ish",
            "tlbi alle2",
            "dsb ish",
            "isb",
            "mrs {t}, sctlr_el2",
            "orr {t}, {t}, #(1 << 0)",
            "orr {t}, {t}, #(1 << 2)",
            "orr {t}, {t}, #(1 << 12)",
            "msr sctlr_el2, {t}",
            "isb",
            mair = in(reg) MAIR, tcr = in(reg) TCR, ttbr = in(reg) ttbr, t = out(reg) _,
            options(nostack));
    }
}

fn features0() -> u64 {
    let (vtr, dfr0): (u64, u64);
    // SAFETY: reads of ID and GIC virtualisation registers at EL2.
    unsafe {
        asm!("mrs {}, ich_vtr_el2", out(reg) vtr, options(nomem, nostack));
        asm!("mrs {}, id_aa64dfr0_el1", out(reg) dfr0, options(nomem, nostack));
    }
    let lrs = vtr & 0x1f;
    let (bps, wps) = ((dfr0 >> 12) & 0xf, (dfr0 >> 20) & 0xf);
    // S2SZ 48, BPs and WPs, SHA-256 and SHA-512, the GIC's list registers.
    48 | (bps << 14) | (wps << 20) | (1 << 32) | (1 << 33) | ((lrs & 0xf) << 34)
}

fn status(r: Result<(), BootError>) -> i64 {
    match r {
        // CAST: fieldless `repr(i64)` enum to its discriminant.
        Err(e) => e as i64,
        Ok(()) => 0,
    }
}

#[no_mangle]
extern "C" fn rmm_cold_boot(cpu: u64, version: u64, cpus: u64, shared: u64) -> i64 {
    status(cold_boot(cpu, version, cpus, shared))
}

fn cold_boot(cpu: u64, version: u64, cpus: u64, shared: u64) -> Result<(), BootError> {
    boot::check_cold(cpu, version, cpus, shared)?;
    // The MMU is off: read the page as aligned words (Device memory).
    let mut page = [0u8; 4096];
    for (i, w) in page.chunks_exact_mut(8).enumerate() {
        // SAFETY: `shared` is EL3's 4 KiB shared page (checked aligned),
        // in the realm PAS, which EL3 flushed to memory.
        let v = unsafe { core::ptr::read_volatile((shared as *const u64).add(i)) };
        w.copy_from_slice(&v.to_le_bytes());
    }
    let m = manifest::parse(&page, shared).map_err(|e| match e {
        manifest::ManifestError::Version => BootError::ManifestVersion,
        manifest::ManifestError::Data => BootError::ManifestData,
    })?;
    if Granules::count(m.banks()) > MAX_GRANULES as u64 {
        return Err(BootError::ManifestData);
    }
    build_tables();
    mmu_on();
    // SAFETY: cold boot runs on one CPU before any other enters the RMM.
    unsafe {
        if let Some(c) = m.console {
            UART = c.base;
        }
        let rmm = &mut *core::ptr::addr_of_mut!(RMM);
        rmm.num_banks = m.banks().len();
        rmm.banks[..rmm.num_banks].copy_from_slice(m.banks());
        rmm.cfg = rmi::Config { features0: features0() };
    }
    println!("confvm test RMM: test firmware, not a security boundary; RMI 1.0 (VERSION, FEATURES, GRANULE_DELEGATE/UNDELEGATE)");
    for b in m.banks() {
        println!("confvm test RMM: DRAM {:#x}..{:#x}", b.base, b.base + b.size);
    }
    let _ = NS_ALIAS;
    Ok(())
}

#[no_mangle]
extern "C" fn rmm_warm_boot(cpu: u64, x1: u64, x2: u64, x3: u64) -> i64 {
    let r = boot::check_warm(cpu, x1, x2, x3);
    if r.is_ok() {
        mmu_on();
        println!("confvm test RMM: CPU {cpu} up");
    }
    status(r)
}

#[no_mangle]
extern "C" fn rmm_request(fid: u64, args: &[u64; 7], out: &mut [u64; 5]) {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    // SAFETY: `LOCK` gives this CPU the RMM state alone until released;
    // `RMM` was fixed at cold boot.
    let (rmm, states) = unsafe {
        (
            &*core::ptr::addr_of!(RMM),
            &mut *core::ptr::addr_of_mut!(STATES),
        )
    };
    *out = match Granules::new(&rmm.banks[..rmm.num_banks], states) {
        Some(mut g) => rmi::dispatch(&rmm.cfg, &mut g, &mut Gtsi, fid, args),
        None => [rmi::NOT_SUPPORTED, args[0], args[1], args[2], args[3]],
    };
    LOCK.store(false, Ordering::Release);
}

#[no_mangle]
extern "C" fn rmm_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    println!("confvm test RMM: exception {vector} at {elr:#x}: ESR {esr:#x} FAR {far:#x}");
    loop {
        // SAFETY: waits for an event; nothing else is left to do.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("confvm test RMM: panic: {info}");
    loop {
        // SAFETY: as in `rmm_exception`.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}
