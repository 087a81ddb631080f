//! `start`'s settings: command-line flags over the config file over defaults, resolved once.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use obelysk_prover::{ProofConfig, ProverBackend};
use sage_net::{Multiaddr, NetConfig};
use sage_types::GpuTier;
use starknet_types_core::felt::Felt;

use crate::{BackendArg, SecurityArg, config::WorkerConfig};

/// Command-line flags of `start`; each overrides the config file.
#[derive(clap::Args)]
pub struct StartArgs {
    /// Config file (TOML, no secrets; see docs/OPERATORS.md). Default: config.toml next to the
    /// keystore, if it exists.
    #[arg(long, env = "SAGE_WORKER_CONFIG")]
    pub(super) config: Option<PathBuf>,
    /// Where proving runs (config: prover.backend; default auto).
    #[arg(long, value_enum, env = "SAGE_PROVER_BACKEND")]
    pub(super) backend: Option<BackendArg>,
    /// Proof security (config: prover.security; default production).
    #[arg(long, value_enum)]
    pub(super) security: Option<SecurityArg>,
    /// libp2p listen address (config: network.listen; default /ip4/0.0.0.0/tcp/7400).
    #[arg(long, value_name = "MULTIADDR")]
    pub(super) listen: Option<String>,
    /// Bootstrap peer, `…/p2p/<peer id>` (repeatable; added to network.bootstrap).
    #[arg(long, value_name = "MULTIADDR")]
    pub(super) bootstrap: Vec<String>,
    /// The coordinator's Stark public key: only its assignments are acted on (config:
    /// network.coordinator; required).
    #[arg(long, value_name = "FELT")]
    pub(super) coordinator: Option<String>,
    /// Directory for proof envelopes (config: storage.proofs_dir; default proofs/ next to the
    /// keystore).
    #[arg(long)]
    pub(super) proofs_dir: Option<PathBuf>,
    /// The chain (config: [chain]); with it every assignment is checked on-chain before proving
    /// and each result is submitted on-chain (`submit_result`).
    #[command(flatten)]
    pub(super) chain: crate::chain::ChainArgs,
}

/// Everything `start` runs with, after merging flags, environment, file and defaults.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) backend: ProverBackend,
    pub(super) proof: ProofConfig,
    pub(super) max_n: u32,
    pub(super) net: NetConfig,
    pub(super) coordinator: Felt,
    pub(super) identity: PathBuf,
    pub(super) proofs_dir: PathBuf,
    pub(super) gpu_tier: Option<GpuTier>,
    pub(super) heartbeat: Duration,
    pub(super) chain: Option<crate::chain::ChainSettings>,
}

fn parse_felt(text: &str, what: &str) -> Result<Felt> {
    Felt::from_hex(text.trim()).map_err(|e| anyhow::anyhow!("{what} {text:?} is not a hex felt: {e}"))
}

use sage_daemon::beside;

fn parse_addr(text: &str) -> Result<Multiaddr> {
    text.parse().with_context(|| format!("{text:?} is not a multiaddr"))
}

impl Settings {
    pub(super) fn resolve(args: &StartArgs, keystore: &Path) -> Result<Self> {
        let home = keystore.parent().unwrap_or(Path::new(".")).to_path_buf();
        let (path, explicit) = match &args.config {
            Some(p) => (p.clone(), true),
            None => (home.join("config.toml"), false),
        };
        let file = WorkerConfig::load(&path, explicit)?;
        let backend = args.backend.or(file.prover.backend).unwrap_or(BackendArg::Auto);
        let chain = crate::chain::ChainSettings::resolve(
            &args.chain,
            file.chain.rpc_url.as_deref(),
            file.chain.manifest.clone().map(|p| beside(&path, p)).as_deref(),
        )?;
        if matches!(args.security.or(file.prover.security), Some(SecurityArg::Test))
            && let Some(chain) = &chain
        {
            sage_daemon::refuse_test_proofs_off_devnet(
                "prover.security = \"test\" (or --security test)",
                &chain.rpc_url,
            )?;
        }
        let proof = match args.security.or(file.prover.security).unwrap_or(SecurityArg::Production) {
            SecurityArg::Production => ProofConfig::PRODUCTION,
            SecurityArg::Test => ProofConfig::insecure_for_tests(),
        };
        let coordinator = args.coordinator.as_deref().or(file.network.coordinator.as_deref()).with_context(|| {
            format!(
                "no coordinator key: set network.coordinator in {} or pass --coordinator (the worker acts only on \
                 assignments signed by it)",
                path.display()
            )
        })?;
        let listen = args.listen.as_deref().or(file.network.listen.as_deref()).unwrap_or("/ip4/0.0.0.0/tcp/7400");
        let bootstrap =
            file.network.bootstrap.iter().chain(&args.bootstrap).map(|a| parse_addr(a)).collect::<Result<Vec<_>>>()?;
        let network = match file.network.chain_id.as_deref() {
            None => sage_net::DEFAULT_NETWORK,
            Some(id) => sage_keys::short_string(id)
                .with_context(|| format!("network.chain_id {id:?} in {} is not a chain id", path.display()))?,
        };
        Ok(Self {
            backend: backend.into(),
            proof,
            max_n: file.prover.max_matmul_n,
            net: NetConfig { network, listen: parse_addr(listen)?, bootstrap, ..NetConfig::default() },
            coordinator: parse_felt(coordinator, "the coordinator key")?,
            // Relative paths in the file are relative to the file (flags: to the working directory).
            identity: file.network.identity.map(|p| beside(&path, p)).unwrap_or_else(|| home.join("p2p.key")),
            proofs_dir: args
                .proofs_dir
                .clone()
                .or(file.storage.proofs_dir.map(|p| beside(&path, p)))
                .unwrap_or_else(|| home.join("proofs")),
            gpu_tier: file.worker.gpu_tier,
            heartbeat: Duration::from_secs(file.worker.heartbeat_secs),
            chain,
        })
    }
}
