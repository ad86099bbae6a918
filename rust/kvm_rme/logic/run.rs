// SPDX-License-Identifier: GPL-2.0

//! The REC run loop's logic: one `REC_ENTER`, and what the host does with
//! the exit.
//!
//! [`VcpuRun`] keeps what a realm vCPU owes the RMM between two entries
//! (an MMIO access to complete, a RIPAS request to answer).  The kernel
//! calls [`VcpuRun::resume`] once per `KVM_RUN` with what userspace
//! answered, then [`VcpuRun::enter`] until a step needs userspace; host
//! tests drive the same code against the RMM model.
//!
//! What the host handles without userspace: stage-2 faults on the
//! private half (a page of the memslot's guest_memfd, `DATA_CREATE_UNKNOWN`)
//! and on the shared half (the memslot's userspace page, pinned and mapped
//! with `RTT_MAP_UNPROTECTED`),
//! IRQ/FIQ/SError exits, WFx, system registers the RMM leaves to the host
//! (read as zero), `RSI_HOST_CALL` (answered `NOT_SUPPORTED`), and PSCI
//! `CPU_ON`/`AFFINITY_INFO` (completed with `PSCI_COMPLETE` towards the
//! target REC).  What goes to userspace: emulatable MMIO, RIPAS changes
//! (as memory faults, which the VMM answers by setting the range's memory
//! attributes, or not), faults outside guest memory, `SYSTEM_OFF`/`RESET`.

use crate::abi::{Command, RecRun, Ripas};
use crate::abi::{ErrorStatus, Ipa, Pa, RmiResult, GRANULE_SIZE};
use crate::logic::exit::{self, psci, Exit, Mmio};
use crate::logic::granule::{GranuleAlloc, Undelegated};
use crate::logic::realm::{level_size, Realm, RealmError, Rec, RTT_BLOCK_LEVEL};
use crate::logic::rmi::Rmi;

/// Where the private pages of a realm come from.
pub trait GuestMemory {
    /// The page backing private `ipa` (a page of the guest_memfd bound to
    /// the memslot holding it), not yet delegated.  `Err` if no guest_memfd
    /// memslot covers `ipa`.
    fn private_page(&mut self, ipa: Ipa) -> Result<Undelegated, RealmError>;

    /// The host page userspace filled for `ipa` (through the memslot's
    /// userspace address), pinned until [`GuestMemory::release_source`]:
    /// the source of `POPULATE_REALM`.
    fn source_page(&mut self, ipa: Ipa) -> Result<Pa, RealmError>;

    /// Unpins a page from [`GuestMemory::source_page`].
    fn release_source(&mut self, pa: Pa);

    /// Pins the host page backing shared `gpa` (the memslot's userspace
    /// page; `gpa` without the shared bit) while the realm maps it.
    /// `Err` if no memslot covers `gpa`: then an access is MMIO.
    fn shared_page(&mut self, gpa: Ipa) -> Result<Pa, RealmError>;

    /// Pins the 2 MiB of host memory behind the shared block at `gpa`
    /// (2 MiB aligned, shared bit clear) as one piece, if one huge page of
    /// the memslot's userspace memory backs all of it, and returns its
    /// start; `None`, with nothing pinned, otherwise (then the realm maps
    /// the 4 KiB page of the fault).
    fn shared_block(&mut self, gpa: Ipa) -> Option<Pa>;

    /// Unpins the page or block of shared `gpa` (unmapped, or not mapped
    /// after all).
    fn release_shared(&mut self, gpa: Ipa);

    /// A pinned shared page or block starting in `[start, end)` (shared
    /// bit cleared), if any: its start and size.
    fn shared_in(&self, start: Ipa, end: Ipa) -> Option<(Ipa, u64)>;

    /// Whether the VMM agreed to a RIPAS change of `[base, top)`: it set
    /// the range's memory attributes to private (`ram`) or shared.
    fn vmm_agrees(&mut self, base: Ipa, top: Ipa, ram: bool) -> bool;

    /// Whether the VMM handles SMCCC function `function` itself (its
    /// SMCCC filter forwards it to userspace): PSCI calls and host calls
    /// then exit as `KVM_EXIT_HYPERCALL`.
    fn forwards_to_user(&mut self, function: u32) -> bool;
}

/// An exit userspace must see, mapped by the kernel onto `struct kvm_run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserExit {
    /// `KVM_EXIT_MMIO`.  `addr` is the IPA without the shared bit.
    Mmio {
        /// Guest physical address (shared bit cleared).
        addr: u64,
        /// Bytes.
        len: u8,
        /// A write; `data` holds the value.
        write: bool,
        /// Written value (little endian in `kvm_run`).
        data: u64,
    },
    /// `KVM_EXIT_SYSTEM_EVENT`: `SHUTDOWN`, or `RESET`.
    SystemEvent {
        /// `SYSTEM_RESET` rather than `SYSTEM_OFF`.
        reset: bool,
    },
    /// `KVM_EXIT_MEMORY_FAULT` (`KVM_RUN` fails with `EFAULT`): the realm
    /// asked for `[gpa, gpa + size)` to become private (RIPAS RAM) or
    /// shared (RIPAS EMPTY), or touched memory no memslot backs.
    MemoryFault {
        /// Start (shared bit cleared).
        gpa: u64,
        /// Bytes.
        size: u64,
        /// `KVM_MEMORY_EXIT_FLAG_PRIVATE`.
        private: bool,
    },
    /// `KVM_EXIT_HYPERCALL`: a PSCI call (`smc`) or an `RSI_HOST_CALL`
    /// the VMM forwards to itself.
    Hypercall {
        /// SMCCC function ID (`x0`).
        nr: u64,
        /// `x1..x6`.
        args: [u64; 6],
        /// Made with SMC (PSCI) rather than as a host call.
        smc: bool,
    },
    /// `KVM_EXIT_INTERNAL_ERROR`: an exit the host cannot handle.
    Internal {
        /// The RMM's exit reason.
        reason: u8,
        /// The syndrome.
        esr: u64,
    },
}

/// What to do after one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Enter again (after checking for signals and rescheduling).
    Enter,
    /// The REC cannot run now (powered off, or waiting for a PSCI
    /// completion): wait, then try again.
    Wait,
    /// The realm executed WFI (trapped): let it sleep until an interrupt
    /// is pending for it, then enter again.
    Idle,
    /// Return to userspace.
    User(UserExit),
    /// The realm wrote a system register the host emulates (the GIC's
    /// SGI generation registers): `esr` says which, `value` is what was
    /// written.  The kernel carries it out, then enters again.
    SysRegWrite {
        /// The syndrome (`EC` 0x18, `ISS` names the register).
        esr: u64,
        /// The value written (the RMM reports it in `x0`).
        value: u64,
    },
}

/// Exit classes counted per vCPU (KVM binary stats `rec_exit_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitClass {
    /// Emulatable MMIO.
    Mmio = 0,
    /// Stage-2 fault handled by mapping memory.
    Fault = 1,
    /// IRQ or FIQ.
    Irq = 2,
    /// PSCI.
    Psci = 3,
    /// RIPAS change.
    Ripas = 4,
    /// `RSI_HOST_CALL`.
    HostCall = 5,
    /// WFx, system register, SError, unhandled.
    Other = 6,
}

/// Number of [`ExitClass`]es.
pub const EXIT_CLASSES: usize = 7;

/// An owed answer to the RMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Mmio(Mmio),
    Ripas {
        base: Ipa,
        top: Ipa,
        ripas: Ripas,
    },
    /// A forwarded `CPU_ON`/`AFFINITY_INFO` for `mpidr`: the VMM owes
    /// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE` before the next `KVM_RUN`.
    Psci {
        mpidr: u64,
    },
    /// A forwarded host call: `x0` comes back from the VMM.
    HostCall,
}

/// `SMCCC_RET_NOT_SUPPORTED`.
const SMCCC_NOT_SUPPORTED: u64 = u64::MAX;
/// PSCI `SUCCESS`.
const PSCI_SUCCESS: u64 = 0;

/// A realm vCPU between entries.
#[derive(Debug)]
pub struct VcpuRun {
    pending: Pending,
    /// Whether the last [`VcpuRun::enter`] reached the realm, so that
    /// `rec_run.exit` is fresh.
    entered: bool,
    /// Exits by [`ExitClass`].
    pub exits: [u64; EXIT_CLASSES],
}

impl Default for VcpuRun {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuRun {
    /// A vCPU that has not run.
    pub const fn new() -> VcpuRun {
        VcpuRun {
            pending: Pending::None,
            entered: false,
            exits: [0; EXIT_CLASSES],
        }
    }

    /// Whether the last [`VcpuRun::enter`] ran the REC (the exit's GIC
    /// and timer state are then fresh).
    pub fn entered(&self) -> bool {
        self.entered
    }

    /// Whether an answer to the RMM is owed (userspace has not re-entered
    /// since an MMIO or RIPAS exit).
    pub fn has_pending(&self) -> bool {
        self.pending != Pending::None
    }

    /// Completes the exit userspace saw, at the start of `KVM_RUN`.
    /// `mmio_data` is the value userspace put in `kvm_run.mmio.data` for
    /// an MMIO read, `hypercall_ret` the `x0` it put in
    /// `kvm_run.hypercall.ret` for a forwarded host call.  A forwarded
    /// PSCI call still waiting for `PSCI_COMPLETE` stays pending (the
    /// next [`VcpuRun::enter`] fails).  A RIPAS change the VMM agreed to (by setting the
    /// memory attributes of the whole range to match) is carried out now
    /// (`RTT_SET_RIPAS`; pages leaving RAM are unmapped and go back to
    /// guest_memfd) and accepted; otherwise, or if the RMM refuses it, it
    /// is rejected.
    pub fn resume<R: Rmi, A: GranuleAlloc + GuestMemory>(
        &mut self,
        realm: &mut Realm,
        rmi: &mut R,
        alloc: &mut A,
        rec: &Rec,
        run: &mut RecRun,
        mmio_data: u64,
        hypercall_ret: u64,
    ) {
        match core::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => {}
            p @ Pending::Psci { .. } => self.pending = p,
            Pending::HostCall => {
                let mut ret = [0u64; 7];
                ret[0] = hypercall_ret;
                ret[1..].copy_from_slice(&run.exit.gprs[1..7]);
                exit::complete_host_call(&mut run.enter, &ret);
            }
            Pending::Mmio(m) => exit::complete_mmio(&mut run.enter, &m, mmio_data),
            Pending::Ripas { base, top, ripas } => {
                let agreed = alloc.vmm_agrees(base, top, ripas == Ripas::Ram);
                let done = if agreed {
                    realm.set_ripas(rmi, alloc, rec, base, top)
                } else {
                    Err(RealmError::State)
                };
                let accept = match done {
                    Ok(done) => {
                        if ripas == Ripas::Empty && done.0 > base.0 {
                            // Shared now: the private pages are dead.
                            let _ = realm.unmap_private(rmi, alloc, base, done);
                        }
                        true
                    }
                    Err(_) => false,
                };
                exit::ripas_response(&mut run.enter, accept);
            }
        }
    }

    fn count(&mut self, c: ExitClass) {
        let i = c as usize;
        self.exits[i] = self.exits[i].saturating_add(1);
    }

    /// Enters the REC once and handles the exit.  `alloc` also provides
    /// the realm's private pages.  `target` finds the REC of a PSCI target
    /// MPIDR.  `Err` for a failure `KVM_RUN` returns (its errno).
    ///
    /// This is [`VcpuRun::begin`], `RMI_REC_ENTER` and
    /// [`VcpuRun::finish`]; the kernel makes the entry between the two
    /// without holding the realm, so that its vCPUs run in parallel.
    #[allow(clippy::too_many_arguments)]
    pub fn enter<R: Rmi, A: GranuleAlloc + GuestMemory>(
        &mut self,
        realm: &mut Realm,
        rmi: &mut R,
        alloc: &mut A,
        rec: &Rec,
        run: &mut RecRun,
        target: &mut dyn FnMut(u64) -> Option<Pa>,
    ) -> Result<Step, RealmError> {
        self.begin()?;
        let entered = rmi.rec_enter(rec.pa(), run);
        self.finish(entered, realm, rmi, alloc, rec, run, target)
    }

    /// Before an entry: `EINVAL` while an exit is still unanswered
    /// (`resume` was not called, or a forwarded PSCI call is not
    /// completed).
    pub fn begin(&mut self) -> Result<(), RealmError> {
        self.entered = false;
        if self.pending != Pending::None {
            return Err(RealmError::Invalid);
        }
        Ok(())
    }

    /// After `RMI_REC_ENTER` returned `entered`: handles the exit in
    /// `run`, as [`VcpuRun::enter`] describes.
    #[allow(clippy::too_many_arguments)]
    pub fn finish<R: Rmi, A: GranuleAlloc + GuestMemory>(
        &mut self,
        entered: RmiResult,
        realm: &mut Realm,
        rmi: &mut R,
        alloc: &mut A,
        rec: &Rec,
        run: &mut RecRun,
        target: &mut dyn FnMut(u64) -> Option<Pa>,
    ) -> Result<Step, RealmError> {
        match entered {
            Ok(()) => self.entered = true,
            // A REC that is not runnable, or owes a PSCI completion.
            Err(e) if e.status == ErrorStatus::Rec => return Ok(Step::Wait),
            // The realm is off (SYSTEM_OFF was seen before).
            Err(e) if e.status == ErrorStatus::Realm => {
                return Ok(Step::User(UserExit::SystemEvent { reset: false }))
            }
            Err(err) => {
                return Err(RealmError::Rmi {
                    cmd: Command::RecEnter,
                    err,
                })
            }
        }
        // The flags of this entry are used up.
        exit::begin_entry(&mut run.enter);
        let geo = realm.geometry();
        let unshared = |ipa: Ipa| ipa.0 & !geo.shared_bit();
        match exit::decode(&run.exit, &geo) {
            Exit::Mmio(m) => {
                // An access to shared memory that is not mapped yet looks
                // like MMIO; a memslot behind it makes it a fault.
                let gpa = Ipa(unshared(m.ipa) & !(GRANULE_SIZE - 1));
                if let Some(step) = Self::shared_fault(realm, rmi, alloc, gpa)? {
                    self.count(ExitClass::Fault);
                    return Ok(step);
                }
                self.count(ExitClass::Mmio);
                self.pending = Pending::Mmio(m);
                Ok(Step::User(UserExit::Mmio {
                    addr: unshared(m.ipa),
                    len: m.size,
                    write: m.write,
                    data: m.value,
                }))
            }
            Exit::Fault {
                ipa, private: true, ..
            } => {
                self.count(ExitClass::Fault);
                let page = match alloc.private_page(ipa) {
                    Ok(p) => p,
                    Err(_) => {
                        return Ok(Step::User(UserExit::MemoryFault {
                            gpa: ipa.0,
                            size: GRANULE_SIZE,
                            private: true,
                        }))
                    }
                };
                match realm.map_unknown(rmi, alloc, ipa, page) {
                    Ok(()) => Ok(Step::Enter),
                    // Mapped meanwhile (another vCPU's fault): retry.
                    Err(RealmError::Rmi { err, .. }) if err.status == ErrorStatus::Rtt => {
                        Ok(Step::Enter)
                    }
                    // Another vCPU faulted on the same page first: its
                    // guest_memfd page is delegated and mapped already
                    // (the realm's lock serialises the two), so the
                    // delegation of the same page is refused.  Only a
                    // mapping that is really there makes it a retry.
                    Err(RealmError::Rmi { cmd, err })
                        if cmd == crate::logic::granule::delegate_command(rmi)
                            && err.status == ErrorStatus::Input
                        && matches!(
                            rmi.rtt_read_entry(realm.rd(), ipa, 3),
                            Ok(e) if e.state == crate::abi::RttEntryState::Assigned
                        ) =>
                    {
                        Ok(Step::Enter)
                    }
                    Err(e) => Err(e),
                }
            }
            Exit::Fault { ipa, .. } => {
                self.count(ExitClass::Fault);
                let gpa = Ipa(unshared(ipa) & !(GRANULE_SIZE - 1));
                match Self::shared_fault(realm, rmi, alloc, gpa)? {
                    Some(step) => Ok(step),
                    // No memslot: userspace sees the access.
                    None => Ok(Step::User(UserExit::MemoryFault {
                        gpa: gpa.0,
                        size: GRANULE_SIZE,
                        private: false,
                    })),
                }
            }
            Exit::Irq | Exit::Fiq => {
                self.count(ExitClass::Irq);
                Ok(Step::Enter)
            }
            Exit::Wfx { wfe: false } => {
                self.count(ExitClass::Other);
                Ok(Step::Idle)
            }
            Exit::SError { .. } | Exit::Wfx { wfe: true } => {
                self.count(ExitClass::Other);
                Ok(Step::Enter)
            }
            Exit::SysReg { esr } => {
                self.count(ExitClass::Other);
                // ISS bit 0: a read (MRS); the RMM takes the value from x0.
                if esr & 1 != 0 {
                    run.enter.gprs[0] = 0;
                    return Ok(Step::Enter);
                }
                Ok(Step::SysRegWrite {
                    esr,
                    value: run.exit.gprs[0],
                })
            }
            Exit::Psci { function, args } => {
                self.count(ExitClass::Psci);
                self.psci(realm, rmi, alloc, rec, function, args, target)
            }
            Exit::RipasChange { base, top, ripas } => {
                self.count(ExitClass::Ripas);
                self.pending = Pending::Ripas { base, top, ripas };
                Ok(Step::User(UserExit::MemoryFault {
                    gpa: base.0,
                    size: top.0 - base.0,
                    private: ripas == Ripas::Ram,
                }))
            }
            Exit::HostCall { .. } => {
                self.count(ExitClass::HostCall);
                let nr = run.exit.gprs[0];
                if let Ok(f) = u32::try_from(nr) {
                    if alloc.forwards_to_user(f) {
                        self.pending = Pending::HostCall;
                        let mut args = [0u64; 6];
                        args.copy_from_slice(&run.exit.gprs[1..7]);
                        return Ok(Step::User(UserExit::Hypercall {
                            nr,
                            args,
                            smc: false,
                        }));
                    }
                }
                let mut ret = [0u64; 7];
                ret[0] = SMCCC_NOT_SUPPORTED;
                exit::complete_host_call(&mut run.enter, &ret);
                Ok(Step::Enter)
            }
            Exit::Unhandled { reason, esr } => {
                self.count(ExitClass::Other);
                Ok(Step::User(UserExit::Internal { reason, esr }))
            }
        }
    }

    /// A fault on the shared alias of `gpa` (granule aligned, shared bit
    /// clear): maps the VMM's memory there, as one 2 MiB block if a huge
    /// page backs the whole block and nothing in it is mapped yet, else
    /// as the 4 KiB page.  `None` if no memslot backs `gpa` (MMIO), found
    /// with one lookup, as emulated MMIO is the common case here.
    fn shared_fault<R: Rmi, A: GranuleAlloc + GuestMemory>(
        realm: &mut Realm,
        rmi: &mut R,
        alloc: &mut A,
        gpa: Ipa,
    ) -> Result<Option<Step>, RealmError> {
        let shared = realm.geometry().shared_bit();
        let size = level_size(RTT_BLOCK_LEVEL);
        let block = Ipa(gpa.0 & !(size - 1));
        let pinned = alloc.shared_in(block, Ipa(block.0 + size));
        // Mapped already, as a block or as this page (another vCPU's
        // fault): nothing to do.
        if matches!(pinned, Some((_, s)) if s == size)
            || alloc.shared_in(gpa, Ipa(gpa.0 + GRANULE_SIZE)).is_some()
        {
            return Ok(Some(Step::Enter));
        }
        let Ok(mut pa) = alloc.shared_page(gpa) else {
            return Ok(None);
        };
        if pinned.is_none() {
            // Nothing of the block is mapped yet: all of it, if one huge
            // page backs it (its pin covers this page's).
            alloc.release_shared(gpa);
            if let Some(bpa) = alloc.shared_block(block) {
                match realm.map_shared_block(rmi, alloc, Ipa(block.0 | shared), bpa) {
                    Ok(()) => return Ok(Some(Step::Enter)),
                    // A page table is there (pages were mapped and
                    // unmapped before): map the page instead.
                    Err(RealmError::Rmi { err, .. }) if err.status == ErrorStatus::Rtt => {
                        alloc.release_shared(block)
                    }
                    Err(e) => {
                        alloc.release_shared(block);
                        return Err(e);
                    }
                }
            }
            pa = match alloc.shared_page(gpa) {
                Ok(pa) => pa,
                Err(_) => return Ok(None),
            };
        }
        match realm.map_shared(rmi, alloc, Ipa(gpa.0 | shared), pa) {
            Ok(()) => Ok(Some(Step::Enter)),
            Err(e) => {
                alloc.release_shared(gpa);
                match e {
                    // Mapped meanwhile: nothing to do.
                    RealmError::Rmi { err, .. } if err.status == ErrorStatus::Rtt => {
                        Ok(Some(Step::Enter))
                    }
                    e => Err(e),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn psci<R: Rmi, A: GuestMemory>(
        &mut self,
        realm: &mut Realm,
        rmi: &mut R,
        alloc: &mut A,
        rec: &Rec,
        function: u32,
        args: [u64; 3],
        target: &mut dyn FnMut(u64) -> Option<Pa>,
    ) -> Result<Step, RealmError> {
        let to_user = alloc.forwards_to_user(function);
        let hypercall = UserExit::Hypercall {
            nr: u64::from(function),
            args: [args[0], args[1], args[2], 0, 0, 0],
            smc: true,
        };
        match function {
            psci::SYSTEM_OFF | psci::SYSTEM_RESET => {
                // The RMM already stopped the realm.
                realm.mark_system_off();
                if to_user {
                    return Ok(Step::User(hypercall));
                }
                Ok(Step::User(UserExit::SystemEvent {
                    reset: function == psci::SYSTEM_RESET,
                }))
            }
            psci::CPU_ON | psci::AFFINITY_INFO if to_user => {
                self.pending = Pending::Psci { mpidr: args[0] };
                Ok(Step::User(hypercall))
            }
            psci::CPU_ON | psci::AFFINITY_INFO => {
                // The RMM answers the caller itself once the host names
                // the target REC; a target without a REC cannot be named.
                let t = target(args[0]).ok_or(RealmError::Invalid)?;
                rmi.psci_complete(rec.pa(), t, PSCI_SUCCESS)
                    .map_err(|err| RealmError::Rmi {
                        cmd: Command::PsciComplete,
                        err,
                    })?;
                Ok(Step::Enter)
            }
            // CPU_OFF and the calls the RMM answers itself: the VMM only
            // hears of them if it asked to.
            _ if to_user => Ok(Step::User(hypercall)),
            _ => Ok(Step::Enter),
        }
    }

    /// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`: the VMM completes the forwarded
    /// `CPU_ON`/`AFFINITY_INFO` of this vCPU for `target_mpidr`, whose REC
    /// is `target`, with PSCI `status` (`SUCCESS`, or `DENIED` for
    /// `CPU_ON`).  `EINVAL` if nothing is pending for that MPIDR, the
    /// target has no REC, or the RMM refuses the status.
    pub fn psci_complete<R: Rmi>(
        &mut self,
        rmi: &mut R,
        rec: &Rec,
        target_mpidr: u64,
        target: Option<Pa>,
        status: u32,
    ) -> Result<(), RealmError> {
        let Pending::Psci { mpidr } = self.pending else {
            return Err(RealmError::Invalid);
        };
        let t = target.ok_or(RealmError::Invalid)?;
        if mpidr != target_mpidr {
            return Err(RealmError::Invalid);
        }
        // CAST: PSCI statuses are signed 32-bit values; the RMM takes them
        // sign-extended.
        let status = i64::from(status as i32) as u64;
        rmi.psci_complete(rec.pa(), t, status)
            .map_err(|_| RealmError::Invalid)?;
        self.pending = Pending::None;
        Ok(())
    }
}
