// SPDX-License-Identifier: GPL-2.0

//! Host build of the kvm_cove pure logic (`cargo test`); the kernel builds
//! the same files from `kvm_cove.rs`.

#![no_std]
#![deny(unsafe_code)]

#[cfg(any(test, feature = "model"))]
extern crate std;

pub mod abi;
/// Shared with kvm_rme through rust/mem_encrypt.
#[path = "../mem_encrypt/counters.rs"]
pub mod counters;
pub mod errno;
pub mod exit;
pub mod pool;
pub mod run;
pub mod tsm;
pub mod tvm;

#[cfg(any(test, feature = "model"))]
pub mod model;
