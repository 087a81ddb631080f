//! `sage-worker start` as a real process, driven over loopback libp2p by a coordinator node that
//! lives in the test: assignments in, heartbeats and results out, proofs fetched by hash and
//! verified with the ordinary verifier.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc as std_mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use obelysk_prover::{
    Job, VerifyPolicy,
    matmul::MatmulJob,
    statement::{JobId, WorkerAddress},
};
use sage_keys::StarkKey;
use sage_net::{
    Heartbeat, JobAssignment, JobOutcome, JobRequest, JobResult, NetConfig, NetEvent, NodeHandle, PeerId,
    SignedMessage, Topic,
};
use starknet_types_core::felt::Felt;
use tokio::sync::mpsc::Receiver;

const PASSWORD: &str = "worker test password";

fn worker_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sage-worker"));
    cmd.env("HOME", home)
        .env("SAGE_KEYSTORE_PASSWORD", PASSWORD)
        .env_remove("SAGE_KEYSTORE")
        .env_remove("SAGE_PROVER_BACKEND")
        .env_remove("SAGE_WORKER_CONFIG");
    cmd
}

/// Creates a wallet with a cheap scrypt; returns (keystore, address, public key).
fn wallet(home: &Path) -> (PathBuf, Felt, Felt) {
    let ks = home.join("ks.json");
    let out = worker_cmd(home)
        .args(["--json", "create-wallet", "--scrypt-log-n", "10", "--keystore"])
        .arg(&ks)
        .arg("--mnemonic-out")
        .arg(home.join("mnemonic"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let felt = |k: &str| Felt::from_hex(v[k].as_str().unwrap()).unwrap();
    (ks, felt("address"), felt("public_key"))
}

/// A running `sage-worker start`, its stdout events arriving on a channel.
struct Worker {
    child: Child,
    lines: std_mpsc::Receiver<serde_json::Value>,
}

impl Worker {
    fn spawn(home: &Path, ks: &Path, config: &Path) -> Self {
        let mut child = worker_cmd(home)
            .args(["--json", "start", "--keystore"])
            .arg(ks)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next event named `name` (earlier ones are skipped).
    fn expect(&self, name: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == name => return v,
                Ok(_) => {}
                Err(e) => panic!("no {name:?} event from the worker: {e}"),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let stopped = self.expect("stopped");
        assert_eq!(stopped["signal"], "SIGTERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Waits for the first message on `topic` signed by `signer`.
async fn next_from(rx: &mut Receiver<NetEvent>, topic: Topic, signer: Felt) -> SignedMessage {
    let wait = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match rx.recv().await {
                Some(NetEvent::Message { message, .. }) if message.topic == topic && message.signer == signer => {
                    return message;
                }
                Some(_) => {}
                None => panic!("coordinator node stopped"),
            }
        }
    });
    wait.await.unwrap_or_else(|_| panic!("nothing on {topic:?} from {signer:#x}"))
}

async fn publish(node: &NodeHandle, msg: &SignedMessage) {
    node.publish_when_ready(msg, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("could not publish on {:?}: {e}", msg.topic));
}

fn config(home: &Path, coordinator: Felt, backend: &str) -> PathBuf {
    let path = home.join("worker.toml");
    std::fs::write(
        &path,
        format!(
            "[worker]\ngpu_tier = \"T4\"\nheartbeat_secs = 1\n\n[prover]\nbackend = \"{backend}\"\n\
             security = \"production\"\nmax_matmul_n = 64\n\n[network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\n\
             coordinator = \"{coordinator:#x}\"\n"
        ),
    )
    .unwrap();
    path
}

fn job(job_id: u8, worker: Felt, n: u32, expires_at: u64) -> JobAssignment {
    JobAssignment {
        job_id: Felt::from(job_id),
        worker,
        request: JobRequest::Matmul { n, seed: Felt::from(0xabcdu32) },
        expires_at,
        sent_at_ms: 0,
        inputs_from: None,
    }
}

async fn worker_serves_assignments(backend: &str) {
    let home = tempfile::tempdir().unwrap();
    let (ks, address, public_key) = wallet(home.path());
    let coordinator = StarkKey::from_secret(Felt::from(0xc00du32)).unwrap();
    let cfg = config(home.path(), coordinator.public_key(), backend);
    let worker = Worker::spawn(home.path(), &ks, &cfg);
    let ready = worker.expect("ready");
    assert_eq!(ready["address"], format!("{address:#x}"));
    assert_eq!(ready["public_key"], format!("{public_key:#x}"));
    assert_eq!(ready["backend"], backend);
    let listen = ready["listen"].as_str().unwrap().parse().unwrap();

    let identity = libp2p_identity();
    let net = NetConfig { bootstrap: vec![listen], mesh_n: 2, ..NetConfig::default() };
    let (node, mut events) = NodeHandle::start(net, identity, coordinator.clone()).await.unwrap();

    // Heartbeats: signed by the wallet's key, naming its address, tier and backend.
    let beat = Heartbeat::from_message(&next_from(&mut events, Topic::Heartbeats, public_key).await).unwrap();
    assert_eq!((beat.worker, beat.gpu_tier, beat.backend.as_str()), (address, Some(sage_net::GpuTier::T4), backend));

    // A forged assignment (right payload, wrong signer) is ignored and said so.
    let intruder = StarkKey::from_secret(Felt::from(0xbadu32)).unwrap();
    publish(&node, &job(1, address, 16, unix_now() + 600).sign(&intruder, node.network()).unwrap()).await;
    let ignored = worker.expect("ignored");
    assert!(ignored["reason"].as_str().unwrap().contains(&format!("{:#x}", intruder.public_key())), "{ignored}");

    // Too large for this worker, then expired: refused on the results topic, with the reason.
    for (assignment, needle) in
        [(job(2, address, 128, unix_now() + 600), "limit of 64"), (job(3, address, 16, unix_now() - 5), "expired")]
    {
        publish(&node, &assignment.sign(&coordinator, node.network()).unwrap()).await;
        let result = JobResult::from_message(&next_from(&mut events, Topic::Results, public_key).await).unwrap();
        assert_eq!(result.job_id, assignment.job_id);
        match result.outcome {
            JobOutcome::Refused { reason } => assert!(reason.contains(needle), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    // A real job: proved, announced, fetched by hash from the worker, verified for this worker.
    let assignment = job(4, address, 16, unix_now() + 600);
    publish(&node, &assignment.sign(&coordinator, node.network()).unwrap()).await;
    let assigned = worker.expect("assigned");
    assert_eq!(
        (&assigned["type"], &assigned["size"]),
        (&serde_json::json!("matmul"), &serde_json::json!(16)),
        "{assigned}"
    );
    let result = JobResult::from_message(&next_from(&mut events, Topic::Results, public_key).await).unwrap();
    assert_eq!((result.job_id, result.worker), (assignment.job_id, address));
    let JobOutcome::Proved { proof_hash, blob, provider, bytes, backend: made_on, .. } = result.outcome else {
        panic!("expected a proof, got {:?}", result.outcome);
    };
    assert_eq!(made_on, backend);
    let provider: PeerId = provider.parse().unwrap();
    assert_eq!(provider.to_string(), ready["peer_id"].as_str().unwrap());
    let envelope = node.fetch(provider, blob).await.unwrap();
    assert_eq!(envelope.len() as u64, bytes);
    assert_eq!(obelysk_prover::proof_hash(&envelope).unwrap().to_hex(), proof_hash);
    let expected_job = Job::matmul(
        JobId(assignment.job_id.to_bytes_be()),
        WorkerAddress(address.to_bytes_be()),
        MatmulJob::from_seed(16, Felt::from(0xabcdu32).to_bytes_be()),
    );
    let verified = obelysk_prover::verify_bytes(&envelope, &expected_job, &VerifyPolicy::default()).unwrap();
    assert!(verified.security_bits >= 96);
    // The same proof bound to another worker does not verify.
    let other = Job { worker: WorkerAddress::from_u128(5), ..expected_job.clone() };
    assert!(obelysk_prover::verify_bytes(&envelope, &other, &VerifyPolicy::default()).is_err());
    let proved = worker.expect("proved");
    assert_eq!(proved["reused"], false);
    assert_eq!(std::fs::read(proved["path"].as_str().unwrap()).unwrap(), envelope);

    // Re-sent (a coordinator that lost the result): answered from the stored envelope, not re-proved.
    let again = JobAssignment { expires_at: assignment.expires_at + 1, ..assignment };
    publish(&node, &again.sign(&coordinator, node.network()).unwrap()).await;
    let result = JobResult::from_message(&next_from(&mut events, Topic::Results, public_key).await).unwrap();
    assert!(matches!(&result.outcome, JobOutcome::Proved { proof_hash: h, .. } if *h == proof_hash), "{result:?}");
    assert_eq!(worker.expect("proved")["reused"], true);

    // A replay of an assignment already handled, re-wrapped so gossip sees new bytes, is not
    // answered: the next result on the topic is the one for the job sent after it.
    let original = again.sign(&coordinator, node.network()).unwrap().encode();
    let mut rewrapped = b" ".to_vec();
    rewrapped.extend_from_slice(&original);
    for _ in 0..100 {
        if node.publish_unchecked(Topic::Jobs, rewrapped.clone()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = job(5, address, 128, unix_now() + 600);
    publish(&node, &after.sign(&coordinator, node.network()).unwrap()).await;
    let next = JobResult::from_message(&next_from(&mut events, Topic::Results, public_key).await).unwrap();
    assert_eq!(next.job_id, after.job_id, "the replayed assignment was answered: {next:?}");

    let status = worker.terminate();
    assert!(status.success(), "{status:?}");
}

fn libp2p_identity() -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::generate_ed25519()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_proves_the_coordinators_assignments_on_the_cpu() {
    worker_serves_assignments("cpu").await;
}

/// `start` on the GPU backend: with the `gpu` feature (CI builds it, with Mesa lavapipe) it proves
/// on the device; without it, it stops before joining the network, naming the missing backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_on_the_gpu_backend() {
    if cfg!(feature = "gpu") {
        worker_serves_assignments("gpu").await;
    } else {
        let home = tempfile::tempdir().unwrap();
        let (ks, _, _) = wallet(home.path());
        let cfg = config(home.path(), Felt::from(7u8), "gpu");
        let out =
            worker_cmd(home.path()).args(["start", "--keystore"]).arg(&ks).arg("--config").arg(&cfg).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unavailable") && err.contains("gpu"), "{err}");
    }
}

#[test]
fn start_refuses_a_config_without_a_coordinator_before_asking_for_the_password() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("worker.toml");
    // `start` with `config` as the file, no password anywhere: the error it ends with.
    let refused = |config: &str| {
        std::fs::write(&cfg, config).unwrap();
        let out = worker_cmd(home.path())
            .env_remove("SAGE_KEYSTORE_PASSWORD")
            .args(["start", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{config}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("[prover]\nbackend = \"cpu\"\n");
    assert!(err.contains("no coordinator key") && !err.contains("password"), "{err}");
    // A typo in the file is named, not ignored.
    assert!(refused("[prover]\nbackedn = \"cpu\"\n").contains("backedn"));
    // Test-level proofs against a chain that is not a local devnet: refused before the password.
    let err = refused(
        "[prover]\nsecurity = \"test\"\n[network]\ncoordinator = \"0x123\"\n\
         [chain]\nrpc_url = \"https://rpc.starknet.example/rpc\"\nmanifest = \"m.json\"\n",
    );
    assert!(
        err.contains("test-level proofs") && err.contains("rpc.starknet.example") && !err.contains("password"),
        "{err}"
    );
}
