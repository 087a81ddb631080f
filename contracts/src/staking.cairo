/// Stakes, tiers, worker and validator registration, slashing.
///
/// Reverts: `STAKE: unknown tier`, `STAKE: zero amount`, `STAKE: below tier minimum`,
/// `STAKE: exceeds stake`, `STAKE: locked`, `STAKE: nothing pending`, `STAKE: cooldown active`,
/// `STAKE: insufficient stake`, `STAKE: missing TEE evidence`, `STAKE: bad key proof`,
/// `STAKE: bad bps`, `STAKE: not slasher`, `STAKE: paused`, `STAKE: caller is not owner`.
#[starknet::contract]
mod StakingManager {
    use starknet::{
        ContractAddress, get_caller_address, get_contract_address, get_block_timestamp, get_tx_info
    };
    use sage::interfaces::{
        IERC20Dispatcher, IERC20DispatcherTrait, IReputationManagerDispatcher,
        IReputationManagerDispatcherTrait, StakeInfo, WorkerInfo, StakingConfig, ROLE_SLASHER, ROLE_BONDER, STAKE_VALID,
        STAKE_INSUFFICIENT, STAKE_UNLOCKED
    };
    use sage::admin::{ROLE_GRANT_DELAY, AdminComponent, AdminErrors, ConfigChanged};

    component!(path: AdminComponent, storage: admin, event: AdminEvent);

    #[abi(embed_v0)]
    impl AdminImpl = AdminComponent::AdminImpl<ContractState>;
    impl AdminInternalImpl = AdminComponent::InternalImpl<ContractState>;

    impl Errors of AdminErrors<ContractState> {
        fn not_owner(self: @ContractState) -> felt252 {
            'STAKE: caller is not owner'
        }

        fn paused(self: @ContractState) -> felt252 {
            'STAKE: paused'
        }

        fn zero_owner(self: @ContractState) -> felt252 {
            'STAKE: owner is zero'
        }

        fn not_pending_owner(self: @ContractState) -> felt252 {
            'STAKE: not pending owner'
        }

        fn setup_closed(self: @ContractState) -> felt252 {
            'STAKE: setup closed'
        }

        fn grant_not_ready(self: @ContractState) -> felt252 {
            'STAKE: grant not ready'
        }
    }
    use sage::crypto;

    const NUM_TIERS: u8 = 6;
    const BPS: u256 = 10000;
    /// The most one slash takes (basis points): no single call, by whoever holds SLASHER, wipes a
    /// stake out.
    const MAX_SLASH_BPS: u16 = 5000;

    #[storage]
    struct Storage {
        #[substorage(v0)]
        admin: AdminComponent::Storage,
        token: ContractAddress,
        treasury: ContractAddress,
        reputation: ContractAddress,
        min_stake: LegacyMap<u8, u256>,
        validator_min_stake: u256,
        unstake_cooldown: u64,
        reporter_bps: u16,
        stakes: LegacyMap<ContractAddress, StakeInfo>,
        workers: LegacyMap<ContractAddress, WorkerInfo>,
        // Who registered a quote hash / peer id first: nobody else may present it as theirs.
        quote_owners: LegacyMap<felt252, ContractAddress>,
        peer_owners: LegacyMap<felt252, ContractAddress>,
        validator_keys: LegacyMap<ContractAddress, felt252>,
        // Members of the current validator set: their stake stays at the validator minimum.
        bonded: LegacyMap<ContractAddress, bool>,
        total_staked: u256,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        Staked: Staked,
        UnstakeRequested: UnstakeRequested,
        Withdrawn: Withdrawn,
        WorkerRegistered: WorkerRegistered,
        ValidatorRegistered: ValidatorRegistered,
        Slashed: Slashed,
        MinStakeChanged: MinStakeChanged,
        BondChanged: BondChanged,
        #[flat]
        AdminEvent: AdminComponent::Event,
        ConfigChanged: ConfigChanged,
    }

    #[derive(Drop, starknet::Event)]
    struct Staked {
        #[key]
        account: ContractAddress,
        amount: u256,
        total: u256,
        tier: u8,
        locked_until: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct UnstakeRequested {
        #[key]
        account: ContractAddress,
        amount: u256,
        available_at: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct Withdrawn {
        #[key]
        account: ContractAddress,
        amount: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct WorkerRegistered {
        #[key]
        worker: ContractAddress,
        tee_type: felt252,
        measurement_hash: felt252,
        quote_hash: felt252,
        elgamal_pk_x: felt252,
        elgamal_pk_y: felt252,
        peer_id: felt252,
    }

    #[derive(Drop, starknet::Event)]
    struct ValidatorRegistered {
        #[key]
        validator: ContractAddress,
        public_key: felt252,
    }

    #[derive(Drop, starknet::Event)]
    struct Slashed {
        #[key]
        account: ContractAddress,
        #[key]
        reason: felt252,
        amount: u256,
        reporter: ContractAddress,
        reporter_reward: u256,
        treasury_amount: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct BondChanged {
        #[key]
        account: ContractAddress,
        bonded: bool,
    }

    #[derive(Drop, starknet::Event)]
    struct MinStakeChanged {
        tier: u8,
        amount: u256,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        token: ContractAddress,
        owner: ContractAddress,
        treasury: ContractAddress,
        min_stakes: Array<u256>,
        validator_min_stake: u256,
        unstake_cooldown: u64,
        reporter_bps: u16
    ) {
        let treasury_felt: felt252 = treasury.into();
        assert(treasury_felt != 0, 'STAKE: treasury is zero');
        assert(min_stakes.len() == NUM_TIERS.into(), 'STAKE: need 6 tier minimums');
        assert(reporter_bps <= 10000, 'STAKE: bad bps');
        // A stake holder who sees a SLASHER grant scheduled can always unstake before it lands.
        assert(unstake_cooldown < ROLE_GRANT_DELAY, 'STAKE: cooldown too long');
        self.admin.initializer(owner);
        self.token.write(token);
        self.treasury.write(treasury);
        self.validator_min_stake.write(validator_min_stake);
        self.unstake_cooldown.write(unstake_cooldown);
        self.reporter_bps.write(reporter_bps);
        let mut tier: u8 = 0;
        let mut mins = min_stakes.span();
        loop {
            match mins.pop_front() {
                Option::Some(m) => {
                    self.min_stake.write(tier, *m);
                    tier += 1;
                },
                Option::None => { break; },
            };
        };
    }

    #[abi(embed_v0)]
    impl StakingImpl of sage::interfaces::IStakingManager<ContractState> {
        fn stake(ref self: ContractState, amount: u256, gpu_tier: u8, lock_duration: u64) {
            self.admin.assert_not_paused();
            assert(gpu_tier < NUM_TIERS, 'STAKE: unknown tier');
            assert(amount != 0, 'STAKE: zero amount');
            let account = get_caller_address();
            let mut info = self.stakes.read(account);
            let total = info.amount + amount;
            assert(total >= self.min_stake.read(gpu_tier), 'STAKE: below tier minimum');
            let lock_end = get_block_timestamp() + lock_duration;
            if lock_end > info.locked_until {
                info.locked_until = lock_end;
            }
            info.amount = total;
            info.tier = gpu_tier;
            self.stakes.write(account, info);
            self.total_staked.write(self.total_staked.read() + amount);
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(
                token.transfer_from(account, get_contract_address(), amount),
                'STAKE: transfer failed'
            );
            self
                .emit(
                    Staked {
                        account, amount, total, tier: gpu_tier, locked_until: info.locked_until
                    }
                );
        }

        fn request_unstake(ref self: ContractState, amount: u256) {
            self.admin.assert_not_paused();
            assert(amount != 0, 'STAKE: zero amount');
            let account = get_caller_address();
            let mut info = self.stakes.read(account);
            assert(amount <= info.amount, 'STAKE: exceeds stake');
            let now = get_block_timestamp();
            assert(now >= info.locked_until, 'STAKE: locked');
            // A member of the validator set keeps the validator minimum bonded for as long as it
            // votes: leaving with the stake would make its equivocation free.
            if self.bonded.read(account) {
                assert(
                    info.amount - amount >= self.validator_min_stake.read(), 'STAKE: validator bonded'
                );
            }
            info.amount -= amount;
            info.pending += amount;
            info.pending_at = now + self.unstake_cooldown.read();
            self.stakes.write(account, info);
            self.emit(UnstakeRequested { account, amount, available_at: info.pending_at });
        }

        fn withdraw(ref self: ContractState) {
            // An exit: never paused (the lock and the cooldown still apply).
            let account = get_caller_address();
            let mut info = self.stakes.read(account);
            let amount = info.pending;
            assert(amount != 0, 'STAKE: nothing pending');
            assert(get_block_timestamp() >= info.pending_at, 'STAKE: cooldown active');
            info.pending = 0;
            self.stakes.write(account, info);
            self.total_staked.write(self.total_staked.read() - amount);
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer(account, amount), 'STAKE: transfer failed');
            self.emit(Withdrawn { account, amount });
        }

        fn register_worker(
            ref self: ContractState,
            tee_type: felt252,
            measurement_hash: felt252,
            quote_hash: felt252,
            elgamal_public_key: (felt252, felt252),
            key_proof: (felt252, felt252, felt252),
            peer_id: felt252
        ) {
            self.admin.assert_not_paused();
            let worker = get_caller_address();
            let info = self.stakes.read(worker);
            assert(
                info.amount != 0 && info.amount >= self.min_stake.read(info.tier),
                'STAKE: insufficient stake'
            );
            assert(
                tee_type != 0 && measurement_hash != 0 && quote_hash != 0,
                'STAKE: missing TEE evidence'
            );
            // The proof is bound to this chain, this contract and this caller.
            let worker_felt: felt252 = worker.into();
            let this_felt: felt252 = get_contract_address().into();
            let context = array![get_tx_info().unbox().chain_id, this_felt, worker_felt];
            assert(
                crypto::verify_key_ownership(elgamal_public_key, key_proof, context.span()),
                'STAKE: bad key proof'
            );
            // A quote or a peer id copied from another worker is refused: each belongs to the
            // first worker that registered it (re-registering with one's own is fine).
            let quote_owner: felt252 = self.quote_owners.read(quote_hash).into();
            assert(quote_owner == 0 || quote_owner == worker_felt, 'STAKE: quote already used');
            assert(peer_id != 0, 'STAKE: missing peer id');
            let peer_owner: felt252 = self.peer_owners.read(peer_id).into();
            assert(peer_owner == 0 || peer_owner == worker_felt, 'STAKE: peer id taken');
            self.quote_owners.write(quote_hash, worker);
            self.peer_owners.write(peer_id, worker);
            let (pkx, pky) = elgamal_public_key;
            let was_registered = self.workers.read(worker).registered;
            self
                .workers
                .write(
                    worker,
                    WorkerInfo {
                        registered: true,
                        tee_type,
                        measurement_hash,
                        quote_hash,
                        elgamal_pk_x: pkx,
                        elgamal_pk_y: pky,
                        peer_id,
                        registered_at: get_block_timestamp(),
                    }
                );
            let reputation = self.reputation.read();
            let reputation_felt: felt252 = reputation.into();
            if !was_registered && reputation_felt != 0 {
                IReputationManagerDispatcher { contract_address: reputation }.init(worker);
            }
            self
                .emit(
                    WorkerRegistered {
                        worker,
                        tee_type,
                        measurement_hash,
                        quote_hash,
                        elgamal_pk_x: pkx,
                        elgamal_pk_y: pky,
                        peer_id
                    }
                );
        }

        fn register_validator(ref self: ContractState, public_key: felt252) {
            self.admin.assert_not_paused();
            let validator = get_caller_address();
            let info = self.stakes.read(validator);
            assert(
                info.amount != 0 && info.amount >= self.validator_min_stake.read(),
                'STAKE: insufficient stake'
            );
            assert(public_key != 0, 'STAKE: zero key');
            self.validator_keys.write(validator, public_key);
            self.emit(ValidatorRegistered { validator, public_key });
        }

        fn slash(
            ref self: ContractState,
            account: ContractAddress,
            bps: u16,
            reason: felt252,
            reporter: ContractAddress
        ) -> u256 {
            assert(self.admin.caller_has(ROLE_SLASHER), 'STAKE: not slasher');
            assert(bps != 0 && bps <= MAX_SLASH_BPS, 'STAKE: bad bps');
            let mut info = self.stakes.read(account);
            let slashable = info.amount + info.pending;
            let bps256: u256 = bps.into();
            let amount = slashable * bps256 / BPS;
            if amount <= info.amount {
                info.amount -= amount;
            } else {
                info.pending -= amount - info.amount;
                info.amount = 0;
            }
            info.slashed_total += amount;
            self.stakes.write(account, info);
            self.total_staked.write(self.total_staked.read() - amount);
            let reporter_felt: felt252 = reporter.into();
            let reporter_reward = if reporter_felt != 0 {
                let r: u256 = self.reporter_bps.read().into();
                amount * r / BPS
            } else {
                0
            };
            let treasury_amount = amount - reporter_reward;
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            if reporter_reward != 0 {
                assert(token.transfer(reporter, reporter_reward), 'STAKE: transfer failed');
            }
            if treasury_amount != 0 {
                assert(
                    token.transfer(self.treasury.read(), treasury_amount), 'STAKE: transfer failed'
                );
            }
            self
                .emit(
                    Slashed { account, reason, amount, reporter, reporter_reward, treasury_amount }
                );
            amount
        }

        fn get_stake(self: @ContractState, account: ContractAddress) -> StakeInfo {
            self.stakes.read(account)
        }

        fn get_worker(self: @ContractState, account: ContractAddress) -> WorkerInfo {
            self.workers.read(account)
        }

        fn is_registered(self: @ContractState, account: ContractAddress) -> bool {
            self.workers.read(account).registered
        }

        fn validator_key(self: @ContractState, account: ContractAddress) -> felt252 {
            self.validator_keys.read(account)
        }

        fn set_bonded(ref self: ContractState, account: ContractAddress, bonded: bool) {
            assert(self.admin.caller_has(ROLE_BONDER), 'STAKE: not bonder');
            if self.bonded.read(account) != bonded {
                self.bonded.write(account, bonded);
                self.emit(BondChanged { account, bonded });
            }
        }

        fn is_bonded(self: @ContractState, account: ContractAddress) -> bool {
            self.bonded.read(account)
        }

        fn stake_status(self: @ContractState, account: ContractAddress, until: u64) -> u8 {
            let info = self.stakes.read(account);
            if info.amount == 0 || info.amount < self.min_stake.read(info.tier) {
                return STAKE_INSUFFICIENT;
            }
            if info.locked_until < until {
                return STAKE_UNLOCKED;
            }
            STAKE_VALID
        }

        fn min_stake(self: @ContractState, tier: u8) -> u256 {
            self.min_stake.read(tier)
        }

        fn set_min_stake(ref self: ContractState, tier: u8, amount: u256) {
            self.admin.assert_owner();
            assert(tier < NUM_TIERS, 'STAKE: unknown tier');
            self.min_stake.write(tier, amount);
            self.emit(MinStakeChanged { tier, amount });
        }

        fn set_reputation(ref self: ContractState, reputation: ContractAddress) {
            self.admin.assert_owner();
            self.admin.assert_setup_open();
            self.reputation.write(reputation);
            self.emit(ConfigChanged { key: 'reputation', value: reputation.into() });
        }

        fn config(self: @ContractState) -> StakingConfig {
            StakingConfig {
                token: self.token.read(),
                treasury: self.treasury.read(),
                validator_min_stake: self.validator_min_stake.read(),
                unstake_cooldown: self.unstake_cooldown.read(),
                reporter_bps: self.reporter_bps.read()
            }
        }

        fn total_staked(self: @ContractState) -> u256 {
            self.total_staked.read()
        }

        fn verify_key_ownership(
            self: @ContractState,
            public_key: (felt252, felt252),
            proof: (felt252, felt252, felt252),
            context: Array<felt252>
        ) -> bool {
            crypto::verify_key_ownership(public_key, proof, context.span())
        }
    }

}
