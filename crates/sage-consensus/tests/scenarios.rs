//! Byzantine scenarios, named by topology (`n4f1` = 4 validators, 1 faulty), plus property tests
//! over random delivery orders with duplicates. Everything is deterministic: time is an input.

use proptest::prelude::*;
use sage_consensus::{
    Config, Effect, Input, MAX_EARLY_VOTES, MAX_EARLY_VOTES_PER_VALIDATOR, QcError, QuorumCertificate, RoundId,
    SignedVote, StarkKey, State, ValidatorSet, Verdict, VoteDomain, apply, sign_vote, verify_qc,
};
use starknet_rust_crypto::Felt;

const DOMAIN: VoteDomain = VoteDomain {
    chain_id: Felt::from_hex_unchecked("0x534e5f5345504f4c4941"),
    verifier: Felt::from_hex_unchecked("0x5a6e"),
};
const ROUND: RoundId =
    RoundId { job_id: Felt::from_hex_unchecked("0x10b"), proof_hash: Felt::from_hex_unchecked("0xfeed") };

struct Net {
    keys: Vec<StarkKey>,
    set: ValidatorSet,
    engines: Vec<State>,
}

fn net(n: usize) -> Net {
    let keys: Vec<_> = (0..n).map(|i| StarkKey::from_secret(Felt::from(0x1_0000 + i as u64)).unwrap()).collect();
    let set = ValidatorSet { version: 1, members: keys.iter().map(StarkKey::public_key).collect() };
    let engines = keys
        .iter()
        .map(|k| State::new(Config { domain: DOMAIN, timeout_ms: 30_000, key: Some(k.clone()) }, set.clone()))
        .collect();
    let mut net = Net { keys, set, engines };
    for e in &mut net.engines {
        assert!(apply(e, Input::StartRound { round: ROUND, now_ms: 0 }).is_empty());
    }
    net
}

fn vote_of(effects: &[Effect]) -> SignedVote {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::BroadcastVote(v) => Some(*v),
            _ => None,
        })
        .expect("a broadcast vote")
}

fn qcs(effects: &[Effect]) -> Vec<QuorumCertificate> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SubmitQc(qc) => Some(qc.clone()),
            _ => None,
        })
        .collect()
}

/// Each listed validator verifies with the given verdict; returns the votes they broadcast.
fn local_votes(net: &mut Net, verdicts: &[(usize, Verdict)]) -> Vec<SignedVote> {
    verdicts
        .iter()
        .map(|&(i, v)| vote_of(&apply(&mut net.engines[i], Input::LocalVerdict { round: ROUND, verdict: v })))
        .collect()
}

/// Delivers `votes` to validator `to` (skipping its own), returning all effects.
fn deliver(net: &mut Net, to: usize, votes: &[SignedVote]) -> Vec<Effect> {
    let own = net.keys[to].public_key();
    votes.iter().filter(|v| v.validator != own).flat_map(|v| apply(&mut net.engines[to], Input::Vote(*v))).collect()
}

fn all_honest(n: usize) {
    let mut net = net(n);
    let verdicts: Vec<_> = (0..n).map(|i| (i, Verdict::Valid)).collect();
    let votes = local_votes(&mut net, &verdicts);
    for to in 0..n {
        let effects = deliver(&mut net, to, &votes);
        let formed = qcs(&effects);
        assert_eq!(formed.len(), 1, "validator {to} forms exactly one QC");
        let qc = &formed[0];
        assert_eq!(qc.verdict, Verdict::Valid);
        assert_eq!(qc.signatures.len(), net.set.threshold());
        verify_qc(&DOMAIN, &net.set, qc).unwrap();
    }
}

#[test]
fn n4_all_honest() {
    all_honest(4);
}

#[test]
fn n16_all_honest() {
    all_honest(16);
}

#[test]
fn n64_all_honest() {
    all_honest(64);
}

#[test]
fn n4f1_wrong_vote_still_reaches_the_honest_verdict() {
    let mut net = net(4);
    let votes =
        local_votes(&mut net, &[(0, Verdict::Valid), (1, Verdict::Valid), (2, Verdict::Valid), (3, Verdict::Invalid)]);
    // Validator 0 hears the wrong vote first: it must not matter.
    let order = [votes[3], votes[1], votes[2]];
    let effects = deliver(&mut net, 0, &order);
    let formed = qcs(&effects);
    assert_eq!(formed.len(), 1);
    assert_eq!(formed[0].verdict, Verdict::Valid);
    assert_eq!(formed[0].signatures.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
}

/// Votes for `ROUND` signed by `key` outside any engine (a faulty node may sign anything).
fn signed_by(key: &StarkKey, verdicts: [Verdict; 2]) -> Vec<SignedVote> {
    verdicts
        .into_iter()
        .map(|verdict| SignedVote {
            round: ROUND,
            verdict,
            validator: key.public_key(),
            signature: sign_vote(key, &DOMAIN, ROUND.job_id, ROUND.proof_hash, verdict).unwrap(),
        })
        .collect()
}

#[test]
fn n4f1_equivocation_is_reported_and_never_counts() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(0, Verdict::Valid), (1, Verdict::Valid)]);
    // Validator 3 signs both verdicts (a faulty node, outside the engine's rules).
    let k3 = net.keys[3].clone();
    let both = signed_by(&k3, [Verdict::Valid, Verdict::Invalid]);
    // Validator 0 gets 3's valid vote, then 3's invalid vote, then 1's vote.
    let mut effects = deliver(&mut net, 0, &[both[0], both[1]]);
    let evidence: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::ReportEquivocation(ev) => Some(ev.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].validator, k3.public_key());
    assert_ne!(evidence[0].first.verdict, evidence[0].second.verdict);
    effects.extend(deliver(&mut net, 0, &[votes[1]]));
    // 0 and 1 are honest, 3 is excluded: 2 < 3, no QC yet.
    assert!(qcs(&effects).is_empty());
    assert_eq!(net.engines[0].stats().equivocations, 1);
    // A third copy from 3 is ignored; validator 2's honest vote completes the QC without 3.
    let more = local_votes(&mut net, &[(2, Verdict::Valid)]);
    let mut tail = deliver(&mut net, 0, &[both[0]]);
    tail.extend(deliver(&mut net, 0, &more));
    let formed = qcs(&tail);
    assert_eq!(formed.len(), 1);
    assert!(formed[0].signatures.iter().all(|(i, _)| *i != 3));
}

/// A member that signs both verdicts after the honest QC formed is still caught: late votes are
/// kept as evidence (they can no longer change the decision).
#[test]
fn n4f1_equivocation_after_the_qc_is_still_reported() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(0, Verdict::Valid), (1, Verdict::Valid), (2, Verdict::Valid)]);
    let effects = deliver(&mut net, 0, &votes[1..]);
    assert_eq!(qcs(&effects).len(), 1, "the honest QC formed first");
    let k3 = net.keys[3].clone();
    let late = signed_by(&k3, [Verdict::Invalid, Verdict::Valid]);
    let effects = deliver(&mut net, 0, &late);
    let reported = effects
        .iter()
        .filter(|e| matches!(e, Effect::ReportEquivocation(ev) if ev.validator == k3.public_key()))
        .count();
    assert_eq!(reported, 1);
    assert!(qcs(&effects).is_empty(), "a decided round forms no second QC");
    assert_eq!(net.engines[0].stats().equivocations, 1);
}

#[test]
fn n4_two_silent_times_out_without_qc() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(0, Verdict::Valid), (1, Verdict::Valid)]);
    let effects = deliver(&mut net, 0, &votes);
    assert!(qcs(&effects).is_empty());
    assert!(apply(&mut net.engines[0], Input::Tick { now_ms: 29_999 }).is_empty(), "not before the deadline");
    let effects = apply(&mut net.engines[0], Input::Tick { now_ms: 30_000 });
    assert_eq!(effects, [Effect::RoundFailed { round: ROUND, reason: sage_consensus::FailureReason::Timeout }]);
    // A late vote after the failure forms nothing, and the failure is not reported twice.
    let late = local_votes(&mut net, &[(2, Verdict::Valid)]);
    assert!(qcs(&deliver(&mut net, 0, &late)).is_empty());
    assert!(apply(&mut net.engines[0], Input::Tick { now_ms: 60_000 }).is_empty());
}

#[test]
fn n7f2_two_wrong_votes_cannot_block_or_flip() {
    let mut net = net(7);
    assert_eq!(net.set.threshold(), 5);
    let verdicts: Vec<_> = (0..7).map(|i| (i, if i >= 5 { Verdict::Invalid } else { Verdict::Valid })).collect();
    let votes = local_votes(&mut net, &verdicts);
    let mut order = votes.clone();
    order.reverse(); // faulty votes first
    let formed = qcs(&deliver(&mut net, 0, &order));
    assert_eq!(formed.len(), 1);
    assert_eq!(formed[0].verdict, Verdict::Valid);
    assert_eq!(formed[0].signatures.len(), 5);
}

#[test]
fn forged_non_member_duplicate_and_other_round_votes_are_dropped_and_counted() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(1, Verdict::Valid)]);
    let e = &mut net.engines[0];
    // Forged: validator 1's key, signature over another verdict.
    let mut forged = votes[0];
    forged.verdict = Verdict::Invalid;
    assert!(apply(e, Input::Vote(forged)).is_empty());
    // Non-member.
    let outsider = StarkKey::from_secret(Felt::from(0xbad_u32)).unwrap();
    let sig = sign_vote(&outsider, &DOMAIN, ROUND.job_id, ROUND.proof_hash, Verdict::Valid).unwrap();
    assert!(
        apply(
            e,
            Input::Vote(SignedVote {
                round: ROUND,
                verdict: Verdict::Valid,
                validator: outsider.public_key(),
                signature: sig
            })
        )
        .is_empty()
    );
    // Duplicate.
    apply(e, Input::Vote(votes[0]));
    apply(e, Input::Vote(votes[0]));
    // Another domain (a vote signed for another verifier contract) does not verify here.
    let k2 = &net.keys[2];
    let other_domain = VoteDomain { verifier: Felt::from(1u8), ..DOMAIN };
    let sig = sign_vote(k2, &other_domain, ROUND.job_id, ROUND.proof_hash, Verdict::Valid).unwrap();
    apply(
        e,
        Input::Vote(SignedVote { round: ROUND, verdict: Verdict::Valid, validator: k2.public_key(), signature: sig }),
    );
    let s = e.stats();
    assert_eq!((s.bad_signature, s.non_member, s.duplicate), (2, 1, 1));
    assert!(!e.is_decided(&ROUND));
}

#[test]
fn a_validator_never_signs_both_verdicts() {
    let mut net = net(4);
    let first = apply(&mut net.engines[0], Input::LocalVerdict { round: ROUND, verdict: Verdict::Valid });
    assert_eq!(first.len(), 1);
    let again = apply(&mut net.engines[0], Input::LocalVerdict { round: ROUND, verdict: Verdict::Invalid });
    assert!(again.is_empty());
    assert_eq!(net.engines[0].stats().refused_double_sign, 1);
}

#[test]
fn early_votes_are_replayed_when_the_round_starts() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(1, Verdict::Valid), (2, Verdict::Valid), (3, Verdict::Valid)]);
    let observer_cfg = Config { domain: DOMAIN, timeout_ms: 1000, key: None };
    let mut observer = State::new(observer_cfg, net.set.clone());
    for v in &votes {
        assert!(apply(&mut observer, Input::Vote(*v)).is_empty());
    }
    let formed = qcs(&apply(&mut observer, Input::StartRound { round: ROUND, now_ms: 5 }));
    assert_eq!(formed.len(), 1);
}

#[test]
fn set_update_removes_departed_validators_votes() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(1, Verdict::Valid), (2, Verdict::Valid)]);
    let mut observer = State::new(Config { domain: DOMAIN, timeout_ms: 1000, key: None }, net.set.clone());
    apply(&mut observer, Input::StartRound { round: ROUND, now_ms: 0 });
    for v in &votes {
        apply(&mut observer, Input::Vote(*v));
    }
    // Validator 2 leaves; the set becomes {0, 1, 3} (threshold 3): 1 vote left, no QC.
    let new_set =
        ValidatorSet { version: 2, members: vec![net.set.members[0], net.set.members[1], net.set.members[3]] };
    assert!(qcs(&apply(&mut observer, Input::SetUpdate(new_set.clone()))).is_empty());
    // Votes of 0 and 3 complete it under version 2, with indices of the new set.
    let more = local_votes(&mut net, &[(0, Verdict::Valid), (3, Verdict::Valid)]);
    let formed: Vec<_> = more.iter().flat_map(|v| qcs(&apply(&mut observer, Input::Vote(*v)))).collect();
    assert_eq!(formed.len(), 1);
    assert_eq!(formed[0].set_version, 2);
    verify_qc(&DOMAIN, &new_set, &formed[0]).unwrap();
    assert!(verify_qc(&DOMAIN, &net.set, &formed[0]).is_err(), "pinned to the set version");
}

#[test]
fn verify_qc_rejects_tampering() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(0, Verdict::Valid), (1, Verdict::Valid), (2, Verdict::Valid)]);
    let qc = qcs(&deliver(&mut net, 3, &votes)).pop().unwrap();
    verify_qc(&DOMAIN, &net.set, &qc).unwrap();
    let mut dup = qc.clone();
    dup.signatures[1] = dup.signatures[0];
    assert!(verify_qc(&DOMAIN, &net.set, &dup).is_err());
    let mut short = qc.clone();
    short.signatures.pop();
    assert!(verify_qc(&DOMAIN, &net.set, &short).is_err());
    let mut flipped = qc.clone();
    flipped.verdict = Verdict::Invalid;
    assert!(verify_qc(&DOMAIN, &net.set, &flipped).is_err());
    let mut unknown = qc;
    unknown.signatures[0].0 = 9;
    assert!(verify_qc(&DOMAIN, &net.set, &unknown).is_err());
}

/// A vote by `key` for round `round`, signed over `DOMAIN`.
fn signed(key: &StarkKey, round: RoundId, verdict: Verdict) -> SignedVote {
    let signature = sign_vote(key, &DOMAIN, round.job_id, round.proof_hash, verdict).unwrap();
    SignedVote { round, verdict, validator: key.public_key(), signature }
}

fn future_round(i: u64) -> RoundId {
    RoundId { job_id: Felt::from(0x9000_0000 + i), proof_hash: Felt::from(i) }
}

#[test]
fn forged_early_votes_never_fill_the_buffer() {
    // The attack: a flood of votes for rounds that have not started, claiming members' keys but
    // with signatures that do not verify. Before signatures were checked on arrival, 4,096 of them
    // filled the early buffer for good and every later genuine early vote was dropped.
    let net = net(4);
    let mut observer = State::new(Config { domain: DOMAIN, timeout_ms: 1000, key: None }, net.set.clone());
    let genuine = signed(&net.keys[1], ROUND, Verdict::Valid);
    for i in 0..(MAX_EARLY_VOTES as u64 + 100) {
        let mut forged = genuine;
        forged.round = future_round(i);
        assert!(apply(&mut observer, Input::Vote(forged)).is_empty());
    }
    assert_eq!(observer.early_votes(), 0, "no forged vote is buffered");
    assert_eq!(observer.stats().bad_signature, MAX_EARLY_VOTES as u64 + 100);
    // Genuine early votes of three members are still buffered and form the QC when the round starts.
    for k in &net.keys[1..] {
        apply(&mut observer, Input::Vote(signed(k, ROUND, Verdict::Valid)));
    }
    let formed = qcs(&apply(&mut observer, Input::StartRound { round: ROUND, now_ms: 1 }));
    assert_eq!(formed.len(), 1);
    verify_qc(&DOMAIN, &net.set, &formed[0]).unwrap();
}

#[test]
fn one_member_flooding_early_votes_cannot_crowd_out_the_others() {
    // The attack: a member signs valid votes for many rounds that never start.
    let net = net(4);
    let mut observer = State::new(Config { domain: DOMAIN, timeout_ms: 1000, key: None }, net.set.clone());
    for i in 0..(MAX_EARLY_VOTES_PER_VALIDATOR as u64 * 3) {
        apply(&mut observer, Input::Vote(signed(&net.keys[0], future_round(i), Verdict::Valid)));
    }
    assert_eq!(observer.early_votes(), MAX_EARLY_VOTES_PER_VALIDATOR);
    assert_eq!(observer.stats().other_round, MAX_EARLY_VOTES_PER_VALIDATOR as u64 * 2);
    for k in &net.keys[1..] {
        apply(&mut observer, Input::Vote(signed(k, ROUND, Verdict::Valid)));
    }
    assert_eq!(observer.early_votes(), MAX_EARLY_VOTES_PER_VALIDATOR + 3);
    assert_eq!(qcs(&apply(&mut observer, Input::StartRound { round: ROUND, now_ms: 1 })).len(), 1);
}

#[test]
fn finished_rounds_and_stale_early_votes_are_forgotten_after_one_timeout() {
    let net = net(4);
    let timeout_ms = 1000;
    let mut observer = State::new(Config { domain: DOMAIN, timeout_ms, key: None }, net.set.clone());
    // 50 rounds decided, 50 that time out, and early votes for 10 rounds that never start.
    for i in 0..100 {
        let round = future_round(i);
        apply(&mut observer, Input::StartRound { round, now_ms: 0 });
        if i < 50 {
            for k in &net.keys[..3] {
                apply(&mut observer, Input::Vote(signed(k, round, Verdict::Valid)));
            }
            assert!(observer.is_decided(&round));
        }
    }
    for i in 1000..1010 {
        apply(&mut observer, Input::Vote(signed(&net.keys[3], future_round(i), Verdict::Invalid)));
    }
    assert_eq!((observer.tracked_rounds(), observer.early_votes()), (100, 10));
    // At the timeout the open rounds fail; nothing is forgotten yet.
    let failed = apply(&mut observer, Input::Tick { now_ms: timeout_ms });
    assert_eq!(failed.len(), 50);
    assert_eq!(observer.tracked_rounds(), 50, "the decided rounds (finished at 0) are forgotten at 1000");
    assert_eq!(observer.early_votes(), 0, "early votes buffered at 0 expire at 1000");
    apply(&mut observer, Input::Tick { now_ms: 2 * timeout_ms - 1 });
    assert_eq!(observer.tracked_rounds(), 50);
    apply(&mut observer, Input::Tick { now_ms: 2 * timeout_ms });
    assert_eq!(observer.tracked_rounds(), 0);
    let s = observer.stats();
    assert_eq!((s.pruned_rounds, s.early_expired), (100, 10));
}

#[test]
fn verify_qc_requires_strictly_increasing_signers() {
    let mut net = net(4);
    let votes = local_votes(&mut net, &[(0, Verdict::Valid), (1, Verdict::Valid), (2, Verdict::Valid)]);
    let qc = qcs(&deliver(&mut net, 3, &votes)).pop().unwrap();
    verify_qc(&DOMAIN, &net.set, &qc).unwrap();
    // The same valid signatures in another order: the contract refuses it, so must we.
    let mut reordered = qc.clone();
    reordered.signatures.swap(0, 2);
    assert_eq!(verify_qc(&DOMAIN, &net.set, &reordered), Err(QcError::UnsortedSigners { previous: 2, index: 1 }));
    let mut dup = qc;
    dup.signatures[1] = dup.signatures[0];
    assert_eq!(verify_qc(&DOMAIN, &net.set, &dup), Err(QcError::DuplicateSigner(0)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any delivery order, with duplicates and f faulty voters, yields at most one QC, and that QC
    /// carries the honest verdict with threshold distinct, valid signatures.
    #[test]
    fn random_orders_with_duplicates_form_one_correct_qc(
        n in 4usize..10,
        order in proptest::collection::vec(0usize..1000, 0..60),
        faulty_seed in 0usize..1000,
    ) {
        let mut net = net(n);
        let f = (n - 1) / 3;
        let verdicts: Vec<_> = (0..n)
            .map(|i| (i, if (i + faulty_seed) % n < f { Verdict::Invalid } else { Verdict::Valid }))
            .collect();
        let votes = local_votes(&mut net, &verdicts);
        let observer_cfg = Config { domain: DOMAIN, timeout_ms: 30_000, key: None };
        let mut observer = State::new(observer_cfg, net.set.clone());
        apply(&mut observer, Input::StartRound { round: ROUND, now_ms: 0 });
        let mut delivery: Vec<SignedVote> = order.iter().map(|i| votes[i % n]).collect();
        delivery.extend(votes.iter().copied());
        let mut formed = Vec::new();
        for v in delivery {
            formed.extend(qcs(&apply(&mut observer, Input::Vote(v))));
        }
        prop_assert_eq!(formed.len(), 1);
        prop_assert_eq!(formed[0].verdict, Verdict::Valid);
        prop_assert!(verify_qc(&DOMAIN, &net.set, &formed[0]).is_ok());
    }
}
