//! Embeds the committed contract artifacts (`contracts/artifacts/`) when they exist. Missing
//! artifacts are not a build error (xtask, which produces them, links this crate); they surface
//! at run time as `ChainError::MissingArtifact`.

use std::{fmt::Write, path::PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest_dir.join("../../contracts/artifacts");
    println!("cargo:rerun-if-changed={}", dir.display());
    let index = dir.join("index.json");
    println!("cargo:rerun-if-changed={}", index.display());
    let mut code = String::new();
    match std::fs::read_to_string(&index) {
        Ok(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).expect("contracts/artifacts/index.json is valid JSON");
            writeln!(
                code,
                "const EMBEDDED_INDEX: Option<&str> = Some(include_str!({:?}));",
                index.display().to_string()
            )
            .expect("writing to a String cannot fail");
            code.push_str("const EMBEDDED: &[(&str, Option<&str>)] = &[\n");
            if let Some(contracts) = value.get("contracts").and_then(|c| c.as_object()) {
                for name in contracts.keys() {
                    let sierra = dir.join(format!("{name}.contract_class.json"));
                    println!("cargo:rerun-if-changed={}", sierra.display());
                    if sierra.exists() {
                        writeln!(code, "    ({name:?}, Some(include_str!({:?}))),", sierra.display().to_string())
                            .expect("writing to a String cannot fail");
                    } else {
                        writeln!(code, "    ({name:?}, None),").expect("writing to a String cannot fail");
                    }
                }
            }
            code.push_str("];\n");
        }
        Err(_) => {
            code.push_str(
                "const EMBEDDED_INDEX: Option<&str> = None;\nconst EMBEDDED: &[(&str, Option<&str>)] = &[];\n",
            );
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_artifacts.rs");
    std::fs::write(out, code).expect("writing embedded_artifacts.rs");
}
