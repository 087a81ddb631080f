//! StakingManager, ReputationManager and JobManager against a real starknet-devnet 0.10.1, every
//! rule with the transaction that passes and the one that must revert.
//!
//! Each test starts its own devnet (about a second) and deploys the committed artifacts with
//! `deploy_sage`. The devnet binary comes from `cargo xtask tools`; when it is missing the tests
//! fail with the install instruction rather than skipping.

use obelysk_elgamal::SecretKey;
use sage_chain::{
    ChainClient, ChainError, DeployParams, Felt, Manifest, SAGE, SageAccount,
    contracts::{
        GpuTier, JobEvent, JobManager, JobStatus, ReputationEvent, ReputationManager, SageToken, StakingEvent,
        StakingManager, events_in, roles,
    },
    devnet::Devnet,
    testing::TestNet,
};
use sage_staking::{
    StakeStatus, TeeEvidence, TeeType, fetch_tier_rules, register_worker, registration, slash_history, verify_stake,
};

struct Net {
    devnet: Devnet,
    client: ChainClient,
    owner: SageAccount,
    worker: SageAccount,
    client_acc: SageAccount,
    other: SageAccount,
    manifest: Manifest,
    token: SageToken,
    staking: StakingManager,
    reputation: ReputationManager,
    jobs: JobManager,
}

async fn net() -> Net {
    let TestNet { devnet, client, accounts, manifest, contracts } =
        TestNet::start(4, &DeployParams::default(), 100_000 * SAGE)
            .await
            .expect("devnet (run `cargo xtask tools` first)");
    let [owner, worker, client_acc, other]: [SageAccount; 4] = accounts.try_into().expect("four accounts");
    Net {
        staking: contracts.staking,
        reputation: contracts.reputation,
        jobs: contracts.jobs,
        token: contracts.token,
        devnet,
        client,
        owner,
        worker,
        client_acc,
        other,
        manifest,
    }
}

fn reason(err: &ChainError) -> &str {
    err.revert_reason().unwrap_or_else(|| panic!("expected a revert, got {err}"))
}

fn short(s: &str) -> Felt {
    Felt::from_bytes_be_slice(s.as_bytes())
}

fn tee() -> TeeEvidence {
    TeeEvidence { tee_type: TeeType::Tdx, measurement_hash: Felt::from(0x4d45u32), quote_hash: Felt::from(0x5155u32) }
}

fn elgamal_key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// Wall-clock seconds; devnet stamps blocks with the wall clock (plus `increase_time` shifts).
fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

const T4_MIN: u128 = 1_000 * SAGE;

async fn staked_worker(n: &Net, lock: u64) {
    n.staking.stake(&n.worker, n.token, T4_MIN, GpuTier::T4, lock).await.unwrap();
    register_worker(&n.worker, n.staking, &elgamal_key(1), tee(), short("peer")).await.unwrap();
}

#[tokio::test]
async fn stake_below_the_tier_minimum_reverts_and_the_minimum_is_accepted() {
    let n = net().await;
    assert_eq!(n.staking.min_stake(&n.client, GpuTier::H100).await.unwrap(), 25_000 * SAGE);
    let err = n.staking.stake(&n.worker, n.token, T4_MIN - 1, GpuTier::T4, 3600).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: below tier minimum");
    // 1000 SAGE is enough for a T4 but not for an A100.
    let err = n.staking.stake(&n.worker, n.token, T4_MIN, GpuTier::A100, 3600).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: below tier minimum");
    assert_eq!(n.staking.get_stake(&n.client, n.worker.address()).await.unwrap().amount, 0);

    let out = n.staking.stake(&n.worker, n.token, T4_MIN, GpuTier::T4, 3600).await.unwrap();
    let info = n.staking.get_stake(&n.client, n.worker.address()).await.unwrap();
    assert_eq!((info.amount, info.tier), (T4_MIN, 0));
    assert!(info.locked_until >= wall() + 3500);
    let events = events_in(&out, n.staking.address, StakingEvent::decode);
    assert!(
        matches!(events.as_slice(), [StakingEvent::Staked { account, amount, total, tier: 0, .. }]
            if *account == n.worker.address() && *amount == T4_MIN && *total == T4_MIN),
        "{events:?}"
    );
    assert_eq!(n.token.balance_of(&n.client, n.staking.address).await.unwrap(), T4_MIN);
    assert_eq!(n.staking.total_staked(&n.client).await.unwrap(), T4_MIN);

    // The owner may lower a tier minimum; nobody else may.
    let err = n.staking.set_min_stake(&n.worker, GpuTier::A100, 1).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: caller is not owner");
    n.staking.set_min_stake(&n.owner, GpuTier::A100, 500 * SAGE).await.unwrap();
    n.staking.stake(&n.other, n.token, 500 * SAGE, GpuTier::A100, 10).await.unwrap();

    // Paused: no staking.
    n.staking.admin().pause(&n.owner).await.unwrap();
    let err = n.staking.stake(&n.worker, n.token, SAGE, GpuTier::T4, 10).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: paused");
}

#[tokio::test]
async fn unstake_waits_for_the_lock_then_the_cooldown() {
    let n = net().await;
    n.staking.stake(&n.worker, n.token, 2 * T4_MIN, GpuTier::T4, 1_000).await.unwrap();
    let before = n.token.balance_of(&n.client, n.worker.address()).await.unwrap();
    let err = n.staking.request_unstake(&n.worker, T4_MIN).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: locked");

    n.devnet.increase_time(1_001).await.unwrap();
    let err = n.staking.request_unstake(&n.worker, 3 * T4_MIN).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: exceeds stake");
    n.staking.request_unstake(&n.worker, T4_MIN).await.unwrap();
    let info = n.staking.get_stake(&n.client, n.worker.address()).await.unwrap();
    assert_eq!((info.amount, info.pending), (T4_MIN, T4_MIN));

    let err = n.staking.withdraw(&n.worker).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: cooldown active");
    n.devnet.increase_time(7 * 24 * 3600 + 1).await.unwrap();
    // An exit is never paused: the owner cannot freeze a withdrawal.
    n.staking.admin().pause(&n.owner).await.unwrap();
    let out = n.staking.withdraw(&n.worker).await.unwrap();
    assert!(
        events_in(&out, n.staking.address, StakingEvent::decode)
            .contains(&StakingEvent::Withdrawn { account: n.worker.address(), amount: T4_MIN })
    );
    assert_eq!(n.token.balance_of(&n.client, n.worker.address()).await.unwrap(), before + T4_MIN);
    let err = n.staking.withdraw(&n.worker).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: nothing pending");
}

#[tokio::test]
async fn registration_needs_stake_tee_evidence_and_a_key_proof_bound_to_the_caller() {
    let n = net().await;
    let sk = elgamal_key(1);
    let err = register_worker(&n.worker, n.staking, &sk, tee(), short("peer")).await.unwrap_err();
    assert!(err.to_string().contains("STAKE: insufficient stake"), "{err}");

    n.staking.stake(&n.worker, n.token, T4_MIN, GpuTier::T4, 3600).await.unwrap();
    // A proof made for another account does not register this one.
    let stolen = registration(n.client.chain_id(), n.staking, n.other.address(), &sk, tee(), short("peer")).unwrap();
    let err = n.staking.register_worker(&n.worker, &stolen).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: bad key proof");
    // A tampered response.
    let mut tampered =
        registration(n.client.chain_id(), n.staking, n.worker.address(), &sk, tee(), short("p")).unwrap();
    tampered.key_proof[2] += Felt::ONE;
    let err = n.staking.register_worker(&n.worker, &tampered).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: bad key proof");
    let mut no_tee = registration(n.client.chain_id(), n.staking, n.worker.address(), &sk, tee(), short("p")).unwrap();
    no_tee.quote_hash = Felt::ZERO;
    let err = n.staking.register_worker(&n.worker, &no_tee).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: missing TEE evidence");
    assert!(!n.staking.is_registered(&n.client, n.worker.address()).await.unwrap());

    let out = register_worker(&n.worker, n.staking, &sk, tee(), short("peer")).await.unwrap();
    let w = n.staking.get_worker(&n.client, n.worker.address()).await.unwrap();
    assert!(w.registered);
    assert_eq!(w.elgamal_public_key, sk.public_key().to_felts());
    assert_eq!((w.tee_type, w.peer_id), (Some(TeeType::Tdx), short("peer")));
    assert!(
        events_in(&out, n.staking.address, StakingEvent::decode)
            .iter()
            .any(|e| matches!(e, StakingEvent::WorkerRegistered { worker, .. } if *worker == n.worker.address()))
    );
    // Registration initialised the reputation record.
    assert_eq!(
        events_in(&out, n.reputation.address, ReputationEvent::decode),
        [ReputationEvent { account: n.worker.address(), kind: short("init"), score: 500 }]
    );
    let counts = n.reputation.counts(&n.client, n.worker.address()).await.unwrap();
    assert!(counts.initialised);
    assert_eq!(n.reputation.score(&n.client, n.worker.address()).await.unwrap(), 500);
    // Nobody but the wired contracts writes reputation.
    let err = n.reputation.record_completed(&n.worker, n.worker.address()).await.unwrap_err();
    assert_eq!(reason(&err), "REP: not writer");

    // Validators register with their Stark key once staked above the validator minimum.
    let err = n.staking.register_validator(&n.other, Felt::from(77u8)).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: insufficient stake");
    n.staking.stake(&n.other, n.token, 10_000 * SAGE, GpuTier::T4, 3600).await.unwrap();
    n.staking.register_validator(&n.other, Felt::from(77u8)).await.unwrap();
    assert_eq!(n.staking.validator_key(&n.client, n.other.address()).await.unwrap(), Felt::from(77u8));
}

#[tokio::test]
async fn key_ownership_vectors_verify_in_cairo_exactly_as_in_rust() {
    let n = net().await;
    // Embedded at build time (a path from env!("CARGO_MANIFEST_DIR") would name the clone that
    // first built this test binary in a shared target directory).
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../obelysk-elgamal/test-data/vectors.json")).unwrap();
    let felts = |v: &serde_json::Value| -> Vec<Felt> {
        v.as_array().unwrap().iter().map(|x| Felt::from_hex(x.as_str().unwrap()).unwrap()).collect()
    };
    let cases = vectors["key_ownership_proofs"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let pk: [Felt; 2] = felts(&case["public_key"]).try_into().unwrap();
        let proof: [Felt; 3] = felts(&case["proof"]).try_into().unwrap();
        let context = felts(&case["context"]);
        assert!(n.staking.verify_key_ownership(&n.client, pk, proof, &context).await.unwrap());
        let mut bad = proof;
        bad[2] += Felt::ONE;
        assert!(!n.staking.verify_key_ownership(&n.client, pk, bad, &context).await.unwrap());
        assert!(!n.staking.verify_key_ownership(&n.client, pk, proof, &context[1..]).await.unwrap());
    }
}

#[tokio::test]
async fn only_the_slasher_slashes_and_the_slash_is_split_between_reporter_and_treasury() {
    let n = net().await;
    n.staking.stake(&n.worker, n.token, 10_000 * SAGE, GpuTier::T4, 3600).await.unwrap();
    let err = n.staking.slash(&n.other, n.worker.address(), 1_000, short("test"), n.other.address()).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: not slasher");

    // The deployment's setup is closed: the grant waits for the timelock, then anyone carries it
    // out.
    n.staking.admin().grant_role(&n.owner, roles::SLASHER, n.other.address()).await.unwrap();
    n.devnet.increase_time(sage_chain::contracts::ROLE_GRANT_DELAY + 1).await.unwrap();
    n.staking.admin().execute_role_grant(&n.client_acc, roles::SLASHER, n.other.address()).await.unwrap();
    let err =
        n.staking.slash(&n.other, n.worker.address(), 10_001, short("test"), n.other.address()).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: bad bps");
    // One slash takes at most half: a SLASHER (even the owner's own grant) cannot wipe a stake out
    // in one call.
    let err = n.staking.slash(&n.other, n.worker.address(), 5_001, short("test"), n.other.address()).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: bad bps");
    let treasury_before = n.token.balance_of(&n.client, n.owner.address()).await.unwrap();
    let reporter_before = n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let out =
        n.staking.slash(&n.other, n.worker.address(), 1_000, short("test"), n.client_acc.address()).await.unwrap();
    // 10% of 10 000 = 1 000 slashed; the reporter gets 10% of that, the treasury the rest.
    let info = n.staking.get_stake(&n.client, n.worker.address()).await.unwrap();
    assert_eq!((info.amount, info.slashed_total), (9_000 * SAGE, 1_000 * SAGE));
    assert_eq!(n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), reporter_before + 100 * SAGE);
    assert_eq!(n.token.balance_of(&n.client, n.owner.address()).await.unwrap(), treasury_before + 900 * SAGE);
    assert_eq!(n.staking.total_staked(&n.client).await.unwrap(), 9_000 * SAGE);
    assert!(events_in(&out, n.staking.address, StakingEvent::decode).iter().any(|e| matches!(e,
        StakingEvent::Slashed { amount, reporter_reward, treasury_amount, .. }
            if *amount == 1_000 * SAGE && *reporter_reward == 100 * SAGE && *treasury_amount == 900 * SAGE)));
    let history = slash_history(&n.client, n.staking, n.worker.address(), n.manifest.deployed_at_block).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].reason, history[0].amount), (short("test"), 1_000 * SAGE));

    // Revoked: no more slashing.
    n.staking.admin().revoke_role(&n.owner, roles::SLASHER, n.other.address()).await.unwrap();
    let err = n.staking.slash(&n.other, n.worker.address(), 1, short("test"), Felt::ZERO).await.unwrap_err();
    assert_eq!(reason(&err), "STAKE: not slasher");
}

#[tokio::test]
async fn verify_stake_agrees_with_the_tier_rules() {
    let n = net().await;
    let rules = fetch_tier_rules(&n.client, n.staking).await.unwrap();
    assert_eq!(rules.minimum(GpuTier::T4), T4_MIN);
    let w = n.worker.address();
    let deadline = wall() + 3_600;
    assert_eq!(verify_stake(&n.client, n.staking, w, deadline).await.unwrap(), StakeStatus::Insufficient);
    n.staking.stake(&n.worker, n.token, T4_MIN, GpuTier::T4, 600).await.unwrap();
    assert_eq!(verify_stake(&n.client, n.staking, w, deadline).await.unwrap(), StakeStatus::Unlocked);
    n.staking.stake(&n.worker, n.token, SAGE, GpuTier::T4, 7_200).await.unwrap();
    assert_eq!(verify_stake(&n.client, n.staking, w, deadline).await.unwrap(), StakeStatus::Valid);
    let info = n.staking.get_stake(&n.client, w).await.unwrap();
    for until in [deadline, info.locked_until + 1] {
        let on_chain = verify_stake(&n.client, n.staking, w, until).await.unwrap();
        assert_eq!(rules.classify(&info, until), on_chain);
    }
    // Raising the minimum above the stake makes it insufficient.
    n.staking.set_min_stake(&n.owner, GpuTier::T4, 2 * T4_MIN).await.unwrap();
    assert_eq!(verify_stake(&n.client, n.staking, w, deadline).await.unwrap(), StakeStatus::Insufficient);
}

/// The id a job of `client_acc` gets for `client_job_id`.
fn id(n: &Net, client_job_id: u8) -> Felt {
    JobManager::job_id(n.client_acc.address(), Felt::from(client_job_id))
}

#[tokio::test]
async fn assignment_requires_the_coordinator_and_a_registered_worker_staked_past_the_deadline() {
    let n = net().await;
    let (cj, payment) = (Felt::from(1u8), 50 * SAGE);
    let job = id(&n, 1);
    let deadline = wall() + 3_600;
    let err = n.jobs.create_job(&n.client_acc, n.token, cj, Felt::TWO, payment, wall() - 10).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: deadline passed");
    let out = n.jobs.create_job(&n.client_acc, n.token, cj, Felt::TWO, payment, deadline).await.unwrap();
    assert!(events_in(&out, n.jobs.address, JobEvent::decode).contains(&JobEvent::Created {
        job_id: job,
        client: n.client_acc.address(),
        payment,
        deadline
    }));
    assert_eq!(n.token.balance_of(&n.client, n.jobs.address).await.unwrap(), payment);
    let err = n.jobs.create_job(&n.client_acc, n.token, cj, Felt::TWO, payment, deadline).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: exists");

    // Unstaked and unregistered.
    let err = n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: worker not registered");
    // Registered, but the lock ends before the deadline.
    staked_worker(&n, 600).await;
    let err = n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: stake unlocks early");
    // The lock covers the deadline but not the verdict grace (24 h by default), so the worker could
    // unstake before an invalid verdict slashes it: refused too.
    n.staking.stake(&n.worker, n.token, SAGE, GpuTier::T4, 7_200).await.unwrap();
    let err = n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: stake unlocks early");
    n.staking.stake(&n.worker, n.token, SAGE, GpuTier::T4, 3_600 + 24 * 3_600 + 600).await.unwrap();
    // Only the coordinator assigns, and only with a lease.
    let err = n.jobs.assign(&n.other, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not coordinator");
    let err = n.jobs.assign(&n.owner, job, n.worker.address(), 0).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: zero lease");
    let out = n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap();
    let lease_until = n.jobs.lease_until(&n.client, job).await.unwrap();
    assert!((wall() + 500..=wall() + 700).contains(&lease_until), "lease {lease_until}");
    assert!(events_in(&out, n.jobs.address, JobEvent::decode).contains(&JobEvent::Assigned {
        job_id: job,
        worker: n.worker.address(),
        lease_until
    }));
    let j = n.jobs.get_job(&n.client, job).await.unwrap();
    assert_eq!((j.status, j.worker, j.payment), (JobStatus::Assigned, n.worker.address(), payment));
    let err = n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not open");
}

/// Job ids are scoped to the client: the same client job id from two clients gives two jobs, the
/// contract computes exactly `sage_protocol::job_id`, and nobody can occupy an id another client
/// is about to use.
#[tokio::test]
async fn job_ids_are_scoped_to_the_client_so_nobody_can_squat_one() {
    let n = net().await;
    let cj = Felt::from(0xc0ffee_u32);
    let deadline = wall() + 3_600;
    for who in [&n.client_acc, &n.other] {
        assert_eq!(
            n.jobs.job_id_of(&n.client, who.address(), cj).await.unwrap(),
            JobManager::job_id(who.address(), cj)
        );
    }
    // `other` escrows first under the same client job id: it gets its own job, not the client's.
    n.jobs.create_job(&n.other, n.token, cj, Felt::ONE, SAGE, deadline).await.unwrap();
    n.jobs.create_job(&n.client_acc, n.token, cj, Felt::TWO, 2 * SAGE, deadline).await.unwrap();
    let mine = n.jobs.get_job(&n.client, JobManager::job_id(n.client_acc.address(), cj)).await.unwrap();
    let theirs = n.jobs.get_job(&n.client, JobManager::job_id(n.other.address(), cj)).await.unwrap();
    assert_eq!((mine.client, mine.spec_hash, mine.payment), (n.client_acc.address(), Felt::TWO, 2 * SAGE));
    assert_eq!((theirs.client, theirs.spec_hash, theirs.payment), (n.other.address(), Felt::ONE, SAGE));
    // The raw client job id names no job.
    assert_eq!(n.jobs.get_job(&n.client, cj).await.unwrap().status, JobStatus::None);
}

/// Only the client cancels, only before assignment, and gets its escrow back exactly once; a
/// cancel is an exit and works while the JobManager is paused.
#[tokio::test]
async fn the_client_cancels_an_unassigned_job_and_is_refunded() {
    let n = net().await;
    staked_worker(&n, 100_000).await;
    let payment = 30 * SAGE;
    let start = n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let (a, b) = (id(&n, 20), id(&n, 21));
    for cj in [20u8, 21] {
        n.jobs.create_job(&n.client_acc, n.token, Felt::from(cj), Felt::ONE, payment, wall() + 3_600).await.unwrap();
    }
    let err = n.jobs.cancel(&n.other, a).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not client");
    let err = n.jobs.cancel(&n.owner, a).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not client", "not even the owner or coordinator");
    n.jobs.admin().pause(&n.owner).await.unwrap();
    let out = n.jobs.cancel(&n.client_acc, a).await.unwrap();
    assert!(events_in(&out, n.jobs.address, JobEvent::decode).contains(&JobEvent::Refunded {
        job_id: a,
        client: n.client_acc.address(),
        amount: payment,
        reason: short("cancelled")
    }));
    assert_eq!(n.jobs.get_job(&n.client, a).await.unwrap().status, JobStatus::Refunded);
    let err = n.jobs.cancel(&n.client_acc, a).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not open", "a second cancel refunds nothing");
    let err = n.jobs.assign(&n.owner, a, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: paused");
    n.jobs.admin().unpause(&n.owner).await.unwrap();
    let err = n.jobs.assign(&n.owner, a, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not open", "a cancelled job cannot be assigned");

    // Once assigned, the client can no longer pull the escrow from under the worker.
    n.jobs.assign(&n.owner, b, n.worker.address(), 600).await.unwrap();
    let err = n.jobs.cancel(&n.client_acc, b).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not open");
    assert_eq!(n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), start - payment);
    assert_eq!(n.token.balance_of(&n.client, n.jobs.address).await.unwrap(), payment);
}

/// `reassign` needs the coordinator, a lapsed lease, a different eligible worker and a deadline
/// still ahead; the first worker can no longer submit, and its reputation records the failure.
#[tokio::test]
async fn a_lapsed_lease_is_reassigned_and_the_first_worker_records_a_failure() {
    let n = net().await;
    staked_worker(&n, 100_000).await;
    let job = id(&n, 40);
    n.jobs.create_job(&n.client_acc, n.token, Felt::from(40u8), Felt::ONE, 20 * SAGE, wall() + 3_600).await.unwrap();
    let err = n.jobs.reassign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not assigned");
    n.jobs.assign(&n.owner, job, n.worker.address(), 300).await.unwrap();

    // `other` becomes a second eligible worker.
    n.staking.stake(&n.other, n.token, T4_MIN, GpuTier::T4, 100_000).await.unwrap();
    let err = n.jobs.reassign(&n.owner, job, n.other.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: lease active");
    n.devnet.increase_time(301).await.unwrap();
    let err = n.jobs.reassign(&n.owner, job, n.other.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: worker not registered");
    register_worker(
        &n.other,
        n.staking,
        &elgamal_key(2),
        TeeEvidence { quote_hash: Felt::from(0x5156u32), ..tee() },
        short("peer-o"),
    )
    .await
    .unwrap();
    let err = n.jobs.reassign(&n.other, job, n.other.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not coordinator");
    let err = n.jobs.reassign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: same worker");
    let err = n.jobs.reassign(&n.owner, job, n.other.address(), 0).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: zero lease");

    let out = n.jobs.reassign(&n.owner, job, n.other.address(), 600).await.unwrap();
    let lease_until = n.jobs.lease_until(&n.client, job).await.unwrap();
    assert_eq!(
        events_in(&out, n.jobs.address, JobEvent::decode),
        [JobEvent::Reassigned { job_id: job, worker: n.other.address(), previous: n.worker.address(), lease_until }]
    );
    let j = n.jobs.get_job(&n.client, job).await.unwrap();
    assert_eq!((j.status, j.worker), (JobStatus::Assigned, n.other.address()));
    assert_eq!(n.reputation.counts(&n.client, n.worker.address()).await.unwrap().failed, 1);
    // The first worker lost the job; the new one submits.
    let err = n.jobs.submit_result(&n.worker, job, Felt::ONE, Felt::TWO).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not assigned worker");
    n.jobs.submit_result(&n.other, job, Felt::ONE, Felt::TWO).await.unwrap();
    let err = n.jobs.reassign(&n.owner, job, n.worker.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not assigned", "a submitted job is never reassigned");

    // Past the deadline nothing is reassigned: the job expires and refunds instead.
    let late = id(&n, 41);
    n.jobs.create_job(&n.client_acc, n.token, Felt::from(41u8), Felt::ONE, 20 * SAGE, wall() + 3_600).await.unwrap();
    n.jobs.assign(&n.owner, late, n.worker.address(), 60).await.unwrap();
    n.devnet.increase_time(3_700).await.unwrap();
    let err = n.jobs.reassign(&n.owner, late, n.other.address(), 600).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: deadline passed");
}

#[tokio::test]
async fn only_the_assigned_worker_submits_and_a_missed_deadline_refunds_the_client() {
    let n = net().await;
    staked_worker(&n, 100_000).await;
    let (a, b, payment) = (id(&n, 10), id(&n, 11), 40 * SAGE);
    let deadline = wall() + 3_600;
    let start = n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    for (cj, job) in [(10u8, a), (11, b)] {
        n.jobs.create_job(&n.client_acc, n.token, Felt::from(cj), Felt::ONE, payment, deadline).await.unwrap();
        n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap();
    }
    let err = n.jobs.submit_result(&n.other, a, Felt::from(5u8), Felt::from(6u8)).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not assigned worker");
    let out = n.jobs.submit_result(&n.worker, a, Felt::from(5u8), Felt::from(6u8)).await.unwrap();
    assert!(events_in(&out, n.jobs.address, JobEvent::decode).contains(&JobEvent::ResultSubmitted {
        job_id: a,
        worker: n.worker.address(),
        output_commitment: Felt::from(5u8),
        proof_hash: Felt::from(6u8)
    }));
    let err = n.jobs.submit_result(&n.worker, a, Felt::from(5u8), Felt::from(6u8)).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not assigned");
    // Only the ProofVerifier delivers verdicts.
    let err = n.jobs.on_verdict(&n.owner, a, Felt::from(6u8), true).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not verifier");

    let err = n.jobs.refund_expired(&n.other, b).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not expired");
    n.devnet.increase_time(3_700).await.unwrap();
    let err = n.jobs.submit_result(&n.worker, b, Felt::ONE, Felt::ONE).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: deadline passed");
    n.jobs.refund_expired(&n.other, b).await.unwrap();
    assert_eq!(n.jobs.get_job(&n.client, b).await.unwrap().status, JobStatus::Refunded);
    let err = n.jobs.refund_expired(&n.other, b).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: finished");
    // A submitted job waits for its verdict during the grace period, which the coordinator
    // reads from storage (the contract has no getter).
    let grace = n.jobs.verdict_grace(&n.client).await.unwrap();
    assert_eq!(grace, 24 * 3600, "the deployment's default grace");
    let err = n.jobs.refund_expired(&n.other, a).await.unwrap_err();
    assert_eq!(reason(&err), "JOB: not expired");
    n.devnet.increase_time(grace).await.unwrap();
    n.jobs.refund_expired(&n.other, a).await.unwrap();
    assert_eq!(n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), start);
    let counts = n.reputation.counts(&n.client, n.worker.address()).await.unwrap();
    assert_eq!((counts.completed, counts.failed), (0, 1), "only the unsubmitted job counts as failed");
    n.jobs.set_verdict_grace(&n.owner, 90).await.unwrap();
    assert_eq!(n.jobs.verdict_grace(&n.client).await.unwrap(), 90);
}

/// Exits never depend on a pause or on a helper contract: with the JobManager and the
/// ReputationManager both paused, an expired assigned job still refunds its client (the failure
/// is simply not recorded while reputation is paused).
#[tokio::test]
async fn an_expired_job_refunds_while_jobs_and_reputation_are_paused() {
    let n = net().await;
    staked_worker(&n, 100_000).await;
    let (job, payment) = (id(&n, 12), 40 * SAGE);
    let start = n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    n.jobs.create_job(&n.client_acc, n.token, Felt::from(12u8), Felt::ONE, payment, wall() + 3_600).await.unwrap();
    n.jobs.assign(&n.owner, job, n.worker.address(), 600).await.unwrap();
    n.jobs.admin().pause(&n.owner).await.unwrap();
    n.reputation.admin().pause(&n.owner).await.unwrap();
    n.devnet.increase_time(3_700).await.unwrap();
    n.jobs.refund_expired(&n.other, job).await.unwrap();
    assert_eq!(n.jobs.get_job(&n.client, job).await.unwrap().status, JobStatus::Refunded);
    assert_eq!(n.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), start);
    assert_eq!(n.reputation.counts(&n.client, n.worker.address()).await.unwrap().failed, 0);
}

/// Issue 14 (item 5): a worker cannot present another worker's TEE quote or libp2p peer id as its
/// own; each belongs to the first worker that registered it (re-registering one's own is fine).
#[tokio::test]
async fn a_copied_quote_or_peer_id_is_refused() {
    let n = net().await;
    staked_worker(&n, 100_000).await;
    n.staking.stake(&n.other, n.token, T4_MIN, GpuTier::T4, 100_000).await.unwrap();
    register_worker(&n.worker, n.staking, &elgamal_key(1), tee(), short("peer-w")).await.unwrap();
    // The copier reuses the honest worker's quote hash with its own peer id...
    let err = register_worker(&n.other, n.staking, &elgamal_key(2), tee(), short("peer-o")).await.unwrap_err();
    assert!(err.to_string().contains("STAKE: quote already used"), "{err}");
    // ...or its own quote with the honest worker's peer id.
    let own_quote = TeeEvidence { quote_hash: Felt::from(0x0bu8), ..tee() };
    let err = register_worker(&n.other, n.staking, &elgamal_key(2), own_quote, short("peer-w")).await.unwrap_err();
    assert!(err.to_string().contains("STAKE: peer id taken"), "{err}");
    assert!(!n.staking.is_registered(&n.client, n.other.address()).await.unwrap());
    // With its own quote and peer id it registers; the honest worker re-registers with its own.
    register_worker(&n.other, n.staking, &elgamal_key(2), own_quote, short("peer-o")).await.unwrap();
    register_worker(&n.worker, n.staking, &elgamal_key(3), tee(), short("peer-w")).await.unwrap();
}
