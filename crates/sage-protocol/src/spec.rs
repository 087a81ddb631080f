//! What a job computes: [`JobSpec`], its size rules and its on-chain hash.
//!
//! Four shapes travel: seeded matmul (the matrices derived from a seed), matmul over the client's
//! own matrices (uploaded as content-addressed blobs, named here by sha256), and the Obelysk VM's
//! straight-line (`vm`) and branching (`vm_jump`) programs, carried inline in the prover's
//! 8-byte-per-instruction encoding. With the `prover` feature, [`JobSpec::prover_job`] is the one
//! conversion to an `obelysk_prover::Job`.

use serde::{Deserialize, Serialize};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

use crate::hash::hash32_to_felt;

/// Smallest matmul dimension (the prover's rule).
pub const MATMUL_MIN_N: u32 = 2;
/// Largest matmul dimension (the prover's rule).
pub const MATMUL_MAX_N: u32 = 1024;
/// The largest input blob a job reads: an n = [`MATMUL_MAX_N`] matrix of `u32` (4 MiB). Readers
/// of blobs cap what they read at it.
pub const MAX_MATRIX_BLOB_BYTES: usize = 4 * (MATMUL_MAX_N as usize) * (MATMUL_MAX_N as usize);
/// Registers of the Obelysk VM (inputs and outputs of `vm` and `vm_jump` jobs).
pub const VM_REGISTERS: usize = 4;
/// Longest VM program a network job may carry (the prover takes up to 2^22): 1,024 instructions
/// are 16 KiB of hex, so an assignment with its program stays well inside one gossip message.
pub const MAX_VM_PROGRAM_LEN: usize = 1024;
/// Largest step budget of a network `vm_jump` job. Verifying a branching-VM proof costs a table
/// the size of the budget (issue 14, item 11): capping the budget caps what a client can make
/// every validator pay (2^16 steps verify in tens of milliseconds).
pub const MAX_VM_JUMP_STEPS: u32 = 1 << 16;
/// The M31 modulus: inputs, immediates and matrix entries must be below it.
pub const M31_P: u32 = (1 << 31) - 1;
/// `'SAGE_SPEC_V1'`: domain of [`JobSpec::spec_hash`].
const SPEC_TAG: Felt = Felt::from_hex_unchecked("0x534147455f535045435f5631");
/// `'matmul'`.
const MATMUL_TAG: Felt = Felt::from_hex_unchecked("0x6d61746d756c");
/// `'matmul_data'`.
const MATMUL_DATA_TAG: Felt = Felt::from_hex_unchecked("0x6d61746d756c5f64617461");
/// `'vm'`.
const VM_TAG: Felt = Felt::from_hex_unchecked("0x766d");
/// `'vm_jump'`.
const VM_JUMP_TAG: Felt = Felt::from_hex_unchecked("0x766d5f6a756d70");
/// Highest opcode byte of the prover's encoding (`Halt`).
const MAX_OPCODE: u8 = 9;
/// Opcode bytes of control flow (`Jnz`, `Jmp`, `Halt`): refused in straight-line programs.
const CONTROL_FLOW: [u8; 3] = [7, 8, 9];
/// Opcode bytes whose immediate is a jump target (`Jnz`, `Jmp`).
const JUMPS: [u8; 2] = [7, 8];

/// What a job computes, with its inputs. The JSON form (`{"type": "matmul", "n": 64, "seed":
/// "0x7"}`) travels in REST bodies and in signed assignments alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum JobSpec {
    /// `C = A·B` over M31 for n×n matrices derived from `seed` (n a power of two in
    /// [`MATMUL_MIN_N`]`..=`[`MATMUL_MAX_N`]).
    Matmul {
        /// Matrix size.
        n: u32,
        /// Seed the matrices are derived from.
        seed: Felt,
    },
    /// `C = A·B` over M31 for the client's own n×n matrices, each uploaded as a blob
    /// (`PUT /v1/blobs/{sha256}`) of n² little-endian `u32`s, row-major, every entry below
    /// [`M31_P`]. The spec names them by sha256, so it is as small as a seeded one.
    MatmulData {
        /// Matrix size.
        n: u32,
        /// sha256 of `A`'s blob.
        #[serde(with = "crate::hex32")]
        a: [u8; 32],
        /// sha256 of `B`'s blob.
        #[serde(with = "crate::hex32")]
        b: [u8; 32],
    },
    /// A straight-line Obelysk VM program (no control flow) run on `inputs`; the output is the
    /// final registers.
    Vm {
        /// The program, in the prover's encoding.
        program: VmProgram,
        /// Initial registers (each below [`M31_P`]).
        inputs: [u32; VM_REGISTERS],
    },
    /// A branching Obelysk VM program that must halt within `max_steps`.
    VmJump {
        /// The program, in the prover's encoding.
        program: VmProgram,
        /// Initial registers (each below [`M31_P`]).
        inputs: [u32; VM_REGISTERS],
        /// Step budget, 1..=[`MAX_VM_JUMP_STEPS`].
        max_steps: u32,
    },
}

/// A VM program in the prover's encoding: 8 bytes per instruction (opcode, dst, src1, src2,
/// little-endian immediate), as `0x`-hex on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VmProgram(pub Vec<u8>);

impl VmProgram {
    /// Number of instructions (whole or not).
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether it holds no instruction.
    pub fn is_empty(&self) -> bool {
        self.0.len() < 8
    }

    /// Each instruction as one felt (its 8 bytes big-endian), what the spec hash absorbs.
    fn words(&self) -> impl Iterator<Item = Felt> + '_ {
        self.0.chunks_exact(8).map(|w| Felt::from(u64::from_be_bytes(w.try_into().unwrap_or([0; 8]))))
    }

    /// Checks the encoding's shape: whole instructions, 1..=[`MAX_VM_PROGRAM_LEN`] of them, known
    /// opcodes (no control flow when `straight`), jump targets inside the program, registers
    /// below [`VM_REGISTERS`], canonical immediates: the prover's own job rules, checked where the
    /// prover is not linked (a test holds the two together). Whether a `vm_jump` program halts
    /// within its budget is known only by running it: the coordinator runs it before queueing.
    fn check(&self, straight: bool) -> Result<(), SpecError> {
        let bad = |reason: String| Err(SpecError::Program { reason });
        if !self.0.len().is_multiple_of(8) {
            return bad(format!("{} bytes is not a whole number of 8-byte instructions", self.0.len()));
        }
        if self.is_empty() || self.len() > MAX_VM_PROGRAM_LEN {
            return bad(format!("{} instructions; a network job carries 1..={MAX_VM_PROGRAM_LEN}", self.len()));
        }
        for (index, w) in self.0.chunks_exact(8).enumerate() {
            if w[0] > MAX_OPCODE {
                return bad(format!("instruction {index} has no opcode {}", w[0]));
            }
            if straight && CONTROL_FLOW.contains(&w[0]) {
                return bad(format!("instruction {index} is control flow; use type vm_jump"));
            }
            let imm = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
            if JUMPS.contains(&w[0]) && imm as usize >= self.len() {
                return bad(format!("instruction {index} jumps to {imm}, outside the program"));
            }
            if let Some(r) = w[1..4].iter().find(|&&r| usize::from(r) >= VM_REGISTERS) {
                return bad(format!("instruction {index} names register {r}; the machine has {VM_REGISTERS}"));
            }
            if imm >= M31_P {
                return bad(format!("instruction {index} has immediate {imm}, not below 2^31 - 1"));
            }
        }
        Ok(())
    }
}

impl Serialize for VmProgram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(2 + 2 * self.0.len());
        text.push_str("0x");
        for b in &self.0 {
            text.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for VmProgram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        crate::hex32::decode_hex(&text, 8 * MAX_VM_PROGRAM_LEN).map(Self).map_err(D::Error::custom)
    }
}

/// Why a spec cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Matrix size outside the prover's range or not a power of two.
    #[error("matmul size {n} is not a power of two in {min}..={max}")]
    MatmulSize {
        /// Asked size.
        n: u32,
        /// Smallest.
        min: u32,
        /// Largest.
        max: u32,
    },
    /// A VM program that is not whole, known, in-range instructions.
    #[error("vm program: {reason}")]
    Program {
        /// What is wrong.
        reason: String,
    },
    /// An input register at or above the M31 modulus.
    #[error("vm input register {index} is {value}, not below 2^31 - 1")]
    Input {
        /// Register index.
        index: usize,
        /// The value.
        value: u32,
    },
    /// A `vm_jump` step budget out of range.
    #[error("vm_jump max_steps {max_steps} is not in 1..={max}")]
    Steps {
        /// Asked budget.
        max_steps: u32,
        /// Largest.
        max: u32,
    },
    /// An input blob that is missing, or not the matrix the spec needs.
    #[error("input blob {which} ({sha256}): {reason}")]
    Blob {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// Its sha256, lowercase hex.
        sha256: String,
        /// What is wrong.
        reason: String,
    },
    /// The prover refuses the job (its own rules, stricter than the wire's).
    #[error("the prover refuses the job: {0}")]
    Prover(String),
}

impl JobSpec {
    /// The job type prices, quotes and throughput are kept by (`"matmul"` for both matmul
    /// shapes: the same work; `"vm"`, `"vm_jump"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Matmul { .. } | Self::MatmulData { .. } => "matmul",
            Self::Vm { .. } => "vm",
            Self::VmJump { .. } => "vm_jump",
        }
    }

    /// The size parameter quotes and throughput are measured by (`n` for matmul, instructions for
    /// `vm`, the step budget for `vm_jump`).
    pub fn size(&self) -> u32 {
        match self {
            Self::Matmul { n, .. } | Self::MatmulData { n, .. } => *n,
            Self::Vm { program, .. } => program.len() as u32,
            Self::VmJump { max_steps, .. } => *max_steps,
        }
    }

    /// A representative spec of `job_type` and `size`, for quotes (`None`: unknown type).
    pub fn for_quote(job_type: &str, size: u32) -> Option<Self> {
        let nops = |len: u32| VmProgram(vec![0; 8 * len as usize]);
        Some(match job_type {
            "matmul" => Self::Matmul { n: size, seed: Felt::ZERO },
            "vm" => Self::Vm { program: nops(size.min(MAX_VM_PROGRAM_LEN as u32 + 1)), inputs: [0; VM_REGISTERS] },
            "vm_jump" => Self::VmJump {
                program: VmProgram(vec![9, 0, 0, 0, 0, 0, 0, 0]),
                inputs: [0; VM_REGISTERS],
                max_steps: size,
            },
            _ => return None,
        })
    }

    /// Checks the size rules and the shape of inline inputs (blob contents are checked where the
    /// blobs are: [`check_matrix_blob`]).
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Self::Matmul { n, .. } | Self::MatmulData { n, .. } => {
                if !(MATMUL_MIN_N..=MATMUL_MAX_N).contains(n) || !n.is_power_of_two() {
                    return Err(SpecError::MatmulSize { n: *n, min: MATMUL_MIN_N, max: MATMUL_MAX_N });
                }
            }
            Self::Vm { program, inputs } => {
                program.check(true)?;
                check_inputs(inputs)?;
            }
            Self::VmJump { program, inputs, max_steps } => {
                program.check(false)?;
                check_inputs(inputs)?;
                if !(1..=MAX_VM_JUMP_STEPS).contains(max_steps) {
                    return Err(SpecError::Steps { max_steps: *max_steps, max: MAX_VM_JUMP_STEPS });
                }
            }
        }
        Ok(())
    }

    /// The blobs the job reads, by sha256, in the order [`prover_job`](Self::prover_job) takes
    /// them (`A` then `B` for `matmul_data`; none for the others).
    pub fn blobs(&self) -> Vec<[u8; 32]> {
        match self {
            Self::MatmulData { a, b, .. } => vec![*a, *b],
            _ => Vec::new(),
        }
    }

    /// The felt a client escrows as `spec_hash` in `JobManager.create_job`:
    /// `poseidon('SAGE_SPEC_V1', type tag, parameters…)` (blob digests as felts, programs as
    /// their length then one felt per instruction). The coordinator queues a job only when the
    /// escrow's hash equals the hash of the spec it was given.
    pub fn spec_hash(&self) -> Felt {
        match self {
            Self::Matmul { n, seed } => poseidon_hash_many(&[SPEC_TAG, MATMUL_TAG, Felt::from(*n), *seed]),
            Self::MatmulData { n, a, b } => {
                poseidon_hash_many(&[SPEC_TAG, MATMUL_DATA_TAG, Felt::from(*n), hash32_to_felt(a), hash32_to_felt(b)])
            }
            Self::Vm { program, inputs } => {
                let mut parts = vec![SPEC_TAG, VM_TAG, Felt::from(program.0.len() as u64)];
                parts.extend(program.words());
                parts.extend(inputs.iter().map(|&v| Felt::from(v)));
                poseidon_hash_many(&parts)
            }
            Self::VmJump { program, inputs, max_steps } => {
                let mut parts = vec![SPEC_TAG, VM_JUMP_TAG, Felt::from(*max_steps), Felt::from(program.0.len() as u64)];
                parts.extend(program.words());
                parts.extend(inputs.iter().map(|&v| Felt::from(v)));
                poseidon_hash_many(&parts)
            }
        }
    }

    /// Relative amount of work (multiply-adds for matmul, trace rows for the VMs), what prices
    /// scale with.
    pub fn work_units(&self) -> u128 {
        match self {
            Self::Matmul { n, .. } | Self::MatmulData { n, .. } => u128::from(*n).pow(3),
            Self::Vm { program, .. } => program.len() as u128,
            Self::VmJump { max_steps, .. } => u128::from(*max_steps),
        }
    }
}

fn check_inputs(inputs: &[u32; VM_REGISTERS]) -> Result<(), SpecError> {
    match inputs.iter().position(|&v| v >= M31_P) {
        Some(index) => Err(SpecError::Input { index, value: inputs[index] }),
        None => Ok(()),
    }
}

/// Checks a matrix blob of a `matmul_data` job of size `n`: exactly n² little-endian `u32`s, each
/// below [`M31_P`]; returns the entries. `which` (`"a"`, `"b"`) and `sha256` name it in errors.
pub fn check_matrix_blob(n: u32, which: &'static str, sha256: &[u8; 32], bytes: &[u8]) -> Result<Vec<u32>, SpecError> {
    let fail = |reason: String| SpecError::Blob { which, sha256: crate::hex32::lower_hex(sha256), reason };
    let expected = 4 * u128::from(n) * u128::from(n);
    if bytes.len() as u128 != expected {
        return Err(fail(format!("{} bytes; an {n}×{n} matrix of u32 is {expected}", bytes.len())));
    }
    let values: Vec<u32> = bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
    if let Some(i) = values.iter().position(|&v| v >= M31_P) {
        return Err(fail(format!("entry {i} is {}, not below 2^31 - 1", values[i])));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rules() {
        for n in [2, 64, 1024] {
            JobSpec::Matmul { n, seed: Felt::ONE }.validate().unwrap();
        }
        for n in [0, 1, 3, 100, 2048] {
            assert_eq!(
                JobSpec::Matmul { n, seed: Felt::ONE }.validate(),
                Err(SpecError::MatmulSize { n, min: 2, max: 1024 })
            );
        }
    }

    #[test]
    fn wire_form_is_stable_and_strict() {
        let spec = JobSpec::Matmul { n: 64, seed: Felt::from(7u8) };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(text, r#"{"type":"matmul","n":64,"seed":"0x7"}"#);
        assert_eq!(serde_json::from_str::<JobSpec>(&text).unwrap(), spec);
        for bad in [
            r#"{"type":"matmul","n":64}"#,
            r#"{"type":"sort","n":64,"seed":"0x1"}"#,
            r#"{"type":"matmul","n":64,"seed":"0x1","extra":1}"#,
            r#"{"type":"matmul","n":-1,"seed":"0x1"}"#,
        ] {
            assert!(serde_json::from_str::<JobSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_hash_binds_every_parameter() {
        let base = JobSpec::Matmul { n: 64, seed: Felt::from(7u8) };
        assert_eq!(base.spec_hash(), base.clone().spec_hash());
        assert_ne!(base.spec_hash(), JobSpec::Matmul { n: 128, seed: Felt::from(7u8) }.spec_hash());
        assert_ne!(base.spec_hash(), JobSpec::Matmul { n: 64, seed: Felt::from(8u8) }.spec_hash());
        assert_eq!(SPEC_TAG, Felt::from_bytes_be_slice(b"SAGE_SPEC_V1"));
        assert_eq!(MATMUL_TAG, Felt::from_bytes_be_slice(b"matmul"));
    }
}
