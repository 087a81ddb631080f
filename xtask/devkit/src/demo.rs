//! `cargo xtask devnet | deploy | demo`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sage_chain::{
    Artifacts, ChainClient, ChainConfig, ChainError, DeployParams, Felt, Manifest, SAGE, SageAccount, StarkKey,
    contracts::{Faucet, SageToken},
    deploy_oz_account, deploy_sage,
    devnet::{Devnet, DevnetOptions, cache_dir, predeployed_signers},
    oz_account_address,
};
use serde_json::json;

use crate::workspace_root;

#[derive(clap::Args)]
pub struct DeployArgs {
    /// JSON-RPC endpoint.
    #[arg(long, env = "SAGE_RPC_URL", default_value = "http://127.0.0.1:5050/rpc")]
    rpc: String,
    /// Expected chain id (short string, e.g. SN_SEPOLIA); refuses any other chain.
    #[arg(long, env = "SAGE_CHAIN_ID")]
    chain_id: Option<String>,
    /// Where to write the deployment manifest.
    #[arg(long, default_value = "deployments/local.json")]
    manifest: PathBuf,
    /// SAGE per faucet drip (whole tokens).
    #[arg(long, default_value_t = 1000)]
    faucet_drip: u64,
    /// Faucet cooldown in seconds.
    #[arg(long, default_value_t = 86_400)]
    faucet_cooldown: u64,
    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Keep the devnet running after the demo (Ctrl-C stops it).
    #[arg(long)]
    keep: bool,
    /// Print a JSON summary on stdout instead of text.
    #[arg(long)]
    json: bool,
}

/// The deployer: `SAGE_DEPLOYER_ADDRESS` + `SAGE_DEPLOYER_PRIVATE_KEY` from the environment (never
/// from argv), else devnet's first predeployed account when the endpoint is a devnet.
async fn deployer(client: &ChainClient) -> Result<SageAccount> {
    if let (Ok(address), Ok(key)) = (std::env::var("SAGE_DEPLOYER_ADDRESS"), std::env::var("SAGE_DEPLOYER_PRIVATE_KEY"))
    {
        let address = Felt::from_hex(&address).context("SAGE_DEPLOYER_ADDRESS is not a hex felt")?;
        let key = Felt::from_hex(&key).context("SAGE_DEPLOYER_PRIVATE_KEY is not a hex felt")?;
        return Ok(SageAccount::new(client.clone(), address, StarkKey::from_secret(key)?));
    }
    let accounts = predeployed_signers(client)
        .await
        .context("no deployer: set SAGE_DEPLOYER_ADDRESS and SAGE_DEPLOYER_PRIVATE_KEY, or point --rpc at a devnet")?;
    accounts.into_iter().next().context("devnet has no predeployed accounts")
}

pub async fn deploy(args: DeployArgs) -> Result<()> {
    let mut config = ChainConfig::parse(&args.rpc)?;
    config.chain_id = args.chain_id.clone();
    let client = ChainClient::connect(config).await?;
    let account = deployer(&client).await?;
    let params = DeployParams {
        faucet_drip: u128::from(args.faucet_drip) * SAGE,
        faucet_cooldown: args.faucet_cooldown,
        ..DeployParams::default()
    };
    let artifacts = Artifacts::embedded()?;
    let manifest = deploy_sage(&account, &artifacts, &params).await?;
    let path = absolute(&args.manifest);
    manifest.save(&path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        print_manifest(&manifest, &path);
    }
    Ok(())
}

fn absolute(path: &std::path::Path) -> PathBuf {
    if path.is_absolute() { path.to_owned() } else { workspace_root().join(path) }
}

fn print_manifest(manifest: &Manifest, path: &std::path::Path) {
    println!("chain      {} ({})", manifest.chain_id, manifest.rpc_url);
    println!("deployer   {:#066x}", manifest.deployer);
    for (name, c) in &manifest.contracts {
        println!("{name:<10} {:#066x}  class {:#066x}", c.address, c.class_hash);
    }
    println!("manifest   {}", path.display());
}

pub async fn devnet_foreground(port: u16, seed: u32) -> Result<()> {
    let log = cache_dir().join("logs").join(format!("devnet-{port}.log"));
    std::fs::create_dir_all(log.parent().unwrap_or(&cache_dir())).ok();
    let devnet = Devnet::start(DevnetOptions {
        port: Some(port),
        seed,
        accounts: 3,
        log_file: Some(log.clone()),
        ..DevnetOptions::default()
    })
    .await?;
    println!(
        "devnet {} running at {} (pid {:?}, log {})",
        sage_chain::devnet::DEVNET_VERSION,
        devnet.rpc_url(),
        devnet.pid(),
        log.display()
    );
    for a in devnet.predeployed_accounts().await? {
        println!("  predeployed account {:#066x}", a.address);
    }
    println!("deploy with: cargo xtask deploy --rpc {}", devnet.rpc_url());
    tokio::signal::ctrl_c().await?;
    println!("stopping devnet");
    Ok(())
}

fn fmt_sage(amount: u128) -> String {
    format!("{}.{:03} SAGE", amount / SAGE, (amount % SAGE) / (SAGE / 1000))
}

fn fmt_strk(amount: u128) -> String {
    format!("{}.{:03} STRK", amount / SAGE, (amount % SAGE) / (SAGE / 1000))
}

pub async fn demo(args: DemoArgs) -> Result<()> {
    let say = |s: String| {
        if !args.json {
            println!("{s}");
        }
    };
    let log = cache_dir().join("logs").join("demo-devnet.log");
    std::fs::create_dir_all(cache_dir().join("logs")).ok();
    say("1/13 starting a local starknet-devnet".into());
    let devnet = Devnet::start(DevnetOptions { log_file: Some(log), ..DevnetOptions::default() }).await?;
    let client = ChainClient::connect(ChainConfig::new(devnet.rpc_url())).await?;
    say(format!("    {} (chain {})", devnet.rpc_url(), sage_chain::client::chain_id_to_string(client.chain_id())));

    say("2/13 declaring, deploying and wiring the Sage contracts".into());
    let owner = deployer(&client).await?;
    let params = DeployParams { faucet_cooldown: 3600, ..DeployParams::default() };
    let manifest = deploy_sage(&owner, &Artifacts::embedded()?, &params).await?;
    let manifest_path = workspace_root().join("deployments").join("demo.local.json");
    manifest.save(&manifest_path)?;
    let token = SageToken::at(manifest.contract("SageToken")?.address);
    let faucet = Faucet::at(manifest.contract("Faucet")?.address);
    for (name, c) in &manifest.contracts {
        say(format!("    {name:<18} {:#066x}", c.address));
    }

    say("3/13 creating a fresh account (key from the OS RNG; never printed)".into());
    let key = StarkKey::from_random()?;
    let salt = Felt::from(7u8);
    let address = oz_account_address(key.public_key(), salt);
    say(format!("    address {address:#066x}"));

    say("4/13 funding it with fee token (devnet_mint) and deploying it".into());
    devnet.mint_strk(address, 50 * SAGE).await?;
    let user = deploy_oz_account(&client, key, salt).await?;

    say("5/13 dripping SAGE from the faucet".into());
    let drip = faucet.drip(&user).await?;
    let block = drip.receipt.block.block_number();
    say(format!("    drip tx {:#066x} in block {block:?}", drip.tx_hash));

    say("6/13 a second drip inside the cooldown is refused on-chain".into());
    let second = match faucet.drip(&user).await {
        Err(ChainError::FaucetCooldown { next_drip_at, .. }) => next_drip_at,
        Err(other) => return Err(other.into()),
        Ok(_) => bail!("the faucet allowed a second drip inside its cooldown"),
    };
    say(format!("    refused: cooldown active until block timestamp {second}"));

    let user_sage = token.balance_of(&client, user.address()).await?;
    let worker_job =
        crate::loop_demo::run(&say, (7, 13), &devnet, &client, &manifest, &manifest_path, &owner, &user).await?;

    let user_strk = client.fee_balance(user.address()).await?;
    let faucet_left = faucet.available(&client).await?;
    if user_sage != params.faucet_drip {
        bail!(
            "expected the account to hold one drip ({}), found {}",
            fmt_sage(params.faucet_drip),
            fmt_sage(user_sage)
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rpc_url": devnet.rpc_url().as_str(),
                "chain_id": manifest.chain_id,
                "manifest": manifest_path,
                "contracts": manifest.contracts,
                "account": format!("{:#066x}", user.address()),
                "drip_tx": format!("{:#066x}", drip.tx_hash),
                "account_sage": user_sage.to_string(),
                "account_strk": user_strk.to_string(),
                "faucet_available": faucet_left.to_string(),
                "next_drip_at": second,
                "worker_job": worker_job,
            }))?
        );
    } else {
        println!("\nbalances");
        println!("  account {:#066x}: {} and {}", user.address(), fmt_sage(user_sage), fmt_strk(user_strk));
        println!("  faucet  {:#066x}: {}", faucet.address, fmt_sage(faucet_left));
        println!("manifest  {}", manifest_path.display());
    }
    if args.keep {
        println!("devnet stays up at {} — Ctrl-C stops it", devnet.rpc_url());
        tokio::signal::ctrl_c().await?;
    }
    drop(devnet);
    Ok(())
}
