//! A local starknet-devnet: start it on a free loopback port, drive its `devnet_*` methods, stop
//! it by PID when dropped.
//!
//! The binary is installed by `cargo xtask tools` into the Sage tool cache (see [`cache_dir`]);
//! `SAGE_DEVNET_BIN` overrides its location.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde::Deserialize;
use starknet_rust::{core::types::Felt, providers::Url};

use crate::{ChainClient, ChainError, SageAccount, StarkKey};

mod paths;
pub use paths::{DEVNET_VERSION, cache_dir, devnet_binary, devnet_install_root};

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Loopback port; `None` picks a free one.
    pub port: Option<u16>,
    /// Seed of the predeployed accounts (0 gives devnet's well-known accounts).
    pub seed: u32,
    /// Number of predeployed accounts.
    pub accounts: u8,
    /// Where devnet's output goes; `None` discards it.
    pub log_file: Option<PathBuf>,
    /// Close a block every this many seconds, as a sequencer does, instead of one block per
    /// transaction (`None`, devnet's default). Transactions land in the pre-confirmed block at once
    /// (their receipts and the state read at `pre_confirmed` show them); events carry a block
    /// number once their block closes. Under load this matters: devnet copies its whole state for
    /// every block it closes, so one block per transaction makes each transaction cost more as the
    /// state grows.
    pub block_interval_secs: Option<u32>,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self { port: None, seed: 0, accounts: 3, log_file: None, block_interval_secs: None }
    }
}

/// A predeployed, funded devnet account.
#[derive(Debug, Clone, Deserialize)]
pub struct PredeployedAccount {
    /// Account address.
    pub address: Felt,
    /// Its private key (devnet test key; never use outside a devnet).
    pub private_key: Felt,
    /// Its public key.
    pub public_key: Felt,
}

/// A running devnet process, killed when dropped.
#[derive(Debug)]
pub struct Devnet {
    child: Option<Child>,
    base: Url,
    http: reqwest::Client,
}

impl Devnet {
    /// Starts a devnet and waits until it answers (about a second).
    pub async fn start(options: DevnetOptions) -> Result<Self, ChainError> {
        let binary = devnet_binary();
        if !binary.exists() {
            return Err(ChainError::Devnet(format!(
                "starknet-devnet {DEVNET_VERSION} not found at {} (install it with `cargo xtask tools`, or set SAGE_DEVNET_BIN)",
                binary.display()
            )));
        }
        let attempts = if options.port.is_some() { 1 } else { 3 };
        let mut last_err = None;
        for _ in 0..attempts {
            let port = match options.port {
                Some(p) => p,
                None => free_port()?,
            };
            match Self::spawn(&binary, port, &options).await {
                Ok(devnet) => return Ok(devnet),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ChainError::Devnet("failed to start".into())))
    }

    async fn spawn(binary: &std::path::Path, port: u16, options: &DevnetOptions) -> Result<Self, ChainError> {
        let (stdout, stderr) = match &options.log_file {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| ChainError::io(format!("creating {}", path.display()), e))?;
                let clone = file.try_clone().map_err(|e| ChainError::io("cloning log file handle", e))?;
                (Stdio::from(file), Stdio::from(clone))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut command = Command::new(binary);
        command.args(["--host", "127.0.0.1", "--port", &port.to_string()]).args([
            "--seed",
            &options.seed.to_string(),
            "--accounts",
            &options.accounts.to_string(),
        ]);
        if let Some(secs) = options.block_interval_secs {
            command.args(["--block-generation-on", &secs.max(1).to_string()]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| ChainError::Devnet(format!("cannot run {}: {e}", binary.display())))?;
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).map_err(|e| ChainError::Devnet(e.to_string()))?;
        let mut devnet = Self { child: Some(child), base, http: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = devnet.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                devnet.child = None;
                return Err(ChainError::Devnet(format!("exited during startup with {status} (port {port} taken?)")));
            }
            let alive = devnet
                .http
                .get(devnet.base.join("is_alive").map_err(|e| ChainError::Devnet(e.to_string()))?)
                .send()
                .await;
            if matches!(alive, Ok(r) if r.status().is_success()) {
                tracing::debug!(port, pid = devnet.pid(), "devnet ready");
                return Ok(devnet);
            }
            if Instant::now() > deadline {
                return Err(ChainError::Devnet(format!("not ready on port {port} after 30 s")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// JSON-RPC endpoint (`http://127.0.0.1:PORT/rpc`).
    pub fn rpc_url(&self) -> Url {
        rpc_url_of(&self.base)
    }

    /// Calls a `devnet_*` method with a raw JSON params body (big integers are written as JSON
    /// integers verbatim, which `serde_json::json!` cannot do above `u64`).
    pub async fn rpc_raw(&self, method: &str, params_json: &str) -> Result<serde_json::Value, ChainError> {
        devnet_rpc_raw(&self.http, &self.rpc_url(), method, params_json).await
    }

    /// The predeployed accounts.
    pub async fn predeployed_accounts(&self) -> Result<Vec<PredeployedAccount>, ChainError> {
        predeployed_accounts(&self.rpc_url()).await
    }

    /// Mints `amount` FRI (10^-18 STRK) of fee token to `address`.
    pub async fn mint_strk(&self, address: Felt, amount: u128) -> Result<(), ChainError> {
        mint_strk(&self.rpc_url(), address, amount).await
    }

    /// Moves the devnet clock forward by `seconds` (and mines a block).
    pub async fn increase_time(&self, seconds: u64) -> Result<(), ChainError> {
        self.rpc_raw("devnet_increaseTime", &format!("{{\"time\":{seconds}}}")).await.map(drop)
    }

    /// Makes a block every `every` until the devnet stops answering: a live network makes blocks
    /// every few seconds, so its clock moves even when nobody sends a transaction; devnet makes
    /// one only per transaction, and a call refused in fee estimation never moves its clock
    /// (a `refund_expired` or `reassign` tried before its time would never succeed).
    pub fn produce_blocks(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let rpc = self.rpc_url();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                tokio::time::sleep(every).await;
                if devnet_rpc_raw(&http, &rpc, "devnet_createBlock", "{}").await.is_err() {
                    return;
                }
            }
        })
    }

    /// Stops the process (SIGKILL by PID) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn rpc_url_of(base: &Url) -> Url {
    let mut url = base.clone();
    url.set_path("/rpc");
    url
}

fn free_port() -> Result<u16, ChainError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| ChainError::io("binding a free port", e))?;
    let port = listener.local_addr().map_err(|e| ChainError::io("reading the bound port", e))?.port();
    Ok(port)
}

async fn devnet_rpc_raw(
    http: &reqwest::Client,
    rpc: &Url,
    method: &str,
    params_json: &str,
) -> Result<serde_json::Value, ChainError> {
    let body = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"{method}\",\"params\":{params_json}}}");
    let response = http
        .post(rpc.clone())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| ChainError::Unreachable { url: rpc.to_string(), reason: e.to_string() })?;
    let value: serde_json::Value =
        response.json().await.map_err(|e| ChainError::Devnet(format!("{method}: invalid response: {e}")))?;
    if let Some(error) = value.get("error") {
        return Err(ChainError::Devnet(format!("{method} failed: {error} (is {rpc} a devnet?)")));
    }
    Ok(value.get("result").cloned().unwrap_or(serde_json::Value::Null))
}

/// The predeployed accounts of the devnet at `rpc` (fails on a non-devnet endpoint).
pub async fn predeployed_accounts(rpc: &Url) -> Result<Vec<PredeployedAccount>, ChainError> {
    let value = devnet_rpc_raw(&reqwest::Client::new(), rpc, "devnet_getPredeployedAccounts", "{}").await?;
    serde_json::from_value(value)
        .map_err(|e| ChainError::Decode { what: "predeployed accounts", reason: e.to_string() })
}

/// The predeployed accounts of the devnet behind `client`, ready to sign (devnet test keys only;
/// fails on a non-devnet endpoint).
pub async fn predeployed_signers(client: &ChainClient) -> Result<Vec<SageAccount>, ChainError> {
    predeployed_accounts(&client.config().rpc_url)
        .await?
        .into_iter()
        .map(|a| {
            let key = StarkKey::from_secret(a.private_key)
                .map_err(|e| ChainError::Decode { what: "predeployed account key", reason: e.to_string() })?;
            Ok(SageAccount::new(client.clone(), a.address, key))
        })
        .collect()
}

/// Mints fee token (`amount` FRI) to `address` on the devnet at `rpc`.
pub async fn mint_strk(rpc: &Url, address: Felt, amount: u128) -> Result<(), ChainError> {
    let params = format!("{{\"address\":\"{address:#x}\",\"amount\":{amount},\"unit\":\"FRI\"}}");
    devnet_rpc_raw(&reqwest::Client::new(), rpc, "devnet_mint", &params).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_url_is_base_plus_rpc() {
        let base = Url::parse("http://127.0.0.1:5050/").unwrap();
        assert_eq!(rpc_url_of(&base).as_str(), "http://127.0.0.1:5050/rpc");
    }

    #[test]
    fn free_ports_are_nonzero_loopback_ports() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free again after probing");
    }
}
