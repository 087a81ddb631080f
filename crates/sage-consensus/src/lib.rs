//! Sans-io validator quorum for Sage.
//!
//! Each validator verifies a worker's proof locally and signs a vote (valid / invalid) over
//! `Poseidon('SAGE_VOTE_V1', chain_id, verifier, job_id, proof_hash, verdict)` with its Stark key
//! (RFC 6979). Votes are gossiped; as soon as ⌊2n/3⌋ + 1 distinct members signed the same verdict,
//! the engine emits a [`QuorumCertificate`] that the `ProofVerifier` contract accepts. A round
//! without a QC fails at its timeout (30 s by default).
//!
//! The engine is a pure function over [`State`]: [`apply`] takes an [`Input`] (a vote, a local
//! verification result, a timer tick, a validator-set update) and returns [`Effect`]s
//! (broadcast a vote, submit a QC, report equivocation, round failed). It knows nothing about
//! sockets, clocks, threads or the chain: time arrives as an input, so every Byzantine scenario is
//! a deterministic test.
//!
//! Safety rules: votes from non-members, duplicates, votes for other rounds and bad signatures are
//! dropped and counted ([`Stats`]); two conflicting signed votes by one validator produce
//! [`EquivocationEvidence`] and that validator counts on neither side; a QC never forms with fewer
//! than the threshold of distinct members; the engine never signs both verdicts of one round.
//!
//! # Example
//!
//! ```
//! use sage_consensus::{apply, Config, Effect, Input, RoundId, State, StarkKey, ValidatorSet, Verdict, VoteDomain};
//! use starknet_rust_crypto::Felt;
//!
//! let keys: Vec<_> = (1..=4u32).map(|i| StarkKey::from_secret(Felt::from(1000 + i)).unwrap()).collect();
//! let set = ValidatorSet { version: 1, members: keys.iter().map(|k| k.public_key()).collect() };
//! let domain = VoteDomain { chain_id: Felt::from(1u8), verifier: Felt::from(2u8) };
//! let mut engines: Vec<State> = keys
//!     .iter()
//!     .map(|k| State::new(Config { domain, timeout_ms: 30_000, key: Some(k.clone()) }, set.clone()))
//!     .collect();
//! let round = RoundId { job_id: Felt::from(7u8), proof_hash: Felt::from(99u8) };
//!
//! // Every validator starts the round and verifies; collect their broadcast votes.
//! let mut votes = Vec::new();
//! for e in &mut engines {
//!     apply(e, Input::StartRound { round, now_ms: 0 });
//!     for effect in apply(e, Input::LocalVerdict { round, verdict: Verdict::Valid }) {
//!         if let Effect::BroadcastVote(v) = effect { votes.push(v) }
//!     }
//! }
//! // Validator 0 hears the others and forms a QC with 3 of 4 signatures.
//! let qc = votes[1..].iter().flat_map(|v| apply(&mut engines[0], Input::Vote(*v))).find_map(|e| match e {
//!     Effect::SubmitQc(qc) => Some(qc),
//!     _ => None,
//! });
//! let qc = qc.expect("quorum reached");
//! assert_eq!(qc.signatures.len(), 3);
//! sage_consensus::verify_qc(&domain, &set, &qc).unwrap();
//! ```

pub mod bridge;
mod quorum;
pub mod vote;

pub use quorum::{
    Config, DEFAULT_TIMEOUT_MS, Effect, EquivocationEvidence, FailureReason, Input, MAX_EARLY_VOTES,
    MAX_EARLY_VOTES_PER_VALIDATOR, QcError, QuorumCertificate, RoundId, SignedVote, State, Stats, ValidatorSet, apply,
    verify_qc,
};
pub use vote::{
    SignError, Signature, StarkKey, Verdict, VoteDomain, proof_hash_felt, sign_vote, verify_signature, vote_hash,
};
