//! `sage-devkit`: the heavy half of `cargo xtask` (contracts, devnet, deploy, demo). It links the
//! workspace's chain, prover and network crates, so it is built only after `cargo xtask` has
//! checked the machine and installed the pinned tools; run it through `cargo xtask`, which also
//! says how long the first build takes.

// Shared with xtask, which installs the compiler; only the compiler's path is used here.
#[allow(dead_code)]
#[path = "../../src/cairo_paths.rs"]
mod cairo_paths;
mod contracts;
mod demo;
mod loop_demo;
mod worker_demo;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sage-devkit",
    about = "The chain and demo tasks of `cargo xtask` (run them as `cargo xtask <command>`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,libp2p_gossipsub=error".into()),
        )
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
        Cmd::Contracts { check } => contracts::run(check),
        Cmd::Devnet { port, seed } => runtime()?.block_on(demo::devnet_foreground(port, seed)),
        Cmd::Deploy(args) => runtime()?.block_on(demo::deploy(args)),
        Cmd::Demo(args) => runtime()?.block_on(demo::demo(args)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")
}

/// The workspace root (this crate lives at `xtask/devkit`).
///
/// Taken from the `CARGO_MANIFEST_DIR` that `cargo run` sets at run time, not the one baked in at
/// build time (a binary reused from a shared target dir may have been built from another clone).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}
