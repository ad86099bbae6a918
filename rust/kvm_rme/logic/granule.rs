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

use crate::abi::{Command, ErrorStatus, Pa, RmiError, RmiResult};
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

/// The command that delegates or undelegates one granule on `rmi`'s
/// version: 1.0's `GRANULE_(UN)DELEGATE`, or 2.0's range command over
/// `[pa, pa + 4 KiB)`, which must report `pa + 4 KiB` as its next address.
/// Any other answer (the RMM stopping short of the one granule it was
/// given, or going past it) is refused as `ERROR_INPUT`: the granule's
/// state is then not known, and the caller treats it as the RMM's.
fn transition<R: Rmi>(rmi: &mut R, pa: Pa, delegate: bool) -> RmiResult {
    if rmi.abi().major < 2 {
        return if delegate {
            rmi.granule_delegate(pa)
        } else {
            rmi.granule_undelegate(pa)
        };
    }
    let top = pa.add_pages(1);
    let next = if delegate {
        rmi.granule_range_delegate(pa, top)?
    } else {
        rmi.granule_range_undelegate(pa, top)?
    };
    if next == top {
        Ok(())
    } else {
        Err(RmiError::input())
    }
}

/// The command [`delegate`] issues on `rmi`'s version.
pub fn delegate_command<R: Rmi>(rmi: &R) -> Command {
    if rmi.abi().major < 2 {
        Command::GranuleDelegate
    } else {
        Command::GranuleRangeDelegate
    }
}

/// The command [`undelegate`] issues on `rmi`'s version.
pub fn undelegate_command<R: Rmi>(rmi: &R) -> Command {
    if rmi.abi().major < 2 {
        Command::GranuleUndelegate
    } else {
        Command::GranuleRangeUndelegate
    }
}

/// Delegates `page` (`GRANULE_DELEGATE`, or 2.0's range delegation of
/// the one granule), tried again on 2.0's `BUSY`; on failure the page
/// comes back unchanged.
pub fn delegate<R: Rmi>(
    rmi: &mut R,
    page: Undelegated,
) -> Result<Delegated, (Undelegated, RmiError)> {
    match busy_retried(|| transition(rmi, page.pa(), true)) {
        Ok(()) => Ok(Delegated::transferred(page)),
        Err(e) => Err((page, e)),
    }
}

/// `call`, tried again up to [`TEARDOWN_TRIES`] times in all while the
/// RMM answers `BUSY` (2.0: a contended object, nothing changed).
pub fn busy_retried<T>(call: impl FnMut() -> RmiResult<T>) -> RmiResult<T> {
    retried_while(|e| e.status == ErrorStatus::Busy, call)
}

/// `call`, tried up to [`TEARDOWN_TRIES`] times in all while its error
/// satisfies `again`; the last result.
fn retried_while<T>(
    again: impl Fn(&RmiError) -> bool,
    mut call: impl FnMut() -> RmiResult<T>,
) -> RmiResult<T> {
    let mut r = call();
    for _ in 1..TEARDOWN_TRIES {
        match &r {
            Err(e) if again(e) => r = call(),
            _ => break,
        }
    }
    r
}

/// How many times a teardown call (`GRANULE_UNDELEGATE`, `DATA_DESTROY`,
/// `RTT_DESTROY`, `RTT_UNMAP_UNPROTECTED`, `REALM_DESTROY`) is tried when
/// the RMM refuses it with anything but `ERROR_RTT`.  A refused destroy
/// changes nothing, so trying it again is safe; a refusal that passes (a
/// busy RMM, an injected failure) then costs the realm nothing, and one
/// that does not costs two more calls.  `ERROR_RTT` is walk information
/// the caller acts on, never retried.  The calls are the same wherever
/// they are made: teardown, memslot removal, private-to-shared changes.
pub const TEARDOWN_TRIES: usize = 3;

/// `call`, tried again up to [`TEARDOWN_TRIES`] times in all while it
/// fails with a status other than `ERROR_RTT`; the last result.
pub fn retried<T>(call: impl FnMut() -> RmiResult<T>) -> RmiResult<T> {
    retried_while(|e| e.status != ErrorStatus::Rtt, call)
}

/// `GRANULE_UNDELEGATE`, [`retried`]; on failure the granule stays
/// delegated, with the last status.
pub fn undelegate<R: Rmi>(rmi: &mut R, g: Delegated) -> Result<Undelegated, (Delegated, RmiError)> {
    match retried(|| transition(rmi, g.pa(), false)) {
        Ok(()) => Ok(g.reclaimed()),
        Err(e) => Err((g, e)),
    }
}
