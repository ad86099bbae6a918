// SPDX-License-Identifier: GPL-2.0

//! kselftest TAP output: `TAP version 13`, a plan, one `ok`/`not ok` line
//! per test (`# SKIP reason` for skips) and a `# Totals:` line.

/// What a test concluded.
pub enum Outcome {
    /// The test checked what it meant to check.
    Pass,
    /// The test could not run here; the reason is printed.
    Skip(String),
}

/// A test's result: a failure carries its message.
pub type TestResult = Result<Outcome, String>;

/// One named test.
pub struct Test {
    /// Name printed on the result line.
    pub name: &'static str,
    /// The test body.
    pub run: fn() -> TestResult,
}

/// Runs `tests` in order, prints TAP, and returns the process exit code
/// (0 if nothing failed, 1 otherwise).
pub fn run(suite: &str, tests: &[Test]) -> i32 {
    println!("TAP version 13");
    println!("# {suite}: {} tests", tests.len());
    println!("1..{}", tests.len());
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (i, t) in tests.iter().enumerate() {
        let n = i + 1;
        match (t.run)() {
            Ok(Outcome::Pass) => {
                pass += 1;
                println!("ok {n} {}", t.name);
            }
            Ok(Outcome::Skip(why)) => {
                skip += 1;
                println!("ok {n} {} # SKIP {why}", t.name);
            }
            Err(msg) => {
                fail += 1;
                for line in msg.lines() {
                    println!("# {}: {line}", t.name);
                }
                println!("not ok {n} {}", t.name);
            }
        }
    }
    println!("# Totals: pass:{pass} fail:{fail} xfail:0 xpass:0 skip:{skip} error:0");
    i32::from(fail != 0)
}

/// Fails the test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
