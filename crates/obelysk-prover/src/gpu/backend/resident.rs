//! Device copies of host columns the backend produced, kept for the next device phase
//! ([`Resident`]), and [`GpuBackend::clear_resident`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use stwo::core::fields::m31::BaseField;

use super::GpuBackend;
use super::runtime::{Runtime, lock, runtime};
use crate::gpu::GpuColumn;
use crate::gpu::context::GpuError;

/// Fingerprint positions per resident column.
const SAMPLES: usize = 64;
/// Most resident columns kept, and most words in all of them (1 GiB).
const RESIDENT_MAX_COLUMNS: usize = 256;
const RESIDENT_MAX_WORDS: usize = 1 << 28;

/// The device copy of a host column the backend produced (interpolated coefficients, extended
/// evaluations), so that the next phase (evaluate, Merkle) does not upload it again: the column
/// stays on the device between phases. Matched by the host buffer's address and length and a
/// fingerprint of 64 sampled values (one entry per address: a newer column replaces it); taken
/// (removed) when no longer needed, dropped at the end of each proof and when the cache is full.
/// A stale match (the host buffer reused for data that agrees at every sampled position) would feed
/// old data to a kernel: the proof would then fail the verification `prove()` runs on every
/// GPU-made proof, and be redone on the CPU with the prepared circuit rebuilt.
pub(super) struct Resident {
    ptr: usize,
    len: usize,
    sample: [u32; SAMPLES],
    /// The device words (coefficients in CPU order, whatever the host copy's order).
    column: Arc<GpuColumn>,
}

fn fingerprint(values: &[BaseField]) -> [u32; SAMPLES] {
    let n = values.len();
    std::array::from_fn(|i| if n == 0 { 0 } else { values[(i * n) / SAMPLES + (i * 7919) % (n / SAMPLES).max(1)].0 })
}

impl Runtime {
    /// Keeps `column` on the device as the copy of `host` (replacing an older entry for the same
    /// host buffer; the oldest entries go when the cache is full).
    pub(super) fn keep(&self, host: &[BaseField], column: GpuColumn) {
        let mut r = lock(&self.resident);
        let column = Arc::new(column);
        // A newer column at the same host address replaces any older entry.
        r.retain(|e| e.ptr != host.as_ptr() as usize || e.len != host.len());
        r.push(Resident { ptr: host.as_ptr() as usize, len: host.len(), sample: fingerprint(host), column });
        while r.len() > RESIDENT_MAX_COLUMNS || r.iter().map(|e| e.column.len()).sum::<usize>() > RESIDENT_MAX_WORDS {
            r.remove(0);
        }
    }

    /// The device copy of `host`, removed from the cache (it is about to be overwritten or is no
    /// longer needed).
    pub(super) fn take(&self, host: &[BaseField]) -> Option<Arc<GpuColumn>> {
        self.lookup(host, true)
    }

    /// The device copy of `host`, left in the cache for later phases.
    fn peek(&self, host: &[BaseField]) -> Option<Arc<GpuColumn>> {
        self.lookup(host, false)
    }

    fn lookup(&self, host: &[BaseField], remove: bool) -> Option<Arc<GpuColumn>> {
        let mut r = lock(&self.resident);
        let (ptr, len) = (host.as_ptr() as usize, host.len());
        let i = r.iter().position(|e| e.ptr == ptr && e.len == len)?;
        if r[i].sample != fingerprint(host) {
            // The host buffer was reused for other data: the device copy is stale.
            r.remove(i);
            return None;
        }
        self.resident_hits.fetch_add(1, Ordering::Relaxed);
        Some(if remove { r.remove(i).column } else { Arc::clone(&r[i].column) })
    }

    /// A device column holding `host` (its first `prefix` words when uploading): the resident copy
    /// if there is one, otherwise an upload.
    pub(super) fn device_or_upload(&self, host: &[BaseField], prefix: usize) -> Result<Arc<GpuColumn>, GpuError> {
        match self.peek(host) {
            Some(column) => Ok(column),
            None => self.ctx.try_upload(&host[..prefix].iter().map(|v| v.0).collect::<Vec<_>>()).map(Arc::new),
        }
    }
}

impl GpuBackend {
    /// Drops every resident device column (called before and after each proof).
    pub fn clear_resident() {
        if let Some(rt) = runtime() {
            lock(&rt.resident).clear();
            // Also layers a panicked commit left half handed out.
            lock(&rt.layers).clear();
        }
    }
}
