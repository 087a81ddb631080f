//! sage-mcp driven by a real MCP client from outside the project: the official MCP Python SDK
//! (`mcp_client.py`), over stdio and over Streamable HTTP, against a real coordinator on a real
//! devnet with the real contracts. A worker node proves whatever it is assigned and staked
//! validators certify it, so a job bought through MCP is paid and verified end to end.
//!
//! Checked: the tool list with schemas and annotations; a job submitted (the user approves through
//! elicitation), waited for with progress notifications, and verified; a retried call with the
//! same idempotency key pays nothing; the session cap refuses the call that would pass it and
//! nothing is escrowed; a client that cannot ask its user is refused above the approval threshold;
//! bad input is a tool error with a stable code; HTTP without (or with a wrong) bearer token is 401.
//!
//! The Python SDK is installed by `cargo xtask test` (into `$SAGE_CACHE_DIR/mcp-venv`); without it
//! this test fails with the install instruction rather than skipping.

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use sage_chain::{SAGE, StarkKey};
use sage_consensus::Verdict;
use sage_coordinator::testing::{coordinator, net, worker};
use serde_json::Value;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SAGE_MCP_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("SAGE_CACHE_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache").join("sage"),
        PathBuf::from,
    );
    let p = cache.join("mcp-venv").join("bin").join("python");
    assert!(
        p.exists(),
        "the MCP Python SDK is not installed at {}: run `cargo xtask test` (or `cargo xtask tools`), which creates \
         that virtualenv with mcp==2.3.0, or set SAGE_MCP_PYTHON",
        p.display()
    );
    p
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("mcp_client.py")
}

async fn run_client(args: &[&str]) -> Value {
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(python()).arg(script()).args(args).stderr(Stdio::piped()).output(),
    )
    .await
    .expect("the Python client finishes in 300 s")
    .expect("running the Python client");
    assert!(out.status.success(), "python client failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn ok<'a>(v: &'a Value, what: &str) -> &'a Value {
    assert_eq!(v[0], false, "{what} failed: {}", v[1]);
    &v[1]
}

fn err_code<'a>(v: &'a Value, what: &str) -> &'a str {
    assert_eq!(v[0], true, "{what} should have failed: {}", v[1]);
    v[1]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outside_mcp_client_buys_waits_and_verifies_within_the_budget() {
    // Fail fast (before the devnet starts) when the Python SDK is missing.
    python();
    let n = Arc::new(net(1).await);
    // The MCP server's own account (a separate process signs with it): fee token, deployment,
    // and 10 SAGE to escrow from, all before the coordinator (which signs as the owner) starts.
    let key = StarkKey::from_random().unwrap();
    let address = sage_chain::oz_account_address(key.public_key(), key.public_key());
    n.net.devnet.mint_strk(address, 10 * SAGE).await.unwrap();
    let account = sage_chain::deploy_oz_account(&n.net.client, key.clone(), key.public_key()).await.unwrap();
    n.net.contracts.token.transfer(&n.net.owner, account.address(), 10 * SAGE).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (running, api_key) = coordinator(&n, dir.path(), 60).await;

    // Whatever is assigned is proved, submitted and certified valid.
    let mut w = worker(&n, 0, &running).await;
    let worker_net = n.clone();
    let prover = tokio::spawn(async move {
        while let Some(a) = w.assignments.recv().await {
            let proof = w.prove_and_submit(&worker_net, &a).await;
            worker_net.net.certify(a.job_id, proof, Verdict::Valid).await;
        }
    });

    let d = dir.path();
    std::fs::write(d.join("api.key"), &api_key).unwrap();
    std::fs::write(d.join("client.key"), format!("{:#x}\n", key.expose_secret())).unwrap();
    n.net.manifest.save(&d.join("manifest.json")).unwrap();
    std::fs::write(
        d.join("mcp.toml"),
        format!(
            "[coordinator]\nurl = \"http://{}\"\napi_key_file = \"api.key\"\n[chain]\nrpc_url = \"{}\"\n\
             manifest = \"manifest.json\"\naccount = \"{:#x}\"\nkey_file = \"client.key\"\n[budget]\nper_call = \"1.5\"\n\
             per_session = \"2.5\"\nper_day = \"10\"\napproval_above = \"0.5\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [proofs]\nsecurity = \"test\"\n",
            running.api_addr,
            n.net.devnet.rpc_url(),
            account.address()
        ),
    )
    .unwrap();
    let config = d.join("mcp.toml");
    let bin = env!("CARGO_BIN_EXE_sage-mcp");
    let token_of = |a| n.net.contracts.token.balance_of(&n.net.client, a);
    let before = token_of(account.address()).await.unwrap();

    // --- stdio ---
    let s = run_client(&["stdio", bin, config.to_str().unwrap()]).await;
    let tools = s["tools"].as_object().unwrap();
    for name in [
        "sage_quote",
        "sage_submit_job",
        "sage_job_status",
        "sage_wait_job",
        "sage_get_proof",
        "sage_verify_proof",
        "sage_get_output",
        "sage_cancel_job",
        "sage_list_workers",
        "sage_network_stats",
        "sage_budget",
    ] {
        assert!(tools.contains_key(name), "tool {name} missing: {:?}", tools.keys());
    }
    let submit = &tools["sage_submit_job"];
    let required: Vec<&str> = submit["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(required.contains(&"size") && required.contains(&"idempotency_key"), "{submit}");
    assert_eq!(tools["sage_quote"]["read_only"], true);
    assert_eq!(tools["sage_cancel_job"]["destructive"], true);

    assert_eq!(ok(&s["quote"], "quote")["price_base_units"], SAGE.to_string());
    let job = ok(&s["submit"], "submit")["job_id"].as_str().unwrap().to_owned();
    let wait = ok(&s["wait"], "wait");
    assert_eq!((wait["outcome"].as_str(), wait["verified"].as_bool()), (Some("certified"), Some(true)), "{wait}");
    let progress: Vec<&str> = s["progress"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!progress.is_empty(), "no progress notifications while waiting");
    assert_eq!(ok(&s["verify"], "verify")["valid"], true);
    let output = ok(&s["output"], "output");
    let (a, b) = obelysk_prover::matmul::derive_matrices(8, &sage_chain::Felt::from(0x51u8).to_bytes_be());
    let c = obelysk_prover::matmul::native_matmul(8, &a, &b);
    let rows: Vec<Vec<u32>> = serde_json::from_value(output["rows"].clone()).unwrap();
    assert_eq!((output["verified"].as_bool(), rows.concat()), (Some(true), c), "{output}");
    let retry = ok(&s["retry"], "retry");
    assert_eq!((retry["job_id"].as_str(), retry["repeated"].as_bool()), (Some(job.as_str()), Some(true)));
    ok(&s["second"], "second submit");
    assert_eq!(err_code(&s["over_budget"], "third submit"), "budget_per_session");
    assert_eq!(err_code(&s["bad_size"], "size 3"), "invalid_spec");
    assert_eq!(err_code(&s["bad_job"], "bad job id"), "invalid_job_id");
    assert_eq!(ok(&s["budget_after"], "budget")["spent_sage"]["this_session"], "2.000000000000000000");

    // Exactly two escrows left the account: the retry and the refused call paid nothing.
    let after = token_of(account.address()).await.unwrap();
    assert_eq!(before - after, 2 * SAGE, "escrowed {} base units", before - after);
    let ledger = std::fs::read_to_string(d.join("spend.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 2, "{ledger}");
    assert!(!ledger.contains(&format!("{:x}", key.expose_secret())), "the key reached the ledger");

    // --- Streamable HTTP ---
    let out = std::process::Command::new(bin).args(["--config", config.to_str().unwrap(), "token", "create"]).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!std::fs::read_to_string(d.join("http-tokens")).unwrap().contains(&token), "the token was stored");
    let mut server = tokio::process::Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "http"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(server.stdout.take().unwrap()));
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = serde_json::from_str::<Value>(&line).unwrap()["url"].as_str().unwrap().to_owned();
    let h = run_client(&["http", &url, &token]).await;
    assert_eq!(h["unauthenticated_status"], 401);
    assert_eq!(h["wrong_token_status"], 401);
    assert_eq!(h["tool_count"], 11);
    ok(&h["quote"], "http quote");
    assert_eq!(err_code(&h["unapproved"], "unapproved submit"), "approval_required");
    assert_eq!(ok(&h["budget"], "http budget")["spent_sage"]["last_24h"], "2.000000000000000000");
    assert_eq!(token_of(account.address()).await.unwrap(), after, "the refused call escrowed nothing");

    server.kill().await.unwrap();
    prover.abort();
    running.shutdown().await;
}
