// SPDX-License-Identifier: GPL-2.0

//! The Arm CCA realm uAPI (series v7, as kvmtool and QEMU speak it for
//! RMM 1.0; Documentation/virt/kvm/arm/rme-rust.rst): the
//! `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` sub-commands with their typed
//! arguments, and `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`.
//!
//! Own definitions and ioctl wrappers: kvm-bindings is generated from
//! upstream headers, which have no realm uAPI (upstream even gives bit 8
//! of the vCPU features, `KVM_ARM_VCPU_REC` here, to
//! `KVM_ARM_VCPU_HAS_EL2_E2H0`), and kvm-ioctls has no
//! `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`.

use core::mem::{align_of, offset_of, size_of};

use crate::kvm::{ioctl_with, iow, Req, Vcpu, Vm};

/// `KVM_CAP_ARM_RME`: `KVM_CHECK_EXTENSION` says whether realms can be
/// created; `KVM_ENABLE_CAP` on a realm VM runs a sub-command.
pub const KVM_CAP_ARM_RME: u32 = 300;

/// `KVM_VM_TYPE_ARM_REALM`: `KVM_CREATE_VM` type bit of a realm VM.
pub const KVM_VM_TYPE_ARM_REALM: u64 = 1 << 8;
/// `KVM_VM_TYPE_ARM_IPA_SIZE_MASK`: the IPA size in bits (0: 40 bits).
pub const KVM_VM_TYPE_ARM_IPA_SIZE_MASK: u64 = 0xff;
/// `KVM_VM_TYPE_ARM_PROTECTED`: a protected (pKVM) VM, never a realm.
pub const KVM_VM_TYPE_ARM_PROTECTED: u64 = 1 << 31;

/// `KVM_ARM_VCPU_REC`: vCPU feature bit of a realm vCPU, for
/// `KVM_ARM_VCPU_INIT` and `KVM_ARM_VCPU_FINALIZE`.
pub const KVM_ARM_VCPU_REC: u32 = 8;

/// `KVM_CAP_ARM_RME_CONFIG_REALM`: set a realm parameter before
/// creation; argument [`ArmRmeConfig`].
pub const KVM_CAP_ARM_RME_CONFIG_REALM: u64 = 0;
/// `KVM_CAP_ARM_RME_CREATE_REALM`: create the realm; no argument.
pub const KVM_CAP_ARM_RME_CREATE_REALM: u64 = 1;
/// `KVM_CAP_ARM_RME_INIT_RIPAS_REALM`: RIPAS RAM over a range; argument
/// [`ArmRmeInitRipas`].
pub const KVM_CAP_ARM_RME_INIT_RIPAS_REALM: u64 = 2;
/// `KVM_CAP_ARM_RME_POPULATE_REALM`: copy initial contents in; argument
/// [`ArmRmePopulateRealm`].
pub const KVM_CAP_ARM_RME_POPULATE_REALM: u64 = 3;
/// `KVM_CAP_ARM_RME_ACTIVATE_REALM`: activate; no argument.
pub const KVM_CAP_ARM_RME_ACTIVATE_REALM: u64 = 4;

/// `arm_rme_config.cfg`: the realm personalization value.
pub const KVM_CAP_ARM_RME_CFG_RPV: u32 = 0;
/// `arm_rme_config.cfg`: the measurement algorithm.
pub const KVM_CAP_ARM_RME_CFG_HASH_ALGO: u32 = 1;
/// `arm_rme_config.hash_algo`: SHA-256.
pub const KVM_CAP_ARM_RME_MEASUREMENT_ALGO_SHA256: u32 = 0;
/// `arm_rme_config.hash_algo`: SHA-512.
pub const KVM_CAP_ARM_RME_MEASUREMENT_ALGO_SHA512: u32 = 1;

/// `arm_rme_populate_realm.flags`: extend the measurement.
pub const KVM_ARM_RME_POPULATE_FLAGS_MEASURE: u32 = 1 << 0;

/// The union of `struct arm_rme_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ArmRmeConfigData {
    /// `cfg` = [`KVM_CAP_ARM_RME_CFG_RPV`].
    pub rpv: [u8; 64],
    /// `cfg` = [`KVM_CAP_ARM_RME_CFG_HASH_ALGO`].
    pub hash_algo: u32,
    /// The union's size.
    pub reserved: [u8; 256],
}

/// `struct arm_rme_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArmRmeConfig {
    /// `KVM_CAP_ARM_RME_CFG_*`.
    pub cfg: u32,
    /// The item's value.
    pub data: ArmRmeConfigData,
}

const _: () = {
    assert!(size_of::<ArmRmeConfigData>() == 256);
    assert!(size_of::<ArmRmeConfig>() == 260);
    assert!(align_of::<ArmRmeConfig>() == 4);
    assert!(offset_of!(ArmRmeConfig, cfg) == 0);
    assert!(offset_of!(ArmRmeConfig, data) == 4);
};

impl ArmRmeConfig {
    /// Item `cfg` with an all-zero value (any `cfg`, also ones the uAPI
    /// does not know).
    pub const fn item(cfg: u32) -> Self {
        ArmRmeConfig {
            cfg,
            data: ArmRmeConfigData { reserved: [0; 256] },
        }
    }

    /// The realm personalization value.
    pub const fn rpv(rpv: [u8; 64]) -> Self {
        let mut c = Self::item(KVM_CAP_ARM_RME_CFG_RPV);
        c.data.rpv = rpv;
        c
    }

    /// The measurement algorithm (`KVM_CAP_ARM_RME_MEASUREMENT_ALGO_*`,
    /// or a value the uAPI must refuse).
    pub const fn hash_algo(algo: u32) -> Self {
        let mut c = Self::item(KVM_CAP_ARM_RME_CFG_HASH_ALGO);
        c.data.hash_algo = algo;
        c
    }
}

/// `struct arm_rme_init_ripas`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ArmRmeInitRipas {
    pub base: u64,
    pub size: u64,
    /// Must be 0.
    pub reserved: [u64; 2],
}

const _: () = {
    assert!(size_of::<ArmRmeInitRipas>() == 32);
    assert!(offset_of!(ArmRmeInitRipas, base) == 0);
    assert!(offset_of!(ArmRmeInitRipas, size) == 8);
    assert!(offset_of!(ArmRmeInitRipas, reserved) == 16);
};

impl ArmRmeInitRipas {
    /// `[base, base + size)`, reserved words 0.
    pub const fn new(base: u64, size: u64) -> Self {
        ArmRmeInitRipas {
            base,
            size,
            reserved: [0; 2],
        }
    }
}

/// `struct arm_rme_populate_realm`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ArmRmePopulateRealm {
    pub base: u64,
    pub size: u64,
    /// `KVM_ARM_RME_POPULATE_FLAGS_*`.
    pub flags: u32,
    /// Must be 0.
    pub reserved: [u32; 3],
}

const _: () = {
    assert!(size_of::<ArmRmePopulateRealm>() == 32);
    assert!(offset_of!(ArmRmePopulateRealm, base) == 0);
    assert!(offset_of!(ArmRmePopulateRealm, size) == 8);
    assert!(offset_of!(ArmRmePopulateRealm, flags) == 16);
    assert!(offset_of!(ArmRmePopulateRealm, reserved) == 20);
};

impl ArmRmePopulateRealm {
    /// `[base, base + size)` with `flags`, reserved words 0.
    pub const fn new(base: u64, size: u64, flags: u32) -> Self {
        ArmRmePopulateRealm {
            base,
            size,
            flags,
            reserved: [0; 3],
        }
    }
}

/// A `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` sub-command with its argument.
#[derive(Clone, Copy)]
pub enum RmeCmd<'a> {
    /// `KVM_CAP_ARM_RME_CONFIG_REALM`.
    ConfigRealm(&'a ArmRmeConfig),
    /// `KVM_CAP_ARM_RME_CREATE_REALM`.
    CreateRealm,
    /// `KVM_CAP_ARM_RME_INIT_RIPAS_REALM`.
    InitRipasRealm(&'a ArmRmeInitRipas),
    /// `KVM_CAP_ARM_RME_POPULATE_REALM`.
    PopulateRealm(&'a ArmRmePopulateRealm),
    /// `KVM_CAP_ARM_RME_ACTIVATE_REALM`.
    ActivateRealm,
}

impl RmeCmd<'_> {
    /// `args[0]`: the sub-command number.
    pub const fn sub(&self) -> u64 {
        match self {
            RmeCmd::ConfigRealm(_) => KVM_CAP_ARM_RME_CONFIG_REALM,
            RmeCmd::CreateRealm => KVM_CAP_ARM_RME_CREATE_REALM,
            RmeCmd::InitRipasRealm(_) => KVM_CAP_ARM_RME_INIT_RIPAS_REALM,
            RmeCmd::PopulateRealm(_) => KVM_CAP_ARM_RME_POPULATE_REALM,
            RmeCmd::ActivateRealm => KVM_CAP_ARM_RME_ACTIVATE_REALM,
        }
    }

    /// `args[1]`: the argument's address (0 for none).
    fn arg(&self) -> u64 {
        match self {
            RmeCmd::ConfigRealm(c) => core::ptr::from_ref(*c) as u64,
            RmeCmd::InitRipasRealm(r) => core::ptr::from_ref(*r) as u64,
            RmeCmd::PopulateRealm(p) => core::ptr::from_ref(*p) as u64,
            RmeCmd::CreateRealm | RmeCmd::ActivateRealm => 0,
        }
    }
}

impl Vm {
    /// `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` with `cmd`; returns the errno (0
    /// on success).  The argument, if any, is borrowed for the call:
    /// the kernel only reads it.
    pub fn rme(&self, cmd: RmeCmd<'_>) -> i32 {
        self.rme_raw(cmd.sub(), cmd.arg())
    }

    /// Like [`Vm::rme`] with any sub-command number and argument address:
    /// for what the uAPI must refuse (unknown sub-commands, bad pointers).
    pub fn rme_raw(&self, sub: u64, arg: u64) -> i32 {
        self.enable_cap(KVM_CAP_ARM_RME, sub, arg)
            .err()
            .unwrap_or(0)
    }
}

/// `struct kvm_arm_rmm_psci_complete`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KvmArmRmmPsciComplete {
    pub target_mpidr: u64,
    /// The PSCI status, signed, as `__u32`.
    pub psci_status: u32,
    /// Must be 0.
    pub padding: [u32; 3],
}

const _: () = {
    assert!(size_of::<KvmArmRmmPsciComplete>() == 24);
    assert!(offset_of!(KvmArmRmmPsciComplete, target_mpidr) == 0);
    assert!(offset_of!(KvmArmRmmPsciComplete, psci_status) == 8);
    assert!(offset_of!(KvmArmRmmPsciComplete, padding) == 12);
};

/// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE`: `_IOW(KVMIO, 0xd2, struct
/// kvm_arm_rmm_psci_complete)`.
pub const KVM_ARM_VCPU_RMM_PSCI_COMPLETE: Req<KvmArmRmmPsciComplete> = iow(0xd2);
const _: () = assert!(KVM_ARM_VCPU_RMM_PSCI_COMPLETE.nr() == 0x4018_aed2);

impl Vcpu {
    /// `KVM_ARM_VCPU_RMM_PSCI_COMPLETE` for the PSCI call this vCPU made
    /// about `target_mpidr`, with `padding[1]` = `pad` (to check that the
    /// kernel refuses non-zero padding); the error is the errno.
    pub fn psci_complete(&self, target_mpidr: u64, status: i32, pad: u32) -> Result<i32, i32> {
        let mut c = KvmArmRmmPsciComplete {
            target_mpidr,
            // CAST: the uAPI carries the signed PSCI status as __u32.
            psci_status: status as u32,
            padding: [0, pad, 0],
        };
        ioctl_with(self, KVM_ARM_VCPU_RMM_PSCI_COMPLETE, &mut c)
    }
}
