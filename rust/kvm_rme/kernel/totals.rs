// SPDX-License-Identifier: GPL-2.0

//! Host-wide totals since boot, for benchmarks and tests that cannot
//! reach a VM's own stats (a VMM such as QEMU keeps its VM fd, a killed
//! VMM takes its VM with it): RMI calls by command and REC exits by
//! class, over every realm, and what the RMM holds now.  debugfs shows
//! them as `kvm_rme/rmi_calls`, `kvm_rme/rec_exits` and
//! `kvm_rme/granules`, one `name count` line each; `scripts/bench.sh`
//! reads the first two before and after a run.

use core::fmt;

use kernel::debugfs::{Dir, File};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

use crate::abi::Command;
use crate::logic::run::{ExitClass, EXIT_CLASSES};

const COMMANDS: usize = Command::ALL.len();

static RMI_CALLS: [Atomic<u64>; COMMANDS] = [const { Atomic::new(0) }; COMMANDS];
static REC_EXITS: [Atomic<u64>; EXIT_CLASSES] = [const { Atomic::new(0) }; EXIT_CLASSES];
/// Granules delegated and not undelegated, by every conduit.
static DELEGATED: Atomic<i64> = Atomic::new(0);
/// Realms created and not destroyed.
static REALMS: Atomic<i64> = Atomic::new(0);
/// Granules teardown gave up on (left with the RMM on purpose).
static LEAKED: Atomic<u64> = Atomic::new(0);
/// RMI calls failed by injection (debugfs `fail_rmi/`).
static INJECTED: Atomic<u64> = Atomic::new(0);

/// Counts one injected RMI failure.
pub(crate) fn injected() {
    INJECTED.add(1, Relaxed);
}

/// Accounts `n` granules delegated (negative: undelegated) by one of 2.0's
/// range commands, whose count the command alone does not tell.
pub(crate) fn delegated_range(n: i64) {
    DELEGATED.add(n, Relaxed);
}

/// Accounts a successful `cmd` in the host-wide gauges.
pub(crate) fn rmi_ok(cmd: Command) {
    match cmd {
        Command::GranuleDelegate => DELEGATED.add(1, Relaxed),
        Command::GranuleUndelegate => DELEGATED.add(-1, Relaxed),
        Command::RealmCreate => REALMS.add(1, Relaxed),
        Command::RealmDestroy => REALMS.add(-1, Relaxed),
        _ => {}
    }
}

/// Counts granules a teardown leaked.
pub(crate) fn leaked(n: u64) {
    LEAKED.add(n, Relaxed);
}

/// Counts one call of `cmd`.
pub(crate) fn rmi_call(cmd: Command) {
    if let Some(c) = RMI_CALLS.get(cmd.index()) {
        // Wraps after 2^64 calls: a benchmark's difference stays right.
        c.add(1, Relaxed);
    }
}

/// Adds the REC exits a vCPU counted between `before` and `after`.
pub(crate) fn rec_exits(before: &[u64; EXIT_CLASSES], after: &[u64; EXIT_CLASSES]) {
    for ((t, b), a) in REC_EXITS.iter().zip(before).zip(after) {
        let d = a.saturating_sub(*b);
        if d != 0 {
            t.add(d, Relaxed);
        }
    }
}

/// The exit classes' names in `rec_exits`, as the vCPU stats call them
/// without their `rec_exit_` prefix.
const EXIT_NAMES: [(ExitClass, &str); EXIT_CLASSES] = [
    (ExitClass::Mmio, "mmio"),
    (ExitClass::Fault, "fault"),
    (ExitClass::Irq, "irq"),
    (ExitClass::Psci, "psci"),
    (ExitClass::Ripas, "ripas"),
    (ExitClass::HostCall, "host_call"),
    (ExitClass::Other, "other"),
];

/// `kvm_rme/rmi_calls`: every command, called or not.
struct RmiCalls;

impl fmt::Debug for RmiCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in Command::ALL {
            let n = RMI_CALLS.get(c.index()).map_or(0, |a| a.load(Relaxed));
            writeln!(f, "{} {}", c.name().to_str().unwrap_or("?"), n)?;
        }
        Ok(())
    }
}

/// `kvm_rme/rec_exits`.
struct RecExits;

impl fmt::Debug for RecExits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (c, name) in EXIT_NAMES {
            // CAST: fieldless enum to its index.
            let n = REC_EXITS.get(c as usize).map_or(0, |a| a.load(Relaxed));
            writeln!(f, "{name} {n}")?;
        }
        Ok(())
    }
}

/// `kvm_rme/granules`: granules delegated now, realms now, granules
/// leaked and RMI calls failed by injection since boot.
struct Granules;

impl fmt::Debug for Granules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "delegated {}", DELEGATED.load(Relaxed))?;
        writeln!(f, "realms {}", REALMS.load(Relaxed))?;
        writeln!(f, "leaked {}", LEAKED.load(Relaxed))?;
        writeln!(f, "injected {}", INJECTED.load(Relaxed))
    }
}

/// The debugfs directory and its files; they go with it.
pub(crate) struct Files {
    _dir: Dir,
    _calls: Pin<KBox<File<RmiCalls>>>,
    _exits: Pin<KBox<File<RecExits>>>,
    _granules: Pin<KBox<File<Granules>>>,
}

impl Files {
    /// Creates `kvm_rme/` in debugfs (nothing without `CONFIG_DEBUG_FS`).
    pub(crate) fn new() -> Result<Files> {
        let dir = Dir::new(c"kvm_rme");
        let calls = KBox::pin_init(dir.read_only_file(c"rmi_calls", RmiCalls), GFP_KERNEL)?;
        let exits = KBox::pin_init(dir.read_only_file(c"rec_exits", RecExits), GFP_KERNEL)?;
        let granules = KBox::pin_init(dir.read_only_file(c"granules", Granules), GFP_KERNEL)?;
        Ok(Files {
            _dir: dir,
            _calls: calls,
            _exits: exits,
            _granules: granules,
        })
    }
}
