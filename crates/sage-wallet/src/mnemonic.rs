//! BIP-39 English mnemonics.

use core::fmt;

use zeroize::Zeroizing;

use crate::error::{MnemonicError, RngError};

/// A BIP-39 English mnemonic. `Debug` prints only the word count.
///
/// The phrase is secret. [`Mnemonic::phrase`] and [`Mnemonic::to_seed`] return zeroizing
/// buffers; the word indices inside the `bip39` type are not zeroized on drop (that crate offers
/// no hook for it).
#[derive(Clone, PartialEq, Eq)]
pub struct Mnemonic(bip39::Mnemonic);

impl Mnemonic {
    /// Words in a generated mnemonic (256 bits of entropy).
    pub const GENERATED_WORDS: usize = 24;

    /// A fresh 24-word mnemonic from 256 bits of OS randomness.
    pub fn generate() -> Result<Self, RngError> {
        let mut entropy = Zeroizing::new([0u8; 32]);
        getrandom::fill(entropy.as_mut()).map_err(RngError)?;
        Ok(Self::from_entropy_32(&entropy))
    }

    /// The 24-word mnemonic for 32 bytes of entropy (BIP-39 test vectors use this).
    pub fn from_entropy_32(entropy: &[u8; 32]) -> Self {
        // 32 bytes is always a valid BIP-39 entropy length.
        match bip39::Mnemonic::from_entropy_in(bip39::Language::English, entropy) {
            Ok(m) => Self(m),
            Err(_) => unreachable!("32 bytes of entropy are always valid for BIP-39"),
        }
    }

    /// Parses a phrase: words separated by any whitespace, case-insensitive. Errors name the
    /// first unknown word (with its position) or report a bad checksum.
    pub fn parse(phrase: &str) -> Result<Self, MnemonicError> {
        let lowered = Zeroizing::new(phrase.to_lowercase());
        let words: Vec<&str> = lowered.split_whitespace().collect();
        if !matches!(words.len(), 12 | 15 | 18 | 21 | 24) {
            return Err(MnemonicError::BadWordCount(words.len()));
        }
        let normalized = Zeroizing::new(words.join(" "));
        bip39::Mnemonic::parse_in(bip39::Language::English, normalized.as_str()).map(Self).map_err(|e| match e {
            bip39::Error::UnknownWord(i) => MnemonicError::UnknownWord {
                position: i + 1,
                word: words.get(i).map(|w| w.to_string()).unwrap_or_default(),
            },
            bip39::Error::BadWordCount(n) => MnemonicError::BadWordCount(n),
            bip39::Error::InvalidChecksum => MnemonicError::InvalidChecksum,
            other => MnemonicError::Other(other.to_string()),
        })
    }

    /// The phrase, words separated by single spaces.
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.to_string())
    }

    /// Number of words.
    pub fn word_count(&self) -> usize {
        self.0.word_count()
    }

    /// The 64-byte BIP-39 seed. `passphrase` is the optional BIP-39 passphrase ("25th word"),
    /// *not* the keystore password: it changes every derived key; use `""` for none.
    pub fn to_seed(&self, passphrase: &str) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.0.to_seed(passphrase))
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mnemonic(<{} words redacted>)", self.word_count())
    }
}
