// SPDX-License-Identifier: GPL-2.0

//! TVM lifecycle over the COVH calls.
//!
//! [`Tvm`] owns a TVM's confidential pages through its [`Pool`]: the
//! G-stage root, TVM and vCPU state, page-table pages, measured and zero
//! pages all come from it, and all go back with one reclaim per batch
//! after `DESTROY_TVM`.  Nothing converted ever reaches the allocator.

use crate::abi::{Gpa, Pa, PageType, SbiError, TsmInfo, TvmCreateParams, PAGE_SIZE};
use crate::cvm_fw::errno;
use crate::logic::aia;
use crate::logic::exit::{self, Exit, NaclShmem};
use crate::logic::pool::{BatchTable, DefaultTable, PageAlloc, Pool, PoolError, PoolStats};
use crate::logic::tsm::{Gid, Tsm};

/// Pages of the confidential G-stage root (16 KiB).
pub const PGD_PAGES: u64 = 4;
/// Most confidential memory regions per TVM.
pub const MAX_REGIONS: usize = 8;
/// Pages per 2 MiB block.
pub const BLOCK_PAGES: u64 = 512;
/// Most disjoint shared ranges per TVM (COVG `SHARE_MEMORY`).
pub const MAX_SHARED: usize = 16;
/// Most 2 MiB blocks with 4 KiB mappings tracked; past that, faults map
/// 4 KiB pages only.
pub const MAX_SMALL_BLOCKS: usize = 128;
/// Blocked runs [`Tvm::remove_range`] collects before one fence.
pub const MAX_BLOCKED_RUNS: usize = 16;
/// Zero-page mappings remembered for racing faults (at least one per
/// vCPU that can fault at once).
pub const RECENT_MAPS: usize = 64;

/// Why [`Tvm::map_zero`] mapped nothing although it succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// The page is mapped now.
    Now,
    /// The host mapped it moments ago (another vCPU's fault): no TSM call.
    Already,
}

/// Why a TVM operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TvmError {
    /// The TSM refused the call.
    Tsm(SbiError),
    /// Out of host memory.
    NoMemory,
    /// Bad argument from the VMM.
    Invalid,
    /// Not allowed in the TVM's state.
    State,
    /// The TSM is missing or not ready.
    NoTsm,
    /// The TSM failed a vCPU's run, or a call made while handling its
    /// exit: `KVM_RUN` returns `EFAULT`, as the CoVE RFC's host did.
    Run(SbiError),
    /// Interrupted by a signal; the VMM may retry.
    Interrupted,
    /// This CPU has no NACL shared memory with the TSM.
    NoDevice,
    /// A kernel service (page pinning, user page lookup) failed with this
    /// errno (positive); it reaches userspace unchanged.
    Kernel(i32),
}

impl TvmError {
    /// The errno for userspace: the one place a TVM failure becomes one
    /// (the kernel shims negate it for C).
    pub const fn errno(self) -> i32 {
        match self {
            TvmError::Tsm(e) => e.errno(),
            TvmError::NoMemory => errno::ENOMEM,
            TvmError::Invalid => errno::EINVAL,
            TvmError::State | TvmError::NoTsm => errno::EPERM,
            TvmError::Run(_) => errno::EFAULT,
            TvmError::Interrupted => errno::EINTR,
            TvmError::NoDevice => errno::ENODEV,
            TvmError::Kernel(e) => e,
        }
    }

    /// The same failure, seen while running a vCPU: a TSM refusal there
    /// is [`TvmError::Run`].
    pub const fn in_run(self) -> TvmError {
        match self {
            TvmError::Tsm(e) => TvmError::Run(e),
            e => e,
        }
    }
}

impl From<PoolError> for TvmError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::NoMemory => TvmError::NoMemory,
            PoolError::Tsm(e) => TvmError::Tsm(e),
        }
    }
}

impl From<SbiError> for TvmError {
    fn from(e: SbiError) -> Self {
        TvmError::Tsm(e)
    }
}

/// Result of TVM operations.
pub type Result<T = ()> = core::result::Result<T, TvmError>;

/// Lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TvmState {
    /// Created; regions, measured pages and vCPUs may be added.
    Initializing,
    /// Finalized; vCPUs run, faults add zero pages.
    Runnable,
    /// Destroyed.
    Destroyed,
}

/// Counters of a TVM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TvmStats {
    /// Measured pages added.
    pub measured_pages: u64,
    /// Zero pages added (4 KiB units; blocks count 512).
    pub zero_pages: u64,
    /// Shared pages mapped.
    pub shared_pages: u64,
    /// Page-table pages given to the TSM.
    pub pgt_pages: u64,
    /// vCPUs created.
    pub vcpus: u64,
    /// Interrupts the TSM delivered (COVI `INJECT`).
    pub injected: u64,
    /// Injections the TSM refused: the TVM had not allowed the ID.
    pub denied: u64,
    /// Injections where the TSM and the host's copy of the TVM's allow
    /// list disagreed (a host bug, or a TSM one).
    pub allow_mismatch: u64,
    /// First binds of a vCPU to a guest interrupt file.
    pub binds: u64,
    /// Rebinds after a vCPU moved to another CPU.
    pub rebinds: u64,
    /// vCPUs unbound to free a CPU's file for another vCPU of the TVM.
    pub unbinds: u64,
}

/// Checks the TSM's report and returns it if TVMs can run.
pub fn check_tsm<T: Tsm>(tsm: &mut T) -> Result<TsmInfo> {
    match crate::logic::tsm::probe(true, true, tsm) {
        crate::logic::tsm::TsmProbe::Ready(info) => Ok(info),
        _ => Err(TvmError::NoTsm),
    }
}

/// `struct kvm_riscv_cove_measure_region`, the argument of
/// `KVM_RISCV_COVE_MEASURE_REGION`: `u64 userspace_addr; u64 gpa; u64
/// size;`, checked: page aligned, non-empty, not wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasureRegion {
    /// The VMM's copy.
    pub uaddr: u64,
    /// Where it goes in the TVM.
    pub gpa: u64,
    /// Bytes.
    pub size: u64,
}

impl MeasureRegion {
    /// Size of the uAPI structure.
    pub const SIZE: usize = 24;

    /// Decodes and checks the structure (`EINVAL`).
    pub fn parse(b: &[u8; Self::SIZE]) -> Result<MeasureRegion> {
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[8 * i..8 * i + 8]);
            u64::from_le_bytes(x)
        };
        let r = MeasureRegion {
            uaddr: w(0),
            gpa: w(1),
            size: w(2),
        };
        let aligned = |v: u64| v % PAGE_SIZE == 0;
        if !aligned(r.uaddr)
            || !aligned(r.gpa)
            || !aligned(r.size)
            || r.size == 0
            || r.uaddr.checked_add(r.size).is_none()
            || r.gpa.checked_add(r.size).is_none()
        {
            return Err(TvmError::Invalid);
        }
        Ok(r)
    }
}

/// Page-table pages the TSM needs to map `len` bytes at `gpa` with 4 KiB
/// pages in Sv48x4: one leaf table per 2 MiB, one per 1 GiB above it, one
/// per 512 GiB.
pub const fn pgt_pages_for(gpa: u64, len: u64) -> u64 {
    const fn span(gpa: u64, len: u64, shift: u32) -> u64 {
        ((gpa + len - 1) >> shift) - (gpa >> shift) + 1
    }
    span(gpa, len, 21) + span(gpa, len, 30) + span(gpa, len, 39)
}

/// A TVM's confidential regions, copied ([`Tvm::regions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regions {
    r: [(u64, u64); MAX_REGIONS],
    n: usize,
}

impl Regions {
    /// Whether `g` lies in a confidential region.
    pub fn contains(&self, g: Gpa) -> bool {
        self.r[..self.n.min(MAX_REGIONS)]
            .iter()
            .any(|&(b, l)| g.0 >= b && g.0 - b < l)
    }

    /// Decodes exit `r` against these regions.
    pub fn decode(&self, r: crate::abi::RunExit, nacl: &dyn NaclShmem) -> Exit {
        exit::decode(r, nacl, &|g| self.contains(g))
    }
}

/// One TVM; `B` holds its pool's batches.
#[derive(Debug)]
pub struct Tvm<B: BatchTable = DefaultTable> {
    gid: Gid,
    state: TvmState,
    pool: Pool<B>,
    info: TsmInfo,
    regions: [(u64, u64); MAX_REGIONS],
    nregions: usize,
    /// Ranges of the regions the TVM shared with the host.
    shared: [(u64, u64); MAX_SHARED],
    nshared: usize,
    /// 2 MiB blocks (GPA >> 21) holding a 4 KiB mapping: never mapped
    /// whole.  `nsmall > MAX_SMALL_BLOCKS` means the table overflowed.
    small: [u64; MAX_SMALL_BLOCKS],
    nsmall: usize,
    /// The last zero-page mappings: a page GPA, or a 2 MiB block's GPA
    /// with bit 0 set; 0 is free.  A ring, `next_recent` the next slot.
    recent: [u64; RECENT_MAPS],
    next_recent: usize,
    /// Whether faults may map whole 2 MiB zero blocks (off by default).
    zero_blocks: bool,
    /// Whether the TVM has an IMSIC per vCPU (COVI `TVM_AIA_INIT` done).
    aia: bool,
    stats: TvmStats,
}

impl Tvm {
    /// Converts the root and state pages and creates the TVM.
    /// `batch_pages` is the pool's conversion batch (512 = 2 MiB).
    pub fn create<T: Tsm, A: PageAlloc>(
        tsm: &mut T,
        alloc: &mut A,
        info: &TsmInfo,
        batch_pages: u64,
    ) -> core::result::Result<Tvm, (TvmError, PoolStats)> {
        Tvm::create_with_pool(tsm, alloc, info, Pool::new(batch_pages.max(PGD_PAGES)))
    }
}

impl<B: BatchTable> Tvm<B> {
    /// As [`Tvm::create`], with a caller-built pool.
    pub fn create_with_pool<T: Tsm, A: PageAlloc>(
        tsm: &mut T,
        alloc: &mut A,
        info: &TsmInfo,
        mut pool: Pool<B>,
    ) -> core::result::Result<Tvm<B>, (TvmError, PoolStats)> {
        let r = (|| -> Result<Gid> {
            let pgd = pool.take(tsm, alloc, PGD_PAGES)?;
            if pgd.0 % (PGD_PAGES * PAGE_SIZE) != 0 {
                return Err(TvmError::NoMemory);
            }
            let state = pool.take(tsm, alloc, info.tvm_pages_needed.max(1))?;
            let params = TvmCreateParams {
                tvm_page_directory_addr: pgd.0,
                tvm_state_addr: state.0,
            };
            Ok(tsm.create_tvm(&params)?)
        })();
        match r {
            Ok(gid) => Ok(Tvm {
                gid,
                state: TvmState::Initializing,
                pool,
                info: *info,
                regions: [(0, 0); MAX_REGIONS],
                nregions: 0,
                shared: [(0, 0); MAX_SHARED],
                nshared: 0,
                small: [0; MAX_SMALL_BLOCKS],
                nsmall: 0,
                recent: [0; RECENT_MAPS],
                next_recent: 0,
                zero_blocks: false,
                aia: false,
                stats: TvmStats::default(),
            }),
            Err(e) => {
                pool.reclaim_all(tsm, alloc);
                Err((e, pool.stats()))
            }
        }
    }

    /// The guest ID.
    pub fn gid(&self) -> Gid {
        self.gid
    }

    /// Lifecycle state.
    pub fn state(&self) -> TvmState {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> TvmStats {
        self.stats
    }

    /// The pool's counters (conversions, fences, leaks).
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Lets faults map whole 2 MiB zero blocks ([`Tvm::zero_blocks`]).
    ///
    /// Off by default: once a TVM shares part of a 2 MiB block that is one
    /// mapping, Salus can neither block that part alone (a leaf is
    /// blocked whole) nor split the mapping (`TVM_DEMOTE_PAGE` wants one
    /// memory region over the whole block, and the share has split the
    /// region), so the share could never complete.  A TSM that can split
    /// may have them.
    pub fn set_zero_blocks(&mut self, on: bool) {
        self.zero_blocks = on;
    }

    /// Whether faults may map whole 2 MiB zero blocks.
    pub fn zero_blocks(&self) -> bool {
        self.zero_blocks
    }

    /// Whether `gpa` lies in a confidential region.
    pub fn is_confidential(&self, gpa: Gpa) -> bool {
        self.regions[..self.nregions]
            .iter()
            .any(|&(b, l)| gpa.0 >= b && gpa.0 - b < l)
    }

    /// Whether confidential-region `gpa` was shared with the host.
    pub fn is_shared(&self, gpa: Gpa) -> bool {
        self.shared[..self.nshared]
            .iter()
            .any(|&(b, l)| gpa.0 >= b && gpa.0 - b < l)
    }

    /// Whether the whole range lies in one confidential region.
    fn in_one_region(&self, gpa: u64, len: u64) -> bool {
        len != 0
            && gpa.checked_add(len).is_some()
            && self.regions[..self.nregions]
                .iter()
                .any(|&(b, l)| gpa >= b && gpa + len <= b + l)
    }

    /// Records a 4 KiB mapping at `gpa`: its 2 MiB block is never mapped
    /// whole.
    fn note_small(&mut self, gpa: Gpa) {
        let blk = gpa.0 >> 21;
        if self.nsmall > MAX_SMALL_BLOCKS || self.small[..self.nsmall].contains(&blk) {
            return;
        }
        if self.nsmall == MAX_SMALL_BLOCKS {
            self.nsmall += 1;
            return;
        }
        self.small[self.nsmall] = blk;
        self.nsmall += 1;
    }

    /// Whether the 2 MiB block of `gpa` can be mapped whole: no 4 KiB
    /// mapping was ever made in it.
    pub fn block_free(&self, gpa: Gpa) -> bool {
        self.nsmall <= MAX_SMALL_BLOCKS && !self.small[..self.nsmall].contains(&(gpa.0 >> 21))
    }

    /// Remembers a zero-page mapping at `gpa` (a whole block if `block`).
    fn note_recent(&mut self, gpa: u64, block: bool) {
        let i = self.next_recent % RECENT_MAPS;
        self.recent[i] = (gpa & !(PAGE_SIZE - 1)) | u64::from(block);
        self.next_recent = (i + 1) % RECENT_MAPS;
    }

    /// Whether the host mapped `gpa` among its last [`RECENT_MAPS`]
    /// zero-page mappings.
    fn recently_mapped(&self, gpa: Gpa) -> bool {
        let page = gpa.0 & !(PAGE_SIZE - 1);
        let block = PageType::Page2M.size();
        self.recent.iter().any(|&e| match e & 1 {
            0 => e != 0 && e == page,
            _ => (e & !1) == page & !(block - 1),
        })
    }

    /// Forgets the remembered mappings that touch `[gpa, gpa + len)`.
    fn forget_recent(&mut self, gpa: u64, len: u64) {
        let block = PageType::Page2M.size();
        for e in self.recent.iter_mut() {
            let (b, l) = match *e & 1 {
                0 => (*e, PAGE_SIZE),
                _ => (*e & !1, block),
            };
            if *e != 0 && gpa < b + l && b < gpa.saturating_add(len) {
                *e = 0;
            }
        }
    }

    fn need(&self, s: TvmState) -> Result {
        if self.state == s {
            Ok(())
        } else {
            Err(TvmError::State)
        }
    }

    /// Declares a confidential memory region (before finalize) and gives
    /// the TSM the page-table pages to map it.
    pub fn add_region<T: Tsm, A: PageAlloc>(
        &mut self,
        tsm: &mut T,
        alloc: &mut A,
        gpa: Gpa,
        len: u64,
    ) -> Result {
        self.need(TvmState::Initializing)?;
        if gpa.0 % PAGE_SIZE != 0
            || len == 0
            || len % PAGE_SIZE != 0
            || gpa.0.checked_add(len).is_none()
        {
            return Err(TvmError::Invalid);
        }
        if self.nregions == MAX_REGIONS
            || self.regions[..self.nregions]
                .iter()
                .any(|&(b, l)| gpa.0 < b + l && b < gpa.0 + len)
        {
            return Err(TvmError::Invalid);
        }
        if self.aia {
            let (base, l) = self.imsic_range();
            if gpa.0 < base + l && base < gpa.0 + len {
                return Err(TvmError::Invalid);
            }
        }
        tsm.add_memory_region(self.gid, gpa, len)?;
        self.regions[self.nregions] = (gpa.0, len);
        self.nregions += 1;
        self.add_pgt_for(tsm, alloc, gpa.0, len)
    }

    /// `KVM_RISCV_COVE_MEASURE_REGION` for one page: copies `src` (a VMM
    /// page) into a fresh confidential page at `gpa` and measures it.
    pub fn measure_page<T: Tsm, A: PageAlloc>(
        &mut self,
        tsm: &mut T,
        alloc: &mut A,
        gpa: Gpa,
        src: Pa,
    ) -> Result {
        self.need(TvmState::Initializing)?;
        if gpa.0 % PAGE_SIZE != 0 || !src.is_aligned() || !self.is_confidential(gpa) {
            return Err(TvmError::Invalid);
        }
        let dst = self.pool.take(tsm, alloc, 1)?;
        tsm.add_measured_pages(self.gid, src, dst, PageType::Page4K, 1, gpa)?;
        self.note_small(gpa);
        self.stats.measured_pages += 1;
        Ok(())
    }

    /// Creates vCPU `id` with its state pages (before finalize).
    pub fn create_vcpu<T: Tsm, A: PageAlloc>(
        &mut self,
        tsm: &mut T,
        alloc: &mut A,
        id: u64,
    ) -> Result {
        self.need(TvmState::Initializing)?;
        if id >= self.info.tvm_max_vcpus {
            return Err(TvmError::Invalid);
        }
        let state = self
            .pool
            .take(tsm, alloc, self.info.tvcpu_pages_needed.max(1))?;
        tsm.create_vcpu(self.gid, id, state)?;
        self.stats.vcpus += 1;
        if self.aia {
            // Before finalize, every vCPU of a TVM with an IMSIC needs
            // its interrupt file's address, or finalize fails.
            tsm.set_imsic_addr(self.gid, id, aia::imsic_gpa(id))?;
        }
        Ok(())
    }

    /// Gives the TVM an IMSIC per vCPU (COVI `TVM_AIA_INIT`, laid out as
    /// [`aia::params`]); before any vCPU exists.
    ///
    /// The TSM maps the vCPUs' interrupt files in the TVM's G-stage, so
    /// the page-table pages for their range go with it, as for a region;
    /// no region may overlap that range afterwards.
    pub fn init_aia<T: Tsm, A: PageAlloc>(&mut self, tsm: &mut T, alloc: &mut A) -> Result {
        self.need(TvmState::Initializing)?;
        if self.aia || self.stats.vcpus != 0 {
            return Err(TvmError::State);
        }
        let (base, len) = self.imsic_range();
        if self.regions[..self.nregions]
            .iter()
            .any(|&(b, l)| base < b + l && b < base + len)
        {
            return Err(TvmError::Invalid);
        }
        tsm.aia_init(self.gid, &aia::params(self.info.tvm_max_vcpus))?;
        self.aia = true;
        self.add_pgt_for(tsm, alloc, base, len)
    }

    /// The GPA range of the vCPUs' interrupt files.
    fn imsic_range(&self) -> (u64, u64) {
        (aia::IMSIC_BASE, self.info.tvm_max_vcpus.max(1) * PAGE_SIZE)
    }

    /// Gives the TSM the page-table pages to map `[gpa, gpa + len)`.
    fn add_pgt_for<T: Tsm, A: PageAlloc>(&mut self, tsm: &mut T, alloc: &mut A, gpa: u64, len: u64) -> Result {
        let mut pages = pgt_pages_for(gpa, len);
        while pages > 0 {
            let n = pages.min(BLOCK_PAGES);
            let pa = self.pool.take(tsm, alloc, n)?;
            tsm.add_pgt_pages(self.gid, pa, n)?;
            self.stats.pgt_pages += n;
            pages -= n;
        }
        Ok(())
    }

    /// Whether the TVM's vCPUs have IMSICs.
    pub fn aia(&self) -> bool {
        self.aia
    }

    /// The TSM's vCPU limit for this TVM.
    pub fn max_vcpus(&self) -> u64 {
        self.info.tvm_max_vcpus
    }

    /// Counters, for the interrupt paths to update.
    pub fn stats_mut(&mut self) -> &mut TvmStats {
        &mut self.stats
    }

    /// `FINALIZE_TVM`: the TVM starts at `entry` with `arg` in a1.
    pub fn finalize<T: Tsm>(&mut self, tsm: &mut T, entry: u64, arg: u64) -> Result {
        self.need(TvmState::Initializing)?;
        if self.stats.vcpus == 0 {
            return Err(TvmError::State);
        }
        tsm.finalize_tvm(self.gid, entry, arg)?;
        self.state = TvmState::Runnable;
        Ok(())
    }

    /// Maps a zeroed confidential page at faulting `gpa`; a whole 2 MiB
    /// block at once when `block`, [`Tvm::zero_blocks`] and the block lies
    /// in one region.
    ///
    /// A page the host mapped moments ago is [`Mapped::Already`], without
    /// a TSM call: several vCPUs can fault on one page before the first
    /// fault is served, and a TSM need not say "mapped" distinctly (Salus
    /// answers every paging failure with `SBI_ERR_INVALID_ADDRESS`).
    pub fn map_zero<T: Tsm, A: PageAlloc>(
        &mut self,
        tsm: &mut T,
        alloc: &mut A,
        gpa: Gpa,
        block: bool,
    ) -> Result<Mapped> {
        self.need(TvmState::Runnable)?;
        if !self.is_confidential(gpa) {
            return Err(TvmError::Invalid);
        }
        if self.recently_mapped(gpa) {
            return Ok(Mapped::Already);
        }
        let base = gpa.0 & !(PageType::Page2M.size() - 1);
        if block
            && self.zero_blocks
            && self.block_free(Gpa(base))
            && self.is_confidential(Gpa(base))
            && self.is_confidential(Gpa(base + PageType::Page2M.size() - 1))
        {
            let pa = self.pool.take(tsm, alloc, BLOCK_PAGES)?;
            if pa.0 % PageType::Page2M.size() == 0 {
                if let Err(e) = tsm.add_zero_pages(self.gid, pa, PageType::Page2M, 1, Gpa(base)) {
                    self.pool.untake(pa, BLOCK_PAGES);
                    return Err(e.into());
                }
                self.stats.zero_pages += BLOCK_PAGES;
                self.note_recent(base, true);
                return Ok(Mapped::Now);
            }
            // Not a naturally aligned run: map the pages one by one.
            for i in 0..BLOCK_PAGES {
                tsm.add_zero_pages(
                    self.gid,
                    pa.add_pages(i),
                    PageType::Page4K,
                    1,
                    Gpa(base + i * PAGE_SIZE),
                )?;
                self.stats.zero_pages += 1;
            }
            self.note_small(Gpa(base));
            self.note_recent(base, true);
            return Ok(Mapped::Now);
        }
        let pa = self.pool.take(tsm, alloc, 1)?;
        if let Err(e) = tsm.add_zero_pages(
            self.gid,
            pa,
            PageType::Page4K,
            1,
            Gpa(gpa.0 & !(PAGE_SIZE - 1)),
        ) {
            self.pool.untake(pa, 1);
            return Err(e.into());
        }
        self.note_small(gpa);
        self.note_recent(gpa.0, false);
        self.stats.zero_pages += 1;
        Ok(Mapped::Now)
    }

    /// Maps VMM page `pa` at `gpa`, which the TVM shared, or which lies
    /// outside the confidential regions.
    pub fn map_shared<T: Tsm>(&mut self, tsm: &mut T, gpa: Gpa, pa: Pa) -> Result {
        self.need(TvmState::Runnable)?;
        if gpa.0 % PAGE_SIZE != 0
            || !pa.is_aligned()
            || (self.is_confidential(gpa) && !self.is_shared(gpa))
        {
            return Err(TvmError::Invalid);
        }
        tsm.add_shared_pages(self.gid, pa, PageType::Page4K, 1, gpa)?;
        self.note_small(gpa);
        self.stats.shared_pages += 1;
        Ok(())
    }

    /// Takes every mapped page out of `[gpa, gpa+len)` (the TVM shared or
    /// unshared the range): block (invalidate) what is populated, one TVM
    /// fence, remove what was blocked.  Confidential pages stay in the
    /// pool's batches until the TVM is destroyed.
    ///
    /// The host does not track which pages are populated, so it asks the
    /// TSM page by page: a TSM as strict as Salus refuses to block a range
    /// holding an unpopulated page (`SBI_ERR_INVALID_ADDRESS`, nothing
    /// blocked), and removing a range with an unpopulated page never
    /// returns in Salus (`unmap_range` loops).  A 2 MiB block inside the
    /// range is tried whole first: its leaf may be one 2 MiB mapping,
    /// which cannot be blocked 4 KiB at a time.
    pub fn remove_range<T: Tsm>(&mut self, tsm: &mut T, gpa: Gpa, len: u64) -> Result {
        self.need(TvmState::Runnable)?;
        if gpa.0 % PAGE_SIZE != 0 || len == 0 || len % PAGE_SIZE != 0 {
            return Err(TvmError::Invalid);
        }
        let end = gpa.0.checked_add(len).ok_or(TvmError::Invalid)?;
        self.forget_recent(gpa.0, len);
        let block = PageType::Page2M.size();
        // Blocked runs, merged while contiguous: (start, len).
        let mut runs: [(u64, u64); MAX_BLOCKED_RUNS] = [(0, 0); MAX_BLOCKED_RUNS];
        let mut nruns = 0;
        let mut blocked = 0u64;
        let mut g = gpa.0;
        while g < end {
            let step = if self.zero_blocks && g % block == 0 && end - g >= block {
                match tsm.invalidate_pages(self.gid, Gpa(g), block) {
                    Ok(()) => Some(block),
                    Err(SbiError::InvalidAddress) => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            let (done, n) = match step {
                Some(n) => (true, n),
                None => match tsm.invalidate_pages(self.gid, Gpa(g), PAGE_SIZE) {
                    Ok(()) => (true, PAGE_SIZE),
                    // Unpopulated.
                    Err(SbiError::InvalidAddress) => (false, PAGE_SIZE),
                    Err(e) => return Err(e.into()),
                },
            };
            if done {
                blocked += n;
                match runs[..nruns].last_mut() {
                    Some(r) if r.0 + r.1 == g => r.1 += n,
                    _ if nruns < MAX_BLOCKED_RUNS => {
                        runs[nruns] = (g, n);
                        nruns += 1;
                    }
                    _ => {
                        // Out of slots: finish what is blocked, go on.
                        self.fence_and_remove(tsm, &runs[..nruns])?;
                        runs[0] = (g, n);
                        nruns = 1;
                    }
                }
            }
            g += n;
        }
        if blocked != 0 {
            self.fence_and_remove(tsm, &runs[..nruns])?;
        }
        Ok(())
    }

    /// One TVM fence, then `TVM_REMOVE_PAGES` on each blocked run.
    fn fence_and_remove<T: Tsm>(&mut self, tsm: &mut T, runs: &[(u64, u64)]) -> Result {
        tsm.tvm_fence(self.gid)?;
        for &(b, l) in runs {
            tsm.remove_pages(self.gid, Gpa(b), l)?;
        }
        Ok(())
    }

    /// COVG `SHARE_MEMORY`: the TVM gives `[gpa, gpa+len)` of one
    /// confidential region to the host.  Its confidential pages are taken
    /// out (they stay in the pool until teardown) and later faults there
    /// map VMM pages.
    pub fn share<T: Tsm>(&mut self, tsm: &mut T, gpa: Gpa, len: u64) -> Result {
        self.need(TvmState::Runnable)?;
        if gpa.0 % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 || !self.in_one_region(gpa.0, len) {
            return Err(TvmError::Invalid);
        }
        if self.shared[..self.nshared]
            .iter()
            .any(|&(b, l)| gpa.0 < b + l && b < gpa.0 + len)
        {
            return Err(TvmError::Invalid);
        }
        if self.nshared == MAX_SHARED {
            return Err(TvmError::NoMemory);
        }
        self.remove_range(tsm, gpa, len)?;
        self.shared[self.nshared] = (gpa.0, len);
        self.nshared += 1;
        Ok(())
    }

    /// COVG `UNSHARE_MEMORY`: the TVM takes `[gpa, gpa+len)` back.  The
    /// VMM pages mapped there are taken out; the caller unpins them once
    /// this returned `Ok`.  Later faults map zero pages again.
    pub fn unshare<T: Tsm>(&mut self, tsm: &mut T, gpa: Gpa, len: u64) -> Result {
        self.need(TvmState::Runnable)?;
        if gpa.0 % PAGE_SIZE != 0 || len == 0 || len % PAGE_SIZE != 0 {
            return Err(TvmError::Invalid);
        }
        let Some(i) = self.shared[..self.nshared]
            .iter()
            .position(|&(b, l)| gpa.0 >= b && gpa.0.checked_add(len).is_some_and(|e| e <= b + l))
        else {
            return Err(TvmError::Invalid);
        };
        let (b, l) = self.shared[i];
        let (left, right) = ((b, gpa.0 - b), (gpa.0 + len, b + l - gpa.0 - len));
        if left.1 != 0 && right.1 != 0 && self.nshared == MAX_SHARED {
            return Err(TvmError::NoMemory);
        }
        self.remove_range(tsm, gpa, len)?;
        // Drop entry `i` (so `nshared` > 0), then put back what is left.
        self.nshared = self.nshared.saturating_sub(1);
        self.shared[i] = self.shared[self.nshared];
        for piece in [left, right] {
            if piece.1 != 0 {
                self.shared[self.nshared] = piece;
                self.nshared += 1;
            }
        }
        Ok(())
    }

    /// Runs vCPU `id` once and decodes why it stopped.
    pub fn run<T: Tsm>(&mut self, tsm: &mut T, id: u64, nacl: &dyn NaclShmem) -> Result<Exit> {
        self.need(TvmState::Runnable)?;
        let r = tsm.vcpu_run(self.gid, id)?;
        Ok(self.regions().decode(r, nacl))
    }

    /// A copy of the confidential regions, to decode an exit of a run made
    /// without the TVM at hand (`Runnable`: they no longer change).
    pub fn regions(&self) -> Regions {
        Regions {
            r: self.regions,
            n: self.nregions,
        }
    }

    /// `DESTROY_TVM`, then reclaims and frees every confidential page.
    /// On a TSM error the TVM stays and may be destroyed again.
    pub fn destroy<T: Tsm, A: PageAlloc>(&mut self, tsm: &mut T, alloc: &mut A) -> Result {
        if self.state == TvmState::Destroyed {
            return Err(TvmError::State);
        }
        tsm.destroy_tvm(self.gid)?;
        self.state = TvmState::Destroyed;
        self.pool.reclaim_all(tsm, alloc);
        Ok(())
    }
}
