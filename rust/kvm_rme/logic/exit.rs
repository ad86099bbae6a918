// SPDX-License-Identifier: GPL-2.0

//! REC exits decoded into what the host must do, and the entry side that
//! reports the host's answer back to the RMM.

use crate::abi::{
    enter_flags, exit_reason, RecEnter, RecExit, Ripas, GICV3_HCR_HOST_MASK, REC_GIC_NUM_LRS,
};
use crate::abi::{Ipa, GRANULE_SIZE};
use crate::logic::realm::Geometry;

/// `ESR_ELx.EC` values the host handles.
mod ec {
    pub(super) const WFX: u64 = 0x01;
    pub(super) const SYS64: u64 = 0x18;
    pub(super) const IABT_LOW: u64 = 0x20;
    pub(super) const DABT_LOW: u64 = 0x24;
}

/// PSCI function IDs whose first argument is a target MPIDR.
pub mod psci {
    /// `PSCI_VERSION`.
    pub const VERSION: u32 = 0x8400_0000;
    /// `CPU_OFF`.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// `CPU_ON` (SMC64).
    pub const CPU_ON: u32 = 0xC400_0003;
    /// `AFFINITY_INFO` (SMC64).
    pub const AFFINITY_INFO: u32 = 0xC400_0004;
    /// `SYSTEM_OFF`.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// `SYSTEM_RESET`.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
}

/// An emulatable MMIO access (the RMM exposed the syndrome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    /// The faulting IPA (unprotected alias included).
    pub ipa: Ipa,
    /// Write (`true`) or read.
    pub write: bool,
    /// Access size in bytes (1, 2, 4 or 8).
    pub size: u8,
    /// Register number (`SRT`).
    pub reg: u8,
    /// Sign-extend a read (`SSE`).
    pub sign_extend: bool,
    /// Value written (already truncated to `size`); 0 for reads.
    pub value: u64,
}

/// What a REC exit asks the host to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Emulate an MMIO access, then enter with [`complete_mmio`].
    Mmio(Mmio),
    /// Map memory at `ipa` (a stage-2 fault without an emulatable syndrome).
    Fault {
        /// Faulting IPA, page aligned.
        ipa: Ipa,
        /// Whether the IPA is in the protected half.
        private: bool,
        /// A write access.
        write: bool,
        /// An instruction fetch.
        exec: bool,
    },
    /// A physical IRQ arrived: just re-enter.
    Irq,
    /// A physical FIQ arrived: just re-enter.
    Fiq,
    /// An SError was taken.
    SError {
        /// The syndrome.
        esr: u64,
    },
    /// WFI or WFE trapped.
    Wfx {
        /// WFE rather than WFI.
        wfe: bool,
    },
    /// System-register access to emulate.
    SysReg {
        /// The syndrome.
        esr: u64,
    },
    /// A PSCI call; complete it with `PSCI_COMPLETE` where it has a target.
    Psci {
        /// Function ID (x0).
        function: u32,
        /// x1..x3.
        args: [u64; 3],
    },
    /// The realm asks to change the RIPAS of `[base, top)`.
    RipasChange {
        /// Start (inclusive).
        base: Ipa,
        /// End (exclusive).
        top: Ipa,
        /// Requested state.
        ripas: Ripas,
    },
    /// `RSI_HOST_CALL`.
    HostCall {
        /// Immediate.
        imm: u16,
    },
    /// Something the host cannot handle: an unknown exit reason, a
    /// malformed RIPAS request, or an abort the host must not see.
    Unhandled {
        /// The exit reason.
        reason: u8,
        /// The syndrome.
        esr: u64,
    },
}

impl Exit {
    /// For PSCI calls with a target vCPU (`CPU_ON`, `AFFINITY_INFO`), its
    /// MPIDR.
    pub fn psci_target(&self) -> Option<u64> {
        match *self {
            Exit::Psci {
                function: psci::CPU_ON | psci::AFFINITY_INFO,
                args,
                ..
            } => Some(args[0]),
            _ => None,
        }
    }
}

/// Decodes the exit half of `rec_run`.
pub fn decode(exit: &RecExit, geo: &Geometry) -> Exit {
    let esr = exit.esr;
    match exit.exit_reason {
        exit_reason::SYNC => decode_sync(exit, geo),
        exit_reason::IRQ => Exit::Irq,
        exit_reason::FIQ => Exit::Fiq,
        exit_reason::SERROR => Exit::SError { esr },
        exit_reason::PSCI => Exit::Psci {
            // CAST: PSCI function IDs are 32 bits (x0[31:0]).
            function: exit.gprs[0] as u32,
            args: [exit.gprs[1], exit.gprs[2], exit.gprs[3]],
        },
        exit_reason::RIPAS_CHANGE => {
            let (base, top) = (exit.ripas_base, exit.ripas_top);
            match Ripas::from_u8(exit.ripas_value) {
                Some(ripas @ (Ripas::Empty | Ripas::Ram))
                    if base < top
                        && base % GRANULE_SIZE == 0
                        && top % GRANULE_SIZE == 0
                        && top <= geo.shared_bit() =>
                {
                    Exit::RipasChange {
                        base: Ipa(base),
                        top: Ipa(top),
                        ripas,
                    }
                }
                _ => Exit::Unhandled {
                    reason: exit_reason::RIPAS_CHANGE,
                    esr,
                },
            }
        }
        exit_reason::HOST_CALL => Exit::HostCall { imm: exit.imm },
        reason => Exit::Unhandled { reason, esr },
    }
}

fn decode_sync(exit: &RecExit, geo: &Geometry) -> Exit {
    let esr = exit.esr;
    let class = (esr >> 26) & 0x3f;
    match class {
        ec::WFX => Exit::Wfx { wfe: esr & 1 != 0 },
        ec::SYS64 => Exit::SysReg { esr },
        ec::DABT_LOW | ec::IABT_LOW => {
            // HPFAR_EL2.FIPA holds IPA[51:12] at bits [43:4].
            let page = ((exit.hpfar >> 4) & ((1 << 40) - 1)) << 12;
            let ipa = Ipa(page | (exit.far & (GRANULE_SIZE - 1)));
            if !geo.contains(ipa) {
                return Exit::Unhandled {
                    reason: exit_reason::SYNC,
                    esr,
                };
            }
            let private = geo.is_protected(ipa);
            let isv = esr & (1 << 24) != 0;
            if class == ec::DABT_LOW && isv && !private {
                let write = esr & (1 << 6) != 0;
                // CAST: SAS is 2 bits, SRT 5 bits.
                let size = 1u8 << ((esr >> 22) & 3);
                let reg = ((esr >> 16) & 0x1f) as u8;
                let value = if write {
                    truncate(exit.gprs[0], size)
                } else {
                    0
                };
                return Exit::Mmio(Mmio {
                    ipa,
                    write,
                    size,
                    reg,
                    sign_extend: esr & (1 << 21) != 0,
                    value,
                });
            }
            Exit::Fault {
                ipa: Ipa(page),
                private,
                write: class == ec::DABT_LOW && esr & (1 << 6) != 0,
                exec: class == ec::IABT_LOW,
            }
        }
        _ => Exit::Unhandled {
            reason: exit_reason::SYNC,
            esr,
        },
    }
}

fn truncate(v: u64, size: u8) -> u64 {
    if size >= 8 {
        v
    } else {
        v & ((1u64 << (8 * u32::from(size))) - 1)
    }
}

/// Timer state the RMM reports on every exit: the realm's EL1 virtual
/// and physical timers.  The host mirrors it into its timer emulation
/// (which line is raised) and sleeps an idle vCPU until the earlier one
/// is due.  Realms have no counter offset: both count the physical
/// counter.  This is the one place the timer arithmetic lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    /// `CNTV_CTL_EL0`.
    pub cntv_ctl: u64,
    /// `CNTV_CVAL_EL0`.
    pub cntv_cval: u64,
    /// `CNTP_CTL_EL0`.
    pub cntp_ctl: u64,
    /// `CNTP_CVAL_EL0`.
    pub cntp_cval: u64,
}

/// `CNTx_CTL_EL0.ENABLE`.
const CTL_ENABLE: u64 = 1 << 0;
/// `CNTx_CTL_EL0.IMASK`.
const CTL_IMASK: u64 = 1 << 1;

impl Timers {
    /// Reads the timers from an exit.
    pub fn from_exit(exit: &RecExit) -> Timers {
        Timers {
            cntv_ctl: exit.cntv_ctl,
            cntv_cval: exit.cntv_cval,
            cntp_ctl: exit.cntp_ctl,
            cntp_cval: exit.cntp_cval,
        }
    }

    /// Control words, virtual then physical.
    pub fn ctl(&self) -> [u64; 2] {
        [self.cntv_ctl, self.cntp_ctl]
    }

    /// Compare values, virtual then physical.
    pub fn cval(&self) -> [u64; 2] {
        [self.cntv_cval, self.cntp_cval]
    }

    /// Whether each timer (virtual, physical) is enabled, unmasked and
    /// due at counter value `now`: its interrupt line is raised.
    pub fn firing(&self, now: u64) -> [bool; 2] {
        let fire =
            |ctl: u64, cval: u64| ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE && now >= cval;
        [
            fire(self.cntv_ctl, self.cntv_cval),
            fire(self.cntp_ctl, self.cntp_cval),
        ]
    }

    /// Whether the virtual timer fires at `now`.
    pub fn vtimer_pending(&self, now: u64) -> bool {
        self.firing(now)[0]
    }

    /// Counter ticks from `now` until the earlier armed timer is due (0 if
    /// one is due already); `None` if neither is armed.
    pub fn ticks_to_next(&self, now: u64) -> Option<u64> {
        self.ctl()
            .iter()
            .zip(self.cval())
            .filter(|(ctl, _)| **ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE)
            .map(|(_, cval)| cval.saturating_sub(now))
            .min()
    }

    /// How long an idle vCPU may sleep, in jiffies of a `hz` tick, for a
    /// counter of `rate` Hz: until the earlier armed timer is due, rounded
    /// up and at least 1, and at most a second (also without an armed
    /// timer or a known rate, as the vgic still wakes it).
    pub fn idle_jiffies(&self, now: u64, rate: u32, hz: u32) -> u64 {
        let max = u64::from(hz.max(1));
        match (self.ticks_to_next(now), rate) {
            (Some(ticks), rate) if rate != 0 => {
                // Counter ticks per jiffy (no 128-bit division in the
                // kernel); at least 1.
                let per = (u64::from(rate) / max).max(1);
                (ticks / per).saturating_add(1).clamp(1, max)
            }
            _ => max,
        }
    }
}

/// Clears the entry flags before a new entry (they describe one exit).
pub fn begin_entry(enter: &mut RecEnter) {
    enter.flags &= enter_flags::TRAP_WFI | enter_flags::TRAP_WFE;
}

/// Reports an emulated MMIO access; for reads `value` is what the realm
/// reads (truncated to the access size).
pub fn complete_mmio(enter: &mut RecEnter, mmio: &Mmio, value: u64) {
    enter.flags |= enter_flags::EMULATED_MMIO;
    if !mmio.write {
        enter.gprs[0] = truncate(value, mmio.size);
    }
}

/// Injects a synchronous external abort (an access the host cannot back).
pub fn inject_sea(enter: &mut RecEnter) {
    enter.flags |= enter_flags::INJECT_SEA;
}

/// Answers a RIPAS change request.
pub fn ripas_response(enter: &mut RecEnter, accept: bool) {
    if accept {
        enter.flags &= !enter_flags::RIPAS_RESPONSE_REJECT;
    } else {
        enter.flags |= enter_flags::RIPAS_RESPONSE_REJECT;
    }
}

/// Writes the return values of a host call (x0..x6).
pub fn complete_host_call(enter: &mut RecEnter, gprs: &[u64; 7]) {
    enter.gprs[..7].copy_from_slice(gprs);
}

/// Sets whether WFI/WFE trap to the host.
pub fn trap_wfx(enter: &mut RecEnter, wfi: bool, wfe: bool) {
    enter.flags &= !(enter_flags::TRAP_WFI | enter_flags::TRAP_WFE);
    if wfi {
        enter.flags |= enter_flags::TRAP_WFI;
    }
    if wfe {
        enter.flags |= enter_flags::TRAP_WFE;
    }
}

/// Loads the virtual GIC state: the host-controlled bits of `ICH_HCR_EL2`
/// (the vgic's `En` is the RMM's business) and up to `num_lrs` list
/// registers (see [`Features0::gic_lrs`]); unused LRs are cleared.
/// Returns how many of `lrs` were loaded.
///
/// [`Features0::gic_lrs`]: crate::abi::Features0::gic_lrs
pub fn load_gic(enter: &mut RecEnter, hcr: u64, lrs: &[u64], num_lrs: usize) -> usize {
    let n = lrs.len().min(num_lrs).min(REC_GIC_NUM_LRS);
    enter.gicv3_hcr = hcr & GICV3_HCR_HOST_MASK;
    enter.gicv3_lrs = [0; REC_GIC_NUM_LRS];
    enter.gicv3_lrs[..n].copy_from_slice(&lrs[..n]);
    n
}
