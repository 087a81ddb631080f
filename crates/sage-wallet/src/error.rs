//! Typed errors, one per family of operation.

use std::path::PathBuf;

use thiserror::Error;

/// The operating system's random number generator failed.
#[derive(Debug, Error)]
#[error("operating-system randomness unavailable: {0}")]
pub struct RngError(pub getrandom::Error);

/// A mnemonic phrase was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MnemonicError {
    /// A word is not in the BIP-39 English word list.
    #[error("word {position} (\"{word}\") is not in the BIP-39 English word list")]
    UnknownWord {
        /// 1-based position in the phrase.
        position: usize,
        /// The offending word, as typed (lower-cased).
        word: String,
    },
    /// The phrase does not have 12, 15, 18, 21 or 24 words.
    #[error("mnemonic has {0} words; expected 12, 15, 18, 21 or 24 (Sage generates 24)")]
    BadWordCount(usize),
    /// All words are valid but the checksum (last word) does not match.
    #[error("mnemonic checksum does not match: a word is wrong or the words are out of order")]
    InvalidChecksum,
    /// Any other rejection by the BIP-39 implementation.
    #[error("invalid mnemonic: {0}")]
    Other(String),
}

/// Key derivation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DeriveError {
    /// A derivation path string could not be parsed.
    #[error("invalid derivation path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// BIP-32 produced an invalid key at this step (probability about 2^-127); BIP-32 says to
    /// skip to the next index.
    #[error("BIP-32 derivation produced an invalid key at index {0}")]
    InvalidChildKey(u32),
    /// The seed is not 16, 32 or 64 bytes long.
    #[error("BIP-32 seed must be 16, 32 or 64 bytes, got {0}")]
    BadSeedLength(usize),
    /// The account index is not below 2^31.
    #[error("account index {0} must be below 2^31")]
    BadIndex(u32),
    /// The derived key is zero (probability about 2^-251).
    #[error("derived key is zero")]
    ZeroKey,
}

/// A keystore could not be written or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The password is wrong (the MAC does not match).
    #[error("wrong keystore password")]
    WrongPassword,
    /// The file exists and `force` was not set.
    #[error("{0} already exists; refusing to overwrite it without --force")]
    AlreadyExists(PathBuf),
    /// Reading or writing the file failed.
    #[error("keystore I/O on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid keystore JSON.
    #[error("keystore is not valid Web3 Secret Storage v3 JSON: {0}")]
    Malformed(String),
    /// The keystore uses a KDF, cipher or parameters this implementation does not accept.
    #[error("unsupported keystore parameters: {0}")]
    Unsupported(String),
    /// The decrypted key is not a valid Stark or ElGamal key.
    #[error("keystore holds an invalid key: {0}")]
    InvalidKey(&'static str),
    /// The keystore holds only a Stark key (e.g. one made by starkli), no Sage ElGamal key.
    #[error("keystore has no Sage ElGamal key (created by another tool?)")]
    NoElGamalKey,
    /// Invalid scrypt parameters were requested.
    #[error("invalid scrypt parameters: {0}")]
    BadScryptParams(&'static str),
    /// Randomness for salt/IV failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}
