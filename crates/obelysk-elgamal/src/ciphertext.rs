//! Exponential ElGamal ciphertexts and their homomorphic operations.

use core::ops::{Add, Sub};

use serde::{Deserialize, Serialize};
use starknet_types_core::curve::ProjectivePoint;
use starknet_types_core::felt::Felt;

use crate::error::{DecodeError, DecryptError, RngError, ScalarError};
use crate::keys::{PublicKey, SecretKey};
use crate::point;
use crate::scalar::Scalar;
use crate::table::BabyStepTable;

/// An exponential ElGamal ciphertext `(C1, C2) = (r·G, m·G + r·PK)`.
///
/// Felt layout (4 felts): `[c1.x, c1.y, c2.x, c2.y]`. Either point may be the identity,
/// encoded `(0, 0)`: homomorphic arithmetic can produce it (e.g. `Enc(a) − Enc(a)` with the
/// same randomness); a fresh encryption never has `C1 = identity` because `r ≠ 0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "[Felt; 4]", into = "[Felt; 4]")]
pub struct Ciphertext {
    pub(crate) c1: ProjectivePoint,
    pub(crate) c2: ProjectivePoint,
}

/// Encrypts `amount` to `pk` with fresh randomness from the operating system.
pub fn encrypt(amount: u64, pk: &PublicKey) -> Result<Ciphertext, RngError> {
    let r = Scalar::random()?;
    Ok(encrypt_inner(amount, pk, &r))
}

/// Encrypts `amount` to `pk` with caller-supplied randomness `r` (for test vectors and
/// protocols that must open `r`). Reusing `r` for two ciphertexts leaks the difference of the
/// amounts; `r = 0` is rejected.
pub fn encrypt_with_randomness(amount: u64, pk: &PublicKey, r: &Scalar) -> Result<Ciphertext, ScalarError> {
    if r.is_zero() {
        return Err(ScalarError::Zero);
    }
    Ok(encrypt_inner(amount, pk, r))
}

fn encrypt_inner(amount: u64, pk: &PublicKey, r: &Scalar) -> Ciphertext {
    let c1 = point::mul_generator(r);
    let m_g = point::mul_generator(&Scalar::from_u64(amount));
    let c2 = &m_g + &point::mul(pk.as_point(), r);
    Ciphertext { c1, c2 }
}

/// `m · G = C2 − sk · C1`.
pub fn decrypt_to_point(ct: &Ciphertext, sk: &SecretKey) -> ProjectivePoint {
    &ct.c2 - &point::mul(&ct.c1, sk.expose_scalar())
}

/// Decrypts and recovers the amount `m` in `[0, max)` with baby-step giant-step over `table`.
///
/// A plaintext outside the range (or a ciphertext for another key) yields
/// [`DecryptError::OutOfRange`], never a wrong number.
pub fn decrypt(ct: &Ciphertext, sk: &SecretKey, table: &BabyStepTable, max: u64) -> Result<u64, DecryptError> {
    table.solve(&decrypt_to_point(ct, sk), max)
}

impl Ciphertext {
    /// Number of felts in the layout.
    pub const FELTS: usize = 4;

    /// Builds a ciphertext from two points (any points of the group, including the identity).
    pub fn from_points(c1: ProjectivePoint, c2: ProjectivePoint) -> Self {
        Self { c1, c2 }
    }

    /// `C1 = r·G`.
    pub fn c1(&self) -> &ProjectivePoint {
        &self.c1
    }

    /// `C2 = m·G + r·PK`.
    pub fn c2(&self) -> &ProjectivePoint {
        &self.c2
    }

    /// The encryption of 0 with randomness 0: `(identity, identity)`, the neutral element of
    /// ciphertext addition (not a hiding ciphertext; re-randomise before publishing).
    pub fn zero() -> Self {
        Self { c1: ProjectivePoint::identity(), c2: ProjectivePoint::identity() }
    }

    /// Decodes `[c1.x, c1.y, c2.x, c2.y]`, rejecting points off the curve.
    pub fn from_felts(felts: &[Felt]) -> Result<Self, DecodeError> {
        let [x1, y1, x2, y2] = felts else {
            return Err(DecodeError::WrongLength { expected: Self::FELTS, got: felts.len() });
        };
        let c1 = point::from_xy(x1, y1).map_err(|source| DecodeError::Point { field: "c1", source })?;
        let c2 = point::from_xy(x2, y2).map_err(|source| DecodeError::Point { field: "c2", source })?;
        Ok(Self { c1, c2 })
    }

    /// `[c1.x, c1.y, c2.x, c2.y]`.
    pub fn to_felts(&self) -> [Felt; 4] {
        let (x1, y1) = point::to_xy(&self.c1);
        let (x2, y2) = point::to_xy(&self.c2);
        [x1, y1, x2, y2]
    }

    /// `Enc(m) → Enc(m + amount)`: adds `amount · G` to `C2`.
    pub fn add_amount(&self, amount: u64) -> Self {
        let a = point::mul_generator(&Scalar::from_u64(amount));
        Self { c1: self.c1.clone(), c2: &self.c2 + &a }
    }

    /// `Enc(m) → Enc(m − amount)` (modulo `n`; decrypting a negative result is out of range).
    pub fn sub_amount(&self, amount: u64) -> Self {
        let a = point::mul_generator(&Scalar::from_u64(amount));
        Self { c1: self.c1.clone(), c2: &self.c2 - &a }
    }

    /// Re-randomises with fresh OS randomness: `(C1 + r'·G, C2 + r'·PK)` decrypts to the same
    /// amount and is unlinkable to `self` for anyone without `sk`.
    pub fn rerandomize(&self, pk: &PublicKey) -> Result<Self, RngError> {
        let r = Scalar::random()?;
        Ok(self.rerandomize_inner(pk, &r))
    }

    /// Re-randomises with caller-supplied non-zero `r'`.
    pub fn rerandomize_with(&self, pk: &PublicKey, r: &Scalar) -> Result<Self, ScalarError> {
        if r.is_zero() {
            return Err(ScalarError::Zero);
        }
        Ok(self.rerandomize_inner(pk, r))
    }

    fn rerandomize_inner(&self, pk: &PublicKey, r: &Scalar) -> Self {
        Self { c1: &self.c1 + &point::mul_generator(r), c2: &self.c2 + &point::mul(pk.as_point(), r) }
    }
}

impl PartialEq for Ciphertext {
    fn eq(&self, other: &Self) -> bool {
        point::eq(&self.c1, &other.c1) && point::eq(&self.c2, &other.c2)
    }
}
impl Eq for Ciphertext {}

impl Add<&Ciphertext> for &Ciphertext {
    type Output = Ciphertext;
    /// `Enc(a) + Enc(b) = Enc(a + b)` (randomness adds too).
    fn add(self, rhs: &Ciphertext) -> Ciphertext {
        Ciphertext { c1: &self.c1 + &rhs.c1, c2: &self.c2 + &rhs.c2 }
    }
}

impl Sub<&Ciphertext> for &Ciphertext {
    type Output = Ciphertext;
    /// `Enc(a) − Enc(b) = Enc(a − b)` (modulo `n`).
    fn sub(self, rhs: &Ciphertext) -> Ciphertext {
        Ciphertext { c1: &self.c1 - &rhs.c1, c2: &self.c2 - &rhs.c2 }
    }
}

impl TryFrom<[Felt; 4]> for Ciphertext {
    type Error = DecodeError;
    fn try_from(v: [Felt; 4]) -> Result<Self, DecodeError> {
        Self::from_felts(&v)
    }
}

impl From<Ciphertext> for [Felt; 4] {
    fn from(ct: Ciphertext) -> Self {
        ct.to_felts()
    }
}
