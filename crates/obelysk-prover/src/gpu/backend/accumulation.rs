//! `AccumulationOps` on the SIMD backend, dropping device copies that accumulation makes stale.

use stwo::core::fields::qm31::SecureField;
use stwo::prover::AccumulationOps;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::secure_column::SecureColumnByCoords;

use super::GpuBackend;
use super::convert::{secure_from_simd, secure_to_simd, with_simd_secure};
use super::runtime::started_runtime;

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
            && let Some(rt) = started_runtime()
        {
            for column in cols.iter().flat_map(|c| &c.columns) {
                rt.take(column.as_slice());
            }
        }
        SimdBackend::lift_and_accumulate(cols.into_iter().map(secure_to_simd).collect()).map(secure_from_simd)
    }
}
