//! Key files: a Stark private key as hex on the first line of a file the operator keeps private
//! (mode 0600). Coordinators and validators read their account keys this way, never from argv.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{Felt, SignError, StarkKey};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("reading the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The first line is not a `0x`-hex felt.
    #[error("{path} does not hold a hex Stark private key on its first line")]
    NotHex {
        /// The file.
        path: PathBuf,
    },
    /// The value is not a usable private key (zero or above the curve order).
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SignError,
    },
}

/// Reads the Stark private key on the first line of `path`. The text read is zeroized when
/// dropped; the error never contains the key.
pub fn read_key_file(path: &Path) -> Result<StarkKey, KeyFileError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: path.to_path_buf(), source })?,
    );
    let line = text.lines().next().unwrap_or_default().trim();
    if !line.starts_with("0x") {
        return Err(KeyFileError::NotHex { path: path.to_path_buf() });
    }
    let secret = Felt::from_hex(line).map_err(|_| KeyFileError::NotHex { path: path.to_path_buf() })?;
    StarkKey::from_secret(secret).map_err(|source| KeyFileError::Invalid { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_and_bad_ones_are_named_without_the_secret() {
        let dir = std::env::temp_dir().join(format!("sage-keys-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.key");
        std::fs::write(&good, "0x1234abcd\nignored second line\n").unwrap();
        let key = read_key_file(&good).unwrap();
        assert_eq!(key.public_key(), StarkKey::from_secret(Felt::from(0x1234abcdu64)).unwrap().public_key());
        let bad = dir.join("bad.key");
        std::fs::write(&bad, "1234abcd-not-hex\n").unwrap();
        let err = read_key_file(&bad).unwrap_err();
        assert!(matches!(err, KeyFileError::NotHex { .. }));
        assert!(!err.to_string().contains("1234abcd"), "{err}");
        std::fs::write(&bad, "0x0\n").unwrap();
        assert!(matches!(read_key_file(&bad).unwrap_err(), KeyFileError::Invalid { .. }));
        assert!(matches!(read_key_file(&dir.join("missing.key")).unwrap_err(), KeyFileError::Read { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
