//! A signing account with correct nonces under concurrent submissions, typed reverts, declare,
//! UDC deployment and OpenZeppelin account deployment.

use std::sync::Arc;

pub use sage_keys::{OZ_ACCOUNT_CLASS_HASH, StarkKey, oz_account_address};
use starknet_rust::{
    accounts::{
        Account, AccountError, AccountFactory, AccountFactoryError, ConnectedAccount, ExecutionEncoding,
        OpenZeppelinAccountFactory, SingleOwnerAccount,
    },
    core::{
        types::{BlockId, BlockTag, Call, Felt, TransactionReceiptWithBlockInfo},
        utils::{UdcUniqueness, get_udc_deployed_address},
    },
    signers::Signer,
};
use tokio::sync::Mutex;

use crate::{ChainClient, ChainError, ContractArtifact, RpcProvider, client::selector};

/// The Universal Deployer Contract (the current, non-legacy one) predeployed on devnet and live on
/// every public network.
pub const UDC_ADDRESS: Felt =
    Felt::from_hex_unchecked("0x02ceed65a4bd731034c01113685c831b01c15d7d432f71afb1cf1634b53a2125");

/// What a successful transaction left behind.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    /// Transaction hash.
    pub tx_hash: Felt,
    /// Receipt (succeeded).
    pub receipt: TransactionReceiptWithBlockInfo,
}

/// A Starknet account that signs with any `starknet-rust` [`Signer`]: by default Sage's own
/// zeroizing [`StarkKey`], or a hardware wallet or remote signer.
///
/// Nonces are tracked locally: submissions are serialised only while they are signed and handed
/// to the node (milliseconds), then wait for their receipts concurrently. A rejected submission
/// drops the cached nonce so the next one re-reads it from the chain.
#[derive(Debug, Clone)]
pub struct SageAccount<S: Signer + Send = StarkKey> {
    client: ChainClient,
    inner: Arc<SingleOwnerAccount<Arc<RpcProvider>, S>>,
    nonce: Arc<Mutex<Option<Felt>>>,
}

impl<S: Signer + Send + Sync + 'static> SageAccount<S> {
    /// An account at `address` controlled by `signer`.
    pub fn new(client: ChainClient, address: Felt, signer: S) -> Self {
        let mut inner = SingleOwnerAccount::new(
            client.provider().clone(),
            signer,
            address,
            client.chain_id(),
            ExecutionEncoding::New,
        );
        inner.set_block_id(BlockId::Tag(BlockTag::PreConfirmed));
        Self { client, inner: Arc::new(inner), nonce: Arc::new(Mutex::new(None)) }
    }

    /// The account address.
    pub fn address(&self) -> Felt {
        self.inner.address()
    }

    /// The read client this account submits through.
    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    fn map_account_err<E: std::fmt::Display>(&self, err: AccountError<E>) -> ChainError {
        match err {
            AccountError::Provider(e) => self.client.map_err(Some(self.address()), e),
            AccountError::Signing(e) => ChainError::Rejected { reason: format!("signing failed: {e}") },
            AccountError::ClassHashCalculation(e) => {
                ChainError::BadArtifact { name: "class".into(), reason: e.to_string() }
            }
            AccountError::FeeOutOfRange => ChainError::InsufficientFeeBalance { account: self.address() },
        }
    }

    /// Signs and submits `calls` as one multicall, then waits for the receipt.
    pub async fn execute(&self, calls: Vec<Call>) -> Result<TxOutcome, ChainError> {
        let tx_hash = self.submit(calls).await?;
        let receipt = self.client.wait_for_receipt(tx_hash).await?;
        Ok(TxOutcome { tx_hash, receipt })
    }

    /// Sends one transaction with the next local nonce. The nonce lock is held only while `send`
    /// signs and hands the transaction to the node; a success advances the cached nonce, a
    /// failure drops it so the next submission re-reads it from the chain. When the cached nonce
    /// was stale (another sender used the account: an operator's CLI beside its daemon), the
    /// node refused the transaction without executing it, so it is sent once more with the
    /// chain's nonce.
    async fn send_with_next_nonce<T, E, Fut>(&self, send: impl Fn(Felt) -> Fut) -> Result<T, ChainError>
    where
        E: std::fmt::Display,
        Fut: std::future::Future<Output = Result<T, AccountError<E>>>,
    {
        let mut guard = self.nonce.lock().await;
        let cached = *guard;
        let nonce = match cached {
            Some(n) => n,
            None => chain_nonce(self).await?,
        };
        let (nonce, outcome) = match send(nonce).await {
            Err(e) => match self.map_account_err(e) {
                ChainError::InvalidNonce { reason } if cached.is_some() => {
                    *guard = None;
                    let fresh = chain_nonce(self).await?;
                    // Only a chain nonce past ours means another sender used it; a lower one is
                    // this account's own transaction still pending, which must not be replaced.
                    if fresh <= nonce {
                        return Err(ChainError::InvalidNonce { reason });
                    }
                    tracing::debug!(stale = %nonce, fresh = %fresh, "cached nonce was stale; sending again");
                    (fresh, send(fresh).await.map_err(|e| self.map_account_err(e)))
                }
                other => (nonce, Err(other)),
            },
            Ok(sent) => (nonce, Ok(sent)),
        };
        match outcome {
            Ok(sent) => {
                *guard = Some(nonce + Felt::ONE);
                tracing::debug!(nonce = %nonce, "sent");
                Ok(sent)
            }
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    /// Signs and submits `calls` without waiting for inclusion; returns the transaction hash.
    pub async fn submit(&self, calls: Vec<Call>) -> Result<Felt, ChainError> {
        let sent = self
            .send_with_next_nonce(|nonce| {
                let calls = calls.clone();
                async move { self.inner.execute_v3(calls).nonce(nonce).send().await }
            })
            .await?;
        tracing::debug!(tx = %format!("{:#x}", sent.transaction_hash), "submitted");
        Ok(sent.transaction_hash)
    }

    /// Declares `artifact` unless its class is already declared; returns the class hash.
    pub async fn declare(&self, artifact: &ContractArtifact) -> Result<Felt, ChainError> {
        if self.client.is_declared(artifact.class_hash).await? {
            tracing::info!(contract = %artifact.name, "class already declared");
            return Ok(artifact.class_hash);
        }
        let sent = self
            .send_with_next_nonce(|nonce| async move {
                self.inner.declare_v3(artifact.class.clone(), artifact.compiled_class_hash).nonce(nonce).send().await
            })
            .await?;
        self.client.wait_for_receipt(sent.transaction_hash).await?;
        tracing::info!(contract = %artifact.name, class_hash = %format!("{:#x}", sent.class_hash), "declared");
        Ok(sent.class_hash)
    }

    /// Deploys an instance of `class_hash` through the UDC (not unique to the deployer, so the
    /// address depends only on class, salt and constructor arguments); returns its address.
    pub async fn deploy(
        &self,
        class_hash: Felt,
        constructor: Vec<Felt>,
        salt: Felt,
    ) -> Result<(Felt, TxOutcome), ChainError> {
        let address = get_udc_deployed_address(salt, class_hash, &UdcUniqueness::NotUnique, &constructor);
        let mut calldata = vec![class_hash, salt, Felt::ZERO, Felt::from(constructor.len())];
        calldata.extend(constructor);
        let outcome =
            self.execute(vec![Call { to: UDC_ADDRESS, selector: selector("deployContract")?, calldata }]).await?;
        Ok((address, outcome))
    }
}

/// Deploys the OpenZeppelin account of `signer` (DEPLOY_ACCOUNT, paid in STRK by the new account
/// itself, so fund [`oz_account_address`] first). Already deployed: returns it unchanged.
pub async fn deploy_oz_account<S>(client: &ChainClient, signer: S, salt: Felt) -> Result<SageAccount<S>, ChainError>
where
    S: Signer + Clone + Send + Sync + 'static,
{
    let public_key = signer
        .get_public_key()
        .await
        .map_err(|e| ChainError::Rejected { reason: format!("signer has no public key: {e}") })?
        .scalar();
    let address = oz_account_address(public_key, salt);
    if client.class_hash_at(address).await?.is_some() {
        return Ok(SageAccount::new(client.clone(), address, signer));
    }
    let mut factory = OpenZeppelinAccountFactory::new(
        OZ_ACCOUNT_CLASS_HASH,
        client.chain_id(),
        signer.clone(),
        client.provider().clone(),
    )
    .await
    .map_err(|e| ChainError::Rejected { reason: format!("signer: {e}") })?;
    factory.set_block_id(BlockId::Tag(BlockTag::PreConfirmed));
    let deployment = factory.deploy_v3(salt);
    debug_assert_eq!(deployment.address(), address);
    let sent = deployment.send().await.map_err(|e| match e {
        AccountFactoryError::Provider(p) => client.map_err(Some(address), p),
        AccountFactoryError::Signing(s) => ChainError::Rejected { reason: format!("signing failed: {s}") },
        AccountFactoryError::FeeOutOfRange => ChainError::InsufficientFeeBalance { account: address },
    })?;
    client.wait_for_receipt(sent.transaction_hash).await?;
    tracing::info!(address = %format!("{address:#x}"), "OpenZeppelin account deployed");
    Ok(SageAccount::new(client.clone(), address, signer))
}

/// Returns an account's nonce as the chain sees it.
pub async fn chain_nonce<S: Signer + Send + Sync + 'static>(account: &SageAccount<S>) -> Result<Felt, ChainError> {
    account.inner.get_nonce().await.map_err(|e| account.client.map_err(Some(account.address()), e))
}
