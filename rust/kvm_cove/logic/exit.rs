// SPDX-License-Identifier: GPL-2.0

//! TVM vCPU exits, decoded from what `TVM_VCPU_RUN` returns: `scause` and
//! `stval` in the host's own CSRs ([`RunExit`]), `htval`, `htinst` and
//! the guest's `a0`-`a7` in the NACL shared memory.

use crate::abi::nacl;
use crate::abi::Covg;
use crate::abi::{Gpa, RunExit, EXT_COVG};

/// Read access to the NACL shared memory.
pub trait NaclShmem {
    /// The value the TSM left for `csr`.
    fn csr(&self, csr: u16) -> u64;
    /// Guest register `x<i>` from the scratch area.
    fn gpr(&self, i: usize) -> u64;
    /// Writes guest register `x<i>` back for the next run.
    fn set_gpr(&mut self, i: usize, v: u64);
}

/// An in-memory NACL area (tests; the kernel maps the real one).
#[derive(Clone)]
pub struct NaclBuf(pub [u64; nacl::SIZE / 8]);

impl Default for NaclBuf {
    fn default() -> Self {
        NaclBuf([0; nacl::SIZE / 8])
    }
}

impl NaclBuf {
    /// Sets a CSR slot (the TSM's side).
    pub fn set_csr(&mut self, csr: u16, v: u64) {
        self.0[nacl::CSR_OFFSET / 8 + nacl::csr_index(csr)] = v;
    }
}

impl NaclShmem for NaclBuf {
    fn csr(&self, csr: u16) -> u64 {
        self.0[nacl::CSR_OFFSET / 8 + nacl::csr_index(csr)]
    }

    fn gpr(&self, i: usize) -> u64 {
        self.0.get(nacl::gpr_offset(i) / 8).copied().unwrap_or(0)
    }

    fn set_gpr(&mut self, i: usize, v: u64) {
        if i != 0 && i < 32 {
            self.0[nacl::gpr_offset(i) / 8] = v;
        }
    }
}

/// `scause` values the host handles.
pub mod cause {
    /// Environment call from VS-mode.
    pub const VS_ECALL: u64 = 10;
    /// Instruction guest-page fault.
    pub const INSN_GUEST_PAGE_FAULT: u64 = 20;
    /// Load guest-page fault.
    pub const LOAD_GUEST_PAGE_FAULT: u64 = 21;
    /// Virtual instruction.
    pub const VIRTUAL_INSN: u64 = 22;
    /// Store/AMO guest-page fault.
    pub const STORE_GUEST_PAGE_FAULT: u64 = 23;
    /// Interrupt bit.
    pub const INTERRUPT: u64 = 1 << 63;
}

/// SBI extensions a TVM may call through the host (the RFC's list).
pub mod forwarded {
    /// Debug console.
    pub const DBCN: u64 = 0x4442_434E;
    /// Hart state management.
    pub const HSM: u64 = 0x0048_534D;
    /// System reset.
    pub const SRST: u64 = 0x5352_5354;
    /// Legacy console putchar (v0.1).
    pub const LEGACY_PUTCHAR: u64 = 0x01;
    /// HSM `HART_START`.
    pub const HSM_HART_START: u64 = 0;
    /// HSM `HART_STOP`.
    pub const HSM_HART_STOP: u64 = 1;
}

/// A decoded MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    /// Guest physical address.
    pub gpa: Gpa,
    /// Store (`true`) or load.
    pub write: bool,
    /// Access size in bytes.
    pub size: u8,
    /// Destination (loads) or source (stores) register.
    pub reg: u8,
    /// Loads: sign-extend.
    pub signed: bool,
    /// Stores: the value (truncated to `size`).
    pub value: u64,
}

/// What a vCPU exit asks of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// An interrupt; re-enter.
    Interrupt,
    /// Emulate an MMIO access (a fault outside confidential memory).
    Mmio(Mmio),
    /// A fault in confidential memory with nothing mapped: add a page.
    Fault {
        /// Faulting GPA, page aligned.
        gpa: Gpa,
    },
    /// The TVM shares `[gpa, gpa+len)` with the host (COVG).
    Share {
        /// Start.
        gpa: Gpa,
        /// Length.
        len: u64,
    },
    /// The TVM takes `[gpa, gpa+len)` back (COVG).
    Unshare {
        /// Start.
        gpa: Gpa,
        /// Length.
        len: u64,
    },
    /// COVG calls the host only acknowledges (MMIO regions).
    CovgAck,
    /// The TVM allowed the host to inject interrupt `id` into this vCPU
    /// (COVG `ALLOW_EXTERNAL_INTERRUPT`, served by the TSM); -1 is all.
    AllowIrq {
        /// Interrupt ID, or -1.
        id: i64,
    },
    /// The TVM withdrew interrupt `id` (-1: all) from the host.
    DenyIrq {
        /// Interrupt ID, or -1.
        id: i64,
    },
    /// An SBI call the host forwards (to KVM's SBI code or userspace).
    Sbi {
        /// Extension.
        ext: u64,
        /// Function.
        fid: u64,
        /// a0..a5.
        args: [u64; 6],
    },
    /// An SBI call not available to TVMs: answer `SBI_ERR_NOT_SUPPORTED`.
    SbiNotSupported,
    /// Virtual instruction (WFI and friends).
    VirtualInsn,
    /// HSM `HART_START` of vCPU `hart`: the TSM started it and answered
    /// the caller already; the host lets that vCPU run.
    HartStarted {
        /// The vCPU the TVM started.
        hart: u64,
    },
    /// HSM `HART_STOP`: the TSM powered this vCPU off; it runs again only
    /// once another vCPU starts it.
    Stopped,
    /// The vCPU terminated.
    Terminated,
    /// Not run: the vCPU is powered off (the host did not call the TSM).
    NotRunning,
    /// Nothing the host can do: the run ends with an error.
    Unhandled {
        /// `scause`.
        scause: u64,
    },
}

/// Decodes the exit `r` of one `TVM_VCPU_RUN`, with `n` the NACL shared
/// memory the TSM filled.  `confidential(gpa)` tells whether a GPA lies in
/// a confidential region.
///
/// A vCPU the TSM powered off (`r.ret != 0`) is [`Exit::Terminated`],
/// unless the exit was the guest's own `ecall` to SRST (a shutdown or
/// reset request, [`Exit::Sbi`]) or to HSM `HART_STOP` ([`Exit::Stopped`]).
pub fn decode(r: RunExit, n: &dyn NaclShmem, confidential: &dyn Fn(Gpa) -> bool) -> Exit {
    let scause = r.scause;
    if !r.resumable() {
        if scause != cause::VS_ECALL {
            return Exit::Terminated;
        }
        return match decode_ecall(n) {
            e @ Exit::Sbi {
                ext: forwarded::SRST,
                ..
            } => e,
            Exit::Sbi {
                ext: forwarded::HSM,
                fid: forwarded::HSM_HART_STOP,
                ..
            } => Exit::Stopped,
            _ => Exit::Terminated,
        };
    }
    if scause & cause::INTERRUPT != 0 {
        return Exit::Interrupt;
    }
    match scause {
        cause::VS_ECALL => match decode_ecall(n) {
            Exit::Sbi {
                ext: forwarded::HSM,
                fid,
                args,
            } => {
                if fid == forwarded::HSM_HART_START {
                    Exit::HartStarted { hart: args[0] }
                } else {
                    // The TSM serves HART_STATUS itself and powers the
                    // vCPU off for HART_STOP; nothing else is for the host.
                    Exit::SbiNotSupported
                }
            }
            e => e,
        },
        cause::VIRTUAL_INSN => Exit::VirtualInsn,
        cause::LOAD_GUEST_PAGE_FAULT
        | cause::STORE_GUEST_PAGE_FAULT
        | cause::INSN_GUEST_PAGE_FAULT => {
            let gpa = Gpa((n.csr(nacl::CSR_HTVAL) << 2) | (r.stval & 3));
            if confidential(gpa) {
                return Exit::Fault {
                    gpa: Gpa(gpa.0 & !0xfff),
                };
            }
            if scause == cause::INSN_GUEST_PAGE_FAULT {
                return Exit::Unhandled { scause };
            }
            match decode_mmio(gpa, n.csr(nacl::CSR_HTINST), n) {
                Some(m) if m.write == (scause == cause::STORE_GUEST_PAGE_FAULT) => Exit::Mmio(m),
                _ => Exit::Unhandled { scause },
            }
        }
        _ => Exit::Unhandled { scause },
    }
}

fn decode_ecall(n: &dyn NaclShmem) -> Exit {
    // a0..a7 are x10..x17.
    let ext = n.gpr(17);
    let fid = n.gpr(16);
    let args = [
        n.gpr(10),
        n.gpr(11),
        n.gpr(12),
        n.gpr(13),
        n.gpr(14),
        n.gpr(15),
    ];
    if ext == EXT_COVG {
        return match Covg::from_fid(fid) {
            Some(Covg::ShareMemory) => Exit::Share {
                gpa: Gpa(args[0]),
                len: args[1],
            },
            Some(Covg::UnshareMemory) => Exit::Unshare {
                gpa: Gpa(args[0]),
                len: args[1],
            },
            // CAST: a0 is the signed ID (-1 = all).
            Some(Covg::AllowExtInterrupt) => Exit::AllowIrq { id: args[0] as i64 },
            // CAST: as above.
            Some(Covg::DenyExtInterrupt) => Exit::DenyIrq { id: args[0] as i64 },
            Some(Covg::AddMmioRegion | Covg::RemoveMmioRegion) => Exit::CovgAck,
            None => Exit::SbiNotSupported,
        };
    }
    match ext {
        forwarded::DBCN | forwarded::HSM | forwarded::SRST | forwarded::LEGACY_PUTCHAR => {
            Exit::Sbi { ext, fid, args }
        }
        _ => Exit::SbiNotSupported,
    }
}

/// Decodes a transformed load/store in `htinst` (0 = not provided: the
/// host cannot read TVM memory to decode it, so it gives up).
fn decode_mmio(gpa: Gpa, htinst: u64, n: &dyn NaclShmem) -> Option<Mmio> {
    if htinst == 0 {
        return None;
    }
    let opcode = htinst & 0x7f;
    let funct3 = (htinst >> 12) & 7;
    // Bit 1 clear in a transformed instruction marks a compressed original;
    // the opcode bits are still those of the 32-bit equivalent.
    let opcode = opcode | 0x3;
    match opcode {
        0x03 => {
            let (size, signed) = match funct3 {
                0 => (1, true),
                1 => (2, true),
                2 => (4, true),
                3 => (8, false),
                4 => (1, false),
                5 => (2, false),
                6 => (4, false),
                _ => return None,
            };
            // CAST: rd is 5 bits.
            Some(Mmio {
                gpa,
                write: false,
                size,
                reg: ((htinst >> 7) & 0x1f) as u8,
                signed,
                value: 0,
            })
        }
        0x23 => {
            if funct3 > 3 {
                return None;
            }
            let size = 1u8 << funct3;
            // CAST: rs2 is 5 bits.
            let reg = ((htinst >> 20) & 0x1f) as u8;
            let v = n.gpr(usize::from(reg));
            let value = if size == 8 {
                v
            } else {
                v & ((1u64 << (8 * u32::from(size))) - 1)
            };
            Some(Mmio {
                gpa,
                write: true,
                size,
                reg,
                signed: false,
                value,
            })
        }
        _ => None,
    }
}

/// The register value of MMIO load `m` that read `value`: sign- or
/// zero-extended from the access size.
pub fn load_value(m: &Mmio, value: u64) -> u64 {
    let bits = 8 * u32::from(m.size);
    if bits >= 64 {
        value
    } else if m.signed {
        let shift = 64 - bits;
        // CAST: reinterpret for an arithmetic shift, then back.
        (((value << shift) as i64) >> shift) as u64
    } else {
        value & ((1u64 << bits) - 1)
    }
}

/// Completes an MMIO load: writes the value, sign- or zero-extended, to
/// the destination register in the scratch area.
pub fn complete_mmio_load(n: &mut dyn NaclShmem, m: &Mmio, value: u64) {
    n.set_gpr(usize::from(m.reg), load_value(m, value));
}

/// Completes an SBI call: `a0` = error, `a1` = value.
pub fn complete_sbi(n: &mut dyn NaclShmem, error: i64, value: u64) {
    // CAST: a0 carries the signed SBI error.
    n.set_gpr(10, error as u64);
    n.set_gpr(11, value);
}
