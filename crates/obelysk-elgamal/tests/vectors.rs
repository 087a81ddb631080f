//! JSON test vectors for the Cairo contracts: generated from fixed seeds, committed under
//! `test-data/`, checked against a fresh generation (so they cannot go stale) and re-verified
//! by reading them back.
//!
//! Regenerate deliberately with `OBELYSK_REGENERATE_VECTORS=1 cargo test -p obelysk-elgamal --test vectors`.

use obelysk_elgamal::proof::{decryption_transcript, key_ownership_transcript, short_string};
use obelysk_elgamal::{
    Ciphertext, DecryptionProof, KeyOwnershipProof, PublicKey, Scalar, SecretKey, encrypt_with_randomness,
    prove_decryption_with_aux, prove_key_ownership_with_aux, verify_decryption, verify_key_ownership,
};
use serde_json::{Value, json};
use starknet_types_core::felt::Felt;
use starknet_types_core::hash::{Poseidon, StarkHash};

/// The committed vectors, embedded at build time (cargo rebuilds when the file changes). A path
/// baked in with `env!("CARGO_MANIFEST_DIR")` would point into whichever clone first built this
/// test: binaries in a shared target directory are reused across clones.
const COMMITTED: &str = include_str!("../test-data/vectors.json");

/// Where regeneration writes: the package directory of the clone running the test.
fn vectors_path() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR (run under cargo)"))
        .join("test-data/vectors.json")
}
const DOMAIN: &[u8] = b"obelysk/test-vectors/v1";

fn hex(f: &Felt) -> Value {
    Value::String(format!("{f:#x}"))
}

fn hexes(fs: &[Felt]) -> Value {
    Value::Array(fs.iter().map(hex).collect())
}

fn seed(i: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[0] = 0x5a;
    s[31] = i;
    s
}

fn randomness(label: &[u8], i: u8) -> Scalar {
    Scalar::hash_to_nonzero(DOMAIN, &[label, &[i]])
}

fn generate() -> Value {
    let keys: Vec<SecretKey> = (0..3).map(|i| SecretKey::from_seed(&seed(i))).collect();
    let amounts: [u64; 5] = [0, 1, 42, 1_000_000, (1 << 40) - 1];
    let context = [Felt::from_hex_unchecked("0x534e5f5345504f4c4941"), Felt::from(0x5a6eu64), Felt::from(7u64)];

    let key_vectors: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, sk)| {
            json!({
                "seed": format!("0x{}", hex::encode(seed(i as u8))),
                "secret_key": hex(&sk.expose_scalar().to_felt()),
                "public_key": hexes(&sk.public_key().to_felts()),
            })
        })
        .collect();

    let mut encryptions = Vec::new();
    let mut decryption_proofs = Vec::new();
    for (i, &amount) in amounts.iter().enumerate() {
        let sk = &keys[i % keys.len()];
        let pk = sk.public_key();
        let r = randomness(b"r", i as u8);
        let ct = encrypt_with_randomness(amount, &pk, &r).expect("r != 0");
        encryptions.push(json!({
            "secret_key": hex(&sk.expose_scalar().to_felt()),
            "public_key": hexes(&pk.to_felts()),
            "amount": amount,
            "randomness": hex(&r.to_felt()),
            "ciphertext": hexes(&ct.to_felts()),
        }));
        let aux = [i as u8; 32];
        let proof = prove_decryption_with_aux(sk, &ct, amount, &context, &aux).expect("prove");
        let felts = proof.to_felts();
        let a1 = obelysk_elgamal::point::from_xy(&felts[0], &felts[1]).expect("a1");
        let a2 = obelysk_elgamal::point::from_xy(&felts[2], &felts[3]).expect("a2");
        let transcript = decryption_transcript(&pk, &ct, amount, &a1, &a2, &context);
        decryption_proofs.push(json!({
            "public_key": hexes(&pk.to_felts()),
            "ciphertext": hexes(&ct.to_felts()),
            "amount": amount,
            "context": hexes(&context),
            "transcript": hexes(&transcript),
            "challenge": hex(&Poseidon::hash_array(&transcript)),
            "proof": hexes(&felts),
        }));
    }

    let key_ownership_proofs: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, sk)| {
            let pk = sk.public_key();
            let proof = prove_key_ownership_with_aux(sk, &context, &[0x80 | i as u8; 32]);
            let felts = proof.to_felts();
            let transcript = key_ownership_transcript(&pk, proof.commitment(), &context);
            json!({
                "public_key": hexes(&pk.to_felts()),
                "context": hexes(&context),
                "transcript": hexes(&transcript),
                "challenge": hex(&Poseidon::hash_array(&transcript)),
                "proof": hexes(&felts),
            })
        })
        .collect();

    // Homomorphic: Enc(a) + Enc(b), Enc(a) - Enc(b), Enc(a) + public c, re-randomisation.
    let sk = &keys[0];
    let pk = sk.public_key();
    let (a, b, c) = (5_000u64, 1_234u64, 66u64);
    let ca = encrypt_with_randomness(a, &pk, &randomness(b"ha", 0)).expect("r");
    let cb = encrypt_with_randomness(b, &pk, &randomness(b"hb", 0)).expect("r");
    let rr = randomness(b"rerandomize", 0);
    let homomorphic = json!({
        "public_key": hexes(&pk.to_felts()),
        "a": a, "b": b, "c": c,
        "enc_a": hexes(&ca.to_felts()),
        "enc_b": hexes(&cb.to_felts()),
        "enc_a_plus_enc_b": hexes(&(&ca + &cb).to_felts()),
        "enc_a_minus_enc_b": hexes(&(&ca - &cb).to_felts()),
        "enc_a_plus_c": hexes(&ca.add_amount(c).to_felts()),
        "enc_a_minus_c": hexes(&ca.sub_amount(c).to_felts()),
        "rerandomize_r": hex(&rr.to_felt()),
        "enc_a_rerandomized": hexes(&ca.rerandomize_with(&pk, &rr).expect("r").to_felts()),
    });

    // Invalid inputs a verifier must reject.
    let valid = &decryption_proofs[2];
    let mut wrong_amount = valid.clone();
    wrong_amount["amount"] = json!(43);
    let mut bad_s = valid.clone();
    let s_plus_n = Felt::from_hex(obelysk_elgamal::CURVE_ORDER_HEX).expect("n")
        + Felt::from_hex(valid["proof"][4].as_str().expect("s")).expect("s");
    bad_s["proof"][4] = hex(&s_plus_n);
    let mut off_curve = valid.clone();
    let y = Felt::from_hex(valid["proof"][1].as_str().expect("y")).expect("y");
    off_curve["proof"][1] = hex(&(y + Felt::ONE));
    let mut wrong_context = valid.clone();
    wrong_context["context"][2] = hex(&Felt::from(8u64));
    let invalid = json!([
        { "reason": "amount differs from the proven one", "decryption_proof": wrong_amount },
        { "reason": "s is not canonical (s + n)", "decryption_proof": bad_s },
        { "reason": "a1 is not on the curve", "decryption_proof": off_curve },
        { "reason": "context differs", "decryption_proof": wrong_context },
    ]);

    let (gx, gy) = obelysk_elgamal::point::to_xy(&obelysk_elgamal::point::generator());
    json!({
        "description": "obelysk-elgamal test vectors: exponential ElGamal on the Stark curve. Felts are 0x-hex. Layouts: point [x, y] (identity (0, 0)); ciphertext [c1.x, c1.y, c2.x, c2.y]; key-ownership proof [a.x, a.y, s]; decryption proof [a1.x, a1.y, a2.x, a2.y, s]; challenge = poseidon_hash_span(transcript). Generated by crates/obelysk-elgamal/tests/vectors.rs.",
        "version": 1,
        "generator": hexes(&[gx, gy]),
        "curve_order": obelysk_elgamal::CURVE_ORDER_HEX,
        "tags": {
            obelysk_elgamal::proof::TAG_KEY_OWNERSHIP: hex(&short_string(obelysk_elgamal::proof::TAG_KEY_OWNERSHIP)),
            obelysk_elgamal::proof::TAG_DECRYPTION: hex(&short_string(obelysk_elgamal::proof::TAG_DECRYPTION)),
        },
        "keys": key_vectors,
        "encryptions": encryptions,
        "homomorphic": homomorphic,
        "key_ownership_proofs": key_ownership_proofs,
        "decryption_proofs": decryption_proofs,
        "invalid_decryption_proofs": invalid,
    })
}

fn render() -> String {
    // Keys sorted explicitly: another crate in the workspace (dcap-qvl) turns on serde_json's
    // `preserve_order`, and the file must not depend on which crates were built together.
    let mut v = generate();
    v.sort_all_objects();
    let mut s = serde_json::to_string_pretty(&v).expect("json");
    s.push('\n');
    s
}

#[test]
fn committed_vectors_match_fresh_generation() {
    let fresh = render();
    if std::env::var_os("OBELYSK_REGENERATE_VECTORS").is_some() {
        // Write-then-rename so a concurrently running read-back test never sees half a file.
        let path = vectors_path();
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, &fresh).expect("write vectors");
        std::fs::rename(&tmp, &path).expect("rename vectors");
        // The embedded copy is the old file until the next build: compare with what was written.
        assert_eq!(std::fs::read_to_string(&path).expect("read back"), fresh);
        return;
    }
    let committed = COMMITTED;
    assert!(
        committed == fresh,
        "test-data/vectors.json is stale: regenerate with OBELYSK_REGENERATE_VECTORS=1 and review the diff"
    );
}

fn felts(v: &Value) -> Vec<Felt> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| Felt::from_hex(x.as_str().expect("hex string")).expect("felt"))
        .collect()
}

fn felt(v: &Value) -> Felt {
    Felt::from_hex(v.as_str().expect("hex string")).expect("felt")
}

/// Reads the committed file back through the public decoders and re-checks every vector; counts
/// them so a silently empty section fails.
#[test]
fn committed_vectors_verify_when_read_back() {
    let v: Value = serde_json::from_str(COMMITTED).expect("parse");
    let table = obelysk_elgamal::BabyStepTable::build(12).expect("table");
    let mut checked = 0;

    for k in v["keys"].as_array().expect("keys") {
        let sk = SecretKey::from_felt(&felt(&k["secret_key"])).expect("sk");
        let seed_hex = k["seed"].as_str().expect("seed").trim_start_matches("0x");
        let seed: [u8; 32] = hex::decode(seed_hex).expect("hex").try_into().expect("32 bytes");
        assert_eq!(SecretKey::from_seed(&seed), sk);
        assert_eq!(sk.public_key(), PublicKey::from_felts(&felts(&k["public_key"])).expect("pk"));
        checked += 1;
    }
    for e in v["encryptions"].as_array().expect("encryptions") {
        let sk = SecretKey::from_felt(&felt(&e["secret_key"])).expect("sk");
        let ct = Ciphertext::from_felts(&felts(&e["ciphertext"])).expect("ct");
        let amount = e["amount"].as_u64().expect("amount");
        let mg = obelysk_elgamal::point::mul_generator(&Scalar::from_u64(amount));
        assert!(obelysk_elgamal::point::eq(&obelysk_elgamal::decrypt_to_point(&ct, &sk), &mg));
        if amount < 1 << 20 {
            assert_eq!(obelysk_elgamal::decrypt(&ct, &sk, &table, 1 << 20), Ok(amount));
        }
        checked += 1;
    }
    for p in v["key_ownership_proofs"].as_array().expect("pok") {
        let pk = PublicKey::from_felts(&felts(&p["public_key"])).expect("pk");
        let proof = KeyOwnershipProof::from_felts(&felts(&p["proof"])).expect("proof");
        let transcript = felts(&p["transcript"]);
        assert_eq!(starknet_rust_crypto::poseidon_hash_many(&transcript), felt(&p["challenge"]));
        verify_key_ownership(&pk, &proof, &felts(&p["context"])).expect("verifies");
        checked += 1;
    }
    for p in v["decryption_proofs"].as_array().expect("cp") {
        let pk = PublicKey::from_felts(&felts(&p["public_key"])).expect("pk");
        let ct = Ciphertext::from_felts(&felts(&p["ciphertext"])).expect("ct");
        let proof = DecryptionProof::from_felts(&felts(&p["proof"])).expect("proof");
        let transcript = felts(&p["transcript"]);
        // Independent Poseidon (starknet-crypto) agrees with the challenge.
        assert_eq!(starknet_rust_crypto::poseidon_hash_many(&transcript), felt(&p["challenge"]));
        verify_decryption(&pk, &ct, p["amount"].as_u64().expect("amount"), &proof, &felts(&p["context"]))
            .expect("verifies");
        checked += 1;
    }
    for bad in v["invalid_decryption_proofs"].as_array().expect("invalid") {
        let p = &bad["decryption_proof"];
        let pk = PublicKey::from_felts(&felts(&p["public_key"])).expect("pk");
        let ct = Ciphertext::from_felts(&felts(&p["ciphertext"])).expect("ct");
        let rejected = match DecryptionProof::from_felts(&felts(&p["proof"])) {
            Err(_) => true,
            Ok(proof) => {
                verify_decryption(&pk, &ct, p["amount"].as_u64().expect("amount"), &proof, &felts(&p["context"]))
                    .is_err()
            }
        };
        assert!(rejected, "{}", bad["reason"]);
        checked += 1;
    }
    let h = &v["homomorphic"];
    let sk = SecretKey::from_seed(&seed(0));
    assert_eq!(sk.public_key(), PublicKey::from_felts(&felts(&h["public_key"])).expect("pk"));
    let (a, b, c) = (h["a"].as_u64().expect("a"), h["b"].as_u64().expect("b"), h["c"].as_u64().expect("c"));
    for (field, expected) in [
        ("enc_a_plus_enc_b", a + b),
        ("enc_a_minus_enc_b", a - b),
        ("enc_a_plus_c", a + c),
        ("enc_a_minus_c", a - c),
        ("enc_a_rerandomized", a),
    ] {
        let ct = Ciphertext::from_felts(&felts(&h[field])).expect("ct");
        assert_eq!(obelysk_elgamal::decrypt(&ct, &sk, &table, 1 << 20), Ok(expected), "{field}");
        checked += 1;
    }
    assert_eq!(checked, 3 + 5 + 3 + 5 + 4 + 5, "every vector section was read");
}
