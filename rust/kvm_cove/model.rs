// SPDX-License-Identifier: GPL-2.0

//! The executable TSM model the host tests run the logic against
//! (host build only).

mod covi;
mod tsm;

pub use covi::{Bind, HostImsic, TvmIrq};
pub use tsm::*;
