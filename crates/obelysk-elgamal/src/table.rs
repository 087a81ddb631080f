//! Baby-step giant-step recovery of `m` from `m · G`, with a reusable baby-step table.
//!
//! # Algorithm
//!
//! A table with `baby_bits = b` holds `B = 2^b` entries, the low 64 bits of `x(i·G)` for
//! `i = 1..=B`, in an open-addressing hash table. Because `x(P) = x(−P)`, one entry answers for
//! both `±i`, so giant steps stride by `2B`: for `j = 0, 1, …` the solver checks whether
//! `Q_j = M − j·2B·G` is the identity or `±i·G` for a table `i`, and then `m = j·2B ± i`. Every
//! candidate is confirmed by a full point comparison, so 64-bit truncation can cost a little time
//! but never give a wrong answer. Giant steps are normalised to affine coordinates in batches
//! with one field inversion per batch (Montgomery's trick).
//!
//! # Size and time trade-offs
//!
//! | `baby_bits` | RAM (hash table) | file (`save`) | build (one core)  | worst-case giant steps for `max = 2^40` |
//! |------------:|-----------------:|--------------:|------------------:|-----------------------------------------:|
//! | 16          | 1.5 MiB          | 512 KiB       | 14 ms (measured)  | 2^23                                     |
//! | 20 (default)| 24 MiB           | 8 MiB         | 0.25 s (measured) | 2^19 (worst case 0.19 s measured)        |
//! | 22          | 96 MiB           | 32 MiB        | ~1 s              | 2^17                                     |
//! | 24          | 384 MiB          | 128 MiB       | ~4 s              | 2^15                                     |
//!
//! RAM is `12 · 2^(b+1)` bytes, the file `8 · 2^b + 48` bytes; a giant step costs one mixed point
//! addition plus about four field multiplications and one hash probe. Time for one decryption
//! grows linearly with `max / 2^(b+1)`; measured figures are in the crate's `BENCHMARKS.md`.
//! Loading a saved table (35 ms for the default) verifies a SHA-256 checksum and spot-checks
//! entries against fresh scalar multiplications, then rebuilds the hash table.

use std::fs;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use starknet_types_core::curve::{AffinePoint, ProjectivePoint};
use starknet_types_core::felt::Felt;

use crate::error::{DecryptError, TableError};
use crate::point;
use crate::scalar::Scalar;

/// Default `baby_bits`: 2^20 entries (24 MiB in RAM, 8 MiB on disk).
pub const DEFAULT_BABY_BITS: u32 = 20;
/// Default exclusive upper bound of recoverable amounts: `2^40`.
pub const DEFAULT_MAX_AMOUNT: u64 = 1 << 40;
/// Largest supported `baby_bits`.
pub const MAX_BABY_BITS: u32 = 28;
/// A decryption refuses ranges needing more than `2^MAX_GIANT_BITS` giant steps.
pub const MAX_GIANT_BITS: u32 = 32;

const MAGIC: &[u8; 8] = b"OBLKBSGS";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
const BATCH: usize = 512;

/// The baby-step table: build once (or load), share read-only across threads.
pub struct BabyStepTable {
    baby_bits: u32,
    keys: Vec<u64>,
    vals: Vec<u32>,
    mask: usize,
    /// `−(2B)·G`, the giant stride.
    stride_neg: AffinePoint,
}

impl core::fmt::Debug for BabyStepTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BabyStepTable").field("baby_bits", &self.baby_bits).finish_non_exhaustive()
    }
}

fn key_of(x: &Felt) -> u64 {
    let k = x.to_le_digits()[0];
    if k == 0 { 1 } else { k }
}

/// Inverts every element of `zs` in place (all must be non-zero) with one field inversion.
fn batch_invert(zs: &mut [Felt]) {
    if zs.is_empty() {
        return;
    }
    let mut prefix = Vec::with_capacity(zs.len());
    let mut acc = Felt::ONE;
    for z in zs.iter() {
        acc *= *z;
        prefix.push(acc);
    }
    // Callers only pass Z coordinates of non-identity points, which are non-zero.
    let mut inv = acc.inverse().unwrap_or(Felt::ZERO);
    for i in (0..zs.len()).rev() {
        let before = if i == 0 { Felt::ONE } else { prefix[i - 1] };
        let zi = zs[i];
        zs[i] = inv * before;
        inv *= zi;
    }
}

impl BabyStepTable {
    /// Builds the table for `2^baby_bits` baby steps (`1 ..= 28`).
    pub fn build(baby_bits: u32) -> Result<Self, TableError> {
        check_bits(baby_bits)?;
        let b = 1usize << baby_bits;
        let g = AffinePoint::generator();
        let mut xs = Vec::with_capacity(b);
        let mut acc = ProjectivePoint::identity();
        let mut pts: Vec<ProjectivePoint> = Vec::with_capacity(BATCH);
        let mut zs: Vec<Felt> = Vec::with_capacity(BATCH);
        while xs.len() < b {
            pts.clear();
            zs.clear();
            let n = BATCH.min(b - xs.len());
            for _ in 0..n {
                acc += &g;
                zs.push(acc.z());
                pts.push(acc.clone());
            }
            batch_invert(&mut zs);
            for (p, zinv) in pts.iter().zip(&zs) {
                xs.push(key_of(&(p.x() * *zinv)));
            }
        }
        Ok(Self::from_keys(baby_bits, &xs))
    }

    fn from_keys(baby_bits: u32, xs: &[u64]) -> Self {
        let slots = 1usize << (baby_bits + 1);
        let mask = slots - 1;
        let mut keys = vec![0u64; slots];
        let mut vals = vec![0u32; slots];
        for (i, &k) in xs.iter().enumerate() {
            let mut idx = (k as usize) & mask;
            while keys[idx] != 0 {
                idx = (idx + 1) & mask;
            }
            keys[idx] = k;
            // i < 2^28, fits u32.
            vals[idx] = (i + 1) as u32;
        }
        let stride = point::mul_generator(&Scalar::from_u64(2u64 << baby_bits));
        let (sx, sy) = point::to_xy(&stride);
        let stride_neg = AffinePoint::new_unchecked(sx, -sy);
        Self { baby_bits, keys, vals, mask, stride_neg }
    }

    /// `log2` of the number of baby steps.
    pub fn baby_bits(&self) -> u32 {
        self.baby_bits
    }

    fn candidates(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let mut idx = (key as usize) & self.mask;
        let mut done = false;
        core::iter::from_fn(move || {
            while !done {
                let k = self.keys[idx];
                if k == 0 {
                    done = true;
                    return None;
                }
                let v = self.vals[idx];
                idx = (idx + 1) & self.mask;
                if k == key {
                    return Some(v);
                }
            }
            None
        })
    }

    /// Finds `m` in `[0, max)` with `m · G = target`.
    pub fn solve(&self, target: &ProjectivePoint, max: u64) -> Result<u64, DecryptError> {
        let out_of_range = DecryptError::OutOfRange { max };
        if max == 0 {
            return Err(out_of_range);
        }
        let stride: u128 = 2u128 << self.baby_bits;
        let giant_count = u128::from(max).div_ceil(stride) + 1;
        if giant_count > 1u128 << MAX_GIANT_BITS {
            return Err(DecryptError::RangeTooLarge { max, baby_bits: self.baby_bits });
        }
        let accept = |m: u128| -> Option<u64> { u64::try_from(m).ok().filter(|&m| m < max) };
        let mut q = target.clone();
        let mut j: u128 = 0;
        let mut batch: Vec<(u128, ProjectivePoint)> = Vec::with_capacity(BATCH);
        let mut zs: Vec<Felt> = Vec::with_capacity(BATCH);
        while j < giant_count {
            batch.clear();
            zs.clear();
            while batch.len() < BATCH && j < giant_count {
                if q.is_identity() {
                    if let Some(m) = accept(j * stride) {
                        return Ok(m);
                    }
                } else {
                    zs.push(q.z());
                    batch.push((j, q.clone()));
                }
                q += &self.stride_neg;
                j += 1;
            }
            batch_invert(&mut zs);
            for ((jj, p), zinv) in batch.iter().zip(&zs) {
                let x = p.x() * *zinv;
                let key = key_of(&x);
                for i in self.candidates(key) {
                    let (bx, by) = point::to_xy(&point::mul_generator(&Scalar::from_u64(u64::from(i))));
                    if bx != x {
                        continue;
                    }
                    let y = p.y() * *zinv;
                    let base = jj * stride;
                    let m = if by == y {
                        Some(base + u128::from(i))
                    } else if by == -y {
                        base.checked_sub(u128::from(i))
                    } else {
                        None
                    };
                    if let Some(m) = m.and_then(accept) {
                        return Ok(m);
                    }
                }
            }
        }
        Err(out_of_range)
    }

    /// Writes the table atomically (temporary file in the same directory, then rename).
    ///
    /// Format: `"OBLKBSGS"`, `u32 LE` format version (1), `u32 LE` `baby_bits`, then `2^b` entries
    /// `u64 LE` = low 64 bits of `x(i·G)` for `i = 1..=2^b`, then SHA-256 of everything before.
    pub fn save(&self, path: &Path) -> Result<(), TableError> {
        let io = |source| TableError::Io { path: path.to_path_buf(), source };
        let b = 1usize << self.baby_bits;
        let mut xs = vec![0u64; b];
        for (k, v) in self.keys.iter().zip(&self.vals) {
            if *k != 0 {
                xs[(*v - 1) as usize] = *k;
            }
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + 8 * b + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.baby_bits.to_le_bytes());
        for x in &xs {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// Loads a table written by [`save`](Self::save), verifying its checksum and spot-checking
    /// entries `1`, `2` and `2^b` against fresh scalar multiplications.
    pub fn load(path: &Path) -> Result<Self, TableError> {
        let bytes = fs::read(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes)
    }

    /// Parses the bytes of a saved table (see [`save`](Self::save)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TableError> {
        if bytes.len() < HEADER_LEN + 32 {
            return Err(if bytes.starts_with(MAGIC) || bytes.len() < MAGIC.len() {
                TableError::Corrupt("file too short")
            } else {
                TableError::BadMagic
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(TableError::BadMagic);
        }
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(w)
        };
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(TableError::UnsupportedVersion(version));
        }
        let baby_bits = word(12);
        check_bits(baby_bits)?;
        let b = 1usize << baby_bits;
        if bytes.len() != HEADER_LEN + 8 * b + 32 {
            return Err(TableError::Corrupt("length does not match baby_bits"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(TableError::Corrupt("checksum mismatch"));
        }
        let xs: Vec<u64> = body[HEADER_LEN..]
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect();
        for i in [1usize, 2.min(b), b] {
            let (x, _) = point::to_xy(&point::mul_generator(&Scalar::from_u64(i as u64)));
            if xs[i - 1] != key_of(&x) {
                return Err(TableError::Corrupt("entries are not x(i*G) of the Stark curve"));
            }
        }
        Ok(Self::from_keys(baby_bits, &xs))
    }
}

fn check_bits(baby_bits: u32) -> Result<(), TableError> {
    if (1..=MAX_BABY_BITS).contains(&baby_bits) { Ok(()) } else { Err(TableError::BadParameters(baby_bits)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mg(m: u64) -> ProjectivePoint {
        point::mul_generator(&Scalar::from_u64(m))
    }

    #[test]
    fn solves_every_small_amount_exhaustively() {
        let t = BabyStepTable::build(4).expect("build");
        // B = 16, stride 32: covers identity, ±i, stride boundaries.
        for m in 0..300u64 {
            assert_eq!(t.solve(&mg(m), 300), Ok(m), "m = {m}");
        }
    }

    #[test]
    fn out_of_range_is_typed() {
        let t = BabyStepTable::build(4).expect("build");
        assert_eq!(t.solve(&mg(300), 300), Err(DecryptError::OutOfRange { max: 300 }));
        assert_eq!(t.solve(&mg(5), 0), Err(DecryptError::OutOfRange { max: 0 }));
        // "Negative" amounts (n − 1) are out of range, not a wrong number.
        let minus_one = point::mul_generator(&-Scalar::ONE);
        assert_eq!(t.solve(&minus_one, 1000), Err(DecryptError::OutOfRange { max: 1000 }));
        assert!(matches!(t.solve(&mg(1), u64::MAX), Err(DecryptError::RangeTooLarge { .. })));
    }

    #[test]
    fn save_load_roundtrip_and_corruption() {
        let t = BabyStepTable::build(6).expect("build");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bsgs");
        t.save(&path).expect("save");
        let bytes = fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 16 + 8 * 64 + 32);
        let loaded = BabyStepTable::load(&path).expect("load");
        assert_eq!(loaded.baby_bits(), 6);
        assert_eq!(loaded.keys, t.keys);
        assert_eq!(loaded.solve(&mg(4000), 5000), Ok(4000));

        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(matches!(BabyStepTable::from_bytes(&bad), Err(TableError::Corrupt(_))));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(BabyStepTable::from_bytes(&bad), Err(TableError::BadMagic)));
        let mut bad = bytes.clone();
        bad[8] = 9;
        assert!(matches!(BabyStepTable::from_bytes(&bad), Err(TableError::UnsupportedVersion(9))));
        assert!(matches!(BabyStepTable::from_bytes(&bytes[..40]), Err(TableError::Corrupt(_))));
        assert!(matches!(BabyStepTable::build(0), Err(TableError::BadParameters(0))));
        assert!(matches!(BabyStepTable::load(&dir.path().join("missing")), Err(TableError::Io { .. })));
    }

    #[test]
    fn batch_invert_matches_single() {
        let mut zs: Vec<Felt> = (1u64..20).map(Felt::from).collect();
        let orig = zs.clone();
        batch_invert(&mut zs);
        for (z, inv) in orig.iter().zip(&zs) {
            assert_eq!(*z * *inv, Felt::ONE);
        }
    }
}
