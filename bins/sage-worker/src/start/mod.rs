//! `sage-worker start`: join the network, send heartbeats, prove the jobs the coordinator assigns
//! to this worker, serve the proofs and announce the results.
//!
//! Assignments arrive on the jobs topic. Only those signed by the configured coordinator key and
//! naming this worker's address are acted on; an expired or oversized one is answered with a
//! refusal. Jobs are proved one at a time on the configured backend, off the network task, so
//! heartbeats and gossip keep flowing while a proof runs. Each envelope is written to the proofs
//! directory (atomically) before it is announced; a job whose envelope is already there and
//! verifies is answered from the file instead of being proved again.
//!
//! With a chain configured (`[chain]` or `--rpc-url`/`--manifest`), an assignment is proved only
//! when the JobManager assigns the job to this worker for exactly the requested computation (its
//! spec hash), and the result is submitted on-chain (`submit_result`) before it is announced.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use obelysk_prover::{ProofConfig, ProveConfig, ProverBackend, VerifyPolicy};
use sage_keys::StarkKey;
use sage_net::{
    Heartbeat, JobAssignment, JobOutcome, JobResult, MAX_REASON_BYTES, NetEvent, NodeHandle, Topic,
    load_or_create_identity,
};
use starknet_types_core::felt::Felt;
use tokio::sync::mpsc;

mod admission;
mod settings;

use admission::{Verdict, judge};
use settings::Settings;
pub use settings::StartArgs;

/// Assignments waiting to be proved; more are refused (the coordinator reassigns them).
const QUEUE: usize = 64;
/// How long after its expiry a handled assignment is still recognised as a repeat.
const REPLAY_GRACE_SECS: u64 = 600;
/// Most assignment digests (and foreign signers) remembered.
const MAX_REMEMBERED: usize = 65_536;

/// Progress lines on stdout: one JSON object per line with `--json`, text otherwise.
#[derive(Clone, Copy)]
struct Reporter {
    json: bool,
}

impl Reporter {
    fn event(self, event: &str, fields: serde_json::Value) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let line = if self.json {
            let mut object = serde_json::Map::new();
            object.insert("event".into(), event.into());
            if let serde_json::Value::Object(map) = fields {
                object.extend(map);
            }
            serde_json::Value::Object(object).to_string()
        } else {
            let parts: Vec<String> = match fields {
                serde_json::Value::Object(map) => map
                    .into_iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            format!("{event:<9} {}", parts.join(" "))
        };
        // stdout closed (a pipe whose reader left): nothing useful to do about it.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

/// The proof of one job, made now or read back from the proofs directory.
struct Done {
    bytes: Vec<u8>,
    proof_hash: String,
    /// The statement's output commitment (what `submit_result` records with the proof hash).
    output_commitment: [u8; 32],
    backend: &'static str,
    prove_ms: u64,
    path: PathBuf,
    reused: bool,
}

/// Proves `assignment` (blocking), or reuses a stored envelope that verifies for the same job.
/// `blobs`: the job's inputs, fetched and checked against their digests.
fn prove_job(assignment: &JobAssignment, blobs: &[Vec<u8>], address: Felt, settings: &Settings) -> Result<Done> {
    let job = assignment.request.prover_job(assignment.job_id, address, blobs)?;
    let path = settings.proofs_dir.join(format!("job-{}.sage-proof", job.id.to_hex()));
    let policy = if settings.proof.security_bits() >= ProofConfig::MIN_PRODUCTION_SECURITY_BITS {
        VerifyPolicy::default()
    } else {
        VerifyPolicy::insecure_for_tests()
    };
    if let Ok(bytes) = std::fs::read(&path) {
        match obelysk_prover::verify_bytes(&bytes, &job, &policy)
            .and_then(|v| Ok((v, obelysk_prover::proof_hash(&bytes)?)))
        {
            Ok((verified, hash)) => {
                let proof_hash = hash.to_hex();
                let output_commitment = verified.statement.output_commitment.0;
                return Ok(Done {
                    bytes,
                    proof_hash,
                    output_commitment,
                    backend: "stored",
                    prove_ms: 0,
                    path,
                    reused: true,
                });
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "stored envelope does not verify; proving again")
            }
        }
    }
    let start = Instant::now();
    let proved = obelysk_prover::prove_with_output(
        &job,
        &ProveConfig { proof: settings.proof, backend: settings.backend, ..Default::default() },
    )
    .context("proving failed")?;
    let prove_ms = start.elapsed().as_millis() as u64;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&proved.encoded.bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().with_context(|| format!("writing {}", path.display()))?;
    Ok(Done {
        proof_hash: proved.encoded.proof_hash.to_hex(),
        output_commitment: proved.envelope.statement.output_commitment.0,
        bytes: proved.encoded.bytes,
        backend: crate::backend_name(proved.backend),
        prove_ms,
        path,
        reused: false,
    })
}

/// Gossips `result`, retrying while the mesh forms (a fresh node has no topic peers yet).
async fn announce(node: &NodeHandle, key: &StarkKey, result: &JobResult) -> Result<()> {
    let message = result.sign(key, node.network()).context("signing the result")?;
    node.publish_when_ready(&message, Duration::from_secs(10)).await.context("announcing the result")
}

/// Announces results in order on its own task, so that retries (a mesh still forming) never stall
/// the network loop or the prover.
async fn announcer(node: NodeHandle, key: StarkKey, mut results: mpsc::Receiver<JobResult>) {
    while let Some(result) = results.recv().await {
        if let Err(e) = announce(&node, &key, &result).await {
            tracing::error!(job_id = %format!("{:#x}", result.job_id), error = %format!("{e:#}"), "result not announced");
        }
    }
}

/// Queues `result` for the announcer; a full queue drops it (logged): the coordinator reassigns.
fn queue_result(ctx: &Ctx, result: JobResult) {
    if ctx.results.try_send(result).is_err() {
        tracing::error!("the result queue is full or closed; a result was not announced");
    }
}

/// Reports and announces a refusal.
fn refuse(ctx: &Ctx, job_id: Felt, reason: String) {
    let reason = truncate(reason);
    ctx.out.event("refused", serde_json::json!({ "job_id": format!("{job_id:#x}"), "reason": reason }));
    queue_result(ctx, JobResult { job_id, worker: ctx.address, outcome: JobOutcome::Refused { reason } });
}

struct Ctx {
    settings: Settings,
    chain: Option<crate::chain::WorkerChain>,
    key: StarkKey,
    address: Felt,
    node: NodeHandle,
    out: Reporter,
    busy: AtomicBool,
    results: mpsc::Sender<JobResult>,
}

/// Proves queued jobs one at a time and announces each outcome; tells the main loop which job
/// finished.
async fn prover_loop(ctx: Arc<Ctx>, mut jobs: mpsc::Receiver<JobAssignment>, finished: mpsc::Sender<Felt>) {
    while let Some(assignment) = jobs.recv().await {
        let job_id = assignment.job_id;
        if assignment.expires_at < unix_now() {
            refuse(&ctx, job_id, format!("assignment expired at {} while queued", assignment.expires_at));
        } else {
            ctx.busy.store(true, Ordering::Relaxed);
            prove_one(&ctx, assignment).await;
            ctx.busy.store(false, Ordering::Relaxed);
        }
        if finished.send(job_id).await.is_err() {
            return;
        }
    }
}

/// Checks one assignment on-chain (when a chain is configured), proves it, submits the result
/// on-chain and announces it; any failure is answered with a refusal.
async fn prove_one(ctx: &Arc<Ctx>, assignment: JobAssignment) {
    let job_id = assignment.job_id;
    let on_chain = match &ctx.chain {
        None => None,
        Some(chain) => match chain.check_assignment(&assignment).await {
            Ok(state) => Some(state),
            Err(reason) => return refuse(ctx, job_id, reason),
        },
    };
    // Inputs the spec names by digest come from the peer the signed assignment names.
    let blobs = match ctx.node.fetch_inputs(&assignment).await {
        Ok(blobs) => blobs,
        Err(e) => return refuse(ctx, job_id, format!("fetching the job's inputs: {e}")),
    };
    let worker_ctx = Arc::clone(ctx);
    let done =
        tokio::task::spawn_blocking(move || prove_job(&assignment, &blobs, worker_ctx.address, &worker_ctx.settings))
            .await
            .map_err(|e| anyhow::anyhow!("the proving task failed: {e}"))
            .and_then(|r| r);
    let done = match done {
        Ok(done) => done,
        Err(e) => return refuse(ctx, job_id, format!("{e:#}")),
    };
    if let (Some(chain), Some(crate::chain::OnChain::Assigned)) = (&ctx.chain, on_chain) {
        let Some(hash) = obelysk_prover::ProofHash::from_hex(&done.proof_hash) else {
            return refuse(ctx, job_id, format!("unreadable proof hash {:?}", done.proof_hash));
        };
        let proof_hash = sage_protocol::hash32_to_felt(&hash.0);
        let output = sage_protocol::hash32_to_felt(&done.output_commitment);
        match chain.submit(job_id, output, proof_hash).await {
            Ok(tx) => ctx.out.event(
                "submitted",
                serde_json::json!({ "job_id": format!("{job_id:#x}"), "tx": format!("{tx:#x}"),
                                    "proof_hash": format!("{proof_hash:#x}") }),
            ),
            Err(e) => return refuse(ctx, job_id, format!("submit_result failed: {e}")),
        }
    }
    serve_proof(ctx, job_id, done).await;
}

/// Serves a proof by its hash, reports it and queues its announcement (a refusal if it cannot be
/// served).
async fn serve_proof(ctx: &Ctx, job_id: Felt, done: Done) {
    let blob = match ctx.node.provide(done.bytes.clone()).await {
        Ok(blob) => blob,
        Err(e) => return refuse(ctx, job_id, format!("cannot serve the proof: {e}")),
    };
    ctx.out.event(
        "proved",
        serde_json::json!({
            "job_id": format!("{job_id:#x}"),
            "proof_hash": done.proof_hash,
            "bytes": done.bytes.len(),
            "backend": done.backend,
            "prove_ms": done.prove_ms,
            "reused": done.reused,
            "path": done.path.display().to_string(),
        }),
    );
    let outcome = JobOutcome::Proved {
        proof_hash: done.proof_hash,
        blob,
        provider: ctx.node.peer_id().to_string(),
        bytes: done.bytes.len() as u64,
        backend: done.backend.into(),
        prove_ms: done.prove_ms,
    };
    queue_result(ctx, JobResult { job_id, worker: ctx.address, outcome });
}

/// Runs the worker until SIGINT or SIGTERM.
///
/// The settings and the backend are checked before `password` is asked for, so a bad config or
/// a missing GPU fails before a prompt.
pub fn start(
    args: &StartArgs,
    keystore: &Path,
    password: impl FnOnce() -> Result<zeroize::Zeroizing<String>>,
    json: bool,
) -> Result<()> {
    let settings = Settings::resolve(args, keystore)?;
    let backend = obelysk_prover::effective_backend(settings.backend).context("choosing the prover backend")?;
    let wallet = sage_wallet::Wallet::open(keystore, &password()?)
        .with_context(|| format!("opening keystore {}", keystore.display()))?;
    let key = wallet.signer().clone();
    let address = wallet.address();
    drop(wallet);
    std::fs::create_dir_all(&settings.proofs_dir)
        .with_context(|| format!("creating the proofs directory {}", settings.proofs_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let result = runtime.block_on(run(settings, key, address, backend, Reporter { json }));
    // A proof still running is abandoned: its envelope is written atomically, so nothing half
    // written is left behind, and the job can be reassigned.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn run(settings: Settings, key: StarkKey, address: Felt, backend: ProverBackend, out: Reporter) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let identity = load_or_create_identity(&settings.identity)?;
    let (node, mut events) =
        NodeHandle::start(settings.net.clone(), identity, key.clone()).await.context("starting the network node")?;
    out.event(
        "ready",
        serde_json::json!({
            "address": format!("{address:#x}"),
            "public_key": format!("{:#x}", key.public_key()),
            "peer_id": node.peer_id().to_string(),
            "listen": node.listen_addr().to_string(),
            "backend": crate::backend_name(backend),
            "coordinator": format!("{:#x}", settings.coordinator),
            "chain": settings.chain.as_ref().map(|c| c.rpc_url.clone()),
            "proofs_dir": settings.proofs_dir.display().to_string(),
        }),
    );
    let (job_tx, job_rx) = mpsc::channel::<JobAssignment>(QUEUE);
    let (finished_tx, mut finished_rx) = mpsc::channel::<Felt>(QUEUE);
    let (results_tx, results_rx) = mpsc::channel::<JobResult>(4 * QUEUE);
    let announcing = tokio::spawn(announcer(node.clone(), key.clone(), results_rx));

    let chain = match &settings.chain {
        Some(c) => Some(crate::chain::WorkerChain::connect(c, key.clone(), address).await?),
        None => None,
    };
    let ctx =
        Arc::new(Ctx { settings, chain, key, address, node, out, busy: AtomicBool::new(false), results: results_tx });
    let prover = tokio::spawn(prover_loop(Arc::clone(&ctx), job_rx, finished_tx));
    let mut in_progress = HashSet::new();
    // Assignments already acted on (by payload hash) until a while after they expire: a replay,
    // even re-wrapped in a new gossip envelope, is not proved or answered again.
    let mut handled: HashMap<[u8; 32], u64> = HashMap::new();
    // Foreign signers are reported once each (a flood of forged assignments is not a log flood).
    let mut reported_signers: HashSet<Felt> = HashSet::new();
    let mut heartbeat = tokio::time::interval(ctx.settings.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let signal_name = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { bail!("the network node stopped") };
                let NetEvent::Message { message, .. } = event else { continue };
                if message.topic != Topic::Jobs {
                    continue;
                }
                let s = &ctx.settings;
                let now = unix_now();
                let verdict = judge(&message, s.coordinator, ctx.address, s.max_n, now, &in_progress);
                if let Verdict::Accept(JobAssignment { expires_at, .. }) | Verdict::Refuse { expires_at, .. } = &verdict {
                    let digest = sage_net::blob_hash(&message.payload);
                    if handled.contains_key(&digest) {
                        tracing::debug!("a repeated assignment ignored");
                        continue;
                    }
                    if handled.len() >= MAX_REMEMBERED {
                        handled.retain(|_, keep_until| *keep_until >= now);
                    }
                    if handled.len() < MAX_REMEMBERED {
                        handled.insert(digest, (*expires_at).max(now).saturating_add(REPLAY_GRACE_SECS));
                    }
                }
                match verdict {
                    Verdict::Accept(job) => {
                        let (job_id, job_type, size) = (job.job_id, job.request.type_name(), job.request.size());
                        match job_tx.try_send(job) {
                            Ok(()) => {
                                in_progress.insert(job_id);
                                out.event("assigned", serde_json::json!({ "job_id": format!("{job_id:#x}"), "type": job_type, "size": size }));
                            }
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                refuse(&ctx, job_id, format!("the worker's queue of {QUEUE} jobs is full"));
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => bail!("the prover task stopped"),
                        }
                    }
                    Verdict::Refuse { job_id, reason, .. } => refuse(&ctx, job_id, reason),
                    Verdict::Ignore { reason, signer } => {
                        tracing::debug!(%reason, "assignment ignored");
                        let first = match signer {
                            Some(signer) => reported_signers.len() < MAX_REMEMBERED && reported_signers.insert(signer),
                            None => true,
                        };
                        if first {
                            out.event("ignored", serde_json::json!({ "reason": reason }));
                        }
                    }
                    Verdict::NotForUs => {}
                }
            }
            Some(job_id) = finished_rx.recv() => {
                in_progress.remove(&job_id);
            }
            _ = heartbeat.tick() => {
                let beat = Heartbeat {
                    worker: ctx.address,
                    gpu_tier: ctx.settings.gpu_tier,
                    backend: crate::backend_name(backend).into(),
                    load_percent: if ctx.busy.load(Ordering::Relaxed) { 100 } else { 0 },
                    timestamp: unix_now(),
                    jobs: in_progress.iter().copied().take(sage_net::MAX_HEARTBEAT_JOBS).collect(),
                };
                match beat.sign(&ctx.key, ctx.node.network()) {
                    // No peers yet is normal right after start; the next tick tries again.
                    Ok(msg) => if let Err(e) = ctx.node.publish_signed(&msg).await {
                        tracing::debug!(error = %e, "heartbeat not sent");
                    },
                    Err(e) => tracing::error!(error = %e, "cannot sign a heartbeat"),
                }
            }
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        }
    };
    prover.abort();
    announcing.abort();
    out.event("stopped", serde_json::json!({ "signal": signal_name }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::admission::MAX_LIFETIME_SECS;
    use super::*;
    use sage_net::{JobRequest, SignedMessage};

    fn key(secret: u8) -> StarkKey {
        StarkKey::from_secret(Felt::from(secret)).unwrap()
    }

    fn assignment(n: u32, worker: Felt, expires_at: u64) -> JobAssignment {
        JobAssignment {
            job_id: Felt::from(42u8),
            worker,
            request: JobRequest::Matmul { n, seed: Felt::from(1u8) },
            expires_at,
            sent_at_ms: 0,
            inputs_from: None,
        }
    }

    #[test]
    fn only_the_coordinators_fresh_assignments_for_this_worker_within_limits_are_accepted() {
        let coord = key(7);
        let me = Felt::from(0x1234u32);
        let none = HashSet::new();
        let judge_with = |msg: &SignedMessage| judge(msg, coord.public_key(), me, 64, 1_000, &none);

        let ok = assignment(16, me, 2_000);
        assert_eq!(judge_with(&ok.sign(&coord, sage_net::DEFAULT_NETWORK).unwrap()), Verdict::Accept(ok.clone()));
        // Signed by someone else: ignored, naming the signer.
        match judge_with(&ok.sign(&key(8), sage_net::DEFAULT_NETWORK).unwrap()) {
            Verdict::Ignore { reason, signer } => {
                assert!(reason.contains(&format!("{:#x}", key(8).public_key())), "{reason}");
                assert_eq!(signer, Some(key(8).public_key()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            judge_with(&assignment(16, Felt::from(9u8), 2_000).sign(&coord, sage_net::DEFAULT_NETWORK).unwrap()),
            Verdict::NotForUs
        );
        for (job, needle) in [
            (assignment(16, me, 999), "expired"),
            (assignment(128, me, 2_000), "limit of 64"),
            (assignment(24, me, 2_000), "power of two"),
            (assignment(1, me, 2_000), "power of two"),
            // A captured assignment cannot stay valid for ever.
            (assignment(16, me, 1_000 + MAX_LIFETIME_SECS + 1), "ahead"),
        ] {
            match judge_with(&job.sign(&coord, sage_net::DEFAULT_NETWORK).unwrap()) {
                Verdict::Refuse { job_id, reason, .. } => {
                    assert_eq!(job_id, Felt::from(42u8));
                    assert!(reason.contains(needle), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        let busy: HashSet<Felt> = [Felt::from(42u8)].into();
        assert!(matches!(
            judge(&ok.sign(&coord, sage_net::DEFAULT_NETWORK).unwrap(), coord.public_key(), me, 64, 1_000, &busy),
            Verdict::Ignore { signer: None, .. }
        ));
        let garbage =
            SignedMessage::sign(sage_net::DEFAULT_NETWORK, Topic::Jobs, b"{\"job_id\":1}".to_vec(), &coord).unwrap();
        assert!(
            matches!(judge_with(&garbage), Verdict::Ignore { reason, signer: None } if reason.starts_with("malformed"))
        );
    }

    #[test]
    fn relative_paths_in_the_config_file_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("etc").join("worker.toml");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(
            &cfg,
            "[network]\ncoordinator = \"0x7\"\nidentity = \"keys/p2p.key\"\n[storage]\nproofs_dir = \"/var/proofs\"\n",
        )
        .unwrap();
        let args = StartArgs {
            config: Some(cfg.clone()),
            backend: None,
            security: None,
            listen: None,
            bootstrap: vec![],
            coordinator: None,
            proofs_dir: None,
            chain: crate::chain::ChainArgs::default(),
        };
        let s = Settings::resolve(&args, &dir.path().join("ks.json")).unwrap();
        assert_eq!(s.identity, dir.path().join("etc").join("keys/p2p.key"));
        assert_eq!(s.proofs_dir, Path::new("/var/proofs"));
        assert_eq!(s.coordinator, Felt::from(7u8));
        // Defaults sit next to the keystore.
        let bare = StartArgs { config: None, coordinator: Some("0x7".into()), ..args };
        let s = Settings::resolve(&bare, &dir.path().join("ks.json")).unwrap();
        assert_eq!((s.identity, s.proofs_dir), (dir.path().join("p2p.key"), dir.path().join("proofs")));
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        // "a" first: byte MAX_REASON_BYTES then falls inside a two-byte character.
        let cut = truncate(format!("a{}", "é".repeat(MAX_REASON_BYTES)));
        assert_eq!(cut.len(), MAX_REASON_BYTES - 1);
        assert!(cut.ends_with('é'));
        assert_eq!(truncate("short".into()), "short");
    }
}
