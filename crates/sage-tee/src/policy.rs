//! What a Sage network accepts: whitelisted measurements, TCB statuses, no debug, report data
//! bound to the worker key and a nonce; whitelist updates signed by governance.

use sage_keys::{SignError, Signature, StarkKey, verify_signature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

use crate::{SnpTcb, TeeType, VerifiedAttestation};

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
    /// TDX only, and required for TDX: MRTD measures the firmware alone, so an entry must also
    /// pin the runtime registers (kernel, command line, image) and the TD's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdx: Option<TdxRegisters>,
}

/// The TDX registers beyond MRTD that a whitelist entry pins, lowercase hex (48 bytes each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxRegisters {
    /// RTMR0..3: firmware configuration, kernel and initrd, command line, application.
    pub rtmrs: [String; 4],
    /// MRCONFIGID.
    pub mr_config_id: String,
    /// MROWNER.
    pub mr_owner: String,
    /// MROWNERCONFIG.
    pub mr_owner_config: String,
}

impl WhitelistEntry {
    /// The entry that accepts exactly `reference`'s measurements (for a TDX reference, every
    /// register): how a whitelist is built from a reference machine running the released image.
    pub fn for_attestation(reference: &VerifiedAttestation, image_version: &str) -> Self {
        let tdx = (reference.tee == TeeType::Tdx).then(|| {
            let r = |i: usize| reference.rtmrs.get(i).map(hex::encode).unwrap_or_default();
            TdxRegisters {
                rtmrs: [r(0), r(1), r(2), r(3)],
                mr_config_id: hex::encode(&reference.mr_config_id),
                mr_owner: hex::encode(&reference.mr_owner),
                mr_owner_config: hex::encode(&reference.mr_owner_config),
            }
        });
        Self {
            tee: reference.tee,
            measurement: hex::encode(&reference.measurement),
            image_version: image_version.to_owned(),
            tdx,
        }
    }

    /// For TDX: every register beyond MRTD equals the entry's.
    fn check_tdx(&self, a: &VerifiedAttestation) -> Result<(), PolicyError> {
        if a.tee != TeeType::Tdx {
            return Ok(());
        }
        let Some(want) = &self.tdx else {
            return Err(PolicyError::IncompleteTdxEntry { measurement: self.measurement.clone() });
        };
        let got_rtmr = |i: usize| a.rtmrs.get(i).map(Vec::as_slice).unwrap_or_default();
        let checks: [(&'static str, &str, &[u8]); 7] = [
            ("RTMR0", &want.rtmrs[0], got_rtmr(0)),
            ("RTMR1", &want.rtmrs[1], got_rtmr(1)),
            ("RTMR2", &want.rtmrs[2], got_rtmr(2)),
            ("RTMR3", &want.rtmrs[3], got_rtmr(3)),
            ("MRCONFIGID", &want.mr_config_id, &a.mr_config_id),
            ("MROWNER", &want.mr_owner, &a.mr_owner),
            ("MROWNERCONFIG", &want.mr_owner_config, &a.mr_owner_config),
        ];
        for (register, expected, got) in checks {
            let got = hex::encode(got);
            if !expected.eq_ignore_ascii_case(&got) {
                return Err(PolicyError::RegisterMismatch { register, expected: expected.to_owned(), got });
            }
        }
        Ok(())
    }
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
    pub fn sign(whitelist: Whitelist, governance: &StarkKey) -> Result<Self, SignError> {
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
    /// A TDX entry that pins only MRTD would accept any kernel on approved firmware.
    #[error("whitelist entry for TDX measurement {measurement} lists no RTMR0-3/MRCONFIGID/MROWNER/MROWNERCONFIG")]
    IncompleteTdxEntry {
        /// The entry's MRTD.
        measurement: String,
    },
    /// A TDX register differs from the whitelisted value (another kernel, command line, image
    /// or owner).
    #[error("TDX {register} is {got}, the whitelist requires {expected}")]
    RegisterMismatch {
        /// Which register.
        register: &'static str,
        /// Whitelisted, hex.
        expected: String,
        /// Attested, hex.
        got: String,
    },
    /// TCB status not accepted.
    #[error("TCB status {status} is not accepted (accepted: {accepted:?})")]
    TcbRefused {
        /// Reported status.
        status: String,
        /// Accepted statuses.
        accepted: Vec<String>,
    },
    /// An SEV-SNP platform below the minimum TCB (unpatched firmware or microcode).
    #[error("SEV-SNP TCB {reported:?} is below the policy minimum {minimum:?}")]
    SnpTcbTooLow {
        /// From the report.
        reported: SnpTcb,
        /// The policy's minimum.
        minimum: SnpTcb,
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
    /// Lowest SEV-SNP TCB accepted, component by component (the report's `REPORTED_TCB`). Set it
    /// to the TCB of AMD's latest security bulletin you require; the default (all zero) accepts
    /// any TCB whose VCEK AMD signed.
    pub snp_min_tcb: SnpTcb,
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
        Self {
            whitelist,
            accepted_tcb: vec!["UpToDate".into()],
            snp_min_tcb: SnpTcb::default(),
            allow_debug: false,
            allow_none: false,
            governance_key,
        }
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
        entry.check_tdx(attestation)?;
        // SNP reports carry no TCB status: their reported TCB must meet the policy's minimum.
        if let Some(reported) = attestation.snp_tcb
            && !reported.meets(&self.snp_min_tcb)
        {
            return Err(PolicyError::SnpTcbTooLow { reported, minimum: self.snp_min_tcb });
        }
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

#[cfg(test)]
mod tests {
    //! Policy checks on real sample quotes whose verified fields are then altered (report data
    //! rebound, debug set): only this crate can do that, since a `VerifiedAttestation` cannot be
    //! built or deserialised elsewhere.
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

    use super::*;
    use crate::{Evidence, verify_evidence};

    /// 2025-06-25T00:00:00Z: inside the samples' collateral validity window.
    const PINNED_NOW: u64 = 1_750_809_600;

    fn sgx() -> Evidence {
        Evidence::dcap(
            include_bytes!("../test-data/dcap-qvl/sgx_quote").to_vec(),
            include_str!("../test-data/dcap-qvl/sgx_quote_collateral.json"),
        )
        .unwrap()
    }

    fn tdx() -> Evidence {
        Evidence::dcap(
            include_bytes!("../test-data/dcap-qvl/tdx_quote").to_vec(),
            include_str!("../test-data/dcap-qvl/tdx_quote_collateral.json"),
        )
        .unwrap()
    }

    fn governance() -> StarkKey {
        StarkKey::from_secret(Felt::from(0x60_0e_u32)).unwrap()
    }

    /// `a` with its report data rebound to `worker` and `nonce`, as that worker's TEE would attest.
    fn bound_to(a: &VerifiedAttestation, worker: Felt, nonce: &[u8; 32]) -> VerifiedAttestation {
        let mut bound = a.clone();
        bound.report_data = report_data_binding(worker, nonce).to_vec();
        bound
    }

    fn whitelist_for(a: &VerifiedAttestation, version: u64) -> Whitelist {
        Whitelist { version, entries: vec![WhitelistEntry::for_attestation(a, "1.0.0")] }
    }

    #[test]
    fn policy_rejects_real_quotes_that_do_not_bind_the_worker_or_are_not_whitelisted() {
        let a = verify_evidence(&sgx(), PINNED_NOW).unwrap();
        let worker = Felt::from(0x1234u32);
        let nonce = [7u8; 32];
        let mut policy = Policy::production(governance().public_key(), Whitelist { version: 1, entries: vec![] });
        policy.accepted_tcb.push(a.tcb_status.clone());
        let err = policy.check(&a, worker, &nonce).unwrap_err();
        assert!(matches!(err, PolicyError::NotWhitelisted { .. }), "{err}");
        // Whitelisted, status accepted: the sample's report data was not made for this worker.
        policy.update_whitelist(SignedWhitelist::sign(whitelist_for(&a, 2), &governance()).unwrap()).unwrap();
        assert_eq!(policy.check(&a, worker, &nonce).unwrap_err(), PolicyError::ReportDataMismatch);
        // The same attestation with its report data bound to this worker and nonce is accepted...
        let bound = bound_to(&a, worker, &nonce);
        assert_eq!(policy.check(&bound, worker, &nonce).unwrap().unwrap().image_version, "1.0.0");
        // ...and refused for another worker or another nonce (replay).
        assert_eq!(policy.check(&bound, Felt::from(0x9999u32), &nonce).unwrap_err(), PolicyError::ReportDataMismatch);
        assert_eq!(policy.check(&bound, worker, &[8u8; 32]).unwrap_err(), PolicyError::ReportDataMismatch);
    }

    #[test]
    fn policy_refuses_debug_untrusted_tcb_and_none_in_production() {
        let a = verify_evidence(&tdx(), PINNED_NOW).unwrap();
        let worker = Felt::from(5u8);
        let nonce = [1u8; 32];
        let bound = bound_to(&a, worker, &nonce);
        let mut policy = Policy::production(governance().public_key(), whitelist_for(&a, 1));
        policy.accepted_tcb = vec!["NoSuchStatus".into()];
        assert!(matches!(policy.check(&bound, worker, &nonce), Err(PolicyError::TcbRefused { .. })));
        policy.accepted_tcb = vec![a.tcb_status.clone()];
        policy.check(&bound, worker, &nonce).unwrap();
        let mut debug = bound.clone();
        debug.debug = true;
        assert_eq!(policy.check(&debug, worker, &nonce).unwrap_err(), PolicyError::DebugRefused(TeeType::Tdx));

        let none = verify_evidence(&Evidence::None, PINNED_NOW).unwrap();
        assert_eq!(policy.check(&none, worker, &nonce).unwrap_err(), PolicyError::NoneRefused);
        assert_eq!(Policy::development(governance().public_key()).check(&none, worker, &nonce).unwrap(), None);
    }

    /// The same firmware (MRTD) with another kernel, command line or owner is refused; so is an
    /// entry that pins MRTD alone.
    #[test]
    fn tdx_needs_every_register_to_match() {
        let a = verify_evidence(&tdx(), PINNED_NOW).unwrap();
        let worker = Felt::from(5u8);
        let nonce = [1u8; 32];
        let bound = bound_to(&a, worker, &nonce);
        let mut policy = Policy::production(governance().public_key(), whitelist_for(&a, 1));
        policy.accepted_tcb = vec![a.tcb_status.clone()];
        policy.check(&bound, worker, &nonce).unwrap();

        for (i, register) in ["RTMR0", "RTMR1", "RTMR2", "RTMR3"].into_iter().enumerate() {
            let mut other_kernel = bound.clone();
            other_kernel.rtmrs[i][0] ^= 1;
            assert!(matches!(
                policy.check(&other_kernel, worker, &nonce),
                Err(PolicyError::RegisterMismatch { register: r, .. }) if r == register
            ));
        }
        let mut other_owner = bound.clone();
        other_owner.mr_owner[47] ^= 0x80;
        assert!(matches!(
            policy.check(&other_owner, worker, &nonce),
            Err(PolicyError::RegisterMismatch { register: "MROWNER", .. })
        ));
        let mut other_config = bound.clone();
        other_config.mr_config_id[0] = 0xff;
        assert!(matches!(
            policy.check(&other_config, worker, &nonce),
            Err(PolicyError::RegisterMismatch { register: "MRCONFIGID", .. })
        ));

        let mut mrtd_only = whitelist_for(&a, 1);
        mrtd_only.entries[0].tdx = None;
        policy.whitelist = mrtd_only;
        assert!(matches!(policy.check(&bound, worker, &nonce), Err(PolicyError::IncompleteTdxEntry { .. })));
    }

    /// An SNP platform below the minimum TCB is refused, component by component.
    #[test]
    fn snp_below_the_minimum_tcb_is_refused() {
        let report = hex::decode(include_str!("../test-data/sev/report_milan.hex").trim()).unwrap();
        let vcek = include_bytes!("../test-data/sev/vcek_milan.der").to_vec();
        let a = verify_evidence(&Evidence::SevSnp { report, vcek_der: vcek }, PINNED_NOW).unwrap();
        let reported = a.snp_tcb().unwrap();
        let worker = Felt::from(5u8);
        let nonce = [1u8; 32];
        let bound = bound_to(&a, worker, &nonce);
        let mut policy = Policy::production(governance().public_key(), whitelist_for(&a, 1));
        policy.snp_min_tcb = reported;
        policy.check(&bound, worker, &nonce).unwrap();
        let raise: [fn(&mut SnpTcb); 4] = [|t| t.bootloader += 1, |t| t.tee += 1, |t| t.snp += 1, |t| t.microcode += 1];
        for bump in raise {
            let mut minimum = reported;
            bump(&mut minimum);
            policy.snp_min_tcb = minimum;
            assert_eq!(policy.check(&bound, worker, &nonce), Err(PolicyError::SnpTcbTooLow { reported, minimum }));
        }
    }
}
