//! Blake2s Merkle trees (`MerkleOpsLifted`): the leaves and every layer above them built on the
//! device at once, the layers handed out as Stwo asks for them.

use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SECURE_EXTENSION_DEGREE;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher;
use stwo::core::vcs_lifted::verifier::PACKED_LEAF_SIZE;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::{Col, Column};
use stwo::prover::vcs_lifted::ops::{MerkleOpsLifted, PackLeavesOps};

use super::runtime::{lock, on_cpu, on_device, runtime};
use super::{GpuBackend, GpuPhase};

/// The layers of one Merkle tree the device built at once. Stwo asks for them one at a time
/// (`build_next_layer(previous layer)`): each layer is recognised by the address and length of
/// the vector handed out for the layer below it (it is moved, not copied, so the address holds)
/// and by its first and last hashes, and is handed out by moving it too.
pub(super) struct TreeLayers {
    /// (address, length, first hash, last hash) of each layer, leaves first.
    keys: Vec<(usize, usize, Blake2sHash, Blake2sHash)>,
    /// The layers not handed out yet (`None` once handed out).
    layers: Vec<Option<Vec<Blake2sHash>>>,
}

fn layer_key(layer: &[Blake2sHash]) -> (usize, usize, Blake2sHash, Blake2sHash) {
    (
        layer.as_ptr() as usize,
        layer.len(),
        layer.first().copied().unwrap_or_default(),
        layer.last().copied().unwrap_or_default(),
    )
}

impl MerkleOpsLifted<Blake2sMerkleHasher> for GpuBackend {
    fn build_leaves(columns: &[&Col<Self, BaseField>], lifting_log_size: u32) -> Col<Self, Blake2sHash> {
        let shortest = columns.first().map_or(0, |c| c.len());
        let gpu = if shortest < 2 {
            None
        } else {
            on_device(GpuPhase::Merkle, lifting_log_size, |rt| {
                // Extended evaluations stay resident: the DEEP quotients read them next.
                let device = columns
                    .iter()
                    .map(|c| rt.device_or_upload(c.as_slice(), c.len()))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut layers: Vec<Option<Vec<Blake2sHash>>> = rt
                    .ctx
                    .merkle_layers_resident(&device.iter().map(|c| &**c).collect::<Vec<_>>(), lifting_log_size)?
                    .into_iter()
                    .map(Some)
                    .collect();
                let keys = layers.iter().flatten().map(|l| layer_key(l)).collect();
                let leaves = layers[0].take().unwrap_or_default();
                let mut cache = lock(&rt.layers);
                // Keep at most a couple of trees: the prover asks for the layers right away.
                if cache.len() >= 2 {
                    cache.remove(0);
                }
                cache.push(TreeLayers { keys, layers });
                Ok(leaves)
            })
        };
        gpu.unwrap_or_else(|| {
            on_cpu(GpuPhase::Merkle, || {
                <SimdBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_leaves(columns, lifting_log_size)
            })
        })
    }

    fn build_next_layer(prev_layer: &Col<Self, Blake2sHash>) -> Col<Self, Blake2sHash> {
        if let Some(rt) = runtime() {
            let mut cache = lock(&rt.layers);
            // The layer above `prev_layer` if the device already built it.
            let key = layer_key(prev_layer);
            // Newest tree first.
            for t in (0..cache.len()).rev() {
                if let Some(i) = cache[t].keys.iter().position(|k| *k == key)
                    && let Some(next) = cache[t].layers.get_mut(i + 1).and_then(Option::take)
                {
                    if i + 2 == cache[t].layers.len() {
                        cache.remove(t);
                    }
                    return next;
                }
            }
        }
        on_cpu(GpuPhase::Merkle, || <SimdBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer(prev_layer))
    }
}

impl PackLeavesOps for GpuBackend {
    fn pack_leaves_input(
        values: &[&Col<Self, BaseField>; SECURE_EXTENSION_DEGREE],
    ) -> [Col<Self, BaseField>; SECURE_EXTENSION_DEGREE * PACKED_LEAF_SIZE] {
        SimdBackend::pack_leaves_input(values)
    }
}
