// SPDX-License-Identifier: GPL-2.0
//! Property tests: random TVM operations against the TSM model with
//! random COVH failures injected; after every step no converted page was
//! freed and every page out of the allocator is either still converted
//! (held by the TVM's pool or leaked, counted) or held by the test.
//! `KVM_COVE_PROP_STEPS` sets the total (default 100000).

use kvm_cove::abi::{Gpa, Pa};
use kvm_cove::exit::Exit;
use kvm_cove::model::{machine, ModelAlloc, ModelNacl, ModelTsm, ScriptedExit, Shared};
use kvm_cove::pool::{PageAlloc, Plain};
use kvm_cove::tvm::{check_tsm, Tvm, TvmState};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const RAM: u64 = 0x8000_0000;

thread_local! {
    static OK_MAPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
const RAM_LEN: u64 = 32 << 20;

fn check(m: &Shared, tvm: &Option<Tvm>, leaked: u64, held: u64, step: u64) {
    let m = m.borrow();
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

fn sequence(seed: u64, steps: u64) -> (u64, u64) {
    let mut rng = Rng(seed | 1);
    let (mut t, mut a, mut n, m): (ModelTsm, ModelAlloc, ModelNacl, Shared) = machine(256 << 20);
    m.borrow_mut().tsm.seed(seed);
    m.borrow_mut().tsm.inject_ppm = [0, 5_000, 50_000][rng.below(3) as usize];
    let batch = [1, 16, 512][rng.below(3) as usize];
    let mut tvm: Option<Tvm> = None;
    let mut leaked = 0;
    let mut held: Vec<Pa> = Vec::new();
    for step in 0..steps {
        let gpa = RAM + rng.below(RAM_LEN / 4096) * 4096;
        match (&mut tvm, rng.below(10)) {
            (None, _) => {
                if let Ok(info) = check_tsm(&mut t) {
                    match Tvm::create(&mut t, &mut a, &info, batch) {
                        Ok(mut v) => {
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
                let _ = v.create_vcpu(&mut t, &mut a, rng.below(10));
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
            (Some(v), _) => {
                if rng.below(6) == 0 {
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
                    }
                }
            }
        }
        check(&m, &tvm, leaked, held.len() as u64, step);
    }
    m.borrow_mut().tsm.inject_ppm = 0;
    if let Some(mut v) = tvm.take() {
        v.destroy(&mut t, &mut a).unwrap();
        leaked += v.pool_stats().leaked;
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
    let (mut steps, mut leaked, mut injected, mut seed) = (0, 0, 0, 0x0dd_ba11_u64);
    while steps < total {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (l, i) = sequence(seed, 500);
        steps += 500;
        leaked += l;
        injected += i;
    }
    let maps = OK_MAPS.with(|c| c.get());
    println!("cove property steps: {steps}, successful zero-page maps: {maps}, injected COVH failures: {injected}, counted leaks: {leaked}");
    assert!(injected > 0);
    assert!(maps > steps / 100, "the sequences rarely get a TVM running");
}
