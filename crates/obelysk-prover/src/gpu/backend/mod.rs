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
//! The device is a process-wide [`GpuContext`](crate::gpu::GpuContext) ([`GpuBackend::runtime`]).
//! Each device operation is checked: when it fails (validation, out of memory, lost device; in
//! unit tests also an injected fault) the same operation is done on the SIMD backend instead, the
//! fallback is logged (the first one at `warn`) and counted in [`GpuBackendStats`], and the proof
//! goes on. Operations on columns smaller than [`GpuBackend::min_log_size`] stay on the CPU (the
//! transfer costs more than the work).
//!
//! Every column also lives on the host (Stwo's prover reads them there: decommitments, OODS).
//! A column the device produced stays resident for the next device phase (coefficients →
//! extension → Merkle tree → quotient numerators), so it is uploaded once (`Resident`, in
//! `resident.rs`).
//!
//! Constraint evaluation: [`ComponentProver`](stwo::prover::ComponentProver) for `GpuBackend`
//! compiles the component's constraints into a device row program (see `constraints.rs`) and runs
//! it on the committed evaluations where they already are. A component the compiler refuses
//! (logup relations, inverses), and the ExtendToEvalDomain mode, run the framework's SIMD evaluator
//! on the same columns instead, folded into the GPU accumulator. Also on the CPU: out-of-domain
//! sampling, and GKR (unused by this crate's AIRs).
//!
//! Layout (one file per concern, as Stwo's `prover/backend/simd/`):
//! - `runtime.rs`: the process-wide device runtime (lazily created), the per-phase counters, the
//!   device-or-CPU dispatch with its fallback accounting, and (unit tests only) fault injection,
//! - `resident.rs`: the cache of device copies of host columns,
//! - `twiddles.rs`: [`GpuTwiddleBuffer`] and the device twiddle caches,
//! - `convert.rs`: moving between the GPU and SIMD wrapper types, the SIMD coefficient order,
//! - `poly.rs` (`PolyOps`), `merkle.rs` (`MerkleOpsLifted`), `quotients.rs` (`QuotientOps`),
//!   `fri.rs` (`FriOps`), `grind.rs` (`GrindOps`), `accumulation.rs` (`AccumulationOps`),
//!   `gkr.rs` (`MleOps`, `GkrOps`, on the CPU backend),
//! - `component.rs`: constraint evaluation (`ComponentProver`).

mod accumulation;
mod component;
mod convert;
mod fri;
mod gkr;
mod grind;
mod merkle;
mod poly;
mod quotients;
mod resident;
mod runtime;
mod twiddles;

use serde::{Deserialize, Serialize};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::{BaseColumn, SecureColumn};
use stwo::prover::backend::{Backend, BackendForChannel, ColumnOps};

pub use twiddles::GpuTwiddleBuffer;

/// A Stwo backend with the FFTs and Merkle trees on the GPU (see the module docs).
#[derive(Copy, Clone, Debug, Default, Serialize, Deserialize)]
pub struct GpuBackend;

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

impl Backend for GpuBackend {}
impl BackendForChannel<Blake2sMerkleChannel> for GpuBackend {}

#[cfg(test)]
pub(super) fn transpose_vecs_for_tests(words: &mut [u32]) {
    convert::transpose_vecs(words)
}
