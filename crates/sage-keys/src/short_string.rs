//! Cairo short strings: up to 31 ASCII bytes packed big-endian into one felt.

use starknet_types_core::felt::Felt;

/// Why a string is not a Cairo short string, or a felt not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShortStringError {
    /// More than 31 bytes.
    #[error("short string {0:?} is longer than 31 bytes")]
    TooLong(String),
    /// A byte outside printable ASCII.
    #[error("short string contains a non-ASCII or control byte at position {0}")]
    NotAscii(usize),
}

/// Encodes `s` (≤ 31 printable ASCII bytes) as a felt: `'SN_SEPOLIA'` → `0x534e5f5345504f4c4941`.
pub fn short_string(s: &str) -> Result<Felt, ShortStringError> {
    if s.len() > 31 {
        return Err(ShortStringError::TooLong(s.to_owned()));
    }
    if let Some(i) = s.bytes().position(|b| !(0x20..0x7f).contains(&b)) {
        return Err(ShortStringError::NotAscii(i));
    }
    let mut bytes = [0u8; 32];
    bytes[32 - s.len()..].copy_from_slice(s.as_bytes());
    Ok(Felt::from_bytes_be(&bytes))
}

/// Decodes a felt written by [`short_string`]; leading zero bytes are padding.
pub fn parse_short_string(felt: Felt) -> Result<String, ShortStringError> {
    let bytes = felt.to_bytes_be();
    if bytes[0] != 0 {
        return Err(ShortStringError::TooLong(format!("{felt:#x}")));
    }
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(32);
    let text = &bytes[start..];
    if let Some(i) = text.iter().position(|b| !(0x20..0x7f).contains(b)) {
        return Err(ShortStringError::NotAscii(i));
    }
    Ok(text.iter().map(|&b| b as char).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_chain_ids() {
        assert_eq!(short_string("SN_MAIN").unwrap(), Felt::from_hex_unchecked("0x534e5f4d41494e"));
        assert_eq!(short_string("SN_SEPOLIA").unwrap(), Felt::from_hex_unchecked("0x534e5f5345504f4c4941"));
        assert_eq!(parse_short_string(Felt::from_hex_unchecked("0x534e5f4d41494e")).unwrap(), "SN_MAIN");
        assert_eq!(short_string("").unwrap(), Felt::ZERO);
        assert_eq!(parse_short_string(Felt::ZERO).unwrap(), "");
    }

    #[test]
    fn bad_strings_are_named() {
        let long = "a".repeat(32);
        assert_eq!(short_string(&long), Err(ShortStringError::TooLong(long.clone())));
        assert!(short_string(&"a".repeat(31)).is_ok());
        assert_eq!(short_string("ok\u{e9}"), Err(ShortStringError::NotAscii(2)));
        assert_eq!(short_string("a\nb"), Err(ShortStringError::NotAscii(1)));
        assert!(parse_short_string(Felt::from(1u8)).is_err(), "byte 0x01 is not printable");
        assert!(parse_short_string(Felt::MAX).is_err());
    }

    #[test]
    fn roundtrip() {
        for s in ["SAGE_VOTE_V1", "STARKNET_CONTRACT_ADDRESS", " ~!", &"z".repeat(31)] {
            assert_eq!(parse_short_string(short_string(s).unwrap()).unwrap(), s);
        }
    }
}
