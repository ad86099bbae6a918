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

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use kernel::prelude::*;

#[path = "../cvm_fw/cvm_fw.rs"]
pub mod cvm_fw;

pub mod abi;
/// The kernel layer, in `kernel/` (a module named `kernel` would shadow
/// the kernel crate).
#[path = "kernel.rs"]
mod glue;
pub mod logic;

use abi::{EXT_COVH, EXT_COVI, EXT_NACL};

/// Set once at boot when a ready TSM answered.
static TSM_READY: AtomicBool = AtomicBool::new(false);

/// What the boot probe found, as [`probe_kind`] numbers it (KUnit checks
/// a fresh `TSM_GET_INFO` against it).
static PROBE_KIND: AtomicU8 = AtomicU8::new(0);

/// Set once at boot when COVI answered and the TSM took guest interrupt
/// files: TVMs then get an IMSIC per vCPU.
static COVI_READY: AtomicBool = AtomicBool::new(false);

/// The host's guest interrupt files TVM vCPUs bind (all TVMs share them).
pub(crate) static FILES: logic::aia::HostFiles = logic::aia::HostFiles::new();

module! {
    type: KvmCove,
    name: "kvm_cove",
    authors: ["confvm developers"],
    description: "RISC-V CoVE TVM host support for KVM",
    license: "GPL",
}

struct KvmCove;

/// 0 absent, 1 another ABI, 2 short info, 3 not ready, 4 ready.
fn probe_kind(p: &logic::tsm::TsmProbe) -> u8 {
    use logic::tsm::TsmProbe::*;
    match p {
        Absent { .. } => 0,
        OtherAbi(_) => 1,
        ShortInfo(_) => 2,
        NotReady(_) => 3,
        Ready(_) => 4,
    }
}

/// Probes COVH and NACL, asks a present TSM about itself, and logs what
/// it found.  Returns whether TVMs can be created.
fn probe() -> Result<bool> {
    use logic::tsm::TsmProbe;
    let covh = glue::sbi::probe_extension(EXT_COVH);
    let nacl = glue::sbi::probe_extension(EXT_NACL);
    let mut t = glue::sbi_tsm::SbiTsm::new()?;
    let p = logic::tsm::probe(covh, nacl, &mut t);
    PROBE_KIND.store(probe_kind(&p), Ordering::Release);
    match p {
        TsmProbe::Absent { covh, nacl } => {
            pr_info!("no TSM (COVH {}, NACL {}): TVMs disabled\n", covh, nacl);
        }
        TsmProbe::OtherAbi(e) => {
            pr_warn!(
                "COVH present but TSM_GET_INFO refused our 32-byte tsm_info ({:?}): a TSM of another ABI version, TVMs disabled\n",
                e
            );
        }
        TsmProbe::ShortInfo(n) => {
            pr_warn!("TSM_GET_INFO wrote {} of 32 bytes: another ABI version, TVMs disabled\n", n);
        }
        TsmProbe::NotReady(info) => {
            pr_info!(
                "TSM version {:#x} present but not ready (state {}, {} vCPUs): TVMs disabled\n",
                info.version,
                info.tstate,
                info.tvm_max_vcpus
            );
        }
        TsmProbe::Ready(info) => {
            pr_info!(
                "TSM version {:#x} ready: TVMs enabled, up to {} vCPUs each\n",
                info.version,
                info.tvm_max_vcpus
            );
        }
    }
    Ok(p.ready())
}

/// With COVI, converts the guest interrupt files the TSM left each CPU
/// (once, with one global fence) for TVM vCPUs to bind.
fn probe_covi() -> Result<bool> {
    if !glue::sbi::probe_extension(EXT_COVI) {
        pr_info!("no COVI: TVMs run without interrupt files (timer interrupts only)\n");
        return Ok(false);
    }
    let mask = glue::imsic::host_guest_files();
    if mask == 0 {
        pr_info!("COVI present, but no guest interrupt files (not in TVM-only mode): TVMs without interrupt files\n");
        return Ok(false);
    }
    let mut t = glue::sbi_tsm::SbiTsm::new()?;
    let n = match FILES.convert(&mut t, mask, &glue::imsic::file_pa) {
        Ok(n) => n,
        Err(e) => {
            pr_warn!(
                "COVI: global fence after TSM_CONVERT_IMSIC failed ({:?}): TVMs without interrupt files\n",
                e
            );
            return Ok(false);
        }
    };
    pr_info!(
        "COVI: {} guest interrupt files converted for TVM vCPUs (HGEIE mask {:#x} per CPU)\n",
        n,
        mask
    );
    Ok(n != 0)
}

impl kernel::Module for KvmCove {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let ready = probe()?;
        TSM_READY.store(ready, Ordering::Release);
        if ready {
            COVI_READY.store(probe_covi()?, Ordering::Release);
        }
        Ok(KvmCove)
    }
}

/// Whether TVMs get interrupt files (COVI answered at boot and the TSM
/// took guest files).
pub(crate) fn covi_ready() -> bool {
    COVI_READY.load(Ordering::Acquire)
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

    /// The COVH conduit agrees with the boot probe: without COVH,
    /// TSM_GET_INFO is SBI_ERR_NOT_SUPPORTED; with it, the call fails
    /// exactly when the boot probe found a TSM of another ABI version,
    /// and otherwise reports a valid state.
    #[test]
    fn covh_get_info_through_ecall() -> kernel::error::Result {
        let kind = crate::PROBE_KIND.load(core::sync::atomic::Ordering::Acquire);
        let mut t = crate::glue::sbi_tsm::SbiTsm::new()?;
        match (t.get_info(), sbi::probe_extension(EXT_COVH)) {
            (Err(e), false) => assert_eq!(e, SbiError::NotSupported),
            (Err(_), true) => assert_eq!(kind, 1),
            (Ok((info, _)), true) => {
                assert!(info.tstate <= 2);
                assert!(kind >= 2);
            }
            (Ok(_), false) => {
                let answered_without_covh = true;
                assert!(!answered_without_covh);
            }
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
    /// COVH and NACL are there and the TSM says it is ready; a plain VM
    /// exactly when KVM is not in TVM-only mode.
    #[test]
    fn vm_types() -> kernel::error::Result {
        for tvm_only in [false, true] {
            let plain = if tvm_only { -errno::EINVAL } else { 0 };
            assert_eq!(kvm_cove_check_vm_type(0, tvm_only), plain);
            assert_eq!(kvm_cove_check_vm_type(1 << 20, tvm_only), -errno::EINVAL);
            let firmware_ready = sbi::probe_extension(EXT_COVH)
                && sbi::probe_extension(EXT_NACL)
                && check_tsm(&mut SbiTsm::new()?).is_ok();
            let want = if firmware_ready { 0 } else { -errno::EPERM };
            assert_eq!(kvm_cove_check_vm_type(1 << 9, tvm_only), want);
        }
        Ok(())
    }
}

#[cfg(CONFIG_KVM_COVE_KUNIT_TEST)]
#[kunit_tests(kvm_cove_covi)]
mod covi_tests {
    use crate::abi::EXT_COVI;
    use crate::glue::{imsic, sbi};

    /// At boot, with COVI, every CPU the IMSIC serves had each guest file
    /// the TSM showed converted, none bound yet (no TVM ran); the files'
    /// addresses follow the CPU's supervisor file page by page.
    #[test]
    fn files_converted_at_boot() {
        if !crate::covi_ready() {
            kernel::kunit::mark_skipped(c"no COVI guest interrupt files (no TSM with COVI)");
            return;
        }
        assert!(sbi::probe_extension(EXT_COVI));
        let mask = imsic::host_guest_files();
        assert!(mask != 0 && mask & 1 == 0);
        let mut cpus = 0;
        for cpu in 0..crate::logic::aia::MAX_CPUS {
            let Some(first) = imsic::file_pa(cpu, 1) else { continue };
            cpus += 1;
            assert_eq!(imsic::file_pa(cpu, 2).map(|p| p.0), Some(first.0 + 4096));
            let (converted, used) = crate::FILES.count(cpu);
            // CAST: at most 63 bits.
            assert_eq!(converted, mask.count_ones());
            assert_eq!(used, 0);
        }
        assert!(cpus >= 1);
    }
}
