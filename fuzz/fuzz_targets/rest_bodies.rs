//! REST bodies, both ways: what the coordinator parses from clients (`POST /v1/jobs`), what a
//! validator's bridge parses from coordinators (`POST /v1/validate`), and what a coordinator or
//! the SDK parses from the other side's answers (bridge votes, job views, problems).
//!
//! Input: byte 0 picks the body type. Oracle for bridge answers: the fixture validator only ever
//! signed a `valid` vote for the fixture round, so no mutation may check as anything else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sage_consensus::{
    RoundId, Verdict, VoteDomain,
    bridge::{ValidateRequest, ValidateResponse},
};
use sage_fuzz::{bridge_round, signer, vote_domain};
use sage_protocol::api::{JobView, Problem, SubmitJob};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 5 {
        0 => {
            if let Ok(submit) = SubmitJob::from_json(body) {
                submit.spec.validate().expect("from_json returned a spec that fails its own rules");
            }
        }
        1 => {
            let _ = serde_json::from_slice::<ValidateRequest>(body);
        }
        2 => {
            if let Ok(answer) = serde_json::from_slice::<ValidateResponse>(body) {
                let domain: VoteDomain = vote_domain();
                let round: RoundId = bridge_round();
                if let Ok(verdict) = answer.check(&domain, &[signer().public_key()], round) {
                    assert_eq!(verdict, Verdict::Valid, "a vote nobody signed passed the check");
                }
            }
        }
        3 => {
            let _ = serde_json::from_slice::<JobView>(body);
        }
        _ => {
            let _ = serde_json::from_slice::<Problem>(body);
        }
    }
});
