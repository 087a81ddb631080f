//! The wgpu GPU backend for the prover (feature `gpu`, issue 6).
//!
//! [`GpuBackend`] is a Stwo `Backend`: [`crate::prove`] runs on it for `ProverBackend::Gpu` (and
//! for `Auto` on a hardware GPU). Circle FFTs (interpolate, evaluate, low-degree extension), the
//! Blake2s Merkle trees, the DEEP quotients (numerators, combination, extension), FRI folds,
//! grinding and the constraint evaluation of every project AIR run on the device; out-of-domain
//! sampling (and anything the device cannot take) runs on Stwo's SIMD backend over the same
//! columns (no conversion: the columns are the SIMD column types). A column the device produced stays
//! resident for the next phase. The proof is byte-identical to the SIMD backend's. See
//! [`GpuBackend`] for the fallback rules and [`GpuBackend::stats`] for per-phase counters.
//!
//! [`GpuContext`] owns a wgpu device (any adapter with compute: Vulkan here; Mesa lavapipe in CI)
//! and the compiled kernels; [`select_backend`] applies the crate's [`crate::ProverBackend`]
//! semantics to a context of your own. Every transfer between host and device is counted
//! ([`GpuContext::transfers`]).
//!
//! Kernels (WGSL in `shaders/*.wgsl`, loaded with `include_str!`, validated with naga by
//! [`validate_shaders`]), each bit-identical to Stwo's code on the same input:
//! - M31 add/sub/mul and QM31 mul: one 64-bit product where the adapter has `SHADER_INT64`,
//!   32-bit limbs otherwise (both validated and tested),
//! - bit reversal ([`stwo::core::utils::bit_reverse`]),
//! - circle FFT: [`GpuContext::evaluate`] / [`GpuContext::interpolate`] run every butterfly layer on
//!   the device with twiddles taken from Stwo's twiddle tree (`CpuBackend::evaluate/interpolate`),
//! - Blake2s Merkle: [`GpuContext::build_leaves`] (lifted leaves, Stwo's `Blake2sMerkleHasher`
//!   format) and [`GpuContext::build_next_layer`] / [`GpuContext::merkle_root`],
//! - DEEP quotients: [`GpuContext::quotient_numerators`] (Stwo's `accumulate_numerators`) and
//!   [`GpuContext::quotient_combine`] (`compute_quotients_and_combine`, CM31 denominators),
//! - FRI folds: [`GpuContext::fri_fold`] (`fold_circle_into_line`, `fold_line`),
//! - proof-of-work grinding: [`GpuContext::grind`] (the smallest nonce, as the SIMD grinder),
//! - constraint evaluation for any constraint-framework AIR (matmul, VM, VM-jump):
//!   `GpuContext::evaluate_constraints` runs a row program compiled from the component's
//!   symbolic constraints into `shaders/constraints.wgsl` (Stwo's bit-reversed mask offsets and
//!   SubDomain denominators; one pipeline per circuit structure, cached),
//! - the commit phase of one tree, [`GpuContext::commit_columns`]: interpolate → low-degree
//!   extension → lifted Merkle root, all on the device.
//!
//! The kernels' coefficients follow `CpuBackend`'s order. `SimdBackend` keeps polynomials with
//! ≥ 2^17 coefficients with their 16-lane vectors transposed; [`GpuBackend`] converts at that
//! boundary, so what it hands to Stwo is always in the SIMD order.
//!
//! wgpu errors (validation, out of memory, a lost device) inside an operation come back as
//! [`GpuError::Operation`], never as a panic or a silently wrong result; errors outside an
//! operation are logged. [`GpuBackend`] redoes a failed operation on the CPU.
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
/// Serialises the tests that use [`GpuBackend`]'s process-wide state (device, counters, size
/// threshold, injected faults) when they share a process (`cargo test`; nextest runs each test in
/// its own process anyway).
#[cfg(test)]
static BACKEND_TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
mod constraints;
mod context;
mod kernels;
#[cfg(test)]
mod tests;

pub use backend::{DEFAULT_MIN_LOG_SIZE, GpuBackend, GpuBackendStats, GpuPhase, GpuTwiddleBuffer, PhaseStats};
pub use context::{
    AdapterSummary, BackendSelection, GpuColumn, GpuContext, GpuError, GpuOptions, TransferStats, auto_accepts,
    select_backend,
};
pub use kernels::GpuTwiddles;

/// Shared field library prepended to every kernel file, with one of the two M31 multipliers.
const FIELD_WGSL: &str = include_str!("shaders/field.wgsl");
const M31_MUL_U32_WGSL: &str = include_str!("shaders/m31_mul_u32.wgsl");
const M31_MUL_U64_WGSL: &str = include_str!("shaders/m31_mul_u64.wgsl");
const ARITH_WGSL: &str = include_str!("shaders/arith.wgsl");
const BIT_REVERSE_WGSL: &str = include_str!("shaders/bit_reverse.wgsl");
const FFT_WGSL: &str = include_str!("shaders/fft.wgsl");
const BLAKE2S_CORE_WGSL: &str = include_str!("shaders/blake2s_core.wgsl");
const BLAKE2S_WGSL: &str = include_str!("shaders/blake2s.wgsl");
const GRIND_WGSL: &str = include_str!("shaders/grind.wgsl");
const FRI_WGSL: &str = include_str!("shaders/fri.wgsl");
const QUOTIENTS_WGSL: &str = include_str!("shaders/quotients.wgsl");
const QUOTIENT_COMBINE_WGSL: &str = include_str!("shaders/quotient_combine.wgsl");
const CONSTRAINTS_WGSL: &str = include_str!("shaders/constraints.wgsl");

/// The WGSL source of each shader module as the device receives it (field library + kernels),
/// with M31 products on 32-bit limbs (any adapter).
pub fn shader_sources() -> Vec<(&'static str, String)> {
    shader_sources_for(false)
}

/// [`shader_sources`], with M31 products as one 64-bit multiplication when `int64` (adapters
/// with `wgpu::Features::SHADER_INT64`).
pub fn shader_sources_for(int64: bool) -> Vec<(&'static str, String)> {
    let mul = if int64 { M31_MUL_U64_WGSL } else { M31_MUL_U32_WGSL };
    let blake2s = format!("{BLAKE2S_CORE_WGSL}\n{BLAKE2S_WGSL}");
    let grind = format!("{BLAKE2S_CORE_WGSL}\n{GRIND_WGSL}");
    [
        ("arith", ARITH_WGSL.to_owned()),
        ("bit_reverse", BIT_REVERSE_WGSL.to_owned()),
        ("fft", FFT_WGSL.to_owned()),
        ("blake2s", blake2s),
        ("quotients", QUOTIENTS_WGSL.to_owned()),
        ("grind", grind),
        ("fri", FRI_WGSL.to_owned()),
        ("quotient_combine", QUOTIENT_COMBINE_WGSL.to_owned()),
        ("constraints", CONSTRAINTS_WGSL.to_owned()),
    ]
    .into_iter()
    .map(|(name, src)| (name, format!("{FIELD_WGSL}\n{mul}\n{src}")))
    .collect()
}

/// Parses and validates every shader module, in both M31 multiplier variants, with naga (no GPU
/// needed).
pub fn validate_shaders() -> Result<(), GpuError> {
    for int64 in [false, true] {
        for (name, src) in shader_sources_for(int64) {
            validate_source(name, &src, int64)?;
        }
    }
    Ok(())
}

/// Parses and validates one complete WGSL module with naga.
fn validate_source(name: &'static str, src: &str, int64: bool) -> Result<(), GpuError> {
    let capabilities = if int64 { naga::valid::Capabilities::SHADER_INT64 } else { naga::valid::Capabilities::empty() };
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| GpuError::Shader { module: name, message: e.emit_to_string(src) })?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .map_err(|e| GpuError::Shader { module: name, message: e.emit_to_string(src) })?;
    Ok(())
}

/// The constraint kernel with `body` as its row program (see [`constraints`]), as the device
/// receives it.
fn constraint_kernel_source(body: &str, int64: bool) -> String {
    let mul = if int64 { M31_MUL_U64_WGSL } else { M31_MUL_U32_WGSL };
    format!("{FIELD_WGSL}\n{mul}\n{}", constraints::kernel_source(CONSTRAINTS_WGSL, body))
}
