//! Bytes as lowercase hex: `[u8; 32]` digests as `0x` and 64 digits in serde (one encoding per
//! value, so signed payloads round-trip byte for byte), and the helpers the wire types share.

use serde::{Deserialize, Deserializer, Serializer, de::Error};

/// Serde: `[u8; 32]` as `0x` and 64 lowercase hex digits.
pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{}", lower_hex(bytes)))
}

/// Serde: accepts only `0x` and exactly 64 lowercase hex digits.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(d)?;
    let bytes = decode_hex(&text, 32).map_err(D::Error::custom)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| D::Error::custom("expected 32 bytes as 0x and 64 hex digits"))
}

/// `bytes` as lowercase hex, without a prefix.
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    for b in bytes {
        text.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        text.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    text
}

/// `0x` and an even number of lowercase hex digits, at most `max_bytes` bytes.
pub fn decode_hex(text: &str, max_bytes: usize) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").ok_or("expected 0x and lowercase hex digits")?;
    if !digits.len().is_multiple_of(2) {
        return Err("an odd number of hex digits".into());
    }
    if digits.len() / 2 > max_bytes {
        return Err(format!("{} bytes; at most {max_bytes}", digits.len() / 2));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(format!("{:?} is not a lowercase hex digit", char::from(c))),
    };
    digits.as_bytes().chunks_exact(2).map(|p| Ok(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_encoding_per_value() {
        assert_eq!(lower_hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(decode_hex("0x00ab7f", 3).unwrap(), vec![0x00, 0xab, 0x7f]);
        for bad in ["00ab", "0x0", "0xAB", "0xzz", "0x0a0b0c0d"] {
            assert!(decode_hex(bad, 3).is_err(), "{bad}");
        }
        #[derive(serde::Serialize, serde::Deserialize)]
        struct D(#[serde(with = "super")] [u8; 32]);
        let text = serde_json::to_string(&D([0xa5; 32])).unwrap();
        assert_eq!(text, format!("\"0x{}\"", "a5".repeat(32)));
        assert_eq!(serde_json::from_str::<D>(&text).unwrap().0, [0xa5; 32]);
        for bad in [
            format!("\"0x{}\"", "a5".repeat(31)),
            format!("\"0x{}\"", "A5".repeat(32)),
            format!("\"{}\"", "a5".repeat(32)),
        ] {
            assert!(serde_json::from_str::<D>(&bad).is_err(), "{bad}");
        }
    }
}
