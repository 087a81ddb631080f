//! TEE evidence from workers: DCAP quotes (SGX and TDX), SEV-SNP reports, VCEK certificates and
//! certificate tables, PCCS collateral JSON and governance whitelists, each checked with the real
//! sample data as its counterpart so mutations reach deep into parsing and verification.
//!
//! Input: byte 0 picks what the rest of the bytes stand for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sage_fuzz::{SAMPLES_NOW, SGX_COLLATERAL, SGX_QUOTE, SNP_REPORT_HEX, SNP_VCEK, TDX_COLLATERAL};
use sage_tee::{Evidence, Whitelist, verify_evidence};

fn check(evidence: &Evidence) {
    if let Ok(attestation) = verify_evidence(evidence, SAMPLES_NOW) {
        // Whatever verifies reports a measurement of its TEE's size.
        assert!(matches!(attestation.measurement().len(), 32 | 48), "odd measurement");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 7 {
        0 => check(&Evidence::dcap(rest.to_vec(), SGX_COLLATERAL).expect("sample collateral parses")),
        1 => check(&Evidence::dcap(rest.to_vec(), TDX_COLLATERAL).expect("sample collateral parses")),
        2 => check(&Evidence::SevSnp { report: rest.to_vec(), vcek_der: SNP_VCEK.to_vec() }),
        3 => {
            let report = hex::decode(SNP_REPORT_HEX.trim()).expect("sample hex");
            check(&Evidence::SevSnp { report, vcek_der: rest.to_vec() });
        }
        4 => {
            if let Ok(json) = std::str::from_utf8(rest)
                && let Ok(evidence) = Evidence::dcap(SGX_QUOTE.to_vec(), json)
            {
                check(&evidence);
            }
        }
        5 => {
            if let Some(vcek) = sage_tee::collect::vcek_from_cert_table(rest) {
                let report = hex::decode(SNP_REPORT_HEX.trim()).expect("sample hex");
                check(&Evidence::SevSnp { report, vcek_der: vcek });
            }
        }
        _ => {
            if let Ok(json) = std::str::from_utf8(rest) {
                let _ = Whitelist::from_json(json);
            }
        }
    }
});
