//! Sage private payments: the coordinator triggers a worker's payment through the `PaymentRouter`
//! (gated on the job's valid verdict and its proof hash, once per job and per nonce); the
//! `PrivacyRouter` credits exactly the escrow deposited for that job, encrypted on-chain to the
//! worker's registered ElGamal key with randomness the coordinator draws (the coordinator never
//! chooses the amount). The worker fetches and decrypts its encrypted balance and claims it with a
//! Chaum–Pedersen proof that the contract re-checks in Cairo.
//!
//! Main entry points: [`pay`] (submit with fresh randomness), [`payment_nonce`] (replay-safe and
//! deterministic: a retried payment reuses its nonce, so the contract refuses a duplicate),
//! [`fetch_balance`] / [`decrypt_balance`], [`build_claim`] and [`claim`].
//!
//! ```no_run
//! use obelysk_elgamal::{BabyStepTable, SecretKey};
//! use sage_chain::{SageAccount, contracts::PrivacyRouter};
//!
//! # async fn run(worker: SageAccount, privacy: PrivacyRouter, sk: SecretKey) -> Result<(), sage_payments::PaymentError> {
//! let table = BabyStepTable::build(16).expect("table");
//! let (units, _outcome) = sage_payments::claim(&worker, privacy, &sk, &table, 1 << 32).await?;
//! println!("claimed {units} units");
//! # Ok(()) }
//! ```
//!
//! Amounts are `u64` encrypted units; the contract pays `units × unit` SAGE base units
//! ([`PrivacyRouter::unit`]).
//!
//! # Features
//!
//! None.

use obelysk_elgamal::{BabyStepTable, Ciphertext, PublicKey, Scalar, SecretKey, decrypt, prove_decryption};
use sage_chain::{
    ChainClient, ChainError, Felt, SageAccount, TxOutcome,
    contracts::{PaymentEvent, PaymentRouter, PrivacyRouter, StakingManager, events_in},
};
use starknet_rust_crypto::poseidon_hash_many;

/// `'SAGE_PAY_NONCE_V1'` as a felt (Cairo short string).
pub const PAYMENT_NONCE_TAG: Felt = Felt::from_hex_unchecked("0x534147455f5041595f4e4f4e43455f5631");

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The chain refused or could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The worker is not registered (no ElGamal key on-chain).
    #[error("worker {0:#x} is not registered")]
    NotRegistered(Felt),
    /// An on-chain point or key does not decode.
    #[error("malformed on-chain ciphertext or key")]
    Decode(#[from] obelysk_elgamal::DecodeError),
    /// OS randomness failed.
    #[error("randomness for the payment")]
    Rng(#[from] obelysk_elgamal::RngError),
    /// The balance does not decrypt within the table's range.
    #[error("cannot decrypt the balance")]
    Decrypt(#[from] obelysk_elgamal::DecryptError),
    /// Proof generation failed.
    #[error("cannot prove the claim")]
    Prove(#[from] obelysk_elgamal::ProveError),
    /// The encrypted balance is the identity: nothing to claim.
    #[error("nothing to claim")]
    NothingToClaim,
}

/// The nonce of the payment for `job_id` to `worker`:
/// `Poseidon('SAGE_PAY_NONCE_V1', job_id, worker)`. Deterministic, so a coordinator that retries
/// after a crash cannot pay twice.
pub fn payment_nonce(job_id: Felt, worker: Felt) -> Felt {
    poseidon_hash_many(&[PAYMENT_NONCE_TAG, job_id, worker])
}

/// The worker's registered ElGamal key.
pub async fn worker_key(
    client: &ChainClient,
    staking: StakingManager,
    worker: Felt,
) -> Result<PublicKey, PaymentError> {
    let info = staking.get_worker(client, worker).await?;
    if !info.registered {
        return Err(PaymentError::NotRegistered(worker));
    }
    Ok(PublicKey::from_felts(&info.elgamal_public_key)?)
}

/// The payment of `job_id` to `worker` as a call, with fresh randomness from the OS: what
/// [`pay`] sends, for a caller that pipelines or batches its transactions.
pub fn payment_call(
    router: PaymentRouter,
    worker: Felt,
    job_id: Felt,
    proof_commitment: Felt,
) -> Result<sage_chain::Call, PaymentError> {
    // Uniform on [1, n): never zero, which the contract refuses.
    let r = Scalar::random()?;
    Ok(router.submit_payment_call(worker, job_id, r.to_felt(), proof_commitment, payment_nonce(job_id, worker))?)
}

/// Pays `worker` for `job_id` with the proof commitment (the proof hash of the valid verdict).
/// The amount is the escrow deposited for the job; the contract encrypts it to the worker's
/// registered key with randomness drawn here from the OS. Returns the ciphertext credited.
pub async fn pay(
    coordinator: &SageAccount,
    router: PaymentRouter,
    worker: Felt,
    job_id: Felt,
    proof_commitment: Felt,
) -> Result<(Ciphertext, TxOutcome), PaymentError> {
    let outcome = coordinator.execute(vec![payment_call(router, worker, job_id, proof_commitment)?]).await?;
    let credited = events_in(&outcome, router.address, PaymentEvent::decode).into_iter().find_map(|e| match e {
        PaymentEvent::PaymentSubmitted { ciphertext, .. } => Some(ciphertext),
        _ => None,
    });
    let felts = credited.ok_or(PaymentError::Chain(ChainError::Decode {
        what: "PaymentSubmitted",
        reason: "the payment transaction emitted no PaymentSubmitted event".into(),
    }))?;
    Ok((Ciphertext::from_felts(&felts)?, outcome))
}

/// The worker's whole encrypted balance: the available balance plus the pending credits (added
/// homomorphically; what the worker has earned and not claimed).
pub async fn fetch_balance(
    client: &ChainClient,
    privacy: PrivacyRouter,
    worker: Felt,
) -> Result<Ciphertext, PaymentError> {
    let available = fetch_available(client, privacy, worker).await?;
    let pending = Ciphertext::from_felts(&privacy.pending_of(client, worker).await?)?;
    Ok(&available + &pending)
}

/// The worker's available (claimable) encrypted balance; payments land in the pending balance
/// until [`rollover`].
pub async fn fetch_available(
    client: &ChainClient,
    privacy: PrivacyRouter,
    worker: Felt,
) -> Result<Ciphertext, PaymentError> {
    Ok(Ciphertext::from_felts(&privacy.balance_of(client, worker).await?)?)
}

/// Moves the worker's pending credits into its available balance, if it has any; `None` when
/// there was nothing pending.
pub async fn rollover(worker: &SageAccount, privacy: PrivacyRouter) -> Result<Option<TxOutcome>, PaymentError> {
    if privacy.pending_of(worker.client(), worker.address()).await? == [Felt::ZERO; 4] {
        return Ok(None);
    }
    Ok(Some(privacy.rollover(worker).await?))
}

/// Decrypts a balance with BSGS up to `max` units.
pub fn decrypt_balance(ct: &Ciphertext, sk: &SecretKey, table: &BabyStepTable, max: u64) -> Result<u64, PaymentError> {
    Ok(decrypt(ct, sk, table, max)?)
}

/// The context a claim proof is bound to: `[chain_id, privacy router, worker, claim_nonce]`.
pub fn claim_context(chain_id: Felt, privacy: Felt, worker: Felt, claim_nonce: Felt) -> [Felt; 4] {
    [chain_id, privacy, worker, claim_nonce]
}

/// A claim ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Units the whole balance decrypts to.
    pub units: u64,
    /// Chaum–Pedersen proof `[a1.x, a1.y, a2.x, a2.y, s]`.
    pub proof: [Felt; 5],
}

/// Fetches, decrypts and proves the worker's available balance (a credit landing meanwhile goes
/// to the pending balance and leaves the proof valid).
pub async fn build_claim(
    client: &ChainClient,
    privacy: PrivacyRouter,
    worker: Felt,
    sk: &SecretKey,
    table: &BabyStepTable,
    max: u64,
) -> Result<Claim, PaymentError> {
    let balance = fetch_available(client, privacy, worker).await?;
    if balance.to_felts()[..2] == [Felt::ZERO, Felt::ZERO] {
        return Err(PaymentError::NothingToClaim);
    }
    let units = decrypt_balance(&balance, sk, table, max)?;
    let nonce = privacy.claim_nonce(client, worker).await?;
    let context = claim_context(client.chain_id(), privacy.address, worker, nonce);
    let proof = prove_decryption(sk, &balance, units, &context)?;
    Ok(Claim { units, proof: proof.to_felts() })
}

/// Rolls pending credits over (one transaction, when there are any), then builds and submits the
/// claim of `worker`'s available balance; returns the units claimed.
pub async fn claim(
    worker: &SageAccount,
    privacy: PrivacyRouter,
    sk: &SecretKey,
    table: &BabyStepTable,
    max: u64,
) -> Result<(u64, TxOutcome), PaymentError> {
    rollover(worker, privacy).await?;
    let c = build_claim(worker.client(), privacy, worker.address(), sk, table, max).await?;
    let outcome = privacy.claim(worker, c.units, c.proof).await?;
    Ok((c.units, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_tag_is_the_short_string() {
        assert_eq!(PAYMENT_NONCE_TAG.to_bytes_be()[15..], *b"SAGE_PAY_NONCE_V1");
    }

    #[test]
    fn nonces_are_deterministic_and_distinct() {
        let (a, b) = (Felt::from(1u8), Felt::from(2u8));
        assert_eq!(payment_nonce(a, b), payment_nonce(a, b));
        assert_ne!(payment_nonce(a, b), payment_nonce(b, a));
    }
}
