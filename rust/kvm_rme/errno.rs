// SPDX-License-Identifier: GPL-2.0

//! The errno values the pure logic reports (positive, as in
//! `include/uapi/asm-generic/errno-base.h`); kernel glue turns them into
//! `kernel::error::Error`.

/// I/O error: the firmware answered something unexpected.
pub const EIO: i32 = 5;
/// No such device or address.
pub const ENXIO: i32 = 6;
/// Try again.
pub const EAGAIN: i32 = 11;
/// Out of memory.
pub const ENOMEM: i32 = 12;
/// Bad address.
pub const EFAULT: i32 = 14;
/// Device or resource busy.
pub const EBUSY: i32 = 16;
/// Already exists.
pub const EEXIST: i32 = 17;
/// Operation not permitted.
pub const EPERM: i32 = 1;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Out of range.
pub const ERANGE: i32 = 34;
/// Operation not supported.
pub const EOPNOTSUPP: i32 = 95;
