// SPDX-License-Identifier: GPL-2.0

//! KVM selftests for the confidential-VM host backends (kselftest TAP).
//!
//! Run on an arm64 or riscv64 host kernel; each architecture has its own
//! list, run in the order below.  Tests that need a facility the running
//! system lacks say SKIP with the reason instead of passing.  The tests
//! live in the library, one module per area (`src/tests/`).

use confvm_kvm_selftests::tap::{self, Test};
use confvm_kvm_selftests::tests::plain;

/// A [`Test`] named after its function.
macro_rules! test {
    ($module:ident :: $name:ident) => {
        Test {
            name: stringify!($name),
            run: $module::$name,
        }
    };
}

#[cfg(target_arch = "aarch64")]
const TESTS: &[Test] = {
    use confvm_kvm_selftests::tests::{fuzz, realm_linux, realm_run, realm_uapi, trace, vmm};
    &[
        test!(realm_uapi::realm_lifecycle),
        test!(realm_run::realm_run),
        test!(realm_run::realm_secondary_vcpu),
        test!(realm_uapi::realm_psci_to_vmm),
        test!(realm_uapi::realm_host_call_to_vmm),
        test!(realm_uapi::psci_complete_needs_a_realm),
        test!(realm_run::realm_timer_irq),
        test!(realm_run::realm_shared_blocks),
        test!(realm_run::realm_concurrent_faults),
        test!(realm_run::realm_rmi_fault_injection),
        test!(realm_run::realm_rsi_bad_input),
        test!(realm_linux::realm_linux_guest),
        test!(realm_linux::realm_vmm_killed),
        test!(trace::rmi_error_trace),
        test!(realm_uapi::realm_type_checks),
        test!(realm_uapi::realm_recs),
        test!(realm_uapi::realm_stats),
        test!(realm_uapi::realm_qemu_sequence),
        test!(realm_uapi::realm_kvmtool_sequence),
        test!(realm_uapi::realm_its_refused),
        test!(vmm::realm_vmm_guest),
        test!(fuzz::uapi_fuzz),
        test!(plain::kvm_present),
        test!(plain::ipa_size_cap),
        test!(plain::plain_vm_mmio),
        test!(realm_uapi::rme_cap),
        test!(realm_uapi::realm_type_refused_without_cap),
    ]
};

#[cfg(target_arch = "riscv64")]
const TESTS: &[Test] = {
    use confvm_kvm_selftests::tests::{cove, cove_fuzz, tvm};
    &[
        test!(plain::kvm_present),
        test!(plain::plain_vm_mmio),
        test!(cove::cove_vm_type_refused_without_tsm),
        test!(cove::cove_measure_region_needs_a_tvm),
        test!(cove::plain_vm_refused_in_tvm_only_mode),
        test!(tvm::tvm_mmio_sbi_zero_pages),
        test!(tvm::tvm_share_unshare),
        test!(tvm::tvm_stray_access_shuts_down),
        test!(tvm::tvm_smp_hart_start),
        test!(tvm::tvm_smp_fence_kicks_running_vcpu),
        test!(tvm::tvm_covi_interrupt),
        test!(tvm::tvm_covi_files_exhausted),
        test!(tvm::tvm_covi_vcpus_share_a_cpus_files),
        test!(tvm::tvm_linux_guest),
        test!(tvm::tvm_linux_guest_smp),
        test!(cove_fuzz::cove_uapi_fuzz),
        test!(plain::unknown_vm_type_refused),
    ]
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    #[cfg(target_arch = "aarch64")]
    if args.get(1).map(String::as_str) == Some("--bench") {
        // scripts/bench.sh: `--bench realm-boot [RUNS]`.
        let runs = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(3);
        let r = match args.get(2).map(String::as_str) {
            Some("realm-boot") => confvm_kvm_selftests::bench::realm_boot(runs),
            _ => Err("usage: kvm_selftests --bench realm-boot [RUNS]".into()),
        };
        if let Err(e) = &r {
            println!("# bench| failed: {e}");
        }
        std::process::exit(i32::from(r.is_err()));
    }
    if args.get(1).map(String::as_str) == Some("--upstream") {
        // /init: `--upstream /upstream/list`, the kernel's own KVM selftests.
        let list = args.get(2).map_or("/upstream/list", String::as_str);
        std::process::exit(upstream(list));
    }
    std::process::exit(tap::run("kvm_confvm", TESTS));
}

/// The upstream KVM selftests.  On arm64 they run in the boot where
/// realms are enabled (normal KVM must be unharmed while the realm
/// backend is live), so the CI boot on TRP, which checks the disabled
/// path, does not repeat them; `/etc/confvm-upstream-always` (the stock
/// kernel's comparison boot) runs them regardless.
fn upstream(list: &str) -> i32 {
    #[cfg(target_arch = "riscv64")]
    if confvm_kvm_selftests::cove::tvm_only() {
        println!("# kvm_upstream: not run in this boot: {}", confvm_kvm_selftests::cove::TVM_ONLY_SKIP);
        return 0;
    }
    #[cfg(target_arch = "aarch64")]
    if !std::path::Path::new("/etc/confvm-upstream-always").exists() {
        use confvm_kvm_selftests::rme::KVM_CAP_ARM_RME;
        let enabled = matches!(
            confvm_kvm_selftests::kvm::Kvm::open(),
            Ok(Some(k)) if k.check_extension(KVM_CAP_ARM_RME).unwrap_or(0) > 0
        );
        if !enabled {
            println!("# kvm_upstream: not run in this boot: realms are disabled (the boot with realms enabled runs them)");
            return 0;
        }
    }
    confvm_kvm_selftests::upstream::run(list)
}
