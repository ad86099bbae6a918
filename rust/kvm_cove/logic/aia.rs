// SPDX-License-Identifier: GPL-2.0

//! TVM interrupts through COVI.
//!
//! A TVM's vCPUs get a virtual IMSIC each, laid out as QEMU's `virt`
//! machine lays out its supervisor IMSICs: vCPU `i`'s interrupt file is
//! the 4 KiB page at [`IMSIC_BASE`]` + i * 4 KiB`.  The TSM backs it with
//! one of the host's guest interrupt files on the physical CPU the vCPU
//! runs on: the host converts its guest files once ([`HostFiles`]) and
//! binds one to a vCPU before the vCPU's first run on a CPU, or rebinds
//! it when the vCPU moved ([`bind_here`]).  The VMM injects an MSI at a
//! vCPU's interrupt file ([`inject`]); the TSM delivers it only if the
//! TVM allowed that interrupt ID (COVG), which the host tracks in a
//! mirror of the TVM's allow list ([`AllowList`]).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::abi::{Gpa, Pa, SbiError, TvmAiaParams, PAGE_SIZE};
use crate::logic::run::VcpuRun;
use crate::logic::tsm::{global_fence, Gid, Tsm};

/// Guest physical address of vCPU 0's interrupt file (QEMU `virt`'s
/// `VIRT_IMSIC_S` base).
pub const IMSIC_BASE: u64 = 0x2800_0000;
/// Group index shift of the TVM's IMSIC geometry (one group; the TSM
/// wants at least 24).
pub const GROUP_SHIFT: u32 = 24;
/// Interrupt IDs a TVM may allow (the AIA's 2047 at most, and 0 is none).
pub const MAX_IDS: u64 = 2048;
/// Host CPUs whose guest interrupt files TVMs can use.
pub const MAX_CPUS: usize = 64;

/// Bits of vCPU index in the TVM's IMSIC geometry for `max_vcpus`.
pub const fn hart_index_bits(max_vcpus: u64) -> u32 {
    let n = if max_vcpus < 2 { 2 } else { max_vcpus };
    64 - (n - 1).leading_zeros()
}

/// The `TVM_AIA_INIT` parameters of a TVM of up to `max_vcpus` vCPUs.
pub const fn params(max_vcpus: u64) -> TvmAiaParams {
    TvmAiaParams::new(IMSIC_BASE, hart_index_bits(max_vcpus), GROUP_SHIFT)
}

/// Guest physical address of vCPU `id`'s interrupt file.
pub const fn imsic_gpa(id: u64) -> Gpa {
    Gpa(IMSIC_BASE + id * PAGE_SIZE)
}

/// The vCPU whose interrupt file an MSI to `addr` targets, for a TVM of
/// up to `max_vcpus` vCPUs: the address must be the file's first byte
/// (its `seteipnum_le` register), as VMMs write MSIs.
pub fn msi_target(addr: u64, max_vcpus: u64) -> Option<u64> {
    let off = addr.checked_sub(IMSIC_BASE)?;
    if off % PAGE_SIZE != 0 {
        return None;
    }
    let id = off / PAGE_SIZE;
    (id < max_vcpus).then_some(id)
}

/// The host's guest interrupt files on each CPU that TVMs may use: which
/// ones the TSM holds converted, and which of those a vCPU is bound to.
/// Bit `k` of a CPU's masks is its guest file `k` (the HGEIE numbering;
/// bit 0, the supervisor file, is never used).  Shared by all TVMs;
/// lock-free.
pub struct HostFiles {
    converted: [AtomicU64; MAX_CPUS],
    used: [AtomicU64; MAX_CPUS],
}

impl Default for HostFiles {
    fn default() -> Self {
        Self::new()
    }
}

impl HostFiles {
    /// No files.
    pub const fn new() -> HostFiles {
        HostFiles {
            converted: [const { AtomicU64::new(0) }; MAX_CPUS],
            used: [const { AtomicU64::new(0) }; MAX_CPUS],
        }
    }

    /// Converts guest files `mask` of every CPU `file_pa` knows (`None`
    /// past the last CPU), then runs one global fence; returns how many
    /// files the TSM took.  A file the TSM refuses stays the host's.
    pub fn convert<T: Tsm>(
        &self,
        tsm: &mut T,
        mask: u64,
        file_pa: &dyn Fn(usize, u32) -> Option<Pa>,
    ) -> core::result::Result<u32, SbiError> {
        let mut n = 0u32;
        for cpu in 0..MAX_CPUS {
            let mut got = 0u64;
            for k in 1..64u32 {
                if mask & (1 << k) == 0 {
                    continue;
                }
                let Some(pa) = file_pa(cpu, k) else { continue };
                if tsm.convert_imsic(pa).is_ok() {
                    got |= 1 << k;
                    n = n.saturating_add(1);
                }
            }
            self.converted[cpu].fetch_or(got, Ordering::AcqRel);
        }
        if n != 0 {
            global_fence(tsm)?;
        }
        Ok(n)
    }

    /// Takes a free converted file of `cpu`.
    pub fn take(&self, cpu: u32) -> Option<u32> {
        let c = usize::try_from(cpu).ok().filter(|&c| c < MAX_CPUS)?;
        let conv = self.converted[c].load(Ordering::Acquire);
        let mut cur = self.used[c].load(Ordering::Acquire);
        loop {
            let free = conv & !cur;
            if free == 0 {
                return None;
            }
            let k = free.trailing_zeros();
            match self.used[c].compare_exchange(cur, cur | (1 << k), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(k),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives file `k` of `cpu` back.
    pub fn put(&self, cpu: u32, k: u32) {
        if let Some(c) = usize::try_from(cpu).ok().filter(|&c| c < MAX_CPUS) {
            if k < 64 {
                self.used[c].fetch_and(!(1u64 << k), Ordering::AcqRel);
            }
        }
    }

    /// Converted files of `cpu`, and how many are bound.
    pub fn count(&self, cpu: usize) -> (u32, u32) {
        if cpu >= MAX_CPUS {
            return (0, 0);
        }
        (
            self.converted[cpu].load(Ordering::Acquire).count_ones(),
            self.used[cpu].load(Ordering::Acquire).count_ones(),
        )
    }
}

/// The host's copy of one vCPU's allow list: the interrupt IDs the TVM
/// let the host inject (COVG `ALLOW_EXTERNAL_INTERRUPT`, reported to the
/// host after the TSM served it).  The TSM keeps the list that counts;
/// the host's copy tells a refused injection from a host mistake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList([u64; (MAX_IDS / 64) as usize]);

impl Default for AllowList {
    fn default() -> Self {
        AllowList([0; (MAX_IDS / 64) as usize])
    }
}

impl AllowList {
    /// `ALLOW_EXTERNAL_INTERRUPT(id)`; `-1` allows all.
    pub fn allow(&mut self, id: i64) {
        self.set(id, true)
    }

    /// `DENY_EXTERNAL_INTERRUPT(id)`; `-1` denies all.
    pub fn deny(&mut self, id: i64) {
        self.set(id, false)
    }

    fn set(&mut self, id: i64, on: bool) {
        if id == -1 {
            self.0.iter_mut().for_each(|w| *w = if on { !0 } else { 0 });
            return;
        }
        // The TSM refuses 0 and IDs past its IMSIC's, and reports only
        // what it served; anything else here changes nothing.
        let Some(id) = u64::try_from(id).ok().filter(|&i| i != 0 && i < MAX_IDS) else {
            return;
        };
        // CAST: id < 2048.
        let (w, b) = ((id / 64) as usize, id % 64);
        if on {
            self.0[w] |= 1 << b;
        } else {
            self.0[w] &= !(1 << b);
        }
    }

    /// Whether the TVM allowed `id`.
    pub fn allows(&self, id: u64) -> bool {
        // CAST: id < 2048.
        id != 0 && id < MAX_IDS && self.0[(id / 64) as usize] & (1 << (id % 64)) != 0
    }
}

/// Where a vCPU's interrupt file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Not bound: the TSM keeps its interrupts in software.
    Unbound,
    /// Bound to guest file `file` of host CPU `cpu`.
    Bound {
        /// Host CPU.
        cpu: u32,
        /// Guest file on it (HGEIE bit).
        file: u32,
    },
    /// A bind or rebind failed half way: the TSM's state for this vCPU
    /// is unknown, and it does not run again.
    Broken,
}

/// Why a vCPU could not be bound on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// Every converted guest file of this CPU is bound to another vCPU
    /// (or the CPU has none): `KVM_EXIT_FAIL_ENTRY`.
    NoFile(u32),
    /// The TSM refused a COVI call.
    Tsm(SbiError),
    /// An earlier bind failed half way.
    Broken,
}

/// What [`bind_here`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Bound here already.
    Already,
    /// First bind (`CPU_BIND_IMSIC`).
    Bound,
    /// Moved from another CPU (rebind: begin, TVM fence, clone on the old
    /// CPU, end).
    Moved,
}

/// Binds vCPU `id` of TVM `gid` (whose binding is `b`) to a guest file of
/// the CPU the caller runs on (`tsm.this_cpu()`; the caller keeps it),
/// before that vCPU runs there.
pub fn bind_here<T: Tsm>(
    tsm: &mut T,
    files: &HostFiles,
    gid: Gid,
    id: u64,
    b: &mut Binding,
) -> core::result::Result<Bound, BindError> {
    let cpu = tsm.this_cpu();
    let old = match *b {
        Binding::Broken => return Err(BindError::Broken),
        Binding::Bound { cpu: c, .. } if c == cpu => return Ok(Bound::Already),
        Binding::Bound { cpu, file } => Some((cpu, file)),
        Binding::Unbound => None,
    };
    let k = files.take(cpu).ok_or(BindError::NoFile(cpu))?;
    let mask = 1u64 << k;
    let Some((old_cpu, old_file)) = old else {
        return match tsm.bind_imsic(gid, id, mask) {
            Ok(()) => {
                *b = Binding::Bound { cpu, file: k };
                Ok(Bound::Bound)
            }
            Err(e) => {
                files.put(cpu, k);
                Err(BindError::Tsm(e))
            }
        };
    };
    if let Err(e) = tsm.rebind_begin(gid, id, mask) {
        // Nothing changed: still bound to the old file.
        files.put(cpu, k);
        return Err(BindError::Tsm(e));
    }
    let rest = tsm
        .tvm_fence(gid)
        .and_then(|()| tsm.rebind_clone(gid, id, old_cpu))
        .and_then(|()| tsm.rebind_end(gid, id));
    match rest {
        Ok(()) => {
            files.put(old_cpu, old_file);
            *b = Binding::Bound { cpu, file: k };
            Ok(Bound::Moved)
        }
        Err(e) => {
            // Both files may be the TVM's now; neither goes back.
            *b = Binding::Broken;
            Err(BindError::Tsm(e))
        }
    }
}

/// Frees a guest file of this CPU for vCPU `id` of TVM `gid` when the
/// CPU has none left: another vCPU of the same TVM bound here is unbound
/// (`UNBIND_IMSIC_BEGIN` here, a TVM fence, `UNBIND_IMSIC_END` here; the
/// TSM keeps its pending interrupts in software until it binds again).
/// It cannot be running: a vCPU runs only on the CPU it is bound on, and
/// the caller keeps this one.  Returns whether a file was freed.
pub fn evict_here<T: Tsm>(
    tsm: &mut T,
    files: &HostFiles,
    gid: Gid,
    id: u64,
    vcpus: &mut [VcpuRun],
) -> core::result::Result<bool, BindError> {
    let cpu = tsm.this_cpu();
    let Some(v) = vcpus
        .iter_mut()
        .find(|v| v.id() != id && matches!(v.binding, Binding::Bound { cpu: c, .. } if c == cpu))
    else {
        return Ok(false);
    };
    let Binding::Bound { file, .. } = v.binding else {
        return Ok(false);
    };
    // Nothing changed until the begin succeeds.
    tsm.unbind_begin(gid, v.id()).map_err(BindError::Tsm)?;
    match tsm.tvm_fence(gid).and_then(|()| tsm.unbind_end(gid, v.id())) {
        Ok(()) => {
            v.binding = Binding::Unbound;
            files.put(cpu, file);
            Ok(true)
        }
        Err(e) => {
            // Half unbound: the file stays out, the vCPU does not run.
            v.binding = Binding::Broken;
            Err(BindError::Tsm(e))
        }
    }
}

/// The file a vCPU held when its TVM was destroyed goes back to the
/// host's pool (the TSM takes back what it mapped for the TVM).
pub fn release(files: &HostFiles, b: &mut Binding) {
    if let Binding::Bound { cpu, file } = *b {
        files.put(cpu, file);
    }
    *b = Binding::Unbound;
}

/// What an injection did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// The TSM delivered it (or queued it in the vCPU's software file).
    Delivered,
    /// The TVM has not allowed that ID (`SBI_ERR_DENIED`).
    Denied,
}

/// Injects interrupt `iid` into vCPU `id`; `allowed` is the host's copy
/// of that vCPU's allow list.  `Err` is a refusal for another reason.
/// The second value is `true` when the TSM and the copy disagree.
pub fn inject<T: Tsm>(
    tsm: &mut T,
    gid: Gid,
    id: u64,
    iid: u64,
    allowed: &AllowList,
) -> core::result::Result<(Injected, bool), SbiError> {
    let r = match tsm.inject(gid, id, iid) {
        Ok(()) => Injected::Delivered,
        Err(SbiError::Denied) => Injected::Denied,
        Err(e) => return Err(e),
    };
    Ok((r, (r == Injected::Delivered) != allowed.allows(iid)))
}
