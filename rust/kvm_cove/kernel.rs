// SPDX-License-Identifier: GPL-2.0

//! The TVM host's kernel layer (module `glue`): the SBI conduit ([`sbi`]), the TSM over it
//! ([`sbi_tsm`]) and the entry points of the riscv KVM hooks ([`uapi`]),
//! which hold the per-VM state and lend the logic kernel pages.

#[path = "kernel/sbi.rs"]
pub(crate) mod sbi;
#[path = "kernel/sbi_tsm.rs"]
pub(crate) mod sbi_tsm;
#[path = "kernel/uapi.rs"]
pub(crate) mod uapi;
