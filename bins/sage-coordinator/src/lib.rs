//! The Sage coordinator as a library, so tests, the end-to-end harness and the SDK can run it
//! in-process; `sage-coordinator start` is a thin wrapper around [`start`].
//!
//! It composes `sage-jobs` (lifecycle, store, scheduler, HTTP API) with `sage-chain` (escrow
//! checks, JobManager events, assignment and payment transactions), `sage-net` (heartbeats,
//! signed assignments, results and proof envelopes) and `obelysk-prover` (every proof is verified
//! before it is stored and served).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let settings = sage_coordinator::settings::Settings::load("coordinator.toml".as_ref())?;
//! let key = sage_coordinator::read_key_file(&settings.key_file)?;
//! let running = sage_coordinator::start(settings, key).await?;
//! println!("API on http://{}", running.api_addr);
//! running.wait().await
//! # }
//! ```

pub mod bridge;
pub mod chain;
pub mod driver;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

use std::{net::SocketAddr, path::Path, sync::Arc};

use anyhow::{Context, Result, bail};
use sage_chain::{
    SageAccount,
    contracts::{Deployment, roles},
};
use sage_jobs::{
    api::{ApiConfig, ApiState, router},
    service::JobService,
    store::{SqlStore, Store},
};
use sage_keys::StarkKey;
use sage_net::{Multiaddr, NetConfig, NetEvent, NodeHandle, PeerId};
use sage_protocol::Felt;
use tokio::{sync::watch, task::JoinSet};

use crate::{chain::ChainPort, driver::Driver, settings::Settings};

/// Reads the account's Stark private key (hex, first line) from `path`
/// ([`sage_keys::read_key_file`]); a key is never taken from the command line.
pub fn read_key_file(path: &Path) -> Result<StarkKey> {
    Ok(sage_keys::read_key_file(path)?)
}

/// Opens (creating and migrating) the coordinator's store under `settings`.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let store = match &settings.postgres_url_file {
        Some(file) => {
            let url = std::fs::read_to_string(file)
                .with_context(|| format!("reading the PostgreSQL URL from {}", file.display()))?;
            let url = url.lines().next().unwrap_or_default().trim().to_owned();
            SqlStore::connect(&url)
                .await
                .with_context(|| format!("opening the store on {}", sage_jobs::store::redact(&url)))?
        }
        None => SqlStore::open(&settings.db_path())
            .await
            .with_context(|| format!("opening the store {}", settings.db_path().display()))?,
    };
    Ok(Arc::new(store))
}

/// A job's output, recomputed natively from its spec and input blobs: little-endian `u32`s (a
/// matmul's `C` row-major, a VM's final registers). Clients check it against the proof's output
/// commitment.
fn compute_output(spec: &sage_protocol::JobSpec, blobs: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    // The output does not depend on the job id or the worker.
    let job = spec.prover_job(Felt::ZERO, Felt::ZERO, blobs).map_err(|e| e.to_string())?;
    let output = sage_protocol::prover::execute(&job).map_err(|e| e.to_string())?;
    Ok(sage_protocol::prover::output_bytes(&output))
}

/// What the coordinator checks before it takes a job, beyond the wire rules: the prover builds
/// the job from the spec and its blobs, and a VM program runs to its halt within its budget
/// (at most [`MAX_VM_JUMP_STEPS`](sage_protocol::spec::MAX_VM_JUMP_STEPS) steps: milliseconds). A
/// job no worker could prove is refused here, never assigned (a refusal would count against the
/// worker on-chain).
fn check_spec(spec: &sage_protocol::JobSpec, blobs: &[Vec<u8>]) -> Result<(), String> {
    let job = spec.prover_job(Felt::ZERO, Felt::ZERO, blobs).map_err(|e| e.to_string())?;
    if matches!(spec, sage_protocol::JobSpec::Vm { .. } | sage_protocol::JobSpec::VmJump { .. }) {
        sage_protocol::prover::execute(&job).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A started coordinator.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// libp2p peer id.
    pub peer_id: PeerId,
    /// libp2p listen address (with `/p2p/<peer id>`, ready to give workers as a bootstrap peer).
    pub p2p_addr: Multiaddr,
    /// The Stark public key workers pin (`network.coordinator` in their config).
    pub public_key: Felt,
    /// The driver (for tests and tools that act in-process).
    pub driver: Driver,
    stop: watch::Sender<bool>,
    tasks: JoinSet<Result<()>>,
}

impl Running {
    /// Waits until a task stops (an error) or Ctrl-C / SIGTERM.
    pub async fn wait(mut self) -> Result<()> {
        let outcome = sage_daemon::until_shutdown(&mut self.tasks).await;
        self.shutdown().await;
        outcome
    }

    /// Stops every task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        sage_daemon::stop_all(&mut self.tasks).await;
    }
}

/// Connects to the chain, checks the account holds the coordinator role, opens the store, starts
/// libp2p, the HTTP API and the driver.
pub async fn start(mut settings: Settings, key: StarkKey) -> Result<Running> {
    let config = sage_chain::ChainConfig::parse(&settings.rpc_url)?.with_request_timeout(settings.rpc_timeout);
    let (client, contracts) = Deployment::connect_with(config, &settings.manifest)
        .await
        .with_context(|| format!("connecting to chain.rpc_url {:?}", settings.rpc_url))?;
    // Stake must hold until deadline + grace, and a result without a verdict is refunded after
    // it: the chain's value, never a configured guess.
    settings.rules.verdict_grace_secs = contracts.jobs.verdict_grace(&client).await?;
    let settings = Arc::new(settings);
    for (name, admin) in [("JobManager", contracts.jobs.admin()), ("PaymentRouter", contracts.payments.admin())] {
        if !admin.has_role(&client, roles::COORDINATOR, settings.account).await? {
            bail!(
                "account {:#x} does not hold the COORDINATOR role in the {name} at {:#x}; the contracts' owner must \
                 grant it (a deployment made with this account as coordinator has it)",
                settings.account,
                admin.address
            );
        }
    }
    let account = SageAccount::new(client.clone(), settings.account, key.clone());
    let public_key = key.public_key();

    let store = open_store(&settings).await?;
    let service = JobService::new(store, settings.rules);
    let mut api_config = ApiConfig::new(settings.data_dir.clone());
    api_config.pricing = settings.pricing;
    api_config.output = Some(Arc::new(compute_output));
    api_config.check = Some(Arc::new(check_spec));
    api_config.scheduler = settings.scheduler;
    if let Some(max) = settings.max_body_bytes {
        api_config.max_body_bytes = max;
    }
    if let Some(max) = settings.max_blob_bytes {
        api_config.max_blob_bytes = max;
    }

    let identity = sage_net::load_or_create_identity(&settings.identity)?;
    let net = NetConfig {
        network: settings.network,
        listen: settings.p2p_listen.parse().with_context(|| format!("network.listen {:?}", settings.p2p_listen))?,
        bootstrap: settings
            .bootstrap
            .iter()
            .map(|a| a.parse().with_context(|| format!("bootstrap peer {a:?}")))
            .collect::<Result<_>>()?,
        ..NetConfig::default()
    };
    let (node, mut events) = NodeHandle::start(net, identity, key.clone()).await?;
    let peer_id = node.peer_id();
    let listen = node.listen_addr().to_string();
    let p2p_addr: Multiaddr =
        if listen.contains("/p2p/") { listen.parse()? } else { format!("{listen}/p2p/{peer_id}").parse()? };

    let listener = tokio::net::TcpListener::bind(settings.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", settings.api_listen))?;
    let api_addr = listener.local_addr()?;
    let driver = Driver {
        service: service.clone(),
        chain: ChainPort { client, account, contracts },
        node: node.clone(),
        key: Arc::new(key),
        settings: settings.clone(),
        api: Arc::new(api_config.clone()),
        voters: Arc::default(),
        members: Arc::default(),
        registered: Arc::default(),
        bridge: Arc::new(bridge::BridgeClient::new(settings.validator_bridges.clone(), settings.bridge_timeout)),
        leading: Arc::default(),
    };

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let app = router(ApiState::new(service, api_config));
    let mut api_stop = stopped.clone();
    tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = api_stop.changed().await;
            })
            .await
            .context("the HTTP API stopped")
    });
    let d = driver.clone();
    tasks.spawn(async move {
        let mut every = tokio::time::interval(d.settings.tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            d.pass().await;
        }
    });
    let d = driver.clone();
    tasks.spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetEvent::Message { message, from } = event {
                let d = d.clone();
                // Results fetch and verify proofs: never block heartbeats behind them.
                tokio::spawn(async move {
                    if let Err(e) = d.on_message(message).await {
                        tracing::warn!(%from, error = %format!("{e:#}"), "message refused");
                    }
                });
            }
        }
        bail!("the libp2p node stopped")
    });
    tracing::info!(%api_addr, %p2p_addr, public_key = %format!("{public_key:#x}"), "coordinator started");
    Ok(Running { api_addr, peer_id, p2p_addr, public_key, driver, stop, tasks })
}
