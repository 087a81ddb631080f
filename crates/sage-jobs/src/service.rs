//! [`JobService`]: the one way a job changes state. It reads the record, applies the pure
//! [`lifecycle`](crate::lifecycle) step, saves it over the version it read (retrying when another
//! task saved first) and publishes the transitions to subscribers (the event streams).

use std::sync::Arc;

use sage_protocol::{
    Felt,
    api::{JobView, Transition},
};
use tokio::sync::broadcast;

use crate::{
    lifecycle::{Input, JobRecord, Rules, Step, TransitionError, apply},
    store::{Store, StoreError},
};

/// Saves retried after a version conflict before giving up.
const MAX_RETRIES: usize = 8;

/// Why an input was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such job.
    #[error("no job {0:#x}")]
    NotFound(Felt),
    /// The lifecycle refused it (nothing changed).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The store failed (nothing changed).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies inputs to stored jobs and publishes what changed.
#[derive(Debug, Clone)]
pub struct JobService {
    store: Arc<dyn Store>,
    rules: Rules,
    events: broadcast::Sender<Transition>,
}

impl JobService {
    /// A service over `store` applying `rules`.
    pub fn new(store: Arc<dyn Store>, rules: Rules) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self { store, rules, events }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Every transition saved from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.events.subscribe()
    }

    /// Publishes transitions saved elsewhere (the submission's first one).
    pub fn publish(&self, transitions: &[Transition]) {
        for t in transitions {
            // No subscriber is fine.
            let _ = self.events.send(t.clone());
        }
    }

    /// Applies `input` to job `id` at `now_ms`; returns the step and the saved record.
    pub async fn apply(&self, id: Felt, input: Input, now_ms: u64) -> Result<(Step, JobRecord), ServiceError> {
        let mut last = None;
        for _ in 0..MAX_RETRIES {
            let mut job = self.store.job(id).await?.ok_or(ServiceError::NotFound(id))?;
            let read = job.version;
            let step = apply(&mut job, input.clone(), &self.rules, now_ms)?;
            if job.version == read {
                return Ok((step, job));
            }
            match self.store.save(&job, read, &step.transitions).await {
                Ok(()) => {
                    self.publish(&step.transitions);
                    return Ok((step, job));
                }
                Err(e @ StoreError::Conflict(_)) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or(StoreError::Conflict(id)).into())
    }

    /// A job as clients see it, with its history.
    pub async fn view(&self, id: Felt) -> Result<JobView, ServiceError> {
        let job = self.store.job(id).await?.ok_or(ServiceError::NotFound(id))?;
        let history = self.store.history(id, 0).await?;
        Ok(view_of(job, history))
    }
}

/// The client view of a record.
pub fn view_of(job: JobRecord, history: Vec<Transition>) -> JobView {
    JobView {
        id: job.id,
        client: job.client,
        client_job_id: job.client_job_id,
        spec_hash: job.spec.spec_hash(),
        spec: job.spec,
        state: job.state,
        escrow: job.escrow,
        worker: job.worker,
        attempts: job.attempts,
        proof_hash: job.proof_hash,
        history,
    }
}
