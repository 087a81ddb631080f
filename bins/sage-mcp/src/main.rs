//! `sage-mcp`: serve the Sage tools to an MCP client over stdio or Streamable HTTP. See
//! `sage-mcp --help` and docs/MCP.md.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rmcp::{
    ServiceExt,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use sage_chain::{SageAccount, contracts::Deployment};
use sage_mcp::{
    config::Config,
    governor::Ledger,
    http::{Tokens, create_token, require_token},
    server::{SageMcp, Shared},
};
use sage_sdk::{ClientBuilder, Security};

/// Sage MCP server: lets an AI agent quote, buy, follow and verify verifiable compute on the Sage
/// network, escrowing from the operator's account within the operator's budget.
///
/// The budget (per call, per session, per day, approval threshold) is set in the config file,
/// never by the model; the account key and the coordinator API key are read from files the
/// config names and never reach the model or the logs.
#[derive(Parser)]
#[command(name = "sage-mcp", version, about, long_about)]
struct Cli {
    /// Config file (TOML; see docs/MCP.md).
    #[arg(long, global = true, env = "SAGE_MCP_CONFIG", default_value = "mcp.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one client over stdin/stdout (what desktop MCP clients spawn). Logs go to stderr.
    Stdio,
    /// Serve Streamable HTTP at http://<http.listen>/mcp, bearer tokens required.
    Http,
    /// Bearer tokens for the HTTP transport.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token: printed once, only its sha256 is stored in http.tokens_file.
    Create,
}

fn main() -> ExitCode {
    // stdout belongs to the MCP protocol on stdio: every log line goes to stderr.
    sage_daemon::init_logging("RUST_LOG", "info,libp2p=warn");
    let cli = Cli::parse();
    sage_daemon::run(run(&cli), |e| eprintln!("error: {e:#}"))
}

async fn shared(config: &Config) -> Result<Arc<Shared>> {
    let (client, contracts) = Deployment::connect(&config.rpc_url, &config.manifest)
        .await
        .with_context(|| format!("connecting to chain.rpc_url {:?}", config.rpc_url))?;
    let key = sage_keys::read_key_file(&config.key_file)?;
    let account = SageAccount::new(client, config.account, key);
    let api_key = std::fs::read_to_string(&config.api_key_file)
        .with_context(|| format!("reading the coordinator API key from {}", config.api_key_file.display()))?;
    let sdk = ClientBuilder::new()
        .url(&config.coordinator_url)
        .api_key(api_key.lines().next().unwrap_or_default().trim())
        .account(account, contracts)
        .security(if config.test_proofs { Security::Test } else { Security::Production })
        .build()?;
    let ledger = Ledger::open(&config.ledger).with_context(|| format!("opening {}", config.ledger.display()))?;
    Ok(Arc::new(Shared {
        sdk,
        caps: config.caps,
        ledger: tokio::sync::Mutex::new(ledger),
        calls_per_minute: config.calls_per_minute,
    }))
}

async fn run(cli: &Cli) -> Result<()> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Token(TokenCommand::Create) => {
            let token = create_token(&config.tokens_file)?;
            eprintln!("token created; its sha256 was added to {}. It is shown once:\n", config.tokens_file.display());
            println!("{token}");
            Ok(())
        }
        Command::Stdio => {
            let shared = shared(&config).await?;
            tracing::info!(account = %format!("{:#x}", config.account), "serving MCP on stdio");
            let service = SageMcp::new(shared).serve(rmcp::transport::stdio()).await?;
            service.waiting().await?;
            Ok(())
        }
        Command::Http => {
            let tokens = Tokens::load(&config.tokens_file)?;
            if tokens.is_empty() {
                anyhow::bail!(
                    "no bearer tokens in {}: create one with `sage-mcp token create` first",
                    config.tokens_file.display()
                );
            }
            let shared = shared(&config).await?;
            let service = StreamableHttpService::new(
                move || Ok(SageMcp::new(shared.clone())),
                Arc::new(LocalSessionManager::default()),
                StreamableHttpServerConfig::default(),
            );
            let app = axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn_with_state(tokens, require_token));
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding http.listen {}", config.listen))?;
            let addr = listener.local_addr()?;
            // The one line on stdout: where it listens (tests and scripts read it).
            println!("{}", serde_json::json!({ "event": "listening", "url": format!("http://{addr}/mcp") }));
            tracing::info!(%addr, "serving MCP over Streamable HTTP at /mcp");
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
    }
}
