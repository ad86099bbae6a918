// SPDX-License-Identifier: GPL-2.0

//! The models' fault-injection generator (host builds: the tests, and the
//! test RMM that runs the RMM model as firmware).

/// xorshift64*: cheap, deterministic, seedable.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator; `seed` 0 is moved off the fixed point.
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// The next word.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
