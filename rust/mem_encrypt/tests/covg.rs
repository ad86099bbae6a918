// SPDX-License-Identifier: GPL-2.0
//! The CoVE guest logic against a COVG model that checks what Salus
//! checks: shares and unshares within RAM, whole ranges, MMIO regions
//! outside RAM.

use mem_encrypt::covg::{Covg, SbiError, DBCN_WRITE, DBCN_WRITE_BYTE, EXT_COVG, EXT_DBCN};
use mem_encrypt::cvm_fw::errno;
use mem_encrypt::logic::{self, CovgError, Sbi};

const RAM: u64 = 0x8000_0000;
const RAM_END: u64 = RAM + (256 << 20);

#[derive(Default)]
struct Tsm {
    /// Whether COVG is offered (a TVM vCPU) or not (the host).
    tvm: bool,
    shared: Vec<(u64, u64)>,
    mmio: Vec<(u64, u64)>,
    console: Vec<u8>,
    calls: u64,
    /// Refuse console writes after this many bytes.
    console_limit: Option<usize>,
}

impl Sbi for Tsm {
    fn call(&mut self, ext: u64, fid: u64, a0: u64, a1: u64) -> (i64, u64) {
        self.calls += 1;
        match (ext, fid) {
            (0x10, 3) => (0, u64::from(self.tvm && a0 == EXT_COVG)),
            (EXT_COVG, _) if !self.tvm => (-2, 0),
            (EXT_COVG, f) if f == Covg::ShareMemory as u64 || f == Covg::UnshareMemory as u64 => {
                if a0 < RAM || a0 + a1 > RAM_END {
                    return (-3, 0);
                }
                let overlaps = self.shared.iter().any(|&(b, l)| a0 < b + l && b < a0 + a1);
                if f == Covg::ShareMemory as u64 {
                    if overlaps {
                        return (-5, 0);
                    }
                    self.shared.push((a0, a1));
                } else {
                    let Some(i) = self.shared.iter().position(|&s| s == (a0, a1)) else {
                        return (-5, 0);
                    };
                    self.shared.remove(i);
                }
                (0, 0)
            }
            (EXT_COVG, f) if f == Covg::AddMmioRegion as u64 => {
                if a0 + a1 > RAM && a0 < RAM_END {
                    return (-5, 0);
                }
                self.mmio.push((a0, a1));
                (0, 0)
            }
            (EXT_DBCN, DBCN_WRITE) => {
                // Only a shared page can be read by the host.
                if !self.shared.iter().any(|&(b, l)| a1 >= b && a1 + a0 <= b + l) {
                    return (-3, 0);
                }
                (0, a0)
            }
            (EXT_DBCN, DBCN_WRITE_BYTE) => {
                if self.console_limit.is_some_and(|n| self.console.len() >= n) {
                    return (-1, 0);
                }
                self.console.push(a0 as u8);
                (0, 0)
            }
            _ => (-2, 0),
        }
    }
}

#[test]
fn tvm_detection_is_the_covg_probe() {
    let mut host = Tsm::default();
    assert!(!logic::in_tvm(&mut host));
    let mut tvm = Tsm {
        tvm: true,
        ..Default::default()
    };
    assert!(logic::in_tvm(&mut tvm));
}

#[test]
fn share_and_unshare_whole_ranges() {
    let mut t = Tsm {
        tvm: true,
        ..Default::default()
    };
    logic::share(&mut t, RAM + 0x10_0000, 0x4000).unwrap();
    assert_eq!(t.shared, vec![(RAM + 0x10_0000, 0x4000)]);
    assert_eq!(
        logic::share(&mut t, RAM + 0x10_1000, 0x1000),
        Err(CovgError::Sbi(SbiError::InvalidAddress)),
        "already shared"
    );
    logic::unshare(&mut t, RAM + 0x10_0000, 0x4000).unwrap();
    assert!(t.shared.is_empty());
}

#[test]
fn bad_ranges_are_not_sent() {
    let mut t = Tsm {
        tvm: true,
        ..Default::default()
    };
    for (gpa, len) in [(RAM + 1, 0x1000), (RAM, 0), (RAM, 0x800), (u64::MAX & !0xfff, 0x2000)] {
        assert_eq!(logic::share(&mut t, gpa, len), Err(CovgError::Invalid), "{gpa:#x}+{len:#x}");
    }
    assert_eq!(t.calls, 0);
}

#[test]
fn errnos() {
    let mut host = Tsm::default();
    let e = logic::share(&mut host, RAM, 0x1000).unwrap_err();
    assert_eq!(e, CovgError::Sbi(SbiError::NotSupported));
    assert_eq!(e.errno(), errno::ENODEV);
    let mut t = Tsm {
        tvm: true,
        ..Default::default()
    };
    assert_eq!(logic::share(&mut t, 0x1000, 0x1000).unwrap_err().errno(), errno::EINVAL);
    assert_eq!(
        logic::unshare(&mut t, RAM, 0x1000).unwrap_err().errno(),
        errno::EFAULT
    );
    assert_eq!(CovgError::Invalid.errno(), errno::EINVAL);
    assert_eq!(CovgError::Sbi(SbiError::Denied).errno(), errno::EPERM);
    assert_eq!(CovgError::Sbi(SbiError::Unknown(-19)).errno(), errno::EIO);
}

#[test]
fn mmio_regions_lie_outside_ram() {
    let mut t = Tsm {
        tvm: true,
        ..Default::default()
    };
    logic::add_mmio_region(&mut t, 0x1000_0000, 0x1000).unwrap();
    assert_eq!(
        logic::add_mmio_region(&mut t, RAM, 0x1000),
        Err(CovgError::Sbi(SbiError::InvalidAddress))
    );
    assert_eq!(t.mmio, vec![(0x1000_0000, 0x1000)]);
}

#[test]
fn console_writes_byte_by_byte_and_stops_at_a_refusal() {
    let mut t = Tsm {
        tvm: true,
        ..Default::default()
    };
    assert_eq!(logic::console_write(&mut t, b"hello\n"), 6);
    assert_eq!(t.console, b"hello\n");
    assert_eq!(t.calls, 6);
    t.console_limit = Some(8);
    assert_eq!(logic::console_write(&mut t, b"world"), 2);
    assert_eq!(t.console, b"hello\nwo");
}

#[test]
fn console_writes_whole_shared_pages() {
    let mut t = Tsm {
        tvm: true,
        ..Default::default()
    };
    let page = RAM + 0x20_0000;
    assert_eq!(
        logic::console_write_shared(&mut t, page, 100),
        Err(CovgError::Sbi(SbiError::InvalidParam)),
        "not shared: the host cannot read it"
    );
    logic::share(&mut t, page, 0x1000).unwrap();
    assert_eq!(logic::console_write_shared(&mut t, page, 100), Ok(100));
    assert_eq!(logic::console_write_shared(&mut t, page, 0x1001), Err(CovgError::Invalid));
    assert_eq!(logic::console_write_shared(&mut t, page + 8, 10), Err(CovgError::Invalid));
}
