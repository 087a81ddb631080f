//! The local network the scenarios run on: a devnet with the contracts deployed, then every
//! actor as a real process (coordinator, four validators, two workers), each with its own
//! folder, config and key files, its stdout and stderr kept in the log folder. Commands are run
//! the way an operator types them, with `--json`; secrets travel in files or the environment,
//! never on argv.

use std::{
    io::{BufRead, Seek},
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use sage_chain::{
    Artifacts, ChainClient, ChainConfig, DeployParams, Felt, SAGE, SageAccount, StarkKey,
    contracts::Deployment,
    deploy_sage,
    devnet::{Devnet, DevnetOptions},
    oz_account_address,
};
use serde_json::Value;

/// Validators in the set (threshold 3).
pub const VALIDATORS: usize = 4;
/// Worker processes.
pub const WORKERS: usize = 2;
/// The verdict grace the harness deploys with: short, so "no quorum → refund" fits in a run.
pub const VERDICT_GRACE: u64 = 10;
/// The coordinator's assignment lease: a killed worker is replaced after it.
pub const LEASE_SECS: u64 = 20;
/// Stake lock of workers and validators.
pub const LOCK_SECS: u64 = 30 * 24 * 3600;

/// The three operator binaries.
#[derive(Debug, Clone)]
pub struct Bins {
    pub worker: PathBuf,
    pub coordinator: PathBuf,
    pub validator: PathBuf,
}

impl Bins {
    /// The binaries in `dir` (a cargo target profile folder), each checked to exist.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let get = |name: &str| {
            let p = dir.join(name);
            if p.is_file() { Ok(p) } else { bail!("{} is missing: build it first (cargo xtask e2e does)", p.display()) }
        };
        Ok(Self {
            worker: get("sage-worker")?,
            coordinator: get("sage-coordinator")?,
            validator: get("sage-validator")?,
        })
    }
}

/// A running actor. Killed when dropped, so a failed scenario never leaves processes behind.
pub struct Proc {
    pub name: String,
    child: tokio::process::Child,
    out: PathBuf,
    offset: u64,
}

impl Proc {
    /// Starts `bin args…` with `env`; stdout is appended to `<logs>/<name>.out`, stderr to
    /// `<logs>/<name>.log`.
    pub fn spawn(bin: &Path, args: &[&str], env: &[(&str, &str)], logs: &Path, name: &str) -> Result<Self> {
        let out = logs.join(format!("{name}.out"));
        let open = |p: &Path| std::fs::OpenOptions::new().create(true).append(true).open(p);
        let stdout = open(&out)?;
        let offset = stdout.metadata()?.len();
        let stderr = open(&logs.join(format!("{name}.log")))?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,libp2p=warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {name} ({})", bin.display()))?;
        Ok(Self { name: name.to_owned(), child, out, offset })
    }

    /// Waits for the first `--json` line on stdout (since this start) whose `event` is `event`.
    pub async fn event(&mut self, event: &str, timeout: Duration) -> Result<Value> {
        let start = Instant::now();
        loop {
            let mut f = std::fs::File::open(&self.out)?;
            f.seek(std::io::SeekFrom::Start(self.offset))?;
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == event
                {
                    return Ok(v);
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}) before its {event:?} event; see {}", self.name, self.log().display());
            }
            if start.elapsed() > timeout {
                bail!("{} sent no {event:?} event in {timeout:?}; see {}", self.name, self.log().display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The stderr log.
    pub fn log(&self) -> PathBuf {
        self.out.with_extension("log")
    }

    /// SIGKILL: no shutdown path runs (a crash).
    pub async fn kill(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_err() {
            self.child.start_kill()?;
            self.child.wait().await?;
        }
        Ok(())
    }
}

/// One finished command.
#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Every JSON value on stdout: one per line, or one document printed over several lines.
    pub fn lines(&self) -> Vec<Value> {
        if let Ok(v) = serde_json::from_str::<Value>(self.stdout.trim()) {
            return vec![v];
        }
        self.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

/// Runs a command to completion with `--json`, its output appended to `<logs>/commands.log`.
pub async fn run(bin: &Path, args: &[&str], env: &[(&str, &str)], logs: &Path) -> Result<Output> {
    let name = bin.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let out = tokio::process::Command::new(bin)
        .arg("--json")
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {name}"))?;
    let o = Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(logs.join("commands.log"))?;
    std::io::Write::write_all(
        &mut log,
        format!("$ {name} --json {}\n[exit ok={}]\n{}{}\n", args.join(" "), o.ok, o.stdout, o.stderr).as_bytes(),
    )?;
    Ok(o)
}

/// [`run`], failing unless the command succeeded; returns its last JSON line.
pub async fn json(bin: &Path, args: &[&str], env: &[(&str, &str)], logs: &Path) -> Result<Value> {
    let o = run(bin, args, env, logs).await?;
    let name = bin.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if !o.ok {
        bail!("`{name} {}` failed: {}", args.first().copied().unwrap_or(""), o.stderr.trim());
    }
    o.lines().pop().with_context(|| format!("`{name} {}` printed no JSON", args.first().copied().unwrap_or("")))
}

/// A free loopback port (bound, then released).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A validator's folder and process.
pub struct Validator {
    pub dir: PathBuf,
    pub key: StarkKey,
    pub p2p: String,
    pub proc: Option<Proc>,
}

/// A worker operator's folder (keystore, config, p2p key) and its `sage-worker start` process.
pub struct Worker {
    pub home: PathBuf,
    pub keystore: PathBuf,
    pub password: String,
    pub address: Felt,
    pub proc: Option<Proc>,
}

impl Worker {
    /// The environment every command of this worker gets: the password (never argv) and a
    /// private HOME.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![("SAGE_KEYSTORE_PASSWORD", self.password.as_str()), ("HOME", self.home.to_str().unwrap_or("."))]
    }
}

/// The whole local network.
pub struct Net {
    pub bins: Bins,
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub devnet: Devnet,
    pub rpc: String,
    pub client: ChainClient,
    pub c: Deployment,
    pub manifest: PathBuf,
    pub owner: SageAccount,
    pub coordinator_account: Felt,
    coordinator_secret: StarkKey,
    pub coordinator_dir: PathBuf,
    pub coordinator: Option<Proc>,
    pub api: String,
    pub api_key_file: PathBuf,
    pub coordinator_p2p: String,
    pub validators: Vec<Validator>,
    pub workers: Vec<Worker>,
    pub client_account: SageAccount,
    pub client_key_file: PathBuf,
    /// What earlier scenarios established (the first job, its worker, …).
    pub facts: crate::scenarios::Facts,
    _blocks: tokio::task::JoinHandle<()>,
}

impl Net {
    /// Starts a devnet, deploys the contracts (verdict grace [`VERDICT_GRACE`]) and makes the
    /// client's account (a devnet-funded account with SAGE from the deployer).
    pub async fn start(bins: Bins, dir: &Path) -> Result<Self> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let devnet =
            Devnet::start(DevnetOptions { log_file: Some(logs.join("devnet.log")), ..DevnetOptions::default() })
                .await?;
        // Blocks keep coming without transactions, so leases and deadlines lapse on-chain too.
        let blocks = devnet.produce_blocks(Duration::from_secs(2));
        let rpc = devnet.rpc_url().to_string();
        let client = ChainClient::connect(ChainConfig::new(devnet.rpc_url())).await?;
        let first = devnet.predeployed_accounts().await?.into_iter().next().context("devnet has no accounts")?;
        let owner = SageAccount::new(client.clone(), first.address, StarkKey::from_secret(first.private_key)?);
        // The coordinator runs from its own account (not the deployer's): the owner's governance
        // calls and the coordinator's transactions never share a nonce.
        let coordinator_key = StarkKey::from_random()?;
        let coordinator_address = oz_account_address(coordinator_key.public_key(), coordinator_key.public_key());
        let mut params = DeployParams { faucet_cooldown: 3600, ..DeployParams::default() };
        if let Some(s) = params.settlement.as_mut() {
            s.verdict_grace = VERDICT_GRACE;
            s.coordinator = Some(coordinator_address);
            // F1 and F8 give the coordinator role to a second account mid-run; a closed setup
            // would make that wait eight days (the timelock has its own devnet test in sage-chain).
            s.close_setup = false;
        }
        let manifest = deploy_sage(&owner, &Artifacts::embedded()?, &params).await?;
        let manifest_path = dir.join("manifest.json");
        manifest.save(&manifest_path)?;
        let c = Deployment::from_manifest(&manifest)?;

        devnet.mint_strk(coordinator_address, 1_000 * SAGE).await?;
        sage_chain::deploy_oz_account(&client, coordinator_key.clone(), coordinator_key.public_key()).await?;

        let client_key = StarkKey::from_random()?;
        let client_address = oz_account_address(client_key.public_key(), client_key.public_key());
        devnet.mint_strk(client_address, 100 * SAGE).await?;
        let client_account =
            sage_chain::deploy_oz_account(&client, client_key.clone(), client_key.public_key()).await?;
        c.token.transfer(&owner, client_address, 10_000 * SAGE).await?;
        let client_dir = dir.join("client");
        std::fs::create_dir_all(&client_dir)?;
        let client_key_file = client_dir.join("account.key");
        write_private(&client_key_file, &format!("{:#x}\n", client_key.expose_secret()))?;

        let coordinator_dir = dir.join("coordinator");
        std::fs::create_dir_all(&coordinator_dir)?;
        Ok(Self {
            bins,
            dir: dir.to_owned(),
            logs,
            devnet,
            rpc,
            client,
            c,
            manifest: manifest_path,
            owner,
            coordinator_account: coordinator_address,
            coordinator_secret: coordinator_key,
            coordinator_dir,
            coordinator: None,
            api: String::new(),
            api_key_file: PathBuf::new(),
            coordinator_p2p: String::new(),
            validators: Vec::new(),
            workers: Vec::new(),
            client_account,
            client_key_file,
            facts: crate::scenarios::Facts::default(),
            _blocks: blocks,
        })
    }

    /// Writes the coordinator's config (fixed loopback ports, so a restart keeps its addresses),
    /// creates an API key with `sage-coordinator api-key create` and starts it.
    pub async fn start_coordinator(&mut self) -> Result<()> {
        let d = &self.coordinator_dir;
        write_private(&d.join("coordinator.key"), &format!("{:#x}\n", self.coordinator_secret.expose_secret()))?;
        let (api_port, p2p_port) = (free_port()?, free_port()?);
        std::fs::write(
            d.join("coordinator.toml"),
            format!(
                "data_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[chain]\nrpc_url = \"{}\"\n\
                 manifest = \"{}\"\naccount = \"{:#x}\"\nkey_file = \"coordinator.key\"\n[network]\n\
                 listen = \"/ip4/127.0.0.1/tcp/{p2p_port}\"\n[jobs]\nlease_secs = {LEASE_SECS}\nmin_lead_secs = 20\n\
                 heartbeat_window_secs = 6\ntick_ms = 300\nproof_security = \"production\"\n\
                 tee_policy = \"development\"\n",
                self.rpc,
                self.manifest.display(),
                self.coordinator_account
            ),
        )?;
        let config = d.join("coordinator.toml");
        let config = config.to_str().context("path")?;
        let key =
            json(&self.bins.coordinator, &["api-key", "create", "--name", "e2e", "--config", config], &[], &self.logs)
                .await?;
        self.api_key_file = self.dir.join("client").join("api.key");
        write_private(&self.api_key_file, key["key"].as_str().context("api-key create printed no key")?)?;
        self.spawn_coordinator().await
    }

    /// (Re)starts the coordinator process from its config and store.
    pub async fn spawn_coordinator(&mut self) -> Result<()> {
        let config = self.coordinator_dir.join("coordinator.toml");
        let mut p = Proc::spawn(
            &self.bins.coordinator,
            &["--json", "start", "--config", config.to_str().context("path")?],
            &[],
            &self.logs,
            "coordinator",
        )?;
        let started = p.event("started", Duration::from_secs(60)).await?;
        self.api = started["api"].as_str().context("api")?.to_owned();
        self.coordinator_p2p = started["p2p"].as_str().context("p2p")?.to_owned();
        self.coordinator = Some(p);
        Ok(())
    }

    /// The coordinator's Stark public key (workers pin it).
    pub fn coordinator_key(&self) -> Felt {
        self.coordinator_secret.public_key()
    }

    /// The client commands' common flags (coordinator URL, API key file).
    pub fn remote(&self) -> Vec<String> {
        vec!["--url".into(), self.api.clone(), "--api-key-file".into(), self.api_key_file.display().to_string()]
    }

    /// The client's chain flags for `submit-job` / `cancel-job`.
    pub fn client_chain(&self) -> Vec<String> {
        let mut v = self.remote();
        v.extend([
            "--rpc-url".into(),
            self.rpc.clone(),
            "--manifest".into(),
            self.manifest.display().to_string(),
            "--account".into(),
            format!("{:#x}", self.client_account.address()),
            "--key-file".into(),
            self.client_key_file.display().to_string(),
        ]);
        v
    }

    /// A validator operator: the owner funds a fresh account (fee token, deployment, 10,000 SAGE),
    /// the operator runs `sage-validator register` (stake + vote key); once all are registered the
    /// owner installs the set and each runs `sage-validator start`.
    pub async fn start_validators(&mut self) -> Result<Vec<Value>> {
        let mut registered = Vec::new();
        for i in 0..VALIDATORS {
            let key = StarkKey::from_random()?;
            let address = oz_account_address(key.public_key(), key.public_key());
            self.devnet.mint_strk(address, 10 * SAGE).await?;
            sage_chain::deploy_oz_account(&self.client, key.clone(), key.public_key()).await?;
            self.c.token.transfer(&self.owner, address, 10_000 * SAGE).await?;
            let dir = self.dir.join(format!("validator-{i}"));
            std::fs::create_dir_all(&dir)?;
            write_private(&dir.join("account.key"), &format!("{:#x}\n", key.expose_secret()))?;
            self.write_validator_config(&dir, address, "")?;
            let cfg = dir.join("validator.toml");
            let out = json(
                &self.bins.validator,
                &["--config", cfg.to_str().context("path")?, "register", "--stake", "10000"],
                &[],
                &self.logs,
            )
            .await?;
            registered.push(out);
            self.validators.push(Validator { dir, key, p2p: String::new(), proc: None });
        }
        let members: Vec<(Felt, Felt)> = self
            .validators
            .iter()
            .map(|v| (v.key.public_key(), oz_account_address(v.key.public_key(), v.key.public_key())))
            .collect();
        self.c.verifier.set_validators(&self.owner, &members).await?;
        for i in 0..VALIDATORS {
            self.spawn_validator(i).await?;
        }
        // The coordinator's operator adds the first validator as a bootstrap peer, so that a
        // restarted coordinator rejoins the mesh.
        let config = self.coordinator_dir.join("coordinator.toml");
        let text = std::fs::read_to_string(&config)?;
        let text =
            text.replacen("[network]\n", &format!("[network]\nbootstrap = [\"{}\"]\n", self.validators[0].p2p), 1);
        std::fs::write(&config, text)?;
        Ok(registered)
    }

    fn write_validator_config(&self, dir: &Path, address: Felt, peers: &str) -> Result<()> {
        std::fs::write(
            dir.join("validator.toml"),
            format!(
                "data_dir = \"data\"\n[chain]\nrpc_url = \"{}\"\nmanifest = \"{}\"\naccount = \"{address:#x}\"\n\
                 key_file = \"account.key\"\n[coordinator]\nurl = \"{}\"\napi_key_file = \"{}\"\n[network]\n\
                 listen = \"/ip4/127.0.0.1/tcp/0\"\nbootstrap = [{}]\n[validator]\nsecurity = \"production\"\n\
                 tick_ms = 500\nsubmit_turn_ms = 3000\n",
                self.rpc,
                self.manifest.display(),
                self.api,
                self.api_key_file.display(),
                if peers.is_empty() { format!("\"{}\"", self.coordinator_p2p) } else { peers.to_owned() }
            ),
        )?;
        Ok(())
    }

    /// (Re)starts validator `i` from its config and vote journal.
    pub async fn spawn_validator(&mut self, i: usize) -> Result<()> {
        let v = &self.validators[i];
        let peers = if i == 0 { String::new() } else { self.peers() };
        self.write_validator_config(&v.dir, oz_account_address(v.key.public_key(), v.key.public_key()), &peers)?;
        let cfg = self.validators[i].dir.join("validator.toml");
        let mut p = Proc::spawn(
            &self.bins.validator,
            &["--json", "--config", cfg.to_str().context("path")?, "start"],
            &[],
            &self.logs,
            &format!("validator-{i}"),
        )?;
        let started = p.event("started", Duration::from_secs(60)).await?;
        self.validators[i].p2p = started["p2p"].as_str().context("p2p")?.to_owned();
        self.validators[i].proc = Some(p);
        Ok(())
    }

    /// `sage-worker create-wallet` for worker `i` (password from the OS RNG, in the environment).
    pub async fn create_worker_wallet(&mut self, i: usize) -> Result<Value> {
        let home = self.dir.join(format!("worker-{i}"));
        std::fs::create_dir_all(&home)?;
        let password = format!("{:x}", StarkKey::from_random()?.expose_secret());
        let keystore = home.join("keystore.json");
        let mut w = Worker { home, keystore, password, address: Felt::ZERO, proc: None };
        let out = json(
            &self.bins.worker,
            &[
                "create-wallet",
                "--scrypt-log-n",
                "14",
                "--keystore",
                w.keystore.to_str().context("path")?,
                "--mnemonic-out",
                w.home.join("mnemonic.txt").to_str().context("path")?,
            ],
            &w.env(),
            &self.logs,
        )
        .await?;
        w.address = Felt::from_hex(out["address"].as_str().context("create-wallet printed no address")?)?;
        self.workers.push(w);
        Ok(out)
    }

    /// A `sage-worker` chain command for worker `i` (keystore, RPC and manifest flags added).
    pub async fn worker_cmd(&self, i: usize, args: &[&str]) -> Result<Value> {
        let w = &self.workers[i];
        let mut all: Vec<&str> = args.to_vec();
        let (ks, m) = (w.keystore.to_str().context("path")?, self.manifest.to_str().context("path")?);
        all.extend(["--keystore", ks, "--rpc-url", self.rpc.as_str(), "--manifest", m]);
        json(&self.bins.worker, &all, &w.env(), &self.logs).await
    }

    /// Writes worker `i`'s config (next to its keystore) and starts `sage-worker start`.
    pub async fn spawn_worker(&mut self, i: usize) -> Result<()> {
        let peers = self.peers();
        let w = &self.workers[i];
        std::fs::write(
            w.home.join("config.toml"),
            format!(
                "[worker]\ngpu_tier = \"T4\"\nheartbeat_secs = 2\n[prover]\nbackend = \"cpu\"\nmax_matmul_n = 1024\n\
                 [network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\nbootstrap = [{peers}]\ncoordinator = \"{:#x}\"\n\
                 [chain]\nrpc_url = \"{}\"\nmanifest = \"{}\"\n",
                self.coordinator_key(),
                self.rpc,
                self.manifest.display()
            ),
        )?;
        let mut p = Proc::spawn(
            &self.bins.worker,
            &["--json", "start", "--keystore", w.keystore.to_str().context("path")?],
            &w.env(),
            &self.logs,
            &format!("worker-{i}"),
        )?;
        p.event("ready", Duration::from_secs(120)).await?;
        self.workers[i].proc = Some(p);
        Ok(())
    }

    /// Bootstrap peers as a TOML list body: the coordinator and the first validator (when up).
    fn peers(&self) -> String {
        let mut peers = vec![format!("\"{}\"", self.coordinator_p2p)];
        if let Some(v) = self.validators.first().filter(|v| !v.p2p.is_empty()) {
            peers.push(format!("\"{}\"", v.p2p));
        }
        peers.join(", ")
    }

    /// The index of the worker with this address.
    pub fn worker_index(&self, address: Felt) -> Option<usize> {
        self.workers.iter().position(|w| w.address == address)
    }

    /// `sage-coordinator job ID --json`.
    pub async fn job(&self, id: Felt) -> Result<Value> {
        let id = format!("{id:#x}");
        let mut args: Vec<String> = vec!["job".into()];
        args.extend(self.remote());
        args.push(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        json(&self.bins.coordinator, &args, &[], &self.logs).await
    }

    /// Polls the job until `done(state)` holds (or `secs` pass); returns its view.
    pub async fn until(&self, id: Felt, secs: u64, done: impl Fn(&str) -> bool) -> Result<Value> {
        let start = Instant::now();
        loop {
            let v = self.job(id).await?;
            let state = v["state"].as_str().unwrap_or("").to_owned();
            if done(&state) {
                return Ok(v);
            }
            if start.elapsed() > Duration::from_secs(secs) {
                bail!("job {id:#x} is still {state} after {secs} s (history: {})", v["history"]);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `sage-coordinator submit-job` from the client's account; returns its JSON.
    pub async fn submit_job(&self, size: u32, deadline_secs: u64) -> Result<Value> {
        let mut args: Vec<String> = vec!["submit-job".into(), "--size".into(), size.to_string()];
        args.extend(["--deadline-secs".into(), deadline_secs.to_string()]);
        args.extend(self.client_chain());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        json(&self.bins.coordinator, &args, &[], &self.logs).await
    }

    /// Every process still running, stopped (SIGTERM, then SIGKILL).
    pub async fn stop_all(&mut self) {
        let mut procs: Vec<Proc> = Vec::new();
        procs.extend(self.workers.iter_mut().filter_map(|w| w.proc.take()));
        procs.extend(self.validators.iter_mut().filter_map(|v| v.proc.take()));
        procs.extend(self.coordinator.take());
        for p in procs {
            let _ = p.stop().await;
        }
    }
}
