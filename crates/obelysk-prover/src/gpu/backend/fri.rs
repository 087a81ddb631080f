//! FRI (`FriOps`): line and circle folds on the device; the decomposition on the SIMD backend.

use std::sync::Arc;

use num_traits::Zero;
use stwo::core::circle::Coset;
use stwo::core::fields::FieldExpOps;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::line::LineDomain;
use stwo::core::utils::bit_reverse_index;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::fri::FriOps;
use stwo::prover::line::LineEvaluation;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::SecureEvaluation;
use stwo::prover::poly::twiddles::TwiddleTree;
use stwo::prover::secure_column::SecureColumnByCoords;

use super::convert::{line_from_simd, line_to_simd, secure_from_simd, secure_to_simd};
use super::runtime::{Runtime, cached, on_cpu, on_device};
use super::twiddles::simd_inverse;
use super::{GpuBackend, GpuPhase};
use crate::gpu::GpuColumn;
use crate::gpu::context::GpuError;

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

impl Runtime {
    /// The inverse fold twiddles of a domain (a pure function of the domain: cached), computed on
    /// the host from `points` (one per output pair) with one batch inversion.
    fn fri_twiddles(
        &self,
        circle: bool,
        coset: Coset,
        points: impl FnOnce() -> Vec<BaseField>,
    ) -> Result<Arc<GpuColumn>, GpuError> {
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
}
