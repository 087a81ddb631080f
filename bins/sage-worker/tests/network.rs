//! A real `sage-worker` process on a real devnet with the real contracts: it creates its wallet,
//! requests tokens (the devnet mints its fee token and its account contract is deployed), stakes,
//! registers, then `start`s; a coordinator (in this process, over real libp2p on loopback)
//! assigns it a job a client escrowed; the worker checks the assignment on-chain, proves it,
//! submits the result on-chain and serves the proof; the validators' QC lands, the worker is
//! paid, `balance` decrypts the encrypted payment and `claim` moves it to its public balance.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sage_chain::{Felt, SAGE, contracts::JobStatus};
use sage_consensus::Verdict;
use sage_coordinator::testing::Network;
use sage_protocol::{
    JobSpec,
    api::{JobState, JobView, SubmitJob},
};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

fn worker(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sage-worker"));
    cmd.arg("--json").arg("--keystore").arg(home.join("keystore.json")).env("SAGE_KEYSTORE_PASSWORD", PASSWORD);
    cmd
}

/// Runs a one-shot command and returns its JSON output (panics with stderr on failure).
fn run(home: &Path, args: &[&str]) -> Value {
    let out = worker(home).args(args).output().expect("sage-worker runs");
    assert!(out.status.success(), "sage-worker {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_worker_stakes_registers_proves_submits_on_chain_and_is_paid() {
    let net = Network::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("worker");
    std::fs::create_dir_all(&home).unwrap();
    let manifest = dir.path().join("manifest.json");
    net.manifest.save(&manifest).unwrap();
    let rpc = net.devnet.rpc_url().to_string();
    let chain = ["--rpc-url", rpc.as_str(), "--manifest", manifest.to_str().unwrap()];

    let wallet =
        run(&home, &["create-wallet", "--scrypt-log-n", "10", "--mnemonic-out", home.join("m.txt").to_str().unwrap()]);
    let address = Felt::from_hex(wallet["address"].as_str().unwrap()).unwrap();
    let drip = run(&home, &[&["request-tokens"][..], &chain].concat());
    assert_eq!(drip["dripped"], true, "{drip}");
    // A second drip inside the cooldown is refused with the time of the next one.
    let again = run(&home, &[&["request-tokens"][..], &chain].concat());
    assert_eq!(again["dripped"], false, "{again}");
    assert!(again["next_drip_at"].as_u64().unwrap() > wall());
    // The T4 minimum is 1,000 SAGE; the faucet gives less, so the operator buys the rest.
    net.contracts.token.transfer(&net.owner, address, 2_000 * SAGE).await.unwrap();
    // Unregistered workers cannot be assigned; registering before staking is refused on-chain.
    let out = worker(&home).args([&["register"][..], &chain].concat()).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("STAKE: insufficient stake"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(&home, &[&["stake", "--amount", "1000", "--gpu-tier", "T4", "--lock-secs", "1000000"][..], &chain].concat());
    // The stake is locked: unstaking now is refused on-chain with the reason.
    let out = worker(&home).args([&["unstake", "--amount", "1"][..], &chain].concat()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("STAKE: locked"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = worker(&home).args([&["withdraw"][..], &chain].concat()).output().unwrap();
    assert!(!out.status.success(), "nothing is unstaking, so nothing can be withdrawn");
    let registered = run(&home, &[&["register", "--tee", "none"][..], &chain].concat());
    assert_eq!(registered["registered"], true);
    let status = run(&home, &[&["status"][..], &chain].concat());
    assert_eq!(status["registered"], true, "{status}");
    assert_eq!(status["stake"]["amount"], (1_000 * SAGE).to_string());

    // The coordinator, then the worker daemon pinned to it.
    let coordinator_dir = dir.path().join("coordinator");
    std::fs::create_dir_all(&coordinator_dir).unwrap();
    let settings = net.coordinator_settings(&coordinator_dir, 60);
    let key = sage_coordinator::read_key_file(&settings.key_file).unwrap();
    let store = sage_coordinator::open_store(&settings).await.unwrap();
    let api_key = sage_jobs::keys::generate("client", 10_000, None, 0).unwrap();
    store.create_api_key(&api_key.row).await.unwrap();
    drop(store);
    let running = sage_coordinator::start(settings, key).await.unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[worker]\ngpu_tier = \"T4\"\nheartbeat_secs = 1\n[prover]\nbackend = \"cpu\"\nsecurity = \"test\"\nmax_matmul_n = 64\n\
             [network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\nbootstrap = [\"{}\"]\ncoordinator = \"{:#x}\"\n\
             [chain]\nrpc_url = \"{rpc}\"\nmanifest = \"{}\"\n",
            running.p2p_addr,
            running.public_key,
            manifest.display()
        ),
    )
    .unwrap();
    let mut child = worker(&home).arg("start").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let _daemon = Daemon(child);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = events_tx.send(v);
            }
        }
    });
    let ready = tokio::time::timeout(Duration::from_secs(60), events.recv()).await.unwrap().unwrap();
    assert_eq!(ready["event"], "ready", "{ready}");
    assert_eq!(Felt::from_hex(ready["address"].as_str().unwrap()).unwrap(), address);

    // A client escrows a job and uploads its spec.
    let http = reqwest::Client::new();
    let base = format!("http://{}", running.api_addr);
    let api = Client { http: &http, base: &base, key: &api_key.text };
    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(77u8) };
    // The worker submits on-chain by itself.
    let (job, submitted) = api.escrow_and_await_submit(&net, &mut events, Felt::from(0x5eed_u32), &spec).await;
    let on_chain = net.contracts.jobs.get_job(&net.client, job.id).await.unwrap();
    assert_eq!((on_chain.status, on_chain.worker), (JobStatus::Submitted, address));
    let proof = on_chain.proof_hash;
    assert_eq!(format!("{proof:#x}"), submitted["proof_hash"].as_str().unwrap());

    net.certify(job.id, proof, Verdict::Valid).await;
    let start = Instant::now();
    loop {
        let r = http.get(format!("{base}/v1/jobs/{:#x}", job.id)).bearer_auth(&api_key.text).send().await.unwrap();
        let view: JobView = r.json().await.unwrap();
        if view.state == JobState::Paid {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "not paid: {:#?}", view.history);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(net.contracts.payments.is_paid(&net.client, job.id).await.unwrap());
    let status = run(&home, &[&["status"][..], &chain].concat());
    assert_eq!(status["reputation"]["completed"], 1, "{status}");
    // The job's result, its verdict and its payment, as the chain records them.
    assert_eq!(
        status["jobs"],
        serde_json::json!([{
            "job_id": format!("{:#x}", job.id),
            "proof_hash": format!("{proof:#x}"),
            "verdict": "valid",
            "paid": true,
        }]),
        "{status}"
    );
    // The payment is encrypted to the worker's key: `balance` decrypts it, `claim` makes it public.
    let balance = run(&home, &[&["balance"][..], &chain].concat());
    assert_eq!(balance["base_units"], (2 * SAGE).to_string(), "{balance}");
    let before = net.contracts.token.balance_of(&net.client, address).await.unwrap();
    let claimed = run(&home, &[&["claim"][..], &chain].concat());
    assert_eq!(claimed["base_units"], (2 * SAGE).to_string(), "{claimed}");
    assert_eq!(net.contracts.token.balance_of(&net.client, address).await.unwrap(), before + 2 * SAGE);
    let empty = worker(&home).args([&["claim"][..], &chain].concat()).output().unwrap();
    assert!(!empty.status.success());
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("nothing to claim"),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );

    // The other job shapes over the same network: the client's own matrices (uploaded as blobs,
    // fetched by the worker over libp2p from the coordinator and checked against their digests),
    // a straight-line VM program and a looping one. Each is proved by the real worker, submitted
    // on-chain, certified, paid, and its served proof and output check out here.
    let a: Vec<u32> = (0..64).map(|i| i * 3 + 1).collect();
    let b: Vec<u32> = (0..64).map(|i| (i * 7) % 11).collect();
    let (a_sha, b_sha) = (api.put_blob(&a).await, api.put_blob(&b).await);
    let expected_c = obelysk_prover::matmul::native_matmul(8, &a, &b);
    let looping = "jnz r0 2\nhalt\naddi r1 r1 10\naddi r0 r0 2147483646\njmp 0\n";
    let shapes = [
        (JobSpec::MatmulData { n: 8, a: a_sha, b: b_sha }, expected_c),
        (
            JobSpec::Vm { program: program("mul r2 r0 r1\naddi r2 r2 5\nmov r3 r2"), inputs: [3, 4, 0, 0] },
            vec![3, 4, 17, 17],
        ),
        (JobSpec::VmJump { program: program(looping), inputs: [3, 0, 0, 0], max_steps: 64 }, vec![0, 30, 0, 0]),
    ];
    for (i, (spec, expected)) in shapes.into_iter().enumerate() {
        let (job, _) = api.escrow_and_await_submit(&net, &mut events, Felt::from(0x600 + i as u32), &spec).await;
        let proof = net.contracts.jobs.get_job(&net.client, job.id).await.unwrap().proof_hash;
        net.certify(job.id, proof, Verdict::Valid).await;
        api.until_paid(job.id).await;
        // The served proof verifies for this spec, its inputs and this worker, and commits to the
        // served output, which is the one computed here.
        let blobs: Vec<Vec<u8>> = [&a, &b][..spec.blobs().len()].iter().map(|m| le(m)).collect();
        let prover_job = spec.prover_job(job.id, address, &blobs).unwrap();
        let envelope = api.get(&format!("/v1/jobs/{:#x}/proof", job.id)).await;
        let verified =
            obelysk_prover::verify_bytes(&envelope, &prover_job, &obelysk_prover::VerifyPolicy::insecure_for_tests())
                .unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        let output = api.get(&format!("/v1/jobs/{:#x}/output", job.id)).await;
        assert_eq!(output, le(&expected), "{spec:?}");
        let output = sage_protocol::prover::output_from_bytes(&spec, &output).unwrap();
        verified.check_output(&output).unwrap();
    }
    running.shutdown().await;
}

fn le(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn program(text: &str) -> sage_protocol::VmProgram {
    sage_protocol::VmProgram(obelysk_prover::vm::Program::parse(text).unwrap().encode())
}

/// The coordinator's API as a client uses it.
struct Client<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    key: &'a str,
}

impl Client<'_> {
    /// Uploads `spec`, escrows it from the client's account and waits for the worker's
    /// `submitted` event (no refusal on the way); returns the job and that event.
    async fn escrow_and_await_submit(
        &self,
        net: &Network,
        events: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
        cj: Felt,
        spec: &JobSpec,
    ) -> (JobView, Value) {
        let body = SubmitJob { client: net.client_acc.address(), client_job_id: cj, spec: spec.clone() };
        let r =
            self.http.post(format!("{}/v1/jobs", self.base)).bearer_auth(self.key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{spec:?}: {:?}", r.text().await);
        let job: JobView = r.json().await.unwrap();
        net.contracts
            .jobs
            .create_job(&net.client_acc, net.contracts.token, cj, spec.spec_hash(), 2 * SAGE, wall() + 3_600)
            .await
            .unwrap();
        let submitted = loop {
            let e = tokio::time::timeout(Duration::from_secs(90), events.recv()).await.expect("worker events").unwrap();
            assert_ne!(e["event"], "refused", "{spec:?}: {e}");
            if e["event"] == "submitted" {
                break e;
            }
        };
        assert_eq!(submitted["job_id"], format!("{:#x}", job.id));
        (job, submitted)
    }

    async fn get(&self, path: &str) -> Vec<u8> {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(self.key).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().await.unwrap().to_vec()
    }

    /// Uploads a matrix as a blob; returns its sha256.
    async fn put_blob(&self, values: &[u32]) -> [u8; 32] {
        let bytes = le(values);
        let sha = sage_net::blob_hash(&bytes);
        let url = format!("{}/v1/blobs/{}", self.base, sage_protocol::hex32::lower_hex(&sha));
        let r = self.http.put(url).bearer_auth(self.key).body(bytes).send().await.unwrap();
        assert_eq!(r.status(), 201);
        sha
    }

    async fn until_paid(&self, id: Felt) {
        let start = Instant::now();
        loop {
            let view: JobView = serde_json::from_slice(&self.get(&format!("/v1/jobs/{id:#x}")).await).unwrap();
            if view.state == JobState::Paid {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "not paid: {:#?}", view.history);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
