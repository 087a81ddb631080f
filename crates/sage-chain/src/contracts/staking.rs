//! `StakingManager` and `ReputationManager` bindings.

use starknet_rust::core::types::{Call, Event, Felt};

use super::{
    admin::{Admin, call},
    decode::{Reader, is_event},
};
use crate::{ChainClient, ChainError, SageAccount, TxOutcome, u256};
pub use sage_types::{GpuTier, StakeInfo, StakeStatus, TeeType};

/// A worker record (`get_worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerInfo {
    /// Registered at all.
    pub registered: bool,
    /// Which TEE (`None` when unregistered).
    pub tee_type: Option<TeeType>,
    /// TEE measurement hash.
    pub measurement_hash: Felt,
    /// TEE quote hash.
    pub quote_hash: Felt,
    /// ElGamal public key `[x, y]`.
    pub elgamal_public_key: [Felt; 2],
    /// Digest of the libp2p peer id.
    pub peer_id: Felt,
    /// Block timestamp of the registration.
    pub registered_at: u64,
}

/// What `register_worker` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerRegistration {
    /// Which TEE (sent as its short string).
    pub tee_type: TeeType,
    /// TEE measurement hash.
    pub measurement_hash: Felt,
    /// TEE quote hash.
    pub quote_hash: Felt,
    /// ElGamal public key `[x, y]`.
    pub elgamal_public_key: [Felt; 2],
    /// Schnorr proof of knowledge of its secret key `[a.x, a.y, s]`, with context
    /// `[chain_id, staking contract, worker]`.
    pub key_proof: [Felt; 3],
    /// Digest of the libp2p peer id.
    pub peer_id: Felt,
}

/// StakingManager constructor parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakingParams {
    /// Minimum stake per tier (T4 … H200), base units.
    pub min_stakes: [u128; 6],
    /// Minimum stake of a validator.
    pub validator_min_stake: u128,
    /// Seconds between an unstake request and the withdrawal.
    pub unstake_cooldown: u64,
    /// Share of a slash paid to the reporter, basis points (the rest goes to the treasury).
    pub reporter_bps: u16,
}

/// A decoded `StakingManager` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StakingEvent {
    /// `Staked`.
    Staked {
        /// Staker.
        account: Felt,
        /// Added.
        amount: u128,
        /// New bonded total.
        total: u128,
        /// Tier.
        tier: u8,
        /// Lock end.
        locked_until: u64,
    },
    /// `UnstakeRequested`.
    UnstakeRequested {
        /// Staker.
        account: Felt,
        /// Amount leaving.
        amount: u128,
        /// Withdrawable from.
        available_at: u64,
    },
    /// `Withdrawn`.
    Withdrawn {
        /// Staker.
        account: Felt,
        /// Amount paid out.
        amount: u128,
    },
    /// `WorkerRegistered`.
    WorkerRegistered {
        /// Worker.
        worker: Felt,
        /// ElGamal public key.
        elgamal_public_key: [Felt; 2],
        /// Peer id digest.
        peer_id: Felt,
    },
    /// `ValidatorRegistered`.
    ValidatorRegistered {
        /// Validator account.
        validator: Felt,
        /// Its Stark public key.
        public_key: Felt,
    },
    /// `MinStakeChanged`.
    MinStakeChanged {
        /// Tier index.
        tier: u8,
        /// New minimum.
        amount: u128,
    },
    /// `Slashed`.
    Slashed {
        /// Slashed account.
        account: Felt,
        /// Reason (short string).
        reason: Felt,
        /// Total slashed.
        amount: u128,
        /// Reporter.
        reporter: Felt,
        /// Paid to the reporter.
        reporter_reward: u128,
        /// Paid to the treasury.
        treasury_amount: u128,
    },
}

impl StakingEvent {
    /// Decodes an event found by an event query ([`ChainClient::events`]).
    pub fn decode_emitted(e: &starknet_rust::core::types::EmittedEvent) -> Option<Self> {
        Self::decode(&Event { from_address: e.from_address, keys: e.keys.clone(), data: e.data.clone() })
    }

    /// Decodes a StakingManager event; `None` for any other event.
    pub fn decode(event: &Event) -> Option<Self> {
        let keys = &event.keys;
        let mut d = Reader::new(&event.data, "staking event");
        let ev = if is_event(event, "Staked") {
            Self::Staked {
                account: *keys.get(1)?,
                amount: d.u256().ok()?,
                total: d.u256().ok()?,
                tier: d.u8().ok()?,
                locked_until: d.u64().ok()?,
            }
        } else if is_event(event, "UnstakeRequested") {
            Self::UnstakeRequested { account: *keys.get(1)?, amount: d.u256().ok()?, available_at: d.u64().ok()? }
        } else if is_event(event, "Withdrawn") {
            Self::Withdrawn { account: *keys.get(1)?, amount: d.u256().ok()? }
        } else if is_event(event, "WorkerRegistered") {
            let [_tee, _m, _q, x, y, peer_id] = d.array::<6>().ok()?;
            Self::WorkerRegistered { worker: *keys.get(1)?, elgamal_public_key: [x, y], peer_id }
        } else if is_event(event, "ValidatorRegistered") {
            Self::ValidatorRegistered { validator: *keys.get(1)?, public_key: d.felt().ok()? }
        } else if is_event(event, "MinStakeChanged") {
            Self::MinStakeChanged { tier: d.u8().ok()?, amount: d.u256().ok()? }
        } else if is_event(event, "Slashed") {
            Self::Slashed {
                account: *keys.get(1)?,
                reason: *keys.get(2)?,
                amount: d.u256().ok()?,
                reporter: d.felt().ok()?,
                reporter_reward: d.u256().ok()?,
                treasury_amount: d.u256().ok()?,
            }
        } else {
            return None;
        };
        Some(ev)
    }
}

/// The events `contract` emitted in a transaction, decoded by `decode`.
pub fn events_in<T>(outcome: &TxOutcome, contract: Felt, decode: impl Fn(&Event) -> Option<T>) -> Vec<T> {
    outcome.receipt.receipt.events().iter().filter(|e| e.from_address == contract).filter_map(decode).collect()
}

/// The StakingManager at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakingManager {
    /// Contract address.
    pub address: Felt,
}

impl StakingManager {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// Ownership, pause and roles.
    pub const fn admin(&self) -> Admin {
        Admin::at(self.address)
    }

    /// Constructor calldata.
    pub fn constructor(token: Felt, owner: Felt, treasury: Felt, params: &StakingParams) -> Vec<Felt> {
        let mut c = vec![token, owner, treasury, Felt::from(params.min_stakes.len())];
        for m in params.min_stakes {
            c.extend(u256::to_felts(m));
        }
        c.extend(u256::to_felts(params.validator_min_stake));
        c.push(Felt::from(params.unstake_cooldown));
        c.push(Felt::from(params.reporter_bps));
        c
    }

    /// `stake(amount, tier, lock_duration)` as a call (approve the token first).
    pub fn stake_call(&self, amount: u128, tier: GpuTier, lock_duration: u64) -> Result<Call, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        call(self.address, "stake", vec![lo, hi, Felt::from(tier.index()), Felt::from(lock_duration)])
    }

    /// Approves and stakes `amount` at `tier`, locked for `lock_duration` seconds from now (one
    /// multicall).
    pub async fn stake(
        &self,
        account: &SageAccount,
        token: super::SageToken,
        amount: u128,
        tier: GpuTier,
        lock_duration: u64,
    ) -> Result<TxOutcome, ChainError> {
        account
            .execute(vec![token.approve_call(self.address, amount)?, self.stake_call(amount, tier, lock_duration)?])
            .await
    }

    /// Starts unbonding `amount` (only after the lock); withdrawable after the cooldown.
    pub async fn request_unstake(&self, account: &SageAccount, amount: u128) -> Result<TxOutcome, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        account.execute(vec![call(self.address, "request_unstake", vec![lo, hi])?]).await
    }

    /// Withdraws the unbonded amount (after the cooldown).
    pub async fn withdraw(&self, account: &SageAccount) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "withdraw", vec![])?]).await
    }

    /// `register_worker(...)` as a call.
    pub fn register_worker_call(&self, r: &WorkerRegistration) -> Result<Call, ChainError> {
        let mut c = vec![r.tee_type.to_felt(), r.measurement_hash, r.quote_hash];
        c.extend(r.elgamal_public_key);
        c.extend(r.key_proof);
        c.push(r.peer_id);
        call(self.address, "register_worker", c)
    }

    /// Registers the caller as a worker (needs a valid stake and a valid key proof).
    pub async fn register_worker(
        &self,
        account: &SageAccount,
        r: &WorkerRegistration,
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.register_worker_call(r)?]).await
    }

    /// `register_validator(public_key)` as a call.
    pub fn register_validator_call(&self, public_key: Felt) -> Result<Call, ChainError> {
        call(self.address, "register_validator", vec![public_key])
    }

    /// Registers the caller as a validator with its Stark public key (needs the validator minimum
    /// stake; only registered validators can be listed in the ProofVerifier's set).
    pub async fn register_validator(&self, account: &SageAccount, public_key: Felt) -> Result<TxOutcome, ChainError> {
        account.execute(vec![self.register_validator_call(public_key)?]).await
    }

    /// Slashes `bps` basis points of `target`'s stake (slasher role only).
    pub async fn slash(
        &self,
        account: &SageAccount,
        target: Felt,
        bps: u16,
        reason: Felt,
        reporter: Felt,
    ) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "slash", vec![target, Felt::from(bps), reason, reporter])?]).await
    }

    /// Changes a tier minimum (owner only).
    pub async fn set_min_stake(
        &self,
        owner: &SageAccount,
        tier: GpuTier,
        amount: u128,
    ) -> Result<TxOutcome, ChainError> {
        let [lo, hi] = u256::to_felts(amount);
        owner.execute(vec![call(self.address, "set_min_stake", vec![Felt::from(tier.index()), lo, hi])?]).await
    }

    /// `set_reputation(address)` as a call (owner only).
    pub fn set_reputation_call(&self, reputation: Felt) -> Result<Call, ChainError> {
        call(self.address, "set_reputation", vec![reputation])
    }

    /// (token, treasury, validator minimum stake, unstake cooldown, reporter bps).
    pub async fn config(&self, client: &ChainClient) -> Result<(Felt, Felt, u128, u64, u16), ChainError> {
        let out = client.call(self.address, "config", vec![]).await?;
        let mut r = Reader::new(&out, "StakingConfig");
        Ok((r.felt()?, r.felt()?, r.u256()?, r.u64()?, r.u16()?))
    }

    /// A staker's position.
    pub async fn get_stake(&self, client: &ChainClient, account: Felt) -> Result<StakeInfo, ChainError> {
        let out = client.call(self.address, "get_stake", vec![account]).await?;
        let mut r = Reader::new(&out, "StakeInfo");
        Ok(StakeInfo {
            amount: r.u256()?,
            tier: r.u8()?,
            locked_until: r.u64()?,
            pending: r.u256()?,
            pending_at: r.u64()?,
            slashed_total: r.u256()?,
        })
    }

    /// A worker record (default when unregistered).
    pub async fn get_worker(&self, client: &ChainClient, account: Felt) -> Result<WorkerInfo, ChainError> {
        let out = client.call(self.address, "get_worker", vec![account]).await?;
        let mut r = Reader::new(&out, "WorkerInfo");
        Ok(WorkerInfo {
            registered: r.bool()?,
            tee_type: match r.felt()? {
                f if f == Felt::ZERO => None,
                f => Some(TeeType::from_felt(f).ok_or_else(|| ChainError::Decode {
                    what: "WorkerInfo",
                    reason: format!("unknown TEE type {f:#x}"),
                })?),
            },
            measurement_hash: r.felt()?,
            quote_hash: r.felt()?,
            elgamal_public_key: r.array::<2>()?,
            peer_id: r.felt()?,
            registered_at: r.u64()?,
        })
    }

    /// Whether `account` is a registered worker.
    pub async fn is_registered(&self, client: &ChainClient, account: Felt) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "is_registered", vec![account]).await?, "is_registered").bool()
    }

    /// Whether `account` is bonded as a member of the current validator set (its stake cannot be
    /// unstaked below the validator minimum until a set without it is installed).
    pub async fn is_bonded(&self, client: &ChainClient, account: Felt) -> Result<bool, ChainError> {
        Reader::new(&client.call(self.address, "is_bonded", vec![account]).await?, "is_bonded").bool()
    }

    /// A validator's registered Stark public key (zero when none).
    pub async fn validator_key(&self, client: &ChainClient, account: Felt) -> Result<Felt, ChainError> {
        Reader::new(&client.call(self.address, "validator_key", vec![account]).await?, "validator_key").felt()
    }

    /// The on-chain stake check for a job ending at `until`.
    pub async fn stake_status(
        &self,
        client: &ChainClient,
        account: Felt,
        until: u64,
    ) -> Result<StakeStatus, ChainError> {
        let out = client.call(self.address, "stake_status", vec![account, Felt::from(until)]).await?;
        let code = Reader::new(&out, "stake_status").u8()?;
        StakeStatus::from_code(code)
            .ok_or_else(|| ChainError::Decode { what: "stake_status", reason: format!("unknown code {code}") })
    }

    /// The minimum stake of `tier`.
    pub async fn min_stake(&self, client: &ChainClient, tier: GpuTier) -> Result<u128, ChainError> {
        let out = client.call(self.address, "min_stake", vec![Felt::from(tier.index())]).await?;
        Reader::new(&out, "min_stake").u256()
    }

    /// Everything bonded or unbonding.
    pub async fn total_staked(&self, client: &ChainClient) -> Result<u128, ChainError> {
        Reader::new(&client.call(self.address, "total_staked", vec![]).await?, "total_staked").u256()
    }

    /// Checks a key-ownership proof with the contract's own verifier (a view).
    pub async fn verify_key_ownership(
        &self,
        client: &ChainClient,
        public_key: [Felt; 2],
        proof: [Felt; 3],
        context: &[Felt],
    ) -> Result<bool, ChainError> {
        let mut c = public_key.to_vec();
        c.extend(proof);
        c.push(Felt::from(context.len()));
        c.extend_from_slice(context);
        Reader::new(&client.call(self.address, "verify_key_ownership", c).await?, "verify_key_ownership").bool()
    }
}

/// Job-record counters of an account (`counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReputationCounts {
    /// Initialised (registered worker or slashed validator).
    pub initialised: bool,
    /// Jobs completed with a valid verdict.
    pub completed: u64,
    /// Jobs failed (invalid verdict or missed deadline).
    pub failed: u64,
    /// Times slashed.
    pub slashed: u64,
}

/// A decoded `ReputationChanged` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReputationEvent {
    /// Account.
    pub account: Felt,
    /// `init`, `completed`, `failed` or `slashed` (short string).
    pub kind: Felt,
    /// Score after the change.
    pub score: u32,
}

impl ReputationEvent {
    /// Decodes a `ReputationChanged` event; `None` for any other event.
    pub fn decode(event: &Event) -> Option<Self> {
        if !is_event(event, "ReputationChanged") {
            return None;
        }
        let mut d = Reader::new(&event.data, "reputation event");
        Some(Self { account: *event.keys.get(1)?, kind: d.felt().ok()?, score: d.u32().ok()? })
    }
}

/// The ReputationManager at a known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReputationManager {
    /// Contract address.
    pub address: Felt,
}

impl ReputationManager {
    /// Binds to the contract at `address`.
    pub const fn at(address: Felt) -> Self {
        Self { address }
    }

    /// Ownership, pause and roles.
    pub const fn admin(&self) -> Admin {
        Admin::at(self.address)
    }

    /// Initialises `target`'s record (writer role only; the StakingManager does it on registration).
    pub async fn init(&self, account: &SageAccount, target: Felt) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "init", vec![target])?]).await
    }

    /// Records a completed job (writer role only).
    pub async fn record_completed(&self, account: &SageAccount, target: Felt) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "record_completed", vec![target])?]).await
    }

    /// Records a failed job (writer role only).
    pub async fn record_failed(&self, account: &SageAccount, target: Felt) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "record_failed", vec![target])?]).await
    }

    /// Records a slash (writer role only).
    pub async fn record_slashed(&self, account: &SageAccount, target: Felt) -> Result<TxOutcome, ChainError> {
        account.execute(vec![call(self.address, "record_slashed", vec![target])?]).await
    }

    /// The counters of `account`.
    pub async fn counts(&self, client: &ChainClient, account: Felt) -> Result<ReputationCounts, ChainError> {
        let out = client.call(self.address, "counts", vec![account]).await?;
        let mut r = Reader::new(&out, "reputation counts");
        Ok(ReputationCounts { initialised: r.bool()?, completed: r.u64()?, failed: r.u64()?, slashed: r.u64()? })
    }

    /// The score in `[0, 1000]` (0 when not initialised).
    pub async fn score(&self, client: &ChainClient, account: Felt) -> Result<u32, ChainError> {
        Reader::new(&client.call(self.address, "score", vec![account]).await?, "score").u32()
    }
}
