//! `sage-e2e`: the seed's acceptance test. One local network per run (starknet-devnet with the
//! contracts, `sage-coordinator`, four `sage-validator`s, two `sage-worker`s, each a real
//! process), the seed's ten scenarios driven through the binaries' command lines and checked
//! on-chain or in their `--json` output, then the failure paths. Run it with `cargo xtask e2e`,
//! which builds the binaries first.

mod harness;
mod scenarios;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Parser;
use harness::{Bins, Net};
use serde_json::{Value, json};

/// Run the network's end-to-end scenarios on a fresh local devnet.
#[derive(Parser)]
#[command(name = "sage-e2e", about, long_about)]
struct Cli {
    /// Folder holding sage-worker, sage-coordinator and sage-validator.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Only this scenario (e.g. 7 or F2). Scenarios 1–4 build the network, so they always run.
    #[arg(long)]
    only: Option<String>,
    /// The table as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Keep the run's folder (configs, data, logs) even when everything passed.
    #[arg(long)]
    keep: bool,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: &'static str,
    pub name: &'static str,
    pub ok: Option<bool>,
    pub secs: f64,
    pub txs: Vec<(String, String)>,
    pub detail: String,
}

/// What a scenario reports on success: its key transactions and a one-line summary.
#[derive(Debug, Default)]
pub struct Pass {
    pub txs: Vec<(String, String)>,
    pub detail: String,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,libp2p=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<bool> {
    let bins = Bins::in_dir(&cli.bin_dir)?;
    let dir = std::env::temp_dir().join(format!("sage-e2e-{}-{}", std::process::id(), harness::wall()));
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let say = |s: String| {
        if !cli.json {
            eprintln!("{s}");
        }
    };
    say(format!("sage-e2e: a local network in {}", dir.display()));
    let mut net = Net::start(bins, &dir).await.context("starting the devnet and deploying")?;
    say(format!("  devnet {} with the contracts deployed", net.rpc));
    let mut rows = Vec::new();
    let all = scenarios::all();
    let wanted = |id: &str| cli.only.as_deref().is_none_or(|o| o == id || scenarios::SETUP.contains(&id));
    let mut broken: Option<String> = None;
    for s in all {
        if !wanted(s.id) {
            continue;
        }
        if let Some(why) = &broken {
            rows.push(Row {
                id: s.id,
                name: s.name,
                ok: Some(false),
                secs: 0.0,
                txs: vec![],
                detail: format!("not run: {why}"),
            });
            continue;
        }
        say(format!("  [{:>3}] {} …", s.id, s.name));
        let t = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(s.limit_secs), (s.run)(&mut net)).await;
        let secs = t.elapsed().as_secs_f64();
        let row = match result {
            Ok(Ok(pass)) => Row { id: s.id, name: s.name, ok: Some(true), secs, txs: pass.txs, detail: pass.detail },
            Ok(Err(e)) => Row { id: s.id, name: s.name, ok: Some(false), secs, txs: vec![], detail: format!("{e:#}") },
            Err(_) => Row {
                id: s.id,
                name: s.name,
                ok: Some(false),
                secs,
                txs: vec![],
                detail: format!("timed out after {} s", s.limit_secs),
            },
        };
        say(format!(
            "        {} in {:.1}s: {}",
            if row.ok == Some(true) { "PASS" } else { "FAIL" },
            row.secs,
            row.detail
        ));
        if row.ok != Some(true) && scenarios::SETUP.contains(&s.id) {
            broken = Some(format!("setup scenario {} failed", s.id));
        }
        rows.push(row);
    }
    net.stop_all().await;
    let passed = rows.iter().all(|r| r.ok == Some(true));
    let total = started.elapsed().as_secs_f64();
    if cli.json {
        let table: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({ "id": r.id, "scenario": r.name, "passed": r.ok == Some(true), "seconds": r.secs,
                        "transactions": r.txs.iter().map(|(k, v)| json!({ "what": k, "tx": v })).collect::<Vec<_>>(),
                        "detail": r.detail })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "passed": passed, "seconds": total, "scenarios": table,
                                                 "logs": net.logs }))?
        );
    } else {
        print_table(&rows, total);
    }
    if passed && !cli.keep {
        drop(net);
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("logs of every process: {}", net.logs.display());
    }
    Ok(passed)
}

fn print_table(rows: &[Row], total: f64) {
    println!("\n{:<4} {:<58} {:<6} {:>7}  KEY TRANSACTIONS", "#", "SCENARIO", "RESULT", "SECONDS");
    for r in rows {
        let txs: Vec<String> = r.txs.iter().map(|(k, v)| format!("{k} {}", short(v))).collect();
        println!(
            "{:<4} {:<58} {:<6} {:>7.1}  {}",
            r.id,
            r.name,
            if r.ok == Some(true) { "pass" } else { "FAIL" },
            r.secs,
            txs.join(", ")
        );
        if r.ok != Some(true) {
            println!("     └ {}", r.detail);
        }
    }
    let failed = rows.iter().filter(|r| r.ok != Some(true)).count();
    println!("\n{} scenarios, {failed} failed, {total:.0} s in all", rows.len());
}

fn short(tx: &str) -> String {
    if tx.len() > 14 { format!("{}…{}", &tx[..8], &tx[tx.len() - 4..]) } else { tx.to_owned() }
}
