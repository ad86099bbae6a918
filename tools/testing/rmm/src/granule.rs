// SPDX-License-Identifier: GPL-2.0

//! Granule ownership: one state per 4 KiB granule of the DRAM banks the
//! manifest names, and the RMI commands that move granules between the
//! normal world and the realm world through EL3's GPT service.

use crate::manifest::Bank;

/// Granule size.
pub const GRANULE: u64 = 4096;

/// A granule's state (RMM specification, "Granule state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Normal world (the GPT says NS).
    Undelegated = 0,
    /// Realm PAS, unused.
    Delegated = 1,
    /// Realm descriptor.
    Rd = 2,
    /// REC.
    Rec = 3,
    /// REC auxiliary granule.
    RecAux = 4,
    /// Realm data.
    Data = 5,
    /// Realm translation table.
    Rtt = 6,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Delegated,
            2 => State::Rd,
            3 => State::Rec,
            4 => State::RecAux,
            5 => State::Data,
            6 => State::Rtt,
            _ => State::Undelegated,
        }
    }
}

/// EL3's granule transition service (`RMM_GTSI_DELEGATE`/`UNDELEGATE`),
/// and access to a granule's memory through the realm PAS.
pub trait El3 {
    /// Moves the granule at `pa` to the realm PAS; `Err` with EL3's
    /// status (`E_RMM_BAD_ADDR`, `E_RMM_BAD_PAS`, ...).
    fn delegate(&mut self, pa: u64) -> Result<(), i64>;
    /// Moves it back to the NS PAS.
    fn undelegate(&mut self, pa: u64) -> Result<(), i64>;
    /// Zeroes the (delegated) granule at `pa`.
    fn scrub(&mut self, pa: u64);
}

/// Why a granule command fails (`RMI_ERROR_INPUT` for all of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GranuleError {
    /// Not granule aligned, or outside every bank.
    Address,
    /// Not in the state the command needs.
    State,
    /// EL3 refused the transition (its status).
    El3(i64),
}

/// The states of every granule of the banks, one byte each.
pub struct Granules<'a> {
    banks: &'a [Bank],
    states: &'a mut [u8],
}

impl<'a> Granules<'a> {
    /// Granules covering `banks`, kept in `states` (one byte per granule
    /// of all banks together, all zero: `Undelegated`).  `None` if
    /// `states` is too short.
    pub fn new(banks: &'a [Bank], states: &'a mut [u8]) -> Option<Granules<'a>> {
        let need: u64 = banks.iter().map(|b| b.size / GRANULE).sum();
        if (states.len() as u64) < need {
            return None;
        }
        Some(Granules { banks, states })
    }

    /// The number of granules `banks` has.
    pub fn count(banks: &[Bank]) -> u64 {
        banks.iter().map(|b| b.size / GRANULE).sum()
    }

    fn index(&self, pa: u64) -> Result<usize, GranuleError> {
        if pa % GRANULE != 0 {
            return Err(GranuleError::Address);
        }
        let mut first = 0u64;
        for b in self.banks {
            if pa >= b.base && pa - b.base < b.size {
                // CAST: below `states.len()`, checked at construction.
                return Ok((first + (pa - b.base) / GRANULE) as usize);
            }
            first += b.size / GRANULE;
        }
        Err(GranuleError::Address)
    }

    /// The state of the granule at `pa`.
    pub fn state(&self, pa: u64) -> Result<State, GranuleError> {
        let i = self.index(pa)?;
        Ok(State::from_u8(self.states[i]))
    }

    fn set(&mut self, pa: u64, s: State) -> Result<(), GranuleError> {
        let i = self.index(pa)?;
        // CAST: fieldless `repr(u8)` enum to its discriminant.
        self.states[i] = s as u8;
        Ok(())
    }

    /// `RMI_GRANULE_DELEGATE`.
    pub fn delegate(&mut self, el3: &mut impl El3, pa: u64) -> Result<(), GranuleError> {
        if self.state(pa)? != State::Undelegated {
            return Err(GranuleError::State);
        }
        el3.delegate(pa).map_err(GranuleError::El3)?;
        self.set(pa, State::Delegated)
    }

    /// `RMI_GRANULE_UNDELEGATE`: the granule is zeroed first, so nothing
    /// a realm left in it reaches the normal world.
    pub fn undelegate(&mut self, el3: &mut impl El3, pa: u64) -> Result<(), GranuleError> {
        if self.state(pa)? != State::Delegated {
            return Err(GranuleError::State);
        }
        el3.scrub(pa);
        el3.undelegate(pa).map_err(GranuleError::El3)?;
        self.set(pa, State::Undelegated)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// EL3 as a GPT: NS or realm per granule, refusing what EL3 refuses.
    #[derive(Default)]
    pub(crate) struct FakeEl3 {
        pub realm: std::collections::BTreeSet<u64>,
        pub scrubbed: Vec<u64>,
        pub calls: u64,
    }

    impl El3 for FakeEl3 {
        fn delegate(&mut self, pa: u64) -> Result<(), i64> {
            self.calls += 1;
            if pa >= 1 << 32 {
                return Err(-2);
            }
            if !self.realm.insert(pa) {
                return Err(-3);
            }
            Ok(())
        }
        fn undelegate(&mut self, pa: u64) -> Result<(), i64> {
            self.calls += 1;
            if !self.realm.remove(&pa) {
                return Err(-3);
            }
            Ok(())
        }
        fn scrub(&mut self, pa: u64) {
            self.scrubbed.push(pa);
        }
    }

    const BANKS: [Bank; 2] = [
        Bank { base: 0x4000_0000, size: 0x10_0000 },
        Bank { base: 0x1_0000_0000, size: 0x1000 },
    ];

    #[test]
    fn delegate_and_undelegate() {
        let mut st = vec![0u8; Granules::count(&BANKS) as usize];
        let mut g = Granules::new(&BANKS, &mut st).unwrap();
        let mut el3 = FakeEl3::default();
        let pa = 0x4000_3000;
        g.delegate(&mut el3, pa).unwrap();
        assert_eq!(g.state(pa), Ok(State::Delegated));
        assert!(el3.realm.contains(&pa));
        assert_eq!(g.delegate(&mut el3, pa), Err(GranuleError::State), "twice");
        g.undelegate(&mut el3, pa).unwrap();
        assert_eq!(el3.scrubbed, [pa], "scrubbed before it leaves");
        assert_eq!(g.undelegate(&mut el3, pa), Err(GranuleError::State));
        for bad in [0x4000_0001, 0x3fff_f000, 0x4010_0000, 0x1_0000_1000] {
            assert_eq!(g.delegate(&mut el3, bad), Err(GranuleError::Address), "{bad:#x}");
        }
        // The second bank: EL3 refuses (above 4 GiB), the state stays.
        assert_eq!(g.delegate(&mut el3, 0x1_0000_0000), Err(GranuleError::El3(-2)));
        assert_eq!(g.state(0x1_0000_0000), Ok(State::Undelegated));
        assert!(Granules::new(&BANKS, &mut [0u8; 3]).is_none());
    }
}
