//! `sage-sdk`: the Sage network for Rust programs. Quote a job, escrow it from your own account
//! and submit it, follow it, and get back only results you verified yourself.
//!
//! The coordinator is a service you do not control, so the SDK trusts nothing it says:
//! [`Client::verify`] downloads the proof envelope and verifies it on this machine with
//! `obelysk-prover`, against the job *you* submitted (the spec you hold, or the served spec checked
//! against the `spec_hash` escrowed on-chain), the worker the chain recorded, the proof hash the
//! chain recorded, and the on-chain verdict and payment. [`Client::wait`] returns only verified
//! results.
//!
//! ```no_run
//! # async fn run() -> Result<(), sage_sdk::SdkError> {
//! use sage_sdk::{ClientBuilder, JobSpec, Outcome, SubmitOptions};
//! # let (account, contracts): (sage_chain::SageAccount, sage_chain::contracts::Deployment) = todo!();
//! let client = ClientBuilder::new()
//!     .url("http://127.0.0.1:8640")
//!     .api_key(std::env::var("SAGE_API_KEY").unwrap_or_default())
//!     .account(account, contracts) // escrow is the client's own: approve + create_job
//!     .build()?;
//! let spec = JobSpec::Matmul { n: 256, seed: sage_sdk::Felt::from(42u8) };
//! let job = client.submit(&spec, SubmitOptions::default().idempotency_key("invoice-17")).await?;
//! match client.wait(job.id, std::time::Duration::from_secs(600)).await? {
//!     Outcome::Certified(v) => println!("{} bits, proof {:#x}, paid: {}", v.security_bits, v.proof_hash, v.paid),
//!     other => println!("no result: {other:?}"),
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;

pub use client::{Client, ClientBuilder, Outcome, Security, SubmitOptions, Submitted, Verified};
pub use error::SdkError;
pub use sage_protocol::{
    Felt, JobSpec,
    api::{JobState, JobView, Quote, Transition, WorkerView},
};
