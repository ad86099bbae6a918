// SPDX-License-Identifier: GPL-2.0

//! Boot-time decision: may this host run realms?

use crate::abi::Features0;
use crate::abi::{negotiate, RmiVersion, VersionInfo};
use crate::logic::rmi::Rmi;

/// What probing found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The CPU does not implement FEAT_RME: no RMM to talk to.
    NoFeatRme,
    /// An RMM answered, but with no interface version this host speaks.
    Incompatible(VersionInfo),
    /// The RMM answered `RMI_FEATURES(0)` with an error.
    FeaturesFailed(VersionInfo),
    /// Realms can be created.
    Ready {
        /// The interface version negotiated.
        version: RmiVersion,
        /// What the RMM reported as its range.
        info: VersionInfo,
        /// `RMI_FEATURES(0)`.
        features: Features0,
    },
}

impl Probe {
    /// Whether realms are enabled.
    pub fn ready(&self) -> bool {
        matches!(self, Probe::Ready { .. })
    }
}

/// Asks the RMM for its version range and features.
///
/// `has_rme` must come from `ID_AA64PFR0_EL1.RME`: without FEAT_RME no
/// SMC is issued at all.
pub fn probe<R: Rmi>(rmi: &mut R, has_rme: bool) -> Probe {
    if !has_rme {
        return Probe::NoFeatRme;
    }
    let reply = rmi.version(RmiVersion::V1_0);
    let Some(version) = negotiate(reply.info) else {
        return Probe::Incompatible(reply.info);
    };
    if reply.status.is_err() {
        // The range says 1.0 is implemented but the call refused it.
        return Probe::Incompatible(reply.info);
    }
    match rmi.features(0) {
        Ok(f) => Probe::Ready {
            version,
            info: reply.info,
            features: Features0::decode(f),
        },
        Err(_) => Probe::FeaturesFailed(reply.info),
    }
}
