/// Proof-gated encrypted payments: the coordinator pays a worker for a job only once the
/// ProofVerifier recorded a valid verdict whose proof hash equals the payment's proof commitment;
/// at most once per job and once per nonce. The ciphertext is credited to the worker's encrypted
/// balance in the PrivacyRouter.
///
/// Reverts: `PAY: not coordinator`, `PAY: already paid`, `PAY: nonce used`, `PAY: no verdict`,
/// `PAY: verdict invalid`, `PAY: wrong commitment`, `PAY: not the job worker`, `PAY: paused`,
/// `PAY: caller is not owner`.
#[starknet::contract]
mod PaymentRouter {
    use starknet::{ContractAddress, get_caller_address};
    use sage::interfaces::{
        IProofVerifierDispatcher, IProofVerifierDispatcherTrait, IJobManagerDispatcher,
        IJobManagerDispatcherTrait, IPrivacyRouterDispatcher, IPrivacyRouterDispatcherTrait,
        ROLE_COORDINATOR, VERDICT_NONE, VERDICT_VALID
    };
    use sage::admin::{OwnershipTransferred, PauseChanged, RoleChanged};

    #[storage]
    struct Storage {
        owner: ContractAddress,
        paused: bool,
        roles: LegacyMap<(felt252, ContractAddress), bool>,
        verifier: ContractAddress,
        jobs: ContractAddress,
        privacy: ContractAddress,
        paid: LegacyMap<felt252, bool>,
        nonces: LegacyMap<felt252, bool>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        PaymentSubmitted: PaymentSubmitted,
        OwnershipTransferred: OwnershipTransferred,
        PauseChanged: PauseChanged,
        RoleChanged: RoleChanged,
    }

    #[derive(Drop, starknet::Event)]
    struct PaymentSubmitted {
        #[key]
        job_id: felt252,
        #[key]
        worker: ContractAddress,
        nonce: felt252,
        proof_commitment: felt252,
        ciphertext: (felt252, felt252, felt252, felt252),
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        verifier: ContractAddress,
        jobs: ContractAddress,
        privacy: ContractAddress,
        owner: ContractAddress
    ) {
        let owner_felt: felt252 = owner.into();
        assert(owner_felt != 0, 'PAY: owner is zero');
        self.owner.write(owner);
        self.verifier.write(verifier);
        self.jobs.write(jobs);
        self.privacy.write(privacy);
    }

    #[abi(embed_v0)]
    impl AdminImpl of sage::interfaces::IAdmin<ContractState> {
        fn owner(self: @ContractState) -> ContractAddress {
            self.owner.read()
        }

        fn transfer_ownership(ref self: ContractState, new_owner: ContractAddress) {
            self._assert_owner();
            let new_felt: felt252 = new_owner.into();
            assert(new_felt != 0, 'PAY: owner is zero');
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
    impl PaymentRouterImpl of sage::interfaces::IPaymentRouter<ContractState> {
        fn submit_payment_with_proof(
            ref self: ContractState,
            worker: ContractAddress,
            job_id: felt252,
            randomness: felt252,
            proof_commitment: felt252,
            nonce: felt252
        ) {
            assert(!self.paused.read(), 'PAY: paused');
            assert(self.roles.read((ROLE_COORDINATOR, get_caller_address())), 'PAY: not coordinator');
            assert(!self.paid.read(job_id), 'PAY: already paid');
            assert(!self.nonces.read(nonce), 'PAY: nonce used');
            let verifier = IProofVerifierDispatcher { contract_address: self.verifier.read() };
            let verdict = verifier.verdict(job_id);
            assert(verdict != VERDICT_NONE, 'PAY: no verdict');
            assert(verdict == VERDICT_VALID, 'PAY: verdict invalid');
            assert(verifier.verdict_proof(job_id) == proof_commitment, 'PAY: wrong commitment');
            let job = IJobManagerDispatcher { contract_address: self.jobs.read() }.get_job(job_id);
            assert(job.worker == worker, 'PAY: not the job worker');
            self.paid.write(job_id, true);
            self.nonces.write(nonce, true);
            // The amount is not the coordinator's to choose: the PrivacyRouter credits exactly the
            // escrow deposited for this job, encrypted on-chain to the worker's registered key.
            let ciphertext = IPrivacyRouterDispatcher { contract_address: self.privacy.read() }
                .credit_payment(worker, job_id, randomness);
            self.emit(PaymentSubmitted { job_id, worker, nonce, proof_commitment, ciphertext });
        }

        fn is_paid(self: @ContractState, job_id: felt252) -> bool {
            self.paid.read(job_id)
        }

        fn is_nonce_used(self: @ContractState, nonce: felt252) -> bool {
            self.nonces.read(nonce)
        }
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _assert_owner(self: @ContractState) {
            assert(get_caller_address() == self.owner.read(), 'PAY: caller is not owner');
        }
    }
}
