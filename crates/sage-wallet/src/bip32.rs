//! BIP-32 private-key derivation on secp256k1 (what Starknet wallets run before grindKey): path
//! parsing here, the derivation itself by RustCrypto's `bip32` crate.

use core::fmt;
use core::str::FromStr;

use zeroize::Zeroizing;

use crate::error::DeriveError;

/// Offset of hardened indices (`i'`).
pub const HARDENED: u32 = 1 << 31;

/// A parsed derivation path such as `m/44'/9004'/0'/0/0` (`'`, `h` or `H` marks hardened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerivationPath(Vec<u32>);

impl DerivationPath {
    /// The path's indices (hardened ones include [`HARDENED`]).
    pub fn indices(&self) -> &[u32] {
        &self.0
    }

    /// Builds a path from indices.
    pub fn from_indices(indices: Vec<u32>) -> Self {
        Self(indices)
    }
}

impl FromStr for DerivationPath {
    type Err = DeriveError;
    fn from_str(s: &str) -> Result<Self, DeriveError> {
        let err = |reason| DeriveError::InvalidPath { path: s.to_string(), reason };
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(err("must start with \"m\""));
        }
        let mut out = Vec::new();
        for part in parts {
            let (digits, hardened) = match part.strip_suffix(['\'', 'h', 'H']) {
                Some(d) => (d, true),
                None => (part, false),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("each component must be a decimal number, optionally followed by '"));
            }
            let v: u32 = digits.parse().map_err(|_| err("component out of range"))?;
            if v >= HARDENED {
                return Err(err("component must be below 2^31"));
            }
            out.push(if hardened { v | HARDENED } else { v });
        }
        Ok(Self(out))
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for &i in &self.0 {
            if i >= HARDENED {
                write!(f, "/{}'", i - HARDENED)?;
            } else {
                write!(f, "/{i}")?;
            }
        }
        Ok(())
    }
}

/// An extended private key (key + chain code): RustCrypto's [`bip32`] over `k256`, with Sage's
/// errors. Zeroized on drop; `Debug` redacts.
#[derive(Clone)]
pub struct ExtendedPrivateKey {
    inner: bip32::ExtendedPrivateKey<k256::SecretKey>,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for ExtendedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExtendedPrivateKey(<redacted>)")
    }
}

impl ExtendedPrivateKey {
    fn wrap(inner: bip32::ExtendedPrivateKey<k256::SecretKey>) -> Self {
        let key = Zeroizing::new(inner.to_bytes());
        Self { inner, key }
    }

    /// The master key from a seed: `I = HMAC-SHA512("Bitcoin seed", seed)`. Seeds are 16, 32 or
    /// 64 bytes (BIP-39 seeds are 64).
    pub fn from_seed(seed: &[u8]) -> Result<Self, DeriveError> {
        if ![16, 32, 64].contains(&seed.len()) {
            return Err(DeriveError::BadSeedLength(seed.len()));
        }
        bip32::ExtendedPrivateKey::new(seed).map(Self::wrap).map_err(|_| DeriveError::InvalidChildKey(0))
    }

    /// The child at `index` (hardened if `index >= 2^31`).
    pub fn derive_child(&self, index: u32) -> Result<Self, DeriveError> {
        self.inner
            .derive_child(bip32::ChildNumber(index))
            .map(Self::wrap)
            .map_err(|_| DeriveError::InvalidChildKey(index))
    }

    /// Derives along a path.
    pub fn derive_path(&self, path: &DerivationPath) -> Result<Self, DeriveError> {
        let mut k = self.clone();
        for &i in path.indices() {
            k = k.derive_child(i)?;
        }
        Ok(k)
    }

    /// The 32-byte private key.
    pub fn private_key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The chain code.
    pub fn chain_code(&self) -> &[u8; 32] {
        &self.inner.attrs().chain_code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let v = hex::decode(s).expect("hex");
        v.try_into().expect("32 bytes")
    }

    /// BIP-32 test vector 1 (seed 000102…0f), private keys along m/0'/1/2'/2/1000000000.
    #[test]
    fn bip32_test_vector_1() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").expect("hex");
        let m = ExtendedPrivateKey::from_seed(&seed).expect("master");
        assert_eq!(*m.private_key(), hex32("e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"));
        assert_eq!(*m.chain_code(), hex32("873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508"));
        let expected = [
            ("m/0'", "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"),
            ("m/0'/1", "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"),
            ("m/0'/1/2'", "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"),
            ("m/0'/1/2'/2", "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4"),
            ("m/0'/1/2'/2/1000000000", "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"),
        ];
        for (path, key) in expected {
            let p: DerivationPath = path.parse().expect("path");
            assert_eq!(p.to_string(), path);
            assert_eq!(*m.derive_path(&p).expect("derive").private_key(), hex32(key), "{path}");
        }
    }

    #[test]
    fn path_parsing() {
        let p: DerivationPath = "m/44'/9004h/0H/0/7".parse().expect("path");
        assert_eq!(p.indices(), &[44 | HARDENED, 9004 | HARDENED, HARDENED, 0, 7]);
        for bad in ["", "44'/0", "m/", "m/x", "m/1''", "m/2147483648", "m/-1"] {
            assert!(bad.parse::<DerivationPath>().is_err(), "{bad:?}");
        }
        assert_eq!("m".parse::<DerivationPath>().expect("root").indices(), &[] as &[u32]);
        assert!(matches!(ExtendedPrivateKey::from_seed(&[0u8; 8]), Err(DeriveError::BadSeedLength(8))));
        assert!(matches!(ExtendedPrivateKey::from_seed(&[1u8; 20]), Err(DeriveError::BadSeedLength(20))));
        let m = ExtendedPrivateKey::from_seed(&[1u8; 32]).expect("master");
        assert_eq!(format!("{m:?}"), "ExtendedPrivateKey(<redacted>)");
    }
}
