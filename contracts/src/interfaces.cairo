//! Interfaces and shared records of the Sage settlement contracts (StakingManager,
//! ReputationManager, JobManager, ProofVerifier, PaymentRouter, PrivacyRouter).

use starknet::ContractAddress;

/// Role ids (Cairo short strings).
const ROLE_SLASHER: felt252 = 'SLASHER';
const ROLE_WRITER: felt252 = 'WRITER';
const ROLE_COORDINATOR: felt252 = 'COORDINATOR';
const ROLE_VERIFIER: felt252 = 'VERIFIER';
const ROLE_ROUTER: felt252 = 'ROUTER';
/// May bond and unbond validators' stakes (the ProofVerifier, for the members of its set).
const ROLE_BONDER: felt252 = 'BONDER';

/// `stake_status` results.
const STAKE_VALID: u8 = 0;
const STAKE_INSUFFICIENT: u8 = 1;
const STAKE_UNLOCKED: u8 = 2;

/// Where a job stands (serialised as its variant index: None 0, Open 1, Assigned 2, Submitted 3,
/// Completed 4, Refunded 5; an unwritten job reads as `None`).
#[derive(Copy, Drop, Serde, PartialEq)]
enum JobStatus {
    None,
    Open,
    Assigned,
    Submitted,
    Completed,
    Refunded,
}

/// A proof's verdict, one encoding in and out (serialised as its variant index): `None` (0) is what
/// `verdict` returns before a QC and is refused as input; `Valid` (1) and `Invalid` (2) are what
/// validators sign (the vote hash carries the same code), `submit_qc` and `report_equivocation`
/// take and `verdict` returns.
#[derive(Copy, Drop, Serde, PartialEq)]
enum Verdict {
    None,
    Valid,
    Invalid,
}

/// The code a verdict carries in a vote hash, in storage and on the wire (its variant index).
fn verdict_code(verdict: Verdict) -> felt252 {
    match verdict {
        Verdict::None => 0,
        Verdict::Valid => 1,
        Verdict::Invalid => 2,
    }
}

// Storage: each enum is kept as its variant index, so that a slot never written reads as the
// first variant (`None`). The compiler's derived `Store` for enums numbers variants from 1 and
// refuses to read an unwritten slot; these codes are the ones the contracts stored as `u8` before.

fn job_status_code(status: JobStatus) -> u8 {
    match status {
        JobStatus::None => 0,
        JobStatus::Open => 1,
        JobStatus::Assigned => 2,
        JobStatus::Submitted => 3,
        JobStatus::Completed => 4,
        JobStatus::Refunded => 5,
    }
}

fn job_status_from_code(code: u8) -> JobStatus {
    if code == 0 {
        JobStatus::None
    } else if code == 1 {
        JobStatus::Open
    } else if code == 2 {
        JobStatus::Assigned
    } else if code == 3 {
        JobStatus::Submitted
    } else if code == 4 {
        JobStatus::Completed
    } else {
        assert(code == 5, 'JOB: bad stored status');
        JobStatus::Refunded
    }
}

fn verdict_from_code(code: u8) -> Verdict {
    if code == 0 {
        Verdict::None
    } else if code == 1 {
        Verdict::Valid
    } else {
        assert(code == 2, 'PV: bad stored verdict');
        Verdict::Invalid
    }
}

impl JobStatusStore of starknet::Store<JobStatus> {
    fn read(
        address_domain: u32, base: starknet::StorageBaseAddress
    ) -> starknet::SyscallResult<JobStatus> {
        let code = starknet::Store::<u8>::read(address_domain, base)?;
        starknet::SyscallResult::Ok(job_status_from_code(code))
    }
    fn write(
        address_domain: u32, base: starknet::StorageBaseAddress, value: JobStatus
    ) -> starknet::SyscallResult<()> {
        starknet::Store::<u8>::write(address_domain, base, job_status_code(value))
    }
    fn read_at_offset(
        address_domain: u32, base: starknet::StorageBaseAddress, offset: u8
    ) -> starknet::SyscallResult<JobStatus> {
        let code = starknet::Store::<u8>::read_at_offset(address_domain, base, offset)?;
        starknet::SyscallResult::Ok(job_status_from_code(code))
    }
    fn write_at_offset(
        address_domain: u32, base: starknet::StorageBaseAddress, offset: u8, value: JobStatus
    ) -> starknet::SyscallResult<()> {
        starknet::Store::<u8>::write_at_offset(address_domain, base, offset, job_status_code(value))
    }
    fn size() -> u8 {
        1
    }
}

impl VerdictStore of starknet::Store<Verdict> {
    fn read(
        address_domain: u32, base: starknet::StorageBaseAddress
    ) -> starknet::SyscallResult<Verdict> {
        let code = starknet::Store::<u8>::read(address_domain, base)?;
        starknet::SyscallResult::Ok(verdict_from_code(code))
    }
    fn write(
        address_domain: u32, base: starknet::StorageBaseAddress, value: Verdict
    ) -> starknet::SyscallResult<()> {
        let code: felt252 = verdict_code(value);
        starknet::Store::<felt252>::write(address_domain, base, code)
    }
    fn read_at_offset(
        address_domain: u32, base: starknet::StorageBaseAddress, offset: u8
    ) -> starknet::SyscallResult<Verdict> {
        let code = starknet::Store::<u8>::read_at_offset(address_domain, base, offset)?;
        starknet::SyscallResult::Ok(verdict_from_code(code))
    }
    fn write_at_offset(
        address_domain: u32, base: starknet::StorageBaseAddress, offset: u8, value: Verdict
    ) -> starknet::SyscallResult<()> {
        let code: felt252 = verdict_code(value);
        starknet::Store::<felt252>::write_at_offset(address_domain, base, offset, code)
    }
    fn size() -> u8 {
        1
    }
}

/// A staker's position.
#[derive(Copy, Drop, Serde, starknet::Store)]
struct StakeInfo {
    /// Bonded SAGE (slashable, counts for the tier minimum).
    amount: u256,
    /// GPU tier: 0 T4, 1 L4, 2 A10, 3 A100, 4 H100, 5 H200.
    tier: u8,
    /// No unstake request before this block timestamp.
    locked_until: u64,
    /// SAGE leaving (still slashable) and when it can be withdrawn.
    pending: u256,
    pending_at: u64,
    /// Everything ever slashed from this account.
    slashed_total: u256,
}

/// StakingManager parameters.
#[derive(Copy, Drop, Serde)]
struct StakingConfig {
    token: ContractAddress,
    treasury: ContractAddress,
    validator_min_stake: u256,
    unstake_cooldown: u64,
    reporter_bps: u16,
}

/// Chaum–Pedersen decryption proof, `[a1.x, a1.y, a2.x, a2.y, s]` on the wire.
#[derive(Copy, Drop, Serde)]
struct DecryptionProof {
    a1x: felt252,
    a1y: felt252,
    a2x: felt252,
    a2y: felt252,
    s: felt252,
}

/// A registered worker.
#[derive(Copy, Drop, Serde, starknet::Store)]
struct WorkerInfo {
    registered: bool,
    /// TEE evidence: type (short string, e.g. 'TDX'), measurement hash, quote hash.
    tee_type: felt252,
    measurement_hash: felt252,
    quote_hash: felt252,
    /// ElGamal public key (affine point) payments are encrypted to.
    elgamal_pk_x: felt252,
    elgamal_pk_y: felt252,
    /// Digest of the libp2p peer id (31 bytes).
    peer_id: felt252,
    registered_at: u64,
}

/// A job in escrow.
#[derive(Copy, Drop, Serde, starknet::Store)]
struct Job {
    client: ContractAddress,
    spec_hash: felt252,
    payment: u256,
    deadline: u64,
    worker: ContractAddress,
    status: JobStatus,
    output_commitment: felt252,
    proof_hash: felt252,
}

/// Ownership, pausing and roles: every Sage settlement contract implements this.
#[starknet::interface]
trait IAdmin<TState> {
    fn owner(self: @TState) -> ContractAddress;
    /// The account proposed by `transfer_ownership`, zero when none.
    fn pending_owner(self: @TState) -> ContractAddress;
    /// Step one of two: the owner proposes `new_owner`.
    fn transfer_ownership(ref self: TState, new_owner: ContractAddress);
    /// Step two: the proposed owner takes over.
    fn accept_ownership(ref self: TState);
    fn is_paused(self: @TState) -> bool;
    fn pause(ref self: TState);
    fn unpause(ref self: TState);
    fn has_role(self: @TState, role: felt252, account: ContractAddress) -> bool;
    /// While the setup is open: grants at once. After `close_setup`: schedules the grant, carried
    /// out by `execute_role_grant` once the timelock has passed.
    fn grant_role(ref self: TState, role: felt252, account: ContractAddress);
    /// Carries out a scheduled grant whose delay has passed (anyone may call).
    fn execute_role_grant(ref self: TState, role: felt252, account: ContractAddress);
    /// Drops a scheduled grant (owner only).
    fn cancel_role_grant(ref self: TState, role: felt252, account: ContractAddress);
    /// When a scheduled grant may be carried out; 0 when none is scheduled.
    fn role_grant_ready_at(self: @TState, role: felt252, account: ContractAddress) -> u64;
    /// Immediate; also drops a scheduled grant.
    fn revoke_role(ref self: TState, role: felt252, account: ContractAddress);
    /// Ends the setup window for good (owner only): roles then move only behind the timelock and
    /// the deployment's wiring (payout, reputation) is fixed.
    fn close_setup(ref self: TState);
    fn is_setup_closed(self: @TState) -> bool;
}

#[starknet::interface]
trait IERC20<TState> {
    fn balance_of(self: @TState, account: ContractAddress) -> u256;
    fn transfer(ref self: TState, recipient: ContractAddress, amount: u256) -> bool;
    fn transfer_from(
        ref self: TState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) -> bool;
    fn approve(ref self: TState, spender: ContractAddress, amount: u256) -> bool;
}

#[starknet::interface]
trait IStakingManager<TState> {
    fn stake(ref self: TState, amount: u256, gpu_tier: u8, lock_duration: u64);
    fn request_unstake(ref self: TState, amount: u256);
    fn withdraw(ref self: TState);
    fn register_worker(
        ref self: TState,
        tee_type: felt252,
        measurement_hash: felt252,
        quote_hash: felt252,
        elgamal_public_key: (felt252, felt252),
        key_proof: (felt252, felt252, felt252),
        peer_id: felt252
    );
    fn register_validator(ref self: TState, public_key: felt252);
    fn slash(
        ref self: TState, account: ContractAddress, bps: u16, reason: felt252, reporter: ContractAddress
    ) -> u256;
    fn get_stake(self: @TState, account: ContractAddress) -> StakeInfo;
    fn get_worker(self: @TState, account: ContractAddress) -> WorkerInfo;
    fn is_registered(self: @TState, account: ContractAddress) -> bool;
    fn validator_key(self: @TState, account: ContractAddress) -> felt252;
    /// Bonds (a member of the current validator set) or unbonds a validator: while bonded, its
    /// stake cannot fall below the validator minimum by unstaking (BONDER only).
    fn set_bonded(ref self: TState, account: ContractAddress, bonded: bool);
    fn is_bonded(self: @TState, account: ContractAddress) -> bool;
    fn stake_status(self: @TState, account: ContractAddress, until: u64) -> u8;
    fn min_stake(self: @TState, tier: u8) -> u256;
    fn set_min_stake(ref self: TState, tier: u8, amount: u256);
    /// Owner only, while the setup is open.
    fn set_reputation(ref self: TState, reputation: ContractAddress);
    fn config(self: @TState) -> StakingConfig;
    fn total_staked(self: @TState) -> u256;
    fn verify_key_ownership(
        self: @TState,
        public_key: (felt252, felt252),
        proof: (felt252, felt252, felt252),
        context: Array<felt252>
    ) -> bool;
}

#[starknet::interface]
trait IReputationManager<TState> {
    fn init(ref self: TState, account: ContractAddress);
    fn record_completed(ref self: TState, account: ContractAddress);
    fn record_failed(ref self: TState, account: ContractAddress);
    fn record_slashed(ref self: TState, account: ContractAddress);
    /// (initialised, completed, failed, slashed).
    fn counts(self: @TState, account: ContractAddress) -> (bool, u64, u64, u64);
    fn score(self: @TState, account: ContractAddress) -> u32;
}

#[starknet::interface]
trait IJobManager<TState> {
    /// Escrows `payment` for the job `poseidon(caller, client_job_id)` and returns that id.
    fn create_job(
        ref self: TState, client_job_id: felt252, spec_hash: felt252, payment: u256, deadline: u64
    ) -> felt252;
    fn job_id_of(self: @TState, client: ContractAddress, client_job_id: felt252) -> felt252;
    fn cancel(ref self: TState, job_id: felt252);
    fn assign(ref self: TState, job_id: felt252, worker: ContractAddress, lease_seconds: u64);
    fn reassign(ref self: TState, job_id: felt252, worker: ContractAddress, lease_seconds: u64);
    fn lease_until(self: @TState, job_id: felt252) -> u64;
    fn submit_result(
        ref self: TState, job_id: felt252, output_commitment: felt252, proof_hash: felt252
    );
    fn on_verdict(ref self: TState, job_id: felt252, proof_hash: felt252, valid: bool);
    fn refund_expired(ref self: TState, job_id: felt252);
    fn get_job(self: @TState, job_id: felt252) -> Job;
    /// Owner only, while the setup is open.
    fn set_payout(ref self: TState, payout: ContractAddress);
    fn set_verdict_grace(ref self: TState, seconds: u64);
}

#[starknet::interface]
trait IProofVerifier<TState> {
    fn set_validators(
        ref self: TState, public_keys: Array<felt252>, accounts: Array<ContractAddress>
    );
    fn submit_qc(
        ref self: TState,
        job_id: felt252,
        proof_hash: felt252,
        verdict: Verdict,
        set_version: u64,
        signatures: Array<(u32, felt252, felt252)>
    );
    fn report_equivocation(
        ref self: TState,
        set_version: u64,
        validator_index: u32,
        job_id: felt252,
        proof_hash: felt252,
        first: (Verdict, felt252, felt252),
        second: (Verdict, felt252, felt252)
    );
    /// (version, size, threshold).
    fn validator_set(self: @TState) -> (u64, u32, u32);
    fn validator(self: @TState, index: u32) -> (felt252, ContractAddress);
    fn verdict(self: @TState, job_id: felt252) -> Verdict;
    fn verdict_proof(self: @TState, job_id: felt252) -> felt252;
    fn vote_hash(self: @TState, job_id: felt252, proof_hash: felt252, verdict: Verdict) -> felt252;
    /// (invalid-proof slash bps, equivocation slash bps).
    fn slash_rates(self: @TState) -> (u16, u16);
}

#[starknet::interface]
trait IPaymentRouter<TState> {
    fn submit_payment_with_proof(
        ref self: TState,
        worker: ContractAddress,
        job_id: felt252,
        randomness: felt252,
        proof_commitment: felt252,
        nonce: felt252
    );
    fn is_paid(self: @TState, job_id: felt252) -> bool;
    fn is_nonce_used(self: @TState, nonce: felt252) -> bool;
}

#[starknet::interface]
trait IPrivacyRouter<TState> {
    fn deposit(ref self: TState, amount: u256);
    /// Deposits `amount` into the pool as the escrow of `job_id` (JobManager, on a valid verdict).
    fn deposit_for_job(ref self: TState, job_id: felt252, amount: u256);
    /// What was deposited for `job_id` and not yet credited.
    fn job_deposit(self: @TState, job_id: felt252) -> u256;
    /// ROUTER only: credits `worker`'s pending balance with exactly the units deposited for
    /// `job_id`, encrypted here to the worker's registered key with `randomness`; returns the
    /// ciphertext.
    fn credit_payment(
        ref self: TState, worker: ContractAddress, job_id: felt252, randomness: felt252
    ) -> (felt252, felt252, felt252, felt252);
    /// The caller's pending credits join its available balance.
    fn rollover(ref self: TState);
    /// Claims the caller's whole available balance, proven to decrypt to `amount` units.
    fn claim(ref self: TState, amount: u64, proof: DecryptionProof);
    /// The available (claimable) encrypted balance.
    fn balance_of(self: @TState, worker: ContractAddress) -> (felt252, felt252, felt252, felt252);
    /// Credits not yet rolled over.
    fn pending_of(self: @TState, worker: ContractAddress) -> (felt252, felt252, felt252, felt252);
    fn claim_nonce(self: @TState, worker: ContractAddress) -> felt252;
    fn pool(self: @TState) -> u256;
    /// SAGE base units per encrypted unit.
    fn unit(self: @TState) -> u256;
    fn verify_decryption(
        self: @TState,
        public_key: (felt252, felt252),
        ciphertext: (felt252, felt252, felt252, felt252),
        amount: u64,
        proof: DecryptionProof,
        context: Array<felt252>
    ) -> bool;
}
