//! Pinned external tools, installed once into the Sage cache (outside the clone) and reused.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use sage_chain::devnet::{DEVNET_VERSION, cache_dir, devnet_binary, devnet_install_root};

use crate::run_step;

/// PyPI sdist that carries a static Cairo 2.4.0 `starknet-compile` and its corelib.
const CAIRO_LANG_SDIST: &str = "cairo-lang==0.13.0";
const CAIRO_LANG_ZIP: &str = "cairo-lang-0.13.0.zip";
/// sha256 of that sdist, pinned (checked before anything is extracted from it).
const CAIRO_LANG_SHA256: &str = "2789a87d3528d6015ae361a8086360125af28abb39451dfbc8655549aebc3553";
const COMPILER_SUBDIR: &str = "cairo-lang-0.13.0/starkware/starknet/compiler/v1/sierra-compiler-major-1";

/// Root of the extracted Cairo compiler (`bin/`, `corelib/`).
pub fn cairo_root() -> PathBuf {
    cache_dir().join("tools").join("cairo-2.4.0").join("x").join(COMPILER_SUBDIR)
}

/// The `starknet-compile` binary.
pub fn starknet_compile() -> PathBuf {
    cairo_root().join("bin").join("starknet-compile")
}

/// Installs starknet-devnet unless the pinned version is already in the cache.
pub fn ensure_devnet() -> Result<()> {
    let binary = devnet_binary();
    if let Ok(out) = Command::new(&binary).arg("--version").output()
        && String::from_utf8_lossy(&out.stdout).contains(DEVNET_VERSION)
    {
        eprintln!("starknet-devnet {DEVNET_VERSION}: {}", binary.display());
        return Ok(());
    }
    if std::env::var_os("SAGE_DEVNET_BIN").is_some() {
        bail!("SAGE_DEVNET_BIN={} is not starknet-devnet {DEVNET_VERSION}", binary.display());
    }
    let root = devnet_install_root();
    eprintln!(
        "Installing starknet-devnet {DEVNET_VERSION} into {} — first time only; this compiles ~400 crates \
         and takes about 25 minutes on 2 cores. Later runs reuse it.",
        root.display()
    );
    run_step(
        "cargo install starknet-devnet",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "starknet-devnet", "--version", DEVNET_VERSION, "--locked", "--root"])
            .arg(&root)
            .env("CARGO_TARGET_DIR", cache_dir().join("build").join("devnet-install"))
            // Not inherited from our workspace: devnet does not need RUSTC_BOOTSTRAP.
            .env_remove("RUSTC_BOOTSTRAP"),
    )?;
    Ok(())
}

/// Downloads (pip), verifies and extracts the Cairo compiler unless present, then (always)
/// installs our corelib shims into its corelib.
pub fn ensure_cairo() -> Result<()> {
    let base = cache_dir().join("tools").join("cairo-2.4.0");
    if !starknet_compile().exists() {
        let sdist_dir = base.join("sdist");
        let zip = sdist_dir.join(CAIRO_LANG_ZIP);
        if !zip.exists() {
            eprintln!("Downloading {CAIRO_LANG_SDIST} (11 MB) from PyPI for its Cairo 2.4.0 compiler");
            run_step(
                "pip download cairo-lang",
                Command::new("python3")
                    .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:", CAIRO_LANG_SDIST, "-d"])
                    .arg(&sdist_dir),
            )?;
        }
        let script = "import hashlib,sys,zipfile\n\
             p,dest,prefix,want=sys.argv[1:5]\n\
             h=hashlib.sha256(open(p,'rb').read()).hexdigest()\n\
             if h!=want: sys.exit(f'sha256 mismatch for {p}: {h} != {want}')\n\
             z=zipfile.ZipFile(p)\n\
             z.extractall(dest,[n for n in z.namelist() if n.startswith(prefix+'/')])\n";
        run_step(
            "verify + extract Cairo compiler",
            Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&zip)
                .arg(base.join("x"))
                .arg(COMPILER_SUBDIR)
                .arg(CAIRO_LANG_SHA256),
        )?;
        for bin in ["starknet-compile", "starknet-sierra-compile"] {
            make_executable(&cairo_root().join("bin").join(bin))?;
        }
    }
    install_shims()?;
    Ok(())
}

fn install_shims() -> Result<()> {
    let shims = crate::workspace_root().join("contracts").join("corelib-shims");
    let corelib_src = cairo_root().join("corelib").join("src");
    copy_tree(&shims, &corelib_src).with_context(|| format!("installing corelib shims into {}", corelib_src.display()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}

fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms =
        std::fs::metadata(path).with_context(|| format!("{} missing from the sdist", path.display()))?.permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms)?;
    Ok(())
}
