//! Submit a matmul job to a coordinator, escrowed from your own account, wait for it and verify
//! the result on this machine.
//!
//! Against any coordinator (docs/OPERATORS.md shows how to run one on a local devnet):
//!
//! ```sh
//! export SAGE_COORDINATOR_URL=http://127.0.0.1:8640 SAGE_API_KEY=sk_…
//! export SAGE_RPC_URL=http://127.0.0.1:5050/rpc SAGE_MANIFEST=deployments/local.json
//! export SAGE_ACCOUNT=0x… SAGE_ACCOUNT_KEY_FILE=client.key
//! cargo run -p sage-sdk --example submit_and_verify -- 256
//! ```

use std::time::Duration;

use sage_chain::{SageAccount, contracts::Deployment};
use sage_sdk::{ClientBuilder, Felt, JobSpec, Outcome, SubmitOptions};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).map_or(Ok(64), |a| a.parse())?;
    let (chain, contracts) = Deployment::connect(&env("SAGE_RPC_URL")?, env("SAGE_MANIFEST")?.as_ref()).await?;
    let key = sage_keys::read_key_file(env("SAGE_ACCOUNT_KEY_FILE")?.as_ref())?;
    let account = SageAccount::new(chain, Felt::from_hex(&env("SAGE_ACCOUNT")?)?, key);
    let client = ClientBuilder::new()
        .url(env("SAGE_COORDINATOR_URL")?)
        .api_key(env("SAGE_API_KEY")?)
        .account(account, contracts)
        .build()?;

    let spec = JobSpec::Matmul { n, seed: Felt::from(0x5a6eu32) };
    let quote = client.quote(&spec).await?;
    println!("quote: {} base units, about {} ms", quote.price, quote.expected_ms);
    let job = client.submit(&spec, SubmitOptions::default().idempotency_key(format!("example-{n}"))).await?;
    println!("job {:#x} escrowed ({:?})", job.id, job.escrow_tx);
    match client.wait(job.id, Duration::from_secs(900)).await? {
        Outcome::Certified(v) => println!(
            "verified here: {} bits, proof {:#x} by worker {:#x}; paid: {}",
            v.security_bits, v.proof_hash, v.worker, v.paid
        ),
        other => println!("no verified result: {other:?}"),
    }
    Ok(())
}
