//! The one Stark key of Sage.
//!
//! Workers, validators, coordinators and governance all sign with the same kind of key: a Stark
//! curve scalar whose public key is the x coordinate of `sk·G`, signing with Stark ECDSA and `k`
//! from RFC 6979 (as cairo-lang, starknet-crypto and every Starknet wallet do), checked on-chain by
//! `check_ecdsa_signature`. This crate is that key and nothing more, at the bottom of the crate
//! graph: [`StarkKey`] (zeroizing, never printed), [`Signature`], [`verify_signature`], the curve
//! constants, Cairo short strings, and the counterfactual address of the OpenZeppelin account a key
//! controls.
//!
//! ```
//! use sage_keys::{Felt, StarkKey, verify_signature};
//!
//! let key = StarkKey::from_random()?;
//! let message = Felt::from(0x5a6eu32);
//! let signature = key.sign(message)?;
//! assert_eq!(signature, key.sign(message)?, "RFC 6979: deterministic");
//! assert!(verify_signature(key.public_key(), message, &signature));
//! assert!(!verify_signature(key.public_key(), message + Felt::ONE, &signature));
//!
//! // The account this key controls, deployed with salt = public key.
//! let address = sage_keys::oz_account_address(key.public_key(), key.public_key());
//! assert_ne!(address, Felt::ZERO);
//! assert_eq!(sage_keys::short_string("SN_SEPOLIA")?, Felt::from_hex_unchecked("0x534e5f5345504f4c4941"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `signer`: implements `starknet-rust`'s `Signer` trait for [`StarkKey`], so a
//!   `SingleOwnerAccount` (and `sage-chain`'s `SageAccount`) signs transactions with it.
//!
//! # Secrets
//!
//! The secret scalar lives in a zeroizing buffer and `Debug` prints only the public key. The
//! curve library's temporaries are not zeroized, and Stark ECDSA there is not constant time.

mod address;
mod key;
mod key_file;
mod short_string;
#[cfg(feature = "signer")]
mod signer;

pub use address::{OZ_ACCOUNT_CLASS_HASH, account_address, oz_account_address};
pub use key::{CURVE_ORDER, ECDSA_BOUND, SignError, Signature, StarkKey, verify_signature};
pub use key_file::{KeyFileError, read_key_file};
pub use short_string::{ShortStringError, parse_short_string, short_string};
pub use starknet_types_core::felt::Felt;
