//! API keys: `sage_<prefix>_<secret>`, 8 hex digits of public prefix and 32 random bytes of
//! secret from the OS. Only the sha256 of the secret is stored; a presented key is looked up by
//! its prefix and its secret compared in constant time.

use sha2::{Digest, Sha256};

use crate::store::ApiKeyRow;

/// A freshly made key: the full text is shown once, the row is what is stored.
#[derive(Debug)]
pub struct NewKey {
    /// `sage_<prefix>_<secret>` (give it to the client; it is not stored).
    pub text: String,
    /// What to store.
    pub row: ApiKeyRow,
}

/// Why a presented key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `sage_<8 hex>_<64 hex>`.
    #[error("API key is malformed (expected sage_<prefix>_<secret>)")]
    Malformed,
    /// No key with that prefix, or a wrong secret.
    #[error("unknown API key")]
    Unknown,
    /// Revoked.
    #[error("API key {0} was revoked")]
    Revoked(String),
}

/// Lowercase hex sha256 of `bytes` (API key secrets, blob addresses).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a key named `name` with the OS's randomness.
pub fn generate(name: &str, rate_per_min: u32, quota: Option<u64>, now_ms: u64) -> Result<NewKey, getrandom::Error> {
    let mut bytes = [0u8; 36];
    getrandom::fill(&mut bytes)?;
    let prefix: String = bytes[..4].iter().map(|b| format!("{b:02x}")).collect();
    let secret: String = bytes[4..].iter().map(|b| format!("{b:02x}")).collect();
    let row = ApiKeyRow {
        id: 0,
        name: name.to_owned(),
        prefix: prefix.clone(),
        secret_hash: sha256_hex(secret.as_bytes()),
        rate_per_min,
        quota,
        used: 0,
        created_ms: now_ms,
        revoked_ms: None,
    };
    Ok(NewKey { text: format!("sage_{prefix}_{secret}"), row })
}

/// Splits a presented key into prefix and secret.
pub fn parse(text: &str) -> Result<(&str, &str), KeyError> {
    let rest = text.strip_prefix("sage_").ok_or(KeyError::Malformed)?;
    let (prefix, secret) = rest.split_once('_').ok_or(KeyError::Malformed)?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !hex(prefix, 8) || !hex(secret, 64) {
        return Err(KeyError::Malformed);
    }
    Ok((prefix, secret))
}

/// Checks `secret` against the stored row.
pub fn check(row: &ApiKeyRow, secret: &str) -> Result<(), KeyError> {
    let presented = sha256_hex(secret.as_bytes());
    // Constant time over the (equal-length) hex digests.
    let diff = presented.bytes().zip(row.secret_hash.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 || presented.len() != row.secret_hash.len() {
        return Err(KeyError::Unknown);
    }
    if row.revoked_ms.is_some() {
        return Err(KeyError::Revoked(row.prefix.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_check() {
        let key = generate("ci", 60, Some(5), 1).unwrap();
        let (prefix, secret) = parse(&key.text).unwrap();
        assert_eq!(prefix, key.row.prefix);
        check(&key.row, secret).unwrap();
        assert!(!key.row.secret_hash.contains(secret), "the secret is not stored");
        // Two keys differ (OS randomness).
        assert_ne!(generate("ci", 60, None, 1).unwrap().text, key.text);
    }

    #[test]
    fn wrong_malformed_and_revoked_keys_are_refused() {
        let key = generate("ci", 60, None, 1).unwrap();
        let (_, secret) = parse(&key.text).unwrap();
        let mut wrong = secret.to_owned();
        wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
        assert_eq!(check(&key.row, &wrong), Err(KeyError::Unknown));
        for bad in ["", "sage_", "sage_abc_def", "token", &key.text.to_uppercase(), &format!("{}0", key.text)] {
            assert_eq!(parse(bad), Err(KeyError::Malformed), "{bad}");
        }
        let revoked = ApiKeyRow { revoked_ms: Some(2), ..key.row.clone() };
        assert_eq!(check(&revoked, secret), Err(KeyError::Revoked(key.row.prefix)));
    }
}
