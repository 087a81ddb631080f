//! Wallet behaviour: derivation choices, keystore round trips and interop with eth-keystore
//! (what starkli uses), bad input, the `Signer` trait.

use std::path::Path;

use proptest::prelude::*;
use sage_wallet::keystore::{self, DecryptedKeystore};
use sage_wallet::{
    Derivation, KeystoreError, KeystoreOptions, Mnemonic, ScryptParams, StarkKey, Wallet, oz_account_address,
};
use starknet_rust::signers::Signer;
use starknet_types_core::felt::Felt;

/// Tests use a deliberately cheap scrypt cost (2^8) so the suite stays fast.
const CHEAP: ScryptParams = ScryptParams::insecure_for_tests(8);

fn opts(force: bool) -> KeystoreOptions {
    KeystoreOptions { scrypt: CHEAP, force }
}

fn mnemonic(b: u8) -> Mnemonic {
    Mnemonic::from_entropy_32(&[b; 32])
}

#[test]
fn schemes_indices_and_passphrase_give_distinct_keys() {
    let m = mnemonic(1);
    let mut seen = std::collections::HashSet::new();
    for d in Derivation::ALL {
        for i in 0..2 {
            let w = Wallet::from_mnemonic(&m, "", d, i).expect("derive");
            assert!(seen.insert(w.public_key()), "{d} {i} collides");
            // Deterministic restore.
            assert_eq!(Wallet::from_mnemonic(&m, "", d, i).expect("derive").public_key(), w.public_key());
        }
    }
    let plain = Wallet::from_mnemonic(&m, "", Derivation::Braavos, 0).expect("derive");
    let with_pass = Wallet::from_mnemonic(&m, "extra", Derivation::Braavos, 0).expect("derive");
    assert_ne!(plain.public_key(), with_pass.public_key());
    assert_ne!(plain.elgamal_public_key(), with_pass.elgamal_public_key());
    // The ElGamal key depends on the index, not on the Stark scheme.
    let argent = Wallet::from_mnemonic(&m, "", Derivation::ArgentX, 0).expect("derive");
    assert_eq!(plain.elgamal_public_key(), argent.elgamal_public_key());
    let idx1 = Wallet::from_mnemonic(&m, "", Derivation::Braavos, 1).expect("derive");
    assert_ne!(plain.elgamal_public_key(), idx1.elgamal_public_key());
    // The ElGamal secret is not the Stark secret.
    assert_ne!(plain.elgamal_secret_key().expose_scalar().to_felt(), plain.signer().expose_secret());
    assert_eq!(plain.address(), oz_account_address(plain.public_key(), plain.public_key()));
    assert!(Wallet::from_mnemonic(&m, "", Derivation::Braavos, 1 << 31).is_err());
}

#[test]
fn keystore_roundtrip_wrong_password_and_no_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.json");
    let w = Wallet::from_mnemonic(&mnemonic(2), "", Derivation::Eip2645, 4).expect("derive");
    w.save(&path, "pw", opts(false)).expect("save");

    let back = Wallet::open(&path, "pw").expect("open");
    assert_eq!(back.public_key(), w.public_key());
    assert_eq!(back.elgamal_public_key(), w.elgamal_public_key());
    assert_eq!(back.metadata(), w.metadata());
    assert_eq!(back.metadata().account_index, 4);

    assert!(matches!(Wallet::open(&path, "PW"), Err(KeystoreError::WrongPassword)));
    assert_eq!(Wallet::open(&path, "nope").expect_err("wrong").to_string(), "wrong keystore password");

    let other = Wallet::from_mnemonic(&mnemonic(3), "", Derivation::Braavos, 0).expect("derive");
    assert!(matches!(other.save(&path, "pw", opts(false)), Err(KeystoreError::AlreadyExists(_))));
    assert_eq!(Wallet::open(&path, "pw").expect("unchanged").public_key(), w.public_key());
    other.save(&path, "pw", opts(true)).expect("force");
    assert_eq!(Wallet::open(&path, "pw").expect("replaced").public_key(), other.public_key());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
}

#[test]
fn changing_the_password_never_changes_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.json");
    let w = Wallet::from_mnemonic(&mnemonic(4), "bip39 passphrase", Derivation::Braavos, 0).expect("derive");
    w.save(&path, "old", opts(false)).expect("save");
    Wallet::change_password(&path, "old", "new", CHEAP).expect("change");
    assert!(matches!(Wallet::open(&path, "old"), Err(KeystoreError::WrongPassword)));
    let back = Wallet::open(&path, "new").expect("open");
    assert_eq!(back.public_key(), w.public_key());
    assert_eq!(back.elgamal_public_key(), w.elgamal_public_key());
    assert_eq!(back.address(), w.address());
}

/// starkli reads keystores with eth-keystore 0.5: it must decrypt ours to the Stark key.
#[test]
fn eth_keystore_reads_ours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sage.json");
    let w = Wallet::from_mnemonic(&mnemonic(5), "", Derivation::Braavos, 0).expect("derive");
    w.save(&path, "pw", opts(false)).expect("save");
    let key = eth_keystore::decrypt_key(&path, "pw").expect("eth-keystore decrypts");
    assert_eq!(Felt::from_bytes_be_slice(&key), w.signer().expose_secret());
    assert!(eth_keystore::decrypt_key(&path, "bad").is_err());
}

/// We read keystores written by eth-keystore 0.5 (starkli's `signer keystore new`).
#[test]
fn we_read_eth_keystore_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = Felt::from_hex_unchecked("0x71d7bb07b9a64f6f78ac4c816aff4da9");
    // Returns the keystore's UUID; the file is named by the last argument.
    let _uuid = eth_keystore::encrypt_key(
        dir.path(),
        &mut eth_keystore_rand::thread_rng(),
        secret.to_bytes_be(),
        "pw",
        Some("starkli.json"),
    )
    .expect("eth-keystore encrypts");
    let path = dir.path().join("starkli.json");
    let d: DecryptedKeystore = keystore::read(&path, "pw").expect("read");
    assert_eq!(d.stark.expose_secret(), secret);
    assert_eq!(
        d.stark.public_key(),
        Felt::from_hex_unchecked("0x039d9e6ce352ad4530a0ef5d5a18fd3303c3606a7fa6ac5b620020ad681cc33b")
    );
    assert!(d.elgamal.is_none() && d.metadata.is_none());
    assert!(matches!(Wallet::open(&path, "pw"), Err(KeystoreError::NoElGamalKey)));
    assert!(matches!(keystore::read(&path, "bad"), Err(KeystoreError::WrongPassword)));
    assert_eq!(keystore::read_stark_key(&path, "pw").expect("stark").expose_secret(), secret);
}

fn tamper(path: &Path, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    f(&mut v);
    v.to_string()
}

#[test]
fn corrupted_keystores_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.json");
    let w = Wallet::from_mnemonic(&mnemonic(6), "", Derivation::Braavos, 0).expect("derive");
    w.save(&path, "pw", opts(false)).expect("save");

    assert!(matches!(Wallet::from_keystore_json("{not json", "pw"), Err(KeystoreError::Malformed(_))));
    assert!(matches!(Wallet::from_keystore_json("{}", "pw"), Err(KeystoreError::Malformed(_))));
    let bad_mac = tamper(&path, |v| v["crypto"]["ciphertext"] = "00".repeat(32).into());
    assert!(matches!(Wallet::from_keystore_json(&bad_mac, "pw"), Err(KeystoreError::WrongPassword)));
    let bad_kdf = tamper(&path, |v| v["crypto"]["kdf"] = "pbkdf2".into());
    assert!(matches!(Wallet::from_keystore_json(&bad_kdf, "pw"), Err(KeystoreError::Unsupported(_))));
    let huge_n = tamper(&path, |v| v["crypto"]["kdfparams"]["n"] = (1u64 << 40).into());
    assert!(matches!(Wallet::from_keystore_json(&huge_n, "pw"), Err(KeystoreError::Unsupported(_))));
    let greedy = tamper(&path, |v| {
        v["crypto"]["kdfparams"]["n"] = (1u64 << 22).into();
        v["crypto"]["kdfparams"]["r"] = 32.into();
    });
    assert!(matches!(Wallet::from_keystore_json(&greedy, "pw"), Err(KeystoreError::Unsupported(_))));
    let odd_n = tamper(&path, |v| v["crypto"]["kdfparams"]["n"] = 1000.into());
    assert!(matches!(Wallet::from_keystore_json(&odd_n, "pw"), Err(KeystoreError::Unsupported(_))));
    let bad_hex = tamper(&path, |v| v["crypto"]["mac"] = "zz".into());
    assert!(matches!(Wallet::from_keystore_json(&bad_hex, "pw"), Err(KeystoreError::Malformed(_))));
    let bad_elgamal = tamper(&path, |v| v["sage"]["elgamal"]["ciphertext"] = "11".repeat(32).into());
    assert!(matches!(Wallet::from_keystore_json(&bad_elgamal, "pw"), Err(KeystoreError::Malformed(_))));
    let bad_iv = tamper(&path, |v| v["crypto"]["cipherparams"]["iv"] = "00".into());
    assert!(Wallet::from_keystore_json(&bad_iv, "pw").is_err());
    let swapped_pk = tamper(&path, |v| v["sage"]["elgamal_public_key"] = serde_json::json!(["0x1", "0x2"]));
    assert!(matches!(Wallet::from_keystore_json(&swapped_pk, "pw"), Err(KeystoreError::Malformed(_))));
    assert!(matches!(Wallet::open(&dir.path().join("missing.json"), "pw"), Err(KeystoreError::Io { .. })));
    assert!(matches!(
        w.save(
            &dir.path().join("x.json"),
            "pw",
            KeystoreOptions { scrypt: ScryptParams::insecure_for_tests(0), force: false }
        ),
        Err(KeystoreError::BadScryptParams(_))
    ));
}

/// The default cost (2^18) once: the path real users take.
#[test]
fn default_scrypt_cost_roundtrip() {
    let w = Wallet::from_mnemonic(&mnemonic(7), "", Derivation::Braavos, 0).expect("derive");
    assert_eq!(KeystoreOptions::default().scrypt, ScryptParams { log_n: 18, r: 8, p: 1 });
    let json = w.to_keystore_json("pw", ScryptParams::default()).expect("encrypt");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["crypto"]["kdfparams"]["n"], 262_144);
    assert_eq!(Wallet::from_keystore_json(&json, "pw").expect("open").public_key(), w.public_key());
}

#[test]
fn debug_output_has_no_secrets() {
    let m = mnemonic(8);
    let w = Wallet::from_mnemonic(&m, "", Derivation::Braavos, 0).expect("derive");
    let shown = format!("{w:?} {m:?}");
    let secret = format!("{:x}", w.signer().expose_secret());
    let esecret = format!("{:x}", w.elgamal_secret_key().expose_scalar().to_felt());
    assert!(!shown.contains(&secret) && !shown.contains(&esecret));
    for word in m.phrase().split(' ') {
        assert!(!shown.contains(&format!(" {word} ")), "mnemonic word leaked");
    }
    assert!(shown.contains("redacted"));
}

#[test]
fn signer_trait_works_for_accounts() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let w = Wallet::from_mnemonic(&mnemonic(9), "", Derivation::Braavos, 0).expect("derive");
    let signer: &StarkKey = w.signer();
    let hash = Felt::from(0xabcdefu64);
    let (pk, sig) = rt
        .block_on(async { (signer.get_public_key().await.expect("pk"), signer.sign_hash(&hash).await.expect("sign")) });
    assert_eq!(pk.scalar(), w.public_key());
    assert!(pk.verify(&hash, &sig).expect("verify"));
    assert!(StarkKey::from_secret(Felt::ZERO).is_err());
    assert!(StarkKey::from_secret(Felt::from_hex_unchecked(obelysk_elgamal::CURVE_ORDER_HEX)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn mnemonic_roundtrip(entropy in any::<[u8; 32]>()) {
        let m = Mnemonic::from_entropy_32(&entropy);
        prop_assert_eq!(m.word_count(), 24);
        let back = Mnemonic::parse(m.phrase().as_str()).expect("parse");
        prop_assert_eq!(*back.to_seed("p"), *m.to_seed("p"));
    }

    #[test]
    fn signatures_verify_and_reject_other_hashes(entropy in any::<[u8; 32]>(), h in any::<u128>()) {
        let w = Wallet::from_mnemonic(&Mnemonic::from_entropy_32(&entropy), "", Derivation::Braavos, 0).expect("derive");
        let hash = Felt::from(h);
        let sig = w.signer().sign(hash).expect("sign");
        prop_assert!(sage_wallet::verify_signature(w.public_key(), hash, &sig));
        prop_assert!(!sage_wallet::verify_signature(w.public_key(), hash + Felt::ONE, &sig));
    }
}

#[test]
fn generated_mnemonics_are_24_words_and_fresh() {
    let a = Mnemonic::generate().expect("rng");
    let b = Mnemonic::generate().expect("rng");
    assert_eq!(a.word_count(), 24);
    assert_ne!(a, b);
}

#[test]
fn summary_is_json_ready_hex() {
    let w = Wallet::from_mnemonic(&mnemonic(10), "", Derivation::ArgentX, 2).expect("derive");
    let s = w.summary(Some(Path::new("/tmp/k.json")));
    let v = serde_json::to_value(&s).expect("json");
    assert_eq!(Felt::from_hex(v["address"].as_str().expect("address")).expect("hex"), w.address());
    assert_eq!(Felt::from_hex(v["public_key"].as_str().expect("pk")).expect("hex"), w.public_key());
    assert!(s.address.starts_with("0x") && s.address.len() == 66);
    let [x, y] = w.elgamal_public_key().to_felts();
    assert_eq!(s.elgamal_public_key, [format!("{x:#066x}"), format!("{y:#066x}")]);
    assert_eq!(v["derivation"], "argent-x");
    assert_eq!(v["account_index"], 2);
    assert_eq!(v["keystore"], "/tmp/k.json");
}
