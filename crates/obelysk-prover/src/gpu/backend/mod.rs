//! [`GpuBackend`]: a Stwo backend whose circle FFTs (interpolate, evaluate, low-degree
//! extension), Blake2s Merkle trees, DEEP quotients, FRI folds, proof-of-work grinding and the
//! AIRs' constraint evaluation run on the wgpu device, everything else on Stwo's SIMD backend.
//!
//! Columns are the SIMD backend's own column types, so an operation that is not on the device hands
//! its data to `SimdBackend` unchanged (owned data moves; borrowed data is copied once), and the
//! proof is byte-identical to the SIMD proof: the kernels compute exactly what Stwo's code computes
//! (field arithmetic is exact; grinding returns the same smallest nonce), and coefficients are put
//! into the SIMD backend's order (above 2^16 coefficients it keeps them with 16-lane vectors
//! transposed) before they leave an FFT.
//!
//! The device is a process-wide [`GpuContext`] ([`GpuBackend::runtime`]). Each device operation is
//! checked: when it fails (validation, out of memory, lost device, injected fault) the same
//! operation is done on the SIMD backend instead, the fallback is logged (the first one at `warn`)
//! and counted in [`GpuBackendStats`], and the proof goes on. Operations on columns smaller than
//! [`GpuBackend::min_log_size`] stay on the CPU (the transfer costs more than the work).
//!
//! Every column also lives on the host (Stwo's prover reads them there: decommitments, OODS).
//! A column the device produced stays resident for the next device phase (coefficients →
//! extension → Merkle tree → quotient numerators), so it is uploaded once ([`Resident`]).
//!
//! Constraint evaluation: [`ComponentProver`] for `GpuBackend` compiles the component's constraints
//! into a device row program (see `constraints.rs`) and runs it on the committed evaluations where
//! they already are. A component the compiler refuses (logup relations, inverses), and the
//! ExtendToEvalDomain mode, run the framework's SIMD evaluator on the same columns instead, folded
//! into the GPU accumulator. Also on the CPU: out-of-domain sampling, and GKR (unused by this
//! crate's AIRs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use num_traits::{One, Zero};
use serde::{Deserialize, Serialize};
use stwo::core::channel::Blake2sChannel;
use stwo::core::circle::{CirclePoint, Coset};
use stwo::core::fields::FieldExpOps;
use stwo::core::fields::m31::{BaseField, M31};
use stwo::core::fields::qm31::{SECURE_EXTENSION_DEGREE, SecureField};
use stwo::core::pcs::TreeVec;
use stwo::core::pcs::quotients::ColumnSampleBatch;
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::core::poly::line::LineDomain;
use stwo::core::proof_of_work::GrindOps;
use stwo::core::utils::bit_reverse_index;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::core::vcs_lifted::verifier::PACKED_LEAF_SIZE;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::{BaseColumn, SecureColumn};
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo::prover::backend::{Backend, BackendForChannel, Col, Column, ColumnOps, CpuBackend};
use stwo::prover::fri::FriOps;
use stwo::prover::line::LineEvaluation;
use stwo::prover::lookups::gkr_prover::{GkrMultivariatePolyOracle, GkrOps, Layer};
use stwo::prover::lookups::mle::{Mle, MleOps};
use stwo::prover::lookups::utils::UnivariatePoly;
use stwo::prover::mempool::BaseColumnPool;
use stwo::prover::pcs::quotient_ops::AccumulatedNumerators;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps, SecureEvaluation};
use stwo::prover::poly::twiddles::{TwiddleBuffer, TwiddleTree};
use stwo::prover::secure_column::SecureColumnByCoords;
use stwo::prover::vcs_lifted::ops::{MerkleOpsLifted, PackLeavesOps};
use stwo::prover::{AccumulationOps, ComponentProver, DomainEvaluationAccumulator, Poly, QuotientOps, Trace};
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval};

use super::context::{GpuContext, GpuError, GpuOptions};
use super::kernels::GpuTwiddles;

/// A Stwo backend with the FFTs and Merkle trees on the GPU (see the module docs).
#[derive(Copy, Clone, Debug, Default, Serialize, Deserialize)]
pub struct GpuBackend;

/// The SIMD backend's FFT layout switches to transposed vectors above this many coefficients.
const SIMD_CACHED_FFT_LOG_SIZE: u32 = 16;
/// Lanes of one SIMD vector (the transposition granularity).
const LOG_LANES: u32 = 4;
/// Default smallest column (log2 length) sent to the device.
pub const DEFAULT_MIN_LOG_SIZE: u32 = 10;

/// The phases [`GpuBackendStats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GpuPhase {
    /// Evaluations → coefficients.
    Interpolate,
    /// Coefficients → evaluations (including the low-degree extension).
    Evaluate,
    /// Blake2s Merkle leaves and layers.
    Merkle,
    /// Constraint evaluation on the extended trace (compiled row program; SIMD evaluator for what
    /// the compiler refuses).
    Constraints,
    /// DEEP quotients at the sampled points: numerators, combination and extension (device).
    Quotients,
    /// FRI folding (device).
    Fri,
    /// Proof-of-work grinding (device).
    Grind,
}

impl GpuPhase {
    /// Every phase, in proving order.
    pub const ALL: [GpuPhase; 7] = [
        GpuPhase::Interpolate,
        GpuPhase::Evaluate,
        GpuPhase::Merkle,
        GpuPhase::Constraints,
        GpuPhase::Quotients,
        GpuPhase::Fri,
        GpuPhase::Grind,
    ];

    /// Short name (`interpolate`, `evaluate`, `merkle`, `constraints`, `quotients`, `fri`, `grind`).
    pub fn name(self) -> &'static str {
        match self {
            GpuPhase::Interpolate => "interpolate",
            GpuPhase::Evaluate => "evaluate",
            GpuPhase::Merkle => "merkle",
            GpuPhase::Constraints => "constraints",
            GpuPhase::Quotients => "quotients",
            GpuPhase::Fri => "fri",
            GpuPhase::Grind => "grind",
        }
    }
}

/// Per-phase counters of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhaseStats {
    /// Operations done on the device.
    pub gpu_ops: u64,
    /// Wall time of those operations, transfers included (nanoseconds).
    pub gpu_nanos: u64,
    /// Operations that failed on the device and were redone on the CPU.
    pub fallbacks: u64,
    /// Operations kept on the CPU because their columns were below the size threshold.
    pub small_on_cpu: u64,
    /// Operations done on the CPU (small, fallback, or device disabled).
    pub cpu_ops: u64,
    /// Wall time of those CPU operations (nanoseconds).
    pub cpu_nanos: u64,
}

/// What the GPU backend did since the last [`GpuBackend::reset_stats`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuBackendStats {
    /// Counters per phase.
    pub phases: Vec<(GpuPhase, PhaseStats)>,
    /// Bytes moved host → device and device → host.
    pub transfers: super::TransferStats,
    /// Columns a phase found already on the device (not uploaded again).
    pub resident_hits: u64,
}

impl GpuBackendStats {
    /// The counters of `phase`.
    pub fn phase(&self, phase: GpuPhase) -> PhaseStats {
        self.phases.iter().find(|(p, _)| *p == phase).map(|(_, s)| *s).unwrap_or_default()
    }

    /// Device operations that failed and were redone on the CPU, all phases.
    pub fn fallbacks(&self) -> u64 {
        self.phases.iter().map(|(_, s)| s.fallbacks).sum()
    }

    /// Operations done on the device, all phases.
    pub fn gpu_ops(&self) -> u64 {
        self.phases.iter().map(|(_, s)| s.gpu_ops).sum()
    }
}

#[derive(Default)]
struct Counters {
    gpu_ops: AtomicU64,
    gpu_nanos: AtomicU64,
    fallbacks: AtomicU64,
    small: AtomicU64,
    cpu_ops: AtomicU64,
    cpu_nanos: AtomicU64,
}

/// A fold domain: (circle rather than line, initial index, step, log size).
type FoldDomainKey = (bool, usize, usize, u32);

/// The process-wide device state behind [`GpuBackend`].
struct Runtime {
    ctx: GpuContext,
    /// Device twiddles by (twiddle buffer id, domain log size, inverse).
    twiddles: Mutex<HashMap<(u64, u32, bool), Arc<GpuTwiddles>>>,
    /// Upper Merkle layers computed together with the leaves, served to `build_next_layer`.
    layers: Mutex<Vec<TreeLayers>>,
    /// Device copies of host columns this backend just produced (see [`Resident`]).
    resident: Mutex<Vec<Resident>>,
    resident_hits: AtomicU64,
    /// Inverse FRI fold twiddles on the device, by domain.
    fri_twiddles: Mutex<HashMap<FoldDomainKey, Arc<super::GpuColumn>>>,
    /// Quotient subdomain points (x then y, bit-reversed order) on the device, by subdomain.
    subdomain_points: Mutex<HashMap<(usize, usize, u32), Arc<super::GpuColumn>>>,
    /// Inverse twiddles of a quotient subdomain, by (twiddle buffer id, domain, subdomain log size).
    subdomain_twiddles: Mutex<HashMap<(u64, u32, u32), Arc<GpuTwiddles>>>,
    /// Compiled constraint kernels, by row program (one per circuit structure).
    constraint_pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    counters: [Counters; 7],
}

static RUNTIME: OnceLock<Result<Runtime, GpuError>> = OnceLock::new();
static OPTIONS: OnceLock<GpuOptions> = OnceLock::new();
static MIN_LOG_SIZE: AtomicU32 = AtomicU32::new(DEFAULT_MIN_LOG_SIZE);
static INJECTED_FAULTS: AtomicU64 = AtomicU64::new(0);
static INJECTED_CORRUPTIONS: AtomicU64 = AtomicU64::new(0);
static FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);
static NEXT_TWIDDLE_ID: AtomicU64 = AtomicU64::new(1);

fn runtime() -> Option<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            let options = OPTIONS.get().cloned().unwrap_or_default();
            GpuContext::new(&options).map(|ctx| {
                tracing::info!(adapter = %ctx.adapter().name, device_type = ?ctx.adapter().device_type, "GPU backend ready");
                Runtime {
                    ctx,
                    twiddles: Mutex::new(HashMap::new()),
                    layers: Mutex::new(Vec::new()),
                    resident: Mutex::new(Vec::new()),
                    resident_hits: AtomicU64::new(0),
                    fri_twiddles: Mutex::new(HashMap::new()),
                    subdomain_points: Mutex::new(HashMap::new()),
                    subdomain_twiddles: Mutex::new(HashMap::new()),
                    constraint_pipelines: Mutex::new(HashMap::new()),
                    counters: Default::default(),
                }
            })
        })
        .as_ref()
        .ok()
}

/// The layers of one Merkle tree the device built at once. Stwo asks for them one at a time
/// (`build_next_layer(previous layer)`): each layer is recognised by the address and length of
/// the vector handed out for the layer below it (it is moved, not copied, so the address holds)
/// and by its first and last hashes, and is handed out by moving it too.
struct TreeLayers {
    /// (address, length, first hash, last hash) of each layer, leaves first.
    keys: Vec<(usize, usize, Blake2sHash, Blake2sHash)>,
    /// The layers not handed out yet (`None` once handed out).
    layers: Vec<Option<Vec<Blake2sHash>>>,
}

fn layer_key(layer: &[Blake2sHash]) -> (usize, usize, Blake2sHash, Blake2sHash) {
    (
        layer.as_ptr() as usize,
        layer.len(),
        layer.first().copied().unwrap_or_default(),
        layer.last().copied().unwrap_or_default(),
    )
}

/// A poisoned cache lock (a panic while it was held) still guards consistent data: every cache
/// entry is inserted whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fingerprint positions per resident column.
const SAMPLES: usize = 64;
/// Most resident columns kept, and most words in all of them (1 GiB).
const RESIDENT_MAX_COLUMNS: usize = 256;
const RESIDENT_MAX_WORDS: usize = 1 << 28;

/// The device copy of a host column the backend produced (interpolated coefficients, extended
/// evaluations), so that the next phase (evaluate, Merkle) does not upload it again: the column
/// stays on the device between phases. Matched by the host buffer's address and length and a
/// fingerprint of 64 sampled values (one entry per address: a newer column replaces it); taken
/// (removed) when no longer needed, dropped at the end of each proof and when the cache is full.
/// A stale match (the host buffer reused for data that agrees at every sampled position) would feed
/// old data to a kernel: the proof would then fail the verification `prove()` runs on every
/// GPU-made proof, and be redone on the CPU with the prepared circuit rebuilt.
struct Resident {
    ptr: usize,
    len: usize,
    sample: [u32; SAMPLES],
    /// The device words (coefficients in CPU order, whatever the host copy's order).
    column: Arc<super::GpuColumn>,
}

fn fingerprint(values: &[BaseField]) -> [u32; SAMPLES] {
    let n = values.len();
    std::array::from_fn(|i| if n == 0 { 0 } else { values[(i * n) / SAMPLES + (i * 7919) % (n / SAMPLES).max(1)].0 })
}

impl Runtime {
    fn keep(&self, host: &[BaseField], column: super::GpuColumn) {
        let mut r = lock(&self.resident);
        let column = Arc::new(column);
        // A newer column at the same host address replaces any older entry.
        r.retain(|e| e.ptr != host.as_ptr() as usize || e.len != host.len());
        r.push(Resident { ptr: host.as_ptr() as usize, len: host.len(), sample: fingerprint(host), column });
        while r.len() > RESIDENT_MAX_COLUMNS || r.iter().map(|e| e.column.len()).sum::<usize>() > RESIDENT_MAX_WORDS {
            r.remove(0);
        }
    }

    /// The device copy of `host`, removed from the cache (it is about to be overwritten or is no
    /// longer needed).
    fn take(&self, host: &[BaseField]) -> Option<Arc<super::GpuColumn>> {
        self.lookup(host, true)
    }

    /// The device copy of `host`, left in the cache for later phases.
    fn peek(&self, host: &[BaseField]) -> Option<Arc<super::GpuColumn>> {
        self.lookup(host, false)
    }

    fn lookup(&self, host: &[BaseField], remove: bool) -> Option<Arc<super::GpuColumn>> {
        let mut r = lock(&self.resident);
        let (ptr, len) = (host.as_ptr() as usize, host.len());
        let i = r.iter().position(|e| e.ptr == ptr && e.len == len)?;
        if r[i].sample != fingerprint(host) {
            // The host buffer was reused for other data: the device copy is stale.
            r.remove(i);
            return None;
        }
        self.resident_hits.fetch_add(1, Ordering::Relaxed);
        Some(if remove { r.remove(i).column } else { Arc::clone(&r[i].column) })
    }

    /// A device column holding `host` (its first `prefix` words when uploading): the resident copy
    /// if there is one, otherwise an upload.
    fn device_or_upload(&self, host: &[BaseField], prefix: usize) -> Result<Arc<super::GpuColumn>, GpuError> {
        match self.peek(host) {
            Some(column) => Ok(column),
            None => self.ctx.try_upload(&host[..prefix].iter().map(|v| v.0).collect::<Vec<_>>()).map(Arc::new),
        }
    }
}

fn phase_index(phase: GpuPhase) -> usize {
    match phase {
        GpuPhase::Interpolate => 0,
        GpuPhase::Evaluate => 1,
        GpuPhase::Merkle => 2,
        GpuPhase::Constraints => 3,
        GpuPhase::Quotients => 4,
        GpuPhase::Fri => 5,
        GpuPhase::Grind => 6,
    }
}

/// Runs `op` on the device when the runtime is up and the column is large enough. `None` means
/// "do it on the CPU" (too small, no device, or the device operation failed — counted and logged).
fn on_device<T>(phase: GpuPhase, log_size: u32, op: impl FnOnce(&Runtime) -> Result<T, GpuError>) -> Option<T> {
    let rt = runtime()?;
    let counters = &rt.counters[phase_index(phase)];
    if log_size < MIN_LOG_SIZE.load(Ordering::Relaxed) {
        counters.small.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let start = Instant::now();
    let injected = INJECTED_FAULTS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let result = if injected {
        Err(GpuError::Operation { operation: phase.name(), message: "injected fault".into() })
    } else {
        op(rt)
    };
    match result {
        Ok(value) => {
            counters.gpu_ops.fetch_add(1, Ordering::Relaxed);
            counters.gpu_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            Some(value)
        }
        Err(error) => {
            counters.fallbacks.fetch_add(1, Ordering::Relaxed);
            if FALLBACK_WARNED.swap(true, Ordering::Relaxed) {
                tracing::debug!(phase = phase.name(), log_size, %error, "GPU operation failed; redone on the CPU");
            } else {
                tracing::warn!(
                    phase = phase.name(),
                    log_size,
                    %error,
                    "GPU operation failed; redone on the SIMD CPU backend (the proof is unaffected; later fallbacks are logged at debug)"
                );
            }
            None
        }
    }
}

/// Runs the CPU side of an operation of `phase`, timed into the same counters.
fn on_cpu<T>(phase: GpuPhase, op: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = op();
    if let Some(Ok(rt)) = RUNTIME.get() {
        let c = &rt.counters[phase_index(phase)];
        c.cpu_ops.fetch_add(1, Ordering::Relaxed);
        c.cpu_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    value
}

impl GpuBackend {
    /// Sets the adapter options the device is created with. Only the first call before the device
    /// is first used counts; returns `false` when it came too late.
    pub fn configure(options: GpuOptions) -> bool {
        RUNTIME.get().is_none() && OPTIONS.set(options).is_ok()
    }

    /// The process-wide device, created on first use. `Err` when no usable adapter exists (every
    /// operation then runs on the CPU; [`crate::prove`] refuses `ProverBackend::Gpu`).
    pub fn runtime() -> Result<&'static GpuContext, GpuError> {
        runtime();
        match RUNTIME.get() {
            Some(Ok(rt)) => Ok(&rt.ctx),
            Some(Err(e)) => Err(e.clone()),
            None => Err(GpuError::NoAdapter { reason: "GPU runtime not initialised".into() }),
        }
    }

    /// Smallest column (log2 of its length) that goes to the device.
    pub fn min_log_size() -> u32 {
        MIN_LOG_SIZE.load(Ordering::Relaxed)
    }

    /// Sets [`Self::min_log_size`] (at least 5: smaller FFTs stay on the CPU, as in Stwo).
    pub fn set_min_log_size(log_size: u32) {
        MIN_LOG_SIZE.store(log_size.max(5), Ordering::Relaxed);
    }

    /// Makes the next `n` device operations fail as a device error would (tests the CPU fallback).
    pub fn inject_faults(n: u64) {
        INJECTED_FAULTS.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` device interpolations return a wrong coefficient without an error, as a
    /// faulty driver would (tests that such a proof is caught and redone on the CPU).
    pub fn inject_corruptions(n: u64) {
        INJECTED_CORRUPTIONS.store(n, Ordering::SeqCst);
    }

    /// Counters since the last reset.
    pub fn stats() -> GpuBackendStats {
        let Some(rt) = runtime() else { return GpuBackendStats::default() };
        GpuBackendStats {
            phases: GpuPhase::ALL
                .iter()
                .map(|&p| {
                    let c = &rt.counters[phase_index(p)];
                    (
                        p,
                        PhaseStats {
                            gpu_ops: c.gpu_ops.load(Ordering::Relaxed),
                            gpu_nanos: c.gpu_nanos.load(Ordering::Relaxed),
                            fallbacks: c.fallbacks.load(Ordering::Relaxed),
                            small_on_cpu: c.small.load(Ordering::Relaxed),
                            cpu_ops: c.cpu_ops.load(Ordering::Relaxed),
                            cpu_nanos: c.cpu_nanos.load(Ordering::Relaxed),
                        },
                    )
                })
                .collect(),
            transfers: rt.ctx.transfers(),
            resident_hits: rt.resident_hits.load(Ordering::Relaxed),
        }
    }

    /// Drops every resident device column (called before and after each proof).
    pub fn clear_resident() {
        if let Some(rt) = runtime() {
            lock(&rt.resident).clear();
            // Also layers a panicked commit left half handed out.
            lock(&rt.layers).clear();
        }
    }

    /// Zeroes the counters and the transfer statistics.
    pub fn reset_stats() {
        if let Some(rt) = runtime() {
            for c in &rt.counters {
                c.gpu_ops.store(0, Ordering::Relaxed);
                c.gpu_nanos.store(0, Ordering::Relaxed);
                c.fallbacks.store(0, Ordering::Relaxed);
                c.small.store(0, Ordering::Relaxed);
                c.cpu_ops.store(0, Ordering::Relaxed);
                c.cpu_nanos.store(0, Ordering::Relaxed);
            }
            rt.ctx.reset_transfers();
            rt.resident_hits.store(0, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Twiddles: the SIMD tree plus an identity for the device-side cache.

/// One direction of a [`GpuBackend`] twiddle tree: the SIMD tree it came from (shared by both
/// directions, so SIMD code can use it without a copy) and a unique id keying the device copy.
#[derive(Clone)]
pub struct GpuTwiddleBuffer {
    simd: Arc<TwiddleTree<SimdBackend>>,
    id: u64,
}

impl std::fmt::Debug for GpuTwiddleBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTwiddleBuffer")
            .field("id", &self.id)
            .field("root_coset_log_size", &self.simd.root_coset.log_size)
            .field("len", &self.simd.twiddles.len())
            .finish()
    }
}

impl GpuTwiddleBuffer {
    fn new(simd: Arc<TwiddleTree<SimdBackend>>) -> Self {
        Self { simd, id: NEXT_TWIDDLE_ID.fetch_add(1, Ordering::Relaxed) }
    }
}

impl TwiddleBuffer<BitReversedOrder> for GpuTwiddleBuffer {
    fn empty() -> Self {
        Self::new(Arc::new(TwiddleTree {
            root_coset: CanonicCoset::new(1).half_coset(),
            twiddles: Vec::new(),
            itwiddles: Vec::new(),
        }))
    }

    fn extract_subdomain_twiddles(&self, domain_log_size: u32, subdomain_log_size: u32) -> Self {
        let t = &self.simd;
        let extract = |v: &Vec<u32>| {
            if v.is_empty() { Vec::new() } else { v.extract_subdomain_twiddles(domain_log_size, subdomain_log_size) }
        };
        Self::new(Arc::new(TwiddleTree {
            root_coset: t.root_coset,
            twiddles: extract(&t.twiddles),
            itwiddles: extract(&t.itwiddles),
        }))
    }
}

/// The SIMD tree behind `tree` for an operation that reads forward twiddles.
fn simd_forward(tree: &TwiddleTree<GpuBackend>) -> &TwiddleTree<SimdBackend> {
    &tree.twiddles.simd
}

/// The SIMD tree behind `tree` for an operation that reads inverse twiddles.
fn simd_inverse(tree: &TwiddleTree<GpuBackend>) -> &TwiddleTree<SimdBackend> {
    &tree.itwiddles.simd
}

/// The value cached under `key`, or `make()` stored there (the whole cache is dropped when it
/// holds `capacity` entries: the values are cheap to rebuild and a proof uses few of them).
fn cached<K: std::hash::Hash + Eq, V>(
    cache: &Mutex<HashMap<K, Arc<V>>>,
    key: K,
    capacity: usize,
    make: impl FnOnce() -> Result<V, GpuError>,
) -> Result<Arc<V>, GpuError> {
    if let Some(v) = lock(cache).get(&key).cloned() {
        return Ok(v);
    }
    let v = Arc::new(make()?);
    let mut cache = lock(cache);
    if cache.len() >= capacity {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&v));
    Ok(v)
}

/// A SIMD twiddle tree direction as the device kernels take it: SIMD trees hold doubled twiddles
/// (2·x, below 2^32).
fn halved(doubled: &[u32]) -> Vec<BaseField> {
    doubled.iter().map(|&d| M31::from_u32_unchecked(d >> 1)).collect()
}

impl Runtime {
    /// The inverse fold twiddles of a domain (a pure function of the domain: cached), computed on
    /// the host from `points` (one per output pair) with one batch inversion.
    fn fri_twiddles(
        &self,
        circle: bool,
        coset: Coset,
        points: impl FnOnce() -> Vec<BaseField>,
    ) -> Result<Arc<super::GpuColumn>, GpuError> {
        let key = (circle, coset.initial_index.0, coset.step_size.0, coset.log_size);
        cached(&self.fri_twiddles, key, 64, || {
            let points = points();
            if points.iter().any(|p| *p == BaseField::zero()) {
                return Err(GpuError::Unsupported("a fold twiddle of zero".into()));
            }
            let inverses = BaseField::batch_inverse(&points);
            self.ctx.try_upload(&inverses.iter().map(|v| v.0).collect::<Vec<_>>())
        })
    }

    /// The points of `domain` in bit-reversed order on the device: x coordinates, then y.
    fn subdomain_points(&self, domain: CircleDomain) -> Result<Arc<super::GpuColumn>, GpuError> {
        let c = domain.half_coset;
        cached(&self.subdomain_points, (c.initial_index.0, c.step_size.0, c.log_size), 16, || {
            let (mut xs, mut ys) = (Vec::with_capacity(domain.size()), Vec::with_capacity(domain.size()));
            for p in stwo::prover::backend::simd::domain::CircleDomainBitRevIterator::new(domain) {
                xs.extend(p.x.to_array().map(|v| v.0));
                ys.extend(p.y.to_array().map(|v| v.0));
            }
            xs.extend(ys);
            self.ctx.try_upload(&xs)
        })
    }

    /// Inverse twiddles of `subdomain` (a prefix of `domain` in bit-reversed order), extracted
    /// from a GPU twiddle tree direction exactly as Stwo's quotient code extracts them.
    fn subdomain_itwiddles(
        &self,
        buffer: &GpuTwiddleBuffer,
        domain: CircleDomain,
        subdomain: CircleDomain,
    ) -> Result<Arc<GpuTwiddles>, GpuError> {
        let key = (buffer.id, domain.log_size(), subdomain.log_size());
        cached(&self.subdomain_twiddles, key, 16, || {
            let doubled = buffer.simd.itwiddles.extract_subdomain_twiddles(domain.log_size(), subdomain.log_size());
            self.ctx.fft_twiddles_from_tree(subdomain, &halved(&doubled), true)
        })
    }

    /// Device twiddles for `domain` from one direction of a GPU twiddle tree (uploaded once).
    fn device_twiddles(
        &self,
        buffer: &GpuTwiddleBuffer,
        domain: CircleDomain,
        inverse: bool,
    ) -> Result<Arc<GpuTwiddles>, GpuError> {
        cached(&self.twiddles, (buffer.id, domain.log_size(), inverse), 32, || {
            let doubled = if inverse { &buffer.simd.itwiddles } else { &buffer.simd.twiddles };
            self.ctx.fft_twiddles_from_tree(domain, &halved(doubled), inverse)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Moving between the two backends' wrapper types (the columns are the same types: no copy).

fn eval_to_simd(
    e: CircleEvaluation<GpuBackend, BaseField, BitReversedOrder>,
) -> CircleEvaluation<SimdBackend, BaseField, BitReversedOrder> {
    CircleEvaluation::new(e.domain, e.values)
}

fn eval_from_simd(
    e: CircleEvaluation<SimdBackend, BaseField, BitReversedOrder>,
) -> CircleEvaluation<GpuBackend, BaseField, BitReversedOrder> {
    CircleEvaluation::new(e.domain, e.values)
}

fn coeffs_from_simd(p: CircleCoefficients<SimdBackend>) -> CircleCoefficients<GpuBackend> {
    CircleCoefficients::new(p.coeffs)
}

fn coeffs_to_simd(p: CircleCoefficients<GpuBackend>) -> CircleCoefficients<SimdBackend> {
    CircleCoefficients::new(p.coeffs)
}

fn secure_to_simd(c: SecureColumnByCoords<GpuBackend>) -> SecureColumnByCoords<SimdBackend> {
    SecureColumnByCoords { columns: c.columns }
}

fn secure_from_simd(c: SecureColumnByCoords<SimdBackend>) -> SecureColumnByCoords<GpuBackend> {
    SecureColumnByCoords { columns: c.columns }
}

/// Borrows a GPU secure column as a SIMD one for the duration of `f`, without copying.
fn with_simd_secure<R>(
    c: &mut SecureColumnByCoords<GpuBackend>,
    f: impl FnOnce(&mut SecureColumnByCoords<SimdBackend>) -> R,
) -> R {
    let mut simd = SecureColumnByCoords {
        columns: std::mem::replace(&mut c.columns, std::array::from_fn(|_| BaseColumn::zeros(0))),
    };
    let r = f(&mut simd);
    c.columns = simd.columns;
    r
}

fn line_to_simd(e: LineEvaluation<GpuBackend>) -> LineEvaluation<SimdBackend> {
    let domain = e.domain();
    LineEvaluation::new(domain, secure_to_simd(e.values))
}

fn line_from_simd(e: LineEvaluation<SimdBackend>) -> LineEvaluation<GpuBackend> {
    let domain = e.domain();
    LineEvaluation::new(domain, secure_from_simd(e.values))
}

/// Reads a device column straight into a SIMD column (one copy from the mapped buffer).
fn download_column(rt: &Runtime, column: &super::GpuColumn) -> Result<BaseColumn, GpuError> {
    let mut host = BaseColumn::zeros(column.len());
    rt.ctx.download_into(column, bytemuck::cast_slice_mut(host.as_mut_slice()))?;
    Ok(host)
}

/// The SIMD FFT keeps polynomials above 2^16 coefficients with their 16-lane vectors transposed
/// (vector index `a‖b‖c` ↔ `c‖b‖a`, `|a| = |c|`); this permutation is its own inverse.
fn transpose_vecs(words: &mut [u32]) {
    let log_n_vecs = words.len().ilog2() - LOG_LANES;
    let half = log_n_vecs / 2;
    let lanes = 1usize << LOG_LANES;
    for a in 0..1usize << half {
        for b in 0..1usize << (log_n_vecs & 1) {
            for c in 0..1usize << half {
                let i = (a << (log_n_vecs - half)) | (b << half) | c;
                let j = (c << (log_n_vecs - half)) | (b << half) | a;
                if i < j {
                    let (lo, hi) = words.split_at_mut(j * lanes);
                    lo[i * lanes..(i + 1) * lanes].swap_with_slice(&mut hi[..lanes]);
                }
            }
        }
    }
}

fn simd_order_is_transposed(log_size: u32) -> bool {
    log_size > SIMD_CACHED_FFT_LOG_SIZE
}

// ---------------------------------------------------------------------------------------------
// The device operations.

fn gpu_interpolate(
    eval: &CircleEvaluation<GpuBackend, BaseField, BitReversedOrder>,
    twiddles: &TwiddleTree<GpuBackend>,
) -> Option<BaseColumn> {
    let log_size = eval.domain.log_size();
    on_device(GpuPhase::Interpolate, log_size, |rt| {
        let tw = rt.device_twiddles(&twiddles.itwiddles, eval.domain, true)?;
        let device = match rt.take(eval.values.as_slice()) {
            Some(column) => column,
            None => Arc::new(rt.ctx.try_upload(&eval.values.as_slice().iter().map(|v| v.0).collect::<Vec<_>>())?),
        };
        rt.ctx.interpolate_with(&device, &tw)?;
        let mut column = download_column(rt, &device)?;
        let words: &mut [u32] = bytemuck::cast_slice_mut(column.as_mut_slice());
        if simd_order_is_transposed(log_size) {
            transpose_vecs(words);
        }
        if INJECTED_CORRUPTIONS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            words[0] ^= 1;
        }
        if let Ok(device) = Arc::try_unwrap(device) {
            rt.keep(column.as_slice(), device);
        }
        Ok(column)
    })
}

/// Evaluates on the device into `dst` (the domain's size); returns the evaluations' device column.
fn gpu_evaluate_into(
    poly: &CircleCoefficients<GpuBackend>,
    domain: CircleDomain,
    twiddles: &TwiddleTree<GpuBackend>,
    dst: &mut [BaseField],
) -> Option<super::GpuColumn> {
    on_device(GpuPhase::Evaluate, domain.log_size(), |rt| {
        let host = poly.coeffs.as_slice();
        let device = match rt.take(host) {
            Some(column) => column,
            None => {
                let mut coeffs: Vec<u32> = host.iter().map(|v| v.0).collect();
                if coeffs.len() > 1 && simd_order_is_transposed(coeffs.len().ilog2()) {
                    transpose_vecs(&mut coeffs);
                }
                Arc::new(rt.ctx.try_upload(&coeffs)?)
            }
        };
        let tw = rt.device_twiddles(&twiddles.twiddles, domain, false)?;
        let evals = rt.ctx.evaluate_column(&device, &tw)?;
        rt.ctx.download_into(&evals, bytemuck::cast_slice_mut(dst))?;
        Ok(evals)
    })
}

// ---------------------------------------------------------------------------------------------
// Backend traits.

impl ColumnOps<BaseField> for GpuBackend {
    type Column = BaseColumn;

    fn bit_reverse_column(column: &mut Self::Column) {
        <SimdBackend as ColumnOps<BaseField>>::bit_reverse_column(column)
    }
}

impl ColumnOps<SecureField> for GpuBackend {
    type Column = SecureColumn;

    fn bit_reverse_column(column: &mut Self::Column) {
        <SimdBackend as ColumnOps<SecureField>>::bit_reverse_column(column)
    }
}

impl ColumnOps<Blake2sHash> for GpuBackend {
    type Column = Vec<Blake2sHash>;

    fn bit_reverse_column(column: &mut Self::Column) {
        <SimdBackend as ColumnOps<Blake2sHash>>::bit_reverse_column(column)
    }
}

impl PolyOps for GpuBackend {
    type Twiddles = GpuTwiddleBuffer;

    fn interpolate(
        eval: CircleEvaluation<Self, BaseField, BitReversedOrder>,
        itwiddles: &TwiddleTree<Self>,
    ) -> CircleCoefficients<Self> {
        match gpu_interpolate(&eval, itwiddles) {
            Some(coeffs) => CircleCoefficients::new(coeffs),
            None => on_cpu(GpuPhase::Interpolate, || {
                coeffs_from_simd(SimdBackend::interpolate(eval_to_simd(eval), simd_inverse(itwiddles)))
            }),
        }
    }

    fn interpolate_columns(
        columns: Vec<CircleEvaluation<Self, BaseField, BitReversedOrder>>,
        twiddles: &TwiddleTree<Self>,
    ) -> Vec<CircleCoefficients<Self>> {
        // One column at a time: the device runs the batch, the host converts.
        columns.into_iter().map(|eval| Self::interpolate(eval, twiddles)).collect()
    }

    fn eval_at_point(poly: &CircleCoefficients<Self>, point: CirclePoint<SecureField>) -> SecureField {
        // Same coefficient layout as SIMD: the SIMD routine reads it in place.
        let simd = CircleCoefficients::<SimdBackend>::new(poly.coeffs.clone());
        SimdBackend::eval_at_point(&simd, point)
    }

    fn barycentric_weights(coset: CanonicCoset, p: CirclePoint<SecureField>) -> Col<Self, SecureField> {
        SimdBackend::barycentric_weights(coset, p)
    }

    fn barycentric_eval_at_point(
        evals: &CircleEvaluation<Self, BaseField, BitReversedOrder>,
        weights: &Col<Self, SecureField>,
    ) -> SecureField {
        let simd =
            CircleEvaluation::<SimdBackend, BaseField, BitReversedOrder>::new(evals.domain, evals.values.clone());
        SimdBackend::barycentric_eval_at_point(&simd, weights)
    }

    fn eval_at_point_by_folding(
        evals: &CircleEvaluation<Self, BaseField, BitReversedOrder>,
        point: CirclePoint<SecureField>,
        twiddles: &TwiddleTree<Self>,
    ) -> SecureField {
        let simd =
            CircleEvaluation::<SimdBackend, BaseField, BitReversedOrder>::new(evals.domain, evals.values.clone());
        SimdBackend::eval_at_point_by_folding(&simd, point, simd_inverse(twiddles))
    }

    fn extend(poly: &CircleCoefficients<Self>, log_size: u32) -> CircleCoefficients<Self> {
        let simd = CircleCoefficients::<SimdBackend>::new(poly.coeffs.clone());
        coeffs_from_simd(SimdBackend::extend(&simd, log_size))
    }

    fn evaluate(
        poly: &CircleCoefficients<Self>,
        domain: CircleDomain,
        twiddles: &TwiddleTree<Self>,
    ) -> CircleEvaluation<Self, BaseField, BitReversedOrder> {
        let mut values = BaseColumn::zeros(domain.size());
        match gpu_evaluate_into(poly, domain, twiddles, values.as_mut_slice()) {
            Some(_) => CircleEvaluation::new(domain, values),
            None => on_cpu(GpuPhase::Evaluate, || {
                let simd = CircleCoefficients::<SimdBackend>::new(poly.coeffs.clone());
                eval_from_simd(SimdBackend::evaluate(&simd, domain, simd_forward(twiddles)))
            }),
        }
    }

    fn evaluate_into(
        poly: &CircleCoefficients<Self>,
        domain: CircleDomain,
        twiddles: &TwiddleTree<Self>,
        mut buffer: Col<Self, BaseField>,
    ) -> CircleEvaluation<Self, BaseField, BitReversedOrder> {
        let gpu = if buffer.len() == domain.size() {
            gpu_evaluate_into(poly, domain, twiddles, buffer.as_mut_slice())
        } else {
            None
        };
        match gpu {
            Some(device) => {
                // The commitment's Merkle tree reads these evaluations next: keep them on the device.
                if let Some(rt) = runtime() {
                    rt.keep(buffer.as_slice(), device);
                }
                CircleEvaluation::new(domain, buffer)
            }
            _ => {
                // The buffer's old device copy (if any) no longer matches what is written below.
                if let Some(rt) = runtime() {
                    rt.take(buffer.as_slice());
                }
                on_cpu(GpuPhase::Evaluate, || {
                    let simd = CircleCoefficients::<SimdBackend>::new(poly.coeffs.clone());
                    eval_from_simd(SimdBackend::evaluate_into(&simd, domain, simd_forward(twiddles), buffer))
                })
            }
        }
    }

    fn evaluate_polynomials(
        polynomials: Vec<CircleCoefficients<Self>>,
        log_blowup_factor: u32,
        twiddles: &TwiddleTree<Self>,
        store_polynomials_coefficients: bool,
        pool: &BaseColumnPool<Self>,
    ) -> Vec<Poly<Self>> {
        polynomials
            .into_iter()
            .map(|coeffs| {
                let log_eval_size = coeffs.log_size() + log_blowup_factor;
                let domain = CanonicCoset::new(log_eval_size).circle_domain();
                let evals = Self::evaluate_into(&coeffs, domain, twiddles, pool.take_or_alloc(log_eval_size));
                Poly::new(store_polynomials_coefficients.then_some(coeffs), evals)
            })
            .collect()
    }

    fn precompute_twiddles(coset: Coset) -> TwiddleTree<Self> {
        let simd = Arc::new(SimdBackend::precompute_twiddles(coset));
        TwiddleTree {
            root_coset: simd.root_coset,
            twiddles: GpuTwiddleBuffer::new(Arc::clone(&simd)),
            itwiddles: GpuTwiddleBuffer::new(simd),
        }
    }

    fn split_at_mid(poly: CircleCoefficients<Self>) -> (CircleCoefficients<Self>, CircleCoefficients<Self>) {
        let (l, r) = SimdBackend::split_at_mid(coeffs_to_simd(poly));
        (coeffs_from_simd(l), coeffs_from_simd(r))
    }
}

impl MerkleOpsLifted<Blake2sMerkleHasher> for GpuBackend {
    fn build_leaves(columns: &[&Col<Self, BaseField>], lifting_log_size: u32) -> Col<Self, Blake2sHash> {
        let shortest = columns.first().map_or(0, |c| c.len());
        let gpu = if shortest < 2 {
            None
        } else {
            on_device(GpuPhase::Merkle, lifting_log_size, |rt| {
                // Extended evaluations stay resident: the DEEP quotients read them next.
                let device = columns
                    .iter()
                    .map(|c| rt.device_or_upload(c.as_slice(), c.len()))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut layers: Vec<Option<Vec<Blake2sHash>>> = rt
                    .ctx
                    .merkle_layers_resident(&device.iter().map(|c| &**c).collect::<Vec<_>>(), lifting_log_size)?
                    .into_iter()
                    .map(Some)
                    .collect();
                let keys = layers.iter().flatten().map(|l| layer_key(l)).collect();
                let leaves = layers[0].take().unwrap_or_default();
                let mut cache = lock(&rt.layers);
                // Keep at most a couple of trees: the prover asks for the layers right away.
                if cache.len() >= 2 {
                    cache.remove(0);
                }
                cache.push(TreeLayers { keys, layers });
                Ok(leaves)
            })
        };
        gpu.unwrap_or_else(|| {
            on_cpu(GpuPhase::Merkle, || {
                <SimdBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_leaves(columns, lifting_log_size)
            })
        })
    }

    fn build_next_layer(prev_layer: &Col<Self, Blake2sHash>) -> Col<Self, Blake2sHash> {
        if let Some(rt) = runtime() {
            let mut cache = lock(&rt.layers);
            // The layer above `prev_layer` if the device already built it.
            let key = layer_key(prev_layer);
            // Newest tree first.
            for t in (0..cache.len()).rev() {
                if let Some(i) = cache[t].keys.iter().position(|k| *k == key)
                    && let Some(next) = cache[t].layers.get_mut(i + 1).and_then(Option::take)
                {
                    if i + 2 == cache[t].layers.len() {
                        cache.remove(t);
                    }
                    return next;
                }
            }
        }
        on_cpu(GpuPhase::Merkle, || <SimdBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer(prev_layer))
    }
}

impl PackLeavesOps for GpuBackend {
    fn pack_leaves_input(
        values: &[&Col<Self, BaseField>; SECURE_EXTENSION_DEGREE],
    ) -> [Col<Self, BaseField>; SECURE_EXTENSION_DEGREE * PACKED_LEAF_SIZE] {
        SimdBackend::pack_leaves_input(values)
    }
}

impl GrindOps<Blake2sChannel> for GpuBackend {
    fn grind(channel: &Blake2sChannel, pow_bits: u32) -> u64 {
        let gpu = (pow_bits <= 32)
            .then(|| {
                on_device(GpuPhase::Grind, GRIND_LOW_BITS, |rt| {
                    rt.ctx
                        .grind(pow_prefixed_digest(channel, pow_bits), pow_bits, GRIND_LOW_BITS, GRIND_MAX_HI)?
                        .ok_or_else(|| GpuError::Unsupported(format!("no {pow_bits}-bit nonce with hi < p")))
                })
            })
            .flatten();
        gpu.unwrap_or_else(|| on_cpu(GpuPhase::Grind, || SimdBackend::grind(channel, pow_bits)))
    }
}

/// Nonces per `hi` value, as Stwo's SIMD grinder enumerates them (`low < 2^20`).
const GRIND_LOW_BITS: u32 = 20;
/// `hi` values the device may try: all of them (`hi < p`), as the SIMD grinder; a 32-bit search
/// needs about 2^12 dispatches.
const GRIND_MAX_HI: u32 = stwo::core::fields::m31::P;

/// `H(POW_PREFIX, [0; 12], channel digest, pow_bits)`, the fixed part of every grinding hash, as
/// eight little-endian words.
fn pow_prefixed_digest(channel: &Blake2sChannel, pow_bits: u32) -> [u32; 8] {
    let mut hasher = stwo::core::vcs::blake2_hash::Blake2sHasherGeneric::<false>::default();
    hasher.update(&Blake2sChannel::POW_PREFIX.to_le_bytes());
    hasher.update(&[0u8; 12]);
    hasher.update(&channel.digest().0);
    hasher.update(&pow_bits.to_le_bytes());
    let bytes = hasher.finalize().0;
    std::array::from_fn(|i| u32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]))
}

impl QuotientOps for GpuBackend {
    fn accumulate_numerators(
        columns: &[&CircleEvaluation<Self, BaseField, BitReversedOrder>],
        sample_batches: &[ColumnSampleBatch],
        accumulated_numerators_vec: &mut Vec<AccumulatedNumerators<Self>>,
        log_blowup_factor: u32,
    ) {
        let domain = columns.first().map(|c| c.domain);
        let gpu = domain.and_then(|domain| {
            let subdomain = domain.split(log_blowup_factor).0;
            on_device(GpuPhase::Quotients, subdomain.log_size(), |rt| {
                gpu_accumulate_numerators(rt, columns, sample_batches, subdomain.size())
            })
        });
        if let Some(accs) = gpu {
            accumulated_numerators_vec.extend(accs);
            return;
        }
        on_cpu(GpuPhase::Quotients, || {
            // The SIMD routine borrows evaluations; building SIMD views copies the columns once.
            let simd_columns: Vec<CircleEvaluation<SimdBackend, BaseField, BitReversedOrder>> =
                columns.iter().map(|c| CircleEvaluation::new(c.domain, c.values.clone())).collect();
            let mut simd_accs: Vec<AccumulatedNumerators<SimdBackend>> =
                std::mem::take(accumulated_numerators_vec).into_iter().map(numerators_to_simd).collect();
            SimdBackend::accumulate_numerators(
                &simd_columns.iter().collect::<Vec<_>>(),
                sample_batches,
                &mut simd_accs,
                log_blowup_factor,
            );
            *accumulated_numerators_vec = simd_accs.into_iter().map(numerators_from_simd).collect();
        })
    }

    fn compute_quotients_and_combine(
        accs: Vec<AccumulatedNumerators<Self>>,
        lifting_log_size: u32,
        log_blowup_factor: u32,
        twiddles: &TwiddleTree<Self>,
    ) -> SecureEvaluation<Self, BitReversedOrder> {
        let gpu = on_device(GpuPhase::Quotients, lifting_log_size.saturating_sub(log_blowup_factor), |rt| {
            gpu_compute_quotients(rt, &accs, lifting_log_size, log_blowup_factor, twiddles)
        });
        if let Some(evaluation) = gpu {
            return evaluation;
        }
        on_cpu(GpuPhase::Quotients, || {
            let e = SimdBackend::compute_quotients_and_combine(
                accs.into_iter().map(numerators_to_simd).collect(),
                lifting_log_size,
                log_blowup_factor,
                simd_forward(twiddles),
            );
            SecureEvaluation::new(e.domain, secure_from_simd(e.values))
        })
    }
}

/// `accumulate_numerators` on the device: the committed evaluations are read where they already
/// are (resident since their Merkle tree was built); only the subdomain numerators come back.
fn gpu_accumulate_numerators(
    rt: &Runtime,
    columns: &[&CircleEvaluation<GpuBackend, BaseField, BitReversedOrder>],
    sample_batches: &[ColumnSampleBatch],
    rows: usize,
) -> Result<Vec<AccumulatedNumerators<GpuBackend>>, GpuError> {
    let constants = stwo::core::pcs::quotients::quotient_constants(sample_batches);
    let mut device: HashMap<usize, Arc<super::GpuColumn>> = HashMap::new();
    let mut out = Vec::with_capacity(sample_batches.len());
    for (batch, coeffs) in sample_batches.iter().zip(&constants.line_coeffs) {
        let mut cols = Vec::with_capacity(coeffs.len());
        for data in &batch.cols_vals_randpows {
            let i = data.column_index;
            let host = columns
                .get(i)
                .ok_or_else(|| GpuError::Unsupported(format!("sample of column {i} of {}", columns.len())))?;
            let column = match device.entry(i) {
                std::collections::hash_map::Entry::Occupied(e) => Arc::clone(e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    Arc::clone(e.insert(rt.device_or_upload(host.values.as_slice(), rows)?))
                }
            };
            cols.push(column);
        }
        if cols.is_empty() {
            out.push(AccumulatedNumerators {
                sample_point: batch.point,
                partial_numerators_acc: SecureColumnByCoords::zeros(rows),
                first_linear_term_acc: SecureField::zero(),
            });
            continue;
        }
        let c: Vec<[u32; 4]> = coeffs.iter().map(|(_, _, c)| c.to_m31_array().map(|v| v.0)).collect();
        let sum_b: SecureField = coeffs.iter().map(|(_, b, _)| *b).sum();
        let (words, device) = rt.ctx.quotient_numerators(
            &cols.iter().map(|c| &**c).collect::<Vec<_>>(),
            rows,
            &c,
            sum_b.to_m31_array().map(|v| v.0),
        )?;
        // The combination reads them next: keep the device copies instead of uploading again.
        for (host, column) in words.iter().zip(device) {
            rt.keep(host.as_slice(), column);
        }
        out.push(AccumulatedNumerators {
            sample_point: batch.point,
            partial_numerators_acc: SecureColumnByCoords { columns: words },
            first_linear_term_acc: coeffs.iter().map(|(a, ..)| *a).sum(),
        });
    }
    Ok(out)
}

/// `compute_quotients_and_combine` on the device: the combination on the subdomain, then the
/// extension to the whole evaluation domain (interpolate, evaluate), read back once.
fn gpu_compute_quotients(
    rt: &Runtime,
    accs: &[AccumulatedNumerators<GpuBackend>],
    lifting_log_size: u32,
    log_blowup_factor: u32,
    twiddles: &TwiddleTree<GpuBackend>,
) -> Result<SecureEvaluation<GpuBackend, BitReversedOrder>, GpuError> {
    let eval_domain = CanonicCoset::new(lifting_log_size).circle_domain();
    let subdomain = eval_domain.split(log_blowup_factor).0;
    let (log_rows, rows) = (subdomain.log_size(), subdomain.size());
    if log_rows < LOG_LANES || accs.is_empty() {
        return Err(GpuError::Unsupported(format!("a quotient subdomain of 2^{log_rows} with {} samples", accs.len())));
    }
    let mut meta = Vec::with_capacity(16 * accs.len());
    let mut partials = Vec::with_capacity(4 * accs.len());
    let mut words = 0usize;
    for acc in accs {
        let len = acc.partial_numerators_acc.len();
        if !len.is_power_of_two() || len > rows || len < 2 {
            return Err(GpuError::Unsupported(format!("quotient numerators of {len} rows on 2^{log_rows}")));
        }
        let offset = u32::try_from(words)
            .map_err(|_| GpuError::Unsupported("quotient numerators exceed u32 indexing".into()))?;
        let x = acc.sample_point.x.to_m31_array();
        let y = acc.sample_point.y.to_m31_array();
        meta.extend([x[0], x[1], x[2], x[3], y[0], y[1], y[2], y[3]].map(|v| v.0));
        meta.extend(acc.first_linear_term_acc.to_m31_array().map(|v| v.0));
        meta.extend([log_rows - len.ilog2(), len as u32, offset, 0]);
        for column in &acc.partial_numerators_acc.columns {
            // Resident when `accumulate_numerators` ran on the device (and no lift rewrote it).
            partials.push(match rt.take(column.as_slice()) {
                Some(device) => device,
                None => rt.device_or_upload(column.as_slice(), len)?,
            });
            words += len;
        }
    }
    let points = rt.subdomain_points(subdomain)?;
    let quotient = rt.ctx.quotient_combine(&points, rows, &meta, &partials.iter().map(|c| &**c).collect::<Vec<_>>())?;
    let sub_itwiddles = rt.subdomain_itwiddles(&twiddles.itwiddles, eval_domain, subdomain)?;
    let eval_twiddles = rt.device_twiddles(&twiddles.twiddles, eval_domain, false)?;
    let mut columns = Vec::with_capacity(4);
    for column in &quotient {
        rt.ctx.interpolate_with(column, &sub_itwiddles)?;
        let extended = rt.ctx.evaluate_column(column, &eval_twiddles)?;
        columns.push(download_column(rt, &extended)?);
    }
    let columns: [BaseColumn; 4] =
        columns.try_into().map_err(|_| GpuError::Unsupported("four quotient coordinates".into()))?;
    Ok(SecureEvaluation::new(eval_domain, SecureColumnByCoords { columns }))
}

fn numerators_to_simd(a: AccumulatedNumerators<GpuBackend>) -> AccumulatedNumerators<SimdBackend> {
    AccumulatedNumerators {
        sample_point: a.sample_point,
        partial_numerators_acc: secure_to_simd(a.partial_numerators_acc),
        first_linear_term_acc: a.first_linear_term_acc,
    }
}

fn numerators_from_simd(a: AccumulatedNumerators<SimdBackend>) -> AccumulatedNumerators<GpuBackend> {
    AccumulatedNumerators {
        sample_point: a.sample_point,
        partial_numerators_acc: secure_from_simd(a.partial_numerators_acc),
        first_linear_term_acc: a.first_linear_term_acc,
    }
}

impl FriOps for GpuBackend {
    fn decompose(
        eval: &SecureEvaluation<Self, BitReversedOrder>,
    ) -> (SecureEvaluation<Self, BitReversedOrder>, SecureField) {
        on_cpu(GpuPhase::Fri, || {
            let simd = SecureEvaluation::<SimdBackend, BitReversedOrder>::new(
                eval.domain,
                secure_to_simd(eval.values.clone()),
            );
            let (g, lambda) = SimdBackend::decompose(&simd);
            (SecureEvaluation::new(g.domain, secure_from_simd(g.values)), lambda)
        })
    }

    fn fold_line(
        eval: &LineEvaluation<Self>,
        alpha: SecureField,
        twiddles: &TwiddleTree<Self>,
        fold_step: u32,
    ) -> LineEvaluation<Self> {
        let log_size = eval.len().ilog2();
        let gpu = (fold_step >= 1 && log_size >= fold_step)
            .then(|| {
                on_device(GpuPhase::Fri, log_size, |rt| {
                    let mut domain = eval.domain();
                    let mut folding_alpha = alpha;
                    let (mut tws, mut alphas) = (Vec::new(), Vec::new());
                    for _ in 0..fold_step {
                        let d = domain;
                        tws.push(rt.fri_twiddles(false, d.coset(), || {
                            (0..d.size() / 2).map(|i| d.at(bit_reverse_index(i << 1, d.log_size()))).collect()
                        })?);
                        alphas.push(folding_alpha.to_m31_array().map(|v| v.0));
                        folding_alpha = folding_alpha * folding_alpha;
                        domain = domain.double();
                    }
                    let words: Vec<u32> =
                        eval.values.columns.iter().flat_map(|c| c.as_slice().iter().map(|v| v.0)).collect();
                    let folded = rt.ctx.fri_fold(&words, &tws.iter().map(|t| &**t).collect::<Vec<_>>(), &alphas)?;
                    Ok(LineEvaluation::new(
                        eval.domain().repeated_double(fold_step),
                        SecureColumnByCoords { columns: folded },
                    ))
                })
            })
            .flatten();
        gpu.unwrap_or_else(|| {
            on_cpu(GpuPhase::Fri, || {
                let simd = line_to_simd(LineEvaluation::new(eval.domain(), eval.values.clone()));
                line_from_simd(SimdBackend::fold_line(&simd, alpha, simd_inverse(twiddles), fold_step))
            })
        })
    }

    fn fold_circle_into_line(
        src: &SecureEvaluation<Self, BitReversedOrder>,
        alpha: SecureField,
        twiddles: &TwiddleTree<Self>,
    ) -> LineEvaluation<Self> {
        let log_size = src.domain.log_size();
        let gpu = (log_size >= 1 && src.len() == 1 << log_size)
            .then(|| {
                on_device(GpuPhase::Fri, log_size, |rt| {
                    let domain = src.domain;
                    let tw = rt.fri_twiddles(true, domain.half_coset, || {
                        (0..domain.size() / 2).map(|i| domain.at(bit_reverse_index(i << 1, log_size)).y).collect()
                    })?;
                    let words: Vec<u32> =
                        src.values.columns.iter().flat_map(|c| c.as_slice().iter().map(|v| v.0)).collect();
                    let folded = rt.ctx.fri_fold(&words, &[&*tw], &[alpha.to_m31_array().map(|v| v.0)])?;
                    Ok(LineEvaluation::new(
                        LineDomain::new(Coset::half_odds(log_size - 1)),
                        SecureColumnByCoords { columns: folded },
                    ))
                })
            })
            .flatten();
        gpu.unwrap_or_else(|| {
            on_cpu(GpuPhase::Fri, || {
                let simd = SecureEvaluation::<SimdBackend, BitReversedOrder>::new(
                    src.domain,
                    secure_to_simd(src.values.clone()),
                );
                line_from_simd(SimdBackend::fold_circle_into_line(&simd, alpha, simd_inverse(twiddles)))
            })
        })
    }
}

impl AccumulationOps for GpuBackend {
    fn accumulate(column: &mut SecureColumnByCoords<Self>, other: &SecureColumnByCoords<Self>) {
        let other = SecureColumnByCoords::<SimdBackend> { columns: other.columns.clone() };
        with_simd_secure(column, |c| SimdBackend::accumulate(c, &other));
    }

    fn generate_secure_powers(felt: SecureField, n_powers: usize) -> Vec<SecureField> {
        SimdBackend::generate_secure_powers(felt, n_powers)
    }

    fn lift_and_accumulate(cols: Vec<SecureColumnByCoords<Self>>) -> Option<SecureColumnByCoords<Self>> {
        // Accumulating rewrites the largest column in place: its device copy (if the numerators
        // were made on the device) would be stale.
        if cols.len() > 1
            && let Some(Ok(rt)) = RUNTIME.get()
        {
            for column in cols.iter().flat_map(|c| &c.columns) {
                rt.take(column.as_slice());
            }
        }
        SimdBackend::lift_and_accumulate(cols.into_iter().map(secure_to_simd).collect()).map(secure_from_simd)
    }
}

// GKR lookups (unused by this crate's AIRs) run on Stwo's CPU backend.

fn mle_from_cpu<F: stwo::core::fields::Field>(m: Mle<CpuBackend, F>) -> Mle<GpuBackend, F>
where
    GpuBackend: MleOps<F>,
    CpuBackend: MleOps<F>,
{
    Mle::new(m.into_evals().to_cpu().into_iter().collect())
}

fn layer_from_cpu(layer: Layer<CpuBackend>) -> Layer<GpuBackend> {
    match layer {
        Layer::GrandProduct(m) => Layer::GrandProduct(mle_from_cpu(m)),
        Layer::LogUpGeneric { numerators, denominators } => {
            Layer::LogUpGeneric { numerators: mle_from_cpu(numerators), denominators: mle_from_cpu(denominators) }
        }
        Layer::LogUpMultiplicities { numerators, denominators } => Layer::LogUpMultiplicities {
            numerators: mle_from_cpu(numerators),
            denominators: mle_from_cpu(denominators),
        },
        Layer::LogUpSingles { denominators } => Layer::LogUpSingles { denominators: mle_from_cpu(denominators) },
    }
}

impl MleOps<BaseField> for GpuBackend {
    fn fix_first_variable(mle: Mle<Self, BaseField>, assignment: SecureField) -> Mle<Self, SecureField> {
        let cpu = Mle::<CpuBackend, BaseField>::new(mle.into_evals().to_cpu());
        mle_from_cpu(CpuBackend::fix_first_variable(cpu, assignment))
    }
}

impl MleOps<SecureField> for GpuBackend {
    fn fix_first_variable(mle: Mle<Self, SecureField>, assignment: SecureField) -> Mle<Self, SecureField> {
        let cpu = Mle::<CpuBackend, SecureField>::new(mle.into_evals().to_cpu());
        mle_from_cpu(CpuBackend::fix_first_variable(cpu, assignment))
    }
}

impl GkrOps for GpuBackend {
    fn gen_eq_evals(y: &[SecureField], v: SecureField) -> Mle<Self, SecureField> {
        mle_from_cpu(CpuBackend::gen_eq_evals(y, v))
    }

    fn next_layer(layer: &Layer<Self>) -> Layer<Self> {
        layer_from_cpu(CpuBackend::next_layer(&layer.to_cpu()))
    }

    fn sum_as_poly_in_first_variable(
        h: &GkrMultivariatePolyOracle<'_, Self>,
        claim: SecureField,
    ) -> UnivariatePoly<SecureField> {
        CpuBackend::sum_as_poly_in_first_variable(&h.to_cpu(), claim)
    }
}

impl Backend for GpuBackend {}
impl BackendForChannel<Blake2sMerkleChannel> for GpuBackend {}

// ---------------------------------------------------------------------------------------------
// Constraint evaluation: the framework's SIMD evaluator, folded into the GPU accumulator.

fn poly_to_simd(p: &Poly<GpuBackend>) -> Poly<SimdBackend> {
    Poly::new(
        p.coeffs.as_ref().map(|c| CircleCoefficients::new(c.coeffs.clone())),
        CircleEvaluation::new(p.evals.domain, p.evals.values.clone()),
    )
}

/// Adds `scale · contribution` into `target` (four coordinate columns of equal length).
fn add_scaled(target: &mut SecureColumnByCoords<GpuBackend>, contribution: [&BaseColumn; 4], scale: SecureField) {
    let factor = PackedSecureField::broadcast(scale);
    for i in 0..target.columns[0].data.len() {
        let acc = PackedSecureField::from_packed_m31s(std::array::from_fn(|k| target.columns[k].data[i]));
        let add = PackedSecureField::from_packed_m31s(std::array::from_fn(|k| contribution[k].data[i]));
        let sum = (acc + add * factor).into_packed_m31s();
        for (k, v) in sum.into_iter().enumerate() {
            target.columns[k].data[i] = v;
        }
    }
}

/// A component's constraint quotients on the device (SubDomain mode): its constraints compiled
/// into a row program (the pipeline cached by program text), the committed evaluations read where
/// they already are, the contributions read back once.
fn gpu_constraints<E: FrameworkEval>(
    rt: &Runtime,
    component: &FrameworkComponent<E>,
    trace: &Trace<'_, GpuBackend>,
    log_expansion: u32,
    eval_log: u32,
    powers: &[SecureField],
) -> Result<[BaseColumn; 4], GpuError> {
    let eval: &E = component;
    let trace_log = eval.log_size();
    let rows = 1usize << eval_log;
    if eval_log <= trace_log {
        return Err(GpuError::Unsupported(format!(
            "constraints of degree bound 2^{eval_log} on a 2^{trace_log} trace"
        )));
    }
    let program = super::constraints::compile(eval, powers)?;
    let hosts = super::constraints::slot_columns(
        &program.slots,
        component.preprocessed_column_indices(),
        component.trace_locations(),
    )?;
    let device = hosts
        .iter()
        .map(|&(tree, index)| {
            let values = trace
                .polys
                .get(tree)
                .and_then(|t| t.get(index))
                .map(|p| p.evals.values.as_slice())
                .filter(|v| v.len() >= rows)
                .ok_or_else(|| GpuError::Unsupported(format!("trace column {index} of tree {tree}")))?;
            rt.device_or_upload(values, rows)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pipeline =
        cached(&rt.constraint_pipelines, program.body.clone(), 32, || rt.ctx.constraint_pipeline(&program.body))?;
    let mut consts = program.consts;
    let denominators_at = consts.len();
    consts.extend(super::constraints::denominator_inverses(trace_log, eval_log, log_expansion).iter().map(|v| v.0));
    let columns: Vec<&super::GpuColumn> = device.iter().map(|c| &**c).collect();
    rt.ctx.evaluate_constraints(&pipeline, &columns, rows, trace_log, &consts, denominators_at)
}

impl<E: FrameworkEval + Sync + 'static> ComponentProver<GpuBackend> for FrameworkComponent<E> {
    fn evaluate_constraint_quotients_on_domain(
        &self,
        trace: &Trace<'_, GpuBackend>,
        evaluation_accumulator: &mut DomainEvaluationAccumulator<GpuBackend>,
    ) {
        use stwo::core::air::Component;
        use stwo::prover::EvaluationMode;
        let n = self.n_constraints();
        if n == 0 {
            return;
        }
        if self.is_disabled() {
            evaluation_accumulator.skip_coeffs(n);
            return;
        }
        let mode = evaluation_accumulator.evaluation_mode();
        let log_size = self.max_constraint_log_degree_bound();
        let [target] = evaluation_accumulator.columns([(log_size, n)]);

        // Every constraint-framework AIR the row-program compiler takes runs on the device.
        if let EvaluationMode::SubDomain { log_expansion } = mode {
            let powers = target.random_coeff_powers.clone();
            let gpu = on_device(GpuPhase::Constraints, log_size, |rt| {
                gpu_constraints(rt, self, trace, log_expansion, log_size, &powers)
            });
            if let Some(contribution) = gpu {
                add_scaled(target.col, contribution.each_ref(), SecureField::one());
                return;
            }
        }

        on_cpu(GpuPhase::Constraints, || {
            let owned: Vec<Vec<Poly<SimdBackend>>> =
                trace.polys.iter().map(|tree| tree.iter().map(|p| poly_to_simd(p)).collect()).collect();
            let simd_trace = Trace { polys: TreeVec(owned.iter().map(|tree| tree.iter().collect()).collect()) };
            // The GPU accumulator hands this component the powers a^k … a^(k+n-1). A SIMD
            // accumulator with n powers of the same a gives Σ a^(n-1-j)·c_j; times a^k that is
            // exactly what the SIMD prover would have accumulated (field arithmetic is exact).
            let first = target.random_coeff_powers[0];
            let ratio = if n >= 2 && !first.is_zero() {
                target.random_coeff_powers[1] * first.inverse()
            } else {
                SecureField::one()
            };
            let mut simd_acc = DomainEvaluationAccumulator::<SimdBackend>::new(ratio, log_size, n, mode);
            <Self as ComponentProver<SimdBackend>>::evaluate_constraint_quotients_on_domain(
                self,
                &simd_trace,
                &mut simd_acc,
            );
            let [result] = simd_acc.columns([(log_size, 0)]);
            add_scaled(target.col, result.col.columns.each_ref(), first);
        });
    }
}

#[cfg(test)]
pub(super) fn transpose_vecs_for_tests(words: &mut [u32]) {
    transpose_vecs(words)
}
