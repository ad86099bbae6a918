// SPDX-License-Identifier: GPL-2.0

//! Test support shared by the backends' models and property tests (host
//! build only: the `testing` feature, which the kernel never sets).
//!
//! - [`XorShift`]: the models' fault-injection generator;
//! - [`Tape`]: the decisions of a property test, drawn from a list of
//!   words that proptest generates, shrinks and persists;
//! - [`run_property`]: one proptest runner for both backends, so a
//!   failure shrinks to a small tape, is saved under the crate's
//!   `proptest-regressions/` and replays first on the next run.

extern crate std;

use std::string::String;
use std::vec::Vec;

use proptest::collection::vec;
use proptest::prelude::any;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

pub use crate::xorshift::XorShift;

/// The decisions of one property-test case, read in order from `words`;
/// past the end every decision is 0 (so a shrunk, shorter tape still
/// drives a whole sequence, towards the first choice of each decision).
#[derive(Debug)]
pub struct Tape<'a> {
    words: &'a [u64],
    at: usize,
}

impl<'a> Tape<'a> {
    /// A tape over `words`.
    pub fn new(words: &'a [u64]) -> Tape<'a> {
        Tape { words, at: 0 }
    }

    /// The next word.
    pub fn next_u64(&mut self) -> u64 {
        let w = self.words.get(self.at).copied().unwrap_or(0);
        self.at = self.at.saturating_add(1);
        w
    }

    /// A decision in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Runs `case` on `cases` tapes of `words` random words each, through
/// proptest: a panicking case is shrunk to a minimal tape, reported with
/// it, and saved in `regressions` (a path relative to the crate), whose
/// tapes run first next time.
///
/// # Panics
///
/// If a case fails: this is the test's verdict.
pub fn run_property(
    cases: u32,
    words: usize,
    regressions: &'static str,
    case: impl Fn(&mut Tape<'_>),
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(std::boxed::Box::new(FileFailurePersistence::Direct(
            regressions,
        ))),
        ..Config::default()
    });
    let result = runner.run(&vec(any::<u64>(), words), |w: Vec<u64>| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut Tape::new(&w))));
        r.map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| String::from(*s)))
                .unwrap_or_default();
            TestCaseError::fail(msg)
        })
    });
    if let Err(e) = result {
        panic!("property failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_reads_in_order_then_zeroes() {
        let w = [7, 10, 3];
        let mut t = Tape::new(&w);
        assert_eq!(
            (t.below(4), t.next_u64(), t.below(2), t.below(5)),
            (3, 10, 1, 0)
        );
    }

    #[test]
    fn xorshift_is_deterministic() {
        let (mut a, mut b) = (XorShift::new(5), XorShift::new(5));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(XorShift::new(0).next_u64(), 0);
    }

    #[test]
    fn a_failing_property_fails_and_shrinks() {
        let r = std::panic::catch_unwind(|| {
            run_property(64, 8, "target/cvm_fw-selftest-regressions", |t| {
                assert!(t.below(1000) < 900, "a large first word");
            })
        });
        let msg = r
            .err()
            .and_then(|e| e.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("a large first word"), "{msg}");
        let _ = std::fs::remove_file("target/cvm_fw-selftest-regressions");
    }
}
