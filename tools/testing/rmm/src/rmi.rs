// SPDX-License-Identifier: GPL-2.0

//! RMI dispatch: a request as EL3 forwards it (x0 = function ID, x1..x7
//! = the host's x1..x7) to the reply (the host's x0..x4).

use crate::granule::{El3, GranuleError, Granules};

/// `RMI_VERSION`.
pub const VERSION: u64 = 0xC400_0150;
/// `RMI_GRANULE_DELEGATE`.
pub const GRANULE_DELEGATE: u64 = 0xC400_0151;
/// `RMI_GRANULE_UNDELEGATE`.
pub const GRANULE_UNDELEGATE: u64 = 0xC400_0152;
/// `RMI_FEATURES`.
pub const FEATURES: u64 = 0xC400_0165;

/// The RMI version this RMM implements: 1.0.
pub const RMI_1_0: u64 = 1 << 16;

/// RMI status codes (RMM 1.0 `RmiStatusCode`).
pub mod status {
    pub const SUCCESS: u64 = 0;
    pub const ERROR_INPUT: u64 = 1;
}

/// SMCCC `NOT_SUPPORTED`, for function IDs the RMM does not implement.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;

/// SMCCC v1.3's SVE hint, which EL3 passes on in the function ID.
const SVE_HINT: u64 = 1 << 16;

/// What the RMM answers `RMI_FEATURES` with.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `RMI_FEATURES(0)`.
    pub features0: u64,
}

/// Handles one request; returns the host's x0..x4.  Registers a command
/// does not return keep the host's values (x4 is passed back as SMCCC
/// 1.2 asks).
pub fn dispatch(
    cfg: &Config,
    granules: &mut Granules<'_>,
    el3: &mut impl El3,
    fid: u64,
    args: &[u64; 7],
) -> [u64; 5] {
    let mut out = [0, args[0], args[1], args[2], args[3]];
    let status = |r: Result<(), GranuleError>| match r {
        Ok(()) => status::SUCCESS,
        Err(_) => status::ERROR_INPUT,
    };
    match fid & !SVE_HINT {
        VERSION => {
            // Success only for a request this RMM implements (1.0);
            // either way it reports the range it has.
            out[0] = if args[0] == RMI_1_0 { status::SUCCESS } else { status::ERROR_INPUT };
            out[1] = RMI_1_0;
            out[2] = RMI_1_0;
        }
        FEATURES => {
            out[0] = status::SUCCESS;
            out[1] = if args[0] == 0 { cfg.features0 } else { 0 };
        }
        GRANULE_DELEGATE => out[0] = status(granules.delegate(el3, args[0])),
        GRANULE_UNDELEGATE => out[0] = status(granules.undelegate(el3, args[0])),
        _ => out[0] = NOT_SUPPORTED,
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::granule::tests::FakeEl3;
    use crate::manifest::Bank;

    #[test]
    fn version_features_and_granules() {
        let banks = [Bank { base: 0x4000_0000, size: 0x10_0000 }];
        let mut st = vec![0u8; 256];
        let mut g = Granules::new(&banks, &mut st).unwrap();
        let mut el3 = FakeEl3::default();
        let cfg = Config { features0: 0x3_0000_0030 };
        let mut call = |fid, a0| dispatch(&cfg, &mut g, &mut el3, fid, &[a0, 9, 9, 44, 55, 0, 0]);
        assert_eq!(call(VERSION, RMI_1_0)[..3], [0, RMI_1_0, RMI_1_0]);
        assert_eq!(call(VERSION, 2 << 16)[..3], [1, RMI_1_0, RMI_1_0]);
        assert_eq!(call(VERSION | SVE_HINT, RMI_1_0)[0], 0, "the SVE hint is ignored");
        assert_eq!(call(FEATURES, 0)[..2], [0, 0x3_0000_0030]);
        assert_eq!(call(FEATURES, 1)[..2], [0, 0]);
        assert_eq!(call(GRANULE_DELEGATE, 0x4000_1000)[0], 0);
        assert_eq!(call(GRANULE_DELEGATE, 0x4000_1000)[0], 1);
        assert_eq!(call(GRANULE_UNDELEGATE, 0x4000_1000)[0], 0);
        assert_eq!(call(GRANULE_UNDELEGATE, 0x4000_1000)[0], 1);
        let r = call(0xC400_0153, 0);
        assert_eq!(r[0], NOT_SUPPORTED);
        assert_eq!(r[4], 44, "the caller's x4 comes back");
    }
}
