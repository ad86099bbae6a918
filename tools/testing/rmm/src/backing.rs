// SPDX-License-Identifier: GPL-2.0

//! The RMM core's [`Backing`] in the firmware: what each granule and RTT
//! change does to the machine.  Granules change PAS through EL3's
//! `RMM_GTSI_DELEGATE`/`UNDELEGATE` (so every transition is a real GPT
//! change), leave the realm PAS zeroed, and RTT entries become the
//! stage-2 descriptors the MMU walks ([`crate::stage2`]).
//!
//! The hardware operations are the [`Hw`] trait: the firmware shell
//! implements it with SMCs and memory accesses, the tests with a map.

use kvm_rme::abi::Pa;
use kvm_rme::model::{Backing, Entry};

use crate::stage2;

/// Granule size.
pub const GRANULE: u64 = 4096;

/// What the backing needs from the machine.
pub trait Hw {
    /// EL3's `RMM_GTSI_DELEGATE`: `Err` with EL3's status.
    fn gtsi_delegate(&mut self, pa: u64) -> Result<(), i64>;
    /// EL3's `RMM_GTSI_UNDELEGATE`.
    fn gtsi_undelegate(&mut self, pa: u64) -> Result<(), i64>;
    /// Zeroes the realm-PAS granule at `pa`.
    fn zero(&mut self, pa: u64);
    /// Copies the normal world's granule `src` into the realm-PAS granule
    /// `dst`; `false` if `src` cannot be read (the access faulted).
    fn copy_from_ns(&mut self, dst: u64, src: u64) -> bool;
    /// Writes descriptor `index` of the RTT granule at `table`; returns
    /// the one it replaces.
    fn write_desc(&mut self, table: u64, index: usize, desc: u64) -> u64;
    /// Invalidates the realm world's stage-1+2 TLB entries, all VMIDs,
    /// on every CPU.
    fn tlbi_all(&mut self);
}

/// The firmware's backing over `H`, with counts for the log.
pub struct FwBacking<H: Hw> {
    /// The machine.
    pub hw: H,
    /// EL3 refusals seen.
    pub el3_refusals: u64,
    /// TLB invalidations issued.
    pub tlbis: u64,
}

impl<H: Hw> FwBacking<H> {
    /// A backing over `hw`.
    pub fn new(hw: H) -> FwBacking<H> {
        FwBacking {
            hw,
            el3_refusals: 0,
            tlbis: 0,
        }
    }
}

impl<H: Hw> Backing for FwBacking<H> {
    fn delegate(&mut self, pa: Pa) -> bool {
        // No realm sees what the granule held: RTTs are written whole,
        // data is copied or zeroed, before use.
        let ok = self.hw.gtsi_delegate(pa.0).is_ok();
        if !ok {
            self.el3_refusals = self.el3_refusals.saturating_add(1);
        }
        ok
    }

    fn undelegate(&mut self, pa: Pa) -> bool {
        // Nothing of a realm leaves the realm PAS.
        self.hw.zero(pa.0);
        let ok = self.hw.gtsi_undelegate(pa.0).is_ok();
        if !ok {
            self.el3_refusals = self.el3_refusals.saturating_add(1);
        }
        ok
    }

    fn table_init(&mut self, table: Pa, level: u8, entries: &[Entry]) {
        for (i, e) in entries.iter().enumerate() {
            self.hw.write_desc(table.0, i, stage2::descriptor(level, *e));
        }
    }

    fn entry_set(&mut self, table: Pa, level: u8, index: usize, e: Entry) {
        let old = self.hw.write_desc(table.0, index, stage2::descriptor(level, e));
        if stage2::valid(old) {
            self.hw.tlbi_all();
            self.tlbis = self.tlbis.saturating_add(1);
        }
    }

    fn data_init(&mut self, data: Pa, src: Option<Pa>) -> bool {
        match src {
            Some(src) => self.hw.copy_from_ns(data.0, src.0),
            None => {
                self.hw.zero(data.0);
                true
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Memory as a map of words, EL3 as a set of realm granules.
    #[derive(Default)]
    pub struct FakeHw {
        pub realm: BTreeSet<u64>,
        pub words: BTreeMap<u64, u64>,
        pub tlbis: u64,
        pub refuse: Option<u64>,
    }

    impl Hw for FakeHw {
        fn gtsi_delegate(&mut self, pa: u64) -> Result<(), i64> {
            if Some(pa) == self.refuse || !self.realm.insert(pa) {
                return Err(-3);
            }
            Ok(())
        }
        fn gtsi_undelegate(&mut self, pa: u64) -> Result<(), i64> {
            if !self.realm.remove(&pa) {
                return Err(-3);
            }
            Ok(())
        }
        fn zero(&mut self, pa: u64) {
            assert!(self.realm.contains(&pa), "zeroing NS memory {pa:#x}");
            for w in 0..512 {
                self.words.remove(&(pa + w * 8));
            }
        }
        fn copy_from_ns(&mut self, dst: u64, src: u64) -> bool {
            if self.realm.contains(&src) {
                return false;
            }
            for w in 0..512 {
                let v = self.words.get(&(src + w * 8)).copied().unwrap_or(0);
                self.words.insert(dst + w * 8, v);
            }
            true
        }
        fn write_desc(&mut self, table: u64, index: usize, desc: u64) -> u64 {
            assert!(self.realm.contains(&table), "RTT {table:#x} not delegated");
            self.words.insert(table + index as u64 * 8, desc).unwrap_or(0)
        }
        fn tlbi_all(&mut self) {
            self.tlbis += 1;
        }
    }

    impl FakeHw {
        /// A stage-2 walk over the descriptors written, as the MMU does
        /// it: the output address of `ipa`, or `None` for a fault.
        pub fn walk(&self, vttbr: u64, start_level: u8, ipa: u64) -> Option<u64> {
            let mut level = start_level;
            let shift = |l: u8| 12 + 9 * (3 - u32::from(l));
            // Concatenated start tables: the start index may exceed 511.
            let mut table = vttbr & 0x0000_ffff_ffff_f000;
            let mut index = ipa >> shift(level);
            loop {
                let d = self.words.get(&(table + index * 8)).copied().unwrap_or(0);
                if d & 1 == 0 {
                    return None;
                }
                let oa = d & 0x0000_ffff_ffff_f000;
                if level == 3 || d & 2 == 0 {
                    let size = 1u64 << shift(level);
                    return Some((oa & !(size - 1)) | (ipa & (size - 1)));
                }
                table = oa;
                level += 1;
                index = (ipa >> shift(level)) & 511;
            }
        }
    }
}
