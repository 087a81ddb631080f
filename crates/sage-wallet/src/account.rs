//! Counterfactual OpenZeppelin account addresses.

use starknet_rust::core::utils::get_contract_address;
use starknet_types_core::felt::Felt;

/// Class hash of the OpenZeppelin account (Cairo 1, OZ 1.0.0) that starknet-devnet 0.10.1
/// predeclares.
pub const OZ_ACCOUNT_CLASS_HASH: Felt =
    Felt::from_hex_unchecked("0x05b4b537eaa2399e3aa99c4e2e0208ebd6c71bc1467938cd52c798c601e43564");

/// The address an OpenZeppelin account with `public_key` gets when deployed with `salt` by a
/// `DEPLOY_ACCOUNT` transaction (deployer 0, constructor calldata `[public_key]`) of
/// `class_hash`.
pub fn account_address(class_hash: &Felt, public_key: &Felt, salt: &Felt) -> Felt {
    get_contract_address(*salt, *class_hash, &[*public_key], Felt::ZERO)
}

/// Sage's account address for a public key: [`OZ_ACCOUNT_CLASS_HASH`], salt = the public key
/// (deterministic, so the mnemonic alone recovers the address).
pub fn oz_account_address(public_key: &Felt) -> Felt {
    account_address(&OZ_ACCOUNT_CLASS_HASH, public_key, public_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// starknet-devnet's predeployed account for `--seed 0`, account 0: devnet computes it with
    /// salt 20 and the legacy class hash 0x3fcb…854 (an independent `get_contract_address` and
    /// `get_public_key` vector).
    #[test]
    fn devnet_seed0_predeployed_account() {
        let sk = Felt::from_hex_unchecked("0x71d7bb07b9a64f6f78ac4c816aff4da9");
        let pk = starknet_rust_crypto::get_public_key(&sk);
        assert_eq!(pk, Felt::from_hex_unchecked("0x039d9e6ce352ad4530a0ef5d5a18fd3303c3606a7fa6ac5b620020ad681cc33b"));
        let legacy = Felt::from_hex_unchecked("0x3FCBF77B28C96F4F2FB5BD2D176AB083A12A5E123ADEB0DE955D7EE228C9854");
        assert_eq!(
            account_address(&legacy, &pk, &Felt::from(20u8)),
            Felt::from_hex_unchecked("0x064b48806902a367c8598f4f95c305e8c1a1acba5f082d294a43793113115691")
        );
    }

    #[test]
    fn sage_address_depends_on_key() {
        let a = oz_account_address(&Felt::from(1u8));
        let b = oz_account_address(&Felt::from(2u8));
        assert_ne!(a, b);
        assert_eq!(a, account_address(&OZ_ACCOUNT_CLASS_HASH, &Felt::from(1u8), &Felt::from(1u8)));
    }
}
