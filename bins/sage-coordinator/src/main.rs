//! `sage-coordinator`: the coordinator operator's binary, and the client commands that talk to any
//! coordinator. See `sage-coordinator --help` and docs/OPERATORS.md.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use sage_chain::{SageAccount, contracts::Deployment};
use sage_coordinator::{open_store, read_key_file, settings::Settings};
use sage_jobs::{keys, lifecycle::Input, now_ms, service::JobService};
use sage_protocol::{
    Felt, JobSpec,
    api::{JobState, JobView},
};
use serde_json::json;

/// Sage coordinator: accept jobs, escrow-check them on-chain, assign staked workers, check their
/// proofs and pay them after a valid verdict.
///
/// Operator commands (`start`, `api-key`, `requeue`) read the config file. Client commands
/// (`submit-job`, `job`, `jobs`, `wait-job`, `verify-proof`, `output`, `workers`, `quote`) talk to any
/// coordinator over HTTP (--url) with an API key from SAGE_API_KEY or --api-key-file. Secrets
/// never come from the command line.
#[derive(Parser)]
#[command(name = "sage-coordinator", version, about, long_about)]
struct Cli {
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Coordinator config file (TOML; see docs/OPERATORS.md).
    #[arg(long, env = "SAGE_COORDINATOR_CONFIG", default_value = "coordinator.toml")]
    config: PathBuf,
}

#[derive(clap::Args)]
struct Remote {
    /// Coordinator API.
    #[arg(long, env = "SAGE_COORDINATOR_URL", default_value = "http://127.0.0.1:8640")]
    url: String,
    /// File holding the API key (otherwise the SAGE_API_KEY environment variable).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the coordinator: HTTP API, chain watcher, scheduler, lease ticker, outbox, libp2p.
    Start(ConfigArg),
    /// Manage API keys (stored hashed; the secret is printed once, at creation).
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Put an assigned job whose worker is stuck back in the queue (it is reassigned once the
    /// on-chain lease has run out).
    Requeue {
        #[command(flatten)]
        config: ConfigArg,
        /// Job id (0x hex).
        id: String,
    },
    /// Escrow a job on-chain with the client's account, upload its spec and print its id.
    SubmitJob(SubmitArgs),
    /// Cancel a job before it is assigned: the client's account calls `cancel` on-chain (the
    /// escrow comes back) and the coordinator is told.
    CancelJob {
        #[command(flatten)]
        client: ClientChain,
        /// Job id.
        id: String,
    },
    /// One job with its history.
    Job {
        #[command(flatten)]
        remote: Remote,
        /// Job id.
        id: String,
    },
    /// Recent jobs.
    Jobs {
        #[command(flatten)]
        remote: Remote,
        /// Only this state (`queued`, `paid`, …).
        #[arg(long)]
        state: Option<String>,
        /// Only this client.
        #[arg(long)]
        client: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Follow a job's state changes live (server-sent events) until it ends.
    WaitJob {
        #[command(flatten)]
        remote: Remote,
        /// Job id.
        id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Download a job's proof envelope and verify it locally, against the escrow's spec, the
    /// worker and proof hash the chain recorded, and the on-chain verdict.
    VerifyProof {
        #[command(flatten)]
        checked: Checked,
        /// Also write the envelope here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Download a certified job's output (matmul: C, u32 little-endian, row-major) and accept it
    /// only if it matches the verified proof's output commitment.
    Output {
        #[command(flatten)]
        checked: Checked,
        /// Write the values here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Workers the coordinator knows.
    Workers {
        #[command(flatten)]
        remote: Remote,
    },
    /// Price and expected time of a job.
    Quote {
        #[command(flatten)]
        remote: Remote,
        /// Job type.
        #[arg(long = "type", default_value = "matmul")]
        job_type: String,
        /// Size (matmul: n; vm: instructions; vm-jump: the step budget).
        #[arg(long)]
        size: u32,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        #[command(flatten)]
        config: ConfigArg,
        /// A name for it (who uses it).
        #[arg(long)]
        name: String,
        /// Requests per minute.
        #[arg(long, default_value_t = 600)]
        rate_per_min: u32,
        /// Most jobs it may submit.
        #[arg(long)]
        quota: Option<u64>,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Revoke a key by prefix or name.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// Prefix or name.
        key: String,
    },
}

/// The chain a client reads.
#[derive(clap::Args)]
struct ChainArgs {
    /// Starknet JSON-RPC endpoint.
    #[arg(long, env = "SAGE_RPC_URL", default_value = "http://127.0.0.1:5050")]
    rpc_url: String,
    /// Deployment manifest.
    #[arg(long, env = "SAGE_MANIFEST", default_value = "deployments/devnet.json")]
    manifest: PathBuf,
}

/// A job checked on this machine against the chain (`verify-proof`, `output`).
#[derive(clap::Args)]
struct Checked {
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    chain: ChainArgs,
    /// Job id.
    id: String,
    /// Accept proofs below the production security level (test networks).
    #[arg(long)]
    insecure: bool,
}

impl Checked {
    /// The job id and a read-only SDK client that checks results against the chain.
    async fn sdk(&self) -> Result<(Felt, sage_sdk::Client)> {
        let id = felt(&self.id, "job id")?;
        let (client, contracts) = Deployment::connect(&self.chain.rpc_url, &self.chain.manifest).await?;
        let security = if self.insecure { sage_sdk::Security::Test } else { sage_sdk::Security::Production };
        Ok((id, self.remote.builder()?.chain(client, contracts).security(security).build()?))
    }
}

/// The client's coordinator, chain and account.
#[derive(clap::Args)]
struct ClientChain {
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    chain: ChainArgs,
    /// The client's account address.
    #[arg(long, env = "SAGE_ACCOUNT")]
    account: String,
    /// File holding the account's Stark private key (hex, first line).
    #[arg(long, env = "SAGE_ACCOUNT_KEY_FILE")]
    key_file: PathBuf,
}

impl ClientChain {
    /// An SDK client that signs with the client's account.
    async fn sdk(&self) -> Result<sage_sdk::Client> {
        let (client, contracts) = Deployment::connect(&self.chain.rpc_url, &self.chain.manifest).await?;
        let account = SageAccount::new(client, felt(&self.account, "account")?, read_key_file(&self.key_file)?);
        Ok(self.remote.builder()?.account(account, contracts).build()?)
    }
}

#[derive(clap::Args)]
struct SubmitArgs {
    #[command(flatten)]
    client: ClientChain,
    /// Job type: `matmul` (seeded, or your matrices with --a/--b), `vm` (a straight-line
    /// program), `vm-jump` (a program with jumps and a step budget).
    #[arg(long = "type", default_value = "matmul", value_parser = ["matmul", "vm", "vm-jump", "vm_jump"])]
    job_type: String,
    /// Matrix size n (matmul: a power of two, 2..=1024).
    #[arg(long)]
    size: Option<u32>,
    /// Seed of the matrices (hex felt; random when absent and no --a/--b).
    #[arg(long, conflicts_with_all = ["a", "b"])]
    seed: Option<String>,
    /// Matrix A: a file of n² little-endian u32 values, row-major, each below 2^31 − 1
    /// (uploaded as a content-addressed blob; the spec names its sha256).
    #[arg(long, requires = "b")]
    a: Option<PathBuf>,
    /// Matrix B, like --a.
    #[arg(long, requires = "a")]
    b: Option<PathBuf>,
    /// VM program file, one instruction per line: `add r2 r0 r1`, `addi r1 r1 5`, `mov`,
    /// `loadi r0 7`, `sub`, `mul`, `nop`; vm-jump adds `jnz r0 4`, `jmp 0`, `halt`; `#` comments.
    #[arg(long)]
    program: Option<PathBuf>,
    /// VM input registers r0..r3, comma-separated (missing ones are 0).
    #[arg(long, value_delimiter = ',')]
    inputs: Vec<u32>,
    /// vm-jump step budget: the program must halt within it (at most 65,536 on the network).
    #[arg(long, default_value_t = 4096)]
    max_steps: u32,
    /// Escrow in SAGE base units (default: the coordinator's quote).
    #[arg(long)]
    payment: Option<u128>,
    /// Seconds from now to the deadline.
    #[arg(long, default_value_t = 3600)]
    deadline_secs: u64,
    /// Your own id for the job (hex felt; random when absent).
    #[arg(long)]
    client_job_id: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sage_daemon::init_logging("RUST_LOG", "info,libp2p=warn");
    sage_daemon::run(run(&cli), |e| {
        if cli.json {
            println!("{}", json!({ "error": format!("{e:#}") }));
        } else {
            eprintln!("error: {e:#}");
        }
    })
}

fn felt(text: &str, what: &str) -> Result<Felt> {
    let t = text.trim();
    if !t.starts_with("0x") {
        bail!("{what} {text:?} must be 0x-hex");
    }
    Felt::from_hex(t).map_err(|_| anyhow::anyhow!("{what} {text:?} is not a hex felt"))
}

fn random_felt() -> Result<Felt> {
    let mut bytes = [0u8; 31];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(Felt::from_bytes_be_slice(&bytes))
}

fn print(cli: &Cli, value: serde_json::Value, human: impl FnOnce() -> String) {
    if cli.json {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

async fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Start(c) => {
            let settings = Settings::load(&c.config)?;
            let key = read_key_file(&settings.key_file)?;
            let running = sage_coordinator::start(settings, key).await?;
            print(
                cli,
                json!({
                    "event": "started",
                    "api": format!("http://{}", running.api_addr),
                    "p2p": running.p2p_addr.to_string(),
                    "public_key": format!("{:#x}", running.public_key),
                }),
                || {
                    format!(
                        "coordinator started\n  API         http://{}\n  p2p         {}\n  public key  {:#x} (workers \
                         pin it as network.coordinator)",
                        running.api_addr, running.p2p_addr, running.public_key
                    )
                },
            );
            running.wait().await
        }
        Command::ApiKey(cmd) => api_key(cli, cmd).await,
        Command::Requeue { config, id } => {
            let settings = Settings::load(&config.config)?;
            let id = felt(id, "job id")?;
            let service = JobService::new(open_store(&settings).await?, settings.rules);
            let (step, job) = service.apply(id, Input::Requeue, now_ms()).await?;
            print(
                cli,
                json!({ "job": format!("{id:#x}"), "state": job.state, "transitions": step.transitions }),
                || format!("job {id:#x} is {} (attempts {})", job.state, job.attempts),
            );
            Ok(())
        }
        Command::SubmitJob(args) => submit(cli, args).await,
        Command::CancelJob { client, id } => {
            let id = felt(id, "job id")?;
            let tx = client.sdk().await?.cancel(id).await.context("cancelling")?;
            print(
                cli,
                json!({ "job": format!("{id:#x}"), "cancelled": true, "refund_tx": format!("{tx:#x}") }),
                || format!("job {id:#x} cancelled; escrow refunded (tx {tx:#x})"),
            );
            Ok(())
        }
        Command::Job { remote, id } => {
            let view = remote.sdk()?.status(felt(id, "job id")?).await?;
            print(cli, serde_json::to_value(&view)?, || describe(&view));
            Ok(())
        }
        Command::Jobs { remote, state, client, limit } => {
            let state = match state {
                Some(s) => Some(JobState::parse(s).with_context(|| format!("unknown state {s:?}"))?),
                None => None,
            };
            let client = client.as_deref().map(|c| felt(c, "client")).transpose()?;
            let jobs = remote.sdk()?.list(state, client, *limit).await?;
            print(cli, json!({ "jobs": jobs }), || {
                let mut out = format!("{:<68} {:<16} {:>8}\n", "JOB", "STATE", "ATTEMPTS");
                for j in &jobs {
                    out.push_str(&format!("{:<68} {:<16} {:>8}\n", format!("{:#x}", j.id), j.state, j.attempts));
                }
                out.trim_end().to_owned()
            });
            Ok(())
        }
        Command::WaitJob { remote, id, timeout } => {
            let id = felt(id, "job id")?;
            let last = wait(cli, &remote.sdk()?, id, Duration::from_secs(*timeout)).await?;
            if cli.json {
                println!("{}", json!({ "event": "done", "job": format!("{id:#x}"), "state": last }));
            }
            Ok(())
        }
        Command::VerifyProof { checked, out } => verify(cli, checked, out.as_deref()).await,
        Command::Output { checked, out } => {
            let (id, sdk) = checked.sdk().await?;
            let c = sdk.output(id).await?;
            let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
            if let Some(path) = out {
                std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            }
            let digest: String = {
                use sha2::Digest;
                sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
            };
            let n = c.len().isqrt();
            print(
                cli,
                json!({ "job": format!("{id:#x}"), "n": n, "values": c.len(), "verified": true,
                        "sha256_u32le": digest, "first_row": &c[..n.min(c.len())] }),
                || format!("output of job {id:#x}: {n}×{n} values, matching the certified proof; sha256 {digest}"),
            );
            Ok(())
        }
        Command::Workers { remote } => {
            let workers = remote.sdk()?.workers().await?;
            print(cli, serde_json::to_value(&workers)?, || {
                let mut out =
                    format!("{:<68} {:<6} {:>6} {:>9} {:>6}\n", "WORKER", "TIER", "ACTIVE", "COMPLETED", "FAILED");
                for w in &workers {
                    out.push_str(&format!(
                        "{:<68} {:<6} {:>6} {:>9} {:>6}\n",
                        format!("{:#x}", w.address),
                        w.tier,
                        w.active,
                        w.completed,
                        w.failed
                    ));
                }
                out.trim_end().to_owned()
            });
            Ok(())
        }
        Command::Quote { remote, job_type, size } => {
            let job_type = job_type.replace('-', "_");
            let spec = JobSpec::for_quote(&job_type, *size)
                .with_context(|| format!("unknown job type {job_type:?} (matmul, vm, vm-jump)"))?;
            let q = remote.sdk()?.quote(&spec).await?;
            print(cli, serde_json::to_value(&q)?, || {
                format!(
                    "{} size {}: {} SAGE base units, about {} ms ({})",
                    q.job_type, q.size, q.price, q.expected_ms, q.basis
                )
            });
            Ok(())
        }
    }
}

async fn api_key(cli: &Cli, cmd: &ApiKeyCommand) -> Result<()> {
    match cmd {
        ApiKeyCommand::Create { config, name, rate_per_min, quota } => {
            let store = open_store(&Settings::load(&config.config)?).await?;
            let new = keys::generate(name, *rate_per_min, *quota, now_ms()).context("OS randomness")?;
            store.create_api_key(&new.row).await?;
            print(cli, json!({ "name": name, "prefix": new.row.prefix, "key": new.text }), || {
                format!(
                    "API key {:?} created (prefix {}). Its secret is shown once; store it now:\n\n  {}\n\nClients pass it \
                     as SAGE_API_KEY or in a file named by --api-key-file.",
                    name, new.row.prefix, new.text
                )
            });
            Ok(())
        }
        ApiKeyCommand::List { config } => {
            let store = open_store(&Settings::load(&config.config)?).await?;
            let rows = store.api_keys().await?;
            let list: Vec<_> = rows
                .iter()
                .map(|k| {
                    json!({ "name": k.name, "prefix": k.prefix, "rate_per_min": k.rate_per_min, "quota": k.quota,
                            "used": k.used, "created_ms": k.created_ms, "revoked_ms": k.revoked_ms })
                })
                .collect();
            print(cli, json!(list), || {
                let mut out =
                    format!("{:<10} {:<24} {:>8} {:>8} {:>8}  STATUS\n", "PREFIX", "NAME", "RATE", "QUOTA", "USED");
                for k in &rows {
                    let quota = k.quota.map_or_else(|| "-".to_owned(), |q| q.to_string());
                    let status = if k.revoked_ms.is_some() { "revoked" } else { "live" };
                    out.push_str(&format!(
                        "{:<10} {:<24} {:>8} {:>8} {:>8}  {status}\n",
                        k.prefix, k.name, k.rate_per_min, quota, k.used
                    ));
                }
                out.trim_end().to_owned()
            });
            Ok(())
        }
        ApiKeyCommand::Revoke { config, key } => {
            let store = open_store(&Settings::load(&config.config)?).await?;
            if !store.revoke_api_key(key, now_ms()).await? {
                bail!("no live API key with prefix or name {key:?}");
            }
            print(cli, json!({ "revoked": key }), || format!("API key {key:?} revoked"));
            Ok(())
        }
    }
}

fn api_key_of(remote: &Remote) -> Result<String> {
    match &remote.api_key_file {
        Some(path) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("reading the API key from {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()),
        None => std::env::var("SAGE_API_KEY")
            .context("no API key: set SAGE_API_KEY or pass --api-key-file (ask the coordinator's operator for one)"),
    }
}

impl Remote {
    /// An SDK builder for this coordinator and key.
    fn builder(&self) -> Result<sage_sdk::ClientBuilder> {
        Ok(sage_sdk::ClientBuilder::new().url(&self.url).api_key(api_key_of(self)?))
    }

    /// An SDK client without chain access (reads only the coordinator).
    fn sdk(&self) -> Result<sage_sdk::Client> {
        Ok(self.builder()?.build()?)
    }
}

fn describe(view: &JobView) -> String {
    let mut out = format!("job {:#x}\n  state     {}\n  spec      {:?}\n", view.id, view.state, view.spec);
    if let Some(w) = view.worker {
        out.push_str(&format!("  worker    {w:#x} (attempt {})\n", view.attempts));
    }
    if let Some(p) = view.proof_hash {
        out.push_str(&format!("  proof     {p:#x}\n"));
    }
    for t in &view.history {
        out.push_str(&format!("  {:>4}  {:<16} {}\n", t.seq, t.state.as_str(), t.detail.clone().unwrap_or_default()));
    }
    out.trim_end().to_owned()
}

/// The spec `args` describe; matrices given as files are uploaded as blobs first.
async fn spec_of(args: &SubmitArgs, sdk: &sage_sdk::Client) -> Result<JobSpec> {
    let program = || -> Result<sage_protocol::VmProgram> {
        let path = args.program.as_ref().context("--program is required for VM jobs")?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let program = obelysk_prover::vm::Program::parse(&text).with_context(|| format!("in {}", path.display()))?;
        Ok(sage_protocol::VmProgram(program.encode()))
    };
    let inputs = || -> Result<[u32; sage_protocol::spec::VM_REGISTERS]> {
        let mut r = [0; sage_protocol::spec::VM_REGISTERS];
        if args.inputs.len() > r.len() {
            bail!("--inputs takes at most {} registers, got {}", r.len(), args.inputs.len());
        }
        r[..args.inputs.len()].copy_from_slice(&args.inputs);
        Ok(r)
    };
    let spec = match args.job_type.as_str() {
        "vm" => JobSpec::Vm { program: program()?, inputs: inputs()? },
        "vm-jump" | "vm_jump" => JobSpec::VmJump { program: program()?, inputs: inputs()?, max_steps: args.max_steps },
        _ => {
            let n = args.size.context("--size is required for matmul")?;
            match (&args.a, &args.b) {
                (Some(a), Some(b)) => {
                    let read = |p: &PathBuf| -> Result<Vec<u32>> {
                        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                        if !bytes.len().is_multiple_of(4) {
                            bail!("{} holds {} bytes, not whole u32 values", p.display(), bytes.len());
                        }
                        Ok(bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect())
                    };
                    sdk.matmul_data(n, &read(a)?, &read(b)?).await.context("uploading the matrices")?
                }
                _ => {
                    let seed = match &args.seed {
                        Some(s) => felt(s, "seed")?,
                        None => random_felt()?,
                    };
                    JobSpec::Matmul { n, seed }
                }
            }
        }
    };
    spec.validate()?;
    Ok(spec)
}

async fn submit(cli: &Cli, args: &SubmitArgs) -> Result<()> {
    let sdk = args.client.sdk().await?;
    let spec = spec_of(args, &sdk).await?;
    let mut options = sage_sdk::SubmitOptions::default().deadline_secs(args.deadline_secs);
    if let Some(id) = &args.client_job_id {
        options = options.client_job_id(felt(id, "client job id")?);
    }
    if let Some(p) = args.payment {
        options = options.payment(p);
    }
    if !cli.json {
        eprintln!("uploading the job and escrowing it from {}…", args.client.account);
    }
    let job = sdk.submit(&spec, options).await.context("submitting")?;
    let tx = job.escrow_tx.map(|t| format!("{t:#x}"));
    print(
        cli,
        json!({ "job": format!("{:#x}", job.id), "client_job_id": format!("{:#x}", job.client_job_id),
                "escrow_tx": tx, "payment": job.payment.to_string() }),
        || match &tx {
            Some(tx) => format!(
                "job {:#x} escrowed (tx {tx}); follow it with `sage-coordinator wait-job {:#x}`",
                job.id, job.id
            ),
            None => format!("job {:#x} was already escrowed by an earlier submission; nothing paid", job.id),
        },
    );
    Ok(())
}

async fn wait(cli: &Cli, sdk: &sage_sdk::Client, id: Felt, timeout: Duration) -> Result<Option<JobState>> {
    let started = Instant::now();
    let events = sdk.events(id).await?;
    let mut events = std::pin::pin!(events);
    let mut last = None;
    loop {
        let left = timeout.checked_sub(started.elapsed()).context("timed out waiting for the job")?;
        let Some(t) = tokio::time::timeout(left, events.next()).await.context("timed out waiting for the job")? else {
            return Ok(last);
        };
        let t = t?;
        let elapsed = started.elapsed().as_secs_f64();
        if cli.json {
            println!("{}", json!({ "event": "state", "elapsed_s": elapsed, "transition": t }));
        } else {
            let tx = t.tx.map(|tx| format!(" tx {tx:#x}")).unwrap_or_default();
            println!(
                "[{elapsed:>7.1}s] {:<16}{}{tx}",
                t.state.as_str(),
                t.detail.clone().map(|d| format!(" {d}")).unwrap_or_default()
            );
        }
        let _ = std::io::stdout().flush();
        last = Some(t.state);
        if t.state.is_terminal() {
            return Ok(last);
        }
    }
}

async fn verify(cli: &Cli, checked: &Checked, out: Option<&Path>) -> Result<()> {
    let (id, sdk) = checked.sdk().await?;
    if let Some(path) = out {
        let bytes = sdk.proof(id).await?;
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let v = sdk.verify(id).await?;
    print(
        cli,
        json!({ "job": format!("{id:#x}"), "valid": true, "security_bits": v.security_bits,
                "proof_hash": format!("{:#x}", v.proof_hash), "bytes": v.bytes, "worker": format!("{:#x}", v.worker),
                "verdict": "valid", "paid": v.paid, "state": v.state }),
        || {
            format!(
                "proof of job {id:#x} verifies: {} bits of security, {} bytes, proof hash {:#x}, worker {:#x}; \
                 on-chain verdict valid, {}; job is {}",
                v.security_bits,
                v.bytes,
                v.proof_hash,
                v.worker,
                if v.paid { "paid" } else { "not paid yet" },
                v.state
            )
        },
    );
    Ok(())
}
