//! The coordinator against a real starknet-devnet with the real contracts, real libp2p on
//! loopback and real Stwo proofs: a job goes `Submitted → … → Paid` with the payment on-chain, a
//! worker that goes silent is replaced by `reassign`, and a job nobody can take expires and is
//! refunded.
//!
//! The workers here are libp2p nodes driven by the test with the worker accounts' keys (they prove
//! with `obelysk-prover` and call `submit_result` themselves, as `sage-worker` will once its chain
//! commands land); the verdict is a quorum certificate signed with `sage-consensus` by staked,
//! registered validators. The devnet binary comes from `cargo xtask tools`; without it these
//! tests fail with the install instruction rather than skipping.

use std::{path::Path, time::Duration};

use sage_chain::{
    Felt, SAGE,
    contracts::{JobStatus, PaymentEvent},
};
use sage_consensus::{StarkKey, Verdict};
use sage_coordinator::testing::{
    Api, CoordinatorAddr, Net, coordinator, escrow, net, settings, wall, worker, worker_at,
};
use sage_net::JobAssignment;
use sage_protocol::{JobSpec, api::JobState};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_goes_from_submitted_to_paid_with_the_payment_on_chain() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, key);
    let mut w = worker(&n, 0, &running).await;

    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(42u8) };
    let job = escrow(&n, &api, 1, spec, 3_600).await;
    let a = w.next_assignment().await;
    assert_eq!((a.job_id, a.worker), (job, w.account.address()));
    let on_chain = n.contracts.jobs.get_job(&n.client, job).await.unwrap();
    assert_eq!((on_chain.status, on_chain.worker), (JobStatus::Assigned, w.account.address()));
    api.until(job, JobState::Proving, 30).await;

    let proof = w.prove_and_submit(&n, &a).await;
    let view = api.until(job, JobState::ResultSubmitted, 30).await;
    assert_eq!(view.proof_hash, Some(proof));
    // The coordinator fetched the envelope from the worker, verified it and serves it.
    let start = std::time::Instant::now();
    loop {
        let r =
            api.http.get(format!("{}/v1/jobs/{job:#x}/proof", api.base)).bearer_auth(&api.key).send().await.unwrap();
        if r.status() == 200 {
            let bytes = r.bytes().await.unwrap();
            assert_eq!(sage_consensus::proof_hash_felt(&obelysk_prover::proof_hash(&bytes).unwrap().0), proof);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the proof was never stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The validators' votes are gossiped; the coordinator shows them as progress. A vote signed
    // by a key outside the set, or for another proof, is not counted.
    let domain = sage_consensus::VoteDomain { chain_id: n.client.chain_id(), verifier: n.contracts.verifier.address };
    let vote = |key: &StarkKey, proof_hash: Felt| {
        let signature = sage_consensus::sign_vote(key, &domain, job, proof_hash, Verdict::Valid).unwrap();
        let v = sage_consensus::SignedVote {
            round: sage_consensus::RoundId { job_id: job, proof_hash },
            verdict: Verdict::Valid,
            validator: key.public_key(),
            signature,
        };
        sage_net::SignedMessage::sign(w.node.network(), sage_net::Topic::Votes, serde_json::to_vec(&v).unwrap(), key)
            .unwrap()
    };
    let stranger = StarkKey::from_random().unwrap();
    for m in
        [vote(&stranger, proof), vote(&n.validator_keys[0], Felt::from(0xbadu32)), vote(&n.validator_keys[0], proof)]
    {
        w.node.publish_when_ready(&m, Duration::from_secs(30)).await.unwrap();
    }
    api.until(job, JobState::Voting, 30).await;
    // Time for the other two messages to arrive too: only the member's vote counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let voting = api.job(job).await;
    let needed = 2 * n.validator_keys.len() / 3 + 1;
    let counted: Vec<_> = voting.history.iter().filter(|t| t.state == JobState::Voting).collect();
    assert_eq!(counted.len(), 1, "{:?}", voting.history);
    assert_eq!(counted[0].detail.as_deref(), Some(format!("1 of {needed} votes").as_str()));

    n.certify(job, proof, Verdict::Valid).await;
    let view = api.until(job, JobState::Paid, 60).await;
    let states: Vec<JobState> = view.history.iter().map(|t| t.state).collect();
    for s in [
        JobState::Submitted,
        JobState::Escrowed,
        JobState::Queued,
        JobState::Assigned,
        JobState::Proving,
        JobState::ResultSubmitted,
        JobState::Voting,
        JobState::Certified,
        JobState::Paid,
    ] {
        assert!(states.contains(&s), "{s} missing from {states:?}");
    }
    assert!(n.contracts.payments.is_paid(&n.client, job).await.unwrap());
    let paid_tx = view.history.last().unwrap().tx.expect("the payment transaction");
    let receipt = n.client.wait_for_receipt(paid_tx).await.unwrap();
    let outcome = sage_chain::TxOutcome { tx_hash: paid_tx, receipt };
    let events = sage_chain::contracts::events_in(&outcome, n.contracts.payments.address, PaymentEvent::decode);
    assert!(
        events.iter().any(|e| matches!(e, PaymentEvent::PaymentSubmitted { job_id, worker, .. }
            if *job_id == job && *worker == w.account.address())),
        "{events:?}"
    );
    drop(w.alive);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_worker_is_replaced_by_reassign_and_the_job_still_completes() {
    let n = net(2).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 3).await;
    let api = Api::new(&running, key);
    let mut first = worker(&n, 0, &running).await;
    // Only the first worker is up when the job is queued, so it gets the job.
    let job = escrow(&n, &api, 2, JobSpec::Matmul { n: 8, seed: Felt::from(7u8) }, 3_600).await;
    let a = first.next_assignment().await;
    assert_eq!(a.job_id, job);
    api.until(job, JobState::Proving, 30).await;
    // It goes silent (as if SIGKILLed); a second worker comes up.
    first.alive.send(false).unwrap();
    let mut second = worker(&n, 1, &running).await;
    let b = second.next_assignment().await;
    assert_eq!((b.job_id, b.worker), (job, second.account.address()));
    let on_chain = n.contracts.jobs.get_job(&n.client, job).await.unwrap();
    assert_eq!((on_chain.status, on_chain.worker), (JobStatus::Assigned, second.account.address()));
    assert_eq!(
        n.contracts.reputation.counts(&n.client, first.account.address()).await.unwrap().failed,
        1,
        "the first worker's reputation records the lapse"
    );
    let view = api.job(job).await;
    assert_eq!(view.attempts, 2);
    // The first worker's late result is refused on-chain; the second completes.
    let proof = second.prove_and_submit(&n, &b).await;
    n.certify(job, proof, Verdict::Valid).await;
    api.until(job, JobState::Paid, 60).await;
    assert!(n.contracts.payments.is_paid(&n.client, job).await.unwrap());
    drop(second.alive);
    running.shutdown().await;
}

/// Found by `cargo xtask load` with 1,000 workers: an assignment lost in gossip left its job
/// `Proving` forever, because any heartbeat of the worker counted as acknowledging every job it
/// held. Now a heartbeat acknowledges only the jobs it lists: an unlisted assignment is sent again
/// and its lease is not extended, so the job moves on to another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_assignment_the_worker_never_acknowledges_is_resent_then_reassigned() {
    let n = net(2).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 4).await;
    let api = Api::new(&running, key);
    let mut deaf = worker(&n, 0, &running).await;
    // Alive and heartbeating, but its heartbeats list no job: as if every assignment were lost.
    deaf.acknowledge.store(false, std::sync::atomic::Ordering::SeqCst);
    let job = escrow(&n, &api, 3, JobSpec::Matmul { n: 8, seed: Felt::from(9u8) }, 3_600).await;
    let first = deaf.next_assignment().await;
    assert_eq!(first.job_id, job);
    // The coordinator sends it again on the worker's next heartbeat, and never calls it Proving.
    let again = deaf.next_assignment().await;
    assert_eq!((again.job_id, again.worker), (job, deaf.account.address()));
    assert_eq!(api.job(job).await.state, JobState::Assigned);
    // A worker that acknowledges comes up; once the lease lapses the job is reassigned to it,
    // though the first one still heartbeats.
    let mut second = worker(&n, 1, &running).await;
    let b = loop {
        let b = second.next_assignment().await;
        if b.job_id == job {
            break b;
        }
    };
    assert_eq!(b.worker, second.account.address());
    api.until(job, JobState::Proving, 30).await;
    let proof = second.prove_and_submit(&n, &b).await;
    n.certify(job, proof, Verdict::Valid).await;
    let view = api.until(job, JobState::Paid, 60).await;
    assert_eq!(view.attempts, 2);
    assert!(
        view.history.iter().all(|t| t.state != JobState::Proving
            || t.at_ms
                >= view.history.iter().filter(|t| t.state == JobState::Assigned).map(|t| t.at_ms).max().unwrap_or(0)),
        "the unacknowledged attempt was never Proving: {:#?}",
        view.history
    );
    drop(deaf.alive);
    drop(second.alive);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_nobody_can_take_expires_and_is_refunded() {
    let n = net(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, key);
    let before = n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let job = escrow(&n, &api, 3, JobSpec::Matmul { n: 8, seed: Felt::ONE }, 12).await;
    api.until(job, JobState::Queued, 10).await;
    // No worker exists; once the deadline passes the job expires and the coordinator itself
    // calls refund_expired.
    let start = std::time::Instant::now();
    let view = loop {
        let view = api.job(job).await;
        if view.history.last().is_some_and(|t| t.tx.is_some()) {
            break view;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never refunded: {:#?}", view.history);
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(view.state, JobState::Expired, "{:#?}", view.history);
    assert_eq!(n.contracts.jobs.get_job(&n.client, job).await.unwrap().status, JobStatus::Refunded);
    assert_eq!(n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), before);
    running.shutdown().await;
}

/// `sage-coordinator start` as a real process with a config file; its first stdout line (JSON)
/// says where it listens.
struct Process {
    child: tokio::process::Child,
    api: String,
    p2p: String,
}

async fn spawn_coordinator(config: &Path, log: &Path) -> Process {
    use tokio::io::AsyncBufReadExt;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sage-coordinator"))
        .args(["--json", "start", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,libp2p=warn")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the coordinator starts within 60 s")
        .unwrap()
        .expect("a start line");
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(started["event"], "started", "{line}");
    Process {
        child,
        api: started["api"].as_str().unwrap().to_owned(),
        p2p: started["p2p"].as_str().unwrap().to_owned(),
    }
}

/// The config file; with `postgres`, the store is on that database (its URL in a file beside).
fn write_config_on(n: &Net, dir: &Path, postgres: Option<&str>) -> std::path::PathBuf {
    let s = settings(n, dir, 60);
    let config = dir.join("coordinator.toml");
    let store = match postgres {
        Some(url) => {
            std::fs::write(dir.join("database.url"), url).unwrap();
            "[store]\npostgres_url_file = \"database.url\"\n"
        }
        None => "",
    };
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "data"
[api]
listen = "127.0.0.1:0"
[chain]
rpc_url = "{}"
manifest = "manifest.json"
account = "{:#x}"
key_file = "coordinator.key"
[network]
listen = "/ip4/127.0.0.1/tcp/0"
[jobs]
lease_secs = 60
min_lead_secs = 5
heartbeat_window_secs = 3
tick_ms = 200
proof_security = "test"
tee_policy = "development"
[pricing]
base = "{}"
per_million_units = "0"
{store}"#,
            s.rpc_url, s.account, SAGE
        ),
    )
    .unwrap();
    config
}

/// A coordinator SIGKILLed mid-flight and started again from its store and the chain completes
/// every job and pays each exactly once (counted in the PaymentRouter's events).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_killed_mid_flight_pays_every_job_exactly_once_after_restart() {
    killed_mid_flight(None).await;
}

/// The same with the store on a real PostgreSQL server (a fresh database on the server
/// `SAGE_TEST_POSTGRES_URL` names; `cargo xtask test` starts one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_coordinator_killed_mid_flight_pays_every_job_exactly_once() {
    let base = std::env::var("SAGE_TEST_POSTGRES_URL")
        .expect("SAGE_TEST_POSTGRES_URL is not set: run the tests through `cargo xtask test`, which starts PostgreSQL");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("sage_test_coord_{}_{nanos}", std::process::id());
    let url = sage_jobs::store::SqlStore::create_postgres_database(&base, &name).await.unwrap();
    killed_mid_flight(Some(url)).await;
}

async fn killed_mid_flight(postgres: Option<String>) {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_on(&n, dir.path(), postgres.as_deref());
    let log = dir.path().join("coordinator.log");
    // An API key from the operator command (its secret is printed once, on stdout).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sage-coordinator"))
        .args(["--json", "api-key", "create", "--name", "restart test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_owned();

    let mut first = spawn_coordinator(&config, &log).await;
    let api = Api { base: first.api.clone(), key: key.clone(), http: reqwest::Client::new() };
    let public_key = StarkKey::from_secret(n.owner_secret).unwrap().public_key();
    let mut w = worker_at(&n, 0, &CoordinatorAddr { p2p_addr: first.p2p.parse().unwrap(), public_key }).await;

    let jobs = [
        escrow(&n, &api, 11, JobSpec::Matmul { n: 8, seed: Felt::from(11u8) }, 3_600).await,
        escrow(&n, &api, 12, JobSpec::Matmul { n: 8, seed: Felt::from(12u8) }, 3_600).await,
    ];
    let mut proofs = Vec::new();
    for _ in jobs {
        let a = w.next_assignment().await;
        let proof = w.prove_and_submit(&n, &a).await;
        proofs.push((a.job_id, proof));
    }
    proofs.sort_by_key(|(j, _)| jobs.iter().position(|x| x == j));
    n.certify(proofs[0].0, proofs[0].1, Verdict::Valid).await;
    api.until(jobs[0], JobState::Paid, 60).await;
    // The second verdict lands and the coordinator dies at once, before or while it pays.
    n.certify(proofs[1].0, proofs[1].1, Verdict::Valid).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();

    let second = spawn_coordinator(&config, &log).await;
    let api = Api { base: second.api.clone(), key, http: reqwest::Client::new() };
    for job in jobs {
        api.until(job, JobState::Paid, 60).await;
    }
    for job in jobs {
        let count = n.contracts.payments.payments_for(&n.client, job).await.unwrap();
        assert_eq!(count, 1, "job {job:#x} paid {count} times");
    }
    drop(w.alive);
}

/// What a malicious client or worker can try against the coordinator, and why each fails:
/// - an escrow that underpays the quote (or names another spec) is rejected, never assigned;
/// - a worker that does not hold the lease announces a result: refused, nothing stored;
/// - the lease holder announces a proof that does not verify for this job and worker: refused,
///   nothing stored, and the job goes back to the queue for another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_escrows_foreign_results_and_invalid_proofs_are_refused() {
    let n = net(2).await;
    let dir = tempfile::tempdir().unwrap();
    // A short lease: a job refused by its holder is reassigned only once the on-chain lease ends.
    let (running, key) = coordinator(&n, dir.path(), 5).await;
    let api = Api::new(&running, key);

    // Underpaid: the quote is 1 SAGE (test pricing); the client escrows 1 base unit.
    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(5u8) };
    let cheap = api.submit(n.client_acc.address(), Felt::from(21u8), spec.clone()).await.id;
    n.contracts
        .jobs
        .create_job(&n.client_acc, n.contracts.token, Felt::from(21u8), spec.spec_hash(), 1, wall() + 3_600)
        .await
        .unwrap();
    let view = api.until(cheap, JobState::Rejected, 30).await;
    assert!(view.history.last().unwrap().detail.as_deref().unwrap().contains("below the quote"), "{:?}", view.history);
    // Another spec than the one uploaded.
    let other = api.submit(n.client_acc.address(), Felt::from(22u8), spec.clone()).await.id;
    let wrong = JobSpec::Matmul { n: 16, seed: Felt::from(5u8) }.spec_hash();
    n.contracts
        .jobs
        .create_job(&n.client_acc, n.contracts.token, Felt::from(22u8), wrong, 2 * SAGE, wall() + 3_600)
        .await
        .unwrap();
    let view = api.until(other, JobState::Rejected, 30).await;
    assert!(view.history.last().unwrap().detail.as_deref().unwrap().contains("spec hash"), "{:?}", view.history);

    let mut holder = worker(&n, 0, &running).await;
    let job = escrow(&n, &api, 23, spec, 3_600).await;
    let a = holder.next_assignment().await;
    assert_eq!(a.job_id, job);
    api.until(job, JobState::Proving, 30).await;
    let mut intruder = worker(&n, 1, &running).await;
    // The intruder proves the job for itself and announces it: not the lease holder.
    let stolen = JobAssignment { worker: intruder.account.address(), ..a.clone() };
    intruder.announce(&stolen).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let proof_url = format!("{}/v1/jobs/{job:#x}/proof", api.base);
    let r = api.http.get(&proof_url).bearer_auth(&api.key).send().await.unwrap();
    assert_eq!(r.status(), 404, "a non-holder's proof must not be stored");
    assert_eq!(api.job(job).await.state, JobState::Proving);

    // The holder announces a proof of another computation (another seed): it does not verify
    // for this job, so the job is requeued and the intruder, now eligible, gets it.
    let forged = JobAssignment { request: JobSpec::Matmul { n: 8, seed: Felt::from(6u8) }, ..a.clone() };
    holder.announce(&forged).await;
    let b = intruder.next_assignment().await;
    assert_eq!((b.job_id, b.worker), (job, intruder.account.address()));
    let view = api.job(job).await;
    assert!(
        view.history.iter().any(|t| t.detail.as_deref().is_some_and(|d| d.contains("does not verify"))),
        "{:#?}",
        view.history
    );
    let r = api.http.get(&proof_url).bearer_auth(&api.key).send().await.unwrap();
    assert_eq!(r.status(), 404, "an invalid proof must not be stored");
    drop((holder.alive, intruder.alive));
    running.shutdown().await;
}

/// The client commands as a real process with the client's key in a file: `submit-job` uploads
/// the spec and escrows it from the client's own account; `cancel-job` cancels it on-chain before
/// assignment and the escrow comes back; the coordinator records both, with the refund
/// transaction; a second cancel is refused and refunds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_submits_and_cancels_from_the_cli_and_is_refunded() {
    let n = net(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, key.clone());
    let before = n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let key_file = dir.path().join("client.key");
    std::fs::write(&key_file, format!("{:#x}\n", n.client_secret)).unwrap();
    let client = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sage-coordinator"))
            .args(args)
            .args(["--url", &api.base, "--rpc-url", n.devnet.rpc_url().as_str(), "--manifest"])
            .arg(dir.path().join("manifest.json"))
            .args(["--account", &format!("{:#x}", n.client_acc.address()), "--key-file"])
            .arg(&key_file)
            .env("SAGE_API_KEY", &key)
            .output()
            .unwrap()
    };
    let out = client(&["--json", "submit-job", "--size", "8", "--seed", "0x1f", "--client-job-id", "0x31"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let submitted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = Felt::from_hex(submitted["job"].as_str().unwrap()).unwrap();
    assert_eq!(job, sage_protocol::job_id(n.client_acc.address(), Felt::from(0x31u8)));
    // The escrow is the quote (1 SAGE in the test pricing), paid by the client's own account.
    assert_eq!(submitted["payment"], SAGE.to_string());
    assert_eq!(n.contracts.jobs.get_job(&n.client, job).await.unwrap().client, n.client_acc.address());
    api.until(job, JobState::Queued, 30).await;

    let out = client(&["--json", "cancel-job", &format!("{job:#x}")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["cancelled"].as_bool(), Some(true));
    assert!(printed["refund_tx"].as_str().is_some_and(|t| t.starts_with("0x")), "{printed}");
    assert_eq!(n.contracts.jobs.get_job(&n.client, job).await.unwrap().status, JobStatus::Refunded);
    assert_eq!(n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), before);
    let start = std::time::Instant::now();
    let view = loop {
        let view = api.job(job).await;
        if view.history.last().is_some_and(|t| t.tx.is_some() && t.state == JobState::Cancelled) {
            break view;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{:#?}", view.history);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view.state, JobState::Cancelled);
    let again = client(&["cancel-job", &format!("{job:#x}")]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("JOB: not open"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), before);

    // The other shapes from files: the client's own matrices (uploaded as blobs, named by
    // digest) and VM programs in their text form; each is escrowed and queued.
    let a: Vec<u8> = (0..64u32).flat_map(|v| (v * 5 + 2).to_le_bytes()).collect();
    let b: Vec<u8> = (0..64u32).flat_map(|v| (v % 9).to_le_bytes()).collect();
    let files = dir.path();
    std::fs::write(files.join("a.u32le"), &a).unwrap();
    std::fs::write(files.join("b.u32le"), &b).unwrap();
    std::fs::write(files.join("short.u32le"), &a[..60]).unwrap();
    std::fs::write(files.join("prog.vm"), "# r2 = r0 * r1 + 5\nmul r2 r0 r1\naddi r2 r2 5\n").unwrap();
    std::fs::write(files.join("loop.vm"), "jnz r0 2\nhalt\naddi r0 r0 2147483646\njmp 0\n").unwrap();
    std::fs::write(files.join("bad.vm"), "mul r2 r0 r9\n").unwrap();
    std::fs::write(files.join("forever.vm"), "addi r0 r0 1\njmp 0\n").unwrap();
    std::fs::write(files.join("away.vm"), "jmp 5\nhalt\n").unwrap();
    let path = |f: &str| files.join(f).display().to_string();
    let (a_path, b_path, short, prog, looping, bad) =
        (path("a.u32le"), path("b.u32le"), path("short.u32le"), path("prog.vm"), path("loop.vm"), path("bad.vm"));
    let (forever, away) = (path("forever.vm"), path("away.vm"));
    let cases: [(&[&str], &str); 3] = [
        (&["--size", "8", "--a", &a_path, "--b", &b_path, "--client-job-id", "0x41"], "matmul_data"),
        (&["--type", "vm", "--program", &prog, "--inputs", "3,4", "--client-job-id", "0x42"], "vm"),
        (
            &[
                "--type",
                "vm-jump",
                "--program",
                &looping,
                "--inputs",
                "2",
                "--max-steps",
                "64",
                "--client-job-id",
                "0x43",
            ],
            "vm_jump",
        ),
    ];
    for (args, wire_type) in cases {
        let out = client(&[&["--json", "submit-job"][..], args].concat());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let job = Felt::from_hex(printed["job"].as_str().unwrap()).unwrap();
        let view = api.until(job, JobState::Queued, 30).await;
        let spec = serde_json::to_value(&view.spec).unwrap();
        assert_eq!(spec["type"], wire_type, "{spec}");
        assert_eq!(n.contracts.jobs.get_job(&n.client, job).await.unwrap().spec_hash, view.spec.spec_hash());
    }
    let sha = |bytes: &[u8]| -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    };
    let queued = api.job(sage_protocol::job_id(n.client_acc.address(), Felt::from(0x41u8))).await;
    assert_eq!(queued.spec, JobSpec::MatmulData { n: 8, a: sha(&a), b: sha(&b) });
    // Bad files are refused before anything is uploaded as a job or escrowed.
    for (args, mention) in [
        (vec!["--size", "8", "--a", &short, "--b", &b_path], "60 bytes"),
        (vec!["--size", "8", "--a", &a_path], "--b"),
        (vec!["--type", "vm", "--program", &bad], "register 9"),
        (vec!["--type", "vm", "--program", &looping], "control flow"),
        (vec!["--type", "vm", "--program", &prog, "--inputs", "1,2,3,4,5"], "at most 4"),
        (vec!["--type", "vm-jump", "--program", &looping, "--max-steps", "100000"], "max_steps"),
        // The coordinator runs a program before taking it: one that never halts is refused, so no
        // worker is assigned a job it cannot prove (and charged on-chain with its failure).
        (vec!["--type", "vm-jump", "--program", &forever, "--max-steps", "64"], "did not halt within 64 steps"),
        (vec!["--type", "vm-jump", "--program", &away], "outside the program"),
    ] {
        let out = client(&[&["submit-job"][..], &args[..]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(mention), "{args:?}: {err}");
    }
    let escrowed = n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    assert_eq!(escrowed, before - 3 * SAGE, "only the three good jobs were escrowed");
    running.shutdown().await;
}

/// The RPC endpoint between the coordinator and the chain misbehaves while a job is in flight:
/// first it resets every connection, then every transaction the coordinator sends lands on-chain
/// but its reply is lost (the coordinator only sees its request time out), then it swallows all
/// requests (a black hole that only the coordinator's request timeout ends). The coordinator
/// retries throughout; it reads the chain before resending, so once the endpoint recovers the job
/// settles with exactly one assignment and one payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpc_resets_lost_replies_and_a_black_hole_never_duplicate_a_transaction() {
    use sage_chain::{
        contracts::JobEvent,
        testing::{Fault, FaultProxy},
    };
    let n = net(1).await;
    let proxy = FaultProxy::start(&n.devnet.rpc_url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = sage_coordinator::testing::coordinator_with(&n, dir.path(), 60, |s| {
        s.rpc_url = proxy.url().to_string();
        s.rpc_timeout = Duration::from_secs(2);
    })
    .await;
    let api = Api::new(&running, key);
    let mut w = worker(&n, 0, &running).await;

    // Resets: the escrow cannot even be seen.
    proxy.set(Fault::Drop);
    let job = escrow(&n, &api, 1, JobSpec::Matmul { n: 8, seed: Felt::from(77u8) }, 3_600).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.job(job).await.state, JobState::Submitted, "nothing is read through a dead endpoint");

    // Lost replies: the assignment lands, the coordinator never hears back, and must find it on
    // the chain rather than assign again.
    proxy.set(Fault::LoseTxReplies);
    let a = w.next_assignment().await;
    assert_eq!(a.job_id, job);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let proof = w.prove_and_submit(&n, &a).await;
    api.until(job, JobState::ResultSubmitted, 60).await;

    // The verdict lands while the endpoint is a black hole: nothing is paid until it answers.
    proxy.set(Fault::Stall);
    n.certify(job, proof, Verdict::Valid).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!n.contracts.payments.is_paid(&n.client, job).await.unwrap(), "paid through a black hole");
    // Then the payment's reply is lost too, and finally the endpoint recovers.
    proxy.set(Fault::LoseTxReplies);
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set(Fault::Pass);
    api.until(job, JobState::Paid, 90).await;

    assert_eq!(n.contracts.payments.payments_for(&n.client, job).await.unwrap(), 1, "paid once");
    let assigned = n
        .client
        .events(n.contracts.jobs.address, "JobAssigned", 0)
        .await
        .unwrap()
        .iter()
        .filter_map(JobEvent::decode_emitted)
        .filter(|e| matches!(e, JobEvent::Assigned { job_id, .. } if *job_id == job))
        .count();
    assert_eq!(assigned, 1, "assigned once");
    assert!(proxy.connections() > 10, "the faults were exercised ({} connections)", proxy.connections());
    drop(w.alive);
    running.shutdown().await;
}

/// The coordinator's PostgreSQL server restarts twice while jobs are in flight (every pooled
/// connection is cut): the coordinator reconnects, loses no job and pays each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_database_restart_mid_flight_loses_nothing() {
    let pg = sage_coordinator::testing::PrivatePostgres::start();
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("database.url");
    std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
    let (running, key) = sage_coordinator::testing::coordinator_with(&n, dir.path(), 60, |s| {
        s.postgres_url_file = Some(url_file.clone());
    })
    .await;
    let api = Api::new(&running, key);
    let mut w = worker(&n, 0, &running).await;

    let first = escrow(&n, &api, 1, JobSpec::Matmul { n: 8, seed: Felt::from(81u8) }, 3_600).await;
    let a = w.next_assignment().await;
    pg.restart();
    let proof = w.prove_and_submit(&n, &a).await;
    api.until(first, JobState::ResultSubmitted, 60).await;
    // A second job is submitted while the server is down for a restart.
    let second = escrow(&n, &api, 2, JobSpec::Matmul { n: 8, seed: Felt::from(82u8) }, 3_600).await;
    pg.restart();
    n.certify(first, proof, Verdict::Valid).await;
    api.until(first, JobState::Paid, 60).await;
    let b = w.next_assignment().await;
    assert_eq!(b.job_id, second);
    let proof = w.prove_and_submit(&n, &b).await;
    n.certify(second, proof, Verdict::Valid).await;
    api.until(second, JobState::Paid, 60).await;
    for job in [first, second] {
        assert_eq!(n.contracts.payments.payments_for(&n.client, job).await.unwrap(), 1, "job {job:#x}");
    }
    assert_eq!(pg.starts(), 3, "the server really restarted twice");
    drop(w.alive);
    running.shutdown().await;
}

/// Two coordinator processes share one PostgreSQL database: one leads (drives the chain, the queue
/// and the outbox), the other serves the same jobs over its API and stands by. The leader is
/// SIGKILLed with a result on-chain; the other takes over (the leader lock went with the dead
/// session), sees the verdict that lands next and pays it. Every job is paid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_coordinators_share_postgres_and_the_survivor_of_a_kill_pays_every_job_once() {
    let base = std::env::var("SAGE_TEST_POSTGRES_URL")
        .expect("SAGE_TEST_POSTGRES_URL is not set: run the tests through `cargo xtask test`, which starts PostgreSQL");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("sage_test_pair_{}_{nanos}", std::process::id());
    let url = sage_jobs::store::SqlStore::create_postgres_database(&base, &name).await.unwrap();
    let n = net(1).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config_a = write_config_on(&n, dir_a.path(), Some(&url));
    let config_b = write_config_on(&n, dir_b.path(), Some(&url));
    let (log_a, log_b) = (dir_a.path().join("coordinator.log"), dir_b.path().join("coordinator.log"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sage-coordinator"))
        .args(["--json", "api-key", "create", "--name", "pair test", "--config"])
        .arg(&config_a)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["key"].as_str().unwrap().to_owned();

    let mut first = spawn_coordinator(&config_a, &log_a).await;
    let wait_log = |path: std::path::PathBuf, needle: &'static str| async move {
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&path).unwrap_or_default().contains(needle) {
            assert!(start.elapsed() < Duration::from_secs(60), "{needle:?} never logged in {}", path.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_log(log_a.clone(), "leading").await;
    let second = spawn_coordinator(&config_b, &log_b).await;
    wait_log(log_b.clone(), "standing by").await;
    let api_a = Api { base: first.api.clone(), key: key.clone(), http: reqwest::Client::new() };
    let api_b = Api { base: second.api.clone(), key, http: reqwest::Client::new() };
    let public_key = StarkKey::from_secret(n.owner_secret).unwrap().public_key();
    let mut w = worker_at(&n, 0, &CoordinatorAddr { p2p_addr: first.p2p.parse().unwrap(), public_key }).await;

    let jobs = [
        escrow(&n, &api_a, 21, JobSpec::Matmul { n: 8, seed: Felt::from(21u8) }, 3_600).await,
        escrow(&n, &api_a, 22, JobSpec::Matmul { n: 8, seed: Felt::from(22u8) }, 3_600).await,
    ];
    let mut proofs = Vec::new();
    for _ in jobs {
        let a = w.next_assignment().await;
        proofs.push((a.job_id, w.prove_and_submit(&n, &a).await));
    }
    proofs.sort_by_key(|(j, _)| jobs.iter().position(|x| x == j));
    // The standby serves the same store: it sees what the leader did.
    n.certify(proofs[0].0, proofs[0].1, Verdict::Valid).await;
    api_b.until(jobs[0], JobState::Paid, 60).await;
    // The leader dies with the second job's result on-chain; its verdict lands after, so only
    // the survivor can pay it.
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    n.certify(proofs[1].0, proofs[1].1, Verdict::Valid).await;
    wait_log(log_b.clone(), "leading").await;
    api_b.until(jobs[1], JobState::Paid, 60).await;
    for job in jobs {
        assert_eq!(n.contracts.payments.payments_for(&n.client, job).await.unwrap(), 1, "job {job:#x}");
    }
    drop(w.alive);
}

/// The outbox's first assignments of a pass share one multicall; a multicall that one bad entry
/// would revert is refused as a whole at estimation, and then every entry goes alone, so the good
/// ones still land and only the bad one fails, with the contract's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_entries_share_a_multicall_and_a_bad_one_does_not_hold_up_the_others() {
    use sage_coordinator::chain::{ChainPort, Send, Sent};
    use sage_jobs::store::{OutboxEntry, OutboxStatus, SqlStore, Store};

    let n = net(2).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open(&dir.path().join("outbox.sqlite")).await.unwrap();
    let port = ChainPort { client: n.client.clone(), account: n.owner.clone(), contracts: n.contracts };
    let (w0, w1) = (n.workers[0].0.address(), n.workers[1].0.address());
    let stranger = Felt::from(0x5eu8); // neither staked nor registered: `assign` reverts
    let mut jobs = Vec::new();
    for cj in 1..=5u64 {
        let spec_hash = JobSpec::Matmul { n: 8, seed: Felt::from(cj) }.spec_hash();
        n.contracts
            .jobs
            .create_job(&n.client_acc, n.contracts.token, Felt::from(cj), spec_hash, 2 * SAGE, wall() + 3_600)
            .await
            .unwrap();
        jobs.push(sage_chain::contracts::JobManager::job_id(n.client_acc.address(), Felt::from(cj)));
    }
    let put = |job: Felt, worker: Felt| {
        let what = Send::Assign { worker, reassign: false, lease_secs: 60 };
        let entry = OutboxEntry {
            key: format!("assign:{job:#x}:1:{worker:#x}"),
            job_id: job,
            kind: what.kind().into(),
            payload: serde_json::to_string(&what).unwrap(),
            status: OutboxStatus::Pending,
            tx: None,
            error: None,
            created_ms: sage_jobs::now_ms(),
        };
        let store = &store;
        async move { store.outbox_put(&entry).await.unwrap() }
    };
    let settle = |batch: usize| {
        let (store, port) = (&store, &port);
        async move {
            let open = store.outbox_open().await.unwrap();
            port.dispatch_all(store, &open, batch, sage_jobs::now_ms()).await.unwrap();
            let mut out = Vec::new();
            for entry in store.outbox_open().await.unwrap() {
                out.push((entry.job_id, port.execute(store, &entry, sage_jobs::now_ms()).await.unwrap()));
            }
            out
        }
    };
    let tx_of = |job: Felt| {
        let store = &store;
        async move { store.outbox_for(job).await.unwrap()[0].tx }
    };

    // Three good entries: one transaction assigns all three.
    put(jobs[0], w0).await;
    put(jobs[1], w1).await;
    put(jobs[2], w0).await;
    let done = settle(16).await;
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(done.iter().all(|(_, d)| matches!(d, Sent::Landed(Some(_)))), "{done:?}");
    let tx = tx_of(jobs[0]).await.expect("a transaction");
    assert_eq!((tx_of(jobs[1]).await, tx_of(jobs[2]).await), (Some(tx), Some(tx)), "one multicall for the three");
    for (job, worker) in [(jobs[0], w0), (jobs[1], w1), (jobs[2], w0)] {
        let on_chain = n.contracts.jobs.get_job(&n.client, job).await.unwrap();
        assert_eq!((on_chain.status, on_chain.worker), (JobStatus::Assigned, worker));
    }

    // A bad entry beside a good one: the multicall of the two is refused at estimation, so the
    // good one is sent alone at once (the bad one's own send is refused too and left for
    // `execute`), then the good one lands and the bad one fails with the contract's reason.
    put(jobs[3], stranger).await;
    put(jobs[4], w1).await;
    let open = store.outbox_open().await.unwrap();
    port.dispatch_all(&store, &open, 16, sage_jobs::now_ms()).await.unwrap();
    let bad = store.outbox_for(jobs[3]).await.unwrap().remove(0);
    let good = store.outbox_for(jobs[4]).await.unwrap().remove(0);
    assert_eq!((bad.status, bad.tx), (OutboxStatus::Pending, None), "nothing recorded for the refused multicall");
    assert_eq!(good.status, OutboxStatus::Sent, "the good entry went alone without waiting");
    let done = settle(16).await;
    assert_eq!(done.len(), 2, "{done:?}");
    for (job, outcome) in &done {
        if *job == jobs[4] {
            assert_eq!(outcome, &Sent::Landed(good.tx));
        } else {
            assert_eq!(outcome, &Sent::Refused("JOB: worker not registered".into()));
        }
    }
    assert_eq!(n.contracts.jobs.get_job(&n.client, jobs[4]).await.unwrap().worker, w1);
    assert_eq!(n.contracts.jobs.get_job(&n.client, jobs[3]).await.unwrap().status, JobStatus::Open);
    assert_eq!(store.outbox_for(jobs[3]).await.unwrap()[0].status, OutboxStatus::Failed);
}
