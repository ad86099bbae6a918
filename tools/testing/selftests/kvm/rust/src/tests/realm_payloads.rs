// SPDX-License-Identifier: GPL-2.0

//! The realm payloads: small EL1 programs, assembled into the test binary,
//! that the realm tests populate at PAYLOAD_RAM.  They report results by
//! MMIO writes to the shared alias of PAYLOAD_MMIO (bit 39 of a 40-bit
//! IPA space) and end with PSCI SYSTEM_OFF.

/// Defines `pub(crate) fn $name() -> &'static [u8]`: the machine code a
/// `global_asm!` payload assembled between symbols `$start` and `$end`.
macro_rules! payload_fn {
    ($name:ident, $start:ident, $end:ident, $doc:literal) => {
        #[doc = $doc]
        pub(crate) fn $name() -> &'static [u8] {
            extern "C" {
                static $start: u8;
                static $end: u8;
            }
            // SAFETY: both symbols delimit the payload in one section.
            unsafe { asm_bytes(core::ptr::addr_of!($start), core::ptr::addr_of!($end)) }
        }
    };
}

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

// Shared sweep payload: writes its own address at the start of each
// 4 KiB page of the shared alias of [0xc0000000, +4 MiB), reports how
// many pages it wrote, then powers off.
core::arch::global_asm!(
    ".pushsection .rodata.realm_sweep_payload, \"a\"",
    ".balign 4",
    ".global confvm_realm_sweep_start",
    ".global confvm_realm_sweep_end",
    "confvm_realm_sweep_start:",
    "movz x20, #0x0a00, lsl #16",
    "orr x20, x20, #0x8000000000",
    "movz x1, #0xc000, lsl #16",
    "orr x1, x1, #0x8000000000",
    "movz x2, #0x40, lsl #16",
    "add x2, x1, x2",
    "mov x3, #0",
    "1: str x1, [x1]",
    "add x1, x1, #0x1000",
    "add x3, x3, #1",
    "cmp x1, x2",
    "b.lo 1b",
    "str x3, [x20]",
    "movz x0, #0x0008",
    "movk x0, #0x8400, lsl #16",
    "smc #0",
    "2: b 2b",
    "confvm_realm_sweep_end:",
    ".popsection",
);

payload_fn!(
    sweep_payload,
    confvm_realm_sweep_start,
    confvm_realm_sweep_end,
    "The shared-sweep payload."
);

// Four-vCPU payload for `realm_concurrent_faults`, on 2 MiB of RAM: each
// vCPU finds its number in MPIDR.  vCPUs 0-2 write their number + 1 into
// their own word of each of the 64 pages at RAM + 0x10000 (none mapped
// yet: all four fault the same pages at once).  vCPU 3 first changes the
// 64 pages at RAM + 0x100000 to EMPTY and back to RAM twice, writing
// and reading each page after each change to RAM (its RIPAS changes race
// with the others' faults), then writes its word of the shared range.
// All meet at a counter at RAM + 0x1000, check every word of the shared
// range, and report `errors | vCPU 3's RIPAS problems << 32` by MMIO at
// PAYLOAD_MMIO + 0x200 + 8 * n; after a second counter at RAM + 0x1008,
// vCPU 0 powers the realm off and the others spin (a WFI with no
// interrupt to come would park them for good) until their next entry
// finds the realm off.
core::arch::global_asm!(
    ".pushsection .rodata.realm_race_payload, \"a\"",
    ".arch_extension lse",
    ".balign 4",
    ".global confvm_realm_race_start",
    ".global confvm_realm_race_end",
    "confvm_realm_race_start:",
    "mrs x19, mpidr_el1",
    "and x19, x19, #0xff",
    "adr x21, confvm_realm_race_start",
    "movz x20, #0x0a00, lsl #16",
    "orr x20, x20, #0x8000000000",
    "mov x23, #0",
    "cmp x19, #3",
    "b.eq 20f",
    // The shared range: word n of each page = n + 1.
    "10: add x1, x21, #0x10000",
    "mov x2, #64",
    "add x3, x19, #1",
    "11: str x3, [x1, x19, lsl #3]",
    "add x1, x1, #0x1000",
    "subs x2, x2, #1",
    "b.ne 11b",
    "b 30f",
    // vCPU 3: twice EMPTY then RAM over [RAM + 1 MiB, + 256 KiB).
    "20: mov x22, #2",
    "21: movz x0, #0x0197",
    "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x100000",
    "add x2, x1, #0x40000",
    "mov x3, #0",
    "mov x4, #0",
    "smc #0",
    "orr x23, x23, x0",
    "orr x23, x23, x2, lsl #8",
    "add x5, x21, #0x140000",
    "cmp x1, x5",
    "b.eq 22f",
    "orr x23, x23, #0x10000",
    "22: movz x0, #0x0197",
    "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x100000",
    "add x2, x1, #0x40000",
    "mov x3, #1",
    "mov x4, #0",
    "smc #0",
    "orr x23, x23, x0",
    "orr x23, x23, x2, lsl #8",
    "add x5, x21, #0x140000",
    "cmp x1, x5",
    "b.eq 23f",
    "orr x23, x23, #0x10000",
    "23: add x1, x21, #0x100000",
    "mov x2, #64",
    "24: str x22, [x1, #16]",
    "ldr x3, [x1, #16]",
    "cmp x3, x22",
    "b.eq 25f",
    "orr x23, x23, #0x20000",
    "25: add x1, x1, #0x1000",
    "subs x2, x2, #1",
    "b.ne 24b",
    "subs x22, x22, #1",
    "b.ne 21b",
    "b 10b",
    // Everyone has written: check all four words of each page.
    "30: add x1, x21, #0x1000",
    "mov x2, #1",
    "ldaddal x2, x3, [x1]",
    "31: ldar x3, [x1]",
    "cmp x3, #4",
    "b.ne 31b",
    "mov x24, #0",
    "add x1, x21, #0x10000",
    "mov x2, #64",
    "32: mov x4, #0",
    "33: ldr x5, [x1, x4, lsl #3]",
    "add x6, x4, #1",
    "cmp x5, x6",
    "cinc x24, x24, ne",
    "add x4, x4, #1",
    "cmp x4, #4",
    "b.ne 33b",
    "add x1, x1, #0x1000",
    "subs x2, x2, #1",
    "b.ne 32b",
    "orr x24, x24, x23, lsl #32",
    "add x5, x20, #0x200",
    "str x24, [x5, x19, lsl #3]",
    "add x1, x21, #0x1000",
    "add x1, x1, #8",
    "mov x2, #1",
    "ldaddal x2, x3, [x1]",
    "cbnz x19, 40f",
    "34: ldar x3, [x1]",
    "cmp x3, #4",
    "b.ne 34b",
    "movz x0, #0x0008",
    "movk x0, #0x8400, lsl #16",
    "smc #0",
    "40: b 40b",
    "confvm_realm_race_end:",
    ".popsection",
);

payload_fn!(
    race_payload,
    confvm_realm_race_start,
    confvm_realm_race_end,
    "The payload of `realm_concurrent_faults`."
);

// Malformed RSI and PSCI calls, for `realm_rsi_bad_input`: each status
// (x0) goes by MMIO to PAYLOAD_MMIO + 0x300 + 8 * i, in this order:
//  0 REALM_CONFIG at an unaligned IPA            -> RSI_ERROR_INPUT
//  1 REALM_CONFIG at an unprotected IPA          -> RSI_ERROR_INPUT
//  2 IPA_STATE_SET of an empty range             -> RSI_ERROR_INPUT
//  3 IPA_STATE_SET to RIPAS 5                    -> RSI_ERROR_INPUT
//  4 IPA_STATE_SET from an unaligned base        -> RSI_ERROR_INPUT
//  5 IPA_STATE_GET with base above top           -> RSI_ERROR_INPUT
//  6 MEASUREMENT_EXTEND of the RIM (index 0)     -> RSI_ERROR_INPUT
//  7 MEASUREMENT_EXTEND with 65 bytes            -> RSI_ERROR_INPUT
//  8 MEASUREMENT_READ of index 5                 -> RSI_ERROR_INPUT
//  9 HOST_CALL at an unaligned IPA               -> RSI_ERROR_INPUT
// 10 RSI_VERSION(2.0)                            -> RSI_ERROR_INPUT
// 11 its x1: the lower revision                  -> 1.0
// 12 an unknown SMC                              -> SMCCC NOT_SUPPORTED
// 13 PSCI CPU_ON of MPIDR 7 (no such REC)        -> INVALID_PARAMETERS
// 14 PSCI_FEATURES of an unknown function        -> NOT_SUPPORTED
// 15 MEASUREMENT_EXTEND(1, 8 bytes)              -> RSI_SUCCESS
// 16 then MEASUREMENT_READ(1)                    -> RSI_SUCCESS
// 17 its first word                              -> not 0
// then SYSTEM_OFF.
core::arch::global_asm!(
    ".pushsection .rodata.realm_bad_rsi_payload, \"a\"",
    ".balign 4",
    ".global confvm_realm_bad_rsi_start",
    ".global confvm_realm_bad_rsi_end",
    "confvm_realm_bad_rsi_start:",
    "adr x21, confvm_realm_bad_rsi_start",
    "movz x20, #0x0a00, lsl #16",
    "orr x20, x20, #0x8000000000",
    "add x20, x20, #0x300",
    // 0: REALM_CONFIG(RAM + 0x2008).
    "movz x0, #0x0196", "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x2000", "add x1, x1, #8",
    "smc #0", "str x0, [x20, #0]",
    // 1: REALM_CONFIG(1 << 39).
    "movz x0, #0x0196", "movk x0, #0xc400, lsl #16",
    "mov x1, #0x8000000000",
    "smc #0", "str x0, [x20, #8]",
    // 2: IPA_STATE_SET(RAM + 0x8000, RAM + 0x8000, RAM, 0).
    "movz x0, #0x0197", "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x8000", "mov x2, x1", "mov x3, #1", "mov x4, #0",
    "smc #0", "str x0, [x20, #16]",
    // 3: IPA_STATE_SET(RAM + 0x8000, RAM + 0x9000, 5, 0).
    "movz x0, #0x0197", "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x8000", "add x2, x21, #0x9000", "mov x3, #5", "mov x4, #0",
    "smc #0", "str x0, [x20, #24]",
    // 4: IPA_STATE_SET(RAM + 0x8008, RAM + 0x9000, EMPTY, 0).
    "movz x0, #0x0197", "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x8000", "add x1, x1, #8", "add x2, x21, #0x9000", "mov x3, #0", "mov x4, #0",
    "smc #0", "str x0, [x20, #32]",
    // 5: IPA_STATE_GET(RAM + 0x9000, RAM + 0x8000).
    "movz x0, #0x0198", "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x9000", "add x2, x21, #0x8000",
    "smc #0", "str x0, [x20, #40]",
    // 6: MEASUREMENT_EXTEND(0, 8, ...).
    "movz x0, #0x0193", "movk x0, #0xc400, lsl #16",
    "mov x1, #0", "mov x2, #8", "mov x3, #0x55",
    "smc #0", "str x0, [x20, #48]",
    // 7: MEASUREMENT_EXTEND(1, 65, ...).
    "movz x0, #0x0193", "movk x0, #0xc400, lsl #16",
    "mov x1, #1", "mov x2, #65", "mov x3, #0x55",
    "smc #0", "str x0, [x20, #56]",
    // 8: MEASUREMENT_READ(5).
    "movz x0, #0x0192", "movk x0, #0xc400, lsl #16",
    "mov x1, #5",
    "smc #0", "str x0, [x20, #64]",
    // 9: HOST_CALL(RAM + 0x2010).
    "movz x0, #0x0199", "movk x0, #0xc400, lsl #16",
    "add x1, x21, #0x2000", "add x1, x1, #0x10",
    "smc #0", "str x0, [x20, #72]",
    // 10, 11: RSI_VERSION(2.0).
    "movz x0, #0x0190", "movk x0, #0xc400, lsl #16",
    "movz x1, #2, lsl #16",
    "smc #0", "str x0, [x20, #80]", "str x1, [x20, #88]",
    // 12: an unknown SMC64 in the standard range.
    "movz x0, #0x0fff", "movk x0, #0xc400, lsl #16",
    "smc #0", "str x0, [x20, #96]",
    // 13: CPU_ON(7, RAM, 0).
    "movz x0, #0x0003", "movk x0, #0xc400, lsl #16",
    "mov x1, #7", "mov x2, x21", "mov x3, #0",
    "smc #0", "str x0, [x20, #104]",
    // 14: PSCI_FEATURES(0x84000fff).
    "movz x0, #0x000a", "movk x0, #0x8400, lsl #16",
    "movz x1, #0x0fff", "movk x1, #0x8400, lsl #16",
    "smc #0", "str x0, [x20, #112]",
    // 15: MEASUREMENT_EXTEND(1, 8, 0x55).
    "movz x0, #0x0193", "movk x0, #0xc400, lsl #16",
    "mov x1, #1", "mov x2, #8", "mov x3, #0x55",
    "smc #0", "str x0, [x20, #120]",
    // 16, 17: MEASUREMENT_READ(1).
    "movz x0, #0x0192", "movk x0, #0xc400, lsl #16",
    "mov x1, #1",
    "smc #0", "str x0, [x20, #128]", "str x1, [x20, #136]",
    // SYSTEM_OFF.
    "movz x0, #0x0008", "movk x0, #0x8400, lsl #16",
    "smc #0",
    "1: b 1b",
    "confvm_realm_bad_rsi_end:",
    ".popsection",
);

payload_fn!(
    bad_rsi_payload,
    confvm_realm_bad_rsi_start,
    confvm_realm_bad_rsi_end,
    "The payload of `realm_rsi_bad_input`."
);
