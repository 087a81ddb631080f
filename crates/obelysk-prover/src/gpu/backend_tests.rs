//! The GPU backend inside whole Stwo proofs: byte-identical to the SIMD backend's proofs, the
//! device path really taken (counted), faults redone on the CPU. Every test name contains `gpu`,
//! so nextest runs them one at a time. The backend's device and counters are process-wide: each
//! test holds [`super::BACKEND_TEST_LOCK`] (taken by [`device_ready`]) so that `cargo test`, which
//! runs tests as threads of one process, cannot interleave them.

use stwo::core::fields::m31::BaseField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps};

use super::backend::transpose_vecs_for_tests;
use super::{GpuBackend, GpuBackendStats, GpuPhase};
use crate::config::{MatmulProtocol, ProofConfig, ProveConfig, ProverBackend, VerifyPolicy};
use crate::matmul::MatmulJob;
use crate::statement::{JobId, WorkerAddress};
use crate::{Job, prove_with_output, verify};

/// The backend's device, or a failure that says how to get one (never a silent skip); holds the
/// backend test lock until the returned guard drops.
fn device_ready() -> std::sync::MutexGuard<'static, ()> {
    let guard = super::BACKEND_TEST_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(e) = GpuBackend::runtime() {
        panic!(
            "GPU backend test found no usable wgpu adapter ({e}). Without a GPU install Mesa lavapipe: \
             apt-get install -y mesa-vulkan-drivers libvulkan1"
        );
    }
    let a = GpuBackend::runtime().map(|c| c.adapter().clone()).ok();
    eprintln!("GPU backend test adapter: {a:?}");
    if let (Ok(expected), Some(a)) = (std::env::var("SAGE_GPU_EXPECT_ADAPTER"), a) {
        assert!(a.name.contains(&expected), "ran on {:?}, expected an adapter matching {expected:?}", a.name);
    }
    guard
}

fn seeded(n: usize, seed: u64) -> Vec<BaseField> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            BaseField::from_u32_unchecked(((x >> 33) % u64::from(stwo::core::fields::m31::P)) as u32)
        })
        .collect()
}

/// The phases a GPU proof must have run on the device: the FFTs, Merkle trees, grinding and the
/// constraints (every project AIR compiles to a device row program) always; the quotients and FRI
/// unless the trace is below the device threshold (`small_subdomain`).
fn device_phases(small_subdomain: bool) -> Vec<GpuPhase> {
    let mut phases =
        vec![GpuPhase::Interpolate, GpuPhase::Evaluate, GpuPhase::Merkle, GpuPhase::Grind, GpuPhase::Constraints];
    if !small_subdomain {
        phases.extend([GpuPhase::Quotients, GpuPhase::Fri]);
    }
    phases
}

/// The phases the opening matmul protocol runs on the device: no interpolation (it commits
/// from coefficients) and no constraints (it has no AIR).
fn opening_phases() -> Vec<GpuPhase> {
    vec![GpuPhase::Evaluate, GpuPhase::Merkle, GpuPhase::Grind, GpuPhase::Quotients, GpuPhase::Fri]
}

/// Proves `job` (matmul with the AIR) on the CPU and on the GPU; see [`assert_identical_with`].
fn assert_identical(job: &Job, proof: ProofConfig, phases: &[GpuPhase]) -> GpuBackendStats {
    assert_identical_with(job, proof, MatmulProtocol::Air, phases)
}

/// Proves `job` on the CPU and on the GPU; the envelopes must be byte-identical and the GPU run
/// must have done `phases` on the device with no fallback.
fn assert_identical_with(
    job: &Job,
    proof: ProofConfig,
    matmul: MatmulProtocol,
    phases: &[GpuPhase],
) -> GpuBackendStats {
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    let cpu = prove_with_output(job, &ProveConfig { proof, backend: ProverBackend::Cpu, matmul }).unwrap();
    GpuBackend::reset_stats();
    let gpu = prove_with_output(job, &ProveConfig { proof, backend: ProverBackend::Gpu, matmul }).unwrap();
    let stats = GpuBackend::stats();
    eprintln!("{stats:#?}");
    assert_eq!(cpu.backend, ProverBackend::Cpu);
    assert_eq!(gpu.backend, ProverBackend::Gpu);
    assert_eq!(stats.fallbacks(), 0, "no device operation may have failed: {stats:?}");
    for &phase in phases {
        assert!(stats.phase(phase).gpu_ops > 0, "{phase:?} never ran on the device: {stats:?}");
    }
    if phases.contains(&GpuPhase::Quotients) {
        // Numerators and the combination, both on the device.
        assert!(stats.phase(GpuPhase::Quotients).gpu_ops >= 2, "{stats:?}");
        assert_eq!(stats.phase(GpuPhase::Quotients).cpu_ops, 0, "{stats:?}");
    }
    assert!(stats.transfers.host_to_device > 0 && stats.transfers.device_to_host > 0);
    // Coefficients go from interpolation to evaluation (the AIR), and evaluations to the Merkle
    // tree, without leaving the device.
    let min_hits = if phases.contains(&GpuPhase::Interpolate) { 2 } else { 1 };
    assert!(stats.resident_hits >= min_hits, "no column stayed on the device between phases: {stats:?}");
    assert_eq!(gpu.encoded.proof_hash, cpu.encoded.proof_hash, "proof hashes differ");
    assert!(gpu.encoded.bytes == cpu.encoded.bytes, "GPU and CPU envelopes differ");
    let policy = VerifyPolicy { min_security_bits: 0 };
    verify(&gpu.envelope, job, &policy).unwrap();
    stats
}

fn worker() -> WorkerAddress {
    WorkerAddress::from_u128(0x5a6e)
}

#[test]
fn gpu_backend_matmul_proof_is_byte_identical_to_simd() {
    let job = Job::matmul(JobId::from_u128(11), worker(), MatmulJob::from_seed(16, [3; 32]));
    assert_identical(&job, ProofConfig::insecure_for_tests(), &device_phases(false));
}

/// 2^18 rows: coefficient vectors above 2^16 (the SIMD backend's transposed layout), production
/// security parameters (grinding, fold step 3).
#[test]
fn gpu_backend_large_matmul_production_config_is_byte_identical() {
    let job = Job::matmul(JobId::from_u128(12), worker(), MatmulJob::from_seed(512, [9; 32]));
    let stats = assert_identical(&job, ProofConfig::PRODUCTION, &device_phases(false));
    // At this size nothing of the heavy work is left to the CPU: every Merkle layer came from the
    // device, and so did the constraints and quotients.
    for phase in [GpuPhase::Merkle, GpuPhase::Constraints, GpuPhase::Quotients, GpuPhase::Evaluate] {
        assert_eq!(stats.phase(phase).cpu_ops, 0, "{phase:?} ran on the CPU: {stats:?}");
    }
}

/// The opening protocol (the default) on the device: the coefficient columns' extension, their
/// Merkle tree, the DEEP quotients, FRI and grinding, byte-identical to the SIMD backend.
#[test]
fn gpu_backend_matmul_opening_proof_is_byte_identical_to_simd() {
    let job = Job::matmul(JobId::from_u128(16), worker(), MatmulJob::from_seed(64, [3; 32]));
    assert_identical_with(&job, ProofConfig::insecure_for_tests(), MatmulProtocol::Opening, &opening_phases());
    // Production parameters (the opening's own 96-bit config, fold step 3), 2^18 values in 64
    // columns: every Merkle layer and extension on the device.
    let job = Job::matmul(JobId::from_u128(17), worker(), MatmulJob::from_seed(512, [9; 32]));
    let stats = assert_identical_with(&job, ProofConfig::PRODUCTION, MatmulProtocol::Opening, &opening_phases());
    for phase in [GpuPhase::Merkle, GpuPhase::Evaluate] {
        assert_eq!(stats.phase(phase).cpu_ops, 0, "{phase:?} ran on the CPU: {stats:?}");
    }
}

#[test]
fn gpu_backend_vm_proof_is_byte_identical_to_simd() {
    assert_identical(&crate::tests::vm_job(), ProofConfig::insecure_for_tests(), &device_phases(true));
}

#[test]
fn gpu_backend_vm_jump_proof_is_byte_identical_to_simd() {
    // r1 = 6! by a loop (branches, so the jump AIR's interaction trace is exercised).
    let job = crate::tests::factorial_job(6, 64);
    assert_identical(&job, ProofConfig::insecure_for_tests(), &device_phases(true));
}

#[test]
fn gpu_backend_faults_are_redone_on_the_cpu_and_the_proof_is_unchanged() {
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    let job = Job::matmul(JobId::from_u128(15), worker(), MatmulJob::from_seed(16, [5; 32]));
    let proof = ProofConfig::insecure_for_tests();
    let cpu = prove_with_output(&job, &ProveConfig { proof, backend: ProverBackend::Cpu, matmul: MatmulProtocol::Air })
        .unwrap();
    GpuBackend::reset_stats();
    GpuBackend::inject_faults(4);
    let gpu = prove_with_output(&job, &ProveConfig { proof, backend: ProverBackend::Gpu, matmul: MatmulProtocol::Air })
        .unwrap();
    let stats = GpuBackend::stats();
    assert_eq!(stats.fallbacks(), 4, "{stats:?}");
    assert!(stats.gpu_ops() > 0, "after the faults the device is used again: {stats:?}");
    assert_eq!(gpu.backend, ProverBackend::Gpu);
    assert!(gpu.encoded.bytes == cpu.encoded.bytes, "a fallback changed the proof");
}

#[test]
fn gpu_backend_silently_wrong_results_never_yield_a_wrong_proof() {
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    let job = Job::matmul(JobId::from_u128(18), worker(), MatmulJob::from_seed(16, [6; 32]));
    let proof = ProofConfig::insecure_for_tests();
    let cpu = prove_with_output(&job, &ProveConfig { proof, backend: ProverBackend::Cpu, matmul: MatmulProtocol::Air })
        .unwrap();
    GpuBackend::inject_corruptions(1_000);
    let redone =
        prove_with_output(&job, &ProveConfig { proof, backend: ProverBackend::Gpu, matmul: MatmulProtocol::Air })
            .unwrap();
    GpuBackend::inject_corruptions(0);
    assert_eq!(redone.backend, ProverBackend::Cpu, "a corrupted GPU proof must be redone on the CPU");
    assert!(redone.encoded.bytes == cpu.encoded.bytes);
    verify(&redone.envelope, &job, &VerifyPolicy { min_security_bits: 0 }).unwrap();
    // Nothing corrupted is kept: the next GPU proof is made (and passes) on the GPU.
    let again =
        prove_with_output(&job, &ProveConfig { proof, backend: ProverBackend::Gpu, matmul: MatmulProtocol::Air })
            .unwrap();
    assert_eq!(again.backend, ProverBackend::Gpu);
    assert!(again.encoded.bytes == cpu.encoded.bytes);
}

#[test]
fn gpu_backend_keeps_small_columns_on_the_cpu() {
    let _lock = device_ready();
    GpuBackend::set_min_log_size(30);
    GpuBackend::reset_stats();
    let job = Job::matmul(JobId::from_u128(16), worker(), MatmulJob::from_seed(8, [1; 32]));
    let gpu = prove_with_output(
        &job,
        &ProveConfig {
            proof: ProofConfig::insecure_for_tests(),
            backend: ProverBackend::Gpu,
            matmul: MatmulProtocol::Air,
        },
    )
    .unwrap();
    let stats = GpuBackend::stats();
    assert_eq!(stats.gpu_ops(), 0, "{stats:?}");
    assert!(stats.phase(GpuPhase::Evaluate).small_on_cpu > 0, "{stats:?}");
    verify(&gpu.envelope, &job, &VerifyPolicy { min_security_bits: 0 }).unwrap();
}

/// Coefficients leave the GPU FFT in the SIMD backend's order on both sides of its layout switch
/// (2^16), and evaluations equal SIMD's on a 4× larger domain.
#[test]
fn gpu_backend_fft_matches_simd_layout_across_the_transpose_threshold() {
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    GpuBackend::reset_stats();
    for log_size in [5u32, 10, 16, 17, 18] {
        let domain = CanonicCoset::new(log_size).circle_domain();
        let values: BaseColumn = seeded(1 << log_size, u64::from(log_size)).into_iter().collect();
        let big = CanonicCoset::new(log_size + 2).circle_domain();
        let simd_tw = SimdBackend::precompute_twiddles(big.half_coset);
        let gpu_tw = GpuBackend::precompute_twiddles(big.half_coset);
        let simd = SimdBackend::interpolate(
            CircleEvaluation::<SimdBackend, BaseField, BitReversedOrder>::new(domain, values.clone()),
            &simd_tw,
        );
        let gpu = GpuBackend::interpolate(
            CircleEvaluation::<GpuBackend, BaseField, BitReversedOrder>::new(domain, values),
            &gpu_tw,
        );
        assert!(gpu.coeffs.as_slice() == simd.coeffs.as_slice(), "coefficients differ at 2^{log_size}");
        let simd_e = SimdBackend::evaluate(&simd, big, &simd_tw);
        let gpu_e = GpuBackend::evaluate(&CircleCoefficients::<GpuBackend>::new(gpu.coeffs.clone()), big, &gpu_tw);
        assert!(gpu_e.values.as_slice() == simd_e.values.as_slice(), "evaluations differ at 2^{log_size}");
    }
    assert_eq!(GpuBackend::stats().fallbacks(), 0);
}

#[test]
fn gpu_transpose_vecs_is_an_involution_that_moves_blocks() {
    for log in [6u32, 9, 17] {
        let orig: Vec<u32> = (0..1u32 << log).collect();
        let mut w = orig.clone();
        transpose_vecs_for_tests(&mut w);
        // 16-word blocks stay intact.
        assert!(w.chunks(16).all(|c| c[0] % 16 == 0 && c.windows(2).all(|p| p[1] == p[0] + 1)));
        if log >= 8 {
            assert_ne!(w, orig, "2^{log}: nothing moved");
        }
        transpose_vecs_for_tests(&mut w);
        assert_eq!(w, orig);
    }
}

#[test]
fn gpu_backend_auto_skips_a_software_adapter() {
    let _lock = device_ready();
    let software = GpuBackend::runtime().map(|c| c.adapter().device_type == wgpu::DeviceType::Cpu).unwrap();
    let job = Job::matmul(JobId::from_u128(17), worker(), MatmulJob::from_seed(8, [2; 32]));
    let auto = prove_with_output(
        &job,
        &ProveConfig {
            proof: ProofConfig::insecure_for_tests(),
            backend: ProverBackend::Auto,
            matmul: MatmulProtocol::Air,
        },
    )
    .unwrap();
    let expected = if software && std::env::var("SAGE_GPU_ALLOW_SOFTWARE").as_deref() != Ok("1") {
        ProverBackend::Cpu
    } else {
        ProverBackend::Gpu
    };
    assert_eq!(auto.backend, expected);
    // One definition of Auto: the public resolver and `select_backend` agree with `prove`.
    assert_eq!(crate::effective_backend(ProverBackend::Auto).unwrap(), expected);
    let selected = super::select_backend(ProverBackend::Auto, &super::GpuOptions::default()).unwrap();
    assert_eq!(matches!(selected, super::BackendSelection::Gpu(_)), expected == ProverBackend::Gpu);
}

/// The four coordinate columns of a secure column of either backend.
fn coords<B: stwo::prover::backend::ColumnOps<BaseField, Column = BaseColumn>>(
    c: &stwo::prover::secure_column::SecureColumnByCoords<B>,
) -> Vec<Vec<BaseField>> {
    c.columns.iter().map(|col| col.as_slice().to_vec()).collect()
}

/// FRI folds on the device equal the SIMD backend's, value for value, for circle-to-line folds and
/// line folds of 1 to 3 steps, across sizes.
#[test]
fn gpu_backend_fri_folds_match_simd() {
    use stwo::core::fields::qm31::SecureField;
    use stwo::prover::fri::FriOps;
    use stwo::prover::line::LineEvaluation;
    use stwo::prover::poly::circle::SecureEvaluation;
    use stwo::prover::secure_column::SecureColumnByCoords;
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    GpuBackend::reset_stats();
    let secure = |n: usize, seed: u64| -> SecureColumnByCoords<SimdBackend> {
        SecureColumnByCoords { columns: std::array::from_fn(|k| seeded(n, seed * 4 + k as u64).into_iter().collect()) }
    };
    let alpha = SecureField::from_m31_array(std::array::from_fn(|k| BaseField::from(1_000_003 * (k as u32 + 1))));
    let mut expected_ops = 0;
    for log_size in [5u32, 8, 11, 14] {
        let domain = CanonicCoset::new(log_size).circle_domain();
        let big = CanonicCoset::new(log_size + 1).circle_domain();
        let simd_tw = SimdBackend::precompute_twiddles(big.half_coset);
        let gpu_tw = GpuBackend::precompute_twiddles(big.half_coset);
        let values = secure(1 << log_size, u64::from(log_size));
        let simd_src = SecureEvaluation::<SimdBackend, BitReversedOrder>::new(domain, values.clone());
        let gpu_src = SecureEvaluation::<GpuBackend, BitReversedOrder>::new(
            domain,
            SecureColumnByCoords { columns: values.columns.clone() },
        );
        let simd_line = SimdBackend::fold_circle_into_line(&simd_src, alpha, &simd_tw);
        let gpu_line = GpuBackend::fold_circle_into_line(&gpu_src, alpha, &gpu_tw);
        expected_ops += 1;
        assert_eq!(gpu_line.domain().coset(), simd_line.domain().coset());
        assert!(coords(&gpu_line.values) == coords(&simd_line.values), "circle fold at 2^{log_size}");
        for fold_step in 1..=3u32 {
            if log_size - 1 < fold_step + 4 {
                continue;
            }
            let simd = SimdBackend::fold_line(&simd_line, alpha, &simd_tw, fold_step);
            let gpu_in = LineEvaluation::<GpuBackend>::new(
                gpu_line.domain(),
                SecureColumnByCoords { columns: gpu_line.values.columns.clone() },
            );
            let gpu = GpuBackend::fold_line(&gpu_in, alpha, &gpu_tw, fold_step);
            expected_ops += 1;
            assert_eq!(gpu.domain().coset(), simd.domain().coset());
            assert!(coords(&gpu.values) == coords(&simd.values), "line fold of 2^{} by {fold_step}", log_size - 1);
        }
    }
    let stats = GpuBackend::stats();
    assert_eq!(stats.phase(GpuPhase::Fri).gpu_ops, expected_ops, "{stats:?}");
    assert_eq!(stats.fallbacks(), 0);
}

/// Sample point, numerator coordinate columns and first linear term of one accumulation.
type Numerators = (
    stwo::core::circle::CirclePoint<stwo::core::fields::qm31::SecureField>,
    Vec<Vec<BaseField>>,
    stwo::core::fields::qm31::SecureField,
);

/// The same accumulations on backend `B` (SIMD or GPU: the same column types).
fn numerators<B: stwo::prover::backend::ColumnOps<BaseField, Column = BaseColumn>>(
    accs: &[Numerators],
) -> Vec<stwo::prover::pcs::quotient_ops::AccumulatedNumerators<B>> {
    accs.iter()
        .map(|(p, cols, a)| stwo::prover::pcs::quotient_ops::AccumulatedNumerators {
            sample_point: *p,
            partial_numerators_acc: stwo::prover::secure_column::SecureColumnByCoords {
                columns: std::array::from_fn(|c| cols[c].iter().copied().collect()),
            },
            first_linear_term_acc: *a,
        })
        .collect()
}

/// The DEEP-quotient combination (denominators, lifting of shorter numerators, extension to the
/// whole domain) on the device equals the SIMD backend's on seeded inputs of several sizes.
#[test]
fn gpu_backend_quotient_combination_matches_simd() {
    use stwo::core::circle::CirclePoint;
    use stwo::core::fields::qm31::SecureField;
    use stwo::prover::QuotientOps;
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    GpuBackend::reset_stats();
    let qm31 = |seed: u64| SecureField::from_m31_array(std::array::from_fn(|k| seeded(1, seed * 8 + k as u64)[0]));
    let mut runs = 0;
    for (lifting, blowup) in [(6u32, 1u32), (10, 2), (13, 1), (15, 2)] {
        let rows = 1usize << (lifting - blowup);
        let big = CanonicCoset::new(lifting + 1).circle_domain();
        let simd_tw = SimdBackend::precompute_twiddles(big.half_coset);
        let gpu_tw = GpuBackend::precompute_twiddles(big.half_coset);
        // Two sample points: one with full-length numerators, one with half-length (lifted).
        let accs: Vec<Numerators> = [(rows, 1u64), (rows / 2, 2)]
            .into_iter()
            .map(|(len, seed)| {
                let point = CirclePoint { x: qm31(seed * 100 + u64::from(lifting)), y: qm31(seed * 100 + 50) };
                let cols = (0..4).map(|c| seeded(len, seed * 1000 + c + u64::from(lifting))).collect();
                (point, cols, qm31(seed * 7 + 3))
            })
            .collect();
        let simd_accs = numerators::<SimdBackend>(&accs);
        let gpu_accs = numerators::<GpuBackend>(&accs);
        let simd = SimdBackend::compute_quotients_and_combine(simd_accs, lifting, blowup, &simd_tw);
        let gpu = GpuBackend::compute_quotients_and_combine(gpu_accs, lifting, blowup, &gpu_tw);
        runs += 1;
        assert_eq!(gpu.domain.log_size(), simd.domain.log_size());
        assert!(coords(&gpu.values) == coords(&simd.values), "quotients differ at 2^{lifting}, blowup 2^{blowup}");
    }
    let stats = GpuBackend::stats();
    assert_eq!(stats.phase(GpuPhase::Quotients).gpu_ops, runs, "{stats:?}");
    assert_eq!(stats.fallbacks(), 0);
}

/// Concurrent GPU proofs (a worker proving two jobs at once) each come out on the device and
/// byte-identical to their CPU proofs: the device's resident caches are never shared mid-proof.
#[test]
fn gpu_backend_concurrent_proofs_do_not_mix() {
    let _lock = device_ready();
    GpuBackend::set_min_log_size(5);
    let proof = ProofConfig::insecure_for_tests();
    let jobs: Vec<Job> = (0..3u8)
        .map(|i| Job::matmul(JobId::from_u128(40 + u128::from(i)), worker(), MatmulJob::from_seed(16, [i + 1; 32])))
        .collect();
    let cpu: Vec<_> = jobs
        .iter()
        .map(|job| {
            prove_with_output(job, &ProveConfig { proof, backend: ProverBackend::Cpu, matmul: MatmulProtocol::Air })
                .unwrap()
        })
        .collect();
    let gpu: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                s.spawn(move || {
                    prove_with_output(
                        job,
                        &ProveConfig { proof, backend: ProverBackend::Gpu, matmul: MatmulProtocol::Air },
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    for ((job, c), g) in jobs.iter().zip(&cpu).zip(&gpu) {
        assert_eq!(g.backend, ProverBackend::Gpu, "a concurrent GPU proof fell back to the CPU");
        assert!(g.encoded.bytes == c.encoded.bytes, "job {} differs from its CPU proof", job.id);
        verify(&g.envelope, job, &VerifyPolicy { min_security_bits: 0 }).unwrap().check_output(&c.output).unwrap();
    }
}
