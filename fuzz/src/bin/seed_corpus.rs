//! Writes the committed seed corpus (`fuzz/corpus/<target>/`) from real, valid inputs:
//! `cargo run --release --manifest-path fuzz/Cargo.toml --bin seed_corpus` (no instrumentation
//! needed). Every file is named after what it holds; rerun after a wire-format change.

// Built with the targets' coverage flags, so it links libFuzzer's coverage callbacks too (its own
// `main` wins over libFuzzer's).
extern crate libfuzzer_sys;

use std::{fs, path::PathBuf};

use obelysk_prover::{ProveConfig, prove};
use sage_consensus::{
    SignedVote, Verdict,
    bridge::{ValidateRequest, ValidateResponse},
    sign_vote,
};
use sage_fuzz::{
    NETWORK, PASSWORD, SGX_COLLATERAL, SGX_QUOTE, SNP_REPORT_HEX, SNP_VCEK, TDX_QUOTE, bridge_round, matmul_job,
    signer, vm_job, vote_domain,
};
use sage_net::{Heartbeat, JobAssignment, JobOutcome, JobResult, Topic};
use sage_protocol::{
    JobSpec,
    api::{Problem, ProblemCode, SubmitJob},
};
use sage_tee::{TeeType, Whitelist, WhitelistEntry};
use sage_wallet::{ScryptParams, Wallet, WalletMetadata};
use starknet_types_core::felt::Felt;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut written = 0;
    let mut put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        fs::create_dir_all(&dir).expect("corpus folder");
        fs::write(dir.join(name), bytes).expect("seed file");
        written += 1;
    };

    // Envelopes: real proofs (test parameters) of the two fixture jobs, compressed and raw.
    for (name, job) in [("matmul4", matmul_job()), ("vm", vm_job())] {
        let envelope = prove(&job, &ProveConfig::insecure_for_tests()).expect("fixture proves");
        put("envelope", &format!("{name}.zst"), &envelope.encode().expect("encodes").bytes);
        put("envelope", &format!("{name}.postcard"), &envelope.to_postcard().expect("encodes"));
    }

    // Gossip: signed messages as receivers see them (mode 0), and payloads to sign (mode 4).
    let key = signer();
    let spec = JobSpec::Matmul { n: 64, seed: Felt::from(7u8) };
    let worker = sage_keys::oz_account_address(key.public_key(), key.public_key());
    let assignment = JobAssignment {
        job_id: Felt::from(9u8),
        worker,
        request: spec.clone(),
        expires_at: 1_900_000_000,
        sent_at_ms: 1_800_000_000_000,
        inputs_from: None,
    };
    let result = JobResult {
        job_id: Felt::from(9u8),
        worker,
        outcome: JobOutcome::Proved {
            proof_hash: "0xabcd".into(),
            blob: [3; 32],
            provider: "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".into(),
            bytes: 4096,
            backend: "cpu".into(),
            prove_ms: 12,
        },
    };
    let refused =
        JobResult { job_id: Felt::from(9u8), worker, outcome: JobOutcome::Refused { reason: "too large".into() } };
    let heartbeat = Heartbeat {
        worker,
        gpu_tier: None,
        backend: "cpu".into(),
        load_percent: 10,
        timestamp: 1_800_000_000,
        jobs: vec![Felt::from(9u8)],
    };
    let round = bridge_round();
    let domain = vote_domain();
    let vote = SignedVote {
        round,
        verdict: Verdict::Valid,
        validator: key.public_key(),
        signature: sign_vote(&key, &domain, round.job_id, round.proof_hash, Verdict::Valid).expect("signs"),
    };
    let signed = [
        ("assignment", Topic::Jobs, assignment.sign(&key, NETWORK).expect("signs")),
        ("result", Topic::Results, result.sign(&key, NETWORK).expect("signs")),
        ("refused", Topic::Results, refused.sign(&key, NETWORK).expect("signs")),
        ("heartbeat", Topic::Heartbeats, heartbeat.sign(&key, NETWORK).expect("signs")),
    ];
    for (name, topic, message) in &signed {
        let selector = Topic::ALL.iter().position(|t| t == topic).expect("a topic") as u8;
        put("signed_message", &format!("{name}.msg"), &[&[selector][..], &message.encode()].concat());
        put("signed_message", &format!("{name}.payload"), &[&[selector | 4][..], &message.payload].concat());
    }
    let vote_json = serde_json::to_vec(&vote).expect("json");
    put("signed_message", "vote.payload", &[&[2u8 | 4][..], &vote_json].concat());

    // TEE evidence: each selector with the sample it mutates.
    let report = hex::decode(SNP_REPORT_HEX.trim()).expect("sample hex");
    let whitelist = Whitelist {
        version: 3,
        entries: vec![WhitelistEntry {
            tee: TeeType::SevSnp,
            measurement: "ab".repeat(48),
            image_version: "sage-worker 0.1.0".into(),
            tdx: None,
        }],
    };
    put("tee_evidence", "sgx_quote", &[&[0u8][..], SGX_QUOTE].concat());
    put("tee_evidence", "tdx_quote", &[&[1u8][..], TDX_QUOTE].concat());
    put("tee_evidence", "snp_report", &[&[2u8][..], &report].concat());
    put("tee_evidence", "snp_vcek", &[&[3u8][..], SNP_VCEK].concat());
    put("tee_evidence", "sgx_collateral", &[&[4u8][..], SGX_COLLATERAL.as_bytes()].concat());
    put("tee_evidence", "cert_table", &[&[5u8][..], &sage_tee::collect::vcek_cert_table(SNP_VCEK)].concat());
    put("tee_evidence", "whitelist", &[&[6u8][..], &serde_json::to_vec(&whitelist).expect("json")].concat());

    // Keystores: a full Sage keystore at a cheap scrypt cost.
    let wallet = Wallet::from_parts(
        stark(),
        obelysk_elgamal::SecretKey::from_felt(&Felt::from(0xe1_u64)).expect("a valid ElGamal secret"),
        WalletMetadata { derivation: None, account_index: 0 },
    );
    let keystore = wallet.to_keystore_json(PASSWORD, ScryptParams::insecure_for_tests(4)).expect("encrypts");
    put("keystore", "sage_keystore.json", keystore.as_bytes());

    // REST bodies.
    let submit = SubmitJob { client: Felt::from(0xc1_u64), client_job_id: Felt::from(1u8), spec: spec.clone() };
    let matmul = matmul_job();
    let envelope = prove(&matmul, &ProveConfig::insecure_for_tests()).expect("proves").encode().expect("encodes");
    let validate = ValidateRequest { job_id: Felt::from(0xf022_u64), spec: spec.clone(), envelope: envelope.bytes };
    let answer = ValidateResponse { vote, set_version: 1, index: 0, security_bits: Some(96), reason: None };
    let problem = Problem::new(ProblemCode::InvalidSpec, "matmul n = 3 is not a power of two in 2..=1024");
    let view = serde_json::json!({
        "id": "0x1", "client": "0xc1", "client_job_id": "0x1",
        "spec": {"type": "matmul", "n": 64, "seed": "0x7"}, "spec_hash": "0x2",
        "state": "paid", "worker": "0x5", "attempts": 1, "proof_hash": "0xabcd",
        "history": [{"job_id": "0x1", "seq": 0, "state": "submitted", "at_ms": 1}]
    });
    put("rest_bodies", "submit.json", &[&[0u8][..], &serde_json::to_vec(&submit).expect("json")].concat());
    put("rest_bodies", "validate.json", &[&[1u8][..], &serde_json::to_vec(&validate).expect("json")].concat());
    put("rest_bodies", "answer.json", &[&[2u8][..], &serde_json::to_vec(&answer).expect("json")].concat());
    put("rest_bodies", "job_view.json", &[&[3u8][..], &serde_json::to_vec(&view).expect("json")].concat());
    put("rest_bodies", "problem.json", &[&[4u8][..], &serde_json::to_vec(&problem).expect("json")].concat());

    // Job specs.
    put("job_spec", "matmul.json", &serde_json::to_vec(&spec).expect("json"));
    put(
        "job_spec",
        "matmul_max.json",
        br#"{"type":"matmul","n":1024,"seed":"0x800000000000011000000000000000000000000000000000000000000000000"}"#,
    );
    put("job_spec", "matmul_bad.json", br#"{"type":"matmul","n":3,"seed":"0x1"}"#);

    println!("wrote {written} seed files under {}", root.display());
}

/// The seed keystore's Stark key.
fn stark() -> sage_keys::StarkKey {
    sage_keys::StarkKey::from_secret(Felt::from(0x5eed_5eed_u64)).expect("a valid secret")
}
