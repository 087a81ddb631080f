//! `Faucet` binding.

use starknet_rust::core::types::{Call, Felt};

use super::{SageToken, token::first};
use crate::{ChainClient, ChainError, SageAccount, TxOutcome, client::selector, u256};

/// Revert reason of a drip inside the cooldown.
pub const COOLDOWN_REASON: &str = "FAUCET: cooldown active";

/// The SAGE faucet at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faucet {
    /// Contract address.
    pub address: Felt,
}

impl Faucet {
    /// Binds to the faucet at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    fn call(&self, function: &str, calldata: Vec<Felt>) -> Result<Call, ChainError> {
        Ok(Call { to: self.address, selector: selector(function)?, calldata })
    }

    /// Takes one drip for `account`. Inside the cooldown this is
    /// [`ChainError::FaucetCooldown`] with the time of the next allowed drip.
    pub async fn drip(&self, account: &SageAccount) -> Result<TxOutcome, ChainError> {
        match account.execute(vec![self.call("drip", vec![])?]).await {
            Err(ChainError::Reverted { reason, .. }) if reason.contains(COOLDOWN_REASON) => {
                let next_drip_at = self.next_drip_at(account.client(), account.address()).await?;
                Err(ChainError::FaucetCooldown { account: account.address(), next_drip_at })
            }
            other => other,
        }
    }

    /// Moves `amount` SAGE from the owner `account` into the faucet (approve + refill in one
    /// multicall).
    pub async fn refill(&self, account: &SageAccount, token: SageToken, amount: u128) -> Result<TxOutcome, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        account.execute(vec![token.approve_call(self.address, amount)?, self.call("refill", vec![lo, hi])?]).await
    }

    /// Changes the drip amount (owner only).
    pub async fn set_drip_amount(&self, account: &SageAccount, amount: u128) -> Result<TxOutcome, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        account.execute(vec![self.call("set_drip_amount", vec![lo, hi])?]).await
    }

    /// Changes the cooldown in seconds (owner only).
    pub async fn set_cooldown(&self, account: &SageAccount, seconds: u64) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.call("set_cooldown", vec![Felt::from(seconds)])?]).await
    }

    /// Amount per drip.
    pub async fn drip_amount(&self, client: &ChainClient) -> Result<u128, ChainError> {
        u256::from_felts(&client.call(self.address, "drip_amount", vec![]).await?)
    }

    /// Cooldown in seconds.
    pub async fn cooldown(&self, client: &ChainClient) -> Result<u64, ChainError> {
        to_u64(first(client.call(self.address, "cooldown", vec![]).await?, "cooldown")?)
    }

    /// Earliest block timestamp of `account`'s next drip (0: now).
    pub async fn next_drip_at(&self, client: &ChainClient, account: Felt) -> Result<u64, ChainError> {
        to_u64(first(client.call(self.address, "next_drip_at", vec![account]).await?, "next_drip_at")?)
    }

    /// SAGE held by the faucet.
    pub async fn available(&self, client: &ChainClient) -> Result<u128, ChainError> {
        u256::from_felts(&client.call(self.address, "available", vec![]).await?)
    }
}

fn to_u64(f: Felt) -> Result<u64, ChainError> {
    u64::try_from(f).map_err(|_| ChainError::Decode { what: "u64", reason: format!("{f:#x} exceeds u64") })
}
