//! Keystore and signing benchmarks: `cargo bench -p sage-wallet` (`-- --quick` for a short run).
//! The keystore open at the default scrypt cost (2^18) is shown beside starkli's cost (2^13).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sage_wallet::{Derivation, Mnemonic, ScryptParams, Wallet};
use starknet_types_core::felt::Felt;

fn bench_keystore(c: &mut Criterion) {
    let w = Wallet::from_mnemonic(&Mnemonic::from_entropy_32(&[1; 32]), "", Derivation::Braavos, 0).expect("derive");
    let default_json = w.to_keystore_json("pw", ScryptParams::DEFAULT).expect("encrypt");
    let starkli_json = w.to_keystore_json("pw", ScryptParams::STARKLI).expect("encrypt");
    let mut g = c.benchmark_group("keystore");
    g.sample_size(10);
    g.bench_function("open_default_scrypt_2^18", |b| {
        b.iter(|| Wallet::from_keystore_json(black_box(&default_json), "pw").expect("open"))
    });
    g.bench_function("open_starkli_scrypt_2^13", |b| {
        b.iter(|| Wallet::from_keystore_json(black_box(&starkli_json), "pw").expect("open"))
    });
    g.finish();
}

fn bench_keys(c: &mut Criterion) {
    let m = Mnemonic::from_entropy_32(&[2; 32]);
    let w = Wallet::from_mnemonic(&m, "", Derivation::Braavos, 0).expect("derive");
    let hash = Felt::from(0x1234_5678u64);
    let sig = w.signer().sign(hash).expect("sign");
    let mut g = c.benchmark_group("keys");
    g.bench_function("wallet_from_mnemonic_braavos", |b| {
        b.iter(|| Wallet::from_mnemonic(black_box(&m), "", Derivation::Braavos, 0).expect("derive"))
    });
    g.bench_function("ecdsa_sign_rfc6979", |b| b.iter(|| w.signer().sign(black_box(hash)).expect("sign")));
    g.bench_function("ecdsa_verify", |b| {
        b.iter(|| sage_wallet::verify_signature(w.public_key(), black_box(hash), &sig))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_keystore, bench_keys
}
criterion_main!(benches);
