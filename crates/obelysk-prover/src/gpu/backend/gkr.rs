//! GKR lookups (`MleOps`, `GkrOps`; unused by this crate's AIRs) run on Stwo's CPU backend.

use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::prover::backend::{Column, CpuBackend};
use stwo::prover::lookups::gkr_prover::{GkrMultivariatePolyOracle, GkrOps, Layer};
use stwo::prover::lookups::mle::{Mle, MleOps};
use stwo::prover::lookups::utils::UnivariatePoly;

use super::GpuBackend;

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
