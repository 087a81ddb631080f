//! Provider configuration and a read-side client.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use starknet_rust::{
    core::{
        types::{
            BlockId, BlockTag, EmittedEvent, EventFilter, ExecutionResult, Felt, FunctionCall,
            TransactionReceiptWithBlockInfo,
        },
        utils::{cairo_short_string_to_felt, get_selector_from_name, parse_cairo_short_string},
    },
    providers::{
        Provider, ProviderError, Url,
        jsonrpc::{HttpTransport, JsonRpcClient},
    },
};

use crate::{ChainError, u256};

/// The provider type every Sage component uses.
pub type RpcProvider = JsonRpcClient<HttpTransport>;

/// STRK, the fee token of Starknet ≥ 0.13 (same address on mainnet, sepolia and devnet).
pub const STRK_FEE_TOKEN: Felt =
    Felt::from_hex_unchecked("0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d");

/// Where and what chain to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (`http://127.0.0.1:5050/rpc` for a local devnet).
    pub rpc_url: Url,
    /// Expected chain id as a Cairo short string (`SN_SEPOLIA`, `SN_MAIN`); `None` accepts any.
    pub chain_id: Option<String>,
    /// How long to wait for a transaction receipt.
    #[serde(with = "secs")]
    pub tx_timeout: Duration,
    /// How long one RPC request may take (connect, send, answer) before it fails as
    /// unreachable: an endpoint that swallows requests must not hang the caller.
    #[serde(with = "secs", default = "default_request_timeout")]
    pub request_timeout: Duration,
}

/// The default [`ChainConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn default_request_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

impl ChainConfig {
    /// A config for `rpc_url` that accepts any chain id and waits 60 s for receipts.
    pub fn new(rpc_url: Url) -> Self {
        Self { rpc_url, chain_id: None, tx_timeout: Duration::from_secs(60), request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }

    /// Requires the endpoint to serve `chain_id` (a Cairo short string).
    #[must_use]
    pub fn with_chain_id(mut self, chain_id: impl Into<String>) -> Self {
        self.chain_id = Some(chain_id.into());
        self
    }

    /// Fails each RPC request that takes longer than `timeout` (at least a millisecond).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Parses an RPC URL string.
    pub fn parse(rpc_url: &str) -> Result<Self, ChainError> {
        let url = Url::parse(rpc_url)
            .map_err(|e| ChainError::Unreachable { url: rpc_url.into(), reason: format!("invalid URL: {e}") })?;
        Ok(Self::new(url))
    }
}

/// Renders a chain id felt as its short string when printable, hex otherwise.
pub fn chain_id_to_string(id: Felt) -> String {
    parse_cairo_short_string(&id).unwrap_or_else(|_| format!("{id:#x}"))
}

/// A connected, chain-id-checked read client.
#[derive(Debug, Clone)]
pub struct ChainClient {
    provider: Arc<RpcProvider>,
    config: ChainConfig,
    chain_id: Felt,
}

impl ChainClient {
    /// Connects to the endpoint and checks its chain id against the config.
    pub async fn connect(config: ChainConfig) -> Result<Self, ChainError> {
        let url = config.rpc_url.to_string();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ChainError::Unreachable { url: url.clone(), reason: format!("HTTP client: {e}") })?;
        let provider = Arc::new(JsonRpcClient::new(HttpTransport::new_with_client(config.rpc_url.clone(), http)));
        let chain_id = provider.chain_id().await.map_err(|e| match e {
            ProviderError::Other(other) => ChainError::Unreachable { url: url.clone(), reason: other.to_string() },
            other => ChainError::from_provider(&url, None, other),
        })?;
        if let Some(expected) = &config.chain_id {
            let expected_felt = cairo_short_string_to_felt(expected).map_err(|e| ChainError::WrongChainId {
                expected: expected.clone(),
                actual: format!("(invalid expected id: {e})"),
                url: url.clone(),
            })?;
            if expected_felt != chain_id {
                return Err(ChainError::WrongChainId {
                    expected: expected.clone(),
                    actual: chain_id_to_string(chain_id),
                    url,
                });
            }
        }
        Ok(Self { provider, config, chain_id })
    }

    /// The underlying provider.
    pub fn provider(&self) -> &Arc<RpcProvider> {
        &self.provider
    }

    /// The config this client was built from.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The chain id served by the endpoint.
    pub fn chain_id(&self) -> Felt {
        self.chain_id
    }

    pub(crate) fn map_err(&self, account: Option<Felt>, err: ProviderError) -> ChainError {
        ChainError::from_provider(self.config.rpc_url.as_str(), account, err)
    }

    /// Latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.provider.block_number().await.map_err(|e| self.map_err(None, e))
    }

    /// Calls a view function at the pre-confirmed block.
    pub async fn call(&self, contract: Felt, function: &str, calldata: Vec<Felt>) -> Result<Vec<Felt>, ChainError> {
        let selector = selector(function)?;
        self.provider
            .call(
                FunctionCall { contract_address: contract, entry_point_selector: selector, calldata },
                BlockId::Tag(BlockTag::PreConfirmed),
            )
            .await
            .map_err(|e| self.map_err(None, e))
    }

    /// A contract's plain storage variable (no mapping keys) at the pre-confirmed block: for the
    /// few settings a contract has no getter for.
    pub async fn storage(&self, contract: Felt, variable: &str) -> Result<Felt, ChainError> {
        let key = starknet_rust::core::utils::get_storage_var_address(variable, &[])
            .map_err(|e| ChainError::Decode { what: "storage variable name", reason: e.to_string() })?;
        self.provider
            .get_storage_at(contract, key, BlockId::Tag(BlockTag::PreConfirmed), None)
            .await
            .map(|r| r.value())
            .map_err(|e| self.map_err(None, e))
    }

    /// Class hash deployed at `address`, `None` when no contract is there.
    pub async fn class_hash_at(&self, address: Felt) -> Result<Option<Felt>, ChainError> {
        match self.provider.get_class_hash_at(BlockId::Tag(BlockTag::PreConfirmed), address).await {
            Ok(h) => Ok(Some(h)),
            Err(ProviderError::StarknetError(starknet_rust::core::types::StarknetError::ContractNotFound)) => Ok(None),
            Err(e) => Err(self.map_err(None, e)),
        }
    }

    /// Whether a class hash is declared.
    pub async fn is_declared(&self, class_hash: Felt) -> Result<bool, ChainError> {
        match self.provider.get_class(BlockId::Tag(BlockTag::PreConfirmed), class_hash).await {
            Ok(_) => Ok(true),
            Err(ProviderError::StarknetError(starknet_rust::core::types::StarknetError::ClassHashNotFound)) => {
                Ok(false)
            }
            Err(e) => Err(self.map_err(None, e)),
        }
    }

    /// ERC20 balance of `account` in `token` (an ERC20 with a u256 `balance_of`).
    pub async fn erc20_balance(&self, token: Felt, account: Felt) -> Result<u128, ChainError> {
        let out = self.call(token, "balance_of", vec![account]).await?;
        u256::from_felts(&out)
    }

    /// STRK (fee token) balance of `account`.
    pub async fn fee_balance(&self, account: Felt) -> Result<u128, ChainError> {
        self.erc20_balance(STRK_FEE_TOKEN, account).await
    }

    /// Waits for the receipt of `tx_hash`; a reverted transaction is [`ChainError::Reverted`].
    pub async fn wait_for_receipt(&self, tx_hash: Felt) -> Result<TransactionReceiptWithBlockInfo, ChainError> {
        let timeout = self.config.tx_timeout;
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            match self.provider.get_transaction_receipt(tx_hash).await {
                Ok(receipt) => {
                    if let ExecutionResult::Reverted { reason } = receipt.receipt.execution_result() {
                        return Err(ChainError::Reverted {
                            tx_hash: Some(tx_hash),
                            reason: crate::error::short_reason(reason),
                        });
                    }
                    return Ok(receipt);
                }
                Err(ProviderError::StarknetError(
                    starknet_rust::core::types::StarknetError::TransactionHashNotFound,
                )) => {}
                Err(e) => return Err(self.map_err(None, e)),
            }
            if started.elapsed() >= timeout {
                return Err(ChainError::Timeout { tx_hash, waited: started.elapsed() });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Events emitted by `contract` with first key `event_name`, from `from_block` on.
    pub async fn events(
        &self,
        contract: Felt,
        event_name: &str,
        from_block: u64,
    ) -> Result<Vec<EmittedEvent>, ChainError> {
        let key = selector(event_name)?;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .provider
                .get_events(
                    EventFilter {
                        from_block: Some(BlockId::Number(from_block)),
                        to_block: Some(BlockId::Tag(BlockTag::PreConfirmed)),
                        address: Some(starknet_rust::core::types::AddressFilter::Single(contract)),
                        keys: Some(vec![vec![key]]),
                    },
                    token,
                    256,
                )
                .await
                .map_err(|e| self.map_err(None, e))?;
            out.extend(page.events);
            match page.continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

/// The entry-point selector of a function or event name.
pub fn selector(name: &str) -> Result<Felt, ChainError> {
    get_selector_from_name(name).map_err(|e| ChainError::Decode { what: "selector name", reason: e.to_string() })
}
