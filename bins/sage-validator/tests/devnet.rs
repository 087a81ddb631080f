//! Four validators, a coordinator and a worker on a real devnet with the real contracts, over real
//! libp2p on loopback: the worker's result lands on-chain, every validator verifies the proof and
//! votes, a quorum certificate is submitted by the rotation's first validator, and the job is paid.
//! Nothing in the test signs a vote or submits a QC.

use std::time::Duration;

use sage_chain::{Felt, contracts::RecordedVerdict};
use sage_consensus::StarkKey;
use sage_coordinator::{
    Running,
    testing::{Api, Net, coordinator, escrow, net, worker},
};
use sage_protocol::{JobSpec, api::JobState};
use sage_validator::Settings;

struct Validators {
    running: Vec<sage_validator::Running>,
}

async fn validators(n: &Net, dir: &std::path::Path, running: &Running, api: &Api) -> Validators {
    let api_key_file = dir.join("api.key");
    std::fs::write(&api_key_file, &api.key).unwrap();
    let mut validators = Vec::new();
    let mut first_addr: Option<sage_net::Multiaddr> = None;
    for (i, (account, secret)) in n.validator_accounts.iter().enumerate() {
        let home = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let key_file = home.join("account.key");
        std::fs::write(&key_file, format!("{secret:#x}\n")).unwrap();
        let vote_key_file = home.join("vote.key");
        // The vote keys `Network` registered: 7000 + i.
        std::fs::write(&vote_key_file, format!("{:#x}\n", Felt::from(7_000 + i as u64))).unwrap();
        let settings = Settings {
            data_dir: home.join("data"),
            rpc_url: n.devnet.rpc_url().to_string(),
            manifest: dir.join("manifest.json"),
            account: account.address(),
            key_file,
            vote_key_file,
            coordinator_url: api.base.clone(),
            api_key_file: api_key_file.clone(),
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            bootstrap: first_addr.iter().map(ToString::to_string).chain([running.p2p_addr.to_string()]).collect(),
            network: sage_net::DEFAULT_NETWORK,
            insecure_proofs: true,
            round_timeout_ms: 120_000,
            tick: Duration::from_millis(300),
            submit_turn: Duration::from_secs(3),
        };
        let v = sage_validator::start(settings).await.unwrap();
        assert_eq!(v.index, i as u32);
        assert_eq!(v.vote_key, StarkKey::from_secret(Felt::from(7_000 + i as u64)).unwrap().public_key());
        first_addr.get_or_insert(v.p2p_addr.clone());
        validators.push(v);
    }
    Validators { running: validators }
}

/// A worker announces a proof of another computation and submits its hash on-chain anyway. The
/// coordinator refuses to store it, so the validators fetch it from the worker by its hash, find
/// it invalid, and certify `invalid`: the worker is slashed and the client refunded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_proof_is_certified_invalid_the_worker_slashed_and_the_client_refunded() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, api_key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, api_key);
    let vs = validators(&n, dir.path(), &running, &api).await;
    let mut w = worker(&n, 0, &running).await;
    let before = n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let job = escrow(&n, &api, 2, JobSpec::Matmul { n: 8, seed: Felt::from(4u8) }, 3_600).await;
    let a = w.next_assignment().await;
    let forged = sage_net::JobAssignment { request: JobSpec::Matmul { n: 8, seed: Felt::from(5u8) }, ..a.clone() };
    let (proof, output) = w.announce(&forged).await;
    n.contracts.jobs.submit_result(&w.account, job, output, proof).await.unwrap();
    let start = std::time::Instant::now();
    while n.contracts.verifier.verdict(&n.client, job).await.unwrap() == RecordedVerdict::None {
        assert!(start.elapsed() < Duration::from_secs(90), "no verdict: {:#?}", api.job(job).await.history);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(n.contracts.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Invalid);
    assert_eq!(
        n.contracts.jobs.get_job(&n.client, job).await.unwrap().status,
        sage_chain::contracts::JobStatus::Refunded
    );
    assert_eq!(n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), before);
    assert_eq!(n.contracts.reputation.counts(&n.client, w.account.address()).await.unwrap().slashed, 1);
    let view = api.until(job, JobState::Rejected, 30).await;
    assert!(view.history.iter().any(|t| t.state == JobState::Rejected && t.tx.is_some()), "{:#?}", view.history);
    drop(w.alive);
    for v in vs.running {
        v.shutdown().await;
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_validators_verify_vote_and_certify_a_result_which_then_gets_paid() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, api_key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, api_key.clone());
    let validators = validators(&n, dir.path(), &running, &api).await.running;

    let mut w = worker(&n, 0, &running).await;
    let job = escrow(&n, &api, 1, JobSpec::Matmul { n: 8, seed: Felt::from(3u8) }, 3_600).await;
    let a = w.next_assignment().await;
    assert_eq!(a.job_id, job);
    let proof = w.prove_and_submit(&n, &a).await;
    let view = api.until(job, JobState::Paid, 90).await;
    assert!(view.history.iter().any(|t| t.state == JobState::Certified && t.tx.is_some()), "{:#?}", view.history);
    assert_eq!(n.contracts.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Valid);
    assert_eq!(n.contracts.verifier.verdict_proof(&n.client, job).await.unwrap(), proof);
    // Each validator journaled at most one vote for the round, all `Valid`, and a quorum (3 of 4)
    // did (one may still be verifying when the QC lands; it needs no vote then).
    let mut voted = 0;
    for i in 0..validators.len() {
        let journal =
            std::fs::read_to_string(dir.path().join(format!("validator-{i}/data/votes.jsonl"))).unwrap_or_default();
        let lines: Vec<serde_json::Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.len() <= 1, "validator {i}: {journal}");
        if let Some(vote) = lines.first() {
            assert_eq!(vote["verdict"], "Valid", "validator {i}: {journal}");
            voted += 1;
        }
    }
    assert!(voted >= 3, "only {voted} validators voted");
    drop(w.alive);
    for v in validators {
        v.shutdown().await;
    }
    running.shutdown().await;
}

/// The owner installs a new validator set while the validators run: the same members but one, in
/// reverse order (so every index changes). The validators follow it without a restart: the next
/// job is certified under set version 2 by the three members left, and the validator that left
/// the set does not vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validators_follow_a_new_set_without_a_restart_and_a_removed_member_stops_voting() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, api_key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, api_key.clone());
    let validators = validators(&n, dir.path(), &running, &api).await.running;
    let (first_version, _, _) = n.contracts.verifier.validator_set(&n.client).await.unwrap();

    let kept: Vec<(Felt, Felt)> =
        (0..3).rev().map(|i| (n.validator_keys[i].public_key(), n.validator_accounts[i].0.address())).collect();
    n.contracts.verifier.set_validators(&n.owner, &kept).await.unwrap();
    let (version, size, threshold) = n.contracts.verifier.validator_set(&n.client).await.unwrap();
    assert_eq!((version, size, threshold), (first_version + 1, 3, 3));
    // The validators poll the set every tick (300 ms); give them a few.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut w = worker(&n, 0, &running).await;
    let job = escrow(&n, &api, 1, JobSpec::Matmul { n: 8, seed: Felt::from(5u8) }, 3_600).await;
    let a = w.next_assignment().await;
    assert_eq!(a.job_id, job);
    let proof = w.prove_and_submit(&n, &a).await;
    api.until(job, JobState::Paid, 90).await;
    assert_eq!(n.contracts.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Valid);
    assert_eq!(n.contracts.verifier.verdict_proof(&n.client, job).await.unwrap(), proof);
    // A QC under version 2 needs all three remaining members (threshold 3 of 3): each voted
    // once; the removed validator 3 verified nothing and voted for nothing.
    for i in 0..4 {
        let journal =
            std::fs::read_to_string(dir.path().join(format!("validator-{i}/data/votes.jsonl"))).unwrap_or_default();
        let votes = journal.lines().count();
        if i == 3 {
            assert_eq!(votes, 0, "the removed validator voted: {journal}");
        } else {
            assert_eq!(votes, 1, "validator {i}: {journal}");
        }
    }
    drop(w.alive);
    for v in validators {
        v.shutdown().await;
    }
    running.shutdown().await;
}
