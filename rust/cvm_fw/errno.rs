// SPDX-License-Identifier: GPL-2.0

//! The errno values the backends' logic reports: positive, as in
//! `include/uapi/asm-generic/errno-base.h` and `errno.h`.  Each backend's
//! error type picks one of them in one place (its `errno()` method); the
//! kernel shims negate it for C.

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// Interrupted system call.
pub const EINTR: i32 = 4;
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
/// No such device.
pub const ENODEV: i32 = 19;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Out of range.
pub const ERANGE: i32 = 34;
/// Operation not supported.
pub const EOPNOTSUPP: i32 = 95;
/// Operation already in progress, or already done.
pub const EALREADY: i32 = 114;
