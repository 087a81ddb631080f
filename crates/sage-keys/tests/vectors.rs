//! Stark ECDSA known answers from independent implementations: StarkWare's crypto-cpp verify
//! vectors, starknet.dart's RFC 6979 `k` and signature vectors, and starknet-rust's own signer.

use proptest::prelude::*;
use sage_keys::{Felt, SignError, Signature, StarkKey, verify_signature};

fn f(hex: &str) -> Felt {
    Felt::from_hex_unchecked(hex)
}

#[test]
fn rfc6979_k_and_signature_vectors() {
    let sk = f("0x0139fe4d6f02e666e86a6f58e65060f115cd3c185bd9e98bd829636931458f79");
    let hash = f("0x06fea80189363a786037ed3e7ba546dad0ef7de49fccae0e31eb658b7dd4ea76");
    assert_eq!(
        starknet_rust_crypto::rfc6979_generate_k(&hash, &sk, None),
        f("0x738245b914bff42937b4cb377be9920abd5e8476e8998bfc74cb6cca4b9167f")
    );
    let seeded = starknet_rust_crypto::rfc6979_generate_k(
        &Felt::from_dec_str("2356066842316221201497701892898101048997905787746711569653082123202087193229")
            .expect("dec"),
        &Felt::from(1234u32),
        Some(&Felt::from(32u32)),
    );
    assert_eq!(
        seeded,
        Felt::from_dec_str("587135542530060539212175581789321092458737758169789380555529615008663266745").expect("dec")
    );
    let sig = StarkKey::from_secret(sk).expect("key").sign(hash).expect("sign");
    assert_eq!(sig.r, f("0x061ec782f76a66f6984efc3a1b6d152a124c701c00abdd2bf76641b4135c770f"));
    assert_eq!(sig.s, f("0x04e44e759cea02c23568bb4d8a09929bbca8768ab68270d50c18d214166ccd9a"));
}

#[test]
fn crypto_cpp_verify_vectors() {
    let valid = Signature {
        r: f("0x0411494b501a98abd8262b0da1351e17899a0c4ef23dd2f96fec5ba847310b20"),
        s: f("0x0405c3191ab3883ef2b763af35bc5f5d15b3b4e99461d70e84c654a351a7c81b"),
    };
    let g_x = f("0x01ef15c18599971b7beced415a40f0c7deacfd9b0d1819e03d723d8bc943cfca");
    assert!(verify_signature(g_x, Felt::TWO, &valid));
    let invalid = Signature {
        r: f("0x0173fd03d8b008ee7432977ac27d1e9d1a1f6c98b1a2f05fa84a21c84c44e882"),
        s: f("0x01f2c44a7798f55192f153b4c48ea5c1241fbb69e6132cc8a0da9c5b62a4286e"),
    };
    let other = f("0x077a4b314db07c45076d11f62b6f9e748a39790441823307743cf00d6597ea43");
    let msg = f("0x0397e76d1667c4454bfb83514e120583af836f8e32a516765497823eabe16a3f");
    assert!(!verify_signature(other, msg, &invalid));
}

/// Deterministic, verifying, and identical to starknet-rust's `SigningKey` (the signer every
/// Starknet Rust tool uses).
#[test]
fn matches_starknet_rust_signing_key() {
    let sk = f("0x71d7bb07b9a64f6f78ac4c816aff4da9");
    let key = StarkKey::from_secret(sk).expect("key");
    let reference = starknet_rust_signers::SigningKey::from_secret_scalar(sk);
    assert_eq!(key.public_key(), reference.verifying_key().scalar());
    for h in [1u64, 2, 0xdead_beef, u64::MAX] {
        let hash = Felt::from(h);
        let a = key.sign(hash).expect("sign");
        assert_eq!(a, key.sign(hash).expect("sign"), "deterministic");
        let r = reference.sign(&hash).expect("reference");
        assert_eq!((a.r, a.s), (r.r, r.s));
        assert!(verify_signature(key.public_key(), hash, &a));
        assert!(!verify_signature(key.public_key(), hash + Felt::ONE, &a));
    }
    assert_eq!(key.sign(Felt::MAX), Err(SignError::MessageOutOfRange));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn signatures_verify_only_for_their_message_and_key(secret in 1u128.., m in any::<u128>()) {
        let key = StarkKey::from_secret(Felt::from(secret)).expect("key");
        let other = StarkKey::from_secret(Felt::from(secret) + Felt::ONE).expect("key");
        let sig = key.sign(Felt::from(m)).expect("sign");
        prop_assert!(verify_signature(key.public_key(), Felt::from(m), &sig));
        prop_assert!(!verify_signature(key.public_key(), Felt::from(m) + Felt::ONE, &sig));
        prop_assert!(!verify_signature(other.public_key(), Felt::from(m), &sig));
    }
}
