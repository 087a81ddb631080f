//! Gossip messages: `SignedMessage::decode_and_verify` on raw bytes for every topic, and the
//! payload decoders each receiver runs, reached with a real signature over the fuzzed payload.
//!
//! Input: byte 0 picks the mode and topic, the rest is either the raw message (mode 0) or a
//! payload the fixture key signs (mode 1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sage_fuzz::{NETWORK, signer};
use sage_net::{Heartbeat, JobAssignment, JobResult, SignedMessage, Topic};

fn receive(message: &SignedMessage) {
    // What the worker, the coordinator and the validators do with a verified message.
    let _ = JobAssignment::from_message(message);
    let _ = JobResult::from_message(message);
    let _ = Heartbeat::from_message(message);
    let _ = serde_json::from_slice::<sage_consensus::SignedVote>(&message.payload);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let topic = Topic::ALL[usize::from(selector & 3)];
    if selector & 4 == 0 {
        if let Ok(message) = SignedMessage::decode_and_verify(rest, NETWORK, topic) {
            assert_eq!(message.topic, topic, "a message verified on the wrong topic");
            receive(&message);
        }
        return;
    }
    let Ok(message) = SignedMessage::sign(NETWORK, topic, rest.to_vec(), &signer()) else { return };
    let wire = message.encode();
    let back = SignedMessage::decode_and_verify(&wire, NETWORK, topic).expect("a signed message verifies");
    assert_eq!(back, message, "decode(encode(m)) != m");
    for other in Topic::ALL.into_iter().filter(|t| *t != topic) {
        assert!(SignedMessage::decode_and_verify(&wire, NETWORK, other).is_err(), "replayed on another topic");
    }
    receive(&back);
});
