// SPDX-License-Identifier: GPL-2.0

//! KVM selftests for the confidential-VM host backends: the KVM plumbing
//! (on rust-vmm's kvm-ioctls and kvm-bindings), the realm and CoVE uAPI
//! they lack, a kselftest-style TAP harness, and the tests, one module per
//! area under `tests/`.

#[cfg(target_arch = "aarch64")]
pub mod bench;
pub mod kvm;
pub mod process;
pub mod tap;
pub mod tests;
pub mod upstream;

#[cfg(target_arch = "riscv64")]
pub mod cove;
#[cfg(target_arch = "aarch64")]
pub mod rme;
