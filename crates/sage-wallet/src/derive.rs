//! Stark key derivation compatible with real wallets, plus Sage's ElGamal key path.
//!
//! | scheme | path from the BIP-39 seed | then |
//! |---|---|---|
//! | [`Derivation::Braavos`] (default) | `m/44'/9004'/0'/0/i` | grindKey |
//! | [`Derivation::ArgentX`] | Ethereum key at `m/44'/60'/0'/0/0`; its 32 bytes are a new BIP-32 seed → `m/44'/9004'/0'/0/i` | grindKey |
//! | [`Derivation::Eip2645`] (Ledger, legacy Argent X) | `m/2645'/1195502025'/1148870696'/0'/0'/i` | grindKey |
//! | ElGamal key ([`elgamal_path`]) | `m/2645'/1195502025'/628910858'/0'/0'/i` | grindKey |
//!
//! 9004 is Starknet's SLIP-44 coin type. In EIP-2645 paths, `1195502025 = path_hash("starknet")`,
//! `1148870696 = path_hash("argentx")` and Sage's ElGamal application is
//! `628910858 = path_hash("sage-elgamal")`, where `path_hash` is the low 31 bits of SHA-256.
//! The ElGamal key thus lives on its own hardened branch: knowing a Stark key (even an
//! extended one) reveals nothing about it, and one mnemonic restores both.

use core::fmt;
use core::str::FromStr;

use obelysk_elgamal::CURVE_ORDER;
use obelysk_elgamal::crypto_bigint::{NonZero, U256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starknet_types_core::felt::Felt;
use zeroize::Zeroizing;

use crate::bip32::{DerivationPath, ExtendedPrivateKey, HARDENED};
use crate::error::DeriveError;

/// SLIP-44 coin type of Starknet.
pub const STARKNET_COIN_TYPE: u32 = 9004;
/// EIP-2645 application name of Sage's ElGamal key.
pub const ELGAMAL_APPLICATION: &str = "sage-elgamal";

/// How the Stark account key is derived from the mnemonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Derivation {
    /// Braavos: `m/44'/9004'/0'/0/i` from the BIP-39 seed.
    #[default]
    Braavos,
    /// Argent X: via the Ethereum key at `m/44'/60'/0'/0/0`.
    ArgentX,
    /// EIP-2645 (Ledger, legacy Argent X): `m/2645'/1195502025'/1148870696'/0'/0'/i`.
    Eip2645,
}

impl Derivation {
    /// All schemes.
    pub const ALL: [Derivation; 3] = [Derivation::Braavos, Derivation::ArgentX, Derivation::Eip2645];

    /// The stable name used in CLIs and keystores.
    pub fn name(self) -> &'static str {
        match self {
            Derivation::Braavos => "braavos",
            Derivation::ArgentX => "argent-x",
            Derivation::Eip2645 => "eip-2645",
        }
    }
}

impl fmt::Display for Derivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Derivation {
    type Err = DeriveError;
    fn from_str(s: &str) -> Result<Self, DeriveError> {
        Derivation::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| DeriveError::InvalidPath {
            path: s.to_string(),
            reason: "unknown derivation scheme (expected braavos, argent-x or eip-2645)",
        })
    }
}

/// EIP-2645's `path_hash`: the low 31 bits of SHA-256 of the name.
pub fn path_hash(name: &str) -> u32 {
    let h = Sha256::digest(name.as_bytes());
    u32::from_be_bytes([h[28], h[29], h[30], h[31]]) & (HARDENED - 1)
}

fn check_index(index: u32) -> Result<(), DeriveError> {
    if index >= HARDENED { Err(DeriveError::BadIndex(index)) } else { Ok(()) }
}

fn eip2645(application: &str, index: u32) -> DerivationPath {
    DerivationPath::from_indices(vec![
        2645 | HARDENED,
        path_hash("starknet") | HARDENED,
        path_hash(application) | HARDENED,
        HARDENED,
        HARDENED,
        index,
    ])
}

/// The Stark key path for a scheme and account index (for Argent X, the path below the
/// intermediate Ethereum-key seed).
pub fn stark_path(derivation: Derivation, index: u32) -> Result<DerivationPath, DeriveError> {
    check_index(index)?;
    Ok(match derivation {
        Derivation::Braavos | Derivation::ArgentX => {
            DerivationPath::from_indices(vec![44 | HARDENED, STARKNET_COIN_TYPE | HARDENED, HARDENED, 0, index])
        }
        Derivation::Eip2645 => eip2645("argentx", index),
    })
}

/// The ElGamal key path `m/2645'/path_hash("starknet")'/path_hash("sage-elgamal")'/0'/0'/i`.
pub fn elgamal_path(index: u32) -> Result<DerivationPath, DeriveError> {
    check_index(index)?;
    Ok(eip2645(ELGAMAL_APPLICATION, index))
}

/// grindKey: `limit = 2^256 − (2^256 mod n)`; for `i = 0, 1, …`,
/// `h = SHA-256(key ‖ minimal_be_bytes(i))` (`i = 0` is the single byte `0x00`); returns
/// `h mod n` for the first `h < limit`. The 32-byte key keeps its leading zeros.
pub fn grind_key(key: &[u8; 32]) -> Felt {
    let Some(n) = NonZero::new(CURVE_ORDER).into_option() else { unreachable!("the curve order is non-zero") };
    // 2^256 mod n = (2^256 − n) mod n, computed with wrapping arithmetic.
    let two256_mod_n = U256::ZERO.wrapping_sub(&CURVE_ORDER).rem_vartime(&n);
    let limit = U256::ZERO.wrapping_sub(&two256_mod_n);
    let mut i: u64 = 0;
    loop {
        let be = i.to_be_bytes();
        let first = be.iter().position(|&b| b != 0).unwrap_or(7);
        let mut hasher = Sha256::new();
        hasher.update(key);
        hasher.update(&be[first..]);
        let h = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
        let v = U256::from_be_slice(h.as_ref());
        if v < limit {
            let r = v.rem_vartime(&n);
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(r.to_be_bytes().as_slice());
            return Felt::from_bytes_be(&out);
        }
        i += 1;
    }
}

/// The Stark private key for `derivation` and account `index` from a BIP-39 seed.
pub fn stark_private_key(seed: &[u8; 64], derivation: Derivation, index: u32) -> Result<Felt, DeriveError> {
    let path = stark_path(derivation, index)?;
    let root = ExtendedPrivateKey::from_seed(seed)?;
    let leaf = match derivation {
        Derivation::ArgentX => {
            let eth_path = DerivationPath::from_indices(vec![44 | HARDENED, 60 | HARDENED, HARDENED, 0, 0]);
            let eth = root.derive_path(&eth_path)?;
            ExtendedPrivateKey::from_seed(eth.private_key())?.derive_path(&path)?
        }
        Derivation::Braavos | Derivation::Eip2645 => root.derive_path(&path)?,
    };
    nonzero(grind_key(leaf.private_key()))
}

/// The ElGamal secret key for account `index` from a BIP-39 seed (see [`elgamal_path`]).
pub fn elgamal_secret_key(seed: &[u8; 64], index: u32) -> Result<obelysk_elgamal::SecretKey, DeriveError> {
    let path = elgamal_path(index)?;
    let leaf = ExtendedPrivateKey::from_seed(seed)?.derive_path(&path)?;
    let felt = nonzero(grind_key(leaf.private_key()))?;
    obelysk_elgamal::SecretKey::from_felt(&felt).map_err(|_| DeriveError::ZeroKey)
}

fn nonzero(f: Felt) -> Result<Felt, DeriveError> {
    if f == Felt::ZERO { Err(DeriveError::ZeroKey) } else { Ok(f) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grind_key_vector() {
        // Vector from Argent X's test suite (also in ecosystem.md).
        let key: [u8; 32] = hex::decode("86F3E7293141F20A8BAFF320E8EE4ACCB9D4A4BF2B4D295E8CEE784DB46E0519")
            .expect("hex")
            .try_into()
            .expect("32");
        assert_eq!(
            grind_key(&key),
            Felt::from_hex_unchecked("0x5c8c8683596c732541a59e03007b2d30dbbbb873556fe65b5fb63c16688f941")
        );
    }

    #[test]
    fn path_hash_matches_argent() {
        assert_eq!(path_hash("starknet"), 1195502025);
        assert_eq!(path_hash("argentx"), 1148870696);
        assert_eq!(path_hash("starkex"), 579218131);
        assert_eq!(path_hash(ELGAMAL_APPLICATION), 628910858);
        assert_eq!(
            elgamal_path(3).expect("path").to_string(),
            format!("m/2645'/1195502025'/{}'/0'/0'/3", path_hash(ELGAMAL_APPLICATION))
        );
    }

    #[test]
    fn paths_are_as_documented() {
        assert_eq!(stark_path(Derivation::Braavos, 2).expect("p").to_string(), "m/44'/9004'/0'/0/2");
        assert_eq!(
            stark_path(Derivation::Eip2645, 0).expect("p").to_string(),
            "m/2645'/1195502025'/1148870696'/0'/0'/0"
        );
        assert!(matches!(stark_path(Derivation::Braavos, HARDENED), Err(DeriveError::BadIndex(_))));
        for d in Derivation::ALL {
            assert_eq!(d.name().parse::<Derivation>().expect("roundtrip"), d);
        }
        assert!("metamask".parse::<Derivation>().is_err());
    }
}
