//! Starknet plumbing for Sage.
//!
//! Every Sage component that touches the chain goes through this crate:
//!
//! - [`ChainConfig`] / [`ChainClient`]: the endpoint, its chain id (checked on connect), views,
//!   receipts with a timeout, events, fee-token balances.
//! - [`SageAccount`]: a signing account whose nonces stay correct under concurrent submissions,
//!   with `declare`, UDC `deploy`, and reverts surfaced as [`ChainError::Reverted`] with the Cairo
//!   reason; [`deploy_oz_account`] deploys an OpenZeppelin account for a fresh key.
//! - [`Artifacts`]: the committed Sierra artifacts of `contracts/` (embedded at build time).
//! - [`Manifest`]: where the contracts were deployed, written atomically, checked against the
//!   chain and the artifacts.
//! - [`contracts`]: typed bindings (`SageToken`, `Faucet`, and the settlement contracts
//!   `StakingManager`, `ReputationManager`, `JobManager`, `ProofVerifier`, `PaymentRouter`,
//!   `PrivacyRouter`).
//! - [`devnet`]: a local starknet-devnet on a free loopback port, stopped on drop.
//!
//! # Example
//!
//! ```no_run
//! use sage_chain::{ChainClient, ChainConfig, contracts::SageToken, Manifest};
//!
//! # async fn run() -> Result<(), sage_chain::ChainError> {
//! let client = ChainClient::connect(ChainConfig::parse("http://127.0.0.1:5050/rpc")?.with_chain_id("SN_SEPOLIA")).await?;
//! let path = std::path::Path::new("deployments/local.json");
//! let manifest = Manifest::load(path)?;
//! manifest.verify_on_chain(&client, path).await?;
//! let token = SageToken::at(manifest.contract("SageToken")?.address);
//! println!("supply: {}", token.total_supply(&client).await?);
//! # Ok(()) }
//! ```
//!
//! This crate is asynchronous (tokio) but owns no runtime: binaries and `xtask` do.

pub mod account;
pub mod artifacts;
pub mod client;
pub mod contracts;
pub mod deploy;
pub mod devnet;
pub mod error;
pub mod manifest;
#[cfg(feature = "testing")]
pub mod testing;
pub mod u256;

pub use account::{OZ_ACCOUNT_CLASS_HASH, SageAccount, StarkKey, TxOutcome, deploy_oz_account, oz_account_address};
pub use artifacts::{ArtifactEntry, ArtifactIndex, Artifacts, ContractArtifact};
pub use client::{ChainClient, ChainConfig, DEFAULT_REQUEST_TIMEOUT, RpcProvider, STRK_FEE_TOKEN};
pub use deploy::{DeployParams, SAGE, SettlementParams, deploy_sage, format_sage, parse_sage};
pub use error::ChainError;
pub use manifest::{DeployedContract, Manifest};
pub use starknet_rust::core::types::{Call, Felt};
