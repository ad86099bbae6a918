// SPDX-License-Identifier: GPL-2.0

//! `/init` of the test initramfs: mounts the pseudo file systems, runs the
//! selftests, prints an end marker for the QEMU runner and powers off.

use std::ffi::CString;
use std::process::Command;

fn mount(src: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let (s, t, f) = (
        CString::new(src),
        CString::new(target),
        CString::new(fstype),
    );
    let (Ok(s), Ok(t), Ok(f)) = (s, t, f) else {
        return;
    };
    // SAFETY: all three are valid NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, core::ptr::null()) };
    if r != 0 {
        println!(
            "# init: mount {fstype} on {target}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Syncs and powers the machine off; `reboot()` returns only on failure,
/// and then this waits (the runner stops QEMU at its end marker).
fn power_off() -> ! {
    // SAFETY: plain syscalls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// The host shell of `scripts/shell.sh` (`HOST_SHELL=1`): busybox's `sh`
/// on the console, with job control; powers off when it exits.
fn shell() -> ! {
    println!("confvm host shell: busybox sh; /vmm/run.sh starts the VMM given as REALM_VMM; exit powers off");
    // The applets as commands on PATH.
    let _ = Command::new("/bin/busybox").args(["--install", "-s", "/bin"]).status();
    let status = Command::new("/bin/busybox")
        .args(["setsid", "cttyhack", "/bin/sh", "-l"])
        .env("PATH", "/bin:/vmm")
        .env("HOME", "/root")
        .status();
    if let Err(e) = status {
        println!("# init: cannot start the shell: {e}");
    }
    power_off()
}

/// The upstream KVM selftests' list (`kvm_selftests --upstream`).
const UPSTREAM: &str = "/upstream/list";

/// Runs `cmd` and returns its exit code (-1 if it did not exit or start).
fn run(cmd: &mut Command) -> i32 {
    match cmd.status() {
        Ok(s) => s.code().unwrap_or(-1),
        Err(e) => {
            println!("# init: cannot run {:?}: {e}", cmd.get_program());
            -1
        }
    }
}

fn main() {
    mount("devtmpfs", "/dev", "devtmpfs");
    mount("proc", "/proc", "proc");
    mount("sysfs", "/sys", "sysfs");
    if !std::path::Path::new("/bin/kvm_selftests").exists() {
        // The Linux realm guest of the realm_linux_guest selftest: reaching
        // this line is what that test checks.
        println!("confvm-realm-guest: userspace reached");
        power_off();
    }
    if std::path::Path::new("/etc/confvm-shell").exists() {
        shell();
    }
    // scripts/test.sh's firmware boot: KUnit (at boot) is the test.
    if std::path::Path::new("/etc/confvm-kunit-only").exists() {
        println!("# init: KUnit only, no selftests in this boot");
        println!("confvm-selftests-exit: 0");
        println!("confvm-run-complete");
        power_off();
    }
    // scripts/bench.sh: the benchmark instead of the tests.
    let bench = std::fs::read_to_string("/etc/confvm-bench").ok();
    let mut cmd = Command::new("/bin/kvm_selftests");
    if let Some(b) = &bench {
        mount("debugfs", "/sys/kernel/debug", "debugfs");
        cmd.arg("--bench").args(b.split_whitespace());
    }
    // scripts/stock-kvm-selftests.sh: a stock kernel runs only the
    // upstream KVM selftests.
    let ours = !std::path::Path::new("/etc/confvm-upstream-only").exists();
    let mut status = if ours { run(&mut cmd) } else { 0 };
    // The kernel's own KVM selftests, where scripts/kvm-selftests.sh put
    // them (not with a benchmark).
    if bench.is_none() && std::path::Path::new(UPSTREAM).exists() {
        let up = run(Command::new("/bin/kvm_selftests").args(["--upstream", UPSTREAM]));
        if status == 0 {
            status = up;
        }
    }
    println!("confvm-selftests-exit: {status}");
    println!("confvm-run-complete");
    power_off()
}
