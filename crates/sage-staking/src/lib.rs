//! Sage staking: the rules a coordinator applies before trusting a worker, and the client calls
//! that stake, register and inspect slashing on the `StakingManager` contract.
//!
//! The main entry points are [`verify_stake`] (the on-chain check, as [`StakeStatus`]),
//! [`TierRules::classify`] (the same rule, pure, from `sage-types`; [`fetch_tier_rules`] reads its minimums), [`stake`], [`register_worker`] (with the Schnorr
//! proof of the worker's ElGamal key, bound to `[chain_id, staking contract, worker]`) and
//! [`slashed_total`] / [`slash_history`].
//!
//! ```no_run
//! use sage_chain::{ChainClient, ChainConfig, Felt, contracts::StakingManager};
//! use sage_staking::{StakeStatus, verify_stake};
//!
//! # async fn run(staking: StakingManager, worker: Felt) -> Result<(), sage_staking::StakingError> {
//! let client = ChainClient::connect(ChainConfig::parse("http://127.0.0.1:5050/rpc")?).await?;
//! let deadline = 1_900_000_000;
//! if verify_stake(&client, staking, worker, deadline).await? == StakeStatus::Valid {
//!     println!("{worker:#x} may take the job");
//! }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! None.

use obelysk_elgamal::{SecretKey, prove_key_ownership};
use sage_chain::{
    ChainClient, ChainError, Felt, SageAccount, TxOutcome,
    contracts::{SageToken, StakingEvent, StakingManager, WorkerRegistration},
};
pub use sage_types::{GpuTier, StakeInfo, StakeStatus, TeeType, TierRules};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StakingError {
    /// The chain refused or could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// OS randomness for the key proof failed.
    #[error("randomness for the key proof")]
    Rng(#[from] obelysk_elgamal::RngError),
}

/// Reads the tier minimums the `StakingManager` owner configured.
pub async fn fetch_tier_rules(client: &ChainClient, staking: StakingManager) -> Result<TierRules, StakingError> {
    let mut min_stakes = [0; 6];
    for (slot, tier) in min_stakes.iter_mut().zip(GpuTier::ALL) {
        *slot = staking.min_stake(client, tier).await?;
    }
    Ok(TierRules { min_stakes })
}

/// The on-chain stake check of `worker`, locked until `until`: for a job, its deadline plus the
/// JobManager's verdict grace (what `assign` requires, so a slash can still land).
pub async fn verify_stake(
    client: &ChainClient,
    staking: StakingManager,
    worker: Felt,
    until: u64,
) -> Result<StakeStatus, StakingError> {
    Ok(staking.stake_status(client, worker, until).await?)
}

/// Approves and stakes `amount` at `tier`, locked `lock_seconds` from now.
pub async fn stake(
    account: &SageAccount,
    token: SageToken,
    staking: StakingManager,
    amount: u128,
    tier: GpuTier,
    lock_seconds: u64,
) -> Result<TxOutcome, StakingError> {
    Ok(staking.stake(account, token, amount, tier, lock_seconds).await?)
}

/// TEE evidence recorded at registration (hashes; the quote itself is checked off-chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeeEvidence {
    /// Which TEE (recorded on-chain as its short string).
    pub tee_type: TeeType,
    /// Hash of the measurement.
    pub measurement_hash: Felt,
    /// Hash of the attestation quote.
    pub quote_hash: Felt,
}

/// The context a registration key proof is bound to: `[chain_id, staking contract, worker]`.
pub fn key_proof_context(chain_id: Felt, staking: Felt, worker: Felt) -> [Felt; 3] {
    [chain_id, staking, worker]
}

/// The registration `account` sends for its ElGamal key `sk`.
pub fn registration(
    chain_id: Felt,
    staking: StakingManager,
    worker: Felt,
    sk: &SecretKey,
    tee: TeeEvidence,
    peer_id: Felt,
) -> Result<WorkerRegistration, StakingError> {
    let context = key_proof_context(chain_id, staking.address, worker);
    let proof = prove_key_ownership(sk, &context)?;
    Ok(WorkerRegistration {
        tee_type: tee.tee_type,
        measurement_hash: tee.measurement_hash,
        quote_hash: tee.quote_hash,
        elgamal_public_key: sk.public_key().to_felts(),
        key_proof: proof.to_felts(),
        peer_id,
    })
}

/// Registers `account` as a worker with its TEE evidence, ElGamal key (proven) and peer id.
pub async fn register_worker(
    account: &SageAccount,
    staking: StakingManager,
    sk: &SecretKey,
    tee: TeeEvidence,
    peer_id: Felt,
) -> Result<TxOutcome, StakingError> {
    let r = registration(account.client().chain_id(), staking, account.address(), sk, tee, peer_id)?;
    Ok(staking.register_worker(account, &r).await?)
}

/// Everything ever slashed from `account`.
pub async fn slashed_total(client: &ChainClient, staking: StakingManager, account: Felt) -> Result<u128, StakingError> {
    Ok(staking.get_stake(client, account).await?.slashed_total)
}

/// A slash as recorded by the `Slashed` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashRecord {
    /// Slashed account.
    pub account: Felt,
    /// Reason (short string, e.g. `invalid proof`, `equivocation`).
    pub reason: Felt,
    /// Total slashed.
    pub amount: u128,
    /// Reporter and its reward.
    pub reporter: Felt,
    /// Paid to the reporter.
    pub reporter_reward: u128,
    /// Paid to the treasury.
    pub treasury_amount: u128,
}

/// Every slash of `account` since `from_block`.
pub async fn slash_history(
    client: &ChainClient,
    staking: StakingManager,
    account: Felt,
    from_block: u64,
) -> Result<Vec<SlashRecord>, StakingError> {
    let events = client.events(staking.address, "Slashed", from_block).await?;
    Ok(events
        .iter()
        .filter_map(|e| match StakingEvent::decode_emitted(e)? {
            StakingEvent::Slashed { account: a, reason, amount, reporter, reporter_reward, treasury_amount }
                if a == account =>
            {
                Some(SlashRecord { account: a, reason, amount, reporter, reporter_reward, treasury_amount })
            }
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_proofs_are_bound_to_chain_contract_and_worker() {
        let sk = SecretKey::from_seed(&[3; 32]);
        let staking = StakingManager::at(Felt::from(0x5u8));
        let tee = TeeEvidence { tee_type: TeeType::Tdx, measurement_hash: Felt::TWO, quote_hash: Felt::THREE };
        let r = registration(Felt::from(0x534e_u32), staking, Felt::from(9u8), &sk, tee, Felt::ONE).unwrap();
        let proof = obelysk_elgamal::KeyOwnershipProof::from_felts(&r.key_proof).unwrap();
        let pk = sk.public_key();
        let ctx = key_proof_context(Felt::from(0x534e_u32), staking.address, Felt::from(9u8));
        obelysk_elgamal::verify_key_ownership(&pk, &proof, &ctx).unwrap();
        let other_worker = key_proof_context(Felt::from(0x534e_u32), staking.address, Felt::from(8u8));
        assert!(obelysk_elgamal::verify_key_ownership(&pk, &proof, &other_worker).is_err());
    }
}
