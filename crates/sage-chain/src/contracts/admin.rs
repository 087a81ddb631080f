//! Ownership (two-step), pausing and roles (`IAdmin`, the Cairo `AdminComponent`), shared by every
//! settlement contract.

use starknet_rust::core::types::{Call, Felt};

use starknet_rust::core::types::Event;

use super::decode::{Reader, is_event};
use crate::{ChainClient, ChainError, SageAccount, TxOutcome, client::selector};

/// Seconds between scheduling a role grant (after `close_setup`) and carrying it out: eight
/// days (the Cairo `ROLE_GRANT_DELAY`; the StakingManager refuses an unstake cooldown this long,
/// so stake holders can always leave before a scheduled SLASHER grant lands).
pub const ROLE_GRANT_DELAY: u64 = 691_200;

/// Role ids (Cairo short strings) of the settlement contracts.
pub mod roles {
    use starknet_rust::core::types::Felt;

    /// `'SLASHER'`: may call `StakingManager.slash` (the ProofVerifier).
    pub const SLASHER: Felt = Felt::from_hex_unchecked("0x534c4153484552");
    /// `'WRITER'`: may write the ReputationManager (StakingManager, JobManager, ProofVerifier).
    pub const WRITER: Felt = Felt::from_hex_unchecked("0x575249544552");
    /// `'COORDINATOR'`: assigns jobs (JobManager) and submits payments (PaymentRouter).
    pub const COORDINATOR: Felt = Felt::from_hex_unchecked("0x434f4f5244494e41544f52");
    /// `'VERIFIER'`: delivers verdicts to the JobManager (the ProofVerifier).
    pub const VERIFIER: Felt = Felt::from_hex_unchecked("0x5645524946494552");
    /// `'ROUTER'`: credits encrypted balances in the PrivacyRouter (the PaymentRouter).
    pub const ROUTER: Felt = Felt::from_hex_unchecked("0x524f55544552");
    /// `'BONDER'`: bonds the validator set's members' stakes in the StakingManager (the
    /// ProofVerifier).
    pub const BONDER: Felt = Felt::from_hex_unchecked("0x424f4e444552");
}

/// A decoded ownership, pause, role or configuration event (any settlement contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminEvent {
    /// `OwnershipTransferStarted`: the owner proposed `new_owner`, who must accept.
    OwnershipTransferStarted {
        /// Current owner.
        previous_owner: Felt,
        /// Proposed owner.
        new_owner: Felt,
    },
    /// `OwnershipTransferred`: the proposed owner accepted.
    OwnershipTransferred {
        /// Previous owner.
        previous_owner: Felt,
        /// New owner.
        new_owner: Felt,
    },
    /// `PauseChanged`.
    PauseChanged {
        /// Paused now.
        paused: bool,
    },
    /// `RoleChanged`.
    RoleChanged {
        /// Role id.
        role: Felt,
        /// Account.
        account: Felt,
        /// Granted (else revoked).
        granted: bool,
    },
    /// `RoleGrantScheduled`: after `close_setup`, a grant waits for the timelock; `ready_at` 0
    /// means the scheduled grant was cancelled.
    RoleGrantScheduled {
        /// Role id.
        role: Felt,
        /// Account.
        account: Felt,
        /// Block time from which `execute_role_grant` may carry it out (0: cancelled).
        ready_at: u64,
    },
    /// `SetupClosed`: roles now move only behind the timelock; payout and reputation are fixed.
    SetupClosed,
    /// `ConfigChanged` (key is a short string such as `payout`, `reputation`, `verdict_grace`).
    ConfigChanged {
        /// Setting.
        key: Felt,
        /// New value.
        value: Felt,
    },
}

impl AdminEvent {
    /// Decodes an admin event; `None` for any other event.
    pub fn decode(event: &Event) -> Option<Self> {
        let k = &event.keys;
        let mut d = Reader::new(&event.data, "admin event");
        Some(if is_event(event, "OwnershipTransferStarted") {
            Self::OwnershipTransferStarted { previous_owner: *k.get(1)?, new_owner: *k.get(2)? }
        } else if is_event(event, "OwnershipTransferred") {
            Self::OwnershipTransferred { previous_owner: *k.get(1)?, new_owner: *k.get(2)? }
        } else if is_event(event, "PauseChanged") {
            Self::PauseChanged { paused: d.bool().ok()? }
        } else if is_event(event, "RoleChanged") {
            Self::RoleChanged { role: *k.get(1)?, account: *k.get(2)?, granted: d.bool().ok()? }
        } else if is_event(event, "RoleGrantScheduled") {
            Self::RoleGrantScheduled { role: *k.get(1)?, account: *k.get(2)?, ready_at: d.u64().ok()? }
        } else if is_event(event, "SetupClosed") {
            Self::SetupClosed
        } else if is_event(event, "ConfigChanged") {
            Self::ConfigChanged { key: *k.get(1)?, value: d.felt().ok()? }
        } else {
            return None;
        })
    }
}

/// The `IAdmin` entry points of a settlement contract at `address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin {
    /// Contract address.
    pub address: Felt,
}

pub(crate) fn call(to: Felt, function: &str, calldata: Vec<Felt>) -> Result<Call, ChainError> {
    Ok(Call { to, selector: selector(function)?, calldata })
}

impl Admin {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// `grant_role(role, account)` as a call (owner only).
    pub fn grant_role_call(&self, role: Felt, account: Felt) -> Result<Call, ChainError> {
        call(self.address, "grant_role", vec![role, account])
    }

    /// `close_setup()` as a call (owner only, once).
    pub fn close_setup_call(&self) -> Result<Call, ChainError> {
        call(self.address, "close_setup", vec![])
    }

    /// Ends the setup window for good (owner only): later grants wait [`ROLE_GRANT_DELAY`], and
    /// setup-only settings (payout, reputation) are fixed.
    pub async fn close_setup(&self, owner: &SageAccount) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![self.close_setup_call()?]).await
    }

    /// Whether `close_setup` has run.
    pub async fn is_setup_closed(&self, client: &ChainClient) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "is_setup_closed", vec![]).await?, "is_setup_closed").bool()
    }

    /// Carries out a scheduled grant whose delay has passed (any account may send it).
    pub async fn execute_role_grant(
        &self,
        sender: &SageAccount,
        role: Felt,
        account: Felt,
    ) -> Result<TxOutcome, ChainError> {
        sender.execute(vec![call(self.address, "execute_role_grant", vec![role, account])?]).await
    }

    /// Drops a scheduled grant (owner only).
    pub async fn cancel_role_grant(
        &self,
        owner: &SageAccount,
        role: Felt,
        account: Felt,
    ) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![call(self.address, "cancel_role_grant", vec![role, account])?]).await
    }

    /// When the grant of `role` to `account` may be carried out; 0 when none is scheduled.
    pub async fn role_grant_ready_at(
        &self,
        client: &ChainClient,
        role: Felt,
        account: Felt,
    ) -> Result<u64, ChainError> {
        Reader::new(
            &client.call(self.address, "role_grant_ready_at", vec![role, account]).await?,
            "role_grant_ready_at",
        )
        .u64()
    }

    /// Grants `role` to `account` (owner only): at once while the setup is open, else scheduled
    /// (see [`Admin::execute_role_grant`]).
    pub async fn grant_role(&self, owner: &SageAccount, role: Felt, account: Felt) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![self.grant_role_call(role, account)?]).await
    }

    /// Revokes `role` from `account` (owner only).
    pub async fn revoke_role(&self, owner: &SageAccount, role: Felt, account: Felt) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![call(self.address, "revoke_role", vec![role, account])?]).await
    }

    /// Whether `account` holds `role`.
    pub async fn has_role(&self, client: &ChainClient, role: Felt, account: Felt) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "has_role", vec![role, account]).await?, "has_role").bool()
    }

    /// Pauses the contract (owner only).
    pub async fn pause(&self, owner: &SageAccount) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![call(self.address, "pause", vec![])?]).await
    }

    /// Unpauses the contract (owner only).
    pub async fn unpause(&self, owner: &SageAccount) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![call(self.address, "unpause", vec![])?]).await
    }

    /// Whether the contract is paused.
    pub async fn is_paused(&self, client: &ChainClient) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "is_paused", vec![]).await?, "is_paused").bool()
    }

    /// The owner.
    pub async fn owner(&self, client: &ChainClient) -> Result<Felt, ChainError> {
        Reader::new(&client.call(self.address, "owner", vec![]).await?, "owner").felt()
    }

    /// The account proposed as the next owner (zero when none).
    pub async fn pending_owner(&self, client: &ChainClient) -> Result<Felt, ChainError> {
        Reader::new(&client.call(self.address, "pending_owner", vec![]).await?, "pending_owner").felt()
    }

    /// Proposes `new_owner` (owner only); ownership moves when `new_owner` calls
    /// [`Admin::accept_ownership`]. Proposing again replaces the proposal.
    pub async fn transfer_ownership(&self, owner: &SageAccount, new_owner: Felt) -> Result<TxOutcome, ChainError> {
        owner.execute(vec![call(self.address, "transfer_ownership", vec![new_owner])?]).await
    }

    /// Takes over ownership (only the proposed owner).
    pub async fn accept_ownership(&self, new_owner: &SageAccount) -> Result<TxOutcome, ChainError> {
        new_owner.execute(vec![call(self.address, "accept_ownership", vec![])?]).await
    }
}
