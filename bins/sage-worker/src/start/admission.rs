//! Admission: what the worker does with a message on the jobs topic. Pure (no network, no clock:
//! `now` is an argument), so every rule is tested without a swarm.

use std::collections::HashSet;

use sage_net::{JobAssignment, JobRequest, SignedMessage};
use starknet_types_core::felt::Felt;

/// Longest an assignment may stay valid (a captured one cannot be replayed for ever).
pub(super) const MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// What to do with a message that arrived on the jobs topic.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// Prove it.
    Accept(JobAssignment),
    /// Answer with a refusal (the job can be reassigned).
    Refuse { job_id: Felt, reason: String, expires_at: u64 },
    /// Not acted on, and worth telling the operator why (`signer`: a key other than the
    /// coordinator's, reported once).
    Ignore { reason: String, signer: Option<Felt> },
    /// Someone else's job: not acted on, nothing to report.
    NotForUs,
}

pub(super) fn judge(
    msg: &SignedMessage,
    coordinator: Felt,
    address: Felt,
    max_n: u32,
    now: u64,
    in_progress: &HashSet<Felt>,
) -> Verdict {
    if msg.signer != coordinator {
        return Verdict::Ignore {
            reason: format!(
                "assignment signed by {:#x}, not by the configured coordinator {coordinator:#x}",
                msg.signer
            ),
            signer: Some(msg.signer),
        };
    }
    let job = match JobAssignment::from_message(msg) {
        Ok(job) => job,
        Err(e) => return Verdict::Ignore { reason: format!("malformed assignment: {e}"), signer: None },
    };
    if job.worker != address {
        return Verdict::NotForUs;
    }
    if in_progress.contains(&job.job_id) {
        return Verdict::Ignore { reason: format!("job {:#x} is already being proved", job.job_id), signer: None };
    }
    let refuse = |reason: String| Verdict::Refuse { job_id: job.job_id, reason, expires_at: job.expires_at };
    if job.expires_at < now {
        return refuse(format!("assignment expired at {} (now {now})", job.expires_at));
    }
    if job.expires_at > now.saturating_add(MAX_LIFETIME_SECS) {
        return refuse(format!(
            "assignment expires at {}, more than {MAX_LIFETIME_SECS} s ahead (now {now})",
            job.expires_at
        ));
    }
    if let Err(e) = job.request.validate() {
        return refuse(format!("{}: {e}", job.request.type_name()));
    }
    if let JobRequest::Matmul { n, .. } | JobRequest::MatmulData { n, .. } = &job.request
        && *n > max_n
    {
        return refuse(format!("matmul n = {n} exceeds this worker's limit of {max_n}"));
    }
    Verdict::Accept(job)
}
