// SPDX-License-Identifier: GPL-2.0

//! A VMM users have, launching the Linux realm guest: `realm_vmm_guest`
//! runs the command line in `/vmm/run` (one argument per line; the
//! scripts put it there when `REALM_VMM=qemu:/path` names a VMM, for
//! example QEMU `rme-guest`), shows the guest's console, and passes when
//! the guest reaches its userspace and the VMM exits with 0.  Leaks of
//! the realm's teardown fail the boot (the runner reads the kernel log).

use std::time::Duration;

use super::open_kvm;
use super::realm::NO_REALMS;
use crate::check;
use crate::process::run_bounded;
use crate::rme::KVM_CAP_ARM_RME;
use crate::tap::{Outcome, TestResult};

/// Where the scripts put the VMM's command line.
const RUN: &str = "/vmm/run";
/// What the realm guest's `/init` prints in its userspace.
pub(crate) const REACHED: &str = "confvm-realm-guest: userspace reached";
/// How long the VMM may take (QEMU TCG; about 25 s are usual).
const LIMIT: Duration = Duration::from_secs(600);

/// One run of a VMM by [`run_vmm`].
pub(crate) struct VmmRun {
    /// From its start to its exit.
    pub took: Duration,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// The VMM's command line from `/vmm/run`, one argument per line;
/// `None` without one.
pub(crate) fn vmm_argv() -> Option<Vec<String>> {
    let line = std::fs::read_to_string(RUN).ok()?;
    Some(
        line.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// Runs `argv` to its end; one still running after [`LIMIT`] is killed
/// and is an error.
pub(crate) fn run_vmm(argv: &[String]) -> Result<VmmRun, String> {
    let r = run_bounded(argv, LIMIT)?;
    let Some(status) = r.status else {
        return Err(format!(
            "{} still running after {} s: killed",
            argv.first().map(String::as_str).unwrap_or(""),
            LIMIT.as_secs()
        ));
    };
    Ok(VmmRun {
        took: r.took,
        status,
        stdout: r.stdout,
        stderr: r.stderr,
    })
}

/// The VMM of `/vmm/run` boots the Linux realm guest to its userspace
/// and exits cleanly.
pub fn realm_vmm_guest() -> TestResult {
    let Some(argv) = vmm_argv() else {
        return Ok(Outcome::Skip(
            "no VMM in the initramfs (REALM_VMM=qemu:/path/to/qemu-system-aarch64 adds one)".into(),
        ));
    };
    let kvm = open_kvm()?;
    if kvm.check_extension(KVM_CAP_ARM_RME).unwrap_or(0) == 0 {
        return Ok(Outcome::Skip(NO_REALMS.into()));
    }
    println!("# realm_vmm_guest: {}", argv.join(" "));
    let r = run_vmm(&argv)?;
    for l in r.stdout.lines().chain(r.stderr.lines()) {
        println!("# vmm| {l}");
    }
    println!(
        "# realm_vmm_guest: VMM start to exit {} ms, exit status {:?}",
        r.took.as_millis(),
        r.status.code()
    );
    check!(
        r.stdout.contains(REACHED),
        "the realm guest did not reach its userspace"
    );
    check!(r.status.success(), "the VMM exited with {}", r.status);
    Ok(Outcome::Pass)
}
