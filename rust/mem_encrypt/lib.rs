// SPDX-License-Identifier: GPL-2.0

//! Pieces shared by the confidential-VM host backends (`kvm_rme`,
//! `kvm_cove`).  The kernel cannot link a module-local library crate, so
//! each backend compiles these files as its own modules (`#[path]`); this
//! crate tests them on the host.

#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod counters;

#[cfg(test)]
mod tests {
    use crate::counters::Counters;

    #[test]
    fn counts_and_differences() {
        let mut c = Counters::<3>::default();
        c.record(0);
        c.record(2);
        c.record(2);
        c.record(7);
        assert_eq!((c.get(0), c.get(1), c.get(2), c.get(9)), (1, 0, 2, 0));
        assert_eq!(c.total(), 3);
        let before = c.clone();
        c.record(1);
        let d = c.since(&before);
        assert_eq!(d.nonzero().collect::<std::vec::Vec<_>>(), [(1, 1)]);
    }
}
