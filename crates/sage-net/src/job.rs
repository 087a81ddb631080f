//! Job assignments and job results: the payloads of [`Topic::Jobs`] and [`Topic::Results`].
//!
//! A coordinator gossips a [`JobAssignment`] naming the worker that must prove the job; that worker
//! answers with a [`JobResult`]: either where to fetch the proof envelope (by content hash, over
//! request-response: envelopes exceed gossip's limit) or why it refused the job. Both travel
//! inside a [`SignedMessage`], so the receiver knows who sent them; each side pins whose messages
//! it acts on (a worker acts only on its configured coordinator's key).

use serde::{Deserialize, Serialize};
use starknet_types_core::felt::Felt;

use crate::message::{MessageError, SignedMessage, Topic};
use sage_keys::StarkKey;

/// Longest refusal reason carried in a [`JobOutcome::Refused`].
pub const MAX_REASON_BYTES: usize = 512;

/// What a job computes, with its inputs: the one [`sage_protocol::JobSpec`] (small enough for
/// gossip; matrices travel as blobs the spec names by sha256, fetched from
/// [`JobAssignment::inputs_from`]).
pub use sage_protocol::JobSpec as JobRequest;

/// A coordinator's assignment of one job to one worker (payload of [`Topic::Jobs`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAssignment {
    /// Job id, as on-chain.
    pub job_id: Felt,
    /// Account address of the worker that must prove it (the proof is bound to it).
    pub worker: Felt,
    /// What to compute.
    pub request: JobRequest,
    /// Unix seconds after which the worker must not start the job.
    pub expires_at: u64,
    /// When this copy was sent (Unix ms). An assignment the worker does not acknowledge is sent
    /// again; gossip drops a message it has seen, so each copy must differ.
    #[serde(default)]
    pub sent_at_ms: u64,
    /// Peer id serving the job's input blobs ([`sage_protocol::JobSpec::blobs`]) over
    /// request-response: the coordinator's. Absent when the job reads none. The blobs are checked
    /// against their digests, so the peer needs no trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_from: Option<String>,
}

/// What a worker did with a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobOutcome {
    /// Proved: fetch the envelope by `blob` from `provider`.
    Proved {
        /// The envelope's proof hash (blake3, what validators vote on), `0x`-hex.
        proof_hash: String,
        /// sha256 of the compressed envelope: the request-response key.
        #[serde(with = "sage_protocol::hex32")]
        blob: [u8; 32],
        /// Peer id serving the blob.
        provider: String,
        /// Compressed envelope size.
        bytes: u64,
        /// Backend that made the proof (`cpu`, `gpu`; `stored` when answered from a proof made
        /// earlier).
        backend: String,
        /// Proving time in milliseconds.
        prove_ms: u64,
    },
    /// Refused (too large, expired, proving failed); the job can be reassigned.
    Refused {
        /// Why, for people (at most [`MAX_REASON_BYTES`]).
        reason: String,
    },
}

/// A worker's answer to an assignment (payload of [`Topic::Results`]; the envelope's signer is the
/// worker's Stark key, and `worker` must be that key's Sage account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// Job id.
    pub job_id: Felt,
    /// Worker account address.
    pub worker: Felt,
    /// Outcome.
    pub outcome: JobOutcome,
}

fn read<T: serde::de::DeserializeOwned>(msg: &SignedMessage, topic: Topic) -> Result<T, MessageError> {
    if msg.topic != topic {
        return Err(MessageError::WrongTopic { signed: msg.topic, arrived: topic });
    }
    serde_json::from_slice(&msg.payload).map_err(|e| MessageError::Malformed(e.to_string()))
}

fn sign<T: Serialize>(value: &T, topic: Topic, key: &StarkKey, network: Felt) -> Result<SignedMessage, MessageError> {
    let payload = serde_json::to_vec(value).map_err(|e| MessageError::Malformed(e.to_string()))?;
    SignedMessage::sign(network, topic, payload, key)
}

impl JobAssignment {
    /// Signs this assignment into a gossip message for [`Topic::Jobs`] on `network`.
    pub fn sign(&self, key: &StarkKey, network: Felt) -> Result<SignedMessage, MessageError> {
        sign(self, Topic::Jobs, key, network)
    }

    /// Reads an assignment out of a verified message (the caller still checks the signer).
    pub fn from_message(msg: &SignedMessage) -> Result<Self, MessageError> {
        let assignment: Self = read(msg, Topic::Jobs)?;
        if let Some(peer) = &assignment.inputs_from
            && peer.parse::<libp2p::PeerId>().is_err()
        {
            return Err(MessageError::Malformed(format!("inputs_from {peer:?} is not a peer id")));
        }
        Ok(assignment)
    }
}

impl JobResult {
    /// Signs this result into a gossip message for [`Topic::Results`] on `network`.
    pub fn sign(&self, key: &StarkKey, network: Felt) -> Result<SignedMessage, MessageError> {
        self.check()?;
        sign(self, Topic::Results, key, network)
    }

    /// Reads a result out of a verified message; its `worker` must be the signer's account
    /// ([`MessageError::WorkerNotSigner`] otherwise).
    pub fn from_message(msg: &SignedMessage) -> Result<Self, MessageError> {
        let result: Self = read(msg, Topic::Results)?;
        result.check()?;
        msg.check_worker(result.worker)?;
        Ok(result)
    }

    fn check(&self) -> Result<(), MessageError> {
        match &self.outcome {
            JobOutcome::Refused { reason } if reason.len() > MAX_REASON_BYTES => Err(MessageError::Malformed(format!(
                "refusal reason of {} bytes exceeds {MAX_REASON_BYTES}",
                reason.len()
            ))),
            JobOutcome::Proved { provider, .. } if provider.parse::<libp2p::PeerId>().is_err() => {
                Err(MessageError::Malformed(format!("provider {provider:?} is not a peer id")))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: Felt = Felt::from_hex_unchecked("0x534e5f5345504f4c4941");

    fn key(secret: u8) -> StarkKey {
        StarkKey::from_secret(Felt::from(secret)).unwrap()
    }

    fn account(secret: u8) -> Felt {
        let k = key(secret);
        sage_keys::oz_account_address(k.public_key(), k.public_key())
    }

    #[test]
    fn assignment_roundtrip_is_bound_to_its_topic() {
        let job = JobAssignment {
            sent_at_ms: 0,
            inputs_from: None,
            job_id: Felt::from(7u8),
            worker: Felt::from(9u8),
            request: JobRequest::Matmul { n: 64, seed: Felt::from(3u8) },
            expires_at: 1_900_000_000,
        };
        let msg = job.sign(&key(5), NET).unwrap();
        let got = SignedMessage::decode_and_verify(&msg.encode(), NET, Topic::Jobs).unwrap();
        assert_eq!(got.signer, key(5).public_key());
        assert_eq!(JobAssignment::from_message(&got).unwrap(), job);
        // The same bytes presented as a result are refused.
        assert!(matches!(JobResult::from_message(&got), Err(MessageError::WrongTopic { .. })));
        assert!(matches!(
            SignedMessage::decode_and_verify(&msg.encode(), NET, Topic::Results),
            Err(MessageError::WrongTopic { .. })
        ));
    }

    #[test]
    fn an_assignment_names_where_its_input_blobs_are_served() {
        let peer = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();
        let job = JobAssignment {
            job_id: Felt::from(7u8),
            worker: Felt::from(9u8),
            request: JobRequest::MatmulData { n: 4, a: [1; 32], b: [2; 32] },
            expires_at: 1_900_000_000,
            sent_at_ms: 5,
            inputs_from: Some(peer),
        };
        let msg = job.sign(&key(1), NET).unwrap();
        let got = SignedMessage::decode_and_verify(&msg.encode(), NET, Topic::Jobs).unwrap();
        assert_eq!(JobAssignment::from_message(&got).unwrap(), job);
        let bad = JobAssignment { inputs_from: Some("not-a-peer".into()), ..job };
        let msg = bad.sign(&key(1), NET).unwrap();
        assert!(matches!(JobAssignment::from_message(&msg), Err(MessageError::Malformed(_))));
    }

    #[test]
    fn results_roundtrip_and_bad_fields_are_refused() {
        let provider = libp2p::identity::Keypair::generate_ed25519().public().to_peer_id().to_string();
        let proved = JobResult {
            job_id: Felt::from(7u8),
            worker: account(5),
            outcome: JobOutcome::Proved {
                proof_hash: "0xab".into(),
                blob: [0xcd; 32],
                provider: provider.clone(),
                bytes: 1234,
                backend: "gpu".into(),
                prove_ms: 50,
            },
        };
        let msg = proved.sign(&key(5), NET).unwrap();
        let text = String::from_utf8(msg.payload.clone()).unwrap();
        assert!(text.contains(&format!("\"0x{}\"", "cd".repeat(32))), "{text}");
        let got = SignedMessage::decode_and_verify(&msg.encode(), NET, Topic::Results).unwrap();
        assert_eq!(JobResult::from_message(&got).unwrap(), proved);

        let long =
            JobResult { outcome: JobOutcome::Refused { reason: "x".repeat(MAX_REASON_BYTES + 1) }, ..proved.clone() };
        assert!(matches!(long.sign(&key(5), NET), Err(MessageError::Malformed(_))));
        let bad_provider = JobResult {
            outcome: JobOutcome::Proved {
                proof_hash: "0x1".into(),
                blob: [0; 32],
                provider: "not a peer".into(),
                bytes: 1,
                backend: "cpu".into(),
                prove_ms: 1,
            },
            ..proved
        };
        assert!(matches!(bad_provider.sign(&key(5), NET), Err(MessageError::Malformed(_))));
        // A result whose blob hash is short is malformed, not silently padded.
        let forged = SignedMessage::sign(
            NET,
            Topic::Results,
            format!(
                r#"{{"job_id":"0x7","worker":"0x9","outcome":{{"status":"proved","proof_hash":"0x1","blob":"0xabcd","provider":"{provider}","bytes":1,"backend":"cpu","prove_ms":1}}}}"#
            )
            .into_bytes(),
            &key(5),
        )
        .unwrap();
        assert!(matches!(JobResult::from_message(&forged), Err(MessageError::Malformed(_))));
        // One encoding per hash: no missing prefix, no sign characters.
        for blob in ["cd".repeat(32), format!("0x+f{}", "0".repeat(62))] {
            let text = format!(
                r#"{{"job_id":"0x7","worker":"0x9","outcome":{{"status":"proved","proof_hash":"0x1","blob":"{blob}","provider":"{provider}","bytes":1,"backend":"cpu","prove_ms":1}}}}"#
            );
            let msg = SignedMessage::sign(NET, Topic::Results, text.into_bytes(), &key(5)).unwrap();
            assert!(matches!(JobResult::from_message(&msg), Err(MessageError::Malformed(_))), "{blob}");
        }
    }

    /// A result in another worker's name (to steal its job or its payment) is refused.
    #[test]
    fn a_result_for_another_worker_is_refused() {
        let result = JobResult {
            job_id: Felt::from(7u8),
            worker: account(6),
            outcome: JobOutcome::Refused { reason: "busy".into() },
        };
        let forged = result.sign(&key(5), NET).unwrap();
        assert_eq!(
            JobResult::from_message(&forged),
            Err(MessageError::WorkerNotSigner { worker: account(6), signer_account: account(5) })
        );
        assert_eq!(JobResult::from_message(&result.sign(&key(6), NET).unwrap()).unwrap(), result);
    }
}
