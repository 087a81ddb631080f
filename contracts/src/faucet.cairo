use starknet::ContractAddress;

/// A SAGE faucet: every address may take `drip_amount` once per `cooldown` seconds.
#[starknet::interface]
trait IFaucet<TState> {
    fn drip(ref self: TState);
    fn refill(ref self: TState, amount: u256);
    fn set_drip_amount(ref self: TState, amount: u256);
    fn set_cooldown(ref self: TState, cooldown: u64);
    fn token(self: @TState) -> ContractAddress;
    fn owner(self: @TState) -> ContractAddress;
    fn drip_amount(self: @TState) -> u256;
    fn cooldown(self: @TState) -> u64;
    fn last_drip(self: @TState, account: ContractAddress) -> u64;
    /// Earliest block timestamp at which `account` may drip again (0: now).
    fn next_drip_at(self: @TState, account: ContractAddress) -> u64;
    fn available(self: @TState) -> u256;
}

#[starknet::interface]
trait IERC20<TState> {
    fn balance_of(self: @TState, account: ContractAddress) -> u256;
    fn transfer(ref self: TState, recipient: ContractAddress, amount: u256) -> bool;
    fn transfer_from(
        ref self: TState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) -> bool;
}

#[starknet::contract]
mod Faucet {
    use starknet::{ContractAddress, get_caller_address, get_contract_address, get_block_timestamp};
    use super::{IERC20Dispatcher, IERC20DispatcherTrait};

    #[storage]
    struct Storage {
        token: ContractAddress,
        owner: ContractAddress,
        drip_amount: u256,
        cooldown: u64,
        // Timestamp of the last drip per address; an address that never dripped reads 0.
        last_drip: LegacyMap<ContractAddress, u64>,
        has_dripped: LegacyMap<ContractAddress, bool>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        Dripped: Dripped,
        Refilled: Refilled,
        ConfigChanged: ConfigChanged,
    }

    #[derive(Drop, starknet::Event)]
    struct Dripped {
        #[key]
        recipient: ContractAddress,
        amount: u256,
        next_drip_at: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct Refilled {
        #[key]
        from: ContractAddress,
        amount: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct ConfigChanged {
        drip_amount: u256,
        cooldown: u64,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        token: ContractAddress,
        owner: ContractAddress,
        drip_amount: u256,
        cooldown: u64
    ) {
        let owner_felt: felt252 = owner.into();
        assert(owner_felt != 0, 'FAUCET: owner is zero');
        let token_felt: felt252 = token.into();
        assert(token_felt != 0, 'FAUCET: token is zero');
        assert(drip_amount != 0, 'FAUCET: zero drip amount');
        self.token.write(token);
        self.owner.write(owner);
        self.drip_amount.write(drip_amount);
        self.cooldown.write(cooldown);
    }

    #[abi(embed_v0)]
    impl FaucetImpl of super::IFaucet<ContractState> {
        fn drip(ref self: ContractState) {
            let recipient = get_caller_address();
            let now = get_block_timestamp();
            let next = self._next_drip_at(recipient);
            assert(now >= next, 'FAUCET: cooldown active');
            let amount = self.drip_amount.read();
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.balance_of(get_contract_address()) >= amount, 'FAUCET: empty');
            self.last_drip.write(recipient, now);
            self.has_dripped.write(recipient, true);
            assert(token.transfer(recipient, amount), 'FAUCET: transfer failed');
            self.emit(Dripped { recipient, amount, next_drip_at: now + self.cooldown.read() });
        }

        fn refill(ref self: ContractState, amount: u256) {
            self._assert_owner();
            assert(amount != 0, 'FAUCET: zero refill');
            let from = get_caller_address();
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(
                token.transfer_from(from, get_contract_address(), amount), 'FAUCET: transfer failed'
            );
            self.emit(Refilled { from, amount });
        }

        fn set_drip_amount(ref self: ContractState, amount: u256) {
            self._assert_owner();
            assert(amount != 0, 'FAUCET: zero drip amount');
            self.drip_amount.write(amount);
            self.emit(ConfigChanged { drip_amount: amount, cooldown: self.cooldown.read() });
        }

        fn set_cooldown(ref self: ContractState, cooldown: u64) {
            self._assert_owner();
            self.cooldown.write(cooldown);
            self.emit(ConfigChanged { drip_amount: self.drip_amount.read(), cooldown });
        }

        fn token(self: @ContractState) -> ContractAddress {
            self.token.read()
        }

        fn owner(self: @ContractState) -> ContractAddress {
            self.owner.read()
        }

        fn drip_amount(self: @ContractState) -> u256 {
            self.drip_amount.read()
        }

        fn cooldown(self: @ContractState) -> u64 {
            self.cooldown.read()
        }

        fn last_drip(self: @ContractState, account: ContractAddress) -> u64 {
            self.last_drip.read(account)
        }

        fn next_drip_at(self: @ContractState, account: ContractAddress) -> u64 {
            self._next_drip_at(account)
        }

        fn available(self: @ContractState) -> u256 {
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            token.balance_of(get_contract_address())
        }
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _assert_owner(self: @ContractState) {
            assert(get_caller_address() == self.owner.read(), 'FAUCET: caller is not owner');
        }

        fn _next_drip_at(self: @ContractState, account: ContractAddress) -> u64 {
            if self.has_dripped.read(account) {
                self.last_drip.read(account) + self.cooldown.read()
            } else {
                0
            }
        }
    }
}
