// SPDX-License-Identifier: GPL-2.0

//! A VMM users have, launching the Linux realm guest: `realm_vmm_guest`
//! runs the command line in `/vmm/run` (one argument per line; the
//! scripts put it there when `REALM_VMM=qemu:/path` names a VMM, for
//! example QEMU `rme-guest`), shows the guest's console, and passes when
//! the guest reaches its userspace and the VMM exits with 0.  Leaks of
//! the realm's teardown fail the boot (the runner reads the kernel log).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::open_kvm;
use super::realm::NO_REALMS;
use crate::check;
use crate::rme::KVM_CAP_ARM_RME;
use crate::tap::{Outcome, TestResult};

/// Where the scripts put the VMM's command line.
const RUN: &str = "/vmm/run";
/// What the realm guest's `/init` prints in its userspace.
const REACHED: &str = "confvm-realm-guest: userspace reached";
/// How long the VMM may take (QEMU TCG; about 25 s are usual).
const LIMIT: Duration = Duration::from_secs(600);

/// The VMM of `/vmm/run` boots the Linux realm guest to its userspace
/// and exits cleanly.
pub fn realm_vmm_guest() -> TestResult {
    let Ok(line) = std::fs::read_to_string(RUN) else {
        return Ok(Outcome::Skip(
            "no VMM in the initramfs (REALM_VMM=qemu:/path/to/qemu-system-aarch64 adds one)".into(),
        ));
    };
    let kvm = open_kvm()?;
    if kvm.check_extension(KVM_CAP_ARM_RME).unwrap_or(0) == 0 {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    }
    let argv: Vec<&str> = line
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some((vmm, args)) = argv.split_first() else {
        return Err(format!("{RUN} is empty"));
    };
    println!("# realm_vmm_guest: {}", argv.join(" "));
    let t0 = Instant::now();
    let mut child = Command::new(vmm)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {vmm}: {e}"))?;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| format!("waiting for {vmm}: {e}"))?
        {
            break s;
        }
        if t0.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{vmm} still running after {} s: killed",
                LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t0.elapsed();
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    for l in out.lines().chain(err.lines()) {
        println!("# vmm| {l}");
    }
    println!(
        "# realm_vmm_guest: VMM start to exit {} ms, exit status {:?}",
        took.as_millis(),
        status.code()
    );
    check!(
        out.contains(REACHED),
        "the realm guest did not reach its userspace"
    );
    check!(status.success(), "{vmm} exited with {status}");
    Ok(Outcome::Pass)
}
