//! Typed bindings of the Sage contracts.

pub mod admin;
mod decode;
pub mod faucet;
pub mod jobs;
pub mod payments;
pub mod staking;
pub mod token;
pub mod verifier;

pub use admin::{Admin, AdminEvent, roles};
pub use faucet::Faucet;
pub use jobs::{Job, JobEvent, JobManager, JobStatus};
pub use payments::{PaymentEvent, PaymentRouter, PrivacyRouter};
pub use staking::{
    GpuTier, ReputationCounts, ReputationEvent, ReputationManager, StakeInfo, StakeStatus, StakingEvent,
    StakingManager, StakingParams, TeeType, WorkerInfo, WorkerRegistration, events_in,
};
pub use token::{SageToken, TransferEvent};
pub use verifier::{ProofVerifier, RecordedVerdict, SignedVerdict, VerifierEvent};
