//! Fiat–Shamir proofs over a Poseidon transcript of felts, verifiable by a Cairo contract.
//!
//! # Transcript
//!
//! The challenge is `c = poseidon_hash_span(T)` (Cairo's `core::poseidon::poseidon_hash_span`,
//! starknet-crypto's `poseidon_hash_many`) over an exact felt sequence `T` that starts with a
//! domain tag, a Cairo short string (ASCII bytes read big-endian as a felt). `c` is a felt in
//! `[0, p)`; it is used *as an integer* in scalar multiplications (`c·PK`), which equals
//! `(c mod n)·PK` since the group has order `n`, so a Cairo verifier can pass it straight to
//! `ec_mul`. The prover computes `s = k + (c mod n)·sk mod n`.
//!
//! Every scalar on the wire must be canonical, `0 ≤ s < n`; verifiers must reject `s ≥ n`
//! (otherwise `s + n` would be a second valid encoding). Commitment points must be on the curve
//! and not the identity.
//!
//! `context` is a caller-chosen felt list that binds a proof to its use (e.g. chain id, contract
//! address, caller address, nonce) so it cannot be replayed elsewhere; it is absorbed as
//! `len(context), context...`.
//!
//! ## Proof of knowledge of the secret key (Schnorr), 3 felts: `[a.x, a.y, s]`
//!
//! ```text
//! A = k·G
//! T = [TAG_KEY_OWNERSHIP, pk.x, pk.y, a.x, a.y, len(ctx), ctx...]
//! accept iff  s·G == A + c·PK
//! ```
//!
//! ## Proof that a ciphertext decrypts to `amount` (Chaum–Pedersen), 5 felts: `[a1.x, a1.y, a2.x, a2.y, s]`
//!
//! Proves `log_G(PK) == log_{C1}(C2 − amount·G)` (both equal `sk`).
//!
//! ```text
//! A1 = k·G,  A2 = k·C1
//! T = [TAG_DECRYPTION, pk.x, pk.y, c1.x, c1.y, c2.x, c2.y, amount, a1.x, a1.y, a2.x, a2.y, len(ctx), ctx...]
//! accept iff  s·G == A1 + c·PK  and  s·C1 == A2 + c·(C2 − amount·G)
//! ```
//!
//! `amount` is the felt of the `u64` amount. `C1` must not be the identity.
//!
//! # Nonces
//!
//! `k = hash_to_nonzero("obelysk/proof-nonce/v1", [sk (32 bytes BE), poseidon(statement) (32
//! bytes BE), aux (32 bytes)])` where the statement is `T` without the commitments. With `aux`
//! from the OS this is a hedged nonce: safe if either the RNG or the hash holds up; the `_with_aux`
//! variants take a fixed `aux` for reproducible test vectors.

use starknet_types_core::curve::ProjectivePoint;
use starknet_types_core::felt::Felt;
use starknet_types_core::hash::{Poseidon, StarkHash};
use thiserror::Error;

use crate::ciphertext::{Ciphertext, decrypt_to_point};
use crate::error::{DecodeError, RngError, VerifyError};
use crate::keys::{PublicKey, SecretKey};
use crate::point;
use crate::scalar::Scalar;

/// Domain tag of the key-ownership proof: the Cairo short string `'obelysk/pok-sk/v1'`.
pub const TAG_KEY_OWNERSHIP: &str = "obelysk/pok-sk/v1";
/// Domain tag of the decryption proof: the Cairo short string `'obelysk/cp-decrypt/v1'`.
pub const TAG_DECRYPTION: &str = "obelysk/cp-decrypt/v1";
/// Domain separation of nonce derivation (SHA-256, not part of the verifier's transcript).
pub const NONCE_DOMAIN: &[u8] = b"obelysk/proof-nonce/v1";

/// A domain tag as a felt, exactly as Cairo encodes the short string literal.
pub fn short_string(tag: &str) -> Felt {
    Felt::from_bytes_be_slice(tag.as_bytes())
}

/// Proof generation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProveError {
    /// OS randomness for the hedged nonce failed.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The ciphertext does not decrypt to the stated amount under this key.
    #[error("ciphertext does not decrypt to the stated amount under this key")]
    AmountMismatch,
    /// `C1` is the identity: the plaintext is public and the proof would be degenerate.
    #[error("ciphertext C1 is the identity")]
    DegenerateCiphertext,
}

fn push_point(t: &mut Vec<Felt>, p: &ProjectivePoint) {
    let (x, y) = point::to_xy(p);
    t.push(x);
    t.push(y);
}

fn push_context(t: &mut Vec<Felt>, context: &[Felt]) {
    t.push(Felt::from(context.len() as u64));
    t.extend_from_slice(context);
}

fn nonce(sk: &SecretKey, statement: &[Felt], aux: &[u8; 32]) -> Scalar {
    let h = Poseidon::hash_array(statement).to_bytes_be();
    Scalar::hash_to_nonzero(NONCE_DOMAIN, &[&sk.expose_scalar().to_be_bytes(), &h, aux])
}

fn os_aux() -> Result<[u8; 32], RngError> {
    let mut aux = [0u8; 32];
    getrandom::fill(&mut aux).map_err(RngError)?;
    Ok(aux)
}

/// Schnorr proof of knowledge of `sk` for `PK = sk·G`. Layout: `[a.x, a.y, s]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOwnershipProof {
    a: ProjectivePoint,
    s: Scalar,
}

/// The felt sequence hashed for a key-ownership challenge (see the module docs).
pub fn key_ownership_transcript(pk: &PublicKey, a: &ProjectivePoint, context: &[Felt]) -> Vec<Felt> {
    let mut t = Vec::with_capacity(6 + context.len());
    t.push(short_string(TAG_KEY_OWNERSHIP));
    push_point(&mut t, pk.as_point());
    push_point(&mut t, a);
    push_context(&mut t, context);
    t
}

/// Proves knowledge of `sk` with a hedged nonce (OS randomness mixed with the key and statement).
pub fn prove_key_ownership(sk: &SecretKey, context: &[Felt]) -> Result<KeyOwnershipProof, RngError> {
    Ok(prove_key_ownership_with_aux(sk, context, &os_aux()?))
}

/// Deterministic variant of [`prove_key_ownership`] with a caller-supplied `aux`.
pub fn prove_key_ownership_with_aux(sk: &SecretKey, context: &[Felt], aux: &[u8; 32]) -> KeyOwnershipProof {
    let pk = sk.public_key();
    let mut statement = vec![short_string(TAG_KEY_OWNERSHIP)];
    push_point(&mut statement, pk.as_point());
    push_context(&mut statement, context);
    let k = nonce(sk, &statement, aux);
    let a = point::mul_generator(&k);
    let c = Poseidon::hash_array(&key_ownership_transcript(&pk, &a, context));
    let s = k + Scalar::from_felt_reduced(&c) * *sk.expose_scalar();
    KeyOwnershipProof { a, s }
}

/// Verifies a key-ownership proof for `pk` under `context`.
pub fn verify_key_ownership(pk: &PublicKey, proof: &KeyOwnershipProof, context: &[Felt]) -> Result<(), VerifyError> {
    if proof.a.is_identity() {
        return Err(VerifyError::IdentityPoint("a"));
    }
    let c = Poseidon::hash_array(&key_ownership_transcript(pk, &proof.a, context));
    let lhs = point::mul_generator(&proof.s);
    let rhs = &proof.a + &point::mul_felt(pk.as_point(), &c);
    if point::eq(&lhs, &rhs) { Ok(()) } else { Err(VerifyError::EquationFailed) }
}

impl KeyOwnershipProof {
    /// Number of felts in the layout.
    pub const FELTS: usize = 3;

    /// `[a.x, a.y, s]`.
    pub fn to_felts(&self) -> [Felt; 3] {
        let (x, y) = point::to_xy(&self.a);
        [x, y, self.s.to_felt()]
    }

    /// Decodes `[a.x, a.y, s]`: `a` on the curve and not the identity, `s < n`.
    pub fn from_felts(felts: &[Felt]) -> Result<Self, DecodeError> {
        let [x, y, s] = felts else {
            return Err(DecodeError::WrongLength { expected: Self::FELTS, got: felts.len() });
        };
        let a = point::from_xy_nonidentity(x, y).map_err(|source| DecodeError::Point { field: "a", source })?;
        let s = Scalar::from_canonical_felt(s).map_err(|source| DecodeError::Scalar { field: "s", source })?;
        Ok(Self { a, s })
    }

    /// The commitment `A`.
    pub fn commitment(&self) -> &ProjectivePoint {
        &self.a
    }

    /// The response `s`.
    pub fn response(&self) -> &Scalar {
        &self.s
    }
}

/// Chaum–Pedersen proof that a ciphertext decrypts to a stated amount.
/// Layout: `[a1.x, a1.y, a2.x, a2.y, s]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptionProof {
    a1: ProjectivePoint,
    a2: ProjectivePoint,
    s: Scalar,
}

fn decryption_statement(pk: &PublicKey, ct: &Ciphertext, amount: u64) -> Vec<Felt> {
    let mut t = Vec::with_capacity(14);
    t.push(short_string(TAG_DECRYPTION));
    push_point(&mut t, pk.as_point());
    push_point(&mut t, ct.c1());
    push_point(&mut t, ct.c2());
    t.push(Felt::from(amount));
    t
}

/// The felt sequence hashed for a decryption challenge (see the module docs).
pub fn decryption_transcript(
    pk: &PublicKey,
    ct: &Ciphertext,
    amount: u64,
    a1: &ProjectivePoint,
    a2: &ProjectivePoint,
    context: &[Felt],
) -> Vec<Felt> {
    let mut t = decryption_statement(pk, ct, amount);
    push_point(&mut t, a1);
    push_point(&mut t, a2);
    push_context(&mut t, context);
    t
}

/// Proves that `ct` decrypts to `amount` under `sk`, with a hedged nonce.
pub fn prove_decryption(
    sk: &SecretKey,
    ct: &Ciphertext,
    amount: u64,
    context: &[Felt],
) -> Result<DecryptionProof, ProveError> {
    prove_decryption_with_aux(sk, ct, amount, context, &os_aux()?)
}

/// Deterministic variant of [`prove_decryption`] with a caller-supplied `aux`.
pub fn prove_decryption_with_aux(
    sk: &SecretKey,
    ct: &Ciphertext,
    amount: u64,
    context: &[Felt],
    aux: &[u8; 32],
) -> Result<DecryptionProof, ProveError> {
    if ct.c1().is_identity() {
        return Err(ProveError::DegenerateCiphertext);
    }
    let m_g = point::mul_generator(&Scalar::from_u64(amount));
    if !point::eq(&decrypt_to_point(ct, sk), &m_g) {
        return Err(ProveError::AmountMismatch);
    }
    let pk = sk.public_key();
    let mut statement = decryption_statement(&pk, ct, amount);
    push_context(&mut statement, context);
    let k = nonce(sk, &statement, aux);
    let a1 = point::mul_generator(&k);
    let a2 = point::mul(ct.c1(), &k);
    let c = Poseidon::hash_array(&decryption_transcript(&pk, ct, amount, &a1, &a2, context));
    let s = k + Scalar::from_felt_reduced(&c) * *sk.expose_scalar();
    Ok(DecryptionProof { a1, a2, s })
}

/// Verifies that `ct` (under `pk`) decrypts to `amount`.
pub fn verify_decryption(
    pk: &PublicKey,
    ct: &Ciphertext,
    amount: u64,
    proof: &DecryptionProof,
    context: &[Felt],
) -> Result<(), VerifyError> {
    if ct.c1().is_identity() {
        return Err(VerifyError::IdentityPoint("c1"));
    }
    if proof.a1.is_identity() {
        return Err(VerifyError::IdentityPoint("a1"));
    }
    if proof.a2.is_identity() {
        return Err(VerifyError::IdentityPoint("a2"));
    }
    let c = Poseidon::hash_array(&decryption_transcript(pk, ct, amount, &proof.a1, &proof.a2, context));
    let lhs1 = point::mul_generator(&proof.s);
    let rhs1 = &proof.a1 + &point::mul_felt(pk.as_point(), &c);
    let d = ct.c2() - &point::mul_generator(&Scalar::from_u64(amount));
    let lhs2 = point::mul(ct.c1(), &proof.s);
    let rhs2 = &proof.a2 + &point::mul_felt(&d, &c);
    if point::eq(&lhs1, &rhs1) && point::eq(&lhs2, &rhs2) { Ok(()) } else { Err(VerifyError::EquationFailed) }
}

impl DecryptionProof {
    /// Number of felts in the layout.
    pub const FELTS: usize = 5;

    /// `[a1.x, a1.y, a2.x, a2.y, s]`.
    pub fn to_felts(&self) -> [Felt; 5] {
        let (x1, y1) = point::to_xy(&self.a1);
        let (x2, y2) = point::to_xy(&self.a2);
        [x1, y1, x2, y2, self.s.to_felt()]
    }

    /// Decodes `[a1.x, a1.y, a2.x, a2.y, s]`: points on the curve and not the identity, `s < n`.
    pub fn from_felts(felts: &[Felt]) -> Result<Self, DecodeError> {
        let [x1, y1, x2, y2, s] = felts else {
            return Err(DecodeError::WrongLength { expected: Self::FELTS, got: felts.len() });
        };
        let a1 = point::from_xy_nonidentity(x1, y1).map_err(|source| DecodeError::Point { field: "a1", source })?;
        let a2 = point::from_xy_nonidentity(x2, y2).map_err(|source| DecodeError::Point { field: "a2", source })?;
        let s = Scalar::from_canonical_felt(s).map_err(|source| DecodeError::Scalar { field: "s", source })?;
        Ok(Self { a1, a2, s })
    }
}
