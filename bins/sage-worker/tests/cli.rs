//! The `sage-worker` wallet commands, run as a real process.

use std::{path::Path, process::Command};

fn worker(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sage-worker"));
    cmd.env_remove("SAGE_KEYSTORE_PASSWORD").env_remove("SAGE_KEYSTORE").env("HOME", dir);
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_ok(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure, got {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The Trezor BIP-39 vector (all-zero entropy, 24 words).
const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art";

#[test]
fn create_then_address_with_the_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("ks.json");
    let pw = write(dir.path(), "pw", "correct horse\n");
    let out = worker(dir.path())
        .args(["--json", "create-wallet", "--scrypt-log-n", "10", "--keystore"])
        .arg(&ks)
        .arg("--password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["address", "public_key", "keystore"] {
        assert!(created[field].as_str().unwrap().starts_with(if field == "keystore" { "/" } else { "0x" }), "{field}");
    }
    assert_eq!(created["elgamal_public_key"].as_array().unwrap().len(), 2);
    // The mnemonic went to the terminal (stderr), not into the JSON.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let words = stderr.lines().find(|l| l.split_whitespace().count() == 24).expect("24 words shown");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(words.trim()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777, 0o600);

    let again = run_ok(
        worker(dir.path())
            .args(["--json", "address", "--keystore"])
            .arg(&ks)
            .env("SAGE_KEYSTORE_PASSWORD", "correct horse"),
    );
    assert_eq!(again["address"], created["address"]);
    assert_eq!(again["elgamal_public_key"], created["elgamal_public_key"]);

    let err =
        run_err(worker(dir.path()).args(["address", "--keystore"]).arg(&ks).env("SAGE_KEYSTORE_PASSWORD", "wrong"));
    assert!(err.to_lowercase().contains("password"), "{err}");
    // Never overwritten without --force.
    let err = run_err(
        worker(dir.path())
            .args(["create-wallet", "--scrypt-log-n", "10", "--keystore"])
            .arg(&ks)
            .arg("--password-file")
            .arg(&pw),
    );
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn import_is_deterministic_and_derivations_differ() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "m.txt", MNEMONIC);
    let import = |name: &str, derivation: &str| {
        run_ok(
            worker(dir.path())
                .args(["--json", "import-wallet", "--scrypt-log-n", "10", "--derivation", derivation, "--keystore"])
                .arg(dir.path().join(name))
                .arg("--mnemonic-file")
                .arg(&m)
                .env("SAGE_KEYSTORE_PASSWORD", "pw"),
        )
    };
    let a = import("a.json", "braavos");
    let b = import("b.json", "braavos");
    let c = import("c.json", "argent-x");
    assert_eq!(a["address"], b["address"]);
    assert_eq!(a["elgamal_public_key"], b["elgamal_public_key"]);
    assert_ne!(a["public_key"], c["public_key"]);
    // The ElGamal key has its own path, independent of the Stark derivation scheme.
    assert_eq!(a["elgamal_public_key"], c["elgamal_public_key"]);
}

#[test]
fn bad_mnemonics_and_missing_passwords_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad_word = write(dir.path(), "bad.txt", &MNEMONIC.replace("art", "artz"));
    let err = run_err(
        worker(dir.path())
            .args(["import-wallet", "--scrypt-log-n", "10", "--keystore"])
            .arg(dir.path().join("k.json"))
            .arg("--mnemonic-file")
            .arg(&bad_word)
            .env("SAGE_KEYSTORE_PASSWORD", "pw"),
    );
    assert!(err.contains("artz"), "the error names the bad word: {err}");
    let bad_sum = write(dir.path(), "sum.txt", &MNEMONIC.replace("art", "abandon"));
    let err = run_err(
        worker(dir.path())
            .args(["import-wallet", "--scrypt-log-n", "10", "--keystore"])
            .arg(dir.path().join("k.json"))
            .arg("--mnemonic-file")
            .arg(&bad_sum)
            .env("SAGE_KEYSTORE_PASSWORD", "pw"),
    );
    assert!(err.to_lowercase().contains("checksum"), "{err}");
    assert!(!dir.path().join("k.json").exists(), "nothing written on error");
    // No terminal, no password source: refuse rather than hang.
    let m = write(dir.path(), "m.txt", MNEMONIC);
    let err = run_err(
        worker(dir.path())
            .args(["import-wallet", "--keystore"])
            .arg(dir.path().join("k.json"))
            .arg("--mnemonic-file")
            .arg(&m)
            .stdin(std::process::Stdio::null()),
    );
    assert!(err.contains("no keystore password"), "{err}");
}

#[test]
fn help_explains_where_secrets_come_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_sage-worker")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--password-file") && help.contains("SAGE_KEYSTORE_PASSWORD"), "{help}");
    assert!(!help.contains("--password "), "no password flag on argv");
}

#[test]
fn prove_writes_an_envelope_that_verifies_for_the_job_and_worker() {
    use obelysk_prover::statement::{JobId, WorkerAddress};
    use obelysk_prover::{Job, VerifyPolicy, matmul::MatmulJob, verify_bytes};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("proof.bin");
    let v = run_ok(
        worker(dir.path())
            .args(["--json", "prove", "--matmul", "16", "--seed", "0xab", "--job-id", "0x7", "--worker", "0x5a6e"])
            .args(["--backend", "cpu", "--security", "test", "--out"])
            .arg(&out),
    );
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["n"], 16);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(v["proof_bytes"], bytes.len());
    let mut seed = [0u8; 32];
    seed[31] = 0xab;
    let job = Job::matmul(JobId::from_u128(7), WorkerAddress::from_u128(0x5a6e), MatmulJob::from_seed(16, seed));
    let verified = verify_bytes(&bytes, &job, &VerifyPolicy::insecure_for_tests()).unwrap();
    assert_eq!(verified.statement.job_id, JobId::from_u128(7));
    assert_eq!(verified.statement.worker, WorkerAddress::from_u128(0x5a6e));
    // Bound to the worker: the same bytes do not verify for another worker.
    let other = Job::matmul(JobId::from_u128(7), WorkerAddress::from_u128(0x5a6f), MatmulJob::from_seed(16, seed));
    assert!(verify_bytes(&bytes, &other, &VerifyPolicy::insecure_for_tests()).is_err());
}

#[test]
fn prove_on_the_gpu_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = worker(dir.path());
    cmd.args(["--json", "prove", "--matmul", "16", "--backend", "gpu", "--security", "test"]);
    if cfg!(feature = "gpu") {
        // CI builds this feature and has Mesa lavapipe: an explicit `gpu` runs on it.
        let v = run_ok(&mut cmd);
        assert_eq!(v["backend"], "gpu");
    } else {
        let err = run_err(&mut cmd);
        assert!(err.contains("unavailable") && err.contains("gpu"), "{err}");
    }
}

#[test]
fn prove_rejects_bad_input_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_err(worker(dir.path()).args(["prove", "--matmul", "12", "--backend", "cpu", "--security", "test"]));
    assert!(err.contains("proving failed"), "{err}");
    let err = run_err(worker(dir.path()).args(["prove", "--matmul", "16", "--seed", "xyz", "--backend", "cpu"]));
    assert!(err.contains("--seed"), "{err}");
    let err = run_err(worker(dir.path()).args(["prove", "--matmul", "16", "--backend", "tpu"]));
    assert!(err.contains("tpu"), "{err}");
}

/// `register --tee auto` against a configfs-tsm report entry holding AMD's real sample SEV-SNP
/// report and its VCEK (as a host's certificate table): the report verifies up to AMD's root, but
/// its report data was made for another key and nonce, so the command refuses before it touches
/// the chain (whose RPC URL here points nowhere). Asking for the other TEE, or for any TEE on a
/// machine without configfs-tsm, is refused with what to do instead.
#[test]
fn register_refuses_tee_evidence_that_does_not_bind_this_worker_before_touching_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("ks.json");
    let pw = write(dir.path(), "pw", "correct horse\n");
    run_ok(
        worker(dir.path())
            .args(["--json", "create-wallet", "--scrypt-log-n", "10", "--keystore"])
            .arg(&ks)
            .arg("--password-file")
            .arg(&pw),
    );
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/sage-tee/test-data/sev");
    let report = hex::decode(std::fs::read_to_string(samples.join("report_milan.hex")).unwrap().trim()).unwrap();
    let vcek = std::fs::read(samples.join("vcek_milan.der")).unwrap();
    let entry = dir.path().join("tsm-entry");
    std::fs::create_dir(&entry).unwrap();
    std::fs::write(entry.join("provider"), "sev_guest\n").unwrap();
    std::fs::write(entry.join("generation"), "1\n").unwrap();
    std::fs::write(entry.join("outblob"), &report).unwrap();
    std::fs::write(entry.join("auxblob"), sage_tee::collect::vcek_cert_table(&vcek)).unwrap();
    let register = |tee: &str, tsm: &Path| {
        let mut cmd = worker(dir.path());
        cmd.args(["register", "--tee", tee, "--tsm"])
            .arg(tsm)
            .args(["--rpc-url", "http://127.0.0.1:9/rpc", "--manifest"])
            .arg(dir.path().join("manifest.json"))
            .arg("--keystore")
            .arg(&ks)
            .arg("--password-file")
            .arg(&pw);
        cmd
    };
    let err = run_err(&mut register("auto", &entry));
    assert!(err.contains("report data is not the binding of this worker's key"), "{err}");
    assert!(err.contains("nothing was registered"), "{err}");
    assert_eq!(std::fs::read(entry.join("inblob")).unwrap().len(), 64, "the binding was asked for");
    let err = run_err(&mut register("tdx", &entry));
    assert!(err.contains("asked for Tdx evidence, but this machine's TEE is SevSnp"), "{err}");
    let err = run_err(&mut register("sev-snp", &dir.path().join("no-configfs")));
    assert!(err.contains("no TEE attestation interface") && err.contains("--tee none"), "{err}");
}
