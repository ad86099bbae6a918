// SPDX-License-Identifier: GPL-2.0

//! The kernel's own KVM selftests (`tools/testing/selftests/kvm` of the
//! v7.2 tree, built statically by `scripts/kvm-selftests.sh`), run as one
//! TAP suite, `kvm_upstream`, after ours: normal KVM must behave as on a
//! stock kernel of the same config.
//!
//! `scripts/kvm-selftests.sh` writes the list, one test per line:
//!
//! ```text
//! <path> <timeout in s> [args...]   run /upstream/<path> with args
//! skip <path> <reason...>           report a SKIP with the reason
//! ```
//!
//! A test passes with exit status 0, skips with kselftest's `KSFT_SKIP`
//! (4), and fails otherwise, also when it is killed at its timeout (the
//! kselftest runner's default is 120 s, in `settings`).  Its output is
//! printed behind `#` (all of it when it does not pass), so that its own
//! TAP lines are not taken for ours.

use std::time::Duration;

use crate::process::run_bounded;

/// kselftest's exit status for a skipped test.
const KSFT_SKIP: i32 = 4;
/// Lines of a passing test's output that are shown.
const PASS_TAIL: usize = 3;

/// One line of the list.
#[derive(Debug, PartialEq)]
pub enum Entry {
    /// Run `path` (relative to the list's directory) with `args`.
    Run {
        path: String,
        timeout: Duration,
        args: Vec<String>,
    },
    /// Report `path` as skipped, for `reason`.
    Skip { path: String, reason: String },
}

/// Parses the list; blank lines and `#` comments are ignored.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first == "skip" {
            let path = words.next().ok_or(format!("line {}: skip without a test", n + 1))?;
            let reason = words.collect::<Vec<_>>().join(" ");
            if reason.is_empty() {
                return Err(format!("line {}: skip {path} without a reason", n + 1));
            }
            out.push(Entry::Skip {
                path: path.into(),
                reason,
            });
            continue;
        }
        let secs = words
            .next()
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&t| t > 0)
            .ok_or(format!("line {}: {first} needs a timeout in seconds", n + 1))?;
        out.push(Entry::Run {
            path: first.into(),
            timeout: Duration::from_secs(secs),
            args: words.map(String::from).collect(),
        });
    }
    Ok(out)
}

/// The name a test is reported under.
fn name(path: &str) -> String {
    format!("upstream/{path}")
}

/// Prints `text`'s lines behind `# <path>| `, only the last `tail` if set.
fn show(path: &str, text: &str, tail: Option<usize>) {
    let lines: Vec<&str> = text.lines().collect();
    let from = tail.map_or(0, |t| lines.len().saturating_sub(t));
    for l in &lines[from..] {
        println!("# {path}| {l}");
    }
}

/// Runs the list at `list` (the binaries lie beside it) and returns the
/// exit code: 0 if nothing failed.
pub fn run(list: &str) -> i32 {
    let dir = std::path::Path::new(list)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entries = match std::fs::read_to_string(list)
        .map_err(|e| format!("{list}: {e}"))
        .and_then(|t| parse(&t))
    {
        Ok(e) => e,
        Err(e) => {
            println!("# kvm_upstream: {e}");
            return 1;
        }
    };
    println!("TAP version 13");
    println!(
        "# kvm_upstream: {} tests of the kernel's tools/testing/selftests/kvm",
        entries.len()
    );
    println!("1..{}", entries.len());
    let (mut pass, mut fail, mut skip) = (0u32, 0u32, 0u32);
    for (i, e) in entries.iter().enumerate() {
        let n = i + 1;
        match e {
            Entry::Skip { path, reason } => {
                skip += 1;
                println!("ok {n} {} # SKIP {reason}", name(path));
            }
            Entry::Run {
                path,
                timeout,
                args,
            } => {
                let mut argv = vec![format!("{dir}/{path}")];
                argv.extend(args.iter().cloned());
                let r = match run_bounded(&argv, *timeout) {
                    Ok(r) => r,
                    Err(err) => {
                        fail += 1;
                        println!("# {path}| {err}");
                        println!("not ok {n} {}", name(path));
                        continue;
                    }
                };
                let out = format!("{}{}", r.stdout, r.stderr);
                let secs = r.took.as_secs_f64();
                match r.status.map(|s| s.code()) {
                    Some(Some(0)) => {
                        pass += 1;
                        show(path, &out, Some(PASS_TAIL));
                        println!("# {path}: passed in {secs:.1} s");
                        println!("ok {n} {}", name(path));
                    }
                    Some(Some(KSFT_SKIP)) => {
                        skip += 1;
                        show(path, &out, None);
                        let why = out
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or("exit status 4")
                            .trim()
                            .to_string();
                        println!("ok {n} {} # SKIP {why}", name(path));
                    }
                    status => {
                        fail += 1;
                        show(path, &out, None);
                        match status {
                            None => println!(
                                "# {path}: still running after {} s: killed",
                                timeout.as_secs()
                            ),
                            Some(None) => println!("# {path}: killed by a signal after {secs:.1} s"),
                            Some(Some(c)) => println!("# {path}: exit status {c} after {secs:.1} s"),
                        }
                        println!("not ok {n} {}", name(path));
                    }
                }
            }
        }
    }
    println!("# Upstream totals: pass:{pass} fail:{fail} skip:{skip}");
    i32::from(fail != 0)
}
