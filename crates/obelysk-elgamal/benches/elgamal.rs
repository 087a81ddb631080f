//! Criterion benchmarks, each beside its baseline in the same run.
//!
//! `cargo bench -p obelysk-elgamal` (add `-- --quick` for a short run). The first group also
//! prints direct ratios of Montgomery multiplication to two baselines: a fair fixed-width one
//! (`crypto-bigint`'s `U256::mul_mod_vartime`: a 256×256→512-bit widening multiply and a
//! fixed-width remainder, no allocation) and a heap-allocating `BigUint` multiply-then-`%`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crypto_bigint::{NonZero, U256};
use num_bigint::BigUint;
use obelysk_elgamal::{
    BabyStepTable, DEFAULT_BABY_BITS, Scalar, SecretKey, decrypt, encrypt, prove_decryption, prove_key_ownership,
    verify_decryption, verify_key_ownership,
};
use starknet_types_core::felt::Felt;

const P_HEX: &str = "800000000000011000000000000000000000000000000000000000000000001";
const N_HEX: &str = "800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f";

/// A modulus as a fixed-width `U256` (the hex constants above, left-padded to 64 digits).
fn u256_modulus(hex: &str) -> NonZero<U256> {
    NonZero::new(U256::from_be_hex(&format!("{hex:0>64}"))).expect("non-zero modulus")
}

fn u256(bytes: [u8; 32]) -> U256 {
    U256::from_be_slice(&bytes)
}

fn operands() -> (Scalar, Scalar) {
    (Scalar::hash_to_nonzero(b"bench", &[b"a"]), Scalar::hash_to_nonzero(b"bench", &[b"b"]))
}

/// Chained (latency-bound) multiplications, timed directly, for a printed ratio.
fn ratio_report() {
    const ITERS: u32 = 200_000;
    let (a, b) = operands();
    let t = Instant::now();
    let mut acc = a;
    for _ in 0..ITERS {
        acc = black_box(acc * b);
    }
    let mont_n = t.elapsed();
    black_box(acc);

    let (fa, fb) = (a.to_felt(), b.to_felt());
    let t = Instant::now();
    let mut facc = fa;
    for _ in 0..ITERS {
        facc = black_box(facc * fb);
    }
    let mont_p = t.elapsed();
    black_box(facc);

    let n = BigUint::parse_bytes(N_HEX.as_bytes(), 16).expect("n");
    let p = BigUint::parse_bytes(P_HEX.as_bytes(), 16).expect("p");
    let (ba, bb) = (BigUint::from_bytes_be(&a.to_be_bytes()), BigUint::from_bytes_be(&b.to_be_bytes()));
    let t = Instant::now();
    let mut bacc = ba.clone();
    for _ in 0..ITERS {
        bacc = black_box((&bacc * &bb) % &n);
    }
    let naive_n = t.elapsed();
    // Cross-check: both computed a * b^ITERS mod n.
    assert_eq!(BigUint::from_bytes_be(&acc.to_be_bytes()), bacc, "Montgomery and naive results differ");
    let t = Instant::now();
    let mut pacc = ba;
    for _ in 0..ITERS {
        pacc = black_box((&pacc * &bb) % &p);
    }
    let naive_p = t.elapsed();
    black_box(pacc);

    // The fair baseline: the same products at fixed width, reduced by division, no allocation.
    let (wn, wp) = (u256_modulus(N_HEX), u256_modulus(P_HEX));
    let (ua, ub) = (u256(a.to_be_bytes()), u256(b.to_be_bytes()));
    let t = Instant::now();
    let mut wacc = ua;
    for _ in 0..ITERS {
        wacc = black_box(wacc.mul_mod_vartime(&ub, &wn));
    }
    let fixed_n = t.elapsed();
    assert_eq!(wacc, acc.to_uint(), "Montgomery and fixed-width results differ");
    let t = Instant::now();
    let mut wpacc = ua;
    for _ in 0..ITERS {
        wpacc = black_box(wpacc.mul_mod_vartime(&ub, &wp));
    }
    let fixed_p = t.elapsed();
    black_box(wpacc);

    let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(ITERS);
    let ratio = |base: Duration, ours: Duration| base.as_secs_f64() / ours.as_secs_f64();
    println!("mod-mul (same run, {ITERS} chained multiplications; ratio = baseline / Montgomery):");
    println!(
        "  scalar mod n: Montgomery {:.1} ns | fixed-width U256 mul_mod {:.1} ns = {:.2}x | BigUint {:.1} ns = {:.2}x",
        per(mont_n),
        per(fixed_n),
        ratio(fixed_n, mont_n),
        per(naive_n),
        ratio(naive_n, mont_n),
    );
    println!(
        "  felt mod p:   Montgomery {:.1} ns | fixed-width U256 mul_mod {:.1} ns = {:.2}x | BigUint {:.1} ns = {:.2}x",
        per(mont_p),
        per(fixed_p),
        ratio(fixed_p, mont_p),
        per(naive_p),
        ratio(naive_p, mont_p),
    );
}

fn bench_mulmod(c: &mut Criterion) {
    ratio_report();
    let (a, b) = operands();
    let n = BigUint::parse_bytes(N_HEX.as_bytes(), 16).expect("n");
    let p = BigUint::parse_bytes(P_HEX.as_bytes(), 16).expect("p");
    let (ba, bb) = (BigUint::from_bytes_be(&a.to_be_bytes()), BigUint::from_bytes_be(&b.to_be_bytes()));
    let (fa, fb) = (a.to_felt(), b.to_felt());
    let mut g = c.benchmark_group("mulmod");
    g.bench_function("scalar_mod_n/montgomery_crypto_bigint", |bn| bn.iter(|| black_box(a) * black_box(b)));
    let (wn, wp) = (u256_modulus(N_HEX), u256_modulus(P_HEX));
    let (ua, ub) = (u256(a.to_be_bytes()), u256(b.to_be_bytes()));
    g.bench_function("scalar_mod_n/fixed_width_u256_mul_mod", |bn| {
        bn.iter(|| black_box(ua).mul_mod_vartime(black_box(&ub), &wn))
    });
    g.bench_function("scalar_mod_n/naive_biguint", |bn| bn.iter(|| (black_box(&ba) * black_box(&bb)) % &n));
    g.bench_function("felt_mod_p/montgomery_starknet_types_core", |bn| bn.iter(|| black_box(fa) * black_box(fb)));
    g.bench_function("felt_mod_p/fixed_width_u256_mul_mod", |bn| {
        bn.iter(|| black_box(ua).mul_mod_vartime(black_box(&ub), &wp))
    });
    g.bench_function("felt_mod_p/naive_biguint", |bn| bn.iter(|| (black_box(&ba) * black_box(&bb)) % &p));
    g.finish();
}

fn bench_elgamal(c: &mut Criterion) {
    let sk = SecretKey::from_seed(&[1; 32]);
    let pk = sk.public_key();
    let ct_a = encrypt(123_456, &pk).expect("rng");
    let ct_b = encrypt(654_321, &pk).expect("rng");
    let mut g = c.benchmark_group("elgamal");
    g.bench_function("encrypt", |bn| bn.iter(|| encrypt(black_box(42), &pk).expect("rng")));
    g.bench_function("add_ciphertexts", |bn| bn.iter(|| black_box(&ct_a) + black_box(&ct_b)));
    g.bench_function("add_public_amount", |bn| bn.iter(|| black_box(&ct_a).add_amount(7)));
    g.bench_function("decrypt_to_point", |bn| bn.iter(|| obelysk_elgamal::decrypt_to_point(black_box(&ct_a), &sk)));
    let context = [Felt::from(1u8)];
    g.bench_function("prove_key_ownership", |bn| bn.iter(|| prove_key_ownership(&sk, &context).expect("rng")));
    let pok = prove_key_ownership(&sk, &context).expect("rng");
    g.bench_function("verify_key_ownership", |bn| bn.iter(|| verify_key_ownership(&pk, &pok, &context)));
    g.bench_function("prove_decryption", |bn| {
        bn.iter(|| prove_decryption(&sk, &ct_a, 123_456, &context).expect("prove"))
    });
    let cp = prove_decryption(&sk, &ct_a, 123_456, &context).expect("prove");
    g.bench_function("verify_decryption", |bn| bn.iter(|| verify_decryption(&pk, &ct_a, 123_456, &cp, &context)));
    g.finish();
}

fn bench_bsgs(c: &mut Criterion) {
    let sk = SecretKey::from_seed(&[2; 32]);
    let pk = sk.public_key();
    let t = Instant::now();
    let table = BabyStepTable::build(DEFAULT_BABY_BITS).expect("table");
    println!("baby-step table build (baby_bits = {DEFAULT_BABY_BITS}): {:.2?}", t.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("table.bsgs");
    table.save(&path).expect("save");
    let t = Instant::now();
    let table = BabyStepTable::load(&path).expect("load");
    println!("baby-step table load (baby_bits = {DEFAULT_BABY_BITS}): {:.2?}", t.elapsed());

    // Worst cases: the largest amount of each range.
    let ct32 = encrypt((1 << 32) - 1, &pk).expect("rng");
    let ct40 = encrypt((1 << 40) - 1, &pk).expect("rng");
    let mut g = c.benchmark_group("bsgs_cached_table_2^20");
    g.sample_size(10);
    g.bench_function("decrypt_32bit_worst_case", |bn| {
        bn.iter(|| decrypt(&ct32, &sk, &table, 1 << 32).expect("in range"))
    });
    g.bench_function("decrypt_40bit_worst_case", |bn| {
        bn.iter(|| decrypt(&ct40, &sk, &table, 1 << 40).expect("in range"))
    });
    g.bench_function("build_table_2^16", |bn| bn.iter(|| BabyStepTable::build(16).expect("table")));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_mulmod, bench_elgamal, bench_bsgs
}
criterion_main!(benches);
