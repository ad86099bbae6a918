// SPDX-License-Identifier: GPL-2.0

//! `uapi_fuzz`: random calls on the realm uAPI and the KVM calls around
//! it, each of which must return 0 or an errno its documentation allows
//! (`Documentation/virt/kvm/arm/rme-rust.rst`, `api.rst`).  The kernel
//! must stay clean too: the boot fails on any WARN, BUG or leak line.
//!
//! At least 10,000 calls from a seed that is printed; `FUZZ_SEED=<seed>`
//! in `scripts/selftests.sh` (it writes `/etc/confvm-fuzz-seed`) replays
//! a run.  The calls: VM creation with random types; every realm
//! sub-command with random, edge-case and unreadable arguments; vCPU
//! creation, init with random features, FINALIZE; memslots added, moved
//! and deleted, on guest_memfd or not; memory attributes; bounded
//! `KVM_RUN`s, some from a second thread while the main thread closes
//! the VM's fd; fds closed at random.  Without realm support the realm
//! calls exercise their refusals.

use std::os::fd::OwnedFd;

use super::fuzzing::{allowed, drive, seed, Arena, Counts, Rng};
use super::open_kvm;
use super::realm::{finalize_rec, init_vcpu, install_alarm, run_bounded};
use crate::kvm::{Kvm, Vcpu, Vm};
use crate::rme::{KVM_CAP_ARM_RME, KVM_VM_TYPE_ARM_PROTECTED, KVM_VM_TYPE_ARM_REALM};
use crate::tap::{Outcome, TestResult};

/// Calls per boot.
const CALLS: u64 = 10_000;
/// Where the guest-visible userspace memory of the memslots comes from.
const ARENA: usize = 16 << 20;

use libc::{EBUSY, EEXIST, EFAULT, EINTR, EINVAL, EIO, ENOENT, ENOEXEC, ENOMEM, ENXIO, EPERM};

/// What a call may answer besides 0.
const VM_CREATE: &[i32] = &[EINVAL, ENOMEM];
const RME: &[i32] = &[EINVAL, EPERM, EFAULT, EEXIST, EBUSY, ENOMEM, ENXIO, EIO];
const VCPU_CREATE: &[i32] = &[EINVAL, EEXIST, ENOMEM];
const VCPU_INIT: &[i32] = &[EINVAL, ENOENT, EPERM];
/// `ENOEXEC`: the vCPU is not initialised (arm64 KVM's answer, which
/// `api.rst` does not list).
const FINALIZE: &[i32] = &[EINVAL, EPERM, EEXIST, ENOMEM, EIO, ENXIO, ENOEXEC];
const MEMSLOT: &[i32] = &[EINVAL, EEXIST, EFAULT, ENOMEM, EPERM];
const GMEM: &[i32] = &[EINVAL, ENOMEM];
const ATTRS: &[i32] = &[EINVAL, EFAULT, ENOMEM, EPERM];
const RUN: &[i32] = &[EINTR, EPERM, ENOEXEC, EINVAL, EFAULT, ENOMEM, EIO];

/// Addresses and sizes where the edge cases are.
fn edgy(r: &mut Rng) -> u64 {
    match r.below(8) {
        0 => 0,
        1 => u64::MAX - r.below(0x2000),
        2 => 1 << r.below(64),
        3 => (1 << 39) | (r.below(0x800) << 12),
        4 => 0x8000_0000 + (r.below(0x40) << 12),
        5 => r.below(0x10_0000),
        6 => r.next(),
        _ => 0x8000_0000 + (r.below(0x10) << 21),
    }
}

struct Guest {
    vm: Vm,
    vcpus: Vec<Vcpu>,
    gmem: Vec<OwnedFd>,
}


fn rme_call(g: &Guest, r: &mut Rng, arena: *mut u8, c: &mut Counts) -> Result<(), String> {
    let cmd = r.below(7);
    // The argument: random or edge-case bytes in the arena, or a pointer
    // that cannot be read.
    let off = r.below((ARENA - 4096) as u64) & !7;
    // SAFETY: `off + 4096` is inside the arena, which only the guest and
    // these byte writes use.
    let ptr = unsafe { arena.add(off as usize) };
    for i in 0..40 {
        let v = if r.below(3) == 0 { 0 } else { edgy(r) };
        // SAFETY: as above; `ptr` is 8-byte aligned and 40 words fit.
        unsafe { ptr.cast::<u64>().add(i).write_unaligned(v) };
    }
    if cmd == 0 && r.below(2) == 0 {
        // A well-formed CONFIG: hash algorithm 0..2.
        // SAFETY: as above.
        unsafe {
            ptr.cast::<u32>().write(1);
            ptr.cast::<u32>().add(1).write(r.below(3) as u32);
        }
    }
    let arg = match r.below(10) {
        0 => 0,
        1 => 0x10,
        2 => u64::MAX - 3,
        _ => ptr as u64,
    };
    let e = g.vm.rme_raw(cmd, arg);
    allowed(&format!("KVM_ENABLE_CAP(RME, {cmd}, {arg:#x})"), e, RME, c)
}

fn step(kvm: &Kvm, guests: &mut Vec<Guest>, r: &mut Rng, arena: *mut u8, c: &mut Counts) -> Result<(), String> {
    let op = r.below(100);
    if guests.is_empty() || op < 6 {
        if guests.len() >= 3 {
            // CAST: an index below the length.
            guests.remove(r.below(guests.len() as u64) as usize);
        }
        let ty = match r.below(6) {
            0 => 0,
            1 => KVM_VM_TYPE_ARM_REALM | r.pick(&[0, 31, 32, 33, 40, 48, 52, 64, 255]),
            2 => KVM_VM_TYPE_ARM_REALM | KVM_VM_TYPE_ARM_PROTECTED | 40,
            3 => r.next() & 0xffff_ffff,
            _ => KVM_VM_TYPE_ARM_REALM | 40,
        };
        match kvm.create_vm(ty) {
            Ok(vm) => {
                if ty & KVM_VM_TYPE_ARM_REALM != 0 {
                    c.vms += 1;
                }
                c.calls += 1;
                c.ok += 1;
                guests.push(Guest { vm, vcpus: Vec::new(), gmem: Vec::new() });
            }
            Err(e) => allowed(&format!("KVM_CREATE_VM({ty:#x})"), e, VM_CREATE, c)?,
        }
        return Ok(());
    }
    // CAST: an index below the length.
    let gi = r.below(guests.len() as u64) as usize;
    let g = &mut guests[gi];
    match op {
        6..=45 => rme_call(g, r, arena, c)?,
        46..=51 => {
            let id = r.below(4);
            match g.vm.create_vcpu_raw(id) {
                Ok(v) => {
                    c.calls += 1;
                    c.ok += 1;
                    g.vcpus.push(v);
                }
                Err(e) => allowed(&format!("KVM_CREATE_VCPU({id})"), e, VCPU_CREATE, c)?,
            }
        }
        52..=59 if !g.vcpus.is_empty() => {
            // CAST: an index below the length.
            let v = &g.vcpus[r.below(g.vcpus.len() as u64) as usize];
            let bits = [8u32, 1, 2, 4, 5, 6, 7];
            let mut f = 0;
            for b in bits {
                if r.below(3) == 0 {
                    f |= 1 << b;
                }
            }
            allowed(&format!("KVM_ARM_VCPU_INIT({f:#x})"), init_vcpu(&g.vm, v, f), VCPU_INIT, c)?;
        }
        60..=65 if !g.vcpus.is_empty() => {
            // CAST: an index below the length.
            let v = &g.vcpus[r.below(g.vcpus.len() as u64) as usize];
            let e = if r.below(4) == 0 {
                // CAST: a small feature number.
                v.finalize(r.below(16) as i32).err().unwrap_or(0)
            } else {
                finalize_rec(v)
            };
            allowed("KVM_ARM_VCPU_FINALIZE", e, FINALIZE, c)?;
        }
        66..=77 => {
            let slot = r.below(4) as u32;
            let size = if r.below(4) == 0 { 0 } else { r.pick(&[0x1000u64, 0x20_0000, 0x40_0000, 0x1234]) };
            let gpa = if r.below(5) == 0 { edgy(r) } else { 0x8000_0000 + (r.below(8) << 21) };
            let uoff = if r.below(6) == 0 { r.below(0x1000) } else { r.below(4) << 21 };
            let uaddr = arena as u64 + uoff;
            let flags = if r.below(3) == 0 { 0 } else { 4 /* KVM_MEM_GUEST_MEMFD */ } | if r.below(8) == 0 { 1 } else { 0 };
            if flags & 4 != 0 && (g.gmem.is_empty() || r.below(3) == 0) {
                let gsize = r.pick(&[0u64, 0x1000, 0x40_0000, 0x80_0000, 0x1001]);
                match g.vm.guest_memfd_raw(gsize, if r.below(6) == 0 { r.next() } else { 0 }) {
                    Ok(fd) => {
                        c.calls += 1;
                        c.ok += 1;
                        g.gmem.push(fd);
                    }
                    Err(e) => allowed(&format!("KVM_CREATE_GUEST_MEMFD({gsize:#x})"), e, GMEM, c)?,
                }
            }
            // CAST: an index below the length.
            let gmem = (flags & 4 != 0 && !g.gmem.is_empty())
                .then(|| (&g.gmem[r.below(g.gmem.len() as u64) as usize], r.pick(&[0u64, 0x1000, 0x20_0000])));
            // SAFETY: every userspace address given is in the arena,
            // which the test keeps mapped until its end and only touches
            // through raw byte writes (the guest may write it too).
            let e = unsafe { g.vm.memslot_raw(slot, flags, gpa, size, uaddr, gmem) };
            allowed(&format!("KVM_SET_USER_MEMORY_REGION2(slot {slot}, flags {flags:#x}, {gpa:#x}+{size:#x})"), e, MEMSLOT, c)?;
        }
        78..=85 => {
            let (gpa, size) = (r.pick(&[0x8000_0000u64, 0x8000_1000, 0x8020_0000]) | if r.below(6) == 0 { 1 } else { 0 }, r.pick(&[0x1000u64, 0x20_0000, 0, 0x1001]));
            let attr = if r.below(6) == 0 { r.next() } else { r.pick(&[0u64, 8]) };
            let flags = if r.below(8) == 0 { 1 } else { 0 };
            let e = g.vm.memory_attributes_raw(gpa, size, attr, flags);
            allowed(&format!("KVM_SET_MEMORY_ATTRIBUTES({gpa:#x}+{size:#x}, {attr:#x})"), e, ATTRS, c)?;
        }
        86..=93 if !g.vcpus.is_empty() => {
            // CAST: an index below the length.
            let v = &g.vcpus[r.below(g.vcpus.len() as u64) as usize];
            let (e, _) = run_bounded(v, 20)?;
            allowed("KVM_RUN", e, RUN, c)?;
        }
        94..=95 if !g.vcpus.is_empty() => {
            // KVM_RUN on another thread while this one closes the VM fd
            // (the vCPU keeps the VM alive until it is dropped too).
            let g = guests.remove(gi);
            let Guest { vm, mut vcpus, gmem } = g;
            let v = vcpus.swap_remove(0);
            install_alarm()?;
            let h = std::thread::spawn(move || v.run_raw().0);
            drop(vm);
            drop(vcpus);
            drop(gmem);
            // The process timer's SIGALRM could hit this thread: signal
            // the runner itself until its KVM_RUN returns.
            let tid = std::os::unix::thread::JoinHandleExt::as_pthread_t(&h);
            while !h.is_finished() {
                std::thread::sleep(std::time::Duration::from_millis(10));
                if !h.is_finished() {
                    // SAFETY: `tid` is the runner, which has not been
                    // joined, so the thread ID is still its own.
                    // CAST: std's raw pthread ID to libc's type.
                    unsafe { libc::pthread_kill(tid as usize as libc::pthread_t, libc::SIGALRM) };
                }
            }
            let e = h.join().map_err(|_| "KVM_RUN thread panicked".to_string())?;
            allowed("KVM_RUN (VM fd closed meanwhile)", e, RUN, c)?;
        }
        96..=97 if !g.vcpus.is_empty() => {
            // CAST: an index below the length.
            let i = r.below(g.vcpus.len() as u64) as usize;
            drop(g.vcpus.swap_remove(i));
        }
        _ => {
            guests.remove(gi);
        }
    }
    Ok(())
}

/// At least `CALLS` random uAPI calls answer 0 or a documented errno.
pub fn uapi_fuzz() -> TestResult {
    let kvm = open_kvm()?;
    let seed = seed("uapi_fuzz");
    let arena = Arena::new(ARENA)?;
    let realms_offered = kvm.check_extension(KVM_CAP_ARM_RME).unwrap_or(0) > 0;
    let c = drive(CALLS, seed, |guests, r, c| step(&kvm, guests, r, arena.ptr(), c));
    drop(arena);
    let c = c?;
    println!(
        "# uapi_fuzz: {} calls, {} returned 0, {} realm VMs created{}",
        c.calls,
        c.ok,
        c.vms,
        if realms_offered { "" } else { " (no realm support: their refusals)" }
    );
    Ok(Outcome::Pass)
}
