// SPDX-License-Identifier: GPL-2.0

//! Counts that firmware answers drive, in checked arithmetic.
//!
//! The host counts what it lent the firmware (delegated granules, RTTs,
//! converted pages) and takes from the count when the firmware gives
//! something back.  A firmware that follows its specification never gives
//! back more than it was lent; one that does must not make the host panic
//! (`RUST_OVERFLOW_CHECKS`) or wrap a count.  [`take`] stops at zero and
//! reports the impossible answer, which the backends count as an anomaly
//! and warn about.

/// Takes `n` from `count`.
///
/// Returns `false`, leaving `count` at zero, if that would go below zero:
/// the firmware gave back more than the host lent it.
#[must_use = "an impossible firmware answer must be reported"]
pub fn take(count: &mut u64, n: u64) -> bool {
    match count.checked_sub(n) {
        Some(v) => {
            *count = v;
            true
        }
        None => {
            *count = 0;
            false
        }
    }
}

/// [`take`], counting an impossible answer in `anomalies`.
pub fn take_or_note(count: &mut u64, n: u64, anomalies: &mut u64) {
    if !take(count, n) {
        add(anomalies, 1);
    }
}

/// Adds `n` to `count`, saturating (a count of lent pages cannot reach
/// `u64::MAX`; if it did, it would stay there rather than wrap).
pub fn add(count: &mut u64, n: u64) {
    *count = count.saturating_add(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_stops_at_zero_and_says_so() {
        let mut c = 3;
        assert!(take(&mut c, 2));
        assert_eq!(c, 1);
        assert!(!take(&mut c, 2));
        assert_eq!(c, 0);
        assert!(take(&mut c, 0));
        let mut anomalies = 0;
        take_or_note(&mut c, 1, &mut anomalies);
        assert_eq!((c, anomalies), (0, 1));
        add(&mut c, u64::MAX);
        add(&mut c, 1);
        assert_eq!(c, u64::MAX);
    }
}
