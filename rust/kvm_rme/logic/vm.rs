// SPDX-License-Identifier: GPL-2.0

//! The realm-VM uAPI as a state machine: `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)`
//! sub-commands, their argument layouts and their errno values
//! (`rme-uapi-v7.md`; documented in `Documentation/virt/kvm/arm/rme-rust.rst`).
//!
//! The kernel copies the argument bytes from userspace and calls in with
//! its RMI conduit and page allocator; host tests call in with the model.

use crate::abi::{ErrorStatus, Ipa, GRANULE_SIZE};
use crate::abi::{Features0, HashAlgo};
use crate::logic::granule::GranuleAlloc;
use crate::logic::realm::{Geometry, Realm, RealmConfig, RealmError, RealmState, RealmStats, Rec};
use crate::logic::rmi::Rmi;
use crate::logic::run::GuestMemory;

/// `KVM_CAP_ARM_RME`.
pub const KVM_CAP_ARM_RME: u32 = 300;
/// `KVM_VM_TYPE_ARM_REALM`.
pub const KVM_VM_TYPE_ARM_REALM: u64 = 1 << 8;
/// `KVM_VM_TYPE_ARM_PROTECTED`.
pub const KVM_VM_TYPE_ARM_PROTECTED: u64 = 1 << 31;

/// Sub-commands (`args[0]`).
pub mod cmd {
    /// Set a realm parameter before creation.
    pub const CONFIG_REALM: u64 = 0;
    /// Create the realm (RD and start RTTs).
    pub const CREATE_REALM: u64 = 1;
    /// Set RIPAS RAM over a range.
    pub const INIT_RIPAS_REALM: u64 = 2;
    /// Copy and measure initial contents.
    pub const POPULATE_REALM: u64 = 3;
    /// Activate: no more initial contents; RECs may run.
    pub const ACTIVATE_REALM: u64 = 4;
}

/// `struct arm_rme_config`: `u32 cfg` then a 256-byte union.
pub const CONFIG_SIZE: usize = 260;
/// `struct arm_rme_init_ripas` and `struct arm_rme_populate_realm`.
pub const RANGE_SIZE: usize = 32;
/// `struct arm_rme_populate_realm.flags`: extend the measurement.
pub const POPULATE_MEASURE: u32 = 1 << 0;
/// `cfg` values.
pub const CONFIG_RPV: u32 = 0;
/// `cfg` values.
pub const CONFIG_HASH_ALGO: u32 = 1;

/// `struct kvm_arm_rmm_psci_complete`, the argument of
/// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`: `u64 target_mpidr; u32 psci_status;
/// u32 padding[3];`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsciComplete {
    /// MPIDR of the vCPU the forwarded call named.
    pub target_mpidr: u64,
    /// The PSCI status the VMM answers with.
    pub status: u32,
}

impl PsciComplete {
    /// Size of the uAPI structure.
    pub const SIZE: usize = 24;

    /// Decodes the structure; non-zero padding is `EINVAL`.
    pub fn parse(b: &[u8; Self::SIZE]) -> Result<PsciComplete, RealmError> {
        if b[12..].iter().any(|&x| x != 0) {
            return Err(RealmError::Invalid);
        }
        Ok(PsciComplete {
            target_mpidr: le_u64(b, 0),
            status: le_u32(b, 8),
        })
    }
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

/// A realm parameter from `CONFIG_REALM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigItem {
    /// Realm personalization value.
    Rpv([u8; 64]),
    /// Measurement algorithm.
    Hash(HashAlgo),
}

/// Parses `struct arm_rme_config`.  Unknown `cfg` or algorithm: `EINVAL`.
pub fn parse_config(b: &[u8; CONFIG_SIZE]) -> Result<ConfigItem, RealmError> {
    match le_u32(b, 0) {
        CONFIG_RPV => {
            let mut rpv = [0u8; 64];
            rpv.copy_from_slice(&b[4..68]);
            Ok(ConfigItem::Rpv(rpv))
        }
        CONFIG_HASH_ALGO => match le_u32(b, 4) {
            0 => Ok(ConfigItem::Hash(HashAlgo::Sha256)),
            1 => Ok(ConfigItem::Hash(HashAlgo::Sha512)),
            _ => Err(RealmError::Invalid),
        },
        _ => Err(RealmError::Invalid),
    }
}

/// Parses `struct arm_rme_init_ripas {u64 base, size; u64 reserved[2]}`:
/// non-zero reserved words are `EINVAL`.
pub fn parse_init_ripas(b: &[u8; RANGE_SIZE]) -> Result<(u64, u64), RealmError> {
    if le_u64(b, 16) != 0 || le_u64(b, 24) != 0 {
        return Err(RealmError::Invalid);
    }
    Ok((le_u64(b, 0), le_u64(b, 8)))
}

/// Parses `struct arm_rme_populate_realm {u64 base, size; u32 flags;
/// u32 reserved[3]}`: unknown flags or non-zero reserved words are
/// `EINVAL`.  Returns the range and whether to measure it.
pub fn parse_populate(b: &[u8; RANGE_SIZE]) -> Result<(u64, u64, bool), RealmError> {
    let flags = le_u32(b, 16);
    if flags & !POPULATE_MEASURE != 0 || le_u32(b, 20) != 0 || le_u64(b, 24) != 0 {
        return Err(RealmError::Invalid);
    }
    Ok((le_u64(b, 0), le_u64(b, 8), flags & POPULATE_MEASURE != 0))
}

/// Checks a `KVM_CREATE_VM` type with the realm bit: realms must be
/// enabled (`ready`), the IPA size must suit a realm (default 40 bits;
/// at least 32 and at most what the RMM supports; above 48 bits
/// `CREATE_REALM` fails), and the protected-VM bit must be clear.
/// Returns the realm's IPA size.
pub fn check_vm_type(vm_type: u64, ready: bool, features: &Features0) -> Result<u8, RealmError> {
    if !ready || vm_type & KVM_VM_TYPE_ARM_REALM == 0 || vm_type & KVM_VM_TYPE_ARM_PROTECTED != 0 {
        return Err(RealmError::Invalid);
    }
    // CAST: masked to 8 bits.
    let bits = match (vm_type & 0xff) as u8 {
        0 => 40,
        b => b,
    };
    // Any size the RMM takes is accepted here: QEMU's host-CPU probe
    // creates a scratch realm VM of the host's largest IPA size (52 bits
    // under LPA2) and never creates its realm.  A size this host's RTT
    // geometry cannot serve (above 48 bits, which needs LPA2) is refused
    // at CREATE_REALM.
    if bits < Geometry::MIN_IPA_BITS || bits > features.max_ipa_bits {
        return Err(RealmError::Invalid);
    }
    Ok(bits)
}

/// One realm VM's uAPI state.
#[derive(Debug)]
pub struct RealmVm {
    cfg: RealmConfig,
    features: Features0,
    realm: Option<Realm>,
}

/// Most VMIDs tried when the RMM says one is taken.
const VMID_TRIES: usize = 8;

/// Failed teardown tries in a row, none of which gave a granule back,
/// after which a realm is abandoned (its granules leaked, counted).
pub const TEARDOWN_STALLS: usize = 3;

impl RealmVm {
    /// State for a realm VM of `ipa_bits`, before `CREATE_REALM`.
    pub fn new(ipa_bits: u8, features: Features0) -> RealmVm {
        let mut cfg = RealmConfig::new(ipa_bits, 0);
        // Give the realm every breakpoint and watchpoint the RMM offers.
        cfg.num_bps = features.num_bps.max(1);
        cfg.num_wps = features.num_wps.max(1);
        RealmVm {
            cfg,
            features,
            realm: None,
        }
    }

    /// The realm, once created.
    pub fn realm(&self) -> Option<&Realm> {
        self.realm.as_ref()
    }

    /// `CONFIG_REALM`: only before `CREATE_REALM` (else `EPERM`); an
    /// algorithm the RMM lacks is `EINVAL`.
    pub fn config(&mut self, item: ConfigItem) -> Result<(), RealmError> {
        if self.realm.is_some() {
            return Err(RealmError::State);
        }
        match item {
            ConfigItem::Rpv(rpv) => self.cfg.rpv = rpv,
            ConfigItem::Hash(h) => {
                let ok = match h {
                    HashAlgo::Sha256 => self.features.hash_sha256,
                    HashAlgo::Sha512 => self.features.hash_sha512,
                };
                if !ok {
                    return Err(RealmError::Invalid);
                }
                self.cfg.hash_algo = h;
            }
        }
        Ok(())
    }

    /// `CREATE_REALM`: once (`EEXIST` after).  `next_vmid` hands out VMID
    /// candidates; one the RMM refuses as in use is skipped.
    pub fn create<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        next_vmid: &mut dyn FnMut() -> u16,
    ) -> Result<(), RealmError> {
        if self.realm.is_some() {
            return Err(RealmError::Exists);
        }
        let mut last = RealmError::Busy;
        for _ in 0..VMID_TRIES {
            self.cfg.vmid = next_vmid();
            match Realm::create(rmi, alloc, &self.cfg) {
                Ok(r) => {
                    self.realm = Some(r);
                    return Ok(());
                }
                Err((RealmError::Rmi { err, .. }, _)) if err.status == ErrorStatus::Input => {
                    last = RealmError::Busy
                }
                Err((e, _)) => return Err(e),
            }
        }
        Err(last)
    }

    fn created(&mut self) -> Result<&mut Realm, RealmError> {
        self.realm.as_mut().ok_or(RealmError::State)
    }

    /// `INIT_RIPAS_REALM`: after `CREATE_REALM`, before `ACTIVATE_REALM`
    /// (`EPERM`); the range must be granule aligned, non-empty and inside
    /// the protected half (`EINVAL`).
    pub fn init_ripas<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        base: u64,
        size: u64,
    ) -> Result<(), RealmError> {
        let realm = self.created()?;
        if realm.state() != RealmState::New {
            return Err(RealmError::State);
        }
        let top = base.checked_add(size).ok_or(RealmError::Invalid)?;
        if size == 0 || base % GRANULE_SIZE != 0 || size % GRANULE_SIZE != 0 {
            return Err(RealmError::Invalid);
        }
        realm.init_ripas(rmi, alloc, Ipa(base), Ipa(top))
    }

    /// `POPULATE_REALM`: copies `[base, base + size)` from the memslot's
    /// userspace pages into pages of its guest_memfd, delegated and mapped
    /// with `DATA_CREATE` (measured if `measure`).  After `CREATE_REALM`,
    /// before `ACTIVATE_REALM` (`EPERM`); the range must be granule
    /// aligned, non-empty and in the protected half (`EINVAL`); a granule
    /// outside every guest_memfd memslot is `EFAULT`, and one populated
    /// already is refused by the RMM (`EINVAL` when its guest_memfd page is
    /// delegated already, `ENXIO` when the RTT entry is in use).  On failure the
    /// granules before the failing one stay populated.
    pub fn populate<R: Rmi, A: GranuleAlloc + GuestMemory>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        base: u64,
        size: u64,
        measure: bool,
    ) -> Result<(), RealmError> {
        let realm = self.created()?;
        if realm.state() != RealmState::New {
            return Err(RealmError::State);
        }
        let top = base.checked_add(size).ok_or(RealmError::Invalid)?;
        if size == 0
            || base % GRANULE_SIZE != 0
            || size % GRANULE_SIZE != 0
            || top > realm.geometry().shared_bit()
        {
            return Err(RealmError::Invalid);
        }
        let mut ipa = base;
        while ipa < top {
            let dst = alloc.private_page(Ipa(ipa))?;
            let src = match alloc.source_page(Ipa(ipa)) {
                Ok(p) => p,
                Err(e) => {
                    alloc.release_data(dst);
                    return Err(e);
                }
            };
            let r = realm.populate(rmi, alloc, Ipa(ipa), dst, src, measure);
            alloc.release_source(src);
            r?;
            ipa += GRANULE_SIZE;
        }
        Ok(())
    }

    /// The realm and RECs for running a vCPU: `EPERM` unless the realm
    /// was activated (or has powered off, which entering reports).
    pub fn active_realm(&mut self) -> Result<&mut Realm, RealmError> {
        let realm = self.created()?;
        match realm.state() {
            RealmState::Active | RealmState::SystemOff => Ok(realm),
            _ => Err(RealmError::State),
        }
    }

    /// Memslot removal: unmaps the private pages in `[gpa, gpa + size)`
    /// (clipped to the protected half), giving them back to guest_memfd,
    /// and the shared aliases of that range, unpinning their pages.
    /// Nothing to do before `CREATE_REALM` or after teardown.
    pub fn unmap_range<R: Rmi, A: GranuleAlloc + GuestMemory>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        gpa: u64,
        size: u64,
    ) -> Result<(), RealmError> {
        let Some(realm) = self.realm.as_mut() else {
            return Ok(());
        };
        let top = realm.geometry().shared_bit();
        let end = gpa.saturating_add(size).min(top);
        let start = gpa.min(end);
        if start == end || realm.state() == RealmState::Destroyed {
            return Ok(());
        }
        if start % GRANULE_SIZE != 0 || end % GRANULE_SIZE != 0 {
            return Err(RealmError::Invalid);
        }
        while let Some((g, _)) = alloc.shared_in(Ipa(start), Ipa(end)) {
            // A page that cannot be unmapped stays pinned until teardown.
            realm.unmap_shared(rmi, Ipa(g.0 | top))?;
            alloc.release_shared(g);
        }
        realm.unmap_private(rmi, alloc, Ipa(start), Ipa(end))
    }

    /// `ACTIVATE_REALM`: once, after `CREATE_REALM` (`EPERM` otherwise).
    pub fn activate<R: Rmi>(&mut self, rmi: &mut R) -> Result<(), RealmError> {
        self.created()?.activate(rmi)
    }

    /// `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)`: creates the vCPU's REC
    /// from its MPIDR, PC and x0..x7.  RMI 1.0 creates RECs before
    /// activation, in MPIDR order: `EPERM` before `CREATE_REALM` or after
    /// `ACTIVATE_REALM`; the RMM's refusal (e.g. out of order) is `EINVAL`.
    pub fn rec_create<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
        mpidr: u64,
        pc: u64,
        gprs: [u64; 8],
        runnable: bool,
    ) -> Result<Rec, RealmError> {
        let realm = self.created()?;
        realm.rec_create(rmi, alloc, mpidr, pc, gprs, runnable)
    }

    /// Destroys a REC (vCPU destruction); retries, then leaks it, counted.
    pub fn rec_destroy<R: Rmi, A: GranuleAlloc>(&mut self, rmi: &mut R, alloc: &mut A, rec: Rec) {
        let Some(realm) = self.realm.as_mut() else {
            return;
        };
        let mut rec = rec;
        for _ in 0..3 {
            match realm.rec_destroy(rmi, alloc, rec) {
                Ok(()) => return,
                Err((r, _)) => rec = r,
            }
        }
        realm.rec_leak(rec);
    }

    /// Tears the realm down (VM destruction); retries transient failures,
    /// then gives up and leaks what is left.  Returns the granules leaked.
    pub fn destroy<R: Rmi, A: GranuleAlloc>(&mut self, rmi: &mut R, alloc: &mut A) -> u64 {
        self.destroy_counted(rmi, alloc).leaked
    }

    /// [`RealmVm::destroy`], returning the realm's final counts (all zero
    /// before `CREATE_REALM`): what was leaked, and any RMM answers that
    /// contradicted the host's counts.
    pub fn destroy_counted<R: Rmi, A: GranuleAlloc>(
        &mut self,
        rmi: &mut R,
        alloc: &mut A,
    ) -> RealmStats {
        let Some(mut realm) = self.realm.take() else {
            return RealmStats::default();
        };
        // Each failed try keeps what it undid, so a teardown that fails
        // now and then still gets through: it is tried again as long as
        // the realm holds fewer granules than ever before, and given up
        // after TEARDOWN_STALLS tries in a row without that progress.
        // The count is finite and only new lows reset the stalls, so this
        // ends.
        let mut low = realm.stats().delegated;
        let mut stalls = 0;
        while stalls < TEARDOWN_STALLS {
            if realm.destroy(rmi, alloc).is_ok() {
                return realm.stats();
            }
            let held = realm.stats().delegated;
            if held < low {
                low = held;
                stalls = 0;
            } else {
                stalls += 1;
            }
        }
        realm.leak();
        realm.stats()
    }
}
