// SPDX-License-Identifier: GPL-2.0

//! The executable RMM model: the RMM core (`no_std` with `alloc`, also
//! the test RMM's), and the host machine the logic's tests run it in
//! (std).

mod rmm;

pub use rmm::*;

#[cfg(any(test, feature = "model"))]
mod machine;

#[cfg(any(test, feature = "model"))]
pub use machine::*;
