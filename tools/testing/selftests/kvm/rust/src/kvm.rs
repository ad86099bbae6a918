// SPDX-License-Identifier: GPL-2.0

//! The slice of the KVM uAPI (include/uapi/linux/kvm.h) the tests need.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

const KVMIO: u64 = 0xAE;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(0, nr, 0)
}
const fn iow<T>(nr: u64) -> u64 {
    ioc(IOC_WRITE, nr, core::mem::size_of::<T>())
}
const fn iowr<T>(nr: u64) -> u64 {
    ioc(3, nr, core::mem::size_of::<T>())
}
const fn ior<T>(nr: u64) -> u64 {
    ioc(IOC_READ, nr, core::mem::size_of::<T>())
}

pub const KVM_GET_API_VERSION: u64 = io(0x00);
pub const KVM_CREATE_VM: u64 = io(0x01);
pub const KVM_CHECK_EXTENSION: u64 = io(0x03);
pub const KVM_GET_VCPU_MMAP_SIZE: u64 = io(0x04);
pub const KVM_CREATE_VCPU: u64 = io(0x41);
pub const KVM_SET_USER_MEMORY_REGION: u64 = iow::<UserspaceMemoryRegion>(0x46);
pub const KVM_RUN: u64 = io(0x80);
pub const KVM_SET_ONE_REG: u64 = iow::<OneReg>(0xac);
pub const KVM_ARM_VCPU_INIT: u64 = iow::<VcpuInit>(0xae);
pub const KVM_ARM_PREFERRED_TARGET: u64 = ior::<VcpuInit>(0xaf);
pub const KVM_ENABLE_CAP: u64 = iow::<EnableCap>(0xa3);
/// The CoVE RFC's number, `_IOR` direction included (the kernel reads).
pub const KVM_RISCV_COVE_MEASURE_REGION: u64 = ior::<CoveMeasureRegion>(0xb5);

/// `struct kvm_riscv_cove_measure_region`.
#[repr(C)]
pub struct CoveMeasureRegion {
    pub userspace_addr: u64,
    pub gpa: u64,
    pub size: u64,
}

const _: () = assert!(KVM_RISCV_COVE_MEASURE_REGION == 0x8018_aeb5);
pub const KVM_ARM_VCPU_FINALIZE: u64 = iow::<i32>(0xc2);
pub const KVM_GET_STATS_FD: u64 = io(0xce);
pub const KVM_SET_USER_MEMORY_REGION2: u64 = iow::<UserspaceMemoryRegion2>(0x49);
pub const KVM_CREATE_GUEST_MEMFD: u64 = iowr::<CreateGuestMemfd>(0xd4);
pub const KVM_SET_MEMORY_ATTRIBUTES: u64 = iow::<MemoryAttributes>(0xd2);
pub const KVM_IOEVENTFD: u64 = iow::<IoEventFd>(0x79);
pub const KVM_CREATE_DEVICE: u64 = iowr::<CreateDevice>(0xe0);
pub const KVM_SET_DEVICE_ATTR: u64 = iow::<DeviceAttr>(0xe1);
/// `KVM_DEV_TYPE_ARM_VGIC_V3`.
pub const KVM_DEV_TYPE_ARM_VGIC_V3: u32 = 7;

/// `struct kvm_create_device`.
#[repr(C)]
pub struct CreateDevice {
    pub type_: u32,
    pub fd: u32,
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<CreateDevice>() == 12);

/// `struct kvm_device_attr`.
#[repr(C)]
pub struct DeviceAttr {
    pub flags: u32,
    pub group: u32,
    pub attr: u64,
    pub addr: u64,
}
const _: () = assert!(core::mem::size_of::<DeviceAttr>() == 24);

/// `struct kvm_ioeventfd`.
#[repr(C)]
pub struct IoEventFd {
    pub datamatch: u64,
    pub addr: u64,
    pub len: u32,
    pub fd: i32,
    pub flags: u32,
    pub pad: [u8; 36],
}
const _: () = assert!(core::mem::size_of::<IoEventFd>() == 64);
/// `KVM_MEMORY_ATTRIBUTE_PRIVATE`.
pub const KVM_MEMORY_ATTRIBUTE_PRIVATE: u64 = 1 << 3;

/// `struct kvm_memory_attributes`.
#[repr(C)]
pub struct MemoryAttributes {
    pub address: u64,
    pub size: u64,
    pub attributes: u64,
    pub flags: u64,
}
const _: () = assert!(core::mem::size_of::<MemoryAttributes>() == 32);
/// `KVM_MEM_GUEST_MEMFD`.
pub const KVM_MEM_GUEST_MEMFD: u32 = 1 << 2;
/// vCPU feature of a realm VM (same bit as `KVM_ARM_VCPU_HAS_EL2_E2H0`).
pub const KVM_ARM_VCPU_REC: u32 = 8;

/// `struct kvm_enable_cap`.
#[repr(C)]
pub struct EnableCap {
    pub cap: u32,
    pub flags: u32,
    pub args: [u64; 4],
    pub pad: [u8; 64],
}
const _: () = assert!(core::mem::size_of::<EnableCap>() == 104);

pub const KVM_API_VERSION: i32 = 12;
pub const KVM_CAP_ARM_VM_IPA_SIZE: u64 = 165;
/// Realm support (rme-uapi-v7.md).
pub const KVM_CAP_ARM_RME: u64 = 300;
/// `KVM_VM_TYPE_ARM(1)`: a realm VM (rme-uapi-v7.md).
pub const KVM_VM_TYPE_ARM_REALM: u64 = 1 << 8;

pub const KVM_EXIT_HYPERCALL: u32 = 3;
pub const KVM_EXIT_MMIO: u32 = 6;
pub const KVM_EXIT_INTR: u32 = 10;
pub const KVM_EXIT_INTERNAL_ERROR: u32 = 17;
pub const KVM_EXIT_SYSTEM_EVENT: u32 = 24;
pub const KVM_EXIT_MEMORY_FAULT: u32 = 39;
pub const KVM_SYSTEM_EVENT_SHUTDOWN: u32 = 1;
/// `KVM_MEMORY_EXIT_FLAG_PRIVATE`.
pub const KVM_MEMORY_EXIT_FLAG_PRIVATE: u64 = 1 << 3;

/// `struct kvm_userspace_memory_region2`.
#[repr(C)]
pub struct UserspaceMemoryRegion2 {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
    pub guest_memfd_offset: u64,
    pub guest_memfd: u32,
    pub pad1: u32,
    pub pad2: [u64; 14],
}
const _: () = assert!(core::mem::size_of::<UserspaceMemoryRegion2>() == 160);

/// `struct kvm_create_guest_memfd`.
#[repr(C)]
pub struct CreateGuestMemfd {
    pub size: u64,
    pub flags: u64,
    pub reserved: [u64; 6],
}
const _: () = assert!(core::mem::size_of::<CreateGuestMemfd>() == 64);

/// `struct kvm_userspace_memory_region`.
#[repr(C)]
pub struct UserspaceMemoryRegion {
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
}
const _: () = assert!(core::mem::size_of::<UserspaceMemoryRegion>() == 32);

/// `struct kvm_one_reg`.
#[repr(C)]
pub struct OneReg {
    pub id: u64,
    pub addr: u64,
}
const _: () = assert!(core::mem::size_of::<OneReg>() == 16);

/// `struct kvm_vcpu_init` (arm64).
#[repr(C)]
#[derive(Default)]
pub struct VcpuInit {
    pub target: u32,
    pub features: [u32; 7],
}
const _: () = assert!(core::mem::size_of::<VcpuInit>() == 32);

/// Offsets into `struct kvm_run` (the mmap'ed vCPU page).
mod run_off {
    pub const EXIT_REASON: usize = 8;
    pub const MMIO_PHYS_ADDR: usize = 32;
    pub const MMIO_DATA: usize = 40;
    pub const MMIO_LEN: usize = 48;
    pub const MMIO_IS_WRITE: usize = 52;
    /// `memory_fault`: flags, gpa, size.
    pub const FAULT_FLAGS: usize = 32;
    pub const FAULT_GPA: usize = 40;
    pub const FAULT_SIZE: usize = 48;
    /// `system_event.type`.
    pub const EVENT_TYPE: usize = 32;
    /// `hypercall`: nr, args[6], ret, flags.
    pub const HC_NR: usize = 32;
    pub const HC_ARGS: usize = 40;
    pub const HC_RET: usize = 88;
    pub const HC_FLAGS: usize = 96;
}

/// `KVM_HYPERCALL_EXIT_SMC`.
pub const KVM_HYPERCALL_EXIT_SMC: u64 = 1 << 0;

/// `struct kvm_arm_rmm_psci_complete`.
#[repr(C)]
pub struct RmmPsciComplete {
    pub target_mpidr: u64,
    pub psci_status: u32,
    pub padding: [u32; 3],
}
const _: () = assert!(core::mem::size_of::<RmmPsciComplete>() == 24);
pub const KVM_ARM_VCPU_RMM_PSCI_COMPLETE: u64 = iow::<RmmPsciComplete>(0xd2);
const _: () = assert!(KVM_ARM_VCPU_RMM_PSCI_COMPLETE == 0x4018_aed2);

/// `struct kvm_smccc_filter`.
#[repr(C)]
pub struct SmcccFilter {
    pub base: u32,
    pub nr_functions: u32,
    pub action: u8,
    pub pad: [u8; 15],
}
const _: () = assert!(core::mem::size_of::<SmcccFilter>() == 24);
/// `KVM_SMCCC_FILTER_FWD_TO_USER`.
pub const KVM_SMCCC_FILTER_FWD_TO_USER: u8 = 2;

fn last_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// Raw ioctl with an integer argument; returns the result or errno.
pub fn ioctl_val(fd: RawFd, req: u64, arg: u64) -> Result<i32, i32> {
    // SAFETY: the requests used with this helper take an integer argument,
    // which the kernel does not dereference.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// Raw ioctl with a pointer to `T`; returns the result or errno.
pub fn ioctl_ptr<T>(fd: RawFd, req: u64, arg: &mut T) -> Result<i32, i32> {
    // SAFETY: `arg` is a valid, exclusively borrowed `T` whose size is the
    // one encoded in `req`.
    let r = unsafe { libc::ioctl(fd, req as _, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// `/dev/kvm`.
pub struct Kvm {
    file: File,
}

impl Kvm {
    /// Opens `/dev/kvm`; `Ok(None)` if the node does not exist.
    pub fn open() -> Result<Option<Kvm>, String> {
        match OpenOptions::new().read(true).write(true).open("/dev/kvm") {
            Ok(file) => Ok(Some(Kvm { file })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("open /dev/kvm: {e}")),
        }
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub fn api_version(&self) -> Result<i32, i32> {
        ioctl_val(self.fd(), KVM_GET_API_VERSION, 0)
    }

    /// `KVM_CHECK_EXTENSION` on the system fd.
    pub fn check_extension(&self, cap: u64) -> Result<i32, i32> {
        ioctl_val(self.fd(), KVM_CHECK_EXTENSION, cap)
    }

    /// `KVM_CREATE_VM`; the error is the errno.
    pub fn create_vm(&self, vm_type: u64) -> Result<Vm, i32> {
        let fd = ioctl_val(self.fd(), KVM_CREATE_VM, vm_type)?;
        // SAFETY: a successful KVM_CREATE_VM returns a new fd we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let run_size = ioctl_val(self.fd(), KVM_GET_VCPU_MMAP_SIZE, 0)?;
        Ok(Vm {
            fd,
            run_size: run_size as usize,
            mem: Vec::new(),
            gmem: Vec::new(),
        })
    }
}

/// Anonymous guest memory, unmapped on drop.
struct GuestMem {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for GuestMem {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by `Vm::add_memory`
        // and not unmapped elsewhere.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A VM fd and the guest memory it owns.
pub struct Vm {
    fd: OwnedFd,
    run_size: usize,
    mem: Vec<GuestMem>,
    /// guest_memfd files of private memslots.
    gmem: Vec<OwnedFd>,
}

impl Vm {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `KVM_ENABLE_CAP` on the VM with `args[0..2]`; the error is the errno.
    pub fn enable_cap(&self, cap: u32, arg0: u64, arg1: u64) -> Result<i32, i32> {
        let mut c = EnableCap {
            cap,
            flags: 0,
            args: [arg0, arg1, 0, 0],
            pad: [0; 64],
        };
        ioctl_ptr(self.fd(), KVM_ENABLE_CAP, &mut c)
    }

    /// Reads the VM's binary stats (`KVM_GET_STATS_FD`): name -> first value.
    pub fn stats(&self) -> Result<std::collections::HashMap<String, u64>, String> {
        stats_of(self.fd())
    }

    /// Like [`Vm::add_memory`], but the memslot's private half is a new
    /// guest_memfd of `len` bytes: `image` is only in the userspace half
    /// (what `POPULATE_REALM` copies from, and what the shared alias
    /// maps).  Returns the userspace half.
    pub fn add_private_memory(
        &mut self,
        slot: u32,
        gpa: u64,
        len: usize,
        image: &[u8],
    ) -> Result<*mut u8, String> {
        let ptr = self.map_anon(len, image)?;
        let mut g = CreateGuestMemfd {
            size: len as u64,
            flags: 0,
            reserved: [0; 6],
        };
        let gfd = ioctl_ptr(self.fd(), KVM_CREATE_GUEST_MEMFD, &mut g)
            .map_err(|e| format!("KVM_CREATE_GUEST_MEMFD: errno {e}"))?;
        // SAFETY: a successful KVM_CREATE_GUEST_MEMFD returns a new fd.
        self.gmem.push(unsafe { OwnedFd::from_raw_fd(gfd) });
        let mut region = UserspaceMemoryRegion2 {
            slot,
            flags: KVM_MEM_GUEST_MEMFD,
            guest_phys_addr: gpa,
            memory_size: len as u64,
            userspace_addr: ptr as u64,
            guest_memfd_offset: 0,
            guest_memfd: gfd as u32,
            pad1: 0,
            pad2: [0; 14],
        };
        ioctl_ptr(self.fd(), KVM_SET_USER_MEMORY_REGION2, &mut region)
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION2: errno {e}"))?;
        Ok(ptr)
    }

    /// `KVM_SET_MEMORY_ATTRIBUTES` over `[gpa, gpa + size)`.
    pub fn set_memory_attributes(
        &self,
        gpa: u64,
        size: u64,
        attributes: u64,
    ) -> Result<(), String> {
        let mut a = MemoryAttributes {
            address: gpa,
            size,
            attributes,
            flags: 0,
        };
        ioctl_ptr(self.fd(), KVM_SET_MEMORY_ATTRIBUTES, &mut a)
            .map(|_| ())
            .map_err(|e| {
                format!("KVM_SET_MEMORY_ATTRIBUTES({gpa:#x}+{size:#x}, {attributes:#x}): errno {e}")
            })
    }

    /// A non-blocking eventfd signalled by `len`-byte MMIO writes to
    /// `addr` (`KVM_IOEVENTFD`, any value).
    pub fn ioeventfd(&self, addr: u64, len: u32) -> Result<OwnedFd, String> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(last_err("eventfd"));
        }
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut e = IoEventFd {
            datamatch: 0,
            addr,
            len,
            fd: fd.as_raw_fd(),
            flags: 0,
            pad: [0; 36],
        };
        ioctl_ptr(self.fd(), KVM_IOEVENTFD, &mut e)
            .map_err(|e| format!("KVM_IOEVENTFD: errno {e}"))?;
        Ok(fd)
    }

    /// An in-kernel GICv3 with its distributor at `dist` and the
    /// redistributors from `redist` (`KVM_CREATE_DEVICE`, addresses,
    /// `KVM_DEV_ARM_VGIC_CTRL_INIT`); the vCPUs must exist.
    /// Forwards SMCCC functions `[base, base + nr)` to userspace
    /// (`KVM_ARM_VM_SMCCC_FILTER`).
    pub fn forward_smccc(&self, base: u32, nr: u32) -> Result<(), String> {
        let mut f = SmcccFilter {
            base,
            nr_functions: nr,
            action: KVM_SMCCC_FILTER_FWD_TO_USER,
            pad: [0; 15],
        };
        let mut a = DeviceAttr {
            flags: 0,
            // KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER.
            group: 0,
            attr: 0,
            addr: &mut f as *mut SmcccFilter as u64,
        };
        ioctl_ptr(self.fd(), KVM_SET_DEVICE_ATTR, &mut a)
            .map(drop)
            .map_err(|e| format!("SMCCC filter {base:#x}+{nr}: errno {e}"))
    }

    pub fn add_gicv3(&self, dist: u64, redist: u64) -> Result<OwnedFd, String> {
        let mut d = CreateDevice {
            type_: KVM_DEV_TYPE_ARM_VGIC_V3,
            fd: 0,
            flags: 0,
        };
        ioctl_ptr(self.fd(), KVM_CREATE_DEVICE, &mut d)
            .map_err(|e| format!("KVM_CREATE_DEVICE(VGIC_V3): errno {e}"))?;
        // SAFETY: a successful KVM_CREATE_DEVICE returns a new fd.
        let dev = unsafe { OwnedFd::from_raw_fd(d.fd as RawFd) };
        // (group, attr, value): KVM_DEV_ARM_VGIC_GRP_ADDR DIST / REDIST,
        // then KVM_DEV_ARM_VGIC_GRP_CTRL INIT.
        for (group, attr, mut value) in [(0, 2, dist), (0, 3, redist), (4, 0, 0u64)] {
            let mut a = DeviceAttr {
                flags: 0,
                group,
                attr,
                addr: if group == 4 {
                    0
                } else {
                    &mut value as *mut u64 as u64
                },
            };
            ioctl_ptr(dev.as_raw_fd(), KVM_SET_DEVICE_ATTR, &mut a)
                .map_err(|e| format!("vgic attr {group}/{attr}: errno {e}"))?;
        }
        Ok(dev)
    }

    fn map_anon(&mut self, len: usize, image: &[u8]) -> Result<*mut u8, String> {
        if image.len() > len {
            return Err("image larger than the memslot".into());
        }
        // SAFETY: anonymous private mapping, no fixed address.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_err("mmap guest memory"));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or("mmap returned NULL")?;
        // SAFETY: the fresh mapping is `len >= image.len()` bytes long and
        // does not overlap `image`.
        unsafe { core::ptr::copy_nonoverlapping(image.as_ptr(), ptr.as_ptr(), image.len()) };
        self.mem.push(GuestMem { ptr, len });
        Ok(ptr.as_ptr())
    }
}

/// Reads the binary stats of a VM or vCPU fd: name -> first value.
pub fn stats_of(fd: RawFd) -> Result<std::collections::HashMap<String, u64>, String> {
    {
        use std::os::unix::fs::FileExt;
        let fd = ioctl_val(fd, KVM_GET_STATS_FD, 0)
            .map_err(|e| format!("KVM_GET_STATS_FD: errno {e}"))?;
        // SAFETY: a successful KVM_GET_STATS_FD returns a new fd we own.
        let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut hdr = [0u8; 24];
        f.read_exact_at(&mut hdr, 0)
            .map_err(|e| format!("stats header: {e}"))?;
        let w = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let (name_size, num_desc, desc_off, data_off) = (
            w(&hdr, 4) as usize,
            w(&hdr, 8),
            w(&hdr, 16) as u64,
            w(&hdr, 20) as u64,
        );
        let desc_len = 16 + name_size;
        let mut out = std::collections::HashMap::new();
        for i in 0..num_desc as u64 {
            let mut d = vec![0u8; desc_len];
            f.read_exact_at(&mut d, desc_off + i * desc_len as u64)
                .map_err(|e| format!("stats desc: {e}"))?;
            let offset = w(&d, 8) as u64;
            let name: String = d[16..]
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as char)
                .collect();
            let mut v = [0u8; 8];
            f.read_exact_at(&mut v, data_off + offset)
                .map_err(|e| format!("stats data: {e}"))?;
            out.insert(name, u64::from_ne_bytes(v));
        }
        Ok(out)
    }
}

impl Vm {
    /// Maps `len` bytes of anonymous memory at `gpa` in memslot `slot`
    /// and copies `image` to its start.
    pub fn add_memory(
        &mut self,
        slot: u32,
        gpa: u64,
        len: usize,
        image: &[u8],
    ) -> Result<(), String> {
        let ptr = self.map_anon(len, image)?;
        let mut region = UserspaceMemoryRegion {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: len as u64,
            userspace_addr: ptr as u64,
        };
        ioctl_ptr(self.fd(), KVM_SET_USER_MEMORY_REGION, &mut region)
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: errno {e}"))?;
        Ok(())
    }

    /// `KVM_CREATE_VCPU` and maps its `kvm_run`.
    pub fn create_vcpu(&self, id: u64) -> Result<Vcpu, String> {
        let fd = ioctl_val(self.fd(), KVM_CREATE_VCPU, id)
            .map_err(|e| format!("KVM_CREATE_VCPU: errno {e}"))?;
        // SAFETY: a successful KVM_CREATE_VCPU returns a new fd we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: shared mapping of the vCPU fd, the size KVM reported.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                self.run_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_err("mmap kvm_run"));
        }
        let run = NonNull::new(p.cast::<u8>()).ok_or("mmap returned NULL")?;
        Ok(Vcpu {
            fd,
            run,
            run_size: self.run_size,
        })
    }
}

/// A vCPU fd and its mapped `kvm_run`.
pub struct Vcpu {
    fd: OwnedFd,
    run: NonNull<u8>,
    run_size: usize,
}

/// An MMIO exit as userspace sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct MmioExit {
    pub phys_addr: u64,
    pub data: [u8; 8],
    pub len: u32,
    pub is_write: bool,
}

impl Vcpu {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `KVM_SET_ONE_REG` with a 64-bit value.
    pub fn set_one_reg(&self, id: u64, value: u64) -> Result<(), String> {
        let mut v = value;
        let mut reg = OneReg {
            id,
            addr: &mut v as *mut u64 as u64,
        };
        ioctl_ptr(self.fd(), KVM_SET_ONE_REG, &mut reg)
            .map(|_| ())
            .map_err(|e| format!("KVM_SET_ONE_REG {id:#x}: errno {e}"))
    }

    /// `KVM_RUN`; returns the exit reason.
    pub fn run(&self) -> Result<u32, String> {
        ioctl_val(self.fd(), KVM_RUN, 0).map_err(|e| format!("KVM_RUN: errno {e}"))?;
        Ok(self.read_u32(run_off::EXIT_REASON))
    }

    /// `KVM_RUN`, keeping the errno: `(errno or 0, exit reason)`.
    pub fn run_raw(&self) -> (i32, u32) {
        let e = ioctl_val(self.fd(), KVM_RUN, 0).err().unwrap_or(0);
        (e, self.read_u32(run_off::EXIT_REASON))
    }

    /// The vCPU's binary stats.
    pub fn stats(&self) -> Result<std::collections::HashMap<String, u64>, String> {
        stats_of(self.fd())
    }

    /// `memory_fault` of `kvm_run`: (flags, gpa, size).
    pub fn memory_fault(&self) -> (u64, u64, u64) {
        (
            self.read_u64(run_off::FAULT_FLAGS),
            self.read_u64(run_off::FAULT_GPA),
            self.read_u64(run_off::FAULT_SIZE),
        )
    }

    /// `hypercall` of `kvm_run`: (nr, args, flags).
    pub fn hypercall(&self) -> (u64, [u64; 6], u64) {
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = self.read_u64(run_off::HC_ARGS + 8 * i);
        }
        (
            self.read_u64(run_off::HC_NR),
            args,
            self.read_u64(run_off::HC_FLAGS),
        )
    }

    /// Sets `hypercall.ret` before the next `KVM_RUN`.
    pub fn set_hypercall_ret(&self, ret: u64) {
        assert!(run_off::HC_RET + 8 <= self.run_size);
        // SAFETY: in bounds of the kvm_run mapping; KVM reads it on the
        // next KVM_RUN only.
        unsafe {
            core::ptr::copy_nonoverlapping(
                ret.to_ne_bytes().as_ptr(),
                self.run.as_ptr().add(run_off::HC_RET),
                8,
            )
        };
    }

    /// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`; the error is the errno.
    pub fn psci_complete(&self, target_mpidr: u64, status: i32, pad: u32) -> Result<i32, i32> {
        let mut c = RmmPsciComplete {
            target_mpidr,
            // CAST: the uAPI carries the signed PSCI status as __u32.
            psci_status: status as u32,
            padding: [0, pad, 0],
        };
        ioctl_ptr(self.fd(), KVM_ARM_VCPU_RMM_PSCI_COMPLETE, &mut c)
    }

    /// `system_event.type` of `kvm_run`.
    pub fn system_event(&self) -> u32 {
        self.read_u32(run_off::EVENT_TYPE)
    }

    fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b);
        u64::from_ne_bytes(b)
    }

    /// Sets the data of an MMIO read before the next `KVM_RUN`.
    pub fn set_mmio_data(&self, data: [u8; 8]) {
        assert!(run_off::MMIO_DATA + 8 <= self.run_size);
        // SAFETY: in bounds of the kvm_run mapping; KVM reads it on the
        // next KVM_RUN only.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.run.as_ptr().add(run_off::MMIO_DATA),
                8,
            )
        };
    }

    fn read_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(off, &mut b);
        u32::from_ne_bytes(b)
    }

    fn read(&self, off: usize, out: &mut [u8]) {
        assert!(off + out.len() <= self.run_size);
        // SAFETY: in bounds of the kvm_run mapping (checked above); KVM
        // does not write it while KVM_RUN is not executing.
        unsafe {
            core::ptr::copy_nonoverlapping(self.run.as_ptr().add(off), out.as_mut_ptr(), out.len())
        };
    }

    /// Decodes the MMIO exit fields of `kvm_run`.
    pub fn mmio(&self) -> MmioExit {
        let mut addr = [0u8; 8];
        let mut data = [0u8; 8];
        let mut w = [0u8; 1];
        self.read(run_off::MMIO_PHYS_ADDR, &mut addr);
        self.read(run_off::MMIO_DATA, &mut data);
        self.read(run_off::MMIO_IS_WRITE, &mut w);
        MmioExit {
            phys_addr: u64::from_ne_bytes(addr),
            data,
            len: self.read_u32(run_off::MMIO_LEN),
            is_write: w[0] != 0,
        }
    }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        // SAFETY: `run`/`run_size` describe the mapping made in create_vcpu.
        unsafe { libc::munmap(self.run.as_ptr().cast(), self.run_size) };
    }
}
