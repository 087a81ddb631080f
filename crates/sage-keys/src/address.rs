//! Counterfactual addresses of OpenZeppelin accounts.

use starknet_rust_crypto::pedersen_hash;
use starknet_types_core::felt::Felt;

/// Class hash of the OpenZeppelin account (Cairo 1, OZ 1.0.0) that starknet-devnet 0.10.1
/// predeclares and Sage deploys for every key.
pub const OZ_ACCOUNT_CLASS_HASH: Felt =
    Felt::from_hex_unchecked("0x05b4b537eaa2399e3aa99c4e2e0208ebd6c71bc1467938cd52c798c601e43564");

/// `'STARKNET_CONTRACT_ADDRESS'`.
const CONTRACT_ADDRESS_PREFIX: Felt = Felt::from_hex_unchecked("0x535441524b4e45545f434f4e54524143545f41444452455353");

/// Contract addresses are reduced below 2^251 - 256.
const ADDRESS_BOUND: Felt =
    Felt::from_hex_unchecked("0x07ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff00");

/// Starknet's `compute_hash_on_elements`: a Pedersen chain from 0, closed with the length.
fn pedersen_on_elements(elements: &[Felt]) -> Felt {
    let folded = elements.iter().fold(Felt::ZERO, |acc, e| pedersen_hash(&acc, e));
    pedersen_hash(&folded, &Felt::from(elements.len()))
}

/// The address a contract of `class_hash` with `constructor_calldata = [public_key]` gets when
/// deployed with `salt` from deployer 0, i.e. by a `DEPLOY_ACCOUNT` transaction.
pub fn account_address(class_hash: Felt, public_key: Felt, salt: Felt) -> Felt {
    let calldata = pedersen_on_elements(&[public_key]);
    let raw = pedersen_on_elements(&[CONTRACT_ADDRESS_PREFIX, Felt::ZERO, salt, class_hash, calldata]);
    // A Pedersen output is below the field prime, which is below twice the bound.
    if raw >= ADDRESS_BOUND { raw - ADDRESS_BOUND } else { raw }
}

/// The address of the OpenZeppelin account ([`OZ_ACCOUNT_CLASS_HASH`]) for `public_key` deployed
/// with `salt`. Sage wallets use `salt = public_key`, so the mnemonic alone recovers the address.
pub fn oz_account_address(public_key: Felt, salt: Felt) -> Felt {
    account_address(OZ_ACCOUNT_CLASS_HASH, public_key, salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_the_short_string() {
        assert_eq!(CONTRACT_ADDRESS_PREFIX, crate::short_string("STARKNET_CONTRACT_ADDRESS").unwrap());
    }

    /// starknet-devnet's predeployed account 0 for `--seed 0`: devnet computes it with salt 20 and
    /// the legacy class hash 0x3fcb…854 (an independent address and public-key vector).
    #[test]
    fn devnet_seed0_predeployed_account() {
        let key = crate::StarkKey::from_secret(Felt::from_hex_unchecked("0x71d7bb07b9a64f6f78ac4c816aff4da9")).unwrap();
        assert_eq!(
            key.public_key(),
            Felt::from_hex_unchecked("0x039d9e6ce352ad4530a0ef5d5a18fd3303c3606a7fa6ac5b620020ad681cc33b")
        );
        let legacy = Felt::from_hex_unchecked("0x3FCBF77B28C96F4F2FB5BD2D176AB083A12A5E123ADEB0DE955D7EE228C9854");
        assert_eq!(
            account_address(legacy, key.public_key(), Felt::from(20u8)),
            Felt::from_hex_unchecked("0x064b48806902a367c8598f4f95c305e8c1a1acba5f082d294a43793113115691")
        );
    }

    #[test]
    fn every_input_changes_the_address() {
        let base = oz_account_address(Felt::ONE, Felt::TWO);
        assert_ne!(base, oz_account_address(Felt::TWO, Felt::TWO));
        assert_ne!(base, oz_account_address(Felt::ONE, Felt::ONE));
        assert_ne!(base, account_address(Felt::THREE, Felt::ONE, Felt::TWO));
        assert!(base < ADDRESS_BOUND);
    }
}
