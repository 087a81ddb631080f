//! The public statement a proof is bound to, and its identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};
use stwo::core::channel::Channel;

/// Job types this crate proves. The discriminant is part of the statement and of every commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JobType {
    /// `C = A·B` over M31 ([`crate::matmul`]).
    Matmul,
    /// A straight-line Obelysk VM program ([`crate::vm`]).
    Vm,
    /// An Obelysk VM program with control flow ([`crate::vm_jump`]).
    VmJump,
}

impl JobType {
    /// Stable name (`"matmul"`, `"vm"`), as used on the command line and in logs.
    pub const fn name(self) -> &'static str {
        match self {
            JobType::Matmul => "matmul",
            JobType::Vm => "vm",
            JobType::VmJump => "vm-jump",
        }
    }
}

macro_rules! bytes32 {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lower-case hex with a `0x` prefix (64 digits).
            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity(66);
                s.push_str("0x");
                for b in self.0 {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }

            /// Parses hex (optional `0x`, up to 64 digits, left-padded with zeros), as a Starknet felt is written.
            pub fn from_hex(s: &str) -> Option<Self> {
                let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
                if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let padded = format!("{s:0>64}");
                let mut out = [0u8; 32];
                for (i, byte) in out.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).ok()?;
                }
                Some(Self(out))
            }

            /// A value whose low 16 bytes are `v` (big-endian), as a felt holding a small integer.
            pub fn from_u128(v: u128) -> Self {
                let mut out = [0u8; 32];
                out[16..].copy_from_slice(&v.to_be_bytes());
                Self(out)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

bytes32!(
    /// Job identifier (32 bytes; a Starknet felt big-endian, or any 32-byte id).
    JobId
);
bytes32!(
    /// The worker's Starknet address (a felt, 32 bytes big-endian).
    WorkerAddress
);
bytes32!(
    /// A 32-byte commitment (blake3 digest or Blake2s Merkle root, depending on the job type).
    Commitment
);
bytes32!(
    /// Blake3 hash of the compressed envelope bytes: the proof hash used on-chain.
    ProofHash
);

/// What a proof claims: "the job `job_id` of type `job_type` with these sizes, on the inputs
/// committed to by `input_commitment`, produced the output committed to by `output_commitment`,
/// and this proof was made for `worker`".
///
/// The whole statement is absorbed into the Fiat–Shamir channel before the first challenge on both
/// sides, so changing any field invalidates the proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Job type.
    pub job_type: JobType,
    /// Job identifier.
    pub job_id: JobId,
    /// The worker the proof is made for (replay by another worker fails).
    pub worker: WorkerAddress,
    /// Job-type specific sizes (`[n]` for matmul, `[registers, program length]` for the VM, plus the step budget
    /// for `vm-jump`).
    pub sizes: Vec<u32>,
    /// Commitment to the job's inputs (see each job type).
    pub input_commitment: Commitment,
    /// Commitment to the job's output (see each job type).
    pub output_commitment: Commitment,
}

/// Domain separator of the statement digest.
const STATEMENT_DOMAIN: &str = "sage obelysk-prover statement v1";

impl Statement {
    /// Blake3 digest of the statement (with the envelope version), the value mixed into the channel.
    pub fn digest(&self, version: u16) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key(STATEMENT_DOMAIN);
        h.update(&version.to_le_bytes());
        // postcard encoding of a plain struct of integers and byte arrays cannot fail.
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
        *h.finalize().as_bytes()
    }

    /// Absorbs the statement digest into a Fiat–Shamir channel.
    pub(crate) fn mix_into(&self, version: u16, channel: &mut impl Channel) {
        let d = self.digest(version);
        let words: Vec<u32> = d.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        channel.mix_u32s(&words);
    }
}
