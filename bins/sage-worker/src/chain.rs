//! The worker on-chain: its account (the wallet's OpenZeppelin account, salt = public key), the
//! assignment check before proving, `submit_result` after, and the operator commands
//! `request-tokens`, `stake`, `register` and `status`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sage_chain::{
    ChainClient, ChainError, SAGE, SageAccount,
    contracts::{Deployment, JobEvent, JobStatus, RecordedVerdict},
};
use sage_keys::StarkKey;
use sage_net::JobAssignment;
use sage_types::{GpuTier, TeeType};
use starknet_types_core::felt::Felt;

/// Results listed by `status` (the newest).
const STATUS_JOBS: usize = 20;

/// Largest balance decrypted, in units (BSGS over a 2^20-entry table: at most 2^20 giant steps).
pub const MAX_UNITS: u64 = 1 << 40;
/// Baby-step table size (log2), cached beside the keystore.
pub const TABLE_BITS: u32 = 20;

/// The BSGS table, read from `dir/bsgs-20.table` or built (a second or two) and saved there.
pub fn table(dir: &Path) -> Result<obelysk_elgamal::BabyStepTable> {
    let path = dir.join(format!("bsgs-{TABLE_BITS}.table"));
    if let Ok(t) = obelysk_elgamal::BabyStepTable::load(&path) {
        return Ok(t);
    }
    let t = obelysk_elgamal::BabyStepTable::build(TABLE_BITS)?;
    if let Err(e) = t.save(&path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the BSGS table");
    }
    Ok(t)
}

/// Where the chain is: flags over the config file's `[chain]`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ChainArgs {
    /// Starknet JSON-RPC endpoint (config: chain.rpc_url).
    #[arg(long, env = "SAGE_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Deployment manifest with the contract addresses (config: chain.manifest).
    #[arg(long, env = "SAGE_MANIFEST")]
    pub manifest: Option<PathBuf>,
}

/// Resolved chain settings.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// RPC endpoint.
    pub rpc_url: String,
    /// Manifest path.
    pub manifest: PathBuf,
}

impl ChainSettings {
    /// Flags first, then the config file's values; `None` when neither names an endpoint.
    pub fn resolve(args: &ChainArgs, file_rpc: Option<&str>, file_manifest: Option<&Path>) -> Result<Option<Self>> {
        let rpc_url = args.rpc_url.clone().or(file_rpc.map(str::to_owned));
        let manifest = args.manifest.clone().or(file_manifest.map(Path::to_path_buf));
        match (rpc_url, manifest) {
            (None, None) => Ok(None),
            (Some(rpc_url), Some(manifest)) => Ok(Some(Self { rpc_url, manifest })),
            (Some(_), None) => bail!("a chain RPC URL without a manifest: pass --manifest or set chain.manifest"),
            (None, Some(_)) => bail!("a manifest without a chain RPC URL: pass --rpc-url or set chain.rpc_url"),
        }
    }
}

/// The worker's account on a deployment.
#[derive(Debug, Clone)]
pub struct WorkerChain {
    /// Read access.
    pub client: ChainClient,
    /// The worker's account.
    pub account: SageAccount,
    /// Contract addresses.
    pub contracts: Deployment,
}

/// What the chain says of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChain {
    /// Assigned to this worker, spec as escrowed: prove it.
    Assigned,
    /// This worker already submitted its result (a restart): serve the proof, do not resubmit.
    Submitted,
}

impl WorkerChain {
    /// Connects and binds the wallet's account.
    pub async fn connect(settings: &ChainSettings, key: StarkKey, address: Felt) -> Result<Self> {
        let (client, contracts) = Deployment::connect(&settings.rpc_url, &settings.manifest)
            .await
            .with_context(|| format!("connecting to the chain RPC URL {:?}", settings.rpc_url))?;
        Ok(Self { account: SageAccount::new(client.clone(), address, key), client, contracts })
    }

    /// Checks `a` against the JobManager before any work: the job must be assigned to this
    /// worker and escrowed for exactly the requested computation (its spec hash).
    pub async fn check_assignment(&self, a: &JobAssignment) -> Result<OnChain, String> {
        let job =
            self.contracts.jobs.get_job(&self.client, a.job_id).await.map_err(|e| format!("reading the job: {e}"))?;
        if job.worker != self.account.address() {
            return Err(format!("the chain does not assign job {:#x} to this worker", a.job_id));
        }
        if job.spec_hash != a.request.spec_hash() {
            return Err(format!(
                "the assignment's spec hashes to {:#x}, but the escrow is for {:#x}",
                a.request.spec_hash(),
                job.spec_hash
            ));
        }
        match job.status {
            JobStatus::Assigned => Ok(OnChain::Assigned),
            JobStatus::Submitted => Ok(OnChain::Submitted),
            other => Err(format!("job {:#x} is {other:?} on-chain", a.job_id)),
        }
    }

    /// `submit_result`; returns the transaction hash.
    pub async fn submit(&self, job_id: Felt, output_commitment: Felt, proof_hash: Felt) -> Result<Felt, ChainError> {
        Ok(self.contracts.jobs.submit_result(&self.account, job_id, output_commitment, proof_hash).await?.tx_hash)
    }

    /// Fee token on a devnet (ignored elsewhere), the account contract if missing, then a faucet
    /// drip. Returns the drip transaction, or the time of the next possible drip.
    pub async fn request_tokens(&self, key: StarkKey, rpc_url: &str) -> Result<Result<Felt, u64>> {
        let address = self.account.address();
        if self.client.class_hash_at(address).await?.is_none() {
            // Only a devnet mints; elsewhere the operator funds the address with STRK first.
            let url = url::Url::parse(rpc_url)?;
            if let Err(e) = sage_chain::devnet::mint_strk(&url, address, 100 * SAGE).await {
                tracing::info!(error = %e, "not a devnet (no devnet_mint); the address must hold STRK for its deployment");
            }
            let public_key = key.public_key();
            sage_chain::deploy_oz_account(&self.client, key, public_key)
                .await
                .with_context(|| format!("deploying the account contract at {address:#x} (does it hold STRK?)"))?;
        }
        match self.contracts.faucet.drip(&self.account).await {
            Ok(out) => Ok(Ok(out.tx_hash)),
            Err(ChainError::FaucetCooldown { next_drip_at, .. }) => Ok(Err(next_drip_at)),
            Err(e) => Err(e.into()),
        }
    }

    /// Stakes `amount` base units at `tier`, locked `lock_secs`.
    pub async fn stake(&self, amount: u128, tier: GpuTier, lock_secs: u64) -> Result<Felt> {
        let out = self.contracts.staking.stake(&self.account, self.contracts.token, amount, tier, lock_secs).await?;
        Ok(out.tx_hash)
    }

    /// Starts unstaking `amount` (allowed once the lock has ended; withdrawable after the cooldown,
    /// and slashable until then).
    pub async fn unstake(&self, amount: u128) -> Result<Felt> {
        Ok(self.contracts.staking.request_unstake(&self.account, amount).await?.tx_hash)
    }

    /// Withdraws what finished its unstaking cooldown.
    pub async fn withdraw(&self) -> Result<Felt> {
        Ok(self.contracts.staking.withdraw(&self.account).await?.tx_hash)
    }

    /// Placeholder evidence for `--tee none`, bound to this account; only a development policy
    /// (a devnet coordinator) accepts such a worker.
    pub fn no_tee_evidence(&self) -> sage_staking::TeeEvidence {
        sage_staking::TeeEvidence {
            tee_type: TeeType::None,
            measurement_hash: Felt::from_bytes_be_slice(b"NO-TEE"),
            quote_hash: starknet_rust_crypto::poseidon_hash_many(&[
                Felt::from_bytes_be_slice(b"SAGE_NO_TEE_V1"),
                self.account.address(),
            ]),
        }
    }

    /// Registers the worker: ElGamal key with its proof of ownership, peer id, TEE evidence.
    pub async fn register(
        &self,
        elgamal: &obelysk_elgamal::SecretKey,
        peer_id: Felt,
        evidence: sage_staking::TeeEvidence,
    ) -> Result<Felt> {
        let out =
            sage_staking::register_worker(&self.account, self.contracts.staking, elgamal, evidence, peer_id).await?;
        Ok(out.tx_hash)
    }

    /// The encrypted balance, decrypted: `(units, base units per unit)`.
    pub async fn balance(
        &self,
        sk: &obelysk_elgamal::SecretKey,
        table: &obelysk_elgamal::BabyStepTable,
    ) -> Result<(u64, u128)> {
        let privacy = self.contracts.privacy;
        let unit = privacy.unit(&self.client).await?;
        let ct = sage_payments::fetch_balance(&self.client, privacy, self.account.address()).await?;
        let units = sage_payments::decrypt_balance(&ct, sk, table, MAX_UNITS)
            .context("the balance does not decrypt with this wallet's ElGamal key (was another key registered?)")?;
        Ok((units, unit))
    }

    /// Claims the whole balance into the public SAGE balance: `(units, unit, tx)`.
    pub async fn claim(
        &self,
        sk: &obelysk_elgamal::SecretKey,
        table: &obelysk_elgamal::BabyStepTable,
    ) -> Result<(u64, u128, Felt)> {
        let privacy = self.contracts.privacy;
        let unit = privacy.unit(&self.client).await?;
        match sage_payments::claim(&self.account, privacy, sk, table, MAX_UNITS).await {
            Ok((units, out)) => Ok((units, unit, out.tx_hash)),
            Err(sage_payments::PaymentError::NothingToClaim) => {
                bail!("nothing to claim: the encrypted balance is empty")
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stake, registration and reputation, as JSON.
    pub async fn status(&self) -> Result<serde_json::Value> {
        let address = self.account.address();
        let deployed = self.client.class_hash_at(address).await?.is_some();
        let c = &self.contracts;
        let sage = c.token.balance_of(&self.client, address).await?;
        let stake = c.staking.get_stake(&self.client, address).await?;
        let worker = c.staking.get_worker(&self.client, address).await?;
        let counts = c.reputation.counts(&self.client, address).await?;
        let score = c.reputation.score(&self.client, address).await?;
        let jobs = self.recent_results(STATUS_JOBS).await?;
        Ok(serde_json::json!({
            "address": format!("{address:#x}"),
            "account_deployed": deployed,
            "sage_balance": sage.to_string(),
            "stake": { "amount": stake.amount.to_string(), "tier": GpuTier::ALL.get(usize::from(stake.tier)).map(|t| t.to_string()),
                       "locked_until": stake.locked_until },
            "registered": worker.registered,
            "tee": worker.tee_type.map(|t| format!("{t:?}")),
            "reputation": { "score": score, "completed": counts.completed, "failed": counts.failed, "slashed": counts.slashed },
            "jobs": jobs,
        }))
    }

    /// This worker's last `limit` results on-chain, newest last: each job's proof hash, its
    /// verdict (`pending` until a quorum certificate lands) and whether it was paid.
    async fn recent_results(&self, limit: usize) -> Result<Vec<serde_json::Value>> {
        let address = self.account.address();
        let c = &self.contracts;
        let events = self.client.events(c.jobs.address, "ResultSubmitted", 0).await?;
        let mine: Vec<(Felt, Felt)> = events
            .into_iter()
            .filter_map(|e| match JobEvent::decode_emitted(&e)? {
                JobEvent::ResultSubmitted { job_id, worker, proof_hash, .. } if worker == address => {
                    Some((job_id, proof_hash))
                }
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (job_id, proof_hash) in mine.iter().skip(mine.len().saturating_sub(limit)) {
            let verdict = match c.verifier.verdict(&self.client, *job_id).await? {
                RecordedVerdict::Valid => "valid",
                RecordedVerdict::Invalid => "invalid",
                _ => "pending",
            };
            let paid = c.payments.is_paid(&self.client, *job_id).await?;
            out.push(serde_json::json!({
                "job_id": format!("{job_id:#x}"),
                "proof_hash": format!("{proof_hash:#x}"),
                "verdict": verdict,
                "paid": paid,
            }));
        }
        Ok(out)
    }
}
