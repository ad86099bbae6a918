// SPDX-License-Identifier: GPL-2.0

//! The TVM host's kernel layer (compiled as the module `glue`): the SBI
//! conduit ([`sbi`]), the TSM over it ([`sbi_tsm`]), handles for the KVM
//! structures the hooks pass ([`kvm`]), host pages ([`pages`]), this
//! CPU's NACL area ([`nacl`]), the per-VM state ([`vm`]), the `KVM_RUN`
//! loop ([`run`]) and the entry points of the riscv KVM hooks (`hooks`).

#[path = "kernel/hooks.rs"]
pub(crate) mod hooks;
#[path = "kernel/imsic.rs"]
pub(crate) mod imsic;
#[path = "kernel/kvm.rs"]
pub(crate) mod kvm;
#[path = "kernel/nacl.rs"]
pub(crate) mod nacl;
#[path = "kernel/pages.rs"]
pub(crate) mod pages;
#[path = "kernel/run.rs"]
pub(crate) mod run;
#[path = "kernel/sbi.rs"]
pub(crate) mod sbi;
#[path = "kernel/sbi_tsm.rs"]
pub(crate) mod sbi_tsm;
#[path = "kernel/vm.rs"]
pub(crate) mod vm;
