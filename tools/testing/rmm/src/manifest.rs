// SPDX-License-Identifier: GPL-2.0

//! The boot manifest EL3 leaves in the shared page at cold boot, as TF-A
//! 2.12.1 writes it: version 0.3 (`rmm_core_manifest.h`), 128 bytes at
//! the start of the page, whose two lists point back into the page.
//!
//! Each list has a checksum: the DRAM one covers `num_banks`, the list
//! pointer and each bank's base and size; the console one
//! `num_consoles`, the list pointer and every word of each console entry
//! (`rmm-el3-comms-spec.rst`).  Either sum plus its checksum is 0 modulo
//! 2^64.  TF-A 2.12.1's QEMU port leaves a console's `name` out of its
//! sum, so TF-RMM refuses to boot on it; our TF-A build carries the fix
//! (`firmware/tf-a/0001-plat-qemu-checksum-whole-console-entry.patch`),
//! and this RMM checks the rule as the specification states it.

/// Manifest version 0.3: major in bits [30:16], minor in [15:0].
pub const VERSION: u32 = 3;
/// Most DRAM banks taken.
pub const MAX_BANKS: usize = 4;

/// A DRAM bank: the memory the host may delegate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Bank {
    pub base: u64,
    pub size: u64,
}

/// The console EL3 hands over (a PL011 on QEMU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Console {
    pub base: u64,
    pub clk_in_hz: u64,
    pub baud_rate: u64,
}

/// What the manifest says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest {
    banks: [Bank; MAX_BANKS],
    num_banks: usize,
    pub console: Option<Console>,
}

impl Manifest {
    /// The DRAM banks.
    pub fn banks(&self) -> &[Bank] {
        &self.banks[..self.num_banks]
    }
}

/// Why a manifest is refused: `RMM_BOOT_COMPLETE`'s status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// `E_RMM_BOOT_MANIFEST_VERSION_NOT_SUPPORTED` (-6).
    Version,
    /// `E_RMM_BOOT_MANIFEST_DATA_ERROR` (-7): a checksum, a pointer out of
    /// the page, overlapping or empty banks, too many of them.
    Data,
}

fn word(page: &[u8], off: usize) -> Result<u64, ManifestError> {
    let b = page.get(off..off + 8).ok_or(ManifestError::Data)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    Ok(u64::from_le_bytes(w))
}

/// The offset in the page of a list of `n` entries of `size` bytes at
/// physical address `ptr`, if it lies inside the page at `page_pa`.
fn list(page: &[u8], page_pa: u64, ptr: u64, n: u64, size: u64) -> Result<usize, ManifestError> {
    let off = ptr.checked_sub(page_pa).ok_or(ManifestError::Data)?;
    let end = n
        .checked_mul(size)
        .and_then(|l| l.checked_add(off))
        .ok_or(ManifestError::Data)?;
    if end > page.len() as u64 || off % 8 != 0 {
        return Err(ManifestError::Data);
    }
    // CAST: below the page size, checked above.
    Ok(off as usize)
}

/// Parses the manifest in `page`, the shared page at physical `page_pa`.
pub fn parse(page: &[u8], page_pa: u64) -> Result<Manifest, ManifestError> {
    let v = word(page, 0)?;
    // CAST: the low word is the version, the high word RES0.
    let (version, pad) = (v as u32, (v >> 32) as u32);
    if version >> 16 != VERSION >> 16 || version & 0xffff < VERSION & 0xffff {
        return Err(ManifestError::Version);
    }
    if pad != 0 {
        return Err(ManifestError::Data);
    }
    let mut m = Manifest {
        banks: [Bank::default(); MAX_BANKS],
        num_banks: 0,
        console: None,
    };
    // plat_dram
    let (n, ptr, sum) = (word(page, 0x10)?, word(page, 0x18)?, word(page, 0x20)?);
    if n == 0 || n > MAX_BANKS as u64 {
        return Err(ManifestError::Data);
    }
    let at = list(page, page_pa, ptr, n, 16)?;
    let mut total = n.wrapping_add(ptr);
    for i in 0..n as usize {
        let (base, size) = (word(page, at + 16 * i)?, word(page, at + 16 * i + 8)?);
        total = total.wrapping_add(base).wrapping_add(size);
        if size == 0 || base % 4096 != 0 || size % 4096 != 0 || base.checked_add(size).is_none() {
            return Err(ManifestError::Data);
        }
        // Banks in ascending order, not overlapping.
        if let Some(prev) = i.checked_sub(1).map(|p| m.banks[p]) {
            if prev.base + prev.size > base {
                return Err(ManifestError::Data);
            }
        }
        m.banks[i] = Bank { base, size };
    }
    if total.wrapping_add(sum) != 0 {
        return Err(ManifestError::Data);
    }
    m.num_banks = n as usize;
    // plat_console: optional, at most the first is used.
    let (n, ptr, sum) = (word(page, 0x28)?, word(page, 0x30)?, word(page, 0x38)?);
    if n != 0 {
        let at = list(page, page_pa, ptr, n, 48)?;
        let mut total = n.wrapping_add(ptr);
        for i in 0..n as usize {
            for f in (0..48).step_by(8) {
                total = total.wrapping_add(word(page, at + 48 * i + f)?);
            }
        }
        if total.wrapping_add(sum) != 0 {
            return Err(ManifestError::Data);
        }
        m.console = Some(Console {
            base: word(page, at)?,
            clk_in_hz: word(page, at + 24)?,
            baud_rate: word(page, at + 32)?,
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PA: u64 = 0x418f_f000;

    /// The manifest TF-A 2.12.1's QEMU port writes (qemu_common.c), with
    /// our fix of its console checksum.
    fn qemu() -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        let put = |p: &mut Vec<u8>, off: usize, v: u64| p[off..off + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut p, 0, 3);
        put(&mut p, 0x10, 1);
        put(&mut p, 0x18, PA + 0x40);
        let dram: u64 = [1, PA + 0x40, 0x4000_0000, 0xc000_0000].iter().fold(0u64, |a, v| a.wrapping_add(*v));
        put(&mut p, 0x20, dram.wrapping_neg());
        put(&mut p, 0x28, 1);
        put(&mut p, 0x30, PA + 0x50);
        let name = u64::from_le_bytes(*b"pl011\0\0\0");
        let con: u64 = [1, PA + 0x50, 0x0900_0000, 1, name, 1, 115_200, 0]
            .iter()
            .fold(0u64, |a, v| a.wrapping_add(*v));
        put(&mut p, 0x38, con.wrapping_neg());
        put(&mut p, 0x40, 0x4000_0000);
        put(&mut p, 0x48, 0xc000_0000);
        put(&mut p, 0x50, 0x0900_0000);
        put(&mut p, 0x58, 1);
        p[0x60..0x66].copy_from_slice(b"pl011\0");
        put(&mut p, 0x68, 1);
        put(&mut p, 0x70, 115_200);
        p
    }

    #[test]
    fn the_manifest_of_tf_a_2_12_1_qemu() {
        let p = qemu();
        assert_eq!(word(&p, 0x20).unwrap(), 0xFFFF_FFFE_BE70_0FBF, "the DRAM checksum TF-A writes");
        let m = parse(&p, PA).unwrap();
        assert_eq!(m.banks(), [Bank { base: 0x4000_0000, size: 0xc000_0000 }]);
        assert_eq!(
            m.console,
            Some(Console { base: 0x0900_0000, clk_in_hz: 1, baud_rate: 115_200 })
        );
    }

    #[test]
    fn bad_manifests() {
        let cases: [(&str, fn(&mut Vec<u8>), ManifestError); 6] = [
            ("major 1", |p| p[2] = 1, ManifestError::Version),
            ("minor 2", |p| p[0] = 2, ManifestError::Version),
            ("padding", |p| p[4] = 1, ManifestError::Data),
            ("dram checksum", |p| p[0x20] ^= 1, ManifestError::Data),
            ("console name left out (unpatched TF-A 2.12.1)", |p| {
                let (name, sum) = (word(p, 0x60).unwrap(), word(p, 0x38).unwrap());
                p[0x38..0x40].copy_from_slice(&sum.wrapping_add(name).to_le_bytes());
            }, ManifestError::Data),
            ("bank list outside the page", |p| p[0x19] = 0x10, ManifestError::Data),
        ];
        for (what, f, e) in cases {
            let mut p = qemu();
            f(&mut p);
            assert_eq!(parse(&p, PA), Err(e), "{what}");
        }
        // The name is part of the sum.
        let mut p = qemu();
        p[0x60] = b'x';
        assert_eq!(parse(&p, PA), Err(ManifestError::Data));
    }
}
