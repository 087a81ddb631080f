//! Proof envelopes from the network: decode (compressed wire form and the raw postcard form)
//! and verify against the two fixture jobs.
//!
//! Oracle beyond "no panic": whatever the verifier accepts must carry the job's true output, and
//! an envelope decoded from the wire must re-encode to the same proof hash (one envelope, one hash).
//!
//! Stwo's verifier panics on some malformed proofs (it indexes proof parts without checking their
//! lengths); obelysk-prover runs it under `catch_unwind` and returns `VerifyError::Malformed`,
//! which is the behaviour under test. libfuzzer-sys's panic hook would abort on those caught
//! panics, so this target's hook only prints where it panicked; a panic that escapes `verify`
//! still aborts (libfuzzer-sys aborts after its own `catch_unwind`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use obelysk_prover::{Envelope, JobOutput, VerifyPolicy, verify};
use sage_fuzz::{matmul_job, vm_job};

fuzz_target!(init: {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic (caught by the verifier's guard unless the run aborts next): {}", info.location().map(|l| l.to_string()).unwrap_or_default());
    }));
}, |data: &[u8]| {
    let mut decoded = Vec::new();
    if let Ok((envelope, hash)) = Envelope::decode_with_hash(data) {
        let encoded = envelope.encode().expect("a decoded envelope re-encodes");
        assert_eq!(encoded.proof_hash, hash, "one envelope, two proof hashes");
        decoded.push(envelope);
    }
    if let Ok(envelope) = Envelope::from_postcard(data) {
        // The raw layer accepts non-canonical encodings (the wire layer above refuses them), but
        // what it decodes must survive a round trip.
        let bytes = envelope.to_postcard().expect("re-encodes");
        let again = Envelope::from_postcard(&bytes).expect("re-decodes").to_postcard().expect("re-encodes");
        assert_eq!(again, bytes, "postcard round trip changed the envelope");
        decoded.push(envelope);
    }
    for envelope in decoded {
        for job in [matmul_job(), vm_job()] {
            let Ok(verified) = verify(&envelope, &job, &VerifyPolicy::insecure_for_tests()) else { continue };
            let output = match &job.spec {
                obelysk_prover::JobSpec::Matmul(m) => JobOutput::Matmul(m.execute().expect("fixture runs")),
                obelysk_prover::JobSpec::Vm(v) => JobOutput::Vm(v.execute().expect("fixture runs")),
                _ => unreachable!("fixtures are matmul and vm"),
            };
            verified.check_output(&output).expect("the verifier accepted a proof of a wrong output");
        }
    }
});
