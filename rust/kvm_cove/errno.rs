// SPDX-License-Identifier: GPL-2.0

//! Errno values the pure logic reports (positive); kernel glue converts.

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// Interrupted system call.
pub const EINTR: i32 = 4;
/// I/O error.
pub const EIO: i32 = 5;
/// Out of memory.
pub const ENOMEM: i32 = 12;
/// Bad address.
pub const EFAULT: i32 = 14;
/// Busy.
pub const EBUSY: i32 = 16;
/// No such device.
pub const ENODEV: i32 = 19;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Not supported.
pub const EOPNOTSUPP: i32 = 95;
/// Already in progress / done.
pub const EALREADY: i32 = 114;
