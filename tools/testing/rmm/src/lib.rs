// SPDX-License-Identifier: GPL-2.0

//! The confvm test RMM: firmware for Realm EL2 that TF-A 2.12.1 loads on
//! QEMU (`RMM=<image>`), so that the realm host can be tested without
//! TF-RMM.  It is test firmware and not a security boundary.
//!
//! This library is the RMM's pure part, host-tested with `cargo test`:
//! the boot interface ([`boot`]), the boot manifest ([`manifest`]),
//! RMI dispatch into the RMM core that the host's tests also run
//! ([`rmi`], `kvm_rme::model`), what granule and RTT changes do to the
//! machine ([`backing`]), and the realm's stage 2 ([`stage2`]).  The
//! firmware shell (`main.rs`: entry, stacks, MMU, console, SMCs to EL3)
//! is built for `aarch64-unknown-none-softfloat` by `scripts/firmware.sh`.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod backing;
pub mod boot;
pub mod manifest;
pub mod measure;
pub mod realm;
pub mod rmi;
pub mod stage2;
