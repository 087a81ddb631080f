/// Per-account job record and score, written only by holders of the WRITER role
/// (StakingManager on registration, JobManager, ProofVerifier).
///
/// score = clamp(500 + 10·completed − 25·failed − 100·slashed, 0, 1000); 0 when not initialised.
/// Reverts: `REP: not writer`, `REP: caller is not owner`. Recording never reverts for a pause or
/// an account not seen before (a paused manager records nothing): it runs inside other contracts'
/// exits and verdicts.
#[starknet::contract]
mod ReputationManager {
    use starknet::{ContractAddress, get_caller_address};
    use sage::interfaces::ROLE_WRITER;
    use sage::admin::{AdminComponent, AdminErrors};

    component!(path: AdminComponent, storage: admin, event: AdminEvent);

    #[abi(embed_v0)]
    impl AdminImpl = AdminComponent::AdminImpl<ContractState>;
    impl AdminInternalImpl = AdminComponent::InternalImpl<ContractState>;

    impl Errors of AdminErrors<ContractState> {
        fn not_owner(self: @ContractState) -> felt252 {
            'REP: caller is not owner'
        }

        fn paused(self: @ContractState) -> felt252 {
            'REP: paused'
        }

        fn zero_owner(self: @ContractState) -> felt252 {
            'REP: owner is zero'
        }

        fn not_pending_owner(self: @ContractState) -> felt252 {
            'REP: not pending owner'
        }

        fn setup_closed(self: @ContractState) -> felt252 {
            'REP: setup closed'
        }

        fn grant_not_ready(self: @ContractState) -> felt252 {
            'REP: grant not ready'
        }
    }

    #[storage]
    struct Storage {
        #[substorage(v0)]
        admin: AdminComponent::Storage,
        initialised: LegacyMap<ContractAddress, bool>,
        completed: LegacyMap<ContractAddress, u64>,
        failed: LegacyMap<ContractAddress, u64>,
        slashed: LegacyMap<ContractAddress, u64>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        ReputationChanged: ReputationChanged,
        #[flat]
        AdminEvent: AdminComponent::Event,
    }

    /// `kind`: 'init', 'completed', 'failed' or 'slashed'.
    #[derive(Drop, starknet::Event)]
    struct ReputationChanged {
        #[key]
        account: ContractAddress,
        kind: felt252,
        score: u32,
    }

    #[constructor]
    fn constructor(ref self: ContractState, owner: ContractAddress) {
        self.admin.initializer(owner);
    }

    #[abi(embed_v0)]
    impl ReputationImpl of sage::interfaces::IReputationManager<ContractState> {
        fn init(ref self: ContractState, account: ContractAddress) {
            self._assert_writer();
            self.initialised.write(account, true);
            self.emit(ReputationChanged { account, kind: 'init', score: self._score(account) });
        }

        fn record_completed(ref self: ContractState, account: ContractAddress) {
            self._assert_writer();
            // Bookkeeping for another contract's exit or verdict: never a reason for it to revert.
            // Paused: nothing is recorded; an account seen first here is initialised.
            if self.admin.is_paused_now() {
                return;
            }
            self.initialised.write(account, true);
            self.completed.write(account, self.completed.read(account) + 1);
            self.emit(ReputationChanged { account, kind: 'completed', score: self._score(account) });
        }

        fn record_failed(ref self: ContractState, account: ContractAddress) {
            self._assert_writer();
            if self.admin.is_paused_now() {
                return;
            }
            self.initialised.write(account, true);
            self.failed.write(account, self.failed.read(account) + 1);
            self.emit(ReputationChanged { account, kind: 'failed', score: self._score(account) });
        }

        fn record_slashed(ref self: ContractState, account: ContractAddress) {
            self._assert_writer();
            if self.admin.is_paused_now() {
                return;
            }
            // Validators are slashed too and may never have been initialised as workers.
            self.initialised.write(account, true);
            self.slashed.write(account, self.slashed.read(account) + 1);
            self.emit(ReputationChanged { account, kind: 'slashed', score: self._score(account) });
        }

        fn counts(self: @ContractState, account: ContractAddress) -> (bool, u64, u64, u64) {
            (
                self.initialised.read(account),
                self.completed.read(account),
                self.failed.read(account),
                self.slashed.read(account)
            )
        }

        fn score(self: @ContractState, account: ContractAddress) -> u32 {
            self._score(account)
        }
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _assert_writer(self: @ContractState) {
            assert(self.admin.caller_has(ROLE_WRITER), 'REP: not writer');
        }


        fn _score(self: @ContractState, account: ContractAddress) -> u32 {
            if !self.initialised.read(account) {
                return 0;
            }
            let plus: u128 = 500 + 10 * self.completed.read(account).into();
            let minus: u128 = 25 * self.failed.read(account).into()
                + 100 * self.slashed.read(account).into();
            if minus >= plus {
                return 0;
            }
            let s = plus - minus;
            if s > 1000 {
                1000
            } else {
                s.try_into().unwrap()
            }
        }
    }
}
