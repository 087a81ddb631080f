//! `cargo xtask bench validators`: how long a result waits for its verdict, with 4 and with 16
//! validators, on a real devnet with the real contracts over real libp2p on loopback.
//!
//! For each set size: a devnet with that many staked, registered validators installed as the
//! ProofVerifier's set; a coordinator; the validators (watching the chain every 250 ms); one worker.
//! Jobs run one after another (matmul n = 128, proven with the production config): the worker
//! proves, announces and calls `submit_result`; the clock starts when that transaction's receipt
//! is back and stops when the verdict is readable on-chain (`ProofVerifier::verdict`). Beside it,
//! the bare verification of the same envelopes in this process (`verify_bytes`, production
//! policy): the figure every validator must pay at least once per result.
//!
//! `SAGE_BENCH_JOBS` sets the jobs per size (default 20); `SAGE_BENCH_VALIDATORS` the sizes
//! (default `4,16`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use obelysk_prover::{ProofConfig, VerifyPolicy};
use sage_chain::{Felt, contracts::RecordedVerdict};
use sage_coordinator::testing::{Api, coordinator, escrow, net_with, worker};
use sage_protocol::{JobSpec, api::JobState};

#[path = "../tests/common/mod.rs"]
mod common;

const MATRIX_N: u32 = 128;
const TICK: Duration = Duration::from_millis(250);

struct Row {
    validators: usize,
    latencies: Vec<Duration>,
    verifies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(validators: usize, jobs: usize) -> Result<Row> {
    eprintln!("==> {validators} validators: devnet, contracts, stakes and the set");
    let n = net_with(1, validators).await;
    let dir = tempfile::tempdir()?;
    let (running, api_key) = coordinator(&n, dir.path(), 600).await;
    let api = Api::new(&running, api_key);
    let fleet = common::validators_with(&n, dir.path(), &running, &api, &vec![0; validators], TICK).await.running;
    let mut w = worker(&n, 0, &running).await;
    let (mut latencies, mut verifies) = (Vec::new(), Vec::new());
    for i in 0..jobs {
        let seed = Felt::from(10_000 + i as u64);
        let spec = JobSpec::Matmul { n: MATRIX_N, seed };
        let job = escrow(&n, &api, i as u64 + 1, spec, 3_600).await;
        let a = w.next_assignment().await;
        if a.job_id != job {
            bail!("assigned {:#x}, expected {job:#x}", a.job_id);
        }
        let proof = w.prove_with(&a, ProofConfig::PRODUCTION_OPENING).await;
        let bytes = proof.bytes.clone();
        let prover_job = a.request.prover_job(job, a.worker, &[])?;
        verifies.push(
            tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                obelysk_prover::verify_bytes(&bytes, &prover_job, &VerifyPolicy::default()).map(|_| start.elapsed())
            })
            .await??,
        );
        w.publish(&a, &proof).await;
        n.contracts.jobs.submit_result(&w.account, job, proof.output, proof.proof_hash).await?;
        let start = Instant::now();
        let verdict = loop {
            match n.contracts.verifier.verdict(&n.client, job).await? {
                RecordedVerdict::None if start.elapsed() < Duration::from_secs(120) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => break other,
            }
        };
        latencies.push(start.elapsed());
        if verdict != RecordedVerdict::Valid {
            bail!("job {i}: verdict {verdict:?} after {:?}", start.elapsed());
        }
        api.until(job, JobState::Paid, 60).await;
        eprintln!("    job {:>2}/{jobs}: verdict after {:>7.1} ms", i + 1, ms(*latencies.last().context("latency")?));
    }
    drop(w.alive);
    for v in fleet {
        v.shutdown().await;
    }
    running.shutdown().await;
    Ok(Row { validators, latencies, verifies })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    // Quiet unless asked (`RUST_LOG=info`): the figures go to stdout, progress to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let jobs: usize = std::env::var("SAGE_BENCH_JOBS").ok().map_or(Ok(20), |v| v.parse()).context("SAGE_BENCH_JOBS")?;
    let sizes: Vec<usize> = std::env::var("SAGE_BENCH_VALIDATORS")
        .unwrap_or_else(|_| "4,16".into())
        .split(',')
        .map(|s| s.trim().parse().context("SAGE_BENCH_VALIDATORS: comma-separated counts"))
        .collect::<Result<_>>()?;
    if jobs == 0 {
        bail!("SAGE_BENCH_JOBS must be at least 1");
    }
    let mut rows = Vec::new();
    for v in sizes {
        rows.push(run(v, jobs).await?);
    }
    println!();
    println!(
        "result on-chain -> verdict on-chain (matmul n={MATRIX_N}, production proofs, validators tick {} ms)",
        TICK.as_millis()
    );
    println!(
        "{:>10} {:>5} {:>9} {:>9} {:>9} {:>14} {:>12}",
        "validators", "jobs", "p50 ms", "p99 ms", "max ms", "verify p50 ms", "p50/verify"
    );
    for mut row in rows {
        row.latencies.sort();
        row.verifies.sort();
        let (p50, verify) = (percentile(&row.latencies, 50.0), percentile(&row.verifies, 50.0));
        println!(
            "{:>10} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>14.2} {:>11.0}x",
            row.validators,
            row.latencies.len(),
            ms(p50),
            ms(percentile(&row.latencies, 99.0)),
            ms(*row.latencies.last().context("no jobs")?),
            ms(verify),
            p50.as_secs_f64() / verify.as_secs_f64()
        );
    }
    Ok(())
}
