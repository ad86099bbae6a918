// SPDX-License-Identifier: GPL-2.0

//! RISC-V CoVE TVM host support for KVM: the host side of the COVH/COVI
//! SBI extensions.

use kernel::prelude::*;

mod sbi;

/// `COVH`: CoVE host extension ID.
const EXT_COVH: u64 = 0x434F_5648;
/// `NACL`: nested acceleration, required by CoVE.
const EXT_NACL: u64 = 0x4E41_434C;

module! {
    type: KvmCove,
    name: "kvm_cove",
    authors: ["confvm developers"],
    description: "RISC-V CoVE TVM host support for KVM",
    license: "GPL",
}

struct KvmCove {
    tsm: bool,
}

impl kernel::Module for KvmCove {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let covh = sbi::probe_extension(EXT_COVH);
        let nacl = sbi::probe_extension(EXT_NACL);
        let tsm = covh && nacl;
        if tsm {
            pr_info!("TSM found (COVH and NACL): TVMs enabled\n");
        } else {
            pr_info!("no TSM (COVH {}, NACL {}): TVMs disabled\n", covh, nacl);
        }
        Ok(KvmCove { tsm })
    }
}

impl KvmCove {
    /// Whether TVMs may be created.
    #[expect(dead_code, reason = "queried by the KVM hooks of the TVM uAPI")]
    fn tvms_enabled(&self) -> bool {
        self.tsm
    }
}

#[cfg(CONFIG_KVM_COVE_KUNIT_TEST)]
#[kunit_tests(kvm_cove_sbi)]
mod sbi_tests {
    use crate::sbi;

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
}
