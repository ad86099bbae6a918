// SPDX-License-Identifier: GPL-2.0

//! Who owns a host page, as types.
//!
//! A [`HostPage`] is normal host memory that its holder owns: only a
//! `HostPage` may go back to the page allocator.  A [`FwPage`] belongs to
//! the firmware (an RMI granule that is delegated, a TSM page that is
//! converted) and becomes a `HostPage` again only through the firmware
//! call that gives it back ([`FwPage::reclaimed`]).  Dropping a `FwPage`
//! leaks the page, which is safe: the page is never reused.  The backends
//! drop one only after the firmware refused to give it back, and count
//! the leak.
//!
//! The two constructors that cross between the states,
//! [`FwPage::transferred`] and [`FwPage::reclaimed`], are called by each
//! backend's transfer functions alone (`granule::delegate`/`undelegate`,
//! the pool's convert/reclaim), right after the firmware said yes.

use super::addr::Pa;

/// A 4 KiB-aligned host page in the normal world, owned by its holder.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub struct HostPage(Pa);

impl HostPage {
    /// Takes ownership of a host page.
    ///
    /// Returns `None` unless `pa` is 4 KiB aligned.  The caller gives up
    /// the page: it must not be used elsewhere until handed back.
    pub fn from_host_page(pa: Pa) -> Option<HostPage> {
        pa.is_aligned().then_some(HostPage(pa))
    }

    /// Physical address.
    pub fn pa(&self) -> Pa {
        self.0
    }
}

/// A page the firmware owns.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "dropping a firmware-owned page leaks it"]
pub struct FwPage(Pa);

impl FwPage {
    /// Physical address.
    pub fn pa(&self) -> Pa {
        self.0
    }

    /// The firmware accepted `page` (delegation, conversion).
    pub fn transferred(page: HostPage) -> FwPage {
        FwPage(page.0)
    }

    /// The firmware gave the page back to the normal world
    /// (undelegation, reclaim).
    pub fn reclaimed(self) -> HostPage {
        HostPage(self.0)
    }

    /// Hands the page to the firmware for a use of its own (an RMI RD,
    /// REC, RTT or DATA granule).  The firmware gives it back from the
    /// matching destroy call ([`FwPage::returned_by_firmware`]); the
    /// caller keeps only the address to find it again.
    pub fn hand_over(self) -> Pa {
        self.0
    }

    /// A page the firmware handed back, still its own (an RMI granule
    /// back in `DELEGATED` after a destroy or fold).
    pub fn returned_by_firmware(pa: Pa) -> FwPage {
        FwPage(pa)
    }
}
