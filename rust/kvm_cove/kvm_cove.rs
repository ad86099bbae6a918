// SPDX-License-Identifier: GPL-2.0

//! RISC-V CoVE TVM host support for KVM: the host side of the COVH/COVI
//! SBI extensions.
//!
//! Three layers, one directory each:
//!
//! - `abi/`: the CoVE SBI interface, with each function numbering private
//!   behind the numbering-neutral [`abi`] module;
//! - `logic/`: pure logic (the page pool, TVMs, exit decoding, the vCPU
//!   run step), shared with the host build, where `cargo test` runs it
//!   against an executable TSM model;
//! - `kernel/`: the SBI conduit, the TSM over it and the entry points of
//!   the riscv KVM hooks (`patches/`), with the per-VM state and pages.
//!
//! `abi` and `logic` are public so that what only the host build uses
//! is not dead code here; `kernel` is private and fully checked.

use core::sync::atomic::{AtomicBool, Ordering};

use kernel::prelude::*;

#[path = "../cvm_fw/cvm_fw.rs"]
pub mod cvm_fw;

pub mod abi;
/// The kernel layer, in `kernel/` (a module named `kernel` would shadow
/// the kernel crate).
#[path = "kernel.rs"]
mod glue;
pub mod logic;

use abi::{EXT_COVH, EXT_NACL};

/// `KVM_VM_TYPE_RISCV_COVE` (arch/riscv/include/uapi/asm/kvm.h, patch 0003).

/// Set once at boot when a ready TSM answered.
static TSM_READY: AtomicBool = AtomicBool::new(false);

module! {
    type: KvmCove,
    name: "kvm_cove",
    authors: ["confvm developers"],
    description: "RISC-V CoVE TVM host support for KVM",
    license: "GPL",
}

struct KvmCove;

/// Probes COVH and NACL and asks a present TSM whether it is ready.
fn probe() -> Result<bool> {
    let covh = glue::sbi::probe_extension(EXT_COVH);
    let nacl = glue::sbi::probe_extension(EXT_NACL);
    if !(covh && nacl) {
        pr_info!("no TSM (COVH {}, NACL {}): TVMs disabled\n", covh, nacl);
        return Ok(false);
    }
    let mut t = glue::sbi_tsm::SbiTsm::new()?;
    match logic::tvm::check_tsm(&mut t) {
        Ok(info) => {
            pr_info!(
                "TSM version {:#x} ready: TVMs enabled, up to {} vCPUs each\n",
                info.version,
                info.tvm_max_vcpus
            );
            Ok(true)
        }
        Err(_) => {
            pr_info!("TSM present but not ready: TVMs disabled\n");
            Ok(false)
        }
    }
}

impl kernel::Module for KvmCove {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        TSM_READY.store(probe()?, Ordering::Release);
        Ok(KvmCove)
    }
}

/// Whether a ready TSM answered at boot: TVMs can be created.
pub(crate) fn tsm_ready() -> bool {
    TSM_READY.load(Ordering::Acquire)
}

#[cfg(CONFIG_KVM_COVE_KUNIT_TEST)]
#[kunit_tests(kvm_cove_sbi)]
mod sbi_tests {
    use crate::abi::{SbiError, EXT_COVH};
    use crate::glue::sbi;
    use crate::logic::tsm::Tsm;

    /// The ecall path works: the base extension reports itself.
    #[test]
    fn base_extension_probes() {
        assert!(sbi::probe_extension(sbi::EXT_BASE));
    }

    /// An extension ID nobody implements is reported absent.
    #[test]
    fn unknown_extension_absent() {
        assert!(!sbi::probe_extension(0x0BAD_CAFE));
    }

    /// The COVH conduit: without a TSM, TSM_GET_INFO is refused with
    /// SBI_ERR_NOT_SUPPORTED; with one, it reports a valid state.
    #[test]
    fn covh_get_info_through_ecall() -> kernel::error::Result {
        let mut t = crate::glue::sbi_tsm::SbiTsm::new()?;
        match t.get_info() {
            Err(e) => {
                assert!(!sbi::probe_extension(EXT_COVH));
                assert_eq!(e, SbiError::NotSupported);
            }
            Ok((info, _)) => assert!(info.tstate <= 2),
        }
        assert_eq!(t.counts.get(crate::abi::Covh::TsmGetInfo), 1);
        Ok(())
    }
}

#[cfg(CONFIG_KVM_COVE_KUNIT_TEST)]
#[kunit_tests(kvm_cove_abi)]
mod abi_tests {
    use crate::abi::Covh;
    use crate::abi::{nacl, SbiError};
    use crate::logic::tvm::pgt_pages_for;

    #[test]
    fn sbi_errors() {
        assert_eq!(SbiError::decode(0), Ok(()));
        assert_eq!(SbiError::decode(-2), Err(SbiError::NotSupported));
        assert_eq!(SbiError::decode(-42), Err(SbiError::Unknown(-42)));
        assert_eq!(SbiError::InvalidParam.code(), -3);
    }

    #[test]
    fn function_ids() {
        assert_eq!(Covh::TvmVcpuRun.fid(), 14);
        assert_eq!(Covh::from_fid(20), Some(Covh::TvmRemovePages));
        assert_eq!(Covh::from_fid(21), None);
    }

    #[test]
    fn nacl_layout() {
        assert_eq!(nacl::csr_index(nacl::CSR_HTVAL), 0x143);
        assert_eq!(nacl::SIZE, 0x3000);
        assert_eq!(pgt_pages_for(0x8000_0000, 4 << 20), 2 + 1 + 1);
    }
}

#[cfg(CONFIG_KVM_COVE_KUNIT_TEST)]
#[kunit_tests(kvm_cove_vm_type)]
mod vm_type_tests {
    use crate::glue::hooks::kvm_cove_check_vm_type;
    use crate::abi::{EXT_COVH, EXT_NACL};
    use crate::cvm_fw::errno;
    use crate::glue::sbi;
    use crate::glue::sbi_tsm::SbiTsm;
    use crate::logic::tvm::check_tsm;

    /// The VM-type check agrees with the firmware, asked afresh here (not
    /// through the flag the check reads): a TVM is accepted exactly when
    /// COVH and NACL are there and the TSM says it is ready.
    #[test]
    fn vm_types() -> kernel::error::Result {
        assert_eq!(kvm_cove_check_vm_type(0), 0);
        assert_eq!(kvm_cove_check_vm_type(1 << 20), -errno::EINVAL);
        let firmware_ready = sbi::probe_extension(EXT_COVH)
            && sbi::probe_extension(EXT_NACL)
            && check_tsm(&mut SbiTsm::new()?).is_ok();
        let want = if firmware_ready { 0 } else { -errno::EPERM };
        assert_eq!(kvm_cove_check_vm_type(1 << 9), want);
        Ok(())
    }
}
