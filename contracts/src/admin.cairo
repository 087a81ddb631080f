//! Events shared by every settlement contract's ownership, pause and role management.

use starknet::ContractAddress;

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
