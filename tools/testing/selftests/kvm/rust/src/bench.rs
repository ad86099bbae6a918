// SPDX-License-Identifier: GPL-2.0

//! `kvm_selftests --bench realm-boot [RUNS]`, which `scripts/bench.sh`
//! runs in the arm64 host: boots the Linux realm guest `RUNS` times (3 by
//! default) in each configuration and prints the medians.
//!
//! Configurations: this crate's VMM (`boot_guest`) and, if the initramfs
//! has one, the VMM of `/vmm/run` (QEMU `rme-guest`); each with the
//! guest's default command line, with transparent huge pages on and off
//! (which decides whether the shared alias is mapped in 2 MiB blocks),
//! and with `quiet swiotlb=1024`.  Every figure is a difference of the
//! host-wide totals in debugfs (`kvm_rme/rmi_calls`, `kvm_rme/rec_exits`)
//! around one boot, so it counts the same for both VMMs.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::tests::realm_linux::boot_guest;
use crate::tests::vmm::{run_vmm, vmm_argv, REACHED};

const RMI_CALLS: &str = "/sys/kernel/debug/kvm_rme/rmi_calls";
const REC_EXITS: &str = "/sys/kernel/debug/kvm_rme/rec_exits";
const THP: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
/// What the quiet configuration adds to the guest's command line.
const QUIET: &str = "quiet swiotlb=1024";

type Totals = BTreeMap<String, u64>;

fn totals(path: &str) -> Result<Totals, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut m = Totals::new();
    for l in s.lines() {
        let mut w = l.split_whitespace();
        if let (Some(k), Some(v)) = (w.next(), w.next()) {
            m.insert(k.to_string(), v.parse().map_err(|e| format!("{path}: {l}: {e}"))?);
        }
    }
    Ok(m)
}

fn delta(after: &Totals, before: &Totals) -> Totals {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.wrapping_sub(before.get(k).copied().unwrap_or(0))))
        .collect()
}

/// One boot's figures.
struct Sample {
    ms: u64,
    rmi: Totals,
    exits: Totals,
}

/// Which VMM boots the guest.
#[derive(Clone, Copy, PartialEq)]
enum Vmm {
    Own,
    Qemu,
}

fn boot_once(vmm: Vmm, quiet: bool) -> Result<Sample, String> {
    let (rmi0, ex0) = (totals(RMI_CALLS)?, totals(REC_EXITS)?);
    let t0 = Instant::now();
    match vmm {
        Vmm::Own => {
            let kvm = crate::tests::open_kvm()?;
            let image = std::fs::read("/realm/Image").map_err(|e| format!("/realm/Image: {e}"))?;
            let dtb_path = if quiet { "/realm/guest-quiet.dtb" } else { "/realm/guest.dtb" };
            let dtb = std::fs::read(dtb_path).map_err(|e| format!("{dtb_path}: {e}"))?;
            let g = boot_guest(&kvm, &image, &dtb, false)?.ok_or("realms cannot be created")?;
            if !g.text.contains(REACHED) {
                return Err("the guest did not reach its userspace".into());
            }
        }
        Vmm::Qemu => {
            let mut argv = vmm_argv().ok_or("no /vmm/run")?;
            if quiet {
                let i = argv.iter().position(|a| a == "-append").ok_or("no -append in /vmm/run")?;
                let a = argv.get_mut(i + 1).ok_or("-append without a value")?;
                a.push(' ');
                a.push_str(QUIET);
            }
            let r = run_vmm(&argv)?;
            if !r.stdout.contains(REACHED) || !r.status.success() {
                return Err(format!("the VMM's guest failed ({}): {}", r.status, r.stderr.trim()));
            }
        }
    }
    // CAST: a boot of under 2^64 ms.
    let ms = t0.elapsed().as_millis() as u64;
    Ok(Sample {
        ms,
        rmi: delta(&totals(RMI_CALLS)?, &rmi0),
        exits: delta(&totals(REC_EXITS)?, &ex0),
    })
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn report(name: &str, samples: &[Sample]) {
    let med = |f: &dyn Fn(&Sample) -> u64| median(samples.iter().map(f).collect());
    let get = |m: &Totals, k: &str| m.get(k).copied().unwrap_or(0);
    let times: Vec<String> = samples.iter().map(|s| format!("{:.1}", s.ms as f64 / 1000.0)).collect();
    println!(
        "# bench| {name}: {} runs, median {:.1} s (runs: {} s); median RMI calls {}, REC exits {}, faults {}, data pages {}",
        samples.len(),
        med(&|s| s.ms) as f64 / 1000.0,
        times.join(", "),
        med(&|s| s.rmi.values().sum()),
        med(&|s| s.exits.values().sum()),
        med(&|s| get(&s.exits, "fault")),
        med(&|s| get(&s.rmi, "DATA_CREATE") + get(&s.rmi, "DATA_CREATE_UNKNOWN") + get(&s.rmi, "RTT_DATA_MAP")),
    );
    let Some(first) = samples.first() else {
        return;
    };
    let by = |m: &dyn Fn(&Sample) -> &Totals| {
        m(first)
            .keys()
            .map(|k| (k, med(&|s| get(m(s), k))))
            .filter(|(_, n)| *n != 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("# bench| {name}: REC exits by class (medians): {}", by(&|s| &s.exits));
    println!("# bench| {name}: RMI calls by command (medians): {}", by(&|s| &s.rmi));
}

/// Runs the benchmark; `Err` if a boot failed.
pub fn realm_boot(runs: usize) -> Result<(), String> {
    let mut configs = vec![
        (Vmm::Own, false, true),
        (Vmm::Own, false, false),
        (Vmm::Own, true, true),
    ];
    if vmm_argv().is_some() {
        configs.extend([(Vmm::Qemu, false, true), (Vmm::Qemu, false, false), (Vmm::Qemu, true, true)]);
    } else {
        println!("# bench| no /vmm/run: QEMU not benchmarked (REALM_VMM=qemu:/path adds it)");
    }
    for (vmm, quiet, thp) in configs {
        std::fs::write(THP, if thp { "always" } else { "never" }).map_err(|e| format!("{THP}: {e}"))?;
        let name = format!(
            "{}, {} command line, THP {}",
            if vmm == Vmm::Own { "selftest VMM" } else { "QEMU rme-guest" },
            if quiet { QUIET } else { "default" },
            if thp { "on" } else { "off" },
        );
        let mut samples = Vec::new();
        for i in 0..runs {
            let s = boot_once(vmm, quiet).map_err(|e| format!("{name}, run {}: {e}", i + 1))?;
            samples.push(s);
        }
        report(&name, &samples);
    }
    std::fs::write(THP, "always").map_err(|e| format!("{THP}: {e}"))?;
    Ok(())
}
