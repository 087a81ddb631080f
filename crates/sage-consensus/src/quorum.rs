//! The quorum state machine: `apply(&mut State, Input) -> Vec<Effect>`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use starknet_rust_crypto::Felt;

use crate::vote::{Signature, StarkKey, Verdict, VoteDomain, sign_vote, verify_signature, vote_hash};

/// Default round timeout: 30 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Votes buffered for rounds that have not started yet (bounded against floods). Only votes whose
/// signature verifies are buffered, so forgeries never take a place.
pub const MAX_EARLY_VOTES: usize = 4096;
/// Early votes buffered per validator: one member flooding votes for rounds that never start
/// cannot crowd out the others.
pub const MAX_EARLY_VOTES_PER_VALIDATOR: usize = 64;

/// Identifies a round: one proof of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoundId {
    /// Job id (felt, as on-chain).
    pub job_id: Felt,
    /// Proof hash (felt, see [`crate::vote::proof_hash_felt`]).
    pub proof_hash: Felt,
}

/// The validator set, versioned; members are Stark public keys, indexed as on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet {
    /// Version (monotonic; a QC names the version it was formed under).
    pub version: u64,
    /// Public keys; a validator's index is its position here.
    pub members: Vec<Felt>,
}

impl ValidatorSet {
    /// ⌊2n/3⌋ + 1 matching signatures.
    pub fn threshold(&self) -> usize {
        2 * self.members.len() / 3 + 1
    }

    fn index_of(&self, key: Felt) -> Option<u32> {
        self.members.iter().position(|m| *m == key).and_then(|i| u32::try_from(i).ok())
    }
}

/// A signed vote as it travels between validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedVote {
    /// The round.
    pub round: RoundId,
    /// The verdict.
    pub verdict: Verdict,
    /// The signer's public key.
    pub validator: Felt,
    /// Signature over [`vote_hash`].
    pub signature: Signature,
}

/// Enough matching signatures of distinct members to settle a verdict on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumCertificate {
    /// The round.
    pub round: RoundId,
    /// The verdict.
    pub verdict: Verdict,
    /// Validator set version the indices refer to.
    pub set_version: u64,
    /// (validator index, signature), sorted by index, distinct indices.
    pub signatures: Vec<(u32, Signature)>,
}

/// Two validly signed, conflicting votes by one validator for one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationEvidence {
    /// The validator's public key.
    pub validator: Felt,
    /// One vote.
    pub first: SignedVote,
    /// The conflicting vote.
    pub second: SignedVote,
}

/// What the host feeds in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A round begins (a proof was published); its timeout runs from `now_ms`.
    StartRound {
        /// The round.
        round: RoundId,
        /// Host time in milliseconds.
        now_ms: u64,
    },
    /// This validator verified the proof locally.
    LocalVerdict {
        /// The round.
        round: RoundId,
        /// Its result.
        verdict: Verdict,
    },
    /// A vote arrived from the network.
    Vote(SignedVote),
    /// Host time advanced.
    Tick {
        /// Host time in milliseconds.
        now_ms: u64,
    },
    /// The on-chain validator set changed.
    SetUpdate(ValidatorSet),
}

/// Why a round ended without a QC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureReason {
    /// The timeout passed first.
    Timeout,
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Gossip this (our own) vote.
    BroadcastVote(SignedVote),
    /// Submit this QC to the `ProofVerifier` contract.
    SubmitQc(QuorumCertificate),
    /// Report this evidence (slashable on-chain).
    ReportEquivocation(EquivocationEvidence),
    /// The round ended without a QC.
    RoundFailed {
        /// The round.
        round: RoundId,
        /// Why.
        reason: FailureReason,
    },
}

/// Counters of what was dropped, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Votes by keys outside the current set.
    pub non_member: u64,
    /// Exact repeats of a vote already counted.
    pub duplicate: u64,
    /// Votes for a round that is decided, failed, or unknown and the early buffer (or the
    /// sender's share of it) is full.
    pub other_round: u64,
    /// Signatures that do not verify.
    pub bad_signature: u64,
    /// Equivocations detected.
    pub equivocations: u64,
    /// Local requests to sign the opposite verdict of one already signed (refused).
    pub refused_double_sign: u64,
    /// Early votes whose round did not start within one timeout (dropped).
    pub early_expired: u64,
    /// Finished rounds forgotten one timeout after they ended.
    pub pruned_rounds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open {
        deadline_ms: u64,
    },
    /// A QC formed; the round is forgotten one timeout after `at_ms`.
    Decided {
        at_ms: u64,
    },
    /// The timeout passed; forgotten one timeout after `at_ms`.
    Failed {
        at_ms: u64,
    },
}

#[derive(Debug, Clone)]
struct Round {
    phase: Phase,
    /// Counted votes by validator key.
    votes: BTreeMap<Felt, SignedVote>,
    /// Validators caught equivocating in this round: never counted again.
    equivocators: Vec<Felt>,
    /// What we signed, if anything.
    own: Option<Verdict>,
}

/// Configuration of one validator's quorum engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// Chain and verifier the votes are for.
    pub domain: VoteDomain,
    /// Round timeout in milliseconds.
    pub timeout_ms: u64,
    /// This validator's key (`None` for an observer that only aggregates).
    pub key: Option<StarkKey>,
}

/// The whole state of one validator's quorum engine.
#[derive(Debug, Clone)]
pub struct State {
    config: Config,
    set: ValidatorSet,
    rounds: HashMap<RoundId, Round>,
    /// (host time when buffered, vote): votes with verified signatures for rounds not started.
    early: Vec<(u64, SignedVote)>,
    /// The latest host time seen (`StartRound`, `Tick`).
    now_ms: u64,
    stats: Stats,
}

impl State {
    /// A fresh engine for `set`.
    pub fn new(config: Config, set: ValidatorSet) -> Self {
        Self { config, set, rounds: HashMap::new(), early: Vec::new(), now_ms: 0, stats: Stats::default() }
    }

    /// Drop counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The current validator set.
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    /// Whether `round` has produced a QC.
    pub fn is_decided(&self, round: &RoundId) -> bool {
        self.rounds.get(round).is_some_and(|r| matches!(r.phase, Phase::Decided { .. }))
    }

    /// Rounds held in memory (open ones, and finished ones until one timeout after they ended).
    pub fn tracked_rounds(&self) -> usize {
        self.rounds.len()
    }

    /// Votes buffered for rounds that have not started.
    pub fn early_votes(&self) -> usize {
        self.early.len()
    }
}

/// Applies one input and returns the effects the host must perform, in order.
pub fn apply(state: &mut State, input: Input) -> Vec<Effect> {
    let mut effects = Vec::new();
    match input {
        Input::StartRound { round, now_ms } => {
            state.now_ms = state.now_ms.max(now_ms);
            if state.rounds.contains_key(&round) {
                return effects;
            }
            let deadline_ms = now_ms.saturating_add(state.config.timeout_ms);
            state.rounds.insert(
                round,
                Round {
                    phase: Phase::Open { deadline_ms },
                    votes: BTreeMap::new(),
                    equivocators: Vec::new(),
                    own: None,
                },
            );
            let (early, rest): (Vec<_>, Vec<_>) =
                std::mem::take(&mut state.early).into_iter().partition(|(_, v)| v.round == round);
            state.early = rest;
            for (_, vote) in early {
                on_vote(state, vote, &mut effects);
            }
        }
        Input::LocalVerdict { round, verdict } => on_local(state, round, verdict, &mut effects),
        Input::Vote(vote) => on_vote(state, vote, &mut effects),
        Input::Tick { now_ms } => {
            state.now_ms = state.now_ms.max(now_ms);
            let mut expired: Vec<RoundId> = state
                .rounds
                .iter()
                .filter(|(_, r)| matches!(r.phase, Phase::Open { deadline_ms } if now_ms >= deadline_ms))
                .map(|(id, _)| *id)
                .collect();
            expired.sort();
            for id in expired {
                if let Some(r) = state.rounds.get_mut(&id) {
                    r.phase = Phase::Failed { at_ms: now_ms };
                }
                effects.push(Effect::RoundFailed { round: id, reason: FailureReason::Timeout });
            }
            prune(state, now_ms);
        }
        Input::SetUpdate(set) => {
            if set.version <= state.set.version {
                return effects;
            }
            state.set = set;
            let members = state.set.members.clone();
            let mut open: Vec<RoundId> =
                state.rounds.iter().filter(|(_, r)| matches!(r.phase, Phase::Open { .. })).map(|(id, _)| *id).collect();
            open.sort();
            for id in open {
                if let Some(r) = state.rounds.get_mut(&id) {
                    r.votes.retain(|k, _| members.contains(k));
                }
                check_quorum(state, id, &mut effects);
            }
        }
    }
    effects
}

/// Forgets finished rounds and early votes one timeout after they ended or arrived, so memory stays
/// bounded however long the engine runs. A late vote for a forgotten round is buffered as early
/// (if its signature verifies) and expires the same way.
fn prune(state: &mut State, now_ms: u64) {
    let keep_for = state.config.timeout_ms;
    let before = state.rounds.len();
    state.rounds.retain(|_, r| match r.phase {
        Phase::Open { .. } => true,
        Phase::Decided { at_ms } | Phase::Failed { at_ms } => now_ms < at_ms.saturating_add(keep_for),
    });
    state.stats.pruned_rounds += (before - state.rounds.len()) as u64;
    let before = state.early.len();
    state.early.retain(|(at_ms, _)| now_ms < at_ms.saturating_add(keep_for));
    state.stats.early_expired += (before - state.early.len()) as u64;
}

fn on_local(state: &mut State, round: RoundId, verdict: Verdict, effects: &mut Vec<Effect>) {
    let Some(key) = state.config.key.clone() else { return };
    let Some(r) = state.rounds.get_mut(&round) else { return };
    match r.own {
        Some(v) if v == verdict => return,
        Some(_) => {
            // A validator never signs both verdicts of one round.
            state.stats.refused_double_sign += 1;
            return;
        }
        None => {}
    }
    if !matches!(r.phase, Phase::Open { .. }) || state.set.index_of(key.public_key()).is_none() {
        return;
    }
    let Ok(signature) = sign_vote(&key, &state.config.domain, round.job_id, round.proof_hash, verdict) else { return };
    r.own = Some(verdict);
    let vote = SignedVote { round, verdict, validator: key.public_key(), signature };
    r.votes.insert(vote.validator, vote);
    effects.push(Effect::BroadcastVote(vote));
    check_quorum(state, round, effects);
}

fn on_vote(state: &mut State, vote: SignedVote, effects: &mut Vec<Effect>) {
    if state.set.index_of(vote.validator).is_none() {
        state.stats.non_member += 1;
        return;
    }
    let Some(r) = state.rounds.get_mut(&vote.round) else {
        buffer_early(state, vote);
        return;
    };
    if r.equivocators.contains(&vote.validator) {
        state.stats.duplicate += 1;
        return;
    }
    if r.votes.get(&vote.validator).is_some_and(|existing| existing.verdict == vote.verdict) {
        state.stats.duplicate += 1;
        return;
    }
    // Signatures are checked before anything about this vote is believed.
    let message = vote_hash(&state.config.domain, vote.round.job_id, vote.round.proof_hash, vote.verdict);
    if !verify_signature(vote.validator, message, &vote.signature) {
        state.stats.bad_signature += 1;
        return;
    }
    if let Some(existing) = r.votes.remove(&vote.validator) {
        // Two valid signatures, opposite verdicts, same round: equivocation. The validator is
        // excluded from this round so it never counts on either side.
        r.equivocators.push(vote.validator);
        state.stats.equivocations += 1;
        effects.push(Effect::ReportEquivocation(EquivocationEvidence {
            validator: vote.validator,
            first: existing,
            second: vote,
        }));
        return;
    }
    if !matches!(r.phase, Phase::Open { .. }) {
        // Too late to count, but kept (one per member, bounded by the set): a conflicting
        // signature arriving after the decision is still caught as equivocation.
        state.stats.other_round += 1;
        r.votes.insert(vote.validator, vote);
        return;
    }
    r.votes.insert(vote.validator, vote);
    check_quorum(state, vote.round, effects);
}

/// A vote for a round that has not started: buffered only once its signature verifies, within the
/// overall and the per-validator bound.
fn buffer_early(state: &mut State, vote: SignedVote) {
    if state.early.iter().any(|(_, v)| *v == vote) {
        state.stats.duplicate += 1;
        return;
    }
    let from_sender = state.early.iter().filter(|(_, v)| v.validator == vote.validator).count();
    if state.early.len() >= MAX_EARLY_VOTES || from_sender >= MAX_EARLY_VOTES_PER_VALIDATOR {
        state.stats.other_round += 1;
        return;
    }
    let message = vote_hash(&state.config.domain, vote.round.job_id, vote.round.proof_hash, vote.verdict);
    if !verify_signature(vote.validator, message, &vote.signature) {
        state.stats.bad_signature += 1;
        return;
    }
    state.early.push((state.now_ms, vote));
}

fn check_quorum(state: &mut State, round: RoundId, effects: &mut Vec<Effect>) {
    let threshold = state.set.threshold();
    let Some(r) = state.rounds.get_mut(&round) else { return };
    if !matches!(r.phase, Phase::Open { .. }) {
        return;
    }
    for verdict in [Verdict::Valid, Verdict::Invalid] {
        let mut signatures: Vec<(u32, Signature)> = r
            .votes
            .values()
            .filter(|v| v.verdict == verdict)
            .filter_map(|v| state.set.index_of(v.validator).map(|i| (i, v.signature)))
            .collect();
        if signatures.len() >= threshold {
            signatures.sort_by_key(|(i, _)| *i);
            r.phase = Phase::Decided { at_ms: state.now_ms };
            effects.push(Effect::SubmitQc(QuorumCertificate {
                round,
                verdict,
                set_version: state.set.version,
                signatures,
            }));
            return;
        }
    }
}

/// Checks a QC the way the `ProofVerifier` contract does: the set version matches, indices are
/// members in strictly increasing order (so distinct), at least the threshold of signatures, each
/// valid over the vote hash.
pub fn verify_qc(domain: &VoteDomain, set: &ValidatorSet, qc: &QuorumCertificate) -> Result<(), QcError> {
    if qc.set_version != set.version {
        return Err(QcError::WrongSetVersion { qc: qc.set_version, current: set.version });
    }
    let message = vote_hash(domain, qc.round.job_id, qc.round.proof_hash, qc.verdict);
    let mut previous: Option<u32> = None;
    for (index, signature) in &qc.signatures {
        let key = *set.members.get(*index as usize).ok_or(QcError::UnknownIndex(*index))?;
        match previous {
            Some(p) if p == *index => return Err(QcError::DuplicateSigner(*index)),
            Some(p) if p > *index => return Err(QcError::UnsortedSigners { previous: p, index: *index }),
            _ => {}
        }
        previous = Some(*index);
        if !verify_signature(key, message, signature) {
            return Err(QcError::BadSignature(*index));
        }
    }
    if qc.signatures.len() < set.threshold() {
        return Err(QcError::BelowThreshold { signers: qc.signatures.len(), threshold: set.threshold() });
    }
    Ok(())
}

/// Why a QC is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QcError {
    /// The QC was formed under another validator set.
    #[error("QC names validator set {qc}, current is {current}")]
    WrongSetVersion {
        /// In the QC.
        qc: u64,
        /// Current.
        current: u64,
    },
    /// An index outside the set.
    #[error("validator index {0} is not in the set")]
    UnknownIndex(u32),
    /// One validator signed twice.
    #[error("validator {0} appears twice")]
    DuplicateSigner(u32),
    /// Indices must be strictly increasing, as the contract requires.
    #[error("validator index {index} follows {previous}: signers must be in strictly increasing order")]
    UnsortedSigners {
        /// The index before.
        previous: u32,
        /// The out-of-order index.
        index: u32,
    },
    /// A signature does not verify.
    #[error("signature of validator {0} is invalid")]
    BadSignature(u32),
    /// Too few signers.
    #[error("{signers} distinct signers, threshold is {threshold}")]
    BelowThreshold {
        /// Distinct valid signers.
        signers: usize,
        /// Needed.
        threshold: usize,
    },
}
