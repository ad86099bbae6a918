// SPDX-License-Identifier: GPL-2.0

//! Boot-time decision: may this host run realms?

use crate::abi::v2::Features1;
use crate::abi::{negotiate, ErrorStatus, RmiError, RmiVersion, VersionInfo, SUPPORTED};
use crate::abi::Features0;
use crate::logic::rmi::Rmi;

/// What probing found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The CPU does not implement FEAT_RME: no RMM to talk to.
    NoFeatRme,
    /// An RMM answered, but with no interface version this host speaks.
    Incompatible(VersionInfo),
    /// The RMM answered `RMI_FEATURES` with an error.
    FeaturesFailed(VersionInfo),
    /// A 2.0 RMM refused `RMM_ACTIVATE`.
    ActivationFailed(VersionInfo, RmiError),
    /// Realms can be created.
    Ready {
        /// The interface version negotiated.
        version: RmiVersion,
        /// What the RMM reported as its range.
        info: VersionInfo,
        /// `RMI_FEATURES(0)` (and, for 2.0, `RMI_FEATURES(1)`), in 1.0's
        /// terms.
        features: Features0,
    },
}

impl Probe {
    /// Whether realms are enabled.
    pub fn ready(&self) -> bool {
        matches!(self, Probe::Ready { .. })
    }
}

/// Asks the RMM for its version range, picks the newest version both
/// sides speak ([`negotiate`]), and gets the RMM ready for realms: for
/// 2.0, `RMM_CONFIG_SET` with the default configuration (4 KiB granules,
/// which is `PAGE_SIZE` here) and `RMM_ACTIVATE`, without which a 2.0
/// RMM refuses every other command.  Then `RMI_FEATURES`.
///
/// `has_rme` must come from `ID_AA64PFR0_EL1.RME`: without FEAT_RME no
/// SMC is issued at all.
pub fn probe<R: Rmi>(rmi: &mut R, has_rme: bool) -> Probe {
    if !has_rme {
        return Probe::NoFeatRme;
    }
    // Ask for the newest; every RMM reports its range either way.
    let first = rmi.version(SUPPORTED[0]);
    let Some(version) = negotiate(first.info) else {
        return Probe::Incompatible(first.info);
    };
    let reply = if version == SUPPORTED[0] {
        first
    } else {
        rmi.version(version)
    };
    if reply.status.is_err() {
        // The range says the version is implemented but the call refused it.
        return Probe::Incompatible(reply.info);
    }
    let info = reply.info;
    if version.major >= 2 {
        // Optional, and only before activation: an RMM some earlier
        // kernel activated (kexec) says ERROR_GLOBAL, which is fine.
        let _ = rmi.rmm_config_set();
        match rmi.rmm_activate() {
            Ok(()) => {}
            // Not in its INIT state: activated already.
            Err(e) if e.status == ErrorStatus::Global => {}
            Err(e) => return Probe::ActivationFailed(info, e),
        }
        let (Ok(f0), Ok(f1)) = (rmi.features(0), rmi.features(1)) else {
            return Probe::FeaturesFailed(info);
        };
        return Probe::Ready {
            version,
            info,
            features: Features1::merge(f0, f1),
        };
    }
    match rmi.features(0) {
        Ok(f) => Probe::Ready {
            version,
            info,
            features: Features0::decode(f),
        },
        Err(_) => Probe::FeaturesFailed(info),
    }
}
