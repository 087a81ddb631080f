//! The process-wide device runtime behind [`GpuBackend`] (created on first use), the per-phase
//! counters, and the dispatch of each operation to the device or the CPU with its fallback
//! accounting. Fault injection (for the fallback tests) exists only in unit-test builds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::merkle::TreeLayers;
use super::resident::Resident;
use super::{DEFAULT_MIN_LOG_SIZE, GpuBackend, GpuBackendStats, GpuPhase, PhaseStats};
use crate::gpu::GpuColumn;
use crate::gpu::context::{GpuContext, GpuError, GpuOptions};
use crate::gpu::kernels::GpuTwiddles;

#[derive(Default)]
struct Counters {
    gpu_ops: AtomicU64,
    gpu_nanos: AtomicU64,
    fallbacks: AtomicU64,
    small: AtomicU64,
    cpu_ops: AtomicU64,
    cpu_nanos: AtomicU64,
}

/// A fold domain: (circle rather than line, initial index, step, log size).
type FoldDomainKey = (bool, usize, usize, u32);

/// The process-wide device state behind [`GpuBackend`].
pub(super) struct Runtime {
    pub(super) ctx: GpuContext,
    /// Device twiddles by (twiddle buffer id, domain log size, inverse).
    pub(super) twiddles: Mutex<HashMap<(u64, u32, bool), Arc<GpuTwiddles>>>,
    /// Upper Merkle layers computed together with the leaves, served to `build_next_layer`.
    pub(super) layers: Mutex<Vec<TreeLayers>>,
    /// Device copies of host columns this backend just produced (see [`Resident`]).
    pub(super) resident: Mutex<Vec<Resident>>,
    pub(super) resident_hits: AtomicU64,
    /// Inverse FRI fold twiddles on the device, by domain.
    pub(super) fri_twiddles: Mutex<HashMap<FoldDomainKey, Arc<GpuColumn>>>,
    /// Quotient subdomain points (x then y, bit-reversed order) on the device, by subdomain.
    pub(super) subdomain_points: Mutex<HashMap<(usize, usize, u32), Arc<GpuColumn>>>,
    /// Inverse twiddles of a quotient subdomain, by (twiddle buffer id, domain, subdomain log size).
    pub(super) subdomain_twiddles: Mutex<HashMap<(u64, u32, u32), Arc<GpuTwiddles>>>,
    /// Compiled constraint kernels, by row program (one per circuit structure).
    pub(super) constraint_pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    counters: [Counters; 7],
}

static RUNTIME: OnceLock<Result<Runtime, GpuError>> = OnceLock::new();
static OPTIONS: OnceLock<GpuOptions> = OnceLock::new();
static MIN_LOG_SIZE: AtomicU32 = AtomicU32::new(DEFAULT_MIN_LOG_SIZE);
static FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

/// The runtime, created on first use; `None` when no usable adapter exists.
pub(super) fn runtime() -> Option<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            let options = OPTIONS.get().cloned().unwrap_or_default();
            GpuContext::new(&options).map(|ctx| {
                tracing::info!(adapter = %ctx.adapter().name, device_type = ?ctx.adapter().device_type, "GPU backend ready");
                Runtime {
                    ctx,
                    twiddles: Mutex::new(HashMap::new()),
                    layers: Mutex::new(Vec::new()),
                    resident: Mutex::new(Vec::new()),
                    resident_hits: AtomicU64::new(0),
                    fri_twiddles: Mutex::new(HashMap::new()),
                    subdomain_points: Mutex::new(HashMap::new()),
                    subdomain_twiddles: Mutex::new(HashMap::new()),
                    constraint_pipelines: Mutex::new(HashMap::new()),
                    counters: Default::default(),
                }
            })
        })
        .as_ref()
        .ok()
}

/// The runtime if it was already created (successfully), without creating it.
pub(super) fn started_runtime() -> Option<&'static Runtime> {
    match RUNTIME.get() {
        Some(Ok(rt)) => Some(rt),
        _ => None,
    }
}

/// A poisoned cache lock (a panic while it was held) still guards consistent data: every cache
/// entry is inserted whole.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The value cached under `key`, or `make()` stored there (the whole cache is dropped when it
/// holds `capacity` entries: the values are cheap to rebuild and a proof uses few of them).
pub(super) fn cached<K: std::hash::Hash + Eq, V>(
    cache: &Mutex<HashMap<K, Arc<V>>>,
    key: K,
    capacity: usize,
    make: impl FnOnce() -> Result<V, GpuError>,
) -> Result<Arc<V>, GpuError> {
    if let Some(v) = lock(cache).get(&key).cloned() {
        return Ok(v);
    }
    let v = Arc::new(make()?);
    let mut cache = lock(cache);
    if cache.len() >= capacity {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&v));
    Ok(v)
}

fn phase_index(phase: GpuPhase) -> usize {
    match phase {
        GpuPhase::Interpolate => 0,
        GpuPhase::Evaluate => 1,
        GpuPhase::Merkle => 2,
        GpuPhase::Constraints => 3,
        GpuPhase::Quotients => 4,
        GpuPhase::Fri => 5,
        GpuPhase::Grind => 6,
    }
}

/// Runs `op` on the device when the runtime is up and the column is large enough. `None` means
/// "do it on the CPU" (too small, no device, or the device operation failed — counted and logged).
pub(super) fn on_device<T>(
    phase: GpuPhase,
    log_size: u32,
    op: impl FnOnce(&Runtime) -> Result<T, GpuError>,
) -> Option<T> {
    let rt = runtime()?;
    let counters = &rt.counters[phase_index(phase)];
    if log_size < MIN_LOG_SIZE.load(Ordering::Relaxed) {
        counters.small.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let start = Instant::now();
    #[cfg(test)]
    let result = if take_one(&INJECTED_FAULTS) {
        Err(GpuError::Operation { operation: phase.name(), message: "injected fault".into() })
    } else {
        op(rt)
    };
    #[cfg(not(test))]
    let result = op(rt);
    match result {
        Ok(value) => {
            counters.gpu_ops.fetch_add(1, Ordering::Relaxed);
            counters.gpu_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            Some(value)
        }
        Err(error) => {
            counters.fallbacks.fetch_add(1, Ordering::Relaxed);
            if FALLBACK_WARNED.swap(true, Ordering::Relaxed) {
                tracing::debug!(phase = phase.name(), log_size, %error, "GPU operation failed; redone on the CPU");
            } else {
                tracing::warn!(
                    phase = phase.name(),
                    log_size,
                    %error,
                    "GPU operation failed; redone on the SIMD CPU backend (the proof is unaffected; later fallbacks are logged at debug)"
                );
            }
            None
        }
    }
}

/// Runs the CPU side of an operation of `phase`, timed into the same counters.
pub(super) fn on_cpu<T>(phase: GpuPhase, op: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = op();
    if let Some(rt) = started_runtime() {
        let c = &rt.counters[phase_index(phase)];
        c.cpu_ops.fetch_add(1, Ordering::Relaxed);
        c.cpu_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    value
}

impl GpuBackend {
    /// Sets the adapter options the device is created with. Only the first call before the device
    /// is first used counts; returns `false` when it came too late.
    pub fn configure(options: GpuOptions) -> bool {
        RUNTIME.get().is_none() && OPTIONS.set(options).is_ok()
    }

    /// The process-wide device, created on first use. `Err` when no usable adapter exists (every
    /// operation then runs on the CPU; [`crate::prove`] refuses `ProverBackend::Gpu`).
    pub fn runtime() -> Result<&'static GpuContext, GpuError> {
        runtime();
        match RUNTIME.get() {
            Some(Ok(rt)) => Ok(&rt.ctx),
            Some(Err(e)) => Err(e.clone()),
            None => Err(GpuError::NoAdapter { reason: "GPU runtime not initialised".into() }),
        }
    }

    /// Smallest column (log2 of its length) that goes to the device.
    pub fn min_log_size() -> u32 {
        MIN_LOG_SIZE.load(Ordering::Relaxed)
    }

    /// Sets [`Self::min_log_size`] (at least 5: smaller FFTs stay on the CPU, as in Stwo).
    pub fn set_min_log_size(log_size: u32) {
        MIN_LOG_SIZE.store(log_size.max(5), Ordering::Relaxed);
    }

    /// Counters since the last reset.
    pub fn stats() -> GpuBackendStats {
        let Some(rt) = runtime() else { return GpuBackendStats::default() };
        GpuBackendStats {
            phases: GpuPhase::ALL
                .iter()
                .map(|&p| {
                    let c = &rt.counters[phase_index(p)];
                    (
                        p,
                        PhaseStats {
                            gpu_ops: c.gpu_ops.load(Ordering::Relaxed),
                            gpu_nanos: c.gpu_nanos.load(Ordering::Relaxed),
                            fallbacks: c.fallbacks.load(Ordering::Relaxed),
                            small_on_cpu: c.small.load(Ordering::Relaxed),
                            cpu_ops: c.cpu_ops.load(Ordering::Relaxed),
                            cpu_nanos: c.cpu_nanos.load(Ordering::Relaxed),
                        },
                    )
                })
                .collect(),
            transfers: rt.ctx.transfers(),
            resident_hits: rt.resident_hits.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the counters and the transfer statistics.
    pub fn reset_stats() {
        if let Some(rt) = runtime() {
            for c in &rt.counters {
                c.gpu_ops.store(0, Ordering::Relaxed);
                c.gpu_nanos.store(0, Ordering::Relaxed);
                c.fallbacks.store(0, Ordering::Relaxed);
                c.small.store(0, Ordering::Relaxed);
                c.cpu_ops.store(0, Ordering::Relaxed);
                c.cpu_nanos.store(0, Ordering::Relaxed);
            }
            rt.ctx.reset_transfers();
            rt.resident_hits.store(0, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fault injection, compiled into unit-test builds only (production code paths check nothing).

#[cfg(test)]
static INJECTED_FAULTS: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
static INJECTED_CORRUPTIONS: AtomicU64 = AtomicU64::new(0);

/// Consumes one injected event from `counter`; `false` when none is left.
#[cfg(test)]
fn take_one(counter: &AtomicU64) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

/// Whether this device interpolation should return a corrupted coefficient
/// ([`GpuBackend::inject_corruptions`]).
#[cfg(test)]
pub(super) fn take_injected_corruption() -> bool {
    take_one(&INJECTED_CORRUPTIONS)
}

#[cfg(test)]
impl GpuBackend {
    /// Makes the next `n` device operations fail as a device error would (tests the CPU fallback).
    pub(in crate::gpu) fn inject_faults(n: u64) {
        INJECTED_FAULTS.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` device interpolations return a wrong coefficient without an error, as a
    /// faulty driver would (tests that such a proof is caught and redone on the CPU).
    pub(in crate::gpu) fn inject_corruptions(n: u64) {
        INJECTED_CORRUPTIONS.store(n, Ordering::SeqCst);
    }
}
