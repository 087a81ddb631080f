//! ElGamal key pairs.

use core::fmt;

use serde::{Deserialize, Serialize};
use starknet_types_core::curve::ProjectivePoint;
use starknet_types_core::felt::Felt;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{DecodeError, RngError, ScalarError};
use crate::point;
use crate::scalar::Scalar;

/// Domain separation for [`SecretKey::from_seed`].
pub const KEYGEN_DOMAIN: &[u8] = b"obelysk/elgamal/keygen/v1";

/// An ElGamal secret key: a scalar `sk` in `[1, n)`. Zeroized on drop; `Debug` prints nothing
/// secret.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Scalar);

impl SecretKey {
    /// A fresh key from operating-system randomness.
    pub fn generate() -> Result<Self, RngError> {
        Scalar::random().map(Self)
    }

    /// A key derived deterministically from a 32-byte seed:
    /// `sk = hash_to_nonzero("obelysk/elgamal/keygen/v1", [seed])` (SHA-256 with rejection below
    /// `n`, see [`Scalar::hash_to_nonzero`]). The seed must be uniformly random and secret.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(Scalar::hash_to_nonzero(KEYGEN_DOMAIN, &[seed]))
    }

    /// Wraps a non-zero scalar.
    pub fn from_scalar(s: Scalar) -> Result<Self, ScalarError> {
        if s.is_zero() {
            return Err(ScalarError::Zero);
        }
        Ok(Self(s))
    }

    /// Decodes a canonical non-zero felt (`0 < felt < n`).
    pub fn from_felt(felt: &Felt) -> Result<Self, ScalarError> {
        Self::from_scalar(Scalar::from_canonical_felt(felt)?)
    }

    /// The public key `sk · G`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(point::mul_generator(&self.0))
    }

    /// The secret scalar. Handle with care: copies are not zeroized automatically.
    pub fn expose_scalar(&self) -> &Scalar {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// An ElGamal public key `PK = sk · G`, never the identity.
///
/// Felt layout (2 felts): `[pk.x, pk.y]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "[Felt; 2]", into = "[Felt; 2]")]
pub struct PublicKey(pub(crate) ProjectivePoint);

impl PublicKey {
    /// Number of felts in the layout.
    pub const FELTS: usize = 2;

    /// Validates a point: on the curve and not the identity.
    pub fn from_point(p: ProjectivePoint) -> Result<Self, DecodeError> {
        let (x, y) = point::to_xy(&p);
        Self::from_felts(&[x, y])
    }

    /// Decodes `[x, y]`, rejecting points off the curve and the identity.
    pub fn from_felts(felts: &[Felt]) -> Result<Self, DecodeError> {
        let [x, y] = felts else {
            return Err(DecodeError::WrongLength { expected: Self::FELTS, got: felts.len() });
        };
        point::from_xy_nonidentity(x, y).map(Self).map_err(|source| DecodeError::Point { field: "pk", source })
    }

    /// `[x, y]`.
    pub fn to_felts(&self) -> [Felt; 2] {
        let (x, y) = point::to_xy(&self.0);
        [x, y]
    }

    /// The point.
    pub fn as_point(&self) -> &ProjectivePoint {
        &self.0
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        point::eq(&self.0, &other.0)
    }
}
impl Eq for PublicKey {}

impl TryFrom<[Felt; 2]> for PublicKey {
    type Error = DecodeError;
    fn try_from(v: [Felt; 2]) -> Result<Self, DecodeError> {
        Self::from_felts(&v)
    }
}

impl From<PublicKey> for [Felt; 2] {
    fn from(pk: PublicKey) -> Self {
        pk.to_felts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_keys_are_deterministic_and_distinct() {
        let a = SecretKey::from_seed(&[1u8; 32]);
        let b = SecretKey::from_seed(&[1u8; 32]);
        let c = SecretKey::from_seed(&[2u8; 32]);
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(a.public_key(), c.public_key());
    }

    #[test]
    fn debug_redacts() {
        let sk = SecretKey::from_seed(&[9u8; 32]);
        let shown = format!("{sk:?}");
        assert_eq!(shown, "SecretKey(<redacted>)");
        assert!(!shown.contains(&format!("{:x}", sk.expose_scalar().to_felt())));
    }

    #[test]
    fn zero_and_noncanonical_rejected() {
        assert_eq!(SecretKey::from_felt(&Felt::ZERO).err(), Some(ScalarError::Zero));
        let n = Felt::from_hex(crate::scalar::CURVE_ORDER_HEX).expect("hex");
        assert_eq!(SecretKey::from_felt(&n).err(), Some(ScalarError::NotCanonical));
    }

    #[test]
    fn public_key_validation() {
        let pk = SecretKey::from_seed(&[3u8; 32]).public_key();
        let [x, y] = pk.to_felts();
        assert_eq!(PublicKey::from_felts(&[x, y]).expect("valid"), pk);
        assert!(matches!(
            PublicKey::from_felts(&[x, y + Felt::ONE]),
            Err(DecodeError::Point { source: crate::PointError::NotOnCurve, .. })
        ));
        assert!(matches!(
            PublicKey::from_felts(&[Felt::ZERO, Felt::ZERO]),
            Err(DecodeError::Point { source: crate::PointError::Identity, .. })
        ));
        assert!(matches!(PublicKey::from_felts(&[x]), Err(DecodeError::WrongLength { expected: 2, got: 1 })));
        let json = serde_json::to_string(&pk).expect("ser");
        let back: PublicKey = serde_json::from_str(&json).expect("de");
        assert_eq!(back, pk);
    }
}
