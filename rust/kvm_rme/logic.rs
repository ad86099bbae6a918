// SPDX-License-Identifier: GPL-2.0

//! The realm host's pure logic, shared by the kernel and the host build.
//!
//! Nothing here touches hardware or kernel memory: the RMI is the
//! [`rmi::Rmi`] trait and host pages come through [`granule::GranuleAlloc`]
//! and [`run::GuestMemory`], which the kernel layer (`kernel/`) implements
//! with SMCs and the page allocator, and `cargo test` with the executable
//! RMM model (`model/`).

#![deny(unsafe_code)]

pub mod exit;
pub mod granule;
pub mod probe;
pub mod realm;
pub mod rmi;
pub mod run;
pub mod vm;
