//! The demo's off-chain half: a real `sage-worker start` process proves a job that a coordinator
//! node assigns over libp2p on loopback; the coordinator fetches the proof by hash and verifies it
//! for that job and that worker.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc as std_mpsc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use obelysk_prover::{
    Job, VerifyPolicy,
    matmul::MatmulJob,
    statement::{JobId, WorkerAddress},
};
use sage_chain::Felt;
use sage_keys::StarkKey;
use sage_net::{
    Heartbeat, JobAssignment, JobOutcome, JobRequest, JobResult, NetConfig, NetEvent, NodeHandle, SignedMessage, Topic,
    load_or_create_identity,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

use crate::workspace_root;

/// Matrix size of the demo job (production security: what validators accept).
const DEMO_N: u32 = 64;
const WAIT: Duration = Duration::from_secs(180);

/// The worker process; killed if the demo stops early.
struct WorkerProcess {
    child: Child,
    events: std_mpsc::Receiver<Value>,
}

impl WorkerProcess {
    fn expect(&self, event: &str) -> Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(v) if v["event"] == event => return Ok(v),
                Ok(_) => {}
                Err(_) => bail!("the worker sent no {event:?} event (its log is on stderr above)"),
            }
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds `sage-worker` (dev profile, like the tests) and returns the binary's path.
fn build_worker() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "sage-worker"])
        .current_dir(workspace_root())
        .status()
        .context("running cargo build -p sage-worker")?;
    if !status.success() {
        bail!("cargo build -p sage-worker failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    Ok(target.join("debug").join("sage-worker"))
}

fn worker_command(bin: &Path, home: &Path, password: &str) -> Command {
    let mut cmd = Command::new(bin);
    // The password travels in the environment, never on the command line.
    cmd.env("SAGE_KEYSTORE_PASSWORD", password).env("HOME", home).env_remove("SAGE_PROVER_BACKEND");
    cmd
}

async fn next_from(rx: &mut Receiver<NetEvent>, topic: Topic, signer: Felt) -> Result<SignedMessage> {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(NetEvent::Message { message, .. }) if message.topic == topic && message.signer == signer => {
                    return Ok(message);
                }
                Some(_) => {}
                None => bail!("the coordinator node stopped"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.with_context(|| format!("nothing on {topic:?} from the worker"))?
}

/// Runs the worker half of the demo; `say` prints progress. Returns the JSON summary.
pub async fn run(say: &dyn Fn(String), step: (usize, usize)) -> Result<Value> {
    let (first, total) = step;
    say(format!(
        "{first}/{total} starting a worker: `sage-worker start` (wallet, libp2p node, prover on backend auto)"
    ));
    let bin = build_worker()?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let home = std::env::temp_dir().join(format!("sage-demo-worker-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let result = run_in(&bin, &home, say, first + 1, total).await;
    let _ = std::fs::remove_dir_all(&home);
    result
}

async fn run_in(bin: &Path, home: &Path, say: &dyn Fn(String), step: usize, total: usize) -> Result<Value> {
    // Secrets from the OS RNG; never printed.
    let password = format!("{:x}", StarkKey::from_random()?.expose_secret());
    let keystore = home.join("keystore.json");
    let out = worker_command(bin, home, &password)
        .args(["--json", "create-wallet", "--scrypt-log-n", "14", "--keystore"])
        .arg(&keystore)
        .arg("--mnemonic-out")
        .arg(home.join("mnemonic.txt"))
        .output()
        .context("running sage-worker create-wallet")?;
    if !out.status.success() {
        bail!("sage-worker create-wallet failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let wallet: Value = serde_json::from_slice(&out.stdout)?;
    let felt = |v: &Value| Felt::from_hex(v.as_str().unwrap_or_default()).context("a felt in the worker's output");
    let (address, public_key) = (felt(&wallet["address"])?, felt(&wallet["public_key"])?);

    let coordinator = StarkKey::from_random()?;
    // The worker's default config location: config.toml next to its keystore.
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[worker]\nheartbeat_secs = 1\n\n[prover]\nbackend = \"auto\"\nmax_matmul_n = 256\n\n[network]\n\
             listen = \"/ip4/127.0.0.1/tcp/0\"\ncoordinator = \"{:#x}\"\n",
            coordinator.public_key()
        ),
    )?;
    let mut child = worker_command(bin, home, &password)
        .args(["--json", "start", "--keystore"])
        .arg(&keystore)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting sage-worker start")?;
    let stdout = child.stdout.take().context("the worker's stdout")?;
    let (tx, events) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    let worker = WorkerProcess { child, events };
    let ready = worker.expect("ready")?;
    say(format!(
        "    worker {address:#066x}\n    peer {} on {}, backend {}",
        ready["peer_id"].as_str().unwrap_or("?"),
        ready["listen"].as_str().unwrap_or("?"),
        ready["backend"].as_str().unwrap_or("?")
    ));

    say(format!(
        "{step}/{total} a coordinator assigns a {DEMO_N}x{DEMO_N} matmul job over libp2p; the worker proves it"
    ));
    let listen = ready["listen"].as_str().context("the worker's listen address")?.parse()?;
    let net = NetConfig { bootstrap: vec![listen], mesh_n: 2, ..NetConfig::default() };
    let identity = load_or_create_identity(&home.join("coordinator-p2p.key"))?;
    let (node, mut rx) = NodeHandle::start(net, identity, coordinator.clone()).await?;
    let beat = Heartbeat::from_message(&next_from(&mut rx, Topic::Heartbeats, public_key).await?)?;
    say(format!("    heartbeat from the worker: backend {}, load {} %", beat.backend, beat.load_percent));
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let seed = StarkKey::from_random()?.expose_secret();
    let assignment = JobAssignment {
        job_id: Felt::from(now),
        worker: address,
        request: JobRequest::Matmul { n: DEMO_N, seed },
        expires_at: now + 600,
    };
    node.publish_when_ready(&assignment.sign(&coordinator, node.network())?, Duration::from_secs(30))
        .await
        .context("publishing the assignment")?;
    let result = JobResult::from_message(&next_from(&mut rx, Topic::Results, public_key).await?)?;
    let JobOutcome::Proved { proof_hash, blob, provider, bytes, backend, prove_ms } = result.outcome else {
        bail!("the worker refused the job: {:?}", result.outcome);
    };
    say(format!("    proved on the {backend} backend in {prove_ms} ms: {bytes} bytes, proof hash {proof_hash}"));

    let envelope = node.fetch(provider.parse()?, blob).await?;
    let job = Job::matmul(
        JobId(assignment.job_id.to_bytes_be()),
        WorkerAddress(address.to_bytes_be()),
        MatmulJob::from_seed(DEMO_N, seed.to_bytes_be()),
    );
    let verified = obelysk_prover::verify_bytes(&envelope, &job, &VerifyPolicy::default())
        .context("the fetched proof does not verify for this job and worker")?;
    if obelysk_prover::proof_hash(&envelope)?.to_hex() != proof_hash {
        bail!("the fetched envelope's hash differs from the announced one");
    }
    say(format!(
        "    fetched by hash from the worker and verified: {} bits of security, bound to job {:#x} and the worker",
        verified.security_bits, assignment.job_id
    ));

    let pid = worker.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    worker.expect("stopped")?;
    Ok(json!({
        "worker": format!("{address:#066x}"),
        "backend": backend,
        "job_id": format!("{:#x}", assignment.job_id),
        "matmul_n": DEMO_N,
        "proof_hash": proof_hash,
        "proof_bytes": bytes,
        "prove_ms": prove_ms,
        "security_bits": verified.security_bits,
        "verified": true,
    }))
}
