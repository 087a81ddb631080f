//! Sage project automation. Run `cargo xtask --help`.

mod contracts;
mod demo;
mod tools;
mod worker_demo;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Sage project automation: tools, contracts, devnet, deploy, demo, test, bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the pinned external tools into the Sage cache (reused when present):
    /// starknet-devnet 0.10.1 (built once, ~25 minutes on 2 cores) and the Cairo 2.4.0 compiler.
    Tools {
        /// Skip starknet-devnet (only the Cairo compiler).
        #[arg(long)]
        no_devnet: bool,
    },
    /// Compile every contract in contracts/ to Sierra, compute CASM and class hashes, and write
    /// contracts/artifacts/ (commit the result).
    Contracts {
        /// Do not write: fail if the committed artifacts differ from a fresh compilation.
        #[arg(long)]
        check: bool,
    },
    /// Run a local devnet in the foreground (Ctrl-C stops it).
    Devnet {
        /// Loopback port.
        #[arg(long, default_value_t = 5050)]
        port: u16,
        /// Seed of the predeployed accounts.
        #[arg(long, default_value_t = 0)]
        seed: u32,
    },
    /// Declare and deploy all contracts, wire roles, fund the faucet, write the manifest.
    Deploy(demo::DeployArgs),
    /// Start a devnet, deploy, create a fresh account, drip from the faucet; then start a real
    /// worker (`sage-worker start`) that proves a job a coordinator assigns over libp2p, fetch the
    /// proof by hash and verify it; print where everything is.
    Demo(demo::DemoArgs),
    /// Everything CI runs: tools, fmt --check, clippy -D warnings, contracts --check, tests
    /// (including the GPU kernels, on Mesa lavapipe when no GPU is present).
    Test,
    /// Alias of `test`.
    Ci,
    /// Run a benchmark suite: `prover`, `gpu`, `crypto` (elgamal), `wallet`, `consensus`, `net` (figures beside baselines),
    /// `contracts` (settlement gas and fees on a local devnet).
    Bench {
        /// Which suite.
        suite: String,
        /// Extra arguments for criterion (after `--`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(Cli::parse()) {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Tools { no_devnet } => {
            tools::ensure_cairo()?;
            if !no_devnet {
                tools::ensure_devnet()?;
            }
            Ok(())
        }
        Cmd::Contracts { check } => contracts::run(check),
        Cmd::Devnet { port, seed } => runtime()?.block_on(demo::devnet_foreground(port, seed)),
        Cmd::Deploy(args) => runtime()?.block_on(demo::deploy(args)),
        Cmd::Demo(args) => runtime()?.block_on(demo::demo(args)),
        Cmd::Test | Cmd::Ci => test(),
        Cmd::Bench { suite, extra } => bench(&suite, &extra),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub(crate) fn run_step(name: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {name}");
    let started = std::time::Instant::now();
    let status = cmd.status().with_context(|| format!("running {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    eprintln!("    {name} ok in {:.1?}", started.elapsed());
    Ok(())
}

/// Optional features CI builds and tests too: the wgpu backend (prover and worker) and the QUIC
/// transport.
const OPTIONAL_FEATURES: &str = "obelysk-prover/gpu,sage-worker/gpu,sage-net/quic";

fn test() -> Result<()> {
    tools::ensure_cairo()?;
    tools::ensure_devnet()?;
    run_step("cargo fmt --check", cargo().args(["fmt", "--all", "--check"]))?;
    run_step(
        "cargo clippy -D warnings",
        cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
    )?;
    run_step(
        "cargo clippy -D warnings (optional features: gpu, quic)",
        cargo().args([
            "clippy",
            "--package",
            "obelysk-prover",
            "--package",
            "sage-net",
            "--package",
            "sage-worker",
            "--all-targets",
            "--features",
            OPTIONAL_FEATURES,
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    eprintln!("==> contracts --check");
    contracts::run(true)?;
    run_step(
        "cargo nextest",
        // The GPU kernels run on whatever Vulkan adapter exists: Mesa lavapipe in CI (see .ci/run).
        cargo()
            .args(["nextest", "run", "--workspace", "--features", OPTIONAL_FEATURES, "--locked", "--no-fail-fast"])
            .env("SAGE_DEVNET_BIN", sage_chain::devnet::devnet_binary()),
    )?;
    run_step("doc tests", cargo().args(["test", "--workspace", "--doc", "--locked"]))?;
    eprintln!("all checks passed");
    Ok(())
}

fn bench(suite: &str, extra: &[String]) -> Result<()> {
    if suite == "contracts" {
        // Settlement entry points on a local devnet: L2 gas and fees from receipts and traces.
        return run_step(
            "bench contracts",
            cargo()
                .args(["run", "--quiet", "--package", "sage-payments", "--example", "contract_costs"])
                .env("SAGE_DEVNET_BIN", sage_chain::devnet::devnet_binary()),
        );
    }
    let package = match suite {
        "prover" => "obelysk-prover",
        "gpu" => {
            // Per kernel (FFT, Merkle, field ops), then whole proofs per phase: SIMD vs GPU backend.
            for bench in ["gpu_kernels", "gpu_prove"] {
                let mut cmd = cargo();
                cmd.args(["bench", "--package", "obelysk-prover", "--features", "gpu", "--bench", bench]);
                if !extra.is_empty() {
                    cmd.arg("--").args(extra);
                }
                run_step(&format!("bench gpu ({bench})"), &mut cmd)?;
            }
            return Ok(());
        }
        "elgamal" | "crypto" => "obelysk-elgamal",
        "wallet" => "sage-wallet",
        "consensus" => "sage-consensus",
        "net" => "sage-net",
        other => {
            bail!(
                "unknown bench suite {other:?} (known: prover, gpu, crypto|elgamal, wallet, consensus, net, contracts)"
            )
        }
    };
    let mut cmd = cargo();
    cmd.args(["bench", "--package", package]);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    run_step(&format!("bench {suite}"), &mut cmd)
}
