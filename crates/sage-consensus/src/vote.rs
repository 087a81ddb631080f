//! The signed vote message: the one place where a verdict is hashed and signed, used by
//! validators, by the quorum logic and by the `ProofVerifier` contract bindings.
//!
//! ```text
//! vote_hash = Poseidon(VOTE_DOMAIN_TAG, chain_id, verifier, job_id, proof_hash, verdict)
//! ```
//!
//! `VOTE_DOMAIN_TAG` is the Cairo short string `SAGE_VOTE_V1`; `verdict` is 1 (valid) or 2
//! (invalid), the code of the contract's `Verdict` enum that `submit_qc` takes and `verdict`
//! returns (one encoding in and out); `verifier` is the `ProofVerifier` contract address, so a vote for one deployment or
//! chain is worthless on another. The hash is signed with Stark ECDSA, `k` from RFC 6979, and
//! checked on-chain with `check_ecdsa_signature(vote_hash, public_key, r, s)`.

pub use sage_keys::{SignError, Signature, StarkKey, verify_signature};
use serde::{Deserialize, Serialize};
use starknet_rust_crypto::{Felt, poseidon_hash_many};

/// `'SAGE_VOTE_V1'` as a felt (Cairo short string).
pub const VOTE_DOMAIN_TAG: Felt = Felt::from_hex_unchecked("0x534147455f564f54455f5631");

/// Where votes are valid: one chain, one verifier contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteDomain {
    /// Chain id felt (`SN_SEPOLIA`…).
    pub chain_id: Felt,
    /// `ProofVerifier` contract address.
    pub verifier: Felt,
}

/// A validator's judgement of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// The proof verified.
    Valid,
    /// The proof did not verify.
    Invalid,
}

impl Verdict {
    /// Its code in the vote hash and on-chain: 1 for valid, 2 for invalid (the contract's
    /// `Verdict` enum, whose 0 means "no verdict yet").
    pub fn to_felt(self) -> Felt {
        sage_protocol::verdict_code(self == Self::Valid)
    }
}

/// A proof hash as a felt: the 32-byte blake3 hash with its top five bits cleared (< 2^251), the
/// one mapping [`sage_protocol::hash32_to_felt`].
pub fn proof_hash_felt(hash: &[u8; 32]) -> Felt {
    sage_protocol::hash32_to_felt(hash)
}

/// The message a validator signs.
pub fn vote_hash(domain: &VoteDomain, job_id: Felt, proof_hash: Felt, verdict: Verdict) -> Felt {
    poseidon_hash_many(&[VOTE_DOMAIN_TAG, domain.chain_id, domain.verifier, job_id, proof_hash, verdict.to_felt()])
}

/// Signs the vote message for `(job_id, proof_hash, verdict)` with a validator's key.
pub fn sign_vote(
    key: &StarkKey,
    domain: &VoteDomain,
    job_id: Felt,
    proof_hash: Felt,
    verdict: Verdict,
) -> Result<Signature, SignError> {
    key.sign(vote_hash(domain, job_id, proof_hash, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> VoteDomain {
        VoteDomain { chain_id: Felt::from_hex_unchecked("0x534e5f5345504f4c4941"), verifier: Felt::from(0x1234u32) }
    }

    #[test]
    fn domain_tag_is_the_short_string() {
        assert_eq!(VOTE_DOMAIN_TAG.to_bytes_be()[20..], *b"SAGE_VOTE_V1");
    }

    #[test]
    fn signing_is_deterministic_and_verifies() {
        let key = StarkKey::from_secret(Felt::from(0xabcdef_u32)).unwrap();
        let h = vote_hash(&domain(), Felt::from(7u8), Felt::from(99u8), Verdict::Valid);
        let a = key.sign(h).unwrap();
        assert_eq!(a, key.sign(h).unwrap(), "RFC 6979: same key and message give the same signature");
        assert!(verify_signature(key.public_key(), h, &a));
        assert!(!verify_signature(key.public_key(), h + Felt::ONE, &a));
        let other = StarkKey::from_secret(Felt::from(5u8)).unwrap();
        assert!(!verify_signature(other.public_key(), h, &a));
    }

    #[test]
    fn every_field_changes_the_hash() {
        let d = domain();
        let base = vote_hash(&d, Felt::ONE, Felt::TWO, Verdict::Valid);
        let others = [
            vote_hash(&VoteDomain { chain_id: Felt::ONE, ..d }, Felt::ONE, Felt::TWO, Verdict::Valid),
            vote_hash(&VoteDomain { verifier: Felt::ONE, ..d }, Felt::ONE, Felt::TWO, Verdict::Valid),
            vote_hash(&d, Felt::TWO, Felt::TWO, Verdict::Valid),
            vote_hash(&d, Felt::ONE, Felt::ONE, Verdict::Valid),
            vote_hash(&d, Felt::ONE, Felt::TWO, Verdict::Invalid),
        ];
        for o in others {
            assert_ne!(o, base);
        }
    }

    #[test]
    fn proof_hash_felt_fits_ecdsa_range() {
        let h = proof_hash_felt(&[0xff; 32]);
        assert!(h < sage_keys::ECDSA_BOUND);
        assert_eq!(proof_hash_felt(&[0; 32]), Felt::ZERO);
    }
}
