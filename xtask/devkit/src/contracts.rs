//! `cargo xtask contracts [--check]`: Cairo → Sierra (starknet-compile 2.4.0) → CASM and compiled
//! class hash exactly as devnet 0.10.1 computes them (cairo-lang-starknet-classes 2.19.4, Blake2s).

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::{Context, Result, bail};
use cairo_lang_starknet_classes::{casm_contract_class::CasmContractClass, contract_class::ContractClass};
use sage_chain::{ArtifactEntry, ArtifactIndex, artifacts::INDEX_FILE};
use starknet_rust::core::types::contract::{CompiledClass, SierraClass};

use crate::{cairo_paths, workspace_root};

/// Every contract: (name, Cairo module path inside the `sage` crate).
pub const CONTRACTS: &[(&str, &str)] = &[
    ("SageToken", "sage::token::SageToken"),
    ("Faucet", "sage::faucet::Faucet"),
    ("StakingManager", "sage::staking::StakingManager"),
    ("ReputationManager", "sage::reputation::ReputationManager"),
    ("JobManager", "sage::jobs::JobManager"),
    ("ProofVerifier", "sage::verifier::ProofVerifier"),
    ("PaymentRouter", "sage::payments::PaymentRouter"),
    ("PrivacyRouter", "sage::privacy::PrivacyRouter"),
];

const SIERRA_COMPILER: &str = "starknet-compile 2.4.0 (PyPI cairo-lang 0.13.0)";
const CASM_COMPILER: &str = "cairo-lang-starknet-classes 2.19.4 (Blake2s compiled class hash)";

pub fn run(check: bool) -> Result<()> {
    let compiler = cairo_paths::starknet_compile(&sage_chain::devnet::cache_dir());
    if !compiler.exists() {
        bail!("the Cairo compiler is not installed at {} (run `cargo xtask tools --no-devnet`)", compiler.display());
    }
    let root = workspace_root().join("contracts");
    let out_dir = root.join("artifacts");
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut index = ArtifactIndex {
        sierra_compiler: SIERRA_COMPILER.into(),
        casm_compiler: CASM_COMPILER.into(),
        contracts: BTreeMap::new(),
    };
    for (name, module) in CONTRACTS {
        let started = std::time::Instant::now();
        let sierra = compile_sierra(&compiler, &root, module)?;
        let (class_hash, compiled_class_hash, casm) = hashes(name, &sierra)?;
        index.contracts.insert(
            (*name).into(),
            ArtifactEntry {
                module: (*module).into(),
                class_hash,
                compiled_class_hash,
                sierra_bytes: sierra.len() as u64,
                casm_bytes: casm.len() as u64,
            },
        );
        eprintln!(
            "{name:<12} sierra {:>7} B  casm {:>7} B  class {class_hash:#066x}  ({:.1?})",
            sierra.len(),
            casm.len(),
            started.elapsed()
        );
        files.insert(ArtifactIndex::sierra_file(name), sierra);
        files.insert(ArtifactIndex::casm_file(name), casm);
    }
    let mut index_json = serde_json::to_vec_pretty(&index)?;
    index_json.push(b'\n');
    files.insert(INDEX_FILE.into(), index_json);

    if check {
        let mut stale = Vec::new();
        for (file, bytes) in &files {
            match std::fs::read(out_dir.join(file)) {
                Ok(existing) if &existing == bytes => {}
                Ok(_) => stale.push(format!("{file} differs")),
                Err(_) => stale.push(format!("{file} missing")),
            }
        }
        for entry in std::fs::read_dir(&out_dir).with_context(|| format!("reading {}", out_dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !files.contains_key(&name) {
                stale.push(format!("{name} is not produced by any contract"));
            }
        }
        if !stale.is_empty() {
            bail!("contract artifacts are stale (run `cargo xtask contracts` and commit):\n  {}", stale.join("\n  "));
        }
        eprintln!("contract artifacts are up to date ({} files)", files.len());
    } else {
        std::fs::create_dir_all(&out_dir)?;
        for (file, bytes) in &files {
            std::fs::write(out_dir.join(file), bytes).with_context(|| format!("writing {file}"))?;
        }
        eprintln!("wrote {} files to {}", files.len(), out_dir.display());
    }
    Ok(())
}

fn compile_sierra(compiler: &Path, project: &Path, module: &str) -> Result<Vec<u8>> {
    let tmp =
        std::env::temp_dir().join(format!("sage-sierra-{}-{}.json", std::process::id(), module.replace("::", "_")));
    let out = Command::new(compiler)
        .arg(project)
        .arg(&tmp)
        .args(["--contract-path", module])
        .output()
        .context("running starknet-compile (install it with `cargo xtask tools --no-devnet`)")?;
    if !out.status.success() {
        bail!(
            "compiling {module} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bytes = std::fs::read(&tmp).with_context(|| format!("reading {}", tmp.display()))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(bytes)
}

/// (class hash, Blake2s compiled class hash, CASM JSON).
fn hashes(
    name: &str,
    sierra: &[u8],
) -> Result<(starknet_rust::core::types::Felt, starknet_rust::core::types::Felt, Vec<u8>)> {
    let parsed: SierraClass = serde_json::from_slice(sierra).with_context(|| format!("{name}: parsing Sierra"))?;
    let class_hash = parsed.flatten().with_context(|| format!("{name}: flattening"))?.class_hash();
    let class: ContractClass = serde_json::from_slice(sierra)?;
    let program = class.extract_sierra_program(false).with_context(|| format!("{name}: extracting Sierra program"))?;
    // Same arguments as devnet's compiler: pythonic hints on, no bytecode size limit.
    let casm = CasmContractClass::from_contract_class(class, program, true, usize::MAX)
        .with_context(|| format!("{name}: Sierra → CASM"))?;
    let casm_json = serde_json::to_vec(&casm)?;
    let compiled: CompiledClass = serde_json::from_slice(&casm_json)?;
    let compiled_class_hash = compiled.class_hash().with_context(|| format!("{name}: compiled class hash"))?;
    Ok((class_hash, compiled_class_hash, casm_json))
}
