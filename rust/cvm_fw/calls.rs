// SPDX-License-Identifier: GPL-2.0

//! One table per firmware interface: the function enum and its counters.
//!
//! [`call_table!`] declares a fieldless enum of a firmware's functions
//! (the discriminant is the function's number in that interface), the
//! list of all of them, and a counter type with one `u64` per function.
//! The RMI (`kvm_rme`) and COVH (`kvm_cove`) backends each declare theirs
//! with it, so the two share one implementation of the counters.

/// Declares a firmware function table.
///
/// ```
/// cvm_fw::call_table! {
///     /// The functions.
///     pub enum Fn: u32, counted by FnCounts {
///         /// `FOO(x)`.
///         Foo = 0x10,
///         /// `BAR(y)`.
///         Bar = 0x11,
///     }
/// }
///
/// let mut counts = FnCounts::default();
/// counts.record(Fn::Bar);
/// assert_eq!((Fn::from_number(0x11), counts.get(Fn::Bar)), (Some(Fn::Bar), 1));
/// ```
///
/// gives `Fn` with `Fn::ALL`, `number()`, `index()` (position in `ALL`)
/// and `from_number()`, and `FnCounts` with `record`, `get`, `total`,
/// `since` and `iter`.  Counters saturate instead of wrapping.
#[macro_export]
macro_rules! call_table {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $repr:ty, counted by $counts:ident {
            $( $(#[$vmeta:meta])* $var:ident = $val:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr($repr)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $var = $val, )+
        }

        impl $name {
            /// Every function of the table, in declaration order.
            $vis const ALL: [$name; [$(stringify!($var)),+].len()] = [$($name::$var),+];

            /// The function's number in its interface.
            $vis const fn number(self) -> $repr {
                // CAST: fieldless enum to its discriminant.
                self as $repr
            }

            /// Position in `ALL`, for per-function counters.
            $vis const fn index(self) -> usize {
                let mut i = 0;
                while i < Self::ALL.len() {
                    if Self::ALL[i].number() == self.number() {
                        return i;
                    }
                    i += 1;
                }
                // Unreachable: `ALL` lists every variant.
                0
            }

            /// The function numbered `n`, if the table has one.
            $vis fn from_number(n: $repr) -> Option<$name> {
                Self::ALL.iter().copied().find(|f| f.number() == n)
            }
        }

        #[doc = concat!("Calls per [`", stringify!($name), "`] function.")]
        #[derive(Clone, Debug, PartialEq, Eq)]
        $vis struct $counts([u64; [$(stringify!($var)),+].len()]);

        impl Default for $counts {
            fn default() -> Self {
                $counts([0; [$(stringify!($var)),+].len()])
            }
        }

        impl $counts {
            /// Counts one call of `f`.
            $vis fn record(&mut self, f: $name) {
                if let Some(c) = self.0.get_mut(f.index()) {
                    *c = c.saturating_add(1);
                }
            }

            /// Calls of `f` so far.
            $vis fn get(&self, f: $name) -> u64 {
                self.0.get(f.index()).copied().unwrap_or(0)
            }

            /// All calls so far.
            $vis fn total(&self) -> u64 {
                self.0.iter().fold(0u64, |a, c| a.saturating_add(*c))
            }

            /// Per-function difference `self - earlier` (saturating).
            $vis fn since(&self, earlier: &Self) -> Self {
                let mut d = Self::default();
                for (i, c) in d.0.iter_mut().enumerate() {
                    *c = self.0[i].saturating_sub(earlier.0[i]);
                }
                d
            }

            /// `(function, count)` of every function called at least once.
            $vis fn iter(&self) -> impl Iterator<Item = ($name, u64)> + '_ {
                $name::ALL
                    .iter()
                    .copied()
                    .zip(self.0.iter().copied())
                    .filter(|(_, n)| *n != 0)
            }
        }
    };
}

/// The macro, also reachable as `crate::cvm_fw::calls::call_table!` from
/// the backends (in the kernel, `#[macro_export]` puts it at the root of
/// the backend crate; on the host, at the root of this one).
pub use crate::call_table;

#[cfg(test)]
mod tests {
    call_table! {
        /// A test table.
        pub enum Fn: u32, counted by FnCounts {
            /// First.
            A = 0x10,
            /// Second.
            B = 0x12,
            /// Third.
            C = 0x11,
        }
    }

    #[test]
    fn table_and_counts() {
        assert_eq!(Fn::ALL, [Fn::A, Fn::B, Fn::C]);
        assert_eq!((Fn::A.index(), Fn::B.index(), Fn::C.index()), (0, 1, 2));
        assert_eq!(Fn::from_number(0x12), Some(Fn::B));
        assert_eq!(Fn::from_number(0x13), None);
        let mut c = FnCounts::default();
        c.record(Fn::A);
        c.record(Fn::C);
        c.record(Fn::C);
        assert_eq!((c.get(Fn::A), c.get(Fn::B), c.get(Fn::C)), (1, 0, 2));
        assert_eq!(c.total(), 3);
        let before = c.clone();
        c.record(Fn::B);
        let d = c.since(&before);
        assert_eq!(d.iter().collect::<std::vec::Vec<_>>(), [(Fn::B, 1)]);
    }
}
