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
        ROLE_COORDINATOR, Verdict
    };
    use sage::admin::{AdminComponent, AdminErrors};

    component!(path: AdminComponent, storage: admin, event: AdminEvent);

    #[abi(embed_v0)]
    impl AdminImpl = AdminComponent::AdminImpl<ContractState>;
    impl AdminInternalImpl = AdminComponent::InternalImpl<ContractState>;

    impl Errors of AdminErrors<ContractState> {
        fn not_owner(self: @ContractState) -> felt252 {
            'PAY: caller is not owner'
        }

        fn paused(self: @ContractState) -> felt252 {
            'PAY: paused'
        }

        fn zero_owner(self: @ContractState) -> felt252 {
            'PAY: owner is zero'
        }

        fn not_pending_owner(self: @ContractState) -> felt252 {
            'PAY: not pending owner'
        }

        fn setup_closed(self: @ContractState) -> felt252 {
            'PAY: setup closed'
        }

        fn grant_not_ready(self: @ContractState) -> felt252 {
            'PAY: grant not ready'
        }
    }

    #[storage]
    struct Storage {
        #[substorage(v0)]
        admin: AdminComponent::Storage,
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
        #[flat]
        AdminEvent: AdminComponent::Event,
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
        self.admin.initializer(owner);
        self.verifier.write(verifier);
        self.jobs.write(jobs);
        self.privacy.write(privacy);
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
            self.admin.assert_not_paused();
            assert(self.admin.caller_has(ROLE_COORDINATOR), 'PAY: not coordinator');
            assert(!self.paid.read(job_id), 'PAY: already paid');
            assert(!self.nonces.read(nonce), 'PAY: nonce used');
            let verifier = IProofVerifierDispatcher { contract_address: self.verifier.read() };
            let verdict = verifier.verdict(job_id);
            assert(verdict != Verdict::None, 'PAY: no verdict');
            assert(verdict == Verdict::Valid, 'PAY: verdict invalid');
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

}
