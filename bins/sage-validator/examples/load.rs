//! `cargo xtask load`: many workers and many jobs through the real network on a local devnet,
//! ending with the books checked against the chain.
//!
//! - A devnet with the contracts and four staked validators installed as the ProofVerifier's set.
//! - `--workers W` worker identities, each a real on-chain account that is deployed, funded,
//!   staked (T4) and registered, exactly as `sage-worker` operators do (registered concurrently).
//! - One coordinator (SQLite, or PostgreSQL with `--postgres-url-file FILE`) and the four
//!   validators, in this process.
//! - `--hosts H` worker-host processes (this binary again, `--host CONFIG`), each running one
//!   libp2p node for its share of the identities: every identity heartbeats, and answers its own
//!   assignments with a real proof (matmul, test parameters), a signed result over libp2p and its
//!   own `submit_result` transaction. Messages are signed by the identity's key, so the
//!   coordinator sees W workers and cannot tell that they share nodes.
//! - `--jobs J` jobs submitted through the REST API at `--rate R` per second, each escrowed by
//!   the client's own `create_job` transaction.
//! - `--kill-host`: one host is SIGKILLed once a third of the jobs are submitted; the jobs its
//!   identities held must be reassigned when their leases lapse, and completed by others.
//!
//! At the end every job is checked on-chain: `lost` (not paid), `double_paid` (more than one
//! payment recorded) and `uncertified_paid` (paid without a valid verdict on-chain) must all be 0,
//! or the run fails. Reported: jobs per second completed, p50/p99 from submission to assignment
//! and to certification, CPU and peak memory of this process (coordinator + validators + client)
//! and of the hosts, and the store's size.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use obelysk_prover::ProofConfig;
use sage_chain::devnet::DevnetOptions;
use sage_chain::{
    ChainConfig, Felt, SAGE, SageAccount,
    contracts::{Deployment, GpuTier, RecordedVerdict},
};
use sage_consensus::StarkKey;
use sage_coordinator::testing::{Api, Net, Network, announce_proof, coordinator_with, prove_assignment, wall};
use sage_net::{Heartbeat, JobAssignment, NetConfig, NetEvent, NodeHandle, Topic};
use sage_protocol::{JobSpec, api::JobState};
use sage_staking::{TeeEvidence, TeeType, register_worker};
use serde::{Deserialize, Serialize};

#[path = "../tests/common/mod.rs"]
mod common;

/// Matmul size of every job (the smallest power of two the protocol allows beyond 2).
const MATRIX_N: u32 = 8;
/// What each job escrows.
const PAYMENT: u128 = 2 * SAGE;
/// Stake of each worker (the T4 minimum).
const STAKE: u128 = 1_000 * SAGE;
/// How long the host `--kill-host` kills waits before each proof, so that it dies holding jobs.
const VICTIM_DELAY_MS: u64 = 2_000;
/// First worker key (`StarkKey::from_secret(WORKER_KEY_BASE + i)`; test keys, not secrets).
const WORKER_KEY_BASE: u64 = 90_000;

#[derive(Debug, Clone)]
struct Options {
    workers: usize,
    jobs: usize,
    rate: f64,
    hosts: usize,
    kill_host: bool,
    json: bool,
    lease_secs: u64,
    heartbeat_secs: u64,
    postgres_url_file: Option<PathBuf>,
    /// Seconds between devnet blocks; 0: a block per transaction (devnet's default).
    block_secs: u32,
    /// Calls per coordinator multicall (1: a transaction per assignment and payment).
    batch: usize,
}

const HELP: &str = "\
cargo xtask load [--workers W] [--jobs J] [--rate R] [--hosts H] [--kill-host] [--lease-secs S]
                 [--heartbeat-secs S] [--block-secs S] [--batch N]
                 [--postgres-url-file FILE] [--json]

Defaults: 100 workers, 1000 jobs at 20 per second, 4 hosts, leases of 30 s, heartbeats every
10 s, a devnet block every second (--block-secs 0: one block per transaction, devnet's default,
which copies devnet's whole state for every transaction and slows long runs down), the
coordinator's assignments and payments sent as multicalls of up to 16 calls (--batch 1: one
transaction each).
Exits non-zero unless lost=0 double_paid=0 uncertified_paid=0.
";

fn parse_options() -> Result<Option<Options>> {
    let mut o = Options {
        workers: 100,
        jobs: 1_000,
        rate: 20.0,
        hosts: 4,
        kill_host: false,
        json: false,
        lease_secs: 30,
        heartbeat_secs: 10,
        postgres_url_file: None,
        block_secs: 1,
        batch: sage_coordinator::settings::DEFAULT_BATCH_CALLS,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value")).cloned();
        match a.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return Ok(None);
            }
            "--workers" => o.workers = value("--workers")?.parse()?,
            "--jobs" => o.jobs = value("--jobs")?.parse()?,
            "--rate" => o.rate = value("--rate")?.parse()?,
            "--hosts" => o.hosts = value("--hosts")?.parse()?,
            "--lease-secs" => o.lease_secs = value("--lease-secs")?.parse()?,
            "--heartbeat-secs" => o.heartbeat_secs = value("--heartbeat-secs")?.parse()?,
            "--batch" => o.batch = value("--batch")?.parse()?,
            "--block-secs" => o.block_secs = value("--block-secs")?.parse()?,
            "--postgres-url-file" => o.postgres_url_file = Some(value("--postgres-url-file")?.into()),
            "--kill-host" => o.kill_host = true,
            "--json" => o.json = true,
            other => bail!("unexpected argument {other:?}\n\n{HELP}"),
        }
    }
    if o.workers == 0 || o.jobs == 0 || o.hosts == 0 || o.batch == 0 || o.rate <= 0.0 {
        bail!("--workers, --jobs, --hosts, --batch and --rate must be positive");
    }
    if o.batch > 256 {
        bail!("--batch is at most 256 (the coordinator's chain.batch_calls range)");
    }
    if o.kill_host && o.hosts < 2 {
        bail!("--kill-host needs at least two hosts (the others finish the killed one's jobs)");
    }
    o.hosts = o.hosts.min(o.workers);
    Ok(Some(o))
}

/// What a worker-host process is told (a file; nothing secret: the worker keys are test keys
/// derived from their index).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HostConfig {
    rpc_url: String,
    manifest: PathBuf,
    coordinator_p2p: String,
    coordinator_key: Felt,
    network: Felt,
    first: usize,
    count: usize,
    heartbeat_secs: u64,
    identity: PathBuf,
    /// Wait before proving each assignment (a slow host: the one `--kill-host` kills, so that it
    /// is holding jobs when it dies).
    #[serde(default)]
    delay_ms: u64,
}

fn worker_key(i: usize) -> StarkKey {
    StarkKey::from_secret(Felt::from(WORKER_KEY_BASE + i as u64)).expect("a valid test key")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.get(1).map(String::as_str) == Some("--host") {
        let config: HostConfig = serde_json::from_slice(&std::fs::read(args.get(2).context("--host needs a file")?)?)?;
        return runtime.block_on(host(config));
    }
    let Some(options) = parse_options()? else { return Ok(()) };
    // Logs go to stderr, so that `--json` leaves stdout to the summary (the test fixtures'
    // subscriber would print to stdout; theirs is not installed once this one is).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    runtime.block_on(orchestrate(options))
}

// ---------------------------------------------------------------------------------------------
// Worker hosts
// ---------------------------------------------------------------------------------------------

/// One libp2p node serving `count` worker identities.
async fn host(config: HostConfig) -> Result<()> {
    let (client, contracts) =
        Deployment::connect_with(ChainConfig::parse(&config.rpc_url)?, &config.manifest).await.context("chain")?;
    let keys: Vec<StarkKey> = (config.first..config.first + config.count).map(worker_key).collect();
    let identities: HashMap<Felt, (StarkKey, SageAccount)> = keys
        .iter()
        .map(|k| {
            let address = sage_chain::oz_account_address(k.public_key(), k.public_key());
            (address, (k.clone(), SageAccount::new(client.clone(), address, k.clone())))
        })
        .collect();
    let identities = Arc::new(identities);
    let net = NetConfig {
        bootstrap: vec![config.coordinator_p2p.parse().context("coordinator address")?],
        mesh_n: 2,
        network: config.network,
        ..NetConfig::default()
    };
    let p2p_identity = sage_net::load_or_create_identity(&config.identity)?;
    let (node, mut events) = NodeHandle::start(net, p2p_identity, keys[0].clone()).await?;

    // The jobs each identity holds (listed in its heartbeats: the acknowledgement).
    let holding: Arc<std::sync::Mutex<HashMap<Felt, HashSet<Felt>>>> = Arc::default();
    // Heartbeats: every identity once per period, spread across it.
    let (hb_node, hb_ids, period) = (node.clone(), Arc::clone(&identities), config.heartbeat_secs);
    let hb_holding = Arc::clone(&holding);
    tokio::spawn(async move {
        let gap = Duration::from_millis(period * 1000 / hb_ids.len().max(1) as u64);
        loop {
            for (address, (key, _)) in hb_ids.iter() {
                let hb = Heartbeat {
                    worker: *address,
                    gpu_tier: Some(GpuTier::T4),
                    backend: "cpu".into(),
                    load_percent: 0,
                    timestamp: wall(),
                    jobs: hb_holding
                        .lock()
                        .map(|h| h.get(address).map(|j| j.iter().copied().collect()).unwrap_or_default())
                        .unwrap_or_default(),
                };
                if let Ok(m) = hb.sign(key, hb_node.network()) {
                    let _ = hb_node.publish_signed(&m).await;
                }
                tokio::time::sleep(gap).await;
            }
        }
    });

    // Assignments: each identity proves its own, two proofs at a time per host.
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let mut seen: HashSet<(Felt, Felt)> = HashSet::new();
    while let Some(event) = events.recv().await {
        let NetEvent::Message { message, .. } = event else { continue };
        if message.topic != Topic::Jobs || message.signer != config.coordinator_key {
            continue;
        }
        let Ok(a) = JobAssignment::from_message(&message) else { continue };
        if !identities.contains_key(&a.worker) || !seen.insert((a.job_id, a.worker)) {
            continue;
        }
        if let Ok(mut h) = holding.lock() {
            h.entry(a.worker).or_default().insert(a.job_id);
        }
        let (node, ids, contracts, slots, holding) =
            (node.clone(), Arc::clone(&identities), contracts, Arc::clone(&slots), Arc::clone(&holding));
        let delay = Duration::from_millis(config.delay_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _slot = slots.acquire().await;
            let answered = answer(&node, &ids, &contracts, &a).await;
            if let Ok(mut h) = holding.lock()
                && let Some(jobs) = h.get_mut(&a.worker)
            {
                jobs.remove(&a.job_id);
            }
            if let Err(e) = answered {
                eprintln!("job {:#x} for {:#x}: {e:#}", a.job_id, a.worker);
            }
        });
    }
    Ok(())
}

/// Proves `a`, serves and announces the envelope, and submits the result on-chain.
async fn answer(
    node: &NodeHandle,
    ids: &HashMap<Felt, (StarkKey, SageAccount)>,
    contracts: &Deployment,
    a: &JobAssignment,
) -> Result<()> {
    let (key, account) = ids.get(&a.worker).context("not ours")?;
    let started = Instant::now();
    let blobs = node.fetch_inputs(a).await?;
    let proof = prove_assignment(a, &blobs, ProofConfig::insecure_for_tests()).await?;
    let prove_ms = started.elapsed().as_millis() as u64;
    announce_proof(node, key, a.worker, a, &proof, prove_ms).await?;
    contracts.jobs.submit_result(account, a.job_id, proof.output, proof.proof_hash).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------

/// Whether any of `workers` holds an assigned job the coordinator has not had the result of.
async fn holds_a_job(store: &dyn sage_jobs::store::Store, workers: &[Felt]) -> Result<bool> {
    for w in workers {
        if !store.jobs_held_by(*w).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// SIGKILLs `victim` (worker host 0) and reaps it; returns its pid.
fn kill_victim(victim: &mut std::process::Child, submitted: usize) -> Result<u32> {
    let pid = victim.id();
    victim.kill().context("SIGKILL")?;
    let _ = victim.wait();
    eprintln!("    SIGKILLed worker host 0 (pid {pid}) holding a job, after {submitted} submissions");
    Ok(pid)
}

/// Deploys, funds, stakes and registers `count` worker accounts, `parallel` at a time.
async fn register_fleet(n: &Net, count: usize, parallel: usize) -> Result<()> {
    let (client, contracts) = (&n.client, &n.contracts);
    // SAGE for every stake: minted by the owner, a hundred transfers per transaction.
    let addresses: Vec<Felt> = (0..count)
        .map(|i| sage_chain::oz_account_address(worker_key(i).public_key(), worker_key(i).public_key()))
        .collect();
    for chunk in addresses.chunks(100) {
        let calls = chunk.iter().map(|a| contracts.token.mint_call(*a, STAKE)).collect::<Result<Vec<_>, _>>()?;
        n.owner.execute(calls).await.context("minting the stakes")?;
    }
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let (done, addresses) = (&done, &addresses);
            async move {
                let key = worker_key(i);
                let address = addresses[i];
                n.devnet.mint_strk(address, 10 * SAGE).await?;
                let account = sage_chain::deploy_oz_account(client, key.clone(), key.public_key()).await?;
                contracts.staking.stake(&account, contracts.token, STAKE, GpuTier::T4, 1_000_000).await?;
                let tee = TeeEvidence {
                    tee_type: TeeType::None,
                    measurement_hash: Felt::from(0x4d45u32),
                    quote_hash: Felt::from(0x10_000 + i as u64),
                };
                let elgamal = obelysk_elgamal::SecretKey::from_seed(
                    &(WORKER_KEY_BASE + i as u64).to_be_bytes().repeat(4).try_into().expect("32 bytes"),
                );
                register_worker(&account, contracts.staking, &elgamal, tee, Felt::from(0x20_000 + i as u64)).await?;
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % 50 == 0 || d as usize == count {
                    eprintln!("    {d}/{count} workers registered ({:.0?})", started.elapsed());
                }
                Ok(())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>().map(drop)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// (user + system CPU seconds, peak RSS in MiB) of a process, from /proc.
fn usage(pid: &str) -> (f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let utime: f64 = after.get(11)?.parse().ok()?;
            let stime: f64 = after.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    (cpu, rss / 1024.0)
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn orchestrate(o: Options) -> Result<()> {
    let t0 = Instant::now();
    eprintln!("==> devnet, contracts, four validators staked and installed as the set");
    let devnet =
        DevnetOptions { block_interval_secs: (o.block_secs > 0).then_some(o.block_secs), ..Default::default() };
    let n = Net { net: Network::start_on(devnet, sage_coordinator::testing::VALIDATORS).await, workers: Vec::new() };
    eprintln!("==> registering {} workers on-chain (deploy, fund, stake, register)", o.workers);
    let reg_started = Instant::now();
    register_fleet(&n, o.workers, 24).await?;
    let registration_s = reg_started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    let (lease, window_ms, pg, batch) =
        (o.lease_secs, 3 * o.heartbeat_secs * 1000, o.postgres_url_file.clone(), o.batch);
    let (running, api_key) = coordinator_with(&n, dir.path(), lease, |s| {
        s.scheduler.heartbeat_window_ms = window_ms;
        s.postgres_url_file = pg;
        s.batch_calls = batch;
    })
    .await;
    let api = Api::new(&running, api_key);
    let _validators = common::validators_with(
        &n,
        dir.path(),
        &running,
        &api,
        &[0; sage_coordinator::testing::VALIDATORS],
        Duration::from_millis(250),
    )
    .await;

    eprintln!("==> {} worker hosts ({} identities each on average)", o.hosts, o.workers.div_ceil(o.hosts));
    let exe = std::env::current_exe()?;
    let mut hosts = Vec::new();
    for h in 0..o.hosts {
        let first = h * o.workers / o.hosts;
        let count = (h + 1) * o.workers / o.hosts - first;
        let config = HostConfig {
            rpc_url: n.devnet.rpc_url().to_string(),
            manifest: dir.path().join("manifest.json"),
            coordinator_p2p: running.p2p_addr.to_string(),
            coordinator_key: running.public_key,
            network: sage_net::DEFAULT_NETWORK,
            first,
            count,
            heartbeat_secs: o.heartbeat_secs,
            identity: dir.path().join(format!("host-{h}.p2p")),
            delay_ms: if o.kill_host && h == 0 { VICTIM_DELAY_MS } else { 0 },
        };
        let file = dir.path().join(format!("host-{h}.json"));
        std::fs::write(&file, serde_json::to_vec(&config)?)?;
        let log = std::fs::File::create(dir.path().join(format!("host-{h}.log")))?;
        let child = std::process::Command::new(&exe)
            .arg("--host")
            .arg(&file)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting a worker host")?;
        hosts.push(child);
    }

    let store = running.driver.service.store();
    let heard_by = Instant::now() + Duration::from_secs(o.heartbeat_secs * 3 + 30);
    loop {
        let now = sage_jobs::now_ms();
        let heard = store.workers().await?.iter().filter(|w| now.saturating_sub(w.last_seen_ms) <= window_ms).count();
        if heard >= o.workers {
            break;
        }
        if Instant::now() > heard_by {
            bail!("only {heard} of {} workers heard by the coordinator", o.workers);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("==> all {} workers heard; submitting {} jobs at {}/s", o.workers, o.jobs, o.rate);

    // The client approves once, then escrows each job with its own create_job.
    n.contracts.token.approve(&n.client_acc, n.contracts.jobs.address, PAYMENT * o.jobs as u128).await?;
    let client = n.client_acc.address();
    let mut ids = Vec::with_capacity(o.jobs);
    let mut pending_tx = Vec::new();
    let submit_started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / o.rate);
    let mut next = tokio::time::Instant::now();
    let mut killed: Option<u32> = None;
    // Host 0's identities: it is killed while one of them holds a job.
    let victims: Vec<Felt> = (0..o.workers / o.hosts)
        .map(|i| sage_chain::oz_account_address(worker_key(i).public_key(), worker_key(i).public_key()))
        .collect();
    for j in 0..o.jobs {
        tokio::time::sleep_until(next).await;
        next += gap;
        let cj = Felt::from(1_000_000 + j as u64);
        let spec = JobSpec::Matmul { n: MATRIX_N, seed: Felt::from(j as u64 + 1) };
        let view = api.submit(client, cj, spec.clone()).await;
        let call = n.contracts.jobs.create_job_call(cj, spec.spec_hash(), PAYMENT, wall() + 7_200)?;
        pending_tx.push(n.client_acc.submit(vec![call]).await.context("create_job")?);
        ids.push(view.id);
        if pending_tx.len() >= 64 {
            for tx in pending_tx.drain(..) {
                n.client.wait_for_receipt(tx).await?;
            }
        }
        if o.kill_host && killed.is_none() && j >= o.jobs / 3 && holds_a_job(store.as_ref(), &victims).await? {
            killed = Some(kill_victim(&mut hosts[0], j + 1)?);
        }
    }
    // The victim is slow, so it is all but sure to have been holding a job by now; if it was not,
    // wait (bounded) for one of its assignments rather than kill it idle.
    if o.kill_host && killed.is_none() {
        let by = Instant::now() + Duration::from_secs(60);
        while killed.is_none() && Instant::now() < by {
            if holds_a_job(store.as_ref(), &victims).await? {
                killed = Some(kill_victim(&mut hosts[0], o.jobs)?);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if killed.is_none() {
            bail!("worker host 0 was never seen holding a job, so it was not killed: submit more jobs");
        }
    }
    for tx in pending_tx.drain(..) {
        n.client.wait_for_receipt(tx).await?;
    }
    let submit_s = submit_started.elapsed().as_secs_f64();
    eprintln!("==> all submitted in {submit_s:.1} s; waiting for every job to be paid");

    let mut last_progress = (0u64, Instant::now());
    loop {
        let counts = store.count_by_state().await?;
        let count = |s: JobState| counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
        let terminal: u64 = counts.iter().filter(|(s, _)| s.is_terminal()).map(|(_, n)| n).sum();
        let paid = count(JobState::Paid);
        if terminal > last_progress.0 {
            last_progress = (terminal, Instant::now());
            eprintln!(
                "    {:>6.1} s: paid {paid}, terminal {terminal}/{}, queued {}, voting {}",
                submit_started.elapsed().as_secs_f64(),
                o.jobs,
                count(JobState::Queued),
                count(JobState::Voting) + count(JobState::ResultSubmitted) + count(JobState::Certified)
            );
        }
        if terminal as usize >= o.jobs {
            break;
        }
        if last_progress.1.elapsed() > Duration::from_secs(o.lease_secs * 4 + 120) {
            eprintln!("    no job finished for {:.0?}: stopping the wait", last_progress.1.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let run_s = submit_started.elapsed().as_secs_f64();
    let (cpu_s, rss_mb) = usage("self");
    // The devnet this process started (the chain's share of the two cores).
    let devnet_cpu_s: f64 = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim().starts_with("starknet-devne"))
                })
                .map(|e| usage(&e.file_name().to_string_lossy()).0)
                .sum()
        })
        .unwrap_or(0.0);
    let mut host_usage = Vec::new();
    for h in &mut hosts {
        host_usage.push(usage(&h.id().to_string()));
        let _ = h.kill();
        let _ = h.wait();
    }

    eprintln!("==> checking every job against the chain");
    let (mut to_assign, mut to_certify) = (Vec::new(), Vec::new());
    let (mut lost, mut double_paid, mut uncertified_paid, mut reassigned) = (0, 0, 0, 0);
    let mut last_paid_ms = 0u64;
    // Time spent in each stage (p50 per stage tells where the limit is).
    let stages = [
        JobState::Submitted,
        JobState::Escrowed,
        JobState::Queued,
        JobState::Assigned,
        JobState::ResultSubmitted,
        JobState::Certified,
        JobState::Paid,
    ];
    let mut stage_ms: Vec<Vec<u64>> = vec![Vec::new(); stages.len() - 1];
    let mut first_submit_ms = u64::MAX;
    // Payments per job from the PaymentSubmitted events, read once (`payments_for` scans them all
    // per job: quadratic over a long run).
    let mut paid_events: HashMap<Felt, usize> = HashMap::new();
    for e in n.client.events(n.contracts.payments.address, "PaymentSubmitted", 0).await? {
        if let Some(sage_chain::contracts::PaymentEvent::PaymentSubmitted { job_id, .. }) =
            sage_chain::contracts::PaymentEvent::decode_emitted(&e)
        {
            *paid_events.entry(job_id).or_default() += 1;
        }
    }
    // Every job's record, history and verdict, sixteen reads at a time.
    let facts: Vec<Result<_>> = futures::stream::iter(ids.iter().copied())
        .map(|id| {
            let (store, n, paid_events) = (&store, &n, &paid_events);
            async move {
                let job = store.job(id).await?.context("a submitted job is missing from the store")?;
                let history = store.history(id, 0).await?;
                let payments = paid_events.get(&id).copied().unwrap_or(0);
                let verdict = n.contracts.verifier.verdict(&n.client, id).await?;
                anyhow::Ok((job, history, payments, verdict))
            }
        })
        .buffered(16)
        .collect()
        .await;
    for fact in facts {
        let (job, history, payments, verdict) = fact?;
        let at = |s: JobState| history.iter().find(|t| t.state == s).map(|t| t.at_ms);
        let submitted = at(JobState::Submitted).unwrap_or(0);
        first_submit_ms = first_submit_ms.min(submitted);
        if let Some(a) = at(JobState::Assigned) {
            to_assign.push(a.saturating_sub(submitted));
        }
        if let Some(c) = at(JobState::Certified) {
            to_certify.push(c.saturating_sub(submitted));
        }
        for (k, pair) in stages.windows(2).enumerate() {
            if let (Some(a), Some(b)) = (at(pair[0]), at(pair[1])) {
                stage_ms[k].push(b.saturating_sub(a));
            }
        }
        if let Some(p) = at(JobState::Paid) {
            last_paid_ms = last_paid_ms.max(p);
        }
        if job.attempts > 1 {
            reassigned += 1;
        }
        if payments == 0 || job.state != JobState::Paid {
            lost += 1;
        }
        if payments > 1 {
            double_paid += 1;
        }
        if payments > 0 && verdict != RecordedVerdict::Valid {
            uncertified_paid += 1;
        }
    }
    let breakdown: Vec<(String, u64, u64)> = stages
        .windows(2)
        .zip(stage_ms.iter_mut())
        .map(|(pair, v)| {
            v.sort_unstable();
            (format!("{}->{}", pair[0], pair[1]), percentile(v, 50.0), percentile(v, 99.0))
        })
        .collect();
    to_assign.sort_unstable();
    to_certify.sort_unstable();
    let completed = o.jobs - lost;
    let span_s = (last_paid_ms.saturating_sub(first_submit_ms)) as f64 / 1e3;
    let per_sec = if span_s > 0.0 { completed as f64 / span_s } else { 0.0 };
    let store_bytes = dir_size(&dir.path().join("data"));
    let hosts_cpu: f64 = host_usage.iter().map(|u| u.0).sum();
    let hosts_rss: f64 = host_usage.iter().map(|u| u.1).fold(0.0, f64::max);
    let summary = serde_json::json!({
        "workers": o.workers, "jobs": o.jobs, "rate": o.rate, "hosts": o.hosts, "block_secs": o.block_secs, "batch": o.batch,
        "host_killed": killed.is_some(), "reassigned": reassigned,
        "registration_s": registration_s, "submit_s": submit_s, "run_s": run_s,
        "completed": completed, "jobs_per_sec": per_sec,
        "assign_p50_ms": percentile(&to_assign, 50.0), "assign_p99_ms": percentile(&to_assign, 99.0),
        "certify_p50_ms": percentile(&to_certify, 50.0), "certify_p99_ms": percentile(&to_certify, 99.0),
        "coordinator_process_cpu_s": cpu_s, "coordinator_process_peak_rss_mb": rss_mb,
        "hosts_cpu_s": hosts_cpu, "devnet_cpu_s": devnet_cpu_s, "host_peak_rss_mb": hosts_rss,
        "store_bytes": store_bytes, "store": if o.postgres_url_file.is_some() { "postgres" } else { "sqlite" },
        "stages_p50_p99_ms": breakdown.iter().map(|(k, a, b)| (k.clone(), [*a, *b])).collect::<std::collections::BTreeMap<_, _>>(),
        "lost": lost, "double_paid": double_paid, "uncertified_paid": uncertified_paid,
        "total_s": t0.elapsed().as_secs_f64(),
    });
    if o.json {
        println!("{summary}");
    } else {
        println!(
            "workers={} jobs={} rate={}/s hosts={}{} devnet_block={} batch={}\n\
             registration {registration_s:.1} s; submission {submit_s:.1} s; run {run_s:.1} s\n\
             completed {completed} ({per_sec:.2} jobs/s, first submission to last payment); reassigned {reassigned}\n\
             submit->assigned p50 {} ms p99 {} ms; submit->certified p50 {} ms p99 {} ms\n\
             this process (coordinator + 4 validators + client): {cpu_s:.1} CPU s, peak {rss_mb:.0} MiB; \
             hosts: {hosts_cpu:.1} CPU s, peak {hosts_rss:.0} MiB each at most; devnet {devnet_cpu_s:.1} CPU s; store {:.1} MiB\n\
             lost={lost} double_paid={double_paid} uncertified_paid={uncertified_paid}",
            o.workers,
            o.jobs,
            o.rate,
            o.hosts,
            if killed.is_some() { " (one SIGKILLed)" } else { "" },
            if o.block_secs == 0 { "per-transaction".to_owned() } else { format!("{}s", o.block_secs) },
            o.batch,
            percentile(&to_assign, 50.0),
            percentile(&to_assign, 99.0),
            percentile(&to_certify, 50.0),
            percentile(&to_certify, 99.0),
            store_bytes as f64 / 1_048_576.0,
        );
    }
    if !o.json {
        println!(
            "stages p50/p99 ms: {}",
            breakdown.iter().map(|(k, a, b)| format!("{k} {a}/{b}")).collect::<Vec<_>>().join(", ")
        );
    }
    if killed.is_some() && reassigned == 0 {
        bail!("the SIGKILLed host held no job, so no reassignment was exercised: submit more jobs after the kill");
    }
    if lost + double_paid + uncertified_paid > 0 {
        let keep = dir.keep();
        bail!("the books do not balance (logs and store kept in {})", keep.display());
    }
    Ok(())
}
