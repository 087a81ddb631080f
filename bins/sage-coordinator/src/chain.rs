//! The coordinator's side of the chain: the escrow check, the JobManager event watcher (from a
//! stored block cursor) and the settlement outbox.
//!
//! Every transaction goes through the outbox: the entry is written with its idempotency key
//! before anything is sent, and before sending (or resending after a restart) the chain is read
//! to see whether it already landed. A crash at any point therefore never loses an assignment or
//! a payment and never sends one twice (payments are also guarded on-chain by their
//! deterministic nonce).

use anyhow::{Context, Result};
use sage_chain::{
    ChainClient, ChainError, SageAccount,
    contracts::{Deployment, JobEvent, JobStatus},
};
use sage_jobs::store::{OutboxEntry, OutboxStatus, Store};
use sage_protocol::Felt;
use serde::{Deserialize, Serialize};

/// Name of the cursor holding the last JobManager block processed.
pub const JOBS_CURSOR: &str = "jobmanager_block";

/// Chain access for the driver.
#[derive(Debug, Clone)]
pub struct ChainPort {
    /// Read access.
    pub client: ChainClient,
    /// The coordinator's account.
    pub account: SageAccount,
    /// Contract addresses.
    pub contracts: Deployment,
}

/// What an outbox entry sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Send {
    /// `assign` (first assignment) or `reassign` (after a lapsed lease).
    Assign {
        /// Worker.
        worker: Felt,
        /// Whether the chain already holds an assignment.
        reassign: bool,
        /// Lease recorded on-chain.
        lease_secs: u64,
    },
    /// PaymentRouter `submit_payment_with_proof`.
    Pay {
        /// Worker.
        worker: Felt,
        /// Proof hash the verdict certified.
        proof_hash: Felt,
    },
    /// `refund_expired`.
    Refund,
}

impl Send {
    /// The entry's kind column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Assign { reassign: false, .. } => "assign",
            Self::Assign { reassign: true, .. } => "reassign",
            Self::Pay { .. } => "pay",
            Self::Refund => "refund",
        }
    }
}

/// What became of an outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Landed (now or before): its transaction, when known.
    Landed(Option<Felt>),
    /// Not possible yet (e.g. a refund before the deadline, a reassign before the on-chain lease
    /// ran out): left pending, tried again later.
    NotYet(String),
    /// Refused for good: the entry is failed with this reason.
    Refused(String),
}

/// Reverts that mean "try again later" rather than "never".
const RETRY_LATER: [&str; 3] = ["JOB: not expired", "JOB: lease active", "PAY: no verdict"];

impl ChainPort {
    /// The on-chain job.
    pub async fn job(&self, id: Felt) -> Result<sage_chain::contracts::Job, ChainError> {
        self.contracts.jobs.get_job(&self.client, id).await
    }

    /// Whether `entry` already took effect on-chain (the check made before every send).
    async fn landed(&self, entry: &OutboxEntry, what: &Send) -> Result<Option<Sent>, ChainError> {
        let job = self.job(entry.job_id).await?;
        Ok(match what {
            Send::Assign { worker, .. } => {
                if matches!(job.status, JobStatus::Assigned | JobStatus::Submitted | JobStatus::Completed)
                    && job.worker == *worker
                {
                    Some(Sent::Landed(entry.tx))
                } else if !matches!(job.status, JobStatus::Open | JobStatus::Assigned) {
                    Some(Sent::Refused(format!("the job is {:?} on-chain", job.status)))
                } else {
                    None
                }
            }
            Send::Pay { .. } => {
                self.contracts.payments.is_paid(&self.client, entry.job_id).await?.then_some(Sent::Landed(entry.tx))
            }
            Send::Refund => (job.status == JobStatus::Refunded).then_some(Sent::Landed(entry.tx)),
        })
    }

    /// The contract call that carries out `what` for `job` (a payment draws fresh randomness).
    fn call(&self, job: Felt, what: &Send) -> Result<starknet_rust::core::types::Call> {
        Ok(match what {
            Send::Assign { worker, reassign: false, lease_secs } => {
                self.contracts.jobs.assign_call(job, *worker, *lease_secs)?
            }
            Send::Assign { worker, reassign: true, lease_secs } => {
                self.contracts.jobs.reassign_call(job, *worker, *lease_secs)?
            }
            Send::Refund => self.contracts.jobs.refund_expired_call(job)?,
            Send::Pay { worker, proof_hash } => {
                sage_payments::payment_call(self.contracts.payments, *worker, job, *proof_hash)?
            }
        })
    }

    /// Sends the open `entries`' transactions without waiting for them and records each as sent:
    /// the first half of [`ChainPort::execute`], so that a pass sends everything at once (the
    /// account numbers nonces locally) and then waits for all the receipts, instead of one round
    /// trip per transaction. First assignments and payments go as multicalls of up to `batch`
    /// calls (one nonce, one fee, one block slot for many jobs). Reassignments and refunds, and
    /// entries that failed to send before, go alone: they are the ones likely to revert ("lease
    /// active", "not expired"), and a multicall that reverts takes every call in it down. Entries
    /// already on-chain, and sends the node refuses (a revert at estimation), are left for
    /// `execute`, which classifies them; when a multicall is refused nothing is recorded for it
    /// and each of its entries is sent alone at once, so the good ones stay pipelined.
    pub async fn dispatch_all(
        &self,
        store: &dyn Store,
        entries: &[OutboxEntry],
        batch: usize,
        now_ms: u64,
    ) -> Result<()> {
        let mut batched: Vec<(&OutboxEntry, starknet_rust::core::types::Call)> = Vec::new();
        for entry in entries.iter().filter(|e| e.status == OutboxStatus::Pending) {
            let what: Send = serde_json::from_str(&entry.payload)
                .with_context(|| format!("outbox entry {} has an unreadable payload", entry.key))?;
            if self.landed(entry, &what).await?.is_some() {
                continue;
            }
            let call = self.call(entry.job_id, &what)?;
            let alone = batch <= 1
                || entry.error.is_some()
                || matches!(what, Send::Refund | Send::Assign { reassign: true, .. });
            if alone {
                self.send_unawaited(store, entry, call, now_ms).await?;
            } else {
                batched.push((entry, call));
            }
        }
        for chunk in batched.chunks(batch.max(1)) {
            let calls = chunk.iter().map(|(_, call)| call.clone()).collect();
            match self.account.submit(calls).await {
                Ok(tx) => {
                    for (entry, _) in chunk {
                        store.outbox_update(&entry.key, OutboxStatus::Sent, Some(tx), None, now_ms).await?;
                    }
                }
                Err(e) => {
                    tracing::debug!(calls = chunk.len(), error = %e, "multicall refused; its entries go alone");
                    for (entry, call) in chunk {
                        self.send_unawaited(store, entry, call.clone(), now_ms).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Submits `call` for `entry` without waiting and records it as sent; a send the node
    /// refuses is left pending for `execute`.
    async fn send_unawaited(
        &self,
        store: &dyn Store,
        entry: &OutboxEntry,
        call: starknet_rust::core::types::Call,
        now_ms: u64,
    ) -> Result<()> {
        if let Ok(tx) = self.account.submit(vec![call]).await {
            store.outbox_update(&entry.key, OutboxStatus::Sent, Some(tx), None, now_ms).await?;
        }
        Ok(())
    }

    /// Carries out `entry`: reconciles against the chain, sends if needed, records each step.
    pub async fn execute(&self, store: &dyn Store, entry: &OutboxEntry, now_ms: u64) -> Result<Sent> {
        let what: Send = serde_json::from_str(&entry.payload)
            .with_context(|| format!("outbox entry {} has an unreadable payload", entry.key))?;
        // A sent transaction: wait for its receipt first (it may still land).
        if let (OutboxStatus::Sent, Some(tx)) = (entry.status, entry.tx)
            && let Err(e) = self.client.wait_for_receipt(tx).await
        {
            tracing::warn!(key = %entry.key, error = %e, "sent transaction did not land; re-checking the chain");
        }
        if let Some(done) = self.landed(entry, &what).await? {
            self.record(store, entry, &done, now_ms).await?;
            return Ok(done);
        }
        let result = match &what {
            // Through `pay`, which also checks the credit the transaction emitted.
            Send::Pay { worker, proof_hash } => {
                match sage_payments::pay(&self.account, self.contracts.payments, *worker, entry.job_id, *proof_hash)
                    .await
                {
                    Ok((_, outcome)) => Ok(Sent::Landed(Some(outcome.tx_hash))),
                    Err(sage_payments::PaymentError::Chain(e)) => Err(e),
                    Err(other) => Ok(Sent::Refused(other.to_string())),
                }
            }
            other => {
                let call = self.call(entry.job_id, other)?;
                self.send(store, entry, vec![call], now_ms).await
            }
        };
        let done = match result {
            Ok(done) => done,
            Err(e) => match e.revert_reason() {
                Some(reason) if RETRY_LATER.contains(&reason) => Sent::NotYet(reason.to_owned()),
                Some(reason) => Sent::Refused(reason.to_owned()),
                // Transport trouble: leave the entry as it is; the next pass reconciles it.
                None => return Err(e.into()),
            },
        };
        self.record(store, entry, &done, now_ms).await?;
        Ok(done)
    }

    async fn send(
        &self,
        store: &dyn Store,
        entry: &OutboxEntry,
        calls: Vec<starknet_rust::core::types::Call>,
        now_ms: u64,
    ) -> Result<Sent, ChainError> {
        let tx = self.account.submit(calls).await?;
        // Recorded before waiting: a crash now resumes by waiting for this transaction.
        if let Err(e) = store.outbox_update(&entry.key, OutboxStatus::Sent, Some(tx), None, now_ms).await {
            tracing::error!(key = %entry.key, error = %e, "could not record the sent transaction");
        }
        self.client.wait_for_receipt(tx).await?;
        Ok(Sent::Landed(Some(tx)))
    }

    async fn record(&self, store: &dyn Store, entry: &OutboxEntry, done: &Sent, now_ms: u64) -> Result<()> {
        match done {
            Sent::Landed(tx) => store.outbox_update(&entry.key, OutboxStatus::Confirmed, *tx, None, now_ms).await?,
            Sent::Refused(why) => {
                store.outbox_update(&entry.key, OutboxStatus::Failed, None, Some(why), now_ms).await?
            }
            Sent::NotYet(why) => {
                store.outbox_update(&entry.key, OutboxStatus::Pending, None, Some(why), now_ms).await?
            }
        }
        Ok(())
    }

    /// JobManager events in blocks `from..`, with the block each came in and its transaction.
    pub async fn job_events(&self, from: u64) -> Result<Vec<(u64, Felt, JobEvent)>, ChainError> {
        let mut out = Vec::new();
        for name in ["JobCreated", "JobAssigned", "JobReassigned", "ResultSubmitted", "JobCompleted", "JobRefunded"] {
            for e in self.client.events(self.contracts.jobs.address, name, from).await? {
                if let Some(decoded) = JobEvent::decode_emitted(&e) {
                    out.push((e.block_number.unwrap_or(u64::MAX), e.transaction_hash, decoded));
                }
            }
        }
        // Block order; within a block the kinds in lifecycle order (the names above).
        out.sort_by_key(|(block, _, _)| *block);
        Ok(out)
    }
}
