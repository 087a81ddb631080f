//! A real starknet-devnet with every Sage contract deployed, for tests, examples and benches
//! (feature `testing`). One fixture instead of a copy per test file.
//!
//! ```no_run
//! # async fn run() -> Result<(), sage_chain::ChainError> {
//! use sage_chain::{DeployParams, SAGE, testing::TestNet};
//!
//! // Four funded accounts: the owner (deployer) and three others holding 1,000 SAGE each.
//! let net = TestNet::start(4, &DeployParams::default(), 1_000 * SAGE).await?;
//! let balance = net.contracts.token.balance_of(&net.client, net.accounts[1].address()).await?;
//! assert_eq!(balance, 1_000 * SAGE);
//! # Ok(()) }
//! ```

use crate::{
    Artifacts, ChainClient, ChainConfig, ChainError, DeployParams, Manifest, SageAccount,
    contracts::Deployment,
    deploy_sage,
    devnet::{Devnet, DevnetOptions, predeployed_signers},
};

/// A devnet, a client, its predeployed accounts (the first is the owner that deployed) and the
/// deployed contracts. The devnet stops when this is dropped.
#[derive(Debug)]
pub struct TestNet {
    /// The devnet process.
    pub devnet: Devnet,
    /// A client connected to it.
    pub client: ChainClient,
    /// Predeployed accounts; `accounts[0]` deployed and owns the contracts.
    pub accounts: Vec<SageAccount>,
    /// What was deployed.
    pub manifest: Manifest,
    /// The deployed contracts, typed.
    pub contracts: Deployment,
}

impl TestNet {
    /// Starts a devnet with `accounts` predeployed accounts (at least 1), deploys Sage with
    /// `params` from the first, and sends `fund` SAGE base units to each of the others.
    pub async fn start(accounts: u8, params: &DeployParams, fund: u128) -> Result<Self, ChainError> {
        let devnet = Devnet::start(DevnetOptions { accounts: accounts.max(1), ..DevnetOptions::default() }).await?;
        let client = ChainClient::connect(ChainConfig::new(devnet.rpc_url())).await?;
        let accounts = predeployed_signers(&client).await?;
        let owner = &accounts[0];
        let manifest = deploy_sage(owner, &Artifacts::embedded()?, params).await?;
        let contracts = Deployment::from_manifest(&manifest)?;
        if fund > 0 {
            for a in &accounts[1..] {
                contracts.token.transfer(owner, a.address(), fund).await?;
            }
        }
        Ok(Self { devnet, client, accounts, manifest, contracts })
    }

    /// The account that deployed and owns the contracts.
    pub fn owner(&self) -> &SageAccount {
        &self.accounts[0]
    }
}
