//! `PaymentRouter` and `PrivacyRouter` bindings.

use starknet_rust::core::types::{Call, Event, Felt};

use super::{
    admin::{Admin, call},
    decode::{Reader, is_event},
};
use crate::{ChainClient, ChainError, SageAccount, TxOutcome, u256};

/// A decoded `PaymentRouter` / `PrivacyRouter` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentEvent {
    /// `PaymentSubmitted` (PaymentRouter).
    PaymentSubmitted {
        /// Job.
        job_id: Felt,
        /// Worker.
        worker: Felt,
        /// Replay nonce.
        nonce: Felt,
        /// Proof commitment (the verdict's proof hash).
        proof_commitment: Felt,
        /// Encrypted amount `[c1.x, c1.y, c2.x, c2.y]`.
        ciphertext: [Felt; 4],
    },
    /// `Deposited` (PrivacyRouter).
    Deposited {
        /// Depositor.
        from: Felt,
        /// Amount.
        amount: u128,
        /// Pool after.
        pool: u128,
    },
    /// `BalanceCredited` (PrivacyRouter).
    BalanceCredited {
        /// Worker.
        worker: Felt,
        /// Credited ciphertext.
        ciphertext: [Felt; 4],
        /// New pending balance.
        balance: [Felt; 4],
    },
    /// `RolledOver` (PrivacyRouter): the worker's pending credits joined its available balance.
    RolledOver {
        /// Worker.
        worker: Felt,
        /// New available balance.
        balance: [Felt; 4],
    },
    /// `Claimed` (PrivacyRouter).
    Claimed {
        /// Worker.
        worker: Felt,
        /// Claimed encrypted units.
        amount: u64,
        /// SAGE paid, base units.
        value: u128,
        /// Claim nonce used.
        nonce: Felt,
    },
}

impl PaymentEvent {
    /// Decodes an event found by an event query ([`crate::ChainClient::events`]).
    pub fn decode_emitted(e: &starknet_rust::core::types::EmittedEvent) -> Option<Self> {
        Self::decode(&Event { from_address: e.from_address, keys: e.keys.clone(), data: e.data.clone() })
    }

    /// Decodes a PaymentRouter or PrivacyRouter event; `None` for any other event.
    pub fn decode(event: &Event) -> Option<Self> {
        let k = &event.keys;
        let mut d = Reader::new(&event.data, "payment event");
        Some(if is_event(event, "PaymentSubmitted") {
            Self::PaymentSubmitted {
                job_id: *k.get(1)?,
                worker: *k.get(2)?,
                nonce: d.felt().ok()?,
                proof_commitment: d.felt().ok()?,
                ciphertext: d.array::<4>().ok()?,
            }
        } else if is_event(event, "Deposited") {
            Self::Deposited { from: *k.get(1)?, amount: d.u256().ok()?, pool: d.u256().ok()? }
        } else if is_event(event, "BalanceCredited") {
            Self::BalanceCredited {
                worker: *k.get(1)?,
                ciphertext: d.array::<4>().ok()?,
                balance: d.array::<4>().ok()?,
            }
        } else if is_event(event, "RolledOver") {
            Self::RolledOver { worker: *k.get(1)?, balance: d.array::<4>().ok()? }
        } else if is_event(event, "Claimed") {
            Self::Claimed { worker: *k.get(1)?, amount: d.u64().ok()?, value: d.u256().ok()?, nonce: d.felt().ok()? }
        } else {
            return None;
        })
    }
}

/// The PaymentRouter at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentRouter {
    /// Contract address.
    pub address: Felt,
}

impl PaymentRouter {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// Ownership, pause and roles.
    pub const fn admin(&self) -> Admin {
        Admin::at(self.address)
    }

    /// Constructor calldata.
    pub fn constructor(verifier: Felt, jobs: Felt, privacy: Felt, owner: Felt) -> Vec<Felt> {
        vec![verifier, jobs, privacy, owner]
    }

    /// `submit_payment_with_proof` as a call.
    pub fn submit_payment_call(
        &self,
        worker: Felt,
        job_id: Felt,
        randomness: Felt,
        proof_commitment: Felt,
        nonce: Felt,
    ) -> Result<Call, ChainError> {
        call(self.address, "submit_payment_with_proof", vec![worker, job_id, randomness, proof_commitment, nonce])
    }

    /// Pays `worker` for `job_id` (coordinator role only; needs a valid verdict whose proof hash
    /// is `proof_commitment`; once per job and per nonce). The amount is not an argument: the
    /// PrivacyRouter credits exactly the escrow deposited for the job, encrypted on-chain to the
    /// worker's registered key with `randomness` (a non-zero scalar below the curve order).
    pub async fn submit_payment_with_proof(
        &self,
        coordinator: &SageAccount,
        worker: Felt,
        job_id: Felt,
        randomness: Felt,
        proof_commitment: Felt,
        nonce: Felt,
    ) -> Result<TxOutcome, ChainError> {
        coordinator.execute(vec![self.submit_payment_call(worker, job_id, randomness, proof_commitment, nonce)?]).await
    }

    /// How many `PaymentSubmitted` events name this job (exactly one for a paid job: replays
    /// revert). Reads every event of the router: for audits and tests.
    pub async fn payments_for(&self, client: &ChainClient, job_id: Felt) -> Result<usize, ChainError> {
        let events = client.events(self.address, "PaymentSubmitted", 0).await?;
        Ok(events
            .into_iter()
            .filter(|e| {
                matches!(PaymentEvent::decode_emitted(e), Some(PaymentEvent::PaymentSubmitted { job_id: j, .. }) if j == job_id)
            })
            .count())
    }

    /// Whether `job_id` was paid.
    pub async fn is_paid(&self, client: &ChainClient, job_id: Felt) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "is_paid", vec![job_id]).await?, "is_paid").bool()
    }

    /// Whether `nonce` was used.
    pub async fn is_nonce_used(&self, client: &ChainClient, nonce: Felt) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "is_nonce_used", vec![nonce]).await?, "is_nonce_used").bool()
    }
}

/// The PrivacyRouter at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacyRouter {
    /// Contract address.
    pub address: Felt,
}

impl PrivacyRouter {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// Ownership, pause and roles.
    pub const fn admin(&self) -> Admin {
        Admin::at(self.address)
    }

    /// Constructor calldata; `unit` is SAGE base units per encrypted unit.
    pub fn constructor(token: Felt, staking: Felt, owner: Felt, unit: u128) -> Vec<Felt> {
        let [lo, hi] = u256::to_felts(unit);
        vec![token, staking, owner, lo, hi]
    }

    /// `deposit(amount)` as a call (approve first).
    pub fn deposit_call(&self, amount: u128) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        call(self.address, "deposit", vec![lo, hi])
    }

    /// Approves and deposits `amount` SAGE into the pool (one multicall).
    pub async fn deposit(
        &self,
        account: &SageAccount,
        token: super::SageToken,
        amount: u128,
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![token.approve_call(self.address, amount)?, self.deposit_call(amount)?]).await
    }

    /// `claim(amount, proof)` as a call; `proof` is `[a1.x, a1.y, a2.x, a2.y, s]`.
    pub fn claim_call(&self, amount: u64, proof: [Felt; 5]) -> Result<Call, ChainError> {
        let mut c = vec![Felt::from(amount)];
        c.extend(proof);
        call(self.address, "claim", c)
    }

    /// Claims the whole encrypted balance, proven to decrypt to `amount`.
    pub async fn claim(&self, worker: &SageAccount, amount: u64, proof: [Felt; 5]) -> Result<TxOutcome, ChainError> {
        worker.execute(vec![self.claim_call(amount, proof)?]).await
    }

    /// Credits `worker` with the escrow deposited for `job_id`, encrypted with `randomness`
    /// (router role only; normally the PaymentRouter does this inside a payment).
    pub async fn credit_payment(
        &self,
        account: &SageAccount,
        worker: Felt,
        job_id: Felt,
        randomness: Felt,
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "credit_payment", vec![worker, job_id, randomness])?]).await
    }

    /// SAGE deposited for `job_id` and not yet credited to its worker.
    pub async fn job_deposit(&self, client: &ChainClient, job_id: Felt) -> Result<u128, ChainError> {
        Reader::new(&client.call(self.address, "job_deposit", vec![job_id]).await?, "job_deposit").u256()
    }

    /// The available (claimable) encrypted balance `[c1.x, c1.y, c2.x, c2.y]` (all zero: the
    /// identity, nothing to claim).
    pub async fn balance_of(&self, client: &ChainClient, worker: Felt) -> Result<[Felt; 4], ChainError> {
        Reader::new(&client.call(self.address, "balance_of", vec![worker]).await?, "encrypted balance").array::<4>()
    }

    /// Credits not yet rolled over into the available balance (all zero: none).
    pub async fn pending_of(&self, client: &ChainClient, worker: Felt) -> Result<[Felt; 4], ChainError> {
        Reader::new(&client.call(self.address, "pending_of", vec![worker]).await?, "pending balance").array::<4>()
    }

    /// Moves the caller's pending credits into its available balance.
    pub async fn rollover(&self, worker: &SageAccount) -> Result<TxOutcome, ChainError> {
        worker.execute(vec![call(self.address, "rollover", vec![])?]).await
    }

    /// The nonce the next claim's proof context must carry.
    pub async fn claim_nonce(&self, client: &ChainClient, worker: Felt) -> Result<Felt, ChainError> {
        Reader::new(&client.call(self.address, "claim_nonce", vec![worker]).await?, "claim_nonce").felt()
    }

    /// SAGE in the pool.
    pub async fn pool(&self, client: &ChainClient) -> Result<u128, ChainError> {
        Reader::new(&client.call(self.address, "pool", vec![]).await?, "pool").u256()
    }

    /// SAGE base units per encrypted unit.
    pub async fn unit(&self, client: &ChainClient) -> Result<u128, ChainError> {
        Reader::new(&client.call(self.address, "unit", vec![]).await?, "unit").u256()
    }

    /// Checks a decryption proof with the contract's own verifier (a view).
    pub async fn verify_decryption(
        &self,
        client: &ChainClient,
        public_key: [Felt; 2],
        ciphertext: [Felt; 4],
        amount: u64,
        proof: [Felt; 5],
        context: &[Felt],
    ) -> Result<bool, ChainError> {
        let mut c = public_key.to_vec();
        c.extend(ciphertext);
        c.push(Felt::from(amount));
        c.extend(proof);
        c.push(Felt::from(context.len()));
        c.extend_from_slice(context);
        Reader::new(&client.call(self.address, "verify_decryption", c).await?, "verify_decryption").bool()
    }
}
