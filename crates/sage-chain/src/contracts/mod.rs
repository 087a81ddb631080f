//! Typed bindings of the Sage contracts.

pub mod admin;
mod decode;
pub mod faucet;
pub mod jobs;
pub mod payments;
pub mod staking;
pub mod token;
pub mod verifier;

pub use admin::{Admin, AdminEvent, ROLE_GRANT_DELAY, roles};
pub use faucet::Faucet;
pub use jobs::{Job, JobEvent, JobManager, JobStatus};
pub use payments::{PaymentEvent, PaymentRouter, PrivacyRouter};
pub use staking::{
    GpuTier, ReputationCounts, ReputationEvent, ReputationManager, StakeInfo, StakeStatus, StakingEvent,
    StakingManager, StakingParams, TeeType, WorkerInfo, WorkerRegistration, events_in,
};
pub use token::{SageToken, TransferEvent};
pub use verifier::{ProofVerifier, RecordedVerdict, SignedVerdict, VerifierEvent, verdict_code};

/// Every Sage contract of one deployment, typed: what a coordinator, a validator or a test holds
/// instead of looking contracts up by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// `SageToken`.
    pub token: SageToken,
    /// `Faucet`.
    pub faucet: Faucet,
    /// `StakingManager`.
    pub staking: StakingManager,
    /// `ReputationManager`.
    pub reputation: ReputationManager,
    /// `JobManager`.
    pub jobs: JobManager,
    /// `ProofVerifier`.
    pub verifier: ProofVerifier,
    /// `PaymentRouter`.
    pub payments: PaymentRouter,
    /// `PrivacyRouter`.
    pub privacy: PrivacyRouter,
}

impl Deployment {
    /// Connects to `rpc_url` and binds the contracts the manifest at `manifest` lists: what every
    /// binary does first.
    pub async fn connect(
        rpc_url: &str,
        manifest: &std::path::Path,
    ) -> Result<(crate::ChainClient, Self), crate::ChainError> {
        Self::connect_with(crate::ChainConfig::parse(rpc_url)?, manifest).await
    }

    /// [`Deployment::connect`] with a full client config (timeouts, expected chain id).
    pub async fn connect_with(
        config: crate::ChainConfig,
        manifest: &std::path::Path,
    ) -> Result<(crate::ChainClient, Self), crate::ChainError> {
        let client = crate::ChainClient::connect(config).await?;
        let contracts = Self::from_manifest(&crate::Manifest::load(manifest)?)?;
        Ok((client, contracts))
    }

    /// The contracts a manifest lists; a manifest without one of the eight (e.g. a deployment
    /// made with `settlement: None`) is an error naming it.
    pub fn from_manifest(manifest: &crate::Manifest) -> Result<Self, crate::ChainError> {
        let at = |name: &str| manifest.contract(name).map(|c| c.address);
        Ok(Self {
            token: SageToken::at(at("SageToken")?),
            faucet: Faucet::at(at("Faucet")?),
            staking: StakingManager::at(at("StakingManager")?),
            reputation: ReputationManager::at(at("ReputationManager")?),
            jobs: JobManager::at(at("JobManager")?),
            verifier: ProofVerifier::at(at("ProofVerifier")?),
            payments: PaymentRouter::at(at("PaymentRouter")?),
            privacy: PrivacyRouter::at(at("PrivacyRouter")?),
        })
    }
}
