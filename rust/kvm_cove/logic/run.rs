// SPDX-License-Identifier: GPL-2.0

//! One step of a TVM vCPU: enter through `TVM_VCPU_RUN`, decode the exit
//! from the NACL shared memory, and serve in the kernel what the kernel
//! can serve (faults, share and unshare, COVG acknowledgements, refused
//! SBI calls).  The rest goes to userspace as a `KVM_RUN` exit.
//!
//! Answers to the TVM (an MMIO load's value, an SBI call's `a0`/`a1`) are
//! kept in [`VcpuRun`] and written to the NACL scratch area right before
//! the next entry: the area is per physical CPU, and the vCPU may run on
//! another one next time.

use crate::abi::{Gpa, Pa, PageType, SbiError, PAGE_SIZE};
use crate::logic::aia::{AllowList, Binding};
use crate::logic::exit::{self, Exit, Mmio, NaclShmem};
use crate::logic::pool::{BatchTable, PageAlloc};
use crate::logic::tsm::Tsm;
use crate::logic::tvm::{Mapped, Result, Tvm, TvmError};

/// SRST `reset_type` of a shutdown.
const SRST_SHUTDOWN: u64 = 0;

/// The VMM's pages behind shared GPAs.
pub trait SharedMem {
    /// Pins the VMM page backing `gpa` (its memslot) and returns its
    /// physical address; an error if there is none.
    fn shared_page(&mut self, gpa: Gpa) -> core::result::Result<Pa, TvmError>;
    /// Unpins the page pinned for `gpa`, if any.
    fn release_shared(&mut self, gpa: Gpa);
    /// Whether a page is pinned for `gpa`: one is exactly while it is
    /// mapped in the TVM (pinned before the mapping, unpinned when it
    /// fails or at unshare).
    fn holds(&self, gpa: Gpa) -> bool;
}

/// What userspace sees from `KVM_RUN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserExit {
    /// `KVM_EXIT_MMIO`.
    Mmio {
        /// Address.
        gpa: u64,
        /// Bytes.
        len: u8,
        /// Store.
        write: bool,
        /// Stored value.
        data: u64,
    },
    /// `KVM_EXIT_RISCV_SBI`: a forwarded SBI call (console, HSM).
    Sbi {
        /// Extension.
        ext: u64,
        /// Function.
        fid: u64,
        /// a0..a5.
        args: [u64; 6],
    },
    /// `KVM_EXIT_SYSTEM_EVENT` for SRST: shutdown or reset.
    SystemEvent {
        /// Reset rather than shutdown.
        reset: bool,
    },
    /// `KVM_EXIT_SHUTDOWN`: the TSM reports the vCPU terminated.
    Terminated,
    /// `KVM_EXIT_FAIL_ENTRY` with reason
    /// [`FAIL_ENTRY_IMSIC_FILE_UNAVAILABLE`]: host CPU `cpu` has no free
    /// guest interrupt file to bind the vCPU to (the CoVE RFC's exit).
    NoImsicFile {
        /// The host CPU.
        cpu: u32,
    },
    /// `KVM_EXIT_INTERNAL_ERROR`: an exit the host cannot handle.
    Internal {
        /// `scause` of the exit.
        scause: u64,
    },
}

/// `KVM_EXIT_FAIL_ENTRY_COVE_IMSIC_FILE_UNAVAILABLE`
/// (`arch/riscv/include/uapi/asm/kvm.h`).
pub const FAIL_ENTRY_IMSIC_FILE_UNAVAILABLE: u64 = 1 << 0;

/// What the run loop does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Enter again.
    Enter,
    /// The vCPU waits for an interrupt (WFI), or is powered off until
    /// another vCPU starts it: sleep, then enter.
    Idle,
    /// The vCPU started vCPU `hart` (HSM `HART_START`, which the TSM
    /// served): let it run ([`start`]), then enter again.
    Started(u64),
    /// Return to userspace.
    User(UserExit),
}

/// Exits by class, for the vCPU stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCounts {
    /// MMIO to userspace.
    pub mmio: u64,
    /// Page faults served.
    pub fault: u64,
    /// SBI calls (forwarded, refused, COVG).
    pub sbi: u64,
    /// Share or unshare requests.
    pub share: u64,
    /// Interrupts.
    pub interrupt: u64,
    /// WFI and other virtual instructions.
    pub idle: u64,
    /// Everything else.
    pub other: u64,
}

impl ExitCounts {
    /// All exits.
    pub fn total(&self) -> u64 {
        self.mmio + self.fault + self.sbi + self.share + self.interrupt + self.idle + self.other
    }
}

/// What the vCPU waits for from userspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    MmioLoad(Mmio),
    Sbi,
}

/// Whether the TSM runs a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Runs (the boot vCPU from the start, others once started).
    On,
    /// Not started yet, or stopped itself (HSM): waits to be started.
    Off,
    /// Powered off for good by the TSM (SRST, a fatal exit): every later
    /// `KVM_RUN` reports the same exit again, without calling the TSM.
    Ended(UserExit),
}

/// The run state of one TVM vCPU.
#[derive(Debug)]
pub struct VcpuRun {
    id: u64,
    power: Power,
    awaiting: Awaiting,
    /// GPR writes for the next entry: `(register, value)`.
    pending: [Option<(u8, u64)>; 2],
    /// The page of this vCPU's last fault, if it was found mapped already.
    raced: Option<Gpa>,
    /// The host's copy of the TVM's allow list for this vCPU.
    allowed: AllowList,
    /// Where its interrupt file is (TVMs with an IMSIC).
    pub binding: Binding,
    /// Exits seen.
    pub exits: ExitCounts,
}

impl VcpuRun {
    /// vCPU `id` of its TVM: vCPU 0 boots at the TVM's entry point; the
    /// others wait for an HSM `HART_START`, as the TSM keeps them off.
    pub fn new(id: u64) -> VcpuRun {
        VcpuRun {
            id,
            power: if id == 0 { Power::On } else { Power::Off },
            awaiting: Awaiting::Nothing,
            pending: [None; 2],
            raced: None,
            allowed: AllowList::default(),
            binding: Binding::Unbound,
            exits: ExitCounts::default(),
        }
    }

    /// The vCPU ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the TSM runs this vCPU.
    pub fn power(&self) -> Power {
        self.power
    }

    /// The interrupt IDs the TVM allowed the host to inject here.
    pub fn allowed(&self) -> &AllowList {
        &self.allowed
    }

    /// Whether an exit to userspace still needs its answer.
    pub fn awaiting(&self) -> bool {
        self.awaiting != Awaiting::Nothing
    }

    fn answer_sbi(&mut self, error: i64, value: u64) {
        // CAST: a0 carries the signed SBI error.
        self.pending = [Some((10, error as u64)), Some((11, value))];
    }

    /// Start of `KVM_RUN`: takes userspace's answer to the last exit, the
    /// value of an MMIO load (`mmio_data`, little-endian, as in
    /// `kvm_run.mmio.data`) or the `ret` of a forwarded SBI call.
    pub fn resume(&mut self, mmio_data: u64, sbi_ret: [u64; 2]) {
        match core::mem::replace(&mut self.awaiting, Awaiting::Nothing) {
            Awaiting::MmioLoad(m) => {
                let v = exit::load_value(&m, mmio_data);
                self.pending = [Some((m.reg, v)), None];
            }
            Awaiting::Sbi => {
                // CAST: ret[0] is the signed SBI error.
                self.answer_sbi(sbi_ret[0] as i64, sbi_ret[1]);
            }
            Awaiting::Nothing => {}
        }
    }

    /// Writes the pending answers to `nacl` (this CPU's area) and runs the
    /// vCPU once.  The caller keeps the CPU until it returns.
    pub fn enter<T: Tsm, B: BatchTable>(
        &mut self,
        tvm: &mut Tvm<B>,
        tsm: &mut T,
        nacl: &mut dyn NaclShmem,
    ) -> Result<Exit> {
        if !self.begin_run(nacl)? {
            return Ok(Exit::NotRunning);
        }
        let exit = tvm.run(tsm, self.id, nacl)?;
        self.end_run();
        Ok(exit)
    }

    /// The first half of [`VcpuRun::enter`], for a caller that runs the
    /// vCPU itself: writes the pending answers to `nacl` and says whether
    /// the vCPU is to run (`false`: it is off, [`Exit::NotRunning`]).
    /// `EPERM` when userspace skipped the answer to the last exit.
    pub fn begin_run(&mut self, nacl: &mut dyn NaclShmem) -> Result<bool> {
        if self.awaiting() {
            // Userspace skipped the answer: KVM_RUN without it.
            return Err(TvmError::State);
        }
        if self.power != Power::On {
            // Off: the TSM would refuse to run it.
            return Ok(false);
        }
        for (reg, v) in self.pending.iter().flatten() {
            nacl.set_gpr(usize::from(*reg), *v);
        }
        Ok(true)
    }

    /// The second half: the TSM ran the vCPU, so the answers are used.
    pub fn end_run(&mut self) {
        self.pending = [None; 2];
    }

    /// Serves `exit` and says what comes next.  Errors are failures of the
    /// host side (TSM refused a mapping, out of memory): `KVM_RUN` fails.
    pub fn handle<T: Tsm, A: PageAlloc, B: BatchTable>(
        &mut self,
        tvm: &mut Tvm<B>,
        tsm: &mut T,
        alloc: &mut A,
        mem: &mut dyn SharedMem,
        exit: Exit,
    ) -> Result<Step> {
        let c = &mut self.exits;
        match exit {
            Exit::NotRunning => {
                return match self.power {
                    Power::Ended(u) => Ok(Step::User(u)),
                    _ => {
                        c.idle += 1;
                        Ok(Step::Idle)
                    }
                };
            }
            Exit::HartStarted { hart } => {
                c.sbi += 1;
                Ok(Step::Started(hart))
            }
            Exit::Stopped => {
                c.sbi += 1;
                self.power = Power::Off;
                Ok(Step::Idle)
            }
            Exit::Interrupt => {
                c.interrupt += 1;
                Ok(Step::Enter)
            }
            Exit::Mmio(m) => {
                c.mmio += 1;
                if !m.write {
                    self.awaiting = Awaiting::MmioLoad(m);
                }
                Ok(Step::User(UserExit::Mmio {
                    gpa: m.gpa.0,
                    len: m.size,
                    write: m.write,
                    data: m.value,
                }))
            }
            Exit::Fault { gpa } => {
                c.fault += 1;
                let page = Gpa(gpa.0 & !(PAGE_SIZE - 1));
                match fault(tvm, tsm, alloc, mem, page) {
                    Ok(Fault::Mapped) => self.raced = None,
                    // The vCPUs run at once and their exits are served
                    // one at a time, so another vCPU's fault on this page
                    // may have been served since this one exited: the
                    // page is there, and the vCPU is entered again.  The
                    // same answer twice in a row for one vCPU's page is
                    // no race but the TSM and the host disagreeing.
                    Ok(Fault::Present) if self.raced != Some(page) => self.raced = Some(page),
                    Ok(Fault::Present) => return Err(TvmError::Tsm(SbiError::AlreadyAvailable)),
                    Err(e) => return Err(e),
                }
                Ok(Step::Enter)
            }
            Exit::Share { gpa, len } => {
                c.share += 1;
                let r = tvm.share(tsm, gpa, len);
                self.answer(r)
            }
            Exit::Unshare { gpa, len } => {
                c.share += 1;
                let r = tvm.unshare(tsm, gpa, len);
                if r.is_ok() {
                    let mut g = gpa.0;
                    while g < gpa.0 + len {
                        mem.release_shared(Gpa(g));
                        g += PAGE_SIZE;
                    }
                }
                self.answer(r)
            }
            Exit::CovgAck => {
                c.sbi += 1;
                self.answer_sbi(0, 0);
                Ok(Step::Enter)
            }
            Exit::AllowIrq { id } => {
                c.sbi += 1;
                self.allowed.allow(id);
                self.answer_sbi(0, 0);
                Ok(Step::Enter)
            }
            Exit::DenyIrq { id } => {
                c.sbi += 1;
                self.allowed.deny(id);
                self.answer_sbi(0, 0);
                Ok(Step::Enter)
            }
            Exit::SbiNotSupported => {
                c.sbi += 1;
                self.answer_sbi(SbiError::NotSupported.code(), 0);
                Ok(Step::Enter)
            }
            Exit::Sbi { ext, fid, args } => {
                c.sbi += 1;
                if ext == exit::forwarded::SRST {
                    // The TSM powered the vCPU off (it answers SRST as a
                    // fatal ecall): the request is final.
                    let u = UserExit::SystemEvent {
                        reset: args[0] != SRST_SHUTDOWN,
                    };
                    self.power = Power::Ended(u);
                    return Ok(Step::User(u));
                }
                self.awaiting = Awaiting::Sbi;
                Ok(Step::User(UserExit::Sbi { ext, fid, args }))
            }
            Exit::VirtualInsn => {
                c.idle += 1;
                Ok(Step::Idle)
            }
            Exit::Terminated => {
                c.other += 1;
                self.power = Power::Ended(UserExit::Terminated);
                Ok(Step::User(UserExit::Terminated))
            }
            Exit::Unhandled { scause } => {
                c.other += 1;
                Ok(Step::User(UserExit::Internal { scause }))
            }
        }
    }

    /// A share or unshare answered to the TVM: the TVM's mistakes are its
    /// SBI error; the host's failures end `KVM_RUN`.
    fn answer(&mut self, r: Result) -> Result<Step> {
        match r {
            Ok(()) => self.answer_sbi(0, 0),
            Err(TvmError::Invalid) => self.answer_sbi(SbiError::InvalidParam.code(), 0),
            Err(e) => return Err(e),
        }
        Ok(Step::Enter)
    }
}

/// Lets vCPU `hart` run: HSM `HART_START` from another vCPU of its TVM,
/// which the TSM served.  A vCPU the TSM ended stays ended; an unknown
/// `hart` (the TSM checked it) changes nothing.
pub fn start(vcpus: &mut [VcpuRun], hart: u64) {
    if let Some(v) = vcpus.iter_mut().find(|v| v.id == hart) {
        if v.power == Power::Off {
            v.power = Power::On;
        }
    }
}

/// What serving a fault found.
enum Fault {
    /// The page was mapped now.
    Mapped,
    /// The page was mapped already (by another vCPU's fault).
    Present,
}

/// A fault in a confidential region on `page`: a VMM page where the TVM
/// shared the range, else a zero page (a whole 2 MiB block when the block
/// lies in one region and none of it is shared).
fn fault<T: Tsm, A: PageAlloc, B: BatchTable>(
    tvm: &mut Tvm<B>,
    tsm: &mut T,
    alloc: &mut A,
    mem: &mut dyn SharedMem,
    page: Gpa,
) -> Result<Fault> {
    if tvm.is_shared(page) {
        if mem.holds(page) {
            return Ok(Fault::Present);
        }
        let pa = mem.shared_page(page).map_err(|_| TvmError::Invalid)?;
        let r = tvm.map_shared(tsm, page, pa);
        if r.is_err() {
            mem.release_shared(page);
        }
        return r.map(|()| Fault::Mapped);
    }
    let block = PageType::Page2M.size();
    let base = page.0 & !(block - 1);
    let whole = tvm.zero_blocks()
        && (0..block / PAGE_SIZE).all(|i| !tvm.is_shared(Gpa(base + i * PAGE_SIZE)));
    match tvm.map_zero(tsm, alloc, page, whole) {
        Ok(Mapped::Now) => Ok(Fault::Mapped),
        // Mapped already, by another vCPU's fault: the host remembers
        // its recent mappings, or the TSM says so distinctly.
        Ok(Mapped::Already) | Err(TvmError::Tsm(SbiError::AlreadyAvailable)) => {
            Ok(Fault::Present)
        }
        Err(e) => Err(e),
    }
}
