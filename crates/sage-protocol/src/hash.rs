//! 32-byte hashes as felts, and client-scoped job ids.

use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

/// A 32-byte hash (blake3 proof hash, sha256 blob digest, commitment) as a felt: the bytes
/// big-endian with the top five bits cleared, so the value is below 2^251 and always a felt.
/// Every component that puts such a hash on-chain or into a signature uses this mapping.
pub fn hash32_to_felt(hash: &[u8; 32]) -> Felt {
    let mut bytes = *hash;
    bytes[0] &= 0x07;
    Felt::from_bytes_be(&bytes)
}

/// The job id the `JobManager` contract gives `client_job_id` when `client` escrows it:
/// `poseidon(client, client_job_id)` (Cairo's `poseidon_hash_span`). Ids are scoped to the
/// client, so nobody can take an id another client is about to use.
pub fn job_id(client: Felt, client_job_id: Felt) -> Felt {
    poseidon_hash_many(&[client, client_job_id])
}

/// The code of a judged verdict: 1 valid, 2 invalid. It is the `ProofVerifier`'s `Verdict` enum,
/// the one encoding `submit_qc` and `report_equivocation` take, `verdict` returns and a vote hash
/// carries (0 there means "no verdict yet" and is never an input).
pub fn verdict_code(valid: bool) -> Felt {
    if valid { Felt::ONE } else { Felt::TWO }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_bits_are_cleared_and_the_rest_kept() {
        let felt = hash32_to_felt(&[0xff; 32]);
        let mut expected = [0xff; 32];
        expected[0] = 0x07;
        assert_eq!(felt.to_bytes_be(), expected);
        assert_eq!(hash32_to_felt(&[0; 32]), Felt::ZERO);
        let mut one = [0; 32];
        one[31] = 1;
        assert_eq!(hash32_to_felt(&one), Felt::ONE);
    }

    #[test]
    fn job_ids_depend_on_both_halves() {
        let a = job_id(Felt::from(1u8), Felt::from(2u8));
        assert_ne!(a, job_id(Felt::from(2u8), Felt::from(1u8)));
        assert_ne!(a, job_id(Felt::from(1u8), Felt::from(3u8)));
        assert_eq!(a, poseidon_hash_many(&[Felt::from(1u8), Felt::from(2u8)]));
    }
}
