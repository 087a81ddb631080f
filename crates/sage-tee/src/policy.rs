//! What a Sage network accepts: whitelisted measurements, TCB statuses, no debug, report data
//! bound to the worker key and a nonce; whitelist updates signed by governance.

use sage_consensus::vote::{SignError, Signature, ValidatorKey, verify_signature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

use crate::{TeeType, VerifiedAttestation};

/// `'SAGE_WHITELIST_V1'`: domain tag of whitelist signatures.
pub const WHITELIST_DOMAIN_TAG: Felt = Felt::from_hex_unchecked("0x534147455f57484954454c4953545f5631");
const REPORT_DATA_TAG: &[u8] = b"SAGE_TEE_REPORT_DATA_V1";

/// One approved measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitelistEntry {
    /// TEE type it applies to.
    pub tee: TeeType,
    /// Measurement, lowercase hex (MRENCLAVE / MRTD / SNP MEASUREMENT).
    pub measurement: String,
    /// Worker image version that produces it.
    pub image_version: String,
}

/// A versioned list of approved measurements (the seed's `ALLOWED_MRENCLAVES`, as data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whitelist {
    /// Strictly increasing version.
    pub version: u64,
    /// Entries.
    pub entries: Vec<WhitelistEntry>,
}

impl Whitelist {
    /// Parses a whitelist file (JSON).
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        serde_json::from_str(json).map_err(|e| PolicyError::BadWhitelist(e.to_string()))
    }

    fn allows(&self, tee: TeeType, measurement: &[u8]) -> Option<&WhitelistEntry> {
        let hex = hex::encode(measurement);
        self.entries.iter().find(|e| e.tee == tee && e.measurement.eq_ignore_ascii_case(&hex))
    }
}

/// The message governance signs for a whitelist: Poseidon(tag, sha256(canonical JSON) as two
/// 128-bit felts).
pub fn whitelist_hash(whitelist: &Whitelist) -> Felt {
    let json = serde_json::to_vec(whitelist).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let hi = Felt::from_bytes_be_slice(&digest[..16]);
    let lo = Felt::from_bytes_be_slice(&digest[16..]);
    poseidon_hash_many(&[WHITELIST_DOMAIN_TAG, hi, lo])
}

/// A whitelist with the governance signature that makes it acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedWhitelist {
    /// The list.
    pub whitelist: Whitelist,
    /// Stark ECDSA (RFC 6979) over [`whitelist_hash`].
    pub signature: Signature,
}

impl SignedWhitelist {
    /// Signs `whitelist` with the governance key.
    pub fn sign(whitelist: Whitelist, governance: &ValidatorKey) -> Result<Self, SignError> {
        let signature = governance.sign(whitelist_hash(&whitelist))?;
        Ok(Self { whitelist, signature })
    }
}

/// The 64 report-data bytes a worker's TEE must attest: sha256(tag ‖ worker key ‖ nonce) followed
/// by 32 zero bytes.
pub fn report_data_binding(worker_key: Felt, nonce: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha256::new();
    h.update(REPORT_DATA_TAG);
    h.update(worker_key.to_bytes_be());
    h.update(nonce);
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&h.finalize());
    out
}

/// Why an attestation or a whitelist update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `none` attestation under a policy that requires a TEE.
    #[error("attestation type `none` is refused by this policy (development networks only)")]
    NoneRefused,
    /// Debug enclave / TD / guest.
    #[error("{0:?} attestation allows debugging: its memory is not confidential")]
    DebugRefused(TeeType),
    /// Measurement not on the whitelist.
    #[error("{tee:?} measurement {measurement} is not on whitelist version {version}")]
    NotWhitelisted {
        /// TEE type.
        tee: TeeType,
        /// Hex measurement.
        measurement: String,
        /// Whitelist version consulted.
        version: u64,
    },
    /// TCB status not accepted.
    #[error("TCB status {status} is not accepted (accepted: {accepted:?})")]
    TcbRefused {
        /// Reported status.
        status: String,
        /// Accepted statuses.
        accepted: Vec<String>,
    },
    /// Report data does not bind this worker's key and nonce.
    #[error("report data does not bind this worker's public key and nonce (replayed or foreign quote)")]
    ReportDataMismatch,
    /// A whitelist update signed by someone else, or altered.
    #[error("whitelist update is not signed by the governance key")]
    BadSignature,
    /// A whitelist update that does not increase the version.
    #[error("whitelist version {offered} does not supersede the current version {current}")]
    StaleWhitelist {
        /// Offered.
        offered: u64,
        /// Current.
        current: u64,
    },
    /// A whitelist file that does not parse.
    #[error("invalid whitelist: {0}")]
    BadWhitelist(String),
}

/// The acceptance policy of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Current whitelist.
    pub whitelist: Whitelist,
    /// Accepted TCB statuses (`UpToDate` by default).
    pub accepted_tcb: Vec<String>,
    /// Accept debug enclaves (never in production).
    pub allow_debug: bool,
    /// Accept `none` attestations (development networks).
    pub allow_none: bool,
    /// Stark public key whose signature a whitelist update needs.
    pub governance_key: Felt,
}

impl Policy {
    /// Production defaults: TEE required, `UpToDate` only, no debug.
    pub fn production(governance_key: Felt, whitelist: Whitelist) -> Self {
        Self { whitelist, accepted_tcb: vec!["UpToDate".into()], allow_debug: false, allow_none: false, governance_key }
    }

    /// Development networks: `none` accepted; real attestations still checked as in production.
    pub fn development(governance_key: Felt) -> Self {
        Self { allow_none: true, ..Self::production(governance_key, Whitelist { version: 0, entries: Vec::new() }) }
    }

    /// Accepts an attestation for `worker_key` answering `nonce`, returning the matching entry
    /// (`None` for a development `none` attestation).
    pub fn check(
        &self,
        attestation: &VerifiedAttestation,
        worker_key: Felt,
        nonce: &[u8; 32],
    ) -> Result<Option<WhitelistEntry>, PolicyError> {
        if attestation.tee == TeeType::None {
            return if self.allow_none { Ok(None) } else { Err(PolicyError::NoneRefused) };
        }
        if attestation.debug && !self.allow_debug {
            return Err(PolicyError::DebugRefused(attestation.tee));
        }
        let entry = self.whitelist.allows(attestation.tee, &attestation.measurement).ok_or_else(|| {
            PolicyError::NotWhitelisted {
                tee: attestation.tee,
                measurement: hex::encode(&attestation.measurement),
                version: self.whitelist.version,
            }
        })?;
        // SNP reports carry no TCB status; their TCB is pinned by the VCEK, which is per-TCB.
        if attestation.tee != TeeType::SevSnp && !self.accepted_tcb.contains(&attestation.tcb_status) {
            return Err(PolicyError::TcbRefused {
                status: attestation.tcb_status.clone(),
                accepted: self.accepted_tcb.clone(),
            });
        }
        if attestation.report_data.as_slice() != report_data_binding(worker_key, nonce).as_slice() {
            return Err(PolicyError::ReportDataMismatch);
        }
        Ok(Some(entry.clone()))
    }

    /// Replaces the whitelist with a newer version signed by the governance key.
    pub fn update_whitelist(&mut self, update: SignedWhitelist) -> Result<(), PolicyError> {
        if !verify_signature(self.governance_key, whitelist_hash(&update.whitelist), &update.signature) {
            return Err(PolicyError::BadSignature);
        }
        if update.whitelist.version <= self.whitelist.version {
            return Err(PolicyError::StaleWhitelist {
                offered: update.whitelist.version,
                current: self.whitelist.version,
            });
        }
        self.whitelist = update.whitelist;
        Ok(())
    }
}
