//! What the machine must have before the long work starts: system packages (checked by what they
//! provide, named by their Debian package), the Rust pieces the tests use, and the pinned tools.
//! As root on Debian the missing packages are installed; otherwise the check stops within seconds
//! with the exact command to run.

use std::{path::Path, process::Command};

use anyhow::{Result, bail};

use crate::run_step;

/// What a command needs of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `cargo xtask demo` (and contracts/devnet/deploy): C toolchain, Python with pip.
    Demo,
    /// `cargo xtask test`: the above, plus the Vulkan loader and a Vulkan driver (Mesa's lavapipe
    /// on a machine without a GPU) for the wgpu tests.
    Test,
}

/// One system requirement: how to tell it is present, and the Debian packages that provide it.
struct Requirement {
    what: &'static str,
    packages: &'static [&'static str],
    present: fn() -> bool,
    for_test_only: bool,
}

const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        what: "C compiler and make (for -sys crates)",
        packages: &["build-essential"],
        present: || runs("cc", &["--version"]) && runs("make", &["--version"]),
        for_test_only: false,
    },
    Requirement {
        what: "pkg-config",
        packages: &["pkg-config"],
        present: || runs("pkg-config", &["--version"]),
        for_test_only: false,
    },
    Requirement {
        what: "CA certificates (downloads over TLS)",
        packages: &["ca-certificates"],
        present: || Path::new("/etc/ssl/certs/ca-certificates.crt").exists() || Path::new("/etc/ssl/cert.pem").exists(),
        for_test_only: false,
    },
    Requirement {
        what: "Python 3 with pip (fetches the Cairo compiler)",
        packages: &["python3", "python3-pip"],
        present: || runs("python3", &["-m", "pip", "--version"]),
        for_test_only: false,
    },
    Requirement {
        what: "PostgreSQL server (the coordinator store's tests run on it as well as on SQLite)",
        packages: &["postgresql"],
        present: || runs("pg_lsclusters", &["-h"]),
        for_test_only: true,
    },
    Requirement {
        what: "Python venv (the MCP client the sage-mcp tests drive the server with)",
        packages: &["python3-venv"],
        present: || runs("python3", &["-c", "import ensurepip, venv"]),
        for_test_only: true,
    },
    Requirement {
        what: "Vulkan loader libvulkan.so.1 (wgpu tests)",
        packages: &["libvulkan1"],
        present: vulkan_loader_present,
        for_test_only: true,
    },
    Requirement {
        what: "a Vulkan driver (Mesa's lavapipe on a machine without a GPU; wgpu tests)",
        packages: &["mesa-vulkan-drivers"],
        present: vulkan_driver_present,
        for_test_only: true,
    },
];

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn vulkan_loader_present() -> bool {
    let dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];
    dirs.iter().any(|d| Path::new(d).join("libvulkan.so.1").exists())
}

fn vulkan_driver_present() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"].iter().any(|d| {
        std::fs::read_dir(d).is_ok_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))
        })
    })
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One line per requirement: (present, what, packages).
pub fn report(purpose: Purpose) -> Vec<(bool, &'static str, String)> {
    REQUIREMENTS
        .iter()
        .filter(|r| purpose == Purpose::Test || !r.for_test_only)
        .map(|r| ((r.present)(), r.what, r.packages.join(" ")))
        .collect()
}

/// Checks (and, as root on Debian, installs) the system packages `purpose` needs.
pub fn system_packages(purpose: Purpose) -> Result<()> {
    let wanted: Vec<&Requirement> =
        REQUIREMENTS.iter().filter(|r| purpose == Purpose::Test || !r.for_test_only).collect();
    let missing: Vec<&Requirement> = wanted.iter().copied().filter(|r| !(r.present)()).collect();
    if missing.is_empty() {
        eprintln!("    system packages: all {} requirements present", wanted.len());
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().flat_map(|r| r.packages.iter().copied()).collect();
    let list = packages.join(" ");
    let what: Vec<&str> = missing.iter().map(|r| r.what).collect();
    if is_root() && runs("apt-get", &["--version"]) {
        run_step("apt-get update (system package lists)", Command::new("apt-get").args(["update", "-q"]))?;
        run_step(
            &format!("installing system packages: {list} (about a minute)"),
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        let still: Vec<&str> = missing.iter().filter(|r| !(r.present)()).map(|r| r.what).collect();
        if !still.is_empty() {
            bail!("installed {list}, but still missing: {}", still.join("; "));
        }
        return Ok(());
    }
    bail!(
        "this machine lacks: {}.\nOn Debian/Ubuntu install them with:\n\n    sudo apt-get update && sudo apt-get install -y \
         --no-install-recommends {list}\n\nthen run the command again (`cargo xtask doctor` lists everything it checks).",
        what.join("; ")
    )
}

/// Whether `cargo nextest` runs.
pub fn nextest_present() -> bool {
    runs(&crate::cargo_bin(), &["nextest", "--version"])
}

/// Whether a rustup component's cargo subcommand runs (`fmt`, `clippy`).
pub fn cargo_subcommand_present(sub: &str) -> bool {
    runs(&crate::cargo_bin(), &[sub, "--version"])
}

/// cargo-nextest, clippy and rustfmt, which `cargo xtask test` runs.
pub fn test_toolchain() -> Result<()> {
    for (sub, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        if !cargo_subcommand_present(sub) {
            run_step(
                &format!("rustup component add {component} (seconds)"),
                Command::new("rustup").args(["component", "add", component]),
            )?;
        }
    }
    if nextest_present() {
        eprintln!("    cargo-nextest, clippy, rustfmt: present");
        return Ok(());
    }
    run_step(
        "installing cargo-nextest from crates.io (first time only, about 5 minutes on 2 cores)",
        Command::new(crate::cargo_bin()).args(["install", "cargo-nextest", "--locked"]).env_remove("RUSTC_BOOTSTRAP"),
    )
}
