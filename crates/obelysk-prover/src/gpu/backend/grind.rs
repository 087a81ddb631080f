//! Proof-of-work grinding (`GrindOps`) on the device: the smallest nonce, as the SIMD grinder.

use stwo::core::channel::Blake2sChannel;
use stwo::core::proof_of_work::GrindOps;
use stwo::prover::backend::simd::SimdBackend;

use super::runtime::{on_cpu, on_device};
use super::{GpuBackend, GpuPhase};
use crate::gpu::context::GpuError;

impl GrindOps<Blake2sChannel> for GpuBackend {
    fn grind(channel: &Blake2sChannel, pow_bits: u32) -> u64 {
        let gpu = (pow_bits <= 32)
            .then(|| {
                on_device(GpuPhase::Grind, GRIND_LOW_BITS, |rt| {
                    rt.ctx
                        .grind(pow_prefixed_digest(channel, pow_bits), pow_bits, GRIND_LOW_BITS, GRIND_MAX_HI)?
                        .ok_or_else(|| GpuError::Unsupported(format!("no {pow_bits}-bit nonce with hi < p")))
                })
            })
            .flatten();
        gpu.unwrap_or_else(|| on_cpu(GpuPhase::Grind, || SimdBackend::grind(channel, pow_bits)))
    }
}

/// Nonces per `hi` value, as Stwo's SIMD grinder enumerates them (`low < 2^20`).
const GRIND_LOW_BITS: u32 = 20;
/// `hi` values the device may try: all of them (`hi < p`), as the SIMD grinder; a 32-bit search
/// needs about 2^12 dispatches.
const GRIND_MAX_HI: u32 = stwo::core::fields::m31::P;

/// `H(POW_PREFIX, [0; 12], channel digest, pow_bits)`, the fixed part of every grinding hash, as
/// eight little-endian words.
fn pow_prefixed_digest(channel: &Blake2sChannel, pow_bits: u32) -> [u32; 8] {
    let mut hasher = stwo::core::vcs::blake2_hash::Blake2sHasherGeneric::<false>::default();
    hasher.update(&Blake2sChannel::POW_PREFIX.to_le_bytes());
    hasher.update(&[0u8; 12]);
    hasher.update(&channel.digest().0);
    hasher.update(&pow_bits.to_le_bytes());
    let bytes = hasher.finalize().0;
    std::array::from_fn(|i| u32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]))
}
