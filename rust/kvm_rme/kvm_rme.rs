// SPDX-License-Identifier: GPL-2.0

//! Arm CCA realm host support for KVM.
use kernel::prelude::*;

module! {
    type: KvmRme,
    name: "kvm_rme",
    authors: ["confvm developers"],
    description: "Arm CCA realm host support for KVM",
    license: "GPL",
}

struct KvmRme;

impl kernel::Module for KvmRme {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("probe\n");
        Ok(KvmRme)
    }
}
