// SPDX-License-Identifier: GPL-2.0

//! The confvm test RMM: firmware for Realm EL2 that TF-A 2.12.1 loads on
//! QEMU (`RMM=<image>`), so that the realm host can be tested without
//! TF-RMM.  It is test firmware and not a security boundary.
//!
//! This library is the RMM's pure part, host-tested with `cargo test`:
//! the boot interface ([`boot`]), the boot manifest ([`manifest`]),
//! granule ownership ([`granule`]) and RMI dispatch ([`rmi`]).  The
//! firmware shell (`main.rs`: entry, stacks, MMU, console, SMCs to EL3)
//! is built for `aarch64-unknown-none-softfloat` by `scripts/firmware.sh`.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod boot;
pub mod granule;
pub mod manifest;
pub mod rmi;
