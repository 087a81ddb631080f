//! Prover figures, printed one line per case, then criterion timings of the small cases.
//!
//! `cargo bench -p obelysk-prover --bench prover` (the lead's `cargo xtask bench prover`).
//! Environment: `PROVER_BENCH_N` (default `256,512,1024`; each size runs both matmul protocols), `PROVER_BENCH_VM_LOG_STEPS`
//! (default `16,20`), `PROVER_BENCH_SPANS=1` prints the phase timings of every proof,
//! `PROVER_BENCH_FIGURES_ONLY=1` skips criterion, `PROVER_BENCH_CONFIG=pow,log_blowup,queries,
//! log_last_layer,fold_step` replaces the production config.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use obelysk_prover::matmul::{self, MatmulJob};
use obelysk_prover::vm::{Instruction, Program, VmJob};

mod support;
use obelysk_prover::vm_jump::VmJumpJob;
use obelysk_prover::{
    Job, JobId, MatmulProtocol, ProveConfig, Proved, VerifyPolicy, WorkerAddress, prove_with_output, verify,
    verify_bytes,
};
use support::vm_program;

fn env_list(name: &str, default: &str) -> Vec<u32> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn mm_job(n: u32) -> Job {
    Job::matmul(JobId::from_u128(1), WorkerAddress::from_u128(0x5a9e), MatmulJob::from_seed(n, [3; 32]))
}

fn native_seconds(n: u32) -> f64 {
    let (a, b) = matmul::derive_matrices(n, &[3; 32]);
    let reps = if n >= 512 { 3 } else { 10 };
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            black_box(matmul::native_matmul(n as usize, black_box(&a), black_box(&b)));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// One matmul protocol's figures at one size.
struct MatmulFigures {
    prove_s: f64,
    prove_cold_s: f64,
    verify_ms: f64,
    verify_cold_ms: f64,
    proof_bytes: usize,
    security_bits: u32,
    config: obelysk_prover::ProofConfig,
}

fn matmul_protocol(n: u32, config: &ProveConfig) -> Result<MatmulFigures, String> {
    let policy = VerifyPolicy::default();
    let job = mm_job(n);
    // The first proof of a size builds what a worker keeps (twiddles, the AIR's circuit).
    let t = Instant::now();
    prove_with_output(&job, config).map_err(|e| e.to_string())?;
    let prove_cold_s = t.elapsed().as_secs_f64();
    let reps = if n >= 512 { 2 } else { 3 };
    let mut prove_s = f64::INFINITY;
    let mut proved = None;
    for _ in 0..reps {
        let t = Instant::now();
        let p = prove_with_output(&job, config).map_err(|e| e.to_string())?;
        prove_s = prove_s.min(t.elapsed().as_secs_f64());
        proved = Some(p);
    }
    let proved = proved.ok_or("no proof")?;
    let t = Instant::now();
    let verified = verify_bytes(&proved.encoded.bytes, &job, &policy).map_err(|e| format!("verify: {e}"))?;
    let verify_cold_ms = t.elapsed().as_secs_f64() * 1e3;
    verified.check_output(&proved.output).map_err(|e| format!("output: {e}"))?;
    let verify_ms = (0..5)
        .map(|_| {
            let t = Instant::now();
            let r = verify_bytes(&proved.encoded.bytes, &job, &policy);
            assert!(r.is_ok());
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min);
    Ok(MatmulFigures {
        prove_s,
        prove_cold_s,
        verify_ms,
        verify_cold_ms,
        proof_bytes: proved.encoded.bytes.len(),
        security_bits: verified.security_bits,
        config: verified.config,
    })
}

/// Both matmul protocols at `n`, beside the native multiply measured in the same run: one line
/// per protocol, then the opening protocol's speed-up over the AIR.
fn matmul_figures(n: u32, config: &ProveConfig) {
    let native_s = native_seconds(n);
    let mut prove_times = Vec::new();
    for protocol in [MatmulProtocol::Air, MatmulProtocol::Opening] {
        let name = match protocol {
            MatmulProtocol::Air => "air",
            _ => "opening",
        };
        match matmul_protocol(n, &ProveConfig { matmul: protocol, ..*config }) {
            Ok(f) => {
                println!(
                    "bench prover matmul n={n} protocol={name} native_s={native_s:.4} prove_s={:.3} ratio={:.2} verify_ms={:.2} proof_bytes={} security_bits={} pow_bits={} queries={} prove_cold_s={:.3} verify_cold_ms={:.1}",
                    f.prove_s,
                    f.prove_s / native_s,
                    f.verify_ms,
                    f.proof_bytes,
                    f.security_bits,
                    f.config.pow_bits,
                    f.config.n_queries,
                    f.prove_cold_s,
                    f.verify_cold_ms,
                );
                prove_times.push(f.prove_s);
            }
            Err(e) => println!("bench prover matmul n={n} protocol={name} error={e}"),
        }
    }
    if let [air, opening] = prove_times[..] {
        println!("bench prover matmul n={n} opening_speedup_over_air={:.2}x", air / opening);
    }
}

/// One VM proof and two verifications (the first also builds the verifier's pinned circuit).
struct Measured {
    proved: Proved,
    prove_s: f64,
    verify_cold_ms: f64,
    verify_ms: f64,
    ok: bool,
}

/// Proves and verifies `job`; on a proving error prints `bench prover {label} error=…` and
/// returns `None`.
fn prove_and_verify(label: &str, job: &Job, config: &ProveConfig) -> Option<Measured> {
    let t = Instant::now();
    let proved = match prove_with_output(job, config) {
        Ok(p) => p,
        Err(e) => {
            println!("bench prover {label} error={e}");
            return None;
        }
    };
    let prove_s = t.elapsed().as_secs_f64();
    let policy = VerifyPolicy::default();
    let t = Instant::now();
    let cold = verify(&proved.envelope, job, &policy);
    let verify_cold_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let warm = verify(&proved.envelope, job, &policy);
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    Some(Measured { proved, prove_s, verify_cold_ms, verify_ms, ok: cold.is_ok() && warm.is_ok() })
}

fn vm_figures(log_steps: u32, config: &ProveConfig) {
    let steps = 1usize << log_steps;
    let job = Job::vm(
        JobId::from_u128(2),
        WorkerAddress::from_u128(0x5a9e),
        VmJob { program: vm_program(steps), inputs: [1, 2, 3, 4] },
    );
    let t = Instant::now();
    let native = match &job.spec {
        obelysk_prover::JobSpec::Vm(v) => v.execute().map(|_| t.elapsed().as_secs_f64()),
        _ => unreachable!(),
    };
    let Some(Measured { proved, prove_s, verify_cold_ms, verify_ms, ok }) =
        prove_and_verify(&format!("vm steps=2^{log_steps}"), &job, config)
    else {
        return;
    };
    println!(
        "bench prover vm steps=2^{log_steps} native_s={:.4} prove_s={prove_s:.3} steps_per_s={:.0} verify_ms={verify_ms:.2} proof_bytes={} security_bits={} verify_cold_ms={verify_cold_ms:.1} ok={}",
        native.unwrap_or(f64::NAN),
        steps as f64 / prove_s,
        proved.encoded.bytes.len(),
        config.proof.security_bits(),
        ok,
    );
}

/// A loop with a data-dependent trip count: 5 steps per iteration, about `2^log_rows` steps.
fn vm_jump_figures(log_rows: u32, config: &ProveConfig) {
    let max_steps = (1u32 << log_rows) - 1;
    let iterations = (max_steps - 3) / 5;
    let program = Program::new(vec![
        Instruction::loadi(3, 1),
        Instruction::mul(1, 1, 2),
        Instruction::addi(2, 1, 7),
        Instruction::add(1, 1, 2),
        Instruction::sub(0, 0, 3),
        Instruction::jnz(0, 1),
        Instruction::HALT,
    ]);
    let job = Job::vm_jump(
        JobId::from_u128(3),
        WorkerAddress::from_u128(0x5a9e),
        VmJumpJob { program, inputs: [iterations, 1, 2, 0], max_steps },
    );
    let steps = 2 + 5 * u64::from(iterations);
    let Some(Measured { proved, prove_s, verify_cold_ms, verify_ms, ok }) =
        prove_and_verify(&format!("vm-jump rows=2^{log_rows}"), &job, config)
    else {
        return;
    };
    println!(
        "bench prover vm-jump rows=2^{log_rows} steps={steps} prove_s={prove_s:.3} steps_per_s={:.0} verify_ms={verify_ms:.2} proof_bytes={} security_bits={} verify_cold_ms={verify_cold_ms:.1} ok={}",
        steps as f64 / prove_s,
        proved.encoded.bytes.len(),
        config.proof.security_bits(),
        ok,
    );
}

fn main() {
    if std::env::var("PROVER_BENCH_SPANS").is_ok() {
        tracing_subscriber::fmt()
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_target(false)
            .with_writer(std::io::stderr)
            .init();
    }
    let mut config = ProveConfig::production();
    // PROVER_BENCH_CONFIG=pow,log_blowup,queries,log_last_layer,fold_step explores other configs.
    if let Ok(spec) = std::env::var("PROVER_BENCH_CONFIG") {
        let v: Vec<u32> = spec.split(',').filter_map(|s| s.trim().parse().ok()).collect();
        if let [pow_bits, log_blowup_factor, n_queries, log_last_layer_degree_bound, fold_step] = v[..] {
            config.proof = obelysk_prover::ProofConfig {
                pow_bits,
                log_blowup_factor,
                n_queries,
                log_last_layer_degree_bound,
                fold_step,
            };
        }
    }
    println!("bench prover threads={} config={:?}", rayon::current_num_threads(), config.proof);
    for n in env_list("PROVER_BENCH_N", "256,512,1024") {
        matmul_figures(n, &config);
    }
    for log_steps in env_list("PROVER_BENCH_VM_LOG_STEPS", "16,20") {
        vm_figures(log_steps, &config);
        vm_jump_figures(log_steps, &config);
    }
    if std::env::var("PROVER_BENCH_FIGURES_ONLY").is_ok() {
        return;
    }
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let job = mm_job(64);
    let proved = prove_with_output(&job, &config).ok();
    let mut g = c.benchmark_group("prover");
    g.bench_function("matmul_n64_prove", |b| b.iter(|| prove_with_output(black_box(&job), &config).is_ok()));
    if let Some(p) = proved {
        let policy = VerifyPolicy::default();
        g.bench_function("matmul_n64_verify", |b| {
            b.iter(|| verify_bytes(black_box(&p.encoded.bytes), &job, &policy).is_ok())
        });
    }
    g.finish();
    c.final_summary();
}
