//! What can go wrong, by cause.

use sage_protocol::{Felt, api::ProblemCode};

/// An SDK call's failure. Each variant names its cause; nothing is spent when a call fails
/// before its escrow transaction (the only call that moves value).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The builder lacks something (a URL, an API key).
    #[error("client configuration: {0}")]
    Config(String),
    /// The spec breaks the size rules; nothing was sent.
    #[error("invalid job spec: {0}")]
    InvalidSpec(#[from] sage_protocol::SpecError),
    /// The coordinator answered with a problem document (a 4xx/5xx with a stable code).
    #[error("coordinator refused ({status} {}): {title}: {detail}", code.as_str())]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: ProblemCode,
        /// Summary.
        title: String,
        /// What exactly was wrong.
        detail: String,
    },
    /// The coordinator answered something that is not its API (no problem document).
    #[error("coordinator answered HTTP {status} without a problem document")]
    Http {
        /// HTTP status.
        status: u16,
    },
    /// The coordinator could not be reached (after the configured retries).
    #[error("cannot reach the coordinator at {url}: {source}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// Transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A response could not be decoded.
    #[error("cannot decode the coordinator's {what}: {reason}")]
    Decode {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A chain call (escrow, cancel, verdict, payment) failed.
    #[error("chain: {0}")]
    Chain(#[from] sage_chain::ChainError),
    /// Escrow and cancel are signed by the client's account, and none was configured.
    #[error("no account configured: escrow and cancel are signed by the client's own account (ClientBuilder::account)")]
    NoAccount,
    /// Verification reads the chain (escrow, verdict, payment), and no chain was configured.
    #[error(
        "no chain configured: verification reads the escrow, verdict and payment on-chain (ClientBuilder::chain or ::account)"
    )]
    NoChain,
    /// The proof, the job or the chain disagree with what the client submitted: the result must
    /// not be trusted.
    #[error("job {job:#x} does not verify: {reason}")]
    Verification {
        /// Job.
        job: Felt,
        /// What did not match.
        reason: String,
    },
    /// The job exists on-chain for another client, or with another spec.
    #[error("job {job:#x} is already escrowed with different terms: {reason}")]
    EscrowConflict {
        /// Job.
        job: Felt,
        /// What differs.
        reason: String,
    },
    /// OS randomness failed (a fresh client job id needs it).
    #[error("OS randomness: {0}")]
    Randomness(String),
}

impl SdkError {
    /// Whether retrying the same call may succeed (the coordinator unreachable, a 5xx, a rate
    /// limit); never true for a refusal on the merits.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Http { status } => *status >= 500,
            Self::Api { status, code, .. } => *status >= 500 || *code == ProblemCode::RateLimited,
            _ => false,
        }
    }
}
