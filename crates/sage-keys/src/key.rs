//! The zeroizing Stark key, its signature and verification.

use core::fmt;

use serde::{Deserialize, Serialize};
use starknet_rust_crypto::{get_public_key, rfc6979_generate_k, sign, verify};
use starknet_types_core::felt::Felt;
use zeroize::Zeroizing;

/// Order of the Stark curve's generator: valid secret keys are `1 ≤ sk < CURVE_ORDER`.
pub const CURVE_ORDER: Felt =
    Felt::from_hex_unchecked("0x0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f");

/// Stark ECDSA signs messages below 2^251 only.
pub const ECDSA_BOUND: Felt =
    Felt::from_hex_unchecked("0x0800000000000000000000000000000000000000000000000000000000000000");

/// A Stark ECDSA signature `(r, s)`, as `check_ecdsa_signature` and account contracts take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    /// r
    pub r: Felt,
    /// s
    pub s: Felt,
}

impl From<starknet_rust_crypto::Signature> for Signature {
    fn from(s: starknet_rust_crypto::Signature) -> Self {
        Self { r: s.r, s: s.s }
    }
}

impl From<Signature> for starknet_rust_crypto::Signature {
    fn from(s: Signature) -> Self {
        Self { r: s.r, s: s.s }
    }
}

/// Why a key could not be made or could not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The message is ≥ 2^251 (probability ≈ 2^-59 for a Poseidon or Pedersen output).
    #[error("message is outside the Stark ECDSA range (must be below 2^251)")]
    MessageOutOfRange,
    /// The secret is zero or not below the curve order.
    #[error("invalid Stark private key: must be in [1, curve order)")]
    InvalidKey,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

/// A Stark private key with its public key.
///
/// The secret is kept in a zeroizing buffer; `Debug` prints the public key only. Signing is
/// deterministic (RFC 6979), so it needs no randomness.
#[derive(Clone)]
pub struct StarkKey {
    secret: Zeroizing<[u8; 32]>,
    public: Felt,
}

impl fmt::Debug for StarkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StarkKey").field("public_key", &format_args!("{:#x}", self.public)).finish_non_exhaustive()
    }
}

impl PartialEq for StarkKey {
    /// Keys are equal when their public keys are (the public key determines the secret).
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

impl Eq for StarkKey {}

impl StarkKey {
    /// Wraps a secret scalar (`1 ≤ secret < CURVE_ORDER`).
    pub fn from_secret(secret: Felt) -> Result<Self, SignError> {
        if secret == Felt::ZERO || secret >= CURVE_ORDER {
            return Err(SignError::InvalidKey);
        }
        Ok(Self { secret: Zeroizing::new(secret.to_bytes_be()), public: get_public_key(&secret) })
    }

    /// A fresh key from the operating system's random number generator (rejection sampling
    /// over 252-bit candidates, so the key is uniform in `[1, CURVE_ORDER)`).
    pub fn from_random() -> Result<Self, SignError> {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut()).map_err(|_| SignError::Rng)?;
            bytes[0] &= 0x0f;
            match Self::from_secret(Felt::from_bytes_be(&bytes)) {
                Ok(key) => return Ok(key),
                Err(SignError::InvalidKey) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The public key (x coordinate of `sk·G`), as accounts and contracts register it.
    pub fn public_key(&self) -> Felt {
        self.public
    }

    /// The secret scalar. Handle with care: the returned copy is not zeroized.
    pub fn expose_secret(&self) -> Felt {
        Felt::from_bytes_be(&self.secret)
    }

    /// Signs `message` (< 2^251) with `k` from RFC 6979. When a candidate `k` gives `r = 0` or
    /// `s = 0` the next candidate is taken with an incremented seed, as cairo-lang does.
    pub fn sign(&self, message: Felt) -> Result<Signature, SignError> {
        if message >= ECDSA_BOUND {
            return Err(SignError::MessageOutOfRange);
        }
        let secret = self.expose_secret();
        let mut seed = Felt::ZERO;
        loop {
            let k = rfc6979_generate_k(&message, &secret, (seed != Felt::ZERO).then_some(&seed));
            match sign(&secret, &message, &k) {
                Ok(sig) => return Ok(Signature { r: sig.r, s: sig.s }),
                Err(_) => seed += Felt::ONE,
            }
        }
    }
}

/// Checks a Stark ECDSA signature. Malformed inputs (a public key not on the curve, `r` or `s`
/// out of range) are simply invalid.
pub fn verify_signature(public_key: Felt, message: Felt, signature: &Signature) -> bool {
    verify(&public_key, &message, &signature.r, &signature.s).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_scalar_range_are_refused() {
        assert_eq!(StarkKey::from_secret(Felt::ZERO).unwrap_err(), SignError::InvalidKey);
        assert_eq!(StarkKey::from_secret(CURVE_ORDER).unwrap_err(), SignError::InvalidKey);
        assert_eq!(StarkKey::from_secret(Felt::MAX).unwrap_err(), SignError::InvalidKey);
        assert!(StarkKey::from_secret(CURVE_ORDER - Felt::ONE).is_ok());
    }

    #[test]
    fn messages_at_or_above_the_bound_are_refused() {
        let key = StarkKey::from_secret(Felt::from(7u8)).unwrap();
        assert_eq!(key.sign(ECDSA_BOUND).unwrap_err(), SignError::MessageOutOfRange);
        assert_eq!(key.sign(Felt::MAX).unwrap_err(), SignError::MessageOutOfRange);
        assert!(key.sign(ECDSA_BOUND - Felt::ONE).is_ok());
    }

    #[test]
    fn random_keys_are_distinct_and_in_range() {
        let a = StarkKey::from_random().unwrap();
        let b = StarkKey::from_random().unwrap();
        assert_ne!(a, b);
        for k in [&a, &b] {
            assert!(k.expose_secret() != Felt::ZERO && k.expose_secret() < CURVE_ORDER);
        }
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = StarkKey::from_secret(Felt::from_hex_unchecked("0xabcdef0123456789")).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("abcdef0123456789"), "{shown}");
        assert!(shown.contains(&format!("{:x}", key.public_key())));
    }

    #[test]
    fn tampered_signatures_fail() {
        let key = StarkKey::from_secret(Felt::from(1234u32)).unwrap();
        let m = Felt::from(99u8);
        let sig = key.sign(m).unwrap();
        assert!(verify_signature(key.public_key(), m, &sig));
        assert!(!verify_signature(key.public_key(), m, &Signature { r: sig.r + Felt::ONE, ..sig }));
        assert!(!verify_signature(key.public_key(), m, &Signature { s: sig.s + Felt::ONE, ..sig }));
        assert!(!verify_signature(Felt::from(3u8), m, &sig), "a key not on the curve is invalid, not a panic");
        assert!(!verify_signature(key.public_key(), m, &Signature { r: Felt::ZERO, s: Felt::ZERO }));
    }
}
