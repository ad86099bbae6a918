// SPDX-License-Identifier: GPL-2.0
//! Property tests: random TVM operations against the TSM model with
//! random COVH failures injected; after every step no converted page was
//! freed and every page out of the allocator is either still converted
//! (held by the TVM's pool or leaked, counted) or held by the test.
//! `KVM_COVE_PROP_STEPS` sets the total (default 100000).

use std::collections::HashMap;

use kvm_cove::abi::Covg;
use kvm_cove::abi::{Gpa, Pa, EXT_COVG};
use kvm_cove::cvm_fw::testing::{run_property, Tape};
use kvm_cove::logic::exit::{cause, Exit};
use kvm_cove::logic::pool::{PageAlloc, Plain};
use kvm_cove::logic::run::{SharedMem, Step, VcpuRun};
use kvm_cove::logic::tvm::{check_tsm, Tvm, TvmError, TvmState};
use kvm_cove::model::{machine, ModelAlloc, ModelNacl, ModelTsm, ScriptedExit, Shared};

/// The VMM's pages behind shared GPAs, from the model's allocator.
struct Vmm(ModelAlloc, HashMap<u64, Pa>);

impl SharedMem for Vmm {
    fn shared_page(&mut self, gpa: Gpa) -> Result<Pa, TvmError> {
        if self.1.contains_key(&gpa.0) {
            return Err(TvmError::Invalid);
        }
        let pa = self.0.alloc_contiguous(1).ok_or(TvmError::NoMemory)?;
        self.1.insert(gpa.0, pa);
        Ok(pa)
    }

    fn holds(&self, gpa: Gpa) -> bool {
        self.1.contains_key(&gpa.0)
    }

    fn release_shared(&mut self, gpa: Gpa) {
        if let Some(pa) = self.1.remove(&gpa.0) {
            self.0.free(Plain::from_host_page(pa).unwrap());
        }
    }
}

thread_local! {
    static SHARED_MAPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static RUN_STEPS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

const RAM: u64 = 0x8000_0000;

thread_local! {
    static OK_MAPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
const RAM_LEN: u64 = 32 << 20;

fn check(m: &Shared, tvm: &Option<Tvm>, leaked: u64, held: u64, step: u64) {
    let m = m.borrow();
    assert_eq!(m.tsm.would_hang, 0, "step {step}: a removal Salus would hang on");
    assert!(
        m.host.violations.is_empty(),
        "step {step}: {:?}",
        m.host.violations
    );
    let pool = tvm.as_ref().map(|t| t.pool_stats()).unwrap_or_default();
    assert_eq!(
        m.tsm.confidential_pages(),
        pool.converted + pool.leaked + leaked,
        "step {step}: converted pages unaccounted for"
    );
    assert_eq!(
        m.host.outstanding(),
        m.tsm.confidential_pages() + held,
        "step {step}: pages lost"
    );
}

fn sequence(rng: &mut Tape<'_>, steps: u64) -> (u64, u64) {
    let (mut t, mut a, mut n, m): (ModelTsm, ModelAlloc, ModelNacl, Shared) = machine(256 << 20);
    m.borrow_mut().tsm.seed(rng.next_u64());
    m.borrow_mut().tsm.inject_ppm = [0, 5_000, 50_000][rng.below(3) as usize];
    let batch = [1, 16, 512][rng.below(3) as usize];
    let mut tvm: Option<Tvm> = None;
    let mut leaked = 0;
    let mut held: Vec<Pa> = Vec::new();
    let mut vmm = Vmm(ModelAlloc(m.clone()), HashMap::new());
    let mut vcpu = VcpuRun::new(0);
    let mut last_share: Option<(u64, u64)> = None;
    for step in 0..steps {
        let gpa = RAM + rng.below(RAM_LEN / 4096) * 4096;
        match (&mut tvm, rng.below(14)) {
            (None, _) => {
                if let Ok(info) = check_tsm(&mut t) {
                    match Tvm::create(&mut t, &mut a, &info, batch) {
                        Ok(mut v) => {
                            // Whole zero blocks in half the TVMs.
                            v.set_zero_blocks(rng.below(2) == 0);
                            let _ = v.add_region(&mut t, &mut a, Gpa(RAM), RAM_LEN);
                            tvm = Some(v);
                        }
                        Err((_, stats)) => leaked += stats.leaked,
                    }
                }
            }
            (Some(v), 0 | 1) => {
                if let Some(src) = a.alloc_contiguous(1) {
                    held.push(src);
                    if v.measure_page(&mut t, &mut a, Gpa(gpa), src).is_ok() {
                        assert_eq!(m.borrow().tsm.mapped(v.gid(), gpa), Some(true));
                    }
                }
            }
            (Some(v), 2) => {
                let _ = v.create_vcpu(&mut t, &mut a, rng.below(3));
            }
            (Some(v), 3) => {
                let _ = v.finalize(&mut t, RAM, 0);
            }
            (Some(v), 4 | 5) => {
                if v.map_zero(&mut t, &mut a, Gpa(gpa), rng.below(8) == 0)
                    .is_ok()
                {
                    OK_MAPS.with(|c| c.set(c.get() + 1));
                    assert_eq!(
                        m.borrow().tsm.mapped(v.gid(), gpa),
                        Some(true),
                        "map_zero Ok, nothing mapped"
                    );
                }
            }
            (Some(v), 6) => {
                let _ = v.remove_range(&mut t, Gpa(gpa), 4096 * (1 + rng.below(4)));
            }
            (Some(v), 7) => {
                if v.state() == TvmState::Runnable {
                    m.borrow_mut().tsm.exits.push_back(ScriptedExit {
                        scause: 21,
                        htval: gpa >> 2,
                        ..Default::default()
                    });
                    if let Ok(Exit::Fault { gpa: g }) = v.run(&mut t, 0, &n) {
                        let _ = v.map_zero(&mut t, &mut a, g, false);
                    }
                    let _ = &mut n;
                }
            }
            (Some(v), 8..=11) if v.state() == TvmState::Runnable => {
                // One vCPU step with a random exit: faults anywhere,
                // share/unshare of random ranges (in or out of a region,
                // aligned or not), MMIO, interrupts.
                let len = 4096 * (1 + rng.below(8));
                let x = match rng.below(6) {
                    0 | 1 => {
                        // Half the faults hit what was shared last.
                        let mut g = gpa;
                        if let (Some((sg, sl)), 0) = (last_share, rng.below(2)) {
                            g = (sg & !0xfff) + 4096 * rng.below(sl.max(4096) / 4096);
                        }
                        ScriptedExit {
                            scause: [21, 23][rng.below(2) as usize],
                            htval: g >> 2,
                            ..Default::default()
                        }
                    }
                    2 | 3 => {
                        // Unshare mostly (part of) what was shared last.
                        let unshare = rng.below(2) == 0;
                        let (mut g, mut l) = (gpa, len);
                        if unshare && rng.below(4) != 0 {
                            if let Some((sg, sl)) = last_share {
                                (g, l) = (sg + 4096 * rng.below(sl / 4096), 4096);
                            }
                        }
                        if rng.below(8) == 0 {
                            g += 8;
                        }
                        if !unshare {
                            last_share = Some((g, l));
                        }
                        let fid = if unshare {
                            Covg::UnshareMemory
                        } else {
                            Covg::ShareMemory
                        };
                        ScriptedExit {
                            scause: cause::VS_ECALL,
                            gprs: vec![(17, EXT_COVG), (16, fid as u64), (10, g), (11, l)],
                            ..Default::default()
                        }
                    }
                    4 => ScriptedExit {
                        scause: 23,
                        htval: 0x1000_0000 >> 2,
                        htinst: (11 << 20) | (2 << 12) | 0x23,
                        ..Default::default()
                    },
                    _ => ScriptedExit {
                        scause: cause::INTERRUPT | 5,
                        ..Default::default()
                    },
                };
                m.borrow_mut().tsm.exits.push_back(x);
                vcpu.resume(0, [0, 0]);
                if let Ok(exit) = vcpu.enter(v, &mut t, &mut n) {
                    let r = vcpu.handle(v, &mut t, &mut a, &mut vmm, exit);
                    RUN_STEPS.with(|c| {
                        let (n, ok) = c.get();
                        c.set((n + 1, ok + u64::from(r == Ok(Step::Enter))));
                    });
                    if let (Ok(_), Exit::Fault { gpa: g }) = (r, exit) {
                        if v.is_shared(g) {
                            SHARED_MAPS.with(|c| c.set(c.get() + 1));
                        }
                    }
                    if let (Ok(_), Exit::Fault { gpa: g }) = (r, exit) {
                        // Served: a VMM page where the TVM shared, else a
                        // confidential one.
                        let want = !v.is_shared(g);
                        assert_eq!(m.borrow().tsm.mapped(v.gid(), g.0), Some(want));
                    }
                }
                // Every pinned VMM page is at a shared GPA.
                for g in vmm.1.keys() {
                    assert!(
                        v.is_shared(Gpa(*g)),
                        "step {step}: pin outside a shared range"
                    );
                }
            }
            (Some(_), 8..=11) => {}
            (Some(v), _) => {
                if rng.below(3) == 0 {
                    let mut ok = v.destroy(&mut t, &mut a).is_ok();
                    for _ in 0..3 {
                        if ok {
                            break;
                        }
                        ok = v.destroy(&mut t, &mut a).is_ok();
                    }
                    if ok {
                        leaked += v.pool_stats().leaked;
                        tvm = None;
                        // The TVM is gone: its VMM pages are unpinned.
                        for g in vmm.1.keys().copied().collect::<Vec<_>>() {
                            vmm.release_shared(Gpa(g));
                        }
                        vcpu = VcpuRun::new(0);
                    }
                }
            }
        }
        check(&m, &tvm, leaked, (held.len() + vmm.1.len()) as u64, step);
    }
    m.borrow_mut().tsm.inject_ppm = 0;
    if let Some(mut v) = tvm.take() {
        v.destroy(&mut t, &mut a).unwrap();
        leaked += v.pool_stats().leaked;
    }
    for g in vmm.1.keys().copied().collect::<Vec<_>>() {
        vmm.release_shared(Gpa(g));
    }
    for p in held.drain(..) {
        a.free(Plain::from_host_page(p).unwrap());
    }
    check(&m, &None, leaked, 0, steps);
    let inj = m.borrow().tsm.injected;
    (leaked, inj)
}

#[test]
fn random_tvm_sequences_keep_invariants() {
    let total: u64 = std::env::var("KVM_COVE_PROP_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let per = 500;
    let cases = u32::try_from(total.div_ceil(per)).unwrap_or(u32::MAX);
    let sums = std::cell::Cell::new((0u64, 0u64, 0u64));
    // About 4 decisions per step, plus the set-up's.
    run_property(
        cases,
        4 * per as usize + 8,
        "proptest-regressions/properties.txt",
        |tape| {
            let (l, i) = sequence(tape, per);
            let (s, sl, si) = sums.get();
            sums.set((s + per, sl + l, si + i));
        },
    );
    let (steps, leaked, injected) = sums.get();
    let maps = OK_MAPS.with(|c| c.get());
    let (runs, entered) = RUN_STEPS.with(|c| c.get());
    let shared = SHARED_MAPS.with(|c| c.get());
    println!("cove property steps: {steps}, successful zero-page maps: {maps}, vCPU run steps: {runs} ({entered} served in the kernel, {shared} VMM pages mapped), injected COVH failures: {injected}, counted leaks: {leaked}");
    assert!(shared > 0, "no run step mapped a shared page");
    assert!(injected > 0);
    assert!(entered > runs / 4, "the run steps rarely get served");
    assert!(maps > steps / 100, "the sequences rarely get a TVM running");
}
