// SPDX-License-Identifier: GPL-2.0

//! The per-VM state of a realm, its publication in `kvm->arch.rme`, and
//! the VM-level operations of the uAPI on top of [`RealmVm`].
//!
//! # Ownership and locking
//!
//! The state is a `Pin<KBox<Mutex<State>>>`, created by the first
//! `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` (under `kvm->lock`, so creation does
//! not race) and published in `kvm->arch.rme` (`cvm_fw::published`,
//! on `ForeignOwnable`).  From then on it belongs to the VM: only
//! [`vm_destroy`] takes it back, from `kvm_arch_destroy_vm()`, when the VM
//! has no other users.  Every other access borrows it for one call
//! ([`with_state`]), so no reference outlives the hook that made it.
//!
//! The state's mutex is the innermost lock: it is taken under
//! `kvm->lock` (capabilities, vCPU finalization) or `vcpu->mutex`
//! (`KVM_RUN`), and nothing is taken under it.  It is not held across
//! `REC_ENTER` (see `run.rs`), so the vCPUs of a realm run in parallel.

use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::abi::{Features0, RecRun};
use crate::cvm_fw::published;
use crate::glue::kvm::{Kvm, VmStats};
use crate::glue::pages::KernelAlloc;
use crate::glue::smc::SmcRmi;
use crate::logic::realm::{RealmError, Rec};
use crate::logic::run::VcpuRun;
use crate::logic::vm::{self, cmd, RealmVm, CONFIG_SIZE, RANGE_SIZE};

/// Realms are enabled (an RMI 1.0 RMM answered at boot).
static READY: AtomicBool = AtomicBool::new(false);
/// `RMI_FEATURES(0)` from the boot probe.
static FEATURES: AtomicU64 = AtomicU64::new(0);
/// VMID candidates for `REALM_CREATE` (the RMM refuses ones in use).
static NEXT_VMID: AtomicU32 = AtomicU32::new(1);

/// Records the boot probe's outcome: realms are enabled with `features`.
pub(crate) fn set_ready(features: Features0) {
    FEATURES.store(features.encode(), Ordering::Relaxed);
    READY.store(true, Ordering::Release);
}

/// Whether an RMM speaking RMI 1.0 answered at boot.
pub(crate) fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// `RMI_FEATURES(0)` from the boot probe (all zero without an RMM).
pub(crate) fn features() -> Features0 {
    Features0::decode(FEATURES.load(Ordering::Relaxed))
}

fn next_vmid() -> u16 {
    loop {
        // CAST: VMIDs are 16 bits; 0 is skipped.
        let v = NEXT_VMID.fetch_add(1, Ordering::Relaxed) as u16;
        if v != 0 {
            return v;
        }
    }
}

/// What a vCPU enters its REC with: the `rec_run` page and an RMI
/// conduit of its own (its own staging granule).  It leaves the realm's
/// state, which the realm's mutex guards, for the time of `REC_ENTER`:
/// the mutex is not held then, and the vCPUs of a realm run in parallel.
pub(crate) struct EntryCtx {
    pub(crate) rmi: SmcRmi,
    pub(crate) run: KBox<RecRun>,
}

/// A realm vCPU: its REC, its entry context (`None` while it is in
/// `REC_ENTER`), and what it owes the RMM between two `KVM_RUN`s.
pub(crate) struct RealmVcpu {
    pub(crate) idx: u32,
    pub(crate) rec: Rec,
    pub(crate) ctx: Option<EntryCtx>,
    pub(crate) state: VcpuRun,
}

/// Per-VM state behind `kvm->arch.rme`.
pub(crate) struct State {
    pub(crate) vm: RealmVm,
    pub(crate) rmi: SmcRmi,
    pub(crate) alloc: KernelAlloc,
    pub(crate) vcpus: KVec<RealmVcpu>,
    /// RMI calls the vCPUs' own conduits made (`REC_ENTER`).
    pub(crate) vcpu_rmi_calls: u64,
}

// SAFETY: `State` is not `Send` only for the raw pointers it holds: the
// `struct kvm` it belongs to (which outlives it, and whose memslot
// lookups may be made from any thread of the VM's process, as KVM's own
// are) and pages on which it holds a reference or pin (which any CPU may
// give back).  Every access is under the state's mutex.
unsafe impl Send for State {}

/// The published state of a realm VM.
type Published = Pin<KBox<Mutex<State>>>;

/// Runs `f` on the published state of `kvm`, or returns `None` if there
/// is none (no `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` yet).  The borrow lasts
/// for the call of `f` only.
pub(crate) fn with_state<R>(kvm: Kvm, f: impl FnOnce(&Mutex<State>) -> R) -> Option<R> {
    // SAFETY: only this module publishes in `kvm->arch.rme`, a
    // `Mutex<State>`; `vm_destroy` takes it back when the VM has no other
    // users, and `kvm` is live (its type's invariant), so it has not run.
    unsafe { published::with(kvm.state_slot(), f) }
}

/// Runs `f` on the state of `kvm`, creating it first if needed.  The
/// caller holds `kvm->lock`, so creation does not race with itself.
fn with_state_or_create<R>(
    kvm: Kvm,
    f: impl FnOnce(&Mutex<State>) -> Result<R, RealmError>,
) -> Result<R, RealmError> {
    if with_state(kvm, |_| ()).is_none() {
        let rmi = SmcRmi::new().map_err(|_| RealmError::NoMemory)?;
        let new = State {
            vm: RealmVm::new(kvm.ipa_bits(), features()),
            rmi,
            alloc: KernelAlloc::new(kvm.as_ptr()),
            vcpus: KVec::new(),
            vcpu_rmi_calls: 0,
        };
        let b: Published =
            KBox::pin_init(new_mutex!(new), GFP_KERNEL).map_err(|_| RealmError::NoMemory)?;
        // Every creator holds `kvm->lock`, so the slot is still empty; if
        // it were not, the state already there would serve, and the new
        // one (no realm yet, nothing lent to the RMM) is dropped.
        let _ = published::publish(kvm.state_slot(), b);
    }
    with_state(kvm, f).unwrap_or(Err(RealmError::State))
}

/// Refreshes the VM's binary stats from its realm's counters.
pub(crate) fn sync_stats(kvm: Kvm, st: &State) {
    let mut v = VmStats::default();
    if let Some(r) = st.vm.realm() {
        let s = r.stats();
        (v.delegated, v.rtt_pages, v.data_pages, v.leaked) =
            (s.delegated, s.rtt_pages, s.data_pages, s.leaked);
    }
    v.rmi_calls = st
        .rmi
        .counts
        .total()
        .saturating_add(st.vcpu_rmi_calls);
    kvm.set_stats(&v);
}

/// `KVM_CREATE_VM` with `KVM_VM_TYPE_ARM_REALM`: the IPA size to use, or
/// `EINVAL` (realms disabled, bad IPA size, or protected + realm).
pub(crate) fn check_vm_type(vm_type: u64) -> Result<u8, RealmError> {
    vm::check_vm_type(vm_type, ready(), &features())
}

fn read_user<const N: usize>(uarg: u64) -> Result<[u8; N], RealmError> {
    let mut buf = [0u8; N];
    // CAST: user addresses fit in usize on 64-bit.
    let mut r = UserSlice::new(UserPtr::from_addr(uarg as usize), N).reader();
    r.read_slice(&mut buf).map_err(|_| RealmError::Fault)?;
    Ok(buf)
}

/// `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)`: sub-command `sub` with its argument
/// at user address `uarg`.  The caller holds `kvm->lock`.
pub(crate) fn enable_cap(kvm: Kvm, sub: u64, uarg: u64) -> Result<(), RealmError> {
    if !ready() {
        return Err(RealmError::Invalid);
    }
    with_state_or_create(kvm, |m| {
        let mut guard = m.lock();
        let st = &mut *guard;
        let r = match sub {
            cmd::CONFIG_REALM => st
                .vm
                .config(vm::parse_config(&read_user::<CONFIG_SIZE>(uarg)?)?),
            cmd::CREATE_REALM => st.vm.create(&mut st.rmi, &mut st.alloc, &mut next_vmid),
            cmd::INIT_RIPAS_REALM => {
                let (base, size) = vm::parse_init_ripas(&read_user::<RANGE_SIZE>(uarg)?)?;
                st.vm.init_ripas(&mut st.rmi, &mut st.alloc, base, size)
            }
            cmd::POPULATE_REALM => {
                let (base, size, measure) =
                    vm::parse_populate(&read_user::<RANGE_SIZE>(uarg)?)?;
                st.vm
                    .populate(&mut st.rmi, &mut st.alloc, base, size, measure)
            }
            cmd::ACTIVATE_REALM => st.vm.activate(&mut st.rmi),
            _ => Err(RealmError::Invalid),
        };
        sync_stats(kvm, st);
        r
    })
}

/// `KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_REC)` of vCPU `idx`: creates its
/// REC from its MPIDR, PC and x0..x7 (`EEXIST` if it has one already,
/// `EPERM` before `CREATE_REALM`).  The caller holds `kvm->lock`.
pub(crate) fn vcpu_finalize(
    kvm: Kvm,
    idx: u32,
    mpidr: u64,
    pc: u64,
    gprs: [u64; 8],
    runnable: bool,
) -> Result<(), RealmError> {
    // No CREATE_REALM yet: a REC needs a realm.
    with_state(kvm, |m| {
        let mut guard = m.lock();
        let st = &mut *guard;
        let r = add_rec(st, idx, mpidr, pc, gprs, runnable);
        sync_stats(kvm, st);
        r
    })
    .unwrap_or(Err(RealmError::State))
}

fn add_rec(
    st: &mut State,
    idx: u32,
    mpidr: u64,
    pc: u64,
    gprs: [u64; 8],
    runnable: bool,
) -> Result<(), RealmError> {
    if st.vcpus.iter().any(|v| v.idx == idx) {
        return Err(RealmError::Exists);
    }
    // Everything that can fail for want of memory first, so a created REC
    // is never dropped.
    st.vcpus
        .reserve(1, GFP_KERNEL)
        .map_err(|_| RealmError::NoMemory)?;
    let run = KBox::<RecRun>::new_uninit(GFP_KERNEL | __GFP_ZERO).map_err(|_| RealmError::NoMemory)?;
    // SAFETY: zeroed memory is a valid `RecRun` (integers and byte arrays
    // only), the state the RMM expects before a first entry.
    let mut run = unsafe { run.assume_init() };
    let vcpu_rmi = SmcRmi::new().map_err(|_| RealmError::NoMemory)?;
    let rec = st
        .vm
        .rec_create(&mut st.rmi, &mut st.alloc, mpidr, pc, gprs, runnable)?;
    // A realm vCPU's WFI comes to the host, which sleeps it without
    // holding the realm (see `Step::Idle`).
    crate::logic::exit::trap_wfx(&mut run.enter, true, false);
    let v = RealmVcpu {
        idx,
        rec,
        ctx: Some(EntryCtx { rmi: vcpu_rmi, run }),
        state: VcpuRun::new(),
    };
    st.vcpus.push_within_capacity(v).map_err(|e| {
        // Cannot happen after `reserve`; keep the REC consistent.
        st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, e.0.rec);
        RealmError::NoMemory
    })
}

/// vCPU destruction: destroys the vCPU's REC, if it has one.
pub(crate) fn vcpu_destroy(kvm: Kvm, idx: u32) {
    with_state(kvm, |m| {
        let mut guard = m.lock();
        let st = &mut *guard;
        if let Some(i) = st.vcpus.iter().position(|v| v.idx == idx) {
            if let Ok(v) = st.vcpus.remove(i) {
                st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, v.rec);
            }
        }
    });
}

/// VM destruction, when the VM has no other users: tears the realm down
/// and frees the state.  Granules the RMM did not give back are leaked on
/// purpose and reported.
pub(crate) fn vm_destroy(kvm: Kvm) {
    // SAFETY: only this module publishes in `kvm->arch.rme`, a
    // `Mutex<State>`; the VM has no other users, so no `with_state` runs.
    let Some(m) = (unsafe { published::take::<Mutex<State>>(kvm.state_slot()) }) else {
        return;
    };
    let (leaked, kept) = {
        let mut guard = m.lock();
        let st = &mut *guard;
        // RECs whose vCPU destruction did not reach us.
        while let Some(v) = st.vcpus.pop() {
            st.vm.rec_destroy(&mut st.rmi, &mut st.alloc, v.rec);
        }
        let end = st.vm.destroy_counted(&mut st.rmi, &mut st.alloc);
        if end.anomalies != 0 {
            kernel::pr_warn_ratelimited!(
                "the RMM gave back more than the host lent it ({} answers)\n",
                end.anomalies
            );
        }
        st.alloc.unpin_all_shared(end.leaked == 0);
        (end.leaked, st.alloc.abandon())
    };
    crate::glue::totals::leaked(leaked);
    if leaked != 0 || kept != 0 {
        kernel::pr_warn_ratelimited!(
            "realm teardown leaked {} granules ({} pages kept from the allocator)\n",
            leaked,
            kept
        );
    }
}

/// Memslot deletion or move: the private pages mapped in `[gpa, gpa +
/// size)` are destroyed, undelegated and given back to guest_memfd.
/// Failures leave the pages with the RMM until teardown (counted there).
pub(crate) fn unmap_range(kvm: Kvm, gpa: u64, size: u64) {
    with_state(kvm, |m| {
        let mut guard = m.lock();
        let State { vm, rmi, alloc, .. } = &mut *guard;
        if let Err(e) = vm.unmap_range(rmi, alloc, gpa, size) {
            kernel::pr_warn_ratelimited!(
                "unmapping {:#x}+{:#x} from the realm failed: {:?}\n",
                gpa,
                size,
                e
            );
        }
    });
}
