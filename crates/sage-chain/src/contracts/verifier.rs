//! `ProofVerifier` binding.

use starknet_rust::core::types::{Call, Event, Felt};

use super::{
    admin::{Admin, call},
    decode::{Reader, is_event},
};
use crate::{ChainClient, ChainError, SageAccount, TxOutcome};

/// A verdict recorded on-chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordedVerdict {
    /// No QC yet.
    None,
    /// The proof was judged valid.
    Valid,
    /// The proof was judged invalid.
    Invalid,
}

impl RecordedVerdict {
    /// The contract's `Verdict` enum from its code (0 none, 1 valid, 2 invalid).
    pub fn from_code(code: u8) -> Result<Self, ChainError> {
        match code {
            0 => Ok(Self::None),
            1 => Ok(Self::Valid),
            2 => Ok(Self::Invalid),
            other => Err(ChainError::Decode { what: "verdict", reason: format!("unknown code {other}") }),
        }
    }
}

pub use sage_protocol::verdict_code;

/// One vote for `report_equivocation`: (valid, r, s).
pub type SignedVerdict = (bool, Felt, Felt);

/// A decoded `ProofVerifier` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifierEvent {
    /// `ValidatorSetUpdated`.
    SetUpdated {
        /// New version.
        version: u64,
        /// Members.
        size: u32,
        /// ⌊2n/3⌋ + 1.
        threshold: u32,
    },
    /// `VerdictRecorded`.
    VerdictRecorded {
        /// Job.
        job_id: Felt,
        /// Proof hash.
        proof_hash: Felt,
        /// The verdict.
        verdict: RecordedVerdict,
        /// Distinct signers.
        signers: u32,
    },
    /// `EquivocationSlashed`.
    EquivocationSlashed {
        /// Slashed validator account.
        validator: Felt,
        /// Job.
        job_id: Felt,
        /// Slashed amount.
        amount: u128,
    },
}

impl VerifierEvent {
    /// Decodes a ProofVerifier event; `None` for any other event.
    pub fn decode(event: &Event) -> Option<Self> {
        let k = &event.keys;
        let mut d = Reader::new(&event.data, "verifier event");
        Some(if is_event(event, "ValidatorSetUpdated") {
            Self::SetUpdated { version: u64::try_from(*k.get(1)?).ok()?, size: d.u32().ok()?, threshold: d.u32().ok()? }
        } else if is_event(event, "VerdictRecorded") {
            Self::VerdictRecorded {
                job_id: *k.get(1)?,
                proof_hash: d.felt().ok()?,
                verdict: RecordedVerdict::from_code(d.u8().ok()?).ok()?,
                signers: d.u32().ok()?,
            }
        } else if is_event(event, "EquivocationSlashed") {
            let _index = d.u32().ok()?;
            Self::EquivocationSlashed { validator: *k.get(1)?, job_id: *k.get(2)?, amount: d.u256().ok()? }
        } else {
            return None;
        })
    }
}

/// The ProofVerifier at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofVerifier {
    /// Contract address.
    pub address: Felt,
}

impl ProofVerifier {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// Ownership, pause and roles.
    pub const fn admin(&self) -> Admin {
        Admin::at(self.address)
    }

    /// Constructor calldata.
    pub fn constructor(
        staking: Felt,
        jobs: Felt,
        reputation: Felt,
        owner: Felt,
        invalid_slash_bps: u16,
        equivocation_slash_bps: u16,
    ) -> Vec<Felt> {
        vec![staking, jobs, reputation, owner, Felt::from(invalid_slash_bps), Felt::from(equivocation_slash_bps)]
    }

    /// `set_validators(keys, accounts)` as a call (owner only): a new set version.
    pub fn set_validators_call(&self, members: &[(Felt, Felt)]) -> Result<Call, ChainError> {
        let mut c = vec![Felt::from(members.len())];
        c.extend(members.iter().map(|m| m.0));
        c.push(Felt::from(members.len()));
        c.extend(members.iter().map(|m| m.1));
        call(self.address, "set_validators", c)
    }

    /// Replaces the validator set with `members` as (Stark public key, account) (owner only).
    pub async fn set_validators(&self, owner: &SageAccount, members: &[(Felt, Felt)]) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![self.set_validators_call(members)?]).await
    }

    /// `submit_qc` as a call; `signatures` are (validator index, r, s), indices strictly increasing.
    pub fn submit_qc_call(
        &self,
        job_id: Felt,
        proof_hash: Felt,
        valid: bool,
        set_version: u64,
        signatures: &[(u32, Felt, Felt)],
    ) -> Result<Call, ChainError> {
        let mut c = vec![job_id, proof_hash, verdict_code(valid), Felt::from(set_version)];
        c.push(Felt::from(signatures.len()));
        for (i, r, s) in signatures {
            c.extend([Felt::from(*i), *r, *s]);
        }
        call(self.address, "submit_qc", c)
    }

    /// Submits a quorum certificate (anyone may).
    pub async fn submit_qc(
        &self,
        account: &SageAccount,
        job_id: Felt,
        proof_hash: Felt,
        valid: bool,
        set_version: u64,
        signatures: &[(u32, Felt, Felt)],
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.submit_qc_call(job_id, proof_hash, valid, set_version, signatures)?]).await
    }

    /// Reports two conflicting votes of member `validator_index` for (job, proof).
    pub async fn report_equivocation(
        &self,
        account: &SageAccount,
        set_version: u64,
        validator_index: u32,
        job_id: Felt,
        proof_hash: Felt,
        first: SignedVerdict,
        second: SignedVerdict,
    ) -> Result<TxOutcome, ChainError> {
        let c = vec![
            Felt::from(set_version),
            Felt::from(validator_index),
            job_id,
            proof_hash,
            verdict_code(first.0),
            first.1,
            first.2,
            verdict_code(second.0),
            second.1,
            second.2,
        ];
        account.execute(vec![call(self.address, "report_equivocation", c)?]).await
    }

    /// (version, size, threshold) of the current set.
    pub async fn validator_set(&self, client: &ChainClient) -> Result<(u64, u32, u32), ChainError> {
        let out = client.call(self.address, "validator_set", vec![]).await?;
        let mut r = Reader::new(&out, "validator_set");
        Ok((r.u64()?, r.u32()?, r.u32()?))
    }

    /// Member `index` of the current set: (vote public key, account).
    pub async fn member(&self, client: &ChainClient, index: u32) -> Result<(Felt, Felt), ChainError> {
        let out = client.call(self.address, "validator", vec![Felt::from(index)]).await?;
        let mut r = Reader::new(&out, "validator");
        Ok((r.felt()?, r.felt()?))
    }

    /// The current set: its version and the members' vote keys, by index.
    pub async fn members(&self, client: &ChainClient) -> Result<(u64, Vec<Felt>), ChainError> {
        let (version, size, _) = self.validator_set(client).await?;
        let mut keys = Vec::with_capacity(size as usize);
        for i in 0..size {
            keys.push(self.member(client, i).await?.0);
        }
        Ok((version, keys))
    }

    /// The recorded verdict of `job_id`.
    pub async fn verdict(&self, client: &ChainClient, job_id: Felt) -> Result<RecordedVerdict, ChainError> {
        RecordedVerdict::from_code(
            Reader::new(&client.call(self.address, "verdict", vec![job_id]).await?, "verdict").u8()?,
        )
    }

    /// The proof hash the verdict of `job_id` was recorded for.
    pub async fn verdict_proof(&self, client: &ChainClient, job_id: Felt) -> Result<Felt, ChainError> {
        Reader::new(&client.call(self.address, "verdict_proof", vec![job_id]).await?, "verdict_proof").felt()
    }

    /// The vote hash as the contract computes it.
    pub async fn vote_hash(
        &self,
        client: &ChainClient,
        job_id: Felt,
        proof_hash: Felt,
        valid: bool,
    ) -> Result<Felt, ChainError> {
        let out = client.call(self.address, "vote_hash", vec![job_id, proof_hash, verdict_code(valid)]).await?;
        Reader::new(&out, "vote_hash").felt()
    }

    /// (invalid-proof slash, equivocation slash) in basis points.
    pub async fn slash_rates(&self, client: &ChainClient) -> Result<(u16, u16), ChainError> {
        let out = client.call(self.address, "slash_rates", vec![]).await?;
        let mut r = Reader::new(&out, "slash_rates");
        Ok((r.u16()?, r.u16()?))
    }
}
