//! A real starknet-devnet with every Sage contract deployed, for tests, examples and benches
//! (feature `testing`). One fixture instead of a copy per test file.
//!
//! ```no_run
//! # async fn run() -> Result<(), sage_chain::ChainError> {
//! use sage_chain::{DeployParams, SAGE, testing::TestNet};
//!
//! // Four funded accounts: the owner (deployer) and three others holding 1,000 SAGE each.
//! let net = TestNet::start(4, &DeployParams::default(), 1_000 * SAGE).await?;
//! let balance = net.contracts.token.balance_of(&net.client, net.accounts[1].address()).await?;
//! assert_eq!(balance, 1_000 * SAGE);
//! # Ok(()) }
//! ```

use crate::{
    Artifacts, ChainClient, ChainConfig, ChainError, DeployParams, Manifest, SageAccount,
    contracts::Deployment,
    deploy_sage,
    devnet::{Devnet, DevnetOptions, predeployed_signers},
};

/// A devnet, a client, its predeployed accounts (the first is the owner that deployed) and the
/// deployed contracts. The devnet stops when this is dropped.
#[derive(Debug)]
pub struct TestNet {
    /// The devnet process.
    pub devnet: Devnet,
    /// A client connected to it.
    pub client: ChainClient,
    /// Predeployed accounts; `accounts[0]` deployed and owns the contracts.
    pub accounts: Vec<SageAccount>,
    /// What was deployed.
    pub manifest: Manifest,
    /// The deployed contracts, typed.
    pub contracts: Deployment,
}

impl TestNet {
    /// Starts a devnet with `accounts` predeployed accounts (at least 1), deploys Sage with
    /// `params` from the first, and sends `fund` SAGE base units to each of the others.
    pub async fn start(accounts: u8, params: &DeployParams, fund: u128) -> Result<Self, ChainError> {
        Self::start_on(DevnetOptions::default(), accounts, params, fund).await
    }

    /// [`TestNet::start`] on a devnet started with `options` (their `accounts` is replaced).
    pub async fn start_on(
        options: DevnetOptions,
        accounts: u8,
        params: &DeployParams,
        fund: u128,
    ) -> Result<Self, ChainError> {
        let devnet = Devnet::start(DevnetOptions { accounts: accounts.max(1), ..options }).await?;
        let client = ChainClient::connect(ChainConfig::new(devnet.rpc_url())).await?;
        let accounts = predeployed_signers(&client).await?;
        let owner = &accounts[0];
        let manifest = deploy_sage(owner, &Artifacts::embedded()?, params).await?;
        let contracts = Deployment::from_manifest(&manifest)?;
        if fund > 0 {
            for a in &accounts[1..] {
                contracts.token.transfer(owner, a.address(), fund).await?;
            }
        }
        Ok(Self { devnet, client, accounts, manifest, contracts })
    }

    /// The account that deployed and owns the contracts.
    pub fn owner(&self) -> &SageAccount {
        &self.accounts[0]
    }
}

/// What a [`FaultProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    Pass,
    /// Close every open connection and each new one at once (connection reset).
    Drop,
    /// Accept connections and read requests but never answer (a black hole): the caller's own
    /// timeout is all that ends them. Held connections stay open until the proxy is dropped.
    Stall,
    /// Forward everything, but swallow the reply to any request that sends a transaction
    /// (`starknet_addInvokeTransaction`): the transaction lands, the sender never hears.
    LoseTxReplies,
}

/// A TCP proxy in front of an RPC endpoint that fails on command, for fault tests: point a client
/// at [`FaultProxy::url`] and switch with [`FaultProxy::set`].
#[derive(Debug)]
pub struct FaultProxy {
    url: url::Url,
    mode: std::sync::Arc<tokio::sync::watch::Sender<Fault>>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (an `http://host:port/...` URL).
    pub async fn start(upstream: &url::Url) -> std::io::Result<Self> {
        let target = format!(
            "{}:{}",
            upstream.host_str().unwrap_or("127.0.0.1"),
            upstream.port_or_known_default().unwrap_or(80)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut url = upstream.clone();
        url.set_port(Some(listener.local_addr()?.port())).map_err(|()| std::io::Error::other("URL without a port"))?;
        let (mode, _) = tokio::sync::watch::channel(Fault::Pass);
        let mode = std::sync::Arc::new(mode);
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (m, count) = (mode.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut watch = m.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let current = *watch.borrow_and_update();
                    match current {
                        Fault::Drop => {}
                        Fault::Stall => {
                            // Read and discard whatever comes, answer nothing, never close.
                            let mut sink = tokio::io::sink();
                            let _ = tokio::io::copy(&mut inbound, &mut sink).await;
                            std::future::pending::<()>().await;
                        }
                        Fault::Pass | Fault::LoseTxReplies => {
                            let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                            let lossy = current == Fault::LoseTxReplies;
                            // Forward until either side closes or the mode changes.
                            tokio::select! {
                                () = forward(inbound, outbound, lossy) => {}
                                _ = watch.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Ok(Self { url, mode, accepted, task })
    }

    /// The URL to give the client under test.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Switches what happens to traffic from now on (open forwarded connections are closed on
    /// any switch).
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Copies both ways; with `lossy`, once the client has sent a transaction, replies are dropped.
async fn forward(inbound: tokio::net::TcpStream, outbound: tokio::net::TcpStream, lossy: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TX: &[u8] = b"addInvokeTransaction";
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let lose = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = lose.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(k) = client_read.read(&mut buf).await {
            if k == 0 {
                break;
            }
            if lossy && buf[..k].windows(TX.len()).any(|w| w == TX) {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..k]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(k) = server_read.read(&mut buf).await {
            if k == 0 {
                break;
            }
            if lose.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buf[..k]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
}
