//! Device context: adapter selection, compiled pipelines, device buffers and transfer counting.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use wgpu::util::DeviceExt;

use crate::config::ProverBackend;

/// Why a GPU operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter with compute support was found.
    #[error("no GPU adapter: {reason}")]
    NoAdapter {
        /// What wgpu reported.
        reason: String,
    },
    /// The adapter refused to create a device.
    #[error("requesting a device from adapter {adapter:?} failed: {message}")]
    Device {
        /// Adapter name.
        adapter: String,
        /// What wgpu reported.
        message: String,
    },
    /// A WGSL module failed naga's parser or validator.
    #[error("shader module {module} is invalid: {message}")]
    Shader {
        /// Module name.
        module: &'static str,
        /// naga's diagnostic.
        message: String,
    },
    /// Reading a buffer back from the device failed.
    #[error("reading back from the device failed: {0}")]
    Readback(String),
    /// wgpu reported a validation or out-of-memory error during an operation (the operation's
    /// results must not be used; the caller falls back to the CPU).
    #[error("GPU operation {operation} failed: {message}")]
    Operation {
        /// The operation.
        operation: &'static str,
        /// What wgpu reported.
        message: String,
    },
    /// The input is outside what a kernel supports (sizes, ordering).
    #[error("unsupported input: {0}")]
    Unsupported(String),
}

/// Which adapters [`GpuContext::new`] may use.
#[derive(Debug, Clone)]
pub struct GpuOptions {
    /// wgpu backends to enumerate (default: Vulkan, Metal, DX12 as compiled in; overridable
    /// through `WGPU_BACKEND`). An empty set finds no adapter (used to test the fallback).
    pub backends: wgpu::Backends,
    /// Accept a software adapter (lavapipe, device type `Cpu`) at all. Default `true`: that is how
    /// CI tests the kernels. `Auto` additionally requires [`auto_accepts`].
    pub allow_software: bool,
    /// Use 64-bit integer products in the kernels when the adapter has `SHADER_INT64` (default
    /// `true`); `false` forces the 32-bit-limb path everywhere.
    pub use_int64: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self { backends: wgpu::Backends::PRIMARY, allow_software: true, use_int64: true }
    }
}

/// What the adapter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name (`"llvmpipe (LLVM …)"` for lavapipe).
    pub name: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: wgpu::DeviceType,
    /// wgpu backend (Vulkan, Metal, DX12).
    pub backend: wgpu::Backend,
    /// Driver name and version.
    pub driver: String,
}

/// Bytes moved between host and device so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferStats {
    /// Host → device bytes (uploads, including twiddles and kernel parameters).
    pub host_to_device: u64,
    /// Device → host bytes (read-backs).
    pub device_to_host: u64,
}

/// A column of 32-bit words resident on the device.
#[derive(Debug)]
pub struct GpuColumn {
    pub(super) buffer: wgpu::Buffer,
    pub(super) len: usize,
}

impl GpuColumn {
    /// Number of 32-bit words.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug)]
pub(super) struct Pipelines {
    pub(super) m31_add: wgpu::ComputePipeline,
    pub(super) m31_sub: wgpu::ComputePipeline,
    pub(super) m31_mul: wgpu::ComputePipeline,
    pub(super) qm31_mul: wgpu::ComputePipeline,
    pub(super) bit_reverse: wgpu::ComputePipeline,
    pub(super) fft_layer: wgpu::ComputePipeline,
    pub(super) scale: wgpu::ComputePipeline,
    pub(super) leaf_init: wgpu::ComputePipeline,
    pub(super) leaf_expand: wgpu::ComputePipeline,
    pub(super) leaf_absorb: wgpu::ComputePipeline,
    pub(super) leaf_finalize: wgpu::ComputePipeline,
    pub(super) next_layer: wgpu::ComputePipeline,
    pub(super) quotient_numerators: wgpu::ComputePipeline,
    pub(super) grind: wgpu::ComputePipeline,
    pub(super) fri_fold: wgpu::ComputePipeline,
    pub(super) quotient_combine: wgpu::ComputePipeline,
}

/// A wgpu device with the prover's kernels compiled.
#[derive(Debug)]
pub struct GpuContext {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) pipelines: Pipelines,
    adapter: AdapterSummary,
    int64: bool,
    h2d: AtomicU64,
    d2h: AtomicU64,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A read-back staging buffer kept for the next read-back (allocating host-visible memory per
    /// read-back costs more than the copy on a discrete GPU).
    staging: std::sync::Mutex<Option<wgpu::Buffer>>,
}

/// Largest staging buffer kept between read-backs.
const MAX_KEPT_STAGING: u64 = 1 << 30;

/// Workgroup size of every kernel (`@workgroup_size(256)`).
pub(super) const WORKGROUP: u32 = 256;
/// Workgroups along x before the grid wraps to y (kernels index `x + y·nwg.x·256`).
const MAX_GROUPS_X: u32 = 32768;

/// The outcome of [`select_backend`].
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendSelection {
    /// Run on this device.
    Gpu(Box<GpuContext>),
    /// Run on Stwo's SIMD CPU backend.
    Cpu,
}

static AUTO_FALLBACK_LOGGED: Once = Once::new();

/// The one definition of [`ProverBackend::Auto`]'s choice: any hardware GPU; a software adapter
/// (lavapipe, device type `Cpu`) only when `SAGE_GPU_ALLOW_SOFTWARE=1`, because an emulated GPU is
/// slower than the SIMD backend. [`select_backend`] and [`crate::prove`] both apply it.
pub fn auto_accepts(adapter: &AdapterSummary) -> bool {
    adapter.device_type != wgpu::DeviceType::Cpu || std::env::var("SAGE_GPU_ALLOW_SOFTWARE").is_ok_and(|v| v == "1")
}

/// Applies [`ProverBackend`]: `Cpu` → CPU; `Gpu` → a device (software ones too, if `options`
/// allow them) or [`GpuError`]; `Auto` → a device that [`auto_accepts`], otherwise the CPU (the
/// first fallback in a process is logged).
pub fn select_backend(requested: ProverBackend, options: &GpuOptions) -> Result<BackendSelection, GpuError> {
    match requested {
        ProverBackend::Cpu => Ok(BackendSelection::Cpu),
        ProverBackend::Gpu => GpuContext::new(options).map(|g| BackendSelection::Gpu(Box::new(g))),
        ProverBackend::Auto => match GpuContext::new(options) {
            Ok(g) if auto_accepts(g.adapter()) => Ok(BackendSelection::Gpu(Box::new(g))),
            Ok(g) => {
                AUTO_FALLBACK_LOGGED.call_once(|| {
                    tracing::info!(adapter = %g.adapter().name, "backend Auto: only a software GPU adapter, falling back to the SIMD CPU backend (SAGE_GPU_ALLOW_SOFTWARE=1 to use it)");
                });
                Ok(BackendSelection::Cpu)
            }
            Err(e) => {
                AUTO_FALLBACK_LOGGED.call_once(|| {
                    tracing::warn!(error = %e, "backend Auto: no usable GPU, falling back to the SIMD CPU backend");
                });
                Ok(BackendSelection::Cpu)
            }
        },
    }
}

impl GpuContext {
    /// Finds an adapter, creates a device with the adapter's limits and compiles the kernels.
    pub fn new(options: &GpuOptions) -> Result<Self, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = wgpu::Backends::from_env().unwrap_or(options.backends) & options.backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter { reason: e.to_string() })?;
        let info = adapter.get_info();
        let summary = AdapterSummary {
            name: info.name.clone(),
            device_type: info.device_type,
            backend: info.backend,
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_owned(),
        };
        if !options.allow_software && summary.device_type == wgpu::DeviceType::Cpu {
            return Err(GpuError::NoAdapter {
                reason: format!("only a software adapter ({}) and software adapters are not allowed", summary.name),
            });
        }
        let int64 = options.use_int64 && adapter.features().contains(wgpu::Features::SHADER_INT64);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("obelysk-prover"),
            required_features: if int64 { wgpu::Features::SHADER_INT64 } else { wgpu::Features::empty() },
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device { adapter: summary.name.clone(), message: e.to_string() })?;
        // Errors outside an operation's error scope are logged, never a panic (wgpu's default).
        device.on_uncaptured_error(std::sync::Arc::new(|e: wgpu::Error| {
            tracing::error!(error = %e, "uncaptured wgpu error");
        }));
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lost_flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            lost_flag.store(true, Ordering::Relaxed);
            tracing::error!(?reason, %message, "GPU device lost");
        });
        let pipelines = Pipelines::new(&device, int64);
        tracing::info!(adapter = %summary.name, device_type = ?summary.device_type, backend = ?summary.backend, int64, "GPU context ready");
        Ok(Self {
            device,
            queue,
            pipelines,
            adapter: summary,
            int64,
            h2d: AtomicU64::new(0),
            d2h: AtomicU64::new(0),
            lost,
            staging: std::sync::Mutex::new(None),
        })
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// Whether the kernels use 64-bit products (`SHADER_INT64`), or 32-bit limbs.
    pub fn int64(&self) -> bool {
        self.int64
    }

    /// Bytes moved so far.
    pub fn transfers(&self) -> TransferStats {
        TransferStats {
            host_to_device: self.h2d.load(Ordering::Relaxed),
            device_to_host: self.d2h.load(Ordering::Relaxed),
        }
    }

    /// Resets the transfer counters.
    pub fn reset_transfers(&self) {
        self.h2d.store(0, Ordering::Relaxed);
        self.d2h.store(0, Ordering::Relaxed);
    }

    /// The largest buffer the device accepts, in 32-bit words.
    pub fn max_buffer_words(&self) -> u64 {
        self.device.limits().max_buffer_size / 4
    }

    /// Whether the device was lost (driver reset, GPU removed); every later operation fails.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Runs `f` inside validation and out-of-memory error scopes: a wgpu error becomes
    /// [`GpuError::Operation`] instead of a panic or a silently wrong result.
    pub(super) fn guarded<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce() -> Result<T, GpuError>,
    ) -> Result<T, GpuError> {
        if self.is_lost() {
            return Err(GpuError::Operation { operation, message: "device lost".into() });
        }
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = f();
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        if let Some(e) = validation.or(oom) {
            // wgpu's message spans lines ("Validation Error\n\nCaused by:\n  In Device::create_buffer ...").
            let message = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(GpuError::Operation { operation, message });
        }
        if self.is_lost() {
            return Err(GpuError::Operation { operation, message: "device lost".into() });
        }
        result
    }

    /// [`Self::zeroed`] that reports a buffer the device cannot hold as an error.
    pub fn try_zeroed(&self, len: usize) -> Result<GpuColumn, GpuError> {
        self.guarded("allocate", || Ok(self.zeroed(len)))
    }

    /// [`Self::upload`] that reports a buffer the device cannot hold as an error.
    pub fn try_upload(&self, words: &[u32]) -> Result<GpuColumn, GpuError> {
        self.guarded("upload", || Ok(self.upload(words)))
    }

    /// Uploads `words` to a new device column.
    pub fn upload(&self, words: &[u32]) -> GpuColumn {
        let contents: &[u8] = if words.is_empty() { &[0; 4] } else { bytemuck::cast_slice(words) };
        self.h2d.fetch_add(contents.len() as u64, Ordering::Relaxed);
        let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        });
        GpuColumn { buffer, len: words.len() }
    }

    /// A zeroed device column of `len` words (no transfer).
    pub fn zeroed(&self, len: usize) -> GpuColumn {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        GpuColumn { buffer, len }
    }

    /// Reads a device column back.
    pub fn download(&self, column: &GpuColumn) -> Result<Vec<u32>, GpuError> {
        self.guarded("download", || self.download_inner(column))
    }

    pub(super) fn download_inner(&self, column: &GpuColumn) -> Result<Vec<u32>, GpuError> {
        let mut words = vec![0u32; column.len];
        self.download_into_inner(column, bytemuck::cast_slice_mut(&mut words))?;
        Ok(words)
    }

    /// Reads `column` back into `dst` (exactly `4 × len` bytes), without an intermediate vector.
    pub fn download_into(&self, column: &GpuColumn, dst: &mut [u8]) -> Result<(), GpuError> {
        self.guarded("download", || self.download_into_inner(column, dst))
    }

    pub(super) fn download_into_inner(&self, column: &GpuColumn, dst: &mut [u8]) -> Result<(), GpuError> {
        if dst.len() != column.len * 4 {
            return Err(GpuError::Unsupported(format!("reading {} words into {} bytes", column.len, dst.len())));
        }
        if column.len == 0 {
            return Ok(());
        }
        let size = (column.len * 4) as u64;
        // Reuse the kept staging buffer when it is large enough (taken: a concurrent read-back
        // allocates its own); otherwise allocate one rounded up to a power of two.
        let kept = self.staging.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let staging = match kept {
            Some(buffer) if buffer.size() >= size => buffer,
            _ => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: size.next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(&column.buffer, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..size, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv().map_err(|e| GpuError::Readback(e.to_string()))?.map_err(|e| GpuError::Readback(e.to_string()))?;
        {
            let view = staging.get_mapped_range(..size).map_err(|e| GpuError::Readback(e.to_string()))?;
            dst.copy_from_slice(&view);
        }
        staging.unmap();
        if staging.size() <= MAX_KEPT_STAGING {
            let mut slot = self.staging.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.as_ref().is_none_or(|b| b.size() < staging.size()) {
                *slot = Some(staging);
            }
        }
        self.d2h.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until all submitted work is done (for timing).
    pub fn synchronize(&self) -> Result<(), GpuError> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| GpuError::Readback(e.to_string()))
    }

    /// A uniform with four parameters (counted as an upload).
    pub(super) fn params(&self, p: [u32; 4]) -> wgpu::Buffer {
        self.h2d.fetch_add(16, Ordering::Relaxed);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&p),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// Records one dispatch of `pipeline` over `threads` invocations into `encoder`.
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[(u32, &wgpu::Buffer)],
        threads: usize,
    ) {
        if threads == 0 {
            return;
        }
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = bindings
            .iter()
            .map(|&(binding, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let groups = threads.div_ceil(WORKGROUP as usize) as u32;
        let x = groups.min(MAX_GROUPS_X);
        let y = groups.div_ceil(x);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    pub(super) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    pub(super) fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit([encoder.finish()]);
    }

    /// Compiles the constraint kernel with `body` as its row program (checked by naga first, so a
    /// bad program is a typed error naming the problem).
    pub(super) fn constraint_pipeline(&self, body: &str) -> Result<wgpu::ComputePipeline, GpuError> {
        let source = super::constraint_kernel_source(body, self.int64);
        super::validate_source("constraints (generated)", &source, self.int64)?;
        self.guarded("compile constraints", || {
            Ok(compute_pipeline(&self.device, &shader_module(&self.device, "constraints", &source), "constraints"))
        })
    }
}

fn shader_module(device: &wgpu::Device, name: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// The compute pipeline of `entry` in `module` (layout derived from the shader).
fn compute_pipeline(device: &wgpu::Device, module: &wgpu::ShaderModule, entry: &str) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}

impl Pipelines {
    fn new(device: &wgpu::Device, int64: bool) -> Self {
        let sources = super::shader_sources_for(int64);
        let module = |name: &str| {
            let (_, src) = sources.iter().find(|(n, _)| *n == name).expect("shader module exists");
            shader_module(device, name, src)
        };
        let pipeline = |module: &wgpu::ShaderModule, entry: &str| compute_pipeline(device, module, entry);
        let arith = module("arith");
        let bit_reverse = module("bit_reverse");
        let fft = module("fft");
        let blake = module("blake2s");
        let quotients = module("quotients");
        let grind = module("grind");
        let fri = module("fri");
        let combine = module("quotient_combine");
        Self {
            m31_add: pipeline(&arith, "m31_add_kernel"),
            m31_sub: pipeline(&arith, "m31_sub_kernel"),
            m31_mul: pipeline(&arith, "m31_mul_kernel"),
            qm31_mul: pipeline(&arith, "qm31_mul_kernel"),
            bit_reverse: pipeline(&bit_reverse, "bit_reverse"),
            fft_layer: pipeline(&fft, "fft_layer"),
            scale: pipeline(&fft, "scale"),
            leaf_init: pipeline(&blake, "leaf_init"),
            leaf_expand: pipeline(&blake, "leaf_expand"),
            leaf_absorb: pipeline(&blake, "leaf_absorb"),
            leaf_finalize: pipeline(&blake, "leaf_finalize"),
            next_layer: pipeline(&blake, "next_layer"),
            quotient_numerators: pipeline(&quotients, "quotient_numerators"),
            grind: pipeline(&grind, "grind"),
            fri_fold: pipeline(&fri, "fri_fold"),
            quotient_combine: pipeline(&combine, "quotient_combine"),
        }
    }
}
