//! Stark ECDSA (RFC 6979 nonces) behind `starknet-rust`'s [`Signer`] trait.

use core::convert::Infallible;
use core::fmt;

use async_trait::async_trait;
use starknet_rust::core::crypto::{EcdsaSignError, EcdsaVerifyError, Signature, ecdsa_sign, ecdsa_verify};
use starknet_rust::signers::{Signer, SignerInteractivityContext, VerifyingKey};
use starknet_types_core::felt::Felt;
use zeroize::Zeroizing;

use crate::error::KeyError;

/// A local Stark key that signs transaction hashes for `starknet-rust` accounts.
///
/// Signing is deterministic (RFC 6979, as cairo-lang and starknet-crypto do it, retrying with
/// a seed when `k` is invalid). The secret is held in a zeroizing buffer and `Debug` prints only
/// the public key; the curve library's temporaries are not zeroized.
#[derive(Clone)]
pub struct StarkSigner {
    secret: Zeroizing<[u8; 32]>,
    public_key: Felt,
}

impl StarkSigner {
    /// Wraps a private key in `[1, n)`.
    pub fn new(private_key: &Felt) -> Result<Self, KeyError> {
        let n = Felt::from_hex_unchecked(obelysk_elgamal::CURVE_ORDER_HEX);
        if *private_key == Felt::ZERO || *private_key >= n {
            return Err(KeyError::OutOfRange);
        }
        Ok(Self {
            secret: Zeroizing::new(private_key.to_bytes_be()),
            public_key: starknet_rust_crypto::get_public_key(private_key),
        })
    }

    /// The Stark public key (x coordinate of `sk·G`), as accounts store it.
    pub fn public_key(&self) -> Felt {
        self.public_key
    }

    /// The private key. Handle with care.
    pub fn expose_secret(&self) -> Felt {
        Felt::from_bytes_be(&self.secret)
    }

    /// Signs a message hash (`hash < 2^251`).
    pub fn sign(&self, hash: &Felt) -> Result<Signature, EcdsaSignError> {
        ecdsa_sign(&self.expose_secret(), hash).map(Into::into)
    }
}

/// Verifies a Stark ECDSA signature against a public key.
pub fn verify(public_key: &Felt, hash: &Felt, signature: &Signature) -> Result<bool, EcdsaVerifyError> {
    ecdsa_verify(public_key, hash, signature)
}

impl fmt::Debug for StarkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StarkSigner")
            .field("public_key", &format_args!("{:#x}", self.public_key))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Signer for StarkSigner {
    type GetPublicKeyError = Infallible;
    type SignError = EcdsaSignError;

    async fn get_public_key(&self) -> Result<VerifyingKey, Infallible> {
        Ok(VerifyingKey::from_scalar(self.public_key))
    }

    async fn sign_hash(&self, hash: &Felt) -> Result<Signature, EcdsaSignError> {
        self.sign(hash)
    }

    fn is_interactive(&self, _context: SignerInteractivityContext<'_>) -> bool {
        false
    }
}
