// SPDX-License-Identifier: GPL-2.0

//! Per-function call counters for a firmware interface.
//!
//! Shared by the RMI (Arm) and COVH (RISC-V) backends: each wraps
//! [`Counters`] with its own function enum.

/// `N` counters, one per firmware function, indexed by the function's
/// position in its interface's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters<const N: usize> {
    counts: [u64; N],
}

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters { counts: [0; N] }
    }
}

impl<const N: usize> Counters<N> {
    /// Counts one call of function `i` (ignored if out of range).
    pub fn record(&mut self, i: usize) {
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
    }

    /// Calls of function `i`.
    pub fn get(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Per-function difference `self - earlier` (saturating).
    pub fn since(&self, earlier: &Self) -> Self {
        let mut d = Self::default();
        for (i, c) in d.counts.iter_mut().enumerate() {
            *c = self.counts[i].saturating_sub(earlier.counts[i]);
        }
        d
    }

    /// `(index, count)` of every function called at least once.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, n)| *n != 0)
    }
}
