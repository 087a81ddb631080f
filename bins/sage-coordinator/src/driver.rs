//! The driver: turns what the chain and the workers say into lifecycle inputs, and the
//! lifecycle's effects into chain transactions (through the outbox) and libp2p messages.
//!
//! One pass ([`Driver::pass`]) every tick: escrows of submitted jobs, JobManager events since the
//! stored block cursor, deadlines and leases, assignment of queued jobs, then the outbox. The
//! libp2p loop ([`Driver::on_message`]) handles heartbeats, results and the validators' votes (for
//! `Voting (k of n)` progress) as they arrive. Every
//! decision is stored before it is acted on, so a restart resumes from the store and the chain.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use obelysk_prover::VerifyPolicy;
use sage_chain::contracts::{JobEvent, JobStatus};
use sage_jobs::{
    api::ApiConfig,
    lifecycle::{Effect, Input, JobRecord},
    now_ms,
    scheduler::{Candidate, choose},
    service::{JobService, ServiceError},
    store::{OutboxEntry, OutboxStatus, WorkerRow},
};
use sage_keys::StarkKey;
use sage_net::{Heartbeat, JobAssignment, JobOutcome, JobResult, NodeHandle, SignedMessage, Topic};
use sage_protocol::{Felt, api::JobState};
use sage_types::{StakeStatus, TeeType};

use crate::{
    chain::{ChainPort, JOBS_CURSOR, Send, Sent},
    settings::{ProofSecurity, Settings, TeePolicy},
};

/// Largest proof envelope fetched from a worker.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024 * 1024;

/// The validator set's keys and when they were read.
pub type CachedSet = (std::time::Instant, Vec<Felt>);

/// How long a read of the validator set is reused for counting votes.
const MEMBERS_TTL: Duration = Duration::from_secs(30);

/// Jobs looked at per state per pass.
const BATCH: u32 = 256;

/// The coordinator's moving parts.
#[derive(Debug, Clone)]
pub struct Driver {
    /// Lifecycle over the store.
    pub service: JobService,
    /// Chain.
    pub chain: ChainPort,
    /// libp2p.
    pub node: NodeHandle,
    /// Signs assignments.
    pub key: Arc<StarkKey>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Where proofs are kept.
    pub api: Arc<ApiConfig>,
    /// Validators whose valid vote on each job's submitted proof was seen (progress only: the
    /// verdict comes from the chain).
    pub voters: Arc<std::sync::Mutex<HashMap<Felt, std::collections::BTreeSet<Felt>>>>,
    /// The validator set's keys as last read from the chain, and when (votes arrive per job and
    /// per validator; the set changes rarely).
    pub members: Arc<tokio::sync::Mutex<Option<CachedSet>>>,
    /// The validators' bridges (`POST /v1/validate`), asked before a proof is verified here.
    pub bridge: Arc<crate::bridge::BridgeClient>,
    /// Whether this coordinator led at its last pass (0 before the first, 1 leading, 2 standing by).
    pub leading: Arc<std::sync::atomic::AtomicU8>,
    /// Each heard worker's registration as last read: (attested under the TEE policy,
    /// reputation, when read). Stake is read per job instead (it depends on the job's deadline).
    pub registered: Arc<tokio::sync::Mutex<HashMap<Felt, Registration>>>,
}

/// A worker's registration facts as read from the chain: attested, reputation, when read.
pub type Registration = (bool, u32, std::time::Instant);

/// How long a worker's registration and reputation reads are reused by the scheduler.
const REGISTRATION_TTL: Duration = Duration::from_secs(60);
/// Most registrations read from the chain in one pass.
const REFRESH_PER_PASS: usize = 64;

/// Runs one driver step; a failure is logged and retried next tick. Returns its time in ms.
async fn step(name: &str, run: impl std::future::Future<Output = Result<()>>) -> u128 {
    let started = std::time::Instant::now();
    if let Err(e) = run.await {
        tracing::warn!(step = name, error = %format!("{e:#}"), "driver step failed; retrying next tick");
    }
    started.elapsed().as_millis()
}

fn outbox_entry(job: Felt, key: String, what: &Send) -> Result<OutboxEntry> {
    Ok(OutboxEntry {
        key,
        job_id: job,
        kind: what.kind().to_owned(),
        payload: serde_json::to_string(what)?,
        status: OutboxStatus::Pending,
        tx: None,
        error: None,
        created_ms: now_ms(),
    })
}

impl Driver {
    /// Applies `input` to job `id` and carries out the effects; an input that does not apply
    /// (a replayed event, a stale heartbeat) is logged and changes nothing.
    pub async fn apply(&self, id: Felt, input: Input) -> Result<Option<JobRecord>> {
        let what = format!("{input:?}");
        match self.service.apply(id, input, now_ms()).await {
            Ok((step, job)) => {
                for t in &step.transitions {
                    tracing::info!(job = %format!("{id:#x}"), state = %t.state, detail = ?t.detail, "job transition");
                }
                for effect in step.effects {
                    if let Err(e) = self.effect(&job, effect).await {
                        tracing::error!(job = %format!("{id:#x}"), error = %format!("{e:#}"), "effect failed");
                    }
                }
                Ok(Some(job))
            }
            Err(ServiceError::Transition(t)) => {
                tracing::debug!(job = %format!("{id:#x}"), input = %what, reason = %t, "input not applied");
                Ok(None)
            }
            Err(ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn effect(&self, job: &JobRecord, effect: Effect) -> Result<()> {
        let store = self.service.store();
        match effect {
            Effect::SendAssignment { worker, fence } => self.send_assignment(job, worker, fence).await,
            Effect::WorkerFailed { worker } => Ok(store.record_outcome(worker, false, 0, 0).await?),
            Effect::Pay { worker } => {
                let proof_hash = job.proof_hash.context("a certified job without a proof hash")?;
                let what = Send::Pay { worker, proof_hash };
                store.outbox_put(&outbox_entry(job.id, format!("pay:{:#x}", job.id), &what)?).await?;
                Ok(())
            }
            Effect::RefundWhenExpired => {
                store.outbox_put(&outbox_entry(job.id, format!("refund:{:#x}", job.id), &Send::Refund)?).await?;
                Ok(())
            }
            other => {
                tracing::warn!(?other, "unknown effect");
                Ok(())
            }
        }
    }

    async fn send_assignment(&self, job: &JobRecord, worker: Felt, fence: u64) -> Result<()> {
        let expires_at = job.escrow.as_ref().map_or(0, |e| e.deadline);
        // The worker fetches the job's input blobs from this node (checked against their digests).
        let blobs = sage_jobs::api::read_blobs(self.service.store().as_ref(), &job.spec)
            .await
            .map_err(|e| anyhow::anyhow!("reading the inputs of {:#x}: {e:?}", job.id))?;
        let inputs_from = if blobs.is_empty() { None } else { Some(self.node.peer_id().to_string()) };
        for blob in blobs {
            self.node.provide(blob).await.context("providing an input blob")?;
        }
        let assignment = JobAssignment {
            job_id: job.id,
            worker,
            request: job.spec.clone(),
            expires_at,
            sent_at_ms: now_ms(),
            inputs_from,
        };
        let message = assignment.sign(&self.key, self.node.network())?;
        self.node
            .publish_when_ready(&message, Duration::from_secs(10))
            .await
            .with_context(|| format!("publishing the assignment of {:#x} (fence {fence})", job.id))?;
        tracing::info!(job = %format!("{:#x}", job.id), worker = %format!("{worker:#x}"), fence, "assignment sent");
        Ok(())
    }

    /// One pass over the chain, the queue and the outbox, when this coordinator leads (several
    /// may share one PostgreSQL store; the others serve the API and the network and wait).
    pub async fn pass(&self) {
        let leads = match self.service.store().lead().await {
            Ok(leads) => leads,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether this coordinator leads; not driving this tick");
                false
            }
        };
        // 0: not known yet (the first pass logs either way), 1: leading, 2: standing by.
        let now = if leads { 1 } else { 2 };
        if now != self.leading.swap(now, std::sync::atomic::Ordering::SeqCst) {
            if leads {
                tracing::info!("leading: this coordinator drives the chain, the queue and the outbox");
            } else {
                tracing::info!("standing by: another coordinator on this store leads");
            }
        }
        if !leads {
            return;
        }
        // Each step's time goes to the debug log (`RUST_LOG=sage_coordinator::driver=debug`): the
        // first place to look when a loaded coordinator slows down.
        let escrows = step("escrows", self.check_escrows()).await;
        let events = step("chain events", self.watch_chain()).await;
        let ticks = step("deadlines and leases", self.tick_jobs()).await;
        let assign = step("assignment", self.schedule()).await;
        let outbox = step("outbox", self.drain_outbox()).await;
        tracing::debug!(escrows, events, ticks, assign, outbox, "pass (ms per step)");
    }

    /// Submitted jobs whose escrow is on-chain now: checked against the spec and the quote.
    async fn check_escrows(&self) -> Result<()> {
        for job in self.service.store().jobs_in(&[JobState::Submitted], BATCH).await? {
            self.escrow_seen(&job, None).await?;
        }
        Ok(())
    }

    async fn escrow_seen(&self, job: &JobRecord, tx: Option<Felt>) -> Result<()> {
        let on_chain = self.chain.job(job.id).await?;
        if on_chain.status == JobStatus::None {
            return Ok(());
        }
        let input = Input::EscrowSeen {
            client: on_chain.client,
            spec_hash: on_chain.spec_hash,
            payment: on_chain.payment,
            deadline: on_chain.deadline,
            min_price: self.settings.pricing.price(&job.spec),
            tx,
        };
        self.apply(job.id, input).await?;
        Ok(())
    }

    /// JobManager events since the stored cursor.
    async fn watch_chain(&self) -> Result<()> {
        let store = self.service.store();
        let from = store.cursor(JOBS_CURSOR).await?.map_or(0, |b| b + 1);
        let latest = self.chain.client.block_number().await?;
        if from > latest {
            return Ok(());
        }
        for (block, tx, event) in self.chain.job_events(from).await? {
            if block > latest {
                continue;
            }
            self.on_event(tx, event).await?;
        }
        store.set_cursor(JOBS_CURSOR, latest).await?;
        Ok(())
    }

    async fn on_event(&self, tx: Felt, event: JobEvent) -> Result<()> {
        let store = self.service.store();
        match event {
            JobEvent::Created { job_id, .. } => {
                if let Some(job) = store.job(job_id).await?.filter(|j| j.state == JobState::Submitted) {
                    self.escrow_seen(&job, Some(tx)).await?;
                }
            }
            // Normally applied when the outbox entry lands; this covers a crash in between. A
            // queued job whose last worker is this one already had this assignment applied and
            // lost it (lapse, refusal, requeue): the old event must not resurrect it.
            JobEvent::Assigned { job_id, worker, .. } | JobEvent::Reassigned { job_id, worker, .. }
                if store
                    .job(job_id)
                    .await?
                    .is_some_and(|j| j.state == JobState::Queued && j.worker != Some(worker)) =>
            {
                self.apply(job_id, Input::Assigned { worker, tx }).await?;
            }
            JobEvent::ResultSubmitted { job_id, worker, output_commitment, proof_hash } => {
                self.apply(job_id, Input::ResultSubmitted { worker, proof_hash, output_commitment, tx }).await?;
            }
            JobEvent::Completed { job_id, .. } => {
                self.apply(job_id, Input::Verdict { valid: true, tx }).await?;
            }
            JobEvent::Refunded { job_id, reason, .. } => {
                let reason = sage_keys::parse_short_string(reason).unwrap_or_default();
                match reason.as_str() {
                    "invalid" => {
                        self.apply(job_id, Input::Verdict { valid: false, tx }).await?;
                    }
                    "cancelled" => {
                        self.apply(job_id, Input::Cancel).await?;
                    }
                    _ => {
                        self.apply(job_id, Input::Tick).await?;
                    }
                }
                self.apply(job_id, Input::Refunded { tx }).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Deadlines, lapsed leases, and results whose verdict grace ran out.
    async fn tick_jobs(&self) -> Result<()> {
        let states = [
            JobState::Escrowed,
            JobState::Queued,
            JobState::Assigned,
            JobState::Proving,
            JobState::ResultSubmitted,
            JobState::Voting,
        ];
        for job in self.service.store().jobs_in(&states, BATCH).await? {
            self.apply(job.id, Input::Tick).await?;
        }
        Ok(())
    }

    /// Chooses a worker for each queued job and writes the assignment to the outbox.
    async fn schedule(&self) -> Result<()> {
        let store = self.service.store();
        let queued = store.jobs_in(&[JobState::Queued], 64).await?;
        if queued.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let window = self.settings.scheduler.heartbeat_window_ms;
        // Only workers heard from recently can be chosen: the chain is read for those alone.
        let heard: Vec<WorkerRow> =
            store.workers().await?.into_iter().filter(|w| now.saturating_sub(w.last_seen_ms) <= window).collect();
        let mut busy: HashMap<Felt, u32> = store.active_by_worker().await?;
        self.refresh_registrations(&heard).await?;
        let registered = self.registered.lock().await.clone();
        // Stake checks made this pass, by (worker, lock needed until).
        let mut stakes: HashMap<(Felt, u64), bool> = HashMap::new();
        for job in queued {
            let Some(escrow) = job.escrow.clone() else { continue };
            let attempt = job.attempts + 1;
            // Workers whose assignment for this attempt already failed on-chain are skipped, and
            // the contract refuses to reassign to the worker that just lost the job.
            let failed: Vec<Felt> = store
                .outbox_for(job.id)
                .await?
                .into_iter()
                .filter(|e| {
                    e.status == OutboxStatus::Failed && e.key.starts_with(&format!("assign:{:#x}:{attempt}:", job.id))
                })
                .filter_map(|e| serde_json::from_str::<Send>(&e.payload).ok())
                .filter_map(|s| match s {
                    Send::Assign { worker, .. } => Some(worker),
                    _ => None,
                })
                .collect();
            let until = escrow.deadline.saturating_add(self.settings.rules.verdict_grace_secs);
            let mut candidates: Vec<Candidate> = heard
                .iter()
                .filter(|w| {
                    let lost_it = job.assigned_on_chain && job.worker == Some(w.address);
                    !failed.contains(&w.address) && !lost_it
                })
                .map(|w| {
                    let (attested, reputation) = registered.get(&w.address).map_or((false, 0), |r| (r.0, r.1));
                    Candidate {
                        address: w.address,
                        // Checked on-chain below for the worker the scheduler picks, not for all.
                        stake_ok: stakes.get(&(w.address, until)).copied().unwrap_or(true),
                        attested,
                        last_seen_ms: w.last_seen_ms,
                        free: w.capacity.saturating_sub(busy.get(&w.address).copied().unwrap_or(0)),
                        throughput: (w.prove_ms_sum > 0).then(|| w.work_sum as f64 / w.prove_ms_sum as f64),
                        reputation,
                    }
                })
                .collect();
            // The best candidate whose stake the contract confirms: one `stake_status` call per
            // job in the common case, one more per worker found short.
            let chosen = loop {
                match choose(
                    &job.spec,
                    escrow.deadline.saturating_mul(1000),
                    now,
                    &candidates,
                    &self.settings.scheduler,
                ) {
                    Ok(worker) => {
                        let ok = match stakes.get(&(worker, until)) {
                            Some(ok) => *ok,
                            None => {
                                let (client, contracts) = (&self.chain.client, &self.chain.contracts);
                                let ok = sage_staking::verify_stake(client, contracts.staking, worker, until).await?
                                    == StakeStatus::Valid;
                                stakes.insert((worker, until), ok);
                                ok
                            }
                        };
                        if ok {
                            break Ok(worker);
                        }
                        if let Some(c) = candidates.iter_mut().find(|c| c.address == worker) {
                            c.stake_ok = false;
                        }
                    }
                    Err(why) => break Err(why),
                }
            };
            match chosen {
                Ok(worker) => {
                    let what =
                        Send::Assign { worker, reassign: job.assigned_on_chain, lease_secs: self.settings.lease_secs };
                    let key = format!("assign:{:#x}:{attempt}:{worker:#x}", job.id);
                    store.outbox_put(&outbox_entry(job.id, key, &what)?).await?;
                    *busy.entry(worker).or_default() += 1;
                }
                Err(why) => {
                    tracing::debug!(job = %format!("{:#x}", job.id), ?why, "no worker fits yet");
                }
            }
        }
        Ok(())
    }

    /// Reads registration (attestation under the TEE policy) and reputation from the chain for
    /// the `heard` workers not read within [`REGISTRATION_TTL`].
    async fn refresh_registrations(&self, heard: &[WorkerRow]) -> Result<()> {
        let now = std::time::Instant::now();
        // Never read first, then the oldest reads; at most REFRESH_PER_PASS a pass, so that a
        // thousand workers' reads expiring together spread over passes instead of stalling one
        // (2,000 calls: measured 4.4 s with 1,000 workers).
        let stale: Vec<Felt> = {
            let cache = self.registered.lock().await;
            let mut stale: Vec<(Option<std::time::Instant>, Felt)> = heard
                .iter()
                .map(|w| (cache.get(&w.address).map(|r| r.2), w.address))
                .filter(|(read, _)| read.is_none_or(|at| now.duration_since(at) > REGISTRATION_TTL))
                .collect();
            stale.sort_unstable_by_key(|(read, _)| *read);
            stale.into_iter().take(REFRESH_PER_PASS).map(|(_, address)| address).collect()
        };
        let (client, contracts) = (&self.chain.client, &self.chain.contracts);
        for address in stale {
            let info = contracts.staking.get_worker(client, address).await?;
            let attested = info.registered
                && match self.settings.tee_policy {
                    TeePolicy::Development => true,
                    TeePolicy::Production => info.tee_type.is_some_and(|t| t != TeeType::None),
                };
            let reputation = contracts.reputation.score(client, address).await?;
            self.registered.lock().await.insert(address, (attested, reputation, now));
        }
        Ok(())
    }

    /// Sends what the outbox holds; applies what landed.
    async fn drain_outbox(&self) -> Result<()> {
        let store = self.service.store();
        // Send every pending transaction first, then settle them one by one: the receipts of a
        // pass's transactions are awaited together rather than one round trip each.
        let open = store.outbox_open().await?;
        self.chain.dispatch_all(store.as_ref(), &open, self.settings.batch_calls, now_ms()).await?;
        for entry in store.outbox_open().await? {
            let done = self.chain.execute(store.as_ref(), &entry, now_ms()).await?;
            let what: Send = serde_json::from_str(&entry.payload)?;
            match (&done, what) {
                (Sent::Landed(tx), Send::Assign { worker, .. }) => {
                    self.apply(entry.job_id, Input::Assigned { worker, tx: tx.unwrap_or_default() }).await?;
                }
                (Sent::Landed(tx), Send::Pay { .. }) => {
                    self.apply(entry.job_id, Input::Paid { tx: tx.unwrap_or_default() }).await?;
                }
                (Sent::Refused(why), _) => {
                    tracing::warn!(key = %entry.key, reason = %why, "chain refused the transaction");
                }
                (Sent::NotYet(why), _) => tracing::debug!(key = %entry.key, reason = %why, "not yet"),
                _ => {}
            }
        }
        Ok(())
    }

    /// The validator set's keys, read from the chain at most every [`MEMBERS_TTL`].
    async fn current_members(&self) -> Result<Vec<Felt>> {
        let mut cached = self.members.lock().await;
        Ok(match cached.as_ref() {
            Some((at, keys)) if at.elapsed() < MEMBERS_TTL => keys.clone(),
            _ => {
                let (_, keys) = self.chain.contracts.verifier.members(&self.chain.client).await?;
                *cached = Some((std::time::Instant::now(), keys.clone()));
                keys
            }
        })
    }

    fn vote_domain(&self) -> sage_consensus::VoteDomain {
        sage_consensus::VoteDomain {
            chain_id: self.chain.client.chain_id(),
            verifier: self.chain.contracts.verifier.address,
        }
    }

    /// Handles one verified libp2p message.
    /// A validator's vote: counted toward the job's `Voting (k of n)` progress when it is a valid
    /// signature of a current member on the proof the chain recorded for the job.
    async fn on_vote(&self, message: &SignedMessage) -> Result<()> {
        let vote: sage_consensus::SignedVote = serde_json::from_slice(&message.payload).context("unreadable vote")?;
        if vote.validator != message.signer {
            bail!("a vote relayed under another key's envelope");
        }
        let Some(job) = self.service.store().job(vote.round.job_id).await? else { return Ok(()) };
        if !matches!(job.state, JobState::ResultSubmitted | JobState::Voting)
            || job.proof_hash != Some(vote.round.proof_hash)
        {
            return Ok(());
        }
        let domain = self.vote_domain();
        let hash = sage_consensus::vote_hash(&domain, vote.round.job_id, vote.round.proof_hash, vote.verdict);
        if !sage_consensus::verify_signature(vote.validator, hash, &vote.signature) {
            bail!("vote with a bad signature from {:#x}", vote.validator);
        }
        let members = self.current_members().await?;
        if !members.contains(&vote.validator) {
            bail!("vote from {:#x}, not in the validator set", vote.validator);
        }
        let needed = (2 * members.len() / 3 + 1) as u32;
        let seen = {
            let mut voters = self.voters.lock().map_err(|_| anyhow::anyhow!("voters lock"))?;
            if voters.len() > 4096 {
                voters.clear();
            }
            let set = voters.entry(job.id).or_default();
            if !set.insert(vote.validator) {
                return Ok(());
            }
            set.len() as u32
        };
        // Refused once the verdict landed (the job left Voting): nothing to report then.
        let _ = self.apply(job.id, Input::Votes { seen, needed }).await;
        Ok(())
    }

    pub async fn on_message(&self, message: SignedMessage) -> Result<()> {
        match message.topic {
            Topic::Heartbeats => {
                let hb = Heartbeat::from_message(&message)?;
                let now = now_ms();
                self.service
                    .store()
                    .upsert_worker(&WorkerRow {
                        address: hb.worker,
                        public_key: message.signer,
                        tier: hb.gpu_tier.map_or_else(|| "cpu".to_owned(), |t| t.to_string()),
                        capacity: 1,
                        last_seen_ms: now,
                        completed: 0,
                        failed: 0,
                        prove_ms_sum: 0,
                        work_sum: 0,
                    })
                    .await?;
                // A heartbeat acknowledges, and extends the leases of, the jobs it lists. A job
                // held but not listed: the worker never got its assignment (gossip is lossy), so
                // it is sent again; its lease is not extended, so a worker that keeps missing it
                // loses it to another when the lease lapses.
                for job in self.held_by(hb.worker).await? {
                    if hb.jobs.contains(&job.id) {
                        self.apply(job.id, Input::Heartbeat { worker: hb.worker, fence: job.fence }).await?;
                    } else if job.state == JobState::Assigned
                        && let Err(e) = self.send_assignment(&job, hb.worker, job.fence).await
                    {
                        tracing::debug!(job = %format!("{:#x}", job.id), error = %format!("{e:#}"), "assignment not re-sent");
                    }
                }
                Ok(())
            }
            Topic::Votes => self.on_vote(&message).await,
            Topic::Results => {
                let result = JobResult::from_message(&message)?;
                let Some(job) = self.service.store().job(result.job_id).await? else {
                    bail!("result for unknown job {:#x}", result.job_id);
                };
                // The lease holder's result; or the assigned worker's result arriving after its
                // on-chain `submit_result` was already seen (then only the proof is stored).
                let holds = matches!(job.state, JobState::Assigned | JobState::Proving);
                let after_result = matches!(
                    job.state,
                    JobState::ResultSubmitted | JobState::Voting | JobState::Certified | JobState::Paid
                );
                if job.worker != Some(result.worker) || !(holds || after_result) {
                    bail!(
                        "result for {:#x} from {:#x}, which does not hold its lease (job is {})",
                        job.id,
                        result.worker,
                        job.state
                    );
                }
                match result.outcome {
                    JobOutcome::Refused { reason } if holds => {
                        self.apply(job.id, Input::Refused { worker: result.worker, fence: job.fence, reason }).await?;
                    }
                    JobOutcome::Proved { proof_hash, blob, provider, bytes, prove_ms, .. } => {
                        if bytes as usize > MAX_ENVELOPE_BYTES {
                            bail!("announced envelope of {bytes} bytes exceeds {MAX_ENVELOPE_BYTES}");
                        }
                        let peer = provider.parse().context("provider is not a peer id")?;
                        let envelope = self.node.fetch(peer, blob).await.context("fetching the envelope")?;
                        match self.check_proof(&job, result.worker, &envelope, &proof_hash).await {
                            Ok(security_bits) => {
                                let path = self.api.proof_path(job.id);
                                write_atomic(&path, &envelope).await?;
                                self.service
                                    .store()
                                    .record_outcome(result.worker, true, prove_ms, job.spec.work_units())
                                    .await?;
                                tracing::info!(job = %format!("{:#x}", job.id), ?security_bits, "proof verified and stored");
                                if holds {
                                    self.apply(job.id, Input::Heartbeat { worker: result.worker, fence: job.fence })
                                        .await?;
                                }
                            }
                            Err(e) if holds => {
                                let reason = format!("its proof does not verify: {e:#}");
                                self.apply(job.id, Input::Refused { worker: result.worker, fence: job.fence, reason })
                                    .await?;
                            }
                            Err(e) => bail!("the proof of {:#x} does not verify: {e:#}", job.id),
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn held_by(&self, worker: Felt) -> Result<Vec<JobRecord>> {
        Ok(self.service.store().jobs_held_by(worker).await?)
    }

    /// Checks a fetched envelope for `job` proved by `worker`: it must hash to the announced hash
    /// (and to the on-chain one once recorded), and it must verify, judged by the first validator
    /// bridge that answers with a vote that checks, or here. Returns its security bits when known
    /// (a validator repeating a journaled vote does not re-verify).
    async fn check_proof(
        &self,
        job: &JobRecord,
        worker: Felt,
        envelope: &[u8],
        announced: &str,
    ) -> Result<Option<u32>> {
        // Decoded once: the hash checks and a local verification both use this envelope.
        let (b, announced) = (envelope.to_vec(), announced.to_owned());
        let on_chain = job.proof_hash;
        let (decoded, proof_hash) = tokio::task::spawn_blocking(move || {
            let (decoded, hash) = obelysk_prover::Envelope::decode_with_hash(&b)?;
            if hash.to_hex() != announced {
                bail!("the envelope hashes to {}, not the announced {announced}", hash.to_hex());
            }
            let felt = sage_protocol::hash32_to_felt(&hash.0);
            if let Some(on_chain) = on_chain
                && felt != on_chain
            {
                bail!("the envelope is not the proof submitted on-chain ({on_chain:#x})");
            }
            Ok((decoded, felt))
        })
        .await??;
        if self.bridge.is_configured() {
            let request = sage_consensus::bridge::ValidateRequest {
                job_id: job.id,
                spec: job.spec.clone(),
                envelope: envelope.to_vec(),
            };
            match self.bridge.validate(&self.vote_domain(), &self.current_members().await?, &request, proof_hash).await
            {
                Ok(judged) if judged.verdict == sage_consensus::Verdict::Valid => {
                    tracing::info!(job = %format!("{:#x}", job.id), bridge = %judged.url,
                        validator = %format!("{:#x}", judged.answer.vote.validator), "a validator judged the proof valid");
                    return Ok(judged.answer.security_bits);
                }
                Ok(judged) => tracing::warn!(job = %format!("{:#x}", job.id), bridge = %judged.url,
                    reason = ?judged.answer.reason, "a validator judged the proof invalid; confirming it here"),
                Err(e) => tracing::warn!(job = %format!("{:#x}", job.id), error = %e, "verifying the proof here"),
            }
        }
        let blobs = sage_jobs::api::read_blobs(self.service.store().as_ref(), &job.spec)
            .await
            .map_err(|e| anyhow::anyhow!("reading the inputs of {:#x}: {e:?}", job.id))?;
        let prover_job = job.spec.prover_job(job.id, worker, &blobs)?;
        let policy = match self.settings.proof_security {
            ProofSecurity::Production => VerifyPolicy::default(),
            ProofSecurity::Test => VerifyPolicy::insecure_for_tests(),
        };
        let verified =
            tokio::task::spawn_blocking(move || obelysk_prover::verify(&decoded, &prover_job, &policy)).await??;
        Ok(Some(verified.security_bits))
    }
}

async fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await?;
    Ok(())
}
