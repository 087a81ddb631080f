//! Declares and deploys the Sage contracts, wires them and writes the manifest.

use std::collections::BTreeMap;

use starknet_rust::core::{types::Felt, utils::cairo_short_string_to_felt};

use crate::{
    Artifacts, ChainError, DeployedContract, Manifest, SageAccount,
    client::chain_id_to_string,
    contracts::{Faucet, SageToken},
    manifest::MANIFEST_VERSION,
    u256,
};

/// One SAGE in base units (18 decimals).
pub const SAGE: u128 = 1_000_000_000_000_000_000;

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployParams {
    /// Token name (a Cairo short string, ≤ 31 ASCII characters).
    pub token_name: String,
    /// Token symbol.
    pub token_symbol: String,
    /// Initial supply minted to the deployer, in base units.
    pub initial_supply: u128,
    /// SAGE per faucet drip, in base units.
    pub faucet_drip: u128,
    /// Faucet cooldown per address, seconds.
    pub faucet_cooldown: u64,
    /// SAGE moved into the faucet at deployment, in base units.
    pub faucet_funding: u128,
    /// UDC salt (addresses depend on it).
    pub salt: Felt,
}

impl Default for DeployParams {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            token_name: "Sage".into(),
            token_symbol: "SAGE".into(),
            initial_supply: 1_000_000_000 * SAGE,
            faucet_drip: 1_000 * SAGE,
            faucet_cooldown: 24 * 3600,
            faucet_funding: 10_000_000 * SAGE,
            salt: Felt::from(nanos),
        }
    }
}

/// Declares every class, deploys `SageToken` and `Faucet`, funds the faucet, and returns the
/// manifest (the caller saves it). Classes already declared are reused.
pub async fn deploy_sage(
    account: &SageAccount,
    artifacts: &Artifacts,
    params: &DeployParams,
) -> Result<Manifest, ChainError> {
    let client = account.client();
    let start_block = client.block_number().await?;
    let deployer = account.address();
    let short = |s: &str| {
        cairo_short_string_to_felt(s)
            .map_err(|e| ChainError::Rejected { reason: format!("{s:?} is not a short string: {e}") })
    };

    let token_class = account.declare(artifacts.get("SageToken")?).await?;
    let faucet_class = account.declare(artifacts.get("Faucet")?).await?;

    let [supply_lo, supply_hi] = u256::to_felts(params.initial_supply);
    let (token_address, _) = account
        .deploy(
            token_class,
            vec![
                short(&params.token_name)?,
                short(&params.token_symbol)?,
                Felt::from(18u8),
                supply_lo,
                supply_hi,
                deployer,
                deployer,
            ],
            params.salt,
        )
        .await?;
    tracing::info!(address = %format!("{token_address:#x}"), "SageToken deployed");

    let [drip_lo, drip_hi] = u256::to_felts(params.faucet_drip);
    let (faucet_address, _) = account
        .deploy(
            faucet_class,
            vec![token_address, deployer, drip_lo, drip_hi, Felt::from(params.faucet_cooldown)],
            params.salt,
        )
        .await?;
    tracing::info!(address = %format!("{faucet_address:#x}"), "Faucet deployed");

    if params.faucet_funding > 0 {
        Faucet::at(faucet_address).refill(account, SageToken::at(token_address), params.faucet_funding).await?;
    }

    let mut contracts = BTreeMap::new();
    contracts.insert("SageToken".to_owned(), DeployedContract { class_hash: token_class, address: token_address });
    contracts.insert("Faucet".to_owned(), DeployedContract { class_hash: faucet_class, address: faucet_address });
    Ok(Manifest {
        version: MANIFEST_VERSION,
        chain_id: chain_id_to_string(client.chain_id()),
        rpc_url: client.config().rpc_url.to_string(),
        deployed_at_block: start_block,
        deployer,
        contracts,
    })
}
