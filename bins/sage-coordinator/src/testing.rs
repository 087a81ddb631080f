//! Test fixtures shared by the coordinator's and the worker's devnet tests (feature `testing`):
//! a devnet with the contracts, a validator set, a coordinator's settings, and quorum
//! certificates signed by that set.

#![allow(
    missing_docs,
    missing_debug_implementations,
    clippy::missing_panics_doc,
    reason = "test fixtures: they hold keys and connections, and panic with the reason on any failure"
)]

use std::{path::Path, sync::Arc, time::Duration};

use obelysk_elgamal::SecretKey;
use obelysk_prover::{ProofConfig, ProveConfig, ProverBackend};
use sage_chain::{
    ChainClient, DeployParams, Felt, Manifest, SAGE, SageAccount,
    contracts::{Deployment, GpuTier},
    devnet::Devnet,
    testing::TestNet,
};
use sage_consensus::{StarkKey, Verdict, VoteDomain, sign_vote};
use sage_jobs::{keys, lifecycle::Rules, scheduler::Pricing, scheduler::SchedulerRules};
use sage_net::{Heartbeat, JobAssignment, JobOutcome, JobResult, NetConfig, NetEvent, NodeHandle, Topic};
use sage_protocol::{
    JobSpec,
    api::{JobState, JobView, SubmitJob},
};
use sage_staking::{TeeEvidence, TeeType, register_worker};
use tokio::sync::mpsc;

use crate::{
    Running,
    settings::{ProofSecurity, Settings, TeePolicy},
};

/// Validators in every test network.
pub const VALIDATORS: usize = 4;

/// A devnet with the contracts deployed, `VALIDATORS` staked and registered validators installed
/// as the ProofVerifier's set, and blocks every second (see `Devnet::produce_blocks`).
pub struct Network {
    /// The devnet process.
    pub devnet: Devnet,
    /// Read access.
    pub client: ChainClient,
    /// Deployer, owner and coordinator account.
    pub owner: SageAccount,
    /// The owner's private key (what a coordinator's key file holds).
    pub owner_secret: Felt,
    /// A funded client account.
    pub client_acc: SageAccount,
    /// The client account's private key (what a client's key file holds).
    pub client_secret: Felt,
    /// The validators' vote keys.
    pub validator_keys: Vec<StarkKey>,
    /// The validators' accounts and their private keys (what a validator's key file holds).
    pub validator_accounts: Vec<(SageAccount, Felt)>,
    /// Contract addresses.
    pub contracts: Deployment,
    /// The deployment manifest.
    pub manifest: Manifest,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("rpc", &self.devnet.rpc_url().as_str())
            .field("owner", &self.owner.address())
            .field("client", &self.client_acc.address())
            .finish_non_exhaustive()
    }
}

impl Network {
    /// Starts it (panics with the install instruction when the devnet binary is missing).
    pub async fn start() -> Self {
        Self::start_with(VALIDATORS).await
    }

    /// Starts it with `validators` validators (at most 100).
    pub async fn start_with(validators: usize) -> Self {
        Self::start_on(sage_chain::devnet::DevnetOptions::default(), validators).await
    }

    /// [`Network::start_with`] on a devnet started with `options` (e.g. closing a block every
    /// second, as the load generator does).
    pub async fn start_on(options: sage_chain::devnet::DevnetOptions, validators: usize) -> Self {
        let TestNet { devnet, client, accounts, contracts, manifest } = TestNet::start_on(
            options,
            u8::try_from(2 + validators).expect("at most 100 validators"),
            &DeployParams::default(),
            100_000 * SAGE,
        )
        .await
        .expect("devnet (run `cargo xtask tools` first)");
        let secrets = devnet.predeployed_accounts().await.expect("predeployed accounts");
        let mut accounts = accounts.into_iter();
        let owner = accounts.next().expect("owner");
        let client_acc = accounts.next().expect("client");
        let mut validator_keys = Vec::new();
        let mut validator_accounts = Vec::new();
        let mut members = Vec::new();
        for (i, account) in accounts.enumerate() {
            validator_accounts.push((account.clone(), secrets[2 + i].private_key));
            let key = StarkKey::from_secret(Felt::from(7_000 + i as u64)).expect("validator key");
            contracts.staking.stake(&account, contracts.token, 10_000 * SAGE, GpuTier::T4, 3_600).await.expect("stake");
            contracts.staking.register_validator(&account, key.public_key()).await.expect("register validator");
            members.push((key.public_key(), account.address()));
            validator_keys.push(key);
        }
        contracts.verifier.set_validators(&owner, &members).await.expect("validator set");
        devnet.produce_blocks(Duration::from_secs(1));
        Self {
            owner_secret: secrets[0].private_key,
            client_secret: secrets[1].private_key,
            devnet,
            client,
            owner,
            client_acc,
            validator_keys,
            validator_accounts,
            contracts,
            manifest,
        }
    }

    /// Coordinator settings for this network under `dir` (manifest and key file written there):
    /// fast ticks, test-level proofs, the development TEE policy, a price of 1 SAGE per job.
    pub fn coordinator_settings(&self, dir: &Path, lease_secs: u64) -> Settings {
        let manifest = dir.join("manifest.json");
        self.manifest.save(&manifest).expect("manifest");
        let key_file = dir.join("coordinator.key");
        std::fs::write(&key_file, format!("{:#x}\n", self.owner_secret)).expect("key file");
        Settings {
            data_dir: dir.join("data"),
            postgres_url_file: None,
            api_listen: "127.0.0.1:0".parse().expect("addr"),
            max_body_bytes: None,
            max_blob_bytes: None,
            rpc_url: self.devnet.rpc_url().to_string(),
            manifest,
            account: self.owner.address(),
            key_file,
            p2p_listen: "/ip4/127.0.0.1/tcp/0".into(),
            bootstrap: Vec::new(),
            identity: dir.join("p2p.key"),
            network: sage_net::DEFAULT_NETWORK,
            rules: Rules { max_attempts: 3, lease_ms: lease_secs * 1000, min_lead_secs: 5, ..Rules::default() },
            scheduler: SchedulerRules { heartbeat_window_ms: 3_000, ..SchedulerRules::default() },
            pricing: Pricing { base: SAGE, per_million_units: 0 },
            lease_secs,
            tick: Duration::from_millis(200),
            proof_security: ProofSecurity::Test,
            tee_policy: TeePolicy::Development,
            validator_bridges: Vec::new(),
            bridge_timeout: crate::settings::DEFAULT_BRIDGE_TIMEOUT,
            rpc_timeout: sage_chain::DEFAULT_REQUEST_TIMEOUT,
            batch_calls: crate::settings::DEFAULT_BATCH_CALLS,
        }
    }

    /// Every validator signs `verdict` for (job, proof); the client account submits the QC
    /// (anyone may; the owner's nonce belongs to a coordinator running in the same test).
    pub async fn certify(&self, job: Felt, proof: Felt, verdict: Verdict) {
        let domain = VoteDomain { chain_id: self.client.chain_id(), verifier: self.contracts.verifier.address };
        let sigs: Vec<(u32, Felt, Felt)> = self
            .validator_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let s = sign_vote(k, &domain, job, proof, verdict).expect("vote");
                (i as u32, s.r, s.s)
            })
            .collect();
        self.contracts
            .verifier
            .submit_qc(&self.client_acc, job, proof, verdict == Verdict::Valid, 1, &sigs)
            .await
            .expect("QC");
    }
}

/// The shared network plus worker accounts.
pub struct Net {
    pub net: Network,
    /// Worker accounts with their Stark keys.
    pub workers: Vec<(SageAccount, StarkKey)>,
}

impl std::ops::Deref for Net {
    type Target = Network;
    fn deref(&self) -> &Network {
        &self.net
    }
}

/// The Sage account of `key` (`oz_account_address(key, key)`) as an operator gets one on a devnet:
/// fee token minted, the account contract deployed, `stake` SAGE sent by `owner` and staked at
/// T4 for `lock_secs`.
pub async fn staked_account(
    devnet: &Devnet,
    client: &ChainClient,
    contracts: &Deployment,
    owner: &SageAccount,
    key: &StarkKey,
    stake: u128,
    lock_secs: u64,
) -> Result<SageAccount, sage_chain::ChainError> {
    let address = sage_chain::oz_account_address(key.public_key(), key.public_key());
    devnet.mint_strk(address, 10 * SAGE).await?;
    let account = sage_chain::deploy_oz_account(client, key.clone(), key.public_key()).await?;
    contracts.token.transfer(owner, address, stake).await?;
    contracts.staking.stake(&account, contracts.token, stake, GpuTier::T4, lock_secs).await?;
    Ok(account)
}

pub async fn net(workers: usize) -> Net {
    net_with(workers, VALIDATORS).await
}

/// [`net`] with `validators` validators.
pub async fn net_with(workers: usize, validators: usize) -> Net {
    let net = Network::start_with(validators).await;
    let (client, contracts) = (&net.client, &net.contracts);
    // Workers sign p2p messages for their own Sage account, `oz_account_address(key, key)`: each
    // gets that account deployed, funded, staked and registered, as `sage-worker` operators do.
    let mut worker_accounts = Vec::new();
    for i in 0..workers {
        let key = StarkKey::from_secret(Felt::from(9_000 + i as u64)).unwrap();
        let account =
            staked_account(&net.devnet, client, contracts, &net.owner, &key, 1_000 * SAGE, 1_000_000).await.unwrap();
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

pub fn settings(n: &Net, dir: &Path, lease_secs: u64) -> Settings {
    n.coordinator_settings(dir, lease_secs)
}

pub async fn coordinator(n: &Net, dir: &Path, lease_secs: u64) -> (Running, String) {
    coordinator_with(n, dir, lease_secs, |_| {}).await
}

/// [`coordinator`] with its settings edited first.
pub async fn coordinator_with(
    n: &Net,
    dir: &Path,
    lease_secs: u64,
    edit: impl FnOnce(&mut Settings),
) -> (Running, String) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .with_test_writer()
        .try_init();
    let mut s = settings(n, dir, lease_secs);
    edit(&mut s);
    let key = crate::read_key_file(&s.key_file).unwrap();
    let store = crate::open_store(&s).await.unwrap();
    let new = keys::generate("test client", 10_000, None, sage_jobs::now_ms()).unwrap();
    store.create_api_key(&new.row).await.unwrap();
    drop(store);
    (crate::start(s, key).await.unwrap(), new.text)
}

/// A worker: a libp2p node signing with the worker account's key, heartbeating while `alive`.
pub struct TestWorker {
    pub account: SageAccount,
    pub key: StarkKey,
    pub node: NodeHandle,
    pub assignments: mpsc::Receiver<JobAssignment>,
    pub alive: tokio::sync::watch::Sender<bool>,
    /// Whether heartbeats acknowledge the assignments received (list their jobs); false plays a
    /// worker whose assignments are lost in gossip.
    pub acknowledge: Arc<std::sync::atomic::AtomicBool>,
    /// Every assignment received for this worker, by job id (what heartbeats acknowledge).
    pub received: Arc<std::sync::Mutex<std::collections::BTreeSet<Felt>>>,
}

pub async fn worker(n: &Net, i: usize, coordinator: &Running) -> TestWorker {
    worker_at(n, i, &CoordinatorAddr { p2p_addr: coordinator.p2p_addr.clone(), public_key: coordinator.public_key })
        .await
}

pub async fn worker_at(n: &Net, i: usize, coordinator: &CoordinatorAddr) -> TestWorker {
    let (account, key) = n.workers[i].clone();
    TestWorker::start(account, key, coordinator).await
}

impl TestWorker {
    /// A worker node for `account` (signing with `key`, whose Sage account it must be) that
    /// heartbeats to `coordinator` and collects the assignments it signs for this account. It
    /// proves only what the caller asks, so a test or a demo can make it cheat.
    pub async fn start(account: SageAccount, key: StarkKey, coordinator: &CoordinatorAddr) -> Self {
        start_worker_node(account, key, coordinator).await
    }
}

async fn start_worker_node(account: SageAccount, key: StarkKey, coordinator: &CoordinatorAddr) -> TestWorker {
    let config = NetConfig { bootstrap: vec![coordinator.p2p_addr.clone()], mesh_n: 2, ..NetConfig::default() };
    let identity = sage_net::load_or_create_identity(&std::env::temp_dir().join(format!(
        "sage-test-worker-{}-{:x}.key",
        std::process::id(),
        account.address()
    )))
    .unwrap();
    let (node, mut events) = NodeHandle::start(config, identity, key.clone()).await.unwrap();
    let (tx, assignments) = mpsc::channel(16);
    let (coordinator_key, me) = (coordinator.public_key, account.address());
    let received: Arc<std::sync::Mutex<std::collections::BTreeSet<Felt>>> = Arc::default();
    let acknowledge = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listened = Arc::clone(&received);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetEvent::Message { message, .. } = event
                && message.topic == Topic::Jobs
                && message.signer == coordinator_key
                && let Ok(a) = JobAssignment::from_message(&message)
                && a.worker == me
            {
                listened.lock().unwrap().insert(a.job_id);
                let _ = tx.send(a).await;
            }
        }
    });
    let (alive, mut alive_rx) = tokio::sync::watch::channel(true);
    let (hb_node, hb_key) = (node.clone(), key.clone());
    let (acked, ack) = (Arc::clone(&received), Arc::clone(&acknowledge));
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
                jobs: if ack.load(std::sync::atomic::Ordering::SeqCst) {
                    acked.lock().unwrap().iter().rev().take(sage_net::MAX_HEARTBEAT_JOBS).copied().collect()
                } else {
                    Vec::new()
                },
            };
            if let Ok(m) = hb.sign(&hb_key, hb_node.network())
                && let Err(e) = hb_node.publish_signed(&m).await
            {
                tracing::debug!(error = %e, "test worker heartbeat not sent");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                changed = alive_rx.changed() => if changed.is_err() { return },
            }
        }
    });
    TestWorker { account, key, node, assignments, alive, acknowledge, received }
}

impl TestWorker {
    pub async fn next_assignment(&mut self) -> JobAssignment {
        tokio::time::timeout(Duration::from_secs(60), self.assignments.recv())
            .await
            .expect("an assignment within 60 s")
            .expect("assignment channel open")
    }

    /// Proves `a` (as written: a test may forge it) with the test-level config, announcing nothing.
    pub async fn prove(&self, a: &JobAssignment) -> TestProof {
        self.prove_with(a, ProofConfig::insecure_for_tests()).await
    }

    /// Proves `a` with `proof` (the CPU backend), announcing nothing.
    pub async fn prove_with(&self, a: &JobAssignment, proof: ProofConfig) -> TestProof {
        let blobs = self.node.fetch_inputs(a).await.expect("fetching the job's inputs");
        prove_assignment(a, &blobs, proof).await.unwrap()
    }

    /// Proves `a` (as written: a test may forge it), serves the envelope and announces it over
    /// libp2p; returns the proof hash and output commitment as felts.
    pub async fn announce(&self, a: &JobAssignment) -> (Felt, Felt) {
        let proof = self.prove(a).await;
        self.publish(a, &proof).await;
        (proof.proof_hash, proof.output)
    }

    /// Serves `proof` and announces it as the result of `a` over libp2p.
    pub async fn publish(&self, a: &JobAssignment, proof: &TestProof) {
        announce_proof(&self.node, &self.key, self.account.address(), a, proof, 10).await.unwrap();
    }

    /// Proves the assignment, announces it and submits the result on-chain.
    pub async fn prove_and_submit(&self, n: &Net, a: &JobAssignment) -> Felt {
        let (proof_hash, output) = self.announce(a).await;
        n.contracts.jobs.submit_result(&self.account, a.job_id, output, proof_hash).await.unwrap();
        proof_hash
    }
}

/// Proves `a` as written (a test may forge it) with `proof` on the CPU: what a worker does with an
/// assignment, for the test workers and the load generator's hosts.
/// `blobs`: the job's inputs ([`NodeHandle::fetch_inputs`](sage_net::NodeHandle::fetch_inputs)).
pub async fn prove_assignment(a: &JobAssignment, blobs: &[Vec<u8>], proof: ProofConfig) -> anyhow::Result<TestProof> {
    let job = a.request.prover_job(a.job_id, a.worker, blobs)?;
    let config = ProveConfig { proof, backend: ProverBackend::Cpu, ..Default::default() };
    let proved = tokio::task::spawn_blocking(move || obelysk_prover::prove_with_output(&job, &config)).await??;
    Ok(TestProof {
        proof_hash: sage_consensus::proof_hash_felt(&proved.encoded.proof_hash.0),
        hex: proved.encoded.proof_hash.to_hex(),
        output: sage_protocol::hash32_to_felt(&proved.envelope.statement.output_commitment.0),
        bytes: proved.encoded.bytes,
    })
}

/// Serves `proof` from `node` and announces it over libp2p as `worker`'s result of `a`, signed with
/// `key` (which must be `worker`'s), reporting `prove_ms`.
pub async fn announce_proof(
    node: &NodeHandle,
    key: &StarkKey,
    worker: Felt,
    a: &JobAssignment,
    proof: &TestProof,
    prove_ms: u64,
) -> anyhow::Result<()> {
    let blob = node.provide(proof.bytes.clone()).await?;
    let result = JobResult {
        job_id: a.job_id,
        worker,
        outcome: JobOutcome::Proved {
            proof_hash: proof.hex.clone(),
            blob,
            provider: node.peer_id().to_string(),
            bytes: proof.bytes.len() as u64,
            backend: "cpu".into(),
            prove_ms,
        },
    };
    node.publish_when_ready(&result.sign(key, node.network())?, Duration::from_secs(10)).await?;
    Ok(())
}

/// A proof made by [`TestWorker::prove`].
pub struct TestProof {
    /// Compressed envelope bytes.
    pub bytes: Vec<u8>,
    /// Proof hash as a felt (what `submit_result` records).
    pub proof_hash: Felt,
    /// Proof hash as hex (what a result announcement carries).
    pub hex: String,
    /// Output commitment as a felt.
    pub output: Felt,
}

pub fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

pub struct Api {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(running: &Running, key: String) -> Self {
        Self { base: format!("http://{}", running.api_addr), key, http: reqwest::Client::new() }
    }

    pub async fn submit(&self, client: Felt, client_job_id: Felt, spec: JobSpec) -> JobView {
        let body = SubmitJob { client, client_job_id, spec };
        let r =
            self.http.post(format!("{}/v1/jobs", self.base)).bearer_auth(&self.key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    pub async fn job(&self, id: Felt) -> JobView {
        let r = self.http.get(format!("{}/v1/jobs/{id:#x}", self.base)).bearer_auth(&self.key).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls until the job reaches `state` (panics with the history after `secs`).
    pub async fn until(&self, id: Felt, state: JobState, secs: u64) -> JobView {
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

pub async fn escrow(n: &Net, api: &Api, client_job_id: u64, spec: JobSpec, deadline_secs: u64) -> Felt {
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

/// What a worker needs of a coordinator running in another process.
pub struct CoordinatorAddr {
    pub p2p_addr: sage_net::Multiaddr,
    pub public_key: Felt,
}

/// A PostgreSQL server of the test's own: `initdb` in a temporary directory, listening on a free
/// loopback port with trust authentication, so a fault test can restart it without disturbing the
/// shared server other tests use. It needs Debian's `postgresql` package (`.ci/run` installs it);
/// as root, the server runs as the `postgres` user. Stopped when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
    /// Running as root: the server's tools run as `postgres`.
    root: bool,
}

impl PrivatePostgres {
    /// Initialises and starts it (panics naming what is missing).
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL binaries in /usr/lib/postgresql (apt-get install postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new().prefix("sage-pg-").tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let pg = Self { dir, bin, port, root };
        if pg.root {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the PostgreSQL directory to postgres");
        }
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "--auth=trust", "-U", "postgres", "--no-sync"]);
        pg.ctl("start");
        pg
    }

    /// `tool` from the server's binaries, as the `postgres` user when running as root.
    fn command(&self, tool: &str) -> std::process::Command {
        let exe = self.bin.join(tool);
        if self.root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let (data, log) = (self.data(), self.dir.path().join("server.log").display().to_string());
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-m", "fast", "-w", action]);
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it and starts it again (every open connection is cut).
    pub fn restart(&self) {
        self.ctl("restart");
    }

    /// How many times the server has come up (from its log).
    pub fn starts(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("server.log"))
            .unwrap_or_default()
            .matches("database system is ready to accept connections")
            .count()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}
