// SPDX-License-Identifier: GPL-2.0

//! Plain-KVM plumbing on rust-vmm's `kvm-ioctls` and `kvm-bindings`:
//! `/dev/kvm`, VMs and their memory (memslots, guest_memfd, memory
//! attributes), vCPUs and their `kvm_run`, ONE_REG, capabilities, the
//! in-kernel GICv3 and the arm64 SMCCC filter.
//!
//! Failures are reported as errno values (or messages carrying them), so
//! the tests can compare them with what the uAPI documents.
//!
//! Own ioctl wrappers remain only where those crates have nothing, or
//! nothing that sends the same bytes; each says why.  The realm and CoVE
//! ioctls, which no rust-vmm crate knows, are in [`crate::rme`] and
//! [`crate::cove`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use kvm_bindings::{
    kvm_create_guest_memfd, kvm_enable_cap, kvm_ioeventfd, kvm_run, kvm_stats_desc,
    kvm_stats_header, kvm_userspace_memory_region, kvm_userspace_memory_region2,
    KVM_MEM_GUEST_MEMFD,
};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};

pub use kvm_bindings::{
    KVM_CAP_ARM_VM_IPA_SIZE, KVM_EXIT_HYPERCALL, KVM_EXIT_INTR, KVM_EXIT_MEMORY_FAULT,
    KVM_EXIT_MMIO, KVM_EXIT_SYSTEM_EVENT, KVM_MEMORY_ATTRIBUTE_PRIVATE,
    KVM_MEMORY_EXIT_FLAG_PRIVATE, KVM_SYSTEM_EVENT_SHUTDOWN,
};

/// `KVM_API_VERSION`, as `KVM_GET_API_VERSION` returns it.
// CAST: 12 fits in i32.
pub const KVM_API_VERSION: i32 = kvm_bindings::KVM_API_VERSION as i32;

const KVMIO: u64 = 0xAE;
const IOC_NONE: u64 = 0;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

/// An ioctl request whose argument is a pointer to a `T`: the size in
/// the number is `size_of::<T>()`.  Made only by [`ior`] and [`iow`], so
/// a request and its argument type cannot disagree.
#[derive(Clone, Copy)]
pub struct Req<T> {
    nr: u64,
    _arg: PhantomData<fn(&mut T)>,
}

impl<T> Req<T> {
    /// The request number.
    pub const fn nr(&self) -> u64 {
        self.nr
    }
}

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    // CAST: ioctl argument sizes are far below 2^14.
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}

/// `_IOR(KVMIO, nr, T)`.
pub const fn ior<T>(nr: u64) -> Req<T> {
    Req {
        nr: ioc(IOC_READ, nr, core::mem::size_of::<T>()),
        _arg: PhantomData,
    }
}

/// `_IOW(KVMIO, nr, T)`.
pub const fn iow<T>(nr: u64) -> Req<T> {
    Req {
        nr: ioc(IOC_WRITE, nr, core::mem::size_of::<T>()),
        _arg: PhantomData,
    }
}

/// `KVM_GET_STATS_FD` (`_IO(KVMIO, 0xce)`).
const KVM_GET_STATS_FD: u64 = ioc(IOC_NONE, 0xce, 0);
/// `KVM_IOEVENTFD`.
const KVM_IOEVENTFD: Req<kvm_ioeventfd> = iow(0x79);

const _: () = {
    assert!(KVM_GET_STATS_FD == 0xaece);
    assert!(KVM_IOEVENTFD.nr() == 0x4040_ae79);
};

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ioctl(fd, req, arg)`; returns the result or the errno.
pub(crate) fn ioctl_with<T>(fd: &impl AsRawFd, req: Req<T>, arg: &mut T) -> Result<i32, i32> {
    // SAFETY: `arg` is a valid, exclusively borrowed `T`, and the size
    // encoded in `req` is `size_of::<T>()` (`Req` is only made by
    // `ior::<T>`/`iow::<T>`).  KVM matches the whole number, size
    // included, so it only acts on a request whose struct is that size:
    // it copies at most that many bytes from or to `arg`, during the
    // call, and keeps no pointer to it.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req.nr as _, core::ptr::from_mut(arg)) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

/// An ioctl without argument (`_IO`): returns the result or the errno.
fn ioctl_none(fd: &impl AsRawFd, req: u64) -> Result<i32, i32> {
    // SAFETY: the requests used with this helper take no argument, so the
    // kernel dereferences nothing.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, 0u64) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

/// `/dev/kvm`.
pub struct Kvm {
    kvm: kvm_ioctls::Kvm,
}

impl Kvm {
    /// Opens `/dev/kvm`; `Ok(None)` if the node does not exist.
    pub fn open() -> Result<Option<Kvm>, String> {
        match kvm_ioctls::Kvm::new_with_path(c"/dev/kvm") {
            Ok(kvm) => Ok(Some(Kvm { kvm })),
            Err(e) if e.errno() == libc::ENOENT => Ok(None),
            Err(e) => Err(format!("open /dev/kvm: {e}")),
        }
    }

    /// `KVM_GET_API_VERSION`; the error is the errno.
    pub fn api_version(&self) -> Result<i32, i32> {
        match self.kvm.get_api_version() {
            v if v < 0 => Err(last_errno()),
            v => Ok(v),
        }
    }

    /// `KVM_CHECK_EXTENSION` on the system fd, by number (the realm cap
    /// is not in `kvm_ioctls::Cap`); the error is the errno.
    pub fn check_extension(&self, cap: u32) -> Result<i32, i32> {
        match self.kvm.check_extension_raw(libc::c_ulong::from(cap)) {
            v if v < 0 => Err(last_errno()),
            v => Ok(v),
        }
    }

    /// `KVM_CREATE_VM` of type `vm_type` (passed as is); the error is the
    /// errno.
    pub fn create_vm(&self, vm_type: u64) -> Result<Vm, i32> {
        let fd = self
            .kvm
            .create_vm_with_type(vm_type)
            .map_err(|e| e.errno())?;
        Ok(Vm {
            fd,
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

// SAFETY: a `GuestMem` only owns the mapping: it never reads or writes
// through `ptr` (KVM and the tests do, through the pointers handed out),
// and unmapping it on drop is fine from any thread.
unsafe impl Send for GuestMem {}
// SAFETY: as above; `&GuestMem` gives no access to the memory.
unsafe impl Sync for GuestMem {}

impl Drop for GuestMem {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by `Vm::map_anon`
        // and not unmapped elsewhere.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A VM fd and the guest memory it owns.  The fields drop in order: the
/// VM fd, then the memory, then the guest_memfd files.
pub struct Vm {
    fd: VmFd,
    mem: Vec<GuestMem>,
    /// guest_memfd files of private memslots.
    gmem: Vec<OwnedFd>,
}

impl AsRawFd for Vm {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Vm {
    /// `KVM_ENABLE_CAP` on the VM with `args[0..2]`; the error is the
    /// errno.
    pub fn enable_cap(&self, cap: u32, arg0: u64, arg1: u64) -> Result<(), i32> {
        let c = kvm_enable_cap {
            cap,
            args: [arg0, arg1, 0, 0],
            ..Default::default()
        };
        self.fd.enable_cap(&c).map_err(|e| e.errno())
    }

    /// Reads the VM's binary stats (`KVM_GET_STATS_FD`): name -> first value.
    pub fn stats(&self) -> Result<HashMap<String, u64>, String> {
        stats_of(&self.fd)
    }

    /// `KVM_SIGNAL_MSI` of `data` to `addr`: the ioctl's return value, or
    /// its errno.
    pub fn signal_msi(&self, addr: u64, data: u32) -> Result<i32, i32> {
        let msi = kvm_bindings::kvm_msi {
            // CAST: the two halves of the address.
            address_lo: addr as u32,
            address_hi: (addr >> 32) as u32,
            data,
            ..Default::default()
        };
        self.fd.signal_msi(msi).map_err(|e| e.errno())
    }

    /// Maps `len` bytes of anonymous memory at `gpa` in memslot `slot`
    /// and copies `image` to its start.
    pub fn add_memory(
        &mut self,
        slot: u32,
        gpa: u64,
        len: usize,
        image: &[u8],
    ) -> Result<(), String> {
        self.add_memory_mapped(slot, gpa, len, image).map(drop)
    }

    /// [`Vm::add_memory`], returning the userspace mapping (the VM owns it
    /// until it is dropped).
    pub fn add_memory_mapped(
        &mut self,
        slot: u32,
        gpa: u64,
        len: usize,
        image: &[u8],
    ) -> Result<*mut u8, String> {
        let ptr = self.map_anon(len, image)?;
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: len as u64,
            userspace_addr: ptr as u64,
        };
        // SAFETY: the region is `len` bytes of our anonymous mapping, which
        // lives in `self.mem` until the VM fd is closed (`fd` drops first;
        // the tests drop a VM's vCPUs, which also hold the VM, before it).
        unsafe { self.fd.set_user_memory_region(region) }
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: errno {}", e.errno()))?;
        Ok(ptr)
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
        let g = kvm_create_guest_memfd {
            size: len as u64,
            flags: 0,
            ..Default::default()
        };
        let gfd = self
            .fd
            .create_guest_memfd(g)
            .map_err(|e| format!("KVM_CREATE_GUEST_MEMFD: errno {}", e.errno()))?;
        // SAFETY: a successful KVM_CREATE_GUEST_MEMFD returns a new fd,
        // which nothing else owns.
        let gfd = unsafe { OwnedFd::from_raw_fd(gfd) };
        let region = kvm_userspace_memory_region2 {
            slot,
            flags: KVM_MEM_GUEST_MEMFD,
            guest_phys_addr: gpa,
            memory_size: len as u64,
            userspace_addr: ptr as u64,
            guest_memfd_offset: 0,
            // CAST: fds are non-negative.
            guest_memfd: gfd.as_raw_fd() as u32,
            ..Default::default()
        };
        self.gmem.push(gfd);
        // SAFETY: the userspace half is `len` bytes of our anonymous
        // mapping and the private half our guest_memfd; both live in
        // `self` until the VM fd is closed (as in `add_memory`).
        unsafe { self.fd.set_user_memory_region2(region) }
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION2: errno {}", e.errno()))?;
        Ok(ptr)
    }

    /// `KVM_SET_MEMORY_ATTRIBUTES` over `[gpa, gpa + size)`.
    #[cfg(target_arch = "aarch64")]
    pub fn set_memory_attributes(
        &self,
        gpa: u64,
        size: u64,
        attributes: u64,
    ) -> Result<(), String> {
        let a = kvm_bindings::kvm_memory_attributes {
            address: gpa,
            size,
            attributes,
            flags: 0,
        };
        self.fd.set_memory_attributes(a).map_err(|e| {
            format!(
                "KVM_SET_MEMORY_ATTRIBUTES({gpa:#x}+{size:#x}, {attributes:#x}): errno {}",
                e.errno()
            )
        })
    }

    /// A non-blocking eventfd signalled by `len`-byte MMIO writes of any
    /// value to `addr` (`KVM_IOEVENTFD`).
    ///
    /// Own wrapper: `VmFd::register_ioevent` derives the length from its
    /// datamatch type, so "8 bytes, no datamatch" cannot be said with it
    /// (`NoDatamatch` registers length 0, any access size).
    pub fn ioeventfd(&self, addr: u64, len: u32) -> Result<OwnedFd, String> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(format!("eventfd: {}", io::Error::last_os_error()));
        }
        // SAFETY: a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut e = kvm_ioeventfd {
            datamatch: 0,
            addr,
            len,
            fd: fd.as_raw_fd(),
            flags: 0,
            ..Default::default()
        };
        ioctl_with(&self.fd, KVM_IOEVENTFD, &mut e)
            .map_err(|e| format!("KVM_IOEVENTFD: errno {e}"))?;
        Ok(fd)
    }

    /// `KVM_CREATE_VCPU` (kvm-ioctls also maps its `kvm_run`).
    pub fn create_vcpu(&self, id: u64) -> Result<Vcpu, String> {
        self.create_vcpu_raw(id)
            .map_err(|e| format!("KVM_CREATE_VCPU: errno {e}"))
    }

    /// [`Vm::create_vcpu`], failing with the errno.
    pub fn create_vcpu_raw(&self, id: u64) -> Result<Vcpu, i32> {
        let fd = self.fd.create_vcpu(id).map_err(|e| e.errno())?;
        Ok(Vcpu {
            fd: RefCell::new(fd),
        })
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
            return Err(format!("mmap guest memory: {}", io::Error::last_os_error()));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or("mmap returned NULL")?;
        // SAFETY: the fresh mapping is `len >= image.len()` bytes long and
        // does not overlap `image`.
        unsafe { core::ptr::copy_nonoverlapping(image.as_ptr(), ptr.as_ptr(), image.len()) };
        self.mem.push(GuestMem { ptr, len });
        Ok(ptr.as_ptr())
    }
}

#[cfg(target_arch = "aarch64")]
impl Vm {
    /// `KVM_ARM_PREFERRED_TARGET`.
    pub fn preferred_target(&self) -> Result<kvm_bindings::kvm_vcpu_init, i32> {
        let mut init = kvm_bindings::kvm_vcpu_init::default();
        self.fd
            .get_preferred_target(&mut init)
            .map_err(|e| e.errno())?;
        Ok(init)
    }

    /// Forwards SMCCC functions `[base, base + nr)` to userspace
    /// (`KVM_ARM_VM_SMCCC_FILTER`).
    pub fn forward_smccc(&self, base: u32, nr: u32) -> Result<(), String> {
        use kvm_bindings::{
            kvm_smccc_filter, kvm_smccc_filter_action_KVM_SMCCC_FILTER_FWD_TO_USER as FWD_TO_USER,
        };
        let f = kvm_smccc_filter {
            base,
            nr_functions: nr,
            // CAST: the action enum's values fit the u8 field.
            action: FWD_TO_USER as u8,
            pad: [0; 15],
        };
        let a = kvm_bindings::kvm_device_attr {
            flags: 0,
            group: kvm_bindings::KVM_ARM_VM_SMCCC_CTRL,
            attr: u64::from(kvm_bindings::KVM_ARM_VM_SMCCC_FILTER),
            addr: core::ptr::from_ref(&f) as u64,
        };
        self.fd
            .set_device_attr(&a)
            .map_err(|e| format!("SMCCC filter {base:#x}+{nr}: errno {}", e.errno()))
    }

    /// An in-kernel GICv3 with its distributor at `dist` and the
    /// redistributors from `redist` (`KVM_CREATE_DEVICE`, addresses,
    /// `KVM_DEV_ARM_VGIC_CTRL_INIT`); the vCPUs must exist.
    pub fn add_gicv3(&self, dist: u64, redist: u64) -> Result<kvm_ioctls::DeviceFd, String> {
        use kvm_bindings as b;
        let mut d = b::kvm_create_device {
            type_: b::kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
            fd: 0,
            flags: 0,
        };
        let dev = self
            .fd
            .create_device(&mut d)
            .map_err(|e| format!("KVM_CREATE_DEVICE(VGIC_V3): errno {}", e.errno()))?;
        let (grp_addr, grp_ctrl) = (b::KVM_DEV_ARM_VGIC_GRP_ADDR, b::KVM_DEV_ARM_VGIC_GRP_CTRL);
        for (group, attr, value) in [
            (grp_addr, b::KVM_VGIC_V3_ADDR_TYPE_DIST, Some(dist)),
            (grp_addr, b::KVM_VGIC_V3_ADDR_TYPE_REDIST, Some(redist)),
            (grp_ctrl, b::KVM_DEV_ARM_VGIC_CTRL_INIT, None),
        ] {
            let a = b::kvm_device_attr {
                flags: 0,
                group,
                attr: u64::from(attr),
                addr: value.as_ref().map_or(0, |v| core::ptr::from_ref(v) as u64),
            };
            dev.set_device_attr(&a)
                .map_err(|e| format!("vgic attr {group}/{attr}: errno {}", e.errno()))?;
        }
        Ok(dev)
    }
}

impl Vm {
    /// `KVM_CREATE_GUEST_MEMFD` with any size and flags: the fd, or the
    /// errno.
    pub fn guest_memfd_raw(&self, size: u64, flags: u64) -> Result<OwnedFd, i32> {
        let g = kvm_create_guest_memfd {
            size,
            flags,
            ..Default::default()
        };
        let fd = self.fd.create_guest_memfd(g).map_err(|e| e.errno())?;
        // SAFETY: a successful KVM_CREATE_GUEST_MEMFD returns a new fd,
        // which nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `KVM_SET_USER_MEMORY_REGION2` with any values: 0 or the errno.
    ///
    /// # Safety
    ///
    /// `uaddr..uaddr + size`, if it is mapped at all, is memory the
    /// caller owns and never reads or writes as Rust objects while the VM
    /// lives (the guest may write it).
    pub unsafe fn memslot_raw(
        &self,
        slot: u32,
        flags: u32,
        gpa: u64,
        size: u64,
        uaddr: u64,
        gmem: Option<(&OwnedFd, u64)>,
    ) -> i32 {
        let region = kvm_userspace_memory_region2 {
            slot,
            flags,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: uaddr,
            guest_memfd_offset: gmem.map_or(0, |g| g.1),
            // CAST: fds are non-negative.
            guest_memfd: gmem.map_or(0, |g| g.0.as_raw_fd() as u32),
            ..Default::default()
        };
        // SAFETY: the caller vouches for the userspace range (this
        // function's contract); KVM checks the rest.
        unsafe { self.fd.set_user_memory_region2(region) }
            .err()
            .map_or(0, |e| e.errno())
    }

    /// `KVM_SET_MEMORY_ATTRIBUTES` with any values: 0 or the errno.
    #[cfg(target_arch = "aarch64")]
    pub fn memory_attributes_raw(&self, gpa: u64, size: u64, attributes: u64, flags: u64) -> i32 {
        let a = kvm_bindings::kvm_memory_attributes {
            address: gpa,
            size,
            attributes,
            flags,
        };
        self.fd.set_memory_attributes(a).err().map_or(0, |e| e.errno())
    }

    /// `KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_ITS)`, the in-kernel ITS:
    /// the device fd is closed again; the errno on failure.
    pub fn create_its(&self) -> Result<(), i32> {
        let mut d = kvm_bindings::kvm_create_device {
            type_: kvm_bindings::kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_ITS,
            fd: 0,
            flags: 0,
        };
        self.fd.create_device(&mut d).map(drop).map_err(|e| e.errno())
    }
}

/// Reads the binary stats of a VM or vCPU fd: name -> first value.
///
/// Own wrapper: kvm-ioctls has no `KVM_GET_STATS_FD`.
pub fn stats_of(fd: &impl AsRawFd) -> Result<HashMap<String, u64>, String> {
    use core::mem::{offset_of, size_of};
    use std::os::unix::fs::FileExt;
    let sfd =
        ioctl_none(fd, KVM_GET_STATS_FD).map_err(|e| format!("KVM_GET_STATS_FD: errno {e}"))?;
    // SAFETY: a successful KVM_GET_STATS_FD returns a new fd we now own.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(sfd) });
    let mut hdr = [0u8; size_of::<kvm_stats_header>()];
    f.read_exact_at(&mut hdr, 0)
        .map_err(|e| format!("stats header: {e}"))?;
    let w = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let name_size = w(&hdr, offset_of!(kvm_stats_header, name_size)) as usize;
    let num_desc = u64::from(w(&hdr, offset_of!(kvm_stats_header, num_desc)));
    let desc_off = u64::from(w(&hdr, offset_of!(kvm_stats_header, desc_offset)));
    let data_off = u64::from(w(&hdr, offset_of!(kvm_stats_header, data_offset)));
    let name_at = offset_of!(kvm_stats_desc, name);
    let desc_len = name_at + name_size;
    let mut out = HashMap::new();
    for i in 0..num_desc {
        let mut d = vec![0u8; desc_len];
        f.read_exact_at(&mut d, desc_off + i * desc_len as u64)
            .map_err(|e| format!("stats desc: {e}"))?;
        let offset = u64::from(w(&d, offset_of!(kvm_stats_desc, offset)));
        let name: String = d[name_at..]
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

/// A vCPU (kvm-ioctls' `VcpuFd`, which owns the fd and the `kvm_run`
/// mapping).
///
/// `VcpuFd::run` and `get_kvm_run` take `&mut self`; the tests share
/// vCPUs by reference, so the `VcpuFd` is in a `RefCell`.  Every method
/// here borrows it only for its own duration and never calls another
/// method meanwhile, so a borrow never meets another one.
pub struct Vcpu {
    fd: RefCell<VcpuFd>,
}

impl AsRawFd for Vcpu {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.borrow().as_raw_fd()
    }
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
    /// `KVM_SET_ONE_REG` with a 64-bit value.
    pub fn set_one_reg(&self, id: u64, value: u64) -> Result<(), String> {
        self.fd
            .borrow()
            .set_one_reg(id, &value.to_ne_bytes())
            .map(drop)
            .map_err(|e| format!("KVM_SET_ONE_REG {id:#x}: errno {}", e.errno()))
    }

    /// `KVM_RUN`; returns the exit reason.
    pub fn run(&self) -> Result<u32, String> {
        match self.run_raw() {
            (0, reason) => Ok(reason),
            (e, _) => Err(format!("KVM_RUN: errno {e}")),
        }
    }

    /// `KVM_RUN`, keeping the errno: `(errno or 0, exit reason)`.  The
    /// exit reason is read whatever KVM_RUN returned (EINTR comes with
    /// KVM_EXIT_INTR, EFAULT with KVM_EXIT_MEMORY_FAULT).
    pub fn run_raw(&self) -> (i32, u32) {
        let mut fd = self.fd.borrow_mut();
        let e = match fd.run() {
            // kvm-ioctls turns KVM_RUN's -1 with KVM_EXIT_MEMORY_FAULT
            // into Ok; errno still holds EFAULT or EHWPOISON, as nothing
            // between the ioctl and here makes a system call.
            Ok(VcpuExit::MemoryFault { .. }) => last_errno(),
            Ok(_) => 0,
            Err(e) => e.errno(),
        };
        (e, fd.get_kvm_run().exit_reason)
    }

    /// Runs `f` on this vCPU's `kvm_run`.
    fn with_run<R>(&self, f: impl FnOnce(&mut kvm_run) -> R) -> R {
        f(self.fd.borrow_mut().get_kvm_run())
    }

    /// The vCPU's binary stats.
    pub fn stats(&self) -> Result<HashMap<String, u64>, String> {
        stats_of(self)
    }

    /// `memory_fault` of `kvm_run`: (flags, gpa, size).
    pub fn memory_fault(&self) -> (u64, u64, u64) {
        // SAFETY: the exit union holds integers and byte arrays only, so
        // any contents are a valid `memory_fault`; KVM writes it only
        // inside KVM_RUN, which cannot run during this borrow.
        let m = self.with_run(|r| unsafe { r.__bindgen_anon_1.memory_fault });
        (m.flags, m.gpa, m.size)
    }

    /// `hypercall` of `kvm_run`: (nr, args, flags).
    pub fn hypercall(&self) -> (u64, [u64; 6], u64) {
        // SAFETY: as in `memory_fault`: a union of plain integers, not
        // written while borrowed.
        let h = self.with_run(|r| unsafe { r.__bindgen_anon_1.hypercall });
        // SAFETY: `flags` and `longmode` are plain integers sharing the
        // same bytes; any contents are a valid `u64`.
        let flags = unsafe { h.__bindgen_anon_1.flags };
        (h.nr, h.args, flags)
    }

    /// Sets `hypercall.ret` before the next `KVM_RUN`.
    pub fn set_hypercall_ret(&self, ret: u64) {
        // KVM reads it on the next KVM_RUN only.
        self.with_run(|r| r.__bindgen_anon_1.hypercall.ret = ret);
    }

    /// `fail_entry` of `kvm_run`: (hardware_entry_failure_reason, cpu).
    pub fn fail_entry(&self) -> (u64, u32) {
        // SAFETY: as in `memory_fault`.
        let f = self.with_run(|r| unsafe { r.__bindgen_anon_1.fail_entry });
        (f.hardware_entry_failure_reason, f.cpu)
    }

    /// `system_event.type` of `kvm_run`.
    pub fn system_event(&self) -> u32 {
        // SAFETY: as in `memory_fault`.
        self.with_run(|r| unsafe { r.__bindgen_anon_1.system_event.type_ })
    }

    /// Sets the data of an MMIO read before the next `KVM_RUN`.
    pub fn set_mmio_data(&self, data: [u8; 8]) {
        // KVM reads it on the next KVM_RUN only.
        self.with_run(|r| r.__bindgen_anon_1.mmio.data = data);
    }

    /// Decodes the MMIO exit fields of `kvm_run`.
    pub fn mmio(&self) -> MmioExit {
        // SAFETY: as in `memory_fault`.
        let m = self.with_run(|r| unsafe { r.__bindgen_anon_1.mmio });
        MmioExit {
            phys_addr: m.phys_addr,
            data: m.data,
            len: m.len,
            is_write: m.is_write != 0,
        }
    }
}

#[cfg(target_arch = "riscv64")]
impl Vcpu {
    /// `riscv_sbi` of `kvm_run`: (extension, function, a0..a5).
    pub fn riscv_sbi(&self) -> (u64, u64, [u64; 6]) {
        // SAFETY: as in `memory_fault`: a union of plain integers, not
        // written while borrowed.
        let s = self.with_run(|r| unsafe { r.__bindgen_anon_1.riscv_sbi });
        (s.extension_id, s.function_id, s.args)
    }

    /// Sets `riscv_sbi.ret` (a0, a1 for the guest) before the next
    /// `KVM_RUN`.
    pub fn set_riscv_sbi_ret(&self, ret: [u64; 2]) {
        // KVM reads it on the next KVM_RUN only.
        self.with_run(|r| r.__bindgen_anon_1.riscv_sbi.ret = ret);
    }
}

#[cfg(target_arch = "aarch64")]
impl Vcpu {
    /// `KVM_ARM_VCPU_INIT` with `init`; the error is the errno.
    pub fn init(&self, init: &kvm_bindings::kvm_vcpu_init) -> Result<(), i32> {
        self.fd.borrow().vcpu_init(init).map_err(|e| e.errno())
    }

    /// `KVM_ARM_VCPU_FINALIZE(feature)`; the error is the errno.
    pub fn finalize(&self, feature: i32) -> Result<(), i32> {
        self.fd
            .borrow()
            .vcpu_finalize(&feature)
            .map_err(|e| e.errno())
    }

    /// `KVM_GET_ONE_REG` of a 64-bit register; the error is the errno.
    pub fn get_one_reg(&self, id: u64) -> Result<u64, i32> {
        let mut b = [0u8; 8];
        self.fd
            .borrow()
            .get_one_reg(id, &mut b)
            .map(|_| u64::from_ne_bytes(b))
            .map_err(|e| e.errno())
    }

    /// `KVM_SET_VCPU_EVENTS` with no event pending (what QEMU writes at
    /// start-up); the error is the errno.
    pub fn clear_vcpu_events(&self) -> Result<(), i32> {
        let ev = kvm_bindings::kvm_vcpu_events::default();
        self.fd.borrow().set_vcpu_events(&ev).map_err(|e| e.errno())
    }

    /// `KVM_SET_MP_STATE`; the error is the errno.
    pub fn set_mp_state(&self, state: u32) -> Result<(), i32> {
        let mp = kvm_bindings::kvm_mp_state { mp_state: state };
        self.fd.borrow().set_mp_state(mp).map_err(|e| e.errno())
    }
}
