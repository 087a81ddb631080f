//! What every Sage operator binary (`sage-coordinator`, `sage-validator`, `sage-mcp`,
//! `sage-worker`) shares, written once: logging to stderr under an env filter, running an async
//! `main` on a runtime with a proper exit code, waiting for Ctrl-C / SIGTERM or the first task
//! that ends, and TOML config files whose relative paths are relative to the file.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     sage_daemon::init_logging("RUST_LOG", "info,libp2p=warn");
//!     sage_daemon::run(async { Ok(()) }, |e| eprintln!("error: {e:#}"))
//! }
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

/// Logs to stderr, filtered by the environment variable `var` (`RUST_LOG` syntax), else by
/// `default`. Stdout stays free for `--json` output.
pub fn init_logging(var: &str, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(var)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Runs `main` on a multi-threaded runtime: success is exit code 0; an error goes to `report`
/// (the binary prints it as text or JSON) and exit code 1.
pub fn run(main: impl Future<Output = Result<()>>, report: impl FnOnce(&anyhow::Error)) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Waits for Ctrl-C, SIGTERM or the first of `tasks` to end, whichever comes first: a signal or
/// a task that returned `Ok` is `Ok`; a task's error or panic is that error. The caller stops the
/// remaining tasks ([`stop_all`]).
pub async fn until_shutdown(tasks: &mut JoinSet<Result<()>>) -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
        Some(done) = tasks.join_next() => match done {
            Ok(result) => result,
            Err(e) => Err(e.into()),
        },
    }
}

/// Aborts every task and waits until all have stopped.
pub async fn stop_all(tasks: &mut JoinSet<Result<()>>) {
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// `path` as written in the config file at `config`: absolute as is, relative to the file's
/// folder otherwise (so a config works from any working directory).
pub fn beside(config: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() { path } else { config.parent().unwrap_or(Path::new(".")).join(path) }
}

/// Reads and parses the TOML file at `path`; errors name the file (and, from `toml`, the key).
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

/// Whether `rpc_url` points at this machine: a loopback address or `localhost` (how a local
/// devnet is reached). Anything unparsable is not local.
pub fn is_local_rpc(rpc_url: &str) -> bool {
    let rest = rpc_url.split_once("://").map_or(rpc_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(h, _)| h),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Test-level (insecure) proofs are a devnet convenience: refused unless the chain at `rpc_url`
/// is local. `setting` names the config key that asked for them, for the error.
pub fn refuse_test_proofs_off_devnet(setting: &str, rpc_url: &str) -> Result<()> {
    if is_local_rpc(rpc_url) {
        return Ok(());
    }
    anyhow::bail!(
        "{setting} asks for test-level proofs (about 8 bits of security), which are accepted only against a local \
         devnet (a loopback RPC URL); {rpc_url} is not one: use production security"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Path::new("/etc/sage/coordinator.toml");
        assert_eq!(beside(config, "keys/k.json".into()), PathBuf::from("/etc/sage/keys/k.json"));
        assert_eq!(beside(config, "/abs/k.json".into()), PathBuf::from("/abs/k.json"));
        assert_eq!(beside(Path::new("c.toml"), "k".into()), PathBuf::from("k"));
    }

    #[test]
    fn config_errors_name_the_file_and_the_key() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code, reason = "parsed to check the error")]
        struct File {
            port: u16,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "port = \"eighty\"\n").unwrap();
        let err = format!("{:#}", read_toml::<File>(&path).unwrap_err());
        assert!(err.contains("x.toml") && err.contains("port"), "{err}");
        let missing = format!("{:#}", read_toml::<File>(&dir.path().join("none.toml")).unwrap_err());
        assert!(missing.contains("reading config") && missing.contains("none.toml"), "{missing}");
    }

    #[test]
    fn only_loopback_rpc_urls_are_local() {
        for local in [
            "http://127.0.0.1:5050",
            "http://127.0.0.1:5050/rpc",
            "http://localhost:5050",
            "https://LOCALHOST/",
            "http://[::1]:5050/rpc",
            "http://127.8.9.10",
            "http://user:pw@127.0.0.1:1/x",
        ] {
            assert!(is_local_rpc(local), "{local}");
        }
        for remote in [
            "https://starknet-sepolia.public.blastapi.io/rpc/v0_8",
            "http://10.0.0.5:5050",
            "http://[2001:db8::1]:5050",
            "http://localhost.evil.example:5050",
            "http://127.0.0.1.evil.example/",
            "http://evil.example/?host=127.0.0.1",
            "http://127.0.0.1@evil.example/",
            "",
            "not a url",
        ] {
            assert!(!is_local_rpc(remote), "{remote}");
        }
        let err = refuse_test_proofs_off_devnet("prover.security", "https://rpc.example").unwrap_err().to_string();
        assert!(err.contains("prover.security") && err.contains("https://rpc.example"), "{err}");
        refuse_test_proofs_off_devnet("prover.security", "http://127.0.0.1:5050").unwrap();
    }

    #[tokio::test]
    async fn the_first_failing_task_ends_the_wait_with_its_error() {
        let mut tasks = JoinSet::new();
        tasks.spawn(async {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            Ok(())
        });
        tasks.spawn(async { Err(anyhow::anyhow!("driver failed")) });
        let err = until_shutdown(&mut tasks).await.unwrap_err();
        assert_eq!(err.to_string(), "driver failed");
        stop_all(&mut tasks).await;
        assert!(tasks.is_empty());
    }
}
