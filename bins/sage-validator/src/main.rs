//! `sage-validator`: verify the proofs workers submit, vote, and certify verdicts on-chain. See
//! `sage-validator --help` and docs/OPERATORS.md.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sage_chain::{SAGE, SageAccount, contracts::Deployment};
use sage_validator::Settings;

/// Sage validator: watch results submitted on-chain, verify each proof against its escrowed job,
/// vote with the other validators over libp2p and submit the quorum certificate.
///
/// Keys come from files named in the config (`chain.key_file`, `chain.vote_key_file`), never from
/// the command line. Each vote is written to `data/votes.jsonl` (synced) before it is sent, so a
/// restarted validator never signs the opposite verdict.
#[derive(Parser)]
#[command(name = "sage-validator", version, about, long_about)]
struct Cli {
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Config file (TOML; see docs/OPERATORS.md).
    #[arg(long, global = true, env = "SAGE_VALIDATOR_CONFIG", default_value = "validator.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the validator until SIGINT or SIGTERM.
    Start,
    /// Stake (validator minimum) and register the vote key with the StakingManager; the owner
    /// then adds the validator to the ProofVerifier's set.
    Register {
        /// SAGE to stake (whole SAGE).
        #[arg(long, default_value_t = 10_000)]
        stake: u64,
        /// Lock in seconds.
        #[arg(long, default_value_t = 30 * 24 * 3600)]
        lock_secs: u64,
    },
    /// Whether the vote key is in the current set, and the set's size and threshold.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sage_daemon::init_logging("RUST_LOG", "info,libp2p=warn");
    sage_daemon::run(run(&cli), |e| eprintln!("error: {e:#}"))
}

fn print(cli: &Cli, value: &serde_json::Value) -> Result<()> {
    if cli.json {
        println!("{value}");
    } else {
        println!("{}", serde_json::to_string_pretty(value)?);
    }
    Ok(())
}

async fn run(cli: &Cli) -> Result<()> {
    let settings = Settings::load(&cli.config)?;
    match cli.command {
        Command::Start => {
            let running = sage_validator::start(settings).await?;
            print(
                cli,
                &serde_json::json!({ "event": "started", "p2p": running.p2p_addr.to_string(),
                                     "vote_key": format!("{:#x}", running.vote_key), "index": running.index }),
            )?;
            running.wait().await
        }
        Command::Register { stake, lock_secs } => {
            let (client, c) = Deployment::connect(&settings.rpc_url, &settings.manifest).await?;
            let account = SageAccount::new(client, settings.account, sage_keys::read_key_file(&settings.key_file)?);
            let vote_key = sage_keys::read_key_file(&settings.vote_key_file)?.public_key();
            let amount = u128::from(stake) * SAGE;
            c.staking
                .stake(&account, c.token, amount, sage_types_tier(), lock_secs)
                .await
                .context("staking the validator minimum")?;
            let out = c.staking.register_validator(&account, vote_key).await.context("registering the vote key")?;
            print(
                cli,
                &serde_json::json!({ "registered": true, "vote_key": format!("{vote_key:#x}"),
                                     "tx": format!("{:#x}", out.tx_hash) }),
            )
        }
        Command::Status => {
            let (client, c) = Deployment::connect(&settings.rpc_url, &settings.manifest).await?;
            let vote_key = sage_keys::read_key_file(&settings.vote_key_file)?.public_key();
            let (version, size, threshold) = c.verifier.validator_set(&client).await?;
            let (_, members) = c.verifier.members(&client).await?;
            print(
                cli,
                &serde_json::json!({ "vote_key": format!("{vote_key:#x}"), "set_version": version, "set_size": size,
                                     "threshold": threshold, "member_index": members.iter().position(|k| *k == vote_key) }),
            )
        }
    }
}

/// Validators stake under the lowest tier (the validator minimum is what counts).
fn sage_types_tier() -> sage_chain::contracts::GpuTier {
    sage_chain::contracts::GpuTier::T4
}
