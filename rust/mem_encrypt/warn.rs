// SPDX-License-Identifier: GPL-2.0

//! A crude rate limit for the kernel modules' warnings about bad input
//! and firmware refusals: the first 16 per boot are printed.  (The Rust
//! kernel crate has no `pr_warn_ratelimited!`.)  Included by `kvm_rme`
//! and `kvm_cove` with `#[path]`, each with its own budget.

use core::sync::atomic::AtomicU32;

/// Warnings printed so far.
pub(crate) static WARNINGS: AtomicU32 = AtomicU32::new(0);

/// Prints at most 16 warnings per boot.
macro_rules! warn_limited {
    ($($arg:tt)*) => {
        if $crate::warn::WARNINGS.fetch_add(1, core::sync::atomic::Ordering::Relaxed) < 16 {
            pr_warn!($($arg)*);
        }
    };
}
