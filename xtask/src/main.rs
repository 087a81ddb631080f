//! Sage project automation: `cargo xtask <command>`; `cargo xtask help` lists the commands.
//!
//! This binary depends on `anyhow` alone, so it builds in seconds on a fresh machine. It checks the
//! machine and installs the pinned tools first, says before every long step what it is and how long
//! it takes on 2 cores, and only then builds what links the workspace (`sage-devkit` for the chain
//! and demo tasks, the workspace for the tests).

mod cairo_paths;
#[path = "../../crates/sage-chain/src/devnet/paths.rs"]
mod devnet_paths;
mod fuzz;
mod preflight;
mod tools;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use preflight::Purpose;

const HELP: &str = "\
Sage project automation

Usage: cargo xtask <command> [options]

The two README commands:
  demo [--json] [--keep]   the whole loop on a local devnet: contracts, a client account and a
                           faucet drip; four validators and a real `sage-worker` stake and
                           register; a coordinator assigns the client's escrowed job, the worker
                           proves and submits it, the validators certify it, the worker is paid
                           and claims; then a cheating worker is certified invalid and slashed
                           (--json: summary on stdout; --keep: leave the devnet up)
  test                     everything CI runs: fmt --check, clippy -D warnings, contracts --check,
                           all tests (GPU kernels on Mesa's lavapipe when no GPU is present),
                           then `e2e`, a small `load --kill-host`, every fuzz target for 30 s
Both first check the machine (installing missing system packages when run as root, otherwise
naming the apt-get line), install the pinned tools into ~/.cache/sage, then build.

Other commands:
  e2e [--only N] [--json] [--keep]
                           the network as real processes on a fresh devnet (a coordinator, four
                           validators, two workers): the seed's ten scenarios and eight failure
                           paths, as a table (tests/e2e; about 3 minutes warm on 2 cores)
  doctor                   list what is present and what is missing; changes nothing
  tools [--no-devnet]      install/verify the pinned tools (starknet-devnet 0.10.1, Cairo 2.4.0)
  install [--portable] [--gpu] [--root DIR]
                           build and install the operator binaries (bins/*) for THIS machine's
                           CPU (-C target-cpu=native, ~2.6x faster proving); --portable builds for
                           any x86-64 (what distributed artifacts use); --gpu adds the wgpu backend
  contracts [--check]      Cairo -> Sierra -> CASM + class hashes into contracts/artifacts/
  devnet [--port P] [--seed S]
                           a local devnet in the foreground
  deploy --rpc URL [--manifest PATH] [--chain-id ID] [--json]
                           declare + deploy all contracts, fund the faucet, write the manifest
  bench <suite> [-- criterion args]
                           prover | gpu | crypto | wallet | consensus | net | coordinator |
                           sdk | contracts | validators
  load [--workers W] [--jobs J] [--rate R] [--hosts H] [--kill-host] [--block-secs S]
       [--batch N] [--json]
                           the network under load on a local devnet: W real registered workers
                           on H host processes, J jobs through the API at R/s; fails unless
                           lost=0 double_paid=0 uncertified_paid=0 (`load --help`)
  fuzz [--target NAME] [--seconds N] [--seeds] [--json]
                           coverage-guided fuzzing (libFuzzer, stable flags) of the proof
                           envelope, gossip messages, TEE evidence, keystores, REST bodies and
                           job specs; 30 s per target by default (`fuzz --help`)
  ci                       alias of test

Environment: SAGE_CACHE_DIR (tool cache, default ~/.cache/sage), SAGE_DEVNET_BIN (use this devnet
binary), CARGO_TARGET_DIR (build folder).
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = run(&args) {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("help", &[][..]),
    };
    match command {
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        "doctor" => doctor(),
        "tools" => {
            let no_devnet = flags(rest, &["--no-devnet"])?.contains(&"--no-devnet");
            tools::ensure_cairo()?;
            tools::ensure_mcp_client()?;
            if !no_devnet {
                tools::ensure_devnet()?;
            }
            Ok(())
        }
        "demo" => {
            flags(rest, &["--json", "--keep"])?;
            prepare(Purpose::Demo)?;
            // Built one package at a time, exactly as each is run next (`cargo run -p sage-devkit`,
            // then the demo's `cargo build -p sage-worker`): built together, cargo unifies their
            // features and both later commands would silently rebuild shared crates.
            build_devkit(&[], "sage-devkit", "10-12")?;
            run_step(
                "building sage-worker (first time about 2-4 minutes more; seconds when up to date)",
                cargo().args(["build", "--locked", "--package", "sage-worker"]),
            )?;
            devkit("demo", rest)
        }
        "test" | "ci" => {
            flags(rest, &[])?;
            test()
        }
        "e2e" => {
            prepare(Purpose::Demo)?;
            e2e(rest)
        }
        "install" => install(rest),
        "fuzz" => fuzz::fuzz(rest),
        "load" => {
            // `--help` needs the example built, not the devnet installed.
            if !rest.iter().any(|a| a == "--help" || a == "-h") {
                prepare(Purpose::Demo)?;
            }
            run_step(
                "cargo xtask load (first build a few minutes; then registration, submission and the books)",
                &mut load(rest),
            )
        }
        "contracts" => {
            flags(rest, &["--check"])?;
            preflight::system_packages(Purpose::Demo)?;
            tools::ensure_cairo()?;
            build_devkit(&[], "sage-devkit", "8-10")?;
            devkit("contracts", rest)
        }
        "devnet" => {
            prepare(Purpose::Demo)?;
            build_devkit(&[], "sage-devkit", "8-10")?;
            devkit(command, rest)
        }
        // Deploying to an RPC endpoint needs the committed artifacts, not a local devnet.
        "deploy" => {
            preflight::system_packages(Purpose::Demo)?;
            build_devkit(&[], "sage-devkit", "8-10")?;
            devkit(command, rest)
        }
        "bench" => bench(rest),
        other => bail!("unknown command {other:?} (`cargo xtask help` lists them)"),
    }
}

/// Refuses arguments other than the known flags (each tool's own parser checks the rest).
fn flags<'a>(args: &'a [String], known: &[&str]) -> Result<Vec<&'a str>> {
    for a in args {
        if !known.contains(&a.as_str()) {
            bail!("unexpected argument {a:?} (`cargo xtask help` lists the options)");
        }
    }
    Ok(args.iter().map(String::as_str).collect())
}

/// System packages, then the pinned tools: everything before the first long build.
fn prepare(purpose: Purpose) -> Result<()> {
    eprintln!("==> checking the machine ({})", if purpose == Purpose::Test { "tests" } else { "demo" });
    preflight::system_packages(purpose)?;
    if purpose == Purpose::Test {
        preflight::test_toolchain()?;
    }
    eprintln!("==> pinned tools in {}", devnet_paths::cache_dir().display());
    tools::ensure_cairo()?;
    if purpose == Purpose::Test {
        tools::ensure_mcp_client()?;
    }
    tools::ensure_devnet()
}

/// Builds sage-devkit (plus `extra` packages) with cargo's own progress shown.
fn build_devkit(extra: &[&str], what: &str, cold_minutes: &str) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--locked", "--package", "sage-devkit"]).args(extra);
    run_step(
        &format!("building {what} (first time about {cold_minutes} minutes on 2 cores; seconds when up to date)"),
        &mut cmd,
    )
}

/// Runs an already built sage-devkit command.
fn devkit(command: &str, args: &[String]) -> Result<()> {
    let status = cargo()
        .args(["run", "--quiet", "--locked", "--package", "sage-devkit", "--", command])
        .args(args)
        .env("SAGE_DEVNET_BIN", devnet_paths::devnet_binary())
        .status()
        .context("running sage-devkit")?;
    if !status.success() {
        bail!("cargo xtask {command} failed ({status})");
    }
    Ok(())
}

/// The workspace root (xtask lives one level below it).
///
/// Taken from the `CARGO_MANIFEST_DIR` that `cargo run` sets at run time, not the one baked in at
/// build time: with a shared `CARGO_TARGET_DIR`, a binary built from another clone is reused as
/// fresh, and its baked-in path would send every step to that other clone.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(workspace_root());
    cmd
}

/// Announces a step, runs it, reports its time.
pub(crate) fn run_step(name: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("running {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    eprintln!("    ok in {:.0?}", started.elapsed());
    Ok(())
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok     " } else { "MISSING" }
}

fn doctor() -> Result<()> {
    let mut missing = 0;
    let mut line = |ok: bool, what: &str, how: String| {
        if !ok {
            missing += 1;
        }
        println!("{} {what}{}", mark(ok), if ok || how.is_empty() { String::new() } else { format!("  ({how})") });
    };
    let rustc =
        Command::new("rustc").arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    line(
        rustc.is_ok(),
        &format!("rustc: {}", rustc.as_deref().unwrap_or("not found")),
        "install Rust 1.95 with rustup".into(),
    );
    line(preflight::nextest_present(), "cargo-nextest (tests)", "cargo xtask test installs it".into());
    line(preflight::cargo_subcommand_present("clippy"), "clippy (tests)", "rustup component add clippy".into());
    line(preflight::cargo_subcommand_present("fmt"), "rustfmt (tests)", "rustup component add rustfmt".into());
    for (ok, what, packages) in preflight::report(Purpose::Test) {
        line(ok, what, format!("Debian package: {packages}"));
    }
    let cache = devnet_paths::cache_dir();
    let devnet = tools::devnet_present();
    line(
        devnet.is_some(),
        &format!("starknet-devnet {}: {}", devnet_paths::DEVNET_VERSION, devnet_paths::devnet_binary().display()),
        "cargo xtask tools (about 20-25 minutes on 2 cores)".into(),
    );
    let cairo = cairo_paths::starknet_compile(&cache);
    line(cairo.exists(), &format!("Cairo 2.4.0 compiler: {}", cairo.display()), "cargo xtask tools --no-devnet".into());
    let target = target_dir();
    println!(
        "info    build folder: {} ({})",
        target.display(),
        if target.exists() { "exists" } else { "empty: the first build is cold" }
    );
    if missing == 0 {
        println!("everything the demo and the tests need is present");
    } else {
        println!(
            "{missing} missing: `cargo xtask demo` and `cargo xtask test` install the tools and, as root, the packages"
        );
    }
    Ok(())
}

/// Optional features CI builds and tests too: the wgpu backend (prover and worker) and the QUIC
/// transport.
const OPTIONAL_FEATURES: &str = "obelysk-prover/gpu,sage-worker/gpu,sage-net/quic";

fn test() -> Result<()> {
    let started = Instant::now();
    prepare(Purpose::Test)?;
    run_step("cargo fmt --check (seconds)", cargo().args(["fmt", "--all", "--check"]))?;
    let deny = tools::ensure_cargo_deny()?;
    run_step(
        "cargo deny: licences, banned and duplicate versions, sources (deny.toml; seconds)",
        Command::new(deny).current_dir(workspace_root()).args([
            "check",
            "--hide-inclusion-graph",
            "licenses",
            "bans",
            "sources",
        ]),
    )?;
    // One workspace-wide pass with the optional features the tests build with (a second
    // workspace pass without them would re-check every dependency for a few lines of code), then
    // the prover alone without `gpu`: the only crate with `cfg(not(feature = ...))` code.
    run_step(
        "cargo clippy -D warnings, with the optional features gpu + quic (first time about 10-15 minutes on 2 cores)",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            OPTIONAL_FEATURES,
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run_step(
        "cargo clippy -D warnings, obelysk-prover without gpu (its CPU-only code paths)",
        cargo().args(["clippy", "--package", "obelysk-prover", "--all-targets", "--locked", "--", "-D", "warnings"]),
    )?;
    build_devkit(&[], "sage-devkit (for contracts --check)", "5-8")?;
    devkit("contracts", &["--check".to_owned()])?;
    let postgres = tools::ensure_postgres()?;
    run_step(
        "cargo nextest: build the tests (first time about 10-15 minutes on 2 cores), then run them (about 2 minutes)",
        // The GPU kernels run on whatever Vulkan adapter exists: Mesa lavapipe without a GPU.
        cargo()
            .args(["nextest", "run", "--workspace", "--features", OPTIONAL_FEATURES, "--locked", "--no-fail-fast"])
            .env("SAGE_DEVNET_BIN", devnet_paths::devnet_binary())
            .env("SAGE_TEST_POSTGRES_URL", &postgres),
    )?;
    run_step("doc tests (first time a few minutes)", cargo().args(["test", "--workspace", "--doc", "--locked"]))?;
    e2e(&[])?;
    // The fault test of issue 19 at small numbers: a worker host SIGKILLed mid-run; its jobs
    // must be reassigned and every job paid exactly once, certified (the run checks the chain).
    let small = ["--workers", "12", "--jobs", "40", "--rate", "4", "--hosts", "3", "--kill-host"]
        .into_iter()
        .chain(["--lease-secs", "10", "--heartbeat-secs", "3"])
        .map(str::to_owned)
        .collect::<Vec<_>>();
    run_step(
        "load with a worker host SIGKILLed (12 workers on 3 hosts, 40 jobs; about a minute)",
        load(&small).env("RUST_LOG", "warn,libp2p=error"),
    )?;
    // Every fuzz target briefly over its committed seeds (a crash or failed oracle fails CI).
    fuzz::fuzz(&["--seconds".to_owned(), "30".to_owned()])?;
    eprintln!("all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// `cargo xtask load ARGS`: the load generator (an example of sage-validator) on the pinned devnet.
fn load(args: &[String]) -> Command {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--locked", "--package", "sage-validator", "--example", "load", "--"])
        .args(args)
        .env("SAGE_DEVNET_BIN", devnet_paths::devnet_binary());
    cmd
}

/// `cargo xtask e2e`: builds the three operator binaries and the harness, then runs the harness
/// (a devnet, a coordinator, four validators and two workers as processes; see tests/e2e).
fn e2e(args: &[String]) -> Result<()> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" | "--keep" => {}
            "--only" => {
                it.next().context("--only needs a scenario (1-10, F1-F5)")?;
            }
            other => bail!("unexpected argument {other:?} (e2e takes --only N, --json, --keep)"),
        }
    }
    run_step(
        "building sage-worker, sage-coordinator, sage-validator and the e2e harness (first time a few minutes)",
        cargo().args([
            "build",
            "--locked",
            "--package",
            "sage-worker",
            "--package",
            "sage-coordinator",
            "--package",
            "sage-validator",
            "--package",
            "sage-e2e",
        ]),
    )?;
    let bin_dir = target_dir().join("debug");
    let status = Command::new(bin_dir.join("sage-e2e"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(args)
        .env("SAGE_DEVNET_BIN", devnet_paths::devnet_binary())
        .status()
        .context("running sage-e2e")?;
    if !status.success() {
        bail!("cargo xtask e2e: scenarios failed ({status}); the table above names them and the log folder");
    }
    Ok(())
}

/// Cargo's target folder (`CARGO_TARGET_DIR`, else `target/` in the workspace).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// `cargo xtask install`: the operator binaries, built for this machine's CPU unless `--portable`.
fn install(args: &[String]) -> Result<()> {
    let mut portable = false;
    let mut gpu = false;
    let mut root: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--portable" => portable = true,
            "--gpu" => gpu = true,
            "--root" => root = Some(PathBuf::from(it.next().context("--root needs a folder")?)),
            other => bail!("unexpected argument {other:?} (install takes --portable, --gpu, --root DIR)"),
        }
    }
    preflight::system_packages(Purpose::Demo)?;
    let mut bins: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("bins"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    bins.sort();
    let flavour = if portable { "portable" } else { "native" };
    for bin in bins {
        let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut cmd = cargo();
        cmd.args(["install", "--locked", "--force", "--path"]).arg(&bin);
        if gpu && name == "sage-worker" {
            cmd.args(["--features", "gpu"]);
        }
        if let Some(root) = &root {
            cmd.arg("--root").arg(root);
        }
        // A separate build folder per flavour so switching does not rebuild the other.
        cmd.env("CARGO_TARGET_DIR", devnet_paths::cache_dir().join("build").join(format!("install-{flavour}")));
        if !portable {
            let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
            flags.push_str(" -C target-cpu=native");
            cmd.env("RUSTFLAGS", flags.trim());
        }
        run_step(
            &format!(
                "installing {name} ({} build, release profile; first time about 10 minutes on 2 cores)",
                if portable { "portable x86-64" } else { "-C target-cpu=native: for this machine only" }
            ),
            &mut cmd,
        )?;
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let (suite, extra) = match args.split_first() {
        Some((s, rest)) => (s.as_str(), rest.strip_prefix(&["--".to_owned()][..]).unwrap_or(rest)),
        None => bail!(
            "bench needs a suite: prover, gpu, crypto, wallet, consensus, net, coordinator, sdk, contracts, validators"
        ),
    };
    if suite == "validators" {
        prepare(Purpose::Demo)?;
        // Result on-chain -> verdict on-chain with 4 and 16 validators, beside bare verification.
        return run_step(
            "bench validators (verdict latency on a local devnet)",
            cargo()
                .args(["run", "--quiet", "--package", "sage-validator", "--example", "bench_validators"])
                .env("SAGE_DEVNET_BIN", devnet_paths::devnet_binary()),
        );
    }
    if suite == "contracts" {
        prepare(Purpose::Demo)?;
        // Settlement entry points on a local devnet: L2 gas and fees from receipts and traces.
        return run_step(
            "bench contracts (settlement gas on a local devnet)",
            cargo()
                .args(["run", "--quiet", "--package", "sage-payments", "--example", "contract_costs"])
                .env("SAGE_DEVNET_BIN", devnet_paths::devnet_binary()),
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
        "coordinator" => {
            // Store, HTTP API and scheduler against raw SQLite and a bare scan, one table.
            return run_step(
                "bench coordinator",
                cargo().args(["bench", "--package", "sage-jobs", "--bench", "coordinator"]),
            );
        }
        "sdk" => {
            // The SDK's cost per call over the raw HTTP request, same API and store.
            return run_step("bench sdk", cargo().args(["bench", "--package", "sage-sdk", "--bench", "overhead"]));
        }
        other => {
            bail!(
                "unknown bench suite {other:?} (known: prover, gpu, crypto|elgamal, wallet, consensus, net, coordinator, sdk, contracts, validators)"
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
