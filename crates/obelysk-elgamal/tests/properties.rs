//! Property tests: decryption inverts encryption, homomorphism, proofs verify, any tampered
//! field is rejected.

use std::sync::OnceLock;

use obelysk_elgamal::{
    BabyStepTable, Ciphertext, DecryptError, DecryptionProof, KeyOwnershipProof, ProveError, PublicKey, Scalar,
    SecretKey, decrypt, encrypt, encrypt_with_randomness, prove_decryption_with_aux, prove_key_ownership_with_aux,
    verify_decryption, verify_key_ownership,
};
use proptest::prelude::*;
use starknet_types_core::felt::Felt;

/// Small table: amounts below 2^20 decrypt in a few thousand giant steps.
const MAX: u64 = 1 << 20;

fn table() -> &'static BabyStepTable {
    static T: OnceLock<BabyStepTable> = OnceLock::new();
    T.get_or_init(|| BabyStepTable::build(10).expect("table"))
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 24, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decrypt_inverts_encrypt(seed in any::<u8>(), m in 0..MAX) {
        let sk = key(seed);
        let ct = encrypt(m, &sk.public_key()).expect("rng");
        prop_assert_eq!(decrypt(&ct, &sk, table(), MAX), Ok(m));
        // The wire encoding round-trips.
        prop_assert_eq!(Ciphertext::from_felts(&ct.to_felts()).expect("decode"), ct);
    }

    #[test]
    fn homomorphic_add_sub_and_public_amounts(a in 0..MAX / 4, b in 0..MAX / 4, c in 0..MAX / 4) {
        let sk = key(1);
        let pk = sk.public_key();
        let ca = encrypt(a, &pk).expect("rng");
        let cb = encrypt(b, &pk).expect("rng");
        prop_assert_eq!(decrypt(&(&ca + &cb), &sk, table(), MAX), Ok(a + b));
        prop_assert_eq!(decrypt(&ca.add_amount(c), &sk, table(), MAX), Ok(a + c));
        let (hi, lo, chi) = if a >= b { (&ca, &cb, a - b) } else { (&cb, &ca, b - a) };
        prop_assert_eq!(decrypt(&(hi - lo), &sk, table(), MAX), Ok(chi));
        if c <= a {
            prop_assert_eq!(decrypt(&ca.sub_amount(c), &sk, table(), MAX), Ok(a - c));
        } else {
            // A negative result is a typed error, never a wrong number.
            prop_assert_eq!(decrypt(&ca.sub_amount(c), &sk, table(), MAX), Err(DecryptError::OutOfRange { max: MAX }));
        }
        let re = ca.rerandomize(&pk).expect("rng");
        prop_assert_ne!(&re, &ca);
        prop_assert_eq!(decrypt(&re, &sk, table(), MAX), Ok(a));
    }

    #[test]
    fn key_ownership_proof_verifies_and_tampering_fails(seed in any::<u8>(), ctx in any::<u64>(), which in 0usize..3) {
        let sk = key(seed);
        let pk = sk.public_key();
        let context = [Felt::from(ctx)];
        let proof = prove_key_ownership_with_aux(&sk, &context, &[seed; 32]);
        prop_assert!(verify_key_ownership(&pk, &proof, &context).is_ok());
        // Wrong context or wrong key.
        prop_assert!(verify_key_ownership(&pk, &proof, &[Felt::from(ctx) + Felt::ONE]).is_err());
        prop_assert!(verify_key_ownership(&key(seed.wrapping_add(1)).public_key(), &proof, &context).is_err());
        // Any tampered field fails to decode or to verify.
        let mut felts = proof.to_felts();
        felts[which] += Felt::ONE;
        let rejected = match KeyOwnershipProof::from_felts(&felts) {
            Err(_) => true,
            Ok(p) => verify_key_ownership(&pk, &p, &context).is_err(),
        };
        prop_assert!(rejected);
    }

    #[test]
    fn decryption_proof_verifies_and_tampering_fails(m in 0..u64::MAX, which in 0usize..5, ct_field in 0usize..4) {
        let sk = key(3);
        let pk = sk.public_key();
        let context = [Felt::from(99u8), Felt::from(m)];
        let ct = encrypt(m, &pk).expect("rng");
        let proof = prove_decryption_with_aux(&sk, &ct, m, &context, &[1; 32]).expect("prove");
        prop_assert!(verify_decryption(&pk, &ct, m, &proof, &context).is_ok());
        prop_assert!(verify_decryption(&pk, &ct, m.wrapping_add(1), &proof, &context).is_err());
        prop_assert!(verify_decryption(&pk, &ct, m, &proof, &context[..1]).is_err());
        // Tampered proof felt.
        let mut felts = proof.to_felts();
        felts[which] += Felt::ONE;
        let rejected = match DecryptionProof::from_felts(&felts) {
            Err(_) => true,
            Ok(p) => verify_decryption(&pk, &ct, m, &p, &context).is_err(),
        };
        prop_assert!(rejected);
        // Tampered ciphertext felt.
        let mut ctf = ct.to_felts();
        ctf[ct_field] += Felt::ONE;
        let rejected = match Ciphertext::from_felts(&ctf) {
            Err(_) => true,
            Ok(bad) => verify_decryption(&pk, &bad, m, &proof, &context).is_err(),
        };
        prop_assert!(rejected);
        // A re-randomised ciphertext needs a fresh proof.
        let re = ct.rerandomize(&pk).expect("rng");
        prop_assert!(verify_decryption(&pk, &re, m, &proof, &context).is_err());
    }
}

#[test]
fn prover_refuses_a_false_statement() {
    let sk = key(4);
    let ct = encrypt(10, &sk.public_key()).expect("rng");
    assert!(matches!(prove_decryption_with_aux(&sk, &ct, 11, &[], &[0; 32]), Err(ProveError::AmountMismatch)));
    let other = key(5);
    assert!(matches!(prove_decryption_with_aux(&other, &ct, 10, &[], &[0; 32]), Err(ProveError::AmountMismatch)));
    let degenerate = Ciphertext::zero();
    assert!(matches!(
        prove_decryption_with_aux(&sk, &degenerate, 0, &[], &[0; 32]),
        Err(ProveError::DegenerateCiphertext)
    ));
}

#[test]
fn wrong_key_decrypts_out_of_range() {
    let ct = encrypt(77, &key(6).public_key()).expect("rng");
    assert_eq!(decrypt(&ct, &key(7), table(), MAX), Err(DecryptError::OutOfRange { max: MAX }));
}

#[test]
fn zero_randomness_rejected_and_zero_ciphertext_is_neutral() {
    let sk = key(8);
    let pk = sk.public_key();
    assert!(encrypt_with_randomness(5, &pk, &Scalar::ZERO).is_err());
    let ct = encrypt_with_randomness(5, &pk, &Scalar::from_u64(3)).expect("r");
    assert_eq!(&ct + &Ciphertext::zero(), ct);
    assert_eq!(Ciphertext::zero().to_felts(), [Felt::ZERO; 4]);
    // The all-zero layout decodes (identity points) and decrypts to 0.
    let z = Ciphertext::from_felts(&[Felt::ZERO; 4]).expect("identity ciphertext");
    assert_eq!(decrypt(&z, &sk, table(), MAX), Ok(0));
    assert!(ct.rerandomize_with(&pk, &Scalar::ZERO).is_err());
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let pk = key(9).public_key();
    let [x, y] = pk.to_felts();
    assert!(Ciphertext::from_felts(&[x, y, x]).is_err());
    assert!(Ciphertext::from_felts(&[x, y + Felt::ONE, x, y]).is_err());
    assert!(PublicKey::from_felts(&[Felt::ZERO, Felt::ZERO]).is_err());
    let n = Felt::from_hex(obelysk_elgamal::CURVE_ORDER_HEX).expect("n");
    assert!(DecryptionProof::from_felts(&[x, y, x, y, n]).is_err());
    assert!(KeyOwnershipProof::from_felts(&[x, y, Felt::MAX]).is_err());
    assert!(KeyOwnershipProof::from_felts(&[Felt::ZERO, Felt::ZERO, Felt::ONE]).is_err());
    // JSON decoding validates too.
    let bad = format!("[\"{x:#x}\", \"{:#x}\"]", y + Felt::ONE);
    assert!(serde_json::from_str::<PublicKey>(&bad).is_err());
}
