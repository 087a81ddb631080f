//! Signed, versioned, size-limited gossip messages.
//!
//! ```text
//! wire      = JSON { v: 2, network, topic, signer, payload (standard base64), signature: { r, s } }
//! signed    = Poseidon('SAGE_NET_MSG_V2', network, topic_tag, signer, sha256(payload)[0..16], sha256(payload)[16..32])
//! ```
//!
//! `network` is the Starknet chain id the network settles on (`'SN_SEPOLIA'`, `'SN_MAIN'`…), so
//! a message signed for one network is worthless on another. A message reaches application code
//! only after its version, size, network, topic and Stark ECDSA signature were checked; anything
//! else is rejected at the gossip layer (and not forwarded).
//!
//! Payloads that name a worker ([`Heartbeat`], `JobResult`) must be signed by that worker: its
//! account address must be the Sage account of the signing key
//! (`sage_keys::oz_account_address(signer, signer)`, what every Sage wallet deploys), so nobody
//! can speak for another worker.

use sage_keys::{SignError, Signature, StarkKey, verify_signature};
use sage_types::GpuTier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_types_core::felt::Felt;

/// Wire format version.
pub const MESSAGE_VERSION: u8 = 2;
/// Largest application payload carried by gossip (proofs travel by request-response).
pub const MAX_PAYLOAD_BYTES: usize = 48 * 1024;
/// Largest encoded message: the payload in base64 plus the JSON envelope (four felts in hex,
/// field names). [`crate::DEFAULT_MAX_GOSSIP_BYTES`] is this, so a maximal payload really travels.
pub const MAX_MESSAGE_BYTES: usize = MAX_PAYLOAD_BYTES.div_ceil(3) * 4 + ENVELOPE_BYTES;
/// Room for everything but the payload (measured: under 500 bytes).
const ENVELOPE_BYTES: usize = 1024;
/// `'SAGE_NET_MSG_V2'`.
const MESSAGE_TAG: Felt = Felt::from_hex_unchecked("0x534147455f4e45545f4d53475f5632");

/// Payload bytes as one standard base64 string (4 characters per 3 bytes); non-canonical
/// encodings are refused.
mod base64_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(|e| D::Error::custom(format!("payload is not base64: {e}")))
    }
}

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
    /// Chain id of the network it was signed for (a message replayed on another network fails).
    pub network: Felt,
    /// Topic it was signed for (a message replayed on another topic fails).
    pub topic: Topic,
    /// Stark public key of the signer.
    pub signer: Felt,
    /// Application payload.
    #[serde(with = "base64_bytes")]
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
    /// Signed for another network than this node's.
    #[error("message signed for network {signed:#x}, this node is on {expected:#x}")]
    WrongNetwork {
        /// In the message.
        signed: Felt,
        /// This node's network.
        expected: Felt,
    },
    /// Signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The payload names a worker whose account is not the signer's.
    #[error("payload speaks for worker {worker:#x}, but the signer's account is {signer_account:#x}")]
    WorkerNotSigner {
        /// The worker the payload names.
        worker: Felt,
        /// The Sage account of the signing key.
        signer_account: Felt,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
}

fn signed_hash(network: Felt, topic: Topic, signer: Felt, payload: &[u8]) -> Felt {
    let digest = Sha256::digest(payload);
    poseidon_hash_many(&[
        MESSAGE_TAG,
        network,
        topic.tag(),
        signer,
        Felt::from_bytes_be_slice(&digest[..16]),
        Felt::from_bytes_be_slice(&digest[16..]),
    ])
}

impl SignedMessage {
    /// Signs `payload` for `topic` on `network` (the chain id).
    pub fn sign(network: Felt, topic: Topic, payload: Vec<u8>, key: &StarkKey) -> Result<Self, MessageError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(MessageError::TooLarge { size: payload.len(), max: MAX_PAYLOAD_BYTES });
        }
        let signature = key.sign(signed_hash(network, topic, key.public_key(), &payload))?;
        Ok(Self { v: MESSAGE_VERSION, network, topic, signer: key.public_key(), payload, signature })
    }

    /// The Sage account address of the signer (`oz_account_address(signer, signer)`).
    pub fn signer_account(&self) -> Felt {
        sage_keys::oz_account_address(self.signer, self.signer)
    }

    /// Checks that a payload's `worker` is the signer's own account.
    pub(crate) fn check_worker(&self, worker: Felt) -> Result<(), MessageError> {
        let signer_account = self.signer_account();
        if worker == signer_account { Ok(()) } else { Err(MessageError::WorkerNotSigner { worker, signer_account }) }
    }

    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks bytes that arrived on `topic` at a node on `network`.
    pub fn decode_and_verify(bytes: &[u8], network: Felt, topic: Topic) -> Result<Self, MessageError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge { size: bytes.len(), max: MAX_MESSAGE_BYTES });
        }
        let msg: Self = serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if msg.v != MESSAGE_VERSION {
            return Err(MessageError::Version(msg.v));
        }
        if msg.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(MessageError::TooLarge { size: msg.payload.len(), max: MAX_PAYLOAD_BYTES });
        }
        if msg.network != network {
            return Err(MessageError::WrongNetwork { signed: msg.network, expected: network });
        }
        if msg.topic != topic {
            return Err(MessageError::WrongTopic { signed: msg.topic, arrived: topic });
        }
        if !verify_signature(msg.signer, signed_hash(network, msg.topic, msg.signer, &msg.payload), &msg.signature) {
            return Err(MessageError::BadSignature);
        }
        Ok(msg)
    }
}

/// A worker's liveness beacon (payload of [`Topic::Heartbeats`]; the envelope's signer is the
/// worker's Stark key, and `worker` must be that key's Sage account).
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
    /// The jobs the worker holds and is proving (at most [`MAX_HEARTBEAT_JOBS`]): its
    /// acknowledgement of their assignments. Only these leases are extended; an assignment the
    /// worker does not list was not received, and the coordinator sends it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<Felt>,
}

/// Most jobs one heartbeat may list.
pub const MAX_HEARTBEAT_JOBS: usize = 64;

impl Heartbeat {
    /// Signs this heartbeat into a gossip message for `network`.
    pub fn sign(&self, key: &StarkKey, network: Felt) -> Result<SignedMessage, MessageError> {
        let payload = serde_json::to_vec(self).map_err(|e| MessageError::Malformed(e.to_string()))?;
        SignedMessage::sign(network, Topic::Heartbeats, payload, key)
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
        if hb.jobs.len() > MAX_HEARTBEAT_JOBS {
            return Err(MessageError::Malformed(format!(
                "a heartbeat lists {} jobs (at most {MAX_HEARTBEAT_JOBS})",
                hb.jobs.len()
            )));
        }
        msg.check_worker(hb.worker)?;
        Ok(hb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: Felt = Felt::from_hex_unchecked("0x534e5f5345504f4c4941");

    fn key() -> StarkKey {
        StarkKey::from_secret(Felt::from(0x77u8)).unwrap()
    }

    #[test]
    fn roundtrip_and_every_tamper_is_caught() {
        let msg = SignedMessage::sign(NET, Topic::Votes, b"hello".to_vec(), &key()).unwrap();
        let bytes = msg.encode();
        assert_eq!(SignedMessage::decode_and_verify(&bytes, NET, Topic::Votes).unwrap(), msg);
        assert!(matches!(
            SignedMessage::decode_and_verify(&bytes, NET, Topic::Jobs),
            Err(MessageError::WrongTopic { .. })
        ));
        let mut m = msg.clone();
        m.payload[0] ^= 1;
        assert_eq!(SignedMessage::decode_and_verify(&m.encode(), NET, Topic::Votes), Err(MessageError::BadSignature));
        let mut m = msg.clone();
        m.signer = Felt::from(5u8);
        assert_eq!(SignedMessage::decode_and_verify(&m.encode(), NET, Topic::Votes), Err(MessageError::BadSignature));
        let mut m = msg.clone();
        m.v = 1;
        assert_eq!(SignedMessage::decode_and_verify(&m.encode(), NET, Topic::Votes), Err(MessageError::Version(1)));
        assert!(matches!(
            SignedMessage::decode_and_verify(b"\x00garbage", NET, Topic::Votes),
            Err(MessageError::Malformed(_))
        ));
        // Rewriting the network field does not move a message to another network.
        let mut m = msg;
        m.network = Felt::from(0x534e5f4d41494e_u64);
        assert_eq!(
            SignedMessage::decode_and_verify(&m.encode(), m.network, Topic::Votes),
            Err(MessageError::BadSignature)
        );
    }

    #[test]
    fn a_message_for_another_network_is_refused() {
        let main = Felt::from(0x534e5f4d41494e_u64); // 'SN_MAIN'
        let msg = SignedMessage::sign(main, Topic::Jobs, b"{}".to_vec(), &key()).unwrap();
        assert_eq!(
            SignedMessage::decode_and_verify(&msg.encode(), NET, Topic::Jobs),
            Err(MessageError::WrongNetwork { signed: main, expected: NET })
        );
        assert!(SignedMessage::decode_and_verify(&msg.encode(), main, Topic::Jobs).is_ok());
    }

    #[test]
    fn oversized_payloads_are_refused_on_both_sides() {
        assert!(matches!(
            SignedMessage::sign(NET, Topic::Jobs, vec![0; MAX_PAYLOAD_BYTES + 1], &key()),
            Err(MessageError::TooLarge { .. })
        ));
        assert!(matches!(
            SignedMessage::decode_and_verify(&vec![b' '; MAX_MESSAGE_BYTES + 1], NET, Topic::Jobs),
            Err(MessageError::TooLarge { .. })
        ));
    }

    /// The stated limit is the real one: a maximal payload of the worst bytes encodes within
    /// the gossip transmit limit and decodes again (JSON number arrays used to cap it near 16 KiB).
    #[test]
    fn a_maximal_payload_fits_the_gossip_limit() {
        for fill in [0x00u8, 0xff] {
            let msg = SignedMessage::sign(NET, Topic::Jobs, vec![fill; MAX_PAYLOAD_BYTES], &key()).unwrap();
            let wire = msg.encode();
            assert!(wire.len() <= MAX_MESSAGE_BYTES, "{} > {MAX_MESSAGE_BYTES}", wire.len());
            assert!(wire.len() <= crate::DEFAULT_MAX_GOSSIP_BYTES);
            assert!(wire.len() - MAX_PAYLOAD_BYTES.div_ceil(3) * 4 < 500, "envelope overhead");
            assert_eq!(SignedMessage::decode_and_verify(&wire, NET, Topic::Jobs).unwrap(), msg);
        }
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        let msg = SignedMessage::sign(NET, Topic::Votes, b"a".to_vec(), &key()).unwrap();
        let wire = String::from_utf8(msg.encode()).unwrap();
        assert!(wire.contains("\"YQ==\""), "{wire}");
        // "YR==" decodes to the same byte with non-zero trailing bits.
        let tampered = wire.replace("\"YQ==\"", "\"YR==\"");
        assert!(matches!(
            SignedMessage::decode_and_verify(tampered.as_bytes(), NET, Topic::Votes),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn heartbeat_roundtrip_and_validation() {
        let k = key();
        let hb = Heartbeat {
            worker: sage_keys::oz_account_address(k.public_key(), k.public_key()),
            gpu_tier: Some(GpuTier::H100),
            backend: "gpu".into(),
            load_percent: 40,
            timestamp: 1,
            jobs: Vec::new(),
        };
        let msg = hb.sign(&k, NET).unwrap();
        let got = SignedMessage::decode_and_verify(&msg.encode(), NET, Topic::Heartbeats).unwrap();
        assert_eq!(Heartbeat::from_message(&got).unwrap(), hb);
        let bad = Heartbeat { load_percent: 101, ..hb.clone() };
        assert!(Heartbeat::from_message(&bad.sign(&k, NET).unwrap()).is_err());
        // The jobs it acknowledges travel, up to the cap.
        let full = Heartbeat { jobs: (0..MAX_HEARTBEAT_JOBS as u64).map(Felt::from).collect(), ..hb.clone() };
        assert_eq!(Heartbeat::from_message(&full.sign(&k, NET).unwrap()).unwrap(), full);
        let over = Heartbeat { jobs: (0..=MAX_HEARTBEAT_JOBS as u64).map(Felt::from).collect(), ..hb.clone() };
        let err = Heartbeat::from_message(&over.sign(&k, NET).unwrap()).unwrap_err();
        assert!(err.to_string().contains("at most 64"), "{err}");
        // A heartbeat without the field (an older worker) acknowledges nothing.
        let old = br#"{"worker":"0x1","gpu_tier":null,"backend":"cpu","load_percent":0,"timestamp":1}"#;
        assert!(serde_json::from_slice::<Heartbeat>(old).unwrap().jobs.is_empty());
    }

    /// Nobody can send heartbeats in another worker's name.
    #[test]
    fn a_heartbeat_for_another_worker_is_refused() {
        let victim = StarkKey::from_secret(Felt::from(0x1234u32)).unwrap();
        let victim_account = sage_keys::oz_account_address(victim.public_key(), victim.public_key());
        let forged = Heartbeat {
            worker: victim_account,
            gpu_tier: Some(GpuTier::H200),
            backend: "gpu".into(),
            load_percent: 0,
            timestamp: 1,
            jobs: Vec::new(),
        };
        let msg = forged.sign(&key(), NET).unwrap();
        assert!(matches!(
            Heartbeat::from_message(&msg),
            Err(MessageError::WorkerNotSigner { worker, .. }) if worker == victim_account
        ));
        assert!(Heartbeat::from_message(&forged.sign(&victim, NET).unwrap()).is_ok());
    }
}
