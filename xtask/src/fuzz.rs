//! `cargo xtask fuzz`: coverage-guided fuzzing of the untrusted-input parsers on stable Rust.
//!
//! cargo-fuzz needs nightly only for its sanitizers; the coverage instrumentation libFuzzer
//! feeds on (SanitizerCoverage's inline 8-bit counters, PC table and comparison tracing) is
//! reachable through stable `-C passes` / `-C llvm-args` options. So this builds `fuzz/`
//! (its own workspace, libfuzzer-sys) with those flags, for the host target explicitly so that
//! build scripts and proc macros stay uninstrumented, and runs each target over the committed
//! seed corpus plus a growing corpus in the cache.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{cargo, devnet_paths::cache_dir, run_step, workspace_root};

/// The targets, each with what it covers.
pub const TARGETS: [(&str, &str); 6] = [
    ("envelope", "proof envelope decode (zstd and postcard) and verify; accepted => true output"),
    ("signed_message", "gossip SignedMessage decode/verify on every topic, then the payload decoders"),
    ("tee_evidence", "DCAP quotes, SEV-SNP reports, VCEKs, certificate tables, collateral, whitelists"),
    ("keystore", "keystore JSON decrypt (scrypt, MACs, key checks)"),
    ("rest_bodies", "POST /v1/jobs and /v1/validate bodies, bridge answers, job views, problems"),
    ("job_spec", "job spec JSON: round trip, hash, protocol size rules == prover size rules"),
];

const HELP: &str = "\
cargo xtask fuzz [--target NAME]... [--seconds N] [--seeds] [--json]

Builds the fuzz targets in fuzz/ with libFuzzer coverage instrumentation (stable rustc flags;
first build about 5 minutes on 2 cores, into $SAGE_CACHE_DIR/fuzz-target) and runs each
target for N seconds (default 30) over the committed seeds (fuzz/corpus/NAME) and a corpus that
grows in $SAGE_CACHE_DIR/fuzz/corpus/NAME. A crash, a failed oracle, a timeout (20 s per input)
or more than 3 GiB of memory fails the run and leaves the input in
$SAGE_CACHE_DIR/fuzz/artifacts/NAME/; replay it with `<binary> <file>`.

  --target NAME   only this target (repeatable); targets: envelope, signed_message,
                  tee_evidence, keystore, rest_bodies, job_spec
  --seconds N     time per target (default 30)
  --seeds         rewrite fuzz/corpus/ from real inputs (run after a wire-format change)
  --json          one JSON object per target on stdout
";

struct Options {
    targets: Vec<String>,
    seconds: u64,
    seeds: bool,
    json: bool,
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut options = Options { targets: Vec::new(), seconds: 30, seeds: false, json: false };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return Ok(None);
            }
            "--target" => {
                let name = it.next().context("--target needs a name")?;
                if !TARGETS.iter().any(|(t, _)| t == name) {
                    bail!("unknown fuzz target {name:?} (known: {})", names().join(", "));
                }
                options.targets.push(name.clone());
            }
            "--seconds" => {
                let n = it.next().context("--seconds needs a number")?;
                options.seconds = n.parse().with_context(|| format!("--seconds {n:?} is not a number"))?;
                if options.seconds == 0 {
                    bail!("--seconds must be at least 1");
                }
            }
            "--seeds" => options.seeds = true,
            "--json" => options.json = true,
            other => bail!("unexpected argument {other:?}\n\n{HELP}"),
        }
    }
    if options.targets.is_empty() {
        options.targets = names().into_iter().map(str::to_owned).collect();
    }
    Ok(Some(options))
}

fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|(t, _)| *t).collect()
}

/// The host target triple (builds for it explicitly keep RUSTFLAGS off build scripts).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_owned).context("rustc -vV printed no host line")
}

fn fuzz_target_dir() -> PathBuf {
    cache_dir().join("fuzz-target")
}

/// What one run of a target printed at the end.
#[derive(Default)]
struct Stats {
    execs: u64,
    exec_per_sec: u64,
    cov: u64,
    features: u64,
    corpus: u64,
    peak_rss_mb: u64,
}

/// Reads libFuzzer's `-print_final_stats=1` lines and its last status line.
fn stats(log: &str) -> Stats {
    let mut s = Stats::default();
    let num = |v: &str| v.trim().parse::<u64>().unwrap_or(0);
    for line in log.lines() {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.execs = num(v);
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            s.exec_per_sec = num(v);
        } else if let Some(v) = line.strip_prefix("stat::peak_rss_mb:") {
            s.peak_rss_mb = num(v);
        } else if line.starts_with('#') && line.contains("cov: ") {
            let mut words = line.split_whitespace();
            while let Some(w) = words.next() {
                match w {
                    "cov:" => s.cov = words.next().map(num).unwrap_or(s.cov),
                    "ft:" => s.features = words.next().map(num).unwrap_or(s.features),
                    "corp:" => s.corpus = words.next().and_then(|c| c.split('/').next()).map(num).unwrap_or(s.corpus),
                    _ => {}
                }
            }
        }
    }
    s
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let Some(options) = parse(args)? else { return Ok(()) };
    let root = workspace_root();
    let manifest = root.join("fuzz").join("Cargo.toml");
    let triple = host_triple()?;
    let flags = [
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "--cfg",
        "fuzzing",
    ]
    .join(" ");
    let target_dir = fuzz_target_dir();
    run_step(
        "building the fuzz targets with coverage instrumentation (first time about 5 minutes on 2 cores)",
        cargo()
            .args(["build", "--release", "--locked", "--bins", "--target", &triple, "--manifest-path"])
            .arg(&manifest)
            .env("RUSTFLAGS", &flags)
            .env("CARGO_TARGET_DIR", &target_dir),
    )?;
    let bin_dir = target_dir.join(&triple).join("release");
    if options.seeds {
        run_step("writing the seed corpus (fuzz/corpus/)", &mut Command::new(bin_dir.join("seed_corpus")))?;
    }
    let work = cache_dir().join("fuzz");
    let mut failed = Vec::new();
    if !options.json {
        eprintln!(
            "{:<15} {:>9} {:>8} {:>6} {:>7} {:>7} {:>7}  result",
            "target", "execs", "exec/s", "cov", "ft", "corpus", "rss MB"
        );
    }
    for name in &options.targets {
        let seeds = root.join("fuzz").join("corpus").join(name);
        let corpus = work.join("corpus").join(name);
        let artifacts = work.join("artifacts").join(name);
        if !has_seeds(&seeds) {
            bail!("{} holds no seeds: run `cargo xtask fuzz --seeds` and commit them", seeds.display());
        }
        fs::create_dir_all(&corpus)?;
        fs::create_dir_all(&artifacts)?;
        let log_path = work.join(format!("{name}.log"));
        let started = Instant::now();
        let status = Command::new(bin_dir.join(name))
            .arg(format!("-max_total_time={}", options.seconds))
            .args(["-timeout=20", "-rss_limit_mb=3072", "-print_final_stats=1", "-max_len=262144"])
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .arg(&seeds)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log_path)?)
            .status()
            .with_context(|| format!("running fuzz target {name}"))?;
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let s = stats(&log);
        let verdict = if status.success() { "ok" } else { "FAILED" };
        if options.json {
            println!(
                "{{\"target\":\"{name}\",\"seconds\":{:.1},\"execs\":{},\"exec_per_sec\":{},\"cov\":{},\"ft\":{},\"corpus\":{},\"peak_rss_mb\":{},\"ok\":{}}}",
                started.elapsed().as_secs_f64(),
                s.execs,
                s.exec_per_sec,
                s.cov,
                s.features,
                s.corpus,
                s.peak_rss_mb,
                status.success()
            );
        } else {
            eprintln!(
                "{name:<15} {:>9} {:>8} {:>6} {:>7} {:>7} {:>7}  {verdict}",
                s.execs, s.exec_per_sec, s.cov, s.features, s.corpus, s.peak_rss_mb
            );
        }
        if !status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {name}: last lines of {} ---", log_path.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!("fuzz target(s) failed: {} (inputs under {})", failed.join(", "), work.join("artifacts").display());
    }
    Ok(())
}

/// Whether `dir` holds at least one seed (the committed corpus must not be empty).
fn has_seeds(dir: &Path) -> bool {
    fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false)
}
