// SPDX-License-Identifier: GPL-2.0

//! Host build of the realm host's firmware ABI and pure logic
//! (`cargo test`), with the executable RMM model.
//!
//! The kernel builds the same `abi` and `logic` layers from `kvm_rme.rs`,
//! plus `kernel` in place of `model`.

#![no_std]
#![deny(unsafe_code)]

#[cfg(any(test, feature = "model"))]
extern crate std;

#[cfg(any(test, feature = "model", feature = "rmm-core"))]
extern crate alloc;

/// Addresses, page ownership, call tables and errnos shared with
/// `kvm_cove` (`rust/cvm_fw`).  The kernel compiles it as the module of
/// the same name, so both builds say `crate::cvm_fw`.
pub extern crate cvm_fw;

pub mod abi;
pub mod logic;

#[cfg(any(test, feature = "model", feature = "rmm-core"))]
pub mod model;
