//! Offline verification of DCAP quotes (dcap-qvl) and SEV-SNP reports (sev).

use dcap_qvl::{
    QuoteCollateralV3,
    quote::{Report, TDReport10},
    verify::QuoteVerifier,
};
use serde::{Deserialize, Serialize};
use sev::{
    certs::snp::{
        Certificate, Chain, Verifiable,
        builtin::{genoa, milan, turin},
        ca,
    },
    firmware::guest::AttestationReport,
    parser::ByteParser,
};

pub use sage_types::TeeType;

/// Largest quote or report accepted before parsing (real ones are 1–10 KiB).
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;

/// An SEV-SNP TCB: the security version numbers of the platform's firmware components.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnpTcb {
    /// PSP bootloader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Lowest microcode patch level of all cores.
    pub microcode: u8,
}

impl SnpTcb {
    /// Every component at least `minimum`'s (TCB versions are not totally ordered).
    pub fn meets(&self, minimum: &SnpTcb) -> bool {
        self.bootloader >= minimum.bootloader
            && self.tee >= minimum.tee
            && self.snp >= minimum.snp
            && self.microcode >= minimum.microcode
    }
}

/// What a worker presents.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Evidence {
    /// An SGX or TDX DCAP quote and the collateral for it.
    Dcap {
        /// Raw quote bytes.
        quote: Vec<u8>,
        /// Collateral (PCK CRLs, TCB info, QE identity with their chains).
        collateral: Box<QuoteCollateralV3>,
    },
    /// An SEV-SNP attestation report and the VCEK (DER) that signed it (Milan ARK/ASK built in).
    SevSnp {
        /// Raw 1184-byte report.
        report: Vec<u8>,
        /// VCEK certificate, DER.
        vcek_der: Vec<u8>,
    },
    /// No attestation (development networks).
    None,
}

impl Evidence {
    /// A DCAP quote with collateral given as the JSON that PCCS clients produce.
    pub fn dcap(quote: Vec<u8>, collateral_json: &str) -> Result<Self, TeeError> {
        let collateral: QuoteCollateralV3 = serde_json::from_str(collateral_json)
            .map_err(|e| TeeError::Malformed { what: "collateral JSON", reason: e.to_string() })?;
        Ok(Self::Dcap { quote, collateral: Box::new(collateral) })
    }
}

/// A verified attestation: everything the policy needs.
///
/// Only [`verify_evidence`] makes one: the fields are private and the type is not
/// `Deserialize`, so no code path can hand the policy an attestation that was never verified.
///
/// ```compile_fail
/// // Not deserialisable: an attestation read from the wire must be verified evidence.
/// let a: sage_tee::VerifiedAttestation = serde_json::from_str("{}").unwrap();
/// ```
///
/// ```compile_fail
/// // Not constructible outside the crate.
/// let a = sage_tee::VerifiedAttestation { debug: false, ..todo!() };
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedAttestation {
    pub(crate) tee: TeeType,
    pub(crate) measurement: Vec<u8>,
    pub(crate) rtmrs: Vec<Vec<u8>>,
    pub(crate) mr_config_id: Vec<u8>,
    pub(crate) mr_owner: Vec<u8>,
    pub(crate) mr_owner_config: Vec<u8>,
    pub(crate) snp_tcb: Option<SnpTcb>,
    pub(crate) signer: Vec<u8>,
    pub(crate) report_data: Vec<u8>,
    pub(crate) tcb_status: String,
    pub(crate) advisory_ids: Vec<String>,
    pub(crate) debug: bool,
}

impl VerifiedAttestation {
    /// TEE type.
    pub fn tee(&self) -> TeeType {
        self.tee
    }

    /// MRENCLAVE (SGX, 32 B), MRTD (TDX, 48 B) or MEASUREMENT (SNP, 48 B); empty for `none`.
    pub fn measurement(&self) -> &[u8] {
        &self.measurement
    }

    /// TDX runtime measurement registers RTMR0..3 (empty otherwise).
    pub fn rtmrs(&self) -> &[Vec<u8>] {
        &self.rtmrs
    }

    /// TDX MRCONFIGID, MROWNER and MROWNERCONFIG (48 bytes each; empty otherwise): the TD's
    /// configuration and owner, chosen by whoever launched it.
    pub fn td_config(&self) -> [&[u8]; 3] {
        [&self.mr_config_id, &self.mr_owner, &self.mr_owner_config]
    }

    /// SEV-SNP: the TCB the report says the platform runs (`REPORTED_TCB`); `None` otherwise.
    pub fn snp_tcb(&self) -> Option<SnpTcb> {
        self.snp_tcb
    }

    /// MRSIGNER (SGX), MRSIGNERSEAM (TDX) or author key digest (SNP).
    pub fn signer(&self) -> &[u8] {
        &self.signer
    }

    /// The 64 bytes of report data the TEE attested.
    pub fn report_data(&self) -> &[u8] {
        &self.report_data
    }

    /// TCB status (`UpToDate`, `SWHardeningNeeded`, …; SNP reports carry no status: `Unknown`).
    pub fn tcb_status(&self) -> &str {
        &self.tcb_status
    }

    /// Intel security advisories that apply.
    pub fn advisory_ids(&self) -> &[String] {
        &self.advisory_ids
    }

    /// Whether the enclave / TD / guest allows debugging (its memory is not confidential).
    pub fn debug(&self) -> bool {
        self.debug
    }
}

/// Why evidence did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TeeError {
    /// Evidence larger than [`MAX_EVIDENCE_BYTES`].
    #[error("evidence is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes that do not parse.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Parser message.
        reason: String,
    },
    /// The collateral (TCB info, QE identity, CRLs or certificates) is outside its validity
    /// window at the verification time.
    #[error("attestation collateral expired or not yet valid at {now_secs} (unix seconds): {reason}")]
    Expired {
        /// The verification time.
        now_secs: u64,
        /// Verifier message.
        reason: String,
    },
    /// Signatures, certificate chain or identity checks failed.
    #[error("attestation verification failed: {0}")]
    Invalid(String),
}

/// Verifies `evidence` at `now_secs` (unix seconds). `Evidence::None` yields a `none`
/// attestation that only a development policy accepts.
pub fn verify_evidence(evidence: &Evidence, now_secs: u64) -> Result<VerifiedAttestation, TeeError> {
    match evidence {
        Evidence::Dcap { quote, collateral } => verify_dcap(quote, collateral, now_secs),
        Evidence::SevSnp { report, vcek_der } => verify_snp(report, vcek_der, now_secs),
        Evidence::None => Ok(VerifiedAttestation {
            tee: TeeType::None,
            measurement: Vec::new(),
            rtmrs: Vec::new(),
            mr_config_id: Vec::new(),
            mr_owner: Vec::new(),
            mr_owner_config: Vec::new(),
            snp_tcb: None,
            signer: Vec::new(),
            report_data: Vec::new(),
            tcb_status: "None".into(),
            advisory_ids: Vec::new(),
            debug: true,
        }),
    }
}

fn check_size(len: usize) -> Result<(), TeeError> {
    if len > MAX_EVIDENCE_BYTES {
        return Err(TeeError::TooLarge { size: len, max: MAX_EVIDENCE_BYTES });
    }
    Ok(())
}

fn verify_dcap(quote: &[u8], collateral: &QuoteCollateralV3, now_secs: u64) -> Result<VerifiedAttestation, TeeError> {
    check_size(quote.len())?;
    // Parse first so malformed bytes are reported as such, not as a signature failure.
    dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| TeeError::Malformed { what: "DCAP quote", reason: e.to_string() })?;
    // Debug enclaves are verified here and refused by the policy, which reports them by name.
    let verified = QuoteVerifier::new_prod().allow_debug(true).verify(quote, collateral, now_secs).map_err(|e| {
        let reason = format!("{e:#}");
        let lower = reason.to_ascii_lowercase();
        if lower.contains("expired") || lower.contains("not yet valid") || lower.contains("outdated collateral") {
            TeeError::Expired { now_secs, reason }
        } else {
            TeeError::Invalid(reason)
        }
    })?;
    let advisory_ids = verified.advisory_ids.clone();
    let tcb_status = verified.status.clone();
    Ok(match verified.report {
        Report::SgxEnclave(r) => VerifiedAttestation {
            tee: TeeType::Sgx,
            measurement: r.mr_enclave.to_vec(),
            rtmrs: Vec::new(),
            mr_config_id: Vec::new(),
            mr_owner: Vec::new(),
            mr_owner_config: Vec::new(),
            snp_tcb: None,
            signer: r.mr_signer.to_vec(),
            report_data: r.report_data.to_vec(),
            tcb_status,
            advisory_ids,
            // SGX ATTRIBUTES.FLAGS bit 1: DEBUG.
            debug: r.attributes[0] & 0x02 != 0,
        },
        // TD 1.5 reports extend the 1.0 body; the fields Sage reads live in it.
        Report::TD10(r) => td(&r, tcb_status, advisory_ids),
        Report::TD15(r) => td(&r.base, tcb_status, advisory_ids),
        Report::TD15Ex(r) => td(&r.base.base, tcb_status, advisory_ids),
    })
}

fn td(r: &TDReport10, tcb_status: String, advisory_ids: Vec<String>) -> VerifiedAttestation {
    VerifiedAttestation {
        tee: TeeType::Tdx,
        measurement: r.mr_td.to_vec(),
        rtmrs: [&r.rt_mr0, &r.rt_mr1, &r.rt_mr2, &r.rt_mr3].iter().map(|m| m.to_vec()).collect(),
        mr_config_id: r.mr_config_id.to_vec(),
        mr_owner: r.mr_owner.to_vec(),
        mr_owner_config: r.mr_owner_config.to_vec(),
        snp_tcb: None,
        signer: r.mr_signer_seam.to_vec(),
        report_data: r.report_data.to_vec(),
        tcb_status,
        advisory_ids,
        // TDX TD_ATTRIBUTES bit 0: DEBUG.
        debug: r.td_attributes[0] & 0x01 != 0,
    }
}

fn verify_snp(report: &[u8], vcek_der: &[u8], now_secs: u64) -> Result<VerifiedAttestation, TeeError> {
    check_size(report.len())?;
    check_size(vcek_der.len())?;
    let parsed = AttestationReport::from_bytes(report)
        .map_err(|e| TeeError::Malformed { what: "SEV-SNP report", reason: e.to_string() })?;
    let vcek = Certificate::from_der(vcek_der)
        .map_err(|e| TeeError::Malformed { what: "VCEK certificate", reason: e.to_string() })?;
    // The VCEK is valid for a window (AMD issues them for years, not forever): outside it the
    // report is refused, as expired DCAP collateral is.
    let validity = x509_cert::Certificate::from(vcek.clone()).tbs_certificate.validity;
    let (from, until) =
        (validity.not_before.to_unix_duration().as_secs(), validity.not_after.to_unix_duration().as_secs());
    if now_secs < from || now_secs > until {
        return Err(TeeError::Expired {
            now_secs,
            reason: format!("the VCEK is valid from {from} to {until} (unix seconds)"),
        });
    }
    // AMD's roots per EPYC generation, built into `sev`: the VCEK must chain to one of them and
    // sign the report.
    type Roots = fn() -> std::io::Result<Certificate>;
    let generations: [(&str, Roots, Roots); 3] =
        [("Milan", milan::ark, milan::ask), ("Genoa", genoa::ark, genoa::ask), ("Turin", turin::ark, turin::ask)];
    let mut failures = Vec::new();
    let verified = generations.iter().any(|(name, ark, ask)| {
        let roots = ark().and_then(|ark| ask().map(|ask| ca::Chain { ark, ask }));
        let outcome = roots
            .and_then(|ca| (&Chain { ca, vek: vcek.clone() }, &parsed).verify().map(drop))
            .map_err(|e| e.to_string());
        if let Err(e) = &outcome {
            failures.push(format!("{name}: {e}"));
        }
        outcome.is_ok()
    });
    if !verified {
        return Err(TeeError::Invalid(format!(
            "SEV-SNP report signature or VCEK chain does not verify under AMD's Milan, Genoa or Turin roots ({})",
            failures.join("; ")
        )));
    }
    let t = parsed.reported_tcb;
    Ok(VerifiedAttestation {
        tee: TeeType::SevSnp,
        measurement: parsed.measurement.to_vec(),
        rtmrs: Vec::new(),
        mr_config_id: Vec::new(),
        mr_owner: Vec::new(),
        mr_owner_config: Vec::new(),
        snp_tcb: Some(SnpTcb { bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode }),
        signer: parsed.author_key_digest.to_vec(),
        report_data: parsed.report_data.to_vec(),
        tcb_status: "Unknown".into(),
        advisory_ids: Vec::new(),
        debug: parsed.policy.debug_allowed(),
    })
}
