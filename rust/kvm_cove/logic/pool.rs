// SPDX-License-Identifier: GPL-2.0

//! Host pages and confidential pages, and a per-TVM pool of confidential
//! pages converted in batches.
//!
//! A [`Plain`] page is normal host memory; only a `Plain` page goes back
//! to the allocator.  Pages become confidential by `TSM_CONVERT_PAGES`
//! plus a global fence, and normal again only by `TSM_RECLAIM_PAGES` once
//! no TVM uses them.  The pool converts `batch` contiguous pages with one
//! convert call and one global fence, hands them out one by one, and
//! reclaims every batch with one call when the TVM is gone: the RFC code
//! converted and fenced on every 4 KiB fault.

use crate::abi::{Pa, SbiError};
use crate::cvm_fw::count;
use crate::logic::tsm::{global_fence, Tsm};

/// A normal-world host page, owned by its holder.
pub type Plain = crate::cvm_fw::page::HostPage;

/// Where the CoVE logic gets and returns host pages.
pub trait PageAlloc {
    /// `count` contiguous zeroed pages (count may be 1), each freeable on
    /// its own; returns the first.
    fn alloc_contiguous(&mut self, count: u64) -> Option<Pa>;
    /// Returns a page.
    fn free(&mut self, page: Plain);
}

/// Batches the host build's [`FixedTable`] holds.
pub const MAX_BATCHES: usize = 512;

/// One converted run of pages (opaque to the tables that store it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Batch {
    base: u64,
    count: u64,
    /// Pages handed out from the start of the batch.
    used: u64,
    /// The batch could not be reclaimed: leaked on purpose.
    leaked: bool,
}

/// Where a pool keeps its batches: a fixed table in the host build, a
/// growable vector in the kernel (a TVM needs one batch per contiguous
/// run the page allocator gave, at most 4 MiB each there).
pub trait BatchTable {
    /// The batches so far.
    fn as_slice(&self) -> &[Batch];
    /// The batches so far, writable.
    fn as_mut_slice(&mut self) -> &mut [Batch];
    /// Appends `b`; `false` if there is no room (or no memory for it).
    fn push(&mut self, b: Batch) -> bool;
    /// Forgets every batch.
    fn clear(&mut self);
}

/// A table of at most `N` batches, inline.
#[derive(Debug)]
pub struct FixedTable<const N: usize> {
    b: [Batch; N],
    n: usize,
}

impl<const N: usize> Default for FixedTable<N> {
    fn default() -> Self {
        FixedTable {
            b: [Batch::default(); N],
            n: 0,
        }
    }
}

impl<const N: usize> BatchTable for FixedTable<N> {
    fn as_slice(&self) -> &[Batch] {
        &self.b[..self.n]
    }

    fn as_mut_slice(&mut self) -> &mut [Batch] {
        &mut self.b[..self.n]
    }

    fn push(&mut self, b: Batch) -> bool {
        match self.b.get_mut(self.n) {
            Some(slot) => {
                *slot = b;
                self.n += 1;
                true
            }
            None => false,
        }
    }

    fn clear(&mut self) {
        self.n = 0;
    }
}

/// The host build's table.
pub type DefaultTable = FixedTable<MAX_BATCHES>;

/// Why a pool operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// No host memory, or the batch table is full.
    NoMemory,
    /// The TSM refused the conversion or the fence.
    Tsm(SbiError),
}

/// Counters of a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Pages currently converted (in the pool or given to the TSM).
    pub converted: u64,
    /// Pages handed out.
    pub handed_out: u64,
    /// Pages leaked because the TSM would not reclaim them.
    pub leaked: u64,
    /// Global fences issued.
    pub fences: u64,
    /// Counts that would have gone below zero (a host bug); they stop at
    /// zero.  Always 0; the kernel warns otherwise.
    pub anomalies: u64,
}

/// Confidential pages for one TVM.
#[derive(Debug)]
pub struct Pool<B: BatchTable = DefaultTable> {
    batches: B,
    batch_pages: u64,
    grow: bool,
    stats: PoolStats,
}

/// Batches between doublings of the batch size of a growing pool.
pub const GROW_EVERY: usize = 8;
/// Largest batch a growing pool converts at once: 4 MiB, the largest
/// block the kernel's page allocator hands out (`MAX_PAGE_ORDER` 10).
pub const MAX_BATCH_PAGES: u64 = 1 << 10;

impl Pool {
    /// A pool in a [`DefaultTable`]; see [`Pool::with_table`].
    pub fn new(batch_pages: u64) -> Pool {
        Pool::with_table(DefaultTable::default(), batch_pages)
    }

    /// A pool in a [`DefaultTable`] that always converts `batch_pages`
    /// pages (capacity `MAX_BATCHES * batch_pages`).
    pub fn fixed(batch_pages: u64) -> Pool {
        Pool {
            grow: false,
            ..Pool::new(batch_pages)
        }
    }
}

impl<B: BatchTable> Pool<B> {
    /// A pool converting `batch_pages` pages at a time at first, doubling
    /// the batch every [`GROW_EVERY`] batches up to [`MAX_BATCH_PAGES`].
    pub fn with_table(table: B, batch_pages: u64) -> Pool<B> {
        Pool {
            batches: table,
            batch_pages: batch_pages.max(1),
            grow: true,
            stats: PoolStats::default(),
        }
    }

    fn next_batch(&self) -> u64 {
        if self.grow {
            // CAST: at most 63 doublings are asked for; the min caps them.
            let doublings = (self.batches.as_slice().len() / GROW_EVERY).min(63) as u32;
            (self.batch_pages << doublings).min(MAX_BATCH_PAGES.max(self.batch_pages))
        } else {
            self.batch_pages
        }
    }

    /// Counters.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Converts a new batch of (up to) `want` pages: fewer if contiguous
    /// memory is short, down to one page.
    fn refill<T: Tsm, A: PageAlloc>(
        &mut self,
        tsm: &mut T,
        alloc: &mut A,
        want: u64,
    ) -> Result<(), PoolError> {
        let mut count = want.max(1);
        let base = loop {
            if let Some(pa) = alloc.alloc_contiguous(count) {
                break pa;
            }
            if count == 1 {
                return Err(PoolError::NoMemory);
            }
            count /= 2;
        };
        let give_back = |alloc: &mut A| {
            for i in 0..count {
                if let Some(p) = Plain::from_host_page(base.add_pages(i)) {
                    alloc.free(p);
                }
            }
        };
        if let Err(e) = tsm.convert_pages(base, count) {
            give_back(alloc);
            return Err(PoolError::Tsm(e));
        }
        count::add(&mut self.stats.converted, count);
        count::add(&mut self.stats.fences, 1);
        if let Err(e) = global_fence(tsm) {
            // Converted but not fenced: take it back at once.
            if tsm.reclaim_pages(base, count).is_ok() {
                count::take_or_note(&mut self.stats.converted, count, &mut self.stats.anomalies);
                give_back(alloc);
            } else {
                // Kept only to be counted: nothing frees a leaked batch.
                let _ = self.batches.push(Batch {
                    base: base.0,
                    count,
                    used: count,
                    leaked: true,
                });
                count::take_or_note(&mut self.stats.converted, count, &mut self.stats.anomalies);
                count::add(&mut self.stats.leaked, count);
            }
            return Err(PoolError::Tsm(e));
        }
        let b = Batch {
            base: base.0,
            count,
            used: 0,
            leaked: false,
        };
        if !self.batches.push(b) {
            // No room to track it: give it back at once.
            if tsm.reclaim_pages(base, count).is_ok() {
                count::take_or_note(&mut self.stats.converted, count, &mut self.stats.anomalies);
                give_back(alloc);
            } else {
                count::take_or_note(&mut self.stats.converted, count, &mut self.stats.anomalies);
                count::add(&mut self.stats.leaked, count);
            }
            return Err(PoolError::NoMemory);
        }
        Ok(())
    }

    /// `n` contiguous confidential pages (n <= the batch size); the TSM
    /// owns them once the caller hands them to it.
    pub fn take<T: Tsm, A: PageAlloc>(
        &mut self,
        tsm: &mut T,
        alloc: &mut A,
        n: u64,
    ) -> Result<Pa, PoolError> {
        if let Some(b) = self
            .batches
            .as_mut_slice()
            .iter_mut()
            .rev()
            .find(|b| !b.leaked && b.count - b.used >= n)
        {
            let pa = Pa(b.base).add_pages(b.used);
            b.used += n;
            count::add(&mut self.stats.handed_out, n);
            return Ok(pa);
        }
        self.refill(tsm, alloc, self.next_batch().max(n))?;
        let Some(b) = self.batches.as_mut_slice().last_mut() else {
            return Err(PoolError::NoMemory);
        };
        if b.count < n {
            return Err(PoolError::NoMemory);
        }
        b.used = n;
        count::add(&mut self.stats.handed_out, n);
        Ok(Pa(b.base))
    }

    /// Gives back the `n` pages at `pa` that the last [`Pool::take`]
    /// handed out, unused (the TSM refused to map them): they are handed
    /// out again next.  Pages that are not the last ones taken stay where
    /// they are, reclaimed with their batch.
    pub fn untake(&mut self, pa: Pa, n: u64) {
        if let Some(b) = self.batches.as_mut_slice().iter_mut().find(|b| {
            b.used >= n && Pa(b.base).add_pages(b.used - n) == pa
        }) {
            b.used -= n;
            count::take_or_note(&mut self.stats.handed_out, n, &mut self.stats.anomalies);
        }
    }

    /// After the TVM is destroyed (every page unassigned): reclaims each
    /// batch with one call and frees its pages; a batch the TSM will not
    /// reclaim is leaked, counted.
    pub fn reclaim_all<T: Tsm, A: PageAlloc>(&mut self, tsm: &mut T, alloc: &mut A) {
        for b in self.batches.as_mut_slice().iter_mut() {
            if b.leaked {
                continue;
            }
            // A reclaim can fail transiently (another CPU's fence in
            // flight): try a few times before giving the batch up.
            let mut res = tsm.reclaim_pages(Pa(b.base), b.count);
            for _ in 0..2 {
                if res.is_ok() {
                    break;
                }
                res = tsm.reclaim_pages(Pa(b.base), b.count);
            }
            match res {
                Ok(()) => {
                    for i in 0..b.count {
                        if let Some(p) = Plain::from_host_page(Pa(b.base).add_pages(i)) {
                            alloc.free(p);
                        }
                    }
                }
                Err(_) => {
                    b.leaked = true;
                    count::add(&mut self.stats.leaked, b.count);
                }
            }
            count::take_or_note(
                &mut self.stats.converted,
                b.count,
                &mut self.stats.anomalies,
            );
        }
        self.batches.clear();
        self.stats.handed_out = 0;
    }
}
