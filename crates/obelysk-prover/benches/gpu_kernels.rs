//! CPU vs GPU time per kernel at 2^16 and 2^18 elements, with bytes moved host↔device.
//!
//! `cargo bench -p obelysk-prover --features gpu --bench gpu_kernels` (or `scripts/gpu-check.sh`).
//! Every GPU result is checked against the CPU before its time is printed. CPU = Stwo's SIMD
//! backend where it has the operation (FFT, Merkle), otherwise a scalar loop / `bit_reverse`.
//! GPU time = from the first dispatch to the device being idle, inputs already resident except
//! where the row says "incl. upload". On a software adapter (lavapipe) the numbers only show
//! correctness; the ratio that counts is on a real GPU. `GPU_BENCH_LOGS=16,18,20` picks the sizes.

use std::time::{Duration, Instant};

use obelysk_prover::gpu::{GpuContext, GpuOptions};
use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::m31::{BaseField, P};
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher;
use stwo::prover::CommitmentSchemeProver;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::{Column, CpuBackend};
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps};
use stwo::prover::vcs_lifted::prover::MerkleProverLifted;

const REPS: usize = 3;

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut t: Vec<Duration> = (0..REPS).map(|_| f()).collect();
    t.sort();
    t[REPS / 2]
}

fn values(n: usize, seed: u64) -> Vec<BaseField> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            BaseField::from_u32_unchecked(((s >> 33) % u64::from(P)) as u32)
        })
        .collect()
}

fn raw(v: &[BaseField]) -> Vec<u32> {
    v.iter().map(|x| x.0).collect()
}

struct Row {
    kernel: &'static str,
    log_n: u32,
    cpu: Duration,
    gpu: Duration,
    h2d: u64,
    d2h: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let gpu = GpuContext::new(&GpuOptions::default())
        .unwrap_or_else(|e| panic!("no wgpu adapter ({e}); on a machine without a GPU install mesa-vulkan-drivers"));
    let a = gpu.adapter();
    println!("adapter: {} ({:?}, {:?}, {})", a.name, a.device_type, a.backend, a.driver);
    if a.device_type == wgpu::DeviceType::Cpu {
        println!("NOTE: software adapter: GPU times below show correctness only, not GPU speed.");
    }
    let logs: Vec<u32> = std::env::var("GPU_BENCH_LOGS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 18]);
    let mut rows = Vec::new();
    for &log_n in &logs {
        let n = 1usize << log_n;
        let (x, y) = (values(n, 1), values(n, 2));

        // M31 multiplication.
        let want: Vec<u32> = x.iter().zip(&y).map(|(a, b)| (*a * *b).0).collect();
        let cpu = median(|| {
            let t = Instant::now();
            let r: Vec<BaseField> = x.iter().zip(&y).map(|(a, b)| *a * *b).collect();
            std::hint::black_box(r);
            t.elapsed()
        });
        let (dx, dy) = (gpu.upload(&raw(&x)), gpu.upload(&raw(&y)));
        gpu.reset_transfers();
        let gpu_t = median(|| {
            let t = Instant::now();
            let r = gpu.m31_mul(&dx, &dy).unwrap();
            gpu.synchronize().unwrap();
            std::hint::black_box(r);
            t.elapsed()
        });
        let tr = gpu.transfers();
        assert_eq!(gpu.download(&gpu.m31_mul(&dx, &dy).unwrap()).unwrap(), want, "m31_mul mismatch");
        rows.push(Row {
            kernel: "m31_mul",
            log_n,
            cpu,
            gpu: gpu_t,
            h2d: tr.host_to_device / REPS as u64,
            d2h: tr.device_to_host / REPS as u64,
        });

        // Bit reversal.
        let mut want = raw(&x);
        stwo::core::utils::bit_reverse(&mut want);
        let cpu = median(|| {
            let mut v = raw(&x);
            let t = Instant::now();
            stwo::core::utils::bit_reverse(&mut v);
            t.elapsed()
        });
        let col = gpu.upload(&raw(&x));
        gpu.reset_transfers();
        let gpu_t = median(|| {
            let t = Instant::now();
            gpu.bit_reverse(&col).unwrap();
            gpu.synchronize().unwrap();
            t.elapsed()
        });
        let tr = gpu.transfers();
        let check = gpu.upload(&raw(&x));
        gpu.bit_reverse(&check).unwrap();
        assert_eq!(gpu.download(&check).unwrap(), want, "bit_reverse mismatch");
        rows.push(Row {
            kernel: "bit_reverse",
            log_n,
            cpu,
            gpu: gpu_t,
            h2d: tr.host_to_device / REPS as u64,
            d2h: tr.device_to_host / REPS as u64,
        });

        // Circle FFT: evaluate 2^(log_n - 1) coefficients on a 2^log_n domain (blowup 2).
        let domain = CanonicCoset::new(log_n).circle_domain();
        let coeffs = values(n / 2, 3);
        // Twiddles for a domain twice as large, as the prover precomputes them (`stark::twiddles`).
        let tw_coset = CanonicCoset::new(log_n + 1).circle_domain().half_coset;
        let simd_tw = SimdBackend::precompute_twiddles(tw_coset);
        let cpu_tw = CpuBackend::precompute_twiddles(tw_coset);
        let simd_poly = CircleCoefficients::<SimdBackend>::new(BaseColumn::from_cpu(&coeffs));
        // Reference: CpuBackend (Stwo's reference backend); timed CPU: SimdBackend. From 2^17
        // coefficients on, SimdBackend keeps coefficients in its own order (self-consistent, but the
        // same vector is a different polynomial to it), so only CpuBackend is a bit-exact reference.
        let want =
            raw(&CpuBackend::evaluate(&CircleCoefficients::<CpuBackend>::new(coeffs.clone()), domain, &cpu_tw).values);
        if raw(&SimdBackend::evaluate(&simd_poly, domain, &simd_tw).values.to_cpu()) != want {
            println!(
                "NOTE: 2^{log_n}: SimdBackend orders the coefficients of >= 2^17-coefficient polynomials differently \
                 from CpuBackend; the FFT row is checked against CpuBackend"
            );
        }
        let cpu = median(|| {
            let t = Instant::now();
            std::hint::black_box(SimdBackend::evaluate(&simd_poly, domain, &simd_tw));
            t.elapsed()
        });
        let mut padded = raw(&coeffs);
        padded.resize(n, 0);
        let cols: Vec<_> = (0..REPS).map(|_| gpu.upload(&padded)).collect();
        gpu.reset_transfers();
        let mut it = cols.iter();
        let gpu_t = median(|| {
            let col = it.next().unwrap();
            let t = Instant::now();
            gpu.evaluate(col, domain, &cpu_tw).unwrap();
            gpu.synchronize().unwrap();
            t.elapsed()
        });
        let tr = gpu.transfers();
        assert_eq!(gpu.download(&cols[0]).unwrap(), want, "FFT evaluate mismatch");
        rows.push(Row {
            kernel: "fft_evaluate (incl. twiddle upload)",
            log_n,
            cpu,
            gpu: gpu_t,
            h2d: tr.host_to_device / REPS as u64,
            d2h: tr.device_to_host / REPS as u64,
        });

        // Blake2s Merkle: 8 columns of 2^log_n, leaves + all layers to the root.
        let columns: Vec<Vec<BaseField>> = (0..8).map(|i| values(n, 10 + i)).collect();
        let simd_cols: Vec<BaseColumn> = columns.iter().map(|c| BaseColumn::from_cpu(c)).collect();
        let commit =
            || MerkleProverLifted::<SimdBackend, Blake2sMerkleHasher>::commit(simd_cols.iter().collect(), log_n, 0);
        let want = commit().root().0;
        let cpu = median(|| {
            let t = Instant::now();
            std::hint::black_box(commit());
            t.elapsed()
        });
        let slices: Vec<&[BaseField]> = columns.iter().map(|c| c.as_slice()).collect();
        gpu.reset_transfers();
        let gpu_t = median(|| {
            let t = Instant::now();
            let root = gpu.merkle_root(gpu.build_leaves(&slices, log_n).unwrap()).unwrap();
            assert_eq!(root, want, "Merkle root mismatch");
            t.elapsed()
        });
        let tr = gpu.transfers();
        rows.push(Row {
            kernel: "merkle_8cols_root (incl. upload)",
            log_n,
            cpu,
            gpu: gpu_t,
            h2d: tr.host_to_device / REPS as u64,
            d2h: tr.device_to_host / REPS as u64,
        });

        // The commit phase of one tree, as `CommitmentTreeProver::new`: 8 trace columns of
        // 2^(log_n - 2) rows, interpolate → blowup 4 → lifted Blake2s Merkle root (2^log_n leaves).
        let trace_log = log_n - 2;
        let pcs = obelysk_prover::ProofConfig::PRODUCTION.to_pcs().unwrap();
        let tw_coset = CanonicCoset::new(trace_log + 1 + pcs.fri_config.log_blowup_factor).circle_domain().half_coset;
        let simd_tw = SimdBackend::precompute_twiddles(tw_coset);
        let cpu_tw = CpuBackend::precompute_twiddles(tw_coset);
        let trace: Vec<Vec<BaseField>> = (0..8).map(|i| values(1 << trace_log, 20 + i)).collect();
        let trace_domain = CanonicCoset::new(trace_log).circle_domain();
        let commit_cpu = || {
            let mut cs = CommitmentSchemeProver::<SimdBackend, Blake2sMerkleChannel>::new(pcs, &simd_tw);
            let mut tb = cs.tree_builder();
            tb.extend_evals(
                trace
                    .iter()
                    .map(|c| {
                        CircleEvaluation::<SimdBackend, BaseField, BitReversedOrder>::new(
                            trace_domain,
                            BaseColumn::from_cpu(c),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            tb.commit(&mut Blake2sChannel::default());
            cs.roots()[0].0
        };
        let want = commit_cpu();
        let cpu = median(|| {
            let t = Instant::now();
            std::hint::black_box(commit_cpu());
            t.elapsed()
        });
        let slices: Vec<&[BaseField]> = trace.iter().map(|c| c.as_slice()).collect();
        gpu.reset_transfers();
        let gpu_t = median(|| {
            let t = Instant::now();
            let (root, _extended) = gpu.commit_columns(&slices, pcs.fri_config.log_blowup_factor, &cpu_tw).unwrap();
            assert_eq!(root, want, "commit root mismatch");
            t.elapsed()
        });
        let tr = gpu.transfers();
        rows.push(Row {
            kernel: "commit_tree 8 cols, blowup 4 (incl. upload)",
            log_n,
            cpu,
            gpu: gpu_t,
            h2d: tr.host_to_device / REPS as u64,
            d2h: tr.device_to_host / REPS as u64,
        });
    }

    println!();
    println!(
        "| {:<44} | {:>5} | {:>10} | {:>10} | {:>9} | {:>12} | {:>10} |",
        "kernel", "n", "CPU ms", "GPU ms", "CPU/GPU", "H2D bytes", "D2H bytes"
    );
    println!("|{:-<46}|{:-<7}|{:-<12}|{:-<12}|{:-<11}|{:-<14}|{:-<12}|", "", "", "", "", "", "", "");
    for r in &rows {
        println!(
            "| {:<44} | 2^{:<3} | {:>10.3} | {:>10.3} | {:>9.2} | {:>12} | {:>10} |",
            r.kernel,
            r.log_n,
            ms(r.cpu),
            ms(r.gpu),
            r.cpu.as_secs_f64() / r.gpu.as_secs_f64(),
            r.h2d,
            r.d2h
        );
    }
    println!(
        "\nH2D/D2H: bytes moved per timed GPU run (kernel parameters, twiddles, and column uploads where the row says so). All GPU outputs matched the CPU bit for bit."
    );
}
