//! Fixtures shared by the fuzz targets and by `seed_corpus`, which writes the committed seed
//! corpus from them (so every seed is a real, valid input the target then mutates).

use obelysk_prover::{
    Job, JobId, WorkerAddress,
    matmul::MatmulJob,
    vm::{Instruction, Program, VmJob},
};
use sage_keys::StarkKey;
use starknet_types_core::felt::Felt;

/// The network id the message targets check against.
pub const NETWORK: Felt = Felt::from_hex_unchecked("0x534147455f46555a5a");

/// The password of the seed keystore (the keystore target decrypts with it).
pub const PASSWORD: &str = "fuzz-password";

/// Largest scrypt `n * r` the keystore target lets through (a file chooses its own cost; a
/// 4 GiB scrypt is legal and would only make the fuzzer slow, not find anything).
pub const MAX_FUZZ_SCRYPT_COST: u64 = 1 << 12;

/// Sample evidence from the verification crates (see crates/sage-tee/test-data/README.md).
pub const SGX_QUOTE: &[u8] = include_bytes!("../../crates/sage-tee/test-data/dcap-qvl/sgx_quote");
/// Collateral of [`SGX_QUOTE`].
pub const SGX_COLLATERAL: &str = include_str!("../../crates/sage-tee/test-data/dcap-qvl/sgx_quote_collateral.json");
/// A TDX quote.
pub const TDX_QUOTE: &[u8] = include_bytes!("../../crates/sage-tee/test-data/dcap-qvl/tdx_quote");
/// Collateral of [`TDX_QUOTE`].
pub const TDX_COLLATERAL: &str = include_str!("../../crates/sage-tee/test-data/dcap-qvl/tdx_quote_collateral.json");
/// A Milan SEV-SNP report, hex.
pub const SNP_REPORT_HEX: &str = include_str!("../../crates/sage-tee/test-data/sev/report_milan.hex");
/// The VCEK that signed [`SNP_REPORT_HEX`].
pub const SNP_VCEK: &[u8] = include_bytes!("../../crates/sage-tee/test-data/sev/vcek_milan.der");
/// Inside the samples' collateral validity window (2025-06-25).
pub const SAMPLES_NOW: u64 = 1_750_809_600;

/// The matmul job the envelope target verifies against (n = 4, insecure test parameters).
pub fn matmul_job() -> Job {
    Job::matmul(JobId::from_u128(0xf022), WorkerAddress::from_u128(0x5a6e), MatmulJob::from_seed(4, [7; 32]))
}

/// The straight-line VM job the envelope target verifies against.
pub fn vm_job() -> Job {
    let program = Program::new(vec![Instruction::loadi(1, 3), Instruction::add(2, 0, 1), Instruction::mul(3, 2, 2)]);
    Job::vm(JobId::from_u128(0xf023), WorkerAddress::from_u128(0x5a6e), VmJob { program, inputs: [5; 4] })
}

/// The key that signs the message target's payloads.
pub fn signer() -> StarkKey {
    StarkKey::from_secret(Felt::from(0x5eed_u64)).expect("a valid secret")
}

/// The vote domain of the bridge fixtures.
pub fn vote_domain() -> sage_consensus::VoteDomain {
    sage_consensus::VoteDomain {
        chain_id: Felt::from_hex_unchecked("0x534e5f46555a5a"),
        verifier: Felt::from(0xfe11_u64),
    }
}

/// The round the fixture validator answered about.
pub fn bridge_round() -> sage_consensus::RoundId {
    sage_consensus::RoundId { job_id: Felt::from(0xf022_u64), proof_hash: Felt::from(0xabcd_u64) }
}
