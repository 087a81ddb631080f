//! Kernels against Stwo's CPU code, bit for bit, on seeded random inputs. Every test here has
//! `gpu` in its path, so nextest runs them one at a time (`.config/nextest.toml`). A test that
//! finds no adapter fails; it never skips.

use stwo::core::fields::m31::{BaseField, P};
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher;
use stwo::prover::backend::CpuBackend;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps};
use stwo::prover::vcs_lifted::ops::MerkleOpsLifted;

use super::*;
use crate::config::ProverBackend;

/// SplitMix64: a seeded, dependency-free source of test inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A canonical M31 value; about one in eight is an edge value (0, 1, p - 1, 2^16, ...).
    fn m31(&mut self) -> BaseField {
        const EDGES: [u32; 8] = [0, 1, 2, P - 1, P - 2, 1 << 16, (1 << 16) - 1, 1 << 30];
        let r = self.next_u64();
        if r.is_multiple_of(8) {
            BaseField::from_u32_unchecked(EDGES[((r >> 8) % 8) as usize])
        } else {
            BaseField::from_u32_unchecked(((r >> 16) % u64::from(P)) as u32)
        }
    }

    fn m31s(&mut self, n: usize) -> Vec<BaseField> {
        (0..n).map(|_| self.m31()).collect()
    }
}

fn raw(values: &[BaseField]) -> Vec<u32> {
    values.iter().map(|v| v.0).collect()
}

/// The device for a GPU test: fails (never skips) without an adapter, and says which one it got.
/// `SAGE_GPU_EXPECT_ADAPTER` (a substring of the adapter name, e.g. `llvmpipe` or `NVIDIA`) makes
/// the test assert it ran on that adapter.
fn gpu() -> GpuContext {
    let ctx = GpuContext::new(&GpuOptions::default()).unwrap_or_else(|e| {
        panic!(
            "GPU test found no usable wgpu adapter ({e}). Install a Vulkan driver; without a GPU, Mesa lavapipe: \
             apt-get install -y mesa-vulkan-drivers libvulkan1 (VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)"
        )
    });
    let a = ctx.adapter();
    eprintln!("GPU test adapter: {:?} ({:?}, {:?}, driver {:?})", a.name, a.device_type, a.backend, a.driver);
    assert!(!a.name.is_empty(), "adapter has no name");
    if let Ok(expect) = std::env::var("SAGE_GPU_EXPECT_ADAPTER") {
        assert!(
            a.name.to_lowercase().contains(&expect.to_lowercase()),
            "ran on adapter {:?}, expected one matching SAGE_GPU_EXPECT_ADAPTER={expect:?}",
            a.name
        );
    }
    ctx
}

const SIZES: [usize; 8] = [1, 7, 255, 256, 257, 1000, 4096, 1 << 16];

#[test]
fn naga_validates_every_shader() {
    validate_shaders().unwrap();
    assert_eq!(shader_sources().len(), 9);
}

#[test]
fn naga_rejects_a_broken_shader() {
    // The validator is really run: a type error is caught.
    let src = "fn f() -> u32 { return 1.0; }";
    let module = naga::front::wgsl::parse_str(src);
    let rejected = match module {
        Err(_) => true,
        Ok(m) => naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&m)
            .is_err(),
    };
    assert!(rejected);
}

#[test]
fn gpu_m31_add_sub_mul_match_cpu() {
    let gpu = gpu();
    let mut rng = Rng(1);
    for n in SIZES {
        let (a, b) = (rng.m31s(n), rng.m31s(n));
        let (da, db) = (gpu.upload_m31(&a), gpu.upload_m31(&b));
        let add: Vec<u32> = a.iter().zip(&b).map(|(x, y)| (*x + *y).0).collect();
        let sub: Vec<u32> = a.iter().zip(&b).map(|(x, y)| (*x - *y).0).collect();
        let mul: Vec<u32> = a.iter().zip(&b).map(|(x, y)| (*x * *y).0).collect();
        assert_eq!(gpu.download(&gpu.m31_add(&da, &db).unwrap()).unwrap(), add, "add, n = {n}");
        assert_eq!(gpu.download(&gpu.m31_sub(&da, &db).unwrap()).unwrap(), sub, "sub, n = {n}");
        assert_eq!(gpu.download(&gpu.m31_mul(&da, &db).unwrap()).unwrap(), mul, "mul, n = {n}");
    }
    // Every pair of edge values.
    let edges: Vec<u32> = vec![0, 1, 2, P - 1, P - 2, 1 << 16, (1 << 16) - 1, 1 << 30, (1 << 30) - 1, 1 << 15];
    let (a, b): (Vec<u32>, Vec<u32>) = edges.iter().flat_map(|&x| edges.iter().map(move |&y| (x, y))).unzip();
    let want: Vec<u32> = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| (BaseField::from_u32_unchecked(x) * BaseField::from_u32_unchecked(y)).0)
        .collect();
    assert_eq!(gpu.m31_mul_slices(&a, &b).unwrap(), want);
    let t = gpu.transfers();
    assert!(t.host_to_device > 0 && t.device_to_host > 0);
}

#[test]
fn gpu_qm31_mul_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng(2);
    for n in [1usize, 3, 256, 1000, 1 << 14] {
        let a: Vec<SecureField> =
            (0..n).map(|_| SecureField::from_m31_array(std::array::from_fn(|_| rng.m31()))).collect();
        let b: Vec<SecureField> =
            (0..n).map(|_| SecureField::from_m31_array(std::array::from_fn(|_| rng.m31()))).collect();
        let flat = |v: &[SecureField]| v.iter().flat_map(|x| x.to_m31_array().map(|m| m.0)).collect::<Vec<u32>>();
        let want: Vec<SecureField> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
        let got = gpu.qm31_mul(&gpu.upload(&flat(&a)), &gpu.upload(&flat(&b))).unwrap();
        assert_eq!(gpu.download(&got).unwrap(), flat(&want), "n = {n}");
    }
}

#[test]
fn gpu_quotient_numerators_match_cpu() {
    let gpu = gpu();
    let mut rng = Rng(5);
    let qm31 = |rng: &mut Rng| SecureField::from_m31_array(std::array::from_fn(|_| rng.m31()));
    for (k, rows, len) in [(1usize, 16usize, 64usize), (3, 256, 1024), (7, 4096, 4096), (2, 1 << 15, 1 << 17)] {
        let cols: Vec<Vec<BaseField>> = (0..k).map(|_| rng.m31s(len)).collect();
        let c: Vec<SecureField> = (0..k).map(|_| qm31(&mut rng)).collect();
        let b: Vec<SecureField> = (0..k).map(|_| qm31(&mut rng)).collect();
        // Stwo's accumulate_row_partial_numerators: Σ_j (c_j·v_j − b_j).
        let want: Vec<SecureField> = (0..rows)
            .map(|r| {
                (0..k)
                    .map(|j| c[j] * cols[j][r] - b[j])
                    .fold(SecureField::from_m31_array([BaseField::from(0); 4]), |x, y| x + y)
            })
            .collect();
        let device: Vec<GpuColumn> = cols.iter().map(|c| gpu.upload_m31(c)).collect();
        let (got, on_device) = gpu
            .quotient_numerators(
                &device.iter().collect::<Vec<_>>(),
                rows,
                &c.iter().map(|x| x.to_m31_array().map(|v| v.0)).collect::<Vec<_>>(),
                b.iter()
                    .fold(SecureField::from_m31_array([BaseField::from(0); 4]), |x, y| x + *y)
                    .to_m31_array()
                    .map(|v| v.0),
            )
            .unwrap();
        for (coord, got) in got.iter().enumerate() {
            let expect: Vec<u32> = want.iter().map(|w| w.to_m31_array()[coord].0).collect();
            assert_eq!(raw(got.as_slice()), expect, "k = {k}, rows = {rows}, coordinate {coord}");
            // The device copy kept for the combination holds the same words.
            assert_eq!(gpu.download(&on_device[coord]).unwrap(), expect, "device copy, coordinate {coord}");
        }
    }
    // Shapes the kernel does not take are typed errors.
    let one = gpu.upload_m31(&rng.m31s(8));
    assert!(matches!(gpu.quotient_numerators(&[&one], 16, &[[0; 4]], [0; 4]), Err(GpuError::Unsupported(_))));
    assert!(matches!(gpu.quotient_numerators(&[], 8, &[], [0; 4]), Err(GpuError::Unsupported(_))));
}

/// Grinding finds exactly the nonce Stwo's SIMD grinder finds (the smallest), for several channel
/// states and difficulties, through the backend's `GrindOps`.
#[test]
fn gpu_grind_finds_the_same_nonce_as_simd() {
    use stwo::core::channel::{Blake2sChannel, Channel};
    use stwo::core::proof_of_work::GrindOps;
    use stwo::prover::backend::simd::SimdBackend;
    let _lock = BACKEND_TEST_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = gpu();
    GpuBackend::set_min_log_size(5);
    GpuBackend::reset_stats();
    let mut rng = Rng(11);
    let mut runs = 0;
    for (round, pow_bits) in [1u32, 6, 10, 14, 17].into_iter().enumerate() {
        let mut channel = Blake2sChannel::default();
        channel.mix_u32s(&[rng.next_u64() as u32, round as u32]);
        let simd = SimdBackend::grind(&channel, pow_bits);
        let gpu = GpuBackend::grind(&channel, pow_bits);
        runs += 1;
        assert_eq!(gpu, simd, "{pow_bits} bits");
        assert!(channel.verify_pow_nonce(pow_bits, gpu));
    }
    // 21 bits: most channel states have no good nonce among the first 2^20, so the search goes on
    // to hi = 1, 2, ...; find such a state and check that case too.
    let mut past_first_hi = false;
    for seed in 0..16u32 {
        let mut channel = Blake2sChannel::default();
        channel.mix_u32s(&[0x5a6e, seed]);
        let simd = SimdBackend::grind(&channel, 21);
        let gpu = GpuBackend::grind(&channel, 21);
        runs += 1;
        assert_eq!(gpu, simd, "21 bits, seed {seed}");
        if simd >> 32 > 0 {
            past_first_hi = true;
            break;
        }
    }
    assert!(past_first_hi, "no channel state needed hi > 0 (each does with probability ~0.6)");
    let stats = GpuBackend::stats();
    assert_eq!(stats.phase(GpuPhase::Grind).gpu_ops, runs, "{stats:?}");
    assert_eq!(stats.fallbacks(), 0);
}

#[test]
fn gpu_bit_reverse_matches_stwo() {
    let gpu = gpu();
    let mut rng = Rng(3);
    for log in [0u32, 1, 2, 3, 5, 8, 9, 12, 16] {
        let mut v = raw(&rng.m31s(1 << log));
        let col = gpu.upload(&v);
        gpu.bit_reverse(&col).unwrap();
        stwo::core::utils::bit_reverse(&mut v);
        assert_eq!(gpu.download(&col).unwrap(), v, "log n = {log}");
    }
    assert!(gpu.bit_reverse(&gpu.upload(&[1, 2, 3])).is_err());
}

#[test]
fn gpu_circle_fft_agrees_with_direct_evaluation_at_large_sizes() {
    // An oracle independent of any FFT: evaluations at sampled domain points equal the polynomial
    // evaluated directly (`eval_at_point`). Covers sizes ≥ 2^17 too.
    use stwo::core::utils::bit_reverse_index;
    let gpu = gpu();
    let mut rng = Rng(9);
    for (log_coeffs, log_domain) in [(16u32, 17u32), (17, 17), (17, 18)] {
        let domain = CanonicCoset::new(log_domain).circle_domain();
        let tree = CpuBackend::precompute_twiddles(CanonicCoset::new(log_domain + 1).circle_domain().half_coset);
        let coeffs = rng.m31s(1 << log_coeffs);
        let poly = CircleCoefficients::<CpuBackend>::new(coeffs.clone());
        let mut padded = raw(&coeffs);
        padded.resize(domain.size(), 0);
        let col = gpu.upload(&padded);
        gpu.evaluate(&col, domain, &tree).unwrap();
        let evals = gpu.download(&col).unwrap();
        for _ in 0..8 {
            let i = (rng.next_u64() % domain.size() as u64) as usize;
            let point = domain.at(bit_reverse_index(i, log_domain));
            assert_eq!(
                SecureField::from(BaseField::from_u32_unchecked(evals[i])),
                poly.eval_at_point(point.into_ef()),
                "2^{log_coeffs} coefficients on 2^{log_domain}, position {i}"
            );
        }
    }
}

/// Both M31 multipliers — one 64-bit product (`SHADER_INT64`) and 32-bit limbs — agree with the
/// CPU on products (edge values included) and whole FFTs. `SAGE_GPU_EXPECT_INT64=1` asserts that
/// the adapter has the 64-bit path (lavapipe and NVIDIA's Vulkan driver do).
#[test]
fn gpu_int64_and_u32_multipliers_match_cpu() {
    let default = gpu();
    let limbs = GpuContext::new(&GpuOptions { use_int64: false, ..GpuOptions::default() }).unwrap();
    assert!(!limbs.int64(), "use_int64 = false must force the 32-bit path");
    eprintln!("adapter SHADER_INT64 path: {}", default.int64());
    if std::env::var("SAGE_GPU_EXPECT_INT64").as_deref() == Ok("1") {
        assert!(default.int64(), "the adapter was expected to have SHADER_INT64");
    }
    let mut rng = Rng(9);
    let edges = [0u32, 1, 2, P - 1, P - 2, 1 << 16, (1 << 16) - 1, 1 << 30, (1 << 31) - 2];
    let mut a: Vec<BaseField> =
        edges.iter().flat_map(|&x| edges.iter().map(move |_| x)).map(BaseField::from_u32_unchecked).collect();
    let mut b: Vec<BaseField> =
        edges.iter().flat_map(|_| edges.iter().copied()).map(BaseField::from_u32_unchecked).collect();
    a.extend(rng.m31s(1 << 14));
    b.extend(rng.m31s(1 << 14));
    let want: Vec<u32> = a.iter().zip(&b).map(|(x, y)| (*x * *y).0).collect();
    let domain = CanonicCoset::new(12).circle_domain();
    let tree = CpuBackend::precompute_twiddles(CanonicCoset::new(12).half_coset());
    let coeffs = rng.m31s(1 << 11);
    let want_evals = CpuBackend::evaluate(&CircleCoefficients::<CpuBackend>::new(coeffs.clone()), domain, &tree).values;
    for ctx in [&default, &limbs] {
        assert_eq!(
            ctx.download(&ctx.m31_mul(&ctx.upload_m31(&a), &ctx.upload_m31(&b)).unwrap()).unwrap(),
            want,
            "int64 = {}",
            ctx.int64()
        );
        let mut padded = raw(&coeffs);
        padded.resize(domain.size(), 0);
        let col = ctx.upload(&padded);
        ctx.evaluate(&col, domain, &tree).unwrap();
        assert_eq!(ctx.download(&col).unwrap(), raw(&want_evals), "FFT, int64 = {}", ctx.int64());
    }
}

#[test]
fn gpu_circle_fft_matches_cpu_backend() {
    let gpu = gpu();
    let mut rng = Rng(4);
    // (coefficient log size, domain log size, twiddle tree log size)
    for (log_coeffs, log_domain, log_tree) in
        [(3, 3, 3), (4, 4, 6), (5, 6, 6), (8, 9, 10), (10, 10, 10), (12, 13, 13), (16, 16, 16)]
    {
        let domain = CanonicCoset::new(log_domain).circle_domain();
        let tree = CpuBackend::precompute_twiddles(CanonicCoset::new(log_tree).half_coset());
        let coeffs = rng.m31s(1 << log_coeffs);
        // evaluate (with low-degree extension to the domain)
        let want = CpuBackend::evaluate(&CircleCoefficients::<CpuBackend>::new(coeffs.clone()), domain, &tree).values;
        let mut padded = raw(&coeffs);
        padded.resize(domain.size(), 0);
        let col = gpu.upload(&padded);
        gpu.evaluate(&col, domain, &tree).unwrap();
        assert_eq!(gpu.download(&col).unwrap(), raw(&want), "evaluate 2^{log_coeffs} on 2^{log_domain}");
        // interpolate back, on the device, from the device-resident evaluations
        gpu.interpolate(&col, domain, &tree).unwrap();
        let want_coeffs =
            CpuBackend::interpolate(CircleEvaluation::<CpuBackend, BaseField, _>::new(domain, want), &tree).coeffs;
        let got = gpu.download(&col).unwrap();
        assert_eq!(got, raw(&want_coeffs), "interpolate 2^{log_domain}");
        assert_eq!(&got[..coeffs.len()], raw(&coeffs).as_slice(), "round trip 2^{log_coeffs}");
        // interpolate random evaluations (not of low degree)
        let evals = rng.m31s(domain.size());
        let want =
            CpuBackend::interpolate(CircleEvaluation::<CpuBackend, BaseField, _>::new(domain, evals.clone()), &tree);
        let col = gpu.upload(&raw(&evals));
        gpu.interpolate(&col, domain, &tree).unwrap();
        assert_eq!(gpu.download(&col).unwrap(), raw(&want.coeffs), "interpolate random 2^{log_domain}");
    }
    let small = CanonicCoset::new(2).circle_domain();
    let tree = CpuBackend::precompute_twiddles(CanonicCoset::new(2).half_coset());
    assert!(gpu.evaluate(&gpu.upload(&[1, 2, 3, 4]), small, &tree).is_err(), "domains < 8 stay on the CPU");
}

fn cpu_leaves(columns: &[&Vec<BaseField>], lifting_log_size: u32) -> Vec<u32> {
    let leaves = <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_leaves(columns, lifting_log_size);
    leaves.iter().flat_map(|h| bytemuck::cast_slice::<u8, u32>(&h.0).to_vec()).collect()
}

#[test]
fn gpu_blake2s_merkle_leaves_match_stwo() {
    let gpu = gpu();
    let mut rng = Rng(5);
    // Column log sizes (increasing), lifting log size. Groups of > 16 columns exercise the streaming
    // buffer across several blocks; a group of exactly 16 ends on a full, not yet compressed block.
    let cases: Vec<(Vec<u32>, u32)> = vec![
        (vec![], 3),
        (vec![1], 1),
        (vec![3], 3),
        (vec![3], 6),
        (vec![4; 16], 4),
        (vec![4; 17], 4),
        (vec![2, 2, 3, 5, 5, 5, 8], 8),
        (vec![3, 3, 3, 6, 6, 9], 11),
        ([vec![5; 20], vec![7; 33], vec![10; 3]].concat(), 10),
        (vec![16; 4], 16),
    ];
    for (logs, lifting) in cases {
        let columns: Vec<Vec<BaseField>> = logs.iter().map(|&l| rng.m31s(1 << l)).collect();
        let refs: Vec<&Vec<BaseField>> = columns.iter().collect();
        let slices: Vec<&[BaseField]> = columns.iter().map(|c| c.as_slice()).collect();
        let want = cpu_leaves(&refs, lifting);
        let got = gpu.download(&gpu.build_leaves(&slices, lifting).unwrap()).unwrap();
        assert_eq!(got, want, "columns 2^{logs:?}, lifting 2^{lifting}");
    }
}

/// Leaves built in chunks (as on a device whose storage-binding limit cannot hold every leaf's
/// streaming state) equal Stwo's, whatever the chunk size.
#[test]
fn gpu_blake2s_chunked_leaves_match_stwo() {
    let gpu = gpu();
    let mut rng = Rng(12);
    let cases: Vec<(Vec<u32>, u32)> = vec![
        (vec![1], 4),
        (vec![3], 6),
        (vec![2, 2, 3, 5, 5, 5, 8], 8),
        (vec![3, 3, 3, 6, 6, 9], 11),
        ([vec![5; 20], vec![7; 17], vec![10; 3]].concat(), 12),
        (vec![12; 3], 12),
    ];
    for (logs, lifting) in cases {
        let columns: Vec<Vec<BaseField>> = logs.iter().map(|&l| rng.m31s(1 << l)).collect();
        let refs: Vec<&Vec<BaseField>> = columns.iter().collect();
        let want = cpu_leaves(&refs, lifting);
        let device: Vec<GpuColumn> = columns.iter().map(|c| gpu.upload_m31(c)).collect();
        let device: Vec<&GpuColumn> = device.iter().collect();
        for chunk in [2usize, 4, 16, 256, 1 << 20] {
            let got = gpu.download(&gpu.build_leaves_chunked(&device, lifting, chunk).unwrap()).unwrap();
            assert_eq!(got, want, "columns 2^{logs:?}, lifting 2^{lifting}, chunks of {chunk}");
        }
    }
}

#[test]
fn gpu_blake2s_merkle_layers_and_root_match_stwo() {
    let gpu = gpu();
    let mut rng = Rng(6);
    for log in [1u32, 2, 5, 10, 14] {
        let columns: Vec<Vec<BaseField>> = (0..5).map(|_| rng.m31s(1 << log)).collect();
        let refs: Vec<&Vec<BaseField>> = columns.iter().collect();
        let slices: Vec<&[BaseField]> = columns.iter().map(|c| c.as_slice()).collect();
        let mut cpu_layer = <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_leaves(&refs, log);
        let leaves = gpu.build_leaves(&slices, log).unwrap();
        // one layer
        let next = gpu.build_next_layer(&leaves).unwrap();
        let cpu_next = <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer(&cpu_layer);
        let flat = |l: &[stwo::core::vcs::blake2_hash::Blake2sHash]| {
            l.iter().flat_map(|h| bytemuck::cast_slice::<u8, u32>(&h.0).to_vec()).collect::<Vec<u32>>()
        };
        assert_eq!(gpu.download(&next).unwrap(), flat(&cpu_next), "first layer above 2^{log} leaves");
        // the root
        while cpu_layer.len() > 1 {
            cpu_layer = <CpuBackend as MerkleOpsLifted<Blake2sMerkleHasher>>::build_next_layer(&cpu_layer);
        }
        assert_eq!(gpu.merkle_root(leaves).unwrap(), cpu_layer[0].0, "root of 2^{log} leaves");
    }
}

#[test]
fn gpu_root_matches_stwo_simd_merkle_prover() {
    // The same root as the SIMD backend's Merkle prover (what `prove` uses today).
    use stwo::prover::backend::simd::SimdBackend;
    use stwo::prover::backend::{Col, Column};
    use stwo::prover::vcs_lifted::prover::MerkleProverLifted;
    let gpu = gpu();
    let mut rng = Rng(7);
    let columns: Vec<Vec<BaseField>> = [4u32, 4, 6, 6, 6, 9].iter().map(|&l| rng.m31s(1 << l)).collect();
    let simd_cols: Vec<Col<SimdBackend, BaseField>> = columns.iter().map(|c| c.iter().copied().collect()).collect();
    let simd_refs: Vec<&Col<SimdBackend, BaseField>> = simd_cols.iter().collect();
    let prover = MerkleProverLifted::<SimdBackend, Blake2sMerkleHasher>::commit(simd_refs, 9, 0);
    let slices: Vec<&[BaseField]> = columns.iter().map(|c| c.as_slice()).collect();
    let root = gpu.merkle_root(gpu.build_leaves(&slices, 9).unwrap()).unwrap();
    assert_eq!(root, prover.root().0);
    assert_eq!(simd_cols[0].to_cpu().len(), 16);
}

#[test]
fn no_adapter_errors_under_gpu_and_falls_back_under_auto() {
    // Deterministic: an instance restricted to no backends finds no adapter on any machine.
    let none = GpuOptions { backends: wgpu::Backends::empty(), ..GpuOptions::default() };
    match select_backend(ProverBackend::Gpu, &none) {
        Err(GpuError::NoAdapter { .. }) => {}
        other => panic!("Gpu without an adapter must be NoAdapter, got {other:?}"),
    }
    assert!(matches!(select_backend(ProverBackend::Auto, &none), Ok(BackendSelection::Cpu)));
    assert!(matches!(select_backend(ProverBackend::Cpu, &none), Ok(BackendSelection::Cpu)));
}

/// Collects log output for the "logged once" check.
struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs in a child process with `VK_ICD_FILENAMES=/nonexistent.json` (the Vulkan loader finds no
/// driver); on its own it checks nothing.
#[test]
fn no_adapter_child_probe() {
    if std::env::var_os("SAGE_GPU_NO_ADAPTER_PROBE").is_none() {
        return;
    }
    let opts = GpuOptions { backends: wgpu::Backends::VULKAN, ..GpuOptions::default() };
    assert!(matches!(select_backend(ProverBackend::Gpu, &opts), Err(GpuError::NoAdapter { .. })));
    // A fresh process: the Auto fallback is logged on the first fallback only.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || LogSink(sink.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..3 {
            assert!(matches!(select_backend(ProverBackend::Auto, &opts), Ok(BackendSelection::Cpu)));
        }
    });
    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches("falling back to the SIMD CPU backend").count(), 1, "log: {log}");
    // The prover itself: `Gpu` is a typed error naming the missing adapter, `Auto` proves on the CPU.
    let job = crate::Job::matmul(
        crate::statement::JobId::from_u128(1),
        crate::statement::WorkerAddress::from_u128(2),
        crate::matmul::MatmulJob::from_seed(4, [1; 32]),
    );
    let proof = crate::ProofConfig::insecure_for_tests();
    match crate::prove(
        &job,
        &crate::ProveConfig { proof, backend: ProverBackend::Gpu, matmul: crate::MatmulProtocol::Air },
    ) {
        Err(crate::ProveError::BackendUnavailable { backend: ProverBackend::Gpu, reason }) => {
            assert!(reason.contains("no GPU adapter"), "{reason}")
        }
        other => panic!("prove on Gpu without an adapter: {other:?}"),
    }
    let auto = crate::prove_with_output(
        &job,
        &crate::ProveConfig { proof, backend: ProverBackend::Auto, matmul: crate::MatmulProtocol::Air },
    )
    .unwrap();
    assert_eq!(auto.backend, ProverBackend::Cpu);
    println!("NO_ADAPTER_PROBE_OK");
}

#[test]
fn no_adapter_with_vk_icd_filenames_nonexistent() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "gpu::tests::no_adapter_child_probe", "--nocapture", "--test-threads=1"])
        .env("SAGE_GPU_NO_ADAPTER_PROBE", "1")
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("NO_ADAPTER_PROBE_OK"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gpu_commit_columns_matches_stark_tree_root() {
    // The whole commit phase of one tree (interpolate → low-degree extension → lifted Blake2s Merkle)
    // on the device gives the same root as Stwo's CommitmentSchemeProver on the SIMD backend.
    use stwo::prover::backend::Column;
    let gpu = gpu();
    let mut rng = Rng(8);
    for (config, log_size, column_logs) in [
        (crate::ProofConfig::insecure_for_tests(), 5u32, vec![5u32]),
        (crate::ProofConfig::PRODUCTION, 6, vec![6, 6, 6]),
        (crate::ProofConfig::PRODUCTION, 10, vec![4, 10, 7, 10, 4, 9]),
        (crate::ProofConfig::insecure_for_tests(), 14, vec![14; 3]),
        // From 2^17 coefficients on, SimdBackend orders coefficients differently from CpuBackend
        // (whose order the GPU follows); the committed evaluations, and so the roots, still agree.
        (crate::ProofConfig::insecure_for_tests(), 17, vec![17, 17]),
    ] {
        let pcs = config.to_pcs().unwrap();
        let evals: Vec<crate::stark::Eval> =
            column_logs.iter().map(|&l| crate::stark::base_eval(l, rng.m31s(1 << l))).collect();
        let host: Vec<Vec<BaseField>> = evals.iter().map(|e| e.values.to_cpu()).collect();
        let want = crate::stark::tree_root(log_size, pcs, evals);
        let tree = CpuBackend::precompute_twiddles(
            CanonicCoset::new(log_size + 1 + pcs.fri_config.log_blowup_factor).circle_domain().half_coset,
        );
        gpu.reset_transfers();
        let slices: Vec<&[BaseField]> = host.iter().map(|c| c.as_slice()).collect();
        let (root, extended) = gpu.commit_columns(&slices, pcs.fri_config.log_blowup_factor, &tree).unwrap();
        assert_eq!(root, want.0, "tree of columns 2^{column_logs:?}, {config:?}");
        assert_eq!(extended.len(), column_logs.len());
        // Only the root comes back; the extended columns stay on the device.
        assert_eq!(gpu.transfers().device_to_host, 32);
    }
}

#[test]
fn gpu_errors_are_typed_not_panics() {
    let gpu = gpu();
    eprintln!("max buffer: {} words", gpu.max_buffer_words());
    // A buffer larger than the device allows is an error, not a panic.
    let too_big = usize::try_from(gpu.max_buffer_words() + 1).unwrap();
    match gpu.try_zeroed(too_big) {
        Err(GpuError::Operation { operation: "allocate", message }) => eprintln!("as expected: {message}"),
        other => panic!("expected an allocation error, got {other:?}"),
    }
    // Operand shapes are checked before anything is dispatched.
    let (a, b) = (gpu.upload(&[1, 2, 3]), gpu.upload(&[1, 2]));
    assert!(matches!(gpu.m31_add(&a, &b), Err(GpuError::Unsupported(_))));
    // The context stays usable afterwards.
    assert_eq!(gpu.m31_mul_slices(&[6], &[7]).unwrap(), vec![42]);
    assert!(!gpu.is_lost());
}
