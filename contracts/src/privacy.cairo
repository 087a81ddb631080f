/// The private payment pool: coordinators (or the JobManager, on a valid verdict) deposit SAGE
/// publicly; each worker holds ElGamal-encrypted balances (to the key it registered in the
/// StakingManager). Payments land in the worker's *pending* balance; `rollover` (the worker's own
/// call) adds pending into the *available* balance; a claim proves with Chaum–Pedersen
/// (`obelysk-elgamal`'s transcript, context `[chain_id, this contract, worker, claim_nonce]`) what
/// the available balance decrypts to, pays `amount · unit` SAGE from the pool and resets it to
/// the identity (the trivial encryption of zero). The split is Zether's: a payment that lands
/// between building a claim and its inclusion changes only the pending balance, so it never
/// invalidates the claim.
///
/// Reverts: `PRIV: zero amount`, `PRIV: not router`, `PRIV: bad ciphertext`,
/// `PRIV: nothing to claim`, `PRIV: nothing pending`, `PRIV: not registered`, `PRIV: bad proof`,
/// `PRIV: pool insufficient`, `PRIV: paused`, `PRIV: caller is not owner`.
#[starknet::contract]
mod PrivacyRouter {
    use starknet::{ContractAddress, get_caller_address, get_contract_address, get_tx_info};
    use sage::interfaces::{
        IERC20Dispatcher, IERC20DispatcherTrait, IStakingManagerDispatcher,
        IStakingManagerDispatcherTrait, DecryptionProof, ROLE_ROUTER
    };
    use sage::admin::{AdminComponent, AdminErrors};

    component!(path: AdminComponent, storage: admin, event: AdminEvent);

    #[abi(embed_v0)]
    impl AdminImpl = AdminComponent::AdminImpl<ContractState>;
    impl AdminInternalImpl = AdminComponent::InternalImpl<ContractState>;

    impl Errors of AdminErrors<ContractState> {
        fn not_owner(self: @ContractState) -> felt252 {
            'PRIV: caller is not owner'
        }

        fn paused(self: @ContractState) -> felt252 {
            'PRIV: paused'
        }

        fn zero_owner(self: @ContractState) -> felt252 {
            'PRIV: owner is zero'
        }

        fn not_pending_owner(self: @ContractState) -> felt252 {
            'PRIV: not pending owner'
        }

        fn setup_closed(self: @ContractState) -> felt252 {
            'PRIV: setup closed'
        }

        fn grant_not_ready(self: @ContractState) -> felt252 {
            'PRIV: grant not ready'
        }
    }
    use sage::crypto;
    use core::ec::EcPointTrait;

    #[derive(Copy, Drop, Serde, starknet::Store)]
    struct EncryptedBalance {
        c1x: felt252,
        c1y: felt252,
        c2x: felt252,
        c2y: felt252,
    }

    #[storage]
    struct Storage {
        #[substorage(v0)]
        admin: AdminComponent::Storage,
        token: ContractAddress,
        staking: ContractAddress,
        unit: u256,
        pool: u256,
        /// Available (claimable) balances.
        balances: LegacyMap<ContractAddress, EncryptedBalance>,
        /// Credits not yet rolled over into the available balance.
        pending: LegacyMap<ContractAddress, EncryptedBalance>,
        claim_nonces: LegacyMap<ContractAddress, felt252>,
        // Escrow deposited per job and not yet credited: the only thing a payment may credit.
        job_deposits: LegacyMap<felt252, u256>,
        // The worker key non-zero balances are encrypted to (set by the first credit while both
        // are empty): credits under another key are refused and claims are proven under it, so a
        // key change can never make a balance undecryptable.
        balance_keys: LegacyMap<ContractAddress, (felt252, felt252)>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        Deposited: Deposited,
        BalanceCredited: BalanceCredited,
        RolledOver: RolledOver,
        Claimed: Claimed,
        #[flat]
        AdminEvent: AdminComponent::Event,
    }

    #[derive(Drop, starknet::Event)]
    struct Deposited {
        #[key]
        from: ContractAddress,
        amount: u256,
        pool: u256,
    }

    /// The credited ciphertext and the new pending balance.
    #[derive(Drop, starknet::Event)]
    struct BalanceCredited {
        #[key]
        worker: ContractAddress,
        ciphertext: (felt252, felt252, felt252, felt252),
        balance: (felt252, felt252, felt252, felt252),
    }

    /// Pending credits moved into the available balance (the new available balance).
    #[derive(Drop, starknet::Event)]
    struct RolledOver {
        #[key]
        worker: ContractAddress,
        balance: (felt252, felt252, felt252, felt252),
    }

    #[derive(Drop, starknet::Event)]
    struct Claimed {
        #[key]
        worker: ContractAddress,
        amount: u64,
        value: u256,
        nonce: felt252,
        pool: u256,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        token: ContractAddress,
        staking: ContractAddress,
        owner: ContractAddress,
        unit: u256
    ) {
        assert(unit != 0, 'PRIV: zero unit');
        self.admin.initializer(owner);
        self.token.write(token);
        self.staking.write(staking);
        self.unit.write(unit);
    }

    #[abi(embed_v0)]
    impl PrivacyRouterImpl of sage::interfaces::IPrivacyRouter<ContractState> {
        fn deposit(ref self: ContractState, amount: u256) {
            // Deposits only add to the pool and arrive from JobManager inside a verdict: a paused
            // router must not make a valid quorum certificate revert.
            assert(amount != 0, 'PRIV: zero amount');
            let from = get_caller_address();
            let pool = self.pool.read() + amount;
            self.pool.write(pool);
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer_from(from, get_contract_address(), amount), 'PRIV: transfer failed');
            self.emit(Deposited { from, amount, pool });
        }

        fn deposit_for_job(ref self: ContractState, job_id: felt252, amount: u256) {
            assert(amount != 0, 'PRIV: zero amount');
            let from = get_caller_address();
            let pool = self.pool.read() + amount;
            self.pool.write(pool);
            self.job_deposits.write(job_id, self.job_deposits.read(job_id) + amount);
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer_from(from, get_contract_address(), amount), 'PRIV: transfer failed');
            self.emit(Deposited { from, amount, pool });
        }

        fn job_deposit(self: @ContractState, job_id: felt252) -> u256 {
            self.job_deposits.read(job_id)
        }

        fn credit_payment(
            ref self: ContractState, worker: ContractAddress, job_id: felt252, randomness: felt252
        ) -> (felt252, felt252, felt252, felt252) {
            self.admin.assert_not_paused();
            assert(self.admin.caller_has(ROLE_ROUTER), 'PRIV: not router');
            let deposited = self.job_deposits.read(job_id);
            assert(deposited != 0, 'PRIV: nothing deposited');
            self.job_deposits.write(job_id, 0);
            let units256 = deposited / self.unit.read();
            assert(units256 < 0x10000000000000000, 'PRIV: amount too large');
            let units: felt252 = units256.try_into().unwrap();
            let info = IStakingManagerDispatcher { contract_address: self.staking.read() }
                .get_worker(worker);
            assert(info.registered, 'PRIV: not registered');
            let pk = match crypto::nonzero_point(info.elgamal_pk_x, info.elgamal_pk_y) {
                Option::Some(p) => p,
                Option::None => { panic_with_felt252('PRIV: bad worker key') },
            };
            assert(randomness != 0 && crypto::is_canonical_scalar(randomness), 'PRIV: bad randomness');
            let g = crypto::generator();
            let (c1x, c1y) = crypto::coordinates(g.mul(randomness));
            let (c2x, c2y) = crypto::coordinates(g.mul(units) + pk.mul(randomness));
            let ciphertext = (c1x, c1y, c2x, c2y);
            let p = self.pending.read(worker);
            if is_empty(p) && is_empty(self.balances.read(worker)) {
                self.balance_keys.write(worker, (info.elgamal_pk_x, info.elgamal_pk_y));
            } else {
                let (kx, ky) = self.balance_keys.read(worker);
                assert(kx == info.elgamal_pk_x && ky == info.elgamal_pk_y, 'PRIV: key changed, claim first');
            }
            let sum = add(p, ciphertext);
            self.pending.write(worker, sum);
            self.emit(BalanceCredited { worker, ciphertext, balance: felts(sum) });
            ciphertext
        }

        fn rollover(ref self: ContractState) {
            // Part of an exit: never paused.
            let worker = get_caller_address();
            let p = self.pending.read(worker);
            assert(!is_empty(p), 'PRIV: nothing pending');
            let sum = add(self.balances.read(worker), felts(p));
            self.balances.write(worker, sum);
            self.pending.write(worker, EncryptedBalance { c1x: 0, c1y: 0, c2x: 0, c2y: 0 });
            self.emit(RolledOver { worker, balance: felts(sum) });
        }

        fn claim(ref self: ContractState, amount: u64, proof: DecryptionProof) {
            // An exit: never paused (the proof is still checked).
            let worker = get_caller_address();
            let b = self.balances.read(worker);
            assert(b.c1x != 0 || b.c1y != 0, 'PRIV: nothing to claim');
            let info = IStakingManagerDispatcher { contract_address: self.staking.read() }
                .get_worker(worker);
            assert(info.registered, 'PRIV: not registered');
            let nonce = self.claim_nonces.read(worker);
            let this: felt252 = get_contract_address().into();
            let worker_felt: felt252 = worker.into();
            let context = array![get_tx_info().unbox().chain_id, this, worker_felt, nonce];
            // Proven under the key the balance was encrypted to, even if the worker registered a
            // new one since.
            assert(
                crypto::verify_decryption(
                    self.balance_keys.read(worker),
                    (b.c1x, b.c1y, b.c2x, b.c2y),
                    amount,
                    proof,
                    context.span()
                ),
                'PRIV: bad proof'
            );
            let amount256: u256 = amount.into();
            let value = amount256 * self.unit.read();
            let pool = self.pool.read();
            assert(value <= pool, 'PRIV: pool insufficient');
            self.pool.write(pool - value);
            self.balances.write(worker, EncryptedBalance { c1x: 0, c1y: 0, c2x: 0, c2y: 0 });
            self.claim_nonces.write(worker, nonce + 1);
            if value != 0 {
                let token = IERC20Dispatcher { contract_address: self.token.read() };
                assert(token.transfer(worker, value), 'PRIV: transfer failed');
            }
            self.emit(Claimed { worker, amount, value, nonce, pool: pool - value });
        }

        fn balance_of(self: @ContractState, worker: ContractAddress) -> (felt252, felt252, felt252, felt252) {
            let b = self.balances.read(worker);
            (b.c1x, b.c1y, b.c2x, b.c2y)
        }

        fn pending_of(self: @ContractState, worker: ContractAddress) -> (felt252, felt252, felt252, felt252) {
            felts(self.pending.read(worker))
        }

        fn claim_nonce(self: @ContractState, worker: ContractAddress) -> felt252 {
            self.claim_nonces.read(worker)
        }

        fn pool(self: @ContractState) -> u256 {
            self.pool.read()
        }

        fn unit(self: @ContractState) -> u256 {
            self.unit.read()
        }

        fn verify_decryption(
            self: @ContractState,
            public_key: (felt252, felt252),
            ciphertext: (felt252, felt252, felt252, felt252),
            amount: u64,
            proof: DecryptionProof,
            context: Array<felt252>
        ) -> bool {
            crypto::verify_decryption(public_key, ciphertext, amount, proof, context.span())
        }
    }

    fn is_empty(b: EncryptedBalance) -> bool {
        b.c1x == 0 && b.c1y == 0 && b.c2x == 0 && b.c2y == 0
    }

    fn felts(b: EncryptedBalance) -> (felt252, felt252, felt252, felt252) {
        (b.c1x, b.c1y, b.c2x, b.c2y)
    }

    /// `b + ciphertext` (homomorphic); reverts on a ciphertext off the curve.
    fn add(b: EncryptedBalance, ciphertext: (felt252, felt252, felt252, felt252)) -> EncryptedBalance {
        match crypto::add_ciphertexts(felts(b), ciphertext) {
            Option::Some((c1x, c1y, c2x, c2y)) => EncryptedBalance { c1x, c1y, c2x, c2y },
            Option::None => { panic_with_felt252('PRIV: bad ciphertext') },
        }
    }
}
