// SPDX-License-Identifier: GPL-2.0

//! What both uAPI fuzzers share (`uapi_fuzz` on arm64, `cove_uapi_fuzz`
//! on riscv64): the generator, the seed (printed, and replayed from
//! `/etc/confvm-fuzz-seed`, which `FUZZ_SEED=<seed>` in
//! `scripts/selftests.sh` writes), and the userspace arena the memslots
//! point into.

/// xorshift64*: cheap, deterministic, seedable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        // CAST: an index below the slice's length.
        v[self.below(v.len() as u64) as usize]
    }
}

/// The run's seed: the replayed one, or one from the clock; printed with
/// how to replay it.
pub(crate) fn seed(test: &str) -> u64 {
    let seed = std::fs::read_to_string("/etc/confvm-fuzz-seed")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            t ^ (u64::from(std::process::id()) << 32)
        });
    println!("# {test}: seed {seed} (replay: FUZZ_SEED={seed} in scripts/selftests.sh)");
    seed
}

/// What a fuzzer run did: calls made, calls that returned 0, and
/// confidential VMs (realms, TVMs) created.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) ok: u64,
    pub(crate) vms: u64,
}

/// Counts a call that answered `e` (0 or an errno): an errno outside
/// `set`, what the documentation allows, ends the run.
pub(crate) fn allowed(what: &str, e: i32, set: &[i32], c: &mut Counts) -> Result<(), String> {
    c.calls += 1;
    if e == 0 {
        c.ok += 1;
        return Ok(());
    }
    if set.contains(&e) {
        return Ok(());
    }
    Err(format!("{what}: errno {e} ({}), not one it may return", std::io::Error::from_raw_os_error(e)))
}

/// Runs `step` until `calls` calls are made, with the generator seeded
/// by `seed`, over a list of VMs that is closed before returning; an
/// error names the call and the seed.
pub(crate) fn drive<G>(
    calls: u64,
    seed: u64,
    mut step: impl FnMut(&mut Vec<G>, &mut Rng, &mut Counts) -> Result<(), String>,
) -> Result<Counts, String> {
    let mut r = Rng(seed | 1);
    let mut c = Counts::default();
    let mut guests = Vec::new();
    let mut result = Ok(());
    while c.calls < calls {
        if let Err(e) = step(&mut guests, &mut r, &mut c) {
            result = Err(format!("call {}: {e} (seed {seed})", c.calls));
            break;
        }
    }
    drop(guests);
    result.map(|()| c)
}

/// Anonymous memory the fuzzer's memslots point into, unmapped on drop
/// (after every VM that used it is closed: drop it last).
pub(crate) struct Arena {
    ptr: *mut u8,
    len: usize,
}

impl Arena {
    pub(crate) fn new(len: usize) -> Result<Arena, String> {
        // SAFETY: anonymous private mapping, no fixed address.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Arena { ptr: p.cast(), len })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, of `len` bytes.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
