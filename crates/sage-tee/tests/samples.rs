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
