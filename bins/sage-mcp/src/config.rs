//! `mcp.toml`. Relative paths are relative to the file. Amounts are in SAGE (decimal strings).
//!
//! ```toml
//! [coordinator]
//! url = "http://127.0.0.1:8640"
//! api_key_file = "coordinator-api.key"
//! [chain]                           # the account that escrows (its key never reaches the model)
//! rpc_url = "http://127.0.0.1:5050/rpc"
//! manifest = "deployments/local.json"
//! account = "0x…"
//! key_file = "client.key"
//! [budget]
//! per_call = "5"
//! per_session = "20"
//! per_day = "100"
//! approval_above = "2"              # escrows above this ask the user (MCP elicitation)
//! ledger = "spend.jsonl"
//! [http]
//! listen = "127.0.0.1:8650"         # loopback unless allow_remote = true
//! tokens_file = "http-tokens"       # sha256 of each bearer token; `sage-mcp token create` adds one
//! [limits]
//! calls_per_minute = 120            # per session
//! [proofs]
//! security = "production"           # or "test" (test networks only)
//! ```

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use sage_protocol::Felt;
use serde::Deserialize;

use crate::governor::Caps;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    coordinator: CoordinatorSection,
    chain: ChainSection,
    budget: BudgetSection,
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    proofs: ProofsSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoordinatorSection {
    url: String,
    api_key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainSection {
    rpc_url: String,
    manifest: PathBuf,
    account: String,
    key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSection {
    per_call: String,
    per_session: String,
    per_day: String,
    approval_above: String,
    #[serde(default = "default_ledger")]
    ledger: PathBuf,
}

fn default_ledger() -> PathBuf {
    PathBuf::from("spend.jsonl")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default = "default_tokens")]
    tokens_file: PathBuf,
    #[serde(default)]
    allow_remote: bool,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self { listen: default_listen(), tokens_file: default_tokens(), allow_remote: false }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8650))
}

fn default_tokens() -> PathBuf {
    PathBuf::from("http-tokens")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    #[serde(default = "default_rate")]
    calls_per_minute: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self { calls_per_minute: default_rate() }
    }
}

fn default_rate() -> u32 {
    120
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProofsSection {
    #[serde(default)]
    security: Option<String>,
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Coordinator API.
    pub coordinator_url: String,
    /// File with the coordinator API key.
    pub api_key_file: PathBuf,
    /// RPC endpoint.
    pub rpc_url: String,
    /// Deployment manifest.
    pub manifest: PathBuf,
    /// The escrowing account.
    pub account: Felt,
    /// Its key file.
    pub key_file: PathBuf,
    /// Spend caps.
    pub caps: Caps,
    /// Spend ledger.
    pub ledger: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Accepted bearer tokens (sha256 hex per line).
    pub tokens_file: PathBuf,
    /// Whether a non-loopback listen address is allowed.
    pub allow_remote: bool,
    /// Tool calls per minute per session.
    pub calls_per_minute: u32,
    /// Accept test-level proofs.
    pub test_proofs: bool,
}

use sage_daemon::beside;

/// Parses a decimal SAGE amount ("2", "0.5") into base units.
pub fn parse_sage(text: &str) -> Result<u128> {
    sage_chain::parse_sage(text).map_err(anyhow::Error::msg)
}

impl Config {
    /// Reads and checks the config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses a config whose relative paths are relative to `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let f: File = toml::from_str(text).with_context(|| format!("parsing config {}", path.display()))?;
        let amount = |name: &str, v: &str| parse_sage(v).with_context(|| format!("budget.{name}"));
        let caps = Caps {
            per_call: amount("per_call", &f.budget.per_call)?,
            per_session: amount("per_session", &f.budget.per_session)?,
            per_day: amount("per_day", &f.budget.per_day)?,
            approval_above: amount("approval_above", &f.budget.approval_above)?,
        };
        if caps.per_call > caps.per_session || caps.per_session > caps.per_day {
            bail!("budget: per_call ≤ per_session ≤ per_day must hold");
        }
        if !f.http.listen.ip().is_loopback() && !f.http.allow_remote {
            bail!(
                "http.listen {} is not loopback: set http.allow_remote = true to serve other machines (behind TLS)",
                f.http.listen
            );
        }
        if f.limits.calls_per_minute == 0 {
            bail!("limits.calls_per_minute must be positive");
        }
        let test_proofs = match f.proofs.security.as_deref() {
            None | Some("production") => false,
            Some("test") => true,
            Some(other) => bail!("proofs.security {other:?}: production or test"),
        };
        if test_proofs {
            sage_daemon::refuse_test_proofs_off_devnet("proofs.security = \"test\"", &f.chain.rpc_url)?;
        }
        Ok(Self {
            coordinator_url: f.coordinator.url,
            api_key_file: beside(path, f.coordinator.api_key_file),
            rpc_url: f.chain.rpc_url,
            manifest: beside(path, f.chain.manifest),
            account: Felt::from_hex(f.chain.account.trim())
                .map_err(|_| anyhow::anyhow!("chain.account {:?} is not a hex felt", f.chain.account))?,
            key_file: beside(path, f.chain.key_file),
            caps,
            ledger: beside(path, f.budget.ledger),
            listen: f.http.listen,
            tokens_file: beside(path, f.http.tokens_file),
            allow_remote: f.http.allow_remote,
            calls_per_minute: f.limits.calls_per_minute,
            test_proofs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[coordinator]
url = "http://127.0.0.1:8640"
api_key_file = "api.key"
[chain]
rpc_url = "http://127.0.0.1:5050/rpc"
manifest = "m.json"
account = "0x1"
key_file = "client.key"
[budget]
per_call = "5"
per_session = "20"
per_day = "100.5"
approval_above = "0.25"
"#;

    #[test]
    fn test_proofs_are_refused_off_a_local_devnet() {
        let with_test = format!("{MINIMAL}[proofs]\nsecurity = \"test\"\n");
        assert!(Config::parse(&with_test, Path::new("mcp.toml")).unwrap().test_proofs);
        let remote = with_test.replace("http://127.0.0.1:5050/rpc", "https://rpc.starknet.example/rpc");
        let err = Config::parse(&remote, Path::new("mcp.toml")).unwrap_err();
        assert!(format!("{err:#}").contains("proofs.security"), "{err:#}");
    }

    #[test]
    fn a_minimal_file_gets_safe_defaults_and_paths_beside_it() {
        let c = Config::parse(MINIMAL, Path::new("/etc/sage/mcp.toml")).unwrap();
        assert_eq!(c.caps.per_day, 100 * sage_chain::SAGE + sage_chain::SAGE / 2);
        assert_eq!(c.caps.approval_above, sage_chain::SAGE / 4);
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.key_file, Path::new("/etc/sage/client.key"));
        assert_eq!(c.ledger, Path::new("/etc/sage/spend.jsonl"));
        assert!(!c.test_proofs);
    }

    #[test]
    fn unsafe_or_inconsistent_settings_are_refused_by_name() {
        let remote = format!("{MINIMAL}[http]\nlisten = \"0.0.0.0:8650\"\n");
        assert!(Config::parse(&remote, Path::new("m.toml")).unwrap_err().to_string().contains("allow_remote"));
        let inverted = MINIMAL.replace("per_call = \"5\"", "per_call = \"50\"");
        assert!(Config::parse(&inverted, Path::new("m.toml")).unwrap_err().to_string().contains("per_call"));
        let bad = MINIMAL.replace("per_day = \"100.5\"", "per_day = \"lots\"");
        assert!(format!("{:#}", Config::parse(&bad, Path::new("m.toml")).unwrap_err()).contains("budget.per_day"));
        let unknown = format!("{MINIMAL}[budget2]\n");
        assert!(Config::parse(&unknown, Path::new("m.toml")).is_err());
    }
}
