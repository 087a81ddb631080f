//! TEE attestation for Sage workers.
//!
//! A worker proves it runs an approved image inside a trusted execution environment by presenting
//! [`Evidence`]: an Intel SGX or TDX DCAP quote with its collateral, or an AMD SEV-SNP attestation
//! report with the VCEK that signed it. [`verify_evidence`] checks it offline (signatures,
//! certificate chains to Intel's and AMD's roots, CRLs, TCB info, QE identity) at a given time and
//! returns a [`VerifiedAttestation`]: TEE type, measurement (MRENCLAVE, MRTD + RTMRs, or SNP
//! MEASUREMENT), signer, report data, TCB status, advisories, debug flag.
//!
//! [`Policy`] decides whether a verified attestation is acceptable for a worker: the measurement
//! must be on a versioned [`Whitelist`] (loaded from a file or the chain, replaced only by a
//! version signed with the configured governance key), the TCB status must be accepted, debug
//! enclaves are refused, and the report data must equal [`report_data_binding`] of the worker's
//! public key and a fresh nonce, so a quote cannot be replayed by another worker. The `none`
//! attestation exists for development networks and is refused by [`Policy::production`].
//!
//! [`collect`] reads evidence on this machine (Linux configfs-tsm). Collateral fetching (PCCS, AMD
//! KDS) is the binaries' job; this crate never touches the network.
//!
//! # Example
//!
//! ```no_run
//! use sage_tee::{Evidence, Policy, Whitelist, verify_evidence};
//! # fn run(quote: Vec<u8>, collateral_json: &str, worker_key: starknet_types_core::felt::Felt, nonce: [u8; 32], now: u64) -> Result<(), Box<dyn std::error::Error>> {
//! let evidence = Evidence::dcap(quote, collateral_json)?;
//! let attestation = verify_evidence(&evidence, now)?;
//! let whitelist = Whitelist::from_json(&std::fs::read_to_string("whitelist.json")?)?;
//! let policy = Policy::production(starknet_types_core::felt::Felt::from(0x9u8), whitelist);
//! policy.check(&attestation, worker_key, &nonce)?;
//! # Ok(()) }
//! ```

pub mod collect;
mod policy;
mod verify;

pub use policy::{
    Policy, PolicyError, SignedWhitelist, TdxRegisters, WHITELIST_DOMAIN_TAG, Whitelist, WhitelistEntry,
    report_data_binding, whitelist_hash,
};
pub use verify::{Evidence, SnpTcb, TeeError, TeeType, VerifiedAttestation, verify_evidence};
