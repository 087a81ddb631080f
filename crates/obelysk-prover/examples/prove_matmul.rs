//! Proves and verifies one matmul job and prints size and timings.
//!
//! `cargo run --release -p obelysk-prover --example prove_matmul -- --n 256`
//! (`RUST_LOG=info` and `--spans` print the phase timings.)

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use obelysk_prover::matmul::MatmulJob;
use obelysk_prover::{
    Job, JobId, ProofConfig, ProveConfig, VerifyPolicy, WorkerAddress, prove_with_output, verify_bytes,
};

#[derive(Parser, Debug)]
struct Args {
    /// Matrix dimension (power of two, 2..=1024).
    #[arg(long, default_value_t = 256)]
    n: u32,
    /// Seed byte the matrices are derived from.
    #[arg(long, default_value_t = 1)]
    seed: u8,
    /// Use the insecure test config instead of the 96-bit production config.
    #[arg(long)]
    insecure: bool,
    /// Print tracing span timings on stderr.
    #[arg(long)]
    spans: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.spans {
        tracing_subscriber::fmt()
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_target(false)
            .with_writer(std::io::stderr)
            .init();
    }
    let (config, policy) = if args.insecure {
        (ProveConfig::insecure_for_tests(), VerifyPolicy::insecure_for_tests())
    } else {
        (ProveConfig::production(), VerifyPolicy::default())
    };
    let job = Job::matmul(
        JobId::from_u128(1),
        WorkerAddress::from_u128(0x5a9e),
        MatmulJob::from_seed(args.n, [args.seed; 32]),
    );
    let t = Instant::now();
    let proved = prove_with_output(&job, &config).context("proving")?;
    let prove_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let verified = verify_bytes(&proved.encoded.bytes, &job, &policy).context("verifying")?;
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    verified.check_output(&proved.output).context("checking the output")?;
    let ProofConfig { log_blowup_factor, n_queries, pow_bits, .. } = verified.config;
    println!(
        "matmul n={} prove_s={prove_s:.3} verify_ms={verify_ms:.2} (first verify in this process) proof_bytes={} security_bits={} (blowup 2^{log_blowup_factor}, {n_queries} queries, {pow_bits} pow bits) proof_hash={}",
        args.n,
        proved.encoded.bytes.len(),
        verified.security_bits,
        proved.encoded.proof_hash,
    );
    let t = Instant::now();
    verify_bytes(&proved.encoded.bytes, &job, &policy).context("verifying again")?;
    println!("verify_ms (second verify)={:.2}", t.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
