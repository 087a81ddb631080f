//! sage-tee on the real sample quotes and reports shipped by dcap-qvl and sev (see
//! `test-data/README.md`).

use proptest::prelude::*;
use sage_keys::StarkKey;
use sage_tee::{
    Evidence, Policy, PolicyError, SignedWhitelist, TeeError, TeeType, VerifiedAttestation, Whitelist, WhitelistEntry,
    verify_evidence,
};
use starknet_types_core::felt::Felt;

/// 2025-06-25T00:00:00Z: inside the samples' collateral validity window (issued 2025-06-19).
const PINNED_NOW: u64 = 1_750_809_600;

const SGX_QUOTE: &[u8] = include_bytes!("../test-data/dcap-qvl/sgx_quote");
const SGX_COLLATERAL: &str = include_str!("../test-data/dcap-qvl/sgx_quote_collateral.json");
const TDX_QUOTE: &[u8] = include_bytes!("../test-data/dcap-qvl/tdx_quote");
const TDX_COLLATERAL: &str = include_str!("../test-data/dcap-qvl/tdx_quote_collateral.json");
const SNP_REPORT_HEX: &str = include_str!("../test-data/sev/report_milan.hex");
const SNP_VCEK: &[u8] = include_bytes!("../test-data/sev/vcek_milan.der");

fn sgx() -> Evidence {
    Evidence::dcap(SGX_QUOTE.to_vec(), SGX_COLLATERAL).unwrap()
}

fn tdx() -> Evidence {
    Evidence::dcap(TDX_QUOTE.to_vec(), TDX_COLLATERAL).unwrap()
}

fn snp_report() -> Vec<u8> {
    hex::decode(SNP_REPORT_HEX.trim()).unwrap()
}

fn snp() -> Evidence {
    Evidence::SevSnp { report: snp_report(), vcek_der: SNP_VCEK.to_vec() }
}

#[test]
fn sgx_sample_verifies_at_a_pinned_time() {
    let a = verify_evidence(&sgx(), PINNED_NOW).unwrap();
    assert_eq!(a.tee(), TeeType::Sgx);
    assert_eq!(a.measurement().len(), 32);
    assert_eq!(a.signer().len(), 32);
    assert_eq!(a.report_data().len(), 64);
    assert!(!a.tcb_status().is_empty());
}

#[test]
fn tdx_sample_verifies_at_a_pinned_time() {
    let a = verify_evidence(&tdx(), PINNED_NOW).unwrap();
    assert_eq!(a.tee(), TeeType::Tdx);
    assert_eq!(a.measurement().len(), 48);
    assert_eq!(a.rtmrs().len(), 4);
}

#[test]
fn snp_sample_verifies() {
    let a = verify_evidence(&snp(), PINNED_NOW).unwrap();
    assert_eq!(a.tee(), TeeType::SevSnp);
    assert_eq!(a.measurement().len(), 48);
}

#[test]
fn real_clock_reports_expired_collateral() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for evidence in [sgx(), tdx()] {
        let err = verify_evidence(&evidence, now).unwrap_err();
        assert!(matches!(err, TeeError::Expired { .. }), "expected expiry, got {err}");
        assert!(err.to_string().contains("expired"), "{err}");
    }
}

#[test]
fn tampered_quotes_and_reports_are_rejected() {
    // Flip a byte in the report body (signed by the QE) and in the signature area.
    for offset in [100, 200, SGX_QUOTE.len() - 10] {
        let mut q = SGX_QUOTE.to_vec();
        q[offset] ^= 0x01;
        let err = verify_evidence(&Evidence::dcap(q, SGX_COLLATERAL).unwrap(), PINNED_NOW).unwrap_err();
        assert!(matches!(err, TeeError::Invalid(_) | TeeError::Malformed { .. }), "offset {offset}: {err}");
    }
    // The TDX quote against the SGX collateral.
    let err = verify_evidence(&Evidence::dcap(TDX_QUOTE.to_vec(), SGX_COLLATERAL).unwrap(), PINNED_NOW).unwrap_err();
    assert!(matches!(err, TeeError::Invalid(_)), "{err}");
    // SNP: a flipped measurement bit.
    let mut r = snp_report();
    r[0x90] ^= 0x80;
    let err = verify_evidence(&Evidence::SevSnp { report: r, vcek_der: SNP_VCEK.to_vec() }, PINNED_NOW).unwrap_err();
    assert!(matches!(err, TeeError::Invalid(_)), "{err}");
}

#[test]
fn malformed_and_oversized_inputs_are_typed_errors() {
    assert!(matches!(Evidence::dcap(vec![1, 2, 3], "{not json"), Err(TeeError::Malformed { .. })));
    let err = verify_evidence(&Evidence::dcap(vec![0; 10], SGX_COLLATERAL).unwrap(), PINNED_NOW).unwrap_err();
    assert!(matches!(err, TeeError::Malformed { .. }), "{err}");
    let err = verify_evidence(&Evidence::dcap(vec![0; 100_000], SGX_COLLATERAL).unwrap(), PINNED_NOW).unwrap_err();
    assert!(matches!(err, TeeError::TooLarge { .. }), "{err}");
    let err = verify_evidence(&Evidence::SevSnp { report: vec![0; 16], vcek_der: SNP_VCEK.to_vec() }, PINNED_NOW)
        .unwrap_err();
    assert!(matches!(err, TeeError::Malformed { .. }), "{err}");
    let err = verify_evidence(&Evidence::SevSnp { report: snp_report(), vcek_der: vec![0x30, 0x01] }, PINNED_NOW)
        .unwrap_err();
    assert!(matches!(err, TeeError::Malformed { .. }), "{err}");
}

fn governance() -> StarkKey {
    StarkKey::from_secret(Felt::from(0x60_0e_u32)).unwrap()
}

fn whitelist_for(a: &VerifiedAttestation, version: u64) -> Whitelist {
    Whitelist { version, entries: vec![WhitelistEntry::for_attestation(a, "1.0.0")] }
}

#[test]
fn whitelist_updates_need_the_governance_signature_and_a_newer_version() {
    let a = verify_evidence(&snp(), PINNED_NOW).unwrap();
    let mut policy = Policy::production(governance().public_key(), Whitelist { version: 3, entries: vec![] });
    let intruder = StarkKey::from_secret(Felt::from(0xbadu32)).unwrap();
    let forged = SignedWhitelist::sign(whitelist_for(&a, 4), &intruder).unwrap();
    assert_eq!(policy.update_whitelist(forged).unwrap_err(), PolicyError::BadSignature);
    let mut altered = SignedWhitelist::sign(whitelist_for(&a, 4), &governance()).unwrap();
    altered.whitelist.entries[0].image_version = "evil".into();
    assert_eq!(policy.update_whitelist(altered).unwrap_err(), PolicyError::BadSignature);
    let old = SignedWhitelist::sign(whitelist_for(&a, 3), &governance()).unwrap();
    assert!(matches!(policy.update_whitelist(old), Err(PolicyError::StaleWhitelist { offered: 3, current: 3 })));
    policy.update_whitelist(SignedWhitelist::sign(whitelist_for(&a, 4), &governance()).unwrap()).unwrap();
    assert_eq!(policy.whitelist.version, 4);
    // The whitelist travels as a file.
    let json = serde_json::to_string(&policy.whitelist).unwrap();
    assert_eq!(Whitelist::from_json(&json).unwrap(), policy.whitelist);
    assert!(matches!(Whitelist::from_json("[]"), Err(PolicyError::BadWhitelist(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The quote and report parsers never panic on arbitrary bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let _ = verify_evidence(&Evidence::dcap(bytes.clone(), SGX_COLLATERAL).unwrap(), PINNED_NOW);
        let _ = verify_evidence(&Evidence::SevSnp { report: bytes, vcek_der: SNP_VCEK.to_vec() }, PINNED_NOW);
    }

    /// Random corruptions of a real quote never panic and never verify.
    #[test]
    fn corrupted_real_quote_never_verifies(offset in 0usize..4600, xor in 1u8..=255) {
        let mut q = SGX_QUOTE.to_vec();
        q[offset] ^= xor;
        let result = verify_evidence(&Evidence::dcap(q, SGX_COLLATERAL).unwrap(), PINNED_NOW);
        // Bytes outside the signed body and signature (e.g. trailing padding) may not matter;
        // anything that still verifies must report the original measurement.
        if let Ok(a) = result {
            let original = verify_evidence(&sgx(), PINNED_NOW).unwrap();
            prop_assert_eq!(a.measurement(), original.measurement());
            prop_assert_eq!(a.report_data(), original.report_data());
        }
    }
}

/// A configfs-tsm report entry as the kernel presents it, holding a real sample blob.
fn tsm_entry(provider: &str, outblob: &[u8], auxblob: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("provider"), format!("{provider}\n")).unwrap();
    std::fs::write(dir.path().join("generation"), "1\n").unwrap();
    std::fs::write(dir.path().join("outblob"), outblob).unwrap();
    if let Some(aux) = auxblob {
        std::fs::write(dir.path().join("auxblob"), aux).unwrap();
    }
    dir
}

#[test]
fn collected_sample_evidence_verifies_but_is_refused_when_it_does_not_bind_the_worker() {
    use sage_tee::collect::{AttestError, CollectError, attest_worker, collect_configfs};
    let worker = Felt::from(0xabcu32);
    let nonce = [7u8; 32];
    let binding = sage_tee::report_data_binding(worker, &nonce);

    // TDX: the quote is read after the binding is written; with its collateral it verifies at
    // the samples' time, and its report data (not ours) is refused.
    let tdx_entry = tsm_entry("tdx_guest", TDX_QUOTE, None);
    let collected = collect_configfs(tdx_entry.path(), &binding).unwrap();
    assert_eq!(std::fs::read(tdx_entry.path().join("inblob")).unwrap(), binding);
    assert_eq!((collected.tee, collected.outblob.as_slice()), (TeeType::Tdx, TDX_QUOTE));
    assert_eq!(collected.clone().into_evidence(None, None).unwrap_err(), CollectError::NeedsCollateral);
    let err = attest_worker(tdx_entry.path(), worker, nonce, None, Some(TDX_COLLATERAL), None, PINNED_NOW).unwrap_err();
    assert_eq!(err, AttestError::NotBound { tee: TeeType::Tdx });
    // At today's time the samples' collateral has expired: a typed refusal too.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let err = attest_worker(tdx_entry.path(), worker, nonce, None, Some(TDX_COLLATERAL), None, now).unwrap_err();
    assert!(matches!(err, AttestError::Verify(TeeError::Expired { .. })), "{err}");
    let err = attest_worker(tdx_entry.path(), worker, nonce, Some(TeeType::SevSnp), None, None, now).unwrap_err();
    assert_eq!(err, AttestError::WrongTee { wanted: TeeType::SevSnp, found: TeeType::Tdx });

    // SEV-SNP: the VCEK comes from the host's certificate table; without one it must be given.
    let snp_entry = tsm_entry("sev_guest", &snp_report(), Some(&sage_tee::collect::vcek_cert_table(SNP_VCEK)));
    let err =
        attest_worker(snp_entry.path(), worker, nonce, Some(TeeType::SevSnp), None, None, PINNED_NOW).unwrap_err();
    assert_eq!(err, AttestError::NotBound { tee: TeeType::SevSnp });
    let bare = tsm_entry("sev_guest", &snp_report(), None);
    let err = attest_worker(bare.path(), worker, nonce, None, None, None, PINNED_NOW).unwrap_err();
    assert_eq!(err, AttestError::Collect(CollectError::NeedsVcek));
    let err = attest_worker(bare.path(), worker, nonce, None, None, Some(SNP_VCEK.to_vec()), PINNED_NOW).unwrap_err();
    assert_eq!(err, AttestError::NotBound { tee: TeeType::SevSnp });
    // A forged VCEK in the table fails the chain to AMD's root.
    let forged = tsm_entry("sev_guest", &snp_report(), Some(&sage_tee::collect::vcek_cert_table(b"not a certificate")));
    let err = attest_worker(forged.path(), worker, nonce, None, None, None, PINNED_NOW).unwrap_err();
    assert!(matches!(err, AttestError::Verify(_)), "{err}");

    // No interface, or an unknown provider: named.
    let missing = std::path::Path::new("/nonexistent/tsm/report");
    assert_eq!(collect_configfs(missing, &binding).unwrap_err(), CollectError::NoInterface(missing.to_owned()));
    let odd = tsm_entry("cca_guest", b"x", None);
    assert_eq!(collect_configfs(odd.path(), &binding).unwrap_err(), CollectError::UnknownProvider("cca_guest".into()));
    // A root that is not a report entry gets a fresh entry of its own (here no kernel fills it
    // in, so reading the provider fails, and the error names the file).
    let root = tempfile::tempdir().unwrap();
    match collect_configfs(root.path(), &binding).unwrap_err() {
        CollectError::Io { path, .. } => {
            assert!(path.ends_with("provider") && path.parent().unwrap().parent() == Some(root.path()), "{path:?}")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn the_chain_digests_depend_on_the_measurement_and_the_quote() {
    let a = verify_evidence(&tdx(), PINNED_NOW).unwrap();
    let (m, q) = sage_tee::collect::onchain_digests(&tdx(), &a);
    let s = verify_evidence(&snp(), PINNED_NOW).unwrap();
    let (m2, q2) = sage_tee::collect::onchain_digests(&snp(), &s);
    assert_ne!(m, m2);
    assert_ne!(q, q2);
    assert!(m.to_bytes_be()[0] < 8 && q.to_bytes_be()[0] < 8, "below 2^251");
}

#[test]
fn an_snp_report_is_refused_outside_its_vceks_validity_window() {
    assert!(verify_evidence(&snp(), PINNED_NOW).is_ok());
    for at in [0, 7_258_118_400] {
        match verify_evidence(&snp(), at) {
            Err(TeeError::Expired { now_secs, reason }) => {
                assert_eq!(now_secs, at);
                assert!(reason.contains("VCEK"), "{reason}");
            }
            other => panic!("at {at}: {other:?}"),
        }
    }
}
