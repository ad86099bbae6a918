// SPDX-License-Identifier: GPL-2.0

//! The realm host's kernel layer (module `glue`): the RMI conduit over SMC ([`smc`]) and
//! the entry points of the arm64 KVM hooks ([`uapi`]), which hold the
//! per-VM state and lend the logic kernel pages.

#[path = "kernel/smc.rs"]
pub(crate) mod smc;
#[path = "kernel/uapi.rs"]
pub(crate) mod uapi;
