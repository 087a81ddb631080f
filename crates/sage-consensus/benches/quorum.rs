//! Time to QC for 4, 16, 64 and 256 validators: every validator signs (RFC 6979 Stark ECDSA) and
//! one engine verifies the incoming votes until the quorum forms. The baseline printed beside it
//! is the cost of one signature + one verification, times the threshold, measured in the same run.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sage_consensus::{
    Config, Effect, Input, RoundId, StarkKey, State, ValidatorSet, Verdict, VoteDomain, apply, sign_vote,
    verify_signature, vote_hash,
};
use starknet_rust_crypto::Felt;

fn time_to_qc(keys: &[StarkKey], set: &ValidatorSet, job: u64) -> usize {
    let domain = VoteDomain { chain_id: Felt::ONE, verifier: Felt::TWO };
    let round = RoundId { job_id: Felt::from(job), proof_hash: Felt::from(0xabcu32) };
    let mut engine = State::new(Config { domain, timeout_ms: 30_000, key: None }, set.clone());
    apply(&mut engine, Input::StartRound { round, now_ms: 0 });
    for (i, key) in keys.iter().enumerate() {
        let signature = sign_vote(key, &domain, round.job_id, round.proof_hash, Verdict::Valid).expect("sign");
        let vote =
            sage_consensus::SignedVote { round, verdict: Verdict::Valid, validator: key.public_key(), signature };
        if apply(&mut engine, Input::Vote(vote)).iter().any(|e| matches!(e, Effect::SubmitQc(_))) {
            return i + 1;
        }
    }
    panic!("no QC");
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("time_to_qc");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    let probe = StarkKey::from_secret(Felt::from(77u8)).expect("key");
    let msg = vote_hash(&VoteDomain { chain_id: Felt::ONE, verifier: Felt::TWO }, Felt::ONE, Felt::TWO, Verdict::Valid);
    let started = Instant::now();
    let reps = 50u32;
    for _ in 0..reps {
        let sig = probe.sign(msg).expect("sign");
        assert!(verify_signature(probe.public_key(), msg, &sig));
    }
    let per_vote = started.elapsed() / reps;
    for n in [4usize, 16, 64, 256] {
        let keys: Vec<_> = (0..n).map(|i| StarkKey::from_secret(Felt::from(1000 + i as u64)).expect("key")).collect();
        let set = ValidatorSet { version: 1, members: keys.iter().map(StarkKey::public_key).collect() };
        let mut job = 0u64;
        let t = Instant::now();
        let signers = time_to_qc(&keys, &set, 0);
        let one = t.elapsed();
        let baseline = per_vote * signers as u32;
        println!(
            "n={n:<4} threshold={signers:<4} time to QC {one:>10.2?}  baseline (threshold x sign+verify) {baseline:>10.2?}  ratio {:.2}",
            one.as_secs_f64() / baseline.as_secs_f64()
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                job += 1;
                time_to_qc(&keys, &set, job)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
