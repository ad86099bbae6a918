// SPDX-License-Identifier: GPL-2.0

//! Host build of the CoVE guest's COVG interface and logic (`cargo
//! test`).  The kernel builds the same `covg` and `logic` modules from
//! `mem_encrypt.rs`, plus the `ecall` conduit and the C entry points.

#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

/// The errnos shared with the host backends (`rust/cvm_fw`).
pub extern crate cvm_fw;

pub mod covg;
pub mod logic;
