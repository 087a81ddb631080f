//! The job spec parser: what clients send in `POST /v1/jobs` and what assignments carry.
//!
//! Oracles: a spec that parses re-serialises to a spec that parses to the same value with the same
//! hash; a spec the protocol's size rules accept is one the prover accepts too (else the
//! coordinator would escrow and queue jobs that every worker refuses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use obelysk_prover::matmul::MatmulJob;
use sage_protocol::JobSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<JobSpec>(data) else { return };
    let again: JobSpec = serde_json::from_slice(&serde_json::to_vec(&spec).expect("serialises")).expect("re-parses");
    assert_eq!(again, spec, "JSON round trip changed the spec");
    assert_eq!(again.spec_hash(), spec.spec_hash(), "spec hash is not a function of the spec");
    let _ = spec.work_units();
    let _ = spec.type_name();
    if spec.validate().is_ok() {
        match spec {
            JobSpec::Matmul { n, seed } => {
                MatmulJob::from_seed(n, seed.to_bytes_be())
                    .validate()
                    .expect("the protocol accepts a size the prover refuses");
            }
            _ => {}
        }
    }
});
