// SPDX-License-Identifier: GPL-2.0

//! The RMI over SMC: the kernel's implementation of [`Rmi`].
//!
//! Arguments go in x1..x6 and results come back in x0..x4 (SMCCC 1.2,
//! SMC64).  Structures the RMM reads (realm and REC parameters, `rec_run`)
//! are staged in pages this module owns, so callers never need physical
//! addresses of their own buffers.

use core::mem::{offset_of, size_of};

use kernel::alloc::flags::{__GFP_ZERO, GFP_KERNEL};
use kernel::page::Page;
use kernel::prelude::*;

use crate::abi::v1_0::{Command, RealmParams, RecEnter, RecExit, RecParams, RecRun, RttEntry};
use crate::abi::v1_0::{Ripas, RttEntryState};
use crate::abi::{Ipa, Pa, RmiError, RmiResult, RmiVersion, VersionInfo};
use crate::rmi::{CallCounts, Destroyed, RealmCreate, RecCreate, Rmi, VersionReply};

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

extern "C" {
    // arch/arm64/kvm/rme_glue.c: the kvm_rme:kvm_rme_rmi_error tracepoint.
    fn kvm_rme_trace_rmi_error(fid: u32, status: u64, arg0: u64, arg1: u64);
}

/// Writes `v` at byte offset `off` of `page`.
fn put<T: Copy>(page: &Page, off: usize, v: T) -> Result {
    // SAFETY: `v` is a live `T` on the stack, readable for `size_of::<T>()`
    // bytes; `write_raw` checks that the range fits in the page.
    unsafe { page.write_raw((&v as *const T).cast::<u8>(), off, size_of::<T>()) }
}

/// The RMI through SMCs, with per-command call counters.
pub(crate) struct SmcRmi {
    /// Staging page for parameter structures and `rec_run`.
    stage: Page,
    /// Calls issued through this instance.
    pub(crate) counts: CallCounts,
}

impl SmcRmi {
    /// A conduit with its own staging page.
    pub(crate) fn new() -> Result<SmcRmi> {
        Ok(SmcRmi {
            stage: Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?,
            counts: CallCounts::default(),
        })
    }

    fn call(&mut self, cmd: Command, args: [u64; 6]) -> (RmiResult, [u64; 5]) {
        self.counts.record(cmd);
        let r = smc(cmd, args);
        let status = RmiError::decode(r[0]);
        if status.is_err() {
            // SAFETY: a plain C function of the glue (patch 0005); it
            // only records its arguments in the trace buffer.
            unsafe { kvm_rme_trace_rmi_error(cmd.fid(), r[0], args[0], args[1]) };
        }
        (status, r)
    }

    fn stage_pa(&self) -> u64 {
        self.stage.phys_addr()
    }

    /// Zeroes the staging page (a parameter structure is 4 KiB and any
    /// byte left from an earlier call would be read by the RMM).
    fn clear_stage(&self) -> RmiResult {
        // SAFETY: offset 0, length PAGE_SIZE is within the page.
        unsafe { self.stage.fill_zero_raw(0, kernel::page::PAGE_SIZE) }
            .map_err(|_| RmiError::input())
    }
}

fn stage_err(_: Error) -> RmiError {
    // The staging page is ours and in range; a failure here is a bug, so
    // report it as an input error rather than issuing the call.
    RmiError::input()
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
        self.clear_stage()?;
        let pg = &self.stage;
        (|| -> Result {
            put(pg, offset_of!(RealmParams, flags), p.flags)?;
            put(pg, offset_of!(RealmParams, s2sz), u64::from(p.s2sz))?;
            put(pg, offset_of!(RealmParams, sve_vl), u64::from(p.sve_vl))?;
            put(pg, offset_of!(RealmParams, num_bps), u64::from(p.num_bps))?;
            put(pg, offset_of!(RealmParams, num_wps), u64::from(p.num_wps))?;
            put(
                pg,
                offset_of!(RealmParams, pmu_num_ctrs),
                u64::from(p.pmu_num_ctrs),
            )?;
            // CAST: fieldless `repr(u8)` enum to its discriminant.
            put(pg, offset_of!(RealmParams, hash_algo), p.hash_algo as u8)?;
            put(pg, offset_of!(RealmParams, rpv), p.rpv)?;
            put(pg, offset_of!(RealmParams, vmid), p.vmid)?;
            put(pg, offset_of!(RealmParams, rtt_base), p.rtt_base.0)?;
            put(
                pg,
                offset_of!(RealmParams, rtt_level_start),
                i64::from(p.rtt_level_start),
            )?;
            put(
                pg,
                offset_of!(RealmParams, rtt_num_start),
                u32::from(p.rtt_num_start),
            )
        })()
        .map_err(stage_err)?;
        let params = self.stage_pa();
        self.call(Command::RealmCreate, [rd.0, params, 0, 0, 0, 0])
            .0
    }

    fn realm_destroy(&mut self, rd: Pa) -> RmiResult {
        self.call(Command::RealmDestroy, [rd.0, 0, 0, 0, 0, 0]).0
    }

    fn rec_create(&mut self, rd: Pa, rec: Pa, p: &RecCreate) -> RmiResult {
        self.clear_stage()?;
        let pg = &self.stage;
        (|| -> Result {
            let flags = if p.runnable {
                crate::abi::v1_0::REC_PARAMS_FLAG_RUNNABLE
            } else {
                0
            };
            put(pg, offset_of!(RecParams, flags), flags)?;
            put(pg, offset_of!(RecParams, mpidr), p.mpidr)?;
            put(pg, offset_of!(RecParams, pc), p.pc)?;
            put(pg, offset_of!(RecParams, gprs), p.gprs)?;
            let n = p.num_aux.min(p.aux.len());
            // CAST: n <= 16.
            put(pg, offset_of!(RecParams, num_aux), n as u64)?;
            for (i, a) in p.aux.iter().take(n).enumerate() {
                put(pg, offset_of!(RecParams, aux) + 8 * i, a.0)?;
            }
            Ok(())
        })()
        .map_err(stage_err)?;
        let params = self.stage_pa();
        self.call(Command::RecCreate, [rd.0, rec.0, params, 0, 0, 0])
            .0
    }

    fn rec_destroy(&mut self, rec: Pa) -> RmiResult {
        self.call(Command::RecDestroy, [rec.0, 0, 0, 0, 0, 0]).0
    }

    fn rec_enter(&mut self, rec: Pa, run: &mut RecRun) -> RmiResult {
        // SAFETY: `run.enter` is a live `repr(C)` struct without implicit
        // padding, readable for its size; `write_raw` bounds-checks.
        unsafe {
            self.stage.write_raw(
                (&run.enter as *const RecEnter).cast::<u8>(),
                0,
                size_of::<RecEnter>(),
            )
        }
        .map_err(stage_err)?;
        let page = self.stage_pa();
        let (s, _) = self.call(Command::RecEnter, [rec.0, page, 0, 0, 0, 0]);
        // SAFETY: `run.exit` is writable for its size and every bit pattern
        // is a valid `RecExit` (integers and byte arrays only).
        unsafe {
            self.stage.read_raw(
                (&mut run.exit as *mut RecExit).cast::<u8>(),
                size_of::<RecEnter>(),
                size_of::<RecExit>(),
            )
        }
        .map_err(stage_err)?;
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
        s?;
        let state = RttEntryState::from_u64(r[2]).ok_or(RmiError::input())?;
        // CAST: RIPAS is r[4][7:0].
        let ripas = Ripas::from_u8((r[4] & 0xff) as u8).ok_or(RmiError::input())?;
        // CAST: the level is 0..=3.
        Ok(RttEntry {
            level: (r[1] & 0xff) as u8,
            state,
            desc: r[3],
            ripas,
        })
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
