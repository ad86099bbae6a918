// SPDX-License-Identifier: GPL-2.0

//! The RMI over SMC: the kernel's implementation of [`Rmi`].
//!
//! Arguments go in x1..x6 and results come back in x0..x4 (SMCCC 1.2,
//! SMC64).  One conduit speaks the version the boot probe negotiated
//! ([`set_abi`]); each method is one command, with that version's
//! layouts.  For RMI 2.0, `REC_ENTER` also programs the GIC's list
//! registers in the CPU, which 2.0 no longer carries in `rec_run`.  Structures the RMM reads (realm and REC parameters, `rec_run`)
//! are staged in a granule this module owns, so callers never need
//! physical addresses of their own buffers.  The structures are encoded by
//! the logic (`RealmCreate::params`, `RecCreate::params`) and copied here
//! whole: staging cannot fail, and nothing but the RMM's answer becomes an
//! [`RmiError`].

use core::mem::size_of;

use kernel::bindings;
use kernel::prelude::*;

use core::sync::atomic::{AtomicU32, Ordering};

use crate::abi::v2;
use crate::abi::{Command, RealmParams, RecParams, RecRun, RttEntry};
use crate::abi::{ErrorStatus, GICV3_HCR_HOST_MASK, GRANULE_SIZE, REC_GIC_NUM_LRS};
use crate::cvm_fw::staging::Staging;
use crate::abi::{Ipa, Pa, RmiError, RmiResult, RmiVersion, VersionInfo};
use crate::logic::rmi::{CallCounts, Destroyed, RealmCreate, RecCreate, Rmi, VersionReply};
use crate::logic::rmi::{Sro, SroStep, Unmapped};

/// The negotiated interface version, `major << 16 | minor` (0: none yet,
/// which conduits treat as 1.0, the version the probe starts from).
static ABI: AtomicU32 = AtomicU32::new(0);

/// Records the version the probe negotiated; conduits made afterwards
/// speak it.
pub(crate) fn set_abi(v: RmiVersion) {
    // CAST: the encoding is 32 bits wide.
    ABI.store(v.encode() as u32, Ordering::Relaxed);
}

fn abi() -> RmiVersion {
    match ABI.load(Ordering::Relaxed) {
        0 => RmiVersion::V1_0,
        v => RmiVersion::decode(u64::from(v)),
    }
}

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

/// Granules from `base` to the `next` a range command returned (within
/// `[base, top]`; anything else counts as none, and the logic refuses it).
fn granules(base: Pa, next: Pa, top: Pa) -> i64 {
    if next.0 < base.0 || next.0 > top.0 {
        return 0;
    }
    // CAST: at most 2^52 / 4096.
    ((next.0 - base.0) / GRANULE_SIZE) as i64
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
    realm2: v2::RealmParams,
    rec2: v2::RecParams,
    run2: v2::RecRun,
    config: v2::RmmConfig,
    /// An address list (`RmiAddrRangeDesc` entries).
    list: [u64; 512],
}

const _: () = {
    assert!(size_of::<Stage>() == GRANULE_SIZE as usize);
    assert!(size_of::<v2::RealmParams>() == GRANULE_SIZE as usize);
    assert!(size_of::<v2::RecParams>() == GRANULE_SIZE as usize);
    assert!(size_of::<v2::RecRun>() == GRANULE_SIZE as usize);
    assert!(size_of::<v2::RmmConfig>() == GRANULE_SIZE as usize);
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
    /// The version this conduit speaks.
    version: RmiVersion,
    /// 2.0: the parameters of the `REC_CREATE` in progress, which the RMM
    /// reads from the staging granule only at the operation's last step.
    rec_create: Option<RecCreate>,
}

impl SmcRmi {
    /// A conduit with its own staging granule.
    pub(crate) fn new() -> Result<SmcRmi> {
        Ok(SmcRmi {
            // SAFETY: `Stage` is a 4 KiB, 4 KiB-aligned union of integer
            // structures (asserted above and by `Staging::new`).
            stage: unsafe { Staging::new() }?,
            counts: CallCounts::default(),
            version: abi(),
            rec_create: None,
        })
    }

    /// Where a 2.0 stateful operation stands after a call that returned
    /// `status` and registers `r`; `handle` is the operation's (x1 of the
    /// command that started it).
    fn sro(status: RmiResult, r: &[u64; 5], handle: u64) -> RmiResult<Sro> {
        match status {
            Ok(()) => Ok(Sro::Done),
            Err(e) if e.status == ErrorStatus::Incomplete => {
                let Some((req, can_cancel)) = v2::incomplete::decode(r[0]) else {
                    return Err(e);
                };
                let next = match req {
                    v2::MemRequest::None => SroStep::Continue,
                    v2::MemRequest::Donate => SroStep::Donate(v2::DonateReq::decode(r[2])),
                    v2::MemRequest::Reclaim => SroStep::Reclaim,
                    // A request 2.0 does not define: the status as is,
                    // which the logic treats as the RMM's failure.
                    v2::MemRequest::Unknown(_) => return Err(e),
                };
                Ok(Sro::Incomplete {
                    handle,
                    next,
                    can_cancel,
                })
            }
            Err(e) => Err(e),
        }
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
        if matches!(status, Err(e) if e.status != ErrorStatus::Incomplete) {
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
    fn abi(&self) -> RmiVersion {
        self.version
    }

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
        if self.version.major >= 2 {
            self.stage.get().realm2 = v2::RealmParams::from_v1(&p.params());
        } else {
            self.stage.get().realm = p.params();
        }
        let params = self.stage_pa();
        self.call(Command::RealmCreate, [rd.0, params, 0, 0, 0, 0])
            .0
    }

    fn realm_destroy(&mut self, rd: Pa) -> RmiResult {
        self.call(Command::RealmDestroy, [rd.0, 0, 0, 0, 0, 0]).0
    }

    fn rec_create(&mut self, rd: Pa, rec: Pa, p: &RecCreate) -> RmiResult<Sro> {
        if self.version.major >= 2 {
            // 2.0 reads the parameters only at the operation's last step,
            // from this granule, which `OP_MEM_DONATE` uses for its list
            // meanwhile: `op_continue` stages them again.
            self.stage.get().rec2 = v2::RecParams::from_v1(&p.params());
            self.rec_create = Some(p.clone());
        } else {
            self.stage.get().rec = p.params();
        }
        let params = self.stage_pa();
        let (s, r) = self.call(Command::RecCreate, [rd.0, rec.0, params, 0, 0, 0]);
        Self::sro(s, &r, r[1])
    }

    fn rec_destroy(&mut self, rec: Pa) -> RmiResult<Sro> {
        let (s, r) = self.call(Command::RecDestroy, [rec.0, 0, 0, 0, 0, 0]);
        Self::sro(s, &r, r[1])
    }

    fn rec_enter(&mut self, rec: Pa, run: &mut RecRun) -> RmiResult {
        if self.version.major >= 2 {
            return self.rec_enter_v2(rec, run);
        }
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

    fn rmm_config_set(&mut self) -> RmiResult {
        self.stage.get().config = v2::RmmConfig::default();
        let page = self.stage_pa();
        self.call(Command::RmmConfigSet, [page, 0, 0, 0, 0, 0]).0
    }

    fn rmm_activate(&mut self) -> RmiResult {
        self.call(Command::RmmActivate, [0; 6]).0
    }

    fn granule_range_delegate(&mut self, base: Pa, top: Pa) -> RmiResult<Pa> {
        let (s, r) = self.call(Command::GranuleRangeDelegate, [base.0, top.0, 0, 0, 0, 0]);
        s.map(|()| {
            crate::glue::totals::delegated_range(granules(base, Pa(r[1]), top));
            Pa(r[1])
        })
    }

    fn granule_range_undelegate(&mut self, base: Pa, top: Pa) -> RmiResult<Pa> {
        let (s, r) = self.call(Command::GranuleRangeUndelegate, [base.0, top.0, 0, 0, 0, 0]);
        s.map(|()| {
            crate::glue::totals::delegated_range(-granules(base, Pa(r[1]), top));
            Pa(r[1])
        })
    }

    fn rtt_data_map(&mut self, rd: Pa, base: Ipa, top: Ipa, data: Pa) -> RmiResult<Ipa> {
        let (s, r) = self.call(
            Command::RttDataMap,
            [rd.0, base.0, top.0, v2::ADDR_TYPE_SINGLE, data.0, 0],
        );
        s.map(|()| Ipa(r[1]))
    }

    fn rtt_data_unmap(&mut self, rd: Pa, base: Ipa, top: Ipa) -> RmiResult<Unmapped> {
        let (s, r) = self.call(
            Command::RttDataUnmap,
            [rd.0, base.0, top.0, v2::ADDR_TYPE_SINGLE, 0, 0],
        );
        s.map(|()| {
            let d = v2::AddrRangeDesc::decode(r[2]);
            Unmapped {
                pa: (d.count != 0).then_some(Pa(d.pa)),
                top: Ipa(r[1]),
            }
        })
    }

    fn op_continue(&mut self, handle: u64) -> RmiResult<Sro> {
        if let Some(p) = &self.rec_create {
            // The REC's parameters, which 2.0 reads only now.
            let g = v2::RecParams::from_v1(&p.params());
            self.stage.get().rec2 = g;
        }
        let (s, r) = self.call(Command::OpContinue, [handle, 0, 0, 0, 0, 0]);
        let sro = Self::sro(s, &r, handle);
        if !matches!(sro, Ok(Sro::Incomplete { .. })) {
            self.rec_create = None;
        }
        sro
    }

    fn op_mem_donate(&mut self, handle: u64, granules: &[Pa]) -> RmiResult<(usize, Sro)> {
        let n = granules.len().min(512);
        // SAFETY: every bit pattern is a valid `[u64; 512]`; the list is
        // the field written now.
        let list = unsafe { &mut self.stage.get().list };
        for (d, g) in list.iter_mut().zip(granules.iter().take(n)) {
            *d = v2::AddrRangeDesc {
                size: 0,
                count: 1,
                pa: g.0,
                undelegated: false,
            }
            .encode();
        }
        let page = self.stage_pa();
        // CAST: n <= 512.
        let (s, r) = self.call(Command::OpMemDonate, [handle, page, n as u64, 0, 0, 0]);
        let sro = Self::sro(s, &r, handle)?;
        // CAST: checked against what was offered by the logic.
        Ok((usize::try_from(r[1]).unwrap_or(usize::MAX), sro))
    }

    fn op_mem_reclaim(&mut self, handle: u64, out: &mut [Pa]) -> RmiResult<(usize, Sro)> {
        let cap = out.len().min(512);
        let page = self.stage_pa();
        // CAST: cap <= 512.
        let (s, r) = self.call(Command::OpMemReclaim, [handle, page, cap as u64, 0, 0, 0]);
        let sro = Self::sro(s, &r, handle)?;
        let written = usize::try_from(r[1]).unwrap_or(usize::MAX).min(cap);
        // SAFETY: every bit pattern is a valid `[u64; 512]`; the RMM wrote
        // `written` entries.
        let list = unsafe { self.stage.get().list };
        // Descriptors coalesce neighbouring granules: expand them.
        let mut n = 0usize;
        for e in list.iter().take(written) {
            let d = v2::AddrRangeDesc::decode(*e);
            if d.size != 0 || d.undelegated {
                // Not what the host donated: report more than `out` holds,
                // which the logic refuses as a protocol error.
                return Ok((usize::MAX, sro));
            }
            for i in 0..u64::from(d.count) {
                match out.get_mut(n) {
                    Some(o) => *o = Pa(d.pa + i * GRANULE_SIZE),
                    None => return Ok((usize::MAX, sro)),
                }
                n += 1;
            }
        }
        Ok((n, sro))
    }

    fn op_cancel(&mut self, handle: u64) -> RmiResult {
        self.call(Command::OpCancel, [handle, 0, 0, 0, 0, 0]).0
    }
}

impl SmcRmi {
    /// 2.0's `REC_ENTER`: `rec_run` carries flags and GPRs; the GIC's
    /// list registers and `ICH_HCR_EL2` (with `En`, which the RMM no
    /// longer sets) are written to the CPU right before the SMC and read
    /// back right after, with interrupts masked so that nothing else runs
    /// on this CPU in between.  `ICH_VMCR_EL2` and the active-priority
    /// registers are the vCPU's already (loaded with it, as for any KVM
    /// vCPU) and hold the realm's after the exit (saved when the vCPU is
    /// put); the VMCR is also reported in the exit, as 1.0 did.
    fn rec_enter_v2(&mut self, rec: Pa, run: &mut RecRun) -> RmiResult {
        {
            let st = self.stage.get();
            st.run2 = v2::RecRun::default();
            // SAFETY: `run2` is the field just written, whole.
            unsafe { st.run2.set_enter(run) };
        }
        let page = self.stage_pa();
        let nr = gic::num_lrs().min(REC_GIC_NUM_LRS);
        let hcr = (run.enter.gicv3_hcr & GICV3_HCR_HOST_MASK) | gic::HCR_EN;
        let lrs = run.enter.gicv3_lrs;
        let flags = gic::irq_save();
        gic::load(hcr, &lrs, nr);
        let (s, _) = self.call(Command::RecEnter, [rec.0, page, 0, 0, 0, 0]);
        let hw = gic::save(nr);
        gic::irq_restore(flags);
        // SAFETY: `run2` is the field last written (by the RMM), and every
        // bit pattern is a valid `v2::RecRun`.
        let run2 = unsafe { self.stage.get().run2 };
        run2.exit_into(run);
        run.exit.gicv3_hcr = hw.hcr;
        run.exit.gicv3_lrs = [0; REC_GIC_NUM_LRS];
        run.exit.gicv3_lrs[..nr].copy_from_slice(&hw.lrs[..nr]);
        run.exit.gicv3_misr = hw.misr;
        run.exit.gicv3_vmcr = hw.vmcr;
        s
    }
}

/// The GICv3 virtual CPU interface's EL2 registers, for RMI 2.0.
mod gic {
    use crate::abi::REC_GIC_NUM_LRS;

    /// `ICH_HCR_EL2.En`.
    pub(super) const HCR_EN: u64 = 1;

    macro_rules! read_sysreg {
        ($r:literal) => {{
            let v: u64;
            // SAFETY: an EL2 register of the GIC's CPU interface, read at
            // EL2 (realm hosts run at EL2, checked at probe).
            unsafe { core::arch::asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack)) };
            v
        }};
    }

    macro_rules! write_sysreg {
        ($r:literal, $v:expr) => {{
            let v: u64 = $v;
            // SAFETY: an EL2 register of the GIC's CPU interface, written
            // at EL2 with interrupts masked; the host runs no vCPU here
            // until it is written again.
            unsafe { core::arch::asm!(concat!("msr ", $r, ", {}"), in(reg) v, options(nostack)) };
        }};
    }

    /// Implemented list registers (`ICH_VTR_EL2.ListRegs + 1`).
    pub(super) fn num_lrs() -> usize {
        // CAST: five bits.
        (read_sysreg!("s3_4_c12_c11_1") & 0x1f) as usize + 1
    }

    fn set_lr(i: usize, v: u64) {
        match i {
            0 => write_sysreg!("s3_4_c12_c12_0", v),
            1 => write_sysreg!("s3_4_c12_c12_1", v),
            2 => write_sysreg!("s3_4_c12_c12_2", v),
            3 => write_sysreg!("s3_4_c12_c12_3", v),
            4 => write_sysreg!("s3_4_c12_c12_4", v),
            5 => write_sysreg!("s3_4_c12_c12_5", v),
            6 => write_sysreg!("s3_4_c12_c12_6", v),
            7 => write_sysreg!("s3_4_c12_c12_7", v),
            8 => write_sysreg!("s3_4_c12_c13_0", v),
            9 => write_sysreg!("s3_4_c12_c13_1", v),
            10 => write_sysreg!("s3_4_c12_c13_2", v),
            11 => write_sysreg!("s3_4_c12_c13_3", v),
            12 => write_sysreg!("s3_4_c12_c13_4", v),
            13 => write_sysreg!("s3_4_c12_c13_5", v),
            14 => write_sysreg!("s3_4_c12_c13_6", v),
            15 => write_sysreg!("s3_4_c12_c13_7", v),
            _ => {}
        }
    }

    fn get_lr(i: usize) -> u64 {
        match i {
            0 => read_sysreg!("s3_4_c12_c12_0"),
            1 => read_sysreg!("s3_4_c12_c12_1"),
            2 => read_sysreg!("s3_4_c12_c12_2"),
            3 => read_sysreg!("s3_4_c12_c12_3"),
            4 => read_sysreg!("s3_4_c12_c12_4"),
            5 => read_sysreg!("s3_4_c12_c12_5"),
            6 => read_sysreg!("s3_4_c12_c12_6"),
            7 => read_sysreg!("s3_4_c12_c12_7"),
            8 => read_sysreg!("s3_4_c12_c13_0"),
            9 => read_sysreg!("s3_4_c12_c13_1"),
            10 => read_sysreg!("s3_4_c12_c13_2"),
            11 => read_sysreg!("s3_4_c12_c13_3"),
            12 => read_sysreg!("s3_4_c12_c13_4"),
            13 => read_sysreg!("s3_4_c12_c13_5"),
            14 => read_sysreg!("s3_4_c12_c13_6"),
            15 => read_sysreg!("s3_4_c12_c13_7"),
            _ => 0,
        }
    }

    /// Masks IRQs and FIQs; returns the previous `DAIF`.
    pub(super) fn irq_save() -> u64 {
        let daif: u64;
        // SAFETY: reading DAIF has no side effect; masking IRQs and FIQs
        // only delays them until `irq_restore`, which the one caller
        // makes right after the SMC on every path.
        unsafe {
            core::arch::asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nomem, nostack))
        };
        daif
    }

    /// Restores the `DAIF` of [`irq_save`].
    pub(super) fn irq_restore(daif: u64) {
        // SAFETY: `daif` is the value `irq_save` read on this CPU, so this
        // restores the masking the caller had.
        unsafe { core::arch::asm!("msr daif, {}", in(reg) daif, options(nomem, nostack)) };
    }

    /// Programs the CPU interface for an entry: the first `nr` list
    /// registers (the unused ones cleared) and `ICH_HCR_EL2`.
    pub(super) fn load(hcr: u64, lrs: &[u64; REC_GIC_NUM_LRS], nr: usize) {
        for (i, lr) in lrs.iter().enumerate().take(nr) {
            set_lr(i, *lr);
        }
        write_sysreg!("s3_4_c12_c11_0", hcr);
        // SAFETY: a context synchronisation barrier.
        unsafe { core::arch::asm!("isb", options(nomem, nostack)) };
    }

    /// What an exit left in the CPU interface.
    pub(super) struct Saved {
        pub(super) hcr: u64,
        pub(super) lrs: [u64; REC_GIC_NUM_LRS],
        pub(super) misr: u64,
        pub(super) vmcr: u64,
    }

    /// Reads the realm's list registers, `ICH_HCR/MISR/VMCR_EL2` after an
    /// exit, then clears the list registers and `ICH_HCR_EL2`.
    pub(super) fn save(nr: usize) -> Saved {
        let mut s = Saved {
            hcr: read_sysreg!("s3_4_c12_c11_0"),
            lrs: [0; REC_GIC_NUM_LRS],
            misr: read_sysreg!("s3_4_c12_c11_2"),
            vmcr: read_sysreg!("s3_4_c12_c11_7"),
        };
        for (i, lr) in s.lrs.iter_mut().enumerate().take(nr) {
            *lr = get_lr(i);
            set_lr(i, 0);
        }
        write_sysreg!("s3_4_c12_c11_0", 0);
        s
    }
}
