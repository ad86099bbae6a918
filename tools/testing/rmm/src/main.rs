// SPDX-License-Identifier: GPL-2.0

//! The firmware shell of the confvm test RMM: entry from EL3 (cold and
//! warm boot), per-CPU stacks, the heap, the MMU (the realm PAS mapped at
//! its addresses, the normal world's DRAM at `NS_ALIAS` above them), the
//! PL011 console, the SMCs to EL3, the RMI request loop, and the world
//! switch into and out of realms.  The decisions are the library's
//! (`lib.rs`) and the RMM core's (`kvm_rme::model`).  Test firmware, not
//! a security boundary.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use confvm_test_rmm::backing::{FwBacking, Hw, GRANULE};
use confvm_test_rmm::boot::{self, BootError};
use confvm_test_rmm::manifest::{self, Bank};
use confvm_test_rmm::measure::Measurements;
use confvm_test_rmm::realm::{self, ec, Abort, Call, Vector};
use confvm_test_rmm::{rmi, stage2};
use kvm_rme::abi::{enter_flags, exit_reason, ErrorStatus, Features0, Pa, RealmParams};
use kvm_rme::abi::{RecEnter, RecExit, RecParams, RmiError, GICV3_HCR_HOST_MASK};
use kvm_rme::model::{RealmInfo, RmmModel};

/// Stack per CPU.
const STACK_SHIFT: u32 = 16;
/// The heap: the RMM core's granule, realm, RTT and REC state.
const HEAP_SIZE: usize = 16 << 20;
/// Where the normal world's physical memory appears (NS PAS), so the RMM
/// can read host structures.
const NS_ALIAS: u64 = 64 << 30;
/// The realm PAS is mapped at its own addresses up to here.
const MAPPED_TOP: u64 = 4 << 30;

#[repr(C, align(4096))]
struct Stacks([[u8; 1 << STACK_SHIFT]; boot::MAX_CPUS as usize]);

#[no_mangle]
static mut RMM_STACKS: Stacks = Stacks([[0; 1 << STACK_SHIFT]; boot::MAX_CPUS as usize]);

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: buddy_system_allocator::LockedHeap<32> = buddy_system_allocator::LockedHeap::empty();

/// The level-1 table of the EL2 stage 1: 512 blocks of 1 GiB.
#[repr(C, align(4096))]
struct Table([u64; 512]);

#[no_mangle]
static mut RMM_TTBR0: Table = Table([0; 512]);

/// The realm registers the world switch loads and saves (offsets are the
/// assembly's).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Regs {
    x: [u64; 31],
    pc: u64,
    pstate: u64,
    esr: u64,
    far: u64,
    hpfar: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(Regs, pc) == 248);
    assert!(core::mem::offset_of!(Regs, pstate) == 256);
    assert!(core::mem::offset_of!(Regs, esr) == 264);
    assert!(core::mem::offset_of!(Regs, far) == 272);
    assert!(core::mem::offset_of!(Regs, hpfar) == 280);
};

/// FP/SIMD registers: q0..q31, then FPSR and FPCR.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Fp([u64; 66]);

global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    // x2..x29 of the realm's register block at x0 (x0, x1 and x30 are
    // moved apart), and q0..q31 of an FP area at x0.
    .macro gprs op
    .irp n, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29
    \op    x\n, [x0, #(8 * \n)]
    .endr
    .endm
    .macro qregs op
    .irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    \op    q\n, [x0, #(16 * \n)]
    .endr
    .endm

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

    // rmm_realm_run(regs): enters the realm with `regs` (x0..x30, PC,
    // PSTATE) and returns the lower-EL vector it left through (0 sync,
    // 1 IRQ, 2 FIQ, 3 SError), with `regs` saved and ESR/FAR/HPFAR.
    .global rmm_realm_run
rmm_realm_run:
    stp     x19, x20, [sp, #-96]!
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    msr     tpidr_el2, x0
    ldr     x1, [x0, #248]
    msr     elr_el2, x1
    ldr     x1, [x0, #256]
    msr     spsr_el2, x1
    gprs    ldr
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

    // From the lower-EL vectors: x1 = vector, the realm's x0/x1 on the
    // stack.
rmm_realm_exit:
    mrs     x0, tpidr_el2
    gprs    str
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]
    mrs     x2, elr_el2
    str     x2, [x0, #248]
    mrs     x2, spsr_el2
    str     x2, [x0, #256]
    mrs     x2, esr_el2
    str     x2, [x0, #264]
    mrs     x2, far_el2
    str     x2, [x0, #272]
    mrs     x2, hpfar_el2
    str     x2, [x0, #280]
    mov     x0, x1
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     x19, x20, [sp], #96
    ret

    // rmm_ns_copy(dst, src, words): copies 8-byte words; returns 0, or 1
    // if an access faulted (a granule that is not in the PAS its address
    // says, or not mapped).  The fault handler resumes at
    // rmm_ns_copy_fault.
    .global rmm_ns_copy
rmm_ns_copy:
    cbz     x2, 2f
rmm_ns_copy_start:
1:  ldr     x4, [x1], #8
    str     x4, [x0], #8
    subs    x2, x2, #1
    b.ne    1b
rmm_ns_copy_end:
2:  mov     x0, #0
    ret
rmm_ns_copy_fault:
    mov     x0, #1
    ret

rmm_el2_sync:
    mrs     x9, elr_el2
    adr     x10, rmm_ns_copy_start
    cmp     x9, x10
    b.lo    1f
    adr     x10, rmm_ns_copy_end
    cmp     x9, x10
    b.hs    1f
    adr     x10, rmm_ns_copy_fault
    msr     elr_el2, x10
    eret
1:  mov     x0, #4
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    b       rmm_exception

    // rmm_fp_save(fp) / rmm_fp_load(fp): q0..q31, FPSR, FPCR.
    .global rmm_fp_save
rmm_fp_save:
    qregs   str
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret
    .global rmm_fp_load
rmm_fp_load:
    qregs   ldr
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpsr, x1
    msr     fpcr, x2
    ret

    // Exceptions in the RMM are bugs of this firmware, reported; but a
    // fault in rmm_ns_copy is the host's bad address.  Exceptions from
    // the realm end rmm_realm_run.
    // `n` vectors from number `first` that report the exception.
    .macro report first, n
    .set    i, \first
    .rept   \n
    .balign 128
    mov     x0, #i
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    b       rmm_exception
    .set    i, i + 1
    .endr
    .endm

    .balign 2048
rmm_vectors:
    report  0, 4
    .balign 128
    b       rmm_el2_sync
    report  5, 3
    .set    i, 0
    .rept   4
    .balign 128
    stp     x0, x1, [sp, #-16]!
    mov     x1, #i
    b       rmm_realm_exit
    .set    i, i + 1
    .endr
    report  12, 4
"#,
    max_cpus = const boot::MAX_CPUS,
    stack_shift = const STACK_SHIFT,
    boot_complete = const boot::BOOT_COMPLETE,
    req_complete = const boot::REQ_COMPLETE,
);

extern "C" {
    fn rmm_realm_run(regs: *mut Regs) -> u64;
    fn rmm_ns_copy(dst: *mut u64, src: *const u64, words: u64) -> u64;
    fn rmm_fp_save(fp: *mut Fp);
    fn rmm_fp_load(fp: *const Fp);
}

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

macro_rules! mrs {
    ($r:expr) => {{
        let v: u64;
        // SAFETY: a system-register read at EL2 that the boot checked
        // this CPU implements; it has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! msr {
    ($r:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: an EL2 write of a register that belongs to the realm
        // being run or to the state this RMM restores for the normal
        // world; nothing of the RMM's own translation or stack depends
        // on it.
        unsafe { asm!(concat!("msr ", $r, ", {}"), in(reg) v, options(nomem, nostack)) };
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

/// Whether `[pa, pa + len)` is realm-PAS memory this RMM maps at its own
/// address.
fn mapped(pa: u64, len: u64) -> bool {
    pa >= 1 << 30 && pa.checked_add(len).is_some_and(|e| e <= MAPPED_TOP)
}

/// The machine under the RMM core.
struct Machine;

impl Hw for Machine {
    fn gtsi_delegate(&mut self, pa: u64) -> Result<(), i64> {
        // CAST: EL3's status is a signed value in x0.
        match smc(boot::GTSI_DELEGATE, pa) as i64 {
            0 => Ok(()),
            e => Err(e),
        }
    }
    fn gtsi_undelegate(&mut self, pa: u64) -> Result<(), i64> {
        // CAST: as above.
        match smc(boot::GTSI_UNDELEGATE, pa) as i64 {
            0 => Ok(()),
            e => Err(e),
        }
    }
    fn zero(&mut self, pa: u64) {
        if mapped(pa, GRANULE) {
            // SAFETY: `pa` is a granule the core holds in the realm PAS
            // (delegated, checked against the manifest's banks), mapped
            // at its address; nothing else uses it in this state.
            unsafe { core::ptr::write_bytes(pa as *mut u8, 0, GRANULE as usize) };
        }
    }
    fn copy_from_ns(&mut self, dst: u64, src: u64) -> bool {
        mapped(dst, GRANULE) && mapped(src, GRANULE) && ns_copy(dst as *mut u64, NS_ALIAS + src, 512)
    }
    fn write_desc(&mut self, table: u64, index: usize, desc: u64) -> u64 {
        let p = (table + 8 * (index as u64 & 511)) as *mut u64;
        if !mapped(table, GRANULE) {
            return 0;
        }
        // SAFETY: `table` is an RTT granule the core holds (delegated,
        // in a bank), mapped at its address; the MMU may walk it, so
        // the write is one aligned 64-bit store and is made visible to
        // walks by the barrier.
        unsafe {
            let old = core::ptr::read_volatile(p);
            core::ptr::write_volatile(p, desc);
            asm!("dsb ishst", options(nostack));
            old
        }
    }
    fn tlbi_all(&mut self) {
        // SAFETY: TLB maintenance for the realm's EL1&0 regime, all
        // VMIDs, broadcast; it changes no memory.
        unsafe { asm!("dsb ishst", "tlbi alle1is", "dsb ish", "isb", options(nostack)) };
    }
}

/// Copies `words` from the normal world's `src` (an `NS_ALIAS` address)
/// or to it; `false` if the access faulted.
fn ns_copy(dst: *mut u64, src: u64, words: u64) -> bool {
    // SAFETY: `rmm_ns_copy` touches only `[dst, dst + 8 * words)` and
    // `[src, ...)`, both inside this RMM's mapping (the callers check),
    // and a fault in it returns 1 instead of being taken as a bug.
    unsafe { rmm_ns_copy(dst, src as *const u64, words) == 0 }
}

/// Reads the normal world's granule structure `T` at `pa`.
fn ns_read<T: Copy + Default>(pa: u64) -> Option<T> {
    let mut v = T::default();
    let words = (core::mem::size_of::<T>() / 8) as u64;
    if !mapped(pa, 8 * words) {
        return None;
    }
    // `T` is a firmware structure of integers and byte arrays (any bit
    // pattern is a value), a multiple of 8 bytes.
    if ns_copy(&mut v as *mut T as *mut u64, NS_ALIAS + pa, words) {
        Some(v)
    } else {
        None
    }
}

/// Writes `v` to the normal world's memory at `pa`.
fn ns_write<T: Copy>(pa: u64, v: &T) -> bool {
    let words = (core::mem::size_of::<T>() / 8) as u64;
    if !mapped(pa, 8 * words) {
        return false;
    }
    // The source is only read: the copy goes the other way.
    let mut tmp = *v;
    ns_copy((NS_ALIAS + pa) as *mut u64, &mut tmp as *mut T as u64, words)
}

/// One REC's saved state.
struct Rec {
    regs: Regs,
    el1: [u64; EL1_REGS],
    keys: [u64; 10],
    fp: Fp,
    vmcr: u64,
    ap0r0: u64,
    ap1r0: u64,
    mpidr: u64,
    /// What the next entry completes.
    pending: Pending,
    /// `PSCI_COMPLETE`'s answer for the caller's x0.
    psci_result: Option<u64>,
    /// Whether each EL1 timer (virtual, physical) was asserted at the
    /// last exit, as the host was told.
    timers_reported: [bool; 2],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// An emulatable MMIO exit (its syndrome).
    Mmio(u64),
    /// Another stage-2 fault the host resolves.
    Fault(u64),
    /// `RSI_IPA_STATE_SET`.
    Ripas,
    /// `RSI_HOST_CALL` with its structure at this realm PA.
    HostCall(u64),
    /// A PSCI call.
    Psci,
    /// A GIC system-register read the host emulates, into this register.
    SysRegRead(usize),
}

/// SCTLR_EL1 at a REC's first entry (TF-RMM's: SPAN, EIS, nTWE, nTWI,
/// EOS, nAA, CP15BEN, SA0, SA; MMU and caches off).
const SCTLR_EL1_RESET: u64 = 0x00C5_0878;
/// MDSCR_EL1 at a REC's first entry: TDCC.
const MDSCR_EL1_RESET: u64 = 1 << 12;
/// PSTATE at a REC's first entry: EL1h, DAIF masked.
const PSTATE_EL1H: u64 = 0x3c5;

impl Rec {
    fn new(p: &RecParams) -> Rec {
        let mut regs = Regs::default();
        regs.x[..8].copy_from_slice(&p.gprs);
        regs.pc = p.pc;
        regs.pstate = PSTATE_EL1H;
        let mut el1 = [0; EL1_REGS];
        el1[0] = SCTLR_EL1_RESET;
        el1[1] = MDSCR_EL1_RESET;
        Rec {
            regs,
            el1,
            keys: [0; 10],
            fp: Fp([0; 66]),
            vmcr: 0,
            ap0r0: 0,
            ap1r0: 0,
            mpidr: p.mpidr,
            pending: Pending::None,
            psci_result: None,
            timers_reported: [false; 2],
        }
    }

    /// PSCI CPU_ON: the REC starts at `entry` with `context` in x0, in
    /// EL1h with interrupts masked and SCTLR_EL1 reset (its endianness
    /// the caller's, as TF-RMM does).
    fn reset(&mut self, entry: u64, context: u64, caller_sctlr: u64) {
        self.regs.x[0] = context;
        self.regs.pc = entry;
        self.regs.pstate = PSTATE_EL1H;
        self.el1[0] = SCTLR_EL1_RESET | (caller_sctlr & (1 << 25));
        self.pending = Pending::None;
        self.psci_result = None;
    }
}

/// The EL1 and EL0 registers a world switch saves and restores, in an
/// order where each timer's compare value is written before its control.
macro_rules! el1_regs {
    ($($r:literal),* $(,)?) => {
        const EL1_REGS: usize = [$($r),*].len();

        fn el1_save(a: &mut [u64; EL1_REGS]) {
            let mut i = 0;
            $( a[i] = mrs!($r); i += 1; )*
            let _ = i;
        }

        fn el1_load(a: &[u64; EL1_REGS]) {
            let mut i = 0;
            $( msr!($r, a[i]); i += 1; )*
            let _ = i;
        }
    };
}

el1_regs!(
    "sctlr_el1", "mdscr_el1", "actlr_el1", "cpacr_el1", "ttbr0_el1", "ttbr1_el1", "tcr_el1", "esr_el1",
    "afsr0_el1", "afsr1_el1", "far_el1", "mair_el1", "amair_el1", "vbar_el1", "contextidr_el1",
    "tpidr_el1", "tpidr_el0", "tpidrro_el0", "sp_el0", "sp_el1", "elr_el1", "spsr_el1",
    "par_el1", "csselr_el1", "cntkctl_el1", "mdccint_el1", "cntv_cval_el0", "cntv_ctl_el0",
    "cntp_cval_el0", "cntp_ctl_el0",
);

/// Pointer-authentication keys (APIA, APIB, APDA, APDB, APGA; lo, hi).
fn keys_save(k: &mut [u64; 10]) {
    *k = [
        mrs!("S3_0_C2_C1_0"), mrs!("S3_0_C2_C1_1"), mrs!("S3_0_C2_C1_2"), mrs!("S3_0_C2_C1_3"),
        mrs!("S3_0_C2_C2_0"), mrs!("S3_0_C2_C2_1"), mrs!("S3_0_C2_C2_2"), mrs!("S3_0_C2_C2_3"),
        mrs!("S3_0_C2_C3_0"), mrs!("S3_0_C2_C3_1"),
    ];
}

fn keys_load(k: &[u64; 10]) {
    msr!("S3_0_C2_C1_0", k[0]);
    msr!("S3_0_C2_C1_1", k[1]);
    msr!("S3_0_C2_C1_2", k[2]);
    msr!("S3_0_C2_C1_3", k[3]);
    msr!("S3_0_C2_C2_0", k[4]);
    msr!("S3_0_C2_C2_1", k[5]);
    msr!("S3_0_C2_C2_2", k[6]);
    msr!("S3_0_C2_C2_3", k[7]);
    msr!("S3_0_C2_C3_0", k[8]);
    msr!("S3_0_C2_C3_1", k[9]);
}

/// The normal world's state a REC entry must give back.
struct NsState {
    el1: [u64; EL1_REGS],
    keys: [u64; 10],
    fp: Fp,
}

/// What the cold boot found, fixed afterwards.
struct Config {
    pauth: bool,
    hcx: bool,
    lrs: usize,
    pmcr_n: u64,
    midr: u64,
}

static mut CONFIG: Config = Config { pauth: false, hcx: false, lrs: 0, pmcr_n: 0, midr: 0 };

fn config() -> &'static Config {
    // SAFETY: written once at cold boot before any other CPU enters the
    // RMM; read-only afterwards.
    unsafe { &*core::ptr::addr_of!(CONFIG) }
}

/// The shell's side of the RMM state: REC contexts and measurements.
struct ShellState {
    recs: BTreeMap<u64, Box<Rec>>,
    /// RECs being run (their context is out of `recs`).
    running: alloc::collections::BTreeSet<u64>,
    meas: BTreeMap<u64, Measurements>,
    /// A `PSCI_COMPLETE` to apply once the core has answered.
    psci_done: Option<(Pa, Pa, u64)>,
}

struct State {
    core: RmmModel<FwBacking<Machine>>,
    shell: ShellState,
}

impl rmi::Shell for ShellState {
    fn realm_params(&mut self, pa: u64) -> Option<RealmParams> {
        ns_read(pa)
    }
    fn rec_params(&mut self, pa: u64) -> Option<RecParams> {
        ns_read(pa)
    }
    fn realm_created(&mut self, rd: Pa, p: &RealmParams) {
        self.meas.insert(rd.0, Measurements::new(p));
    }
    fn realm_destroyed(&mut self, rd: Pa) {
        self.meas.remove(&rd.0);
    }
    fn rec_created(&mut self, rd: Pa, rec: Pa, p: &RecParams) {
        self.recs.insert(rec.0, Box::new(Rec::new(p)));
        if let Some(m) = self.meas.get_mut(&rd.0) {
            m.rec(p);
        }
    }
    fn rec_destroyed(&mut self, rec: Pa) {
        self.recs.remove(&rec.0);
    }
    fn rec_idle(&mut self, rec: Pa) -> bool {
        !self.running.contains(&rec.0)
    }
    fn data_created(&mut self, rd: Pa, ipa: u64, data: Pa, flags: u64) {
        if let Some(m) = self.meas.get_mut(&rd.0) {
            if mapped(data.0, GRANULE) {
                // SAFETY: `data` is the data granule the core just filled
                // (realm PAS, mapped at its address), not yet mapped to
                // any realm that runs.
                let bytes = unsafe { core::slice::from_raw_parts(data.0 as *const u8, GRANULE as usize) };
                m.data(ipa, flags, bytes);
            }
        }
    }
    fn ripas_initialised(&mut self, rd: Pa, base: u64, top: u64, size: u64) {
        if let Some(m) = self.meas.get_mut(&rd.0) {
            // One descriptor per RTT entry, as TF-RMM measures.
            let mut a = base;
            while a < top && size != 0 {
                m.ripas(a, a.saturating_add(size).min(top));
                a = a.saturating_add(size);
            }
        }
    }
    fn psci_completed(&mut self, calling: Pa, target: Pa, status: u64) {
        self.psci_done = Some((calling, target, status));
    }
}

static mut STATE: Option<State> = None;
/// Serialises the RMM state (one CPU at a time); a running REC does not
/// hold it.
static LOCK: AtomicBool = AtomicBool::new(false);

struct Guard;

impl Guard {
    fn state(&mut self) -> Option<&mut State> {
        // SAFETY: the guard's holder has `LOCK`, so it alone uses `STATE`.
        unsafe { (*core::ptr::addr_of_mut!(STATE)).as_mut() }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
    }
}

fn lock() -> Guard {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    Guard
}

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
    let vtr = mrs!("ich_vtr_el2");
    let dfr0 = mrs!("id_aa64dfr0_el1");
    let lrs = vtr & 0x1f;
    let (bps, wps) = ((dfr0 >> 12) & 0xf, (dfr0 >> 20) & 0xf);
    // S2SZ: the CPU's PA size, as TF-RMM reports it (REALM_CREATE above
    // 48 bits is refused: no LPA2); BPs and WPs, SHA-256 and SHA-512,
    // the GIC's list registers (minus one), 2^8 RECs.
    let s2sz = match mrs!("id_aa64mmfr0_el1") & 0xf {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    };
    s2sz | (bps << 14) | (wps << 20) | (1 << 32) | (1 << 33) | ((lrs & 0xf) << 34) | (8 << 38)
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
    let banks: &[Bank] = m.banks();
    let lo = banks.iter().map(|b| b.base).min().unwrap_or(0);
    let hi = banks.iter().map(|b| b.base.saturating_add(b.size)).max().unwrap_or(0);
    if banks.is_empty() || lo < 1 << 30 || hi > MAPPED_TOP {
        return Err(BootError::ManifestData);
    }
    build_tables();
    mmu_on();
    let isar1 = mrs!("id_aa64isar1_el1");
    let isar2 = mrs!("id_aa64isar2_el1");
    // APA, API, GPA, GPI; APA3, GPA3.
    let pauth = isar1 & 0xff00_0ff0 != 0 || isar2 & 0xff000 != 0;
    let lrs = (mrs!("ich_vtr_el2") & 0x1f) as usize + 1;
    let pmcr_n = (mrs!("pmcr_el0") >> 11) & 0x1f;
    let midr = mrs!("midr_el1");
    let hcx = (mrs!("id_aa64mmfr1_el1") >> 40) & 0xf != 0;
    // SAFETY: cold boot runs on one CPU before any other enters the RMM.
    unsafe {
        if let Some(c) = m.console {
            UART = c.base;
        }
        CONFIG = Config { pauth, hcx, lrs: lrs.min(16), pmcr_n, midr };
        HEAP.lock().init(core::ptr::addr_of_mut!(HEAP_SPACE) as usize, HEAP_SIZE);
        let mut core = RmmModel::with_backing(lo, hi - lo, FwBacking::new(Machine));
        core.features = Features0::decode(features0());
        *core::ptr::addr_of_mut!(STATE) = Some(State {
            core,
            shell: ShellState {
                recs: BTreeMap::new(),
                running: alloc::collections::BTreeSet::new(),
                meas: BTreeMap::new(),
                psci_done: None,
            },
        });
    }
    println!("confvm test RMM: test firmware, not a security boundary; RMI 1.0, RSI 1.0");
    for b in banks {
        println!("confvm test RMM: DRAM {:#x}..{:#x}", b.base, b.base + b.size);
    }
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
    let mut g = lock();
    let Some(st) = g.state() else {
        *out = [rmi::NOT_SUPPORTED, args[0], args[1], args[2], args[3]];
        return;
    };
    match rmi::dispatch(&mut st.core, &mut st.shell, fid, args) {
        rmi::Request::Done(r) => {
            *out = r;
            if let Some((calling, target, status)) = st.shell.psci_done.take() {
                psci_done(st, calling, target, status);
            }
        }
        rmi::Request::RecEnter { rec, run } => {
            drop(g);
            *out = [rec_enter(rec, run), args[0], args[1], args[2], args[3]];
        }
    }
}

/// Applies `PSCI_COMPLETE(calling, target, status)`: the caller's x0,
/// and for a successful CPU_ON the target starts at the entry point.
fn psci_done(st: &mut State, calling: Pa, target: Pa, status: u64) {
    let Some(c) = st.shell.recs.get_mut(&calling.0) else {
        return;
    };
    let (function, entry, context) = (c.regs.x[0], c.regs.x[2], c.regs.x[3]);
    let sctlr = c.el1[0];
    c.regs.x[1..4].fill(0);
    // CAST: PSCI function IDs are 32 bits.
    let function = function as u32;
    let on = st.core.rec_runnable(target) || st.shell.running.contains(&target.0);
    if function == realm::psci::CPU_ON || function == realm::psci::CPU_ON32 {
        let result = if on {
            realm::psci::ALREADY_ON
        } else {
            status
        };
        if let Some(c) = st.shell.recs.get_mut(&calling.0) {
            c.psci_result = Some(result);
        }
        if !on && status == realm::psci::SUCCESS {
            if let Some(t) = st.shell.recs.get_mut(&target.0) {
                t.reset(entry, context, sctlr);
            }
            st.core.set_runnable(target, true);
        }
    } else {
        c.psci_result = Some(if on { 0 } else { 1 });
    }
}

fn rmi_err(status: ErrorStatus) -> u64 {
    RmiError::new(status, 0).encode()
}

/// `REC_ENTER(rec, run)`: runs the REC until something needs the host.
fn rec_enter(rec: Pa, run_pa: Pa) -> u64 {
    let (info, mut ctx) = {
        let mut g = lock();
        let Some(st) = g.state() else {
            return rmi_err(ErrorStatus::Input);
        };
        if !st.core.ns_granule(run_pa) {
            // Counted as the core counts every REC_ENTER.
            let _ = st.core.rec_enter_begin(Pa(0));
            return rmi_err(ErrorStatus::Input);
        }
        let info = match st.core.rec_enter_begin(rec) {
            Ok(i) => i,
            Err(e) => return e.encode(),
        };
        let Some(ctx) = st.shell.recs.remove(&rec.0) else {
            // Another CPU is running it.
            return rmi_err(ErrorStatus::Rec);
        };
        st.shell.running.insert(rec.0);
        (info, ctx)
    };
    let put_back = |ctx: Box<Rec>, exit: Option<&RecExit>| {
        let mut g = lock();
        if let Some(st) = g.state() {
            if let Some(e) = exit {
                st.core.rec_exited(rec, info.rd, e);
            }
            st.shell.running.remove(&rec.0);
            st.shell.recs.insert(rec.0, ctx);
        }
    };
    let Some(enter) = ns_read::<RecEnter>(run_pa.0) else {
        put_back(ctx, None);
        return rmi_err(ErrorStatus::Input);
    };
    let lrs = config().lrs;
    if enter.gicv3_hcr & !GICV3_HCR_HOST_MASK != 0
        || enter.gicv3_lrs[..lrs].iter().any(|lr| lr & (1 << 61) != 0)
    {
        put_back(ctx, None);
        return rmi_err(ErrorStatus::Rec);
    }
    let mut exit = RecExit::default();
    run(&info, rec, &mut ctx, &enter, &mut exit);
    let ok = ns_write(run_pa.0 + 0x800, &exit);
    put_back(ctx, Some(&exit));
    if ok {
        0
    } else {
        rmi_err(ErrorStatus::Input)
    }
}

/// `HCR_EL2` for a realm: VM, SWIO, PTW, FMO, IMO, AMO, FB, BSU inner,
/// TID3, TSC, TIDCP, RW, APK, API, FWB (WFI/WFE traps as the host asks).
const HCR_REALM: u64 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9)
    | (1 << 10) | (1 << 18) | (1 << 19) | (1 << 20) | (1 << 31) | (1 << 40) | (1 << 41) | (1 << 46);
/// `CPTR_EL2` (E2H = 0) for a realm: FP/SIMD allowed; SVE, SME and AMU
/// trapped (RES1 bits 13, 9 and 7:0).
const CPTR_REALM: u64 = (1 << 30) | (1 << 13) | (1 << 12) | (1 << 9) | (1 << 8) | 0xff;
/// `CNTHCTL_EL2`: EL1 physical counter and timer not trapped.
const CNTHCTL_EL1PCTEN_EL1PCEN: u64 = 0b11;
/// `CNTHCTL_EL2.CNTVMASK` and `CNTPMASK` (FEAT_RME): the realm's timer
/// output is masked while the host has its interrupt in a list register.
const CNTHCTL_CNTVMASK: u64 = 1 << 18;
const CNTHCTL_CNTPMASK: u64 = 1 << 19;

/// Whether a timer's output is asserted: enabled, not masked, condition met.
fn asserted(ctl: u64) -> bool {
    ctl & 0b111 == 0b101
}

fn lr_write(i: usize, v: u64) {
    match i {
        0 => msr!("ich_lr0_el2", v), 1 => msr!("ich_lr1_el2", v), 2 => msr!("ich_lr2_el2", v),
        3 => msr!("ich_lr3_el2", v), 4 => msr!("ich_lr4_el2", v), 5 => msr!("ich_lr5_el2", v),
        6 => msr!("ich_lr6_el2", v), 7 => msr!("ich_lr7_el2", v), 8 => msr!("ich_lr8_el2", v),
        9 => msr!("ich_lr9_el2", v), 10 => msr!("ich_lr10_el2", v), 11 => msr!("ich_lr11_el2", v),
        12 => msr!("ich_lr12_el2", v), 13 => msr!("ich_lr13_el2", v), 14 => msr!("ich_lr14_el2", v),
        15 => msr!("ich_lr15_el2", v), _ => {}
    }
}

fn lr_read(i: usize) -> u64 {
    match i {
        0 => mrs!("ich_lr0_el2"), 1 => mrs!("ich_lr1_el2"), 2 => mrs!("ich_lr2_el2"),
        3 => mrs!("ich_lr3_el2"), 4 => mrs!("ich_lr4_el2"), 5 => mrs!("ich_lr5_el2"),
        6 => mrs!("ich_lr6_el2"), 7 => mrs!("ich_lr7_el2"), 8 => mrs!("ich_lr8_el2"),
        9 => mrs!("ich_lr9_el2"), 10 => mrs!("ich_lr10_el2"), 11 => mrs!("ich_lr11_el2"),
        12 => mrs!("ich_lr12_el2"), 13 => mrs!("ich_lr13_el2"), 14 => mrs!("ich_lr14_el2"),
        15 => mrs!("ich_lr15_el2"), _ => 0,
    }
}

/// Runs the REC from `enter` until an exit for the host, which it fills
/// into `exit`.  The normal world's EL1, FP/SIMD and key state is saved
/// first and given back last.
fn run(info: &RealmInfo, rec: Pa, ctx: &mut Rec, enter: &RecEnter, exit: &mut RecExit) {
    let cfg = config();
    let mut ns = NsState { el1: [0; EL1_REGS], keys: [0; 10], fp: Fp([0; 66]) };
    el1_save(&mut ns.el1);
    // SAFETY: `ns.fp` and `ctx.fp` are 528-byte FP areas.
    unsafe {
        rmm_fp_save(&mut ns.fp);
        rmm_fp_load(&ctx.fp);
    }
    if cfg.pauth {
        keys_save(&mut ns.keys);
        keys_load(&ctx.keys);
    }
    el1_load(&ctx.el1);

    // EL2 controls for this realm.
    let mut hcr = HCR_REALM;
    if enter.flags & enter_flags::TRAP_WFI != 0 {
        hcr |= 1 << 13;
    }
    if enter.flags & enter_flags::TRAP_WFE != 0 {
        hcr |= 1 << 14;
    }
    msr!("hcr_el2", hcr);
    msr!("vtcr_el2", stage2::vtcr(info.ipa_bits, info.start_level));
    msr!("vttbr_el2", stage2::vttbr(info.rtt_base.0, info.vmid));
    msr!("vmpidr_el2", ctx.mpidr | (1 << 31));
    msr!("vpidr_el2", cfg.midr);
    msr!("cptr_el2", CPTR_REALM);
    // HPMN, TPMCR, TPM: the PMU is not the realm's.
    msr!("mdcr_el2", cfg.pmcr_n | (1 << 5) | (1 << 6));
    msr!("cntvoff_el2", 0);
    if cfg.hcx {
        // HCRX_EL2: no TCR2, SCTLR2, MOPS or GCS for realms.
        msr!("S3_4_C1_C2_2", 0);
    }
    let lrs = cfg.lrs;
    for i in 0..lrs {
        lr_write(i, enter.gicv3_lrs[i]);
    }
    msr!("ich_vmcr_el2", ctx.vmcr);
    msr!("ich_ap0r0_el2", ctx.ap0r0);
    msr!("ich_ap1r0_el2", ctx.ap1r0);
    msr!("ich_hcr_el2", (enter.gicv3_hcr & GICV3_HCR_HOST_MASK) | 1);
    // SAFETY: the barrier orders the register writes above before the
    // realm runs.
    unsafe { asm!("isb", options(nostack)) };

    complete(info, rec, ctx, enter);
    let mut cnthctl = u64::MAX;
    loop {
        // As TF-RMM: a timer whose output is asserted is masked at its
        // source, so that the interrupt the host injects for it does not
        // bring the realm straight back; a change since the host last
        // looked is an IRQ exit, so the host sees the new level.
        let now = [asserted(mrs!("cntv_ctl_el0")), asserted(mrs!("cntp_ctl_el0"))];
        let want = CNTHCTL_EL1PCTEN_EL1PCEN
            | if now[0] { CNTHCTL_CNTVMASK } else { 0 }
            | if now[1] { CNTHCTL_CNTPMASK } else { 0 };
        if want != cnthctl {
            msr!("cnthctl_el2", want);
            // SAFETY: a barrier; it changes no memory.
            unsafe { asm!("isb", options(nostack)) };
            cnthctl = want;
        }
        if now != ctx.timers_reported {
            exit.exit_reason = exit_reason::IRQ;
            break;
        }
        // SAFETY: `ctx.regs` is this REC's register block; the realm
        // runs on this CPU with the stage 2 the core keeps for it and
        // comes back through the lower-EL vectors.
        let v = Vector::from_index(unsafe { rmm_realm_run(&mut ctx.regs) });
        if let Some(()) = handle(info, rec, ctx, v, exit) {
            break;
        }
    }

    // The GIC and timers, as the host sees them.
    for i in 0..lrs {
        exit.gicv3_lrs[i] = lr_read(i);
        lr_write(i, 0);
    }
    exit.gicv3_hcr = mrs!("ich_hcr_el2") & GICV3_HCR_HOST_MASK;
    exit.gicv3_misr = mrs!("ich_misr_el2");
    ctx.vmcr = mrs!("ich_vmcr_el2");
    exit.gicv3_vmcr = ctx.vmcr;
    ctx.ap0r0 = mrs!("ich_ap0r0_el2");
    ctx.ap1r0 = mrs!("ich_ap1r0_el2");
    msr!("ich_hcr_el2", 0);
    exit.cntv_ctl = mrs!("cntv_ctl_el0");
    exit.cntv_cval = mrs!("cntv_cval_el0");
    exit.cntp_ctl = mrs!("cntp_ctl_el0");
    exit.cntp_cval = mrs!("cntp_cval_el0");
    ctx.timers_reported = [asserted(exit.cntv_ctl), asserted(exit.cntp_ctl)];

    el1_save(&mut ctx.el1);
    el1_load(&ns.el1);
    if cfg.pauth {
        keys_save(&mut ctx.keys);
        keys_load(&ns.keys);
    }
    // SAFETY: as above.
    unsafe {
        rmm_fp_save(&mut ctx.fp);
        rmm_fp_load(&ns.fp);
    }
    msr!("cnthctl_el2", CNTHCTL_EL1PCTEN_EL1PCEN);
    msr!("hcr_el2", 1 << 31);
    // SAFETY: as above.
    unsafe { asm!("isb", options(nostack)) };
}

/// Injects a synchronous exception with syndrome `esr` (and `far`) into
/// the loaded realm EL1 state.
fn inject(ctx: &mut Rec, esr: u64, far: Option<u64>) {
    let from_el1 = ctx.regs.pstate & 0xc == 0x4;
    let offset = match (from_el1, ctx.regs.pstate & 1 != 0) {
        (true, true) => 0x200,
        (true, false) => 0x000,
        (false, _) => 0x400,
    };
    msr!("elr_el1", ctx.regs.pc);
    msr!("spsr_el1", ctx.regs.pstate);
    msr!("esr_el1", esr);
    if let Some(f) = far {
        msr!("far_el1", f);
    }
    ctx.regs.pc = mrs!("vbar_el1") + offset;
    ctx.regs.pstate = PSTATE_EL1H;
}

/// Completes what the last exit left open, from the host's `enter`.
fn complete(info: &RealmInfo, rec: Pa, ctx: &mut Rec, enter: &RecEnter) {
    let pending = core::mem::replace(&mut ctx.pending, Pending::None);
    match pending {
        Pending::None => {}
        Pending::Mmio(esr) => {
            if enter.flags & enter_flags::INJECT_SEA != 0 {
                inject(ctx, realm::sea_esr(esr, ctx.regs.pstate & 0xc == 0x4), Some(ctx.regs.far));
            } else if enter.flags & enter_flags::EMULATED_MMIO != 0 {
                if esr & realm::ESR_WNR == 0 {
                    let rt = realm::srt(esr);
                    if rt < 31 {
                        ctx.regs.x[rt] = realm::mmio_read_value(esr, enter.gprs[0]);
                    }
                }
                ctx.regs.pc = ctx.regs.pc.wrapping_add(4);
            }
        }
        Pending::Fault(esr) => {
            if enter.flags & enter_flags::INJECT_SEA != 0 {
                inject(ctx, realm::sea_esr(esr, ctx.regs.pstate & 0xc == 0x4), Some(ctx.regs.far));
            }
        }
        Pending::Ripas => {
            let mut g = lock();
            let r = g.state().and_then(|st| st.core.ripas_response(rec));
            // As TF-RMM: a rejection counts only for an unfinished change
            // to RAM.
            let flag = enter.flags & enter_flags::RIPAS_RESPONSE_REJECT != 0;
            let (next, reject) = match r {
                Some(r) => (r.next, flag && r.ripas == kvm_rme::abi::Ripas::Ram && r.next != r.top),
                None => (ctx.regs.x[1], false),
            };
            ctx.regs.x[0] = realm::rsi::SUCCESS;
            ctx.regs.x[1] = next;
            ctx.regs.x[2] = u64::from(reject);
        }
        Pending::HostCall(pa) => {
            let g = lock();
            // The structure's page is still the realm's RAM (the lookup
            // is repeated under the lock).
            let ok = {
                let mut g = g;
                g.state().and_then(|st| realm::realm_pa(&st.core, info, ctx.regs.x[1])) == Some(pa)
            };
            if ok && mapped(pa, 256) {
                // SAFETY: `pa` is the realm's RAM granule holding its
                // `rsi_host_call` (checked above), mapped at its address;
                // the realm is not running (this CPU runs it).
                unsafe {
                    core::ptr::copy_nonoverlapping(enter.gprs.as_ptr(), (pa + 8) as *mut u64, 31);
                }
            }
            ctx.regs.x[0] = if ok { realm::rsi::SUCCESS } else { realm::rsi::ERROR_INPUT };
        }
        Pending::Psci => {
            ctx.regs.x[0] = ctx.psci_result.take().unwrap_or(realm::psci::SUCCESS);
        }
        Pending::SysRegRead(rt) => {
            if rt < 31 {
                ctx.regs.x[rt] = enter.gprs[0];
            }
        }
    }
}

/// The ID registers a realm reads, sanitised: no SVE, SME, AMU, MPAM,
/// MTE, GCS, PMU, SPE, trace, TCR2/PIE/POE, MOPS.
fn id_register(crm: u64, op2: u64) -> u64 {
    macro_rules! id {
        ($($crm:literal $op2:literal),* $(,)?) => {
            match (crm, op2) {
                $(($crm, $op2) => mrs!(concat!("S3_0_C0_C", $crm, "_", $op2)),)*
                _ => 0,
            }
        };
    }
    let v = id!(
        1 0, 1 1, 1 2, 1 3, 1 4, 1 5, 1 6, 1 7, 2 0, 2 1, 2 2, 2 3, 2 4, 2 5, 2 6, 2 7,
        3 0, 3 1, 3 2, 3 4, 3 5, 3 6, 4 0, 4 1, 4 2, 5 0, 5 1, 5 4, 5 5, 6 0, 6 1, 6 2,
        7 0, 7 1, 7 2,
    );
    let clear = |v: u64, fields: &[u32]| fields.iter().fold(v, |v, f| v & !(0xf << f));
    match (crm, op2) {
        // ID_AA64PFR0: SVE, MPAM, AMU, RME.
        (4, 0) => clear(v, &[32, 40, 44, 52]),
        // ID_AA64PFR1: MTE, SME, NMI, GCS, MTE_frac, MPAM_frac, THE.
        (4, 1) => clear(v, &[8, 24, 36, 44, 40, 16, 48]),
        // ID_AA64ZFR0, ID_AA64SMFR0.
        (4, 4) | (4, 5) => 0,
        // ID_AA64DFR0: PMUVer, PMSVer, TraceVer, TraceFilt, TraceBuffer,
        // BRBE, MTPMU.
        (5, 0) => clear(v, &[8, 32, 4, 40, 44, 52, 48]),
        // ID_AA64ISAR2: MOPS.
        (6, 2) => clear(v, &[16]),
        // ID_AA64MMFR1: HCX.
        (7, 1) => clear(v, &[40]),
        // ID_AA64MMFR3 (TCRX, SCTLRX, S1PIE, S1POE, ...).
        (7, 3) => 0,
        // The AArch32 PMU and debug ID registers: no PMU.
        (1, 2) => clear(v, &[24]),
        _ => v,
    }
}

/// Handles one trap from the realm: `None` to run it again, `Some` when
/// `exit` is filled for the host.
fn handle(info: &RealmInfo, rec: Pa, ctx: &mut Rec, v: Vector, exit: &mut RecExit) -> Option<()> {
    let esr = ctx.regs.esr;
    match v {
        Vector::Irq => {
            exit.exit_reason = exit_reason::IRQ;
            return Some(());
        }
        Vector::Fiq => {
            exit.exit_reason = exit_reason::FIQ;
            return Some(());
        }
        Vector::SError => {
            exit.exit_reason = exit_reason::SERROR;
            exit.esr = esr;
            return Some(());
        }
        Vector::Sync => {}
    }
    match realm::class(esr) {
        ec::WFX => {
            ctx.regs.pc = ctx.regs.pc.wrapping_add(4);
            exit.exit_reason = exit_reason::SYNC;
            exit.esr = esr & ((0x3f << 26) | 1);
            Some(())
        }
        ec::SMC64 => {
            ctx.regs.pc = ctx.regs.pc.wrapping_add(4);
            smc_call(info, rec, ctx, exit)
        }
        ec::SYS64 => {
            // ID group 3 (op0 3, op1 0, CRn 0, CRm 1..7), reads only.
            let (op0, op2, op1, crn, rt, crm, read) = (
                (esr >> 20) & 3,
                (esr >> 17) & 7,
                (esr >> 14) & 7,
                (esr >> 10) & 0xf,
                ((esr >> 5) & 0x1f) as usize,
                (esr >> 1) & 0xf,
                esr & 1 == 1,
            );
            ctx.regs.pc = ctx.regs.pc.wrapping_add(4);
            if op0 == 3 && op1 == 0 && crn == 0 && (1..=7).contains(&crm) && read {
                if rt < 31 {
                    ctx.regs.x[rt] = id_register(crm, op2);
                }
                None
            } else if op0 == 3 && op1 == 0 && crn == 12 {
                // The GIC registers that trap with IMO (SGI generation,
                // DIR): the host's vgic emulates them.
                exit.exit_reason = exit_reason::SYNC;
                exit.esr = esr;
                if read {
                    ctx.pending = Pending::SysRegRead(rt);
                } else {
                    exit.gprs[0] = if rt < 31 { ctx.regs.x[rt] } else { 0 };
                }
                Some(())
            } else {
                // Anything else trapped (PMU, ...) is RAZ/WI, as TF-RMM.
                if read && rt < 31 {
                    ctx.regs.x[rt] = 0;
                }
                None
            }
        }
        ec::DABT_LOW | ec::IABT_LOW => {
            let ipa = realm::fault_ipa(ctx.regs.hpfar, ctx.regs.far);
            let decision = {
                let mut g = lock();
                g.state().map(|st| realm::abort(&st.core, info, esr, ipa))
            };
            match decision {
                Some(Abort::Host { emulatable }) => {
                    exit.exit_reason = exit_reason::SYNC;
                    exit.esr = realm::host_esr(esr, emulatable);
                    exit.hpfar = ctx.regs.hpfar;
                    if emulatable {
                        exit.far = ctx.regs.far & 0xfff;
                        if esr & realm::ESR_WNR != 0 {
                            let rt = realm::srt(esr);
                            let reg = if rt < 31 { ctx.regs.x[rt] } else { 0 };
                            exit.gprs[0] = realm::mmio_write_value(esr, reg);
                        }
                        ctx.pending = Pending::Mmio(esr);
                    } else {
                        ctx.pending = Pending::Fault(esr);
                    }
                    Some(())
                }
                _ => {
                    let far = ctx.regs.far;
                    inject(ctx, realm::sea_esr(esr, ctx.regs.pstate & 0xc == 0x4), Some(far));
                    None
                }
            }
        }
        _ => {
            // HVC, SVE, SME and anything else: UNDEFINED for the realm.
            if realm::class(esr) == ec::HVC64 {
                ctx.regs.pc = ctx.regs.pc.wrapping_sub(4);
            }
            inject(ctx, realm::UNDEF_ESR, None);
            None
        }
    }
}

/// An SMC from the realm: RSI, PSCI, or unknown.
fn smc_call(info: &RealmInfo, rec: Pa, ctx: &mut Rec, exit: &mut RecExit) -> Option<()> {
    let mut x = [0u64; 11];
    x.copy_from_slice(&ctx.regs.x[..11]);
    let mut g = lock();
    let st = g.state()?;
    match realm::smc(&mut st.core, info, rec, &x) {
        Call::Return { x, n } => {
            ctx.regs.x[..n].copy_from_slice(&x[..n]);
            None
        }
        Call::RealmConfig { pa } => {
            if mapped(pa, GRANULE) {
                // SAFETY: `pa` is the realm's RAM granule it named
                // (checked by `realm_pa` under the lock), mapped at its
                // address; the realm is stopped on this CPU.
                unsafe {
                    core::ptr::write_volatile(pa as *mut u64, u64::from(info.ipa_bits));
                    core::ptr::write_volatile((pa + 8) as *mut u64, u64::from(info.hash_algo));
                    core::ptr::copy_nonoverlapping(info.rpv.as_ptr(), (pa + 0x200) as *mut u8, 64);
                }
                ctx.regs.x[0] = realm::rsi::SUCCESS;
            } else {
                ctx.regs.x[0] = realm::rsi::ERROR_INPUT;
            }
            None
        }
        Call::Measurement { index, extend } => {
            // CAST: at most 4 (checked by `realm::smc`).
            let i = index as usize;
            let m = st.shell.meas.get_mut(&info.rd.0);
            match (m, extend) {
                (Some(m), None) => {
                    let w = m.read(i).unwrap_or([0; 8]);
                    ctx.regs.x[0] = realm::rsi::SUCCESS;
                    ctx.regs.x[1..9].copy_from_slice(&w);
                }
                (Some(m), Some((words, size))) => {
                    let mut bytes = [0u8; 64];
                    for (b, w) in bytes.chunks_exact_mut(8).zip(words.iter()) {
                        b.copy_from_slice(&w.to_le_bytes());
                    }
                    // CAST: at most 64 (checked by `realm::smc`).
                    let ok = m.extend(i, &bytes[..size as usize]);
                    ctx.regs.x[0] = if ok { realm::rsi::SUCCESS } else { realm::rsi::ERROR_INPUT };
                }
                (None, _) => ctx.regs.x[0] = realm::rsi::ERROR_INPUT,
            }
            None
        }
        Call::RipasChange { base, top, ripas } => {
            exit.exit_reason = exit_reason::RIPAS_CHANGE;
            exit.ripas_base = base;
            exit.ripas_top = top;
            // CAST: fieldless `repr(u8)` enum to its discriminant.
            exit.ripas_value = ripas as u8;
            ctx.pending = Pending::Ripas;
            Some(())
        }
        Call::HostCall { pa } => {
            if !mapped(pa, 256) {
                ctx.regs.x[0] = realm::rsi::ERROR_INPUT;
                return None;
            }
            // SAFETY: `pa` is the realm's RAM holding its `rsi_host_call`
            // (checked by `realm_pa` under the lock), mapped at its
            // address; the realm is stopped on this CPU.
            unsafe {
                exit.imm = core::ptr::read_volatile(pa as *const u16);
                core::ptr::copy_nonoverlapping((pa + 8) as *const u64, exit.gprs.as_mut_ptr(), 31);
            }
            exit.exit_reason = exit_reason::HOST_CALL;
            ctx.pending = Pending::HostCall(pa);
            Some(())
        }
        Call::Stage2Fault { ipa, level } => {
            // The call is repeated once the host has mapped the page.
            ctx.regs.pc = ctx.regs.pc.wrapping_sub(4);
            exit.exit_reason = exit_reason::SYNC;
            let esr = realm::translation_fault_esr(level);
            exit.esr = esr;
            exit.hpfar = (ipa >> 8) & !0xf;
            ctx.pending = Pending::Fault(esr);
            Some(())
        }
        Call::Psci { function, args } => {
            exit.exit_reason = exit_reason::PSCI;
            exit.gprs[0] = u64::from(function);
            exit.gprs[1..4].copy_from_slice(&args);
            ctx.pending = Pending::Psci;
            Some(())
        }
    }
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
