// SPDX-License-Identifier: GPL-2.0
//! REC exit decoding and the entry side.

use kvm_rme::abi::Ipa;
use kvm_rme::abi::{enter_flags, exit_reason, RecRun, Ripas};
use kvm_rme::logic::exit::{self, psci, Exit, Mmio, Timers};
use kvm_rme::logic::realm::Geometry;

fn geo() -> Geometry {
    Geometry::new(40).unwrap()
}

fn run() -> Box<RecRun> {
    Box::default()
}

/// ESR of a lower-EL data abort with a valid syndrome.
fn dabt(write: bool, sas: u64, srt: u64, sse: bool) -> u64 {
    (0x24 << 26)
        | (1 << 25)
        | (1 << 24)
        | (sas << 22)
        | (u64::from(sse) << 21)
        | (srt << 16)
        | (u64::from(write) << 6)
        | 0x07
}

#[test]
fn mmio_write_on_the_shared_alias() {
    let mut r = run();
    let ipa = (1u64 << 39) | 0x0900_0010;
    r.exit.exit_reason = exit_reason::SYNC;
    r.exit.esr = dabt(true, 2, 5, false);
    r.exit.hpfar = (ipa >> 12) << 4;
    r.exit.far = 0xffff_0000_0000_0010;
    r.exit.gprs[0] = 0x1122_3344_5566_7788;
    let e = exit::decode(&r.exit, &geo());
    assert_eq!(
        e,
        Exit::Mmio(Mmio {
            ipa: Ipa(ipa),
            write: true,
            size: 4,
            reg: 5,
            sign_extend: false,
            value: 0x5566_7788
        })
    );
}

#[test]
fn mmio_read_completion_truncates() {
    let mut r = run();
    let ipa = (1u64 << 39) | 0x0900_0000;
    r.exit.esr = dabt(false, 1, 3, true);
    r.exit.hpfar = (ipa >> 12) << 4;
    let Exit::Mmio(m) = exit::decode(&r.exit, &geo()) else {
        panic!("not MMIO")
    };
    assert_eq!((m.write, m.size, m.reg, m.sign_extend), (false, 2, 3, true));
    exit::begin_entry(&mut r.enter);
    exit::complete_mmio(&mut r.enter, &m, 0xdead_beef);
    assert_eq!(r.enter.gprs[0], 0xbeef);
    assert_eq!(
        r.enter.flags & enter_flags::EMULATED_MMIO,
        enter_flags::EMULATED_MMIO
    );
    // The next entry starts clean.
    exit::begin_entry(&mut r.enter);
    assert_eq!(r.enter.flags & enter_flags::EMULATED_MMIO, 0);
}

#[test]
fn private_fault_needs_a_mapping() {
    let mut r = run();
    r.exit.esr = (0x24 << 26) | (1 << 6) | 0x07; // no ISV
    r.exit.hpfar = (0x8000_3000u64 >> 12) << 4;
    r.exit.far = 0x123;
    assert_eq!(
        exit::decode(&r.exit, &geo()),
        Exit::Fault {
            ipa: Ipa(0x8000_3000),
            private: true,
            write: true,
            exec: false
        }
    );
    // Even with a valid syndrome, a protected IPA is never MMIO.
    r.exit.esr = dabt(false, 3, 0, false);
    assert!(matches!(
        exit::decode(&r.exit, &geo()),
        Exit::Fault { private: true, .. }
    ));
    // Instruction abort.
    r.exit.esr = 0x20 << 26;
    assert!(matches!(
        exit::decode(&r.exit, &geo()),
        Exit::Fault {
            exec: true,
            write: false,
            ..
        }
    ));
    // Outside the IPA space.
    r.exit.hpfar = ((1u64 << 41) >> 12) << 4;
    assert!(matches!(
        exit::decode(&r.exit, &geo()),
        Exit::Unhandled { .. }
    ));
}

#[test]
fn shared_fault_without_syndrome() {
    let mut r = run();
    let ipa = (1u64 << 39) | 0x4000_0000;
    r.exit.esr = (0x24 << 26) | 0x07;
    r.exit.hpfar = (ipa >> 12) << 4;
    assert_eq!(
        exit::decode(&r.exit, &geo()),
        Exit::Fault {
            ipa: Ipa(ipa),
            private: false,
            write: false,
            exec: false
        }
    );
}

#[test]
fn psci_with_and_without_target() {
    let mut r = run();
    r.exit.exit_reason = exit_reason::PSCI;
    r.exit.gprs[..4].copy_from_slice(&[u64::from(psci::CPU_ON), 0x101, 0x8000_0000, 7]);
    let e = exit::decode(&r.exit, &geo());
    assert_eq!(
        e,
        Exit::Psci {
            function: psci::CPU_ON,
            args: [0x101, 0x8000_0000, 7]
        }
    );
    assert_eq!(e.psci_target(), Some(0x101));
    r.exit.gprs[0] = u64::from(psci::AFFINITY_INFO);
    assert_eq!(exit::decode(&r.exit, &geo()).psci_target(), Some(0x101));
    r.exit.gprs[0] = u64::from(psci::SYSTEM_OFF);
    assert_eq!(exit::decode(&r.exit, &geo()).psci_target(), None);
}

#[test]
fn ripas_change_is_validated() {
    let mut r = run();
    r.exit.exit_reason = exit_reason::RIPAS_CHANGE;
    r.exit.ripas_base = 0x8000_0000;
    r.exit.ripas_top = 0x8020_0000;
    r.exit.ripas_value = Ripas::Empty as u8;
    assert_eq!(
        exit::decode(&r.exit, &geo()),
        Exit::RipasChange {
            base: Ipa(0x8000_0000),
            top: Ipa(0x8020_0000),
            ripas: Ripas::Empty
        }
    );
    for (base, top, v) in [
        (0x8020_0000, 0x8000_0000, 0),
        (0x8000_0800, 0x8020_0000, 0),
        (0, 1u64 << 40, 1),
        (0, 0x1000, 2),
        (0, 0x1000, 9),
    ] {
        r.exit.ripas_base = base;
        r.exit.ripas_top = top;
        r.exit.ripas_value = v;
        assert!(
            matches!(exit::decode(&r.exit, &geo()), Exit::Unhandled { .. }),
            "{base:#x}..{top:#x} {v}"
        );
    }
    exit::ripas_response(&mut r.enter, false);
    assert_ne!(r.enter.flags & enter_flags::RIPAS_RESPONSE_REJECT, 0);
    exit::ripas_response(&mut r.enter, true);
    assert_eq!(r.enter.flags & enter_flags::RIPAS_RESPONSE_REJECT, 0);
}

#[test]
fn async_and_misc_exits() {
    let mut r = run();
    for (reason, want) in [(exit_reason::IRQ, Exit::Irq), (exit_reason::FIQ, Exit::Fiq)] {
        r.exit.exit_reason = reason;
        assert_eq!(exit::decode(&r.exit, &geo()), want);
    }
    r.exit.exit_reason = exit_reason::SERROR;
    r.exit.esr = 0xbe00_0000;
    assert_eq!(
        exit::decode(&r.exit, &geo()),
        Exit::SError { esr: 0xbe00_0000 }
    );
    r.exit.exit_reason = exit_reason::HOST_CALL;
    r.exit.imm = 0x42;
    assert_eq!(exit::decode(&r.exit, &geo()), Exit::HostCall { imm: 0x42 });
    r.exit.exit_reason = 9;
    assert!(matches!(
        exit::decode(&r.exit, &geo()),
        Exit::Unhandled { reason: 9, .. }
    ));
    r.exit.exit_reason = exit_reason::SYNC;
    r.exit.esr = (0x01 << 26) | 1;
    assert_eq!(exit::decode(&r.exit, &geo()), Exit::Wfx { wfe: true });
    r.exit.esr = 0x18 << 26;
    assert!(matches!(exit::decode(&r.exit, &geo()), Exit::SysReg { .. }));
}

#[test]
fn entry_side_helpers() {
    let mut r = run();
    exit::inject_sea(&mut r.enter);
    exit::trap_wfx(&mut r.enter, true, false);
    assert_eq!(
        r.enter.flags,
        enter_flags::INJECT_SEA | enter_flags::TRAP_WFI
    );
    exit::begin_entry(&mut r.enter);
    assert_eq!(
        r.enter.flags,
        enter_flags::TRAP_WFI,
        "trap bits persist, one-shot bits do not"
    );
    let lrs = [1, 2, 3, 4, 5, 6];
    // The vgic's ICH_HCR_EL2.En (bit 0) and vSGIEOICount (bit 8) are not
    // the host's to set; NPIE (bit 3) and VGrp1EIE (bit 6) are.
    assert_eq!(exit::load_gic(&mut r.enter, 0x149, &lrs, 4), 4);
    assert_eq!(&r.enter.gicv3_lrs[..6], &[1, 2, 3, 4, 0, 0]);
    assert_eq!(r.enter.gicv3_hcr, 0x48);
    exit::complete_host_call(&mut r.enter, &[9, 8, 7, 6, 5, 4, 3]);
    assert_eq!(&r.enter.gprs[..8], &[9, 8, 7, 6, 5, 4, 3, 0]);
}

#[test]
fn timers_from_exit() {
    let mut r = run();
    r.exit.cntv_ctl = 0b01;
    r.exit.cntv_cval = 1000;
    let t = Timers::from_exit(&r.exit);
    assert!(!t.vtimer_pending(999));
    assert!(t.vtimer_pending(1000));
    r.exit.cntv_ctl = 0b11; // masked
    assert!(!Timers::from_exit(&r.exit).vtimer_pending(2000));
}

#[test]
fn timer_lines_and_idle_deadline() {
    use kvm_rme::logic::exit::Timers;
    let t = Timers {
        cntv_ctl: 0b01,
        cntv_cval: 1_000,
        cntp_ctl: 0b11, // masked
        cntp_cval: 10,
    };
    assert_eq!(t.firing(999), [false, false]);
    assert_eq!(t.firing(1_000), [true, false], "a masked timer never fires");
    assert_eq!(t.ticks_to_next(400), Some(600));
    assert_eq!(t.ticks_to_next(5_000), Some(0), "overdue");
    // 600 ticks of a 62.5 MHz counter at HZ=100: under a jiffy, so 1.
    assert_eq!(t.idle_jiffies(400, 62_500_000, 100), 1);
    // 1.5 s away: capped at a second.
    assert_eq!(t.idle_jiffies(0, 1_000, 100).min(100), 100);
    let later = Timers {
        cntv_cval: 2_000_000,
        ..t
    };
    // 2e6 ticks at 62.5 MHz = 32 ms = 3.2 jiffies at HZ=100: 4.
    assert_eq!(later.idle_jiffies(0, 62_500_000, 100), 4);
    let both = Timers {
        cntp_ctl: 0b01,
        cntp_cval: 50,
        ..later
    };
    assert_eq!(both.ticks_to_next(0), Some(50), "the earlier of the two");
    assert_eq!(both.firing(60), [false, true]);
    let off = Timers::default();
    assert_eq!(
        (off.ticks_to_next(0), off.idle_jiffies(0, 62_500_000, 250)),
        (None, 250)
    );
    assert_eq!(later.idle_jiffies(0, 0, 100), 100, "no known rate");
}
