// SPDX-License-Identifier: GPL-2.0

//! The executable RMM model the host tests run the logic against
//! (host build only).

mod rmm;

pub use rmm::*;
