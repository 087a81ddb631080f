//! The validator bridge's wire types: `POST /v1/validate` asks one validator to judge one proof
//! before (or without) a round on-chain, and its answer is that validator's signed vote.
//!
//! The vote is the same message a validator gossips in a round ([`crate::vote_hash`] over
//! `(job_id, proof_hash, verdict)`), so anyone holding the on-chain validator set can check it
//! with [`ValidateResponse::check`]: the signer must be a member, the round must be the one asked
//! about (the caller hashes the envelope itself), and the signature must verify in the caller's
//! [`VoteDomain`]. A validator journals the vote before answering, so the verdict it later gossips
//! for that round is the same one, with the same (RFC 6979) signature.
//!
//! ```
//! use sage_consensus::{bridge::ValidateResponse, sign_vote, RoundId, SignedVote, StarkKey, Verdict, VoteDomain};
//! use starknet_rust_crypto::Felt;
//!
//! let key = StarkKey::from_secret(Felt::from(7_000u32)).unwrap();
//! let domain = VoteDomain { chain_id: Felt::from(1u8), verifier: Felt::from(2u8) };
//! let round = RoundId { job_id: Felt::from(5u8), proof_hash: Felt::from(9u8) };
//! let signature = sign_vote(&key, &domain, round.job_id, round.proof_hash, Verdict::Valid).unwrap();
//! let answer = ValidateResponse {
//!     vote: SignedVote { round, verdict: Verdict::Valid, validator: key.public_key(), signature },
//!     set_version: 1,
//!     index: 0,
//!     security_bits: Some(96),
//!     reason: None,
//! };
//! assert_eq!(answer.check(&domain, &[key.public_key()], round), Ok(Verdict::Valid));
//! ```

use serde::{Deserialize, Serialize};
use starknet_rust_crypto::Felt;

use crate::{RoundId, SignedVote, Verdict, VoteDomain, vote_hash};

/// The bridge's path.
pub const VALIDATE_PATH: &str = "/v1/validate";

/// `POST /v1/validate`: a proof envelope for a job assigned on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The job (felt, as on-chain).
    pub job_id: Felt,
    /// The job's spec; the validator requires it to hash to the escrowed `spec_hash`.
    pub spec: sage_protocol::JobSpec,
    /// The proof envelope's bytes (base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub envelope: Vec<u8>,
}

/// The validator's answer: its signed vote on `(job_id, proof_hash)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateResponse {
    /// The vote, exactly as the validator gossips it in the round.
    pub vote: SignedVote,
    /// The on-chain validator set version the signer was a member of when it answered.
    pub set_version: u64,
    /// The signer's index in that set.
    pub index: u32,
    /// Security of a proof that verified.
    #[serde(default)]
    pub security_bits: Option<u32>,
    /// Why a proof is invalid.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Why a bridge answer cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// The vote names another job or another proof than the one sent.
    #[error("the vote is for job {job_id:#x} and proof {proof_hash:#x}, not the round asked about")]
    WrongRound {
        /// The vote's job.
        job_id: Felt,
        /// The vote's proof hash.
        proof_hash: Felt,
    },
    /// The signer is not in the validator set the caller holds.
    #[error("the signer {0:#x} is not in the validator set")]
    NotAMember(Felt),
    /// The signature does not verify over the vote message in the caller's domain.
    #[error("the vote's signature does not verify for {0:#x}")]
    BadSignature(Felt),
}

impl ValidateResponse {
    /// Checks the vote against the caller's `domain`, the on-chain `members` and the `round` it
    /// asked about (its own hash of the envelope); returns the verdict.
    pub fn check(&self, domain: &VoteDomain, members: &[Felt], round: RoundId) -> Result<Verdict, BridgeError> {
        let vote = &self.vote;
        if vote.round != round {
            return Err(BridgeError::WrongRound { job_id: vote.round.job_id, proof_hash: vote.round.proof_hash });
        }
        if !members.contains(&vote.validator) {
            return Err(BridgeError::NotAMember(vote.validator));
        }
        let hash = vote_hash(domain, round.job_id, round.proof_hash, vote.verdict);
        if !crate::verify_signature(vote.validator, hash, &vote.signature) {
            return Err(BridgeError::BadSignature(vote.validator));
        }
        Ok(vote.verdict)
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StarkKey, sign_vote};

    fn domain() -> VoteDomain {
        VoteDomain { chain_id: Felt::from(0x5345u32), verifier: Felt::from(0x77u8) }
    }

    fn answer(key: &StarkKey, d: &VoteDomain, round: RoundId, verdict: Verdict) -> ValidateResponse {
        let signature = sign_vote(key, d, round.job_id, round.proof_hash, verdict).unwrap();
        ValidateResponse {
            vote: SignedVote { round, verdict, validator: key.public_key(), signature },
            set_version: 3,
            index: 1,
            security_bits: None,
            reason: None,
        }
    }

    #[test]
    fn an_answer_is_trusted_only_for_the_round_asked_from_a_member_in_this_domain() {
        let key = StarkKey::from_secret(Felt::from(41u8)).unwrap();
        let outsider = StarkKey::from_secret(Felt::from(42u8)).unwrap();
        let members = [Felt::from(1u8), key.public_key()];
        let round = RoundId { job_id: Felt::from(5u8), proof_hash: Felt::from(6u8) };
        let d = domain();
        assert_eq!(answer(&key, &d, round, Verdict::Invalid).check(&d, &members, round), Ok(Verdict::Invalid));

        // A vote for another proof of the job (the validator judged other bytes).
        let other = RoundId { proof_hash: Felt::from(7u8), ..round };
        assert_eq!(
            answer(&key, &d, other, Verdict::Valid).check(&d, &members, round),
            Err(BridgeError::WrongRound { job_id: round.job_id, proof_hash: other.proof_hash })
        );
        // Signed by a key outside the set.
        assert_eq!(
            answer(&outsider, &d, round, Verdict::Valid).check(&d, &members, round),
            Err(BridgeError::NotAMember(outsider.public_key()))
        );
        // Signed for another deployment.
        let elsewhere = VoteDomain { verifier: Felt::from(0x78u8), ..d };
        assert_eq!(
            answer(&key, &elsewhere, round, Verdict::Valid).check(&d, &members, round),
            Err(BridgeError::BadSignature(key.public_key()))
        );
        // The verdict flipped after signing.
        let mut flipped = answer(&key, &d, round, Verdict::Invalid);
        flipped.vote.verdict = Verdict::Valid;
        assert_eq!(flipped.check(&d, &members, round), Err(BridgeError::BadSignature(key.public_key())));
        // The signer's key swapped for a member's.
        let mut swapped = answer(&outsider, &d, round, Verdict::Valid);
        swapped.vote.validator = key.public_key();
        assert_eq!(swapped.check(&d, &members, round), Err(BridgeError::BadSignature(key.public_key())));
    }

    #[test]
    fn requests_round_trip_and_reject_bad_base64_and_unknown_fields() {
        let request = ValidateRequest {
            job_id: Felt::from(9u8),
            spec: sage_protocol::JobSpec::Matmul { n: 8, seed: Felt::from(3u8) },
            envelope: (0..=255u8).collect(),
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<ValidateRequest>(&text).unwrap(), request);
        let bad = text.replace("AAECAwQF", "!!!!!!!!");
        assert!(serde_json::from_str::<ValidateRequest>(&bad).unwrap_err().to_string().contains("Invalid"), "{bad}");
        let mut extra: serde_json::Value = serde_json::from_str(&text).unwrap();
        extra["worker"] = serde_json::json!("0x1");
        assert!(serde_json::from_value::<ValidateRequest>(extra).is_err());
    }
}
