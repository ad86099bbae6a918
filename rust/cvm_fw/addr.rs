// SPDX-License-Identifier: GPL-2.0

//! Physical addresses of the pages a host hands to its firmware.

/// The page size both firmware interfaces track (an RMI granule, a TSM
/// page): 4 KiB.
pub const PAGE_SIZE: u64 = 4096;
/// `log2(PAGE_SIZE)`.
pub const PAGE_SHIFT: u32 = 12;

/// A host physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pa(pub u64);

impl Pa {
    /// Whether the address is 4 KiB aligned.
    pub const fn is_aligned(self) -> bool {
        self.0 & (PAGE_SIZE - 1) == 0
    }

    /// The address `n` pages further on, or `None` past the end of the
    /// address space.
    pub const fn checked_add_pages(self, n: u64) -> Option<Pa> {
        match n.checked_mul(PAGE_SIZE) {
            Some(off) => match self.0.checked_add(off) {
                Some(a) => Some(Pa(a)),
                None => None,
            },
            None => None,
        }
    }

    /// The address `n` pages further on.
    ///
    /// For addresses inside one allocation, whose end the allocator
    /// guarantees to be representable; it wraps instead of overflowing.
    pub const fn add_pages(self, n: u64) -> Pa {
        Pa(self.0.wrapping_add(n.wrapping_mul(PAGE_SIZE)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_and_offsets() {
        assert!(Pa(0x8000_0000).is_aligned());
        assert!(!Pa(0x8000_0800).is_aligned());
        assert_eq!(Pa(0x1000).add_pages(3), Pa(0x4000));
        assert_eq!(Pa(0x1000).checked_add_pages(3), Some(Pa(0x4000)));
        assert_eq!(Pa(u64::MAX - 0xfff).checked_add_pages(1), None);
        assert_eq!(Pa(0).checked_add_pages(u64::MAX), None);
    }
}
