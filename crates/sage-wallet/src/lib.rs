//! The Sage worker wallet: one BIP-39 mnemonic restores a Stark account key (Braavos, Argent X
//! or EIP-2645 derivation), its OpenZeppelin account address, and an ElGamal key for
//! confidential payments ([`obelysk_elgamal`]), all kept in a starkli-compatible keystore.
//!
//! The main type is [`Wallet`]; its Stark key is a [`StarkKey`] (from `sage-keys`), which implements `starknet-rust`'s
//! `Signer` trait so accounts can sign with it.
//!
//! ```
//! use sage_wallet::{Derivation, KeystoreOptions, Mnemonic, ScryptParams, Wallet};
//!
//! let mnemonic = Mnemonic::generate()?;
//! assert_eq!(mnemonic.word_count(), 24);
//! // The BIP-39 passphrase ("" for none) is part of the key; the keystore password is not.
//! let wallet = Wallet::from_mnemonic(&mnemonic, "", Derivation::Braavos, 0)?;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("worker.json");
//! // Tests use a cheap scrypt cost; the default (`KeystoreOptions::default()`) is 2^18.
//! let options = KeystoreOptions { scrypt: ScryptParams::insecure_for_tests(10), force: false };
//! wallet.save(&path, "correct horse", options)?;
//!
//! let reopened = Wallet::open(&path, "correct horse")?;
//! assert_eq!(reopened.address(), wallet.address());
//! assert_eq!(reopened.elgamal_public_key(), wallet.elgamal_public_key());
//! assert!(Wallet::open(&path, "wrong").is_err());
//!
//! let hash = starknet_types_core::felt::Felt::from(0x1234u32);
//! let signature = wallet.signer().sign(hash)?;
//! assert!(sage_wallet::verify_signature(wallet.public_key(), hash, &signature));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Derivation paths
//!
//! See [`derive`](mod@derive) for the table: Braavos `m/44'/9004'/0'/0/i` (default), Argent X (via the
//! Ethereum key), EIP-2645 `m/2645'/1195502025'/1148870696'/0'/0'/i`, each followed by
//! grindKey; the ElGamal key on `m/2645'/1195502025'/628910858'/0'/0'/i`.
//!
//! # Keystore
//!
//! Web3 Secret Storage v3 (scrypt + AES-128-CTR + Keccak MAC), the format starkli reads; the
//! ElGamal key rides in an extra `"sage"` object (see [`keystore`]). Default scrypt cost `2^18`.
//!
//! # Secrets
//!
//! Secret-holding types (`Mnemonic`, `StarkKey`, `ExtendedPrivateKey`, ElGamal `SecretKey`)
//! redact themselves in `Debug` and keep their bytes in zeroizing buffers where the underlying
//! crates allow; copies made inside `bip39`, `k256`, `scrypt` and the Stark curve library are
//! not zeroized. Stark ECDSA and BIP-32 public-key computation are not guaranteed constant time.
//!
//! # Features
//!
//! None.

pub mod bip32;
pub mod derive;
mod error;
pub mod keystore;
mod mnemonic;
mod wallet;

pub use derive::{Derivation, grind_key};
pub use error::{DeriveError, KeystoreError, MnemonicError, RngError};
pub use keystore::{KeystoreOptions, ScryptParams, WalletMetadata};
pub use mnemonic::Mnemonic;
pub use sage_keys::{
    OZ_ACCOUNT_CLASS_HASH, SignError, Signature, StarkKey, account_address, oz_account_address, verify_signature,
};
pub use wallet::{Wallet, WalletSummary};
