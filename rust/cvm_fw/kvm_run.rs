// SPDX-License-Identifier: GPL-2.0

//! `struct kvm_run`, the page a vCPU's exits reach userspace through: what
//! both backends read from it at `KVM_RUN` and write into it on the way
//! out (kernel build only).

use kernel::bindings;

/// The value userspace answered an MMIO read with: `kvm_run.mmio.data`
/// after a `KVM_EXIT_MMIO` read, 0 otherwise.
pub(crate) fn mmio_read_value(run: &bindings::kvm_run) -> u64 {
    if run.exit_reason != bindings::KVM_EXIT_MMIO {
        return 0;
    }
    // SAFETY: `mmio` is the union member of this exit reason; all its bit
    // patterns are valid (integers and bytes).
    let m = unsafe { run.__bindgen_anon_1.mmio };
    if m.is_write != 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    // CAST: at most 8 bytes, as the array.
    let n = (m.len as usize).min(8);
    b[..n].copy_from_slice(&m.data[..n]);
    u64::from_le_bytes(b)
}

/// Starts an exit to userspace: `exit_reason` set, the exit union zeroed
/// for the caller to fill in.  Returns the union.
pub(crate) fn begin_exit(
    run: &mut bindings::kvm_run,
    reason: u32,
) -> &mut bindings::kvm_run__bindgen_ty_1 {
    run.exit_reason = reason;
    // SAFETY: the exit union holds integers and arrays of them only: all
    // zeroes is a valid value of it.
    run.__bindgen_anon_1 = unsafe { core::mem::zeroed() };
    &mut run.__bindgen_anon_1
}

/// `KVM_EXIT_MMIO` of `len` bytes at `addr`; `data` is the value of a
/// write.
pub(crate) fn mmio(run: &mut bindings::kvm_run, addr: u64, len: u8, write: bool, data: u64) {
    let x = begin_exit(run, bindings::KVM_EXIT_MMIO);
    x.mmio.phys_addr = addr;
    x.mmio.len = u32::from(len);
    x.mmio.is_write = u8::from(write);
    if write {
        x.mmio.data = data.to_le_bytes();
    }
}

/// `KVM_EXIT_SYSTEM_EVENT`: `RESET` or `SHUTDOWN`.
pub(crate) fn system_event(run: &mut bindings::kvm_run, reset: bool) {
    let x = begin_exit(run, bindings::KVM_EXIT_SYSTEM_EVENT);
    x.system_event.type_ = if reset {
        bindings::KVM_SYSTEM_EVENT_RESET
    } else {
        bindings::KVM_SYSTEM_EVENT_SHUTDOWN
    };
}

/// `KVM_EXIT_INTERNAL_ERROR` with `suberror` and up to 16 data words.
pub(crate) fn internal_error(run: &mut bindings::kvm_run, suberror: u32, data: &[u64]) {
    let x = begin_exit(run, bindings::KVM_EXIT_INTERNAL_ERROR);
    let mut d = [0u64; 16];
    let n = data.len().min(d.len());
    d[..n].copy_from_slice(&data[..n]);
    x.internal.suberror = suberror;
    // CAST: n <= 16.
    x.internal.ndata = n as u32;
    x.internal.data = d;
}
