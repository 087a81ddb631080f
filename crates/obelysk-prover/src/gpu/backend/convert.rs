//! Moving between the two backends' wrapper types (the columns are the same types: no copy), and
//! between the device's coefficient order and the SIMD backend's.

use stwo::core::fields::m31::BaseField;
use stwo::prover::Poly;
use stwo::prover::backend::Column;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::line::LineEvaluation;
use stwo::prover::pcs::quotient_ops::AccumulatedNumerators;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation};
use stwo::prover::secure_column::SecureColumnByCoords;

use super::GpuBackend;
use super::runtime::Runtime;
use crate::gpu::GpuColumn;
use crate::gpu::context::GpuError;

/// The SIMD backend's FFT layout switches to transposed vectors above this many coefficients.
const SIMD_CACHED_FFT_LOG_SIZE: u32 = 16;
/// Lanes of one SIMD vector (the transposition granularity).
pub(super) const LOG_LANES: u32 = 4;

pub(super) fn eval_to_simd(
    e: CircleEvaluation<GpuBackend, BaseField, BitReversedOrder>,
) -> CircleEvaluation<SimdBackend, BaseField, BitReversedOrder> {
    CircleEvaluation::new(e.domain, e.values)
}

pub(super) fn eval_from_simd(
    e: CircleEvaluation<SimdBackend, BaseField, BitReversedOrder>,
) -> CircleEvaluation<GpuBackend, BaseField, BitReversedOrder> {
    CircleEvaluation::new(e.domain, e.values)
}

pub(super) fn coeffs_from_simd(p: CircleCoefficients<SimdBackend>) -> CircleCoefficients<GpuBackend> {
    CircleCoefficients::new(p.coeffs)
}

pub(super) fn coeffs_to_simd(p: CircleCoefficients<GpuBackend>) -> CircleCoefficients<SimdBackend> {
    CircleCoefficients::new(p.coeffs)
}

pub(super) fn secure_to_simd(c: SecureColumnByCoords<GpuBackend>) -> SecureColumnByCoords<SimdBackend> {
    SecureColumnByCoords { columns: c.columns }
}

pub(super) fn secure_from_simd(c: SecureColumnByCoords<SimdBackend>) -> SecureColumnByCoords<GpuBackend> {
    SecureColumnByCoords { columns: c.columns }
}

/// Borrows a GPU secure column as a SIMD one for the duration of `f`, without copying.
pub(super) fn with_simd_secure<R>(
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

pub(super) fn line_to_simd(e: LineEvaluation<GpuBackend>) -> LineEvaluation<SimdBackend> {
    let domain = e.domain();
    LineEvaluation::new(domain, secure_to_simd(e.values))
}

pub(super) fn line_from_simd(e: LineEvaluation<SimdBackend>) -> LineEvaluation<GpuBackend> {
    let domain = e.domain();
    LineEvaluation::new(domain, secure_from_simd(e.values))
}

/// Reads a device column straight into a SIMD column (one copy from the mapped buffer).
pub(super) fn download_column(rt: &Runtime, column: &GpuColumn) -> Result<BaseColumn, GpuError> {
    let mut host = BaseColumn::zeros(column.len());
    rt.ctx.download_into(column, bytemuck::cast_slice_mut(host.as_mut_slice()))?;
    Ok(host)
}

/// The SIMD FFT keeps polynomials above 2^16 coefficients with their 16-lane vectors transposed
/// (vector index `a‖b‖c` ↔ `c‖b‖a`, `|a| = |c|`); this permutation is its own inverse.
pub(super) fn transpose_vecs(words: &mut [u32]) {
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

pub(super) fn simd_order_is_transposed(log_size: u32) -> bool {
    log_size > SIMD_CACHED_FFT_LOG_SIZE
}

pub(super) fn numerators_to_simd(a: AccumulatedNumerators<GpuBackend>) -> AccumulatedNumerators<SimdBackend> {
    AccumulatedNumerators {
        sample_point: a.sample_point,
        partial_numerators_acc: secure_to_simd(a.partial_numerators_acc),
        first_linear_term_acc: a.first_linear_term_acc,
    }
}

pub(super) fn numerators_from_simd(a: AccumulatedNumerators<SimdBackend>) -> AccumulatedNumerators<GpuBackend> {
    AccumulatedNumerators {
        sample_point: a.sample_point,
        partial_numerators_acc: secure_from_simd(a.partial_numerators_acc),
        first_linear_term_acc: a.first_linear_term_acc,
    }
}

pub(super) fn poly_to_simd(p: &Poly<GpuBackend>) -> Poly<SimdBackend> {
    Poly::new(
        p.coeffs.as_ref().map(|c| CircleCoefficients::new(c.coeffs.clone())),
        CircleEvaluation::new(p.evals.domain, p.evals.values.clone()),
    )
}
