// SPDX-License-Identifier: GPL-2.0

//! An executable model of a CoVE TSM (COVH, RFC numbering), and a host
//! page allocator that flags converted pages given back to it.
//! Host-only (std).
//!
//! Pages are non-confidential, converted-pending-fence, converted, or
//! assigned to a TVM; TVMs are initializing, runnable or gone.  The model
//! checks the conditions the host must meet (16 KiB-aligned root, enough
//! page-table pages, pages converted and fenced before use, invalidate +
//! TVM fence before remove) and counts calls and global fences.
//!
//! Where Salus (the TSM our kernel runs on) is stricter than the CoVE
//! RFC, the model is as strict as Salus:
//! - a TVM exit's `scause` and `stval` come back in the host's own CSRs
//!   ([`RunExit`]), never in the NACL area;
//! - a guest access outside its confidential regions and the MMIO regions
//!   it registered (COVG `ADD_MMIO_REGION`, which the TSM serves, then
//!   reports in an exit whose answer it ignores) powers the vCPU off with
//!   the fault's `scause`;
//! - an unknown COVG function is refused to the guest without an exit;
//! - blocking (invalidating) a range with an unpopulated page blocks
//!   nothing (`SBI_ERR_INVALID_ADDRESS`), a 2 MiB leaf is blocked whole or
//!   not at all, and removing a range with an unpopulated page is counted
//!   in `would_hang` (Salus never returns from it);
//! - a vCPU that asked to share a range runs again only once the host
//!   took every confidential page out of it (`SBI_ERR_INVALID_ADDRESS`
//!   until then);
//! - mapping a GPA twice is `SBI_ERR_INVALID_ADDRESS`;
//! - SRST, HSM `HART_STOP` and every unhandled trap power the vCPU off
//!   (`TVM_VCPU_RUN` returns 1), and running a vCPU that is off is
//!   `SBI_ERR_INVALID_PARAM`; vCPUs other than 0 are off until the TVM
//!   starts them (HSM `HART_START`, served by the TSM, then reported to
//!   the host with the start address and opaque value masked).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use crate::abi::{
    nacl, Gpa, Pa, PageType, RunExit, SbiError, SbiResult, TsmInfo, TsmState, TvmCreateParams,
    PAGE_SIZE,
};
use crate::abi::{Covg, Covh, CoviCounts, TvmAiaParams};
use super::covi::{HostImsic, TvmIrq};
use crate::cvm_fw::testing::XorShift;
use crate::logic::exit::{NaclBuf, NaclShmem};
use crate::logic::pool::{PageAlloc, Plain};
use crate::logic::tsm::{CallCounts, Gid, Tsm};

/// Page states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Normal host memory.
    NonConfidential,
    /// Converted; usable after the next global fence.
    PendingFence,
    /// Confidential and unassigned (usable, or reclaimable).
    Converted,
    /// Used by TVM `gid`.
    Assigned(Gid),
}

/// TVM states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelTvmState {
    /// Before finalize.
    Initializing,
    /// After finalize.
    Runnable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mapping {
    Confidential(u64),
    Shared(u64),
    /// A confidential page invalidated; `true` once a TVM fence followed.
    Invalidated(u64, bool),
    /// A shared page invalidated; `true` once a TVM fence followed.
    SharedInvalidated(u64, bool),
}

struct TvmM {
    state: ModelTvmState,
    regions: Vec<(u64, u64)>,
    pgt_avail: u64,
    tables: HashSet<(u32, u64)>,
    mapped: BTreeMap<u64, Mapping>,
    vcpus: HashSet<u64>,
    /// The vCPUs the TSM runs (0 from finalize; others once started).
    on: HashSet<u64>,
    /// MMIO regions the TVM registered (COVG `ADD_MMIO_REGION`).
    mmio: Vec<(u64, u64)>,
    /// 2 MiB blocks mapped as one leaf: blocked and removed whole only.
    leaves2m: HashSet<u64>,
    /// Shares (vCPU, GPA, length) the host has not completed: the range
    /// must hold no confidential mapping when that vCPU runs again.
    pending_share: Vec<(u64, u64, u64)>,
    fenced: bool,
    /// Ranges of the regions the TVM shared (COVG `SHARE_MEMORY` exits).
    shared: Vec<(u64, u64)>,
    /// COVI state.
    irq: TvmIrq,
}

/// An exit the model reports from `TVM_VCPU_RUN`.
#[derive(Clone, Debug, Default)]
pub struct ScriptedExit {
    /// Return value (0 = resumable).
    pub ret: u64,
    /// scause.
    pub scause: u64,
    /// stval.
    pub stval: u64,
    /// htval.
    pub htval: u64,
    /// htinst.
    pub htinst: u64,
    /// GPRs to set (index, value).
    pub gprs: Vec<(usize, u64)>,
}

/// The TSM model.
pub struct TsmModel {
    pages: HashMap<u64, PageState>,
    mem_base: u64,
    mem_end: u64,
    tvms: HashMap<Gid, TvmM>,
    next_gid: Gid,
    fence_initiated: bool,
    /// What `TSM_GET_INFO` reports.
    pub info: TsmInfo,
    /// The `TsmInfo` size the TSM insists on: larger than ours (32) plays
    /// a TSM of another ABI version, which refuses our buffer with
    /// `SBI_ERR_INVALID_PARAM` (ACE wants 48).
    pub info_len_wanted: u64,
    /// Calls per function.
    pub counts: CallCounts,
    /// Exits `TVM_VCPU_RUN` reports.
    pub exits: VecDeque<ScriptedExit>,
    /// The NACL shared memory.
    pub nacl: NaclBuf,
    /// x0..x31 in the NACL scratch area at the last `TVM_VCPU_RUN`: what
    /// the host answered.
    pub entry_gprs: [u64; 32],
    /// Fail calls with this probability (per million).
    pub inject_ppm: u32,
    /// Calls failed by injection.
    pub injected: u64,
    /// `TVM_REMOVE_PAGES` calls over a range holding an unpopulated page:
    /// Salus never returns from those (its `unmap_range` loops), so each
    /// is a host bug the tests must see.
    pub would_hang: u64,
    /// COVI calls per function.
    pub covi_counts: CoviCounts,
    /// The host's IMSIC (`None`: no COVI guest files to convert).
    pub host_imsic: Option<HostImsic>,
    /// The CPU the host calls from (tests move it to model migration).
    pub cpu: u32,
    /// Interrupt IDs of the IMSIC: guests may allow `1..imsic_ids`.
    pub imsic_ids: u64,
    /// State of the host guest files the host converted (by PA).
    pub(super) imsic: HashMap<u64, PageState>,
    rng: XorShift,
}

fn inval<T>() -> SbiResult<T> {
    Err(SbiError::InvalidParam)
}

impl TsmModel {
    /// A TSM over host memory `[base, base + size)`.
    pub fn new(base: u64, size: u64) -> TsmModel {
        TsmModel {
            pages: HashMap::new(),
            mem_base: base,
            mem_end: base + size,
            tvms: HashMap::new(),
            next_gid: 1,
            fence_initiated: false,
            info: TsmInfo {
                tstate: TsmState::Ready as u32,
                version: 1,
                tvm_pages_needed: 4,
                tvm_max_vcpus: 8,
                tvcpu_pages_needed: 2,
            },
            info_len_wanted: 32,
            counts: CallCounts::default(),
            exits: VecDeque::new(),
            nacl: NaclBuf::default(),
            entry_gprs: [0; 32],
            inject_ppm: 0,
            injected: 0,
            would_hang: 0,
            covi_counts: CoviCounts::default(),
            host_imsic: Some(HostImsic {
                base: 0x2800_0000,
                stride: 8 * PAGE_SIZE,
                files: 4,
                cpus: 2,
            }),
            cpu: 0,
            imsic_ids: 256,
            imsic: HashMap::new(),
            rng: XorShift::new(0x2545_f491_4f6c_dd1d),
        }
    }

    /// Seeds fault injection.
    pub fn seed(&mut self, s: u64) {
        self.rng = XorShift::new(s);
    }

    /// State of the page at `pa`.
    pub fn page(&self, pa: Pa) -> PageState {
        self.pages
            .get(&pa.0)
            .copied()
            .unwrap_or(PageState::NonConfidential)
    }

    /// Pages not non-confidential.
    pub fn confidential_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Number of TVMs.
    pub fn tvm_count(&self) -> usize {
        self.tvms.len()
    }

    /// The mapping at `gpa` of TVM `gid`: `Some(true)` confidential,
    /// `Some(false)` shared.
    pub fn mapped(&self, gid: Gid, gpa: u64) -> Option<bool> {
        self.tvms
            .get(&gid)?
            .mapped
            .get(&(gpa & !(PAGE_SIZE - 1)))
            .and_then(|m| match m {
                Mapping::Confidential(_) => Some(true),
                Mapping::Shared(_) => Some(false),
                Mapping::Invalidated(..) | Mapping::SharedInvalidated(..) => None,
            })
    }

    fn call(&mut self, f: Covh) -> SbiResult {
        self.counts.record(f);
        if f == Covh::TsmGetInfo {
            return Ok(());
        }
        self.maybe_fail()
    }

    /// Fails the call with probability `inject_ppm`.
    pub(super) fn maybe_fail(&mut self) -> SbiResult {
        if self.inject_ppm == 0 {
            return Ok(());
        }
        let r = self.rng.next_u64();
        if r % 1_000_000 < u64::from(self.inject_ppm) {
            self.injected += 1;
            return Err([SbiError::Failed, SbiError::Denied, SbiError::InvalidParam]
                [(r >> 32) as usize % 3]);
        }
        Ok(())
    }

    fn range_ok(&self, pa: Pa, n: u64) -> bool {
        pa.is_aligned() && n > 0 && pa.0 >= self.mem_base && pa.0 + n * PAGE_SIZE <= self.mem_end
    }

    fn all(&self, pa: Pa, n: u64, s: PageState) -> bool {
        self.range_ok(pa, n) && (0..n).all(|i| self.page(pa.add_pages(i)) == s)
    }

    fn set(&mut self, pa: Pa, n: u64, s: PageState) {
        for i in 0..n {
            let p = pa.add_pages(i).0;
            if s == PageState::NonConfidential {
                self.pages.remove(&p);
            } else {
                self.pages.insert(p, s);
            }
        }
    }

    fn tvm(&mut self, gid: Gid) -> SbiResult<&mut TvmM> {
        self.tvms.get_mut(&gid).ok_or(SbiError::InvalidParam)
    }

    pub(super) fn tvm_state(&mut self, gid: Gid) -> SbiResult<ModelTvmState> {
        Ok(self.tvm(gid)?.state)
    }

    pub(super) fn tvm_has_vcpu(&mut self, gid: Gid, id: u64) -> SbiResult<bool> {
        Ok(self.tvm(gid)?.vcpus.contains(&id))
    }

    pub(super) fn irq_of(&mut self, gid: Gid) -> SbiResult<&mut TvmIrq> {
        Ok(&mut self.tvm(gid)?.irq)
    }

    /// Takes the page-table pages mapping the 4 KiB page at `gpa` needs,
    /// as a 4 KiB mapping of a region does; `SBI_ERR_INVALID_ADDRESS`
    /// (Salus's answer to a paging failure) without enough.
    pub(super) fn map_tables(&mut self, gid: Gid, gpa: u64) -> SbiResult {
        let t = self.tvm(gid)?;
        let new: Vec<_> = [(21u32, gpa >> 21), (30, gpa >> 30), (39, gpa >> 39)]
            .into_iter()
            .filter(|k| !t.tables.contains(k))
            .collect();
        if new.len() as u64 > t.pgt_avail {
            return Err(SbiError::InvalidAddress);
        }
        t.pgt_avail -= new.len() as u64;
        t.tables.extend(new);
        Ok(())
    }

    pub(super) fn irq_ref(&self, gid: Gid) -> Option<&TvmIrq> {
        self.tvms.get(&gid).map(|t| &t.irq)
    }

    /// Maps `npages` of type `ty` at `gpa` to `pa` after the checks common
    /// to measured and zero pages.
    fn map_conf(
        &mut self,
        gid: Gid,
        pa: Pa,
        ty: PageType,
        npages: u64,
        gpa: Gpa,
        want: ModelTvmState,
    ) -> SbiResult {
        let pages_per = ty.size() / PAGE_SIZE;
        let total = npages * pages_per;
        if ty == PageType::Page512G || gpa.0 % ty.size() != 0 || pa.0 % ty.size() != 0 {
            return inval();
        }
        if !self.all(pa, total, PageState::Converted) {
            return Err(SbiError::InvalidAddress);
        }
        let t = self.tvm(gid)?;
        if t.state != want {
            return Err(SbiError::Denied);
        }
        let end = gpa.0 + total * PAGE_SIZE;
        if !t.regions.iter().any(|&(b, l)| gpa.0 >= b && end <= b + l) {
            return inval();
        }
        if t.mapped.range(gpa.0..end).next().is_some() {
            // Salus: every paging failure, a mapping that exists among them.
            return Err(SbiError::InvalidAddress);
        }
        if t.shared.iter().any(|&(b, l)| gpa.0 < b + l && b < end) {
            // Shared by the TVM: only VMM pages go there.
            return Err(SbiError::Denied);
        }
        // Page-table pages: a leaf table per 2 MiB (none for 2 MiB blocks),
        // one per 1 GiB and per 512 GiB.
        let mut need = HashSet::new();
        let mut g = gpa.0;
        while g < end {
            if ty == PageType::Page4K {
                need.insert((21u32, g >> 21));
            }
            need.insert((30, g >> 30));
            need.insert((39, g >> 39));
            g += ty.size();
        }
        let new: Vec<_> = need.into_iter().filter(|k| !t.tables.contains(k)).collect();
        if new.len() as u64 > t.pgt_avail {
            return Err(SbiError::Failed);
        }
        t.pgt_avail -= new.len() as u64;
        t.tables.extend(new);
        for i in 0..total {
            t.mapped.insert(
                gpa.0 + i * PAGE_SIZE,
                Mapping::Confidential(pa.0 + i * PAGE_SIZE),
            );
        }
        if ty == PageType::Page2M {
            for i in 0..npages {
                t.leaves2m.insert(gpa.0 + i * ty.size());
            }
        }
        self.set(pa, total, PageState::Assigned(gid));
        Ok(())
    }
}

/// A scripted exit's guest register `i` (the last value set wins).
fn script_reg(x: &ScriptedExit, i: usize) -> u64 {
    x.gprs.iter().rev().find(|g| g.0 == i).map_or(0, |g| g.1)
}

/// Removes `[gpa, gpa + len)` from a list of ranges.
fn cut(ranges: &mut Vec<(u64, u64)>, gpa: u64, len: u64) {
    let mut rest = Vec::new();
    for &(b, l) in ranges.iter() {
        let e = b + l;
        if gpa + len <= b || e <= gpa {
            rest.push((b, l));
            continue;
        }
        if b < gpa {
            rest.push((b, gpa - b));
        }
        if gpa + len < e {
            rest.push((gpa + len, e - gpa - len));
        }
    }
    *ranges = rest;
}

impl TsmModel {
    /// What the TSM does with the guest's next event `x` on vCPU `id`:
    /// `None` if it served it without an exit, else the exit the host
    /// sees, made as strict as Salus makes it.
    fn guest_step(&mut self, gid: Gid, id: u64, mut x: ScriptedExit) -> SbiResult<Option<ScriptedExit>> {
        use crate::logic::exit::{cause, forwarded};
        let t = self.tvm(gid)?;
        if x.ret != 0 {
            return Ok(Some(x));
        }
        let fatal = |scause: u64| ScriptedExit {
            ret: 1,
            scause,
            ..Default::default()
        };
        match x.scause {
            s if s & cause::INTERRUPT != 0 => Ok(Some(x)),
            cause::VS_ECALL => {
                let (ext, fid) = (script_reg(&x, 17), script_reg(&x, 16));
                let (a0, a1) = (script_reg(&x, 10), script_reg(&x, 11));
                if ext == crate::abi::EXT_COVG {
                    match Covg::from_fid(fid) {
                        // Served by the TSM, then reported to the host
                        // (an exit whose answer the TSM does not read).
                        Some(Covg::AddMmioRegion) => t.mmio.push((a0, a1)),
                        Some(Covg::RemoveMmioRegion) => cut(&mut t.mmio, a0, a1),
                        // The TSM marks the range before the exit; the
                        // host must empty it before the vCPU runs again.
                        Some(Covg::ShareMemory) => {
                            t.shared.push((a0, a1));
                            t.pending_share.push((id, a0, a1));
                        }
                        Some(Covg::UnshareMemory) => cut(&mut t.shared, a0, a1),
                        // Allow/deny lists: the TSM's own, reported once
                        // served; refused to the guest without an exit.
                        Some(f @ (Covg::AllowExtInterrupt | Covg::DenyExtInterrupt)) => {
                            if !self.covi_guest_allow(gid, id, a0, f == Covg::AllowExtInterrupt) {
                                return Ok(None);
                            }
                        }
                        // Refused to the guest: no exit.
                        None => return Ok(None),
                    }
                    return Ok(Some(x));
                }
                match ext {
                    forwarded::SRST => x.ret = 1,
                    forwarded::HSM if fid == forwarded::HSM_HART_STOP => x.ret = 1,
                    forwarded::HSM if fid == forwarded::HSM_HART_START => {
                        if !t.vcpus.contains(&a0) || t.on.contains(&a0) || a0 == id {
                            // Refused to the guest: no exit.
                            return Ok(None);
                        }
                        t.on.insert(a0);
                        // The start address and opaque value stay the TSM's.
                        x.gprs.push((11, 0));
                        x.gprs.push((12, 0));
                    }
                    _ => {}
                }
                Ok(Some(x))
            }
            cause::VIRTUAL_INSN => Ok(Some(x)),
            cause::LOAD_GUEST_PAGE_FAULT
            | cause::STORE_GUEST_PAGE_FAULT
            | cause::INSN_GUEST_PAGE_FAULT => {
                let gpa = (x.htval << 2) | (x.stval & 3);
                let within = |v: &[(u64, u64)]| v.iter().any(|&(b, l)| gpa >= b && gpa - b < l);
                if within(&t.regions) {
                    return Ok(Some(x));
                }
                if x.scause != cause::INSN_GUEST_PAGE_FAULT && within(&t.mmio) {
                    return Ok(Some(x));
                }
                // Neither confidential nor registered MMIO: Salus ends the
                // vCPU with the fault's cause and nothing else.
                Ok(Some(fatal(x.scause)))
            }
            s => Ok(Some(fatal(s))),
        }
    }
}

impl Tsm for TsmModel {
    fn get_info(&mut self) -> SbiResult<(TsmInfo, u64)> {
        self.call(Covh::TsmGetInfo)?;
        // CAST: the structure is 32 bytes.
        let ours = core::mem::size_of::<TsmInfo>() as u64;
        if self.info_len_wanted > ours {
            return inval();
        }
        Ok((self.info, ours))
    }

    fn convert_pages(&mut self, pa: Pa, n: u64) -> SbiResult {
        self.call(Covh::TsmConvertPages)?;
        if !self.all(pa, n, PageState::NonConfidential) {
            return Err(SbiError::InvalidAddress);
        }
        self.set(pa, n, PageState::PendingFence);
        Ok(())
    }

    fn reclaim_pages(&mut self, pa: Pa, n: u64) -> SbiResult {
        self.call(Covh::TsmReclaimPages)?;
        if !self.range_ok(pa, n) {
            return Err(SbiError::InvalidAddress);
        }
        if !(0..n).all(|i| {
            matches!(
                self.page(pa.add_pages(i)),
                PageState::Converted | PageState::PendingFence
            )
        }) {
            return Err(SbiError::Denied);
        }
        self.set(pa, n, PageState::NonConfidential);
        Ok(())
    }

    fn initiate_fence(&mut self) -> SbiResult {
        self.call(Covh::TsmInitiateFence)?;
        self.fence_initiated = true;
        Ok(())
    }

    fn local_fence(&mut self) -> SbiResult {
        self.call(Covh::TsmLocalFence)?;
        if !self.fence_initiated {
            return Err(SbiError::Denied);
        }
        self.fence_initiated = false;
        self.covi_fence();
        for s in self.pages.values_mut() {
            if *s == PageState::PendingFence {
                *s = PageState::Converted;
            }
        }
        Ok(())
    }

    fn create_tvm(&mut self, p: &TvmCreateParams) -> SbiResult<Gid> {
        self.call(Covh::CreateTvm)?;
        let (pgd, state) = (Pa(p.tvm_page_directory_addr), Pa(p.tvm_state_addr));
        if pgd.0 % (4 * PAGE_SIZE) != 0 {
            return inval();
        }
        let ns = self.info.tvm_pages_needed.max(1);
        if !self.all(pgd, 4, PageState::Converted) || !self.all(state, ns, PageState::Converted) {
            return Err(SbiError::InvalidAddress);
        }
        if (state.0 < pgd.0 + 4 * PAGE_SIZE) && (pgd.0 < state.0 + ns * PAGE_SIZE) {
            return inval();
        }
        let gid = self.next_gid;
        self.next_gid += 1;
        self.set(pgd, 4, PageState::Assigned(gid));
        self.set(state, ns, PageState::Assigned(gid));
        self.tvms.insert(
            gid,
            TvmM {
                state: ModelTvmState::Initializing,
                regions: Vec::new(),
                pgt_avail: 0,
                tables: HashSet::new(),
                mapped: BTreeMap::new(),
                vcpus: HashSet::new(),
                on: HashSet::new(),
                mmio: Vec::new(),
                leaves2m: HashSet::new(),
                pending_share: Vec::new(),
                fenced: false,
                shared: Vec::new(),
                irq: TvmIrq::default(),
            },
        );
        Ok(gid)
    }

    fn finalize_tvm(&mut self, gid: Gid, _sepc: u64, _arg: u64) -> SbiResult {
        self.call(Covh::FinalizeTvm)?;
        let t = self.tvm(gid)?;
        if t.state != ModelTvmState::Initializing || t.vcpus.is_empty() {
            return Err(SbiError::Denied);
        }
        let vcpus = t.vcpus.clone();
        if !self.covi_finalize_ok(gid, &vcpus) {
            return inval();
        }
        let t = self.tvm(gid)?;
        t.state = ModelTvmState::Runnable;
        if t.vcpus.contains(&0) {
            t.on.insert(0);
        }
        Ok(())
    }

    fn destroy_tvm(&mut self, gid: Gid) -> SbiResult {
        self.call(Covh::DestroyTvm)?;
        self.tvms.get(&gid).ok_or(SbiError::InvalidParam)?;
        self.covi_destroy(gid);
        self.tvms.remove(&gid);
        for s in self.pages.values_mut() {
            if *s == PageState::Assigned(gid) {
                *s = PageState::Converted;
            }
        }
        Ok(())
    }

    fn add_memory_region(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmAddMemoryRegion)?;
        let t = self.tvm(gid)?;
        if t.state != ModelTvmState::Initializing {
            return Err(SbiError::Denied);
        }
        if gpa.0 % PAGE_SIZE != 0
            || len == 0
            || len % PAGE_SIZE != 0
            || t.regions
                .iter()
                .any(|&(b, l)| gpa.0 < b + l && b < gpa.0 + len)
        {
            return inval();
        }
        t.regions.push((gpa.0, len));
        Ok(())
    }

    fn add_pgt_pages(&mut self, gid: Gid, pa: Pa, n: u64) -> SbiResult {
        self.call(Covh::TvmAddPgtPages)?;
        if !self.all(pa, n, PageState::Converted) {
            return Err(SbiError::InvalidAddress);
        }
        self.tvm(gid)?.pgt_avail += n;
        self.set(pa, n, PageState::Assigned(gid));
        Ok(())
    }

    fn add_measured_pages(
        &mut self,
        gid: Gid,
        src: Pa,
        dst: Pa,
        ty: PageType,
        n: u64,
        gpa: Gpa,
    ) -> SbiResult {
        self.call(Covh::TvmAddMeasuredPages)?;
        let pages = n * ty.size() / PAGE_SIZE;
        if !self.all(src, pages, PageState::NonConfidential) {
            return Err(SbiError::InvalidAddress);
        }
        self.map_conf(gid, dst, ty, n, gpa, ModelTvmState::Initializing)
    }

    fn add_zero_pages(&mut self, gid: Gid, pa: Pa, ty: PageType, n: u64, gpa: Gpa) -> SbiResult {
        self.call(Covh::TvmAddZeroPages)?;
        self.map_conf(gid, pa, ty, n, gpa, ModelTvmState::Runnable)
    }

    fn add_shared_pages(&mut self, gid: Gid, pa: Pa, ty: PageType, n: u64, gpa: Gpa) -> SbiResult {
        self.call(Covh::TvmAddSharedPages)?;
        let pages = n * ty.size() / PAGE_SIZE;
        if ty != PageType::Page4K || !self.all(pa, pages, PageState::NonConfidential) {
            return Err(SbiError::InvalidAddress);
        }
        let t = self.tvm(gid)?;
        if t.state != ModelTvmState::Runnable {
            return Err(SbiError::Denied);
        }
        let in_region = t.regions.iter().any(|&(b, l)| gpa.0 >= b && gpa.0 < b + l);
        let shared = t.shared.iter().any(|&(b, l)| gpa.0 >= b && gpa.0 < b + l);
        if gpa.0 % PAGE_SIZE != 0 || (in_region && !shared) {
            return inval();
        }
        if t.mapped.contains_key(&gpa.0) {
            return Err(SbiError::InvalidAddress);
        }
        t.mapped.insert(gpa.0, Mapping::Shared(pa.0));
        Ok(())
    }

    fn create_vcpu(&mut self, gid: Gid, id: u64, state: Pa) -> SbiResult {
        self.call(Covh::TvmCreateVcpu)?;
        let n = self.info.tvcpu_pages_needed.max(1);
        if !self.all(state, n, PageState::Converted) {
            return Err(SbiError::InvalidAddress);
        }
        let max = self.info.tvm_max_vcpus;
        let t = self.tvm(gid)?;
        if t.state != ModelTvmState::Initializing {
            return Err(SbiError::Denied);
        }
        if id >= max || t.vcpus.contains(&id) {
            return inval();
        }
        t.vcpus.insert(id);
        self.set(state, n, PageState::Assigned(gid));
        Ok(())
    }

    fn vcpu_run(&mut self, gid: Gid, id: u64) -> SbiResult<RunExit> {
        self.call(Covh::TvmVcpuRun)?;
        let t = self.tvm(gid)?;
        if t.state != ModelTvmState::Runnable {
            return Err(SbiError::Denied);
        }
        if !t.vcpus.contains(&id) || !t.on.contains(&id) {
            return inval();
        }
        // Salus: a vCPU of a TVM with an IMSIC runs only where it is bound.
        if !self.covi_may_run(gid, id) {
            return inval();
        }
        let t = self.tvm(gid)?;
        // Salus completes a share only once the host emptied the range;
        // until then the vCPU does not run.
        if let Some(i) = t.pending_share.iter().position(|p| p.0 == id) {
            let (_, g, l) = t.pending_share[i];
            if t.mapped
                .range(g..g.saturating_add(l))
                .any(|(_, m)| matches!(m, Mapping::Confidential(_) | Mapping::Invalidated(..)))
            {
                return Err(SbiError::InvalidAddress);
            }
            t.pending_share.swap_remove(i);
        }
        for (i, g) in self.entry_gprs.iter_mut().enumerate() {
            *g = self.nacl.gpr(i);
        }
        // The guest runs: what it does that the TSM serves itself makes no
        // exit; the first thing that does ends the call.
        let mut x = loop {
            let x = self.exits.pop_front().unwrap_or(ScriptedExit {
                ret: 1,
                ..Default::default()
            });
            match self.guest_step(gid, id, x)? {
                Some(x) => break x,
                None => continue,
            }
        };
        if x.ret != 0 {
            self.tvm(gid)?.on.remove(&id);
        }
        // The host's scause and stval carry the exit; NACL the rest.  The
        // NACL slots of scause and stval are left as they were.
        let (old_scause, old_stval) = (
            self.nacl.csr(nacl::CSR_SCAUSE),
            self.nacl.csr(nacl::CSR_STVAL),
        );
        self.nacl = NaclBuf::default();
        self.nacl.set_csr(nacl::CSR_SCAUSE, old_scause);
        self.nacl.set_csr(nacl::CSR_STVAL, old_stval);
        self.nacl.set_csr(nacl::CSR_HTVAL, x.htval);
        self.nacl.set_csr(nacl::CSR_HTINST, x.htinst);
        for (i, v) in core::mem::take(&mut x.gprs) {
            self.nacl.set_gpr(i, v);
        }
        Ok(RunExit {
            ret: x.ret,
            scause: x.scause,
            stval: x.stval,
        })
    }

    fn tvm_fence(&mut self, gid: Gid) -> SbiResult {
        self.call(Covh::TvmInitiateFence)?;
        self.covi_tvm_fence(gid);
        let t = self.tvm(gid)?;
        t.fenced = true;
        for m in t.mapped.values_mut() {
            match *m {
                Mapping::Invalidated(pa, false) => *m = Mapping::Invalidated(pa, true),
                Mapping::SharedInvalidated(pa, false) => *m = Mapping::SharedInvalidated(pa, true),
                _ => {}
            }
        }
        Ok(())
    }

    /// Salus's `TvmBlockPages`: every page of the range must be mapped,
    /// and a 2 MiB leaf lie wholly in it; else nothing is blocked and the
    /// answer is `SBI_ERR_INVALID_ADDRESS`.
    fn invalidate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmInvalidatePages)?;
        let t = self.tvm(gid)?;
        if gpa.0 % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 {
            return inval();
        }
        let end = gpa.0.checked_add(len).ok_or(SbiError::InvalidAddress)?;
        let block = PageType::Page2M.size();
        let mut g = gpa.0;
        while g < end {
            let base = g & !(block - 1);
            if t.leaves2m.contains(&base) {
                if g != base || end - g < block {
                    return Err(SbiError::InvalidAddress);
                }
                g += block;
                continue;
            }
            match t.mapped.get(&g) {
                Some(Mapping::Confidential(_) | Mapping::Shared(_)) => g += PAGE_SIZE,
                _ => return Err(SbiError::InvalidAddress),
            }
        }
        for (_, m) in t.mapped.range_mut(gpa.0..end) {
            match *m {
                Mapping::Confidential(pa) => *m = Mapping::Invalidated(pa, false),
                Mapping::Shared(pa) => *m = Mapping::SharedInvalidated(pa, false),
                _ => {}
            }
        }
        Ok(())
    }

    fn validate_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmValidatePages)?;
        let t = self.tvm(gid)?;
        for (_, m) in t.mapped.range_mut(gpa.0..gpa.0 + len) {
            match *m {
                Mapping::Invalidated(pa, _) => *m = Mapping::Confidential(pa),
                Mapping::SharedInvalidated(pa, _) => *m = Mapping::Shared(pa),
                _ => {}
            }
        }
        Ok(())
    }

    /// Salus's `TvmRemovePages`: every page of the range blocked and
    /// fenced; an unpopulated page in it would hang Salus.
    fn remove_pages(&mut self, gid: Gid, gpa: Gpa, len: u64) -> SbiResult {
        self.call(Covh::TvmRemovePages)?;
        let t = self.tvm(gid)?;
        if gpa.0 % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 {
            return inval();
        }
        let end = gpa.0.checked_add(len).ok_or(SbiError::InvalidAddress)?;
        let mut g = gpa.0;
        while g < end {
            match t.mapped.get(&g) {
                None => {
                    self.would_hang += 1;
                    return Err(SbiError::Failed);
                }
                Some(Mapping::Invalidated(_, true) | Mapping::SharedInvalidated(_, true)) => {}
                Some(_) => return Err(SbiError::InvalidAddress),
            }
            g += PAGE_SIZE;
        }
        let mut freed = Vec::new();
        let keys: Vec<u64> = t.mapped.range(gpa.0..end).map(|(k, _)| *k).collect();
        for k in keys {
            if let Some(Mapping::Invalidated(pa, true)) = t.mapped.remove(&k) {
                freed.push(pa);
            }
            // A VMM page: unmapped, it stays the host's.
            t.leaves2m.remove(&k);
        }
        for pa in freed {
            self.set(Pa(pa), 1, PageState::Converted);
        }
        Ok(())
    }

    fn this_cpu(&self) -> u32 {
        self.cpu
    }

    fn aia_init(&mut self, gid: Gid, params: &TvmAiaParams) -> SbiResult {
        self.covi_aia_init(gid, params)
    }

    fn set_imsic_addr(&mut self, gid: Gid, vcpu_id: u64, gpa: Gpa) -> SbiResult {
        self.covi_set_imsic_addr(gid, vcpu_id, gpa)
    }

    fn convert_imsic(&mut self, pa: Pa) -> SbiResult {
        self.covi_convert(pa)
    }

    fn reclaim_imsic(&mut self, pa: Pa) -> SbiResult {
        self.covi_reclaim(pa)
    }

    fn bind_imsic(&mut self, gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult {
        self.covi_bind(gid, vcpu_id, mask)
    }

    fn rebind_begin(&mut self, gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult {
        self.covi_rebind_begin(gid, vcpu_id, mask)
    }

    fn rebind_clone(&mut self, gid: Gid, vcpu_id: u64, old_cpu: u32) -> SbiResult {
        self.covi_rebind_clone(gid, vcpu_id, old_cpu)
    }

    fn rebind_end(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult {
        self.covi_rebind_end(gid, vcpu_id)
    }

    fn unbind_begin(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult {
        self.covi_unbind_begin(gid, vcpu_id)
    }

    fn unbind_end(&mut self, gid: Gid, vcpu_id: u64) -> SbiResult {
        self.covi_unbind_end(gid, vcpu_id)
    }

    fn inject(&mut self, gid: Gid, vcpu_id: u64, iid: u64) -> SbiResult {
        self.covi_inject(gid, vcpu_id, iid)
    }
}

/// Host memory: bump allocator (naturally aligned runs) with a free list,
/// checking every page given back is non-confidential.
pub struct HostMem {
    next: u64,
    end: u64,
    free: Vec<u64>,
    out: HashSet<u64>,
    /// What went wrong.
    pub violations: Vec<String>,
}

/// The TSM model and host memory, shared by the handles.
pub struct Machine {
    /// The TSM.
    pub tsm: TsmModel,
    /// Host memory.
    pub host: HostMem,
}

/// Shared machine.
pub type Shared = Rc<RefCell<Machine>>;
/// [`Tsm`] handle.
pub struct ModelTsm(pub Shared);
/// [`PageAlloc`] handle.
pub struct ModelAlloc(pub Shared);
/// [`NaclShmem`] handle over the model's NACL area.
pub struct ModelNacl(pub Shared);

/// A machine with `size` bytes of host memory at 2 GiB.
pub fn machine(size: u64) -> (ModelTsm, ModelAlloc, ModelNacl, Shared) {
    let base = 0x8000_0000;
    let m = Rc::new(RefCell::new(Machine {
        tsm: TsmModel::new(base, size),
        host: HostMem {
            next: base,
            end: base + size,
            free: Vec::new(),
            out: HashSet::new(),
            violations: Vec::new(),
        },
    }));
    (
        ModelTsm(m.clone()),
        ModelAlloc(m.clone()),
        ModelNacl(m.clone()),
        m,
    )
}

impl HostMem {
    /// Pages out of the allocator.
    pub fn outstanding(&self) -> u64 {
        self.out.len() as u64
    }
}

impl PageAlloc for ModelAlloc {
    fn alloc_contiguous(&mut self, count: u64) -> Option<Pa> {
        let mut m = self.0.borrow_mut();
        let h = &mut m.host;
        if count == 1 {
            if let Some(p) = h.free.pop() {
                h.out.insert(p);
                return Some(Pa(p));
            }
        }
        // Naturally aligned to the largest power of two <= count pages.
        let align = PAGE_SIZE << (63 - count.leading_zeros());
        let pa = (h.next + align - 1) & !(align - 1);
        if pa + count * PAGE_SIZE > h.end {
            return None;
        }
        let mut gap = h.next;
        while gap < pa {
            h.free.push(gap);
            gap += PAGE_SIZE;
        }
        h.next = pa + count * PAGE_SIZE;
        for i in 0..count {
            h.out.insert(pa + i * PAGE_SIZE);
        }
        Some(Pa(pa))
    }

    fn free(&mut self, page: Plain) {
        let mut m = self.0.borrow_mut();
        let st = m.tsm.page(page.pa());
        let h = &mut m.host;
        if st != PageState::NonConfidential {
            h.violations
                .push(format!("page {:#x} freed while {:?}", page.pa().0, st));
            return;
        }
        if !h.out.remove(&page.pa().0) {
            h.violations
                .push(format!("page {:#x} freed twice", page.pa().0));
            return;
        }
        h.free.push(page.pa().0);
    }
}

impl NaclShmem for ModelNacl {
    fn csr(&self, csr: u16) -> u64 {
        self.0.borrow().tsm.nacl.csr(csr)
    }
    fn gpr(&self, i: usize) -> u64 {
        self.0.borrow().tsm.nacl.gpr(i)
    }
    fn set_gpr(&mut self, i: usize, v: u64) {
        self.0.borrow_mut().tsm.nacl.set_gpr(i, v)
    }
}

macro_rules! forward {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
        impl Tsm for ModelTsm {
            fn this_cpu(&self) -> u32 {
                self.0.borrow().tsm.cpu
            }
            $(fn $name(&mut self, $($a: $t),*) -> $r { self.0.borrow_mut().tsm.$name($($a),*) })*
        }
    };
}

forward! {
    get_info() -> SbiResult<(TsmInfo, u64)>;
    convert_pages(pa: Pa, npages: u64) -> SbiResult;
    reclaim_pages(pa: Pa, npages: u64) -> SbiResult;
    initiate_fence() -> SbiResult;
    local_fence() -> SbiResult;
    create_tvm(params: &TvmCreateParams) -> SbiResult<Gid>;
    finalize_tvm(gid: Gid, entry_sepc: u64, entry_arg: u64) -> SbiResult;
    destroy_tvm(gid: Gid) -> SbiResult;
    add_memory_region(gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    add_pgt_pages(gid: Gid, pa: Pa, npages: u64) -> SbiResult;
    add_measured_pages(gid: Gid, src: Pa, dst: Pa, ty: PageType, npages: u64, gpa: Gpa) -> SbiResult;
    add_zero_pages(gid: Gid, pa: Pa, ty: PageType, npages: u64, gpa: Gpa) -> SbiResult;
    add_shared_pages(gid: Gid, pa: Pa, ty: PageType, npages: u64, gpa: Gpa) -> SbiResult;
    create_vcpu(gid: Gid, vcpu_id: u64, state: Pa) -> SbiResult;
    vcpu_run(gid: Gid, vcpu_id: u64) -> SbiResult<RunExit>;
    tvm_fence(gid: Gid) -> SbiResult;
    invalidate_pages(gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    validate_pages(gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    remove_pages(gid: Gid, gpa: Gpa, len: u64) -> SbiResult;
    aia_init(gid: Gid, params: &TvmAiaParams) -> SbiResult;
    set_imsic_addr(gid: Gid, vcpu_id: u64, gpa: Gpa) -> SbiResult;
    convert_imsic(pa: Pa) -> SbiResult;
    reclaim_imsic(pa: Pa) -> SbiResult;
    bind_imsic(gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult;
    rebind_begin(gid: Gid, vcpu_id: u64, mask: u64) -> SbiResult;
    rebind_clone(gid: Gid, vcpu_id: u64, old_cpu: u32) -> SbiResult;
    rebind_end(gid: Gid, vcpu_id: u64) -> SbiResult;
    unbind_begin(gid: Gid, vcpu_id: u64) -> SbiResult;
    unbind_end(gid: Gid, vcpu_id: u64) -> SbiResult;
    inject(gid: Gid, vcpu_id: u64, iid: u64) -> SbiResult;
}
