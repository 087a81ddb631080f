//! Pinned external tools, installed once into the Sage cache (outside the clone) and reused.

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::{
    cairo_paths::{
        CAIRO_LANG_SDIST, CAIRO_LANG_SHA256, CAIRO_LANG_ZIP, COMPILER_SUBDIR, cairo_base, cairo_root, starknet_compile,
    },
    devnet_paths::{DEVNET_VERSION, cache_dir, devnet_binary, devnet_install_root},
    run_step,
};

/// The installed devnet's version line, if the binary runs and is the pinned version.
pub fn devnet_present() -> Option<String> {
    let out = Command::new(devnet_binary()).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    version.contains(DEVNET_VERSION).then_some(version)
}

/// Installs starknet-devnet unless the pinned version is already in the cache.
pub fn ensure_devnet() -> Result<()> {
    let binary = devnet_binary();
    if devnet_present().is_some() {
        eprintln!("    starknet-devnet {DEVNET_VERSION}: {}", binary.display());
        return Ok(());
    }
    if std::env::var_os("SAGE_DEVNET_BIN").is_some() {
        bail!("SAGE_DEVNET_BIN={} is not starknet-devnet {DEVNET_VERSION}", binary.display());
    }
    let root = devnet_install_root();
    run_step(
        &format!(
            "installing starknet-devnet {DEVNET_VERSION} into {} (first time only: ~400 crates, \
             about 20-25 minutes on 2 cores; later runs reuse it)",
            root.display()
        ),
        Command::new(crate::cargo_bin())
            .args(["install", "starknet-devnet", "--version", DEVNET_VERSION, "--locked", "--root"])
            .arg(&root)
            .env("CARGO_TARGET_DIR", cache_dir().join("build").join("devnet-install"))
            // Not inherited from our workspace: devnet does not need RUSTC_BOOTSTRAP.
            .env_remove("RUSTC_BOOTSTRAP"),
    )?;
    if devnet_present().is_none() {
        bail!("starknet-devnet was installed but {} does not report version {DEVNET_VERSION}", binary.display());
    }
    Ok(())
}

/// Downloads (pip), verifies and extracts the Cairo compiler unless present, then (always)
/// installs our corelib shims into its corelib.
pub fn ensure_cairo() -> Result<()> {
    let cache = cache_dir();
    let base = cairo_base(&cache);
    if starknet_compile(&cache).exists() {
        eprintln!("    Cairo 2.4.0 compiler: {}", starknet_compile(&cache).display());
    } else {
        let sdist_dir = base.join("sdist");
        let zip = sdist_dir.join(CAIRO_LANG_ZIP);
        if !zip.exists() {
            run_step(
                &format!("downloading {CAIRO_LANG_SDIST} (11 MB) from PyPI for its Cairo 2.4.0 compiler (seconds)"),
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
            "verifying (sha256) and extracting the Cairo compiler",
            Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&zip)
                .arg(base.join("x"))
                .arg(COMPILER_SUBDIR)
                .arg(CAIRO_LANG_SHA256),
        )?;
        for bin in ["starknet-compile", "starknet-sierra-compile"] {
            make_executable(&cairo_root(&cache).join("bin").join(bin))?;
        }
    }
    install_shims(&cache)
}

/// The MCP Python SDK the sage-mcp tests drive the server with (an MCP client from outside the
/// project), pinned, in its own virtualenv under the cache.
pub const MCP_PYTHON_SDK: &str = "mcp==2.3.0";

/// Creates `$SAGE_CACHE_DIR/mcp-venv` with [`MCP_PYTHON_SDK`] unless it is there.
pub fn ensure_mcp_client() -> Result<()> {
    let venv = cache_dir().join("mcp-venv");
    let python = venv.join("bin").join("python");
    let version = MCP_PYTHON_SDK.split("==").nth(1).unwrap_or_default();
    let check = format!("import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '{version}')");
    let present = Command::new(&python)
        .args(["-c", &check])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        eprintln!("    MCP Python SDK {version}: {}", venv.display());
        return Ok(());
    }
    run_step(
        "creating the virtualenv for the MCP Python SDK (the sage-mcp tests' outside client; seconds)",
        Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv),
    )?;
    run_step(
        &format!("installing {MCP_PYTHON_SDK} from PyPI into it (about 20 s)"),
        Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", MCP_PYTHON_SDK]),
    )
}

/// The pinned cargo-deny (licences, duplicate versions, sources of the dependency graph).
pub const CARGO_DENY_VERSION: &str = "0.20.2";

/// The cargo-deny binary in the cache.
pub fn cargo_deny_binary() -> std::path::PathBuf {
    cache_dir().join("tools").join(format!("cargo-deny-{CARGO_DENY_VERSION}")).join("bin").join("cargo-deny")
}

/// Builds [`CARGO_DENY_VERSION`] from crates.io into the cache unless it is there (about 3
/// minutes on 2 cores, once per machine).
pub fn ensure_cargo_deny() -> Result<std::path::PathBuf> {
    let binary = cargo_deny_binary();
    let present = Command::new(&binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(CARGO_DENY_VERSION));
    if present {
        eprintln!("    cargo-deny {CARGO_DENY_VERSION}: {}", binary.display());
        return Ok(binary);
    }
    let root = binary.parent().and_then(Path::parent).context("cargo-deny install root")?.to_path_buf();
    let build = cache_dir().join("tools").join("cargo-deny-build");
    std::fs::create_dir_all(cache_dir()).with_context(|| format!("creating {}", cache_dir().display()))?;
    run_step(
        &format!("installing cargo-deny {CARGO_DENY_VERSION} from crates.io (once; about 3 minutes on 2 cores)"),
        Command::new(crate::cargo_bin())
            .args(["install", "cargo-deny", "--locked", "--version", CARGO_DENY_VERSION, "--root"])
            .arg(&root)
            .arg("--target-dir")
            .arg(&build)
            // Built outside the workspace: its `.cargo/config.toml` (RUSTC_BOOTSTRAP) and target
            // dir are not this tool's business.
            .current_dir(cache_dir())
            .env_remove("RUSTC_BOOTSTRAP")
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    let _ = std::fs::remove_dir_all(&build);
    Ok(binary)
}

/// A PostgreSQL server for the store tests: `SAGE_TEST_POSTGRES_URL` when set; otherwise, as
/// root on Debian, the local cluster is started and a login role with a fresh random password is
/// (re)made for this run. Returns the URL the tests get (they create a database each).
pub fn ensure_postgres() -> Result<String> {
    if let Ok(url) = std::env::var("SAGE_TEST_POSTGRES_URL") {
        eprintln!("    PostgreSQL for the store tests: SAGE_TEST_POSTGRES_URL");
        return Ok(url);
    }
    if !crate::preflight::is_root() {
        bail!(
            "the store tests need a PostgreSQL server: run as root on Debian (the local cluster is started), or set \
             SAGE_TEST_POSTGRES_URL=postgres://USER:PASSWORD@HOST:5432/postgres for a role that may CREATE DATABASE"
        );
    }
    let clusters = Command::new("pg_lsclusters").arg("-h").output().context("running pg_lsclusters")?;
    let text = String::from_utf8_lossy(&clusters.stdout);
    let line = text.lines().next().context("no PostgreSQL cluster (pg_lsclusters lists none)")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (version, name, port, status) = match fields.as_slice() {
        [v, n, p, s, ..] => (*v, *n, *p, *s),
        _ => bail!("unexpected pg_lsclusters line {line:?}"),
    };
    if status != "online" {
        run_step(
            &format!("starting PostgreSQL {version} ({name}, port {port}) for the store tests (seconds)"),
            Command::new("pg_ctlcluster").args([version, name, "start"]),
        )?;
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // The password reaches psql on stdin, never argv. The databases earlier runs' tests made go.
    let sql = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sage_test') THEN \
         CREATE ROLE sage_test LOGIN CREATEDB; END IF; END $$;\nALTER ROLE sage_test PASSWORD '{password}';\n\
         SELECT format('DROP DATABASE %I', datname) FROM pg_database WHERE datname LIKE 'sage\\_test\\_%' \\gexec\n"
    );
    let mut child = Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1", "-p", port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("running psql as postgres")?;
    std::io::Write::write_all(child.stdin.as_mut().context("psql stdin")?, sql.as_bytes())?;
    drop(child.stdin.take());
    if !child.wait()?.success() {
        bail!("could not create the sage_test role in PostgreSQL {version}");
    }
    eprintln!("    PostgreSQL {version} on port {port}: role sage_test (fresh password for this run)");
    Ok(format!("postgres://sage_test:{password}@127.0.0.1:{port}/postgres"))
}

fn install_shims(cache: &Path) -> Result<()> {
    let shims = crate::workspace_root().join("contracts").join("corelib-shims");
    let corelib_src = cairo_root(cache).join("corelib").join("src");
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
