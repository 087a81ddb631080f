//! Keystore files (Web3 Secret Storage v3 with Sage's ElGamal extension), decrypted with the
//! seed keystore's password so that mutations reach past the MAC into key validation.
//!
//! Oracle: a file that decrypts yields a wallet whose keys match the public keys it declares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sage_fuzz::{MAX_FUZZ_SCRYPT_COST, PASSWORD};
use sage_wallet::Wallet;
use starknet_types_core::felt::Felt;

/// The scrypt cost a file asks for (`n * r`), when it says.
fn scrypt_cost(json: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let params = value.get("crypto")?.get("kdfparams")?;
    let n = params.get("n")?.as_u64()?;
    let r = params.get("r")?.as_u64()?;
    Some(n.saturating_mul(r))
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    // Files choose their own scrypt cost (capped at 4 GiB by the parser); an expensive one only
    // slows the fuzzer down, so those are skipped.
    if scrypt_cost(json).is_some_and(|cost| cost > MAX_FUZZ_SCRYPT_COST) {
        return;
    }
    if let Ok(wallet) = Wallet::from_keystore_json(json, PASSWORD) {
        let summary = wallet.summary(None);
        let declared = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("sage")?.get("public_key")?.as_str().map(str::to_owned));
        if let Some(declared) = declared {
            assert_eq!(
                Felt::from_hex(&declared).ok(),
                Felt::from_hex(&summary.public_key).ok(),
                "key mismatch accepted"
            );
        }
    }
});
