// SPDX-License-Identifier: GPL-2.0

//! This CPU's NACL shared memory with the TSM, where a TVM vCPU's
//! registers cross at `TVM_VCPU_RUN`.

use core::ptr::NonNull;

use kernel::bindings;

use crate::abi::nacl;
use crate::logic::exit::NaclShmem;

/// This CPU's NACL shared memory, with preemption disabled while it
/// lives.
pub(crate) struct CpuNacl(NonNull<u64>);

impl CpuNacl {
    pub(crate) fn get() -> Option<CpuNacl> {
        // SAFETY: returns this CPU's NACL area and disables preemption, or
        // NULL with preemption untouched.
        NonNull::new(unsafe { bindings::kvm_cove_nacl_get() }.cast::<u64>()).map(CpuNacl)
    }

    fn slot(&self, i: usize) -> *mut u64 {
        // The area is `nacl::SIZE` bytes; callers pass in-range slots.
        self.0.as_ptr().wrapping_add(i)
    }
}

impl Drop for CpuNacl {
    fn drop(&mut self) {
        // SAFETY: pairs with the `kvm_cove_nacl_get` that made `self`.
        unsafe { bindings::kvm_cove_nacl_put() }
    }
}

impl NaclShmem for CpuNacl {
    fn csr(&self, csr: u16) -> u64 {
        let i = nacl::CSR_OFFSET / 8 + nacl::csr_index(csr);
        if i >= nacl::SIZE / 8 {
            return 0;
        }
        // SAFETY: slot `i` lies in this CPU's NACL area, which stays
        // mapped and ours (preemption is off) while `self` lives; the TSM
        // writes it only during `TVM_VCPU_RUN`.
        u64::from_le(unsafe { self.slot(i).read_volatile() })
    }

    fn gpr(&self, i: usize) -> u64 {
        if i >= 32 {
            return 0;
        }
        // SAFETY: as in `csr`; scratch slot `i` < 32 is in the area.
        u64::from_le(unsafe { self.slot(nacl::gpr_offset(i) / 8).read_volatile() })
    }

    fn set_gpr(&mut self, i: usize, v: u64) {
        if i == 0 || i >= 32 {
            return;
        }
        // SAFETY: as in `gpr`.
        unsafe { self.slot(nacl::gpr_offset(i) / 8).write_volatile(v.to_le()) }
    }
}

