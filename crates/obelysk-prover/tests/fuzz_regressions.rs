//! Inputs `cargo xtask fuzz` found, kept as regression tests. Each is a mutated real envelope of
//! the fuzz fixture job (matmul n = 4, seed [7; 32], test parameters).

use obelysk_prover::{Envelope, Job, JobId, VerifyError, VerifyPolicy, WorkerAddress, matmul::MatmulJob, verify};

fn fixture_job() -> Job {
    Job::matmul(JobId::from_u128(0xf022), WorkerAddress::from_u128(0x5a6e), MatmulJob::from_seed(4, [7; 32]))
}

fn decode(bytes: &[u8]) -> Envelope {
    Envelope::decode(bytes).or_else(|_| Envelope::from_postcard(bytes)).expect("the fuzzer's input decodes")
}

/// A decommitment with fewer hashes than its queries need: stwo's Merkle verifier indexes past
/// the end (`vcs_lifted/verifier.rs:132`, index out of bounds). The verifier must answer with a
/// typed error, not take the validator down.
#[test]
fn short_merkle_decommitment_is_malformed_not_a_crash() {
    let envelope = decode(include_bytes!("data/stwo_merkle_index_oob.bin"));
    let err = verify(&envelope, &fixture_job(), &VerifyPolicy::insecure_for_tests()).unwrap_err();
    // The message is the caught panic's: proof that this input still reaches stwo's panic.
    assert!(matches!(&err, VerifyError::Malformed(m) if m.contains("index out of bounds")), "{err:?}");
}
