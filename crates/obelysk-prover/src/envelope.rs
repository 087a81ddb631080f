//! The versioned proof envelope and its compressed wire form.
//!
//! Wire form: `zstd(postcard(version: u16, body))` where `body` is the rest of [`Envelope`].
//!
//! The proof hash is blake3 of the *decompressed* postcard bytes, and only canonical postcard is
//! accepted (the bytes must be exactly what re-encoding the decoded envelope gives). One envelope
//! therefore has one hash however it was compressed: a proof whose round timed out cannot be
//! re-submitted under a fresh hash by compressing it differently.

use serde::{Deserialize, Serialize};

use crate::config::ProofConfig;
use crate::error::EnvelopeError;
use crate::stark::Proof;
use crate::statement::{ProofHash, Statement};

/// Version of the envelope layout and of the statement digest.
pub const ENVELOPE_VERSION: u16 = 1;
/// Largest compressed envelope accepted (and produced): 256 KiB, the on-chain limit.
pub const MAX_ENVELOPE_BYTES: usize = 256 * 1024;
/// Largest decompressed envelope accepted (a zip-bomb bound).
pub const MAX_DECOMPRESSED_BYTES: usize = 4 * 1024 * 1024;
/// zstd level (proofs are hashes and random field elements; a higher level gains nothing).
const ZSTD_LEVEL: i32 = 3;

/// A proof with everything a verifier needs besides the job's inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Layout version ([`ENVELOPE_VERSION`]).
    pub version: u16,
    /// What is proven.
    pub statement: Statement,
    /// Security parameters the proof was made with.
    pub config: ProofConfig,
    /// Small public outputs the AIR needs (the VM's output registers; empty for matmul).
    pub public_output: Vec<u32>,
    /// The Stwo proof.
    pub proof: Proof,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    statement: &'a Statement,
    config: &'a ProofConfig,
    public_output: &'a [u32],
    proof: &'a Proof,
}

#[derive(Deserialize)]
struct Body {
    statement: Statement,
    config: ProofConfig,
    public_output: Vec<u32>,
    proof: Proof,
}

/// The compressed wire form and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEnvelope {
    /// zstd-compressed bytes (what goes on the wire / on-chain).
    pub bytes: Vec<u8>,
    /// blake3 of the canonical decompressed bytes (see [`proof_hash`]).
    pub proof_hash: ProofHash,
}

/// The proof hash of compressed envelope bytes: they are decompressed (bounded), decoded and checked
/// to be canonical, and the hash is blake3 of the decompressed bytes. Any zstd encoding of one
/// envelope gives the same hash; bytes that are not a canonical envelope have none.
pub fn proof_hash(compressed: &[u8]) -> Result<ProofHash, EnvelopeError> {
    Envelope::decode_with_hash(compressed).map(|(_, hash)| hash)
}

fn hash_canonical(raw: &[u8]) -> ProofHash {
    ProofHash(*blake3::hash(raw).as_bytes())
}

impl Envelope {
    /// The uncompressed postcard encoding.
    pub fn to_postcard(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = postcard::to_allocvec(&self.version).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
        let body = BodyRef {
            statement: &self.statement,
            config: &self.config,
            public_output: &self.public_output,
            proof: &self.proof,
        };
        out.extend(postcard::to_allocvec(&body).map_err(|e| EnvelopeError::Decode(e.to_string()))?);
        Ok(out)
    }

    /// Decodes the uncompressed postcard encoding (version checked first).
    pub fn from_postcard(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_DECOMPRESSED_BYTES {
            return Err(EnvelopeError::TooLarge { size: bytes.len(), limit: MAX_DECOMPRESSED_BYTES });
        }
        let (version, rest) =
            postcard::take_from_bytes::<u16>(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version { got: version, supported: ENVELOPE_VERSION });
        }
        let (body, rest) = postcard::take_from_bytes::<Body>(rest).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(EnvelopeError::TrailingBytes(rest.len()));
        }
        Ok(Self {
            version,
            statement: body.statement,
            config: body.config,
            public_output: body.public_output,
            proof: body.proof,
        })
    }

    /// Compresses and hashes; errors if over [`MAX_ENVELOPE_BYTES`].
    pub fn encode(&self) -> Result<EncodedEnvelope, EnvelopeError> {
        let raw = self.to_postcard()?;
        let bytes = zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(|e| EnvelopeError::Compression(e.to_string()))?;
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge { size: bytes.len(), limit: MAX_ENVELOPE_BYTES });
        }
        let proof_hash = hash_canonical(&raw);
        Ok(EncodedEnvelope { bytes, proof_hash })
    }

    /// Decompresses (bounded) and decodes compressed envelope bytes; non-canonical encodings are
    /// refused ([`EnvelopeError::NonCanonical`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::decode_with_hash(bytes).map(|(envelope, _)| envelope)
    }

    /// [`Envelope::decode`], also returning the proof hash.
    pub fn decode_with_hash(bytes: &[u8]) -> Result<(Self, ProofHash), EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge { size: bytes.len(), limit: MAX_ENVELOPE_BYTES });
        }
        let raw = zstd::bulk::decompress(bytes, MAX_DECOMPRESSED_BYTES)
            .map_err(|e| EnvelopeError::Compression(e.to_string()))?;
        let envelope = Self::from_postcard(&raw)?;
        if envelope.to_postcard()? != raw {
            return Err(EnvelopeError::NonCanonical);
        }
        Ok((envelope, hash_canonical(&raw)))
    }
}
