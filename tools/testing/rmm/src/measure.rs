// SPDX-License-Identifier: GPL-2.0

//! Realm measurements: the RIM, extended by each measured command of a
//! realm's construction, and the four REMs the realm extends itself.
//!
//! Each measured command replaces the RIM with the hash of a 256-byte
//! measurement descriptor that holds the old RIM, as the RMM
//! specification describes and TF-RMM v0.8.0 lays them out (type at 0,
//! length 0x100 at 8, RIM at 0x10, the command's fields from 0x50).  The hash is
//! the realm's choice of SHA-256 or SHA-512; a SHA-256 value fills the
//! first 32 of the 64 bytes.

use sha2::{Digest, Sha256, Sha512};

use kvm_rme::abi::{RealmParams, RecParams};

/// Descriptor types.
const DESC_DATA: u8 = 0;
const DESC_REC: u8 = 1;
const DESC_RIPAS: u8 = 2;

/// A realm's measurements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurements {
    sha512: bool,
    /// Index 0 is the RIM, 1..4 the REMs.
    pub values: [[u8; 64]; 5],
}

impl Measurements {
    /// The RIM's initial value: the hash of the realm parameters that
    /// shape the realm (flags, S2SZ, SVE VL, breakpoints, watchpoints,
    /// PMU counters, hash algorithm), each as the parameter granule holds
    /// it, in a 4 KiB block otherwise zero.
    pub fn new(p: &RealmParams) -> Measurements {
        let mut m = Measurements {
            sha512: p.hash_algo == 1,
            values: [[0; 64]; 5],
        };
        let mut block = [0u8; 4096];
        for (i, v) in [p.flags, p.s2sz, p.sve_vl, p.num_bps, p.num_wps, p.pmu_num_ctrs].iter().enumerate() {
            block[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        block[0x30] = p.hash_algo;
        m.values[0] = m.hash(&[&block]);
        m
    }

    fn hash(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut out = [0u8; 64];
        if self.sha512 {
            let mut h = Sha512::new();
            for p in parts {
                h.update(p);
            }
            out.copy_from_slice(&h.finalize());
        } else {
            let mut h = Sha256::new();
            for p in parts {
                h.update(p);
            }
            out[..32].copy_from_slice(&h.finalize());
        }
        out
    }

    fn len(&self) -> usize {
        if self.sha512 {
            64
        } else {
            32
        }
    }

    /// `RIM = H(descriptor)`: a 256-byte descriptor of `kind` holding
    /// the current RIM at 0x10 and `body` at 0x50.
    fn extend_rim(&mut self, kind: u8, body: &[u8]) {
        let mut d = [0u8; 256];
        d[0] = kind;
        d[8..16].copy_from_slice(&256u64.to_le_bytes());
        let n = self.len();
        d[16..16 + n].copy_from_slice(&self.values[0][..n]);
        let b = body.len().min(256 - 0x50);
        d[0x50..0x50 + b].copy_from_slice(&body[..b]);
        self.values[0] = self.hash(&[&d]);
    }

    /// `DATA_CREATE` of `data` at `ipa` with `flags`: the IPA, the flags
    /// and, when `flags` asks for it, the content's hash at 0x60.
    pub fn data(&mut self, ipa: u64, flags: u64, data: &[u8]) {
        let mut body = [0u8; 0x50];
        body[..8].copy_from_slice(&ipa.to_le_bytes());
        body[8..16].copy_from_slice(&flags.to_le_bytes());
        if flags & 1 != 0 {
            let n = self.len();
            let h = self.hash(&[data]);
            body[16..16 + n].copy_from_slice(&h[..n]);
        }
        self.extend_rim(DESC_DATA, &body);
    }

    /// `REC_CREATE` of a runnable REC: the hash of its parameter granule
    /// with only the flags, entry point and x0..x7 kept.
    pub fn rec(&mut self, p: &RecParams) {
        if p.flags & 1 == 0 {
            return;
        }
        let mut g = [0u8; 4096];
        g[..8].copy_from_slice(&p.flags.to_le_bytes());
        g[0x200..0x208].copy_from_slice(&p.pc.to_le_bytes());
        for (i, r) in p.gprs.iter().enumerate() {
            g[0x300 + i * 8..0x308 + i * 8].copy_from_slice(&r.to_le_bytes());
        }
        let h = self.hash(&[&g]);
        let n = self.len();
        self.extend_rim(DESC_REC, &h[..n]);
    }

    /// `RTT_INIT_RIPAS` of one RTT entry, `[base, top)`.
    pub fn ripas(&mut self, base: u64, top: u64) {
        let mut body = [0u8; 16];
        body[..8].copy_from_slice(&base.to_le_bytes());
        body[8..].copy_from_slice(&top.to_le_bytes());
        self.extend_rim(DESC_RIPAS, &body);
    }

    /// `RSI_MEASUREMENT_EXTEND(index, size, value)`: `false` for the RIM
    /// or a size above 64.
    pub fn extend(&mut self, index: usize, value: &[u8]) -> bool {
        if index == 0 || index > 4 || value.len() > 64 {
            return false;
        }
        let n = self.len();
        self.values[index] = self.hash(&[&self.values[index][..n], value]);
        true
    }

    /// Measurement `index` as x1..x8 of `RSI_MEASUREMENT_READ`.
    pub fn read(&self, index: usize) -> Option<[u64; 8]> {
        let v = self.values.get(index)?;
        let mut w = [0u64; 8];
        for (i, c) in v.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            w[i] = u64::from_le_bytes(b);
        }
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rim_follows_construction() {
        let mut p = RealmParams::default();
        p.s2sz = 40;
        let a = Measurements::new(&p);
        p.s2sz = 41;
        let b = Measurements::new(&p);
        assert_ne!(a, b, "the parameters are measured");
        assert_eq!(a.values[0][32..], [0; 32], "SHA-256 fills 32 bytes");
        p.hash_algo = 1;
        assert_ne!(Measurements::new(&p).values[0][32..], [0; 32]);

        let (mut m1, mut m2) = (a.clone(), a.clone());
        m1.data(0x1000, 1, &[1; 4096]);
        m2.data(0x1000, 1, &[2; 4096]);
        assert_ne!(m1.values[0], m2.values[0], "measured content counts");
        let mut r = a.clone();
        let mut rp = RecParams::default();
        r.rec(&rp);
        assert_eq!(r, a, "a REC that is not runnable is not measured");
        rp.flags = 1;
        r.rec(&rp);
        assert_ne!(r, a);
        let (mut u1, mut u2) = (a.clone(), a.clone());
        u1.data(0x1000, 0, &[1; 4096]);
        u2.data(0x1000, 0, &[2; 4096]);
        assert_eq!(u1.values[0], u2.values[0], "unmeasured content does not");
        assert_eq!(a.values[1], [0; 64]);
        assert!(!m1.clone().extend(0, &[1]));
        assert!(m1.extend(1, &[1, 2, 3]));
        assert_ne!(m1.values[1], [0; 64]);
        assert_eq!(m1.read(1).map(|w| w[0]), Some(u64::from_le_bytes(m1.values[1][..8].try_into().unwrap())));
    }
}
