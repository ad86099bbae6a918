// SPDX-License-Identifier: GPL-2.0

//! The `kvm_rme:kvm_rme_rmi_error` tracepoint (patch 0005,
//! arch/arm64/kvm/rme_trace.h): every RMI call the RMM refuses is traced
//! as `kvm_rme_rmi_error: RMI_<NAME>(arg0, arg1): status S index I`.

use super::open_kvm;
use super::realm::{init_ripas, populate, realm_vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE};
use crate::check;
use crate::rme::RmeCmd;
use crate::tap::{Outcome, TestResult};

const TRACEFS: &str = "/sys/kernel/tracing";
const EVENT: &str = "kvm_rme_rmi_error: ";

/// Mounts tracefs at [`TRACEFS`] unless it is mounted already.
fn mount_tracefs() -> Result<(), String> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| e.to_string());
    let (src, target, fstype) = (c("tracefs")?, c(TRACEFS)?, c("tracefs")?);
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            core::ptr::null(),
        )
    };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EBUSY) {
        return Err(format!(
            "mount tracefs: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// One traced RMI failure: the command's name (after `RMI_`), the
/// status (RMI error code) and the whole line.
struct RmiError {
    name: String,
    status: u64,
    line: String,
}

/// The `kvm_rme_rmi_error` lines of the trace buffer.
fn rmi_errors() -> Result<Vec<RmiError>, String> {
    let trace = std::fs::read_to_string(format!("{TRACEFS}/trace"))
        .map_err(|e| format!("reading the trace: {e}"))?;
    Ok(trace
        .lines()
        .filter_map(|l| {
            let rest = l.split(EVENT).nth(1)?;
            let name = rest.strip_prefix("RMI_")?.split('(').next()?.to_string();
            let status = rest
                .split("status ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(RmiError {
                name,
                status,
                line: l.trim().to_string(),
            })
        })
        .collect())
}

/// `count x NAME status S, ...` of `errors`.
fn summary(errors: &[RmiError]) -> String {
    let mut by_cmd: Vec<(String, usize)> = Vec::new();
    for e in errors {
        let key = format!("{} status {}", e.name, e.status);
        match by_cmd.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => by_cmd.push((key, 1)),
        }
    }
    let parts: Vec<String> = by_cmd.iter().map(|(k, n)| format!("{n} x {k}")).collect();
    parts.join(", ")
}

/// The errno the uAPI turns an RMI error status into (rust/kvm_rme
/// `RmiError::errno`): ERROR_INPUT, ERROR_REALM, ERROR_REC, ERROR_RTT.
fn errno_of_status(status: u64) -> Option<i32> {
    match status {
        1 => Some(libc::EINVAL),
        2 => Some(libc::EPERM),
        3 => Some(libc::EBUSY),
        4 => Some(libc::ENXIO),
        5 => Some(libc::EOPNOTSUPP),
        10 | 14 => Some(libc::EBUSY),
        _ => None,
    }
}

/// The commands POPULATE issues: the delegation (1.0's, or 2.0's range
/// command) and the map (0x153, named after 1.0's DATA_CREATE).
fn is_populate_step(name: &str) -> bool {
    matches!(name, "GRANULE_DELEGATE" | "GRANULE_RANGE_DELEGATE" | "DATA_CREATE")
}

/// A failed RMI call reaches the kvm_rme:kvm_rme_rmi_error tracepoint.
/// The test makes its own: POPULATE_REALM of a granule populated
/// already, which the RMM refuses (GRANULE_DELEGATE of its guest_memfd
/// page, delegated already, or DATA_CREATE at an RTT entry in use).  The
/// trace is cleared before that call; afterwards it must hold a line for
/// that command whose status is the one the uAPI reported as errno
/// (needs an RMM speaking RMI 1.0 or 2.0: without realm support no RMI call can
/// be made from userspace).
pub fn rmi_error_trace() -> TestResult {
    let kvm = open_kvm()?;
    let Some(mut vm) = realm_vm(&kvm)? else {
        return Ok(Outcome::Skip(
            "KVM_CAP_ARM_RME is 0: without realm support no RMI call can be made from userspace"
                .into(),
        ));
    };
    mount_tracefs()?;
    let enable = format!("{TRACEFS}/events/kvm_rme/kvm_rme_rmi_error/enable");
    let enabled =
        std::fs::read_to_string(&enable).map_err(|e| format!("kvm_rme_rmi_error event: {e}"))?;
    if enabled.trim() != "1" {
        std::fs::write(&enable, "1").map_err(|e| format!("enabling the event: {e}"))?;
        println!("# rmi_error_trace: the event was off ({enabled:?}); enabled it");
    }
    // What the boot left in the trace (the kvm_rme_rmm KUnit suite's
    // refused delegations), for the log only.
    let boot = rmi_errors()?;
    println!(
        "# rmi_error_trace: {} failed RMI calls traced before this test: {}",
        boot.len(),
        summary(&boot)
    );

    // A realm with one populated granule.
    vm.add_private_memory(0, PAYLOAD_RAM, PAYLOAD_RAM_SIZE, &[])?;
    check!(vm.rme(RmeCmd::CreateRealm) == 0, "CREATE_REALM failed");
    let r = init_ripas(&vm, PAYLOAD_RAM, PAYLOAD_RAM_SIZE as u64);
    check!(r == 0, "INIT_RIPAS: errno {r}");
    let r = populate(&vm, PAYLOAD_RAM, 0x1000);
    check!(r == 0, "POPULATE: errno {r}");

    // Opening the trace with O_TRUNC clears the buffer.
    std::fs::write(format!("{TRACEFS}/trace"), "")
        .map_err(|e| format!("clearing the trace: {e}"))?;
    let refused = |errors: &[RmiError]| {
        errors
            .iter()
            .filter(|e| is_populate_step(&e.name))
            .count()
    };
    let before = refused(&rmi_errors()?);
    let errno = populate(&vm, PAYLOAD_RAM, 0x1000);
    check!(errno != 0, "POPULATE of a populated granule succeeded");
    let after = rmi_errors()?;
    for e in &after {
        println!("# rmi_error_trace: traced: {}", e.line);
    }
    check!(
        refused(&after) > before,
        "POPULATE of a populated granule (errno {errno}) traced no new GRANULE_DELEGATE or DATA_CREATE failure ({before} before; now: {})",
        summary(&after)
    );
    check!(
        after.iter().any(|e| {
            is_populate_step(&e.name)
                && errno_of_status(e.status) == Some(errno)
        }),
        "POPULATE failed with errno {errno}, but no traced GRANULE_DELEGATE or DATA_CREATE failure has a status that maps to it: {}",
        summary(&after)
    );
    Ok(Outcome::Pass)
}
