// SPDX-License-Identifier: GPL-2.0

//! The TVM host's pure logic, shared by the kernel and the host build.
//!
//! Nothing here touches hardware or kernel memory: the TSM is the
//! [`tsm::Tsm`] trait and host pages come through [`pool::PageAlloc`],
//! which the kernel layer (`kernel/`) implements with `ecall`s and the
//! page allocator, and `cargo test` with the executable TSM model
//! (`model/`).

#![deny(unsafe_code)]

pub mod aia;
pub mod exit;
pub mod pool;
pub mod run;
pub mod tsm;
pub mod tvm;
