//! Ownership (two-step), pausing and roles: one component every settlement contract embeds.
//!
//! A contract embeds `AdminComponent` (storage under `admin`, events `#[flat]` so their keys are
//! the same as if the contract declared them) and implements `AdminErrors` to name its own revert
//! reasons (`JOB: caller is not owner`, `JOB: paused`, ...). Ownership moves in two steps: the
//! owner proposes (`transfer_ownership`), the proposed account accepts (`accept_ownership`); a
//! typo in the new owner's address can therefore never lock a contract.
//!
//! Roles are fixed at deployment, then move only behind a timelock: while the setup is open the
//! owner grants roles at once and sets the deployment's wiring (payout, reputation); `close_setup`
//! ends that for good. After it, `grant_role` only schedules the grant, which anyone may carry out
//! with `execute_role_grant` once `ROLE_GRANT_DELAY` has passed (the owner may cancel it before),
//! so a stake holder sees an owner granting itself SLASHER eight days ahead, longer than the
//! default unstake cooldown, and can leave first. Revoking is immediate (it only takes power away).

use starknet::ContractAddress;

#[derive(Drop, starknet::Event)]
struct OwnershipTransferStarted {
    #[key]
    previous_owner: ContractAddress,
    #[key]
    new_owner: ContractAddress,
}

#[derive(Drop, starknet::Event)]
struct OwnershipTransferred {
    #[key]
    previous_owner: ContractAddress,
    #[key]
    new_owner: ContractAddress,
}

#[derive(Drop, starknet::Event)]
struct PauseChanged {
    paused: bool,
}

#[derive(Drop, starknet::Event)]
struct RoleChanged {
    #[key]
    role: felt252,
    #[key]
    account: ContractAddress,
    granted: bool,
}

/// A role grant waits for the timelock (`ready_at` seconds); `ready_at` 0: a cancelled grant.
#[derive(Drop, starknet::Event)]
struct RoleGrantScheduled {
    #[key]
    role: felt252,
    #[key]
    account: ContractAddress,
    ready_at: u64,
}

/// The setup window closed: roles now move only behind the timelock.
#[derive(Drop, starknet::Event)]
struct SetupClosed {}

/// Seconds between scheduling a role grant (once the setup is closed) and the grant: eight days,
/// one more than the default unstake cooldown.
const ROLE_GRANT_DELAY: u64 = 691200;

#[derive(Drop, starknet::Event)]
struct ConfigChanged {
    #[key]
    key: felt252,
    value: felt252,
}

/// The revert reasons of the contract embedding the component.
trait AdminErrors<TContractState> {
    /// The caller is not the owner (`X: caller is not owner`).
    fn not_owner(self: @TContractState) -> felt252;
    /// The contract is paused (`X: paused`).
    fn paused(self: @TContractState) -> felt252;
    /// A zero owner was given (`X: owner is zero`).
    fn zero_owner(self: @TContractState) -> felt252;
    /// The caller is not the proposed owner (`X: not pending owner`).
    fn not_pending_owner(self: @TContractState) -> felt252;
    /// A setup-only call after `close_setup` (`X: setup closed`).
    fn setup_closed(self: @TContractState) -> felt252;
    /// No grant scheduled, or its delay has not passed (`X: grant not ready`).
    fn grant_not_ready(self: @TContractState) -> felt252;
}

#[starknet::component]
mod AdminComponent {
    use starknet::{ContractAddress, get_caller_address, get_block_timestamp, contract_address_const};
    use super::{
        AdminErrors, OwnershipTransferStarted, OwnershipTransferred, PauseChanged, RoleChanged,
        RoleGrantScheduled, SetupClosed, ROLE_GRANT_DELAY
    };

    #[storage]
    struct Storage {
        owner: ContractAddress,
        pending_owner: ContractAddress,
        paused: bool,
        roles: LegacyMap<(felt252, ContractAddress), bool>,
        setup_closed: bool,
        /// When each scheduled grant may be carried out (0: none scheduled).
        grant_ready_at: LegacyMap<(felt252, ContractAddress), u64>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        OwnershipTransferStarted: OwnershipTransferStarted,
        OwnershipTransferred: OwnershipTransferred,
        PauseChanged: PauseChanged,
        RoleChanged: RoleChanged,
        RoleGrantScheduled: RoleGrantScheduled,
        SetupClosed: SetupClosed,
    }

    #[embeddable_as(AdminImpl)]
    impl Admin<
        TContractState, +HasComponent<TContractState>, +AdminErrors<TContractState>
    > of sage::interfaces::IAdmin<ComponentState<TContractState>> {
        fn owner(self: @ComponentState<TContractState>) -> ContractAddress {
            self.owner.read()
        }

        fn pending_owner(self: @ComponentState<TContractState>) -> ContractAddress {
            self.pending_owner.read()
        }

        fn transfer_ownership(ref self: ComponentState<TContractState>, new_owner: ContractAddress) {
            self.assert_owner();
            let new_felt: felt252 = new_owner.into();
            assert(new_felt != 0, AdminErrors::zero_owner(self.get_contract()));
            self.pending_owner.write(new_owner);
            self.emit(OwnershipTransferStarted { previous_owner: self.owner.read(), new_owner });
        }

        fn accept_ownership(ref self: ComponentState<TContractState>) {
            let caller = get_caller_address();
            let pending = self.pending_owner.read();
            let pending_felt: felt252 = pending.into();
            assert(
                pending_felt != 0 && caller == pending, AdminErrors::not_pending_owner(self.get_contract())
            );
            let previous_owner = self.owner.read();
            self.owner.write(caller);
            self.pending_owner.write(contract_address_const::<0>());
            self.emit(OwnershipTransferred { previous_owner, new_owner: caller });
        }

        fn is_paused(self: @ComponentState<TContractState>) -> bool {
            self.paused.read()
        }

        fn pause(ref self: ComponentState<TContractState>) {
            self.assert_owner();
            self.paused.write(true);
            self.emit(PauseChanged { paused: true });
        }

        fn unpause(ref self: ComponentState<TContractState>) {
            self.assert_owner();
            self.paused.write(false);
            self.emit(PauseChanged { paused: false });
        }

        fn has_role(
            self: @ComponentState<TContractState>, role: felt252, account: ContractAddress
        ) -> bool {
            self.roles.read((role, account))
        }

        fn grant_role(ref self: ComponentState<TContractState>, role: felt252, account: ContractAddress) {
            self.assert_owner();
            if self.setup_closed.read() {
                let ready_at = get_block_timestamp() + ROLE_GRANT_DELAY;
                self.grant_ready_at.write((role, account), ready_at);
                self.emit(RoleGrantScheduled { role, account, ready_at });
            } else {
                self.roles.write((role, account), true);
                self.emit(RoleChanged { role, account, granted: true });
            }
        }

        fn execute_role_grant(ref self: ComponentState<TContractState>, role: felt252, account: ContractAddress) {
            let ready_at = self.grant_ready_at.read((role, account));
            assert(
                ready_at != 0 && get_block_timestamp() >= ready_at,
                AdminErrors::grant_not_ready(self.get_contract())
            );
            self.grant_ready_at.write((role, account), 0);
            self.roles.write((role, account), true);
            self.emit(RoleChanged { role, account, granted: true });
        }

        fn cancel_role_grant(ref self: ComponentState<TContractState>, role: felt252, account: ContractAddress) {
            self.assert_owner();
            self.grant_ready_at.write((role, account), 0);
            self.emit(RoleGrantScheduled { role, account, ready_at: 0 });
        }

        fn role_grant_ready_at(
            self: @ComponentState<TContractState>, role: felt252, account: ContractAddress
        ) -> u64 {
            self.grant_ready_at.read((role, account))
        }

        fn revoke_role(ref self: ComponentState<TContractState>, role: felt252, account: ContractAddress) {
            self.assert_owner();
            self.roles.write((role, account), false);
            if self.grant_ready_at.read((role, account)) != 0 {
                self.grant_ready_at.write((role, account), 0);
                self.emit(RoleGrantScheduled { role, account, ready_at: 0 });
            }
            self.emit(RoleChanged { role, account, granted: false });
        }

        fn close_setup(ref self: ComponentState<TContractState>) {
            self.assert_owner();
            self.assert_setup_open();
            self.setup_closed.write(true);
            self.emit(SetupClosed {});
        }

        fn is_setup_closed(self: @ComponentState<TContractState>) -> bool {
            self.setup_closed.read()
        }
    }

    #[generate_trait]
    impl InternalImpl<
        TContractState, +HasComponent<TContractState>, +AdminErrors<TContractState>
    > of InternalTrait<TContractState> {
        /// Sets the first owner (never zero).
        fn initializer(ref self: ComponentState<TContractState>, owner: ContractAddress) {
            let owner_felt: felt252 = owner.into();
            assert(owner_felt != 0, AdminErrors::zero_owner(self.get_contract()));
            self.owner.write(owner);
        }

        /// Reverts unless the caller is the owner.
        fn assert_owner(self: @ComponentState<TContractState>) {
            assert(get_caller_address() == self.owner.read(), AdminErrors::not_owner(self.get_contract()));
        }

        /// Reverts once `close_setup` has run (the deployment's wiring is fixed).
        fn assert_setup_open(self: @ComponentState<TContractState>) {
            assert(!self.setup_closed.read(), AdminErrors::setup_closed(self.get_contract()));
        }

        /// Reverts while paused.
        fn assert_not_paused(self: @ComponentState<TContractState>) {
            assert(!self.paused.read(), AdminErrors::paused(self.get_contract()));
        }

        /// Whether the caller holds `role`.
        fn caller_has(self: @ComponentState<TContractState>, role: felt252) -> bool {
            self.roles.read((role, get_caller_address()))
        }

        /// Whether `account` holds `role`.
        fn holds(self: @ComponentState<TContractState>, role: felt252, account: ContractAddress) -> bool {
            self.roles.read((role, account))
        }

        /// Whether the contract is paused.
        fn is_paused_now(self: @ComponentState<TContractState>) -> bool {
            self.paused.read()
        }
    }
}
