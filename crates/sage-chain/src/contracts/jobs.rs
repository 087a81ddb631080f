//! `JobManager` binding.

use starknet_rust::core::types::{Call, Event, Felt};

use super::{
    admin::{Admin, call},
    decode::{Reader, is_event},
};
use crate::{ChainClient, ChainError, SageAccount, TxOutcome, u256};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JobStatus {
    /// Unknown job id.
    #[default]
    None,
    /// Escrowed, waiting for a worker.
    Open,
    /// Assigned to a worker.
    Assigned,
    /// Result submitted, waiting for the validators' verdict.
    Submitted,
    /// Valid verdict: escrow released to the payout pool.
    Completed,
    /// Invalid verdict, missed deadline or cancelled by the client: client refunded.
    Refunded,
}

impl JobStatus {
    fn from_code(code: u8) -> Result<Self, ChainError> {
        Ok(match code {
            0 => Self::None,
            1 => Self::Open,
            2 => Self::Assigned,
            3 => Self::Submitted,
            4 => Self::Completed,
            5 => Self::Refunded,
            other => return Err(ChainError::Decode { what: "job status", reason: format!("unknown code {other}") }),
        })
    }
}

/// A job record (`get_job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Job {
    /// Who paid.
    pub client: Felt,
    /// Hash of the job specification.
    pub spec_hash: Felt,
    /// Escrowed SAGE, base units.
    pub payment: u128,
    /// Block timestamp by which the result must be submitted.
    pub deadline: u64,
    /// Assigned worker (zero before assignment).
    pub worker: Felt,
    /// Status.
    pub status: JobStatus,
    /// Commitment to the output.
    pub output_commitment: Felt,
    /// Hash of the proof the validators judge.
    pub proof_hash: Felt,
}

/// A decoded `JobManager` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobEvent {
    /// `JobCreated`.
    Created {
        /// Job.
        job_id: Felt,
        /// Client.
        client: Felt,
        /// Escrow.
        payment: u128,
        /// Deadline.
        deadline: u64,
    },
    /// `JobAssigned`.
    Assigned {
        /// Job.
        job_id: Felt,
        /// Worker.
        worker: Felt,
        /// Block timestamp the assignment lease runs until.
        lease_until: u64,
    },
    /// `JobReassigned`: the previous worker's lease ran out without a result.
    Reassigned {
        /// Job.
        job_id: Felt,
        /// New worker.
        worker: Felt,
        /// The worker whose lease lapsed (its reputation records a failure).
        previous: Felt,
        /// Block timestamp the new lease runs until.
        lease_until: u64,
    },
    /// `ResultSubmitted`.
    ResultSubmitted {
        /// Job.
        job_id: Felt,
        /// Worker.
        worker: Felt,
        /// Output commitment.
        output_commitment: Felt,
        /// Proof hash.
        proof_hash: Felt,
    },
    /// `JobCompleted`.
    Completed {
        /// Job.
        job_id: Felt,
        /// Worker.
        worker: Felt,
        /// Released escrow.
        payment: u128,
    },
    /// `JobRefunded`.
    Refunded {
        /// Job.
        job_id: Felt,
        /// Client.
        client: Felt,
        /// Refund.
        amount: u128,
        /// `invalid`, `expired` or `cancelled` (short string).
        reason: Felt,
    },
}

impl JobEvent {
    /// Decodes an event found by an event query ([`crate::ChainClient::events`]).
    pub fn decode_emitted(e: &starknet_rust::core::types::EmittedEvent) -> Option<Self> {
        Self::decode(&Event { from_address: e.from_address, keys: e.keys.clone(), data: e.data.clone() })
    }

    /// Decodes a JobManager event; `None` for any other event.
    pub fn decode(event: &Event) -> Option<Self> {
        let k = &event.keys;
        let mut d = Reader::new(&event.data, "job event");
        Some(if is_event(event, "JobCreated") {
            let _spec = d.felt().ok()?;
            Self::Created { job_id: *k.get(1)?, client: *k.get(2)?, payment: d.u256().ok()?, deadline: d.u64().ok()? }
        } else if is_event(event, "JobAssigned") {
            Self::Assigned { job_id: *k.get(1)?, worker: *k.get(2)?, lease_until: d.u64().ok()? }
        } else if is_event(event, "JobReassigned") {
            Self::Reassigned {
                job_id: *k.get(1)?,
                worker: *k.get(2)?,
                previous: d.felt().ok()?,
                lease_until: d.u64().ok()?,
            }
        } else if is_event(event, "ResultSubmitted") {
            Self::ResultSubmitted {
                job_id: *k.get(1)?,
                worker: *k.get(2)?,
                output_commitment: d.felt().ok()?,
                proof_hash: d.felt().ok()?,
            }
        } else if is_event(event, "JobCompleted") {
            Self::Completed { job_id: *k.get(1)?, worker: *k.get(2)?, payment: d.u256().ok()? }
        } else if is_event(event, "JobRefunded") {
            Self::Refunded { job_id: *k.get(1)?, client: *k.get(2)?, amount: d.u256().ok()?, reason: d.felt().ok()? }
        } else {
            return None;
        })
    }
}

/// The JobManager at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobManager {
    /// Contract address.
    pub address: Felt,
}

impl JobManager {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// Ownership, pause and roles.
    pub const fn admin(&self) -> Admin {
        Admin::at(self.address)
    }

    /// Constructor calldata.
    pub fn constructor(token: Felt, staking: Felt, reputation: Felt, owner: Felt, verdict_grace: u64) -> Vec<Felt> {
        vec![token, staking, reputation, owner, Felt::from(verdict_grace)]
    }

    /// The on-chain id of a client's job: `poseidon(client, client_job_id)`, scoped to the
    /// client so nobody can take an id another client is about to use.
    pub fn job_id(client: Felt, client_job_id: Felt) -> Felt {
        sage_protocol::job_id(client, client_job_id)
    }

    /// `create_job` as a call (approve the token first); the job's id is
    /// [`JobManager::job_id`]`(caller, client_job_id)`.
    pub fn create_job_call(
        &self,
        client_job_id: Felt,
        spec_hash: Felt,
        payment: u128,
        deadline: u64,
    ) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(payment);
        call(self.address, "create_job", vec![client_job_id, spec_hash, lo, hi, Felt::from(deadline)])
    }

    /// Approves and escrows `payment` for a new job (one multicall). The job's id is
    /// [`JobManager::job_id`]`(client.address(), client_job_id)`.
    pub async fn create_job(
        &self,
        client: &SageAccount,
        token: super::SageToken,
        client_job_id: Felt,
        spec_hash: Felt,
        payment: u128,
        deadline: u64,
    ) -> Result<TxOutcome, ChainError> {
        client
            .execute(vec![
                token.approve_call(self.address, payment)?,
                self.create_job_call(client_job_id, spec_hash, payment, deadline)?,
            ])
            .await
    }

    /// `assign` as a call: `job_id` to `worker` with a lease of `lease_seconds`.
    pub fn assign_call(&self, job_id: Felt, worker: Felt, lease_seconds: u64) -> Result<Call, ChainError> {
        call(self.address, "assign", vec![job_id, worker, Felt::from(lease_seconds)])
    }

    /// Assigns `job_id` to `worker` (coordinator role only); the assignment holds for
    /// `lease_seconds`, after which the coordinator may [`reassign`](Self::reassign) it.
    pub async fn assign(
        &self,
        coordinator: &SageAccount,
        job_id: Felt,
        worker: Felt,
        lease_seconds: u64,
    ) -> Result<TxOutcome, ChainError> {
        coordinator.execute(vec![self.assign_call(job_id, worker, lease_seconds)?]).await
    }

    /// `reassign` as a call.
    pub fn reassign_call(&self, job_id: Felt, worker: Felt, lease_seconds: u64) -> Result<Call, ChainError> {
        call(self.address, "reassign", vec![job_id, worker, Felt::from(lease_seconds)])
    }

    /// Moves an assigned job whose lease has run out to another worker (coordinator role only);
    /// the previous worker's reputation records a failure.
    pub async fn reassign(
        &self,
        coordinator: &SageAccount,
        job_id: Felt,
        worker: Felt,
        lease_seconds: u64,
    ) -> Result<TxOutcome, ChainError> {
        coordinator.execute(vec![self.reassign_call(job_id, worker, lease_seconds)?]).await
    }

    /// Cancels an open (unassigned) job and refunds its client (the client only).
    pub async fn cancel(&self, client: &SageAccount, job_id: Felt) -> Result<TxOutcome, ChainError> {
        client.execute(vec![call(self.address, "cancel", vec![job_id])?]).await
    }

    /// Block timestamp the current assignment lease of `job_id` runs until (0 if never assigned).
    pub async fn lease_until(&self, client: &ChainClient, job_id: Felt) -> Result<u64, ChainError> {
        let out = client.call(self.address, "lease_until", vec![job_id]).await?;
        Reader::new(&out, "lease_until").u64()
    }

    /// The contract's own job id computation (to check [`JobManager::job_id`] against).
    pub async fn job_id_of(&self, client: &ChainClient, owner: Felt, client_job_id: Felt) -> Result<Felt, ChainError> {
        let out = client.call(self.address, "job_id_of", vec![owner, client_job_id]).await?;
        Reader::new(&out, "job_id_of").felt()
    }

    /// Submits the result (assigned worker only).
    pub async fn submit_result(
        &self,
        worker: &SageAccount,
        job_id: Felt,
        output_commitment: Felt,
        proof_hash: Felt,
    ) -> Result<TxOutcome, ChainError> {
        worker.execute(vec![call(self.address, "submit_result", vec![job_id, output_commitment, proof_hash])?]).await
    }

    /// Delivers a verdict directly (verifier role only; normally the ProofVerifier does this).
    pub async fn on_verdict(
        &self,
        account: &SageAccount,
        job_id: Felt,
        proof_hash: Felt,
        valid: bool,
    ) -> Result<TxOutcome, ChainError> {
        account
            .execute(vec![call(self.address, "on_verdict", vec![job_id, proof_hash, Felt::from(u8::from(valid))])?])
            .await
    }

    /// `refund_expired` as a call.
    pub fn refund_expired_call(&self, job_id: Felt) -> Result<Call, ChainError> {
        call(self.address, "refund_expired", vec![job_id])
    }

    /// Refunds a job whose deadline (plus the verdict grace once submitted) has passed.
    pub async fn refund_expired(&self, account: &SageAccount, job_id: Felt) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.refund_expired_call(job_id)?]).await
    }

    /// `set_payout(address)` as a call (owner only).
    pub fn set_payout_call(&self, payout: Felt) -> Result<Call, ChainError> {
        call(self.address, "set_payout", vec![payout])
    }

    /// The verdict grace in seconds: how long after a job's deadline a submitted result may
    /// still be certified (and its worker must stay staked). The contract has no getter, so this
    /// reads the `verdict_grace` storage variable.
    pub async fn verdict_grace(&self, client: &ChainClient) -> Result<u64, ChainError> {
        let value = client.storage(self.address, "verdict_grace").await?;
        u64::try_from(value)
            .map_err(|_| ChainError::Decode { what: "verdict_grace", reason: format!("{value:#x} is not a u64") })
    }

    /// Changes the verdict grace period (owner only).
    pub async fn set_verdict_grace(&self, owner: &SageAccount, seconds: u64) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![call(self.address, "set_verdict_grace", vec![Felt::from(seconds)])?]).await
    }

    /// A job record.
    pub async fn get_job(&self, client: &ChainClient, job_id: Felt) -> Result<Job, ChainError> {
        let out = client.call(self.address, "get_job", vec![job_id]).await?;
        let mut r = Reader::new(&out, "Job");
        Ok(Job {
            client: r.felt()?,
            spec_hash: r.felt()?,
            payment: r.u256()?,
            deadline: r.u64()?,
            worker: r.felt()?,
            status: JobStatus::from_code(r.u8()?)?,
            output_commitment: r.felt()?,
            proof_hash: r.felt()?,
        })
    }
}
