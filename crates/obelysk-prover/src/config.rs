//! Proof configuration (security parameters), prover options and the verifier's policy.

use serde::{Deserialize, Serialize};
use stwo::core::fri::FriConfig;
use stwo::core::pcs::PcsConfig;

use crate::error::ConfigError;

/// FRI / PCS parameters of a proof, recorded in the envelope.
///
/// Security (conjectured, as Stwo counts it): `pow_bits + log_blowup_factor × n_queries` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProofConfig {
    /// Proof-of-work (grinding) bits before the FRI queries.
    pub pow_bits: u32,
    /// log2 of the Reed–Solomon blowup factor.
    pub log_blowup_factor: u32,
    /// Number of FRI queries.
    pub n_queries: u32,
    /// log2 of the degree bound of the last FRI layer.
    pub log_last_layer_degree_bound: u32,
    /// FRI layers folded per round (larger = fewer Merkle layers in the proof).
    pub fold_step: u32,
}

impl ProofConfig {
    /// The production default: blowup 4, 38 queries, 20 grinding bits, FRI fold step 3 — 96 bits.
    ///
    /// Measured at n = 1024 on 2 cores: about 3× faster to prove than blowup 8 / 26 queries for a
    /// proof about 25 % larger (≈ 150 KB, under the 256 KiB limit).
    pub const PRODUCTION: ProofConfig =
        ProofConfig { pow_bits: 20, log_blowup_factor: 2, n_queries: 38, log_last_layer_degree_bound: 2, fold_step: 3 };

    /// Minimum security the default [`VerifyPolicy`] accepts.
    /// The production config of the opening matmul protocol: blowup 4, 42 queries, 12 grinding
    /// bits, FRI fold step 3 — 96 bits. That protocol's proving time is mostly grinding (20 bits
    /// cost about 120 ms at n = 1024 on 2 cores, as much as the multiply itself); 8 grinding bits
    /// fewer for 4 queries more makes the proof about 2 KB larger and proving about 35 % faster.
    /// [`ProveConfig::proof_for`] picks it when the production config is asked for.
    pub const PRODUCTION_OPENING: ProofConfig =
        ProofConfig { pow_bits: 12, log_blowup_factor: 2, n_queries: 42, log_last_layer_degree_bound: 2, fold_step: 3 };

    /// Least security a production verifier accepts.
    pub const MIN_PRODUCTION_SECURITY_BITS: u32 = 96;

    /// A config with about 8 bits of security, **only** for fast unit tests. The default
    /// [`VerifyPolicy`] rejects proofs made with it.
    pub const fn insecure_for_tests() -> ProofConfig {
        ProofConfig { pow_bits: 2, log_blowup_factor: 1, n_queries: 6, log_last_layer_degree_bound: 0, fold_step: 1 }
    }

    /// Conjectured security bits: `pow_bits + log_blowup_factor × n_queries`.
    pub const fn security_bits(&self) -> u32 {
        self.pow_bits.saturating_add(self.log_blowup_factor.saturating_mul(self.n_queries))
    }

    /// Checks the ranges this crate supports and converts to Stwo's config.
    pub fn to_pcs(&self) -> Result<PcsConfig, ConfigError> {
        fn check(name: &'static str, value: u32, min: u32, max: u32) -> Result<(), ConfigError> {
            if (min..=max).contains(&value) { Ok(()) } else { Err(ConfigError::OutOfRange { name, value, min, max }) }
        }
        check("pow_bits", self.pow_bits, 0, 32)?;
        check("log_blowup_factor", self.log_blowup_factor, 1, 5)?;
        check("n_queries", self.n_queries, 1, 256)?;
        check("log_last_layer_degree_bound", self.log_last_layer_degree_bound, 0, 10)?;
        check("fold_step", self.fold_step, 1, 4)?;
        Ok(PcsConfig {
            pow_bits: self.pow_bits,
            fri_config: FriConfig::new(
                self.log_last_layer_degree_bound,
                self.log_blowup_factor,
                self.n_queries as usize,
                self.fold_step,
            ),
            lifting_log_size: None,
        })
    }

    /// The inverse of [`ProofConfig::to_pcs`] (used to compare with the config inside a proof).
    pub(crate) fn matches_pcs(&self, pcs: &PcsConfig) -> bool {
        pcs.pow_bits == self.pow_bits
            && pcs.fri_config.log_blowup_factor == self.log_blowup_factor
            && pcs.fri_config.n_queries == self.n_queries as usize
            && pcs.fri_config.log_last_layer_degree_bound == self.log_last_layer_degree_bound
            && pcs.fri_config.fold_step == self.fold_step
            && pcs.lifting_log_size.is_none()
    }
}

impl Default for ProofConfig {
    fn default() -> Self {
        Self::PRODUCTION
    }
}

/// Where the proving work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProverBackend {
    /// A hardware GPU if one is usable, otherwise the CPU (the choice is logged once).
    #[default]
    Auto,
    /// Stwo's SIMD CPU backend (AVX-512/AVX2/NEON where compiled in, all cores via rayon).
    Cpu,
    /// The wgpu backend ([`crate::gpu::GpuBackend`], feature `gpu`); an error when the build lacks
    /// the feature or no adapter exists.
    Gpu,
}

/// How a matmul job is proven. Both protocols are sound at the config's security; a verifier
/// accepts either (the statement's sizes say which: `[n]` for `Air`, `[n, columns]` for
/// `Opening`) and pins each one's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MatmulProtocol {
    /// Freivalds by opening a commitment to `C`'s coefficients at a random point, no AIR
    /// ([`crate::matmul::opening`]): the default, several times faster to prove.
    #[default]
    Opening,
    /// The Horner AIR over the committed output column ([`crate::matmul`]).
    Air,
}

impl MatmulProtocol {
    /// The protocol a matmul statement's sizes name: `[n]` is the AIR, `[n, columns]` the opening.
    pub fn of_sizes(sizes: &[u32]) -> Option<Self> {
        match sizes.len() {
            1 => Some(Self::Air),
            2 => Some(Self::Opening),
            _ => None,
        }
    }
}

/// Prover options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProveConfig {
    /// Security parameters of the proof.
    pub proof: ProofConfig,
    /// Backend choice.
    pub backend: ProverBackend,
    /// Matmul protocol.
    pub matmul: MatmulProtocol,
}

impl ProveConfig {
    /// Production parameters on the automatically chosen backend.
    pub fn production() -> Self {
        Self::default()
    }

    /// The config a job is proven with: [`ProveConfig::proof`], except that the production
    /// config proves matmul with the opening protocol under [`ProofConfig::PRODUCTION_OPENING`]
    /// (the same 96 bits, balanced for that protocol). The envelope records the config used.
    pub fn proof_for(&self, job_type: crate::JobType) -> ProofConfig {
        match (job_type, self.matmul) {
            (crate::JobType::Matmul, MatmulProtocol::Opening) if self.proof == ProofConfig::PRODUCTION => {
                ProofConfig::PRODUCTION_OPENING
            }
            _ => self.proof,
        }
    }

    /// The insecure test parameters ([`ProofConfig::insecure_for_tests`]) on the CPU.
    pub fn insecure_for_tests() -> Self {
        Self { proof: ProofConfig::insecure_for_tests(), backend: ProverBackend::Cpu, matmul: MatmulProtocol::Opening }
    }
}

/// What the verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Envelopes whose config gives fewer bits are rejected.
    pub min_security_bits: u32,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self { min_security_bits: ProofConfig::MIN_PRODUCTION_SECURITY_BITS }
    }
}

impl VerifyPolicy {
    /// Accepts any security level. **Only** for tests with [`ProofConfig::insecure_for_tests`].
    pub const fn insecure_for_tests() -> Self {
        Self { min_security_bits: 0 }
    }
}
