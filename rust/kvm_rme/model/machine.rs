// SPDX-License-Identifier: GPL-2.0

//! [`Machine`] ties the RMM model to a [`HostMem`] allocator: freeing a
//! page that is not `UNDELEGATED` in the model is recorded as a violation
//! at once.  Host-only (std).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use super::rmm::{GranuleState, RmmModel};
use crate::abi::{Ipa, Pa, RecRun, RmiResult, RmiVersion, RttEntry, GRANULE_SIZE};
use crate::logic::granule::{GranuleAlloc, Undelegated};
use crate::logic::rmi::{Destroyed, RealmCreate, RecCreate, Rmi, Sro, Unmapped, VersionReply};

/// Host memory: a bump allocator with a LIFO free list (so freed pages are
/// reused quickly), that checks every page given back is `UNDELEGATED`.
pub struct HostMem {
    next: u64,
    end: u64,
    free: Vec<u64>,
    allocated: BTreeMap<u64, bool>,
    /// Pages in the hands of the logic: allocated (`false`) or data pages
    /// lent by the VMM (`true`).
    pub violations: Vec<String>,
    /// Pages handed out and not yet returned.
    pub outstanding: u64,
}

impl HostMem {
    fn new(base: u64, size: u64) -> HostMem {
        HostMem {
            next: base,
            end: base + size,
            free: Vec::new(),
            allocated: BTreeMap::new(),
            violations: Vec::new(),
            outstanding: 0,
        }
    }
}

/// The model RMM and host memory, shared by the two trait handles.
pub struct Machine {
    /// The RMM model.
    pub rmm: RmmModel,
    /// Host memory.
    pub host: HostMem,
}

/// Shared handle; [`ModelRmi`] and [`ModelAlloc`] borrow it per call.
pub type Shared = Rc<RefCell<Machine>>;

/// The interface version the host tests' RMM model speaks:
/// `KVM_RME_MODEL_RMI=2.0` in the environment makes it 2.0, otherwise 1.0.
/// The test command runs the suite once per version.
pub fn model_version() -> RmiVersion {
    match std::env::var("KVM_RME_MODEL_RMI").as_deref() {
        Ok("2.0") => RmiVersion::V2_0,
        _ => RmiVersion::V1_0,
    }
}

/// A machine with `size` bytes of host memory at 2 GiB, whose RMM speaks
/// [`model_version`] and, for 2.0, is activated.
pub fn machine(size: u64) -> (ModelRmi, ModelAlloc, Shared) {
    machine_speaking(size, model_version(), true)
}

/// A machine whose RMM speaks `v`; a 2.0 RMM is activated if `activate`.
pub fn machine_speaking(size: u64, v: RmiVersion, activate: bool) -> (ModelRmi, ModelAlloc, Shared) {
    let base = 0x8000_0000;
    let mut rmm = RmmModel::new(base, size);
    rmm.speak(v);
    if v.major >= 2 && activate {
        let _ = rmm.rmm_activate();
        // The host's boot made these calls, not the test.
        rmm.counts = Default::default();
    }
    let m = Rc::new(RefCell::new(Machine {
        rmm,
        host: HostMem::new(base, size),
    }));
    (ModelRmi(m.clone()), ModelAlloc(m.clone()), m)
}

/// [`Rmi`] on the shared machine.
pub struct ModelRmi(pub Shared);
/// [`GranuleAlloc`] on the shared machine.
pub struct ModelAlloc(pub Shared);

impl ModelAlloc {
    /// A data page lent by the VMM (counted as outstanding until released).
    pub fn data_page(&mut self) -> Option<Undelegated> {
        let pa = self.take(1)?;
        self.0.borrow_mut().host.allocated.insert(pa, true);
        Undelegated::from_host_page(Pa(pa))
    }

    /// `count` contiguous data pages lent by the VMM, the first aligned to
    /// `align` bytes (a huge folio).
    pub fn data_run(&mut self, count: usize, align: u64) -> Option<Pa> {
        let mut m = self.0.borrow_mut();
        let h = &mut m.host;
        let pa = (h.next + align - 1) & !(align - 1);
        let end = pa + count as u64 * GRANULE_SIZE;
        if end > h.end {
            return None;
        }
        // The skipped gap goes to the free list.
        let mut gap = h.next;
        while gap < pa {
            h.free.push(gap);
            gap += GRANULE_SIZE;
        }
        h.next = end;
        for i in 0..count as u64 {
            h.allocated.insert(pa + i * GRANULE_SIZE, true);
        }
        h.outstanding += count as u64;
        Some(Pa(pa))
    }

    fn take(&mut self, n: usize) -> Option<u64> {
        let mut m = self.0.borrow_mut();
        let h = &mut m.host;
        let pa = if n == 1 && !h.free.is_empty() {
            h.free.pop()?
        } else {
            let pa = h.next;
            if pa + n as u64 * GRANULE_SIZE > h.end {
                return None;
            }
            h.next += n as u64 * GRANULE_SIZE;
            pa
        };
        for i in 0..n as u64 {
            h.allocated.insert(pa + i * GRANULE_SIZE, false);
        }
        h.outstanding += n as u64;
        Some(pa)
    }

    fn give(&mut self, pa: Pa, data: bool) {
        let mut m = self.0.borrow_mut();
        let st = m.rmm.granule(pa);
        let h = &mut m.host;
        if st != GranuleState::Undelegated {
            h.violations.push(format!(
                "page {:#x} returned to the host in state {:?}",
                pa.0, st
            ));
            return;
        }
        match h.allocated.remove(&pa.0) {
            Some(was_data) if was_data == data => {}
            Some(_) => h
                .violations
                .push(format!("page {:#x} returned through the wrong path", pa.0)),
            None => {
                h.violations.push(format!(
                    "page {:#x} returned twice or never allocated",
                    pa.0
                ));
                return;
            }
        }
        h.outstanding -= 1;
        h.free.push(pa.0);
    }
}

impl GranuleAlloc for ModelAlloc {
    fn alloc(&mut self) -> Option<Undelegated> {
        Undelegated::from_host_page(Pa(self.take(1)?))
    }

    fn alloc_contiguous(&mut self, count: usize) -> Option<Pa> {
        self.take(count).map(Pa)
    }

    fn free(&mut self, page: Undelegated) {
        self.give(page.pa(), false);
    }

    fn release_data(&mut self, page: Undelegated) {
        self.give(page.pa(), true);
    }
}

macro_rules! forward {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
        impl Rmi for ModelRmi {
            fn abi(&self) -> RmiVersion {
                self.0.borrow().rmm.abi
            }
            $(fn $name(&mut self, $($a: $t),*) -> $r { self.0.borrow_mut().rmm.$name($($a),*) })*
        }
    };
}

forward! {
    version(requested: RmiVersion) -> VersionReply;
    features(index: u64) -> RmiResult<u64>;
    granule_delegate(pa: Pa) -> RmiResult;
    granule_undelegate(pa: Pa) -> RmiResult;
    data_create(rd: Pa, data: Pa, ipa: Ipa, src: Pa, flags: u64) -> RmiResult;
    data_create_unknown(rd: Pa, data: Pa, ipa: Ipa) -> RmiResult;
    data_destroy(rd: Pa, ipa: Ipa) -> RmiResult<Destroyed>;
    realm_activate(rd: Pa) -> RmiResult;
    realm_create(rd: Pa, params: &RealmCreate) -> RmiResult;
    realm_destroy(rd: Pa) -> RmiResult;
    rec_create(rd: Pa, rec: Pa, params: &RecCreate) -> RmiResult<Sro>;
    rec_destroy(rec: Pa) -> RmiResult<Sro>;
    rec_enter(rec: Pa, run: &mut RecRun) -> RmiResult;
    rtt_create(rd: Pa, rtt: Pa, ipa: Ipa, level: u8) -> RmiResult;
    rtt_destroy(rd: Pa, ipa: Ipa, level: u8) -> (RmiResult<Pa>, Ipa);
    rtt_map_unprotected(rd: Pa, ipa: Ipa, level: u8, desc: u64) -> RmiResult;
    rtt_read_entry(rd: Pa, ipa: Ipa, level: u8) -> RmiResult<RttEntry>;
    rtt_unmap_unprotected(rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Ipa>;
    psci_complete(calling_rec: Pa, target_rec: Pa, status: u64) -> RmiResult;
    rtt_fold(rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Pa>;
    rec_aux_count(rd: Pa) -> RmiResult<u64>;
    rtt_init_ripas(rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa>;
    rtt_set_ripas(rd: Pa, rec: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa>;
    rmm_config_set() -> RmiResult;
    rmm_activate() -> RmiResult;
    granule_range_delegate(base: Pa, top: Pa) -> RmiResult<Pa>;
    granule_range_undelegate(base: Pa, top: Pa) -> RmiResult<Pa>;
    rtt_data_map(rd: Pa, base: Ipa, top: Ipa, data: Pa) -> RmiResult<Ipa>;
    rtt_data_unmap(rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Unmapped>;
    op_continue(handle: u64) -> RmiResult<Sro>;
    op_mem_donate(handle: u64, granules: &[Pa]) -> RmiResult<(usize, Sro)>;
    op_mem_reclaim(handle: u64, out: &mut [Pa]) -> RmiResult<(usize, Sro)>;
    op_cancel(handle: u64) -> RmiResult;
}
