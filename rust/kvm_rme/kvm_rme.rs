// SPDX-License-Identifier: GPL-2.0

//! Arm CCA realm host support for KVM: the host side of the Realm
//! Management Interface (RMI 1.0).
//!
//! Three layers, one directory each:
//!
//! - `abi/`: the RMI as each specification version defines it, private
//!   behind the version-neutral [`abi`] module;
//! - `logic/`: pure logic (realms, RECs, the run loop's decisions, the
//!   uAPI's checks), shared with the host build, where `cargo test` runs
//!   it against an executable RMM model;
//! - `kernel/`: the SMC conduit and the entry points of the arm64 KVM
//!   hooks (`patches/`), with the per-VM state and kernel pages.
//!
//! `abi` and `logic` are public so that what only the host build uses
//! is not dead code here; `kernel` is private and fully checked.

use kernel::prelude::*;

#[path = "../cvm_fw/cvm_fw.rs"]
pub mod cvm_fw;

pub mod abi;
/// The kernel layer, in `kernel/` (a module named `kernel` would shadow
/// the kernel crate).
#[path = "kernel.rs"]
mod glue;
pub mod logic;

use abi::RmiVersion;
use logic::probe::{self, Probe};

module! {
    type: KvmRme,
    name: "kvm_rme",
    authors: ["confvm developers"],
    description: "Arm CCA realm host support for KVM",
    license: "GPL",
}

/// The module: realm support is decided once, at its initialisation.
/// It keeps the debugfs files of the host-wide totals.
struct KvmRme {
    _totals: Option<crate::glue::totals::Files>,
}

fn fmt_version(v: RmiVersion) -> (u16, u16) {
    (v.major, v.minor)
}

impl kernel::Module for KvmRme {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if !crate::glue::smc::at_el2() {
            pr_info!("not running at EL2 (a guest): no realm host support\n");
            return Ok(KvmRme { _totals: None });
        }
        let has_rme = crate::glue::smc::feat_rme();
        let probe = if has_rme {
            let mut rmi = crate::glue::smc::SmcRmi::new()?;
            probe::probe(&mut rmi, true)
        } else {
            Probe::NoFeatRme
        };
        match probe {
            Probe::NoFeatRme => pr_info!("FEAT_RME not implemented: realms disabled\n"),
            Probe::Incompatible(i) | Probe::FeaturesFailed(i) => {
                let (lo, hi) = (fmt_version(i.lower), fmt_version(i.higher));
                pr_info!(
                    "RMM implements RMI {}.{}..{}.{}, this host speaks 2.0 and 1.0: realms disabled\n",
                    lo.0,
                    lo.1,
                    hi.0,
                    hi.1
                );
            }
            Probe::ActivationFailed(i, e) => {
                let hi = fmt_version(i.higher);
                pr_info!(
                    "RMM implements RMI {}.{} but refused RMM_ACTIVATE ({:?}): realms disabled\n",
                    hi.0,
                    hi.1,
                    e
                );
            }
            Probe::Ready {
                version, features, ..
            } => {
                crate::glue::smc::set_abi(version);
                crate::glue::vm::set_ready(features);
                if version.major >= 2 {
                    pr_info!(
                        "RMM implements RMI {}.{}: realms enabled (activated; IPA {} bits, GIC list registers in the CPU)\n",
                        version.major,
                        version.minor,
                        features.max_ipa_bits
                    );
                } else {
                    pr_info!(
                        "RMM implements RMI {}.{}: realms enabled (IPA {} bits, {} GIC LRs)\n",
                        version.major,
                        version.minor,
                        features.max_ipa_bits,
                        features.gic_lrs()
                    );
                }
            }
        }
        // Without them a benchmark has less to read; realms still work.
        let totals = crate::glue::totals::Files::new().ok();
        Ok(KvmRme { _totals: totals })
    }
}

#[cfg(CONFIG_KVM_RME_KUNIT_TEST)]
#[kunit_tests(kvm_rme_abi)]
mod abi_tests {
    use crate::abi::{Command, Features0};
    use crate::abi::{negotiate, ErrorStatus, RmiError, RmiVersion, VersionInfo};

    #[test]
    fn status_decoding() {
        assert_eq!(RmiError::decode(0), Ok(()));
        assert_eq!(RmiError::decode(0x0204), Err(RmiError::rtt(2)));
        assert_eq!(
            RmiError::decode(0x0102).map_err(|e| e.status),
            Err(ErrorStatus::Realm)
        );
        assert_eq!(
            RmiError::decode(0x11).map_err(|e| e.status),
            Err(ErrorStatus::Unknown(0x11))
        );
        assert_eq!(RmiError::rtt(3).encode(), 0x0304);
    }

    #[test]
    fn function_ids() {
        assert_eq!(Command::Version.fid(), 0xC400_0150);
        assert_eq!(Command::RttSetRipas.fid(), 0xC400_0169);
        for c in Command::ALL {
            assert_eq!(Command::from_fid(c.fid()), Some(c));
        }
        assert_eq!(Command::from_fid(0xC400_0156), None);
    }

    #[test]
    fn version_negotiation() {
        let v = |lo: (u16, u16), hi: (u16, u16)| VersionInfo {
            lower: RmiVersion {
                major: lo.0,
                minor: lo.1,
            },
            higher: RmiVersion {
                major: hi.0,
                minor: hi.1,
            },
        };
        assert_eq!(negotiate(v((1, 0), (1, 0))), Some(RmiVersion::V1_0));
        assert_eq!(negotiate(v((0, 0), (0, 0))), None);
        assert_eq!(negotiate(v((1, 0), (2, 0))), Some(RmiVersion::V2_0));
        assert_eq!(negotiate(v((2, 0), (2, 0))), Some(RmiVersion::V2_0));
        assert_eq!(negotiate(v((2, 1), (3, 0))), None);
    }

    #[test]
    fn features_round_trip() {
        let f = Features0::decode(0x0000_0003_0000_0030 | (4 << 34) | (5 << 38));
        assert_eq!(f.max_ipa_bits, 0x30);
        assert!(f.hash_sha256 && f.hash_sha512);
        assert_eq!(f.gicv3_num_lrs, 4);
        assert_eq!(f.max_recs_order, 5);
        assert_eq!(Features0::decode(f.encode()), f);
    }
}

#[cfg(CONFIG_KVM_RME_KUNIT_TEST)]
#[kunit_tests(kvm_rme_rmm)]
mod rmm_tests {
    use crate::abi::Command;
    use crate::abi::{Pa, RmiError};
    use crate::logic::granule::{self, Undelegated};
    use crate::logic::rmi::Rmi;
    use crate::glue::smc::{at_el2, feat_rme, SmcRmi};
    use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
    use kernel::page::Page;
    use kernel::prelude::*;

    /// With FEAT_RME, RMI_VERSION answers with a status the host can
    /// decode and a range where lower <= higher.
    #[test]
    fn rmi_version_answers() -> Result {
        if !feat_rme() || !at_el2() {
            kernel::kunit::mark_skipped(c"no FEAT_RME at EL2: no RMM to call");
            return Ok(());
        }
        let mut rmi = SmcRmi::new()?;
        let reply = rmi.version(rmi.abi());
        assert!(reply.info.lower <= reply.info.higher);
        if let Err(e) = reply.status {
            assert_eq!(e, RmiError::input());
        }
        assert_eq!(rmi.counts.get(Command::Version), 1);
        Ok(())
    }

    /// Real granule protection: pages delegate, refuse a second delegation,
    /// undelegate, refuse a second undelegation, and are usable again.
    #[test]
    fn granule_delegation_round_trip() -> Result {
        if !feat_rme() || !at_el2() {
            kernel::kunit::mark_skipped(c"no FEAT_RME at EL2: no RMM to call");
            return Ok(());
        }
        const N: usize = 16;
        // TRP prints an error line at EL3 for each refused transition
        // below; let the console drain first so the two outputs do not
        // interleave on the shared UART.
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(200));
        let mut rmi = SmcRmi::new()?;
        let mut pages = KVec::new();
        for _ in 0..N {
            pages.push(Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?, GFP_KERNEL)?;
        }
        let mut failures = 0;
        while let Some(page) = pages.pop() {
            let pa = Pa(page.phys_addr());
            let g = Undelegated::from_host_page(pa).ok_or(EINVAL)?;
            let d = match granule::delegate(&mut rmi, g) {
                Ok(d) => d,
                Err(_) => {
                    failures += 1;
                    continue;
                }
            };
            // A granule cannot be delegated twice.  The RMM says
            // ERROR_INPUT; TRP passes EL3's own status (-3) through.
            let again = if rmi.abi().major >= 2 {
                rmi.granule_range_delegate(pa, pa.add_pages(1)).map(|_| ())
            } else {
                rmi.granule_delegate(pa)
            };
            if again.is_ok() {
                failures += 1;
            }
            match granule::undelegate(&mut rmi, d) {
                Ok(_) => {}
                Err(_) => {
                    // Still delegated: it must never reach the allocator.
                    core::mem::forget(page);
                    failures += 1;
                    continue;
                }
            }
            let again = if rmi.abi().major >= 2 {
                rmi.granule_range_undelegate(pa, pa.add_pages(1)).map(|_| ())
            } else {
                rmi.granule_undelegate(pa)
            };
            if again.is_ok() {
                failures += 1;
            }
            // Back in the normal world: the host can write and read it.
            let v: u64 = 0x5a5a_0000 + pa.0;
            // SAFETY: `v` is a live u64 and the range is inside the page.
            unsafe { page.write_raw((&v as *const u64).cast::<u8>(), 8, 8)? };
            let mut back: u64 = 0;
            // SAFETY: `back` is a writable u64 and the range is inside the page.
            unsafe { page.read_raw((&mut back as *mut u64).cast::<u8>(), 8, 8)? };
            if back != v {
                failures += 1;
            }
        }
        assert_eq!(failures, 0);
        let (d, u) = (granule::delegate_command(&rmi), granule::undelegate_command(&rmi));
        assert_eq!(rmi.counts.get(d), 2 * N as u64);
        assert_eq!(rmi.counts.get(u), 2 * N as u64);
        Ok(())
    }

    /// Malformed calls get `RMI_ERROR_INPUT` from an RMM that speaks the
    /// negotiated version (the test RMM, TF-RMM v0.8.0 and v0.9.0), change
    /// nothing, and leave the RMM answering: objects that are not what the
    /// call needs, an unaligned granule, a delegated granule that is no RD.
    #[test]
    fn malformed_calls_get_error_input() -> Result {
        if !feat_rme() || !at_el2() {
            kernel::kunit::mark_skipped(c"no FEAT_RME at EL2: no RMM to call");
            return Ok(());
        }
        let mut rmi = SmcRmi::new()?;
        let v = rmi.abi();
        if rmi.version(v).status.is_err() {
            kernel::kunit::mark_skipped(c"the RMM does not speak a version this host does");
            return Ok(());
        }
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let pa = Pa(page.phys_addr());
        let input = Err(RmiError::input());
        let mut run = crate::abi::RecRun::default();
        // A normal-world page is no RD, REC or RTT.
        assert_eq!(rmi.realm_activate(pa), input);
        assert_eq!(rmi.realm_destroy(pa), input);
        assert_eq!(rmi.rec_enter(pa, &mut run), input);
        assert_eq!(rmi.rtt_create(pa, pa, crate::abi::Ipa(0), 1), input);
        assert_eq!(rmi.psci_complete(pa, pa, 0), input);
        if v.major >= 2 {
            let (i0, i1) = (crate::abi::Ipa(0), crate::abi::Ipa(0x1000));
            assert_eq!(rmi.rtt_data_unmap(pa, i0, i1).map(|_| ()), input);
            assert_eq!(rmi.rtt_data_map(pa, i0, i1, pa).map(|_| ()), input);
            assert_eq!(rmi.granule_range_undelegate(pa, pa.add_pages(1)).map(|_| ()), input);
            let odd = Pa(pa.0 + 0x800);
            assert_eq!(rmi.granule_range_delegate(odd, odd.add_pages(1)).map(|_| ()), input);
            // Activated once, at boot.
            assert_eq!(
                rmi.rmm_activate().map_err(|e| e.status),
                Err(crate::abi::ErrorStatus::Global)
            );
        } else {
            assert_eq!(rmi.rec_aux_count(pa).map(|_| ()), input);
            assert_eq!(rmi.data_destroy(pa, crate::abi::Ipa(0)).map(|_| ()), input);
            assert_eq!(rmi.granule_undelegate(pa), input);
            assert_eq!(rmi.granule_delegate(Pa(pa.0 + 0x800)), input);
        }
        // Delegated, but not an RD.
        let g = Undelegated::from_host_page(pa).ok_or(EINVAL)?;
        let d = granule::delegate(&mut rmi, g).map_err(|_| EIO)?;
        assert_eq!(rmi.realm_activate(pa), input);
        assert_eq!(rmi.rec_destroy(pa).map(|_| ()), input);
        if granule::undelegate(&mut rmi, d).is_err() {
            // Still delegated: it must never reach the allocator.
            core::mem::forget(page);
            return Err(EIO);
        }
        // Still answering.
        assert!(rmi.version(v).status.is_ok());
        Ok(())
    }
}
