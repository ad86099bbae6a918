// SPDX-License-Identifier: GPL-2.0

//! `cove_uapi_fuzz`: random calls on the CoVE uAPI (`KVM_CREATE_VM` with
//! `KVM_VM_TYPE_RISCV_COVE`, `KVM_RISCV_COVE_MEASURE_REGION`) and the KVM
//! calls around it, each of which must return 0 or an errno its
//! documentation allows (`Documentation/virt/kvm/riscv/cove.rst`,
//! `api.rst`).  The boot fails on any WARN, BUG or leak line.
//!
//! 10,000 calls from a printed seed (`FUZZ_SEED=<seed>` in
//! `scripts/selftests.sh` replays a run): VM creation with random types;
//! MEASURE_REGION with random, edge-case and unreadable arguments; vCPU
//! creation; memslots added and deleted over mapped, unmapped and
//! read-only memory; bounded `KVM_RUN`s; `KVM_SIGNAL_MSI` to random
//! addresses and IDs; VMs closed at random.  Without a
//! TSM the TVM calls exercise their refusals.

use super::fuzzing::{allowed, drive, seed, Arena, Counts, Rng};
use super::open_kvm;
use crate::cove::{KvmRiscvCoveMeasureRegion, KVM_VM_TYPE_RISCV_COVE};
use crate::kvm::{Kvm, Vcpu, Vm};
use crate::tap::{Outcome, TestResult};

use libc::{EEXIST, EFAULT, EINTR, EINVAL, EIO, ENOMEM, ENXIO, EPERM};

/// Calls per boot.
const CALLS: u64 = 10_000;
/// The userspace memory the memslots and MEASURE_REGION point into.
const ARENA: usize = 4 << 20;

const VM_CREATE: &[i32] = &[EINVAL, EPERM, ENOMEM];
/// MEASURE_REGION: the table of cove.rst, the TSM's refusals as EIO or
/// ENXIO.
const MEASURE: &[i32] = &[EINVAL, EPERM, EFAULT, EINTR, ENOMEM, EIO, ENXIO];
/// EPERM: a TVM that ran already (cove.rst).
const VCPU_CREATE: &[i32] = &[EINVAL, EEXIST, ENOMEM, EPERM];
const MEMSLOT: &[i32] = &[EINVAL, EEXIST, EFAULT, ENOMEM, EPERM];
const RUN: &[i32] = &[EINTR, EINVAL, EFAULT, ENOMEM, EIO, EPERM];
/// KVM_SIGNAL_MSI (cove.rst): not allowed, no vCPU's file or bad
/// flags, no interrupt files; the TSM's other refusals as EIO.
const MSI: &[i32] = &[EPERM, EINVAL, ENXIO, EIO];

/// Guest addresses and sizes where the edge cases are.
fn edgy(r: &mut Rng) -> u64 {
    match r.below(7) {
        0 => 0,
        1 => u64::MAX - r.below(0x2000),
        2 => 1 << r.below(64),
        3 => 0x8000_0000 + (r.below(0x400) << 12),
        4 => r.below(0x10_0000),
        5 => 0x8000_0000 + (r.below(0x10) << 21) + r.below(2) * 0x800,
        _ => r.next(),
    }
}

struct Guest {
    vm: Vm,
    tvm: bool,
    vcpus: Vec<Vcpu>,
}


/// A userspace address: in the arena, just past it, or anywhere.
fn uaddr(r: &mut Rng, arena: *mut u8) -> u64 {
    let base = arena as u64;
    match r.below(4) {
        0 => base + (r.below((ARENA / 4096) as u64) << 12),
        1 => base + ARENA as u64,
        2 => base + r.below(ARENA as u64),
        _ => r.next(),
    }
}

fn step(kvm: &Kvm, guests: &mut Vec<Guest>, r: &mut Rng, arena: *mut u8, c: &mut Counts) -> Result<(), String> {
    let op = r.below(100);
    if guests.is_empty() || op < 8 {
        if guests.len() >= 3 {
            // CAST: an index below the length.
            guests.remove(r.below(guests.len() as u64) as usize);
        }
        let ty = match r.below(4) {
            0 => 0,
            1 => r.next() & 0xffff_ffff,
            2 => KVM_VM_TYPE_RISCV_COVE | (1 << r.below(64)),
            _ => KVM_VM_TYPE_RISCV_COVE,
        };
        match kvm.create_vm(ty) {
            Ok(vm) => {
                c.calls += 1;
                c.ok += 1;
                let tvm = ty == KVM_VM_TYPE_RISCV_COVE;
                if tvm {
                    c.vms += 1;
                }
                guests.push(Guest { vm, tvm, vcpus: Vec::new() });
            }
            Err(e) => allowed(&format!("KVM_CREATE_VM({ty:#x})"), e, VM_CREATE, c)?,
        }
        return Ok(());
    }
    // CAST: an index below the length.
    let gi = r.below(guests.len() as u64) as usize;
    let g = &mut guests[gi];
    match op {
        8..=49 => {
            let mut mr = KvmRiscvCoveMeasureRegion {
                userspace_addr: uaddr(r, arena),
                gpa: edgy(r),
                size: {
                let odd = edgy(r);
                r.pick(&[0x1000, 0x2000, 0x8000, 1 << 21, odd])
            },
            };
            let e = g.vm.cove_measure_region(&mut mr).err().unwrap_or(0);
            if !g.tvm && e != EINVAL {
                return Err(format!("MEASURE_REGION on a normal VM: errno {e}, want EINVAL"));
            }
            allowed("KVM_RISCV_COVE_MEASURE_REGION", e, MEASURE, c)?;
        }
        50..=57 => {
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
        58..=85 => {
            // CAST: a slot number below 8.
            let slot = r.below(8) as u32;
            let size = match r.below(4) {
                0 => 0,
                1 => (1 + r.below(16)) << 12,
                2 => (1 + r.below(2)) << 21,
                _ => edgy(r),
            };
            let flags = if r.below(4) == 0 { 1 << r.below(3) } else { 0 };
            // SAFETY: the arena is ours and never read as Rust objects
            // while a VM lives; other addresses are the kernel's to
            // refuse or fault on.
            let e = unsafe { g.vm.memslot_raw(slot, flags, edgy(r), size, uaddr(r, arena), None) };
            allowed("KVM_SET_USER_MEMORY_REGION2", e, MEMSLOT, c)?;
        }
        92..=95 => {
            let addr = match r.below(4) {
                0 => 0x2800_0000 + (r.below(5) << 12),
                1 => 0x2800_0000 + r.below(0x8000),
                _ => edgy(r),
            };
            let any = r.next() & 0xffff_ffff;
            // CAST: interrupt IDs live in 32 bits.
            let data = r.pick(&[0, 1, 9, 2047, 2048, any]) as u32;
            match g.vm.signal_msi(addr, data) {
                Ok(0) => {
                    c.calls += 1;
                    c.ok += 1;
                }
                Ok(n) => return Err(format!("KVM_SIGNAL_MSI({addr:#x}, {data}) returned {n}, want 0 or an errno")),
                Err(e) => {
                    if !g.tvm && e != EINVAL {
                        return Err(format!("KVM_SIGNAL_MSI on a normal VM: errno {e}, want EINVAL"));
                    }
                    allowed("KVM_SIGNAL_MSI", e, MSI, c)?;
                }
            }
        }
        86..=91 if !g.vcpus.is_empty() => {
            // CAST: an index below the length.
            let v = &g.vcpus[r.below(g.vcpus.len() as u64) as usize];
            let (e, _reason) = run_bounded(v, 20)?;
            allowed("KVM_RUN", e, RUN, c)?;
        }
        _ => {
            if !g.vcpus.is_empty() {
                // CAST: an index below the length.
                g.vcpus.remove(r.below(g.vcpus.len() as u64) as usize);
            } else {
                guests.remove(gi);
            }
            c.calls += 1;
            c.ok += 1;
        }
    }
    Ok(())
}

extern "C" fn on_alarm(_: libc::c_int) {}

/// KVM_RUN cut after `ms` milliseconds by SIGALRM (EINTR).
pub(crate) fn run_bounded(vcpu: &Vcpu, ms: i64) -> Result<(i32, u32), String> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the
    // handler does nothing, and without SA_RESTART the signal ends the
    // KVM_RUN it hits.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
        if libc::sigaction(libc::SIGALRM, &sa, core::ptr::null_mut()) != 0 {
            return Err("sigaction".into());
        }
    }
    let arm = |us: i64| libc::itimerval {
        it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
        it_value: libc::timeval { tv_sec: us / 1_000_000, tv_usec: us % 1_000_000 },
    };
    // SAFETY: plain syscalls with valid timer values.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &arm(ms * 1000), core::ptr::null_mut()) };
    let r = vcpu.run_raw();
    // SAFETY: as above; disarms the timer.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &arm(0), core::ptr::null_mut()) };
    Ok(r)
}

/// 10,000 random calls on the CoVE uAPI from a printed seed.
pub fn cove_uapi_fuzz() -> TestResult {
    let kvm = open_kvm()?;
    let seed = seed("cove_uapi_fuzz");
    let arena = Arena::new(ARENA)?;
    let c = drive(CALLS, seed, |guests, r, c| step(&kvm, guests, r, arena.ptr(), c));
    drop(arena);
    let c = c?;
    println!(
        "# cove_uapi_fuzz: {} calls, {} returned 0, {} TVMs created{}",
        c.calls,
        c.ok,
        c.vms,
        if c.vms == 0 { " (no TSM: their refusals)" } else { "" }
    );
    Ok(Outcome::Pass)
}
