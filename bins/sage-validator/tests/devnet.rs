//! Four validators, a coordinator and a worker on a real devnet with the real contracts, over real
//! libp2p on loopback: the worker's result lands on-chain, every validator verifies the proof and
//! votes, a quorum certificate is submitted by the rotation's first validator, and the job is paid.
//! Nothing in the test signs a vote or submits a QC.

use std::time::Duration;

use sage_chain::{Felt, contracts::RecordedVerdict};
use sage_coordinator::testing::{Api, coordinator, escrow, net, worker};
use sage_protocol::{JobSpec, api::JobState};

mod common;

use common::{BRIDGE_LIMIT, free_ports, validators, validators_at};

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

/// `POST /v1/validate` against a job on a real devnet: every answer is a vote that checks against
/// the on-chain set and domain, it is journaled like a round's vote (so the round later repeats it
/// without judging again), and what cannot be judged gets a typed refusal and no vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bridge_answers_with_a_vote_checkable_against_the_chain_and_refuses_what_it_cannot_judge() {
    use sage_consensus::{
        RoundId, Verdict, VoteDomain,
        bridge::{ValidateRequest, ValidateResponse},
    };
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, api_key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, api_key.clone());
    let validators = validators(&n, dir.path(), &running, &api).await.running;
    let bridge = format!("http://{}/v1/validate", validators[0].bridge_addr.unwrap());
    let http = reqwest::Client::new();
    let ask = |body: serde_json::Value| {
        let (http, bridge) = (http.clone(), bridge.clone());
        async move {
            let r = http.post(&bridge).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let request = |job: Felt, spec: &JobSpec, bytes: &[u8]| {
        serde_json::to_value(ValidateRequest { job_id: job, spec: spec.clone(), envelope: bytes.to_vec() }).unwrap()
    };
    let domain = VoteDomain { chain_id: n.client.chain_id(), verifier: n.contracts.verifier.address };
    let (_, members) = n.contracts.verifier.members(&n.client).await.unwrap();

    let mut w = worker(&n, 0, &running).await;
    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(3u8) };
    let job = escrow(&n, &api, 1, spec.clone(), 3_600).await;
    let a = w.next_assignment().await;
    let start = std::time::Instant::now();
    while n.contracts.jobs.get_job(&n.client, job).await.unwrap().status != sage_chain::contracts::JobStatus::Assigned {
        assert!(start.elapsed() < Duration::from_secs(30), "never assigned on-chain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let good = w.prove(&a).await;
    let forged = w
        .prove(&sage_net::JobAssignment { request: JobSpec::Matmul { n: 8, seed: Felt::from(5u8) }, ..a.clone() })
        .await;

    // Refusals, each naming what was wrong; none signs anything.
    let (status, body) = ask(request(Felt::from(12_345u32), &spec, &good.bytes)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = ask(request(job, &JobSpec::Matmul { n: 8, seed: Felt::from(4u8) }, &good.bytes)).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("spec_hash_mismatch")), "{body}");
    let (status, body) = ask(request(job, &spec, b"not an envelope")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed_body")), "{body}");
    let (status, body) = ask(serde_json::json!({ "job_id": "0x1" })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed_body")), "{body}");
    let r = http
        .post(&bridge)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * BRIDGE_LIMIT])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let journal = dir.path().join("validator-0/data/votes.jsonl");
    assert_eq!(std::fs::read_to_string(&journal).unwrap_or_default(), "", "a refusal journaled a vote");

    // A proof of another computation: a signed `invalid`, naming why.
    let (status, body) = ask(request(job, &spec, &forged.bytes)).await;
    assert_eq!(status, 200, "{body}");
    let answer: ValidateResponse = serde_json::from_value(body).unwrap();
    let forged_round = RoundId { job_id: job, proof_hash: forged.proof_hash };
    assert_eq!(answer.check(&domain, &members, forged_round), Ok(Verdict::Invalid));
    assert!(answer.reason.is_some());

    // The real proof: a signed `valid` from a member of the on-chain set.
    let (status, body) = ask(request(job, &spec, &good.bytes)).await;
    assert_eq!(status, 200, "{body}");
    let answer: ValidateResponse = serde_json::from_value(body).unwrap();
    let round = RoundId { job_id: job, proof_hash: good.proof_hash };
    assert_eq!(answer.check(&domain, &members, round), Ok(Verdict::Valid));
    assert_eq!((answer.index, answer.security_bits.is_some()), (0, true));
    // The same answer checked for the other round, or against another deployment, is refused.
    assert!(answer.check(&domain, &members, forged_round).is_err());
    assert!(answer.check(&VoteDomain { verifier: Felt::ONE, ..domain }, &members, round).is_err());
    assert_eq!(std::fs::read_to_string(&journal).unwrap().lines().count(), 2, "both bridge votes journaled");

    // The result goes on-chain: the round certifies it, validator 0 repeats its journaled vote
    // (one line for the round, not two), and other bytes for the job are now a conflict.
    let (proof, _) = w.announce(&a).await;
    assert_eq!(proof, good.proof_hash);
    n.contracts.jobs.submit_result(&w.account, job, good.output, good.proof_hash).await.unwrap();
    let (status, body) = ask(request(job, &spec, &forged.bytes)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")), "{body}");
    api.until(job, JobState::Paid, 90).await;
    assert_eq!(n.contracts.verifier.verdict(&n.client, job).await.unwrap(), RecordedVerdict::Valid);
    let lines: Vec<String> = std::fs::read_to_string(&journal).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Settled: nothing more is judged for the job.
    let (status, body) = ask(request(job, &spec, &good.bytes)).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("invalid_state")), "{body}");
    drop(w.alive);
    for v in validators {
        v.shutdown().await;
    }
    running.shutdown().await;
}

/// The coordinator asks the validators' bridges before it stores a proof: the first configured
/// bridge is down, so it falls back to the next, validator 2, whose journaled vote the round later
/// repeats. A forged proof gets validator 2's signed `invalid`, confirmed by the coordinator, and
/// the result is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_coordinator_asks_the_next_validator_bridge_when_one_is_down_and_refuses_what_it_judges_invalid() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(5);
    let dead = format!("http://127.0.0.1:{}", ports[4]);
    let second = format!("http://127.0.0.1:{}", ports[2]);
    let (running, api_key) = sage_coordinator::testing::coordinator_with(&n, dir.path(), 60, |s| {
        s.validator_bridges = vec![dead.clone(), second.clone()];
    })
    .await;
    let api = Api::new(&running, api_key.clone());
    let validators = validators_at(&n, dir.path(), &running, &api, &ports[..4]).await.running;
    let journal = |i: usize| {
        std::fs::read_to_string(dir.path().join(format!("validator-{i}/data/votes.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };

    let mut w = worker(&n, 0, &running).await;
    let job = escrow(&n, &api, 1, JobSpec::Matmul { n: 8, seed: Felt::from(3u8) }, 3_600).await;
    let a = w.next_assignment().await;
    // Announced, not yet on-chain: the coordinator stores the proof once validator 2 vouches for it.
    let (proof, output) = w.announce(&a).await;
    let start = std::time::Instant::now();
    loop {
        let r =
            api.http.get(format!("{}/v1/jobs/{job:#x}/proof", api.base)).bearer_auth(&api.key).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the proof was never stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let vouched = journal(2);
    assert_eq!(vouched.len(), 1, "{vouched:?}");
    assert_eq!(vouched[0]["verdict"], "Valid");
    for i in [0, 1, 3] {
        assert!(journal(i).is_empty(), "validator {i} was asked: {:?}", journal(i));
    }
    n.contracts.jobs.submit_result(&w.account, job, output, proof).await.unwrap();
    api.until(job, JobState::Paid, 90).await;
    assert_eq!(journal(2).len(), 1, "the round repeated the bridge vote: {:?}", journal(2));

    // A forged proof for a second job: validator 2 signs `invalid`, the coordinator refuses it.
    let second_job = escrow(&n, &api, 2, JobSpec::Matmul { n: 8, seed: Felt::from(6u8) }, 3_600).await;
    let b = w.next_assignment().await;
    assert_eq!(b.job_id, second_job);
    let forged = sage_net::JobAssignment { request: JobSpec::Matmul { n: 8, seed: Felt::from(7u8) }, ..b.clone() };
    let (forged_proof, _) = w.announce(&forged).await;
    let start = std::time::Instant::now();
    let refused = loop {
        let view = api.job(second_job).await;
        if let Some(t) =
            view.history.iter().find(|t| t.detail.as_deref().is_some_and(|d| d.contains("does not verify")))
        {
            break t.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never refused: {:#?}", view.history);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(refused.detail.unwrap().contains("refused"));
    let votes = journal(2);
    let last = votes.last().unwrap();
    assert_eq!((last["verdict"].as_str(), votes.len()), (Some("Invalid"), 2), "{votes:?}");
    assert_eq!(last["round"]["proof_hash"], serde_json::to_value(forged_proof).unwrap());
    drop(w.alive);
    for v in validators {
        v.shutdown().await;
    }
    running.shutdown().await;
}
