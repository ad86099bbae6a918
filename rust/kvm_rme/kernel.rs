// SPDX-License-Identifier: GPL-2.0

//! The realm host's kernel layer (compiled as the module `glue`): the RMI
//! conduit over SMC ([`smc`]), handles for the KVM structures the hooks
//! pass ([`kvm`]), the pages lent to the RMM ([`pages`]), the per-VM state
//! ([`vm`]), the `KVM_RUN` loop ([`run`]), host-wide totals in debugfs
//! ([`totals`]) and the entry points of the arm64 KVM hooks (`hooks`).

#[path = "kernel/hooks.rs"]
mod hooks;
#[path = "kernel/kvm.rs"]
pub(crate) mod kvm;
#[path = "kernel/pages.rs"]
pub(crate) mod pages;
#[path = "kernel/run.rs"]
pub(crate) mod run;
#[path = "kernel/smc.rs"]
pub(crate) mod smc;
#[path = "kernel/totals.rs"]
pub(crate) mod totals;
#[path = "kernel/vm.rs"]
pub(crate) mod vm;
