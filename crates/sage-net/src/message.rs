//! Signed, versioned, size-limited gossip messages.
//!
//! ```text
//! wire      = JSON { v: 1, topic, signer, payload (base64-free: bytes as array), r, s }
//! signed    = Poseidon('SAGE_NET_MSG_V1', topic_tag, signer, sha256(payload)[0..16], sha256(payload)[16..32])
//! ```
//!
//! A message reaches application code only after its version, size, topic and Stark ECDSA
//! signature were checked; anything else is rejected at the gossip layer (and not forwarded).

use sage_keys::{SignError, Signature, StarkKey, verify_signature};
use sage_types::GpuTier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

/// Wire format version.
pub const MESSAGE_VERSION: u8 = 1;
/// Largest application payload carried by gossip (proofs travel by request-response).
pub const MAX_PAYLOAD_BYTES: usize = 48 * 1024;
/// `'SAGE_NET_MSG_V1'`.
const MESSAGE_TAG: Felt = Felt::from_hex_unchecked("0x534147455f4e45545f4d53475f5631");

/// The gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// Job announcements (coordinator → workers).
    Jobs,
    /// Worker heartbeats.
    Heartbeats,
    /// Validator votes.
    Votes,
    /// Job results (workers → coordinator and validators).
    Results,
}

impl Topic {
    /// All topics.
    pub const ALL: [Topic; 4] = [Topic::Jobs, Topic::Heartbeats, Topic::Votes, Topic::Results];

    /// The gossipsub topic string.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jobs => "/sage/1/jobs",
            Self::Heartbeats => "/sage/1/heartbeats",
            Self::Votes => "/sage/1/votes",
            Self::Results => "/sage/1/results",
        }
    }

    /// Topic from its gossipsub string.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn tag(self) -> Felt {
        Felt::from(match self {
            Self::Jobs => 1u8,
            Self::Heartbeats => 2,
            Self::Votes => 3,
            Self::Results => 4,
        })
    }
}

/// A message as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage {
    /// [`MESSAGE_VERSION`].
    pub v: u8,
    /// Topic it was signed for (a message replayed on another topic fails).
    pub topic: Topic,
    /// Stark public key of the signer.
    pub signer: Felt,
    /// Application payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Signature.
    pub signature: Signature,
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// More bytes than allowed.
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Not a message at all.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Unknown version.
    #[error("unsupported message version {0}")]
    Version(u8),
    /// Signed for another topic than it arrived on.
    #[error("message signed for {signed:?} arrived on {arrived:?}")]
    WrongTopic {
        /// In the message.
        signed: Topic,
        /// Where it arrived.
        arrived: Topic,
    },
    /// Signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
}

fn signed_hash(topic: Topic, signer: Felt, payload: &[u8]) -> Felt {
    let digest = Sha256::digest(payload);
    poseidon_hash_many(&[
        MESSAGE_TAG,
        topic.tag(),
        signer,
        Felt::from_bytes_be_slice(&digest[..16]),
        Felt::from_bytes_be_slice(&digest[16..]),
    ])
}

impl SignedMessage {
    /// Signs `payload` for `topic`.
    pub fn sign(topic: Topic, payload: Vec<u8>, key: &StarkKey) -> Result<Self, MessageError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(MessageError::TooLarge { size: payload.len(), max: MAX_PAYLOAD_BYTES });
        }
        let signature = key.sign(signed_hash(topic, key.public_key(), &payload))?;
        Ok(Self { v: MESSAGE_VERSION, topic, signer: key.public_key(), payload, signature })
    }

    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks bytes that arrived on `topic`.
    pub fn decode_and_verify(bytes: &[u8], topic: Topic) -> Result<Self, MessageError> {
        let max = MAX_PAYLOAD_BYTES * 4 + 1024;
        if bytes.len() > max {
            return Err(MessageError::TooLarge { size: bytes.len(), max });
        }
        let msg: Self = serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if msg.v != MESSAGE_VERSION {
            return Err(MessageError::Version(msg.v));
        }
        if msg.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(MessageError::TooLarge { size: msg.payload.len(), max: MAX_PAYLOAD_BYTES });
        }
        if msg.topic != topic {
            return Err(MessageError::WrongTopic { signed: msg.topic, arrived: topic });
        }
        if !verify_signature(msg.signer, signed_hash(msg.topic, msg.signer, &msg.payload), &msg.signature) {
            return Err(MessageError::BadSignature);
        }
        Ok(msg)
    }
}

/// A worker's liveness beacon (payload of [`Topic::Heartbeats`]; the envelope's signer is the
/// worker's Stark key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Worker account address.
    pub worker: Felt,
    /// GPU tier (`"T4"`, `"A100"`, `"H100"`, … on the wire); `None` for a CPU-only worker.
    pub gpu_tier: Option<GpuTier>,
    /// Prover backend in use (`cpu`, `gpu`).
    pub backend: String,
    /// Load, 0–100 %.
    pub load_percent: u8,
    /// Unix seconds when sent.
    pub timestamp: u64,
}

impl Heartbeat {
    /// Signs this heartbeat into a gossip message.
    pub fn sign(&self, key: &StarkKey) -> Result<SignedMessage, MessageError> {
        let payload = serde_json::to_vec(self).map_err(|e| MessageError::Malformed(e.to_string()))?;
        SignedMessage::sign(Topic::Heartbeats, payload, key)
    }

    /// Reads a heartbeat out of a verified message.
    pub fn from_message(msg: &SignedMessage) -> Result<Self, MessageError> {
        if msg.topic != Topic::Heartbeats {
            return Err(MessageError::WrongTopic { signed: msg.topic, arrived: Topic::Heartbeats });
        }
        let hb: Self = serde_json::from_slice(&msg.payload).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if hb.load_percent > 100 {
            return Err(MessageError::Malformed(format!("load {} % is over 100", hb.load_percent)));
        }
        Ok(hb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StarkKey {
        StarkKey::from_secret(Felt::from(0x77u8)).unwrap()
    }

    #[test]
    fn roundtrip_and_every_tamper_is_caught() {
        let msg = SignedMessage::sign(Topic::Votes, b"hello".to_vec(), &key()).unwrap();
        let bytes = msg.encode();
        assert_eq!(SignedMessage::decode_and_verify(&bytes, Topic::Votes).unwrap(), msg);
        assert!(matches!(SignedMessage::decode_and_verify(&bytes, Topic::Jobs), Err(MessageError::WrongTopic { .. })));
        let mut m = msg.clone();
        m.payload[0] ^= 1;
        assert_eq!(SignedMessage::decode_and_verify(&m.encode(), Topic::Votes), Err(MessageError::BadSignature));
        let mut m = msg.clone();
        m.signer = Felt::from(5u8);
        assert_eq!(SignedMessage::decode_and_verify(&m.encode(), Topic::Votes), Err(MessageError::BadSignature));
        let mut m = msg;
        m.v = 2;
        assert_eq!(SignedMessage::decode_and_verify(&m.encode(), Topic::Votes), Err(MessageError::Version(2)));
        assert!(matches!(
            SignedMessage::decode_and_verify(b"\x00garbage", Topic::Votes),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_payloads_are_refused_on_both_sides() {
        assert!(matches!(
            SignedMessage::sign(Topic::Jobs, vec![0; MAX_PAYLOAD_BYTES + 1], &key()),
            Err(MessageError::TooLarge { .. })
        ));
        assert!(matches!(
            SignedMessage::decode_and_verify(&vec![b' '; MAX_PAYLOAD_BYTES * 5], Topic::Jobs),
            Err(MessageError::TooLarge { .. })
        ));
    }

    #[test]
    fn heartbeat_roundtrip_and_validation() {
        let hb = Heartbeat {
            worker: Felt::from(9u8),
            gpu_tier: Some(GpuTier::H100),
            backend: "gpu".into(),
            load_percent: 40,
            timestamp: 1,
        };
        let msg = hb.sign(&key()).unwrap();
        let got = SignedMessage::decode_and_verify(&msg.encode(), Topic::Heartbeats).unwrap();
        assert_eq!(Heartbeat::from_message(&got).unwrap(), hb);
        let bad = Heartbeat { load_percent: 101, ..hb };
        assert!(Heartbeat::from_message(&bad.sign(&key()).unwrap()).is_err());
    }
}
