//! Constraint evaluation (`ComponentProver` for [`GpuBackend`]): the component's constraints
//! compiled into a device row program; what the compiler refuses runs on the framework's SIMD
//! evaluator, folded into the GPU accumulator.

use num_traits::{One, Zero};
use stwo::core::fields::FieldExpOps;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::TreeVec;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo::prover::secure_column::SecureColumnByCoords;
use stwo::prover::{ComponentProver, DomainEvaluationAccumulator, Poly, Trace};
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval};

use super::convert::poly_to_simd;
use super::runtime::{Runtime, cached, on_cpu, on_device};
use super::{GpuBackend, GpuPhase};
use crate::gpu::context::GpuError;
use crate::gpu::{GpuColumn, constraints};

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
    let program = constraints::compile(eval, powers)?;
    let hosts = constraints::slot_columns(
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
    consts.extend(constraints::denominator_inverses(trace_log, eval_log, log_expansion).iter().map(|v| v.0));
    let columns: Vec<&GpuColumn> = device.iter().map(|c| &**c).collect();
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
