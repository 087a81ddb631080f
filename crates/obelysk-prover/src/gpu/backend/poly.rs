//! `PolyOps`: circle FFTs (interpolate, evaluate, low-degree extension) on the device; the rest
//! on the SIMD backend.

use std::sync::Arc;

use stwo::core::circle::{CirclePoint, Coset};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::prover::Poly;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::{Col, Column};
use stwo::prover::mempool::BaseColumnPool;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps};
use stwo::prover::poly::twiddles::TwiddleTree;

use super::convert::{
    coeffs_from_simd, coeffs_to_simd, download_column, eval_from_simd, eval_to_simd, simd_order_is_transposed,
    transpose_vecs,
};
use super::runtime::{on_cpu, on_device, runtime};
use super::twiddles::{GpuTwiddleBuffer, simd_forward, simd_inverse};
use super::{GpuBackend, GpuPhase};
use crate::gpu::GpuColumn;

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
        #[cfg(test)]
        if super::runtime::take_injected_corruption() {
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
) -> Option<GpuColumn> {
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
