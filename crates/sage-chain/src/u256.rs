//! Cairo `u256` ↔ felts. Sage amounts fit in `u128` (3.4·10^38 base units), so the API uses
//! `u128` and refuses a non-zero high limb instead of truncating.

use starknet_rust::core::types::Felt;

use crate::ChainError;

/// `amount` as the two felts (low, high) of a Cairo `u256`.
pub fn to_felts(amount: u128) -> [Felt; 2] {
    [Felt::from(amount), Felt::ZERO]
}

/// Reads a Cairo `u256` (low, high) from the start of `felts`.
pub fn from_felts(felts: &[Felt]) -> Result<u128, ChainError> {
    let [low, high, ..] = felts else {
        return Err(ChainError::Decode { what: "u256", reason: format!("expected 2 felts, got {}", felts.len()) });
    };
    if *high != Felt::ZERO {
        return Err(ChainError::Decode { what: "u256", reason: "value exceeds u128".into() });
    }
    u128::try_from(*low).map_err(|_| ChainError::Decode { what: "u256", reason: "low limb exceeds 128 bits".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_limits() {
        for v in [0, 1, u64::MAX as u128, u128::MAX] {
            assert_eq!(from_felts(&to_felts(v)).unwrap(), v);
        }
        assert!(from_felts(&[Felt::ONE]).is_err());
        assert!(from_felts(&[Felt::ONE, Felt::ONE]).is_err());
        assert!(from_felts(&[Felt::from(u128::MAX) + Felt::ONE, Felt::ZERO]).is_err());
    }
}
