//! Twiddles: [`GpuTwiddleBuffer`] (the SIMD tree plus an identity for the device-side cache) and
//! the device copies made from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stwo::core::fields::m31::{BaseField, M31};
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::twiddles::{TwiddleBuffer, TwiddleTree};

use super::GpuBackend;
use super::runtime::{Runtime, cached};
use crate::gpu::context::GpuError;
use crate::gpu::kernels::GpuTwiddles;

static NEXT_TWIDDLE_ID: AtomicU64 = AtomicU64::new(1);

/// One direction of a [`GpuBackend`] twiddle tree: the SIMD tree it came from (shared by both
/// directions, so SIMD code can use it without a copy) and a unique id keying the device copy.
#[derive(Clone)]
pub struct GpuTwiddleBuffer {
    simd: Arc<TwiddleTree<SimdBackend>>,
    id: u64,
}

impl std::fmt::Debug for GpuTwiddleBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTwiddleBuffer")
            .field("id", &self.id)
            .field("root_coset_log_size", &self.simd.root_coset.log_size)
            .field("len", &self.simd.twiddles.len())
            .finish()
    }
}

impl GpuTwiddleBuffer {
    pub(super) fn new(simd: Arc<TwiddleTree<SimdBackend>>) -> Self {
        Self { simd, id: NEXT_TWIDDLE_ID.fetch_add(1, Ordering::Relaxed) }
    }
}

impl TwiddleBuffer<BitReversedOrder> for GpuTwiddleBuffer {
    fn empty() -> Self {
        Self::new(Arc::new(TwiddleTree {
            root_coset: CanonicCoset::new(1).half_coset(),
            twiddles: Vec::new(),
            itwiddles: Vec::new(),
        }))
    }

    fn extract_subdomain_twiddles(&self, domain_log_size: u32, subdomain_log_size: u32) -> Self {
        let t = &self.simd;
        let extract = |v: &Vec<u32>| {
            if v.is_empty() { Vec::new() } else { v.extract_subdomain_twiddles(domain_log_size, subdomain_log_size) }
        };
        Self::new(Arc::new(TwiddleTree {
            root_coset: t.root_coset,
            twiddles: extract(&t.twiddles),
            itwiddles: extract(&t.itwiddles),
        }))
    }
}

/// The SIMD tree behind `tree` for an operation that reads forward twiddles.
pub(super) fn simd_forward(tree: &TwiddleTree<GpuBackend>) -> &TwiddleTree<SimdBackend> {
    &tree.twiddles.simd
}

/// The SIMD tree behind `tree` for an operation that reads inverse twiddles.
pub(super) fn simd_inverse(tree: &TwiddleTree<GpuBackend>) -> &TwiddleTree<SimdBackend> {
    &tree.itwiddles.simd
}

/// A SIMD twiddle tree direction as the device kernels take it: SIMD trees hold doubled twiddles
/// (2·x, below 2^32).
fn halved(doubled: &[u32]) -> Vec<BaseField> {
    doubled.iter().map(|&d| M31::from_u32_unchecked(d >> 1)).collect()
}

impl Runtime {
    /// Inverse twiddles of `subdomain` (a prefix of `domain` in bit-reversed order), extracted
    /// from a GPU twiddle tree direction exactly as Stwo's quotient code extracts them.
    pub(super) fn subdomain_itwiddles(
        &self,
        buffer: &GpuTwiddleBuffer,
        domain: CircleDomain,
        subdomain: CircleDomain,
    ) -> Result<Arc<GpuTwiddles>, GpuError> {
        let key = (buffer.id, domain.log_size(), subdomain.log_size());
        cached(&self.subdomain_twiddles, key, 16, || {
            let doubled = buffer.simd.itwiddles.extract_subdomain_twiddles(domain.log_size(), subdomain.log_size());
            self.ctx.fft_twiddles_from_tree(subdomain, &halved(&doubled), true)
        })
    }

    /// Device twiddles for `domain` from one direction of a GPU twiddle tree (uploaded once).
    pub(super) fn device_twiddles(
        &self,
        buffer: &GpuTwiddleBuffer,
        domain: CircleDomain,
        inverse: bool,
    ) -> Result<Arc<GpuTwiddles>, GpuError> {
        cached(&self.twiddles, (buffer.id, domain.log_size(), inverse), 32, || {
            let doubled = if inverse { &buffer.simd.itwiddles } else { &buffer.simd.twiddles };
            self.ctx.fft_twiddles_from_tree(domain, &halved(doubled), inverse)
        })
    }
}
