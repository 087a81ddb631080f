//! `SageToken` (ERC20) binding.

use starknet_rust::core::types::{Call, Event, Felt};

use crate::{ChainClient, ChainError, SageAccount, TxOutcome, client::selector, u256};

/// The SAGE token at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SageToken {
    /// Contract address.
    pub address: Felt,
}

/// A decoded `Transfer` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferEvent {
    /// Sender (zero for mints).
    pub from: Felt,
    /// Recipient.
    pub to: Felt,
    /// Amount in base units.
    pub value: u128,
}

impl TransferEvent {
    /// Decodes a `Transfer` event (keys: selector, from, to; data: u256 value); `None` for any
    /// other event.
    pub fn decode(event: &Event) -> Option<Self> {
        let transfer = selector("Transfer").ok()?;
        match (event.keys.as_slice(), event.data.as_slice()) {
            ([k, from, to], data) if *k == transfer => {
                Some(Self { from: *from, to: *to, value: u256::from_felts(data).ok()? })
            }
            _ => None,
        }
    }
}

impl SageToken {
    /// Binds to the token at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    fn call(&self, function: &str, mut calldata: Vec<Felt>) -> Result<Call, ChainError> {
        Ok(Call { to: self.address, selector: selector(function)?, calldata: std::mem::take(&mut calldata) })
    }

    /// `transfer(recipient, amount)` as a call for a multicall.
    pub fn transfer_call(&self, recipient: Felt, amount: u128) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        self.call("transfer", vec![recipient, lo, hi])
    }

    /// `approve(spender, amount)` as a call.
    pub fn approve_call(&self, spender: Felt, amount: u128) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        self.call("approve", vec![spender, lo, hi])
    }

    /// `transfer_from(sender, recipient, amount)` as a call.
    pub fn transfer_from_call(&self, sender: Felt, recipient: Felt, amount: u128) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        self.call("transfer_from", vec![sender, recipient, lo, hi])
    }

    /// `mint(recipient, amount)` (owner only) as a call.
    pub fn mint_call(&self, recipient: Felt, amount: u128) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        self.call("mint", vec![recipient, lo, hi])
    }

    /// The `Transfer` events this token emitted in a transaction (fee-token transfers and other
    /// contracts' events are left out).
    pub fn transfers_in(&self, outcome: &TxOutcome) -> Vec<TransferEvent> {
        outcome
            .receipt
            .receipt
            .events()
            .iter()
            .filter(|e| e.from_address == self.address)
            .filter_map(TransferEvent::decode)
            .collect()
    }

    /// Transfers `amount` from `account` to `recipient`.
    pub async fn transfer(
        &self,
        account: &SageAccount,
        recipient: Felt,
        amount: u128,
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.transfer_call(recipient, amount)?]).await
    }

    /// Approves `spender` for `amount`.
    pub async fn approve(&self, account: &SageAccount, spender: Felt, amount: u128) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.approve_call(spender, amount)?]).await
    }

    /// Moves `amount` from `sender` to `recipient` with `account`'s allowance.
    pub async fn transfer_from(
        &self,
        account: &SageAccount,
        sender: Felt,
        recipient: Felt,
        amount: u128,
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.transfer_from_call(sender, recipient, amount)?]).await
    }

    /// Mints `amount` to `recipient` (reverts unless `account` is the owner).
    pub async fn mint(&self, account: &SageAccount, recipient: Felt, amount: u128) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.mint_call(recipient, amount)?]).await
    }

    /// Balance of `owner`.
    pub async fn balance_of(&self, client: &ChainClient, owner: Felt) -> Result<u128, ChainError> {
        client.erc20_balance(self.address, owner).await
    }

    /// Remaining allowance of `spender` over `owner`'s tokens.
    pub async fn allowance(&self, client: &ChainClient, owner: Felt, spender: Felt) -> Result<u128, ChainError> {
        u256::from_felts(&client.call(self.address, "allowance", vec![owner, spender]).await?)
    }

    /// Total supply.
    pub async fn total_supply(&self, client: &ChainClient) -> Result<u128, ChainError> {
        u256::from_felts(&client.call(self.address, "total_supply", vec![]).await?)
    }

    /// Token metadata: (name, symbol, decimals).
    pub async fn metadata(&self, client: &ChainClient) -> Result<(String, String, u8), ChainError> {
        let short = |v: Vec<Felt>, what: &'static str| -> Result<String, ChainError> {
            let f = v.first().ok_or(ChainError::Decode { what, reason: "empty".into() })?;
            starknet_rust::core::utils::parse_cairo_short_string(f)
                .map_err(|e| ChainError::Decode { what, reason: e.to_string() })
        };
        let name = short(client.call(self.address, "name", vec![]).await?, "token name")?;
        let symbol = short(client.call(self.address, "symbol", vec![]).await?, "token symbol")?;
        let decimals = client.call(self.address, "decimals", vec![]).await?;
        let decimals = decimals
            .first()
            .and_then(|d| u8::try_from(*d).ok())
            .ok_or(ChainError::Decode { what: "decimals", reason: "not a u8".into() })?;
        Ok((name, symbol, decimals))
    }

    /// Current owner.
    pub async fn owner(&self, client: &ChainClient) -> Result<Felt, ChainError> {
        first(client.call(self.address, "owner", vec![]).await?, "owner")
    }
}

pub(crate) fn first(v: Vec<Felt>, what: &'static str) -> Result<Felt, ChainError> {
    v.first().copied().ok_or(ChainError::Decode { what, reason: "empty result".into() })
}
