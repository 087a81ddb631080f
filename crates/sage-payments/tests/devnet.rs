//! ProofVerifier, PaymentRouter and PrivacyRouter against a real starknet-devnet 0.10.1: quorum
//! certificates signed by `sage-consensus`, encrypted payments and claims proven by
//! `obelysk-elgamal`, each rule with the transaction that passes and the ones that must revert.
//!
//! Each test starts its own devnet and deploys the committed artifacts with `deploy_sage`.

use obelysk_elgamal::{BabyStepTable, Ciphertext, SecretKey, prove_decryption};
use sage_chain::{
    ChainClient, ChainError, DeployParams, Felt, SAGE, SageAccount,
    contracts::{
        GpuTier, JobManager, JobStatus, PaymentEvent, PaymentRouter, PrivacyRouter, ProofVerifier, RecordedVerdict,
        ReputationManager, SageToken, StakingManager, VerifierEvent, events_in,
    },
    devnet::Devnet,
    testing::TestNet,
};
use sage_consensus::{
    Config, Effect, Input, QuorumCertificate, RoundId, SignedVote, StarkKey, State, ValidatorSet, Verdict, VoteDomain,
    apply, sign_vote, verify_qc, vote_hash,
};
use sage_payments::{build_claim, claim_context, decrypt_balance, fetch_balance, pay, payment_nonce};
use sage_staking::{TeeEvidence, register_worker};

struct Net {
    _devnet: Devnet,
    client: ChainClient,
    owner: SageAccount,
    worker: SageAccount,
    client_acc: SageAccount,
    other: SageAccount,
    /// One staked, registered validator account per key.
    validators: Vec<SageAccount>,
    token: SageToken,
    staking: StakingManager,
    reputation: ReputationManager,
    jobs: JobManager,
    verifier: ProofVerifier,
    payments: PaymentRouter,
    privacy: PrivacyRouter,
    keys: Vec<StarkKey>,
    sk: SecretKey,
}

const UNIT: u128 = 1_000_000_000_000;

async fn net(validators: usize) -> Net {
    net_with(validators, true).await
}

/// `close_setup: false` keeps the owner's setup-only settings (the payout) open to the test.
async fn net_with(validators: usize, close_setup: bool) -> Net {
    let mut params = DeployParams::default();
    if let Some(s) = params.settlement.as_mut() {
        s.close_setup = close_setup;
    }
    let TestNet { devnet, client, accounts, contracts, .. } =
        TestNet::start(4 + validators as u8, &params, 100_000 * SAGE)
            .await
            .expect("devnet (run `cargo xtask tools` first)");
    let mut accounts = accounts.into_iter();
    let mut next = || accounts.next().expect("predeployed account");
    let (owner, worker, client_acc, other) = (next(), next(), next(), next());
    let validator_accounts: Vec<SageAccount> = (0..validators).map(|_| next()).collect();
    let token = contracts.token;
    let n = Net {
        staking: contracts.staking,
        reputation: contracts.reputation,
        jobs: contracts.jobs,
        verifier: contracts.verifier,
        payments: contracts.payments,
        privacy: contracts.privacy,
        keys: (0..validators).map(|i| StarkKey::from_secret(Felt::from(1_000 + i as u64)).unwrap()).collect(),
        sk: SecretKey::from_seed(&[1; 32]),
        _devnet: devnet,
        client,
        owner,
        worker,
        client_acc,
        other,
        validators: validator_accounts,
        token,
    };
    // Every member is a registered validator with the minimum validator stake bonded.
    for (account, key) in n.validators.iter().zip(&n.keys) {
        n.staking.stake(account, n.token, 10_000 * SAGE, GpuTier::T4, 3_600).await.unwrap();
        n.staking.register_validator(account, key.public_key()).await.unwrap();
    }
    let members: Vec<(Felt, Felt)> =
        n.validators.iter().zip(&n.keys).map(|(a, k)| (k.public_key(), a.address())).collect();
    n.verifier.set_validators(&n.owner, &members).await.unwrap();
    n.staking.stake(&n.worker, n.token, 1_000 * SAGE, GpuTier::T4, 1_000_000).await.unwrap();
    let tee = TeeEvidence {
        tee_type: sage_staking::TeeType::Tdx,
        measurement_hash: Felt::from(2u8),
        quote_hash: Felt::from(3u8),
    };
    register_worker(&n.worker, n.staking, &n.sk, tee, Felt::from(4u8)).await.unwrap();
    n
}

fn reason(err: &ChainError) -> &str {
    err.revert_reason().unwrap_or_else(|| panic!("expected a revert, got {err}"))
}

fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn domain(n: &Net) -> VoteDomain {
    VoteDomain { chain_id: n.client.chain_id(), verifier: n.verifier.address }
}

/// Signatures of members `indices` (as given, duplicates and order kept) for (job, proof, verdict).
fn sigs(n: &Net, indices: &[u32], job: Felt, proof: Felt, verdict: Verdict) -> Vec<(u32, Felt, Felt)> {
    indices
        .iter()
        .map(|&i| {
            let s = sign_vote(&n.keys[i as usize], &domain(n), job, proof, verdict).unwrap();
            (i, s.r, s.s)
        })
        .collect()
}

/// A job created by `client_acc` under `client_job_id`, assigned to and submitted by `worker`
/// with `proof`; returns its on-chain id.
async fn submitted_job(n: &Net, client_job_id: Felt, proof: Felt, payment: u128) -> Felt {
    n.jobs.create_job(&n.client_acc, n.token, client_job_id, Felt::ONE, payment, wall() + 3_600).await.unwrap();
    let job = JobManager::job_id(n.client_acc.address(), client_job_id);
    n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap();
    n.jobs.submit_result(&n.worker, job, Felt::from(99u8), proof).await.unwrap();
    job
}

async fn settle(n: &Net, job: Felt, proof: Felt, verdict: Verdict) {
    let quorum: Vec<u32> = (0..n.keys.len() as u32).collect();
    let signatures = sigs(n, &quorum, job, proof, verdict);
    n.verifier.submit_qc(&n.owner, job, proof, verdict == Verdict::Valid, 1, &signatures).await.unwrap();
}

#[tokio::test]
async fn a_sage_consensus_qc_is_accepted_settles_the_job_and_is_final() {
    let n = net(4).await;
    let (job, proof, payment) = (Felt::from(7u8), Felt::from(0x9e00f_u32), 50 * SAGE);
    let job = submitted_job(&n, job, proof, payment).await;
    // The contract hashes exactly what sage-consensus signs, for either verdict.
    for (valid, verdict) in [(true, Verdict::Valid), (false, Verdict::Invalid)] {
        assert_eq!(
            n.verifier.vote_hash(&n.client, job, proof, valid).await.unwrap(),
            vote_hash(&domain(&n), job, proof, verdict)
        );
    }
    assert_eq!(n.verifier.validator_set(&n.client).await.unwrap(), (1, 4, 3));

    // The QC comes out of sage-consensus's own engine: validators 0, 2 and 3 verify the proof and
    // broadcast their votes, an observer aggregates them.
    let set = ValidatorSet { version: 1, members: n.keys.iter().map(StarkKey::public_key).collect() };
    let round = RoundId { job_id: job, proof_hash: proof };
    let engine = |key: Option<StarkKey>| {
        let mut s = State::new(Config { domain: domain(&n), timeout_ms: 60_000, key }, set.clone());
        apply(&mut s, Input::StartRound { round, now_ms: 0 });
        s
    };
    let mut observer = engine(None);
    let mut effects = Vec::new();
    for i in [0usize, 2, 3] {
        let mut validator = engine(Some(n.keys[i].clone()));
        for effect in apply(&mut validator, Input::LocalVerdict { round, verdict: Verdict::Valid }) {
            if let Effect::BroadcastVote(vote) = effect {
                effects.extend(apply(&mut observer, Input::Vote(vote)));
            }
        }
    }
    let qc: QuorumCertificate = effects
        .into_iter()
        .find_map(|e| if let Effect::SubmitQc(qc) = e { Some(qc) } else { None })
        .expect("the engine forms a QC");
    assert_eq!(qc.signatures.len(), 3);
    verify_qc(&domain(&n), &set, &qc).expect("sage-consensus accepts its own QC");
    let onchain: Vec<_> = qc.signatures.iter().map(|(i, s)| (*i, s.r, s.s)).collect();
    let out = n.verifier.submit_qc(&n.other, job, proof, true, qc.set_version, &onchain).await.unwrap();
    assert!(events_in(&out, n.verifier.address, VerifierEvent::decode).contains(&VerifierEvent::VerdictRecorded {
        job_id: job,
        proof_hash: proof,
        verdict: RecordedVerdict::Valid,
        signers: 3
    }));
    assert_eq!(n.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Valid);
    assert_eq!(n.verifier.verdict_proof(&n.client, job).await.unwrap(), proof);
    // The escrow went to the private payment pool; the worker's record counts the job.
    assert_eq!(n.jobs.get_job(&n.client, job).await.unwrap().status, JobStatus::Completed);
    assert_eq!(n.privacy.pool(&n.client).await.unwrap(), payment);
    assert_eq!(n.token.balance_of(&n.client, n.jobs.address).await.unwrap(), 0);
    assert_eq!(n.reputation.counts(&n.client, n.worker.address()).await.unwrap().completed, 1);
    // Final: neither the same QC nor one for the other verdict changes it.
    let err = n.verifier.submit_qc(&n.other, job, proof, true, 1, &onchain).await.unwrap_err();
    assert_eq!(reason(&err), "PV: verdict final");
    let flip = sigs(&n, &[0, 1, 2, 3], job, proof, Verdict::Invalid);
    let err = n.verifier.submit_qc(&n.other, job, proof, false, 1, &flip).await.unwrap_err();
    assert_eq!(reason(&err), "PV: verdict final");
}

#[tokio::test]
async fn malformed_qcs_are_refused() {
    let n = net(4).await;
    let (job, proof) = (Felt::from(8u8), Felt::from(0xabc_u32));
    let job = submitted_job(&n, job, proof, 10 * SAGE).await;
    let v = Verdict::Valid;
    let submit = |s: Vec<(u32, Felt, Felt)>, version: u64| {
        let n = &n;
        async move { n.verifier.submit_qc(&n.other, job, proof, true, version, &s).await.unwrap_err() }
    };
    // ⌊2n/3⌋ = 2 signatures: one short.
    assert_eq!(reason(&submit(sigs(&n, &[0, 1], job, proof, v), 1).await), "PV: below threshold");
    assert_eq!(reason(&submit(sigs(&n, &[0, 1, 1], job, proof, v), 1).await), "PV: duplicate signer");
    assert_eq!(reason(&submit(sigs(&n, &[1, 0, 2], job, proof, v), 1).await), "PV: signers not sorted");
    // A key outside the set, signing in a member's slot.
    let outsider =
        sign_vote(&StarkKey::from_secret(Felt::from(0xbad_u32)).unwrap(), &domain(&n), job, proof, v).unwrap();
    let mut s = sigs(&n, &[0, 1], job, proof, v);
    s.push((3, outsider.r, outsider.s));
    assert_eq!(reason(&submit(s, 1).await), "PV: bad signature");
    let mut s = sigs(&n, &[0, 1, 2], job, proof, v);
    s[2].0 = 4;
    assert_eq!(reason(&submit(s, 1).await), "PV: unknown validator");
    // Signatures over another job, another proof, another verdict.
    assert_eq!(reason(&submit(sigs(&n, &[0, 1, 2], Felt::from(9u8), proof, v), 1).await), "PV: bad signature");
    assert_eq!(reason(&submit(sigs(&n, &[0, 1, 2], job, proof + Felt::ONE, v), 1).await), "PV: bad signature");
    assert_eq!(reason(&submit(sigs(&n, &[0, 1, 2], job, proof, Verdict::Invalid), 1).await), "PV: bad signature");
    assert_eq!(reason(&submit(sigs(&n, &[0, 1, 2], job, proof, v), 2).await), "PV: wrong set version");
    // One verdict encoding in and out (the contract's `Verdict` enum): 0, "no verdict yet", is
    // refused as an input, and a code outside the enum does not decode.
    for (code, why) in [(Felt::ZERO, "PV: bad verdict"), (Felt::THREE, "deserialize")] {
        let mut call = n.verifier.submit_qc_call(job, proof, true, 1, &sigs(&n, &[0, 1, 2], job, proof, v)).unwrap();
        call.calldata[2] = code;
        let err = n.other.execute(vec![call]).await.unwrap_err();
        assert!(format!("{err}").contains(why), "code {code}: {err}");
    }
    // A valid QC for a job with no submitted result.
    let err = n
        .verifier
        .submit_qc(&n.other, Felt::from(77u8), proof, true, 1, &sigs(&n, &[0, 1, 2], Felt::from(77u8), proof, v))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "JOB: not submitted");
    assert_eq!(n.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::None);
    // Only the owner changes the set.
    let err = n.verifier.set_validators(&n.other, &[(Felt::ONE, Felt::ONE)]).await.unwrap_err();
    assert_eq!(reason(&err), "PV: caller is not owner");
    n.verifier.submit_qc(&n.other, job, proof, true, 1, &sigs(&n, &[0, 1, 2], job, proof, v)).await.unwrap();
}

#[tokio::test]
async fn an_invalid_verdict_refunds_the_client_and_slashes_the_worker() {
    let n = net(4).await;
    let (job, proof, payment) = (Felt::from(5u8), Felt::from(55u8), 30 * SAGE);
    let client_before = n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let job = submitted_job(&n, job, proof, payment).await;
    let reporter_before = n.token.balance_of(&n.client, n.other.address()).await.unwrap();
    let signatures = sigs(&n, &[0, 1, 2], job, proof, Verdict::Invalid);
    let out = n.verifier.submit_qc(&n.other, job, proof, false, 1, &signatures).await.unwrap();
    // The code signed (2, invalid) is the code recorded, emitted and returned.
    assert!(events_in(&out, n.verifier.address, VerifierEvent::decode).contains(&VerifierEvent::VerdictRecorded {
        job_id: job,
        proof_hash: proof,
        verdict: RecordedVerdict::Invalid,
        signers: 3
    }));
    assert_eq!(n.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Invalid);
    assert_eq!(n.jobs.get_job(&n.client, job).await.unwrap().status, JobStatus::Refunded);
    assert_eq!(n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), client_before);
    // 10% of the worker's 1000 SAGE; the QC submitter gets the 10% reporter share.
    let stake = n.staking.get_stake(&n.client, n.worker.address()).await.unwrap();
    assert_eq!((stake.amount, stake.slashed_total), (900 * SAGE, 100 * SAGE));
    assert_eq!(n.token.balance_of(&n.client, n.other.address()).await.unwrap(), reporter_before + 10 * SAGE);
    let counts = n.reputation.counts(&n.client, n.worker.address()).await.unwrap();
    assert_eq!((counts.completed, counts.failed, counts.slashed), (0, 1, 1));
    assert_eq!(n.reputation.score(&n.client, n.worker.address()).await.unwrap(), 375);
}

#[tokio::test]
async fn equivocation_slashes_the_validator_once_and_consistent_votes_do_not() {
    let n = net(4).await;
    let offender = &n.validators[0];
    let (job, proof) = (Felt::from(3u8), Felt::from(33u8));
    let vote = |i: usize, v: Verdict| {
        let s = sign_vote(&n.keys[i], &domain(&n), job, proof, v).unwrap();
        (v == Verdict::Valid, s.r, s.s)
    };
    let (yes, no) = (vote(0, Verdict::Valid), vote(0, Verdict::Invalid));
    let err = n.verifier.report_equivocation(&n.worker, 1, 0, job, proof, yes, yes).await.unwrap_err();
    assert_eq!(reason(&err), "PV: votes do not conflict");
    // Member 1's vote passed off as member 0's.
    let err =
        n.verifier.report_equivocation(&n.worker, 1, 0, job, proof, yes, vote(1, Verdict::Invalid)).await.unwrap_err();
    assert_eq!(reason(&err), "PV: bad signature");
    assert_eq!(n.staking.get_stake(&n.client, offender.address()).await.unwrap().slashed_total, 0);

    // The evidence as sage-consensus detects it: an observer receives both votes of member 0.
    let set = ValidatorSet { version: 1, members: n.keys.iter().map(StarkKey::public_key).collect() };
    let round = RoundId { job_id: job, proof_hash: proof };
    let mut observer = State::new(Config { domain: domain(&n), timeout_ms: 60_000, key: None }, set);
    apply(&mut observer, Input::StartRound { round, now_ms: 0 });
    let signed = |v: Verdict| {
        let signature = sign_vote(&n.keys[0], &domain(&n), job, proof, v).unwrap();
        SignedVote { round, verdict: v, validator: n.keys[0].public_key(), signature }
    };
    let mut effects = apply(&mut observer, Input::Vote(signed(Verdict::Valid)));
    effects.extend(apply(&mut observer, Input::Vote(signed(Verdict::Invalid))));
    let evidence = effects
        .into_iter()
        .find_map(|e| if let Effect::ReportEquivocation(ev) = e { Some(ev) } else { None })
        .expect("the engine reports the equivocation");
    let as_vote = |v: &SignedVote| (v.verdict == Verdict::Valid, v.signature.r, v.signature.s);
    let (first, second) = (as_vote(&evidence.first), as_vote(&evidence.second));
    assert_eq!((first.0 != second.0, evidence.validator), (true, n.keys[0].public_key()));

    // The offender cannot collect the reporter's share of its own slash.
    let err = n.verifier.report_equivocation(offender, 1, 0, job, proof, first, second).await.unwrap_err();
    assert_eq!(reason(&err), "PV: offender cannot report");
    assert_eq!(
        reason(&n.verifier.report_equivocation(&n.worker, 3, 0, job, proof, first, second).await.unwrap_err()),
        "PV: unknown set version"
    );
    // Rotating the set does not erase the evidence: it is reported against set version 1.
    let rotated: Vec<(Felt, Felt)> =
        n.keys[1..].iter().zip(&n.validators[1..]).map(|(k, a)| (k.public_key(), a.address())).collect();
    n.verifier.set_validators(&n.owner, &rotated).await.unwrap();
    assert_eq!(n.verifier.validator_set(&n.client).await.unwrap().0, 2);
    let reporter_before = n.token.balance_of(&n.client, n.worker.address()).await.unwrap();
    let out = n.verifier.report_equivocation(&n.worker, 1, 0, job, proof, first, second).await.unwrap();
    assert!(events_in(&out, n.verifier.address, VerifierEvent::decode).contains(&VerifierEvent::EquivocationSlashed {
        validator: offender.address(),
        job_id: job,
        amount: 5_000 * SAGE
    }));
    assert_eq!(n.staking.get_stake(&n.client, offender.address()).await.unwrap().amount, 5_000 * SAGE);
    assert_eq!(n.token.balance_of(&n.client, n.worker.address()).await.unwrap(), reporter_before + 500 * SAGE);
    let err = n.verifier.report_equivocation(&n.worker, 1, 0, job, proof, no, yes).await.unwrap_err();
    assert_eq!(reason(&err), "PV: already reported");
}

#[tokio::test]
async fn payments_need_a_valid_verdict_with_the_same_proof_and_happen_once() {
    let n = net(4).await;
    let proof = Felt::from(0x77u8);
    let a = submitted_job(&n, Felt::from(21u8), proof, 10 * SAGE).await;
    let b = submitted_job(&n, Felt::from(22u8), proof, 10 * SAGE).await;
    let c = submitted_job(&n, Felt::from(23u8), proof, 10 * SAGE).await;
    let units = u64::try_from(10 * SAGE / UNIT).unwrap();
    let w = n.worker.address();
    let err = pay(&n.owner, n.payments, w, a, proof).await.unwrap_err();
    assert!(err.to_string().contains("PAY: no verdict") || format!("{err:?}").contains("PAY: no verdict"), "{err:?}");
    settle(&n, a, proof, Verdict::Valid).await;
    settle(&n, b, proof, Verdict::Invalid).await;
    settle(&n, c, proof, Verdict::Valid).await;

    let r = Felt::from(0x1234_5678u32);
    let err = n.payments.submit_payment_with_proof(&n.owner, w, a, r, proof + Felt::ONE, Felt::ONE).await.unwrap_err();
    assert_eq!(reason(&err), "PAY: wrong commitment");
    let err = n.payments.submit_payment_with_proof(&n.other, w, a, r, proof, Felt::ONE).await.unwrap_err();
    assert_eq!(reason(&err), "PAY: not coordinator");
    let err =
        n.payments.submit_payment_with_proof(&n.owner, n.other.address(), a, r, proof, Felt::ONE).await.unwrap_err();
    assert_eq!(reason(&err), "PAY: not the job worker");
    let err = pay(&n.owner, n.payments, w, b, proof).await.unwrap_err();
    assert!(format!("{err:?}").contains("PAY: verdict invalid"), "{err:?}");

    let (sent, out) = pay(&n.owner, n.payments, w, a, proof).await.unwrap();
    assert!(events_in(&out, n.payments.address, PaymentEvent::decode).contains(&PaymentEvent::PaymentSubmitted {
        job_id: a,
        worker: w,
        nonce: payment_nonce(a, w),
        proof_commitment: proof,
        ciphertext: sent.to_felts()
    }));
    assert!(n.payments.is_paid(&n.client, a).await.unwrap());
    assert_eq!(n.privacy.job_deposit(&n.client, a).await.unwrap(), 0, "the deposit is consumed");
    // The balance is exactly the ciphertext credited (identity + ct), and decrypts to the job's
    // escrow in units.
    let balance = fetch_balance(&n.client, n.privacy, w).await.unwrap();
    assert_eq!(balance.to_felts(), sent.to_felts());
    let table = BabyStepTable::build(12).unwrap();
    assert_eq!(decrypt_balance(&balance, &n.sk, &table, 1 << 26).unwrap(), units);

    let err = pay(&n.owner, n.payments, w, a, proof).await.unwrap_err();
    assert!(format!("{err:?}").contains("PAY: already paid"), "{err:?}");
    // Job c with job a's nonce: replay refused.
    let err = n.payments.submit_payment_with_proof(&n.owner, w, c, r, proof, payment_nonce(a, w)).await.unwrap_err();
    assert_eq!(reason(&err), "PAY: nonce used");
    pay(&n.owner, n.payments, w, c, proof).await.unwrap();
    // Homomorphic: both jobs' escrow.
    let balance = fetch_balance(&n.client, n.privacy, w).await.unwrap();
    assert_eq!(decrypt_balance(&balance, &n.sk, &table, 1 << 26).unwrap(), 2 * units);
}

/// The attack of issue 14 (item 1): a coordinator colluding with a worker used to credit any
/// ciphertext for a 1-unit job and drain other clients' escrow from the shared pool. Now the
/// amount is not an argument: the contract encrypts exactly the job's deposited escrow, with the
/// coordinator's randomness, byte for byte as `obelysk-elgamal` does; a job whose escrow never
/// reached the pool pays nothing; and nobody but the router credits.
#[tokio::test]
async fn a_coordinator_cannot_credit_more_than_the_jobs_escrow() {
    // The setup stays open: the test unsets the payout (a setup-only setting) below.
    let n = net_with(4, false).await;
    let w = n.worker.address();
    let (small, big, proof) = (Felt::from(51u8), Felt::from(52u8), Felt::from(0x55u8));
    // A client's big job sits in the pool next to the colluders' 1-unit job.
    let small = submitted_job(&n, small, proof, UNIT).await;
    let big = submitted_job(&n, big, proof, 1_000 * SAGE).await;
    settle(&n, small, proof, Verdict::Valid).await;
    settle(&n, big, proof, Verdict::Valid).await;
    assert_eq!(n.privacy.job_deposit(&n.client, small).await.unwrap(), UNIT);

    let err = n.payments.submit_payment_with_proof(&n.owner, w, small, Felt::ZERO, proof, Felt::TWO).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: bad randomness");
    let r = Felt::from(0xabcdefu32);
    n.payments.submit_payment_with_proof(&n.owner, w, small, r, proof, Felt::TWO).await.unwrap();
    let expected = obelysk_elgamal::encrypt_with_randomness(
        1,
        &n.sk.public_key(),
        &obelysk_elgamal::Scalar::from_canonical_felt(&r).unwrap(),
    )
    .unwrap();
    assert_eq!(
        n.privacy.pending_of(&n.client, w).await.unwrap(),
        expected.to_felts(),
        "exactly 1 unit, encrypted on-chain, pending"
    );
    assert_eq!(n.privacy.balance_of(&n.client, w).await.unwrap(), [Felt::ZERO; 4], "nothing available before rollover");
    let table = BabyStepTable::build(12).unwrap();
    let balance = fetch_balance(&n.client, n.privacy, w).await.unwrap();
    assert_eq!(decrypt_balance(&balance, &n.sk, &table, 1 << 20).unwrap(), 1);
    // The big job's escrow is untouched until its own payment.
    assert_eq!(n.privacy.job_deposit(&n.client, big).await.unwrap(), 1_000 * SAGE);
    // Only the router credits, and only deposited escrow.
    let err = n.privacy.credit_payment(&n.owner, w, big, r).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: not router");

    // A job settled while no payout is set never reaches the pool (nothing for the router to
    // credit), and its escrow does not stay stranded in the JobManager: the worker is paid in the
    // clear.
    let stranded = Felt::from(53u8);
    n.owner.execute(vec![n.jobs.set_payout_call(Felt::ZERO).unwrap()]).await.unwrap();
    let held_before = n.token.balance_of(&n.client, n.jobs.address).await.unwrap();
    let stranded = submitted_job(&n, stranded, proof, 5 * SAGE).await;
    let worker_before = n.token.balance_of(&n.client, w).await.unwrap();
    settle(&n, stranded, proof, Verdict::Valid).await;
    assert_eq!(n.token.balance_of(&n.client, w).await.unwrap(), worker_before + 5 * SAGE);
    assert_eq!(n.token.balance_of(&n.client, n.jobs.address).await.unwrap(), held_before, "nothing stranded");
    let err = pay(&n.owner, n.payments, w, stranded, proof).await.unwrap_err();
    assert!(format!("{err:?}").contains("PRIV: nothing deposited"), "{err:?}");
    assert!(!n.payments.is_paid(&n.client, stranded).await.unwrap());
}

#[tokio::test]
async fn claims_are_checked_with_chaum_pedersen_in_cairo_and_paid_from_the_pool() {
    let n = net(1).await;
    let (job, proof, payment) = (Felt::from(31u8), Felt::from(0x31u8), 20 * SAGE);
    let job = submitted_job(&n, job, proof, payment).await;
    settle(&n, job, proof, Verdict::Valid).await;
    let units = u64::try_from(payment / UNIT).unwrap();
    pay(&n.owner, n.payments, n.worker.address(), job, proof).await.unwrap();
    assert_eq!(n.privacy.unit(&n.client).await.unwrap(), UNIT);

    let w = n.worker.address();
    let table = BabyStepTable::build(16).unwrap();
    // The payment is pending: nothing is claimable until the worker rolls it over, which only the
    // worker can do for itself.
    let err = build_claim(&n.client, n.privacy, w, &n.sk, &table, 1 << 32).await.unwrap_err();
    assert!(matches!(err, sage_payments::PaymentError::NothingToClaim), "{err}");
    let err = n.privacy.rollover(&n.other).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: nothing pending");
    let pending = n.privacy.pending_of(&n.client, w).await.unwrap();
    let out = n.privacy.rollover(&n.worker).await.unwrap();
    assert_eq!(
        events_in(&out, n.privacy.address, PaymentEvent::decode),
        [PaymentEvent::RolledOver { worker: w, balance: pending }]
    );
    assert_eq!(n.privacy.pending_of(&n.client, w).await.unwrap(), [Felt::ZERO; 4]);
    let claim = build_claim(&n.client, n.privacy, w, &n.sk, &table, 1 << 32).await.unwrap();
    assert_eq!(claim.units, units);
    let err = n.privacy.claim(&n.worker, units + 1, claim.proof).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: bad proof");
    let mut tampered = claim.proof;
    tampered[4] += Felt::ONE;
    let err = n.privacy.claim(&n.worker, units, tampered).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: bad proof");
    // A proof bound to the next claim nonce, or made by the wrong key.
    let balance = fetch_balance(&n.client, n.privacy, w).await.unwrap();
    let ctx = claim_context(n.client.chain_id(), n.privacy.address, w, Felt::ONE);
    let stale = prove_decryption(&n.sk, &balance, units, &ctx).unwrap().to_felts();
    let err = n.privacy.claim(&n.worker, units, stale).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: bad proof");
    // Someone else cannot claim the worker's balance (they have none and no key).
    let err = n.privacy.claim(&n.other, units, claim.proof).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: nothing to claim");

    // Issue 14 item 3 (the Zether rollover): a payment that lands after the claim was built and
    // before it is included goes to the pending balance and leaves the claim valid (with a single
    // balance it changed the ciphertext the proof was made for, and the claim reverted).
    let (job2, payment2) = (Felt::from(32u8), 7 * SAGE);
    let job2 = submitted_job(&n, job2, proof, payment2).await;
    settle(&n, job2, proof, Verdict::Valid).await;
    pay(&n.owner, n.payments, w, job2, proof).await.unwrap();

    let before = n.token.balance_of(&n.client, w).await.unwrap();
    let out = n.privacy.claim(&n.worker, units, claim.proof).await.unwrap();
    assert!(events_in(&out, n.privacy.address, PaymentEvent::decode).contains(&PaymentEvent::Claimed {
        worker: w,
        amount: units,
        value: payment,
        nonce: Felt::ZERO
    }));
    assert_eq!(n.token.balance_of(&n.client, w).await.unwrap(), before + payment);
    assert_eq!(n.privacy.pool(&n.client).await.unwrap(), payment2, "the second payment's escrow stays");
    assert_eq!(n.privacy.balance_of(&n.client, w).await.unwrap(), [Felt::ZERO; 4]);
    assert_eq!(n.privacy.claim_nonce(&n.client, w).await.unwrap(), Felt::ONE);
    let err = n.privacy.claim(&n.worker, units, claim.proof).await.unwrap_err();
    assert_eq!(reason(&err), "PRIV: nothing to claim");
    // The second payment waits in the pending balance; the library's claim rolls it over and
    // claims it.
    let whole = fetch_balance(&n.client, n.privacy, w).await.unwrap();
    let units2 = u64::try_from(payment2 / UNIT).unwrap();
    assert_eq!(decrypt_balance(&whole, &n.sk, &table, 1 << 32).unwrap(), units2);
    let (claimed, _) = sage_payments::claim(&n.worker, n.privacy, &n.sk, &table, 1 << 32).await.unwrap();
    assert_eq!(claimed, units2);
    assert_eq!(n.token.balance_of(&n.client, w).await.unwrap(), before + payment + payment2);
    assert_eq!(n.privacy.pool(&n.client).await.unwrap(), 0);

    // A balance larger than the pool cannot arise any more: every credit is deposited escrow.
}

#[tokio::test]
async fn elgamal_vectors_verify_in_cairo_exactly_as_in_rust() {
    let n = net(1).await;
    // Embedded at build time (a path from env!("CARGO_MANIFEST_DIR") would name the clone that
    // first built this test binary in a shared target directory).
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../obelysk-elgamal/test-data/vectors.json")).unwrap();
    let felts = |x: &serde_json::Value| -> Vec<Felt> {
        x.as_array().unwrap().iter().map(|f| Felt::from_hex(f.as_str().unwrap()).unwrap()).collect()
    };
    let check = |case: &serde_json::Value| {
        let pk: [Felt; 2] = felts(&case["public_key"]).try_into().unwrap();
        let ct: [Felt; 4] = felts(&case["ciphertext"]).try_into().unwrap();
        let proof: [Felt; 5] = felts(&case["proof"]).try_into().unwrap();
        (pk, ct, case["amount"].as_u64().unwrap(), proof, felts(&case["context"]))
    };
    let valid = v["decryption_proofs"].as_array().unwrap();
    let invalid = v["invalid_decryption_proofs"].as_array().unwrap();
    assert!(!valid.is_empty() && !invalid.is_empty());
    for case in valid {
        let (pk, ct, amount, proof, ctx) = check(case);
        assert!(n.privacy.verify_decryption(&n.client, pk, ct, amount, proof, &ctx).await.unwrap(), "{case}");
        assert!(!n.privacy.verify_decryption(&n.client, pk, ct, amount + 1, proof, &ctx).await.unwrap());
    }
    for case in invalid {
        let (pk, ct, amount, proof, ctx) = check(&case["decryption_proof"]);
        let ok = n.privacy.verify_decryption(&n.client, pk, ct, amount, proof, &ctx).await.unwrap();
        assert!(!ok, "Cairo accepted an invalid vector: {}", case["reason"]);
    }
    // Homomorphic addition on-chain is byte-identical to the Rust vector (the Cairo helper the
    // PrivacyRouter adds balances with).
    let h = &v["homomorphic"];
    let sum =
        (&Ciphertext::from_felts(&felts(&h["enc_a"])).unwrap()) + &Ciphertext::from_felts(&felts(&h["enc_b"])).unwrap();
    assert_eq!(sum.to_felts().to_vec(), felts(&h["enc_a_plus_enc_b"]));
    // On-chain encryption and addition, through two real payments with known randomness.
    let w = n.worker.address();
    let (r1, r2) = (Felt::from(0x1111u32), Felt::from(0x2222u32));
    for (job, r) in [(Felt::from(71u8), r1), (Felt::from(72u8), r2)] {
        let job = submitted_job(&n, job, Felt::ONE, 3 * UNIT).await;
        settle(&n, job, Felt::ONE, Verdict::Valid).await;
        n.payments.submit_payment_with_proof(&n.owner, w, job, r, Felt::ONE, job).await.unwrap();
    }
    let enc = |r: Felt| {
        obelysk_elgamal::encrypt_with_randomness(
            3,
            &n.sk.public_key(),
            &obelysk_elgamal::Scalar::from_canonical_felt(&r).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(n.privacy.pending_of(&n.client, w).await.unwrap(), (&enc(r1) + &enc(r2)).to_felts());
}

/// A paused PrivacyRouter does not make a valid quorum certificate revert: the verdict lands and
/// the escrow still moves into the pool (deposits only add to it).
#[tokio::test]
async fn a_valid_qc_lands_while_the_privacy_router_is_paused() {
    let n = net(4).await;
    let (job, proof, payment) = (Felt::from(61u8), Felt::from(0x61u8), 50 * SAGE);
    let job = submitted_job(&n, job, proof, payment).await;
    let pool = n.privacy.pool(&n.client).await.unwrap();
    n.privacy.admin().pause(&n.owner).await.unwrap();
    settle(&n, job, proof, Verdict::Valid).await;
    assert_eq!(n.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Valid);
    assert_eq!(n.privacy.pool(&n.client).await.unwrap(), pool + payment);
}

/// The attacks of issue 14 (item 2) on the validator set: an unregistered (unstaked) member, a
/// key mapped to another validator's account (which would get that account slashed), one key
/// listed twice (counted twice towards a quorum) and one account listed twice are all refused.
#[tokio::test]
async fn the_validator_set_is_bound_to_registered_staked_unique_validators() {
    let n = net(2).await;
    let (v0, v1) = (&n.validators[0], &n.validators[1]);
    let (k0, k1) = (n.keys[0].public_key(), n.keys[1].public_key());
    let attempts: [(&[(Felt, Felt)], &str); 5] = [
        (&[(k0, v0.address()), (Felt::from(0x5eed_u32), n.other.address())], "PV: key not registered"),
        (&[(k1, v0.address())], "PV: key not registered"),
        (&[(k0, v0.address()), (k0, v0.address())], "PV: duplicate key"),
        (&[(k0, v0.address()), (k1, v1.address()), (k1, v1.address())], "PV: duplicate key"),
        (&[(k0, n.worker.address())], "PV: key not registered"),
    ];
    for (members, expected) in attempts {
        let err = n.verifier.set_validators(&n.owner, members).await.unwrap_err();
        assert_eq!(reason(&err), expected, "{members:?}");
    }
    // A registered validator whose stake fell below the minimum is refused too. A member's stake
    // is bonded, so it can fall only after a set without it is installed.
    n._devnet.increase_time(3_700).await.unwrap();
    let err = n.staking.request_unstake(v1, 5_000 * SAGE).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: validator bonded");
    n.verifier.set_validators(&n.owner, &[(k0, v0.address())]).await.unwrap();
    n.staking.request_unstake(v1, 5_000 * SAGE).await.unwrap();
    let err = n.verifier.set_validators(&n.owner, &[(k0, v0.address()), (k1, v1.address())]).await.unwrap_err();
    assert_eq!(reason(&err), "PV: insufficient stake");
    // The honest set still installs.
    n.verifier.set_validators(&n.owner, &[(k0, v0.address())]).await.unwrap();
    assert_eq!(n.verifier.validator_set(&n.client).await.unwrap().1, 1);
}

/// Issue 14 (item 2): a member of the validator set cannot leave with its stake while it can
/// still vote (its equivocation would be free); stake above the validator minimum stays free; a
/// set without it releases it; and nobody but the ProofVerifier bonds or releases anyone.
#[tokio::test]
async fn validator_set_members_stay_bonded_until_a_set_without_them() {
    let n = net(2).await;
    let (v0, v1) = (&n.validators[0], &n.validators[1]);
    let k1 = n.keys[1].public_key();
    for v in [v0, v1] {
        assert!(n.staking.is_bonded(&n.client, v.address()).await.unwrap());
    }
    assert!(!n.staking.is_bonded(&n.client, n.worker.address()).await.unwrap());
    n._devnet.increase_time(3_700).await.unwrap();
    // Above the minimum is free to leave; the minimum itself is not.
    n.staking.stake(v0, n.token, 1_000 * SAGE, GpuTier::T4, 0).await.unwrap();
    n.staking.request_unstake(v0, 1_000 * SAGE).await.unwrap();
    let err = n.staking.request_unstake(v0, SAGE).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: validator bonded");
    // Neither the owner nor the member itself can release the bond.
    for caller in [&n.owner, v0] {
        let release = starknet_rust::core::types::Call {
            to: n.staking.address,
            selector: sage_chain::client::selector("set_bonded").unwrap(),
            calldata: vec![v0.address(), Felt::ZERO],
        };
        let err = caller.execute(vec![release]).await.unwrap_err();
        assert_eq!(reason(&err), "STAKE: not bonder");
    }
    // A set without v0 releases it (and keeps v1 bonded).
    n.verifier.set_validators(&n.owner, &[(k1, v1.address())]).await.unwrap();
    assert!(!n.staking.is_bonded(&n.client, v0.address()).await.unwrap());
    assert!(n.staking.is_bonded(&n.client, v1.address()).await.unwrap());
    n.staking.request_unstake(v0, 10_000 * SAGE).await.unwrap();
    let err = n.staking.request_unstake(v1, SAGE).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: validator bonded");
}

/// Issue 14 (item 3): a worker that registers a new ElGamal key while part of its balance is
/// still encrypted to the old one never loses it. Credits under the new key wait (the payment is
/// refused and can be retried) until the old balance is claimed, which is proven under the key
/// it was encrypted to.
#[tokio::test]
async fn a_key_change_never_bricks_a_balance() {
    let n = net(1).await;
    let w = n.worker.address();
    let proof = Felt::from(0x81u8);
    let a = submitted_job(&n, Felt::from(81u8), proof, 2 * UNIT).await;
    let b = submitted_job(&n, Felt::from(82u8), proof, 2 * UNIT).await;
    for job in [a, b] {
        settle(&n, job, proof, Verdict::Valid).await;
    }
    pay(&n.owner, n.payments, w, a, proof).await.unwrap();
    let new_sk = SecretKey::from_seed(&[2; 32]);
    let tee = TeeEvidence {
        tee_type: sage_staking::TeeType::Tdx,
        measurement_hash: Felt::from(2u8),
        quote_hash: Felt::from(3u8),
    };
    register_worker(&n.worker, n.staking, &new_sk, tee, Felt::from(4u8)).await.unwrap();
    let err = pay(&n.owner, n.payments, w, b, proof).await.unwrap_err();
    assert!(format!("{err:?}").contains("PRIV: key changed, claim first"), "{err:?}");
    assert!(!n.payments.is_paid(&n.client, b).await.unwrap());
    let table = BabyStepTable::build(12).unwrap();
    // The new key cannot claim the old balance; the old key still can.
    assert!(sage_payments::claim(&n.worker, n.privacy, &new_sk, &table, 1 << 20).await.is_err());
    let (units, _) = sage_payments::claim(&n.worker, n.privacy, &n.sk, &table, 1 << 20).await.unwrap();
    assert_eq!(units, 2);
    // The waiting payment now lands under the new key.
    pay(&n.owner, n.payments, w, b, proof).await.unwrap();
    let balance = fetch_balance(&n.client, n.privacy, w).await.unwrap();
    assert_eq!(decrypt_balance(&balance, &new_sk, &table, 1 << 20).unwrap(), 2);
}
