//! Real Stwo (Circle STARK over M31) proofs that a Sage job was executed, bound to the job, the
//! worker and the inputs, and small enough for the chain.
//!
//! A worker calls [`prove`] (or [`prove_with_output`], which also hands back the job's output) on a
//! [`Job`]; it gets an [`Envelope`]: the [`Statement`] (job type, job id, sizes, input and output
//! commitments, worker address), the [`ProofConfig`] and the Stwo proof. [`Envelope::encode`]
//! gives the zstd-compressed wire bytes and their blake3 [`ProofHash`] (the on-chain proof hash).
//! A validator or client calls [`verify`] (or [`verify_bytes`]) with the job it expects and a
//! [`VerifyPolicy`].
//!
//! ```
//! use obelysk_prover::{prove, verify, Job, JobId, JobOutput, ProveConfig, VerifyPolicy, WorkerAddress};
//! use obelysk_prover::matmul::MatmulJob;
//!
//! let job = Job::matmul(JobId::from_u128(7), WorkerAddress::from_u128(0xabc), MatmulJob::from_seed(8, [1; 32]));
//! // Tests use the insecure config for speed; production uses `ProveConfig::production()`.
//! let proved = obelysk_prover::prove_with_output(&job, &ProveConfig::insecure_for_tests())?;
//! let verified = verify(&proved.envelope, &job, &VerifyPolicy::insecure_for_tests())?;
//! // A client holding the output checks it against the proven output commitment.
//! verified.check_output(&proved.output)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Job types
//! Each job type is a module behind the same [`Job`] → proof → verification flow: [`matmul`]
//! (`C = A·B` over M31, a Freivalds check against a committed output; by default proven without
//! an AIR, by opening a commitment to `C`'s coefficients at a random point —
//! [`matmul::opening`], [`MatmulProtocol`]),
//! [`vm`] (the Obelysk register VM, straight-line programs as data: the cheapest circuit) and
//! [`vm_jump`] (the same VM with `Jnz`/`Jmp`/`Halt`: a program counter and a LogUp lookup into the
//! program). A new job type is a new module plus one [`JobSpec`] variant.
//!
//! # What a verified proof means
//! [`verify`] returning [`Verified`] means, up to the configured soundness error: *for the job id,
//! worker and inputs the verifier holds (the input commitment is recomputed from them), there is an
//! output whose commitment is `statement.output_commitment` and which is the correct result of the
//! job*. It does **not** mean the output reached the client (a client checks that with
//! [`Verified::check_output`]), that the worker did the work itself (anyone holding the inputs can
//! prove), or anything about when the work was done. The statement is absorbed into the
//! Fiat–Shamir channel before the first challenge on both sides, so a proof for one job id,
//! worker, input or output fails for any other; the verifier pins the circuit (the preprocessed
//! Merkle root) per job type, size and config, so the prover cannot choose its own selectors.
//!
//! # Security parameters
//! Security bits are `pow_bits + log_blowup_factor × n_queries` (Stwo's conjectured FRI
//! security). [`ProofConfig::PRODUCTION`] is blowup 4, 38 queries, 20 grinding bits, FRI fold
//! step 3: 96 bits (chosen over blowup 8 / 26 queries: ≈ 3× faster proving for ≈ 25 % more bytes);
//! matmul with the opening protocol uses [`ProofConfig::PRODUCTION_OPENING`] instead (12 grinding
//! bits, 42 queries: also 96 bits; see [`ProveConfig::proof_for`]). The config is recorded in the envelope; [`VerifyPolicy::default`] rejects
//! anything below 96 bits. [`ProofConfig::insecure_for_tests`] (≈ 8 bits) exists only to keep
//! unit tests fast. Merkle trees and the channel use Blake2s. Extension-field challenges are
//! drawn from QM31 (≈ 2^124 elements).
//!
//! # Backends
//! [`ProverBackend::Cpu`] is Stwo's SIMD backend on all cores (rayon). [`ProverBackend::Gpu`]
//! (feature `gpu`) proves on [`gpu::GpuBackend`]: circle FFTs, Merkle trees, DEEP quotients, FRI
//! folds, grinding and constraint evaluation on a wgpu device, the rest on the SIMD backend; the proof is byte-identical to the
//! CPU proof, a device error redoes that step on the CPU, and the GPU-made proof is verified before
//! it is returned (redone on the CPU if it fails). Without the feature or an adapter, `Gpu` is
//! [`ProveError::BackendUnavailable`]. [`ProverBackend::Auto`] (the default) takes a hardware GPU
//! and otherwise the CPU (logged once); [`Proved::backend`] says which ran. The API is synchronous and
//! CPU-bound: call it from `spawn_blocking` or a dedicated thread, never on an async runtime
//! thread. Phases are `tracing` spans (`prove`, `execute`, `commit_main`, `stark_prove`, ...);
//! enable span close events to get their timings.
//!
//! # Performance notes
//! A matmul proof with the opening protocol costs the native multiply plus one extension FFT and
//! one Merkle tree over the `n²` values and a small FRI: measured at n = 1024 on 2 cores,
//! 0.19 s against 0.15 s for the multiply alone (1.26×), 59 KB, verified in 7 ms; the AIR
//! protocol took 2.9 s (15× slower) for 149 KB (`cargo xtask bench prover` prints both). For the
//! AIRs, proving is dominated by Blake2s Merkle hashing of the four trees (preprocessed, main,
//! interaction, composition), whose cost grows with rows × blowup, not with the number of
//! columns. The prover keeps the most recently used circuit (twiddles and committed
//! preprocessed tree; ≈ 0.3 GB at n = 1024) so repeated proofs of the same size skip that work.
//! The verifier pins circuit roots from a built-in table for [`ProofConfig::PRODUCTION`] matmul
//! and otherwise computes them once per process. Build with `-C target-cpu=native` for
//! AVX-512/AVX2.
//!
//! # Robustness
//! Malformed envelopes and proofs are rejected with typed errors. Stwo's verifier indexes proof
//! parts without checking their lengths, so verification runs under
//! [`std::panic::catch_unwind`] as a last line of defence: a panic there becomes
//! [`VerifyError::Malformed`] (the default panic hook still prints it).
//!
//! # Toolchain
//! Stwo uses unstable library features (`portable_simd`, ...). The workspace's
//! `.cargo/config.toml` sets `RUSTC_BOOTSTRAP=1` so that it builds on the stable toolchain; build
//! outside the workspace with that variable set. `-C target-cpu=native` lets the SIMD backend use
//! AVX-512/AVX2 (opt-in; do not bake it into artifacts for other machines).

pub mod config;
pub mod envelope;
pub mod error;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod matmul;
mod stark;
pub mod statement;
pub mod vm;
pub mod vm_jump;

#[cfg(test)]
mod tests;

use tracing::info_span;

pub use config::{MatmulProtocol, ProofConfig, ProveConfig, ProverBackend, VerifyPolicy};
pub use envelope::{
    ENVELOPE_VERSION, EncodedEnvelope, Envelope, MAX_DECOMPRESSED_BYTES, MAX_ENVELOPE_BYTES, proof_hash,
};
pub use error::{ConfigError, EnvelopeError, JobError, ProveError, VerifyError};
pub use stark::Proof;
pub use statement::{Commitment, JobId, JobType, ProofHash, Statement, WorkerAddress};

/// A job to prove or verify: who it is for, and what it computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Job identifier.
    pub id: JobId,
    /// The worker that proves it.
    pub worker: WorkerAddress,
    /// What the job computes, with its inputs.
    pub spec: JobSpec,
}

/// The job types, each a module.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobSpec {
    /// Matrix multiplication over M31.
    Matmul(matmul::MatmulJob),
    /// A straight-line Obelysk VM program.
    Vm(vm::VmJob),
    /// An Obelysk VM program with control flow.
    VmJump(vm_jump::VmJumpJob),
}

/// A job as the provers take it: a matmul, or either VM job on the one machine AIR.
enum Circuit<'a> {
    Matmul(&'a matmul::MatmulJob),
    Vm(vm_jump::VmSpec<'a>),
}

impl JobSpec {
    fn circuit(&self) -> Circuit<'_> {
        match self {
            JobSpec::Matmul(m) => Circuit::Matmul(m),
            JobSpec::Vm(v) => Circuit::Vm(vm_jump::VmSpec::Straight(v)),
            JobSpec::VmJump(v) => Circuit::Vm(vm_jump::VmSpec::Branching(v)),
        }
    }
}

/// The output of a job (what the client receives besides the proof).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobOutput {
    /// `C` row-major.
    Matmul(Vec<u32>),
    /// Final registers (`vm` and `vm-jump`).
    Vm([u32; vm::N_REGISTERS]),
}

impl Job {
    /// A matmul job.
    pub fn matmul(id: JobId, worker: WorkerAddress, job: matmul::MatmulJob) -> Self {
        Self { id, worker, spec: JobSpec::Matmul(job) }
    }

    /// A VM job.
    pub fn vm(id: JobId, worker: WorkerAddress, job: vm::VmJob) -> Self {
        Self { id, worker, spec: JobSpec::Vm(job) }
    }

    /// A branching VM job.
    pub fn vm_jump(id: JobId, worker: WorkerAddress, job: vm_jump::VmJumpJob) -> Self {
        Self { id, worker, spec: JobSpec::VmJump(job) }
    }

    /// The job type.
    pub fn job_type(&self) -> JobType {
        match &self.spec {
            JobSpec::Matmul(_) => JobType::Matmul,
            JobSpec::Vm(_) => JobType::Vm,
            JobSpec::VmJump(_) => JobType::VmJump,
        }
    }

    /// Statement sizes of this job.
    fn sizes(&self) -> Vec<u32> {
        match &self.spec {
            JobSpec::Matmul(j) => j.sizes(),
            JobSpec::Vm(j) => j.sizes(),
            JobSpec::VmJump(j) => j.sizes(),
        }
    }

    /// Input commitment recomputed from the inputs.
    pub fn input_commitment(&self) -> Result<Commitment, JobError> {
        match &self.spec {
            JobSpec::Matmul(j) => j.input_commitment(),
            JobSpec::Vm(j) => j.input_commitment(),
            JobSpec::VmJump(j) => j.input_commitment(),
        }
    }
}

/// Everything a worker gets from proving.
#[derive(Debug, Clone)]
pub struct Proved {
    /// The envelope.
    pub envelope: Envelope,
    /// Its compressed form and proof hash.
    pub encoded: EncodedEnvelope,
    /// The job's output.
    pub output: JobOutput,
    /// The backend that made the proof (`Cpu` or `Gpu`; never `Auto`).
    pub backend: ProverBackend,
}

/// The backend [`prove`] will run on for `requested`: `Cpu` or `Gpu`, never `Auto`.
///
/// `Gpu` without a usable device (or in a build without the `gpu` feature) is
/// [`ProveError::BackendUnavailable`]; `Auto` resolves as `gpu::auto_accepts` says (a hardware
/// GPU; the CPU otherwise, logged once). A long-running worker calls this at start-up to report
/// its backend and to fail early; the GPU device it opens is the one later proofs use.
pub fn effective_backend(requested: ProverBackend) -> Result<ProverBackend, ProveError> {
    Ok(match stark::resolve_backend(requested)? {
        stark::Engine::Simd => ProverBackend::Cpu,
        #[cfg(feature = "gpu")]
        stark::Engine::Gpu => ProverBackend::Gpu,
    })
}

/// Proves `job`. See [`prove_with_output`] to also get the job's output.
pub fn prove(job: &Job, config: &ProveConfig) -> Result<Envelope, ProveError> {
    prove_with_output(job, config).map(|p| p.envelope)
}

/// Runs and proves `job`; the compressed envelope must fit in [`MAX_ENVELOPE_BYTES`].
pub fn prove_with_output(job: &Job, config: &ProveConfig) -> Result<Proved, ProveError> {
    prove_inner(job, config, Cheat::None)
}

pub(crate) fn prove_inner(job: &Job, config: &ProveConfig, cheat: Cheat) -> Result<Proved, ProveError> {
    let span = info_span!("prove", job_type = job.job_type().name(), job_id = %job.id);
    let _guard = span.enter();
    let start = std::time::Instant::now();
    let engine = stark::resolve_backend(config.backend)?;
    tracing::debug!(?engine, "prover backend");
    let proved = match engine {
        stark::Engine::Simd => prove_on::<stwo::prover::backend::simd::SimdBackend>(job, config, cheat),
        #[cfg(feature = "gpu")]
        stark::Engine::Gpu => {
            let cpu = |why: &str| {
                tracing::error!("{why}; proving again on the SIMD CPU backend");
                // The kept preprocessed tree may be what went wrong: rebuild it next time.
                stark::forget_prepared_circuit();
                prove_on::<stwo::prover::backend::simd::SimdBackend>(job, config, cheat)
            };
            // One GPU proof at a time: the resident-column and tree caches belong to the device,
            // not to a proof, so a second proof must not clear or match them mid-run.
            static GPU_PROOF: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let exclusive = GPU_PROOF.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            gpu::GpuBackend::clear_resident();
            // A panic anywhere in the GPU run (commitments included) becomes an error, then a redo.
            let on_gpu = stark::guarded(|| prove_on::<gpu::GpuBackend>(job, config, cheat))
                .unwrap_or_else(|panic| Err(ProveError::Panicked(panic)));
            gpu::GpuBackend::clear_resident();
            drop(exclusive);
            match on_gpu {
                // Defence in depth: the GPU kernels are tested bit for bit against Stwo, but a
                // driver fault must never turn into a wrong proof (and a slashed worker).
                // Verifying costs milliseconds, and the proven output commitment must be the one
                // of the output the CPU computed (a stale or sparse device buffer could make a
                // proof that verifies for another output); a proof that fails either is redone
                // on the CPU.
                Ok(proved) if cheat == Cheat::None => {
                    match verify(&proved.envelope, job, &VerifyPolicy { min_security_bits: 0 })
                        .and_then(|verified| verified.check_output(&proved.output))
                    {
                        Ok(()) => Ok(proved),
                        Err(error) => {
                            cpu(&format!("the GPU-made proof does not verify for the job's output ({error})"))
                        }
                    }
                }
                Ok(proved) => Ok(proved),
                Err(error @ (ProveError::Panicked(_) | ProveError::ConstraintsNotSatisfied(_))) => {
                    cpu(&format!("proving on the GPU failed ({error})"))
                }
                Err(error) => Err(error),
            }
        }
    }?;
    tracing::info!(
        bytes = proved.encoded.bytes.len(),
        security_bits = proved.envelope.config.security_bits(),
        backend = ?proved.backend,
        elapsed_ms = start.elapsed().as_secs_f64() * 1e3,
        "proved"
    );
    Ok(proved)
}

fn prove_on<B: stark::StarkBackend>(job: &Job, config: &ProveConfig, cheat: Cheat) -> Result<Proved, ProveError>
where
    stwo_constraint_framework::FrameworkComponent<matmul::MatmulEval>: stwo::prover::ComponentProver<B>,
    stwo_constraint_framework::FrameworkComponent<vm_jump::VmJumpEval>: stwo::prover::ComponentProver<B>,
{
    let proof_config = config.proof_for(job.job_type());
    let (statement, proof, output, public_output) = match job.spec.circuit() {
        Circuit::Matmul(m) => {
            let (s, p, c) =
                matmul::prove::<B>(m, job.id, job.worker, &proof_config, config.matmul, ENVELOPE_VERSION, cheat)?;
            (s, p, JobOutput::Matmul(c), Vec::new())
        }
        Circuit::Vm(spec) => {
            let (s, p, out) = vm_jump::prove::<B>(spec, job.id, job.worker, &proof_config, ENVELOPE_VERSION, cheat)?;
            (s, p, JobOutput::Vm(out), out.to_vec())
        }
    };
    let envelope = Envelope { version: ENVELOPE_VERSION, statement, config: proof_config, public_output, proof };
    let encoded = info_span!("encode").in_scope(|| match envelope.encode() {
        Err(EnvelopeError::TooLarge { size, limit }) => Err(ProveError::ProofTooLarge { size, limit }),
        other => other.map_err(ProveError::from),
    })?;
    Ok(Proved { envelope, encoded, output, backend: B::REPORTED })
}

/// How a test prover misbehaves (honest in production): the soundness tests' cheating provers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(not(test), allow(dead_code, reason = "the cheating variants are built by the soundness tests"))]
pub(crate) enum Cheat {
    /// Honest.
    #[default]
    None,
    /// Matmul: puts `C` with one wrong entry in the trace, claims the honest Freivalds value.
    WrongOutputInTrace,
    /// Matmul: puts a wrong `C` in the trace and claims the value its own trace satisfies.
    WrongOutputSelfConsistent,
    /// VM: one row's program counter is off by one.
    ForgedPc,
    /// VM: a program row's multiplicity is one more than the steps that executed it.
    WrongMultiplicity,
    /// VM: the run leaves out one executed step (multiplicities recounted to match).
    SkippedRow,
    /// VM: runs another program (one instruction changed) and builds a self-consistent trace and
    /// table for it, claiming it is the job's program.
    ForgedTable,
    /// VM-jump: runs past the step budget (the trace has room) with the real budget's counter.
    OverBudget,
    /// VM-jump: proves an honest run on a trace half the size the job's budget sets.
    ShortTrace,
    /// VM-jump: no `first` row; every row is `Halt` with registers of the prover's choosing.
    NoFirst,
}

/// A successfully verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The proven statement.
    pub statement: Statement,
    /// The config it was proven with.
    pub config: ProofConfig,
    /// Its security bits.
    pub security_bits: u32,
    /// Public outputs carried in the envelope (VM registers).
    pub public_output: Vec<u32>,
}

impl Verified {
    /// Checks that `output` is the proven output (its commitment equals the statement's).
    pub fn check_output(&self, output: &JobOutput) -> Result<(), VerifyError> {
        let commitment = match (output, self.statement.job_type) {
            (JobOutput::Matmul(c), JobType::Matmul) => {
                let n = self.statement.sizes.first().copied().unwrap_or(0);
                let protocol = MatmulProtocol::of_sizes(&self.statement.sizes).ok_or(VerifyError::OutputMismatch)?;
                matmul::output_commitment(n, c, &self.config, protocol)?
            }
            (JobOutput::Vm(r), JobType::Vm | JobType::VmJump) => vm::output_commitment(r),
            _ => return Err(VerifyError::OutputMismatch),
        };
        if commitment == self.statement.output_commitment { Ok(()) } else { Err(VerifyError::OutputMismatch) }
    }
}

/// Decodes compressed envelope bytes and verifies them (see [`verify`]).
pub fn verify_bytes(bytes: &[u8], job: &Job, policy: &VerifyPolicy) -> Result<Verified, VerifyError> {
    let envelope = Envelope::decode(bytes)?;
    verify(&envelope, job, policy)
}

/// Verifies `envelope` for `job` (the job the verifier expects: id, worker, inputs) under `policy`.
pub fn verify(envelope: &Envelope, job: &Job, policy: &VerifyPolicy) -> Result<Verified, VerifyError> {
    let span = info_span!("verify", job_type = job.job_type().name(), job_id = %job.id);
    let _guard = span.enter();
    if envelope.version != ENVELOPE_VERSION {
        return Err(EnvelopeError::Version { got: envelope.version, supported: ENVELOPE_VERSION }.into());
    }
    let config = envelope.config;
    config.to_pcs()?;
    let bits = config.security_bits();
    if bits < policy.min_security_bits {
        return Err(VerifyError::InsufficientSecurity { bits, min: policy.min_security_bits });
    }
    if !config.matches_pcs(&envelope.proof.config) {
        return Err(VerifyError::ConfigMismatch);
    }
    let st = &envelope.statement;
    let mismatch = |field| Err(VerifyError::StatementMismatch { field });
    if st.job_type != job.job_type() {
        return mismatch("job_type");
    }
    if st.job_id != job.id {
        return mismatch("job_id");
    }
    if st.worker != job.worker {
        return mismatch("worker");
    }
    // Matmul sizes also name the protocol; `matmul::verify` checks them.
    if !matches!(job.spec, JobSpec::Matmul(_)) && st.sizes != job.sizes() {
        return mismatch("sizes");
    }
    if st.input_commitment != info_span!("input_commitment").in_scope(|| job.input_commitment())? {
        return mismatch("input_commitment");
    }
    let proof = envelope.proof.clone();
    info_span!("stark_verify").in_scope(|| match job.spec.circuit() {
        Circuit::Matmul(m) => {
            if !envelope.public_output.is_empty() {
                return Err(VerifyError::Malformed("matmul carries no public output".into()));
            }
            matmul::verify(m, st, proof, &config, envelope.version)
        }
        Circuit::Vm(spec) => vm_jump::verify(spec, st, &envelope.public_output, proof, &config, envelope.version),
    })?;
    Ok(Verified { statement: st.clone(), config, security_bits: bits, public_output: envelope.public_output.clone() })
}
