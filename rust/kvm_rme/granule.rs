// SPDX-License-Identifier: GPL-2.0

//! Granule ownership states as types.
//!
//! A host page is [`Undelegated`] while the normal world may touch it and
//! [`Delegated`] once the RMM owns it.  Only an [`Undelegated`] granule can
//! go back to the page allocator ([`GranuleAlloc::free`]); a [`Delegated`]
//! one comes back only through a successful `GRANULE_UNDELEGATE`
//! ([`undelegate`]).  Dropping a [`Delegated`] value leaks the page, which
//! is safe: the page is never reused.  The realm logic drops one only after
//! an undelegation failed, and counts it.

use crate::abi::{Pa, RmiError};
use crate::rmi::Rmi;

/// A granule-aligned host page in the normal world, owned by its holder.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub struct Undelegated(Pa);

impl Undelegated {
    /// Takes ownership of a host page.
    ///
    /// Returns `None` unless `pa` is granule aligned.  The caller gives up
    /// the page: it must not be used elsewhere until handed back.
    pub fn from_host_page(pa: Pa) -> Option<Undelegated> {
        pa.is_aligned().then_some(Undelegated(pa))
    }

    /// Physical address.
    pub fn pa(&self) -> Pa {
        self.0
    }
}

/// A granule the RMM owns (`DELEGATED`, or in use as RD, REC, RTT, DATA).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "dropping a delegated granule leaks it"]
pub struct Delegated(Pa);

impl Delegated {
    /// Physical address.
    pub fn pa(&self) -> Pa {
        self.0
    }

    /// Hands the granule to the RMM for use as RD, REC, RTT or DATA.
    ///
    /// The RMM gives it back, `DELEGATED`, from the matching destroy
    /// command; the caller keeps only the address to find it again.
    pub fn hand_over(self) -> Pa {
        self.0
    }

    /// A granule the RMM handed back in the `DELEGATED` state (from
    /// `DATA_DESTROY`, `RTT_DESTROY` or `RTT_FOLD`).
    pub(crate) fn returned_by_rmm(pa: Pa) -> Delegated {
        Delegated(pa)
    }
}

/// Where the realm logic gets and returns host pages.
///
/// The kernel implements it with the page allocator (metadata granules)
/// and guest_memfd (data pages); host tests with the model's memory.
pub trait GranuleAlloc {
    /// A zeroed page.
    fn alloc(&mut self) -> Option<Undelegated>;
    /// `count` physically contiguous zeroed pages, each freeable on its
    /// own with [`GranuleAlloc::free`]; returns the first.
    fn alloc_contiguous(&mut self, count: usize) -> Option<Pa>;
    /// Returns a page from [`GranuleAlloc::alloc`]/`alloc_contiguous`.
    fn free(&mut self, page: Undelegated);
    /// Returns a data page the VMM provided (populate, fault-time map)
    /// once it is back in the normal world.
    fn release_data(&mut self, page: Undelegated);
}

/// `GRANULE_DELEGATE`; on failure the page comes back unchanged.
pub fn delegate<R: Rmi>(
    rmi: &mut R,
    page: Undelegated,
) -> Result<Delegated, (Undelegated, RmiError)> {
    match rmi.granule_delegate(page.0) {
        Ok(()) => Ok(Delegated(page.0)),
        Err(e) => Err((page, e)),
    }
}

/// `GRANULE_UNDELEGATE`; on failure the granule stays delegated.
pub fn undelegate<R: Rmi>(rmi: &mut R, g: Delegated) -> Result<Undelegated, (Delegated, RmiError)> {
    match rmi.granule_undelegate(g.0) {
        Ok(()) => Ok(Undelegated(g.0)),
        Err(e) => Err((g, e)),
    }
}
