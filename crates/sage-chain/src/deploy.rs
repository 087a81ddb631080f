//! Declares and deploys the Sage contracts, wires them and writes the manifest.

use std::collections::BTreeMap;

use starknet_rust::core::{types::Felt, utils::cairo_short_string_to_felt};

use crate::{
    Artifacts, ChainError, DeployedContract, Manifest, SageAccount,
    client::chain_id_to_string,
    contracts::{
        Faucet, JobManager, PaymentRouter, PrivacyRouter, ProofVerifier, SageToken, StakingManager, StakingParams,
        roles,
    },
    manifest::MANIFEST_VERSION,
    u256,
};

/// One SAGE in base units (18 decimals).
pub const SAGE: u128 = 1_000_000_000_000_000_000;

/// Parses a decimal SAGE amount (`"1000"`, `"0.5"`, at most 18 decimals) into base units; the
/// error says what was wrong.
pub fn parse_sage(text: &str) -> Result<u128, String> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > 18
        || !format!("{whole}{frac}").bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a SAGE amount (a decimal number with at most 18 decimals)"));
    }
    let too_large = || format!("{text:?} is too large");
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let frac: u128 = format!("{frac:0<18}").parse().map_err(|_| too_large())?;
    whole.checked_mul(SAGE).and_then(|w| w.checked_add(frac)).ok_or_else(too_large)
}

/// Base units as a decimal SAGE amount with all 18 decimals (`"0.002074000000000000"`).
pub fn format_sage(base: u128) -> String {
    format!("{}.{:018}", base / SAGE, base % SAGE)
}

#[cfg(test)]
mod amount_tests {
    use super::*;

    #[test]
    fn sage_amounts_parse_exactly_and_refuse_junk() {
        assert_eq!(parse_sage("1000").unwrap(), 1000 * SAGE);
        assert_eq!(parse_sage("0.5").unwrap(), SAGE / 2);
        assert_eq!(parse_sage(".25").unwrap(), SAGE / 4);
        assert_eq!(parse_sage("1.000000000000000001").unwrap(), SAGE + 1);
        for bad in
            ["", ".", "1.2.3", "abc", "1.0000000000000000001", "-1", "1e3", "0x10", "1,5", "999999999999999999999999"]
        {
            assert!(parse_sage(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_sage(SAGE / 2 + 3), "0.500000000000000003");
        assert_eq!(parse_sage(&format_sage(123 * SAGE + 7)).unwrap(), 123 * SAGE + 7);
    }
}

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
    /// The settlement contracts (staking, reputation, jobs, verifier, payments); `None` deploys
    /// only the token and the faucet.
    pub settlement: Option<SettlementParams>,
}

/// Parameters of the settlement contracts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementParams {
    /// StakingManager: tier minimums, validator minimum, unstake cooldown, reporter share.
    pub staking: StakingParams,
    /// Receives the non-reporter share of slashes; `None`: the deployer.
    pub treasury: Option<Felt>,
    /// Holds the coordinator role in JobManager and PaymentRouter; `None`: the deployer.
    pub coordinator: Option<Felt>,
    /// Seconds after a job's deadline during which a submitted result may still get its verdict.
    pub verdict_grace: u64,
    /// Share of a worker's stake slashed for an invalid proof, basis points.
    pub invalid_slash_bps: u16,
    /// Share of a validator's stake slashed for equivocation, basis points.
    pub equivocation_slash_bps: u16,
    /// SAGE base units per encrypted payment unit (ElGamal amounts are u64 and decrypt by BSGS up
    /// to about 2^40, so the default is 10^12: one micro-SAGE).
    pub privacy_unit: u128,
    /// End every settlement contract's setup window in the deployment's last transaction (the
    /// default): later role grants wait `ROLE_GRANT_DELAY` and payout and reputation are fixed.
    /// `false` leaves the owner free to grant at once (a test network that adds roles later); the
    /// owner can close it any time with `Admin::close_setup`.
    pub close_setup: bool,
}

impl Default for SettlementParams {
    fn default() -> Self {
        Self {
            staking: StakingParams {
                min_stakes: [1_000 * SAGE, 2_000 * SAGE, 3_000 * SAGE, 10_000 * SAGE, 25_000 * SAGE, 40_000 * SAGE],
                validator_min_stake: 10_000 * SAGE,
                unstake_cooldown: 7 * 24 * 3600,
                reporter_bps: 1_000,
            },
            treasury: None,
            coordinator: None,
            verdict_grace: 24 * 3600,
            invalid_slash_bps: 1_000,
            equivocation_slash_bps: 5_000,
            privacy_unit: 1_000_000_000_000,
            close_setup: true,
        }
    }
}

/// Names of the settlement contracts in the manifest.
pub const SETTLEMENT_CONTRACTS: [&str; 6] =
    ["StakingManager", "ReputationManager", "JobManager", "ProofVerifier", "PaymentRouter", "PrivacyRouter"];

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
            settlement: Some(SettlementParams::default()),
        }
    }
}

/// Declares every class, deploys `SageToken` and `Faucet`, funds the faucet, deploys and wires
/// the settlement contracts (unless `params.settlement` is `None`), and returns the manifest (the
/// caller saves it). Classes already declared are reused.
///
/// Wiring: ReputationManager `WRITER` → StakingManager, JobManager, ProofVerifier;
/// StakingManager `SLASHER` → ProofVerifier and its reputation → ReputationManager; JobManager
/// `VERIFIER` → ProofVerifier, `COORDINATOR` → coordinator, payout → PrivacyRouter;
/// PaymentRouter `COORDINATOR` → coordinator; PrivacyRouter `ROUTER` → PaymentRouter.
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
    if let Some(settlement) = &params.settlement {
        deploy_settlement(account, artifacts, settlement, token_address, params.salt, &mut contracts).await?;
    }
    Ok(Manifest {
        version: MANIFEST_VERSION,
        chain_id: chain_id_to_string(client.chain_id()),
        rpc_url: client.config().rpc_url.to_string(),
        deployed_at_block: start_block,
        deployer,
        contracts,
    })
}

async fn deploy_settlement(
    account: &SageAccount,
    artifacts: &Artifacts,
    p: &SettlementParams,
    token: Felt,
    salt: Felt,
    contracts: &mut BTreeMap<String, DeployedContract>,
) -> Result<(), ChainError> {
    let deployer = account.address();
    let treasury = p.treasury.unwrap_or(deployer);
    let coordinator = p.coordinator.unwrap_or(deployer);
    let mut class = BTreeMap::new();
    for name in SETTLEMENT_CONTRACTS {
        class.insert(name, account.declare(artifacts.get(name)?).await?);
    }
    let mut deploy = async |name: &'static str, ctor: Vec<Felt>| -> Result<Felt, ChainError> {
        let class_hash = class[name];
        let (address, _) = account.deploy(class_hash, ctor, salt).await?;
        tracing::info!(address = %format!("{address:#x}"), "{name} deployed");
        contracts.insert(name.to_owned(), DeployedContract { class_hash, address });
        Ok(address)
    };
    let reputation = deploy("ReputationManager", vec![deployer]).await?;
    let staking = deploy("StakingManager", StakingManager::constructor(token, deployer, treasury, &p.staking)).await?;
    let jobs =
        deploy("JobManager", JobManager::constructor(token, staking, reputation, deployer, p.verdict_grace)).await?;
    let verifier = deploy(
        "ProofVerifier",
        ProofVerifier::constructor(staking, jobs, reputation, deployer, p.invalid_slash_bps, p.equivocation_slash_bps),
    )
    .await?;
    let privacy = deploy("PrivacyRouter", PrivacyRouter::constructor(token, staking, deployer, p.privacy_unit)).await?;
    let payments = deploy("PaymentRouter", PaymentRouter::constructor(verifier, jobs, privacy, deployer)).await?;

    let (staking, jobs) = (StakingManager::at(staking), JobManager::at(jobs));
    let rep = crate::contracts::Admin::at(reputation);
    let mut wiring = vec![
        rep.grant_role_call(roles::WRITER, staking.address)?,
        rep.grant_role_call(roles::WRITER, jobs.address)?,
        rep.grant_role_call(roles::WRITER, verifier)?,
        staking.admin().grant_role_call(roles::SLASHER, verifier)?,
        staking.admin().grant_role_call(roles::BONDER, verifier)?,
        staking.set_reputation_call(reputation)?,
        jobs.admin().grant_role_call(roles::VERIFIER, verifier)?,
        jobs.admin().grant_role_call(roles::COORDINATOR, coordinator)?,
        jobs.set_payout_call(privacy)?,
        PaymentRouter::at(payments).admin().grant_role_call(roles::COORDINATOR, coordinator)?,
        PrivacyRouter::at(privacy).admin().grant_role_call(roles::ROUTER, payments)?,
    ];
    if p.close_setup {
        for address in [reputation, staking.address, jobs.address, verifier, privacy, payments] {
            wiring.push(crate::contracts::Admin::at(address).close_setup_call()?);
        }
    }
    account.execute(wiring).await?;
    Ok(())
}
