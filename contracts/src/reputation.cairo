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
    use sage::admin::{OwnershipTransferred, PauseChanged, RoleChanged};

    #[storage]
    struct Storage {
        owner: ContractAddress,
        paused: bool,
        roles: LegacyMap<(felt252, ContractAddress), bool>,
        initialised: LegacyMap<ContractAddress, bool>,
        completed: LegacyMap<ContractAddress, u64>,
        failed: LegacyMap<ContractAddress, u64>,
        slashed: LegacyMap<ContractAddress, u64>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        ReputationChanged: ReputationChanged,
        OwnershipTransferred: OwnershipTransferred,
        PauseChanged: PauseChanged,
        RoleChanged: RoleChanged,
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
        let owner_felt: felt252 = owner.into();
        assert(owner_felt != 0, 'REP: owner is zero');
        self.owner.write(owner);
    }

    #[abi(embed_v0)]
    impl AdminImpl of sage::interfaces::IAdmin<ContractState> {
        fn owner(self: @ContractState) -> ContractAddress {
            self.owner.read()
        }

        fn transfer_ownership(ref self: ContractState, new_owner: ContractAddress) {
            self._assert_owner();
            let new_felt: felt252 = new_owner.into();
            assert(new_felt != 0, 'REP: owner is zero');
            let previous_owner = self.owner.read();
            self.owner.write(new_owner);
            self.emit(OwnershipTransferred { previous_owner, new_owner });
        }

        fn is_paused(self: @ContractState) -> bool {
            self.paused.read()
        }

        fn pause(ref self: ContractState) {
            self._assert_owner();
            self.paused.write(true);
            self.emit(PauseChanged { paused: true });
        }

        fn unpause(ref self: ContractState) {
            self._assert_owner();
            self.paused.write(false);
            self.emit(PauseChanged { paused: false });
        }

        fn has_role(self: @ContractState, role: felt252, account: ContractAddress) -> bool {
            self.roles.read((role, account))
        }

        fn grant_role(ref self: ContractState, role: felt252, account: ContractAddress) {
            self._assert_owner();
            self.roles.write((role, account), true);
            self.emit(RoleChanged { role, account, granted: true });
        }

        fn revoke_role(ref self: ContractState, role: felt252, account: ContractAddress) {
            self._assert_owner();
            self.roles.write((role, account), false);
            self.emit(RoleChanged { role, account, granted: false });
        }
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
            if self.paused.read() {
                return;
            }
            self.initialised.write(account, true);
            self.completed.write(account, self.completed.read(account) + 1);
            self.emit(ReputationChanged { account, kind: 'completed', score: self._score(account) });
        }

        fn record_failed(ref self: ContractState, account: ContractAddress) {
            self._assert_writer();
            if self.paused.read() {
                return;
            }
            self.initialised.write(account, true);
            self.failed.write(account, self.failed.read(account) + 1);
            self.emit(ReputationChanged { account, kind: 'failed', score: self._score(account) });
        }

        fn record_slashed(ref self: ContractState, account: ContractAddress) {
            self._assert_writer();
            if self.paused.read() {
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
        fn _assert_owner(self: @ContractState) {
            assert(get_caller_address() == self.owner.read(), 'REP: caller is not owner');
        }

        fn _assert_writer(self: @ContractState) {
            assert(self.roles.read((ROLE_WRITER, get_caller_address())), 'REP: not writer');
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
