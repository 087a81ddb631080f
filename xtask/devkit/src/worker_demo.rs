//! The demo's worker process: built from this workspace, driven through its command line with
//! the keystore password in the environment (never on argv), its `--json` events read line by
//! line.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::mpsc as std_mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::workspace_root;

const WAIT: Duration = Duration::from_secs(180);

/// The worker process; killed if the demo stops early.
pub(crate) struct WorkerProcess {
    pub(crate) child: Child,
    pub(crate) events: std_mpsc::Receiver<Value>,
}

impl WorkerProcess {
    pub(crate) fn expect(&self, event: &str) -> Result<Value> {
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
pub(crate) fn build_worker() -> Result<PathBuf> {
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

pub(crate) fn worker_command(bin: &Path, home: &Path, password: &str) -> Command {
    let mut cmd = Command::new(bin);
    // The password travels in the environment, never on the command line.
    cmd.env("SAGE_KEYSTORE_PASSWORD", password).env("HOME", home).env_remove("SAGE_PROVER_BACKEND");
    cmd
}
