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
use crate::logic::rmi::Rmi;

/// A granule-aligned host page in the normal world, owned by its holder
/// (the RMM's `UNDELEGATED`).
pub type Undelegated = crate::cvm_fw::page::HostPage;

/// A granule the RMM owns (`DELEGATED`, or in use as RD, REC, RTT, DATA).
///
/// [`Delegated::hand_over`] gives it to the RMM for one of those uses;
/// [`Delegated::returned_by_firmware`] takes it back, `DELEGATED`, from the
/// matching destroy (`DATA_DESTROY`, `RTT_DESTROY`, `RTT_FOLD`,
/// `REC_DESTROY`, `REALM_DESTROY`).
pub type Delegated = crate::cvm_fw::page::FwPage;

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
    match rmi.granule_delegate(page.pa()) {
        Ok(()) => Ok(Delegated::transferred(page)),
        Err(e) => Err((page, e)),
    }
}

/// How many times `GRANULE_UNDELEGATE` is tried before a granule is
/// given up on (and counted as leaked): a failure may pass (an RMM that
/// was busy, an injected failure), and one that does not costs two more
/// calls.
pub const UNDELEGATE_TRIES: usize = 3;

/// `GRANULE_UNDELEGATE`, tried up to [`UNDELEGATE_TRIES`] times; on
/// failure the granule stays delegated, with the last status.
pub fn undelegate<R: Rmi>(rmi: &mut R, g: Delegated) -> Result<Undelegated, (Delegated, RmiError)> {
    let mut last = RmiError::input();
    for _ in 0..UNDELEGATE_TRIES {
        match rmi.granule_undelegate(g.pa()) {
            Ok(()) => return Ok(g.reclaimed()),
            Err(e) => last = e,
        }
    }
    Err((g, last))
}
