//! DEEP quotients (`QuotientOps`) on the device: the numerators from the committed evaluations
//! where they already are, then the combination and its extension to the evaluation domain.

use std::collections::HashMap;
use std::sync::Arc;

use num_traits::Zero;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::quotients::ColumnSampleBatch;
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::prover::QuotientOps;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::pcs::quotient_ops::AccumulatedNumerators;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleEvaluation, SecureEvaluation};
use stwo::prover::poly::twiddles::TwiddleTree;
use stwo::prover::secure_column::SecureColumnByCoords;

use super::convert::{LOG_LANES, download_column, numerators_from_simd, numerators_to_simd, secure_from_simd};
use super::runtime::{Runtime, cached, on_cpu, on_device};
use super::twiddles::simd_forward;
use super::{GpuBackend, GpuPhase};
use crate::gpu::GpuColumn;
use crate::gpu::context::GpuError;

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
    let mut device: HashMap<usize, Arc<GpuColumn>> = HashMap::new();
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

impl Runtime {
    /// The points of `domain` in bit-reversed order on the device: x coordinates, then y.
    fn subdomain_points(&self, domain: CircleDomain) -> Result<Arc<GpuColumn>, GpuError> {
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
}
