//! The worker's config file (TOML). It holds no secrets: the keystore password comes from
//! `--password-file`, `SAGE_KEYSTORE_PASSWORD` or a prompt.
//!
//! ```toml
//! [worker]
//! gpu_tier = "H100"          # reported in heartbeats: T4 L4 A10 A100 H100 H200; omit on a CPU-only worker
//! heartbeat_secs = 10
//!
//! [prover]
//! backend = "auto"           # auto | cpu | gpu  (overridden by --backend / SAGE_PROVER_BACKEND)
//! security = "production"    # production | test
//! max_matmul_n = 1024        # larger assignments are refused
//!
//! [network]
//! chain_id = "SN_SEPOLIA"    # gossip is signed for this chain; messages for another are refused
//! listen = "/ip4/0.0.0.0/tcp/7400"
//! bootstrap = ["/ip4/10.0.0.5/tcp/7400/p2p/12D3KooW..."]
//! coordinator = "0x…"        # Stark public key whose assignments this worker acts on
//! identity = "/var/lib/sage/p2p.key"   # default: p2p.key next to the keystore
//!
//! [storage]
//! proofs_dir = "/var/lib/sage/proofs"  # default: proofs/ next to the keystore
//!
//! [chain]                    # optional for `start`: with it, every assignment is checked on-chain
//! rpc_url = "http://127.0.0.1:5050/rpc"   # before proving and the result is submitted on-chain
//! manifest = "deployments/local.json"
//! ```
//!
//! Precedence: command-line flag, then environment variable, then this file, then the default.
//! Relative paths in the file are relative to the file's folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::{BackendArg, SecurityArg};
use sage_types::GpuTier;

/// The whole file. Unknown keys are errors, so a typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    #[serde(default)]
    pub worker: WorkerSection,
    #[serde(default)]
    pub prover: ProverSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub chain: ChainSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// Starknet JSON-RPC endpoint.
    pub rpc_url: Option<String>,
    /// Deployment manifest (contract addresses).
    pub manifest: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// GPU tier reported in heartbeats (`T4`, `L4`, `A10`, `A100`, `H100`, `H200`); absent on a
    /// CPU-only worker.
    #[serde(default)]
    pub gpu_tier: Option<GpuTier>,
    /// Seconds between heartbeats.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
}

impl Default for WorkerSection {
    fn default() -> Self {
        Self { gpu_tier: None, heartbeat_secs: default_heartbeat() }
    }
}

fn default_heartbeat() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProverSection {
    #[serde(default)]
    pub backend: Option<BackendArg>,
    #[serde(default)]
    pub security: Option<SecurityArg>,
    /// Largest matmul dimension this worker accepts.
    #[serde(default = "default_max_n")]
    pub max_matmul_n: u32,
}

impl Default for ProverSection {
    fn default() -> Self {
        Self { backend: None, security: None, max_matmul_n: default_max_n() }
    }
}

fn default_max_n() -> u32 {
    obelysk_prover::matmul::MAX_N
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// The Starknet chain id the network settles on (`SN_SEPOLIA` by default, which local
    /// devnets use too); gossip is signed for it and messages for another chain are refused.
    pub chain_id: Option<String>,
    /// libp2p listen address.
    pub listen: Option<String>,
    /// Bootstrap peers (`…/p2p/<peer id>`).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// The coordinator's Stark public key (hex felt).
    pub coordinator: Option<String>,
    /// libp2p identity file.
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Where proof envelopes are written (one file per job).
    pub proofs_dir: Option<PathBuf>,
}

impl WorkerConfig {
    /// Reads `path`. A missing file is an error when `explicit` (the operator named it), and the
    /// defaults otherwise.
    pub fn load(path: &Path, explicit: bool) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("reading the config file {}", path.display())),
        };
        Self::parse(&text).with_context(|| format!("in the config file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text)?;
        anyhow::ensure!(config.worker.heartbeat_secs >= 1, "worker.heartbeat_secs must be at least 1");
        let max = config.prover.max_matmul_n;
        anyhow::ensure!(
            (obelysk_prover::matmul::MIN_N..=obelysk_prover::matmul::MAX_N).contains(&max),
            "prover.max_matmul_n = {max} is outside {}..={}",
            obelysk_prover::matmul::MIN_N,
            obelysk_prover::matmul::MAX_N
        );
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let config = WorkerConfig::parse(&example).unwrap();
        assert_eq!(config.worker.gpu_tier, Some(GpuTier::H100));
        assert!(matches!(config.prover.backend, Some(BackendArg::Auto)));
        assert!(matches!(config.prover.security, Some(SecurityArg::Production)));
        assert_eq!(config.network.bootstrap.len(), 1);
        assert_eq!(config.storage.proofs_dir.as_deref(), Some(Path::new("/var/lib/sage/proofs")));
    }

    #[test]
    fn typos_and_bad_values_are_errors_naming_the_key() {
        let err = WorkerConfig::parse("[prover]\nbackend = \"gpu\"\nmax_matmul = 4\n").unwrap_err();
        assert!(format!("{err:#}").contains("max_matmul"), "{err:#}");
        let err = WorkerConfig::parse("[prover]\nbackend = \"tpu\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("tpu"), "{err:#}");
        let err = WorkerConfig::parse("[prover]\nmax_matmul_n = 4096\n").unwrap_err();
        assert!(format!("{err:#}").contains("4096"), "{err:#}");
        let err = WorkerConfig::parse("[worker]\nheartbeat_secs = 0\n").unwrap_err();
        assert!(format!("{err:#}").contains("heartbeat_secs"), "{err:#}");
    }

    #[test]
    fn a_missing_default_file_gives_defaults_but_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let config = WorkerConfig::load(&path, false).unwrap();
        assert_eq!(config.prover.max_matmul_n, obelysk_prover::matmul::MAX_N);
        assert!(config.network.coordinator.is_none());
        assert!(WorkerConfig::load(&path, true).is_err());
    }
}
