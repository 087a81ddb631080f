//! The worker wallet: a Stark account key and an ElGamal key from one mnemonic.

use std::path::Path;

use obelysk_elgamal::{PublicKey, SecretKey};
use serde::Serialize;
use starknet_types_core::felt::Felt;

use crate::derive::{self, Derivation};
use crate::error::{DeriveError, KeystoreError};
use crate::keystore::{self, KeystoreOptions, ScryptParams, WalletMetadata};
use crate::mnemonic::Mnemonic;
use sage_keys::StarkKey;

/// Public facts about a wallet, shaped for `--json` output: felts as `0x`-prefixed hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalletSummary {
    /// OpenZeppelin account address.
    pub address: String,
    /// Stark public key.
    pub public_key: String,
    /// ElGamal public key `[x, y]`.
    pub elgamal_public_key: [String; 2],
    /// Derivation scheme name, `None` for an imported key.
    pub derivation: Option<String>,
    /// Account index.
    pub account_index: u32,
    /// Keystore path, if the wallet was saved or opened from one.
    pub keystore: Option<String>,
}

/// A Stark account key, an ElGamal key and how they were derived. `Debug` prints public data only.
#[derive(Debug, Clone)]
pub struct Wallet {
    stark: StarkKey,
    elgamal: SecretKey,
    metadata: WalletMetadata,
}

impl Wallet {
    /// Derives both keys from a mnemonic. `passphrase` is the optional BIP-39 passphrase (`""`
    /// for none), never the keystore password.
    pub fn from_mnemonic(
        mnemonic: &Mnemonic,
        passphrase: &str,
        derivation: Derivation,
        account_index: u32,
    ) -> Result<Self, DeriveError> {
        let seed = mnemonic.to_seed(passphrase);
        let stark_key = derive::stark_private_key(&seed, derivation, account_index)?;
        let stark = StarkKey::from_secret(stark_key).map_err(|_| DeriveError::ZeroKey)?;
        let elgamal = derive::elgamal_secret_key(&seed, account_index)?;
        Ok(Self { stark, elgamal, metadata: WalletMetadata { derivation: Some(derivation), account_index } })
    }

    /// Assembles a wallet from existing keys.
    pub fn from_parts(stark: StarkKey, elgamal: SecretKey, metadata: WalletMetadata) -> Self {
        Self { stark, elgamal, metadata }
    }

    /// The signer for `starknet-rust` accounts.
    pub fn signer(&self) -> &StarkKey {
        &self.stark
    }

    /// The Stark public key.
    pub fn public_key(&self) -> Felt {
        self.stark.public_key()
    }

    /// The OpenZeppelin account address (salt = public key), see [`crate::oz_account_address`].
    pub fn address(&self) -> Felt {
        sage_keys::oz_account_address(self.stark.public_key(), self.stark.public_key())
    }

    /// The ElGamal secret key.
    pub fn elgamal_secret_key(&self) -> &SecretKey {
        &self.elgamal
    }

    /// The ElGamal public key.
    pub fn elgamal_public_key(&self) -> PublicKey {
        self.elgamal.public_key()
    }

    /// How the keys were derived.
    pub fn metadata(&self) -> WalletMetadata {
        self.metadata
    }

    /// Public facts for display (`keystore` is the path the wallet lives in, if any).
    pub fn summary(&self, keystore: Option<&Path>) -> WalletSummary {
        let [ex, ey] = self.elgamal_public_key().to_felts();
        WalletSummary {
            address: format!("{:#066x}", self.address()),
            public_key: format!("{:#066x}", self.public_key()),
            elgamal_public_key: [format!("{ex:#066x}"), format!("{ey:#066x}")],
            derivation: self.metadata.derivation.map(|d| d.name().to_string()),
            account_index: self.metadata.account_index,
            keystore: keystore.map(|p| p.display().to_string()),
        }
    }

    /// The keystore JSON for this wallet.
    pub fn to_keystore_json(&self, password: &str, scrypt: ScryptParams) -> Result<String, KeystoreError> {
        keystore::encrypt(&self.stark, Some((&self.elgamal, self.metadata)), password, scrypt)
    }

    /// Writes the keystore atomically with mode 0600; refuses to overwrite unless `options.force`.
    pub fn save(&self, path: &Path, password: &str, options: KeystoreOptions) -> Result<(), KeystoreError> {
        let json = self.to_keystore_json(password, options.scrypt)?;
        keystore::write_atomic(path, json.as_bytes(), options.force)
    }

    /// Opens a keystore written by Sage.
    pub fn open(path: &Path, password: &str) -> Result<Self, KeystoreError> {
        Self::from_decrypted(keystore::read(path, password)?)
    }

    /// Parses keystore JSON written by Sage.
    pub fn from_keystore_json(json: &str, password: &str) -> Result<Self, KeystoreError> {
        Self::from_decrypted(keystore::decrypt(json, password)?)
    }

    fn from_decrypted(d: keystore::DecryptedKeystore) -> Result<Self, KeystoreError> {
        let elgamal = d.elgamal.ok_or(KeystoreError::NoElGamalKey)?;
        let metadata = d.metadata.unwrap_or(WalletMetadata { derivation: None, account_index: 0 });
        Ok(Self { stark: d.stark, elgamal, metadata })
    }

    /// Re-encrypts the keystore at `path` under a new password (atomically replacing it).
    /// The keys do not change.
    pub fn change_password(
        path: &Path,
        old_password: &str,
        new_password: &str,
        scrypt: ScryptParams,
    ) -> Result<(), KeystoreError> {
        let wallet = Self::open(path, old_password)?;
        wallet.save(path, new_password, KeystoreOptions { scrypt, force: true })
    }
}
