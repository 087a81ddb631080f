//! Round trips and soundness tests: every tampering must be rejected.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use num_traits::One;
use stwo::core::fields::qm31::SecureField;

use crate::matmul::{self, Cheat, MatmulJob};
use crate::vm::{Instruction, Program, VmJob};
use crate::vm_jump::VmJumpJob;
use crate::*;

fn cfg() -> ProveConfig {
    ProveConfig::insecure_for_tests()
}
/// The test config proving matmul with `protocol`.
fn cfg_with(protocol: MatmulProtocol) -> ProveConfig {
    ProveConfig { matmul: protocol, ..cfg() }
}
const PROTOCOLS: [MatmulProtocol; 2] = [MatmulProtocol::Opening, MatmulProtocol::Air];
fn policy() -> VerifyPolicy {
    VerifyPolicy::insecure_for_tests()
}
fn mm_job(n: u32) -> Job {
    Job::matmul(JobId::from_u128(1), WorkerAddress::from_u128(0x1234), MatmulJob::from_seed(n, [7; 32]))
}
fn vm_program() -> Program {
    // x = r0, y = r1: r2 = x*y + 5; r3 = (r2 - x) * r2; r0 = 9; r1 = r1 + r3
    Program::new(vec![
        Instruction::mul(2, 0, 1),
        Instruction::addi(2, 2, 5),
        Instruction::sub(3, 2, 0),
        Instruction::mul(3, 3, 2),
        Instruction::loadi(0, 9),
        Instruction::add(1, 1, 3),
        Instruction::mov(2, 1),
        Instruction::NOP,
    ])
}
pub(crate) fn vm_job() -> Job {
    Job::vm(
        JobId::from_u128(2),
        WorkerAddress::from_u128(0x1234),
        VmJob { program: vm_program(), inputs: [3, 4, 0, 0] },
    )
}

fn naive(n: usize, a: &[u32], b: &[u32]) -> Vec<u32> {
    let p = u64::from(stwo::core::fields::m31::P);
    let mut c = vec![0u32; n * n];
    for i in 0..n {
        for j in 0..n {
            let mut s = 0u64;
            for k in 0..n {
                s = (s + u64::from(a[i * n + k]) * u64::from(b[k * n + j])) % p;
            }
            c[i * n + j] = s as u32;
        }
    }
    c
}

#[test]
fn native_matmul_matches_naive() {
    for n in [2u32, 4, 8, 32] {
        let (a, b) = matmul::derive_matrices(n, &[3; 32]);
        assert_eq!(matmul::native_matmul(n as usize, &a, &b), naive(n as usize, &a, &b));
    }
}

#[test]
fn freivalds_value_matches_horner_of_product() {
    let n = 8u32;
    let (a, b) = matmul::derive_matrices(n, &[5; 32]);
    let c = naive(8, &a, &b);
    let delta = SecureField::from_u32_unchecked(3, 1, 4, 1);
    let horner = c.iter().fold(SecureField::default(), |acc, &x| {
        acc * delta + stwo::core::fields::m31::BaseField::from_u32_unchecked(x)
    });
    assert_eq!(matmul::freivalds_value(n, &a, &b, delta), horner);
}

#[test]
fn matmul_round_trip_all_small_sizes() {
    for protocol in PROTOCOLS {
        for n in [2u32, 4, 8, 16, 32] {
            let job = mm_job(n);
            let proved = prove_with_output(&job, &cfg_with(protocol)).unwrap();
            assert_eq!(proved.output, JobOutput::Matmul(job_matmul(&job).execute().unwrap()));
            let v = verify_bytes(&proved.encoded.bytes, &job, &policy()).unwrap();
            v.check_output(&proved.output).unwrap();
            assert_eq!(v.statement, proved.envelope.statement);
            assert_eq!(MatmulProtocol::of_sizes(&v.statement.sizes), Some(protocol));
            assert_eq!(proved.encoded.proof_hash, proof_hash(&proved.encoded.bytes).unwrap());
        }
    }
}

#[test]
fn protocols_commit_the_same_output_differently() {
    // The output commitment names its protocol: the AIR's root is not the opening's, and a
    // statement whose sizes name the other protocol is refused.
    let job = mm_job(8);
    let opening = prove_with_output(&job, &cfg_with(MatmulProtocol::Opening)).unwrap();
    let air = prove_with_output(&job, &cfg_with(MatmulProtocol::Air)).unwrap();
    assert_eq!(opening.output, air.output);
    assert_ne!(opening.envelope.statement.output_commitment, air.envelope.statement.output_commitment);
    let JobOutput::Matmul(c) = &air.output else { unreachable!() };
    for (proved, protocol) in [(&opening, MatmulProtocol::Opening), (&air, MatmulProtocol::Air)] {
        let recomputed = matmul::output_commitment(8, c, &cfg().proof, protocol).unwrap();
        assert_eq!(recomputed, proved.envelope.statement.output_commitment);
    }
    for (proved, sizes) in [(&opening, vec![8]), (&air, vec![8, 4]), (&opening, vec![8, 2]), (&opening, vec![8, 4, 1])]
    {
        let mut e = proved.envelope.clone();
        e.statement.sizes = sizes.clone();
        let r = verify(&e, &job, &policy());
        assert!(r.is_err(), "sizes {sizes:?} accepted");
    }
}

fn job_matmul(job: &Job) -> &MatmulJob {
    match &job.spec {
        JobSpec::Matmul(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn matmul_data_inputs_round_trip() {
    let n = 4;
    let (a, b) = matmul::derive_matrices(n, &[9; 32]);
    let job =
        Job::matmul(JobId::from_u128(3), WorkerAddress::from_u128(5), MatmulJob::from_data(n, a.clone(), b.clone()));
    let proved = prove_with_output(&job, &cfg()).unwrap();
    assert_eq!(proved.output, JobOutput::Matmul(naive(4, &a, &b)));
    verify(&proved.envelope, &job, &policy()).unwrap();
    // Same matrices given as a seed are a different input: rejected.
    let seed_job = Job::matmul(JobId::from_u128(3), WorkerAddress::from_u128(5), MatmulJob::from_seed(n, [9; 32]));
    assert!(matches!(
        verify(&proved.envelope, &seed_job, &policy()),
        Err(VerifyError::StatementMismatch { field: "input_commitment" })
    ));
}

#[test]
fn wrong_output_entry_rejected() {
    for protocol in PROTOCOLS {
        let job = mm_job(8);
        let proved = prove_with_output(&job, &cfg_with(protocol)).unwrap();
        let v = verify(&proved.envelope, &job, &policy()).unwrap();
        let JobOutput::Matmul(mut c) = proved.output.clone() else { unreachable!() };
        c[17] = (c[17] + 1) % stwo::core::fields::m31::P;
        assert!(matches!(v.check_output(&JobOutput::Matmul(c)), Err(VerifyError::OutputMismatch)));
        // Wrong output kind / shape.
        assert!(v.check_output(&JobOutput::Vm([0; 4])).is_err());
        assert!(v.check_output(&JobOutput::Matmul(vec![0; 3])).is_err());
    }
}

#[test]
fn prover_with_wrong_output_in_trace_fails() {
    let job = mm_job(8);
    let air = cfg_with(MatmulProtocol::Air);
    // Claims the honest Freivalds value: the constraints are unsatisfiable.
    let r = prove_inner(&job, &air, Cheat::WrongOutputInTrace);
    assert!(matches!(r, Err(ProveError::ConstraintsNotSatisfied(_))), "{r:?}");
    // Claims the value its wrong trace satisfies: proving succeeds, verification does not.
    let proved = prove_inner(&job, &air, Cheat::WrongOutputSelfConsistent).unwrap();
    let r = verify(&proved.envelope, &job, &policy());
    assert!(matches!(r, Err(VerifyError::Stark(_))), "{r:?}");
    // The opening protocol: a committed C with one wrong entry opens to a value the verifier's
    // Freivalds check refuses (the forged-value attack is in `matmul::opening`'s tests).
    let proved = prove_inner(&job, &cfg_with(MatmulProtocol::Opening), Cheat::WrongOutputInTrace).unwrap();
    let r = verify(&proved.envelope, &job, &policy());
    assert!(matches!(r, Err(VerifyError::WrongResult)), "{r:?}");
}

#[test]
fn flipped_bytes_rejected() {
    for protocol in PROTOCOLS {
        flipped_bytes_rejected_for(protocol);
    }
}

fn flipped_bytes_rejected_for(protocol: MatmulProtocol) {
    let job = mm_job(4);
    let proved = prove_with_output(&job, &cfg_with(protocol)).unwrap();
    let raw = proved.envelope.to_postcard().unwrap();
    let len = raw.len();
    let mut positions: Vec<usize> = (0..40).map(|i| i * len / 40).collect();
    positions.extend([1, 2, 5, 40, 80, len - 1, len - 2, len / 2 + 1]);
    for pos in positions {
        for bit in [0u8, 3, 7] {
            let mut bytes = raw.clone();
            bytes[pos] ^= 1 << bit;
            if let Ok(env) = Envelope::from_postcard(&bytes) {
                let r = verify(&env, &job, &policy());
                assert!(r.is_err(), "flip at {pos} bit {bit} of {len} accepted");
            }
        }
    }
    // And in the compressed form.
    let comp = &proved.encoded.bytes;
    for pos in (0..comp.len()).step_by(comp.len() / 16 + 1) {
        let mut bytes = comp.clone();
        bytes[pos] ^= 0x10;
        assert!(verify_bytes(&bytes, &job, &policy()).is_err(), "compressed flip at {pos}");
    }
}

#[test]
fn edited_sampled_value_rejected() {
    let job = mm_job(8);
    let env = prove(&job, &cfg_with(MatmulProtocol::Air)).unwrap();
    for (tree, col, point) in [(0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 3, 1), (3, 0, 0)] {
        let mut e = env.clone();
        e.proof.0.sampled_values[tree][col][point] += SecureField::one();
        assert!(verify(&e, &job, &policy()).is_err(), "sampled value {tree}/{col}/{point}");
    }
    let env = prove(&job, &cfg_with(MatmulProtocol::Opening)).unwrap();
    let columns = env.proof.0.sampled_values[0].len();
    assert!(columns > 1);
    for col in [0, 1, columns - 1] {
        let mut e = env.clone();
        e.proof.0.sampled_values[0][col][0] += SecureField::one();
        let r = verify(&e, &job, &policy());
        assert!(matches!(r, Err(VerifyError::WrongResult)), "opened value {col}: {r:?}");
    }
}

#[test]
fn statement_with_other_fields_rejected() {
    for protocol in PROTOCOLS {
        statement_with_other_fields_rejected_for(protocol);
    }
}

fn statement_with_other_fields_rejected_for(protocol: MatmulProtocol) {
    // The AIR fails in Stwo's verifier, the opening at its Freivalds check: either way the
    // Fiat–Shamir transcript, and so the challenge, differs.
    let transcript_differs = |r: Result<Verified, VerifyError>| {
        assert!(matches!(r, Err(VerifyError::Stark(_) | VerifyError::WrongResult)), "{protocol:?}: {r:?}");
    };
    let job = mm_job(8);
    let env = prove(&job, &cfg_with(protocol)).unwrap();
    // Another job id, with a verifier that expects that id.
    let mut e = env.clone();
    e.statement.job_id = JobId::from_u128(99);
    let other = Job { id: JobId::from_u128(99), ..job.clone() };
    transcript_differs(verify(&e, &other, &policy()));
    // Another worker.
    let mut e = env.clone();
    e.statement.worker = WorkerAddress::from_u128(0x999);
    let other = Job { worker: WorkerAddress::from_u128(0x999), ..job.clone() };
    transcript_differs(verify(&e, &other, &policy()));
    // Another input (a different seed), statement rewritten to it.
    let other = Job::matmul(job.id, job.worker, MatmulJob::from_seed(8, [8; 32]));
    let mut e = env.clone();
    e.statement.input_commitment = other.input_commitment().unwrap();
    transcript_differs(verify(&e, &other, &policy()));
    // Another output commitment.
    let mut e = env.clone();
    e.statement.output_commitment = Commitment([1; 32]);
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::OutputMismatch)));
    // Another size.
    let mut e = env.clone();
    e.statement.sizes[0] = 16;
    assert!(verify(&e, &mm_job(16), &policy()).is_err());
    // Unchanged statement, verifier holding a different job: mismatch before any STARK work.
    for (other, field) in [
        (Job { id: JobId::from_u128(2), ..job.clone() }, "job_id"),
        (Job { worker: WorkerAddress::from_u128(1), ..job.clone() }, "worker"),
        (Job::matmul(job.id, job.worker, MatmulJob::from_seed(8, [8; 32])), "input_commitment"),
        (vm_job(), "job_type"),
    ] {
        let r = verify(&env, &other, &policy());
        assert!(matches!(r, Err(VerifyError::StatementMismatch { field: f }) if f == field), "{field}: {r:?}");
    }
}

#[test]
fn proof_replayed_for_another_job_rejected() {
    for protocol in PROTOCOLS {
        proof_replayed_for_another_job_rejected_for(protocol);
    }
}

fn proof_replayed_for_another_job_rejected_for(protocol: MatmulProtocol) {
    let a = mm_job(4);
    let b = Job { id: JobId::from_u128(77), ..mm_job(4) };
    let env_a = prove(&a, &cfg_with(protocol)).unwrap();
    assert!(verify(&env_a, &b, &policy()).is_err());
    let mut replay = env_a.clone();
    replay.statement.job_id = b.id;
    assert!(verify(&replay, &b, &policy()).is_err());
    // The genuine proof for b verifies.
    let env_b = prove(&b, &cfg_with(protocol)).unwrap();
    verify(&env_b, &b, &policy()).unwrap();
    assert_ne!(env_a.encode().unwrap().proof_hash, env_b.encode().unwrap().proof_hash);
}

#[test]
fn config_below_minimum_rejected() {
    for protocol in PROTOCOLS {
        config_below_minimum_rejected_for(protocol);
    }
}

fn config_below_minimum_rejected_for(protocol: MatmulProtocol) {
    let job = mm_job(4);
    let env = prove(&job, &cfg_with(protocol)).unwrap();
    let r = verify(&env, &job, &VerifyPolicy::default());
    assert!(matches!(r, Err(VerifyError::InsufficientSecurity { min: 96, .. })), "{r:?}");
    // Claiming a stronger config than the proof was made with.
    let mut e = env.clone();
    e.config = ProofConfig::PRODUCTION;
    assert!(matches!(verify(&e, &job, &VerifyPolicy::default()), Err(VerifyError::ConfigMismatch)));
    // Out-of-range config is a typed error, not a panic.
    let mut e = env.clone();
    e.config.log_blowup_factor = 0;
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::Config(_))));
}

#[test]
fn truncated_oversized_and_garbage_envelopes_rejected() {
    let job = mm_job(4);
    let proved = prove_with_output(&job, &cfg()).unwrap();
    let bytes = &proved.encoded.bytes;
    for cut in [0, 1, 4, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        assert!(verify_bytes(&bytes[..cut], &job, &policy()).is_err(), "cut {cut}");
    }
    let raw = proved.envelope.to_postcard().unwrap();
    for cut in [0, 1, 3, raw.len() / 2, raw.len() - 1] {
        assert!(Envelope::from_postcard(&raw[..cut]).is_err(), "raw cut {cut}");
    }
    let mut trailing = raw.clone();
    trailing.push(0);
    assert!(matches!(Envelope::from_postcard(&trailing), Err(EnvelopeError::TrailingBytes(1))));
    let big = vec![0u8; MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(verify_bytes(&big, &job, &policy()), Err(VerifyError::Envelope(EnvelopeError::TooLarge { .. }))));
    // A zstd frame that inflates past the bound.
    let bomb = zstd::bulk::compress(&vec![0u8; MAX_DECOMPRESSED_BYTES + 1], 3).unwrap();
    assert!(verify_bytes(&bomb, &job, &policy()).is_err());
    // Deterministic garbage.
    let mut x = 0x1234_5678_u32;
    let garbage: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    assert!(verify_bytes(&garbage, &job, &policy()).is_err());
    assert!(Envelope::from_postcard(&garbage).is_err());
    // Wrong version.
    let mut e = proved.envelope.clone();
    e.version = 2;
    assert!(matches!(Envelope::from_postcard(&e.to_postcard().unwrap()), Err(EnvelopeError::Version { got: 2, .. })));
}

#[test]
fn malformed_proof_structure_rejected_without_panic() {
    let job = mm_job(4);
    let env = prove(&job, &cfg_with(MatmulProtocol::Air)).unwrap();
    let mut e = env.clone();
    e.proof.0.commitments.pop();
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::Malformed(_))));
    let mut e = env.clone();
    e.proof.0.sampled_values[2].pop();
    assert!(verify(&e, &job, &policy()).is_err());
    let mut e = env.clone();
    e.proof.0.queried_values[1].clear();
    assert!(verify(&e, &job, &policy()).is_err());
    let mut e = env.clone();
    e.proof.0.decommitments[2].hash_witness.clear();
    assert!(verify(&e, &job, &policy()).is_err());
    let mut e = env.clone();
    e.proof.0.fri_proof.inner_layers.clear();
    assert!(verify(&e, &job, &policy()).is_err());
    let mut e = env.clone();
    e.proof.0.commitments[0] = e.proof.0.commitments[1];
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::CircuitMismatch)));

    // The opening protocol: one tree, one opened value per column.
    let job = mm_job(8);
    let env = prove(&job, &cfg_with(MatmulProtocol::Opening)).unwrap();
    let malformed = |e: &Envelope, what: &str| {
        let r = verify(e, &job, &policy());
        assert!(matches!(r, Err(VerifyError::Malformed(_))), "{what}: {r:?}");
    };
    let mut e = env.clone();
    let root = e.proof.0.commitments[0];
    e.proof.0.commitments.push(root);
    malformed(&e, "two commitments");
    let mut e = env.clone();
    e.proof.0.sampled_values[0].pop();
    malformed(&e, "a column's value missing");
    let mut e = env.clone();
    e.proof.0.sampled_values[0][0].push(SecureField::one());
    malformed(&e, "two values for a column");
    let mut e = env.clone();
    e.proof.0.sampled_values.0.push(vec![]);
    malformed(&e, "a second tree of values");
    let mut e = env.clone();
    e.proof.0.commitments[0] = Default::default();
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::OutputMismatch)));
    for edit in [
        (|e: &mut Envelope| e.proof.0.queried_values[0].clear()) as fn(&mut Envelope),
        |e| e.proof.0.queried_values[0][0].clear(),
        |e| e.proof.0.decommitments[0].hash_witness.clear(),
        |e| e.proof.0.fri_proof.inner_layers.clear(),
        |e| e.proof.0.proof_of_work ^= 1,
    ] {
        let mut e = env.clone();
        edit(&mut e);
        let r = verify(&e, &job, &policy());
        assert!(matches!(r, Err(VerifyError::Stark(_) | VerifyError::Malformed(_))), "{r:?}");
    }
}

#[test]
fn invalid_jobs_are_errors() {
    for n in [0u32, 1, 3, 12, 2048] {
        let job = mm_job(n);
        assert!(matches!(prove(&job, &cfg()), Err(ProveError::Job(JobError::MatrixSize { .. }))));
    }
    let bad = Job::matmul(JobId::default(), WorkerAddress::default(), MatmulJob::from_data(2, vec![0; 4], vec![0; 3]));
    assert!(matches!(prove(&bad, &cfg()), Err(ProveError::Job(JobError::MatrixShape { .. }))));
    let bad =
        Job::matmul(JobId::default(), WorkerAddress::default(), MatmulJob::from_data(2, vec![u32::MAX; 4], vec![0; 4]));
    assert!(matches!(prove(&bad, &cfg()), Err(ProveError::Job(JobError::NotCanonical { .. }))));
    let mut vm = vm_job();
    if let JobSpec::Vm(v) = &mut vm.spec {
        v.program.instructions[0].src2 = 4;
    }
    assert!(matches!(prove(&vm, &cfg()), Err(ProveError::Job(JobError::Register { .. }))));
    let empty =
        Job::vm(JobId::default(), WorkerAddress::default(), VmJob { program: Program::new(vec![]), inputs: [0; 4] });
    assert!(matches!(prove(&empty, &cfg()), Err(ProveError::Job(JobError::ProgramLength { .. }))));
}

#[test]
fn backend_selection() {
    let job = mm_job(4);
    // Without the `gpu` feature the GPU is refused and Auto proves on the CPU; with it, the GPU
    // backend's own tests (gpu::backend_tests) cover both.
    #[cfg(not(feature = "gpu"))]
    {
        let gpu = ProveConfig { backend: ProverBackend::Gpu, ..cfg() };
        assert!(matches!(prove(&job, &gpu), Err(ProveError::BackendUnavailable { .. })));
    }
    let auto = ProveConfig { backend: ProverBackend::Auto, ..cfg() };
    let proved = prove_with_output(&job, &auto).unwrap();
    #[cfg(not(feature = "gpu"))]
    assert_eq!(proved.backend, ProverBackend::Cpu);
    verify(&proved.envelope, &job, &policy()).unwrap();
}

#[test]
fn vm_round_trip_and_output() {
    let job = vm_job();
    let proved = prove_with_output(&job, &cfg()).unwrap();
    // (3*4+5) = 17; r3 = (17-3)*17 = 238; r0 = 9; r1 = 4 + 238 = 242; r2 = 242.
    assert_eq!(proved.output, JobOutput::Vm([9, 242, 242, 238]));
    let v = verify_bytes(&proved.encoded.bytes, &job, &policy()).unwrap();
    v.check_output(&proved.output).unwrap();
    assert!(v.check_output(&JobOutput::Vm([9, 242, 242, 239])).is_err());
    // A wrong output register, with its commitment recomputed: the AIR rejects it.
    let mut e = proved.envelope.clone();
    e.public_output[1] = 243;
    e.statement.output_commitment = vm::output_commitment(&e.public_output);
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::Stark(_))));
    // Output that does not match the commitment.
    let mut e = proved.envelope.clone();
    e.public_output[0] = 10;
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::OutputMismatch)));
}

#[test]
fn vm_program_whose_commitment_differs_rejected() {
    let job = vm_job();
    let env = prove(&job, &cfg()).unwrap();
    let mut other = job.clone();
    if let JobSpec::Vm(v) = &mut other.spec {
        v.program.instructions[1] = Instruction::addi(2, 2, 6);
    }
    assert!(matches!(
        verify(&env, &other, &policy()),
        Err(VerifyError::StatementMismatch { field: "input_commitment" })
    ));
    // Statement rewritten to the other program: refused (the statement is in the transcript;
    // the binding of the table to the program is `vm_cheating_provers_are_caught`'s ForgedTable).
    let mut e = env.clone();
    e.statement.input_commitment = other.input_commitment().unwrap();
    assert!(matches!(verify(&e, &other, &policy()), Err(VerifyError::Stark(_))));
    // Other input registers, statement rewritten: the boundary constraints fail.
    let mut other = job.clone();
    if let JobSpec::Vm(v) = &mut other.spec {
        v.inputs = [3, 5, 0, 0];
    }
    let mut e = env.clone();
    e.statement.input_commitment = other.input_commitment().unwrap();
    assert!(matches!(verify(&e, &other, &policy()), Err(VerifyError::Stark(_))));
}

#[test]
fn vm_longer_program_matches_native() {
    let mut ins = Vec::new();
    for i in 0..100u32 {
        ins.push(Instruction::mul(0, 0, 1));
        ins.push(Instruction::addi(1, 0, i));
        ins.push(Instruction::sub(2, 1, 3));
        ins.push(Instruction::mov(3, 2));
    }
    let job = Job::vm(
        JobId::from_u128(5),
        WorkerAddress::from_u128(6),
        VmJob { program: Program::new(ins), inputs: [2, 3, 5, 7] },
    );
    let proved = prove_with_output(&job, &cfg()).unwrap();
    let JobSpec::Vm(v) = &job.spec else { unreachable!() };
    assert_eq!(proved.output, JobOutput::Vm(v.execute().unwrap()));
    verify(&proved.envelope, &job, &policy()).unwrap();
}

#[test]
fn production_config_matmul_and_vm() {
    let job = mm_job(32);
    for protocol in PROTOCOLS {
        let config = ProveConfig { matmul: protocol, ..ProveConfig::production() };
        let proved = prove_with_output(&job, &config).unwrap();
        assert!(proved.encoded.bytes.len() <= MAX_ENVELOPE_BYTES);
        let v = verify_bytes(&proved.encoded.bytes, &job, &VerifyPolicy::default()).unwrap();
        assert!(v.security_bits >= 96);
        v.check_output(&proved.output).unwrap();
        // The production config proves each protocol with its own 96-bit parameters.
        let expected = match protocol {
            MatmulProtocol::Opening => ProofConfig::PRODUCTION_OPENING,
            _ => ProofConfig::PRODUCTION,
        };
        assert_eq!(proved.envelope.config, expected);
        assert_eq!(v.security_bits, 96);
    }
    let job = vm_job();
    let proved = prove_with_output(&job, &ProveConfig::production()).unwrap();
    verify_bytes(&proved.encoded.bytes, &job, &VerifyPolicy::default()).unwrap();
}

#[test]
fn felt_hex_round_trip() {
    let w = WorkerAddress::from_hex("0x49d36570d4e46f48e99674bd3fcc84644ddd6b96f7c741b1562b82f9e004dc7").unwrap();
    assert_eq!(WorkerAddress::from_hex(&w.to_hex()), Some(w));
    assert_eq!(JobId::from_hex("0x7"), Some(JobId::from_u128(7)));
    assert_eq!(JobId::from_hex("0xzz"), None);
    assert_eq!(JobId::from_hex(&"1".repeat(65)), None);
}

#[test]
fn pinned_production_roots_match_circuit() {
    let config = ProofConfig::PRODUCTION;
    let pcs = config.to_pcs().unwrap();
    let table: Vec<String> = (1..=10)
        .map(|k| {
            let n = 1u32 << k;
            let root = matmul::circuit_root(n, &config, pcs);
            format!("    ({n}, \"{}\"),", Commitment(root.0).to_hex())
        })
        .collect();
    let expected: Vec<String> = matmul::PRODUCTION_ROOTS.iter().map(|(n, h)| format!("    ({n}, \"{h}\"),")).collect();
    assert_eq!(expected, table, "new table:\n{}", table.join("\n"));
}

/// `r1 = r0!` by a loop: r1 = 1; r2 = 1; loop { r1 *= r0; r0 -= r2; if r0 != 0 goto loop }; halt.
pub(crate) fn factorial_job(n: u32, max_steps: u32) -> Job {
    let program = Program::new(vec![
        Instruction::loadi(1, 1),
        Instruction::loadi(2, 1),
        Instruction::mul(1, 1, 0),
        Instruction::sub(0, 0, 2),
        Instruction::jnz(0, 2),
        Instruction::HALT,
    ]);
    Job::vm_jump(
        JobId::from_u128(11),
        WorkerAddress::from_u128(0x1234),
        VmJumpJob { program, inputs: [n, 0, 0, 0], max_steps },
    )
}

#[test]
fn vm_jump_loop_round_trip() {
    let job = factorial_job(5, 40);
    let JobSpec::VmJump(v) = &job.spec else { unreachable!() };
    let (regs, steps) = v.execute().unwrap();
    assert_eq!(regs, [0, 120, 1, 0]);
    assert_eq!(steps, 17);
    let proved = prove_with_output(&job, &cfg()).unwrap();
    assert_eq!(proved.output, JobOutput::Vm(regs));
    let verified = verify_bytes(&proved.encoded.bytes, &job, &policy()).unwrap();
    verified.check_output(&proved.output).unwrap();
    // A longer loop, data-dependent trip count.
    let job = factorial_job(12, 64);
    let proved = prove_with_output(&job, &cfg()).unwrap();
    assert_eq!(proved.output, JobOutput::Vm([0, 479_001_600, 1, 0]));
    verify(&proved.envelope, &job, &policy()).unwrap();
}

#[test]
fn vm_jump_tampering_rejected() {
    let job = factorial_job(5, 40);
    let env = prove(&job, &cfg()).unwrap();
    // Wrong output register with a matching commitment: the AIR rejects it.
    let mut e = env.clone();
    e.public_output[1] = 121;
    e.statement.output_commitment = vm::output_commitment(&e.public_output);
    assert!(matches!(verify(&e, &job, &policy()), Err(VerifyError::Stark(_))));
    // Another input (statement rewritten): boundary constraints fail.
    let other = factorial_job(6, 40);
    let mut e = env.clone();
    e.statement.input_commitment = other.input_commitment().unwrap();
    assert!(verify(&e, &other, &policy()).is_err());
    // A program whose commitment differs.
    let mut other = job.clone();
    if let JobSpec::VmJump(v) = &mut other.spec {
        v.program.instructions[2] = Instruction::add(1, 1, 0);
    }
    assert!(matches!(
        verify(&env, &other, &policy()),
        Err(VerifyError::StatementMismatch { field: "input_commitment" })
    ));
    let mut e = env.clone();
    e.statement.input_commitment = other.input_commitment().unwrap();
    assert!(matches!(verify(&e, &other, &policy()), Err(VerifyError::Stark(_))));
    // Flipped bytes.
    let raw = env.to_postcard().unwrap();
    for i in 0..24 {
        let pos = i * raw.len() / 24;
        let mut bytes = raw.clone();
        bytes[pos] ^= 0x04;
        if let Ok(e) = Envelope::from_postcard(&bytes) {
            assert!(verify(&e, &job, &policy()).is_err(), "flip at {pos}");
        }
    }
}

#[test]
fn vm_jump_invalid_programs_are_errors() {
    // Never halts within the budget.
    let job = factorial_job(50, 20);
    assert!(matches!(prove(&job, &cfg()), Err(ProveError::Job(JobError::DidNotHalt { .. }))));
    // Jump outside the program.
    let mut bad = factorial_job(5, 40);
    if let JobSpec::VmJump(v) = &mut bad.spec {
        v.program.instructions[4] = Instruction::jnz(0, 99);
    }
    assert!(matches!(prove(&bad, &cfg()), Err(ProveError::Job(JobError::JumpTarget { .. }))));
    // Runs off the end without halting.
    let off = Job::vm_jump(
        JobId::default(),
        WorkerAddress::default(),
        VmJumpJob { program: Program::new(vec![Instruction::NOP]), inputs: [0; 4], max_steps: 8 },
    );
    assert!(matches!(prove(&off, &cfg()), Err(ProveError::Job(JobError::DidNotHalt { .. }))));
    // Control flow is rejected by the straight-line VM.
    let JobSpec::VmJump(v) = &factorial_job(5, 40).spec else { unreachable!() };
    let sl = Job::vm(JobId::default(), WorkerAddress::default(), VmJob { program: v.program.clone(), inputs: [0; 4] });
    assert!(matches!(prove(&sl, &cfg()), Err(ProveError::Job(JobError::ControlFlow { index: 4 }))));
}

#[test]
fn vm_jump_production_config() {
    let job = factorial_job(10, 100);
    let proved = prove_with_output(&job, &ProveConfig::production()).unwrap();
    verify_bytes(&proved.encoded.bytes, &job, &VerifyPolicy::default()).unwrap();
}

#[test]
fn one_envelope_has_one_proof_hash_however_it_is_compressed() {
    // The attack: a proof whose round timed out is re-announced under a fresh hash by compressing
    // the same envelope differently (another zstd level), so validators would vote on it again.
    let job = mm_job(4);
    let env = prove(&job, &cfg()).unwrap();
    let encoded = env.encode().unwrap();
    let raw = env.to_postcard().unwrap();
    let recompressed = zstd::bulk::compress(&raw, 19).unwrap();
    assert_ne!(recompressed, encoded.bytes, "a different compression of the same envelope");
    assert_eq!(proof_hash(&recompressed).unwrap(), encoded.proof_hash);
    verify_bytes(&recompressed, &job, &policy()).unwrap();
    // A non-canonical postcard body (the version written as a two-byte varint) decodes to the
    // same envelope in a lenient decoder; it is refused and has no hash.
    let mut padded = vec![raw[0] | 0x80, 0x00];
    padded.extend_from_slice(&raw[1..]);
    let padded = zstd::bulk::compress(&padded, 3).unwrap();
    assert!(proof_hash(&padded).is_err());
    assert!(matches!(
        Envelope::decode(&padded),
        Err(EnvelopeError::NonCanonical | EnvelopeError::Decode(_) | EnvelopeError::Version { .. })
    ));
}

#[test]
fn program_encoding_round_trips_and_refuses_what_is_not_a_program() {
    let program = vm_program();
    assert_eq!(Program::decode(&program.encode()).unwrap(), program);
    let jumpy = Program::new(vec![Instruction::jnz(1, 2), Instruction::jmp(0), Instruction::HALT]);
    assert_eq!(Program::decode(&jumpy.encode()).unwrap(), jumpy);
    let good = program.encode();
    assert!(matches!(Program::decode(&good[..good.len() - 1]), Err(JobError::ProgramEncoding { .. })));
    assert!(matches!(Program::decode(&[]), Err(JobError::ProgramLength { len: 0, .. })));
    let mut bad_op = good.clone();
    bad_op[0] = 10;
    assert!(matches!(Program::decode(&bad_op), Err(JobError::ProgramEncoding { .. })));
    let mut bad_register = good.clone();
    bad_register[1] = 4;
    assert!(matches!(Program::decode(&bad_register), Err(JobError::Register { index: 0, register: 4, .. })));
    let mut bad_imm = good;
    bad_imm[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    assert!(matches!(Program::decode(&bad_imm), Err(JobError::NotCanonical { .. })));
}

#[test]
fn programs_parse_from_their_text_form() {
    let text = "# r2 = r0*r1 + 5\nmul r2 r0 r1\naddi r2, r2, 5   # trailing comment\n\nsub r3 r2 r0\nmul r3 r3 r2\n\
                loadi r0 9\nadd r1 r1 r3\nmov r2 r1\nnop\n";
    assert_eq!(Program::parse(text).unwrap(), vm_program());
    let jumpy = Program::parse("jnz r1 0x2\njmp 0\nhalt").unwrap();
    assert_eq!(jumpy, Program::new(vec![Instruction::jnz(1, 2), Instruction::jmp(0), Instruction::HALT]));
    for (bad, mention) in [
        ("add r0 r1", "takes 3 operands"),
        ("add r0 r1 r4", "register 4"),
        ("add r0 r1 x1", "not a register"),
        ("loadi r0 2147483647", "canonical"),
        ("loadi r0 0xzz", "not a number"),
        ("fly r0", "unknown instruction"),
        ("# nothing\n", "1..="),
    ] {
        let err = Program::parse(bad).unwrap_err().to_string();
        assert!(err.contains(mention), "{bad:?}: {err}");
    }
}

/// The cheating provers of issue 14 item 11, against both VM job types: each breaks one rule of
/// the machine, and is refused by the constraints (Stwo's prover finds the composition is not a
/// polynomial, as a verifier's out-of-domain check would) or, when its trace is self-consistent,
/// by the verifier.
#[test]
fn vm_cheating_provers_are_caught() {
    // A straight-line program as long as its trace (32 rows): it ends on its own last
    // instruction, with no `Halt` appended.
    let exact = Job::vm(
        JobId::from_u128(3),
        WorkerAddress::from_u128(0x1234),
        VmJob { program: Program::new(vm_program().instructions.repeat(4)), inputs: [3, 4, 0, 0] },
    );
    for job in [vm_job(), exact, factorial_job(5, 40)] {
        let honest = prove_inner(&job, &cfg(), Cheat::None).unwrap();
        verify(&honest.envelope, &job, &policy()).unwrap();
        let native = match &job.spec {
            JobSpec::Vm(v) => v.execute().unwrap(),
            JobSpec::VmJump(v) => v.execute().unwrap().0,
            JobSpec::Matmul(_) => unreachable!(),
        };
        assert_eq!(honest.output, JobOutput::Vm(native));
        for cheat in [Cheat::ForgedPc, Cheat::WrongMultiplicity, Cheat::SkippedRow] {
            let r = prove_inner(&job, &cfg(), cheat);
            assert!(matches!(r, Err(ProveError::ConstraintsNotSatisfied(_))), "{:?} {cheat:?}: {r:?}", job.job_type());
        }
        // Another program's run with a table of that program: every constraint holds, so a
        // proof is made; the verifier's table, computed from the job's program, refuses it.
        let forged = prove_inner(&job, &cfg(), Cheat::ForgedTable).unwrap();
        assert_ne!(forged.output, honest.output, "the forged program computes something else");
        let r = verify(&forged.envelope, &job, &policy());
        assert!(matches!(r, Err(VerifyError::Stark(_))), "{:?}: {r:?}", job.job_type());
    }
    // No `first` row: a cycle of Halt rows claiming registers the program never computes (the
    // boundary constraints then bind nothing; the lookup's count of `first` rows and the step
    // counter refuse it).
    let r = prove_inner(&factorial_job(5, 40), &cfg(), Cheat::NoFirst);
    assert!(matches!(r, Err(ProveError::ConstraintsNotSatisfied(_))), "{r:?}");
}

/// The step budget is a constraint: a run that needs one step more than the budget has no
/// proof, even where the trace (a power of two) has room for it.
#[test]
fn vm_jump_step_budget_is_a_constraint() {
    // 17 steps: a budget of 16 is too small although its trace (32 rows) would hold them.
    let tight = factorial_job(5, 16);
    assert!(matches!(prove(&tight, &cfg()), Err(ProveError::Job(JobError::DidNotHalt { .. }))));
    // A cheating prover runs past it anyway: on the row 16 steps in the machine is not at Halt.
    let r = prove_inner(&tight, &cfg(), Cheat::OverBudget);
    assert!(matches!(r, Err(ProveError::ConstraintsNotSatisfied(_))), "{r:?}");
    // The exact budget proves.
    let job = factorial_job(5, 17);
    verify(&prove(&job, &cfg()).unwrap(), &job, &policy()).unwrap();
    // An honest run proven on a trace half the size the budget sets, with the honest statement:
    // the verifier takes the trace size from the job and refuses it.
    let job = factorial_job(5, 40);
    let short = prove_inner(&job, &cfg(), Cheat::ShortTrace).unwrap();
    assert_eq!(short.output, prove_with_output(&job, &cfg()).unwrap().output);
    assert!(verify(&short.envelope, &job, &policy()).is_err());
}
