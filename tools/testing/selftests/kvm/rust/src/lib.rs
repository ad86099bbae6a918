// SPDX-License-Identifier: GPL-2.0

//! Minimal KVM userspace API and a kselftest-style TAP harness for the
//! confidential-VM host selftests.
//!
//! Only what the tests use is wrapped.  Ioctl numbers follow the generic
//! `_IOC` encoding that both arm64 and riscv64 use.

pub mod kvm;
pub mod tap;
