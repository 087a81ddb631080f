/// Job escrow: clients pay in, the coordinator assigns staked and registered workers, the
/// assigned worker submits its result, the ProofVerifier's verdict completes or refunds.
///
/// A job id is `poseidon(client, client_job_id)`: scoped to the caller of `create_job`, so nobody
/// can take an id another client is about to use. The client may `cancel` an open (unassigned)
/// job and is refunded. `assign` records a lease (`lease_until`); once it has run out without a
/// result the coordinator may `reassign` the job to another worker, and the first worker's
/// reputation records the failure.
///
/// On a valid verdict the escrow goes to `payout` (the PrivacyRouter pool, through its
/// `deposit_for_job`) or, when no payout is set, to the worker as a public transfer (it never
/// stays here, where nobody could move it); on an invalid verdict or a missed deadline the client
/// is refunded.
///
/// Reverts: `JOB: exists`, `JOB: zero payment`, `JOB: deadline passed`, `JOB: not coordinator`,
/// `JOB: not open`, `JOB: worker not registered`, `JOB: insufficient stake`, `JOB: stake unlocks
/// early`, `JOB: not assigned worker`, `JOB: not assigned`, `JOB: not verifier`,
/// `JOB: not submitted`, `JOB: proof mismatch`, `JOB: not expired`, `JOB: finished`,
/// `JOB: paused`, `JOB: caller is not owner`, `JOB: not client`, `JOB: zero lease`,
/// `JOB: lease active`, `JOB: same worker`.
#[starknet::contract]
mod JobManager {
    use starknet::{
        ContractAddress, get_caller_address, get_contract_address, get_block_timestamp,
        contract_address_const
    };
    use core::poseidon::poseidon_hash_span;
    use sage::interfaces::{
        IERC20Dispatcher, IERC20DispatcherTrait, IStakingManagerDispatcher,
        IStakingManagerDispatcherTrait, IReputationManagerDispatcher,
        IReputationManagerDispatcherTrait, IPrivacyRouterDispatcher, IPrivacyRouterDispatcherTrait,
        Job, ROLE_COORDINATOR, ROLE_VERIFIER, STAKE_VALID, STAKE_INSUFFICIENT, JobStatus
    };
    use sage::admin::{AdminComponent, AdminErrors, ConfigChanged};

    component!(path: AdminComponent, storage: admin, event: AdminEvent);

    #[abi(embed_v0)]
    impl AdminImpl = AdminComponent::AdminImpl<ContractState>;
    impl AdminInternalImpl = AdminComponent::InternalImpl<ContractState>;

    impl Errors of AdminErrors<ContractState> {
        fn not_owner(self: @ContractState) -> felt252 {
            'JOB: caller is not owner'
        }

        fn paused(self: @ContractState) -> felt252 {
            'JOB: paused'
        }

        fn zero_owner(self: @ContractState) -> felt252 {
            'JOB: owner is zero'
        }

        fn not_pending_owner(self: @ContractState) -> felt252 {
            'JOB: not pending owner'
        }

        fn setup_closed(self: @ContractState) -> felt252 {
            'JOB: setup closed'
        }

        fn grant_not_ready(self: @ContractState) -> felt252 {
            'JOB: grant not ready'
        }
    }

    #[storage]
    struct Storage {
        #[substorage(v0)]
        admin: AdminComponent::Storage,
        token: ContractAddress,
        staking: ContractAddress,
        reputation: ContractAddress,
        payout: ContractAddress,
        verdict_grace: u64,
        jobs: LegacyMap<felt252, Job>,
        /// Block timestamp until which the current assignment holds (set by assign/reassign).
        leases: LegacyMap<felt252, u64>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        JobCreated: JobCreated,
        JobAssigned: JobAssigned,
        JobReassigned: JobReassigned,
        ResultSubmitted: ResultSubmitted,
        JobCompleted: JobCompleted,
        JobRefunded: JobRefunded,
        #[flat]
        AdminEvent: AdminComponent::Event,
        ConfigChanged: ConfigChanged,
    }

    #[derive(Drop, starknet::Event)]
    struct JobCreated {
        #[key]
        job_id: felt252,
        #[key]
        client: ContractAddress,
        spec_hash: felt252,
        payment: u256,
        deadline: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct JobAssigned {
        #[key]
        job_id: felt252,
        #[key]
        worker: ContractAddress,
        lease_until: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct JobReassigned {
        #[key]
        job_id: felt252,
        #[key]
        worker: ContractAddress,
        previous: ContractAddress,
        lease_until: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct ResultSubmitted {
        #[key]
        job_id: felt252,
        #[key]
        worker: ContractAddress,
        output_commitment: felt252,
        proof_hash: felt252,
    }

    #[derive(Drop, starknet::Event)]
    struct JobCompleted {
        #[key]
        job_id: felt252,
        #[key]
        worker: ContractAddress,
        payment: u256,
    }

    /// `reason`: 'invalid' (verdict), 'expired' (deadline) or 'cancelled' (by the client).
    #[derive(Drop, starknet::Event)]
    struct JobRefunded {
        #[key]
        job_id: felt252,
        #[key]
        client: ContractAddress,
        amount: u256,
        reason: felt252,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        token: ContractAddress,
        staking: ContractAddress,
        reputation: ContractAddress,
        owner: ContractAddress,
        verdict_grace: u64
    ) {
        self.admin.initializer(owner);
        self.token.write(token);
        self.staking.write(staking);
        self.reputation.write(reputation);
        self.verdict_grace.write(verdict_grace);
    }

    #[abi(embed_v0)]
    impl JobManagerImpl of sage::interfaces::IJobManager<ContractState> {
        fn create_job(
            ref self: ContractState,
            client_job_id: felt252,
            spec_hash: felt252,
            payment: u256,
            deadline: u64
        ) -> felt252 {
            self.admin.assert_not_paused();
            let client = get_caller_address();
            let job_id = self.job_id_of(client, client_job_id);
            assert(self.jobs.read(job_id).status == JobStatus::None, 'JOB: exists');
            assert(payment != 0, 'JOB: zero payment');
            assert(deadline > get_block_timestamp(), 'JOB: deadline passed');
            self
                .jobs
                .write(
                    job_id,
                    Job {
                        client,
                        spec_hash,
                        payment,
                        deadline,
                        worker: contract_address_const::<0>(),
                        status: JobStatus::Open,
                        output_commitment: 0,
                        proof_hash: 0,
                    }
                );
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(
                token.transfer_from(client, get_contract_address(), payment),
                'JOB: transfer failed'
            );
            self.emit(JobCreated { job_id, client, spec_hash, payment, deadline });
            job_id
        }

        fn job_id_of(self: @ContractState, client: ContractAddress, client_job_id: felt252) -> felt252 {
            let client_felt: felt252 = client.into();
            poseidon_hash_span(array![client_felt, client_job_id].span())
        }

        fn cancel(ref self: ContractState, job_id: felt252) {
            // An exit: never paused (only an unassigned job, only by its client).
            let job = self.jobs.read(job_id);
            assert(job.status == JobStatus::Open, 'JOB: not open');
            assert(get_caller_address() == job.client, 'JOB: not client');
            self._refund(job_id, job, 'cancelled');
        }

        fn assign(
            ref self: ContractState, job_id: felt252, worker: ContractAddress, lease_seconds: u64
        ) {
            self.admin.assert_not_paused();
            self._assert_coordinator();
            let mut job = self.jobs.read(job_id);
            assert(job.status == JobStatus::Open, 'JOB: not open');
            self._check_worker(@job, worker);
            let lease_until = self._lease(job_id, lease_seconds);
            job.worker = worker;
            job.status = JobStatus::Assigned;
            self.jobs.write(job_id, job);
            self.emit(JobAssigned { job_id, worker, lease_until });
        }

        fn reassign(
            ref self: ContractState, job_id: felt252, worker: ContractAddress, lease_seconds: u64
        ) {
            self.admin.assert_not_paused();
            self._assert_coordinator();
            let mut job = self.jobs.read(job_id);
            assert(job.status == JobStatus::Assigned, 'JOB: not assigned');
            assert(get_block_timestamp() > self.leases.read(job_id), 'JOB: lease active');
            let previous = job.worker;
            assert(previous != worker, 'JOB: same worker');
            self._check_worker(@job, worker);
            let lease_until = self._lease(job_id, lease_seconds);
            job.worker = worker;
            self.jobs.write(job_id, job);
            IReputationManagerDispatcher { contract_address: self.reputation.read() }
                .record_failed(previous);
            self.emit(JobReassigned { job_id, worker, previous, lease_until });
        }

        fn lease_until(self: @ContractState, job_id: felt252) -> u64 {
            self.leases.read(job_id)
        }

        fn submit_result(
            ref self: ContractState, job_id: felt252, output_commitment: felt252, proof_hash: felt252
        ) {
            self.admin.assert_not_paused();
            let mut job = self.jobs.read(job_id);
            let worker = get_caller_address();
            assert(job.status == JobStatus::Assigned, 'JOB: not assigned');
            assert(worker == job.worker, 'JOB: not assigned worker');
            assert(get_block_timestamp() <= job.deadline, 'JOB: deadline passed');
            job.output_commitment = output_commitment;
            job.proof_hash = proof_hash;
            job.status = JobStatus::Submitted;
            self.jobs.write(job_id, job);
            self.emit(ResultSubmitted { job_id, worker, output_commitment, proof_hash });
        }

        fn on_verdict(ref self: ContractState, job_id: felt252, proof_hash: felt252, valid: bool) {
            assert(self.admin.caller_has(ROLE_VERIFIER), 'JOB: not verifier');
            let mut job = self.jobs.read(job_id);
            assert(job.status == JobStatus::Submitted, 'JOB: not submitted');
            assert(job.proof_hash == proof_hash, 'JOB: proof mismatch');
            let reputation = IReputationManagerDispatcher {
                contract_address: self.reputation.read()
            };
            if valid {
                job.status = JobStatus::Completed;
                self.jobs.write(job_id, job);
                let payout = self.payout.read();
                let payout_felt: felt252 = payout.into();
                let token = IERC20Dispatcher { contract_address: self.token.read() };
                if payout_felt != 0 {
                    assert(token.approve(payout, job.payment), 'JOB: approve failed');
                    IPrivacyRouterDispatcher { contract_address: payout }
                        .deposit_for_job(job_id, job.payment);
                } else {
                    // No private payout configured: the escrow must not stay here with nobody
                    // able to move it, so the worker is paid in the clear.
                    assert(token.transfer(job.worker, job.payment), 'JOB: transfer failed');
                }
                reputation.record_completed(job.worker);
                self.emit(JobCompleted { job_id, worker: job.worker, payment: job.payment });
            } else {
                self._refund(job_id, job, 'invalid');
                reputation.record_failed(job.worker);
            }
        }

        fn refund_expired(ref self: ContractState, job_id: felt252) {
            // An exit: never paused, so a paused JobManager cannot freeze a client's escrow.
            let job = self.jobs.read(job_id);
            let now = get_block_timestamp();
            assert(
                job.status == JobStatus::Open || job.status == JobStatus::Assigned || job.status == JobStatus::Submitted,
                'JOB: finished'
            );
            let mut limit = job.deadline;
            if job.status == JobStatus::Submitted {
                limit += self.verdict_grace.read();
            }
            assert(now > limit, 'JOB: not expired');
            let was_assigned = job.status == JobStatus::Assigned;
            let worker = job.worker;
            self._refund(job_id, job, 'expired');
            if was_assigned {
                IReputationManagerDispatcher { contract_address: self.reputation.read() }
                    .record_failed(worker);
            }
        }

        fn get_job(self: @ContractState, job_id: felt252) -> Job {
            self.jobs.read(job_id)
        }

        fn set_payout(ref self: ContractState, payout: ContractAddress) {
            self.admin.assert_owner();
            self.admin.assert_setup_open();
            self.payout.write(payout);
            self.emit(ConfigChanged { key: 'payout', value: payout.into() });
        }

        fn set_verdict_grace(ref self: ContractState, seconds: u64) {
            self.admin.assert_owner();
            self.verdict_grace.write(seconds);
            self.emit(ConfigChanged { key: 'verdict_grace', value: seconds.into() });
        }
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _assert_coordinator(self: @ContractState) {
            assert(
                self.admin.caller_has(ROLE_COORDINATOR), 'JOB: not coordinator'
            );
        }

        /// The worker may take `job` now: before the deadline, registered, and staked for its
        /// tier until the deadline plus the verdict grace (a lock ending at the deadline let a
        /// cheating worker unstake before its invalid verdict, and so its slash, arrived).
        fn _check_worker(self: @ContractState, job: @Job, worker: ContractAddress) {
            assert(get_block_timestamp() <= *job.deadline, 'JOB: deadline passed');
            let staking = IStakingManagerDispatcher { contract_address: self.staking.read() };
            assert(staking.is_registered(worker), 'JOB: worker not registered');
            let status = staking.stake_status(worker, *job.deadline + self.verdict_grace.read());
            assert(status != STAKE_INSUFFICIENT, 'JOB: insufficient stake');
            assert(status == STAKE_VALID, 'JOB: stake unlocks early');
        }

        /// Records and returns the end of a new assignment lease.
        fn _lease(ref self: ContractState, job_id: felt252, lease_seconds: u64) -> u64 {
            assert(lease_seconds != 0, 'JOB: zero lease');
            let lease_until = get_block_timestamp() + lease_seconds;
            self.leases.write(job_id, lease_until);
            lease_until
        }

        fn _refund(ref self: ContractState, job_id: felt252, mut job: Job, reason: felt252) {
            job.status = JobStatus::Refunded;
            self.jobs.write(job_id, job);
            let token = IERC20Dispatcher { contract_address: self.token.read() };
            assert(token.transfer(job.client, job.payment), 'JOB: transfer failed');
            self.emit(JobRefunded { job_id, client: job.client, amount: job.payment, reason });
        }
    }
}
