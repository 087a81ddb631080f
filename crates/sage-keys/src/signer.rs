//! `starknet-rust`'s `Signer` for [`StarkKey`] (feature `signer`).

use core::convert::Infallible;

use async_trait::async_trait;
use starknet_rust_signers::{Signer, SignerInteractivityContext, VerifyingKey};
use starknet_types_core::felt::Felt;

use crate::{SignError, StarkKey};

#[async_trait]
impl Signer for StarkKey {
    type GetPublicKeyError = Infallible;
    type SignError = SignError;

    async fn get_public_key(&self) -> Result<VerifyingKey, Infallible> {
        Ok(VerifyingKey::from_scalar(self.public_key()))
    }

    async fn sign_hash(&self, hash: &Felt) -> Result<starknet_rust_crypto::Signature, SignError> {
        self.sign(*hash).map(Into::into)
    }

    fn is_interactive(&self, _context: SignerInteractivityContext<'_>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trait_signs_like_the_key() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let key = StarkKey::from_secret(Felt::from(0xabcdefu64)).unwrap();
        let hash = Felt::from(42u8);
        let (pk, sig) =
            rt.block_on(async { (key.get_public_key().await.unwrap(), key.sign_hash(&hash).await.unwrap()) });
        assert_eq!(pk.scalar(), key.public_key());
        assert!(pk.verify(&hash, &sig).unwrap());
        assert_eq!(crate::Signature::from(sig), key.sign(hash).unwrap());
    }
}
