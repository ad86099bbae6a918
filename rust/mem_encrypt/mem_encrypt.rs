// SPDX-License-Identifier: GPL-2.0

//! RISC-V CoVE TVM guest support: what a kernel running in a TEE VM asks
//! of its TSM over COVG, for the C hooks of `asm/cove_guest.h`
//! (patches/0008):
//!
//! - detection at boot (the TSM offers COVG to TVM vCPUs only);
//! - shared memory for `set_memory_{de,en}crypted()` (swiotlb's pool,
//!   DMA buffers): COVG `SHARE_MEMORY` and `UNSHARE_MEMORY`;
//! - MMIO regions (COVG `ADD_MMIO_REGION`);
//! - the SBI console, a byte per call: a DBCN buffer would be
//!   confidential.
//!
//! `covg` and `logic` are the host-tested layers; this file is the
//! `ecall` conduit and the C entry points.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_uint};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::bindings;
use kernel::prelude::*;

#[path = "../cvm_fw/errno.rs"]
#[doc(hidden)]
pub mod errno;
#[path = "../cvm_fw/sbi.rs"]
#[doc(hidden)]
pub mod sbi;

/// What this crate shares with the host backends (`rust/cvm_fw`), at the
/// path the host build has it.
pub mod cvm_fw {
    pub use super::{errno, sbi};
}

pub mod covg;
pub mod logic;

use logic::{CovgError, Sbi};

/// The prefix of this crate's messages (no `module!` here: the code is
/// called from early boot, before initcalls).
const __LOG_PREFIX: &[u8] = b"mem_encrypt\0";

/// Set once at boot, before any other entry point is called.
static IN_TVM: AtomicBool = AtomicBool::new(false);
/// Bytes shared and taken back so far (the log and KUnit read them).
static SHARED: AtomicU64 = AtomicU64::new(0);
static UNSHARED: AtomicU64 = AtomicU64::new(0);

/// The console's page, shared with the host at boot: a DBCN
/// `CONSOLE_WRITE` names its buffer by address, so in a TVM the buffer
/// must be one the host can read.  One call per line instead of one per
/// byte.
#[repr(C, align(4096))]
struct ConsolePage(UnsafeCell<[u8; 4096]>);

// SAFETY: the bytes are written only by the holder of `CONSOLE_BUSY`.
unsafe impl Sync for ConsolePage {}

static CONSOLE_PAGE: ConsolePage = ConsolePage(UnsafeCell::new([0; 4096]));
/// The page's physical address once shared, else 0.
static CONSOLE_PA: AtomicU64 = AtomicU64::new(0);
/// Held while the page is filled and written.
static CONSOLE_BUSY: AtomicBool = AtomicBool::new(false);

/// SBI calls by `ecall` from S mode.
struct Ecall;

impl Sbi for Ecall {
    fn call(&mut self, ext: u64, fid: u64, a0: u64, a1: u64) -> (i64, u64) {
        // COVG and DBCN take guest physical addresses, which the TSM
        // checks, never pointers it writes through.
        cvm_fw::sbi::ecall(ext, fid, [a0, a1, 0, 0, 0, 0])
    }
}

/// `0` or the negative errno of `r`, for C.
fn errno_of(r: Result<(), CovgError>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => -e.errno(),
    }
}

/// Probes COVG: called once from `setup_arch()`, right after `sbi_init()`.
#[no_mangle]
pub extern "C" fn cove_guest_init() {
    let tvm = logic::in_tvm(&mut Ecall);
    IN_TVM.store(tvm, Ordering::Release);
    if !tvm {
        return;
    }
    // SAFETY: `virt_to_phys` of an address in the kernel image, which
    // the kernel's own mapping covers from the start.
    let pa = unsafe { bindings::virt_to_phys(CONSOLE_PAGE.0.get().cast()) };
    let shared = logic::share(&mut Ecall, pa, covg::PAGE_SIZE).is_ok();
    if shared {
        CONSOLE_PA.store(pa, Ordering::Release);
    }
    pr_info!(
        "running in a CoVE TVM: shared memory through COVG, SBI console {}\n",
        if shared { "through a shared page" } else { "a byte per call" }
    );
}

/// Whether this kernel runs in a CoVE TVM.
#[no_mangle]
pub extern "C" fn cove_guest_active() -> bool {
    IN_TVM.load(Ordering::Acquire)
}

/// One COVG range request in a TVM, counted in `total` when it succeeds
/// and warned about (rate-limited) when it fails.
fn covg_request(
    what: &str,
    f: fn(&mut Ecall, u64, u64) -> Result<(), CovgError>,
    total: &AtomicU64,
    pa: u64,
    len: u64,
) -> c_int {
    if !cove_guest_active() {
        return errno_of(Err(CovgError::NotTvm));
    }
    let r = f(&mut Ecall, pa, len);
    match r {
        Ok(()) => {
            total.fetch_add(len, Ordering::Relaxed);
        }
        Err(e) => kernel::pr_warn_ratelimited!("{} {:#x}+{:#x} failed: {:?}\n", what, pa, len, e),
    }
    errno_of(r)
}

/// Shares `[pa, pa + len)` with the host: 0 or `-EINVAL` (bad range),
/// `-ENODEV` (no TVM), `-EFAULT`/`-EPERM`/`-EIO` (the TSM refused).
#[no_mangle]
pub extern "C" fn cove_guest_share(pa: u64, len: u64) -> c_int {
    covg_request("sharing", logic::share, &SHARED, pa, len)
}

/// Takes `[pa, pa + len)` back from the host; the errnos of
/// [`cove_guest_share`].
#[no_mangle]
pub extern "C" fn cove_guest_unshare(pa: u64, len: u64) -> c_int {
    covg_request("taking back", logic::unshare, &UNSHARED, pa, len)
}

/// Registers `[pa, pa + len)` as MMIO with the TSM; the errnos of
/// [`cove_guest_share`].
#[no_mangle]
pub extern "C" fn cove_guest_add_mmio_region(pa: u64, len: u64) -> c_int {
    if !cove_guest_active() {
        return errno_of(Err(CovgError::NotTvm));
    }
    errno_of(logic::add_mmio_region(&mut Ecall, pa, len))
}

/// `sbi_debug_console_write()` in a TVM: the bytes written, or `-EIO` if
/// the first one was refused.
///
/// # Safety
///
/// `bytes` points to `num_bytes` readable bytes (the caller's buffer).
#[no_mangle]
pub unsafe extern "C" fn cove_guest_console_write(bytes: *const c_char, num_bytes: c_uint) -> c_int {
    if bytes.is_null() {
        return -cvm_fw::errno::EINVAL;
    }
    // CAST: c_uint fits usize on 64-bit.
    // SAFETY: this function's contract.
    let b = unsafe { core::slice::from_raw_parts(bytes.cast::<u8>(), num_bytes as usize) };
    let pa = CONSOLE_PA.load(Ordering::Acquire);
    if pa != 0
        && !b.is_empty()
        && CONSOLE_BUSY
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        let n = b.len().min(4096);
        // SAFETY: `CONSOLE_BUSY` is ours, so nothing else touches the
        // page; `n` bytes fit it.
        unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), CONSOLE_PAGE.0.get().cast::<u8>(), n) };
        // CAST: n <= 4096.
        let r = logic::console_write_shared(&mut Ecall, pa, n as u64);
        CONSOLE_BUSY.store(false, Ordering::Release);
        if let Ok(w) = r {
            // CAST: w <= n <= 4096.
            return w as c_int;
        }
    }
    // The page is busy (a nested writer) or refused: a byte per call.
    match logic::console_write(&mut Ecall, b) {
        0 if !b.is_empty() => -cvm_fw::errno::EIO,
        // CAST: at most num_bytes, which fits c_int for a console write.
        n => n as c_int,
    }
}

#[cfg(CONFIG_RISCV_COVE_GUEST_KUNIT_TEST)]
#[kunit_tests(mem_encrypt_tvm)]
mod tests {
    use super::*;

    /// A page shared with the host and taken back: writes in between go
    /// to the host's page, and the page comes back confidential and
    /// zeroed (a fresh page from the host's pool).
    #[test]
    fn share_round_trip() -> kernel::error::Result {
        if !cove_guest_active() {
            kernel::kunit::mark_skipped(c"not in a CoVE TVM");
            return Ok(());
        }
        // SAFETY: plain page allocation; freed below.
        let va = unsafe { bindings::get_zeroed_page_noprof(bindings::GFP_KERNEL) };
        assert!(va != 0);
        // SAFETY: `va` is a linear-map address of our page.
        let pa = unsafe { bindings::virt_to_phys(va as *mut core::ffi::c_void) };
        let p = va as *mut u64;
        // SAFETY: `p` is our page, mapped and aligned.
        unsafe { p.write_volatile(0x1111) };
        let before = SHARED.load(Ordering::Relaxed);
        assert_eq!(cove_guest_share(pa, 4096), 0);
        assert_eq!(SHARED.load(Ordering::Relaxed) - before, 4096);
        // SAFETY: as above; the page is the host's now, still ours to use.
        unsafe { p.write_volatile(0x2222) };
        // SAFETY: as above.
        assert_eq!(unsafe { p.read_volatile() }, 0x2222);
        assert_eq!(cove_guest_unshare(pa, 4096), 0);
        // SAFETY: as above; confidential again.
        assert_eq!(unsafe { p.read_volatile() }, 0);
        // Bad ranges are refused before the TSM sees them.
        assert_eq!(cove_guest_share(pa + 8, 4096), -cvm_fw::errno::EINVAL);
        // SAFETY: allocated above, not used after.
        unsafe { bindings::free_pages(va, 0) };
        Ok(())
    }

    /// The console path writes every byte.
    #[test]
    fn console_bytes() {
        if !cove_guest_active() {
            kernel::kunit::mark_skipped(c"not in a CoVE TVM");
            return;
        }
        let msg = b"mem_encrypt: console check\n";
        // SAFETY: `msg` is readable for its length.
        let n = unsafe { cove_guest_console_write(msg.as_ptr().cast(), msg.len() as c_uint) };
        assert_eq!(n, msg.len() as c_int);
    }
}
