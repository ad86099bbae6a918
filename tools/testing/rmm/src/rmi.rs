// SPDX-License-Identifier: GPL-2.0

//! RMI dispatch: a request as EL3 forwards it (x0 = function ID, x1..x6
//! = the host's x1..x6) decoded into a call of the RMM core
//! ([`kvm_rme::model::RmmModel`], the state machine the host's tests run
//! against), and the result encoded into the host's x0..x4.  The function
//! IDs, status encodings and structure layouts are `kvm_rme::abi`'s, so
//! host and RMM share one reading of the specification.

use kvm_rme::abi::{Command, Ipa, Pa, RealmParams, RecParams, RmiError, RmiResult, RmiVersion};
use kvm_rme::logic::rmi::Rmi;
use kvm_rme::model::{Backing, RmmModel};

/// The RMI version this RMM implements: 1.0.
pub const RMI_1_0: u64 = 1 << 16;

/// SMCCC `NOT_SUPPORTED`, for function IDs the RMM does not implement.
pub const NOT_SUPPORTED: u64 = -1i64 as u64;

/// SMCCC v1.3's SVE hint, which EL3 passes on in the function ID.
const SVE_HINT: u64 = 1 << 16;

/// What the firmware shell does around the core: reading host
/// structures from the normal world (`None` when the granule cannot be
/// read: the shell's access faulted), and keeping what the core does not
/// model (REC register contexts, measurements) in step with it.  The
/// hooks run after the command succeeded.
pub trait Shell {
    /// The `rmi_realm_params` granule at `pa`.
    fn realm_params(&mut self, pa: u64) -> Option<RealmParams>;
    /// The `rmi_rec_params` granule at `pa`.
    fn rec_params(&mut self, pa: u64) -> Option<RecParams>;
    /// `REALM_CREATE` made realm `rd` from `p`.
    fn realm_created(&mut self, _rd: Pa, _p: &RealmParams) {}
    /// `REALM_DESTROY` removed `rd`.
    fn realm_destroyed(&mut self, _rd: Pa) {}
    /// `REC_CREATE` made `rec` in `rd` from `p`.
    fn rec_created(&mut self, _rd: Pa, _rec: Pa, _p: &RecParams) {}
    /// `REC_DESTROY` removed `rec`.
    fn rec_destroyed(&mut self, _rec: Pa) {}
    /// `DATA_CREATE` put the granule `data` at `ipa` (`flags` as given).
    fn data_created(&mut self, _rd: Pa, _ipa: u64, _data: Pa, _flags: u64) {}
    /// `RTT_INIT_RIPAS` set `[base, top)` to RAM, in entries of `size`
    /// bytes.
    fn ripas_initialised(&mut self, _rd: Pa, _base: u64, _top: u64, _size: u64) {}
    /// `PSCI_COMPLETE` answered `calling`'s request about `target`.
    fn psci_completed(&mut self, _calling: Pa, _target: Pa, _status: u64) {}
    /// Whether `rec` may be destroyed now (it is not running).
    fn rec_idle(&mut self, _rec: Pa) -> bool {
        true
    }
}

/// What a request turned into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Answered: the host's x0..x4.
    Done([u64; 5]),
    /// `REC_ENTER(rec, run)`: the shell runs the REC.
    RecEnter {
        /// The REC.
        rec: Pa,
        /// The `rmi_rec_run` granule (normal world).
        run: Pa,
    },
}

fn status(r: RmiResult) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => e.encode(),
    }
}

fn level(v: u64) -> Option<u8> {
    u8::try_from(v).ok()
}

/// Decodes and runs one request.  Registers a command does not return
/// keep the host's values (x4 is passed back as SMCCC 1.2 asks).
pub fn dispatch<B: Backing>(
    rmm: &mut RmmModel<B>,
    sh: &mut impl Shell,
    fid: u64,
    a: &[u64; 7],
) -> Request {
    let mut out = [0, a[0], a[1], a[2], a[3]];
    let Some(cmd) = u32::try_from(fid & !SVE_HINT).ok().and_then(Command::from_fid) else {
        out[0] = NOT_SUPPORTED;
        return Request::Done(out);
    };
    let input = RmiError::input().encode();
    // A host structure is read only from a normal-world granule of the
    // delegable memory.
    let ns_ok = |rmm: &RmmModel<B>, pa: u64| rmm.ns_granule(Pa(pa));
    out[0] = match cmd {
        Command::Version => {
            let r = rmm.version(RmiVersion::decode(a[0]));
            out[1] = r.info.lower.encode();
            out[2] = r.info.higher.encode();
            status(r.status)
        }
        Command::Features => match rmm.features(a[0]) {
            Ok(v) => {
                out[1] = v;
                0
            }
            Err(e) => e.encode(),
        },
        Command::GranuleDelegate => status(rmm.granule_delegate(Pa(a[0]))),
        Command::GranuleUndelegate => status(rmm.granule_undelegate(Pa(a[0]))),
        Command::DataCreate => {
            let r = rmm.data_create(Pa(a[0]), Pa(a[1]), Ipa(a[2]), Pa(a[3]), a[4]);
            if r.is_ok() {
                sh.data_created(Pa(a[0]), a[2], Pa(a[1]), a[4]);
            }
            status(r)
        }
        Command::DataCreateUnknown => status(rmm.data_create_unknown(Pa(a[0]), Pa(a[1]), Ipa(a[2]))),
        Command::DataDestroy => match rmm.data_destroy(Pa(a[0]), Ipa(a[1])) {
            Ok(d) => {
                out[1] = d.pa.0;
                out[2] = d.top.0;
                0
            }
            Err(e) => e.encode(),
        },
        Command::RealmActivate => status(rmm.realm_activate(Pa(a[0]))),
        Command::RealmCreate => match ns_ok(rmm, a[1]).then(|| sh.realm_params(a[1])).flatten() {
            Some(p) => {
                let r = rmm.realm_create_raw(Pa(a[0]), &p);
                if r.is_ok() {
                    sh.realm_created(Pa(a[0]), &p);
                }
                status(r)
            }
            None => input,
        },
        Command::RealmDestroy => {
            let r = rmm.realm_destroy(Pa(a[0]));
            if r.is_ok() {
                sh.realm_destroyed(Pa(a[0]));
            }
            status(r)
        }
        Command::RecCreate => match ns_ok(rmm, a[2]).then(|| sh.rec_params(a[2])).flatten() {
            Some(p) => {
                let r = rmm.rec_create_raw(Pa(a[0]), Pa(a[1]), &p);
                if r.is_ok() {
                    sh.rec_created(Pa(a[0]), Pa(a[1]), &p);
                }
                status(r)
            }
            None => input,
        },
        Command::RecDestroy => {
            if !sh.rec_idle(Pa(a[0])) {
                // TF-RMM's answer for a REC in use.
                RmiError::new(kvm_rme::abi::ErrorStatus::Rec, 0).encode()
            } else {
                let r = rmm.rec_destroy(Pa(a[0])).map(|_| ());
                if r.is_ok() {
                    sh.rec_destroyed(Pa(a[0]));
                }
                status(r)
            }
        }
        Command::RecEnter => {
            return Request::RecEnter {
                rec: Pa(a[0]),
                run: Pa(a[1]),
            }
        }
        Command::RttCreate => match level(a[3]) {
            Some(l) => status(rmm.rtt_create(Pa(a[0]), Pa(a[1]), Ipa(a[2]), l)),
            None => input,
        },
        Command::RttDestroy => match level(a[2]) {
            Some(l) => {
                let (r, top) = rmm.rtt_destroy(Pa(a[0]), Ipa(a[1]), l);
                out[2] = top.0;
                match r {
                    Ok(rtt) => {
                        out[1] = rtt.0;
                        0
                    }
                    Err(e) => e.encode(),
                }
            }
            None => input,
        },
        Command::RttMapUnprotected => match level(a[2]) {
            Some(l) => status(rmm.rtt_map_unprotected(Pa(a[0]), Ipa(a[1]), l, a[3])),
            None => input,
        },
        Command::RttReadEntry => match level(a[2]).map(|l| rmm.rtt_read_entry(Pa(a[0]), Ipa(a[1]), l)) {
            Some(Ok(e)) => {
                out[1..5].copy_from_slice(&e.encode());
                0
            }
            Some(Err(e)) => e.encode(),
            None => input,
        },
        Command::RttUnmapUnprotected => match level(a[2]).map(|l| rmm.rtt_unmap_unprotected(Pa(a[0]), Ipa(a[1]), l)) {
            Some(Ok(top)) => {
                out[1] = top.0;
                0
            }
            Some(Err(e)) => e.encode(),
            None => input,
        },
        Command::PsciComplete => {
            let r = rmm.psci_complete(Pa(a[0]), Pa(a[1]), a[2]);
            if r.is_ok() {
                sh.psci_completed(Pa(a[0]), Pa(a[1]), a[2]);
            }
            status(r)
        }
        Command::RttFold => match level(a[2]).map(|l| rmm.rtt_fold(Pa(a[0]), Ipa(a[1]), l)) {
            Some(Ok(rtt)) => {
                out[1] = rtt.0;
                0
            }
            Some(Err(e)) => e.encode(),
            None => input,
        },
        Command::RecAuxCount => match rmm.rec_aux_count(Pa(a[0])) {
            Ok(n) => {
                out[1] = n;
                0
            }
            Err(e) => e.encode(),
        },
        Command::RttInitRipas => match rmm.rtt_init_ripas(Pa(a[0]), Ipa(a[1]), Ipa(a[2])) {
            Ok(top) => {
                let size = rmm.lookup(Pa(a[0]), a[1]).map(|(_, s)| s).unwrap_or(4096);
                sh.ripas_initialised(Pa(a[0]), a[1], top.0, size);
                out[1] = top.0;
                0
            }
            Err(e) => e.encode(),
        },
        Command::RttSetRipas => match rmm.rtt_set_ripas(Pa(a[0]), Pa(a[1]), Ipa(a[2]), Ipa(a[3])) {
            Ok(top) => {
                out[1] = top.0;
                0
            }
            Err(e) => e.encode(),
        },
        // RMI 2.0's commands: this RMM speaks 1.0 (SMCCC "unknown").
        _ => NOT_SUPPORTED,
    };
    Request::Done(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backing::tests::FakeHw;
    use crate::backing::FwBacking;
    use crate::stage2;
    use kvm_rme::abi::{HashAlgo, MAX_REC_AUX_GRANULES};
    use kvm_rme::logic::realm::Geometry;
    use kvm_rme::logic::rmi::{RealmCreate as RealmArgs, RecCreate as RecArgs};
    use std::collections::BTreeMap;

    const BASE: u64 = 0x4000_0000;

    #[derive(Default)]
    struct Ns {
        realm: BTreeMap<u64, RealmParams>,
        rec: BTreeMap<u64, RecParams>,
    }

    impl Shell for Ns {
        fn realm_params(&mut self, pa: u64) -> Option<RealmParams> {
            self.realm.get(&pa).copied()
        }
        fn rec_params(&mut self, pa: u64) -> Option<RecParams> {
            self.rec.get(&pa).copied()
        }
    }

    type Fw = RmmModel<FwBacking<FakeHw>>;

    fn call(rmm: &mut Fw, ns: &mut Ns, cmd: Command, a: &[u64]) -> [u64; 5] {
        let mut args = [0u64; 7];
        args[..a.len()].copy_from_slice(a);
        match dispatch(rmm, ns, u64::from(cmd.fid()), &args) {
            Request::Done(r) => r,
            Request::RecEnter { .. } => panic!("REC_ENTER is the shell's"),
        }
    }

    fn page(n: u64) -> u64 {
        BASE + n * 4096
    }

    #[test]
    fn a_realm_is_a_real_stage_2() {
        let mut rmm = RmmModel::with_backing(BASE, 64 << 20, FwBacking::new(FakeHw::default()));
        let mut ns = Ns::default();
        use Command::*;
        // Unknown function IDs: NOT_SUPPORTED, the caller's x4 back.
        let mut args = [0u64; 7];
        args[3] = 44;
        assert_eq!(
            dispatch(&mut rmm, &mut ns, 0xC400_0170, &args),
            Request::Done([NOT_SUPPORTED, 0, 0, 0, 44])
        );
        assert_eq!(call(&mut rmm, &mut ns, Version, &[RMI_1_0])[..3], [0, RMI_1_0, RMI_1_0]);
        assert_eq!(call(&mut rmm, &mut ns, Version, &[2 << 16])[0], 1);

        let geo = Geometry::new(40).unwrap();
        let (rd, rtt0) = (page(1), page(2));
        for i in 0..u64::from(geo.num_start) + 1 {
            assert_eq!(call(&mut rmm, &mut ns, GranuleDelegate, &[page(1 + i)])[0], 0);
        }
        assert!(rmm.backing.hw.realm.contains(&rd));
        let params = RealmArgs {
            flags: 0,
            s2sz: 40,
            sve_vl: 0,
            num_bps: 2,
            num_wps: 2,
            pmu_num_ctrs: 0,
            hash_algo: HashAlgo::Sha256,
            rpv: [0; 64],
            vmid: 5,
            rtt_base: Pa(rtt0),
            rtt_level_start: geo.start_level as i8,
            rtt_num_start: geo.num_start,
        }
        .params();
        let params_pa = page(100);
        ns.realm.insert(params_pa, params);
        // Parameters in a delegated granule are not read.
        ns.realm.insert(rd, params);
        assert_eq!(call(&mut rmm, &mut ns, RealmCreate, &[rd, rd])[0], 1);
        assert_eq!(call(&mut rmm, &mut ns, RealmCreate, &[rd, params_pa])[0], 0);

        // Levels 2 and 3 for IPA 0, then a measured data page.
        let (l2, l3, data, src) = (page(10), page(11), page(12), page(200));
        for g in [l2, l3, data] {
            assert_eq!(call(&mut rmm, &mut ns, GranuleDelegate, &[g])[0], 0);
        }
        assert_eq!(call(&mut rmm, &mut ns, RttCreate, &[rd, l2, 0, 2])[0], 0);
        assert_eq!(call(&mut rmm, &mut ns, RttCreate, &[rd, l3, 0, 3])[0], 0);
        assert_eq!(call(&mut rmm, &mut ns, RttInitRipas, &[rd, 0, 0x20_0000])[..2], [0, 0x20_0000]);
        rmm.backing.hw.words.insert(src + 8, 0xfeed);
        assert_eq!(call(&mut rmm, &mut ns, DataCreate, &[rd, data, 0x3000, src, 1])[0], 0);
        assert_eq!(rmm.backing.hw.words.get(&(data + 8)), Some(&0xfeed), "copied in");

        // The MMU's walk over what was written agrees with the core.
        let vttbr = stage2::vttbr(rtt0, 5);
        let hw = &rmm.backing.hw;
        assert_eq!(hw.walk(vttbr, geo.start_level, 0x3123), Some(data + 0x123));
        assert_eq!(hw.walk(vttbr, geo.start_level, 0x4000), None, "RAM, unassigned");

        // An unprotected page: the host's page, in the NS PAS.
        let unprot = 1u64 << 39;
        let l2u = page(13);
        let l3u = page(14);
        for g in [l2u, l3u] {
            assert_eq!(call(&mut rmm, &mut ns, GranuleDelegate, &[g])[0], 0);
        }
        let l1_err = call(&mut rmm, &mut ns, RttMapUnprotected, &[rd, unprot, 3, page(300) | (6 << 2) | (3 << 6)]);
        assert_eq!(l1_err[0], RmiError::rtt(1).encode(), "the walk stops at level 1");
        assert_eq!(call(&mut rmm, &mut ns, RttCreate, &[rd, l2u, unprot, 2])[0], 0);
        assert_eq!(call(&mut rmm, &mut ns, RttCreate, &[rd, l3u, unprot, 3])[0], 0);
        assert_eq!(call(&mut rmm, &mut ns, RttMapUnprotected, &[rd, unprot, 3, page(300) | (6 << 2) | (3 << 6)])[0], 0);
        let hw = &rmm.backing.hw;
        assert_eq!(hw.walk(vttbr, geo.start_level, unprot + 8), Some(page(300) + 8));
        assert_ne!(hw.words[&l3u] & stage2::NS, 0);
        let e = call(&mut rmm, &mut ns, RttReadEntry, &[rd, 0x3000, 3]);
        assert_eq!(e, [0, 3, 1, data, 1], "level 3, ASSIGNED, the page, RAM");

        // A REC needs its parameters from the normal world too.
        let (rec, aux) = (page(20), [page(21), page(22)]);
        for g in [rec, aux[0], aux[1]] {
            assert_eq!(call(&mut rmm, &mut ns, GranuleDelegate, &[g])[0], 0);
        }
        let mut a = [Pa(0); MAX_REC_AUX_GRANULES];
        a[0] = Pa(aux[0]);
        a[1] = Pa(aux[1]);
        let rp = RecArgs { runnable: true, mpidr: 0, pc: 0x3000, gprs: [0; 8], aux: a, num_aux: 2 }.params();
        ns.rec.insert(page(101), rp);
        assert_eq!(call(&mut rmm, &mut ns, RecAuxCount, &[rd])[..2], [0, 2]);
        assert_eq!(call(&mut rmm, &mut ns, RecCreate, &[rd, rec, page(101)])[0], 0);
        assert_eq!(rmm.rec_of(Pa(rec)), Some((Pa(rd), 0)));

        // Destroying the page unmaps it (and invalidates the TLBs); the
        // granule is zeroed before the normal world gets it back.
        let tlbis = rmm.backing.hw.tlbis;
        let d = call(&mut rmm, &mut ns, DataDestroy, &[rd, 0x3000]);
        assert_eq!(d[..2], [0, data]);
        assert_eq!(rmm.backing.hw.walk(vttbr, geo.start_level, 0x3000), None);
        assert_eq!(rmm.backing.hw.tlbis, tlbis + 1);
        assert_eq!(call(&mut rmm, &mut ns, GranuleUndelegate, &[data])[0], 0);
        assert!(!rmm.backing.hw.realm.contains(&data));
        assert_eq!(rmm.backing.hw.words.get(&(data + 8)), None, "scrubbed");
        // REC_ENTER goes to the shell.
        args = [rec, page(102), 0, 0, 0, 0, 0];
        assert_eq!(
            dispatch(&mut rmm, &mut ns, u64::from(RecEnter.fid()), &args),
            Request::RecEnter { rec: Pa(rec), run: Pa(page(102)) }
        );
    }

    #[test]
    fn el3_refusing_a_delegation_is_error_input() {
        let mut rmm = RmmModel::with_backing(BASE, 1 << 20, FwBacking::new(FakeHw::default()));
        rmm.backing.hw.refuse = Some(page(3));
        let mut ns = Ns::default();
        assert_eq!(call(&mut rmm, &mut ns, Command::GranuleDelegate, &[page(3)])[0], 1);
        assert_eq!(rmm.not_undelegated(), 0, "no state change");
        assert_eq!(rmm.backing.el3_refusals, 1);
        assert_eq!(call(&mut rmm, &mut ns, Command::GranuleDelegate, &[page(4) + 8])[0], 1);
    }
}
