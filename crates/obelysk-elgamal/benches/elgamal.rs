//! Criterion benchmarks, each beside its baseline in the same run.
//!
//! `cargo bench -p obelysk-elgamal` (add `-- --quick` for a short run). The first group also
//! prints a direct ratio of Montgomery multiplication to a naive `BigUint` multiply-then-reduce.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use num_bigint::BigUint;
use obelysk_elgamal::{
    BabyStepTable, DEFAULT_BABY_BITS, Scalar, SecretKey, decrypt, encrypt, prove_decryption, prove_key_ownership,
    verify_decryption, verify_key_ownership,
};
use starknet_types_core::felt::Felt;

const P_HEX: &str = "800000000000011000000000000000000000000000000000000000000000001";
const N_HEX: &str = "800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f";

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

    let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(ITERS);
    println!(
        "mod-mul ratio (same run, {ITERS} chained mults): scalar mod n: Montgomery {:.1} ns vs naive BigUint {:.1} ns = {:.1}x; \
         felt mod p: Montgomery {:.1} ns vs naive BigUint {:.1} ns = {:.1}x",
        per(mont_n),
        per(naive_n),
        naive_n.as_secs_f64() / mont_n.as_secs_f64(),
        per(mont_p),
        per(naive_p),
        naive_p.as_secs_f64() / mont_p.as_secs_f64(),
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
    g.bench_function("scalar_mod_n/naive_biguint", |bn| bn.iter(|| (black_box(&ba) * black_box(&bb)) % &n));
    g.bench_function("felt_mod_p/montgomery_starknet_types_core", |bn| bn.iter(|| black_box(fa) * black_box(fb)));
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
