#!/usr/bin/env python3
"""Boots a test kernel in QEMU, collects KUnit and selftest TAP, judges it.

arm64 boots TF-A (with TRP or a full RMM) from a flash image whose BL33 is
the kernel; riscv64 boots the kernel on QEMU's OpenSBI, or (--tsm) as the
host VM of a TSM such as Salus, which OpenSBI starts and which finds the
kernel through QEMU's guest-loader.  The initramfs /init
runs the selftests and prints an end marker; QEMU is stopped there or at the
timeout.  The kernel log is checked for WARN/BUG/panic.

Exit status 0 only if every test passed or skipped, at least one test ran,
the selftests' exit status was 0 and the log is clean.  The last line is
"RESULT arch passed failed skipped" for scripts/test.sh.
"""
import argparse
import os
import re
import select
import subprocess
import sys
import time

TS = re.compile(r"^\[\s*\d+\.\d+\] ?")
RESULT = re.compile(r"^(\s*)(not ok|ok) (\d+) ([^#]*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$")
BAD = re.compile(r"(WARNING: CPU:|\bBUG:|Kernel panic|Internal error: Oops|Unable to handle kernel|"
                 r"kernel BUG at|rcu: INFO: rcu_.* stall|general protection fault|RMM init failed|RMM Failed to initialize|kvm_(rme|cove): .*leak)")
LEAK = re.compile(r"kvm_(rme|cove): .*leak")
ALLOW_LEAKS = re.compile(r"^# allow-leak-warnings: (\d+)")
SUBTEST = re.compile(r"^\s*# Subtest: (\S+)")
MARKER = "confvm-run-complete"


# Where the guest-loader puts the host kernel for the TSM: 2 MiB aligned
# (Salus asserts it), above the TSM's own 0x80200000 image.
TSM_HOST_ADDR = "0xc0200000"


def qemu_cmd(arch, image, flash, smp, mem, tsm=None):
    if arch == "riscv" and tsm:
        # Salus needs the AIA with guest interrupt files (aia-guests: one
        # for the host, the rest for TVMs), Sstc, Svadu and Smstateen, and
        # keeps part of memory for itself (its host needs about 1.25 GiB
        # more).
        return ["qemu-system-riscv64", "-M", "virt,aia=aplic-imsic,aia-guests=5",
                "-cpu", "rv64,smaia=true,ssaia=true,smstateen=true,sstc=true,svadu=true",
                "-m", mem or "2G", "-smp", str(smp), "-nographic", "-bios", "default",
                "-kernel", tsm, "-device", f"guest-loader,kernel={image},addr={TSM_HOST_ADDR}",
                "-no-reboot", "-nic", "none"]
    if arch == "arm64":
        return ["qemu-system-aarch64", "-M", "virt,secure=on,virtualization=on,gic-version=3",
                "-cpu", "max,x-rme=on", "-m", mem or "3G", "-smp", str(smp), "-nographic",
                "-bios", flash, "-no-reboot", "-nic", "none"]
    return ["qemu-system-riscv64", "-M", "virt,aia=aplic-imsic", "-cpu", "rv64,h=true",
            "-m", mem or "1G", "-smp", str(smp), "-nographic", "-bios", "default",
            "-kernel", image, "-no-reboot", "-nic", "none"]


def boot(cmd, log_path, timeout):
    """Runs QEMU, tees its console to log_path; returns (lines, reason)."""
    lines, reason = [], "timeout"
    buf = b""
    start = time.monotonic()
    with open(log_path, "wb") as log, subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p:
        marker_at = None
        while True:
            now = time.monotonic()
            if now - start > timeout:
                break
            if marker_at is not None and now - marker_at > 5:
                reason = "marker"
                break
            r, _, _ = select.select([p.stdout], [], [], 1.0)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    reason = "marker" if marker_at is not None else "qemu exited"
                    break
                log.write(chunk)
                log.flush()
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    lines.append(line)
                    if MARKER in line and marker_at is None:
                        marker_at = time.monotonic()
                    if "Kernel panic" in line and marker_at is None:
                        marker_at = time.monotonic() - 4
        if p.poll() is None:
            p.kill()
        p.wait()
    if buf:
        lines.append(buf.decode("utf-8", "replace"))
    return lines, reason


SUITE_SUM = re.compile(r"^# (\S+): pass:(\d+) fail:(\d+) skip:(\d+) total:(\d+)")
SELF_SUM = re.compile(r"^# Totals: pass:(\d+) fail:(\d+) xfail:\d+ xpass:\d+ skip:(\d+) error:(\d+)")
# The kernel's own KVM selftests (kvm_selftests --upstream): their own suite.
UP_SUM = re.compile(r"^# Upstream totals: pass:(\d+) fail:(\d+) skip:(\d+)")
UP_PREFIX = "upstream/"


def judge(arch, lines, reason, upstream=None):
    """Counts results.  Per-test lines are listed, but the counts come from
    the summary lines (KUnit's per-suite "# suite: pass:.. fail:.." and the
    selftests' "# Totals:"), which survive better when EL3 firmware output
    interleaves with the console; a suite whose summary is missing falls
    back to its test lines, and a "not ok" suite always counts a failure."""
    problems = []
    # Teardown leak warnings fail the boot, except as many as a test
    # that provokes them (RMI failure injection) announces.
    leaks, allowed_leaks = [], 0
    kunit_cases = 0
    selftest_exit = None
    suite = ""
    seen = {}     # (kind, suite) -> [pass, fail, skip] from test lines
    summary = {}  # (kind, suite) -> [pass, fail, skip] from summary lines
    failed_suites = set()
    for line in lines:
        kernel = bool(TS.match(line))
        text = TS.sub("", line)
        sm = SUBTEST.match(text)
        if kernel and sm:
            suite = sm.group(1)
        if kernel and BAD.search(text):
            if LEAK.search(text):
                leaks.append("kernel log: " + text.strip())
            else:
                problems.append("kernel log: " + text.strip())
        al = ALLOW_LEAKS.match(text)
        if not kernel and al:
            allowed_leaks += int(al.group(1))
        if text.startswith("confvm-selftests-exit:"):
            selftest_exit = int(text.split(":", 1)[1].strip() or -1)
        ss = SUITE_SUM.match(text.strip())
        if kernel and ss and ss.group(1) != "Totals":
            p, f, k = int(ss.group(2)), int(ss.group(3)), int(ss.group(4))
            summary[("kunit", ss.group(1))] = [p, f, k]
            continue
        us = UP_SUM.match(text)
        if not kernel and us:
            summary[("upstream", "")] = [int(x) for x in us.groups()]
            continue
        st = SELF_SUM.match(text)
        if not kernel and st:
            p, f, k, e = (int(x) for x in st.groups())
            summary[("selftest", "")] = [p, f + e, k]
            continue
        m = RESULT.match(text)
        if not m:
            continue
        indent, status, _, name, directive, why = m.groups()
        if kernel and not indent:
            # A KUnit suite line.
            if status == "not ok":
                failed_suites.add(name.strip())
            continue
        if kernel:
            kunit_cases += 1
            key, label = ("kunit", suite), f"{arch}/kunit/{suite}.{name.strip()}"
        elif name.startswith(UP_PREFIX):
            key, label = ("upstream", ""), f"{arch}/{name.strip()}"
        else:
            key, label = ("selftest", ""), f"{arch}/selftest/{name.strip()}"
        counts = seen.setdefault(key, [0, 0, 0])
        if directive == "SKIP":
            counts[2] += 1
            result = "skip"
            print(f"SKIP {label}: {why}")
        elif status == "ok":
            counts[0] += 1
            result = "pass"
            print(f"PASS {label}")
        else:
            counts[1] += 1
            result = "fail"
            print(f"FAIL {label}")
        if key[0] == "upstream" and upstream is not None:
            upstream[name.strip()[len(UP_PREFIX):]] = result
    passed = failed = skipped = 0
    for key in set(seen) | set(summary):
        p, f, k = summary.get(key, seen.get(key, [0, 0, 0]))
        if key in summary and key in seen and seen[key] != summary[key]:
            print(f"# {arch}/{key[0]}/{key[1]}: result lines {seen[key]} differ from the summary "
                  f"{summary[key]} (console interleaving); counting the summary")
        if key[0] == "kunit" and key[1] in failed_suites and f == 0:
            f = 1
        passed, failed, skipped = passed + p, failed + f, skipped + k
    for s in failed_suites:
        if ("kunit", s) not in seen and ("kunit", s) not in summary:
            print(f"FAIL {arch}/kunit/{s}")
            failed += 1
    if reason != "marker":
        problems.append(f"boot did not reach the end marker ({reason})")
    if selftest_exit is None:
        problems.append("the selftests did not report an exit status")
    elif selftest_exit != 0:
        problems.append(f"the selftests exited with {selftest_exit}")
    if kunit_cases == 0 and not any(k[0] == "kunit" for k in summary):
        problems.append("no KUnit test case ran")
    if len(leaks) > allowed_leaks:
        problems.extend(leaks)
    elif leaks:
        print(f"# {len(leaks)} teardown leak warnings, {allowed_leaks} announced by the tests")
    for p in problems:
        print(f"FAIL {arch}/boot: {p}")
    failed += len(problems)
    return passed, failed, skipped


def read_stock(path):
    """The upstream KVM selftests' results on a stock v7.2 kernel of the
    same config (scripts/stock-kvm-selftests.sh): "test pass|skip|fail"."""
    stock = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                stock[line[0]] = line[1]
    return stock


def compare_stock(arch, upstream, stock):
    """Every upstream test must end as on the stock kernel: one that
    passes there and not here is ours to fix.  Returns the failures."""
    failed = 0
    long = bool(os.environ.get("KVM_SELFTESTS_LONG"))
    for name in sorted(set(stock) | set(upstream)):
        want, got = stock.get(name, "absent"), upstream.get(name, "absent")
        # KVM_SELFTESTS_LONG runs what the stock boot skipped as
        # long-running: its own result (a failure counts as one) stands.
        if long and want == "skip" and got != "absent":
            continue
        if want != got:
            print(f"FAIL {arch}/upstream-vs-stock/{name}: stock v7.2 {want}, this kernel {got}")
            failed += 1
    if not failed:
        print(f"# {arch}: the {len(upstream)} upstream KVM selftests ended as on stock v7.2")
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("arch", choices=["arm64", "riscv"])
    ap.add_argument("--image", help="kernel Image (riscv)")
    ap.add_argument("--tsm", help="riscv: boot the kernel as the host of this TSM image (Salus)")
    ap.add_argument("--flash", help="TF-A flash image with the kernel as BL33 (arm64)")
    ap.add_argument("--log", help="console log (required unless --interactive)")
    ap.add_argument("--interactive", action="store_true",
                    help="attach QEMU to this terminal and judge nothing (scripts/shell.sh)")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem")
    ap.add_argument("--stock", metavar="FILE",
                    help="the upstream KVM selftests' results on stock v7.2: any difference fails")
    ap.add_argument("--record-stock", metavar="FILE",
                    help="write the upstream KVM selftests' results there (a stock kernel's boot)")
    ap.add_argument("--expect", action="append", default=[], metavar="NAME=REGEX",
                    help="a test NAME that passes if a console line matches REGEX")
    a = ap.parse_args()
    cmd = qemu_cmd(a.arch, a.image, a.flash, a.smp, a.mem, a.tsm)
    if a.interactive:
        os.execvp(cmd[0], cmd)
    if not a.log:
        ap.error("--log is required")
    print("# " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    timeout = a.timeout
    if os.environ.get("KVM_SELFTESTS_LONG"):
        # The long-running upstream tests (scripts/kvm-selftests.sh): up
        # to their timeout each.
        timeout = max(timeout, 8 * 3600)
    lines, reason = boot(cmd, a.log, timeout)
    print(f"# {a.arch}: boot ended by {reason} after {time.monotonic() - t0:.0f} s; log in {a.log}")
    upstream = {}
    passed, failed, skipped = judge(a.arch, lines, reason, upstream)
    if a.record_stock:
        with open(a.record_stock, "w") as f:
            f.write(f"# {a.arch}: the upstream KVM selftests on stock v7.2 "
                    "(scripts/stock-kvm-selftests.sh)\n")
            for name in sorted(upstream):
                f.write(f"{name} {upstream[name]}\n")
    if a.stock:
        # Only for a boot that runs them (on arm64, the one with realms
        # enabled): there, none at all is a failure.
        if upstream:
            failed += compare_stock(a.arch, upstream, read_stock(a.stock))
        else:
            print(f"FAIL {a.arch}/upstream: no upstream KVM selftest ran")
            failed += 1
    for e in a.expect:
        name, _, rx = e.partition("=")
        if any(re.search(rx, l) for l in lines):
            print(f"PASS {a.arch}/{name}")
            passed += 1
        else:
            print(f"FAIL {a.arch}/{name}: no console line matches {rx!r}")
            failed += 1
    print(f"RESULT {a.arch} {passed} {failed} {skipped}")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
