//! Where the pinned starknet-devnet lives. Standard library only: `xtask` includes this file with
//! `#[path]` so that it finds (and installs) the same binary before the workspace is built.

use std::path::PathBuf;

/// The devnet release Sage is tested against (it serves JSON-RPC 0.10.2).
pub const DEVNET_VERSION: &str = "0.10.1";

/// Root of the Sage tool cache: `$SAGE_CACHE_DIR`, else `$XDG_CACHE_HOME/sage`, else
/// `$HOME/.cache/sage`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SAGE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("sage");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("sage")
}

/// Where `cargo xtask tools` installs devnet (its `--root`).
pub fn devnet_install_root() -> PathBuf {
    cache_dir().join("tools").join(format!("starknet-devnet-{DEVNET_VERSION}"))
}

/// The devnet binary: `$SAGE_DEVNET_BIN`, else the tool cache.
pub fn devnet_binary() -> PathBuf {
    std::env::var_os("SAGE_DEVNET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| devnet_install_root().join("bin").join("starknet-devnet"))
}
