// SPDX-License-Identifier: GPL-2.0

//! Running another program to its end, or killing it after a limit, with
//! its output drained while it runs (a full pipe would stop it).  The VMM
//! tests and the upstream KVM selftests use it.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One bounded run of a program.
pub struct Run {
    /// From its start to its exit, or to the kill.
    pub took: Duration,
    /// Its exit status; `None` if it was still running at the limit and
    /// was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` with stdin closed until it exits or `limit` has passed
/// (then it is killed).  Fails only if it cannot be started or waited for.
pub fn run_bounded(argv: &[String], limit: Duration) -> Result<Run, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command line".into());
    };
    let t0 = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {prog}: {e}"))?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut b);
            }
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out_t = drain(child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>));
    let err_t = drain(child.stderr.take().map(|e| Box::new(e) as Box<dyn Read + Send>));
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| format!("waiting for {prog}: {e}"))?
        {
            break Some(s);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Run {
        took: t0.elapsed(),
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}
