//! Job type `matmul`: `C = A·B` for `n × n` matrices over M31 (`p = 2^31 − 1`).
//!
//! # Protocol (Freivalds with a committed output)
//! The prover computes `C`, commits to it as one trace column `c` (row-major, `N = max(n², 16)`
//! rows, zero rows first when `n² < 16`), absorbs the statement, and only then draws a challenge
//! `δ ∈ QM31` from the Fiat–Shamir channel. With `s_i = δ^{n(n−1−i)}` and `r_j = δ^{n−1−j}`:
//!
//! ```text
//!   sᵀ C r = Σ_t c_t δ^{N−1−t}          (a Horner evaluation of the committed column)
//!   sᵀ A B r = Σ_k (sᵀA)_k (B r)_k      (O(n²) from the inputs: the verifier computes it)
//! ```
//!
//! The AIR proves the first equals a public value `v`; both sides compute `v` as the second from
//! `A` and `B`. If `C ≠ A·B`, `sᵀ(C − AB)r` is a non-zero polynomial of degree `< n²` in `δ`,
//! so a cheating prover survives with probability `≤ n² / |QM31| ≈ 2^{20−124}`.
//!
//! ## AIR (one component, `N` rows)
//! | tree | column | meaning |
//! |---|---|---|
//! | preprocessed | `is_first` | 1 on row 0 |
//! | main | `c` | `C` row-major (the output commitment is this tree's root) |
//! | interaction | `G` (QM31, 4 columns) | `G_t = c_t + δ·G_{t−1}`, `G_0 = c_0` |
//!
//! Constraints (degree 2): `G_t − c_t − δ·(1 − is_first_t)·G_{t−1} = 0` and, at row 0 where the
//! previous row wraps to row `N − 1`, `is_first_t·(G_{t−1} − v) = 0`.
//!
//! ## Commitments
//! - input commitment: blake3 (derive-key `"sage obelysk-prover matmul input v1"`) of `n`, then
//!   the seed (tag 0) or `A` and `B` row-major as little-endian `u32` (tag 1);
//! - output commitment: the Blake2s Merkle root of the `c` column's low-degree extension under the
//!   proof's config ([`output_commitment`] recomputes it from `C`);
//! - pinned circuit: the root of the preprocessed tree (`is_first`) per `(n, config)`.
//!
//! # Two protocols
//! The AIR above is [`MatmulProtocol::Air`]. [`MatmulProtocol::Opening`] (the default, module
//! [`opening`]) proves the same Freivalds check without an AIR, by opening a commitment to `C`'s
//! coefficients at a random point; it commits `C` differently, so its output commitment differs
//! (the statement's sizes, `[n]` or `[n, columns]`, say which protocol made a proof).

use num_traits::{One, Zero};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use stwo::core::air::Component;
use stwo::core::channel::Channel;
use stwo::core::fields::FieldExpOps;
use stwo::core::fields::m31::{BaseField, P};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig};
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::verifier::verify as stark_verify;
use stwo::prover::ComponentProver;
use stwo::prover::prove as stark_prove;
use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
use stwo_constraint_framework::{
    EvalAtRow, FrameworkComponent, FrameworkEval, INTERACTION_TRACE_IDX, TraceLocationAllocator,
};
use tracing::info_span;

pub mod opening;

use crate::config::{MatmulProtocol, ProofConfig};
use crate::error::{JobError, ProveError, VerifyError};
use crate::stark::{
    Chan, Eval, MC, PinKey, Proof, StarkBackend, base_eval, commitment_of, guarded, min_log_rows, on_backend,
    pinned_root, prepared_circuit, secure_evals, tree_root,
};
use crate::statement::{Commitment, JobId, JobType, Statement, WorkerAddress};

/// Smallest supported dimension.
pub const MIN_N: u32 = 2;
/// Largest supported dimension.
pub const MAX_N: u32 = 1024;

/// Where the matrices come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatmulInputs {
    /// Derived deterministically from a 32-byte seed ([`derive_matrices`]).
    Seed([u8; 32]),
    /// Given as data: `a` and `b` row-major, `n²` canonical M31 values each.
    Data {
        /// Left matrix, row-major.
        a: Vec<u32>,
        /// Right matrix, row-major.
        b: Vec<u32>,
    },
}

/// An `n × n` matrix multiplication job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatmulJob {
    /// Dimension, a power of two in [`MIN_N`]`..=`[`MAX_N`].
    pub n: u32,
    /// The inputs.
    pub inputs: MatmulInputs,
}

impl MatmulJob {
    /// A job whose matrices are derived from `seed`.
    pub fn from_seed(n: u32, seed: [u8; 32]) -> Self {
        Self { n, inputs: MatmulInputs::Seed(seed) }
    }

    /// A job with explicit matrices (row-major).
    pub fn from_data(n: u32, a: Vec<u32>, b: Vec<u32>) -> Self {
        Self { n, inputs: MatmulInputs::Data { a, b } }
    }

    /// Checks the size and, for data inputs, shapes and canonical values.
    pub fn validate(&self) -> Result<(), JobError> {
        if !(MIN_N..=MAX_N).contains(&self.n) || !self.n.is_power_of_two() {
            return Err(JobError::MatrixSize { n: self.n, min: MIN_N, max: MAX_N });
        }
        if let MatmulInputs::Data { a, b } = &self.inputs {
            let expected = (self.n as usize) * (self.n as usize);
            for (name, m) in [("a", a), ("b", b)] {
                if m.len() != expected {
                    return Err(JobError::MatrixShape { name, got: m.len(), expected });
                }
                if let Some(&value) = m.iter().find(|&&v| v >= P) {
                    return Err(JobError::NotCanonical { value, context: "matmul input" });
                }
            }
        }
        Ok(())
    }

    /// The two input matrices (derived from the seed if needed). Validates first.
    pub fn matrices(&self) -> Result<(Vec<u32>, Vec<u32>), JobError> {
        self.validate()?;
        Ok(match &self.inputs {
            MatmulInputs::Seed(seed) => derive_matrices(self.n, seed),
            MatmulInputs::Data { a, b } => (a.clone(), b.clone()),
        })
    }

    /// The input commitment (see the module docs). Validates first.
    pub fn input_commitment(&self) -> Result<Commitment, JobError> {
        self.validate()?;
        let mut h = blake3::Hasher::new_derive_key("sage obelysk-prover matmul input v1");
        h.update(&self.n.to_le_bytes());
        match &self.inputs {
            MatmulInputs::Seed(seed) => {
                h.update(&[0]);
                h.update(seed);
            }
            MatmulInputs::Data { a, b } => {
                h.update(&[1]);
                hash_u32s(&mut h, a);
                hash_u32s(&mut h, b);
            }
        }
        Ok(Commitment(*h.finalize().as_bytes()))
    }

    /// Runs the job natively: `C = A·B` row-major.
    pub fn execute(&self) -> Result<Vec<u32>, JobError> {
        let (a, b) = self.matrices()?;
        Ok(native_matmul(self.n as usize, &a, &b))
    }

    pub(crate) fn sizes(&self) -> Vec<u32> {
        vec![self.n]
    }
}

fn hash_u32s(h: &mut blake3::Hasher, values: &[u32]) {
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in values.chunks(16 * 1024) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        h.update(&buf);
    }
}

/// Derives `A` and `B` from a seed: blake3 XOF (derive-key `"sage obelysk-prover matmul seed v1"`,
/// input `n` LE then the seed); each entry is 4 output bytes LE masked to 31 bits, `2^31 − 1 ↦ 0`.
pub fn derive_matrices(n: u32, seed: &[u8; 32]) -> (Vec<u32>, Vec<u32>) {
    let mut h = blake3::Hasher::new_derive_key("sage obelysk-prover matmul seed v1");
    h.update(&n.to_le_bytes());
    h.update(seed);
    let mut xof = h.finalize_xof();
    let nn = (n as usize) * (n as usize);
    let mut bytes = vec![0u8; 8 * nn];
    xof.fill(&mut bytes);
    let mut vals = bytes.chunks_exact(4).map(|c| {
        let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & P;
        if v == P { 0 } else { v }
    });
    let a: Vec<u32> = vals.by_ref().take(nn).collect();
    let b: Vec<u32> = vals.collect();
    (a, b)
}

/// `x·y` reduced to below `2^32` (congruent mod `p`), for delayed reduction.
#[inline(always)]
fn mul_partial(x: u32, y: u32) -> u64 {
    let prod = u64::from(x) * u64::from(y);
    (prod & u64::from(P)) + (prod >> 31)
}

/// Native `C = A·B` over M31 (row-major): what a worker runs without proving. Rows are split over
/// all cores; 4-row register blocking and delayed modular reduction (one reduction per entry).
pub fn native_matmul(n: usize, a: &[u32], b: &[u32]) -> Vec<u32> {
    const ROWS: usize = 4;
    let mut c = vec![0u32; n * n];
    c.par_chunks_mut(n * ROWS.min(n)).enumerate().for_each(|(blk, c_rows)| {
        let rows = c_rows.len() / n;
        let i0 = blk * ROWS.min(n);
        let mut acc = vec![0u64; rows * n];
        for k in 0..n {
            let brow = &b[k * n..(k + 1) * n];
            for r in 0..rows {
                let aik = a[(i0 + r) * n + k];
                let acc_r = &mut acc[r * n..(r + 1) * n];
                for (s, &bkj) in acc_r.iter_mut().zip(brow) {
                    *s += mul_partial(aik, bkj);
                }
            }
        }
        for (out, s) in c_rows.iter_mut().zip(acc) {
            *out = (s % u64::from(P)) as u32;
        }
    });
    c
}

/// Trace rows (log2) for dimension `n` under `config`.
fn log_rows(n: u32, config: &ProofConfig) -> u32 {
    (2 * n.ilog2()).max(min_log_rows(config))
}

/// `Σ_i coeff_i[c]·m[i][k]` for each coordinate `c` and column `k`: `coeffᵀ·M` coordinate-wise.
fn left_mul(n: usize, coeffs: &[SecureField], m: &[u32]) -> Vec<SecureField> {
    let coords: Vec<[u32; 4]> = coeffs.iter().map(|s| s.to_m31_array().map(|x| x.0)).collect();
    const CHUNK: usize = 64;
    let mut out = vec![SecureField::zero(); n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, out_chunk)| {
        let k0 = ci * CHUNK;
        let width = out_chunk.len();
        let mut acc = vec![[0u64; 4]; width];
        for (i, s) in coords.iter().enumerate() {
            let row = &m[i * n + k0..i * n + k0 + width];
            for (a, &x) in acc.iter_mut().zip(row) {
                for c in 0..4 {
                    a[c] += mul_partial(s[c], x);
                }
            }
        }
        for (o, a) in out_chunk.iter_mut().zip(acc) {
            *o = SecureField::from_m31_array(a.map(BaseField::reduce));
        }
    });
    out
}

/// `M·coeff` coordinate-wise.
fn right_mul(n: usize, m: &[u32], coeffs: &[SecureField]) -> Vec<SecureField> {
    let coords: Vec<[u32; 4]> = coeffs.iter().map(|s| s.to_m31_array().map(|x| x.0)).collect();
    m.par_chunks(n)
        .map(|row| {
            let mut acc = [0u64; 4];
            for (&x, r) in row.iter().zip(&coords) {
                for c in 0..4 {
                    acc[c] += mul_partial(x, r[c]);
                }
            }
            SecureField::from_m31_array(acc.map(BaseField::reduce))
        })
        .collect()
}

/// `sᵀ·A·B·r` for the challenge `δ` (see the module docs), in `O(n²)`.
pub(crate) fn freivalds_value(n: u32, a: &[u32], b: &[u32], delta: SecureField) -> SecureField {
    let n = n as usize;
    // r_j = δ^{n−1−j}; s_i = (δ^n)^{n−1−i}.
    let mut r = vec![SecureField::one(); n];
    for j in (0..n.saturating_sub(1)).rev() {
        r[j] = r[j + 1] * delta;
    }
    let alpha = delta.pow(n as u128);
    let mut s = vec![SecureField::one(); n];
    for i in (0..n.saturating_sub(1)).rev() {
        s[i] = s[i + 1] * alpha;
    }
    let u = left_mul(n, &s, a);
    let v = right_mul(n, b, &r);
    u.iter().zip(&v).fold(SecureField::zero(), |acc, (x, y)| acc + *x * *y)
}

/// The trace column `c` in natural row order (leading zero rows when `n² < 16`).
fn c_column(log_size: u32, c: &[u32]) -> Vec<BaseField> {
    let rows = 1usize << log_size;
    let pad = rows - c.len();
    let mut col = vec![BaseField::zero(); pad];
    col.extend(c.iter().map(|&v| BaseField::from_u32_unchecked(v)));
    col
}

/// Preprocessed (circuit) roots pinned for [`ProofConfig::PRODUCTION`], `n = 2, 4, …, 1024`, so a
/// verifier never recomputes them. The test `pinned_production_roots_match_circuit` recomputes
/// every entry (and prints the table if the circuit changes).
pub(crate) const PRODUCTION_ROOTS: [(u32, &str); 10] = [
    (2, "0x1cf98e608c836f75cea5020cb16aeae56d8797354963e72883955df89170850b"),
    (4, "0x1cf98e608c836f75cea5020cb16aeae56d8797354963e72883955df89170850b"),
    (8, "0x1f21f41ae571df245a9c99ca671c9b2b81944f2918692fd308da0b7f7c5553ad"),
    (16, "0xd58dc83249609a95f2b43247cc037cd3f69553154a4a43a9b0023399d070b651"),
    (32, "0x15b2ed185f0b02ba21fd95c981bfe586fdf9267e047bfa2d7719156c6b83ab01"),
    (64, "0x6a73bce1f60f8e44fc0bf5f65889f121bcca40d6584276fdd707d8920063058d"),
    (128, "0x70cf89ba833014a3693307f64c4110e5dcd9bab704e8b67c30540be2bebb5533"),
    (256, "0xdd6efc1d8eea01d562fd1cf47158f622b9bb76e0928b32c23a29f967ee0a4ff4"),
    (512, "0x647939fedecfe350974a732d5e9192e0c5e7cff3c46ad6c81e5c99e92852deeb"),
    (1024, "0x36d3aa7002367bfa96916b193441032c11e891750434924ba9704d6b2fd4137c"),
];

fn production_root(n: u32, config: &ProofConfig) -> Option<Blake2sHash> {
    if *config != ProofConfig::PRODUCTION {
        return None;
    }
    let (_, hex) = PRODUCTION_ROOTS.iter().find(|(m, _)| *m == n)?;
    Commitment::from_hex(hex).map(|c| Blake2sHash(c.0))
}

/// Computes the preprocessed root of the matmul circuit for `n` under `config`.
pub(crate) fn circuit_root(n: u32, config: &ProofConfig, pcs: PcsConfig) -> Blake2sHash {
    let log_size = log_rows(n, config);
    tree_root(log_size, pcs, vec![is_first_column(log_size)])
}

fn pin_key(n: u32, config: &ProofConfig) -> PinKey {
    PinKey { job_type: JobType::Matmul, circuit: n.to_le_bytes().to_vec(), config: *config }
}

fn is_first_column(log_size: u32) -> Eval {
    let mut col = vec![BaseField::zero(); 1 << log_size];
    col[0] = BaseField::one();
    base_eval(log_size, col)
}

/// The output commitment a client recomputes from `C` (row-major) for a proof made with
/// `protocol` under `config`: the Merkle root of the committed `C` (the AIR's trace column, or
/// the opening protocol's coefficient columns). Costs one low-degree extension and one Merkle
/// tree of `n²` values.
pub fn output_commitment(
    n: u32,
    c: &[u32],
    config: &ProofConfig,
    protocol: MatmulProtocol,
) -> Result<Commitment, VerifyError> {
    MatmulJob::from_seed(n, [0; 32]).validate()?;
    let pcs = config.to_pcs()?;
    if c.len() != (n as usize) * (n as usize) {
        return Err(VerifyError::OutputMismatch);
    }
    if let Some(&value) = c.iter().find(|&&v| v >= P) {
        return Err(JobError::NotCanonical { value, context: "matmul output" }.into());
    }
    if protocol == MatmulProtocol::Opening {
        return opening::output_commitment(n, c, config);
    }
    let log_size = log_rows(n, config);
    Ok(commitment_of(tree_root(log_size, pcs, vec![base_eval(log_size, c_column(log_size, c))])))
}

/// The matmul AIR (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct MatmulEval {
    log_size: u32,
    delta: SecureField,
    expected: SecureField,
}

impl FrameworkEval for MatmulEval {
    fn log_size(&self) -> u32 {
        self.log_size
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_size + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let is_first = eval
            .get_preprocessed_column(PreProcessedColumnId { id: format!("obelysk_matmul_is_first_{}", self.log_size) });
        let c = eval.next_trace_mask();
        let [g_prev, g] = eval.next_extension_interaction_mask(INTERACTION_TRACE_IDX, [-1, 0]);
        let not_first = E::F::from(BaseField::one()) - is_first.clone();
        eval.add_constraint(g - (E::EF::from(c) + g_prev.clone() * self.delta * not_first));
        eval.add_constraint((g_prev - self.expected) * is_first);
        eval
    }
}

pub(crate) fn component(log_size: u32, delta: SecureField, expected: SecureField) -> FrameworkComponent<MatmulEval> {
    FrameworkComponent::new(
        &mut TraceLocationAllocator::default(),
        MatmulEval { log_size, delta, expected },
        SecureField::zero(),
    )
}

pub(crate) use crate::Cheat;

/// Proves a matmul job with `protocol`; returns the statement, the proof and `C`.
#[allow(clippy::too_many_arguments, reason = "the job, its identity, the config and a test hook")]
pub(crate) fn prove<B: StarkBackend>(
    job: &MatmulJob,
    job_id: JobId,
    worker: WorkerAddress,
    config: &ProofConfig,
    protocol: MatmulProtocol,
    version: u16,
    cheat: Cheat,
) -> Result<(Statement, Proof, Vec<u32>), ProveError>
where
    FrameworkComponent<MatmulEval>: ComponentProver<B>,
{
    match protocol {
        MatmulProtocol::Opening => opening::prove::<B>(job, job_id, worker, config, version, cheat),
        MatmulProtocol::Air => prove_air::<B>(job, job_id, worker, config, version, cheat),
    }
}

/// Verifies a matmul proof made with either protocol (the statement's sizes say which; each
/// protocol checks its own shape).
pub(crate) fn verify(
    job: &MatmulJob,
    statement: &Statement,
    proof: Proof,
    config: &ProofConfig,
    version: u16,
) -> Result<(), VerifyError> {
    match MatmulProtocol::of_sizes(&statement.sizes) {
        Some(MatmulProtocol::Air) if statement.sizes == job.sizes() => {
            verify_air(job, statement, proof, config, version)
        }
        Some(MatmulProtocol::Opening) => opening::verify(job, statement, proof, config, version),
        _ => Err(VerifyError::StatementMismatch { field: "sizes" }),
    }
}

/// Proves a matmul job with the AIR; returns the statement, the proof and `C`.
fn prove_air<B: StarkBackend>(
    job: &MatmulJob,
    job_id: JobId,
    worker: WorkerAddress,
    config: &ProofConfig,
    version: u16,
    cheat: Cheat,
) -> Result<(Statement, Proof, Vec<u32>), ProveError>
where
    FrameworkComponent<MatmulEval>: ComponentProver<B>,
{
    let pcs = config.to_pcs()?;
    let input_commitment = job.input_commitment()?;
    let (a, b) = info_span!("inputs", n = job.n).in_scope(|| job.matrices())?;
    let c = info_span!("execute", n = job.n).in_scope(|| native_matmul(job.n as usize, &a, &b));
    let mut c_trace = c.clone();
    if cheat != Cheat::None {
        c_trace[0] = (c_trace[0] + 1) % P;
    }
    let n = job.n;
    let log_size = log_rows(n, config);
    let circuit = info_span!("prepare_circuit")
        .in_scope(|| prepared_circuit::<B>(pin_key(n, config), log_size, pcs, || vec![is_first_column(log_size)]));
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut cs = circuit.scheme(pcs, channel);
    let c_col = c_column(log_size, &c_trace);
    info_span!("commit_main").in_scope(|| {
        let mut tb = cs.tree_builder();
        tb.extend_evals(on_backend::<B>(vec![base_eval(log_size, c_col.clone())]));
        tb.commit(channel);
    });
    let statement = Statement {
        job_type: JobType::Matmul,
        job_id,
        worker,
        sizes: job.sizes(),
        input_commitment,
        output_commitment: commitment_of(cs.roots()[1]),
    };
    statement.mix_into(version, channel);
    let delta = channel.draw_secure_felt();

    let g = info_span!("interaction_trace").in_scope(|| {
        let mut g = Vec::with_capacity(c_col.len());
        let mut acc = SecureField::zero();
        for &x in &c_col {
            acc = acc * delta + x;
            g.push(acc);
        }
        g
    });
    let expected = match cheat {
        Cheat::WrongOutputSelfConsistent => g.last().copied().unwrap_or_default(),
        _ => info_span!("freivalds_value").in_scope(|| freivalds_value(n, &a, &b, delta)),
    };
    info_span!("commit_interaction").in_scope(|| {
        let mut tb = cs.tree_builder();
        tb.extend_evals(on_backend::<B>(secure_evals(log_size, g)));
        tb.commit(channel);
    });
    let comp = component(log_size, delta, expected);
    let proof = info_span!("stark_prove", log_rows = log_size).in_scope(|| {
        guarded(|| stark_prove::<B, MC>(&[&comp], channel, cs))
            .map_err(ProveError::Panicked)?
            .map_err(|e| ProveError::ConstraintsNotSatisfied(e.to_string()))
    })?;
    Ok((statement, proof, c))
}

/// Verifies an AIR matmul proof against the job the verifier holds. The statement's identity
/// fields were already compared with the job by the caller.
fn verify_air(
    job: &MatmulJob,
    statement: &Statement,
    proof: Proof,
    config: &ProofConfig,
    version: u16,
) -> Result<(), VerifyError> {
    let pcs = config.to_pcs()?;
    let n = job.n;
    let log_size = log_rows(n, config);
    if proof.commitments.len() != 4 {
        return Err(VerifyError::Malformed(format!("{} commitments, expected 4", proof.commitments.len())));
    }
    let pinned = match production_root(n, config) {
        Some(root) => root,
        None => pinned_root(pin_key(n, config), || circuit_root(n, config, pcs)),
    };
    if proof.commitments[0] != pinned {
        return Err(VerifyError::CircuitMismatch);
    }
    if commitment_of(proof.commitments[1]) != statement.output_commitment {
        return Err(VerifyError::OutputMismatch);
    }
    let (a, b) = job.matrices()?;
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut vcs = CommitmentSchemeVerifier::<MC>::new(pcs);
    vcs.commit(proof.commitments[0], &[log_size], channel);
    vcs.commit(proof.commitments[1], &[log_size], channel);
    statement.mix_into(version, channel);
    let delta = channel.draw_secure_felt();
    let expected = freivalds_value(n, &a, &b, delta);
    let comp = component(log_size, delta, expected);
    let sizes = comp.trace_log_degree_bounds();
    let interaction_sizes = sizes.get(2).cloned().unwrap_or_default();
    vcs.commit(proof.commitments[2], &interaction_sizes, channel);
    guarded(move || stark_verify::<MC>(&[&comp], channel, &mut vcs, proof))
        .map_err(|p| VerifyError::Malformed(format!("verifier panicked: {p}")))?
        .map_err(|e| VerifyError::Stark(e.to_string()))
}
