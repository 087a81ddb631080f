//! The job lifecycle as a pure state machine: a [`JobRecord`] and an [`Input`] in, the changed
//! record, the [`Transition`]s it made and the [`Effect`]s the driver must carry out out. No I/O
//! and no clock (`now_ms` is an argument), so every rule is tested without a database or a chain.
//!
//! ```text
//! Submitted ─escrow ok─▶ Escrowed ─▶ Queued ─assigned─▶ Assigned ─ack─▶ Proving ─result─▶ ResultSubmitted
//!     │                                 ▲                  │                │                   │
//!     │ bad escrow ─▶ Rejected          └──lease lapsed────┴────────────────┘ (attempts left)   ├─votes─▶ Voting
//!     │ cancel (before assignment) ─▶ Cancelled            lease lapsed, no attempts ─▶ Failed   ├─valid─▶ Certified ─paid─▶ Paid
//!     └ deadline passed (before a result) ─▶ Expired                                            └─invalid─▶ Rejected
//!                                    no verdict by deadline + verdict grace (ResultSubmitted, Voting) ─▶ Expired
//! ```

use sage_protocol::{
    Felt, JobSpec,
    api::{EscrowView, JobState, Transition},
};

/// A job as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Job id (`poseidon(client, client_job_id)`).
    pub id: Felt,
    /// Client account.
    pub client: Felt,
    /// The client's id.
    pub client_job_id: Felt,
    /// What it computes.
    pub spec: JobSpec,
    /// Current state.
    pub state: JobState,
    /// The checked escrow.
    pub escrow: Option<EscrowView>,
    /// Worker holding (or that last held) the assignment.
    pub worker: Option<Felt>,
    /// Fencing token: bumped on every assignment; only the holder of the current token may
    /// acknowledge, report progress or deliver the result.
    pub fence: u64,
    /// When the current lease lapses (Unix ms).
    pub lease_until_ms: Option<u64>,
    /// Assignments made so far.
    pub attempts: u32,
    /// Whether the chain holds an assignment for this job (the next one must be a `reassign`).
    pub assigned_on_chain: bool,
    /// Proof hash of the submitted result.
    pub proof_hash: Option<Felt>,
    /// Output commitment of the submitted result.
    pub output_commitment: Option<Felt>,
    /// Optimistic-concurrency version: the store saves a record only over the version it read.
    pub version: u64,
    /// Transitions made so far (the next one gets this sequence number).
    pub seq: u32,
}

impl JobRecord {
    /// A job as first submitted.
    pub fn submitted(client: Felt, client_job_id: Felt, spec: JobSpec) -> Self {
        Self {
            id: sage_protocol::job_id(client, client_job_id),
            client,
            client_job_id,
            spec,
            state: JobState::Submitted,
            escrow: None,
            worker: None,
            fence: 0,
            lease_until_ms: None,
            attempts: 0,
            assigned_on_chain: false,
            proof_hash: None,
            output_commitment: None,
            version: 0,
            // The `Submitted` transition (see `first_transition`) takes sequence 0.
            seq: 1,
        }
    }

    /// The first transition, recorded with the submission.
    pub fn first_transition(&self, now_ms: u64) -> Transition {
        Transition { job_id: self.id, seq: 0, state: JobState::Submitted, at_ms: now_ms, tx: None, detail: None }
    }
}

/// The rules a coordinator applies, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Assignments a job may have before it fails.
    pub max_attempts: u32,
    /// How long an assignment (or the last heartbeat on it) holds before it lapses.
    pub lease_ms: u64,
    /// Least time between now and the escrow's deadline when it is checked.
    pub min_lead_secs: u64,
    /// The JobManager's verdict grace: how long after the deadline a submitted result may still
    /// be certified. Past it the chain refunds the client, and so does the coordinator.
    pub verdict_grace_secs: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Self { max_attempts: 3, lease_ms: 120_000, min_lead_secs: 120, verdict_grace_secs: 24 * 3600 }
    }
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The escrow for this job id was read on-chain.
    EscrowSeen {
        /// Who escrowed it.
        client: Felt,
        /// Spec hash in the escrow.
        spec_hash: Felt,
        /// Escrowed amount.
        payment: u128,
        /// Escrow deadline (block timestamp, seconds).
        deadline: u64,
        /// The least the coordinator accepts for this spec.
        min_price: u128,
        /// The `create_job` transaction, when known.
        tx: Option<Felt>,
    },
    /// The client cancels (before assignment).
    Cancel,
    /// The assignment landed on-chain (`assign` or `reassign`) for `worker`.
    Assigned {
        /// Worker.
        worker: Felt,
        /// The assigning transaction.
        tx: Felt,
    },
    /// The lease holder acknowledged the assignment or reported progress.
    Heartbeat {
        /// Who sent it.
        worker: Felt,
        /// The fencing token it holds.
        fence: u64,
    },
    /// The lease holder refused the job.
    Refused {
        /// Who sent it.
        worker: Felt,
        /// The fencing token it holds.
        fence: u64,
        /// Why.
        reason: String,
    },
    /// Time passed (the driver's tick): lapsed leases and passed deadlines take effect.
    Tick,
    /// The worker's result is on-chain and its proof checked out.
    ResultSubmitted {
        /// Worker that submitted it.
        worker: Felt,
        /// Proof hash.
        proof_hash: Felt,
        /// Output commitment.
        output_commitment: Felt,
        /// The `submit_result` transaction.
        tx: Felt,
    },
    /// Validator votes seen for the result.
    Votes {
        /// Votes seen.
        seen: u32,
        /// Votes a certificate needs.
        needed: u32,
    },
    /// The validators' verdict landed on-chain.
    Verdict {
        /// Valid or not.
        valid: bool,
        /// The certificate's transaction.
        tx: Felt,
    },
    /// The worker's payment landed on-chain.
    Paid {
        /// The payment transaction.
        tx: Felt,
    },
    /// The client's escrow was refunded on-chain (cancel, expiry, invalid verdict).
    Refunded {
        /// The refund transaction.
        tx: Felt,
    },
    /// An operator puts an assigned job back in the queue.
    Requeue,
}

/// Work the driver must do after a step (each chain transaction through the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Send the signed assignment to `worker` over libp2p.
    SendAssignment {
        /// Worker.
        worker: Felt,
        /// Its fencing token.
        fence: u64,
    },
    /// Count a failure against `worker` (its lease lapsed or it refused).
    WorkerFailed {
        /// Worker.
        worker: Felt,
    },
    /// Pay the worker through the PaymentRouter.
    Pay {
        /// Worker.
        worker: Felt,
    },
    /// Call `refund_expired` once the chain allows it (failed and expired jobs).
    RefundWhenExpired,
}

/// Why an input was not applied. The record is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The input does not apply in this state.
    #[error("job is {state}; {input} does not apply")]
    InvalidState {
        /// Current state.
        state: JobState,
        /// The input's name.
        input: &'static str,
    },
    /// A heartbeat, refusal or result from a worker that does not hold the lease.
    #[error("worker {worker:#x} with fence {fence} does not hold the lease")]
    NotLeaseHolder {
        /// Who sent it.
        worker: Felt,
        /// The token it presented.
        fence: u64,
    },
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// State changes made, in order (empty when the input changed nothing visible).
    pub transitions: Vec<Transition>,
    /// Work for the driver.
    pub effects: Vec<Effect>,
}

impl Input {
    fn name(&self) -> &'static str {
        match self {
            Self::EscrowSeen { .. } => "escrow",
            Self::Cancel => "cancel",
            Self::Assigned { .. } => "assignment",
            Self::Heartbeat { .. } => "heartbeat",
            Self::Refused { .. } => "refusal",
            Self::Tick => "tick",
            Self::ResultSubmitted { .. } => "result",
            Self::Votes { .. } => "votes",
            Self::Verdict { .. } => "verdict",
            Self::Paid { .. } => "payment",
            Self::Refunded { .. } => "refund",
            Self::Requeue => "requeue",
        }
    }
}

struct Builder<'a> {
    job: &'a mut JobRecord,
    now_ms: u64,
    step: Step,
}

impl Builder<'_> {
    fn go(&mut self, state: JobState, tx: Option<Felt>, detail: Option<String>) {
        self.job.state = state;
        self.step.transitions.push(Transition {
            job_id: self.job.id,
            seq: self.job.seq,
            state,
            at_ms: self.now_ms,
            tx,
            detail,
        });
        self.job.seq += 1;
    }

    fn lapse(&mut self, rules: &Rules, why: String) {
        if let Some(worker) = self.job.worker {
            self.step.effects.push(Effect::WorkerFailed { worker });
        }
        self.job.lease_until_ms = None;
        if self.job.attempts >= rules.max_attempts {
            self.go(JobState::Failed, None, Some(format!("{why}; {} attempts spent", self.job.attempts)));
            self.step.effects.push(Effect::RefundWhenExpired);
        } else {
            self.go(JobState::Queued, None, Some(why));
        }
    }
}

/// Applies `input` to `job` at `now_ms`. On error the record is untouched.
pub fn apply(job: &mut JobRecord, input: Input, rules: &Rules, now_ms: u64) -> Result<Step, TransitionError> {
    use JobState as S;
    let mut next = job.clone();
    let state = next.state;
    let invalid = |input: &Input| TransitionError::InvalidState { state, input: input.name() };
    let mut b = Builder { job: &mut next, now_ms, step: Step::default() };
    let holds = |job: &JobRecord, worker: Felt, fence: u64| {
        job.worker == Some(worker) && job.fence == fence && matches!(job.state, S::Assigned | S::Proving)
    };
    match &input {
        Input::EscrowSeen { client, spec_hash, payment, deadline, min_price, tx } => {
            if state != S::Submitted {
                return Err(invalid(&input));
            }
            let problem = if *client != b.job.client {
                Some(format!("escrowed by {client:#x}, not the client {:#x}", b.job.client))
            } else if *spec_hash != b.job.spec.spec_hash() {
                Some(format!("escrow spec hash {spec_hash:#x} is not the spec's {:#x}", b.job.spec.spec_hash()))
            } else if payment < min_price {
                Some(format!("escrow of {payment} is below the quote of {min_price}"))
            } else if deadline.saturating_mul(1000) < now_ms.saturating_add(rules.min_lead_secs * 1000) {
                Some(format!("deadline {deadline} leaves less than {} s", rules.min_lead_secs))
            } else {
                None
            };
            b.job.escrow = Some(EscrowView { payment: *payment, deadline: *deadline, spec_hash: *spec_hash });
            match problem {
                Some(why) => b.go(S::Rejected, *tx, Some(why)),
                None => {
                    b.go(S::Escrowed, *tx, None);
                    b.go(S::Queued, None, None);
                }
            }
        }
        Input::Cancel => {
            if !matches!(state, S::Submitted | S::Escrowed | S::Queued) || b.job.assigned_on_chain {
                return Err(invalid(&input));
            }
            b.go(S::Cancelled, None, Some("cancelled by the client".into()));
        }
        Input::Assigned { worker, tx } => {
            if state != S::Queued {
                return Err(invalid(&input));
            }
            b.job.worker = Some(*worker);
            b.job.fence += 1;
            b.job.attempts += 1;
            b.job.assigned_on_chain = true;
            b.job.lease_until_ms = Some(now_ms + rules.lease_ms);
            let fence = b.job.fence;
            b.go(S::Assigned, Some(*tx), Some(format!("worker {worker:#x}, attempt {}", b.job.attempts)));
            b.step.effects.push(Effect::SendAssignment { worker: *worker, fence });
        }
        Input::Heartbeat { worker, fence } => {
            if !holds(b.job, *worker, *fence) {
                return Err(TransitionError::NotLeaseHolder { worker: *worker, fence: *fence });
            }
            b.job.lease_until_ms = Some(now_ms + rules.lease_ms);
            if state == S::Assigned {
                b.go(S::Proving, None, None);
            }
        }
        Input::Refused { worker, fence, reason } => {
            if !holds(b.job, *worker, *fence) {
                return Err(TransitionError::NotLeaseHolder { worker: *worker, fence: *fence });
            }
            b.lapse(rules, format!("worker {worker:#x} refused: {reason}"));
        }
        Input::Tick => {
            let deadline_ms = b.job.escrow.as_ref().map(|e| e.deadline.saturating_mul(1000));
            let passed = deadline_ms.is_some_and(|d| now_ms > d);
            match state {
                S::Escrowed | S::Queued | S::Assigned | S::Proving if passed => {
                    if let (Some(worker), S::Assigned | S::Proving) = (b.job.worker, state) {
                        b.step.effects.push(Effect::WorkerFailed { worker });
                    }
                    b.job.lease_until_ms = None;
                    b.go(S::Expired, None, Some("deadline passed before a result".into()));
                    b.step.effects.push(Effect::RefundWhenExpired);
                }
                S::Assigned | S::Proving if b.job.lease_until_ms.is_some_and(|l| now_ms > l) => {
                    let worker = b.job.worker.unwrap_or_default();
                    b.lapse(rules, format!("lease of worker {worker:#x} lapsed"));
                }
                // No quorum in time (validators down or split): the chain refunds the escrow
                // once the grace has passed; the worker is not blamed for the validators.
                S::ResultSubmitted | S::Voting
                    if deadline_ms.is_some_and(|d| now_ms > d.saturating_add(rules.verdict_grace_secs * 1000)) =>
                {
                    b.go(S::Expired, None, Some("no verdict within the verdict grace".into()));
                    b.step.effects.push(Effect::RefundWhenExpired);
                }
                _ => {}
            }
        }
        Input::ResultSubmitted { worker, proof_hash, output_commitment, tx } => {
            // The chain accepts `submit_result` only from the assigned worker; a lapsed lease
            // whose result still landed on-chain is accepted (the chain is the authority).
            if !matches!(state, S::Assigned | S::Proving | S::Queued) || b.job.worker != Some(*worker) {
                return Err(invalid(&input));
            }
            b.job.proof_hash = Some(*proof_hash);
            b.job.output_commitment = Some(*output_commitment);
            b.job.lease_until_ms = None;
            b.go(S::ResultSubmitted, Some(*tx), None);
        }
        Input::Votes { seen, needed } => {
            if !matches!(state, S::ResultSubmitted | S::Voting) {
                return Err(invalid(&input));
            }
            b.go(S::Voting, None, Some(format!("{seen} of {needed} votes")));
        }
        Input::Verdict { valid, tx } => {
            if !matches!(state, S::ResultSubmitted | S::Voting) {
                return Err(invalid(&input));
            }
            if *valid {
                b.go(S::Certified, Some(*tx), None);
                if let Some(worker) = b.job.worker {
                    b.step.effects.push(Effect::Pay { worker });
                }
            } else {
                if let Some(worker) = b.job.worker {
                    b.step.effects.push(Effect::WorkerFailed { worker });
                }
                b.go(S::Rejected, Some(*tx), Some("invalid verdict: worker slashed, client refunded".into()));
            }
        }
        Input::Paid { tx } => {
            if state != S::Certified {
                return Err(invalid(&input));
            }
            b.go(S::Paid, Some(*tx), None);
        }
        Input::Refunded { tx } => {
            if !matches!(state, S::Rejected | S::Expired | S::Cancelled | S::Failed) {
                return Err(invalid(&input));
            }
            // Recorded as a detail on the terminal state (no new state).
            let state = b.job.state;
            b.go(state, Some(*tx), Some("escrow refunded to the client".into()));
        }
        Input::Requeue => {
            if !matches!(state, S::Assigned | S::Proving) {
                return Err(invalid(&input));
            }
            b.lapse(rules, "requeued by the operator".into());
        }
    }
    let step = b.step;
    next.version += u64::from(!step.transitions.is_empty() || next != *job);
    *job = next;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Felt = Felt::from_hex_unchecked("0xc1");
    const W1: Felt = Felt::from_hex_unchecked("0xa1");
    const W2: Felt = Felt::from_hex_unchecked("0xa2");
    const TX: Felt = Felt::from_hex_unchecked("0x7");

    fn rules() -> Rules {
        Rules { max_attempts: 2, lease_ms: 1_000, min_lead_secs: 10, verdict_grace_secs: 500 }
    }

    fn job() -> JobRecord {
        JobRecord::submitted(CLIENT, Felt::ONE, JobSpec::Matmul { n: 4, seed: Felt::TWO })
    }

    fn escrow(job: &JobRecord) -> Input {
        Input::EscrowSeen {
            client: CLIENT,
            spec_hash: job.spec.spec_hash(),
            payment: 100,
            deadline: 1_000,
            min_price: 100,
            tx: Some(TX),
        }
    }

    fn queued() -> JobRecord {
        let mut j = job();
        let e = escrow(&j);
        apply(&mut j, e, &rules(), 0).unwrap();
        j
    }

    fn states(step: &Step) -> Vec<JobState> {
        step.transitions.iter().map(|t| t.state).collect()
    }

    #[test]
    fn happy_path_reaches_paid_with_one_transition_per_state() {
        let r = rules();
        let mut j = job();
        let e = escrow(&j);
        let s = apply(&mut j, e, &r, 0).unwrap();
        assert_eq!(states(&s), [JobState::Escrowed, JobState::Queued]);
        let s = apply(&mut j, Input::Assigned { worker: W1, tx: TX }, &r, 10).unwrap();
        assert_eq!(s.effects, [Effect::SendAssignment { worker: W1, fence: 1 }]);
        apply(&mut j, Input::Heartbeat { worker: W1, fence: 1 }, &r, 20).unwrap();
        assert_eq!(j.state, JobState::Proving);
        apply(
            &mut j,
            Input::ResultSubmitted { worker: W1, proof_hash: Felt::THREE, output_commitment: Felt::TWO, tx: TX },
            &r,
            30,
        )
        .unwrap();
        apply(&mut j, Input::Votes { seen: 2, needed: 3 }, &r, 40).unwrap();
        let s = apply(&mut j, Input::Verdict { valid: true, tx: TX }, &r, 50).unwrap();
        assert_eq!(s.effects, [Effect::Pay { worker: W1 }]);
        apply(&mut j, Input::Paid { tx: TX }, &r, 60).unwrap();
        assert_eq!(j.state, JobState::Paid);
        assert_eq!(j.seq, 9, "submitted + 8 changes");
        assert_eq!(j.proof_hash, Some(Felt::THREE));
    }

    #[test]
    fn a_bad_escrow_is_rejected_with_the_reason() {
        let r = rules();
        let good = job();
        let spec_hash = good.spec.spec_hash();
        let esc = |client, spec_hash, payment, deadline| Input::EscrowSeen {
            client,
            spec_hash,
            payment,
            deadline,
            min_price: 100,
            tx: Some(TX),
        };
        let cases: [(Input, &str); 4] = [
            (esc(W1, spec_hash, 100, 1_000), "not the client"),
            (esc(CLIENT, Felt::ONE, 100, 1_000), "spec hash"),
            (esc(CLIENT, spec_hash, 99, 1_000), "below the quote"),
            (esc(CLIENT, spec_hash, 100, 5), "leaves less than"),
        ];
        for (input, why) in cases {
            let mut j = good.clone();
            let s = apply(&mut j, input, &r, 0).unwrap();
            assert_eq!(states(&s), [JobState::Rejected]);
            assert!(s.transitions[0].detail.as_deref().unwrap().contains(why), "{:?}", s.transitions[0].detail);
        }
    }

    #[test]
    fn only_the_lease_holder_with_the_current_fence_is_heard() {
        let r = rules();
        let mut j = queued();
        apply(&mut j, Input::Assigned { worker: W1, tx: TX }, &r, 0).unwrap();
        let before = j.clone();
        for (worker, fence) in [(W2, 1), (W1, 0), (W1, 2)] {
            assert_eq!(
                apply(&mut j, Input::Heartbeat { worker, fence }, &r, 1),
                Err(TransitionError::NotLeaseHolder { worker, fence })
            );
            assert_eq!(
                apply(&mut j, Input::Refused { worker, fence, reason: "x".into() }, &r, 1),
                Err(TransitionError::NotLeaseHolder { worker, fence })
            );
        }
        assert_eq!(j, before, "a refused input changes nothing");
        // A result from a worker other than the assigned one is refused too.
        let forged = Input::ResultSubmitted { worker: W2, proof_hash: Felt::ONE, output_commitment: Felt::ONE, tx: TX };
        assert!(apply(&mut j, forged, &r, 1).is_err());
        assert_eq!(j, before);
    }

    #[test]
    fn a_lapsed_lease_requeues_then_fails_when_attempts_are_spent() {
        let r = rules();
        let mut j = queued();
        apply(&mut j, Input::Assigned { worker: W1, tx: TX }, &r, 0).unwrap();
        // Within the lease nothing happens; a heartbeat extends it.
        assert!(apply(&mut j, Input::Tick, &r, 900).unwrap().transitions.is_empty());
        apply(&mut j, Input::Heartbeat { worker: W1, fence: 1 }, &r, 900).unwrap();
        assert!(apply(&mut j, Input::Tick, &r, 1_800).unwrap().transitions.is_empty());
        let s = apply(&mut j, Input::Tick, &r, 1_901).unwrap();
        assert_eq!(states(&s), [JobState::Queued]);
        assert_eq!(s.effects, [Effect::WorkerFailed { worker: W1 }]);
        assert!(j.assigned_on_chain, "the next assignment must be a reassign");
        // The old holder's fence is dead now.
        assert!(apply(&mut j, Input::Heartbeat { worker: W1, fence: 1 }, &r, 1_902).is_err());
        let s = apply(&mut j, Input::Assigned { worker: W2, tx: TX }, &r, 2_000).unwrap();
        assert_eq!(s.effects, [Effect::SendAssignment { worker: W2, fence: 2 }]);
        let s = apply(&mut j, Input::Refused { worker: W2, fence: 2, reason: "busy".into() }, &r, 2_100).unwrap();
        assert_eq!(states(&s), [JobState::Failed]);
        assert_eq!(s.effects, [Effect::WorkerFailed { worker: W2 }, Effect::RefundWhenExpired]);
        assert!(j.state.is_terminal());
    }

    #[test]
    fn deadlines_expire_jobs_before_a_result_and_after_the_verdict_grace() {
        let r = rules();
        let mut j = queued();
        let s = apply(&mut j, Input::Tick, &r, 1_000_001).unwrap();
        assert_eq!(states(&s), [JobState::Expired]);
        assert_eq!(s.effects, [Effect::RefundWhenExpired]);
        let s = apply(&mut j, Input::Refunded { tx: TX }, &r, 1_000_002).unwrap();
        assert_eq!(s.transitions[0].tx, Some(TX));

        let mut j = queued();
        apply(&mut j, Input::Assigned { worker: W1, tx: TX }, &r, 0).unwrap();
        apply(
            &mut j,
            Input::ResultSubmitted { worker: W1, proof_hash: Felt::ONE, output_commitment: Felt::ONE, tx: TX },
            &r,
            1,
        )
        .unwrap();
        // A submitted result waits for its verdict through the grace (deadline 1,000 s + 500 s)…
        assert!(apply(&mut j, Input::Tick, &r, 1_500_000).unwrap().transitions.is_empty());
        assert_eq!(j.state, JobState::ResultSubmitted);
        apply(&mut j, Input::Votes { seen: 1, needed: 3 }, &r, 1_500_000).unwrap();
        // …and past it, with no quorum, it expires and the escrow is refunded; the worker is not
        // blamed for missing validators.
        let s = apply(&mut j, Input::Tick, &r, 1_500_001).unwrap();
        assert_eq!(states(&s), [JobState::Expired]);
        assert_eq!(s.effects, [Effect::RefundWhenExpired]);
        // A verdict that lands afterwards is refused (the chain refuses it too).
        assert!(apply(&mut j, Input::Verdict { valid: true, tx: TX }, &r, 1_500_002).is_err());
    }

    #[test]
    fn cancel_only_before_assignment() {
        let r = rules();
        let mut j = queued();
        apply(&mut j, Input::Cancel, &r, 0).unwrap();
        assert_eq!(j.state, JobState::Cancelled);
        let mut j = queued();
        apply(&mut j, Input::Assigned { worker: W1, tx: TX }, &r, 0).unwrap();
        assert_eq!(
            apply(&mut j, Input::Cancel, &r, 1),
            Err(TransitionError::InvalidState { state: JobState::Assigned, input: "cancel" })
        );
        // Requeued after assignment: the chain still holds the assignment, so no cancel either.
        apply(&mut j, Input::Requeue, &r, 2).unwrap();
        assert_eq!(j.state, JobState::Queued);
        assert!(apply(&mut j, Input::Cancel, &r, 3).is_err());
    }

    #[test]
    fn an_invalid_verdict_rejects_and_counts_against_the_worker() {
        let r = rules();
        let mut j = queued();
        apply(&mut j, Input::Assigned { worker: W1, tx: TX }, &r, 0).unwrap();
        apply(
            &mut j,
            Input::ResultSubmitted { worker: W1, proof_hash: Felt::ONE, output_commitment: Felt::ONE, tx: TX },
            &r,
            1,
        )
        .unwrap();
        let s = apply(&mut j, Input::Verdict { valid: false, tx: TX }, &r, 2).unwrap();
        assert_eq!(states(&s), [JobState::Rejected]);
        assert_eq!(s.effects, [Effect::WorkerFailed { worker: W1 }]);
        // No payment for a rejected job, and nothing leaves a terminal state.
        for input in [Input::Paid { tx: TX }, Input::Verdict { valid: true, tx: TX }, Input::Cancel, Input::Requeue] {
            assert!(matches!(apply(&mut j, input, &r, 3), Err(TransitionError::InvalidState { .. })));
        }
    }

    #[test]
    fn every_input_in_every_terminal_state_is_refused_or_a_no_op() {
        let r = rules();
        let inputs = |j: &JobRecord| {
            vec![
                escrow(j),
                Input::Cancel,
                Input::Assigned { worker: W1, tx: TX },
                Input::Heartbeat { worker: W1, fence: 1 },
                Input::ResultSubmitted { worker: W1, proof_hash: Felt::ONE, output_commitment: Felt::ONE, tx: TX },
                Input::Votes { seen: 1, needed: 2 },
                Input::Verdict { valid: true, tx: TX },
                Input::Paid { tx: TX },
                Input::Requeue,
                Input::Tick,
            ]
        };
        for terminal in [JobState::Paid, JobState::Rejected, JobState::Expired, JobState::Cancelled, JobState::Failed] {
            let mut j = queued();
            j.state = terminal;
            j.worker = Some(W1);
            j.fence = 1;
            for input in inputs(&j) {
                let before = j.clone();
                match apply(&mut j, input.clone(), &r, u64::MAX / 2) {
                    Ok(step) => assert!(step.transitions.is_empty() && step.effects.is_empty(), "{terminal} {input:?}"),
                    Err(_) => assert_eq!(j, before),
                }
                assert_eq!(j.state, terminal);
            }
        }
    }
}
