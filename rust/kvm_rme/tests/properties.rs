// SPDX-License-Identifier: GPL-2.0
//! Property tests: random sequences of realm operations against the RMM
//! model, with random RMI failures injected, checking after every step:
//!
//! - no page was returned to the host allocator while not UNDELEGATED;
//! - every granule the model holds non-undelegated is accounted for:
//!   held by the live realm (`stats.delegated`) or leaked on purpose
//!   (`stats.leaked`, summed over all realms);
//! - no page is lost: pages out of the host allocator are exactly those
//!   still delegated plus those the test itself holds;
//! - the realm's RTT and data counters match the model;
//! - an operation that reports success had its effect in the model.
//!
//! `KVM_RME_PROP_STEPS` sets the total number of steps (default 120000).

mod common;

use kvm_rme::abi::{Ipa, Pa};
use kvm_rme::cvm_fw::testing::{run_property, Tape};
use kvm_rme::logic::granule::{GranuleAlloc, Undelegated};
use kvm_rme::logic::realm::{Realm, RealmConfig, RealmState, Rec};
use kvm_rme::model::{machine, Entry, GranuleState, ModelAlloc, ModelRmi, Shared};

/// What the sequences did, summed over all cases: the coverage guards
/// check that the interesting paths ran, not only that nothing broke.
#[derive(Default, Debug, Clone, Copy)]
struct Coverage {
    steps: u64,
    leaked: u64,
    injected: u64,
    created: u64,
    populated: u64,
    mapped: u64,
    folded: u64,
    recs: u64,
    activated: u64,
}

impl Coverage {
    fn add(&mut self, o: Coverage) {
        self.steps += o.steps;
        self.leaked += o.leaked;
        self.injected += o.injected;
        self.created += o.created;
        self.populated += o.populated;
        self.mapped += o.mapped;
        self.folded += o.folded;
        self.recs += o.recs;
        self.activated += o.activated;
    }
}

/// Guest-physical window the sequences use (first 32 MiB).
const WINDOW: u64 = 32 << 20;

struct World {
    rmi: ModelRmi,
    alloc: ModelAlloc,
    m: Shared,
    realm: Option<Realm>,
    recs: Vec<Rec>,
    next_mpidr: u64,
    leaked: u64,
    abandoned: bool,
    /// RTT and data granules of abandoned realms (left with the RMM).
    stale: (u64, u64),
    /// Pages the test holds (sources, shared pages).
    held: Vec<Undelegated>,
    src: Option<Pa>,
    ipa_bits: u8,
    vmid: u16,
}

impl World {
    /// A world with no realm yet, holding one source page.
    fn new(rmi: ModelRmi, alloc: ModelAlloc, m: Shared, ipa_bits: u8) -> World {
        let mut w = World {
            rmi,
            alloc,
            m,
            realm: None,
            recs: Vec::new(),
            next_mpidr: 0,
            leaked: 0,
            abandoned: false,
            stale: (0, 0),
            held: Vec::new(),
            src: None,
            ipa_bits,
            vmid: 1,
        };
        let s = w.alloc.alloc().expect("src page");
        w.src = Some(s.pa());
        w.held.push(s);
        w
    }

    fn check(&self, step: u64, what: &str) {
        let m = self.m.borrow();
        assert!(
            m.host.violations.is_empty(),
            "step {step} ({what}): {:?}",
            m.host.violations
        );
        let held = self
            .realm
            .as_ref()
            .map(|r| r.stats().delegated)
            .unwrap_or(0);
        let leaked = self.leaked + self.realm.as_ref().map(|r| r.stats().leaked).unwrap_or(0);
        assert_eq!(
            m.rmm.not_undelegated(),
            held + leaked,
            "step {step} ({what}): delegated granules unaccounted for"
        );
        assert_eq!(
            m.host.outstanding,
            m.rmm.not_undelegated() + self.held.len() as u64,
            "step {step} ({what}): pages lost (neither returned nor delegated)"
        );
        if let (Some(r), false) = (&self.realm, self.abandoned) {
            if r.state() != RealmState::Destroyed {
                assert_eq!(
                    r.stats().rtt_pages + self.stale.0,
                    m.rmm.count_state(GranuleState::Rtt),
                    "step {step} ({what}): RTT count"
                );
                assert_eq!(
                    r.stats().data_pages + self.stale.1,
                    m.rmm.count_state(GranuleState::Data),
                    "step {step} ({what}): data count"
                );
            }
        }
    }

    fn shared_bit(&self) -> u64 {
        1u64 << (self.ipa_bits - 1)
    }

    fn leaf(&self, ipa: u64) -> Option<Entry> {
        let rd = self.realm.as_ref()?.rd();
        self.m.borrow().rmm.leaf(rd, ipa)
    }

    /// Ends the current realm: RECs, then the realm.  With `retries`,
    /// failures are retried; afterwards whatever is left is leaked.
    fn finish_realm(&mut self, retries: usize) {
        let Some(mut realm) = self.realm.take() else {
            return;
        };
        for _ in 0..=retries {
            let recs = std::mem::take(&mut self.recs);
            for rec in recs {
                if let Err((rec, _)) = realm.rec_destroy(&mut self.rmi, &mut self.alloc, rec) {
                    self.recs.push(rec);
                }
            }
            if self.recs.is_empty() && realm.destroy(&mut self.rmi, &mut self.alloc).is_ok() {
                break;
            }
        }
        for rec in std::mem::take(&mut self.recs) {
            realm.rec_leak(rec);
        }
        if realm.state() != RealmState::Destroyed {
            realm.leak();
            self.abandoned = true;
            let m = self.m.borrow();
            self.stale = (
                m.rmm.count_state(GranuleState::Rtt),
                m.rmm.count_state(GranuleState::Data),
            );
        } else {
            assert_eq!(
                self.m.borrow().rmm.realm_state(realm.rd()),
                None,
                "destroy said Ok but the realm exists"
            );
        }
        self.leaked += realm.stats().leaked;
    }
}

fn run_sequence(rng: &mut Tape<'_>, steps: u64) -> Coverage {
    let mut cov = Coverage {
        steps,
        ..Coverage::default()
    };
    let (rmi, alloc, m) = machine(512 << 20);
    let ipa_bits = [33u8, 36, 40, 44][rng.below(4) as usize];
    {
        let mut mm = m.borrow_mut();
        mm.rmm.seed(rng.next_u64());
        mm.rmm.inject_ppm = [0, 1_000, 20_000, 100_000][rng.below(4) as usize];
        mm.rmm.aux_count = rng.below(4);
    }
    let mut w = World::new(rmi, alloc, m, ipa_bits);
    for step in 0..steps {
        let op = rng.below(16);
        let shared_bit = w.shared_bit();
        let page_ipa = rng.below(WINDOW / 4096) * 4096;
        let what;
        if w.realm.is_none() || w.abandoned {
            what = "create";
            if w.abandoned {
                // An abandoned realm's granules stay with the RMM; start over.
                w.abandoned = false;
            }
            w.vmid = w.vmid.wrapping_add(1);
            match Realm::create(
                &mut w.rmi,
                &mut w.alloc,
                &RealmConfig::new(ipa_bits, w.vmid),
            ) {
                Ok(r) => {
                    assert_eq!(
                        w.m.borrow().rmm.realm_state(r.rd()),
                        Some(kvm_rme::model::ModelRealmState::New)
                    );
                    w.realm = Some(r);
                    cov.created += 1;
                }
                Err((_, stats)) => w.leaked += stats.leaked,
            }
            w.check(step, what);
            continue;
        }
        let realm = w.realm.as_mut().expect("realm");
        match op {
            0 => {
                what = "init_ripas";
                let len = (1 + rng.below(1024)) * 4096;
                let base = page_ipa.min(WINDOW - len);
                let _ = realm.init_ripas(&mut w.rmi, &mut w.alloc, Ipa(base), Ipa(base + len));
            }
            1 | 2 => {
                what = "populate";
                let Some(page) = w.alloc.data_page() else {
                    continue;
                };
                let measure = rng.below(2) == 0;
                let src = w.src.expect("src");
                if realm
                    .populate(&mut w.rmi, &mut w.alloc, Ipa(page_ipa), page, src, measure)
                    .is_ok()
                {
                    assert!(
                        matches!(w.leaf(page_ipa), Some(Entry::Assigned(..))),
                        "populate Ok without data"
                    );
                    cov.populated += 1;
                }
            }
            3 | 4 => {
                what = "map_unknown";
                let Some(page) = w.alloc.data_page() else {
                    continue;
                };
                if realm
                    .map_unknown(&mut w.rmi, &mut w.alloc, Ipa(page_ipa), page)
                    .is_ok()
                {
                    assert!(
                        matches!(w.leaf(page_ipa), Some(Entry::Assigned(..))),
                        "map Ok without data"
                    );
                    cov.mapped += 1;
                }
            }
            5 => {
                what = "map_block";
                let base = page_ipa & !0x1f_ffff;
                let Some(run) = w.alloc.data_run(512, 0x20_0000) else {
                    continue;
                };
                let mut all = true;
                for i in 0..512u64 {
                    let page = Undelegated::from_host_page(run.add_pages(i)).expect("aligned");
                    let realm = w.realm.as_mut().expect("realm");
                    all &= realm
                        .map_unknown(&mut w.rmi, &mut w.alloc, Ipa(base + i * 4096), page)
                        .is_ok();
                }
                let realm = w.realm.as_mut().expect("realm");
                if all && realm.geometry().start_level < 2 {
                    if let Ok(true) = realm.fold(&mut w.rmi, &mut w.alloc, Ipa(base), 3) {
                        let e = w.leaf(base);
                        assert!(
                            matches!(e, Some(Entry::Assigned(pa, _)) if pa == run),
                            "fold Ok but no block: {e:?}"
                        );
                        cov.folded += 1;
                    }
                }
            }
            6 => {
                what = "fold";
                if realm.geometry().start_level < 2 {
                    let _ = realm.fold(&mut w.rmi, &mut w.alloc, Ipa(page_ipa), 3);
                }
            }
            7 => {
                what = "map_shared";
                let Some(host) = w.alloc.alloc() else {
                    continue;
                };
                let ipa = w.shared_bit() | page_ipa;
                let realm = w.realm.as_mut().expect("realm");
                if realm
                    .map_shared(&mut w.rmi, &mut w.alloc, Ipa(ipa), host.pa())
                    .is_ok()
                {
                    let e = w.leaf(ipa);
                    assert!(
                        matches!(e, Some(Entry::AssignedNs(d)) if d & !0xfff == host.pa().0),
                        "map_shared Ok without mapping: {e:?}"
                    );
                }
                w.held.push(host);
            }
            8 => {
                what = "unmap_shared";
                let ipa = shared_bit | page_ipa;
                let _ = realm.unmap_shared(&mut w.rmi, Ipa(ipa));
            }
            9 => {
                what = "unmap_private";
                let len = (1 + rng.below(1024)) * 4096;
                let base = page_ipa.min(WINDOW - len);
                if realm
                    .unmap_private(&mut w.rmi, &mut w.alloc, Ipa(base), Ipa(base + len))
                    .is_ok()
                {
                    for ipa in (base..base + len).step_by(4096 * 37) {
                        assert!(
                            !matches!(w.leaf(ipa), Some(Entry::Assigned(..))),
                            "unmap Ok, data left at {ipa:#x}"
                        );
                    }
                }
            }
            10 | 11 => {
                what = "rec_create";
                w.next_mpidr += 1;
                // 2.0 takes RECs in MPIDR-index order only.
                let i = w.recs.len() as u64;
                let mpidr = if common::v2() {
                    (i & 0xf) | ((i >> 4) & 0xff) << 8
                } else {
                    w.next_mpidr
                };
                if let Ok(rec) = realm.rec_create(
                    &mut w.rmi,
                    &mut w.alloc,
                    mpidr,
                    0,
                    [0; 8],
                    w.recs.is_empty(),
                ) {
                    assert_eq!(w.m.borrow().rmm.granule(rec.pa()), GranuleState::Rec);
                    w.recs.push(rec);
                    cov.recs += 1;
                }
            }
            12 => {
                what = "rec_destroy";
                if !w.recs.is_empty() {
                    let i = rng.below(w.recs.len() as u64) as usize;
                    let rec = w.recs.swap_remove(i);
                    match realm.rec_destroy(&mut w.rmi, &mut w.alloc, rec) {
                        Ok(()) => {}
                        Err((rec, _)) if rng.below(4) == 0 => realm.rec_leak(rec),
                        Err((rec, _)) => w.recs.push(rec),
                    }
                }
            }
            13 => {
                what = "activate";
                if realm.activate(&mut w.rmi).is_ok() {
                    assert_eq!(
                        w.m.borrow().rmm.realm_state(realm.rd()),
                        Some(kvm_rme::model::ModelRealmState::Active)
                    );
                    cov.activated += 1;
                }
            }
            _ => {
                what = "destroy";
                if rng.below(8) == 0 {
                    w.finish_realm(2);
                }
            }
        }
        w.check(step, what);
    }
    // Clean up without injection: everything but the counted leaks returns.
    w.m.borrow_mut().rmm.inject_ppm = 0;
    w.finish_realm(3);
    for p in std::mem::take(&mut w.held) {
        w.alloc.free(p);
    }
    w.check(steps, "final");
    let m = w.m.borrow();
    assert_eq!(
        m.host.outstanding,
        m.rmm.not_undelegated(),
        "only leaked granules remain out"
    );
    cov.leaked = w.leaked;
    cov.injected = m.rmm.injected;
    cov
}

#[test]
fn random_sequences_keep_invariants() {
    let total: u64 = std::env::var("KVM_RME_PROP_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120_000);
    let per = 400;
    let cases = u32::try_from(total.div_ceil(per)).unwrap_or(u32::MAX);
    let sum = std::cell::Cell::new(Coverage::default());
    // About 3 decisions per step, plus the set-up's.
    run_property(
        cases,
        3 * per as usize + 8,
        "proptest-regressions/properties.txt",
        |tape| {
            let mut c = sum.get();
            c.add(run_sequence(tape, per));
            sum.set(c);
        },
    );
    let c = sum.get();
    println!(
        "property steps: {}, injected RMI failures: {}, counted leaks: {}, realms: {}, \
         populated: {}, mapped: {}, folded: {}, RECs: {}, activations: {}",
        c.steps,
        c.injected,
        c.leaked,
        c.created,
        c.populated,
        c.mapped,
        c.folded,
        c.recs,
        c.activated
    );
    // Coverage: each path ran often enough to mean something.
    assert!(c.injected > 0, "fault injection never fired");
    assert!(
        c.leaked > 0,
        "no injected failure ever ended in a counted leak"
    );
    assert!(c.created >= u64::from(cases), "realms rarely created");
    assert!(c.populated > c.steps / 100, "populate rarely succeeds");
    assert!(
        c.mapped > c.steps / 100,
        "fault-time mapping rarely succeeds"
    );
    assert!(c.folded > 0, "no block was ever folded");
    assert!(c.recs > c.steps / 100, "RECs rarely created");
    assert!(c.activated > 0, "no realm was ever activated");
}

/// The checker the property test runs after every step must be able to
/// fail: each broken state below is one a buggy host would leave.
#[test]
fn the_checker_catches_broken_states() {
    let fails = |what: &str, break_it: &dyn Fn(&mut World)| {
        let (rmi, alloc, m) = machine(16 << 20);
        let mut w = World::new(rmi, alloc, m, 40);
        w.check(0, "intact");
        break_it(&mut w);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.check(1, what)));
        assert!(r.is_err(), "the checker missed: {what}");
    };
    // A delegated page freed to the host allocator.
    fails("delegated page freed", &|w| {
        let page = w.alloc.alloc().unwrap();
        common::raw_delegate(&mut w.rmi, page.pa()).unwrap();
        w.alloc.free(page);
    });
    // A granule delegated that no realm or leak count accounts for.
    fails("unaccounted delegation", &|w| {
        let page = w.alloc.alloc().unwrap();
        common::raw_delegate(&mut w.rmi, page.pa()).unwrap();
        w.held.push(page);
    });
    // A page taken from the allocator and dropped on the floor.
    fails("lost page", &|w| {
        let _ = w.alloc.alloc().unwrap();
    });
    // A realm whose RTT count disagrees with the RMM's.
    fails("RTT count", &|w| {
        let realm = Realm::create(&mut w.rmi, &mut w.alloc, &RealmConfig::new(40, 9)).unwrap();
        w.realm = Some(realm);
        w.stale.0 += 1;
    });
    let _ = common::small;
}
