//! Test fixtures shared by the coordinator's and the worker's devnet tests (feature `testing`):
//! a devnet with the contracts, a validator set, a coordinator's settings, and quorum
//! certificates signed by that set.

use std::{path::Path, time::Duration};

use sage_chain::{
    ChainClient, DeployParams, Felt, Manifest, SAGE, SageAccount,
    contracts::{Deployment, GpuTier},
    devnet::Devnet,
    testing::TestNet,
};
use sage_consensus::{StarkKey, Verdict, VoteDomain, sign_vote};
use sage_jobs::{lifecycle::Rules, scheduler::Pricing, scheduler::SchedulerRules};

use crate::settings::{ProofSecurity, Settings, TeePolicy};

/// Validators in every test network.
pub const VALIDATORS: usize = 4;

/// A devnet with the contracts deployed, `VALIDATORS` staked and registered validators installed
/// as the ProofVerifier's set, and blocks every second (see `Devnet::produce_blocks`).
pub struct Network {
    /// The devnet process.
    pub devnet: Devnet,
    /// Read access.
    pub client: ChainClient,
    /// Deployer, owner and coordinator account.
    pub owner: SageAccount,
    /// The owner's private key (what a coordinator's key file holds).
    pub owner_secret: Felt,
    /// A funded client account.
    pub client_acc: SageAccount,
    /// The client account's private key (what a client's key file holds).
    pub client_secret: Felt,
    /// The validators' vote keys.
    pub validator_keys: Vec<StarkKey>,
    /// Contract addresses.
    pub contracts: Deployment,
    /// The deployment manifest.
    pub manifest: Manifest,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("rpc", &self.devnet.rpc_url().as_str())
            .field("owner", &self.owner.address())
            .field("client", &self.client_acc.address())
            .finish_non_exhaustive()
    }
}

impl Network {
    /// Starts it (panics with the install instruction when the devnet binary is missing).
    pub async fn start() -> Self {
        let TestNet { devnet, client, accounts, contracts, manifest } =
            TestNet::start((2 + VALIDATORS) as u8, &DeployParams::default(), 100_000 * SAGE)
                .await
                .expect("devnet (run `cargo xtask tools` first)");
        let secrets = devnet.predeployed_accounts().await.expect("predeployed accounts");
        let mut accounts = accounts.into_iter();
        let owner = accounts.next().expect("owner");
        let client_acc = accounts.next().expect("client");
        let mut validator_keys = Vec::new();
        let mut members = Vec::new();
        for (i, account) in accounts.enumerate() {
            let key = StarkKey::from_secret(Felt::from(7_000 + i as u64)).expect("validator key");
            contracts.staking.stake(&account, contracts.token, 10_000 * SAGE, GpuTier::T4, 3_600).await.expect("stake");
            contracts.staking.register_validator(&account, key.public_key()).await.expect("register validator");
            members.push((key.public_key(), account.address()));
            validator_keys.push(key);
        }
        contracts.verifier.set_validators(&owner, &members).await.expect("validator set");
        devnet.produce_blocks(Duration::from_secs(1));
        Self {
            owner_secret: secrets[0].private_key,
            client_secret: secrets[1].private_key,
            devnet,
            client,
            owner,
            client_acc,
            validator_keys,
            contracts,
            manifest,
        }
    }

    /// Coordinator settings for this network under `dir` (manifest and key file written there):
    /// fast ticks, test-level proofs, the development TEE policy, a price of 1 SAGE per job.
    pub fn coordinator_settings(&self, dir: &Path, lease_secs: u64) -> Settings {
        let manifest = dir.join("manifest.json");
        self.manifest.save(&manifest).expect("manifest");
        let key_file = dir.join("coordinator.key");
        std::fs::write(&key_file, format!("{:#x}\n", self.owner_secret)).expect("key file");
        Settings {
            data_dir: dir.join("data"),
            api_listen: "127.0.0.1:0".parse().expect("addr"),
            max_body_bytes: None,
            max_blob_bytes: None,
            rpc_url: self.devnet.rpc_url().to_string(),
            manifest,
            account: self.owner.address(),
            key_file,
            verdict_grace_secs: 24 * 3600,
            p2p_listen: "/ip4/127.0.0.1/tcp/0".into(),
            bootstrap: Vec::new(),
            identity: dir.join("p2p.key"),
            network: sage_net::DEFAULT_NETWORK,
            rules: Rules { max_attempts: 3, lease_ms: lease_secs * 1000, min_lead_secs: 5 },
            scheduler: SchedulerRules { heartbeat_window_ms: 3_000, ..SchedulerRules::default() },
            pricing: Pricing { base: SAGE, per_million_units: 0 },
            lease_secs,
            tick: Duration::from_millis(200),
            proof_security: ProofSecurity::Test,
            tee_policy: TeePolicy::Development,
        }
    }

    /// Every validator signs `verdict` for (job, proof); the client account submits the QC
    /// (anyone may; the owner's nonce belongs to a coordinator running in the same test).
    pub async fn certify(&self, job: Felt, proof: Felt, verdict: Verdict) {
        let domain = VoteDomain { chain_id: self.client.chain_id(), verifier: self.contracts.verifier.address };
        let sigs: Vec<(u32, Felt, Felt)> = self
            .validator_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let s = sign_vote(k, &domain, job, proof, verdict).expect("vote");
                (i as u32, s.r, s.s)
            })
            .collect();
        self.contracts
            .verifier
            .submit_qc(&self.client_acc, job, proof, verdict == Verdict::Valid, 1, &sigs)
            .await
            .expect("QC");
    }
}
