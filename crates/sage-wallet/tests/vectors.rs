//! Known-answer vectors from independent sources: BIP-39 (Trezor), BIP-44 (Ethereum's
//! `m/44'/60'/0'/0/0`), Argent X's own derivation tests. (Stark ECDSA vectors live with the key, in `sage-keys`.)

use sage_wallet::bip32::{DerivationPath, ExtendedPrivateKey};
use sage_wallet::{Derivation, Mnemonic, MnemonicError, Wallet, grind_key};
use starknet_types_core::felt::Felt;

fn bytes<const N: usize>(h: &str) -> [u8; N] {
    hex::decode(h.trim_start_matches("0x")).expect("hex").try_into().expect("length")
}

/// Trezor's BIP-39 vectors (python-mnemonic `vectors.json`), 256-bit entropy, passphrase "TREZOR".
#[test]
fn bip39_trezor_vectors() {
    let vectors = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
        ),
        (
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
            "dd48c104698c30cfe2b6142103248622fb7bb0ff692eebb00089b32d22484e1613912f0a5b694407be899ffd31ed3992c456cdf60f5d4564b8ba3f05a69890ad",
        ),
    ];
    for (entropy, phrase, seed) in vectors {
        let m = Mnemonic::from_entropy_32(&bytes(entropy));
        assert_eq!(m.phrase().as_str(), phrase);
        assert_eq!(Mnemonic::parse(phrase).expect("parse"), m);
        assert_eq!(m.to_seed("TREZOR").as_ref(), &bytes::<64>(seed));
    }
    // 12-word vector (import of shorter phrases is accepted).
    let m = Mnemonic::parse(
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    )
    .expect("parse");
    assert_eq!(
        m.to_seed("TREZOR").as_ref(),
        &bytes::<64>(
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
        )
    );
}

/// BIP-44 Ethereum account 0 of the "abandon … about" mnemonic (no passphrase): the widely
/// published key of address 0x9858EfFD232B4033E47d90003D41EC34EcaEda94.
#[test]
fn bip44_ethereum_vector() {
    let m = Mnemonic::parse(
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    )
    .expect("parse");
    let seed = m.to_seed("");
    let path: DerivationPath = "m/44'/60'/0'/0/0".parse().expect("path");
    let key = ExtendedPrivateKey::from_seed(seed.as_ref()).expect("master").derive_path(&path).expect("derive");
    assert_eq!(*key.private_key(), bytes::<32>("1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727"));
}

fn stark_key_from_secret(secret: &str, path: &str) -> Felt {
    let root = ExtendedPrivateKey::from_seed(&bytes::<32>(secret)).expect("master");
    let leaf = root.derive_path(&path.parse().expect("path")).expect("derive");
    starknet_rust_crypto::get_public_key(&grind_key(leaf.private_key()))
}

/// Argent X's own derivation tests: the wallet secret (the Ethereum key) is the BIP-32 seed.
/// Current Argent X uses `m/44'/9004'/0'/0/i`; legacy Argent X used EIP-2645.
#[test]
fn argent_x_vectors() {
    let secret = "e6904d63affe7a13cd30345b000c9b1ffc087832332d7303cf237ffda8a177d0";
    for (path, public_key) in [
        ("m/44'/9004'/0'/0/5", "0x05c7c65bfda7a85af0681c85c9c440f0aa6825feef6f9c96e55fb2ce08c8d4bc"),
        ("m/44'/9004'/0'/0/7", "0x0605d5a0ece3b316f0d72221228acb7f01dcb34db74e0c02790db156741f5a86"),
        ("m/2645'/1195502025'/1148870696'/0'/0'/5", "0x9be28603e0203db9adcac04302ba54f97f6d27abd8b801e3a80b20d25a7f21"),
        (
            "m/2645'/1195502025'/1148870696'/0'/0'/7",
            "0x0420c619da34e3bf4b050ddb980d81d715d90bb14ff379024845111fbf9971c2",
        ),
    ] {
        assert_eq!(stark_key_from_secret(secret, path), Felt::from_hex_unchecked(public_key), "{path}");
    }
}

/// The Argent X scheme chains the BIP-44 Ethereum key into the Argent path: check the
/// composition against the two steps done by hand.
#[test]
fn argent_x_scheme_composes_ethereum_key_and_argent_path() {
    let m = Mnemonic::parse(
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    )
    .expect("parse");
    let wallet = Wallet::from_mnemonic(&m, "", Derivation::ArgentX, 3).expect("derive");
    let expected =
        stark_key_from_secret("1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727", "m/44'/9004'/0'/0/3");
    assert_eq!(wallet.public_key(), expected);
}

#[test]
fn grind_key_vector_from_ecosystem_notes() {
    assert_eq!(
        grind_key(&bytes("86F3E7293141F20A8BAFF320E8EE4ACCB9D4A4BF2B4D295E8CEE784DB46E0519")),
        Felt::from_hex_unchecked("0x5c8c8683596c732541a59e03007b2d30dbbbb873556fe65b5fb63c16688f941")
    );
}

#[test]
fn mnemonic_errors_name_the_problem() {
    let good = Mnemonic::from_entropy_32(&[7u8; 32]).phrase().to_string();
    let mut words: Vec<&str> = good.split(' ').collect();
    words[4] = "notaword";
    let err = Mnemonic::parse(&words.join(" ")).expect_err("unknown word");
    assert_eq!(err, MnemonicError::UnknownWord { position: 5, word: "notaword".into() });
    assert!(err.to_string().contains("notaword") && err.to_string().contains('5'));

    let mut words: Vec<&str> = good.split(' ').collect();
    words.swap(0, 1);
    if words[0] != words[1] {
        assert_eq!(Mnemonic::parse(&words.join(" ")), Err(MnemonicError::InvalidChecksum));
    }
    assert_eq!(Mnemonic::parse("abandon abandon"), Err(MnemonicError::BadWordCount(2)));
    assert_eq!(Mnemonic::parse(""), Err(MnemonicError::BadWordCount(0)));
    // Case and spacing are normalised.
    let messy = format!("  {}  ", good.to_uppercase().replace(' ', " \t "));
    assert_eq!(Mnemonic::parse(&messy).expect("normalised").phrase().as_str(), good);
}
