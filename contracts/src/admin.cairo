//! Ownership (two-step), pausing and roles: one component every settlement contract embeds.
//!
//! A contract embeds `AdminComponent` (storage under `admin`, events `#[flat]` so their keys are
//! the same as if the contract declared them) and implements `AdminErrors` to name its own revert
//! reasons (`JOB: caller is not owner`, `JOB: paused`, ...). Ownership moves in two steps: the
//! owner proposes (`transfer_ownership`), the proposed account accepts (`accept_ownership`); a
//! typo in the new owner's address can therefore never lock a contract.

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
}

#[starknet::component]
mod AdminComponent {
    use starknet::{ContractAddress, get_caller_address, contract_address_const};
    use super::{
        AdminErrors, OwnershipTransferStarted, OwnershipTransferred, PauseChanged, RoleChanged
    };

    #[storage]
    struct Storage {
        owner: ContractAddress,
        pending_owner: ContractAddress,
        paused: bool,
        roles: LegacyMap<(felt252, ContractAddress), bool>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        OwnershipTransferStarted: OwnershipTransferStarted,
        OwnershipTransferred: OwnershipTransferred,
        PauseChanged: PauseChanged,
        RoleChanged: RoleChanged,
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
            self.roles.write((role, account), true);
            self.emit(RoleChanged { role, account, granted: true });
        }

        fn revoke_role(ref self: ComponentState<TContractState>, role: felt252, account: ContractAddress) {
            self.assert_owner();
            self.roles.write((role, account), false);
            self.emit(RoleChanged { role, account, granted: false });
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
