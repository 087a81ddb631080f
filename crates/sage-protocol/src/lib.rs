//! Sage's wire types, one home each, shared by the coordinator, the worker, the validators and
//! the SDK:
//!
//! - [`hash`]: the one mapping of 32-byte hashes (proof hashes, commitments, blob digests) to
//!   felts, and [`job_id`](hash::job_id), the client-scoped job id the `JobManager` contract
//!   computes (`poseidon(client, client_job_id)`), so nobody can squat another client's id;
//! - [`spec`]: [`JobSpec`], what a job computes, with its size rules and its on-chain
//!   [`spec_hash`](JobSpec::spec_hash);
//! - [`hex32`]: digests and byte strings as lowercase hex, one encoding per value;
//! - `prover` (feature `prover`): [`JobSpec::prover_job`], the one conversion to an
//!   `obelysk_prover::Job`, and the job's output computed natively;
//! - [`api`]: the coordinator's REST bodies ([`api::SubmitJob`], [`api::JobView`],
//!   [`api::JobState`]…) and its errors ([`api::Problem`] with a stable [`api::ProblemCode`]).
//!
//! Pure data and pure functions: no I/O.
//!
//! ```
//! use sage_protocol::{JobSpec, hash::job_id};
//! use starknet_types_core::felt::Felt;
//!
//! let spec = JobSpec::Matmul { n: 64, seed: Felt::from(7u8) };
//! spec.validate()?;
//! let client = Felt::from_hex_unchecked("0x1234");
//! let id = job_id(client, Felt::from(1u8));
//! // Another client choosing the same client id gets another job id.
//! assert_ne!(id, job_id(Felt::from_hex_unchecked("0x5678"), Felt::from(1u8)));
//! assert_ne!(spec.spec_hash(), JobSpec::Matmul { n: 64, seed: Felt::from(8u8) }.spec_hash());
//! # Ok::<(), sage_protocol::SpecError>(())
//! ```

pub mod api;
pub mod hash;
pub mod hex32;
#[cfg(feature = "prover")]
pub mod prover;
pub mod spec;

pub use hash::{hash32_to_felt, job_id, verdict_code};
pub use spec::{JobSpec, SpecError, VmProgram};
pub use starknet_types_core::felt::Felt;
