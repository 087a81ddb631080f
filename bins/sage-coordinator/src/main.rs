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
use reqwest::Method;
use sage_chain::{SageAccount, contracts::Deployment};
use sage_coordinator::{open_store, read_key_file, settings::Settings};
use sage_jobs::{keys, lifecycle::Input, now_ms, service::JobService};
use sage_protocol::{
    Felt, JobSpec,
    api::{IDEMPOTENCY_HEADER, JobList, JobView, Problem, Quote, SubmitJob, Transition, WorkerView},
};
use serde_json::json;

/// Sage coordinator: accept jobs, escrow-check them on-chain, assign staked workers, check their
/// proofs and pay them after a valid verdict.
///
/// Operator commands (`start`, `api-key`, `requeue`) read the config file. Client commands
/// (`submit-job`, `job`, `jobs`, `wait-job`, `verify-proof`, `workers`, `quote`) talk to any
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
    /// Download a job's proof envelope and verify it locally.
    VerifyProof {
        #[command(flatten)]
        remote: Remote,
        /// Job id.
        id: String,
        /// Accept proofs below the production security level (test networks).
        #[arg(long)]
        insecure: bool,
        /// Also write the envelope here.
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
        /// Size (matmul: n).
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

/// The client's coordinator, chain and account.
#[derive(clap::Args)]
struct ClientChain {
    #[command(flatten)]
    remote: Remote,
    /// Starknet JSON-RPC endpoint.
    #[arg(long, env = "SAGE_RPC_URL", default_value = "http://127.0.0.1:5050")]
    rpc_url: String,
    /// Deployment manifest.
    #[arg(long, env = "SAGE_MANIFEST", default_value = "deployments/devnet.json")]
    manifest: PathBuf,
    /// The client's account address.
    #[arg(long, env = "SAGE_ACCOUNT")]
    account: String,
    /// File holding the account's Stark private key (hex, first line).
    #[arg(long, env = "SAGE_ACCOUNT_KEY_FILE")]
    key_file: PathBuf,
}

impl ClientChain {
    async fn connect(&self) -> Result<(SageAccount, Deployment)> {
        let (client, contracts) = Deployment::connect(&self.rpc_url, &self.manifest).await?;
        let account = SageAccount::new(client, felt(&self.account, "account")?, read_key_file(&self.key_file)?);
        Ok((account, contracts))
    }
}

#[derive(clap::Args)]
struct SubmitArgs {
    #[command(flatten)]
    client: ClientChain,
    /// Job type (only `matmul` over the network today).
    #[arg(long = "type", default_value = "matmul")]
    job_type: String,
    /// Matrix size n (a power of two, 2..=1024).
    #[arg(long)]
    size: u32,
    /// Seed of the matrices (hex felt; random when absent).
    #[arg(long)]
    seed: Option<String>,
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                println!("{}", json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
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
            let (account, contracts) = client.connect().await?;
            let outcome = contracts.jobs.cancel(&account, id).await.context("cancelling on-chain")?;
            // The coordinator also learns it from the chain; telling it directly is faster.
            let cancel = client.remote.request(Method::POST, &format!("/v1/jobs/{}/cancel", id.to_hex_string()))?;
            // Refused when the coordinator already saw the on-chain cancel: then it says so.
            let told = client.remote.send(cancel).await.is_ok()
                || get::<JobView>(&client.remote, &format!("/v1/jobs/{}", id.to_hex_string()))
                    .await
                    .is_ok_and(|v| v.state == sage_protocol::api::JobState::Cancelled);
            print(
                cli,
                json!({ "job": format!("{id:#x}"), "cancelled": true, "refund_tx": format!("{:#x}", outcome.tx_hash),
                        "coordinator_told": told }),
                || format!("job {id:#x} cancelled; escrow refunded (tx {:#x})", outcome.tx_hash),
            );
            Ok(())
        }
        Command::Job { remote, id } => {
            let view: JobView = get(remote, &format!("/v1/jobs/{}", felt(id, "job id")?.to_hex_string())).await?;
            print(cli, serde_json::to_value(&view)?, || describe(&view));
            Ok(())
        }
        Command::Jobs { remote, state, client, limit } => {
            let mut path = format!("/v1/jobs?limit={limit}");
            if let Some(s) = state {
                path.push_str(&format!("&state={s}"));
            }
            if let Some(c) = client {
                path.push_str(&format!("&client={}", felt(c, "client")?.to_hex_string()));
            }
            let list: JobList = get(remote, &path).await?;
            print(cli, serde_json::to_value(&list)?, || {
                let mut out = format!("{:<68} {:<16} {:>8}\n", "JOB", "STATE", "ATTEMPTS");
                for j in &list.jobs {
                    out.push_str(&format!("{:<68} {:<16} {:>8}\n", format!("{:#x}", j.id), j.state, j.attempts));
                }
                out.trim_end().to_owned()
            });
            Ok(())
        }
        Command::WaitJob { remote, id, timeout } => {
            let id = felt(id, "job id")?;
            let last = wait(cli, remote, id, Duration::from_secs(*timeout)).await?;
            if cli.json {
                println!("{}", json!({ "event": "done", "job": format!("{id:#x}"), "state": last }));
            }
            Ok(())
        }
        Command::VerifyProof { remote, id, insecure, out } => verify(cli, remote, id, *insecure, out.as_deref()).await,
        Command::Workers { remote } => {
            let workers: Vec<WorkerView> = get(remote, "/v1/workers").await?;
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
            let q: Quote = get(remote, &format!("/v1/quote?type={job_type}&size={size}")).await?;
            print(cli, serde_json::to_value(&q)?, || {
                format!(
                    "{} n={}: {} SAGE base units, about {} ms ({})",
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

fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?)
}

async fn problem(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    match response.json::<Problem>().await {
        Ok(p) => anyhow::anyhow!("{} ({}): {}", p.title, p.code.as_str(), p.detail),
        Err(_) => anyhow::anyhow!("the coordinator answered {status}"),
    }
}

impl Remote {
    /// An authenticated request for `path` (starting with `/`) on this coordinator.
    fn request(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        Ok(http()?.request(method, url).bearer_auth(api_key_of(self)?))
    }

    /// Sends `request`; an answer other than a success is the error its problem document names.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.with_context(|| format!("reaching the coordinator at {}", self.url))?;
        if !response.status().is_success() {
            return Err(problem(response).await);
        }
        Ok(response)
    }
}

async fn get<T: serde::de::DeserializeOwned>(remote: &Remote, path: &str) -> Result<T> {
    Ok(remote.send(remote.request(Method::GET, path)?).await?.json().await?)
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

async fn submit(cli: &Cli, args: &SubmitArgs) -> Result<()> {
    if args.job_type != "matmul" {
        bail!("job type {:?} cannot be submitted over the network yet (only matmul)", args.job_type);
    }
    let seed = match &args.seed {
        Some(s) => felt(s, "seed")?,
        None => random_felt()?,
    };
    let spec = JobSpec::Matmul { n: args.size, seed };
    spec.validate()?;
    let client_job_id = match &args.client_job_id {
        Some(s) => felt(s, "client job id")?,
        None => random_felt()?,
    };
    let remote = &args.client.remote;
    let account_address = felt(&args.client.account, "account")?;
    let payment = match args.payment {
        Some(p) => p,
        None => get::<Quote>(remote, &format!("/v1/quote?type=matmul&size={}", args.size)).await?.price,
    };
    // Upload first: the coordinator then queues the job the moment it sees the escrow.
    let body = SubmitJob { client: account_address, client_job_id, spec: spec.clone() };
    let upload =
        remote.request(Method::POST, "/v1/jobs")?.header(IDEMPOTENCY_HEADER, format!("{client_job_id:#x}")).json(&body);
    let view: JobView = remote.send(upload).await?.json().await?;
    if !cli.json {
        eprintln!("uploaded job {:#x}; escrowing {payment} on-chain…", view.id);
    }
    let (account, contracts) = args.client.connect().await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let outcome = contracts
        .jobs
        .create_job(&account, contracts.token, client_job_id, spec.spec_hash(), payment, now + args.deadline_secs)
        .await
        .context("escrowing the job (create_job)")?;
    print(
        cli,
        json!({ "job": format!("{:#x}", view.id), "client_job_id": format!("{client_job_id:#x}"),
                "escrow_tx": format!("{:#x}", outcome.tx_hash), "payment": payment.to_string() }),
        || {
            format!(
                "job {:#x} escrowed (tx {:#x}); follow it with `sage-coordinator wait-job {:#x}`",
                view.id, outcome.tx_hash, view.id
            )
        },
    );
    Ok(())
}

async fn wait(cli: &Cli, remote: &Remote, id: Felt, timeout: Duration) -> Result<Option<sage_protocol::api::JobState>> {
    let response =
        remote.send(remote.request(Method::GET, &format!("/v1/jobs/{}/events", id.to_hex_string()))?).await?;
    let started = Instant::now();
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut last = None;
    loop {
        let left = timeout.checked_sub(started.elapsed()).context("timed out waiting for the job")?;
        let Some(chunk) = tokio::time::timeout(left, stream.next()).await.context("timed out waiting for the job")?
        else {
            return Ok(last);
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let Ok(t) = serde_json::from_str::<Transition>(data.trim()) else { continue };
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
        }
    }
}

async fn verify(cli: &Cli, remote: &Remote, id: &str, insecure: bool, out: Option<&Path>) -> Result<()> {
    let id = felt(id, "job id")?;
    let view: JobView = get(remote, &format!("/v1/jobs/{}", id.to_hex_string())).await?;
    let worker = view.worker.context("the job has no worker yet")?;
    let proof = remote.request(Method::GET, &format!("/v1/jobs/{}/proof", id.to_hex_string()))?;
    let bytes = remote.send(proof).await?.bytes().await?.to_vec();
    if let Some(path) = out {
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let JobSpec::Matmul { n, seed } = view.spec.clone() else { bail!("unsupported job type") };
    let job = obelysk_prover::Job::matmul(
        obelysk_prover::JobId(id.to_bytes_be()),
        obelysk_prover::WorkerAddress(worker.to_bytes_be()),
        obelysk_prover::matmul::MatmulJob::from_seed(n, seed.to_bytes_be()),
    );
    let policy = if insecure {
        obelysk_prover::VerifyPolicy::insecure_for_tests()
    } else {
        obelysk_prover::VerifyPolicy::default()
    };
    let verified = obelysk_prover::verify_bytes(&bytes, &job, &policy).context("the proof does not verify")?;
    let hash = obelysk_prover::proof_hash(&bytes)?;
    print(
        cli,
        json!({ "job": format!("{id:#x}"), "valid": true, "security_bits": verified.security_bits,
                "proof_hash": hash.to_hex(), "bytes": bytes.len(), "state": view.state }),
        || {
            format!(
                "proof of job {id:#x} verifies: {} bits of security, {} bytes, proof hash {}; job is {}",
                verified.security_bits,
                bytes.len(),
                hash.to_hex(),
                view.state
            )
        },
    );
    Ok(())
}
