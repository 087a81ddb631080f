//! The deployment manifest: which classes were declared and where the contracts live.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use starknet_rust::core::types::Felt;

use crate::{Artifacts, ChainClient, ChainError, client::chain_id_to_string};

/// Current manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// One deployed contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedContract {
    /// Sierra class hash.
    pub class_hash: Felt,
    /// Contract address.
    pub address: Felt,
}

/// Where everything is, for one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Chain id as a short string (`SN_SEPOLIA`).
    pub chain_id: String,
    /// The endpoint used for the deployment.
    pub rpc_url: String,
    /// Block number before the first deployment transaction (event scans start here).
    pub deployed_at_block: u64,
    /// The deploying (owner) account.
    pub deployer: Felt,
    /// Contracts by name (`SageToken`, `Faucet`).
    pub contracts: BTreeMap<String, DeployedContract>,
}

impl Manifest {
    /// A contract by name.
    pub fn contract(&self, name: &str) -> Result<&DeployedContract, ChainError> {
        self.contracts.get(name).ok_or_else(|| ChainError::StaleManifest {
            path: PathBuf::new(),
            reason: format!("no contract named {name}"),
        })
    }

    /// Reads a manifest.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ChainError::Manifest { path: path.to_owned(), reason: e.to_string() })?;
        let manifest: Self = serde_json::from_str(&text)
            .map_err(|e| ChainError::Manifest { path: path.to_owned(), reason: format!("invalid JSON: {e}") })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(ChainError::StaleManifest {
                path: path.to_owned(),
                reason: format!("format version {} (this build reads {MANIFEST_VERSION})", manifest.version),
            });
        }
        Ok(manifest)
    }

    /// Writes the manifest atomically (temporary file in the same directory, fsync, rename):
    /// readers see the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let err = |reason: String| ChainError::Manifest { path: path.to_owned(), reason };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| err(format!("creating {}: {e}", dir.display())))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        tmp.write_all(json.as_bytes()).map_err(|e| err(e.to_string()))?;
        tmp.write_all(b"\n").map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }

    /// Checks the manifest against the chain: same chain id, and every contract deployed at its
    /// address with its recorded class.
    pub async fn verify_on_chain(&self, client: &ChainClient, path: &Path) -> Result<(), ChainError> {
        let stale = |reason: String| ChainError::StaleManifest { path: path.to_owned(), reason };
        let actual = chain_id_to_string(client.chain_id());
        if actual != self.chain_id {
            return Err(stale(format!("written for chain {} but the endpoint serves {actual}", self.chain_id)));
        }
        for (name, c) in &self.contracts {
            match client.class_hash_at(c.address).await? {
                Some(h) if h == c.class_hash => {}
                Some(h) => {
                    return Err(stale(format!(
                        "{name} at {:#x} runs class {h:#x}, not {:#x}",
                        c.address, c.class_hash
                    )));
                }
                None => return Err(stale(format!("{name} is not deployed at {:#x} (devnet restarted?)", c.address))),
            }
        }
        Ok(())
    }

    /// Checks that the manifest's classes are the current artifacts' classes.
    pub fn verify_artifacts(&self, artifacts: &Artifacts, path: &Path) -> Result<(), ChainError> {
        for (name, c) in &self.contracts {
            let artifact = artifacts.get(name)?;
            if artifact.class_hash != c.class_hash {
                return Err(ChainError::StaleManifest {
                    path: path.to_owned(),
                    reason: format!(
                        "{name} was deployed from class {:#x} but the artifacts now hold {:#x}",
                        c.class_hash, artifact.class_hash
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut contracts = BTreeMap::new();
        contracts
            .insert("SageToken".into(), DeployedContract { class_hash: Felt::from(7u8), address: Felt::from(9u8) });
        Manifest {
            version: MANIFEST_VERSION,
            chain_id: "SN_SEPOLIA".into(),
            rpc_url: "http://127.0.0.1:5050/rpc".into(),
            deployed_at_block: 3,
            deployer: Felt::from(1u8),
            contracts,
        }
    }

    #[test]
    fn save_then_load_roundtrips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("m.json");
        let first = sample();
        first.save(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), first);
        let mut second = sample();
        second.deployed_at_block = 99;
        second.save(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap().deployed_at_block, 99);
        // Only the manifest remains: no temporary files are left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn wrong_version_and_garbage_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let mut m = sample();
        m.version = 0;
        m.save(&path).unwrap();
        assert!(matches!(Manifest::load(&path), Err(ChainError::StaleManifest { .. })));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(Manifest::load(&path), Err(ChainError::Manifest { .. })));
        assert!(matches!(Manifest::load(&dir.path().join("absent.json")), Err(ChainError::Manifest { .. })));
    }

    #[test]
    fn artifacts_mismatch_is_stale() {
        let artifacts = Artifacts::embedded().unwrap();
        let m = sample();
        let err = m.verify_artifacts(&artifacts, Path::new("m.json")).unwrap_err();
        assert!(matches!(err, ChainError::StaleManifest { .. }), "{err}");
    }
}
