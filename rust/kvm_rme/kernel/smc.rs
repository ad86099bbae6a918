// SPDX-License-Identifier: GPL-2.0

//! The RMI over SMC: the kernel's implementation of [`Rmi`].
//!
//! Arguments go in x1..x6 and results come back in x0..x4 (SMCCC 1.2,
//! SMC64).  Structures the RMM reads (realm and REC parameters, `rec_run`)
//! are staged in a granule this module owns, so callers never need
//! physical addresses of their own buffers.  The structures are encoded by
//! the logic (`RealmCreate::params`, `RecCreate::params`) and copied here
//! whole: staging cannot fail, and nothing but the RMM's answer becomes an
//! [`RmiError`].

use core::mem::size_of;

use kernel::bindings;
use kernel::prelude::*;

use crate::abi::{Command, RealmParams, RecParams, RecRun, RttEntry};
use crate::abi::GRANULE_SIZE;
use crate::cvm_fw::staging::Staging;
use crate::abi::{Ipa, Pa, RmiError, RmiResult, RmiVersion, VersionInfo};
use crate::logic::rmi::{CallCounts, Destroyed, RealmCreate, RecCreate, Rmi, VersionReply};

/// Whether this CPU implements FEAT_RME (`ID_AA64PFR0_EL1.RME != 0`).
pub(crate) fn feat_rme() -> bool {
    let pfr0: u64;
    // SAFETY: reading an ID register has no side effects and is permitted
    // at EL1 and EL2.
    unsafe { core::arch::asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack)) };
    (pfr0 >> 52) & 0xf != 0
}

/// Whether this kernel runs at EL2, where the RMI is the host's: a kernel
/// at EL1 (a guest, a realm among them) may see FEAT_RME but has no RMM
/// to talk to.
pub(crate) fn at_el2() -> bool {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects at any EL.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3 == 2
}

/// One SMC to the RMM: `x0` = function ID, `x1..x6` = `args`; returns
/// `x0..x4`.
fn smc(cmd: Command, args: [u64; 6]) -> [u64; 5] {
    let (r0, r1, r2, r3, r4);
    // SAFETY: an RMI call is an SMCCC SMC64 fast call.  The RMM reads and
    // writes only the registers named here and memory the host delegated
    // to it or passed by address (pages owned by this module, kept alive
    // across the call).  x5..x17 are treated as clobbered, as SMCCC allows.
    // Callers only issue RMI calls after checking `feat_rme()`, so EL3
    // firmware is present to take the SMC.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") u64::from(cmd.fid()) => r0,
            inout("x1") args[0] => r1,
            inout("x2") args[1] => r2,
            inout("x3") args[2] => r3,
            inout("x4") args[3] => r4,
            inout("x5") args[4] => _,
            inout("x6") args[5] => _,
            out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _,
            out("x17") _,
            options(nostack),
        );
    }
    [r0, r1, r2, r3, r4]
}

kernel::tracepoint::declare_trace! {
    /// The `kvm_rme:kvm_rme_rmi_error` tracepoint
    /// (`include/trace/events/kvm_rme.h`, defined in `rme_glue.c`).
    ///
    /// # Safety
    ///
    /// `name` is a NUL-terminated string that lives across the call.
    unsafe fn kvm_rme_rmi_error(name: *const core::ffi::c_char, status: u64, arg0: u64, arg1: u64);
}

/// The staging granule: the parameter structure or `rec_run` of the call
/// in flight.  Every field is integers and byte arrays only, so any bit
/// pattern is a valid value of each.
#[repr(C, align(4096))]
union Stage {
    realm: RealmParams,
    rec: RecParams,
    run: RecRun,
}

const _: () = {
    assert!(size_of::<Stage>() == GRANULE_SIZE as usize);
    assert!(size_of::<RealmParams>() == GRANULE_SIZE as usize);
    assert!(size_of::<RecParams>() == GRANULE_SIZE as usize);
    assert!(size_of::<RecRun>() == GRANULE_SIZE as usize);
};

/// The RMI through SMCs, with per-command call counters.
pub(crate) struct SmcRmi {
    /// Staging granule for parameter structures and `rec_run`.
    stage: Staging<Stage>,
    /// Calls issued through this instance.
    pub(crate) counts: CallCounts,
}

impl SmcRmi {
    /// A conduit with its own staging granule.
    pub(crate) fn new() -> Result<SmcRmi> {
        Ok(SmcRmi {
            // SAFETY: `Stage` is a 4 KiB, 4 KiB-aligned union of integer
            // structures (asserted above and by `Staging::new`).
            stage: unsafe { Staging::new() }?,
            counts: CallCounts::default(),
        })
    }

    fn call(&mut self, cmd: Command, args: [u64; 6]) -> (RmiResult, [u64; 5]) {
        // Failure injection (debugfs fail_rmi/): the call is not issued
        // and answers a status no RMM gives (0xff, unknown: EIO at the
        // uAPI edge).  The probe's VERSION and FEATURES are left alone.
        if !matches!(cmd, Command::Version | Command::Features)
            // SAFETY: `kvm_rme_should_fail_rmi` only reads the fault
            // attribute's settings and random state.
            && unsafe { bindings::kvm_rme_should_fail_rmi() }
        {
            crate::glue::totals::injected();
            let e = RmiError::new(crate::abi::ErrorStatus::Unknown(0xff), 0);
            // SAFETY: as for the real failures below.
            unsafe { kvm_rme_rmi_error(cmd.name().as_ptr(), e.encode(), args[0], args[1]) };
            return (Err(e), [e.encode(), 0, 0, 0, 0]);
        }
        self.counts.record(cmd);
        crate::glue::totals::rmi_call(cmd);
        self.stage.escape();
        let r = smc(cmd, args);
        self.stage.escape();
        let status = RmiError::decode(r[0]);
        if status.is_ok() {
            crate::glue::totals::rmi_ok(cmd);
        }
        if status.is_err() {
            // SAFETY: the name is a `'static` C string; the tracepoint
            // only copies its arguments into the trace buffer.
            unsafe { kvm_rme_rmi_error(cmd.name().as_ptr(), r[0], args[0], args[1]) };
        }
        (status, r)
    }

    fn stage_pa(&self) -> u64 {
        self.stage.pa()
    }
}

impl Rmi for SmcRmi {
    fn version(&mut self, requested: RmiVersion) -> VersionReply {
        let (status, r) = self.call(Command::Version, [requested.encode(), 0, 0, 0, 0, 0]);
        VersionReply {
            status,
            info: VersionInfo {
                lower: RmiVersion::decode(r[1]),
                higher: RmiVersion::decode(r[2]),
            },
        }
    }

    fn features(&mut self, index: u64) -> RmiResult<u64> {
        let (s, r) = self.call(Command::Features, [index, 0, 0, 0, 0, 0]);
        s.map(|()| r[1])
    }

    fn granule_delegate(&mut self, pa: Pa) -> RmiResult {
        self.call(Command::GranuleDelegate, [pa.0, 0, 0, 0, 0, 0]).0
    }

    fn granule_undelegate(&mut self, pa: Pa) -> RmiResult {
        self.call(Command::GranuleUndelegate, [pa.0, 0, 0, 0, 0, 0])
            .0
    }

    fn data_create(&mut self, rd: Pa, data: Pa, ipa: Ipa, src: Pa, flags: u64) -> RmiResult {
        self.call(Command::DataCreate, [rd.0, data.0, ipa.0, src.0, flags, 0])
            .0
    }

    fn data_create_unknown(&mut self, rd: Pa, data: Pa, ipa: Ipa) -> RmiResult {
        self.call(Command::DataCreateUnknown, [rd.0, data.0, ipa.0, 0, 0, 0])
            .0
    }

    fn data_destroy(&mut self, rd: Pa, ipa: Ipa) -> RmiResult<Destroyed> {
        let (s, r) = self.call(Command::DataDestroy, [rd.0, ipa.0, 0, 0, 0, 0]);
        s.map(|()| Destroyed {
            pa: Pa(r[1]),
            top: Ipa(r[2]),
        })
    }

    fn realm_activate(&mut self, rd: Pa) -> RmiResult {
        self.call(Command::RealmActivate, [rd.0, 0, 0, 0, 0, 0]).0
    }

    fn realm_create(&mut self, rd: Pa, p: &RealmCreate) -> RmiResult {
        // The whole granule: no byte of an earlier call is left for the RMM.
        self.stage.get().realm = p.params();
        let params = self.stage_pa();
        self.call(Command::RealmCreate, [rd.0, params, 0, 0, 0, 0])
            .0
    }

    fn realm_destroy(&mut self, rd: Pa) -> RmiResult {
        self.call(Command::RealmDestroy, [rd.0, 0, 0, 0, 0, 0]).0
    }

    fn rec_create(&mut self, rd: Pa, rec: Pa, p: &RecCreate) -> RmiResult {
        self.stage.get().rec = p.params();
        let params = self.stage_pa();
        self.call(Command::RecCreate, [rd.0, rec.0, params, 0, 0, 0])
            .0
    }

    fn rec_destroy(&mut self, rec: Pa) -> RmiResult {
        self.call(Command::RecDestroy, [rec.0, 0, 0, 0, 0, 0]).0
    }

    fn rec_enter(&mut self, rec: Pa, run: &mut RecRun) -> RmiResult {
        self.stage.get().run.enter = run.enter;
        let page = self.stage_pa();
        let (s, _) = self.call(Command::RecEnter, [rec.0, page, 0, 0, 0, 0]);
        // SAFETY: `run` is the field last written, and every bit pattern
        // is a valid `RecExit` (integers and byte arrays only).
        run.exit = unsafe { self.stage.get().run.exit };
        s
    }

    fn rtt_create(&mut self, rd: Pa, rtt: Pa, ipa: Ipa, level: u8) -> RmiResult {
        self.call(
            Command::RttCreate,
            [rd.0, rtt.0, ipa.0, u64::from(level), 0, 0],
        )
        .0
    }

    fn rtt_destroy(&mut self, rd: Pa, ipa: Ipa, level: u8) -> (RmiResult<Pa>, Ipa) {
        let (s, r) = self.call(
            Command::RttDestroy,
            [rd.0, ipa.0, u64::from(level), 0, 0, 0],
        );
        (s.map(|()| Pa(r[1])), Ipa(r[2]))
    }

    fn rtt_map_unprotected(&mut self, rd: Pa, ipa: Ipa, level: u8, desc: u64) -> RmiResult {
        self.call(
            Command::RttMapUnprotected,
            [rd.0, ipa.0, u64::from(level), desc, 0, 0],
        )
        .0
    }

    fn rtt_read_entry(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<RttEntry> {
        let (s, r) = self.call(
            Command::RttReadEntry,
            [rd.0, ipa.0, u64::from(level), 0, 0, 0],
        );
        s.map(|()| RttEntry::decode([r[1], r[2], r[3], r[4]]))
    }

    fn rtt_unmap_unprotected(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Ipa> {
        let (s, r) = self.call(
            Command::RttUnmapUnprotected,
            [rd.0, ipa.0, u64::from(level), 0, 0, 0],
        );
        s.map(|()| Ipa(r[1]))
    }

    fn psci_complete(&mut self, calling_rec: Pa, target_rec: Pa, status: u64) -> RmiResult {
        self.call(
            Command::PsciComplete,
            [calling_rec.0, target_rec.0, status, 0, 0, 0],
        )
        .0
    }

    fn rtt_fold(&mut self, rd: Pa, ipa: Ipa, level: u8) -> RmiResult<Pa> {
        let (s, r) = self.call(Command::RttFold, [rd.0, ipa.0, u64::from(level), 0, 0, 0]);
        s.map(|()| Pa(r[1]))
    }

    fn rec_aux_count(&mut self, rd: Pa) -> RmiResult<u64> {
        let (s, r) = self.call(Command::RecAuxCount, [rd.0, 0, 0, 0, 0, 0]);
        s.map(|()| r[1])
    }

    fn rtt_init_ripas(&mut self, rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa> {
        let (s, r) = self.call(Command::RttInitRipas, [rd.0, base.0, top.0, 0, 0, 0]);
        s.map(|()| Ipa(r[1]))
    }

    fn rtt_set_ripas(&mut self, rd: Pa, rec: Pa, base: Ipa, top: Ipa) -> RmiResult<Ipa> {
        let (s, r) = self.call(Command::RttSetRipas, [rd.0, rec.0, base.0, top.0, 0, 0]);
        s.map(|()| Ipa(r[1]))
    }
}
