//! `sage-worker`: the worker operator's binary. See `sage-worker --help` and docs/OPERATORS.md.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use sage_wallet::{Derivation, KeystoreOptions, Mnemonic, ScryptParams, Wallet, WalletSummary};
use zeroize::Zeroizing;

mod chain;
mod config;
mod start;

/// Sage worker: run a verifiable GPU worker on Starknet.
///
/// Secrets never come from the command line: the keystore password is read from
/// --password-file, the SAGE_KEYSTORE_PASSWORD environment variable, or an interactive prompt.
#[derive(Parser)]
#[command(name = "sage-worker", version, about, long_about)]
struct Cli {
    /// Keystore file (Web3 Secret Storage v3, readable by starkli).
    #[arg(long, global = true, env = "SAGE_KEYSTORE", default_value_os_t = default_keystore())]
    keystore: PathBuf,
    /// Read the keystore password from this file (first line) instead of prompting.
    #[arg(long, global = true, env = "SAGE_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DerivationArg {
    /// Braavos: m/44'/9004'/0'/0/i (default).
    Braavos,
    /// Argent X: via the Ethereum key m/44'/60'/0'/0/0.
    ArgentX,
    /// EIP-2645 (Ledger, legacy Argent X).
    Eip2645,
}

impl From<DerivationArg> for Derivation {
    fn from(d: DerivationArg) -> Self {
        match d {
            DerivationArg::Braavos => Derivation::Braavos,
            DerivationArg::ArgentX => Derivation::ArgentX,
            DerivationArg::Eip2645 => Derivation::Eip2645,
        }
    }
}

#[derive(clap::Args)]
struct KeyArgs {
    /// How the Stark key is derived from the mnemonic.
    #[arg(long, value_enum, default_value = "braavos")]
    derivation: DerivationArg,
    /// Account index on the derivation path.
    #[arg(long, default_value_t = 0)]
    account_index: u32,
    /// File holding an optional BIP-39 passphrase (not the keystore password).
    #[arg(long)]
    bip39_passphrase_file: Option<PathBuf>,
    /// scrypt cost log2(N) for the keystore (default 18: ~256 MiB, about a second; starkli uses 13).
    #[arg(long, default_value_t = ScryptParams::DEFAULT.log_n, value_parser = clap::value_parser!(u8).range(10..=22))]
    scrypt_log_n: u8,
    /// Replace an existing keystore.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a 24-word mnemonic, derive the Stark and ElGamal keys, write the keystore.
    ///
    /// The mnemonic is shown once on the terminal (stderr) unless --mnemonic-out is given, in
    /// which case it is written to that file (mode 0600) and not shown.
    CreateWallet {
        #[command(flatten)]
        keys: KeyArgs,
        /// Write the mnemonic to this new file instead of showing it.
        #[arg(long)]
        mnemonic_out: Option<PathBuf>,
    },
    /// Restore a wallet from a mnemonic kept in a file.
    ImportWallet {
        #[command(flatten)]
        keys: KeyArgs,
        /// File holding the mnemonic (12–24 words).
        #[arg(long)]
        mnemonic_file: PathBuf,
    },
    /// Print the wallet's account address and public keys.
    Address,
    /// Run a job and prove it on this machine, as the worker does for an assigned job; writes the
    /// compressed proof envelope.
    ///
    /// The proof is bound to the job id and the worker address; validators check both. With
    /// `--backend gpu` (or `auto` on a machine with a hardware GPU) the circle FFTs and Merkle
    /// trees run on the GPU; the proof is byte-identical to the CPU one, and a GPU fault is redone
    /// on the CPU, never turned into a wrong proof.
    Prove {
        /// A matmul job: n×n matrices over M31 (n a power of two, 2..=1024) derived from --seed.
        #[arg(long, value_name = "N")]
        matmul: u32,
        /// 32-byte seed (hex) the matrices are derived from.
        #[arg(long, default_value = "0x0")]
        seed: String,
        /// Job id (hex felt, as on-chain).
        #[arg(long, default_value = "0x1")]
        job_id: String,
        /// Worker address the proof is bound to (hex felt; default: 0).
        #[arg(long, default_value = "0x0")]
        worker: String,
        /// Where proving runs.
        #[arg(long, value_enum, env = "SAGE_PROVER_BACKEND", default_value = "auto")]
        backend: BackendArg,
        /// Proof security: `production` (96 bits, what validators accept) or `test` (fast, about
        /// 8 bits, rejected by validators; for trying things out).
        #[arg(long, value_enum, default_value = "production")]
        security: SecurityArg,
        /// Write the compressed envelope to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the worker: join the network, send heartbeats, prove the jobs the coordinator assigns
    /// to this wallet's address, serve the proofs and announce the results. Runs until SIGINT or
    /// SIGTERM.
    ///
    /// Settings come from a TOML config file (default: config.toml next to the keystore; see
    /// docs/OPERATORS.md); flags override it. Only assignments signed by the configured
    /// coordinator key are acted on. Progress goes to stdout, one JSON object per line with --json.
    Start(start::StartArgs),
    /// Get SAGE from the faucet. On a devnet also mints the fee token; the account contract (the
    /// address `create-wallet` printed) is deployed on first use. Inside the faucet's cooldown it
    /// says when the next drip is possible.
    RequestTokens {
        #[command(flatten)]
        chain: chain::ChainArgs,
    },
    /// Stake SAGE for a GPU tier (the tier minimum applies), locked for a while: a job is assigned
    /// only to a worker whose stake stays locked past its deadline plus the verdict grace.
    Stake {
        #[command(flatten)]
        chain: chain::ChainArgs,
        /// Amount in SAGE (decimal, e.g. 1000 or 1000.5).
        #[arg(long)]
        amount: String,
        /// GPU tier: T4, L4, A10, A100, H100, H200.
        #[arg(long)]
        gpu_tier: sage_types::GpuTier,
        /// Lock in seconds (default 30 days).
        #[arg(long, default_value_t = 30 * 24 * 3600)]
        lock_secs: u64,
    },
    /// Start unstaking (allowed once the lock has ended; the SAGE stays slashable during the
    /// cooldown, then `withdraw` returns it).
    Unstake {
        #[command(flatten)]
        chain: chain::ChainArgs,
        /// Amount in SAGE.
        #[arg(long)]
        amount: String,
    },
    /// Withdraw the SAGE whose unstaking cooldown has ended.
    Withdraw {
        #[command(flatten)]
        chain: chain::ChainArgs,
    },
    /// Register as a worker: the ElGamal key payments are encrypted to (with its proof of
    /// ownership), the libp2p peer id, and TEE evidence.
    ///
    /// With `--tee auto|tdx|sev-snp` the evidence comes from this machine's TEE through Linux
    /// configfs-tsm: a quote (TDX) or attestation report (SEV-SNP) whose report data binds this
    /// worker's key and a fresh random nonce, verified here with sage-tee before anything is sent;
    /// the chain records hashes of its measurement and of the quote. A TDX quote needs the
    /// platform's collateral from your PCCS (`--collateral`); an SEV-SNP report needs its VCEK,
    /// taken from the host's certificate table or given with `--vcek`. `--tee none` (the default)
    /// registers without a TEE: only a development policy (a devnet coordinator) accepts it.
    Register {
        #[command(flatten)]
        chain: chain::ChainArgs,
        /// `none`, `auto` (whatever configfs-tsm offers), `tdx` or `sev-snp`.
        #[arg(long, default_value = "none", value_parser = ["none", "auto", "tdx", "sev-snp"])]
        tee: String,
        /// configfs-tsm report directory (or an existing report entry).
        #[arg(long, default_value = sage_tee::collect::CONFIGFS_TSM_REPORT)]
        tsm: PathBuf,
        /// DCAP collateral JSON for a TDX quote (from your PCCS).
        #[arg(long)]
        collateral: Option<PathBuf>,
        /// VCEK certificate (DER) for an SEV-SNP report, when the host's table has none.
        #[arg(long)]
        vcek: Option<PathBuf>,
        /// libp2p identity whose peer id is registered (default: p2p.key next to the keystore,
        /// created if missing; the same file `start` uses).
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Stake, registration, reputation and SAGE balance of this wallet's account.
    Status {
        #[command(flatten)]
        chain: chain::ChainArgs,
    },
    /// The encrypted balance of payments received, decrypted with the wallet's ElGamal key (baby-step
    /// giant-step; the table is cached beside the keystore).
    Balance {
        #[command(flatten)]
        chain: chain::ChainArgs,
    },
    /// Claim the whole encrypted balance into the account's public SAGE balance (a Chaum–Pedersen
    /// proof of the decryption, checked on-chain).
    #[command(alias = "claim-payments")]
    Claim {
        #[command(flatten)]
        chain: chain::ChainArgs,
    },
}

fn units_json(units: u64, unit: u128) -> serde_json::Value {
    let base = u128::from(units) * unit;
    serde_json::json!({ "units": units, "base_units": base.to_string(),
                        "sage": sage_chain::format_sage(base) })
}

#[derive(Debug, Clone, Copy, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackendArg {
    /// A hardware GPU if one is usable, else the CPU (the fallback is logged once).
    Auto,
    /// Stwo's SIMD backend on all cores.
    Cpu,
    /// The wgpu backend; an error if no GPU adapter exists or the binary was built without the
    /// `gpu` feature.
    Gpu,
}

impl From<BackendArg> for obelysk_prover::ProverBackend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => obelysk_prover::ProverBackend::Auto,
            BackendArg::Cpu => obelysk_prover::ProverBackend::Cpu,
            BackendArg::Gpu => obelysk_prover::ProverBackend::Gpu,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum SecurityArg {
    /// 96 bits (blowup 4, 38 queries, 20 grinding bits).
    Production,
    /// About 8 bits: fast, only for trying things out.
    Test,
}

/// How a backend that made a proof is named in output (`cpu`, `gpu`).
fn backend_name(backend: obelysk_prover::ProverBackend) -> &'static str {
    match backend {
        obelysk_prover::ProverBackend::Gpu => "gpu",
        _ => "cpu",
    }
}

fn default_keystore() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".sage").join("worker").join("keystore.json")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs (GPU fallbacks, backend choice) go to stderr; SAGE_LOG=info|debug for more.
    sage_daemon::init_logging("SAGE_LOG", "warn");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {what} from {}", path.display()))?,
    );
    Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
}

/// The keystore password: --password-file, SAGE_KEYSTORE_PASSWORD, or a prompt (twice when
/// creating).
fn password(cli: &Cli, confirm: bool) -> Result<Zeroizing<String>> {
    let pw = if let Some(file) = &cli.password_file {
        read_secret_file(file, "the keystore password")?
    } else if let Ok(pw) = std::env::var("SAGE_KEYSTORE_PASSWORD") {
        Zeroizing::new(pw)
    } else if std::io::stdin().is_terminal() {
        let pw = Zeroizing::new(rpassword::prompt_password("Keystore password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
            if *again != *pw {
                bail!("the passwords do not match");
            }
        }
        pw
    } else {
        bail!("no keystore password: use --password-file, SAGE_KEYSTORE_PASSWORD, or run on a terminal");
    };
    if pw.is_empty() {
        bail!("the keystore password is empty");
    }
    Ok(pw)
}

fn print_summary(cli: &Cli, summary: &WalletSummary, verb: &str) -> Result<()> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        println!("{verb}");
        println!("  address            {}", summary.address);
        println!("  public key         {}", summary.public_key);
        println!("  ElGamal public key ({}, {})", summary.elgamal_public_key[0], summary.elgamal_public_key[1]);
        if let Some(d) = &summary.derivation {
            println!("  derivation         {d}, account index {}", summary.account_index);
        }
        if let Some(k) = &summary.keystore {
            println!("  keystore           {k}");
        }
    }
    Ok(())
}

fn save(cli: &Cli, keys: &KeyArgs, mnemonic: &Mnemonic) -> Result<Wallet> {
    if cli.keystore.exists() && !keys.force {
        bail!("{} already exists (use --force to replace it)", cli.keystore.display());
    }
    let passphrase = match &keys.bip39_passphrase_file {
        Some(p) => read_secret_file(p, "the BIP-39 passphrase")?,
        None => Zeroizing::new(String::new()),
    };
    let wallet = Wallet::from_mnemonic(mnemonic, &passphrase, keys.derivation.into(), keys.account_index)
        .context("deriving keys from the mnemonic")?;
    let password = password(cli, true)?;
    let options = KeystoreOptions {
        scrypt: ScryptParams { log_n: keys.scrypt_log_n, ..ScryptParams::DEFAULT },
        force: keys.force,
    };
    wallet.save(&cli.keystore, &password, options).with_context(|| format!("writing {}", cli.keystore.display()))?;
    Ok(wallet)
}

fn write_new_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::CreateWallet { keys, mnemonic_out } => {
            let mnemonic = Mnemonic::generate().context("reading OS randomness")?;
            let wallet = save(&cli, keys, &mnemonic)?;
            match mnemonic_out {
                Some(path) => {
                    write_new_private(path, &mnemonic.phrase())?;
                    eprintln!("mnemonic written to {} (mode 0600): keep it offline", path.display());
                }
                None => {
                    eprintln!("\nYour 24-word mnemonic (shown once; write it down, it restores every key):\n");
                    eprintln!("  {}\n", mnemonic.phrase().as_str());
                }
            }
            print_summary(&cli, &wallet.summary(Some(&cli.keystore)), "wallet created")
        }
        Command::ImportWallet { keys, mnemonic_file } => {
            let phrase = Zeroizing::new(
                std::fs::read_to_string(mnemonic_file)
                    .with_context(|| format!("reading the mnemonic from {}", mnemonic_file.display()))?,
            );
            let mnemonic = Mnemonic::parse(&phrase).context("invalid mnemonic")?;
            let wallet = save(&cli, keys, &mnemonic)?;
            print_summary(&cli, &wallet.summary(Some(&cli.keystore)), "wallet imported")
        }
        Command::Prove { matmul, seed, job_id, worker, backend, security, out } => {
            prove(&cli, *matmul, seed, job_id, worker, *backend, *security, out.as_deref())
        }
        Command::Start(args) => start::start(args, &cli.keystore, || password(&cli, false), cli.json),
        Command::RequestTokens { chain } => on_chain(&cli, chain, |c, wallet| {
            let rpc = c.client.config().rpc_url.to_string();
            let key = wallet.signer().clone();
            Box::pin(async move {
                let value = match c.request_tokens(key, &rpc).await? {
                    Ok(tx) => serde_json::json!({ "dripped": true, "tx": format!("{tx:#x}") }),
                    Err(next) => serde_json::json!({ "dripped": false, "next_drip_at": next }),
                };
                Ok(value)
            })
        }),
        Command::Stake { chain, amount, gpu_tier, lock_secs } => {
            let amount = sage_chain::parse_sage(amount).map_err(anyhow::Error::msg)?;
            let (tier, lock) = (*gpu_tier, *lock_secs);
            on_chain(&cli, chain, move |c, _| {
                Box::pin(async move {
                    let tx = c.stake(amount, tier, lock).await?;
                    Ok(
                        serde_json::json!({ "staked": amount.to_string(), "tier": tier.to_string(), "tx": format!("{tx:#x}") }),
                    )
                })
            })
        }
        Command::Unstake { chain, amount } => {
            let amount = sage_chain::parse_sage(amount).map_err(anyhow::Error::msg)?;
            on_chain(&cli, chain, move |c, _| {
                Box::pin(async move {
                    let tx = c.unstake(amount).await?;
                    Ok(serde_json::json!({ "unstaking": amount.to_string(), "tx": format!("{tx:#x}") }))
                })
            })
        }
        Command::Withdraw { chain } => on_chain(&cli, chain, |c, _| {
            Box::pin(async move {
                let tx = c.withdraw().await?;
                Ok(serde_json::json!({ "withdrawn": true, "tx": format!("{tx:#x}") }))
            })
        }),
        Command::Register { chain, tee, tsm, collateral, vcek, identity } => {
            let wanted = match tee.as_str() {
                "none" => None,
                "auto" => Some(None),
                "tdx" => Some(Some(sage_types::TeeType::Tdx)),
                "sev-snp" => Some(Some(sage_types::TeeType::SevSnp)),
                other => bail!("--tee {other:?}: none, auto, tdx or sev-snp"),
            };
            let collateral = collateral
                .as_ref()
                .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading --collateral {}", p.display())))
                .transpose()?;
            let vcek = vcek
                .as_ref()
                .map(|p| std::fs::read(p).with_context(|| format!("reading --vcek {}", p.display())))
                .transpose()?;
            let identity =
                identity.clone().unwrap_or_else(|| cli.keystore.parent().unwrap_or(Path::new(".")).join("p2p.key"));
            let peer = sage_net::load_or_create_identity(&identity)
                .with_context(|| format!("the libp2p identity {}", identity.display()))?
                .public()
                .to_peer_id();
            let tsm = tsm.clone();
            let before = move |wallet: &Wallet| -> Result<Option<sage_staking::TeeEvidence>> {
                let Some(wanted) = wanted else { return Ok(None) };
                let attested = attest(&tsm, wallet.public_key(), wanted, collateral.as_deref(), vcek)?;
                eprintln!(
                    "{:?} evidence verified: measurement {}, TCB {}",
                    attested.attestation.tee(),
                    hex::encode(attested.attestation.measurement()),
                    attested.attestation.tcb_status()
                );
                Ok(Some(sage_staking::TeeEvidence {
                    tee_type: attested.attestation.tee(),
                    measurement_hash: attested.measurement_hash,
                    quote_hash: attested.quote_hash,
                }))
            };
            on_chain_after(&cli, chain, before, move |c, wallet, evidence| {
                let elgamal = wallet.elgamal_secret_key().clone();
                Box::pin(async move {
                    let evidence = evidence.unwrap_or_else(|| c.no_tee_evidence());
                    let tee = evidence.tee_type;
                    let tx = c.register(&elgamal, sage_net::peer_id_digest(&peer), evidence).await?;
                    if tee == sage_types::TeeType::None {
                        eprintln!(
                            "registered with TEE `none`: only a development policy (a devnet coordinator) assigns work to this worker"
                        );
                    }
                    Ok(serde_json::json!({ "registered": true, "tee": format!("{tee:?}"), "peer_id": peer.to_string(),
                                           "tx": format!("{tx:#x}") }))
                })
            })
        }
        Command::Status { chain } => on_chain(&cli, chain, |c, _| Box::pin(async move { c.status().await })),
        Command::Balance { chain } => {
            let dir = cli.keystore.parent().unwrap_or(Path::new(".")).to_path_buf();
            on_chain(&cli, chain, move |c, wallet| {
                Box::pin(async move {
                    let table = tokio::task::spawn_blocking(move || chain::table(&dir)).await??;
                    let (units, unit) = c.balance(wallet.elgamal_secret_key(), &table).await?;
                    Ok(units_json(units, unit))
                })
            })
        }
        Command::Claim { chain } => {
            let dir = cli.keystore.parent().unwrap_or(Path::new(".")).to_path_buf();
            on_chain(&cli, chain, move |c, wallet| {
                Box::pin(async move {
                    let table = tokio::task::spawn_blocking(move || chain::table(&dir)).await??;
                    let (units, unit, tx) = c.claim(wallet.elgamal_secret_key(), &table).await?;
                    let mut v = units_json(units, unit);
                    v["claimed"] = true.into();
                    v["tx"] = format!("{tx:#x}").into();
                    Ok(v)
                })
            })
        }
        Command::Address => {
            let password = password(&cli, false)?;
            let wallet = Wallet::open(&cli.keystore, &password)
                .with_context(|| format!("opening keystore {}", cli.keystore.display()))?;
            print_summary(&cli, &wallet.summary(Some(&cli.keystore)), "wallet")
        }
    }
}

#[allow(clippy::too_many_arguments, reason = "one CLI command's flags")]
fn prove(
    cli: &Cli,
    n: u32,
    seed: &str,
    job_id: &str,
    worker: &str,
    backend: BackendArg,
    security: SecurityArg,
    out: Option<&Path>,
) -> Result<()> {
    use obelysk_prover::statement::{JobId, WorkerAddress};
    use obelysk_prover::{Job, ProofConfig, ProveConfig, matmul::MatmulJob};
    let seed = JobId::from_hex(seed).context("--seed must be hex (up to 64 digits)")?.0;
    let id = JobId::from_hex(job_id).context("--job-id must be a hex felt")?;
    let worker = WorkerAddress::from_hex(worker).context("--worker must be a hex felt")?;
    let proof = match security {
        SecurityArg::Production => ProofConfig::PRODUCTION,
        SecurityArg::Test => ProofConfig::insecure_for_tests(),
    };
    let job = Job::matmul(id, worker, MatmulJob::from_seed(n, seed));
    if !cli.json {
        eprintln!("proving matmul n = {n} ({} bits of security) ...", proof.security_bits());
    }
    let start = std::time::Instant::now();
    let proved =
        obelysk_prover::prove_with_output(&job, &ProveConfig { proof, backend: backend.into(), ..Default::default() })
            .context("proving failed")?;
    let elapsed = start.elapsed();
    if let Some(path) = out {
        std::fs::write(path, &proved.encoded.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let backend_name = backend_name(proved.backend);
    let statement = &proved.envelope.statement;
    if cli.json {
        let v = serde_json::json!({
            "job_type": "matmul",
            "n": n,
            "job_id": statement.job_id.to_hex(),
            "worker": statement.worker.to_hex(),
            "backend": backend_name,
            "security_bits": proof.security_bits(),
            "proof_hash": proved.encoded.proof_hash.to_hex(),
            "proof_bytes": proved.encoded.bytes.len(),
            "output_commitment": statement.output_commitment.to_hex(),
            "elapsed_ms": elapsed.as_secs_f64() * 1e3,
            "out": out.map(|p| p.display().to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("proved matmul n = {n} on the {backend_name} backend in {:.1} ms", elapsed.as_secs_f64() * 1e3);
        println!("  proof hash         {}", proved.encoded.proof_hash);
        println!("  proof size         {} bytes", proved.encoded.bytes.len());
        println!("  output commitment  {}", statement.output_commitment);
        if let Some(p) = out {
            println!("  envelope           {}", p.display());
        }
    }
    Ok(())
}

type ChainTask<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value>> + 'a>>;

/// Opens the wallet, connects its account to the chain (flags over the `[chain]` of the
/// config.toml next to the keystore) and runs `task`, printing its JSON result.
/// Collects, verifies and binds this machine's TEE evidence (see `register --help`).
fn attest(
    tsm: &Path,
    worker_key: starknet_types_core::felt::Felt,
    wanted: Option<sage_types::TeeType>,
    collateral: Option<&str>,
    vcek: Option<Vec<u8>>,
) -> Result<sage_tee::collect::Attested> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    sage_tee::collect::attest_worker(tsm, worker_key, nonce, wanted, collateral, vcek, now)
        .context("TEE evidence (nothing was registered)")
}

fn on_chain(
    cli: &Cli,
    args: &chain::ChainArgs,
    task: impl for<'a> FnOnce(&'a chain::WorkerChain, &'a Wallet) -> ChainTask<'a>,
) -> Result<()> {
    on_chain_after(cli, args, |_| Ok(()), |c, w, ()| task(c, w))
}

/// [`on_chain`] with a step run with the opened wallet before the chain is touched (checks that
/// can fail without a transaction, such as TEE evidence).
fn on_chain_after<P>(
    cli: &Cli,
    args: &chain::ChainArgs,
    before: impl FnOnce(&Wallet) -> Result<P>,
    task: impl for<'a> FnOnce(&'a chain::WorkerChain, &'a Wallet, P) -> ChainTask<'a>,
) -> Result<()> {
    let config_path = cli.keystore.parent().unwrap_or(Path::new(".")).join("config.toml");
    let file = config::WorkerConfig::load(&config_path, false)?;
    let resolved = chain::ChainSettings::resolve(
        args,
        file.chain.rpc_url.as_deref(),
        file.chain
            .manifest
            .map(|p| if p.is_absolute() { p } else { config_path.parent().unwrap_or(Path::new(".")).join(p) })
            .as_deref(),
    )?
    .context("no chain: pass --rpc-url and --manifest (or set [chain] in the config.toml next to the keystore)")?;
    let password = password(cli, false)?;
    let wallet = Wallet::open(&cli.keystore, &password)
        .with_context(|| format!("opening keystore {}", cli.keystore.display()))?;
    let prepared = before(&wallet)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let value = runtime.block_on(async {
        let c = chain::WorkerChain::connect(&resolved, wallet.signer().clone(), wallet.address()).await?;
        task(&c, &wallet, prepared).await
    })?;
    if cli.json {
        println!("{value}");
    } else {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}
