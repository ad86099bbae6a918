// SPDX-License-Identifier: GPL-2.0

//! What the confidential-VM host backends share to call their firmware.
//!
//! `kvm_rme` (the Arm RMM over the RMI) and `kvm_cove` (the RISC-V TSM
//! over COVH) both hand host pages to a firmware by physical address, keep
//! track of who owns each page, count calls per firmware function and
//! turn firmware statuses into errnos at the uAPI edge.  Those pieces live
//! here once:
//!
//! - [`addr`]: physical addresses of 4 KiB pages;
//! - [`page`]: page ownership as types ([`page::HostPage`] and
//!   [`page::FwPage`]);
//! - [`calls`]: the [`call_table!`] macro, one enum and one counter type
//!   per firmware interface;
//! - [`count`]: counts the firmware's answers drive, never wrapping;
//! - [`errno`]: the errno values the backends' logic reports;
//! - `testing` (host build, feature `testing`): the models' fault
//!   injection and the property tests' proptest runner;
//! - `kvm`, `published`, `kvm_run` and `staging` (kernel build): handles
//!   for `struct kvm` and `struct kvm_vcpu`, the per-VM state in
//!   `struct kvm_arch`, `struct kvm_run` on the way in and out, and the
//!   page the conduits stage firmware structures in.
//!
//! The kernel cannot link a module-local library crate, so each backend
//! compiles this file as its module `cvm_fw` (`#[path]`); `cargo test`
//! builds it as a crate.  Either way the backends name it
//! `crate::cvm_fw` (the host roots say `extern crate cvm_fw`).

// Crate attributes only in the host build: in the kernel this file is a
// module of the backend, whose root sets them.
#![cfg_attr(not(CONFIG_RUST), no_std)]
#![cfg_attr(not(CONFIG_RUST), deny(unsafe_code))]

#[cfg(test)]
extern crate std;

pub mod addr;
pub mod calls;
pub mod count;
pub mod errno;
pub mod page;
pub mod sbi;

// Kernel build only: what both backends' kernel layers share.
#[cfg(CONFIG_RUST)]
pub(crate) mod kvm;
#[cfg(CONFIG_RUST)]
pub(crate) mod kvm_run;
#[cfg(CONFIG_RUST)]
pub(crate) mod published;
#[cfg(CONFIG_RUST)]
pub(crate) mod staging;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(not(CONFIG_RUST))]
pub mod xorshift;
