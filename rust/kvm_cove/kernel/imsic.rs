// SPDX-License-Identifier: GPL-2.0

//! The host's guest interrupt files, from the C helpers of
//! `arch/riscv/kvm/cove_glue.c`: which files the TSM left each CPU, and
//! where they are.

use kernel::bindings;

use crate::abi::Pa;

/// The guest files of this CPU as HGEIE bits (every CPU of the host VM
/// gets the same from the TSM).
pub(crate) fn host_guest_files() -> u64 {
    // SAFETY: takes no arguments and touches HGEIE only in TVM-only mode,
    // where the TSM emulates it for its host (0 otherwise).
    let m = unsafe { bindings::kvm_cove_host_guest_files() };
    // CAST: `unsigned long` is 64 bits on riscv64.
    m as u64
}

/// The address of guest file `k` of `cpu`, if the IMSIC serves it.
pub(crate) fn file_pa(cpu: usize, k: u32) -> Option<Pa> {
    let cpu = u32::try_from(cpu).ok()?;
    // SAFETY: reads the IMSIC driver's per-CPU configuration, set up at
    // boot before any module initcall; checks the CPU number itself.
    let pa = unsafe { bindings::kvm_cove_imsic_file_pa(cpu, k) };
    (pa != 0).then_some(Pa(pa))
}
