//! The one conversion of a [`JobSpec`] into what `obelysk-prover` proves and verifies, and the
//! job's output computed natively (feature `prover`).

use obelysk_prover::{Job, JobId, JobOutput, WorkerAddress, matmul::MatmulJob, vm, vm_jump};
use sha2::{Digest, Sha256};
use starknet_types_core::felt::Felt;

use crate::spec::{JobSpec, SpecError, check_matrix_blob};

impl JobSpec {
    /// The prover's job for `job_id` proved by `worker`, with the blobs [`blobs`](Self::blobs)
    /// names in that order (each checked against its sha256, its size and its values): the one
    /// place a wire spec becomes a prover job, for the worker, the validators, the coordinator
    /// and the SDK alike.
    pub fn prover_job(&self, job_id: Felt, worker: Felt, blobs: &[Vec<u8>]) -> Result<Job, SpecError> {
        self.validate()?;
        let (id, worker) = (JobId(job_id.to_bytes_be()), WorkerAddress(worker.to_bytes_be()));
        let prover = |e: obelysk_prover::JobError| SpecError::Prover(e.to_string());
        let job = match self {
            Self::Matmul { n, seed } => Job::matmul(id, worker, MatmulJob::from_seed(*n, seed.to_bytes_be())),
            Self::MatmulData { n, a, b } => {
                let [blob_a, blob_b] = blobs else {
                    return Err(SpecError::Prover(format!("matmul_data takes 2 blobs, got {}", blobs.len())));
                };
                let a = matrix(*n, "a", a, blob_a)?;
                let b = matrix(*n, "b", b, blob_b)?;
                Job::matmul(id, worker, MatmulJob::from_data(*n, a, b))
            }
            Self::Vm { program, inputs } => {
                let program = vm::Program::decode(&program.0).map_err(prover)?;
                Job::vm(id, worker, vm::VmJob { program, inputs: *inputs })
            }
            Self::VmJump { program, inputs, max_steps } => {
                let program = vm::Program::decode(&program.0).map_err(prover)?;
                Job::vm_jump(id, worker, vm_jump::VmJumpJob { program, inputs: *inputs, max_steps: *max_steps })
            }
        };
        job.input_commitment().map_err(prover)?;
        Ok(job)
    }
}

/// A matrix blob checked against its digest, size and values.
fn matrix(n: u32, which: &'static str, sha256: &[u8; 32], bytes: &[u8]) -> Result<Vec<u32>, SpecError> {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if &digest != sha256 {
        return Err(SpecError::Blob {
            which,
            sha256: crate::hex32::lower_hex(sha256),
            reason: format!("the bytes hash to {}", crate::hex32::lower_hex(&digest)),
        });
    }
    check_matrix_blob(n, which, sha256, bytes)
}

/// The output of a prover job, computed natively (no proof): `C` for a matmul, the final
/// registers for the VMs. What a coordinator serves and a client checks against the proof's
/// output commitment.
pub fn execute(job: &Job) -> Result<JobOutput, SpecError> {
    let prover = |e: obelysk_prover::JobError| SpecError::Prover(e.to_string());
    Ok(match &job.spec {
        obelysk_prover::JobSpec::Matmul(m) => JobOutput::Matmul(m.execute().map_err(prover)?),
        obelysk_prover::JobSpec::Vm(v) => JobOutput::Vm(v.execute().map_err(prover)?),
        obelysk_prover::JobSpec::VmJump(v) => JobOutput::Vm(v.execute().map_err(prover)?.0),
        other => return Err(SpecError::Prover(format!("no native run for {other:?}"))),
    })
}

/// An output as bytes: little-endian `u32`s (row-major `C`, or the registers).
pub fn output_bytes(output: &JobOutput) -> Vec<u8> {
    let values: &[u32] = match output {
        JobOutput::Matmul(c) => c,
        JobOutput::Vm(r) => r,
        _ => &[],
    };
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The output a job of `spec`'s type has, from its bytes ([`output_bytes`]'s inverse).
pub fn output_from_bytes(spec: &JobSpec, bytes: &[u8]) -> Result<JobOutput, SpecError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(SpecError::Prover(format!("an output of {} bytes is not u32s", bytes.len())));
    }
    let values: Vec<u32> = bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
    match spec {
        JobSpec::Vm { .. } | JobSpec::VmJump { .. } => <[u32; crate::spec::VM_REGISTERS]>::try_from(values.as_slice())
            .map(JobOutput::Vm)
            .map_err(|_| SpecError::Prover(format!("a VM output is 4 registers, got {}", values.len()))),
        _ => Ok(JobOutput::Matmul(values)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::VmProgram;
    use obelysk_prover::vm::{Instruction, Program};

    fn blob(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn every_shape_converts_and_runs() {
        let (id, worker) = (Felt::from(7u8), Felt::from(9u8));
        let seeded = JobSpec::Matmul { n: 4, seed: Felt::ONE }.prover_job(id, worker, &[]).unwrap();
        assert_eq!(seeded.job_type(), obelysk_prover::JobType::Matmul);

        let (a, b) = (blob(&(0..16u32).collect::<Vec<_>>()), blob(&[1; 16]));
        let data = JobSpec::MatmulData { n: 4, a: sha(&a), b: sha(&b) };
        let job = data.prover_job(id, worker, &[a.clone(), b.clone()]).unwrap();
        // Row i of A·ones is the sum of row i of A.
        let JobOutput::Matmul(c) = execute(&job).unwrap() else { panic!("not a matmul output") };
        assert_eq!(&c[..4], &[6, 6, 6, 6]);
        assert_eq!(
            output_from_bytes(&data, &output_bytes(&JobOutput::Matmul(c.clone()))).unwrap(),
            JobOutput::Matmul(c)
        );

        let program = Program::new(vec![Instruction::mul(2, 0, 1), Instruction::addi(2, 2, 5)]);
        let vm = JobSpec::Vm { program: VmProgram(program.encode()), inputs: [3, 4, 0, 0] };
        let out = execute(&vm.prover_job(id, worker, &[]).unwrap()).unwrap();
        assert_eq!(out, JobOutput::Vm([3, 4, 17, 0]));
        assert_eq!(output_from_bytes(&vm, &output_bytes(&out)).unwrap(), out);

        // r0 counts down from 3 while r1 accumulates 10 per turn.
        let looping = Program::new(vec![
            Instruction::jnz(0, 2),
            Instruction::HALT,
            Instruction::addi(1, 1, 10),
            Instruction::addi(0, 0, (1 << 31) - 2),
            Instruction::jmp(0),
        ]);
        let jump = JobSpec::VmJump { program: VmProgram(looping.encode()), inputs: [3, 0, 0, 0], max_steps: 64 };
        assert_eq!(execute(&jump.prover_job(id, worker, &[]).unwrap()).unwrap(), JobOutput::Vm([0, 30, 0, 0]));
    }

    #[test]
    fn blobs_that_are_not_the_named_matrices_are_refused() {
        let (a, b) = (blob(&[1; 16]), blob(&[2; 16]));
        let spec = JobSpec::MatmulData { n: 4, a: sha(&a), b: sha(&b) };
        let (id, worker) = (Felt::ONE, Felt::TWO);
        let err = spec.prover_job(id, worker, &[b.clone(), a.clone()]).unwrap_err();
        assert!(matches!(err, SpecError::Blob { which: "a", .. }), "{err}");
        assert!(matches!(spec.prover_job(id, worker, std::slice::from_ref(&a)), Err(SpecError::Prover(_))));
        let short = blob(&[1; 15]);
        let spec_short = JobSpec::MatmulData { n: 4, a: sha(&short), b: sha(&b) };
        let err = spec_short.prover_job(id, worker, &[short, b.clone()]).unwrap_err();
        assert!(err.to_string().contains("60 bytes"), "{err}");
        let mut big = vec![1u32; 16];
        big[5] = (1 << 31) - 1;
        let big = blob(&big);
        let spec_big = JobSpec::MatmulData { n: 4, a: sha(&a), b: sha(&big) };
        let err = spec_big.prover_job(id, worker, &[a, big]).unwrap_err();
        assert!(matches!(err, SpecError::Blob { which: "b", .. }) && err.to_string().contains("entry 5"), "{err}");
    }

    #[test]
    fn the_wire_rules_and_the_provers_agree_on_programs() {
        // Every two-instruction program of one varied instruction and a halt: the wire accepts
        // exactly what the prover's job validation accepts, for both VMs.
        let mut accepted = [0usize; 2];
        for op in 0..=10u8 {
            for register in [0u8, 3, 4] {
                for imm in [0u32, 1, 2, (1 << 31) - 2, (1 << 31) - 1] {
                    let mut bytes = vec![op, register, 0, register];
                    bytes.extend_from_slice(&imm.to_le_bytes());
                    bytes.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
                    let prover = |bytes: &[u8], straight: bool| {
                        Program::decode(bytes).is_ok_and(|program| {
                            if straight {
                                vm::VmJob { program, inputs: [0; 4] }.validate().is_ok()
                            } else {
                                vm_jump::VmJumpJob { program, inputs: [0; 4], max_steps: 8 }.validate().is_ok()
                            }
                        })
                    };
                    let jump = JobSpec::VmJump { program: VmProgram(bytes.clone()), inputs: [0; 4], max_steps: 8 };
                    assert_eq!(
                        jump.validate().is_ok(),
                        prover(&bytes, false),
                        "vm_jump: op {op} register {register} imm {imm}"
                    );
                    // A straight-line program cannot end in a halt: use the instruction twice.
                    bytes.truncate(8);
                    bytes.extend_from_within(..8);
                    let straight = JobSpec::Vm { program: VmProgram(bytes.clone()), inputs: [0; 4] };
                    assert_eq!(
                        straight.validate().is_ok(),
                        prover(&bytes, true),
                        "vm: op {op} register {register} imm {imm}"
                    );
                    accepted[0] += usize::from(jump.validate().is_ok());
                    accepted[1] += usize::from(straight.validate().is_ok());
                }
            }
        }
        // Both sides accept some and refuse some (the comparison is not vacuous).
        assert!(accepted.iter().all(|&n| n > 0 && n < 11 * 3 * 5), "{accepted:?}");
    }
}
