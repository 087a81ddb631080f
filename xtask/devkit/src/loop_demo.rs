//! The demo's whole loop on the demo's devnet: four validators and a worker join (accounts,
//! stake, registration), a coordinator and the validators start, a real `sage-worker start`
//! process is assigned the client's escrowed job, proves it, submits it on-chain; the validators
//! verify and certify it; the coordinator pays; the worker decrypts and claims its payment. Then a
//! second worker cheats (proves another computation and submits that proof): the validators
//! certify it invalid, its stake is slashed and the client refunded.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use sage_chain::{
    ChainClient, Felt, Manifest, SAGE, SageAccount, StarkKey, contracts::Deployment, devnet::Devnet, oz_account_address,
};
use sage_protocol::{
    JobSpec,
    api::{JobState, JobView, SubmitJob},
};
use serde_json::{Value, json};

use sage_coordinator::testing::staked_account;

use crate::worker_demo::{WorkerProcess, build_worker, worker_command};

const N: u32 = 64;
const VALIDATORS: usize = 4;
/// Stake lock of the demo's validators and cheater: 30 days.
const LOCK_SECS: u64 = 30 * 24 * 3600;

/// The client's side of a job: upload the spec (`POST /v1/jobs`), then escrow `price` for it from
/// its own account (`create_job`, an hour to the deadline). Seed and client job id come from the
/// OS RNG (a fresh key's public key is a uniform felt).
async fn submit_and_escrow(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    user: &SageAccount,
    c: &Deployment,
    price: u128,
) -> Result<JobView> {
    let spec = JobSpec::Matmul { n: N, seed: StarkKey::from_random()?.public_key() };
    let client_job_id = StarkKey::from_random()?.public_key();
    let body = SubmitJob { client: user.address(), client_job_id, spec: spec.clone() };
    let view: JobView = http
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(api_key)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    c.jobs.create_job(user, c.token, client_job_id, spec.spec_hash(), price, now + 3_600).await?;
    Ok(view)
}

fn sage_fmt(amount: u128) -> String {
    format!("{}.{:06}", amount / SAGE, amount % SAGE / 1_000_000_000_000)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

fn run_json(bin: &Path, home: &Path, password: &str, args: &[&str]) -> Result<Value> {
    let out = worker_command(bin, home, password).arg("--json").args(args).output()?;
    if !out.status.success() {
        bail!("sage-worker {} failed: {}", args.first().unwrap_or(&""), String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The loop's working folder, removed however the loop ends.
struct TempHome(std::path::PathBuf);

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the loop; `say` prints progress; `first` is the first step number of `total`.
#[allow(clippy::too_many_arguments, reason = "the demo's pieces, named")]
pub async fn run(
    say: &dyn Fn(String),
    (first, total): (usize, usize),
    devnet: &Devnet,
    client: &ChainClient,
    manifest: &Manifest,
    manifest_path: &Path,
    owner: &SageAccount,
    user: &SageAccount,
) -> Result<Value> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let folder = TempHome(std::env::temp_dir().join(format!("sage-demo-loop-{}-{stamp}", std::process::id())));
    std::fs::create_dir_all(&folder.0)?;
    let home = folder.0.as_path();
    let c = Deployment::from_manifest(manifest)?;
    let rpc = devnet.rpc_url().to_string();

    say(format!(
        "{first}/{total} four validators: fresh keys, accounts, 10,000 SAGE staked each, registered, installed as the set"
    ));
    let mut validators = Vec::new();
    let mut members = Vec::new();
    for _ in 0..VALIDATORS {
        let key = StarkKey::from_random()?;
        let account = staked_account(devnet, client, &c, owner, &key, 10_000 * SAGE, LOCK_SECS).await?;
        c.staking.register_validator(&account, key.public_key()).await?;
        members.push((key.public_key(), account.address()));
        validators.push(key);
    }
    c.verifier.set_validators(owner, &members).await?;
    say(format!("    set of {VALIDATORS}, threshold {}", 2 * VALIDATORS / 3 + 1));

    say(format!("{}/{total} a worker: `sage-worker create-wallet`, `request-tokens`, `stake`, `register`", first + 1));
    let bin = build_worker()?;
    let worker_home = home.join("worker");
    std::fs::create_dir_all(&worker_home)?;
    let password = format!("{:x}", StarkKey::from_random()?.expose_secret());
    let keystore = worker_home.join("keystore.json");
    let ks = keystore.to_string_lossy().to_string();
    let m = manifest_path.to_string_lossy().to_string();
    let chain = ["--keystore", ks.as_str(), "--rpc-url", rpc.as_str(), "--manifest", m.as_str()];
    let wallet = run_json(
        &bin,
        &worker_home,
        &password,
        &[
            "create-wallet",
            "--scrypt-log-n",
            "14",
            "--keystore",
            &ks,
            "--mnemonic-out",
            &worker_home.join("mnemonic.txt").to_string_lossy(),
        ],
    )?;
    let worker_address = Felt::from_hex(wallet["address"].as_str().unwrap_or_default())?;
    run_json(&bin, &worker_home, &password, &[&["request-tokens"][..], &chain].concat())?;
    // The T4 minimum is 1,000 SAGE: more than a faucet drip, so the deployer sends the rest.
    c.token.transfer(owner, worker_address, 1_000 * SAGE).await?;
    run_json(
        &bin,
        &worker_home,
        &password,
        &[&["stake", "--amount", "1000", "--gpu-tier", "T4"][..], &chain].concat(),
    )?;
    run_json(&bin, &worker_home, &password, &[&["register", "--tee", "none"][..], &chain].concat())?;
    say(format!("    worker {worker_address:#066x}: 1,000 SAGE staked (T4), registered (TEE none: devnet policy)"));
    // A second worker that will cheat later (a bare test node that proves whatever it is told).
    let cheat_key = StarkKey::from_random()?;
    let cheater = staked_account(devnet, client, &c, owner, &cheat_key, 1_000 * SAGE, LOCK_SECS).await?;
    let cheat_address = cheater.address();
    let evidence = sage_staking::TeeEvidence {
        tee_type: sage_staking::TeeType::None,
        measurement_hash: Felt::from_bytes_be_slice(b"NO-TEE"),
        quote_hash: cheat_key.public_key(),
    };
    let elgamal = obelysk_elgamal::SecretKey::generate()?;
    sage_staking::register_worker(&cheater, c.staking, &elgamal, evidence, cheat_key.public_key()).await?;
    say(format!("    and a second worker {cheat_address:#066x}, staked and registered the same way"));

    say(format!(
        "{}/{total} the coordinator (HTTP API, chain watcher, scheduler, outbox) and the validators start",
        first + 2
    ));
    let owner_secret = devnet
        .predeployed_accounts()
        .await?
        .into_iter()
        .find(|a| a.address == owner.address())
        .context("the coordinator runs as the devnet deployer, whose key devnet publishes")?
        .private_key;
    let coordinator_dir = home.join("coordinator");
    std::fs::create_dir_all(&coordinator_dir)?;
    write_private(&coordinator_dir.join("coordinator.key"), &format!("{owner_secret:#x}\n"))?;
    std::fs::write(
        coordinator_dir.join("coordinator.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[chain]\nrpc_url = \"{rpc}\"\nmanifest = \"{m}\"\naccount = \"{:#x}\"\n\
             key_file = \"coordinator.key\"\n[network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\n[jobs]\ntick_ms = 300\n\
             heartbeat_window_secs = 5\ntee_policy = \"development\"\n",
            owner.address()
        ),
    )?;
    let settings = sage_coordinator::settings::Settings::load(&coordinator_dir.join("coordinator.toml"))?;
    let key = sage_coordinator::read_key_file(&settings.key_file)?;
    let store = sage_coordinator::open_store(&settings).await?;
    let api_key = sage_jobs::keys::generate("demo client", 600, None, sage_jobs::now_ms())?;
    store.create_api_key(&api_key.row).await?;
    drop(store);
    let coordinator = sage_coordinator::start(settings, key).await?;
    let base = format!("http://{}", coordinator.api_addr);
    write_private(&home.join("api.key"), &api_key.text)?;
    let mut running_validators = Vec::new();
    let mut first_addr: Option<String> = None;
    for (i, key) in validators.iter().enumerate() {
        let dir = home.join(format!("validator-{i}"));
        std::fs::create_dir_all(&dir)?;
        let key_file = dir.join("account.key");
        write_private(&key_file, &format!("{:#x}\n", key.expose_secret()))?;
        let settings = sage_validator::Settings {
            data_dir: dir.join("data"),
            rpc_url: rpc.clone(),
            manifest: manifest_path.to_path_buf(),
            account: oz_account_address(key.public_key(), key.public_key()),
            vote_key_file: key_file.clone(),
            key_file,
            coordinator_url: base.clone(),
            api_key_file: home.join("api.key"),
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            bootstrap: first_addr.iter().cloned().chain([coordinator.p2p_addr.to_string()]).collect(),
            network: sage_net::DEFAULT_NETWORK,
            insecure_proofs: false,
            round_timeout_ms: 600_000,
            tick: Duration::from_millis(500),
            submit_turn: Duration::from_secs(5),
            bridge_listen: None,
            max_envelope_bytes: sage_validator::DEFAULT_MAX_ENVELOPE_BYTES,
            verify_threads: sage_validator::default_verify_threads(),
            verify_queue: sage_validator::DEFAULT_VERIFY_QUEUE,
        };
        let v = sage_validator::start(settings).await?;
        first_addr.get_or_insert(v.p2p_addr.to_string());
        running_validators.push(v);
    }
    say(format!("    API {base}, coordinator key {:#x}", coordinator.public_key));

    say(format!("{}/{total} `sage-worker start` with the chain configured, pinned to the coordinator", first + 3));
    std::fs::write(
        worker_home.join("config.toml"),
        format!(
            "[worker]\ngpu_tier = \"T4\"\nheartbeat_secs = 2\n[prover]\nbackend = \"auto\"\nmax_matmul_n = 256\n\
             [network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\nbootstrap = [\"{}\"]\ncoordinator = \"{:#x}\"\n\
             [chain]\nrpc_url = \"{rpc}\"\nmanifest = \"{m}\"\n",
            coordinator.p2p_addr, coordinator.public_key
        ),
    )?;
    let mut child = worker_command(&bin, &worker_home, &password)
        .args(["--json", "start", "--keystore", &ks])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting sage-worker start")?;
    let stdout = child.stdout.take().context("the worker's stdout")?;
    let (tx, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    let worker = WorkerProcess { child, events };
    worker.expect("ready")?;

    say(format!(
        "{}/{total} the client escrows a {N}x{N} matmul job from its own account and uploads it; it runs:",
        first + 4
    ));
    let http = reqwest::Client::new();
    let quote: Value = http
        .get(format!("{base}/v1/quote?type=matmul&size={N}"))
        .bearer_auth(&api_key.text)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let price: u128 = quote["price"].as_str().unwrap_or("0").parse()?;
    let view = submit_and_escrow(&http, &base, &api_key.text, user, &c, price).await?;
    let started = Instant::now();
    let mut shown = 0;
    let (paid, to_paid) = loop {
        let v: JobView = http
            .get(format!("{base}/v1/jobs/{:#x}", view.id))
            .bearer_auth(&api_key.text)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for t in &v.history[shown..] {
            let tx = t.tx.map(|tx| format!(" tx {tx:#x}")).unwrap_or_default();
            say(format!("    [{:>5.1}s] {:<16}{tx}", started.elapsed().as_secs_f64(), t.state.as_str()));
        }
        shown = v.history.len();
        if v.state == JobState::Paid {
            break (v, started.elapsed());
        }
        if v.state.is_terminal() || started.elapsed() > Duration::from_secs(300) {
            bail!("the job ended {} instead of paid: {:?}", v.state, v.history.last());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    let certified_tx = paid.history.iter().find(|t| t.state == JobState::Certified).and_then(|t| t.tx);
    let signers = match certified_tx {
        Some(tx) => qc_signers(client, tx).await?,
        None => bail!("the paid job has no certified transition with a transaction"),
    };
    say(format!(
        "    QC signed by validators {:?} of {VALIDATORS} (keys {}); proof {:#x}",
        signers,
        signers
            .iter()
            .filter_map(|i| members.get(*i as usize))
            .map(|(k, _)| format!("{}…", &format!("{k:#x}")[..10]))
            .collect::<Vec<_>>()
            .join(", "),
        paid.proof_hash.unwrap_or_default()
    ));
    let ciphertext = c.privacy.pending_of(client, worker_address).await?;

    say(format!("{}/{total} the worker decrypts its encrypted payment and claims it", first + 5));
    let balance = run_json(&bin, &worker_home, &password, &[&["balance"][..], &chain].concat())?;
    let claimed = run_json(&bin, &worker_home, &password, &[&["claim"][..], &chain].concat())?;
    say(format!(
        "    on-chain ciphertext ({:#x}, {:#x}, …) decrypts to {} SAGE; claimed in tx {}",
        ciphertext[0],
        ciphertext[1],
        balance["sage"].as_str().unwrap_or("?"),
        claimed["tx"].as_str().unwrap_or("?")
    ));
    drop(worker);

    say(format!(
        "{}/{total} the second worker cheats: it proves another computation (at test security) and submits that proof",
        first + 6
    ));
    let stake_before = c.staking.get_stake(client, cheat_address).await?.amount;
    // The honest worker is gone; once its heartbeats are older than the window, only the
    // cheater can be assigned.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let addr = sage_coordinator::testing::CoordinatorAddr {
        p2p_addr: coordinator.p2p_addr.clone(),
        public_key: coordinator.public_key,
    };
    let mut cheat = sage_coordinator::testing::TestWorker::start(cheater.clone(), cheat_key, &addr).await;
    let second = submit_and_escrow(&http, &base, &api_key.text, user, &c, price).await?;
    let client_before = c.token.balance_of(client, user.address()).await?;
    let a = tokio::time::timeout(Duration::from_secs(120), cheat.assignments.recv())
        .await
        .context("the cheater was never assigned")?
        .context("the cheater's node stopped")?;
    let forged = sage_net::JobAssignment { request: JobSpec::Matmul { n: N, seed: Felt::from(1u8) }, ..a.clone() };
    let (bad_proof, output) = cheat.announce(&forged).await;
    c.jobs.submit_result(&cheater, second.id, output, bad_proof).await?;
    say(format!(
        "    job {:#x}: proof {bad_proof:#x} submitted; the validators fetch it from the worker and judge it",
        second.id
    ));
    let started = Instant::now();
    while c.verifier.verdict(client, second.id).await? == sage_chain::contracts::RecordedVerdict::None {
        if started.elapsed() > Duration::from_secs(180) {
            bail!("no verdict on the cheater's proof after 180 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let verdict = c.verifier.verdict(client, second.id).await?;
    let stake_after = c.staking.get_stake(client, cheat_address).await?.amount;
    let client_after = c.token.balance_of(client, user.address()).await?;
    say(format!(
        "    verdict {verdict:?} after {:.1}s: the cheater's stake {} → {} SAGE, the client refunded {} SAGE",
        started.elapsed().as_secs_f64(),
        stake_before / SAGE,
        stake_after / SAGE,
        sage_fmt(client_after.saturating_sub(client_before))
    ));
    if verdict != sage_chain::contracts::RecordedVerdict::Invalid
        || stake_after >= stake_before
        || client_after < client_before + price
    {
        bail!("the cheater was not slashed and the client not refunded");
    }
    drop(cheat.alive);
    for v in running_validators {
        v.shutdown().await;
    }
    coordinator.shutdown().await;
    Ok(json!({
        "job": format!("{:#x}", paid.id),
        "worker": format!("{worker_address:#066x}"),
        "price": price.to_string(),
        "states": paid.history.iter().map(|t| t.state.as_str()).collect::<Vec<_>>(),
        "transactions": paid
            .history
            .iter()
            .filter_map(|t| t.tx.map(|tx| json!({ "state": t.state.as_str(), "tx": format!("{tx:#x}") })))
            .collect::<Vec<_>>(),
        "proof_hash": paid.proof_hash.map(|p| format!("{p:#x}")),
        "qc": {
            "tx": certified_tx.map(|t| format!("{t:#x}")),
            "signers": signers
                .iter()
                .filter_map(|i| members.get(*i as usize).map(|(k, a)| json!({
                    "index": i, "vote_key": format!("{k:#x}"), "account": format!("{a:#x}") })))
                .collect::<Vec<_>>(),
        },
        "ciphertext": ciphertext.iter().map(|f| format!("{f:#x}")).collect::<Vec<_>>(),
        "seconds_to_paid": to_paid.as_secs_f64(),
        "claimed": claimed,
        "cheat": {
            "job": format!("{:#x}", second.id),
            "worker": format!("{cheat_address:#066x}"),
            "verdict": format!("{verdict:?}"),
            "stake_before": stake_before.to_string(),
            "stake_after": stake_after.to_string(),
            "client_refunded": (client_after - client_before).to_string(),
        },
    }))
}

/// The member indices that signed a QC, read from the `submit_qc` call in its transaction
/// (account multicall: `[calls, to, selector, len, job, proof, verdict, version, n, (i, r, s)…]`).
async fn qc_signers(client: &ChainClient, tx: Felt) -> Result<Vec<u32>> {
    use starknet_rust::{
        core::types::{InvokeTransaction, Transaction},
        providers::Provider,
    };
    let t = client.provider().get_transaction_by_hash(tx, None).await.context("reading the QC transaction")?;
    let Transaction::Invoke(InvokeTransaction::V3(t)) = t else { bail!("the QC transaction is not an invoke v3") };
    let d = &t.calldata;
    let count = d.get(8).and_then(|n| u64::try_from(*n).ok()).context("no signatures in the QC calldata")?;
    (0..count as usize)
        .map(|k| {
            d.get(9 + 3 * k)
                .and_then(|i| u32::try_from(*i).ok())
                .context("a signer index is missing from the QC calldata")
        })
        .collect()
}
