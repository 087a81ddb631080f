//! The coordinator's config file (TOML, no secrets: the account key lives in its own file, mode
//! 0600, named here). Relative paths are relative to the config file.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use sage_jobs::{lifecycle::Rules, scheduler::Pricing, scheduler::SchedulerRules};
use sage_protocol::Felt;
use serde::Deserialize;

/// `sage-coordinator start --config FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the SQLite store, blobs and proofs live (default `data/` beside the file).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// HTTP API.
    #[serde(default)]
    pub api: ApiSection,
    /// Chain access.
    pub chain: ChainSection,
    /// libp2p.
    #[serde(default)]
    pub network: NetworkSection,
    /// Lifecycle and scheduling.
    #[serde(default)]
    pub jobs: JobsSection,
    /// Prices.
    #[serde(default)]
    pub pricing: PricingSection,
    /// Where jobs are stored (default: SQLite in the data dir).
    #[serde(default)]
    pub store: StoreSection,
    /// The validators' bridges asked to judge announced proofs.
    #[serde(default)]
    pub validators: ValidatorsSection,
}

/// `[validators]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ValidatorsSection {
    /// Bridge base URLs (`http://10.0.0.5:9180`), asked in this order; empty: the coordinator
    /// verifies every announced proof itself.
    #[serde(default)]
    pub bridges: Vec<String>,
    /// Per-request limit (ms; default 10 000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// A file holding a `postgres://user:password@host/db` URL (first line; mode 0600): the store
    /// on that PostgreSQL database instead of the SQLite file in the data dir.
    #[serde(default)]
    pub postgres_url_file: Option<PathBuf>,
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Listen address (default `127.0.0.1:8640`).
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// Largest JSON body in bytes (default 64 KiB).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Largest blob in bytes (default 16 MiB).
    #[serde(default)]
    pub max_blob_bytes: Option<usize>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self { listen: default_api_listen(), max_body_bytes: None, max_blob_bytes: None }
    }
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8640))
}

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// Starknet JSON-RPC endpoint.
    pub rpc_url: String,
    /// Deployment manifest (contract addresses), as `cargo xtask deploy` writes it.
    pub manifest: PathBuf,
    /// The coordinator's account address (holds the COORDINATOR role).
    pub account: String,
    /// File holding the account's Stark private key (hex, first line; keep it mode 0600).
    pub key_file: PathBuf,
    /// Each RPC request fails after this long (seconds; default 30): a black-holed endpoint
    /// delays the coordinator, never hangs it.
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// The outbox's transactions of one driver pass go out as multicalls of up to this many
    /// calls (default 16; 1 sends one transaction per assignment, payment or refund). A multicall
    /// that reverts is not retried as one: each of its entries is then sent alone, so one bad
    /// entry never holds up the others.
    #[serde(default)]
    pub batch_calls: Option<usize>,
}

/// `[network]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// libp2p listen address (default `/ip4/127.0.0.1/tcp/7500`).
    #[serde(default = "default_p2p_listen")]
    pub listen: String,
    /// Bootstrap peers (`…/p2p/<peer id>`).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// libp2p identity file (created on first start; default `p2p.key` in the data dir).
    #[serde(default)]
    pub identity: Option<PathBuf>,
    /// Chain id (short string) every p2p message is signed for; default `sage_net::DEFAULT_NETWORK`.
    /// Workers must use the same.
    #[serde(default)]
    pub chain_id: Option<String>,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self { listen: default_p2p_listen(), bootstrap: Vec::new(), identity: None, chain_id: None }
    }
}

fn default_p2p_listen() -> String {
    "/ip4/127.0.0.1/tcp/7500".into()
}

/// Which proofs the coordinator accepts from workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProofSecurity {
    /// At least the production security level (default).
    #[default]
    Production,
    /// Any security level (test networks only).
    Test,
}

/// Which workers count as attested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TeePolicy {
    /// Registered on-chain with TEE evidence (default): a worker registered with `none` is
    /// never assigned.
    #[default]
    Production,
    /// Registration alone suffices, evidence `none` included (a local devnet).
    Development,
}

/// `[jobs]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSection {
    /// Assignments a job may have before it fails (default 3).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Assignment lease in seconds, recorded on-chain at `assign` and extended off-chain by the
    /// worker's heartbeats (default 120).
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// Least time from the escrow check to the deadline (default 120 s).
    #[serde(default = "default_lead")]
    pub min_lead_secs: u64,
    /// A worker silent longer is not assigned (default 30 s).
    #[serde(default = "default_window")]
    pub heartbeat_window_secs: u64,
    /// How often the driver looks at the chain and the queue (default 1000 ms).
    #[serde(default = "default_tick")]
    pub tick_ms: u64,
    /// Proof security required of workers.
    #[serde(default)]
    pub proof_security: ProofSecurity,
    /// Attestation policy.
    #[serde(default)]
    pub tee_policy: TeePolicy,
}

impl Default for JobsSection {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            lease_secs: default_lease(),
            min_lead_secs: default_lead(),
            heartbeat_window_secs: default_window(),
            tick_ms: default_tick(),
            proof_security: ProofSecurity::default(),
            tee_policy: TeePolicy::default(),
        }
    }
}

fn default_attempts() -> u32 {
    3
}
fn default_lease() -> u64 {
    120
}
fn default_lead() -> u64 {
    120
}
fn default_window() -> u64 {
    30
}
fn default_tick() -> u64 {
    1000
}

/// `[pricing]` (SAGE base units, decimal strings).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PricingSection {
    /// Flat part of every job.
    #[serde(default, with = "opt_decimal")]
    pub base: Option<u128>,
    /// Per million work units.
    #[serde(default, with = "opt_decimal")]
    pub per_million_units: Option<u128>,
}

mod opt_decimal {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(|_| serde::de::Error::custom(format!("{s:?} is not a decimal amount"))))
            .transpose()
    }
}

/// Everything the coordinator runs with, paths resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data folder (store, blobs, proofs, p2p identity).
    pub data_dir: PathBuf,
    /// File holding the PostgreSQL URL, when the store is on PostgreSQL.
    pub postgres_url_file: Option<PathBuf>,
    /// API listen address.
    pub api_listen: SocketAddr,
    /// API body limit.
    pub max_body_bytes: Option<usize>,
    /// API blob limit.
    pub max_blob_bytes: Option<usize>,
    /// RPC endpoint.
    pub rpc_url: String,
    /// Manifest path.
    pub manifest: PathBuf,
    /// Coordinator account.
    pub account: Felt,
    /// Key file path.
    pub key_file: PathBuf,
    /// p2p listen multiaddr.
    pub p2p_listen: String,
    /// Bootstrap peers.
    pub bootstrap: Vec<String>,
    /// p2p identity path.
    pub identity: PathBuf,
    /// Network id (chain id felt).
    pub network: Felt,
    /// Lifecycle rules.
    pub rules: Rules,
    /// Scheduler rules.
    pub scheduler: SchedulerRules,
    /// Prices.
    pub pricing: Pricing,
    /// Lease recorded on-chain.
    pub lease_secs: u64,
    /// Driver period.
    pub tick: Duration,
    /// Proof security.
    pub proof_security: ProofSecurity,
    /// Attestation policy.
    pub tee_policy: TeePolicy,
    /// Validator bridges, in the order asked.
    pub validator_bridges: Vec<String>,
    /// Per-request limit of a bridge call.
    pub bridge_timeout: Duration,
    /// Per-request limit of an RPC call.
    pub rpc_timeout: Duration,
    /// Calls per outbox multicall (1: no batching).
    pub batch_calls: usize,
}

/// Default calls per outbox multicall.
pub const DEFAULT_BATCH_CALLS: usize = 16;

/// Default per-request limit of a bridge call.
pub const DEFAULT_BRIDGE_TIMEOUT: Duration = Duration::from_secs(10);

use sage_daemon::beside;

impl Settings {
    /// Reads and resolves the config file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let file: FileConfig = sage_daemon::read_toml(path)?;
        Self::resolve(file, path)
    }

    /// Resolves a parsed config read from `path`.
    pub fn resolve(file: FileConfig, path: &Path) -> Result<Self> {
        let data_dir = beside(path, file.data_dir.unwrap_or_else(|| PathBuf::from("data")));
        let account = Felt::from_hex(file.chain.account.trim())
            .map_err(|e| anyhow::anyhow!("chain.account {:?} is not a hex felt: {e}", file.chain.account))?;
        let j = &file.jobs;
        if j.max_attempts == 0 {
            bail!("jobs.max_attempts must be at least 1");
        }
        if j.lease_secs == 0 || j.tick_ms == 0 || j.heartbeat_window_secs == 0 {
            bail!("jobs.lease_secs, jobs.tick_ms and jobs.heartbeat_window_secs must be positive");
        }
        let network = match file.network.chain_id.as_deref() {
            None => sage_net::DEFAULT_NETWORK,
            Some(id) => sage_keys::short_string(id).with_context(|| format!("network.chain_id {id:?}"))?,
        };
        if j.proof_security == ProofSecurity::Test {
            sage_daemon::refuse_test_proofs_off_devnet("jobs.proof_security = \"test\"", &file.chain.rpc_url)?;
        }
        for url in &file.validators.bridges {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("validators.bridges: {url:?} is not an http(s) URL");
            }
        }
        let batch_calls = file.chain.batch_calls.unwrap_or(DEFAULT_BATCH_CALLS);
        if !(1..=256).contains(&batch_calls) {
            bail!("chain.batch_calls must be between 1 and 256, not {batch_calls}");
        }
        let defaults = Pricing::default();
        Ok(Self {
            batch_calls,
            validator_bridges: file.validators.bridges,
            bridge_timeout: file.validators.timeout_ms.map_or(DEFAULT_BRIDGE_TIMEOUT, Duration::from_millis),
            rpc_timeout: file
                .chain
                .request_timeout_secs
                .map_or(sage_chain::DEFAULT_REQUEST_TIMEOUT, Duration::from_secs),
            postgres_url_file: file.store.postgres_url_file.map(|p| beside(path, p)),
            identity: file.network.identity.map(|p| beside(path, p)).unwrap_or_else(|| data_dir.join("p2p.key")),
            api_listen: file.api.listen,
            max_body_bytes: file.api.max_body_bytes,
            max_blob_bytes: file.api.max_blob_bytes,
            rpc_url: file.chain.rpc_url,
            manifest: beside(path, file.chain.manifest),
            account,
            key_file: beside(path, file.chain.key_file),
            p2p_listen: file.network.listen,
            bootstrap: file.network.bootstrap,
            network,
            rules: Rules {
                max_attempts: j.max_attempts,
                lease_ms: j.lease_secs * 1000,
                min_lead_secs: j.min_lead_secs,
                // Read from the JobManager at start (`start` overwrites it): never configured,
                // so it cannot disagree with the chain.
                verdict_grace_secs: Rules::default().verdict_grace_secs,
            },
            scheduler: SchedulerRules {
                heartbeat_window_ms: j.heartbeat_window_secs * 1000,
                ..SchedulerRules::default()
            },
            pricing: Pricing {
                base: file.pricing.base.unwrap_or(defaults.base),
                per_million_units: file.pricing.per_million_units.unwrap_or(defaults.per_million_units),
            },
            lease_secs: j.lease_secs,
            tick: Duration::from_millis(j.tick_ms),
            proof_security: j.proof_security,
            tee_policy: j.tee_policy,
            data_dir,
        })
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("coordinator.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[chain]
rpc_url = "http://127.0.0.1:5050"
manifest = "deployments/devnet.json"
account = "0x123"
key_file = "coordinator.key"
"#;

    /// Test-level proofs are a devnet convenience: a coordinator pointed at any other chain
    /// refuses to start with them.
    #[test]
    fn test_proofs_are_refused_off_a_local_devnet() {
        let with_test = format!("{MINIMAL}\n[jobs]\nproof_security = \"test\"\n");
        let file: FileConfig = toml::from_str(&with_test).unwrap();
        let s = Settings::resolve(file, Path::new("/etc/sage/coordinator.toml")).unwrap();
        assert_eq!(s.proof_security, ProofSecurity::Test);
        let remote = with_test.replace("http://127.0.0.1:5050", "https://rpc.starknet.example/v0_8");
        let err = Settings::resolve(toml::from_str(&remote).unwrap(), Path::new("c.toml")).unwrap_err();
        assert!(format!("{err:#}").contains("jobs.proof_security"), "{err:#}");
        let production = remote.replace("proof_security = \"test\"", "proof_security = \"production\"");
        Settings::resolve(toml::from_str(&production).unwrap(), Path::new("c.toml")).unwrap();
    }

    #[test]
    fn defaults_fill_a_minimal_file_and_paths_are_beside_it() {
        let file: FileConfig = toml::from_str(MINIMAL).unwrap();
        let s = Settings::resolve(file, Path::new("/etc/sage/coordinator.toml")).unwrap();
        assert_eq!(s.data_dir, Path::new("/etc/sage/data"));
        assert_eq!(s.key_file, Path::new("/etc/sage/coordinator.key"));
        assert_eq!(s.identity, Path::new("/etc/sage/data/p2p.key"));
        assert_eq!(s.api_listen, default_api_listen());
        assert_eq!(s.rules.lease_ms, 120_000);
        assert_eq!(s.tee_policy, TeePolicy::Production);
        assert_eq!(s.proof_security, ProofSecurity::Production);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<FileConfig>(&format!("{MINIMAL}\n[jobs]\nlease = 3\n")).unwrap_err();
        assert!(err.to_string().contains("lease"), "{err}");
        let err = toml::from_str::<FileConfig>(&format!("{MINIMAL}\n[pricing]\nbase = \"ten\"\n")).unwrap_err();
        assert!(err.to_string().contains("not a decimal amount"), "{err}");
        let file: FileConfig = toml::from_str(&format!("{MINIMAL}\n[jobs]\nmax_attempts = 0\n")).unwrap();
        let err = Settings::resolve(file, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
        let file: FileConfig =
            toml::from_str(&format!("{MINIMAL}\n[validators]\nbridges = [\"127.0.0.1:9180\"]\n")).unwrap();
        let err = Settings::resolve(file, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("validators.bridges"), "{err}");
        let file: FileConfig = toml::from_str(&MINIMAL.replace("0x123", "abc-not-hex")).unwrap();
        let err = Settings::resolve(file, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("chain.account"), "{err}");
        for bad in ["0", "257"] {
            let with = MINIMAL.replace("key_file", &format!("batch_calls = {bad}\nkey_file"));
            let err = Settings::resolve(toml::from_str(&with).unwrap(), Path::new("c.toml")).unwrap_err();
            assert!(err.to_string().contains("chain.batch_calls"), "{err}");
        }
        let with = MINIMAL.replace("key_file", "batch_calls = 1\nkey_file");
        assert_eq!(Settings::resolve(toml::from_str(&with).unwrap(), Path::new("c.toml")).unwrap().batch_calls, 1);
    }
}
