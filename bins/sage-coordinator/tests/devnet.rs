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

use obelysk_elgamal::SecretKey;
use obelysk_prover::{Job, JobId, ProofConfig, ProveConfig, ProverBackend, WorkerAddress, matmul::MatmulJob};
use sage_chain::{
    Felt, SAGE, SageAccount,
    contracts::{GpuTier, JobStatus, PaymentEvent},
};
use sage_consensus::{StarkKey, Verdict};
use sage_coordinator::{Running, settings::Settings, testing::Network};
use sage_jobs::keys;
use sage_net::{Heartbeat, JobAssignment, JobOutcome, JobResult, NetConfig, NetEvent, NodeHandle, Topic};
use sage_protocol::{
    JobSpec,
    api::{JobState, JobView, SubmitJob},
};
use sage_staking::{TeeEvidence, TeeType, register_worker};
use tokio::sync::mpsc;

/// The shared network plus worker accounts.
struct Net {
    net: Network,
    /// Worker accounts with their Stark keys.
    workers: Vec<(SageAccount, StarkKey)>,
}

impl std::ops::Deref for Net {
    type Target = Network;
    fn deref(&self) -> &Network {
        &self.net
    }
}

async fn net(workers: usize) -> Net {
    let net = Network::start().await;
    let (client, contracts) = (&net.client, &net.contracts);
    // Workers sign p2p messages for their own Sage account, `oz_account_address(key, key)`: each
    // gets that account deployed, funded, staked and registered, as `sage-worker` operators do.
    let mut worker_accounts = Vec::new();
    for i in 0..workers {
        let key = StarkKey::from_secret(Felt::from(9_000 + i as u64)).unwrap();
        let address = sage_chain::oz_account_address(key.public_key(), key.public_key());
        net.devnet.mint_strk(address, 100 * SAGE).await.unwrap();
        let account = sage_chain::deploy_oz_account(client, key.clone(), key.public_key()).await.unwrap();
        assert_eq!(account.address(), address);
        contracts.token.transfer(&net.owner, address, 5_000 * SAGE).await.unwrap();
        contracts.staking.stake(&account, contracts.token, 1_000 * SAGE, GpuTier::T4, 1_000_000).await.unwrap();
        let tee = TeeEvidence {
            tee_type: TeeType::None,
            measurement_hash: Felt::from(0x4d45u32),
            quote_hash: Felt::from(0x100 + i as u64),
        };
        let elgamal = SecretKey::from_seed(&[i as u8 + 1; 32]);
        register_worker(&account, contracts.staking, &elgamal, tee, Felt::from(0x200 + i as u64)).await.unwrap();
        worker_accounts.push((account, key));
    }
    Net { net, workers: worker_accounts }
}

fn settings(n: &Net, dir: &Path, lease_secs: u64) -> Settings {
    n.coordinator_settings(dir, lease_secs)
}

async fn coordinator(n: &Net, dir: &Path, lease_secs: u64) -> (Running, String) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .with_test_writer()
        .try_init();
    let s = settings(n, dir, lease_secs);
    let key = sage_coordinator::read_key_file(&s.key_file).unwrap();
    let store = sage_coordinator::open_store(&s).await.unwrap();
    let new = keys::generate("test client", 10_000, None, sage_jobs::now_ms()).unwrap();
    store.create_api_key(&new.row).await.unwrap();
    drop(store);
    (sage_coordinator::start(s, key).await.unwrap(), new.text)
}

/// A worker: a libp2p node signing with the worker account's key, heartbeating while `alive`.
struct TestWorker {
    account: SageAccount,
    key: StarkKey,
    node: NodeHandle,
    assignments: mpsc::Receiver<JobAssignment>,
    alive: tokio::sync::watch::Sender<bool>,
}

async fn worker(n: &Net, i: usize, coordinator: &Running) -> TestWorker {
    worker_at(n, i, &CoordinatorAddr { p2p_addr: coordinator.p2p_addr.clone(), public_key: coordinator.public_key })
        .await
}

async fn worker_at(n: &Net, i: usize, coordinator: &CoordinatorAddr) -> TestWorker {
    let (account, key) = n.workers[i].clone();
    let config = NetConfig { bootstrap: vec![coordinator.p2p_addr.clone()], mesh_n: 2, ..NetConfig::default() };
    let identity = sage_net::load_or_create_identity(&tempfile::tempdir().unwrap().keep().join("p2p.key")).unwrap();
    let (node, mut events) = NodeHandle::start(config, identity, key.clone()).await.unwrap();
    let (tx, assignments) = mpsc::channel(16);
    let (coordinator_key, me) = (coordinator.public_key, account.address());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetEvent::Message { message, .. } = event
                && message.topic == Topic::Jobs
                && message.signer == coordinator_key
                && let Ok(a) = JobAssignment::from_message(&message)
                && a.worker == me
            {
                let _ = tx.send(a).await;
            }
        }
    });
    let (alive, mut alive_rx) = tokio::sync::watch::channel(true);
    let (hb_node, hb_key) = (node.clone(), key.clone());
    tokio::spawn(async move {
        loop {
            if !*alive_rx.borrow() {
                return;
            }
            let hb = Heartbeat {
                worker: me,
                gpu_tier: Some(GpuTier::T4),
                backend: "cpu".into(),
                load_percent: 0,
                timestamp: wall(),
            };
            if let Ok(m) = hb.sign(&hb_key, hb_node.network())
                && let Err(e) = hb_node.publish_signed(&m).await
            {
                tracing::debug!(error = %e, "test worker heartbeat not sent");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                changed = alive_rx.changed() => if changed.is_err() { return },
            }
        }
    });
    TestWorker { account, key, node, assignments, alive }
}

impl TestWorker {
    async fn next_assignment(&mut self) -> JobAssignment {
        tokio::time::timeout(Duration::from_secs(60), self.assignments.recv())
            .await
            .expect("an assignment within 60 s")
            .expect("assignment channel open")
    }

    /// Proves `a` (as written: a test may forge it), serves the envelope and announces it over
    /// libp2p; returns the proof hash and output commitment as felts.
    async fn announce(&self, a: &JobAssignment) -> (Felt, Felt) {
        let JobSpec::Matmul { n: size, seed } = a.request.clone() else { panic!("matmul") };
        let job = Job::matmul(
            JobId(a.job_id.to_bytes_be()),
            WorkerAddress(a.worker.to_bytes_be()),
            MatmulJob::from_seed(size, seed.to_bytes_be()),
        );
        let config = ProveConfig { proof: ProofConfig::insecure_for_tests(), backend: ProverBackend::Cpu };
        let proved = tokio::task::spawn_blocking(move || obelysk_prover::prove_with_output(&job, &config).unwrap())
            .await
            .unwrap();
        let bytes = proved.encoded.bytes.clone();
        let blob = self.node.provide(bytes.clone()).await.unwrap();
        let result = JobResult {
            job_id: a.job_id,
            worker: self.account.address(),
            outcome: JobOutcome::Proved {
                proof_hash: proved.encoded.proof_hash.to_hex(),
                blob,
                provider: self.node.peer_id().to_string(),
                bytes: bytes.len() as u64,
                backend: "cpu".into(),
                prove_ms: 10,
            },
        };
        let message = result.sign(&self.key, self.node.network()).unwrap();
        self.node.publish_when_ready(&message, Duration::from_secs(10)).await.unwrap();
        let proof_hash = sage_consensus::proof_hash_felt(&proved.encoded.proof_hash.0);
        (proof_hash, sage_protocol::hash32_to_felt(&proved.envelope.statement.output_commitment.0))
    }

    /// Proves the assignment, announces it and submits the result on-chain.
    async fn prove_and_submit(&self, n: &Net, a: &JobAssignment) -> Felt {
        let (proof_hash, output) = self.announce(a).await;
        n.contracts.jobs.submit_result(&self.account, a.job_id, output, proof_hash).await.unwrap();
        proof_hash
    }
}

fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    fn new(running: &Running, key: String) -> Self {
        Self { base: format!("http://{}", running.api_addr), key, http: reqwest::Client::new() }
    }

    async fn submit(&self, client: Felt, client_job_id: Felt, spec: JobSpec) -> JobView {
        let body = SubmitJob { client, client_job_id, spec };
        let r =
            self.http.post(format!("{}/v1/jobs", self.base)).bearer_auth(&self.key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    async fn job(&self, id: Felt) -> JobView {
        let r = self.http.get(format!("{}/v1/jobs/{id:#x}", self.base)).bearer_auth(&self.key).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls until the job reaches `state` (panics with the history after `secs`).
    async fn until(&self, id: Felt, state: JobState, secs: u64) -> JobView {
        let start = std::time::Instant::now();
        loop {
            let view = self.job(id).await;
            if view.state == state {
                return view;
            }
            if view.state.is_terminal() || start.elapsed() > Duration::from_secs(secs) {
                panic!("job {id:#x} is {} while waiting for {state}: {:#?}", view.state, view.history);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn escrow(n: &Net, api: &Api, client_job_id: u64, spec: JobSpec, deadline_secs: u64) -> Felt {
    let cj = Felt::from(client_job_id);
    let view = api.submit(n.client_acc.address(), cj, spec.clone()).await;
    assert_eq!(view.state, JobState::Submitted);
    n.contracts
        .jobs
        .create_job(&n.client_acc, n.contracts.token, cj, spec.spec_hash(), 2 * SAGE, wall() + deadline_secs)
        .await
        .unwrap();
    view.id
}

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

fn write_config(n: &Net, dir: &Path) -> std::path::PathBuf {
    let s = settings(n, dir, 60);
    let config = dir.join("coordinator.toml");
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
"#,
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
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&n, dir.path());
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
    let events = n.client.events(n.contracts.payments.address, "PaymentSubmitted", 0).await.unwrap();
    for job in jobs {
        let count = events
            .iter()
            .filter(|e| {
                let event = starknet_rust::core::types::Event {
                    from_address: e.from_address,
                    keys: e.keys.clone(),
                    data: e.data.clone(),
                };
                matches!(PaymentEvent::decode(&event), Some(PaymentEvent::PaymentSubmitted { job_id, .. }) if job_id == job)
            })
            .count();
        assert_eq!(count, 1, "job {job:#x} paid {count} times");
    }
    drop(w.alive);
}

/// What a worker needs of a coordinator running in another process.
struct CoordinatorAddr {
    p2p_addr: sage_net::Multiaddr,
    public_key: Felt,
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

/// `sage-coordinator cancel-job` (a real process, the client's key in a file): the client's own
/// account cancels on-chain before assignment and gets its escrow back; the coordinator records
/// the cancellation and the refund transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_cancels_an_unassigned_job_from_the_cli_and_is_refunded() {
    let n = net(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let api = Api::new(&running, key.clone());
    let before = n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap();
    let job = escrow(&n, &api, 31, JobSpec::Matmul { n: 8, seed: Felt::from(31u8) }, 3_600).await;
    api.until(job, JobState::Queued, 30).await;
    let key_file = dir.path().join("client.key");
    std::fs::write(&key_file, format!("{:#x}\n", n.client_secret)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sage-coordinator"))
        .args(["--json", "cancel-job", &format!("{job:#x}"), "--url", &api.base, "--rpc-url"])
        .arg(n.devnet.rpc_url().as_str())
        .arg("--manifest")
        .arg(dir.path().join("manifest.json"))
        .args(["--account", &format!("{:#x}", n.client_acc.address()), "--key-file"])
        .arg(&key_file)
        .env("SAGE_API_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((printed["cancelled"].as_bool(), printed["coordinator_told"].as_bool()), (Some(true), Some(true)));
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
    // Cancelling again changes nothing: the chain refuses, nothing is refunded twice.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_sage-coordinator"))
        .args(["cancel-job", &format!("{job:#x}"), "--url", &api.base, "--rpc-url"])
        .arg(n.devnet.rpc_url().as_str())
        .arg("--manifest")
        .arg(dir.path().join("manifest.json"))
        .args(["--account", &format!("{:#x}", n.client_acc.address()), "--key-file"])
        .arg(&key_file)
        .env("SAGE_API_KEY", &key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("JOB: not open"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(n.contracts.token.balance_of(&n.client, n.client_acc.address()).await.unwrap(), before);
    running.shutdown().await;
}
