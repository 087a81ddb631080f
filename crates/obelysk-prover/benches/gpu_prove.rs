//! Whole proofs on Stwo's SIMD backend and on the GPU backend, per phase and in total, with the
//! bytes moved between host and device.
//!
//! `cargo bench -p obelysk-prover --features gpu --bench gpu_prove` (also run by
//! `cargo xtask bench gpu` and `scripts/gpu-check.sh`), under the production proof config. Jobs:
//! matmul n = 256, 512, 1024 — 2^16, 2^18, 2^20 trace rows (`GPU_PROVE_NS=256,512,1024,2048` adds
//! 2^22 where memory allows) — and straight-line VM programs of 2^16, 2^18 and 2^20 steps
//! (`GPU_PROVE_VM=16,18,20`, log2 of the steps; the 1M-step figure other provers publish).
//! An empty variable skips that job type.
//!
//! Columns, per job (median of 3 runs after a warm-up):
//! - `whole proof`: `ProverBackend::Cpu` (the SIMD backend, the baseline) against
//!   `ProverBackend::Gpu` (which includes verifying the GPU-made proof before returning it).
//! - per phase: the GPU backend's own counters, once with the device switched off (every phase on
//!   the SIMD code, timed through the same wrapper: the baseline) and once with it on.
//!   Every phase listed runs on the device (constraints: the AIR's compiled row program); `rest`
//!   (out-of-domain sampling, channel, trace generation) is the whole proof minus the phases.
//!
//! The three proofs of a job are checked byte-identical before anything is printed. On a software
//! adapter (lavapipe) the GPU columns only show correctness, not GPU speed.

use std::time::{Duration, Instant};

use obelysk_prover::gpu::{DEFAULT_MIN_LOG_SIZE, GpuBackend, GpuBackendStats, GpuPhase};
use obelysk_prover::matmul::MatmulJob;
use obelysk_prover::statement::{JobId, WorkerAddress};
use obelysk_prover::vm::VmJob;

mod support;
use obelysk_prover::{Job, ProofConfig, ProveConfig, Proved, ProverBackend, prove_with_output};

const REPS: usize = 3;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and mean wall time of `REPS` proofs after one warm-up, the last proof, and the GPU
/// backend's counters summed over the timed runs.
fn run(job: &Job, backend: ProverBackend) -> (Duration, Duration, Proved, GpuBackendStats) {
    let config = ProveConfig { proof: ProofConfig::PRODUCTION, backend, ..ProveConfig::default() };
    let mut last = prove_with_output(job, &config).expect("warm-up proof");
    GpuBackend::reset_stats();
    let mut times = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let t = Instant::now();
        last = prove_with_output(job, &config).expect("proof");
        times.push(t.elapsed());
    }
    let mean = times.iter().sum::<Duration>() / REPS as u32;
    times.sort();
    (times[REPS / 2], mean, last, GpuBackend::stats())
}

fn ratio(base: f64, new: f64) -> String {
    if new > 0.0 { format!("{:.2}×", base / new) } else { "—".into() }
}

fn main() {
    let ctx = GpuBackend::runtime()
        .unwrap_or_else(|e| panic!("no wgpu adapter ({e}); without a GPU install mesa-vulkan-drivers libvulkan1"));
    let a = ctx.adapter();
    println!("adapter: {} ({:?}, {:?}, {})", a.name, a.device_type, a.backend, a.driver);
    if a.device_type == wgpu::DeviceType::Cpu {
        println!("NOTE: software adapter: GPU times below show correctness only, not GPU speed.");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("CPU baseline: Stwo SimdBackend on {cores} threads; proof config: production (blowup 4, 38 queries)");
    let list = |var: &str, default: &[u32]| -> Vec<u32> {
        std::env::var(var)
            .ok()
            .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| default.to_vec())
    };
    println!();
    println!(
        "| job | rows | phase | SIMD ms | GPU ms | SIMD/GPU | GPU ops | fallbacks | host→device | device→host | stayed on device |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for n in list("GPU_PROVE_NS", &[256, 512, 1024]) {
        let job = Job::matmul(
            JobId::from_u128(u128::from(n)),
            WorkerAddress::from_u128(7),
            MatmulJob::from_seed(n, [n as u8; 32]),
        );
        report(&format!("matmul n={n}"), 2 * n.ilog2(), &job);
    }
    for log_steps in list("GPU_PROVE_VM", &[16, 18, 20]) {
        let job = Job::vm(
            JobId::from_u128(u128::from(log_steps) << 8),
            WorkerAddress::from_u128(7),
            VmJob { program: support::vm_program(1 << log_steps), inputs: [1, 2, 3, 4] },
        );
        report(&format!("vm 2^{log_steps} steps"), log_steps, &job);
    }
}

/// Proves `job` on the SIMD backend, on the GPU backend with the device off and with it on, checks
/// the three proofs are byte-identical and prints the per-phase and whole-proof rows.
fn report(label: &str, rows: u32, job: &Job) {
    let (simd_t, _, simd, _) = run(job, ProverBackend::Cpu);
    GpuBackend::set_min_log_size(u32::MAX);
    let (off_t, off_mean, off, off_stats) = run(job, ProverBackend::Gpu);
    GpuBackend::set_min_log_size(DEFAULT_MIN_LOG_SIZE);
    let (gpu_t, gpu_mean, gpu, gpu_stats) = run(job, ProverBackend::Gpu);
    assert_eq!(gpu.backend, ProverBackend::Gpu, "the GPU proof was redone on the CPU");
    assert!(simd.encoded.bytes == gpu.encoded.bytes, "GPU and SIMD proofs differ for {label}");
    assert!(simd.encoded.bytes == off.encoded.bytes, "device-off and SIMD proofs differ for {label}");

    let per = |s: &GpuBackendStats, p: GpuPhase| {
        let st = s.phase(p);
        (st.gpu_nanos + st.cpu_nanos) as f64 / 1e6 / REPS as f64
    };
    let mut cpu_sum = 0.0;
    let mut gpu_sum = 0.0;
    for p in GpuPhase::ALL {
        let (c, g) = (per(&off_stats, p), per(&gpu_stats, p));
        cpu_sum += c;
        gpu_sum += g;
        let st = gpu_stats.phase(p);
        println!(
            "| {label} | 2^{rows} | {} | {c:.1} | {g:.1} | {} | {} | {} | | | |",
            p.name(),
            ratio(c, g),
            st.gpu_ops / REPS as u64,
            st.fallbacks / REPS as u64,
        );
    }
    // The device-off run is the per-phase baseline; phases are means over the timed runs, so the
    // remainder is taken from the mean total of the same runs.
    let rest_cpu = ms(off_mean) - cpu_sum;
    let rest_gpu = ms(gpu_mean) - gpu_sum;
    println!(
        "| {label} | 2^{rows} | rest (OODS, channel, trace) | {rest_cpu:.1} | {rest_gpu:.1} | {} | | | | | |",
        ratio(rest_cpu, rest_gpu)
    );
    println!("| {label} | 2^{rows} | whole proof, GPU backend with the device off | {:.1} | | | | | | | |", ms(off_t));
    let t = gpu_stats.transfers;
    println!(
        "| {label} | 2^{rows} | **whole proof** | {:.1} | {:.1} | **{}** | {} | {} | {:.1} MB | {:.1} MB | {} columns |",
        ms(simd_t),
        ms(gpu_t),
        ratio(ms(simd_t), ms(gpu_t)),
        gpu_stats.gpu_ops() / REPS as u64,
        gpu_stats.fallbacks() / REPS as u64,
        t.host_to_device as f64 / 1e6 / REPS as f64,
        t.device_to_host as f64 / 1e6 / REPS as f64,
        gpu_stats.resident_hits / REPS as u64,
    );
}
