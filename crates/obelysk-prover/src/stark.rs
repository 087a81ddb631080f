//! Shared Stwo plumbing: column conversion, the commitment-scheme setup both sides use, pinned
//! circuit roots, and the panic guard.

use std::any::{Any, TypeId};
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
use stwo::prover::backend::{BackendForChannel, ColumnOps};
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

/// A Stwo backend this crate proves on: the SIMD CPU backend, or (feature `gpu`) the wgpu
/// backend. Both keep base-field columns as SIMD [`BaseColumn`]s, so traces move between them
/// without a copy.
pub(crate) trait StarkBackend:
    BackendForChannel<MC>
    + ColumnOps<BaseField, Column = BaseColumn>
    + PolyOps<Twiddles: Send + Sync>
    + Send
    + Sync
    + 'static
{
    /// How a proof made on this backend is reported.
    const REPORTED: ProverBackend;
}

impl StarkBackend for SimdBackend {
    const REPORTED: ProverBackend = ProverBackend::Cpu;
}

#[cfg(feature = "gpu")]
impl StarkBackend for crate::gpu::GpuBackend {
    const REPORTED: ProverBackend = ProverBackend::Gpu;
}

/// Moves SIMD evaluations to backend `B` (same column type: no copy).
pub(crate) fn on_backend<B: StarkBackend>(evals: Vec<Eval>) -> Vec<CircleEvaluation<B, BaseField, BitReversedOrder>> {
    evals.into_iter().map(|e| CircleEvaluation::new(e.domain, e.values)).collect()
}

/// A circuit's twiddles and committed preprocessed tree, built once and reused by the prover.
pub(crate) struct PreparedCircuit<B: StarkBackend> {
    twiddles: TwiddleTree<B>,
    tree: CommitmentTreeProver<B, MC>,
}

impl<B: StarkBackend> PreparedCircuit<B> {
    fn build(log_size: u32, pcs: PcsConfig, columns: Vec<Eval>) -> Self {
        let twiddles = B::precompute_twiddles(
            CanonicCoset::new(log_size + 1 + pcs.fri_config.log_blowup_factor).circle_domain().half_coset,
        );
        let polys = B::interpolate_columns(on_backend::<B>(columns), &twiddles);
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
    pub(crate) fn scheme<'a>(&'a self, pcs: PcsConfig, channel: &mut Chan) -> CommitmentSchemeProver<'a, B, MC> {
        let mut cs = CommitmentSchemeProver::<B, MC>::new(pcs, &self.twiddles);
        cs.set_store_polynomials_coefficients();
        cs.commit_tree(MaybeOwned::Borrowed(&self.tree), channel);
        cs
    }
}

type CircuitSlot = Option<(TypeId, PinKey, Arc<dyn Any + Send + Sync>)>;
static LAST_CIRCUIT: OnceLock<Mutex<CircuitSlot>> = OnceLock::new();

/// Drops the kept prepared circuit (after a GPU-made proof failed: its preprocessed tree may be
/// the cause, and must not be reused).
#[cfg(feature = "gpu")]
pub(crate) fn forget_prepared_circuit() {
    if let Some(last) = LAST_CIRCUIT.get() {
        *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// The prepared circuit for `key` on backend `B`. The most recently used circuit is kept for the
/// next proof (one entry: at n = 1024 and blowup 8 it holds about 0.6 GB of Merkle layers and
/// twiddles).
pub(crate) fn prepared_circuit<B: StarkBackend>(
    key: PinKey,
    log_size: u32,
    pcs: PcsConfig,
    columns: impl FnOnce() -> Vec<Eval>,
) -> Arc<PreparedCircuit<B>> {
    let last = LAST_CIRCUIT.get_or_init(|| Mutex::new(None));
    if let Ok(guard) = last.lock()
        && let Some((t, k, c)) = guard.as_ref()
        && *t == TypeId::of::<B>()
        && *k == key
        && let Ok(c) = Arc::clone(c).downcast::<PreparedCircuit<B>>()
    {
        return c;
    }
    let prepared = Arc::new(PreparedCircuit::<B>::build(log_size, pcs, columns()));
    if let Ok(mut guard) = last.lock() {
        *guard = Some((TypeId::of::<B>(), key, Arc::clone(&prepared) as Arc<dyn Any + Send + Sync>));
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

/// The backend a proof runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// Stwo's SIMD backend.
    Simd,
    /// The wgpu backend ([`crate::gpu::GpuBackend`]).
    #[cfg(feature = "gpu")]
    Gpu,
}

/// Resolves the backend request to the backend that will run.
///
/// `Gpu` needs a device (a software adapter such as lavapipe counts: that is how CI tests it).
/// `Auto` takes what [`crate::gpu::auto_accepts`] accepts (a hardware GPU, or a software one with
/// `SAGE_GPU_ALLOW_SOFTWARE=1`); otherwise it falls back to the CPU and says so once.
pub(crate) fn resolve_backend(requested: ProverBackend) -> Result<Engine, ProveError> {
    match requested {
        ProverBackend::Cpu => Ok(Engine::Simd),
        #[cfg(not(feature = "gpu"))]
        ProverBackend::Gpu => Err(ProveError::BackendUnavailable {
            backend: ProverBackend::Gpu,
            reason: "this build has no GPU backend (build obelysk-prover with the `gpu` feature)".into(),
        }),
        #[cfg(not(feature = "gpu"))]
        ProverBackend::Auto => {
            static LOGGED: std::sync::Once = std::sync::Once::new();
            LOGGED.call_once(|| {
                tracing::info!("backend Auto: built without the `gpu` feature; proving on the SIMD CPU backend")
            });
            Ok(Engine::Simd)
        }
        #[cfg(feature = "gpu")]
        ProverBackend::Gpu => match crate::gpu::GpuBackend::runtime() {
            Ok(_) => Ok(Engine::Gpu),
            Err(e) => Err(ProveError::BackendUnavailable { backend: ProverBackend::Gpu, reason: e.to_string() }),
        },
        #[cfg(feature = "gpu")]
        ProverBackend::Auto => {
            static LOGGED: std::sync::Once = std::sync::Once::new();
            match crate::gpu::GpuBackend::runtime() {
                Ok(ctx) if crate::gpu::auto_accepts(ctx.adapter()) => Ok(Engine::Gpu),
                Ok(ctx) => {
                    let name = ctx.adapter().name.clone();
                    LOGGED.call_once(|| {
                        tracing::info!(adapter = %name, "backend Auto: only a software GPU adapter; proving on the SIMD CPU backend (SAGE_GPU_ALLOW_SOFTWARE=1 to use it)")
                    });
                    Ok(Engine::Simd)
                }
                Err(e) => {
                    LOGGED.call_once(
                        || tracing::warn!(error = %e, "backend Auto: no usable GPU; proving on the SIMD CPU backend"),
                    );
                    Ok(Engine::Simd)
                }
            }
        }
    }
}
