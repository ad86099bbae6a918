// SPDX-License-Identifier: GPL-2.0
//! TVM exit decoding: `scause` and `stval` from the host's CSRs (as the
//! TSM returns them), the rest from the NACL shared memory.

use kvm_cove::abi::{nacl, Gpa, RunExit, EXT_COVG};
use kvm_cove::logic::exit::{self, cause, forwarded, Exit, Mmio, NaclBuf, NaclShmem};

fn conf(g: Gpa) -> bool {
    (0x8000_0000..0x9000_0000).contains(&g.0)
}

/// A resumable exit with `scause` and `stval` in the host's CSRs.
fn run(scause: u64, stval: u64) -> RunExit {
    RunExit {
        ret: 0,
        scause,
        stval,
    }
}

/// A guest-page fault at `gpa`: the exit and the NACL area.  The NACL
/// slots of scause and stval hold garbage, as a TSM that never writes
/// them leaves them: decoding must not read them.
fn fault(scause: u64, gpa: u64, htinst: u64) -> (RunExit, NaclBuf) {
    let mut n = NaclBuf::default();
    n.set_csr(nacl::CSR_SCAUSE, cause::INTERRUPT | 9);
    n.set_csr(nacl::CSR_STVAL, !gpa);
    n.set_csr(nacl::CSR_HTVAL, gpa >> 2);
    n.set_csr(nacl::CSR_HTINST, htinst);
    (run(scause, gpa & 3), n)
}

#[test]
fn csr_slots_follow_the_nacl_layout() {
    assert_eq!(nacl::csr_index(nacl::CSR_SCAUSE), 0x42);
    assert_eq!(nacl::csr_index(nacl::CSR_HTVAL), 0x143);
    assert_eq!(nacl::csr_index(nacl::CSR_HTINST), 0x14a);
    let mut n = NaclBuf::default();
    n.set_csr(nacl::CSR_HTINST, 7);
    assert_eq!(n.0[(nacl::CSR_OFFSET + 8 * 0x14a) / 8], 7);
}

#[test]
fn confidential_fault_asks_for_a_page() {
    let (r, n) = fault(cause::STORE_GUEST_PAGE_FAULT, 0x8000_3ab8, 0);
    assert_eq!(
        exit::decode(r, &n, &conf),
        Exit::Fault {
            gpa: Gpa(0x8000_3000)
        }
    );
}

#[test]
fn mmio_store_and_load() {
    // sd a1, 0(a0) transformed: rs2 = x11, funct3 = 3, opcode 0x23.
    let (r, mut n) = fault(
        cause::STORE_GUEST_PAGE_FAULT,
        0x1000_0000,
        (11 << 20) | (3 << 12) | 0x23,
    );
    n.set_gpr(11, 0x1122_3344_5566_7788);
    assert_eq!(
        exit::decode(r, &n, &conf),
        Exit::Mmio(Mmio {
            gpa: Gpa(0x1000_0000),
            write: true,
            size: 8,
            reg: 11,
            signed: false,
            value: 0x1122_3344_5566_7788
        })
    );
    // sw: truncated.
    let (r, mut n) = fault(
        cause::STORE_GUEST_PAGE_FAULT,
        0x1000_0004,
        (11 << 20) | (2 << 12) | 0x23,
    );
    n.set_gpr(11, 0x1122_3344_5566_7788);
    let Exit::Mmio(m) = exit::decode(r, &n, &conf) else {
        panic!()
    };
    assert_eq!((m.size, m.value), (4, 0x5566_7788));
    // lh a2: sign-extended on completion.
    let (r, mut n) = fault(
        cause::LOAD_GUEST_PAGE_FAULT,
        0x1000_0008,
        (12 << 7) | (1 << 12) | 0x03,
    );
    let Exit::Mmio(m) = exit::decode(r, &n, &conf) else {
        panic!()
    };
    assert_eq!((m.write, m.size, m.reg, m.signed), (false, 2, 12, true));
    exit::complete_mmio_load(&mut n, &m, 0xffff_8001);
    assert_eq!(n.gpr(12), 0xffff_ffff_ffff_8001);
    // lbu: zero-extended.
    let (r, mut n) = fault(
        cause::LOAD_GUEST_PAGE_FAULT,
        0x1000_0008,
        (12 << 7) | (4 << 12) | 0x03,
    );
    let Exit::Mmio(m) = exit::decode(r, &n, &conf) else {
        panic!()
    };
    exit::complete_mmio_load(&mut n, &m, 0x1ff);
    assert_eq!(n.gpr(12), 0xff);
}

fn decode_fault(f: (RunExit, NaclBuf)) -> Exit {
    exit::decode(f.0, &f.1, &conf)
}

#[test]
fn undecodable_faults_are_refused() {
    // No transformed instruction: the host cannot read TVM memory.
    assert!(matches!(
        decode_fault(fault(cause::LOAD_GUEST_PAGE_FAULT, 0x1000_0000, 0)),
        Exit::Unhandled { .. }
    ));
    // A store syndrome on a load fault.
    assert!(matches!(
        decode_fault(fault(cause::LOAD_GUEST_PAGE_FAULT, 0x1000_0000, (3 << 12) | 0x23)),
        Exit::Unhandled { .. }
    ));
    // Instruction fetch from MMIO.
    assert!(matches!(
        decode_fault(fault(cause::INSN_GUEST_PAGE_FAULT, 0x1000_0000, 0)),
        Exit::Unhandled { .. }
    ));
}

fn ecall(ext: u64, fid: u64, a0: u64, a1: u64) -> NaclBuf {
    let mut n = NaclBuf::default();
    n.set_gpr(17, ext);
    n.set_gpr(16, fid);
    n.set_gpr(10, a0);
    n.set_gpr(11, a1);
    n
}

#[test]
fn ecalls() {
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(EXT_COVG, 2, 0x8000_0000, 0x2000), &conf),
        Exit::Share {
            gpa: Gpa(0x8000_0000),
            len: 0x2000
        }
    );
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(EXT_COVG, 3, 0x8000_0000, 0x1000), &conf),
        Exit::Unshare {
            gpa: Gpa(0x8000_0000),
            len: 0x1000
        }
    );
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(EXT_COVG, 0, 0, 0), &conf),
        Exit::CovgAck
    );
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(EXT_COVG, 4, 9, 0), &conf),
        Exit::AllowIrq { id: 9 }
    );
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(EXT_COVG, 5, u64::MAX, 0), &conf),
        Exit::DenyIrq { id: -1 }
    );
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(EXT_COVG, 42, 0, 0), &conf),
        Exit::SbiNotSupported
    );
    assert!(matches!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(forwarded::DBCN, 0, 5, 0), &conf),
        Exit::Sbi {
            ext: forwarded::DBCN,
            ..
        }
    ));
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(0x5449_4D45, 0, 0, 0), &conf),
        Exit::SbiNotSupported,
        "TIME is not forwarded"
    );
    let mut n = ecall(forwarded::HSM, 0, 0, 0);
    exit::complete_sbi(&mut n, -2, 7);
    assert_eq!((n.gpr(10), n.gpr(11)), ((-2i64) as u64, 7));
}

#[test]
fn interrupts_termination_and_virtual_instructions() {
    let n = NaclBuf::default();
    assert_eq!(exit::decode(run(cause::INTERRUPT | 5, 0), &n, &conf), Exit::Interrupt);
    let off = RunExit {
        ret: 1,
        scause: cause::INTERRUPT | 5,
        stval: 0,
    };
    assert_eq!(exit::decode(off, &n, &conf), Exit::Terminated);
    assert_eq!(
        exit::decode(run(cause::VIRTUAL_INSN, 0x1050_0073), &n, &conf),
        Exit::VirtualInsn
    );
    assert_eq!(exit::decode(run(2, 0), &n, &conf), Exit::Unhandled { scause: 2 });
}

/// The exit ABI as Salus has it: the cause is the host's `scause`, never
/// the NACL slot, which a TSM does not write.  Reading the slot (the bug
/// this guards against) would see 0 here and make every exit unhandled.
#[test]
fn scause_and_stval_come_from_the_host_csrs() {
    let mut n = ecall(forwarded::DBCN, 0, 5, 0x8000_1000);
    n.set_csr(nacl::CSR_SCAUSE, 0);
    n.set_csr(nacl::CSR_STVAL, 0);
    assert!(matches!(
        exit::decode(run(cause::VS_ECALL, 0), &n, &conf),
        Exit::Sbi {
            ext: forwarded::DBCN,
            ..
        }
    ));
    // The two low GPA bits of a fault are stval's.
    let mut n = NaclBuf::default();
    n.set_csr(nacl::CSR_HTVAL, 0x1000_0000 >> 2);
    n.set_csr(nacl::CSR_HTINST, (11 << 20) | (0 << 12) | 0x23);
    n.set_csr(nacl::CSR_STVAL, 0);
    let Exit::Mmio(m) = exit::decode(run(cause::STORE_GUEST_PAGE_FAULT, 3), &n, &conf) else {
        panic!("not an MMIO exit")
    };
    assert_eq!(m.gpa, Gpa(0x1000_0003));
}

/// A vCPU the TSM powered off on the guest's own ecall: SRST is the
/// shutdown request, HSM `HART_STOP` a stop; anything else terminates.
#[test]
fn fatal_ecalls() {
    let off = RunExit {
        ret: 1,
        scause: cause::VS_ECALL,
        stval: 0,
    };
    assert!(matches!(
        exit::decode(off, &ecall(forwarded::SRST, 0, 0, 0), &conf),
        Exit::Sbi {
            ext: forwarded::SRST,
            args: [0, ..],
            ..
        }
    ));
    assert_eq!(
        exit::decode(off, &ecall(forwarded::HSM, forwarded::HSM_HART_STOP, 0, 0), &conf),
        Exit::Stopped
    );
    assert_eq!(
        exit::decode(off, &ecall(forwarded::DBCN, 0, 0, 0), &conf),
        Exit::Terminated
    );
}

/// HSM `HART_START` is the TSM's: the host only learns which vCPU runs
/// now.  Other HSM calls are not the host's.
#[test]
fn hart_start_is_reported_not_forwarded() {
    assert_eq!(
        exit::decode(
            run(cause::VS_ECALL, 0),
            &ecall(forwarded::HSM, forwarded::HSM_HART_START, 3, 0),
            &conf
        ),
        Exit::HartStarted { hart: 3 }
    );
    assert_eq!(
        exit::decode(run(cause::VS_ECALL, 0), &ecall(forwarded::HSM, 3, 0, 0), &conf),
        Exit::SbiNotSupported
    );
}
