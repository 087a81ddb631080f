//! Scalars modulo the Stark curve group order `n`, in Montgomery form (`crypto-bigint`).

use core::fmt;
use core::ops::{Add, Mul, Neg, Sub};

use crypto_bigint::modular::ConstMontyForm;
use crypto_bigint::{U256, const_monty_params};
use sha2::{Digest, Sha256};
use starknet_types_core::felt::Felt;
use zeroize::Zeroize;

use crate::error::{RngError, ScalarError};

const_monty_params!(
    StarkOrder,
    U256,
    "0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f",
    "The order `n` of the Stark curve group (prime; the curve has cofactor 1)."
);

/// Montgomery-form residue modulo the Stark curve order.
pub type OrderResidue = ConstMontyForm<StarkOrder, { U256::LIMBS }>;

/// The Stark curve group order `n`, big-endian hex.
pub const CURVE_ORDER_HEX: &str = "0x0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f";

/// The curve order `n` as an integer.
pub const CURVE_ORDER: U256 = U256::from_be_hex("0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f");

/// An integer modulo the curve order `n`, kept in Montgomery form.
///
/// Scalars are secret key material as often as not; the type zeroizes on request
/// ([`Zeroize`]) and [`SecretKey`](crate::SecretKey) zeroizes its scalar on drop.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Scalar(OrderResidue);

impl Scalar {
    /// 0.
    pub const ZERO: Self = Self(OrderResidue::ZERO);
    /// 1.
    pub const ONE: Self = Self(OrderResidue::ONE);

    /// The scalar equal to `v`.
    pub const fn from_u64(v: u64) -> Self {
        Self(OrderResidue::new(&U256::from_u64(v)))
    }

    /// The scalar equal to `v` (a `u128` is always below `n`).
    pub const fn from_u128(v: u128) -> Self {
        Self(OrderResidue::new(&U256::from_u128(v)))
    }

    /// Wraps an integer that must already be below `n`.
    pub fn from_uint(v: &U256) -> Result<Self, ScalarError> {
        if *v >= CURVE_ORDER {
            return Err(ScalarError::NotCanonical);
        }
        Ok(Self(OrderResidue::new(v)))
    }

    /// Interprets 32 big-endian bytes as an integer that must be below `n`.
    pub fn from_be_bytes(bytes: &[u8; 32]) -> Result<Self, ScalarError> {
        Self::from_uint(&U256::from_be_slice(bytes))
    }

    /// Interprets a felt as a canonical scalar (`felt < n`), the wire rule for scalars.
    pub fn from_canonical_felt(felt: &Felt) -> Result<Self, ScalarError> {
        Self::from_be_bytes(&felt.to_bytes_be())
    }

    /// Reduces a felt modulo `n`. Since `p < 2n`, this subtracts `n` at most once.
    pub fn from_felt_reduced(felt: &Felt) -> Self {
        let mut v = U256::from_be_slice(&felt.to_bytes_be());
        if v >= CURVE_ORDER {
            v = v.wrapping_sub(&CURVE_ORDER);
        }
        Self(OrderResidue::new(&v))
    }

    /// The canonical integer in `[0, n)`.
    pub fn to_uint(&self) -> U256 {
        self.0.retrieve()
    }

    /// The canonical integer as 32 big-endian bytes.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.to_uint().to_be_bytes().as_slice());
        out
    }

    /// The canonical integer as a felt (always valid: `n < p`).
    pub fn to_felt(&self) -> Felt {
        Felt::from_bytes_be(&self.to_be_bytes())
    }

    /// Whether this is 0.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Multiplicative inverse, `None` for 0. Variable-time (only used on public values).
    pub fn invert(&self) -> Option<Self> {
        self.0.invert().into_option().map(Self)
    }

    /// The Montgomery residue (for benchmarks and interop).
    pub fn as_residue(&self) -> &OrderResidue {
        &self.0
    }

    /// A uniformly random non-zero scalar from the operating system (`getrandom`).
    ///
    /// 256 random bits are masked to 252 bits (`n < 2^252`) and rejected unless `0 < v < n`,
    /// so the result is exactly uniform on `[1, n)`; about half of the draws are kept.
    pub fn random() -> Result<Self, RngError> {
        loop {
            let mut buf = [0u8; 32];
            getrandom::fill(&mut buf).map_err(RngError)?;
            buf[0] &= 0x0f;
            let candidate = Self::from_be_bytes(&buf);
            buf.zeroize();
            if let Ok(s) = candidate
                && !s.is_zero()
            {
                return Ok(s);
            }
        }
    }

    /// A deterministic non-zero scalar from `domain` and `parts`, uniform on `[1, n)` by
    /// rejection: for `counter = 0, 1, …`, `h = SHA-256(domain ‖ 0x00 ‖ len_be32(part) ‖ part … ‖
    /// counter_be32)`, mask `h` to 252 bits and keep the first `0 < h < n`.
    pub fn hash_to_nonzero(domain: &[u8], parts: &[&[u8]]) -> Self {
        let mut counter: u32 = 0;
        loop {
            let mut hasher = Sha256::new();
            hasher.update(domain);
            hasher.update([0u8]);
            for part in parts {
                // Parts are short (keys, hashes, seeds), far below 4 GiB.
                hasher.update((part.len() as u32).to_be_bytes());
                hasher.update(part);
            }
            hasher.update(counter.to_be_bytes());
            let mut h: [u8; 32] = hasher.finalize().into();
            h[0] &= 0x0f;
            let candidate = Self::from_be_bytes(&h);
            h.zeroize();
            if let Ok(s) = candidate
                && !s.is_zero()
            {
                return s;
            }
            counter = counter.wrapping_add(1);
        }
    }
}

impl Zeroize for Scalar {
    fn zeroize(&mut self) {
        self.0.as_montgomery_mut().zeroize();
    }
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scalar({:#x})", self.to_felt())
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.add(&rhs.0))
    }
}

impl Sub for Scalar {
    type Output = Scalar;
    fn sub(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.sub(&rhs.0))
    }
}

impl Mul for Scalar {
    type Output = Scalar;
    fn mul(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.mul(&rhs.0))
    }
}

impl Neg for Scalar {
    type Output = Scalar;
    fn neg(self) -> Scalar {
        Scalar(self.0.neg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_constant_matches_hex() {
        let n = Felt::from_hex(CURVE_ORDER_HEX).expect("hex");
        assert_eq!(U256::from_be_slice(&n.to_bytes_be()), CURVE_ORDER);
        assert_eq!(Scalar::from_canonical_felt(&n), Err(ScalarError::NotCanonical));
        assert_eq!(Scalar::from_felt_reduced(&n), Scalar::ZERO);
        assert_eq!(Scalar::from_felt_reduced(&(n + Felt::from(5u8))), Scalar::from_u64(5));
    }

    #[test]
    fn field_laws_small() {
        let a = Scalar::from_u64(7);
        let b = Scalar::from_u64(5);
        assert_eq!(a * b, Scalar::from_u64(35));
        assert_eq!(a - b, Scalar::from_u64(2));
        assert_eq!(b - a + Scalar::from_u64(2), Scalar::ZERO);
        assert_eq!((-Scalar::ONE).to_felt() + Felt::ONE, Felt::from_hex(CURVE_ORDER_HEX).expect("hex"));
        let inv = a.invert().expect("7 is invertible");
        assert_eq!(inv * a, Scalar::ONE);
        assert!(Scalar::ZERO.invert().is_none());
    }

    #[test]
    fn bytes_roundtrip_and_random_range() {
        for _ in 0..32 {
            let s = Scalar::random().expect("os rng");
            assert!(!s.is_zero());
            assert!(s.to_uint() < CURVE_ORDER);
            assert_eq!(Scalar::from_be_bytes(&s.to_be_bytes()), Ok(s));
            assert_eq!(Scalar::from_canonical_felt(&s.to_felt()), Ok(s));
        }
    }

    #[test]
    fn hash_to_nonzero_is_deterministic_and_domain_separated() {
        let a = Scalar::hash_to_nonzero(b"d1", &[b"x"]);
        assert_eq!(a, Scalar::hash_to_nonzero(b"d1", &[b"x"]));
        assert_ne!(a, Scalar::hash_to_nonzero(b"d2", &[b"x"]));
        // Length prefixes keep part boundaries unambiguous.
        assert_ne!(Scalar::hash_to_nonzero(b"d", &[b"ab", b"c"]), Scalar::hash_to_nonzero(b"d", &[b"a", b"bc"]));
    }

    #[test]
    fn zeroize_clears() {
        let mut s = Scalar::from_u64(99);
        s.zeroize();
        assert!(s.is_zero());
    }
}
