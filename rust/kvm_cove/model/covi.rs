// SPDX-License-Identifier: GPL-2.0

//! COVI in the TSM model, as strict as Salus 27b8d1d (`src/vm.rs`
//! `handle_cove_interrupt_msg`, `src/vm_interrupts.rs`):
//! - `TVM_AIA_INIT` only before finalize, once, with `guests_per_hart` 0
//!   (else `SBI_ERR_NOT_SUPPORTED`) and a group shift of at least 24;
//! - each vCPU's IMSIC address must be a page of that geometry, and
//!   finalize fails while a vCPU has none or two share one;
//! - only host guest files (never a supervisor file) convert, and they
//!   are usable after a global fence;
//! - a vCPU of such a TVM runs only on the CPU its file is bound on;
//!   binding takes exactly one HGEIE bit of a converted file of this CPU;
//! - a rebind is begin (new CPU), TVM fence, clone (old CPU), end (new
//!   CPU); the clone without a fence since the begin is refused;
//! - binding maps the vCPU's file in the TVM's G-stage: its page-table
//!   pages must be there (`SBI_ERR_INVALID_ADDRESS` otherwise);
//! - an unbind is begin and end on the bound CPU with a TVM fence
//!   between; the file comes back converted;
//! - an injection is `SBI_ERR_DENIED` unless the vCPU allowed the ID,
//!   and allowing needs the TVM's IMSIC and an ID in `1..imsic_ids`;
//! - `DESTROY_TVM` gives the TVM's files back converted.

use std::collections::{HashMap, HashSet};
use std::vec::Vec;

use crate::abi::{Covi, Gpa, Pa, SbiError, SbiResult, TvmAiaParams, PAGE_SIZE};
use crate::logic::tsm::Gid;

use super::tsm::{ModelTvmState, PageState, TsmModel};

/// The host's IMSIC as the model's TSM sees it: CPU `c`'s supervisor file
/// at `base + c * stride`, its guest file `k` (1..=`files`) `k` pages on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostImsic {
    /// CPU 0's supervisor file.
    pub base: u64,
    /// Bytes between CPUs.
    pub stride: u64,
    /// Guest files per CPU the host may give TVMs.
    pub files: u32,
    /// CPUs.
    pub cpus: u32,
}

impl HostImsic {
    /// The address of guest file `k` of `cpu`.
    pub fn file_pa(&self, cpu: u32, k: u32) -> Option<Pa> {
        (cpu < self.cpus && k >= 1 && k <= self.files)
            .then(|| Pa(self.base + u64::from(cpu) * self.stride + u64::from(k) * PAGE_SIZE))
    }

    fn locate(&self, pa: Pa) -> Option<(u32, u32)> {
        let off = pa.0.checked_sub(self.base)?;
        let cpu = u32::try_from(off / self.stride).ok()?;
        let k = u32::try_from((off % self.stride) / PAGE_SIZE).ok()?;
        (pa.0 % PAGE_SIZE == 0 && self.file_pa(cpu, k) == Some(pa)).then_some((cpu, k))
    }
}

/// Where a vCPU's interrupt file is, in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// Bound to file `k` of `cpu`.
    Bound(u32, u32),
    /// Rebinding from `(old cpu, file)` to `(new cpu, file)`; `true`
    /// once a TVM fence followed the begin.
    Rebinding((u32, u32), (u32, u32), bool),
    /// The old file's state is saved; `end` on the new CPU completes.
    Cloned(u32, u32),
    /// Unbinding from file `k` of `cpu`; `true` once a TVM fence
    /// followed the begin.
    Unbinding(u32, u32, bool),
}

/// A TVM's interrupt state in the model.
#[derive(Debug, Default)]
pub struct TvmIrq {
    /// The geometry, once `TVM_AIA_INIT` took it.
    pub aia: Option<TvmAiaParams>,
    /// vCPU -> its IMSIC GPA.
    pub addr: HashMap<u64, u64>,
    /// vCPU -> binding.
    pub bind: HashMap<u64, Bind>,
    /// vCPU -> allowed IDs; `u64::MAX` in the set allows all.
    pub allowed: HashMap<u64, HashSet<u64>>,
    /// vCPU -> IDs delivered, in order.
    pub delivered: HashMap<u64, Vec<u64>>,
}

impl TvmIrq {
    fn allows(&self, vcpu: u64, iid: u64) -> bool {
        self.allowed
            .get(&vcpu)
            .is_some_and(|s| s.contains(&u64::MAX) || s.contains(&iid))
    }
}

impl TsmModel {
    fn covi(&mut self, f: Covi) -> SbiResult {
        self.covi_counts.record(f);
        self.maybe_fail()
    }

    fn imsic_file(&self, pa: Pa) -> PageState {
        self.imsic
            .get(&pa.0)
            .copied()
            .unwrap_or(PageState::NonConfidential)
    }

    /// The state of host guest file `k` of `cpu`.
    pub fn imsic_file_state(&self, cpu: u32, k: u32) -> Option<PageState> {
        let pa = self.host_imsic?.file_pa(cpu, k)?;
        Some(self.imsic_file(pa))
    }

    /// The interrupt state of TVM `gid`.
    pub fn tvm_irq(&self, gid: Gid) -> Option<&TvmIrq> {
        self.irq_ref(gid)
    }

    pub(super) fn covi_aia_init(&mut self, gid: Gid, p: &TvmAiaParams) -> SbiResult {
        self.covi(Covi::TvmAiaInit)?;
        if p.guests_per_hart != 0 {
            return Err(SbiError::NotSupported);
        }
        let st = self.tvm_state(gid)?;
        let irq = self.irq_of(gid)?;
        if st != ModelTvmState::Initializing || irq.aia.is_some() {
            return Err(SbiError::InvalidParam);
        }
        if p.group_index_shift < 24 || p.hart_index_bits > 16 || p.imsic_base_addr % PAGE_SIZE != 0 {
            return Err(SbiError::InvalidParam);
        }
        irq.aia = Some(*p);
        Ok(())
    }

    pub(super) fn covi_set_imsic_addr(&mut self, gid: Gid, vcpu: u64, gpa: Gpa) -> SbiResult {
        self.covi(Covi::CpuSetImsicAddr)?;
        let st = self.tvm_state(gid)?;
        let known = self.tvm_has_vcpu(gid, vcpu)?;
        let irq = self.irq_of(gid)?;
        if st != ModelTvmState::Initializing {
            return Err(SbiError::InvalidParam);
        }
        let p = irq.aia.ok_or(SbiError::NotSupported)?;
        let harts = 1u64 << p.hart_index_bits;
        let off = gpa.0.checked_sub(p.imsic_base_addr).ok_or(SbiError::InvalidParam)?;
        if off % PAGE_SIZE != 0 || off / PAGE_SIZE >= harts || !known {
            return Err(SbiError::InvalidParam);
        }
        irq.addr.insert(vcpu, gpa.0);
        Ok(())
    }

    /// Salus's `validate_imsic_addrs` at finalize.
    pub(super) fn covi_finalize_ok(&self, gid: Gid, vcpus: &HashSet<u64>) -> bool {
        let Some(irq) = self.irq_ref(gid) else {
            return true;
        };
        if irq.aia.is_none() {
            return true;
        }
        let addrs: HashSet<u64> = vcpus.iter().filter_map(|v| irq.addr.get(v).copied()).collect();
        vcpus.iter().all(|v| irq.addr.contains_key(v)) && addrs.len() == vcpus.len()
    }

    pub(super) fn covi_convert(&mut self, pa: Pa) -> SbiResult {
        self.covi(Covi::ConvertImsic)?;
        let h = self.host_imsic.ok_or(SbiError::NotSupported)?;
        if h.locate(pa).is_none() {
            // The supervisor file, or no IMSIC page at all.
            return Err(SbiError::InvalidParam);
        }
        if self.imsic_file(pa) != PageState::NonConfidential {
            return Err(SbiError::InvalidAddress);
        }
        self.imsic.insert(pa.0, PageState::PendingFence);
        Ok(())
    }

    pub(super) fn covi_reclaim(&mut self, pa: Pa) -> SbiResult {
        self.covi(Covi::ReclaimImsic)?;
        if self.imsic_file(pa) != PageState::Converted {
            return Err(SbiError::InvalidAddress);
        }
        self.imsic.remove(&pa.0);
        Ok(())
    }

    /// The converted, unassigned file of this CPU that `mask` names.
    fn free_file(&self, mask: u64) -> SbiResult<(u32, u32, Pa)> {
        if mask.count_ones() != 1 || mask & 1 != 0 {
            return Err(SbiError::InvalidParam);
        }
        let k = mask.trailing_zeros();
        let pa = self
            .host_imsic
            .and_then(|h| h.file_pa(self.cpu, k))
            .ok_or(SbiError::InvalidParam)?;
        if self.imsic_file(pa) != PageState::Converted {
            return Err(SbiError::InvalidAddress);
        }
        Ok((self.cpu, k, pa))
    }

    fn runnable_with_aia(&mut self, gid: Gid, vcpu: u64) -> SbiResult<()> {
        let st = self.tvm_state(gid)?;
        let known = self.tvm_has_vcpu(gid, vcpu)?;
        let irq = self.irq_of(gid)?;
        if st != ModelTvmState::Runnable || !known {
            return Err(SbiError::InvalidParam);
        }
        if irq.aia.is_none() {
            return Err(SbiError::NotSupported);
        }
        Ok(())
    }

    pub(super) fn covi_bind(&mut self, gid: Gid, vcpu: u64, mask: u64) -> SbiResult {
        self.covi(Covi::CpuBindImsic)?;
        self.runnable_with_aia(gid, vcpu)?;
        let (cpu, k, pa) = self.free_file(mask)?;
        let irq = self.irq_of(gid)?;
        if irq.bind.contains_key(&vcpu) {
            return Err(SbiError::InvalidParam);
        }
        let gpa = *irq.addr.get(&vcpu).ok_or(SbiError::InvalidParam)?;
        // Salus maps the file into the TVM's G-stage, from its tables.
        self.map_tables(gid, gpa)?;
        let irq = self.irq_of(gid)?;
        irq.bind.insert(vcpu, Bind::Bound(cpu, k));
        self.imsic.insert(pa.0, PageState::Assigned(gid));
        Ok(())
    }

    pub(super) fn covi_rebind_begin(&mut self, gid: Gid, vcpu: u64, mask: u64) -> SbiResult {
        self.covi(Covi::RebindImsicBegin)?;
        self.runnable_with_aia(gid, vcpu)?;
        let (cpu, k, pa) = self.free_file(mask)?;
        let irq = self.irq_of(gid)?;
        let Some(&Bind::Bound(oc, ok)) = irq.bind.get(&vcpu) else {
            return Err(SbiError::InvalidParam);
        };
        irq.bind.insert(vcpu, Bind::Rebinding((oc, ok), (cpu, k), false));
        self.imsic.insert(pa.0, PageState::Assigned(gid));
        Ok(())
    }

    /// A TVM fence: rebinds and unbinds begun before it may go on.
    pub(super) fn covi_tvm_fence(&mut self, gid: Gid) {
        if let Ok(irq) = self.irq_of(gid) {
            for b in irq.bind.values_mut() {
                match *b {
                    Bind::Rebinding(o, n, false) => *b = Bind::Rebinding(o, n, true),
                    Bind::Unbinding(c, k, false) => *b = Bind::Unbinding(c, k, true),
                    _ => {}
                }
            }
        }
    }

    pub(super) fn covi_unbind_begin(&mut self, gid: Gid, vcpu: u64) -> SbiResult {
        self.covi(Covi::UnbindImsicBegin)?;
        self.runnable_with_aia(gid, vcpu)?;
        let cpu = self.cpu;
        let irq = self.irq_of(gid)?;
        // Salus: bound, and on the bound CPU.
        match irq.bind.get(&vcpu) {
            Some(&Bind::Bound(c, k)) if c == cpu => {
                irq.bind.insert(vcpu, Bind::Unbinding(c, k, false));
                Ok(())
            }
            _ => Err(SbiError::InvalidParam),
        }
    }

    pub(super) fn covi_unbind_end(&mut self, gid: Gid, vcpu: u64) -> SbiResult {
        self.covi(Covi::UnbindImsicEnd)?;
        self.runnable_with_aia(gid, vcpu)?;
        let cpu = self.cpu;
        let h = self.host_imsic.ok_or(SbiError::NotSupported)?;
        let irq = self.irq_of(gid)?;
        match irq.bind.get(&vcpu) {
            // Without the fence the blocked mapping cannot go.
            Some(&Bind::Unbinding(c, k, true)) if c == cpu => {
                irq.bind.remove(&vcpu);
                if let Some(pa) = h.file_pa(c, k) {
                    self.imsic.insert(pa.0, PageState::Converted);
                }
                Ok(())
            }
            _ => Err(SbiError::InvalidParam),
        }
    }

    pub(super) fn covi_rebind_clone(&mut self, gid: Gid, vcpu: u64, on_cpu: u32) -> SbiResult {
        self.covi(Covi::RebindImsicClone)?;
        self.runnable_with_aia(gid, vcpu)?;
        let h = self.host_imsic.ok_or(SbiError::NotSupported)?;
        let irq = self.irq_of(gid)?;
        let Some(&Bind::Rebinding((oc, ok), (nc, nk), fenced)) = irq.bind.get(&vcpu) else {
            return Err(SbiError::InvalidParam);
        };
        // Salus: the clone runs on the old CPU, and the old file's
        // mapping must be fenced away first.
        if on_cpu != oc || !fenced {
            return Err(SbiError::InvalidParam);
        }
        irq.bind.insert(vcpu, Bind::Cloned(nc, nk));
        if let Some(pa) = h.file_pa(oc, ok) {
            self.imsic.insert(pa.0, PageState::Converted);
        }
        Ok(())
    }

    pub(super) fn covi_rebind_end(&mut self, gid: Gid, vcpu: u64) -> SbiResult {
        self.covi(Covi::RebindImsicEnd)?;
        self.runnable_with_aia(gid, vcpu)?;
        let cpu = self.cpu;
        let irq = self.irq_of(gid)?;
        match irq.bind.get(&vcpu) {
            Some(&Bind::Cloned(nc, nk)) if nc == cpu => {
                irq.bind.insert(vcpu, Bind::Bound(nc, nk));
                Ok(())
            }
            _ => Err(SbiError::InvalidParam),
        }
    }

    pub(super) fn covi_inject(&mut self, gid: Gid, vcpu: u64, iid: u64) -> SbiResult {
        self.covi(Covi::InjectExtInterrupt)?;
        self.runnable_with_aia(gid, vcpu)?;
        let irq = self.irq_of(gid)?;
        if !irq.allows(vcpu, iid) {
            return Err(SbiError::Denied);
        }
        irq.delivered.entry(vcpu).or_default().push(iid);
        Ok(())
    }

    /// Whether vCPU `vcpu` of `gid` may run on this CPU.
    pub(super) fn covi_may_run(&self, gid: Gid, vcpu: u64) -> bool {
        let Some(irq) = self.irq_ref(gid) else {
            return true;
        };
        if irq.aia.is_none() {
            return true;
        }
        matches!(irq.bind.get(&vcpu), Some(&Bind::Bound(c, _)) if c == self.cpu)
    }

    /// COVG `ALLOW`/`DENY_EXTERNAL_INTERRUPT` from vCPU `vcpu`: whether
    /// the TSM served it (and reports it to the host).
    pub(super) fn covi_guest_allow(&mut self, gid: Gid, vcpu: u64, id: u64, allow: bool) -> bool {
        let ids = self.imsic_ids;
        let Ok(irq) = self.irq_of(gid) else {
            return false;
        };
        if irq.aia.is_none() {
            return false;
        }
        let set = irq.allowed.entry(vcpu).or_default();
        // CAST: -1 in a0.
        if id as i64 == -1 {
            set.clear();
            if allow {
                set.insert(u64::MAX);
            }
            return true;
        }
        if id == 0 || id >= ids {
            return false;
        }
        if allow {
            set.insert(id);
        } else {
            set.remove(&id);
        }
        true
    }

    /// At `DESTROY_TVM`: the TVM's files go back converted.
    pub(super) fn covi_destroy(&mut self, gid: Gid) {
        for s in self.imsic.values_mut() {
            if *s == PageState::Assigned(gid) {
                *s = PageState::Converted;
            }
        }
    }

    /// At a global fence's local part.
    pub(super) fn covi_fence(&mut self) {
        for s in self.imsic.values_mut() {
            if *s == PageState::PendingFence {
                *s = PageState::Converted;
            }
        }
    }
}
