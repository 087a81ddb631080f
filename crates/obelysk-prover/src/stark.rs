//! Shared Stwo plumbing: column conversion, the commitment-scheme setup both sides use, pinned
//! circuit roots, and the panic guard.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::PcsConfig;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::utils::MaybeOwned;
use stwo::core::utils::bit_reverse_coset_to_circle_domain_order;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::mempool::BaseColumnPool;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
use stwo::prover::poly::twiddles::TwiddleTree;
use stwo::prover::secure_column::SecureColumnByCoords;
use stwo::prover::{CommitmentSchemeProver, CommitmentTreeProver};

use crate::config::{ProofConfig, ProverBackend};
use crate::error::ProveError;
use crate::statement::{Commitment, JobType};

/// The Merkle channel used for every proof (Blake2s: fast off-chain verification).
pub(crate) type MC = Blake2sMerkleChannel;
/// Fiat–Shamir channel matching [`MC`].
pub(crate) type Chan = Blake2sChannel;
/// The Stwo proof type carried in envelopes.
pub type Proof = stwo::core::proof::StarkProof<Blake2sMerkleHasher>;
/// A trace column on the SIMD backend, in bit-reversed circle-domain order.
pub(crate) type Eval = CircleEvaluation<SimdBackend, BaseField, BitReversedOrder>;

/// Smallest trace the SIMD backend handles (one packed vector of 16 lanes).
const SIMD_MIN_LOG_ROWS: u32 = 4;

/// Smallest trace (log2 rows) for a config: the SIMD lane width, and enough rows that the first
/// FRI fold (circle-to-line plus `fold_step − 1` line folds) does not undershoot the last layer.
pub(crate) fn min_log_rows(config: &ProofConfig) -> u32 {
    SIMD_MIN_LOG_ROWS.max(config.log_last_layer_degree_bound + config.fold_step)
}

/// Converts a column given in natural row order into a committed evaluation.
pub(crate) fn base_eval(log_size: u32, mut values: Vec<BaseField>) -> Eval {
    bit_reverse_coset_to_circle_domain_order(&mut values);
    let domain = CanonicCoset::new(log_size).circle_domain();
    CircleEvaluation::new(domain, BaseColumn::from_iter(values))
}

/// Converts a QM31 column in natural row order into its four coordinate evaluations.
pub(crate) fn secure_evals(log_size: u32, mut values: Vec<SecureField>) -> Vec<Eval> {
    bit_reverse_coset_to_circle_domain_order(&mut values);
    let domain = CanonicCoset::new(log_size).circle_domain();
    let col: SecureColumnByCoords<SimdBackend> = values.into_iter().collect();
    col.columns.into_iter().map(|c| CircleEvaluation::new(domain, c)).collect()
}

/// Twiddles for a component of `log_size` rows whose constraints have degree ≤ 3.
pub(crate) fn twiddles(log_size: u32, pcs: &PcsConfig) -> TwiddleTree<SimdBackend> {
    SimdBackend::precompute_twiddles(
        CanonicCoset::new(log_size + 1 + pcs.fri_config.log_blowup_factor).circle_domain().half_coset,
    )
}

/// Root of a single Merkle tree holding `columns` under `pcs` — how the verifier computes a
/// circuit (preprocessed) root and how a client recomputes a data commitment.
pub(crate) fn tree_root(log_size: u32, pcs: PcsConfig, columns: Vec<Eval>) -> Blake2sHash {
    let tw = twiddles(log_size, &pcs);
    let channel = &mut Chan::default();
    let mut cs = CommitmentSchemeProver::<SimdBackend, MC>::new(pcs, &tw);
    let mut tb = cs.tree_builder();
    tb.extend_evals(columns);
    tb.commit(channel);
    cs.roots()[0]
}

/// A Merkle root as a statement commitment.
pub(crate) fn commitment_of(hash: Blake2sHash) -> Commitment {
    Commitment(hash.0)
}

/// Key of the pinned-circuit cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PinKey {
    pub job_type: JobType,
    /// Job-type specific identity of the circuit (sizes, program commitment, ...).
    pub circuit: Vec<u8>,
    pub config: ProofConfig,
}

/// The preprocessed root for a circuit: computed once per process and pinned (the verifying key).
pub(crate) fn pinned_root(key: PinKey, compute: impl FnOnce() -> Blake2sHash) -> Blake2sHash {
    static CACHE: OnceLock<Mutex<HashMap<PinKey, Blake2sHash>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(root) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
        return root;
    }
    let root = compute();
    if let Ok(mut c) = cache.lock() {
        // Bounded: a verifier sees few circuits; drop everything if a caller cycles through many.
        if c.len() > 256 {
            c.clear();
        }
        c.insert(key, root);
    }
    root
}

/// A circuit's twiddles and committed preprocessed tree, built once and reused by the prover.
pub(crate) struct PreparedCircuit {
    twiddles: TwiddleTree<SimdBackend>,
    tree: CommitmentTreeProver<SimdBackend, MC>,
}

impl PreparedCircuit {
    fn build(log_size: u32, pcs: PcsConfig, columns: Vec<Eval>) -> Self {
        let twiddles = twiddles(log_size, &pcs);
        let polys = SimdBackend::interpolate_columns(columns, &twiddles);
        let tree = CommitmentTreeProver::new(
            polys,
            pcs.fri_config.log_blowup_factor,
            &twiddles,
            true,
            pcs.lifting_log_size,
            &BaseColumnPool::new(),
        );
        Self { twiddles, tree }
    }

    /// A commitment scheme whose preprocessed tree (index 0) is this circuit, already mixed into
    /// `channel`. Coefficients are stored (cheap out-of-domain sampling).
    pub(crate) fn scheme<'a>(
        &'a self,
        pcs: PcsConfig,
        channel: &mut Chan,
    ) -> CommitmentSchemeProver<'a, SimdBackend, MC> {
        let mut cs = CommitmentSchemeProver::<SimdBackend, MC>::new(pcs, &self.twiddles);
        cs.set_store_polynomials_coefficients();
        cs.commit_tree(MaybeOwned::Borrowed(&self.tree), channel);
        cs
    }
}

/// The prepared circuit for `key`. The most recently used circuit is kept for the next proof
/// (one entry: at n = 1024 and blowup 8 it holds about 0.6 GB of Merkle layers and twiddles).
pub(crate) fn prepared_circuit(
    key: PinKey,
    log_size: u32,
    pcs: PcsConfig,
    columns: impl FnOnce() -> Vec<Eval>,
) -> Arc<PreparedCircuit> {
    type Slot = Option<(PinKey, Arc<PreparedCircuit>)>;
    static LAST: OnceLock<Mutex<Slot>> = OnceLock::new();
    let last = LAST.get_or_init(|| Mutex::new(None));
    if let Ok(guard) = last.lock()
        && let Some((k, c)) = guard.as_ref()
        && *k == key
    {
        return Arc::clone(c);
    }
    let prepared = Arc::new(PreparedCircuit::build(log_size, pcs, columns()));
    if let Ok(mut guard) = last.lock() {
        *guard = Some((key, Arc::clone(&prepared)));
    }
    prepared
}

/// Runs `f`, turning a panic into `Err(message)`. Stwo's verifier indexes and zips proof parts
/// without checking their lengths; this is the last line of defence against malformed proofs.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        }
    })
}

/// Resolves the backend request to the backend that will run.
pub(crate) fn resolve_backend(requested: ProverBackend) -> Result<ProverBackend, ProveError> {
    match requested {
        ProverBackend::Cpu => Ok(ProverBackend::Cpu),
        ProverBackend::Gpu => Err(ProveError::BackendUnavailable {
            backend: ProverBackend::Gpu,
            reason: "no GPU backend is built into this version (wgpu backend: later issue)",
        }),
        ProverBackend::Auto => {
            tracing::debug!("backend Auto: no GPU backend available, falling back to the SIMD CPU backend");
            Ok(ProverBackend::Cpu)
        }
    }
}
