/// The validator set (owner-managed, versioned) and its quorum certificates.
///
/// A vote is a Stark ECDSA signature over
/// `Poseidon('SAGE_VOTE_V1', chain_id, this contract, job_id, proof_hash, verdict)` (verdict: the
/// `Verdict` enum's code, 1 valid, 2 invalid, the one encoding `submit_qc` takes and `verdict`
/// returns), exactly `sage_consensus::vote::vote_hash`. A QC needs ⌊2n/3⌋ + 1 distinct
/// members of the current set (indices strictly increasing); the verdict is then final and is
/// handed to the JobManager. An invalid verdict slashes the worker; two validly signed votes by
/// one member for the same (job, proof) with different verdicts slash that member.
///
/// Reverts: `PV: verdict final`, `PV: wrong set version`, `PV: bad verdict`,
/// `PV: unknown validator`, `PV: duplicate signer`, `PV: signers not sorted`,
/// `PV: bad signature`, `PV: below threshold`, `PV: votes do not conflict`,
/// `PV: already reported`, `PV: length mismatch`, `PV: paused`, `PV: caller is not owner`.
#[starknet::contract]
mod ProofVerifier {
    use starknet::{ContractAddress, get_caller_address, get_contract_address, get_tx_info};
    use core::ecdsa::check_ecdsa_signature;
    use core::poseidon::poseidon_hash_span;
    use sage::interfaces::{
        IStakingManagerDispatcher, IStakingManagerDispatcherTrait, IJobManagerDispatcher,
        IJobManagerDispatcherTrait, IReputationManagerDispatcher,
        IReputationManagerDispatcherTrait, Verdict, verdict_code
    };
    use sage::admin::{AdminComponent, AdminErrors};

    component!(path: AdminComponent, storage: admin, event: AdminEvent);

    #[abi(embed_v0)]
    impl AdminImpl = AdminComponent::AdminImpl<ContractState>;
    impl AdminInternalImpl = AdminComponent::InternalImpl<ContractState>;

    impl Errors of AdminErrors<ContractState> {
        fn not_owner(self: @ContractState) -> felt252 {
            'PV: caller is not owner'
        }

        fn paused(self: @ContractState) -> felt252 {
            'PV: paused'
        }

        fn zero_owner(self: @ContractState) -> felt252 {
            'PV: owner is zero'
        }

        fn not_pending_owner(self: @ContractState) -> felt252 {
            'PV: not pending owner'
        }

        fn setup_closed(self: @ContractState) -> felt252 {
            'PV: setup closed'
        }

        fn grant_not_ready(self: @ContractState) -> felt252 {
            'PV: grant not ready'
        }
    }

    const VOTE_DOMAIN_TAG: felt252 = 'SAGE_VOTE_V1';

    #[storage]
    struct Storage {
        #[substorage(v0)]
        admin: AdminComponent::Storage,
        staking: ContractAddress,
        jobs: ContractAddress,
        reputation: ContractAddress,
        set_version: u64,
        set_size: u32,
        member_keys: LegacyMap<(u64, u32), felt252>,
        member_accounts: LegacyMap<(u64, u32), ContractAddress>,
        // Size of every set version ever installed, so evidence against a past set still counts.
        set_sizes: LegacyMap<u64, u32>,
        // Per set version: keys and accounts already listed (each must be unique).
        key_listed: LegacyMap<(u64, felt252), bool>,
        account_listed: LegacyMap<(u64, ContractAddress), bool>,
        verdicts: LegacyMap<felt252, Verdict>,
        verdict_proofs: LegacyMap<felt252, felt252>,
        invalid_slash_bps: u16,
        equivocation_slash_bps: u16,
        equivocation_reported: LegacyMap<(ContractAddress, felt252), bool>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        ValidatorSetUpdated: ValidatorSetUpdated,
        VerdictRecorded: VerdictRecorded,
        EquivocationSlashed: EquivocationSlashed,
        #[flat]
        AdminEvent: AdminComponent::Event,
    }

    #[derive(Drop, starknet::Event)]
    struct ValidatorSetUpdated {
        #[key]
        version: u64,
        size: u32,
        threshold: u32,
    }

    #[derive(Drop, starknet::Event)]
    struct VerdictRecorded {
        #[key]
        job_id: felt252,
        proof_hash: felt252,
        verdict: Verdict,
        signers: u32,
        set_version: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct EquivocationSlashed {
        #[key]
        validator: ContractAddress,
        #[key]
        job_id: felt252,
        index: u32,
        amount: u256,
        reporter: ContractAddress,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        staking: ContractAddress,
        jobs: ContractAddress,
        reputation: ContractAddress,
        owner: ContractAddress,
        invalid_slash_bps: u16,
        equivocation_slash_bps: u16
    ) {
        assert(invalid_slash_bps != 0 && invalid_slash_bps <= 10000, 'PV: bad bps');
        assert(equivocation_slash_bps != 0 && equivocation_slash_bps <= 10000, 'PV: bad bps');
        self.admin.initializer(owner);
        self.staking.write(staking);
        self.jobs.write(jobs);
        self.reputation.write(reputation);
        self.invalid_slash_bps.write(invalid_slash_bps);
        self.equivocation_slash_bps.write(equivocation_slash_bps);
    }

    #[abi(embed_v0)]
    impl ProofVerifierImpl of sage::interfaces::IProofVerifier<ContractState> {
        fn set_validators(
            ref self: ContractState, public_keys: Array<felt252>, accounts: Array<ContractAddress>
        ) {
            self.admin.assert_owner();
            assert(public_keys.len() == accounts.len(), 'PV: length mismatch');
            let version = self.set_version.read() + 1;
            let staking = IStakingManagerDispatcher { contract_address: self.staking.read() };
            let min_stake = staking.config().validator_min_stake;
            // The outgoing set's members are unbonded (evidence against them stays reportable:
            // equivocation evidence names its set version), then every incoming member is bonded.
            let previous = version - 1;
            let previous_size = self.set_sizes.read(previous);
            let mut j: u32 = 0;
            loop {
                if j == previous_size {
                    break;
                }
                staking.set_bonded(self.member_accounts.read((previous, j)), false);
                j += 1;
            };
            let mut keys = public_keys.span();
            let mut accs = accounts.span();
            let mut i: u32 = 0;
            loop {
                match keys.pop_front() {
                    Option::Some(k) => {
                        let key = *k;
                        let account = *accs.pop_front().unwrap();
                        assert(key != 0, 'PV: zero key');
                        // Every member is a registered validator under this very key, with the
                        // minimum validator stake bonded (so equivocation costs it), and appears
                        // once: one key listed twice would count twice towards a quorum.
                        assert(staking.validator_key(account) == key, 'PV: key not registered');
                        let bonded = staking.get_stake(account).amount;
                        assert(bonded != 0 && bonded >= min_stake, 'PV: insufficient stake');
                        assert(!self.key_listed.read((version, key)), 'PV: duplicate key');
                        assert(!self.account_listed.read((version, account)), 'PV: duplicate account');
                        self.key_listed.write((version, key), true);
                        self.account_listed.write((version, account), true);
                        self.member_keys.write((version, i), key);
                        self.member_accounts.write((version, i), account);
                        staking.set_bonded(account, true);
                        i += 1;
                    },
                    Option::None => { break; },
                };
            };
            self.set_version.write(version);
            self.set_size.write(i);
            self.set_sizes.write(version, i);
            self.emit(ValidatorSetUpdated { version, size: i, threshold: threshold(i) });
        }

        fn submit_qc(
            ref self: ContractState,
            job_id: felt252,
            proof_hash: felt252,
            verdict: Verdict,
            set_version: u64,
            signatures: Array<(u32, felt252, felt252)>
        ) {
            self.admin.assert_not_paused();
            assert(self.verdicts.read(job_id) == Verdict::None, 'PV: verdict final');
            assert(verdict != Verdict::None, 'PV: bad verdict');
            let version = self.set_version.read();
            assert(set_version == version, 'PV: wrong set version');
            let size = self.set_size.read();
            let message = self._vote_hash(job_id, proof_hash, verdict);
            let mut sigs = signatures.span();
            let mut count: u32 = 0;
            let mut prev: u32 = 0;
            loop {
                match sigs.pop_front() {
                    Option::Some(sig) => {
                        let (index, r, s) = *sig;
                        assert(index < size, 'PV: unknown validator');
                        if count != 0 {
                            assert(index != prev, 'PV: duplicate signer');
                            assert(index > prev, 'PV: signers not sorted');
                        }
                        let key = self.member_keys.read((version, index));
                        assert(check_ecdsa_signature(message, key, r, s), 'PV: bad signature');
                        prev = index;
                        count += 1;
                    },
                    Option::None => { break; },
                };
            };
            assert(count >= threshold(size), 'PV: below threshold');
            let valid = verdict == Verdict::Valid;
            self.verdicts.write(job_id, verdict);
            self.verdict_proofs.write(job_id, proof_hash);
            self.emit(VerdictRecorded { job_id, proof_hash, verdict, signers: count, set_version });
            let jobs = IJobManagerDispatcher { contract_address: self.jobs.read() };
            jobs.on_verdict(job_id, proof_hash, valid);
            if !valid {
                let worker = jobs.get_job(job_id).worker;
                IStakingManagerDispatcher { contract_address: self.staking.read() }
                    .slash(
                        worker, self.invalid_slash_bps.read(), 'invalid proof', get_caller_address()
                    );
                IReputationManagerDispatcher { contract_address: self.reputation.read() }
                    .record_slashed(worker);
            }
        }

        fn report_equivocation(
            ref self: ContractState,
            set_version: u64,
            validator_index: u32,
            job_id: felt252,
            proof_hash: felt252,
            first: (Verdict, felt252, felt252),
            second: (Verdict, felt252, felt252)
        ) {
            self.admin.assert_not_paused();
            // Any set version ever installed: a rotation must not erase equivocation evidence.
            assert(set_version >= 1 && set_version <= self.set_version.read(), 'PV: unknown set version');
            let version = set_version;
            assert(validator_index < self.set_sizes.read(version), 'PV: unknown validator');
            let (v1, r1, s1) = first;
            let (v2, r2, s2) = second;
            assert(v1 != Verdict::None && v2 != Verdict::None, 'PV: bad verdict');
            assert(v1 != v2, 'PV: votes do not conflict');
            let key = self.member_keys.read((version, validator_index));
            let h1 = self._vote_hash(job_id, proof_hash, v1);
            let h2 = self._vote_hash(job_id, proof_hash, v2);
            assert(
                check_ecdsa_signature(h1, key, r1, s1) && check_ecdsa_signature(h2, key, r2, s2),
                'PV: bad signature'
            );
            let validator = self.member_accounts.read((version, validator_index));
            assert(!self.equivocation_reported.read((validator, job_id)), 'PV: already reported');
            self.equivocation_reported.write((validator, job_id), true);
            let reporter = get_caller_address();
            // The offender never collects the reporter's share of its own slash.
            assert(reporter != validator, 'PV: offender cannot report');
            let amount = IStakingManagerDispatcher { contract_address: self.staking.read() }
                .slash(validator, self.equivocation_slash_bps.read(), 'equivocation', reporter);
            IReputationManagerDispatcher { contract_address: self.reputation.read() }
                .record_slashed(validator);
            self
                .emit(
                    EquivocationSlashed {
                        validator, job_id, index: validator_index, amount, reporter
                    }
                );
        }

        fn validator_set(self: @ContractState) -> (u64, u32, u32) {
            let size = self.set_size.read();
            (self.set_version.read(), size, threshold(size))
        }

        fn validator(self: @ContractState, index: u32) -> (felt252, ContractAddress) {
            let version = self.set_version.read();
            (self.member_keys.read((version, index)), self.member_accounts.read((version, index)))
        }

        fn verdict(self: @ContractState, job_id: felt252) -> Verdict {
            self.verdicts.read(job_id)
        }

        fn verdict_proof(self: @ContractState, job_id: felt252) -> felt252 {
            self.verdict_proofs.read(job_id)
        }

        fn vote_hash(
            self: @ContractState, job_id: felt252, proof_hash: felt252, verdict: Verdict
        ) -> felt252 {
            self._vote_hash(job_id, proof_hash, verdict)
        }

        fn slash_rates(self: @ContractState) -> (u16, u16) {
            (self.invalid_slash_bps.read(), self.equivocation_slash_bps.read())
        }
    }

    /// ⌊2n/3⌋ + 1.
    fn threshold(n: u32) -> u32 {
        n * 2 / 3 + 1
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _vote_hash(
            self: @ContractState, job_id: felt252, proof_hash: felt252, verdict: Verdict
        ) -> felt252 {
            let this: felt252 = get_contract_address().into();
            let verdict_felt = verdict_code(verdict);
            poseidon_hash_span(
                array![
                    VOTE_DOMAIN_TAG,
                    get_tx_info().unbox().chain_id,
                    this,
                    job_id,
                    proof_hash,
                    verdict_felt
                ]
                    .span()
            )
        }
    }
}
