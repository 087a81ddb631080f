//! The Sage validator as a library; `sage-validator start` is a thin wrapper around [`start`].
//!
//! For every `ResultSubmitted` on-chain (read from a stored block cursor) it fetches the job and
//! its proof envelope from the coordinator's API, checks the job's spec against the on-chain
//! escrow (`spec_hash`) and the envelope against the on-chain `proof_hash`, verifies the proof
//! with `obelysk-prover` for that job and worker, and feeds its verdict to `sage-consensus`.
//! Its own vote is appended to a journal (fsync) before it is gossiped, and a journaled round is
//! never verified again: after a restart the validator signs the same verdict (RFC 6979 makes
//! it the same signature), never the opposite one. Votes from the set are aggregated; when a
//! quorum certificate forms, a rotation derived from the job id decides who submits it first and
//! the others submit only if nothing landed after their turn. A proof it cannot fetch gets no
//! vote (an unreachable coordinator must not slash an honest worker).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let settings = sage_validator::Settings::load("validator.toml".as_ref())?;
//! let running = sage_validator::start(settings).await?;
//! running.wait().await
//! # }
//! ```

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use obelysk_prover::{Envelope, VerifyPolicy};
use sage_chain::{
    ChainClient, SageAccount,
    contracts::{Deployment, JobEvent, RecordedVerdict},
};
use sage_consensus::{
    Config, Effect, Input, QuorumCertificate, RoundId, SignedVote, State, ValidatorSet, Verdict, VoteDomain, apply,
};
use sage_net::{Multiaddr, NetConfig, NetEvent, NodeHandle, SignedMessage, Topic};
use sage_protocol::{Felt, JobSpec, api::JobView, spec::MAX_MATRIX_BLOB_BYTES};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

mod bridge;
mod pool;

/// The config file (TOML, no secrets: keys live in their own files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Vote journal and block cursor (default `data/` beside the file).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Chain access.
    pub chain: ChainSection,
    /// Coordinator API the jobs and envelopes are fetched from.
    pub coordinator: CoordinatorSection,
    /// libp2p.
    #[serde(default)]
    pub network: NetworkSection,
    /// Verification and rounds.
    #[serde(default)]
    pub validator: ValidatorSection,
    /// The validator bridge (`POST /v1/validate`); not served unless `listen` is set.
    #[serde(default)]
    pub bridge: BridgeSection,
}

/// `[bridge]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BridgeSection {
    /// HTTP listen address (`127.0.0.1:9180`); absent: the bridge is not served.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    /// Largest envelope a request may carry (bytes; default 16 MiB).
    #[serde(default)]
    pub max_envelope_bytes: Option<usize>,
}

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// Deployment manifest.
    pub manifest: PathBuf,
    /// The validator's account (submits QCs and equivocation reports).
    pub account: String,
    /// The account's Stark private key file.
    pub key_file: PathBuf,
    /// The vote key file (the key registered with `register_validator`; default: the account key).
    #[serde(default)]
    pub vote_key_file: Option<PathBuf>,
}

/// `[coordinator]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSection {
    /// API base URL.
    pub url: String,
    /// File holding an API key for it.
    pub api_key_file: PathBuf,
}

/// `[network]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// libp2p listen address (default `/ip4/127.0.0.1/tcp/0`).
    #[serde(default)]
    pub listen: Option<String>,
    /// Bootstrap peers.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Chain id short string messages are signed for.
    #[serde(default)]
    pub chain_id: Option<String>,
}

/// `[validator]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSection {
    /// `production` (≥ 96 bits, the default) or `test` (test networks only).
    #[serde(default = "production")]
    pub security: String,
    /// A round without a QC after this long fails (ms).
    #[serde(default = "default_timeout")]
    pub round_timeout_ms: u64,
    /// Period of the chain watcher and the engine's clock (ms).
    #[serde(default = "default_tick")]
    pub tick_ms: u64,
    /// Each rotation turn waits this long before submitting a QC nobody else submitted (ms).
    #[serde(default = "default_turn")]
    pub submit_turn_ms: u64,
    /// Proofs verified at once, each on a blocking thread (default: the CPU count).
    #[serde(default)]
    pub verify_threads: Option<usize>,
    /// Verifications that may wait for a thread; bridge requests beyond it are refused
    /// (`rate_limited`), rounds wait (default 64).
    #[serde(default)]
    pub verify_queue: Option<usize>,
}

impl Default for ValidatorSection {
    fn default() -> Self {
        Self {
            security: production(),
            round_timeout_ms: default_timeout(),
            tick_ms: default_tick(),
            submit_turn_ms: default_turn(),
            verify_threads: None,
            verify_queue: None,
        }
    }
}

fn production() -> String {
    "production".into()
}
fn default_timeout() -> u64 {
    600_000
}
fn default_tick() -> u64 {
    1_000
}
fn default_turn() -> u64 {
    5_000
}

/// Everything the validator runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Journal and cursor folder.
    pub data_dir: PathBuf,
    /// RPC endpoint.
    pub rpc_url: String,
    /// Manifest.
    pub manifest: PathBuf,
    /// Account address.
    pub account: Felt,
    /// Account key file.
    pub key_file: PathBuf,
    /// Vote key file.
    pub vote_key_file: PathBuf,
    /// Coordinator API.
    pub coordinator_url: String,
    /// API key file.
    pub api_key_file: PathBuf,
    /// libp2p listen address.
    pub listen: String,
    /// Bootstrap peers.
    pub bootstrap: Vec<String>,
    /// Network id.
    pub network: Felt,
    /// Test-level proofs accepted.
    pub insecure_proofs: bool,
    /// Round timeout.
    pub round_timeout_ms: u64,
    /// Watcher period.
    pub tick: Duration,
    /// Rotation turn.
    pub submit_turn: Duration,
    /// Bridge listen address (`None`: not served).
    pub bridge_listen: Option<std::net::SocketAddr>,
    /// Largest envelope a bridge request may carry.
    pub max_envelope_bytes: usize,
    /// Proofs verified at once.
    pub verify_threads: usize,
    /// Verifications that may wait.
    pub verify_queue: usize,
}

/// Default bridge envelope limit.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;

/// Default verification queue.
pub const DEFAULT_VERIFY_QUEUE: usize = 64;

/// Verification threads when the config names none: the CPU count.
pub fn default_verify_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

use sage_daemon::beside;

impl Settings {
    /// Reads and resolves the config file.
    pub fn load(path: &Path) -> Result<Self> {
        let f: FileConfig = sage_daemon::read_toml(path)?;
        let insecure_proofs = match f.validator.security.as_str() {
            "production" => false,
            "test" => true,
            other => bail!("validator.security {other:?}: production or test"),
        };
        if insecure_proofs {
            sage_daemon::refuse_test_proofs_off_devnet("validator.security = \"test\"", &f.chain.rpc_url)?;
        }
        if f.validator.tick_ms == 0 || f.validator.round_timeout_ms == 0 {
            bail!("validator.tick_ms and validator.round_timeout_ms must be positive");
        }
        if f.validator.verify_threads == Some(0) {
            bail!("validator.verify_threads must be at least 1");
        }
        let key_file = beside(path, f.chain.key_file);
        Ok(Self {
            data_dir: beside(path, f.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
            rpc_url: f.chain.rpc_url,
            manifest: beside(path, f.chain.manifest),
            account: Felt::from_hex(f.chain.account.trim())
                .map_err(|_| anyhow::anyhow!("chain.account {:?} is not a hex felt", f.chain.account))?,
            vote_key_file: f.chain.vote_key_file.map(|p| beside(path, p)).unwrap_or_else(|| key_file.clone()),
            key_file,
            coordinator_url: f.coordinator.url,
            api_key_file: beside(path, f.coordinator.api_key_file),
            listen: f.network.listen.unwrap_or_else(|| "/ip4/127.0.0.1/tcp/0".into()),
            bootstrap: f.network.bootstrap,
            network: match f.network.chain_id.as_deref() {
                None => sage_net::DEFAULT_NETWORK,
                Some(id) => sage_keys::short_string(id).with_context(|| format!("network.chain_id {id:?}"))?,
            },
            insecure_proofs,
            round_timeout_ms: f.validator.round_timeout_ms,
            tick: Duration::from_millis(f.validator.tick_ms),
            submit_turn: Duration::from_millis(f.validator.submit_turn_ms),
            bridge_listen: f.bridge.listen,
            max_envelope_bytes: f.bridge.max_envelope_bytes.unwrap_or(DEFAULT_MAX_ENVELOPE_BYTES),
            verify_threads: f.validator.verify_threads.unwrap_or_else(default_verify_threads),
            verify_queue: f.validator.verify_queue.unwrap_or(DEFAULT_VERIFY_QUEUE),
        })
    }
}

/// One journaled vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Journaled {
    round: RoundId,
    verdict: Verdict,
}

/// The vote journal: append-only JSON lines, each synced before the vote leaves the process.
#[derive(Debug)]
struct VoteJournal {
    file: std::fs::File,
    votes: HashMap<RoundId, Verdict>,
}

impl VoteJournal {
    fn open(path: &Path) -> Result<Self> {
        let mut votes = HashMap::new();
        // A torn tail (a crash mid-append; never synced, so never sent) is cut off, so the next
        // vote starts on a line of its own.
        if let Ok(bytes) = std::fs::read(path)
            && bytes.last().is_some_and(|b| *b != b'\n')
        {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            std::fs::OpenOptions::new().write(true).open(path)?.set_len(keep as u64)?;
        }
        if let Ok(text) = std::fs::read_to_string(path) {
            for (n, line) in text.lines().enumerate() {
                // A torn last line (crash mid-write) was never synced, so never sent: skip it.
                match serde_json::from_str::<Journaled>(line) {
                    Ok(j) => {
                        votes.insert(j.round, j.verdict);
                    }
                    Err(e) => tracing::warn!(line = n + 1, error = %e, "unreadable vote journal line skipped"),
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the vote journal {}", path.display()))?;
        Ok(Self { file, votes })
    }

    fn record(&mut self, round: RoundId, verdict: Verdict) -> Result<()> {
        if let Some(previous) = self.votes.get(&round) {
            if *previous != verdict {
                bail!("refusing to record {verdict:?} for a round already voted {previous:?}");
            }
            return Ok(());
        }
        let mut line = serde_json::to_string(&Journaled { round, verdict })?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_all()?;
        self.votes.insert(round, verdict);
        Ok(())
    }
}

/// A started validator.
#[derive(Debug)]
pub struct Running {
    /// libp2p address (with `/p2p/<peer id>`).
    pub p2p_addr: Multiaddr,
    /// Where the bridge (`POST /v1/validate`) listens, when served.
    pub bridge_addr: Option<std::net::SocketAddr>,
    /// The vote public key.
    pub vote_key: Felt,
    /// This validator's index in the set.
    pub index: u32,
    tasks: tokio::task::JoinSet<Result<()>>,
}

impl Running {
    /// Waits for Ctrl-C / SIGTERM or a task's failure.
    pub async fn wait(mut self) -> Result<()> {
        let outcome = sage_daemon::until_shutdown(&mut self.tasks).await;
        self.shutdown().await;
        outcome
    }

    /// Stops every task.
    pub async fn shutdown(mut self) {
        sage_daemon::stop_all(&mut self.tasks).await;
    }
}

/// What the engine task hears.
enum Event {
    Round(RoundId),
    Local(RoundId, Verdict),
    Vote(SignedVote),
    Tick,
    /// The ProofVerifier installed a new validator set.
    Set(ValidatorSet),
}

/// The validator set this process follows and its own place in it.
#[derive(Debug)]
struct Membership {
    set: ValidatorSet,
    /// This validator's index in `set`; `None` while it is not a member (it does not vote).
    index: Option<u32>,
    /// This validator's vote key (public).
    vote_key: Felt,
}

impl Membership {
    fn new(set: ValidatorSet, vote_key: Felt) -> Self {
        let index = set.members.iter().position(|k| *k == vote_key).and_then(|i| u32::try_from(i).ok());
        Self { set, index, vote_key }
    }
}

/// A worker's announced envelope: (worker, provider peer, blob hash).
type Announced = (Felt, sage_net::PeerId, [u8; 32]);

impl Ctx {
    /// The set followed now.
    fn membership(&self) -> Arc<Membership> {
        Arc::clone(&self.membership.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

#[derive(Clone)]
struct Ctx {
    settings: Arc<Settings>,
    /// Signs votes (rounds and bridge answers alike).
    vote_key: sage_consensus::StarkKey,
    /// Where votes are valid.
    domain: VoteDomain,
    /// Every vote this validator signs, synced before it leaves the process.
    journal: Arc<Mutex<VoteJournal>>,
    /// Verification threads and their queue.
    pool: Arc<pool::VerifyPool>,
    /// What a proof must meet.
    policy: VerifyPolicy,
    client: ChainClient,
    account: SageAccount,
    contracts: Deployment,
    http: reqwest::Client,
    api_key: Arc<String>,
    /// Replaced when the chain installs a new set (see the chain watcher).
    membership: Arc<std::sync::RwLock<Arc<Membership>>>,
    node: NodeHandle,
    /// Envelopes workers announced on the results topic.
    announced: Arc<Mutex<HashMap<Felt, Announced>>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Connects, checks this validator's vote key is in the on-chain set, starts libp2p, the chain
/// watcher and the consensus engine.
pub async fn start(settings: Settings) -> Result<Running> {
    let settings = Arc::new(settings);
    let account_key = sage_keys::read_key_file(&settings.key_file)?;
    let vote_key = sage_keys::read_key_file(&settings.vote_key_file)?;
    let api_key = std::fs::read_to_string(&settings.api_key_file)
        .with_context(|| format!("reading the API key from {}", settings.api_key_file.display()))?
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (client, contracts) = Deployment::connect(&settings.rpc_url, &settings.manifest).await?;
    let (version, members) = contracts.verifier.members(&client).await?;
    let Some(index) = members.iter().position(|k| *k == vote_key.public_key()) else {
        bail!(
            "vote key {:#x} is not in the ProofVerifier's validator set (version {version}); register and be added first",
            vote_key.public_key()
        );
    };
    let index = u32::try_from(index)?;
    let set = ValidatorSet { version, members };
    let domain = VoteDomain { chain_id: client.chain_id(), verifier: contracts.verifier.address };
    std::fs::create_dir_all(&settings.data_dir)?;
    let journal = Arc::new(Mutex::new(VoteJournal::open(&settings.data_dir.join("votes.jsonl"))?));

    let identity = sage_net::load_or_create_identity(&settings.data_dir.join("p2p.key"))?;
    let net = NetConfig {
        network: settings.network,
        listen: settings.listen.parse().with_context(|| format!("network.listen {:?}", settings.listen))?,
        bootstrap: settings.bootstrap.iter().map(|a| a.parse()).collect::<Result<_, _>>()?,
        // Results and votes only: heartbeats and assignments are the coordinator's business, and
        // hearing them would cost a signature check per worker heartbeat here too.
        topics: vec![Topic::Results, Topic::Votes],
        ..NetConfig::default()
    };
    let (node, mut net_events) = NodeHandle::start(net, identity, vote_key.clone()).await?;
    let listen = node.listen_addr().to_string();
    let p2p_addr: Multiaddr =
        if listen.contains("/p2p/") { listen.parse()? } else { format!("{listen}/p2p/{}", node.peer_id()).parse()? };

    let policy = if settings.insecure_proofs { VerifyPolicy::insecure_for_tests() } else { VerifyPolicy::default() };
    let ctx = Ctx {
        vote_key: vote_key.clone(),
        domain,
        journal: journal.clone(),
        pool: Arc::new(pool::VerifyPool::new(settings.verify_threads, settings.verify_queue)),
        policy,
        account: SageAccount::new(client.clone(), settings.account, account_key),
        client,
        contracts,
        http: reqwest::Client::new(),
        api_key: Arc::new(api_key),
        membership: Arc::new(std::sync::RwLock::new(Arc::new(Membership::new(set.clone(), vote_key.public_key())))),
        node: node.clone(),
        announced: Arc::new(Mutex::new(HashMap::new())),
        settings: settings.clone(),
    };
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let mut tasks = tokio::task::JoinSet::new();

    // Network: votes from the set go to the engine (the engine checks membership and signatures);
    // workers' result announcements are remembered, so an envelope the coordinator does not serve
    // (it serves only proofs that verify) can be fetched from the worker itself.
    let votes_tx = tx.clone();
    let announced = ctx.announced.clone();
    tasks.spawn(async move {
        while let Some(event) = net_events.recv().await {
            if let NetEvent::Message { message, .. } = &event
                && message.topic == Topic::Results
                && let Ok(result) = sage_net::JobResult::from_message(message)
                && let sage_net::JobOutcome::Proved { blob, provider, .. } = &result.outcome
                && let Ok(peer) = provider.parse()
                && let Ok(mut map) = announced.lock()
            {
                if map.len() >= 65_536 {
                    map.clear();
                }
                map.insert(result.job_id, (result.worker, peer, *blob));
                continue;
            }
            if let NetEvent::Message { message, .. } = event
                && message.topic == Topic::Votes
            {
                match serde_json::from_slice::<SignedVote>(&message.payload) {
                    Ok(v) if v.validator == message.signer => {
                        let _ = votes_tx.send(Event::Vote(v)).await;
                    }
                    Ok(_) => tracing::warn!("a vote relayed under another key's envelope was dropped"),
                    Err(e) => tracing::warn!(error = %e, "unreadable vote dropped"),
                }
            }
        }
        bail!("the libp2p node stopped")
    });

    // Chain watcher: new results start rounds.
    let watch_ctx = ctx.clone();
    let watch_tx = tx.clone();
    tasks.spawn(async move {
        let cursor_path = watch_ctx.settings.data_dir.join("cursor");
        let mut from =
            std::fs::read_to_string(&cursor_path).ok().and_then(|t| t.trim().parse::<u64>().ok()).map_or(0, |b| b + 1);
        let mut every = tokio::time::interval(watch_ctx.settings.tick);
        loop {
            every.tick().await;
            let _ = watch_tx.send(Event::Tick).await;
            let step = async {
                // A new validator set is followed without a restart: the engine counts votes
                // against it, and this validator votes only while it is a member.
                let (version, _, _) = watch_ctx.contracts.verifier.validator_set(&watch_ctx.client).await?;
                if version != watch_ctx.membership().set.version {
                    let (version, members) = watch_ctx.contracts.verifier.members(&watch_ctx.client).await?;
                    let set = ValidatorSet { version, members };
                    let now = Membership::new(set.clone(), watch_ctx.membership().vote_key);
                    match now.index {
                        Some(index) => {
                            tracing::info!(version, index, size = set.members.len(), "following the new validator set")
                        }
                        None => tracing::warn!(version, "this vote key is not in the new validator set: not voting"),
                    }
                    *watch_ctx.membership.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(now);
                    let _ = watch_tx.send(Event::Set(set)).await;
                }
                let latest = watch_ctx.client.block_number().await?;
                if from > latest {
                    return anyhow::Ok(());
                }
                for e in watch_ctx.client.events(watch_ctx.contracts.jobs.address, "ResultSubmitted", from).await? {
                    if e.block_number.is_none_or(|b| b > latest) {
                        continue;
                    }
                    if let Some(JobEvent::ResultSubmitted { job_id, proof_hash, .. }) = JobEvent::decode_emitted(&e) {
                        let _ = watch_tx.send(Event::Round(RoundId { job_id, proof_hash })).await;
                    }
                }
                std::fs::write(&cursor_path, latest.to_string())?;
                from = latest + 1;
                Ok(())
            };
            if let Err(e) = step.await {
                tracing::warn!(error = %format!("{e:#}"), "chain watch failed; retrying");
            }
        }
    });

    // The engine: one owner of the consensus state.
    let engine_ctx = ctx.clone();
    let local_tx = tx.clone();
    tasks.spawn(async move {
        let config = Config { domain, timeout_ms: engine_ctx.settings.round_timeout_ms, key: Some(vote_key) };
        let mut state = State::new(config, set);
        while let Some(event) = rx.recv().await {
            let input = match event {
                // Not a member of the current set: no verification, no vote.
                Event::Round(_) | Event::Local(..) if engine_ctx.membership().index.is_none() => continue,
                Event::Round(round) => {
                    let journaled =
                        journal.lock().map_err(|_| anyhow::anyhow!("journal lock"))?.votes.get(&round).copied();
                    let effects = apply(&mut state, Input::StartRound { round, now_ms: now_ms() });
                    handle(&engine_ctx, &node, &journal, effects).await;
                    match journaled {
                        // Voted before a restart: the same verdict, never re-verified.
                        Some(verdict) => Input::LocalVerdict { round, verdict },
                        None => {
                            let (c, t) = (engine_ctx.clone(), local_tx.clone());
                            tokio::spawn(async move {
                                match verify(&c, round).await {
                                    Ok(verdict) => {
                                        let _ = t.send(Event::Local(round, verdict)).await;
                                    }
                                    Err(e) => {
                                        tracing::warn!(job = %format!("{:#x}", round.job_id), error = %format!("{e:#}"),
                                        "cannot verify; not voting")
                                    }
                                }
                            });
                            continue;
                        }
                    }
                }
                Event::Local(round, verdict) => Input::LocalVerdict { round, verdict },
                Event::Vote(v) => Input::Vote(v),
                Event::Tick => Input::Tick { now_ms: now_ms() },
                Event::Set(set) => Input::SetUpdate(set),
            };
            let effects = apply(&mut state, input);
            handle(&engine_ctx, &node, &journal, effects).await;
        }
        bail!("the engine's input channel closed")
    });
    let bridge_addr = match settings.bridge_listen {
        Some(addr) => Some(bridge::serve(ctx.clone(), addr, &mut tasks).await?),
        None => None,
    };
    let vote_key = ctx.membership().vote_key;
    tracing::info!(%p2p_addr, ?bridge_addr, index, vote_key = %format!("{vote_key:#x}"), "validator started");
    Ok(Running { p2p_addr, bridge_addr, vote_key, index, tasks })
}

async fn handle(ctx: &Ctx, node: &NodeHandle, journal: &Arc<Mutex<VoteJournal>>, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::BroadcastVote(vote) => {
                // Journaled (synced) before it leaves the process.
                let recorded = journal
                    .lock()
                    .map_err(|_| anyhow::anyhow!("journal lock"))
                    .and_then(|mut j| j.record(vote.round, vote.verdict));
                if let Err(e) = recorded {
                    tracing::error!(error = %format!("{e:#}"), "vote not journaled; not sent");
                    continue;
                }
                let payload = match serde_json::to_vec(&vote) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "vote not encodable");
                        continue;
                    }
                };
                match node.sign(Topic::Votes, payload) {
                    Ok(message) => {
                        let node = node.clone();
                        tokio::spawn(async move { publish(&node, &message).await });
                    }
                    Err(e) => tracing::error!(error = %e, "vote not signed"),
                }
                tracing::info!(job = %format!("{:#x}", vote.round.job_id), verdict = ?vote.verdict, "voted");
            }
            Effect::SubmitQc(qc) => {
                let c = ctx.clone();
                tokio::spawn(async move { submit_in_turn(&c, qc).await });
            }
            Effect::ReportEquivocation(e) => {
                tracing::warn!(validator = %format!("{:#x}", e.validator), job = %format!("{:#x}", e.first.round.job_id), "equivocation seen; reporting it on-chain");
                let c = ctx.clone();
                tokio::spawn(async move { report_equivocation(&c, e).await });
            }
            Effect::RoundFailed { round, reason } => {
                tracing::warn!(job = %format!("{:#x}", round.job_id), ?reason, "round failed without a QC");
            }
        }
    }
}

async fn publish(node: &NodeHandle, message: &SignedMessage) {
    if let Err(e) = node.publish_when_ready(message, Duration::from_secs(30)).await {
        tracing::warn!(error = %e, "vote not published");
    }
}

/// Sends equivocation evidence to the ProofVerifier: it checks both signatures against the
/// member's registered key, slashes the member's stake by the equivocation rate and pays this
/// validator the reporter's share. Every honest validator that saw both votes tries; the first
/// report lands and the others revert with `PV: already reported`.
async fn report_equivocation(ctx: &Ctx, e: sage_consensus::EquivocationEvidence) {
    let membership = ctx.membership();
    let Some(index) = membership.set.members.iter().position(|k| *k == e.validator) else {
        tracing::warn!(validator = %format!("{:#x}", e.validator), "equivocator is not in the set; not reported");
        return;
    };
    let signed = |v: &SignedVote| (v.verdict == Verdict::Valid, v.signature.r, v.signature.s);
    let job = e.first.round.job_id;
    match ctx
        .contracts
        .verifier
        .report_equivocation(
            &ctx.account,
            membership.set.version,
            u32::try_from(index).unwrap_or(u32::MAX),
            job,
            e.first.round.proof_hash,
            signed(&e.first),
            signed(&e.second),
        )
        .await
    {
        Ok(out) => tracing::info!(
            job = %format!("{job:#x}"), index, tx = %format!("{:#x}", out.tx_hash),
            "equivocation reported: the validator is slashed"
        ),
        Err(err) => match err.revert_reason() {
            Some("PV: already reported") => {
                tracing::info!(job = %format!("{job:#x}"), index, "equivocation already reported by another validator")
            }
            _ => tracing::warn!(job = %format!("{job:#x}"), index, error = %err, "equivocation report not sent"),
        },
    }
}

/// The rotation: the member at `job_id mod n` submits at once, the next one a turn later, and so
/// on; each first checks whether a verdict already landed.
async fn submit_in_turn(ctx: &Ctx, qc: QuorumCertificate) {
    let membership = ctx.membership();
    let n = membership.set.members.len().max(1) as u64;
    let low = u64::from_be_bytes(qc.round.job_id.to_bytes_be()[24..].try_into().unwrap_or([0; 8]));
    let leader = low % n;
    // A validator that left the set since the round began submits last, as a fallback.
    let rank = membership.index.map_or(n, |index| (u64::from(index) + n - leader) % n);
    tokio::time::sleep(ctx.settings.submit_turn * u32::try_from(rank).unwrap_or(u32::MAX)).await;
    match ctx.contracts.verifier.verdict(&ctx.client, qc.round.job_id).await {
        Ok(RecordedVerdict::None) => {}
        Ok(_) => return,
        Err(e) => tracing::warn!(error = %e, "cannot read the verdict; submitting anyway"),
    }
    let sigs: Vec<(u32, Felt, Felt)> = qc.signatures.iter().map(|(i, s)| (*i, s.r, s.s)).collect();
    let valid = qc.verdict == Verdict::Valid;
    match ctx
        .contracts
        .verifier
        .submit_qc(&ctx.account, qc.round.job_id, qc.round.proof_hash, valid, qc.set_version, &sigs)
        .await
    {
        Ok(out) => {
            tracing::info!(job = %format!("{:#x}", qc.round.job_id), tx = %format!("{:#x}", out.tx_hash), "QC submitted")
        }
        Err(e) => {
            tracing::info!(job = %format!("{:#x}", qc.round.job_id), error = %e, "QC not submitted (another validator's landed first?)")
        }
    }
}

/// A verdict on envelope bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Judgement {
    verdict: Verdict,
    /// Security of a proof that verified.
    security_bits: Option<u32>,
    /// Why a proof is invalid.
    reason: Option<String>,
}

/// Envelope bytes decoded once, with their proof hash as a felt, or why they are not a canonical
/// envelope (then they cannot be the proof any worker submitted: the chain records only hashes of
/// canonical ones).
fn decode(bytes: &[u8]) -> Result<(Envelope, Felt), obelysk_prover::EnvelopeError> {
    Envelope::decode_with_hash(bytes).map(|(envelope, hash)| (envelope, sage_protocol::hash32_to_felt(&hash.0)))
}

/// Judges `envelope` as the proof of `spec` for `job_id` by `worker`; with `output` (the
/// commitment the worker recorded on-chain), the proven output must be that one. Deterministic:
/// the same inputs always give the same verdict, which is what makes a journaled vote safe to
/// repeat.
fn judge(
    envelope: &Envelope,
    job_id: Felt,
    worker: Felt,
    spec: &JobSpec,
    blobs: &[Vec<u8>],
    output: Option<Felt>,
    policy: &VerifyPolicy,
) -> Judgement {
    let invalid = |reason: String| Judgement { verdict: Verdict::Invalid, security_bits: None, reason: Some(reason) };
    // The blobs were checked against their digests when fetched ([`fetch_blobs`]): a job they
    // cannot make is a job nobody could prove.
    let job = match spec.prover_job(job_id, worker, blobs) {
        Ok(job) => job,
        Err(e) => return invalid(format!("the escrowed job cannot be proved: {e}")),
    };
    match obelysk_prover::verify(envelope, &job, policy) {
        Ok(verified) => {
            let proven = sage_protocol::hash32_to_felt(&verified.statement.output_commitment.0);
            match output {
                Some(recorded) if recorded != proven => invalid(format!(
                    "the output commitment recorded on-chain ({recorded:#x}) is not the proven one ({proven:#x})"
                )),
                _ => Judgement { verdict: Verdict::Valid, security_bits: Some(verified.security_bits), reason: None },
            }
        }
        Err(e) => invalid(e.to_string()),
    }
}

/// The input blobs `spec` names, from the coordinator, each checked against its digest. `Err`
/// (no vote) when one is missing or other bytes are served: a coordinator's failure must never
/// count against the worker.
pub(crate) async fn fetch_blobs(ctx: &Ctx, spec: &JobSpec) -> Result<Vec<Vec<u8>>> {
    let base = ctx.settings.coordinator_url.trim_end_matches('/');
    let mut out = Vec::new();
    for sha in spec.blobs() {
        let hex = sage_protocol::hex32::lower_hex(&sha);
        let mut response = ctx
            .http
            .get(format!("{base}/v1/blobs/{hex}"))
            .bearer_auth(ctx.api_key.as_str())
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("fetching input blob {hex} from the coordinator"))?;
        // Read with a cap whatever the headers claim: a hostile server may stream without end.
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > MAX_MATRIX_BLOB_BYTES {
                bail!("input blob {hex} is larger than {MAX_MATRIX_BLOB_BYTES} bytes");
            }
            bytes.extend_from_slice(&chunk);
        }
        if sage_net::blob_hash(&bytes) != sha {
            bail!("the coordinator serves other bytes for input blob {hex}");
        }
        out.push(bytes);
    }
    Ok(out)
}

/// Fetches the job and its envelope (from the coordinator, else from the worker that announced it)
/// and judges the proof. `Err` means "could not judge" (no vote): a coordinator that serves other
/// bytes than the proof on-chain, or nothing at all, must not get an honest worker slashed. A proof
/// that does not verify, or whose output differs from the one recorded on-chain, is
/// `Ok(Invalid)`.
async fn verify(ctx: &Ctx, round: RoundId) -> Result<Verdict> {
    let on_chain = ctx.contracts.jobs.get_job(&ctx.client, round.job_id).await?;
    let base = ctx.settings.coordinator_url.trim_end_matches('/');
    let view: JobView = ctx
        .http
        .get(format!("{base}/v1/jobs/{:#x}", round.job_id))
        .bearer_auth(ctx.api_key.as_str())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    // The spec the coordinator serves must be the one the client escrowed.
    if view.spec.spec_hash() != on_chain.spec_hash {
        bail!("the coordinator's spec does not hash to the escrowed spec_hash");
    }
    let blobs = Arc::new(fetch_blobs(ctx, &view.spec).await?);
    // Bytes are decoded once, on a verification thread, and judged only when they are the proof
    // submitted on-chain (`None` otherwise).
    let (spec, policy, output) = (view.spec, ctx.policy, Some(on_chain.output_commitment));
    let judge_if_submitted = |bytes: Vec<u8>| {
        let (spec, blobs) = (spec.clone(), Arc::clone(&blobs));
        ctx.pool.run(move || match decode(&bytes) {
            Ok((envelope, hash)) if hash == round.proof_hash => {
                Some(judge(&envelope, round.job_id, on_chain.worker, &spec, &blobs, output, &policy))
            }
            _ => None,
        })
    };
    let mut judged = None;
    for _ in 0..20 {
        let r = ctx
            .http
            .get(format!("{base}/v1/jobs/{:#x}/proof", round.job_id))
            .bearer_auth(ctx.api_key.as_str())
            .send()
            .await?;
        if r.status().is_success() {
            judged = judge_if_submitted(r.bytes().await?.to_vec()).await?;
            if judged.is_none() {
                tracing::warn!(job = %format!("{:#x}", round.job_id), "the coordinator serves bytes that are not the proof on-chain");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if judged.is_none() {
        // Not served (the coordinator keeps only proofs that verify), or not the submitted one:
        // fetch it by hash from the assigned worker's own announcement.
        let announced = ctx.announced.lock().map_err(|_| anyhow::anyhow!("lock"))?.get(&round.job_id).copied();
        if let Some((worker, peer, blob)) = announced.filter(|(w, _, _)| *w == on_chain.worker) {
            let fetched =
                ctx.node.fetch(peer, blob).await.with_context(|| format!("fetching the envelope of {worker:#x}"))?;
            judged =
                Some(judge_if_submitted(fetched).await?.with_context(|| {
                    format!("the envelope {worker:#x} serves is not the proof it submitted on-chain")
                })?);
        }
    }
    let judged = judged.context("neither the coordinator nor the worker serves the proof submitted on-chain")?;
    if let Some(reason) = &judged.reason {
        tracing::warn!(job = %format!("{:#x}", round.job_id), %reason, "proof does not verify");
    }
    Ok(judged.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_journal_remembers_votes_and_refuses_the_opposite_verdict() {
        let dir = std::env::temp_dir().join(format!("sage-validator-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("votes.jsonl");
        let _ = std::fs::remove_file(&path);
        let round = RoundId { job_id: Felt::from(7u8), proof_hash: Felt::from(9u8) };
        let other = RoundId { job_id: Felt::from(8u8), proof_hash: Felt::from(9u8) };
        {
            let mut j = VoteJournal::open(&path).unwrap();
            j.record(round, Verdict::Valid).unwrap();
            j.record(round, Verdict::Valid).unwrap();
            j.record(other, Verdict::Invalid).unwrap();
        }
        // A torn line from a crash mid-append is skipped, never read as a vote.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"round\":").unwrap();
        let mut j = VoteJournal::open(&path).unwrap();
        assert_eq!(j.votes.get(&round), Some(&Verdict::Valid));
        assert_eq!(j.votes.get(&other), Some(&Verdict::Invalid));
        let err = j.record(round, Verdict::Invalid).unwrap_err();
        assert!(err.to_string().contains("already voted"), "{err}");
        let third = RoundId { job_id: Felt::from(10u8), proof_hash: Felt::from(9u8) };
        j.record(third, Verdict::Valid).unwrap();
        drop(j);
        let j = VoteJournal::open(&path).unwrap();
        assert_eq!(j.votes.len(), 3, "the vote after the torn line is intact");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
