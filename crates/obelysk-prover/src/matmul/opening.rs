//! The `opening` matmul protocol: Freivalds by opening a polynomial commitment to `C`, no AIR.
//!
//! # Idea
//! A verifier holding `A` and `B` can compute `sᵀ·A·(B·r)` itself in `O(n²)` for any vectors `s`,
//! `r`. All a proof has to show is that the committed `C` agrees with that value at a point the
//! prover could not choose. Stwo's circle polynomials give this for free: the coefficient basis
//! of a polynomial with `2^L` coefficients is a tensor product. A coefficient stored at index `t`
//! multiplies
//!
//! ```text
//!   basis_t(z) = Π_b f_b(z)^{bit_b(t)},   f_0 = z.y,  f_1 = z.x,  f_b = π^{b−1}(z.x),  π(x) = 2x² − 1
//! ```
//!
//! (Stwo's `eval_at_point` folds the coefficients with exactly these factors, the last one for
//! the top bit; the unit test `coefficient_order_is_the_tensor_formula` pins it.)
//!
//! # Protocol
//! `C` (row-major, `n = 2^m`) is split into `K = 2^κ` blocks of `n/K` consecutive rows; block `k`
//! is the coefficient vector of column `k` (`t = i'·n + j` for row `k·n/K + i'`, column `j`;
//! zero coefficients pad a column up to the smallest size the FRI config allows). So, for every
//! point `z`,
//!
//! ```text
//!   P_k(z) = Σ_{i',j} C[k·n/K + i'][j] · s_{i'}(z) · r_j(z)
//!   r_j = Π_{b<m} f_b^{bit_b(j)},   s_{i'} = Π_{b<m−κ} f_{m+b}^{bit_b(i')}
//! ```
//!
//! 1. The prover commits the `K` columns from their coefficients with Stwo's commitment scheme
//!    (one extension FFT per column and one Merkle tree); the root is the output commitment.
//! 2. The statement (job, worker, sizes, input and output commitments) is mixed into the
//!    Fiat–Shamir channel after the root; then a point `z` on the circle over QM31 is drawn.
//! 3. The prover opens every column at `z` (Stwo's `prove_values`: DEEP quotients, FRI, grinding
//!    and query decommitments).
//! 4. The verifier replays the channel, recomputes `z`, computes `v = A·(B·r)` and
//!    `E_k = Σ_{i'} s_{i'}·v[k·n/K + i']` itself, requires the opened values to equal `E_k`,
//!    and verifies the opening.
//!
//! # Soundness
//! Suppose the verifier accepts. By the soundness of the commitment scheme (FRI with the
//! configured blowup, queries and grinding: `security_bits` of [`ProofConfig`]), except with that
//! error each committed column is close to a unique polynomial `P_k` with `2^L'` coefficients and
//! the opened value is `P_k(z)`. Write `D_k = P_k − E_k`, where `E_k` is the polynomial whose
//! coefficients are the block of `A·B` (so `E_k(z)` is what the verifier computed). If some
//! block of the committed coefficients is not the block of `A·B` (a padding coefficient that is
//! not zero counts), `D_k` is a non-zero polynomial in the same space: a bivariate polynomial of
//! total degree at most `2^{L'−1}` restricted to the circle, so it vanishes on at most `2^{L'}`
//! points of the circle (Bézout with `x² + y² = 1`). `z` is drawn after the root and the
//! statement are fixed, through Stwo's rational parametrisation (at most two parameters per
//! point), so the check `D_k(z) = 0` passes with probability at most `2^{L'+1}/|QM31|`
//! ≈ `2^{L'+1−124}` (`L' ≤ 20`: below `2^−100`), the same bound as the AIR protocol's Horner
//! check. The root binds the column values; [`super::output_commitment`] lets a client recompute
//! it from `C`, so a proof that verifies and an output whose commitment matches means the output
//! is `A·B`.
//!
//! # Cost
//! The prover runs the native multiply, then one extension FFT and one Merkle tree over the `n²`
//! values (blowup × n² leaves' worth of hashing, packed `K` values per leaf) and the opening's
//! FRI over a domain `K` times smaller than the matrix. No trace, interaction or composition
//! polynomial exists. The verifier's work is the two matrix-vector products (`8n²` base × secure
//! multiplications, as for the AIR) and the opening.

use num_traits::{One, Zero};
use stwo::core::circle::CirclePoint;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig, TreeVec};
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::proof::StarkProof;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::pcs::CommitmentSchemeProver;
use stwo::prover::poly::circle::CircleCoefficients;
use stwo::prover::poly::twiddles::TwiddleTree;
use tracing::info_span;

use super::{Cheat, MatmulJob, native_matmul, right_mul};
use crate::config::ProofConfig;
use crate::error::{ProveError, VerifyError};
use crate::stark::{Chan, MC, Proof, StarkBackend, commitment_of, guarded, min_log_rows};
use crate::statement::{Commitment, JobId, JobType, Statement, WorkerAddress};

/// At most `2^6 = 64` columns: 64 values per Merkle leaf (four Blake2s blocks), and an opening
/// domain 64 times smaller than the matrix.
pub(crate) const MAX_LOG_COLUMNS: u32 = 6;

/// How `C` is laid out in columns for a size and config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `log2 n`.
    log_n: u32,
    /// `log2` of the number of columns (`κ`).
    log_columns: u32,
    /// `log2` of the coefficients per column (`L'`).
    log_column_size: u32,
}

impl Layout {
    /// The layout for `n` (a power of two) under `config`: as many columns as allowed while each
    /// keeps at least the smallest size the config's FRI allows, never more columns than rows.
    pub(crate) fn new(n: u32, config: &ProofConfig) -> Self {
        let log_n = n.ilog2();
        let min = min_log_rows(config);
        let log_columns = MAX_LOG_COLUMNS.min(log_n).min((2 * log_n).saturating_sub(min));
        Self { log_n, log_columns, log_column_size: (2 * log_n - log_columns).max(min) }
    }

    /// Number of columns (`K`).
    pub(crate) fn columns(&self) -> usize {
        1 << self.log_columns
    }

    /// Matrix rows per column (`n / K`).
    fn rows_per_column(&self) -> usize {
        1 << (self.log_n - self.log_columns)
    }

    /// The statement's sizes for this protocol: `[n, K]` (the AIR protocol's are `[n]`).
    pub(crate) fn sizes(&self) -> Vec<u32> {
        vec![1 << self.log_n, self.columns() as u32]
    }

    /// `log2` of the committed (extended) column length.
    fn log_extended(&self, pcs: &PcsConfig) -> u32 {
        self.log_column_size + pcs.fri_config.log_blowup_factor
    }

    /// The coefficient columns of `C` (row-major, `n²` values), zero padded.
    fn columns_of(&self, c: &[u32]) -> Vec<Vec<BaseField>> {
        let block = self.rows_per_column() << self.log_n;
        let size = 1usize << self.log_column_size;
        c.chunks(block)
            .map(|chunk| {
                let mut col: Vec<BaseField> = chunk.iter().map(|&v| BaseField::from_u32_unchecked(v)).collect();
                col.resize(size, BaseField::zero());
                col
            })
            .collect()
    }
}

/// The tensor factors `f_0 = y`, `f_1 = x`, `f_b = π^{b−1}(x)` of `z`, `count` of them.
fn factors(z: CirclePoint<SecureField>, count: u32) -> Vec<SecureField> {
    let mut out = Vec::with_capacity(count as usize);
    let mut x = z.x;
    for b in 0..count {
        match b {
            0 => out.push(z.y),
            1 => out.push(x),
            _ => {
                x = CirclePoint::double_x(x);
                out.push(x);
            }
        }
    }
    out
}

/// `v_t = Π_b factors[b]^{bit_b(t)}` for `t < 2^factors.len()`.
fn tensor(factors: &[SecureField]) -> Vec<SecureField> {
    let mut v = Vec::with_capacity(1 << factors.len());
    v.push(SecureField::one());
    for &f in factors {
        let low = v.len();
        for t in 0..low {
            let x = v[t] * f;
            v.push(x);
        }
    }
    v
}

/// What each column must open to at `z`: `E_k = Σ_{i'} s_{i'}·(A·B·r)[k·n/K + i']`, from the
/// inputs alone (see the module docs).
pub(crate) fn expected_values(layout: &Layout, a: &[u32], b: &[u32], z: CirclePoint<SecureField>) -> Vec<SecureField> {
    let n = 1usize << layout.log_n;
    let f = factors(z, 2 * layout.log_n - layout.log_columns);
    let r = tensor(&f[..layout.log_n as usize]);
    let s = tensor(&f[layout.log_n as usize..]);
    let br = right_mul(n, b, &r);
    let v = right_mul(n, a, &br);
    v.chunks(layout.rows_per_column())
        .map(|block| block.iter().zip(&s).fold(SecureField::zero(), |acc, (x, y)| acc + *x * *y))
        .collect()
}

/// Mixes the statement after the root and draws the opening point: the one transcript step
/// prover and verifier share.
fn challenge(statement: &Statement, version: u16, channel: &mut Chan) -> CirclePoint<SecureField> {
    statement.mix_into(version, channel);
    CirclePoint::get_random_point(channel)
}

fn twiddles_for<B: StarkBackend>(log_extended: u32) -> TwiddleTree<B> {
    B::precompute_twiddles(CanonicCoset::new(log_extended).circle_domain().half_coset)
}

/// Commits the columns of `C` on backend `B` into a fresh scheme (root mixed into `channel`).
fn commit<'a, B: StarkBackend>(
    layout: &Layout,
    pcs: PcsConfig,
    twiddles: &'a TwiddleTree<B>,
    c: &[u32],
    channel: &mut Chan,
) -> CommitmentSchemeProver<'a, B, MC> {
    let mut cs = CommitmentSchemeProver::<B, MC>::new(pcs, twiddles);
    // The coefficients are at hand: sampling folds them instead of computing barycentric weights
    // over the extended domain.
    cs.set_store_polynomials_coefficients();
    let mut tb = cs.tree_builder();
    tb.extend_polys(
        layout.columns_of(c).into_iter().map(|col| CircleCoefficients::<B>::new(BaseColumn::from_iter(col))),
    );
    tb.commit(channel);
    cs
}

/// The output commitment of `C` under this protocol: the root of its committed columns.
pub(crate) fn output_commitment(n: u32, c: &[u32], config: &ProofConfig) -> Result<Commitment, VerifyError> {
    let pcs = config.to_pcs()?;
    let layout = Layout::new(n, config);
    let twiddles = twiddles_for::<SimdBackend>(layout.log_extended(&pcs));
    let cs = commit(&layout, pcs, &twiddles, c, &mut Chan::default());
    Ok(commitment_of(cs.roots()[0]))
}

/// Proves a matmul job with the opening protocol; returns the statement, the proof and `C`.
pub(crate) fn prove<B: StarkBackend>(
    job: &MatmulJob,
    job_id: JobId,
    worker: WorkerAddress,
    config: &ProofConfig,
    version: u16,
    cheat: Cheat,
) -> Result<(Statement, Proof, Vec<u32>), ProveError> {
    let pcs = config.to_pcs()?;
    let input_commitment = job.input_commitment()?;
    let (a, b) = info_span!("inputs", n = job.n).in_scope(|| job.matrices())?;
    let c = info_span!("execute", n = job.n).in_scope(|| native_matmul(job.n as usize, &a, &b));
    let layout = Layout::new(job.n, config);
    let twiddles = info_span!("twiddles").in_scope(|| twiddles_for::<B>(layout.log_extended(&pcs)));
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let cs = info_span!("commit_output", columns = layout.columns()).in_scope(|| {
        if cheat == Cheat::None {
            commit(&layout, pcs, &twiddles, &c, channel)
        } else {
            let mut wrong = c.clone();
            wrong[0] = (wrong[0] + 1) % super::P;
            commit(&layout, pcs, &twiddles, &wrong, channel)
        }
    });
    let statement = Statement {
        job_type: JobType::Matmul,
        job_id,
        worker,
        sizes: layout.sizes(),
        input_commitment,
        output_commitment: commitment_of(cs.roots()[0]),
    };
    let z = challenge(&statement, version, channel);
    let points = TreeVec::new(vec![vec![vec![z]; layout.columns()]]);
    let proof = info_span!("open", log_column_size = layout.log_column_size)
        .in_scope(|| guarded(|| cs.prove_values(points, channel).proof).map_err(ProveError::Panicked))?;
    Ok((statement, StarkProof(proof), c))
}

/// Verifies an opening-protocol matmul proof against the job the verifier holds. The caller has
/// compared the statement's identity fields and sizes with the job.
pub(crate) fn verify(
    job: &MatmulJob,
    statement: &Statement,
    proof: Proof,
    config: &ProofConfig,
    version: u16,
) -> Result<(), VerifyError> {
    let pcs = config.to_pcs()?;
    let layout = Layout::new(job.n, config);
    if statement.sizes != layout.sizes() {
        return Err(VerifyError::StatementMismatch { field: "sizes" });
    }
    let StarkProof(proof) = proof;
    if proof.commitments.len() != 1 {
        return Err(VerifyError::Malformed(format!("{} commitments, expected 1", proof.commitments.len())));
    }
    let root: Blake2sHash = proof.commitments[0];
    if commitment_of(root) != statement.output_commitment {
        return Err(VerifyError::OutputMismatch);
    }
    let columns = layout.columns();
    let opened: Vec<SecureField> = match &proof.sampled_values.0[..] {
        [tree] if tree.len() == columns && tree.iter().all(|v| v.len() == 1) => tree.iter().map(|v| v[0]).collect(),
        _ => return Err(VerifyError::Malformed(format!("sampled values are not one per column ({columns} columns)"))),
    };
    let (a, b) = job.matrices()?;
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut vcs = CommitmentSchemeVerifier::<MC>::new(pcs);
    vcs.commit(root, &vec![layout.log_column_size; columns], channel);
    let z = challenge(statement, version, channel);
    let expected = info_span!("freivalds_values").in_scope(|| expected_values(&layout, &a, &b, z));
    if opened != expected {
        return Err(VerifyError::WrongResult);
    }
    let points = TreeVec::new(vec![vec![vec![z]; columns]]);
    guarded(move || vcs.verify_values(points, proof, channel))
        .map_err(|p| VerifyError::Malformed(format!("verifier panicked: {p}")))?
        .map_err(|e| VerifyError::Stark(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
    use stwo::core::circle::SECURE_FIELD_CIRCLE_GEN;
    use stwo::prover::backend::cpu::CpuBackend;

    use super::*;

    fn point(k: u128) -> CirclePoint<SecureField> {
        SECURE_FIELD_CIRCLE_GEN.mul(k)
    }

    /// Stwo's `eval_at_point` on coefficients equals the tensor formula the verifier uses, for
    /// every coefficient position (one non-zero coefficient at a time) and for a full column.
    #[test]
    fn coefficient_order_is_the_tensor_formula() {
        for log_size in [1u32, 2, 4, 6] {
            let z = point(0x1234_5678_9abc + u128::from(log_size));
            let basis = tensor(&factors(z, log_size));
            for t in 0..1usize << log_size {
                let mut coeffs = vec![BaseField::zero(); 1 << log_size];
                coeffs[t] = BaseField::one();
                let poly = CircleCoefficients::<CpuBackend>::new(coeffs);
                assert_eq!(poly.eval_at_point(z), basis[t], "log_size {log_size}, coefficient {t}");
            }
            let coeffs: Vec<BaseField> = (0..1u32 << log_size).map(|v| BaseField::from(v * 7919 + 3)).collect();
            let value = basis.iter().zip(&coeffs).fold(SecureField::zero(), |acc, (b, c)| acc + *b * *c);
            assert_eq!(CircleCoefficients::<CpuBackend>::new(coeffs).eval_at_point(z), value);
        }
    }

    /// The verifier's `E_k` equals the committed columns' polynomials at `z` when `C = A·B`, and
    /// differs when one entry of `C` is wrong.
    #[test]
    fn expected_values_are_the_columns_at_z() {
        for (n, config) in [
            (2, ProofConfig::insecure_for_tests()),
            (8, ProofConfig::insecure_for_tests()),
            (32, ProofConfig::PRODUCTION),
            (64, ProofConfig::PRODUCTION),
        ] {
            let layout = Layout::new(n, &config);
            let (a, b) = super::super::derive_matrices(n, &[5; 32]);
            let mut c = native_matmul(n as usize, &a, &b);
            let z = point(987_654_321 + u128::from(n));
            let expected = expected_values(&layout, &a, &b, z);
            let at_z = |c: &[u32]| -> Vec<SecureField> {
                layout
                    .columns_of(c)
                    .into_iter()
                    .map(|col| CircleCoefficients::<CpuBackend>::new(col).eval_at_point(z))
                    .collect()
            };
            assert_eq!(expected.len(), layout.columns());
            assert_eq!(at_z(&c), expected, "n = {n}");
            let last = c.len() - 1;
            c[last] = (c[last] + 1) % super::super::P;
            assert_ne!(at_z(&c), expected, "n = {n}: a wrong entry must change an opened value");
        }
    }

    /// A cheating prover commits a wrong `C` (one entry off), then claims the values the
    /// verifier expects instead of what its commitment opens to: the opening is refused.
    #[test]
    fn forged_opened_values_are_refused() {
        for (n, config) in [(8, ProofConfig::insecure_for_tests()), (16, ProofConfig::PRODUCTION)] {
            let job = MatmulJob::from_seed(n, [4; 32]);
            let (a, b) = job.matrices().unwrap();
            let mut c = native_matmul(n as usize, &a, &b);
            c[5] = (c[5] + 1) % super::super::P;
            let pcs = config.to_pcs().unwrap();
            let layout = Layout::new(n, &config);
            let twiddles = twiddles_for::<SimdBackend>(layout.log_extended(&pcs));
            let channel = &mut Chan::default();
            pcs.mix_into(channel);
            let cs = commit(&layout, pcs, &twiddles, &c, channel);
            let statement = Statement {
                job_type: JobType::Matmul,
                job_id: JobId::from_u128(1),
                worker: WorkerAddress::from_u128(2),
                sizes: layout.sizes(),
                input_commitment: job.input_commitment().unwrap(),
                output_commitment: commitment_of(cs.roots()[0]),
            };
            let version = crate::ENVELOPE_VERSION;
            let z = challenge(&statement, version, channel);
            let expected = expected_values(&layout, &a, &b, z);
            let points = TreeVec::new(vec![vec![vec![z]; layout.columns()]]);
            let mut proof = cs.prove_values(points, channel).proof;
            let honest = StarkProof(proof.clone());
            assert_eq!(
                verify(&job, &statement, honest, &config, version).unwrap_err().to_string(),
                VerifyError::WrongResult.to_string()
            );
            proof.sampled_values = TreeVec::new(vec![expected.iter().map(|v| vec![*v]).collect()]);
            let r = verify(&job, &statement, StarkProof(proof), &config, version);
            assert!(matches!(r, Err(VerifyError::Stark(_))), "n = {n}: {r:?}");
        }
    }

    #[test]
    fn layout_keeps_columns_within_rows_and_fri_minimum() {
        for config in [ProofConfig::PRODUCTION, ProofConfig::insecure_for_tests()] {
            let min = min_log_rows(&config);
            for log_n in 1..=10u32 {
                let l = Layout::new(1 << log_n, &config);
                assert!(l.log_columns <= log_n && l.log_columns <= MAX_LOG_COLUMNS);
                assert!(l.log_column_size >= min);
                assert!(l.columns() * l.rows_per_column() == 1 << log_n);
                let cols = l.columns_of(&vec![1; 1 << (2 * log_n)]);
                assert_eq!(cols.len(), l.columns());
                assert!(cols.iter().all(|c| c.len() == 1 << l.log_column_size));
            }
        }
        assert_eq!(Layout::new(1024, &ProofConfig::PRODUCTION).sizes(), vec![1024, 64]);
    }
}
