//! The coordinator's REST bodies and errors (`/v1/...`). Amounts are decimal strings (SAGE base
//! units exceed JSON's safe integers); felts are `0x` hex; times are Unix milliseconds.

use serde::{Deserialize, Serialize};
use starknet_types_core::felt::Felt;

use crate::spec::JobSpec;

/// Header carrying a submission's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// `POST /v1/jobs`: the spec of a job the client escrows (or has escrowed) on-chain under
/// `client_job_id`; the job id is [`crate::job_id`]`(client, client_job_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// The client's account address (the one that calls `create_job`).
    pub client: Felt,
    /// The client's own id for this job (any felt it has not used before).
    pub client_job_id: Felt,
    /// What to compute.
    pub spec: JobSpec,
}

impl SubmitJob {
    /// Parses a `POST /v1/jobs` body and checks the spec's size rules: what the coordinator
    /// accepts, with the JSON path of a malformed field in the error.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let submit: Self =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
                let at = e.path().to_string();
                BodyError::Malformed { at: if at == "." { None } else { Some(at) }, reason: e.into_inner().to_string() }
            })?;
        submit.spec.validate().map_err(BodyError::InvalidSpec)?;
        Ok(submit)
    }
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not the expected JSON (`at`: the JSON path of the offending field, when there is one).
    #[error("job submission{}: {reason}", at.as_ref().map(|a| format!(" at `{a}`")).unwrap_or_default())]
    Malformed {
        /// JSON path of the offending field.
        at: Option<String>,
        /// The parser's complaint.
        reason: String,
    },
    /// Well-formed, but the spec breaks its size rules.
    #[error(transparent)]
    InvalidSpec(crate::SpecError),
}

/// Where a job stands, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Spec uploaded; waiting for the client's escrow on-chain.
    Submitted,
    /// Escrow seen on-chain and checked (spec hash, amount, deadline).
    Escrowed,
    /// Waiting for a worker.
    Queued,
    /// Assigned on-chain to a worker, which has not acknowledged yet.
    Assigned,
    /// The worker acknowledged and is proving.
    Proving,
    /// The worker's result is on-chain; the coordinator checked its proof.
    ResultSubmitted,
    /// Validators are voting.
    Voting,
    /// A valid quorum certificate landed on-chain.
    Certified,
    /// The worker was paid (terminal).
    Paid,
    /// Invalid verdict or invalid escrow (terminal; the client is refunded).
    Rejected,
    /// Deadline passed (terminal; the client is refunded).
    Expired,
    /// Cancelled by the client before assignment (terminal; the client is refunded).
    Cancelled,
    /// Retry budget spent (terminal; the client is refunded).
    Failed,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 13] = [
        Self::Submitted,
        Self::Escrowed,
        Self::Queued,
        Self::Assigned,
        Self::Proving,
        Self::ResultSubmitted,
        Self::Voting,
        Self::Certified,
        Self::Paid,
        Self::Rejected,
        Self::Expired,
        Self::Cancelled,
        Self::Failed,
    ];

    /// No transition leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Paid | Self::Rejected | Self::Expired | Self::Cancelled | Self::Failed)
    }

    /// The name as on the wire and in the store (`"result_submitted"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Escrowed => "escrowed",
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Proving => "proving",
            Self::ResultSubmitted => "result_submitted",
            Self::Voting => "voting",
            Self::Certified => "certified",
            Self::Paid => "paid",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// The state from its name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl core::fmt::Display for JobState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change, as stored and as streamed by `GET /v1/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Job id.
    pub job_id: Felt,
    /// Position in the job's history (0 = the submission).
    pub seq: u32,
    /// New state.
    pub state: JobState,
    /// When (Unix ms, coordinator clock).
    pub at_ms: u64,
    /// The transaction that caused it or that it sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<Felt>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The escrow as seen on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowView {
    /// Escrowed SAGE, base units (decimal string).
    #[serde(with = "decimal")]
    pub payment: u128,
    /// Block timestamp by which the result must be on-chain.
    pub deadline: u64,
    /// Spec hash the client escrowed.
    pub spec_hash: Felt,
}

/// `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// Job id (`poseidon(client, client_job_id)`).
    pub id: Felt,
    /// Client account.
    pub client: Felt,
    /// The client's id.
    pub client_job_id: Felt,
    /// What it computes.
    pub spec: JobSpec,
    /// Its hash (what the escrow must carry).
    pub spec_hash: Felt,
    /// Current state.
    pub state: JobState,
    /// The escrow, once seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<EscrowView>,
    /// Worker holding (or that last held) the assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Felt>,
    /// Assignments made so far (1 + reassignments).
    pub attempts: u32,
    /// Proof hash of the submitted result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_hash: Option<Felt>,
    /// Every state change so far, oldest first.
    pub history: Vec<Transition>,
}

/// `GET /v1/quote?type=&size=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Job type.
    #[serde(rename = "type")]
    pub job_type: String,
    /// Size.
    pub size: u32,
    /// Least escrow the coordinator queues, SAGE base units.
    #[serde(with = "decimal")]
    pub price: u128,
    /// Expected proving time, milliseconds.
    pub expected_ms: u64,
    /// `measured` (from past jobs of this type and size) or `default` (no history yet).
    pub basis: String,
    /// Shortest deadline (seconds from now) the coordinator accepts for it.
    pub min_deadline_secs: u64,
}

/// `GET /v1/workers`, `GET /v1/workers/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// Account address.
    pub address: Felt,
    /// Stark public key (what its messages are signed with).
    pub public_key: Felt,
    /// GPU tier name.
    pub tier: String,
    /// Jobs it can prove at once.
    pub capacity: u32,
    /// Assignments it holds now.
    pub active: u32,
    /// Last heartbeat (Unix ms).
    pub last_seen_ms: u64,
    /// Jobs it completed for this coordinator.
    pub completed: u64,
    /// Jobs it failed (lease lapsed, refused, invalid).
    pub failed: u64,
}

/// A page of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs, newest first.
    pub jobs: Vec<JobView>,
}

/// Stable error codes of the API (the `code` of a [`Problem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemCode {
    /// The body is not the expected JSON.
    MalformedBody,
    /// The body exceeds the size limit.
    BodyTooLarge,
    /// The spec breaks a size rule.
    InvalidSpec,
    /// The escrow on-chain carries another spec hash.
    SpecHashMismatch,
    /// The escrow pays less than the quote.
    EscrowTooSmall,
    /// The escrow's deadline leaves too little time.
    DeadlineTooClose,
    /// The job id belongs to another escrow or client.
    EscrowMismatch,
    /// No API key, or an unknown or revoked one.
    Unauthorized,
    /// Too many requests for this key; retry later.
    RateLimited,
    /// The key's job quota is spent.
    QuotaExceeded,
    /// No such job, worker or blob.
    NotFound,
    /// The idempotency key was used for another body, or the job exists with another spec.
    Conflict,
    /// The job is in a state that does not allow this.
    InvalidState,
    /// A query parameter is missing or malformed.
    BadQuery,
    /// The blob does not hash to its name.
    DigestMismatch,
    /// The coordinator failed; nothing was stored.
    Internal,
}

impl ProblemCode {
    /// Every code.
    pub const ALL: [ProblemCode; 16] = [
        Self::MalformedBody,
        Self::BodyTooLarge,
        Self::InvalidSpec,
        Self::SpecHashMismatch,
        Self::EscrowTooSmall,
        Self::DeadlineTooClose,
        Self::EscrowMismatch,
        Self::Unauthorized,
        Self::RateLimited,
        Self::QuotaExceeded,
        Self::NotFound,
        Self::Conflict,
        Self::InvalidState,
        Self::BadQuery,
        Self::DigestMismatch,
        Self::Internal,
    ];

    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            Self::MalformedBody | Self::BadQuery | Self::DigestMismatch => 400,
            Self::Unauthorized => 401,
            Self::QuotaExceeded => 403,
            Self::NotFound => 404,
            Self::Conflict | Self::InvalidState => 409,
            Self::BodyTooLarge => 413,
            Self::InvalidSpec
            | Self::SpecHashMismatch
            | Self::EscrowTooSmall
            | Self::DeadlineTooClose
            | Self::EscrowMismatch => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
        }
    }

    /// The code's wire name (`"spec_hash_mismatch"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedBody => "malformed_body",
            Self::BodyTooLarge => "body_too_large",
            Self::InvalidSpec => "invalid_spec",
            Self::SpecHashMismatch => "spec_hash_mismatch",
            Self::EscrowTooSmall => "escrow_too_small",
            Self::DeadlineTooClose => "deadline_too_close",
            Self::EscrowMismatch => "escrow_mismatch",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::InvalidState => "invalid_state",
            Self::BadQuery => "bad_query",
            Self::DigestMismatch => "digest_mismatch",
            Self::Internal => "internal",
        }
    }
}

/// An error body (`application/problem+json`, RFC 9457) with a stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `https://sage.network/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the code.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: ProblemCode,
    /// What exactly was wrong.
    pub detail: String,
}

impl Problem {
    /// A problem of `code` with `detail`.
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://sage.network/problems/{}", code.as_str()),
            title: code.as_str().replace('_', " "),
            status: code.status(),
            code,
            detail: detail.into(),
        }
    }
}

/// `u128` as a decimal string.
pub mod decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the decimal string.
    pub fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    /// Reads a decimal string of digits only.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom("expected a decimal amount"));
        }
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_roundtrip_by_name() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{state}\""));
        }
        assert_eq!(JobState::parse("done"), None);
        let terminal: Vec<_> = JobState::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [JobState::Paid, JobState::Rejected, JobState::Expired, JobState::Cancelled, JobState::Failed]
        );
    }

    #[test]
    fn problem_codes_have_client_error_statuses() {
        let p = Problem::new(ProblemCode::SpecHashMismatch, "escrow carries 0x1");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["code"], "spec_hash_mismatch");
        assert_eq!(json["status"], 422);
        assert_eq!(json["type"], "https://sage.network/problems/spec_hash_mismatch");
        assert_eq!(serde_json::to_value(ProblemCode::RateLimited).unwrap(), "rate_limited");
        assert_eq!(ProblemCode::Internal.status(), 500);
    }

    #[test]
    fn amounts_are_decimal_strings() {
        let escrow = EscrowView { payment: u128::MAX, deadline: 5, spec_hash: Felt::ONE };
        let json = serde_json::to_string(&escrow).unwrap();
        assert!(json.contains(&format!("\"{}\"", u128::MAX)), "{json}");
        assert_eq!(serde_json::from_str::<EscrowView>(&json).unwrap(), escrow);
        for bad in ["\"-1\"", "\"1e3\"", "\"\"", "12", "\"340282366920938463463374607431768211456\""] {
            let text = format!(r#"{{"payment":{bad},"deadline":5,"spec_hash":"0x1"}}"#);
            assert!(serde_json::from_str::<EscrowView>(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn submissions_refuse_unknown_fields() {
        let ok = r#"{"client":"0x1","client_job_id":"0x2","spec":{"type":"matmul","n":4,"seed":"0x3"}}"#;
        serde_json::from_str::<SubmitJob>(ok).unwrap();
        let extra = r#"{"client":"0x1","client_job_id":"0x2","spec":{"type":"matmul","n":4,"seed":"0x3"},"price":"1"}"#;
        assert!(serde_json::from_str::<SubmitJob>(extra).is_err());
    }
}
