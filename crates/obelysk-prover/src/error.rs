//! Typed errors of the prover, the verifier and the envelope codec.

use crate::config::ProverBackend;

/// Why a job is not a valid job (checked before any proving or verifying work).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Matrix dimension is not a power of two in the supported range.
    #[error("matrix size {n} is not a power of two in {min}..={max}")]
    MatrixSize {
        /// The requested dimension.
        n: u32,
        /// Smallest supported dimension.
        min: u32,
        /// Largest supported dimension.
        max: u32,
    },
    /// A matrix given as data has the wrong number of entries.
    #[error("matrix {name} has {got} entries, expected {expected}")]
    MatrixShape {
        /// `"a"` or `"b"`.
        name: &'static str,
        /// Number of entries given.
        got: usize,
        /// `n * n`.
        expected: usize,
    },
    /// A field element is not a canonical M31 value (`< 2^31 - 1`).
    #[error("value {value} at {context} is not a canonical M31 element (< 2^31 - 1)")]
    NotCanonical {
        /// The value.
        value: u32,
        /// Where it was found.
        context: &'static str,
    },
    /// The VM program is empty or longer than the supported maximum.
    #[error("VM program has {len} instructions, supported 1..={max}")]
    ProgramLength {
        /// Number of instructions.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// A VM program's byte encoding is not whole instructions of known opcodes.
    #[error("VM program encoding: {reason}")]
    ProgramEncoding {
        /// What is wrong.
        reason: String,
    },
    /// A VM instruction names a register that does not exist.
    #[error("VM instruction {index} uses register {register}, the machine has {n_registers}")]
    Register {
        /// Index of the instruction in the program.
        index: usize,
        /// The register named.
        register: u8,
        /// Number of registers.
        n_registers: usize,
    },
    /// A straight-line VM job contains a control-flow instruction (use [`crate::vm_jump`]).
    #[error("instruction {index} is control flow; straight-line VM programs cannot branch")]
    ControlFlow {
        /// Index of the instruction.
        index: usize,
    },
    /// A branching VM program did not halt within its step budget.
    #[error("program did not halt within {max_steps} steps")]
    DidNotHalt {
        /// The budget.
        max_steps: u32,
    },
    /// A jump target is outside the program.
    #[error("instruction {index} jumps to {target}, outside the program")]
    JumpTarget {
        /// Index of the instruction.
        index: usize,
        /// The target.
        target: u32,
    },
    /// A VM job was given the wrong number of input registers.
    #[error("VM job has {got} input registers, expected {expected}")]
    RegisterCount {
        /// Registers given.
        got: usize,
        /// Registers of the machine.
        expected: usize,
    },
}

/// Why a proof configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A parameter is outside the range this crate supports.
    #[error("proof config parameter {name} = {value} outside {min}..={max}")]
    OutOfRange {
        /// Parameter name.
        name: &'static str,
        /// Value given.
        value: u32,
        /// Minimum allowed.
        min: u32,
        /// Maximum allowed.
        max: u32,
    },
}

/// Why proving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The job itself is invalid.
    #[error("invalid job: {0}")]
    Job(#[from] JobError),
    /// The proof configuration is invalid.
    #[error("invalid proof config: {0}")]
    Config(#[from] ConfigError),
    /// The requested backend cannot run on this machine / build.
    #[error("prover backend {backend:?} unavailable: {reason}")]
    BackendUnavailable {
        /// The backend asked for.
        backend: ProverBackend,
        /// Why it is unavailable.
        reason: String,
    },
    /// The trace does not satisfy the constraints (a bug, or a deliberately wrong trace).
    #[error("trace does not satisfy the AIR constraints: {0}")]
    ConstraintsNotSatisfied(String),
    /// The compressed envelope is larger than the on-chain limit.
    #[error("compressed proof envelope is {size} bytes, over the {limit}-byte limit")]
    ProofTooLarge {
        /// Compressed size.
        size: usize,
        /// The limit ([`crate::MAX_ENVELOPE_BYTES`]).
        limit: usize,
    },
    /// Encoding the envelope failed.
    #[error("envelope encoding failed: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The prover panicked (a bug in this crate or in Stwo); the message is kept.
    #[error("prover panicked: {0}")]
    Panicked(String),
}

/// Why an envelope could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The compressed bytes exceed [`crate::MAX_ENVELOPE_BYTES`].
    #[error("envelope is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size given.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// zstd (de)compression failed (truncated or corrupted bytes, or too large once decompressed).
    #[error("envelope compression: {0}")]
    Compression(String),
    /// The decompressed bytes are not a valid envelope.
    #[error("envelope decoding: {0}")]
    Decode(String),
    /// Bytes left over after the envelope.
    #[error("{0} trailing bytes after the envelope")]
    TrailingBytes(usize),
    /// The bytes decode, but re-encoding the envelope gives other bytes: only the canonical
    /// encoding is accepted, so that one envelope has one proof hash.
    #[error("envelope is not canonically encoded")]
    NonCanonical,
    /// The envelope has a version this crate does not read.
    #[error("unsupported envelope version {got}, this crate reads version {supported}")]
    Version {
        /// Version found.
        got: u16,
        /// Version supported.
        supported: u16,
    },
}

/// Why a proof was rejected. Every rejection is an `Err`; verification never panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The envelope bytes could not be decoded.
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The job given to the verifier is invalid.
    #[error("invalid job: {0}")]
    Job(#[from] JobError),
    /// The envelope's proof configuration is invalid.
    #[error("invalid proof config: {0}")]
    Config(#[from] ConfigError),
    /// The envelope's configuration gives fewer security bits than the policy requires.
    #[error("proof has {bits} bits of security, policy requires at least {min}")]
    InsufficientSecurity {
        /// Security bits of the envelope's config.
        bits: u32,
        /// Policy minimum.
        min: u32,
    },
    /// The proof's internal configuration differs from the envelope's.
    #[error("proof configuration differs from the envelope's")]
    ConfigMismatch,
    /// The statement does not describe the job the verifier holds.
    #[error("statement mismatch: {field} differs from the job being verified")]
    StatementMismatch {
        /// Which statement field differs.
        field: &'static str,
    },
    /// The preprocessed (circuit) commitment is not the pinned one for this job type, size and
    /// config (the VM proofs have no preprocessed columns: theirs must be the empty tree's root).
    #[error("preprocessed commitment is not the pinned circuit for this job")]
    CircuitMismatch,
    /// The output commitment does not match the proof or the output.
    #[error("output commitment mismatch")]
    OutputMismatch,
    /// The committed output is not the job's result: its opening at the challenge point differs
    /// from `sᵀ·A·B·r` computed from the inputs.
    #[error("the committed output is not the job's result (Freivalds check failed)")]
    WrongResult,
    /// The proof has the wrong shape (number of trees, columns, values).
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// Stwo rejected the proof.
    #[error("stark verification failed: {0}")]
    Stark(String),
}
