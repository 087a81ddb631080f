//! The coordinator's job service, as a library so the binary stays thin and tests, the e2e
//! harness and the SDK can run it in-process:
//!
//! - [`lifecycle`]: the job lifecycle as a pure state machine (inputs in, transitions and effects
//!   out);
//! - [`store`]: the durable store behind a trait ([`store::SqlStore`] on SQLite, the embedded default, or PostgreSQL);
//! - [`service`]: [`service::JobService`], the one way a stored job changes state;
//! - [`scheduler`]: which worker gets a job, and what a job costs;
//! - [`keys`]: API keys (stored hashed);
//! - [`api`]: the HTTP API (axum) and [`openapi`]: its OpenAPI document.
//!
//! ```
//! use sage_jobs::lifecycle::{Input, JobRecord, Rules, apply};
//! use sage_protocol::{Felt, JobSpec, api::JobState};
//!
//! let client = Felt::from(0xc1u8);
//! let mut job = JobRecord::submitted(client, Felt::ONE, JobSpec::Matmul { n: 64, seed: Felt::TWO });
//! let escrow = Input::EscrowSeen {
//!     client,
//!     spec_hash: job.spec.spec_hash(),
//!     payment: 10,
//!     deadline: 10_000,
//!     min_price: 10,
//!     tx: None,
//! };
//! let step = apply(&mut job, escrow, &Rules::default(), 1_000)?;
//! assert_eq!(job.state, JobState::Queued);
//! assert_eq!(step.transitions.len(), 2); // escrowed, queued
//! # Ok::<(), sage_jobs::lifecycle::TransitionError>(())
//! ```

pub mod api;
pub mod keys;
pub mod lifecycle;
pub mod openapi;
pub mod scheduler;
pub mod service;
pub mod store;

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
