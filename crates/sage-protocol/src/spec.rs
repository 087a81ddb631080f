//! What a job computes: [`JobSpec`], its size rules and its on-chain hash.

use serde::{Deserialize, Serialize};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

/// Smallest matmul dimension (the prover's rule).
pub const MATMUL_MIN_N: u32 = 2;
/// Largest matmul dimension (the prover's rule).
pub const MATMUL_MAX_N: u32 = 1024;
/// `'SAGE_SPEC_V1'`: domain of [`JobSpec::spec_hash`].
const SPEC_TAG: Felt = Felt::from_hex_unchecked("0x534147455f535045435f5631");
/// `'matmul'`.
const MATMUL_TAG: Felt = Felt::from_hex_unchecked("0x6d61746d756c");

/// What a job computes, with its inputs. The JSON form (`{"type": "matmul", "n": 64, "seed":
/// "0x7"}`) travels in REST bodies and in signed assignments alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum JobSpec {
    /// `C = A·B` over M31 for n×n matrices derived from `seed` (n a power of two in
    /// [`MATMUL_MIN_N`]`..=`[`MATMUL_MAX_N`]).
    Matmul {
        /// Matrix size.
        n: u32,
        /// Seed the matrices are derived from.
        seed: Felt,
    },
}

/// Why a spec cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Matrix size outside the prover's range or not a power of two.
    #[error("matmul size {n} is not a power of two in {min}..={max}")]
    MatmulSize {
        /// Asked size.
        n: u32,
        /// Smallest.
        min: u32,
        /// Largest.
        max: u32,
    },
}

impl JobSpec {
    /// The type's name as on the wire (`"matmul"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Matmul { .. } => "matmul",
        }
    }

    /// The size parameter quotes and throughput are measured by (`n` for matmul).
    pub fn size(&self) -> u32 {
        match self {
            Self::Matmul { n, .. } => *n,
        }
    }

    /// Checks the size rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Self::Matmul { n, .. } => {
                if !(MATMUL_MIN_N..=MATMUL_MAX_N).contains(n) || !n.is_power_of_two() {
                    return Err(SpecError::MatmulSize { n: *n, min: MATMUL_MIN_N, max: MATMUL_MAX_N });
                }
            }
        }
        Ok(())
    }

    /// The felt a client escrows as `spec_hash` in `JobManager.create_job`:
    /// `poseidon('SAGE_SPEC_V1', type tag, parameters…)`. The coordinator queues a job only when
    /// the escrow's hash equals the hash of the spec it was given.
    pub fn spec_hash(&self) -> Felt {
        match self {
            Self::Matmul { n, seed } => poseidon_hash_many(&[SPEC_TAG, MATMUL_TAG, Felt::from(*n), *seed]),
        }
    }

    /// Relative amount of work (multiply-adds for matmul), what prices scale with.
    pub fn work_units(&self) -> u128 {
        match self {
            Self::Matmul { n, .. } => u128::from(*n).pow(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rules() {
        for n in [2, 64, 1024] {
            JobSpec::Matmul { n, seed: Felt::ONE }.validate().unwrap();
        }
        for n in [0, 1, 3, 100, 2048] {
            assert_eq!(
                JobSpec::Matmul { n, seed: Felt::ONE }.validate(),
                Err(SpecError::MatmulSize { n, min: 2, max: 1024 })
            );
        }
    }

    #[test]
    fn wire_form_is_stable_and_strict() {
        let spec = JobSpec::Matmul { n: 64, seed: Felt::from(7u8) };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(text, r#"{"type":"matmul","n":64,"seed":"0x7"}"#);
        assert_eq!(serde_json::from_str::<JobSpec>(&text).unwrap(), spec);
        for bad in [
            r#"{"type":"matmul","n":64}"#,
            r#"{"type":"sort","n":64,"seed":"0x1"}"#,
            r#"{"type":"matmul","n":64,"seed":"0x1","extra":1}"#,
            r#"{"type":"matmul","n":-1,"seed":"0x1"}"#,
        ] {
            assert!(serde_json::from_str::<JobSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_hash_binds_every_parameter() {
        let base = JobSpec::Matmul { n: 64, seed: Felt::from(7u8) };
        assert_eq!(base.spec_hash(), base.clone().spec_hash());
        assert_ne!(base.spec_hash(), JobSpec::Matmul { n: 128, seed: Felt::from(7u8) }.spec_hash());
        assert_ne!(base.spec_hash(), JobSpec::Matmul { n: 64, seed: Felt::from(8u8) }.spec_hash());
        assert_eq!(SPEC_TAG, Felt::from_bytes_be_slice(b"SAGE_SPEC_V1"));
        assert_eq!(MATMUL_TAG, Felt::from_bytes_be_slice(b"matmul"));
    }
}
