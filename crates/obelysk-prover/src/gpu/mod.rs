//! wgpu compute kernels for the prover (feature `gpu`, issue 6): the first increment of a GPU
//! backend for Stwo.
//!
//! [`GpuContext`] owns a wgpu device (any adapter with compute: Vulkan here; Mesa lavapipe in CI)
//! and the compiled kernels; [`select_backend`] applies the crate's [`crate::ProverBackend`] semantics
//! (`Gpu`: no adapter is a typed [`GpuError`]; `Auto`: CPU fallback, logged once). Every transfer
//! between host and device is counted ([`GpuContext::transfers`]).
//!
//! Kernels (WGSL in `shaders/*.wgsl`, loaded with `include_str!`, validated with naga by
//! [`validate_shaders`]), each bit-identical to Stwo's CPU code on the same input:
//! - M31 add/sub/mul and QM31 mul on 32-bit limbs (WGSL has no u64),
//! - bit reversal ([`stwo::core::utils::bit_reverse`]),
//! - circle FFT: [`GpuContext::evaluate`] / [`GpuContext::interpolate`] run every butterfly layer on
//!   the device with twiddles taken from Stwo's CPU twiddle tree (`CpuBackend::evaluate/interpolate`),
//! - Blake2s Merkle: [`GpuContext::build_leaves`] (lifted leaves, Stwo's `Blake2sMerkleHasher`
//!   format) and [`GpuContext::build_next_layer`] / [`GpuContext::merkle_root`],
//! - the commit phase of one tree, [`GpuContext::commit_columns`]: interpolate → low-degree
//!   extension → lifted Merkle root, all on the device; the root equals the one Stwo's
//!   `CommitmentSchemeProver` (SIMD backend) commits to.
//!
//! Coefficients follow `CpuBackend`'s order. `SimdBackend` orders the coefficients of polynomials
//! with ≥ 2^17 coefficients differently (self-consistently), so coefficient vectors must not be
//! exchanged with it at those sizes; evaluations, and so Merkle roots, agree.
//!
//! wgpu errors (validation, out of memory, a lost device) inside an operation come back as
//! [`GpuError::Operation`], never as a panic or a silently wrong result; errors outside an
//! operation are logged. A caller that gets an error falls back to the CPU.
//!
//! Device buffers are [`GpuColumn`]s: they stay on the device between kernels until
//! [`GpuContext::download`]. Not yet done: a Stwo `Backend` (`ColumnOps`, `PolyOps`,
//! `MerkleOpsLifted`, `FriOps`, `QuotientOps`, ...) over these kernels, so [`crate::prove`] still
//! runs on the CPU (and `ProverBackend::Gpu` in `prove` still reports the backend unavailable).
//!
//! ```no_run
//! use obelysk_prover::gpu::{GpuContext, GpuOptions};
//! let gpu = GpuContext::new(&GpuOptions::default())?;
//! println!("{} ({:?})", gpu.adapter().name, gpu.adapter().device_type);
//! let c = gpu.m31_mul_slices(&[3, 5], &[7, 11])?;
//! assert_eq!(c, vec![21, 55]);
//! # Ok::<(), obelysk_prover::gpu::GpuError>(())
//! ```

mod backend;
#[cfg(test)]
mod backend_tests;
mod context;
mod kernels;
#[cfg(test)]
mod tests;

pub use backend::{DEFAULT_MIN_LOG_SIZE, GpuBackend, GpuBackendStats, GpuPhase, GpuTwiddleBuffer, PhaseStats};
pub use context::{
    AdapterSummary, BackendSelection, GpuColumn, GpuContext, GpuError, GpuOptions, TransferStats, select_backend,
};
pub use kernels::GpuTwiddles;

/// Shared field library prepended to every kernel file.
const FIELD_WGSL: &str = include_str!("shaders/field.wgsl");
const ARITH_WGSL: &str = include_str!("shaders/arith.wgsl");
const BIT_REVERSE_WGSL: &str = include_str!("shaders/bit_reverse.wgsl");
const FFT_WGSL: &str = include_str!("shaders/fft.wgsl");
const BLAKE2S_WGSL: &str = include_str!("shaders/blake2s.wgsl");
const QUOTIENTS_WGSL: &str = include_str!("shaders/quotients.wgsl");

/// The WGSL source of each shader module as the device receives it (field library + kernels).
pub fn shader_sources() -> Vec<(&'static str, String)> {
    [
        ("arith", ARITH_WGSL),
        ("bit_reverse", BIT_REVERSE_WGSL),
        ("fft", FFT_WGSL),
        ("blake2s", BLAKE2S_WGSL),
        ("quotients", QUOTIENTS_WGSL),
    ]
    .into_iter()
    .map(|(name, src)| (name, format!("{FIELD_WGSL}\n{src}")))
    .collect()
}

/// Parses and validates every shader module with naga (no GPU needed).
pub fn validate_shaders() -> Result<(), GpuError> {
    for (name, src) in shader_sources() {
        let module = naga::front::wgsl::parse_str(&src)
            .map_err(|e| GpuError::Shader { module: name, message: e.emit_to_string(&src) })?;
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .map_err(|e| GpuError::Shader { module: name, message: e.emit_to_string(&src) })?;
    }
    Ok(())
}
