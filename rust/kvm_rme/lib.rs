// SPDX-License-Identifier: GPL-2.0

//! Host build of the kvm_rme pure logic (`cargo test`).
//!
//! The kernel builds the same files from `kvm_rme.rs`; this root adds the
//! executable RMM model used by the tests and the counters benchmark.

#![no_std]
#![deny(unsafe_code)]

#[cfg(any(test, feature = "model"))]
extern crate std;

pub mod abi;
/// Shared with kvm_cove through rust/mem_encrypt.
#[path = "../mem_encrypt/counters.rs"]
pub mod counters;
pub mod errno;
pub mod exit;
pub mod granule;
pub mod probe;
pub mod realm;
pub mod rmi;
pub mod run;
pub mod vm;

#[cfg(any(test, feature = "model"))]
pub mod model;
