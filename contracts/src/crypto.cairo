//! Verifiers of the `obelysk-elgamal` proofs, on the same Poseidon transcripts (see
//! `crates/obelysk-elgamal/src/proof.rs`): Schnorr key ownership `[a.x, a.y, s]` and
//! Chaum–Pedersen decryption `[a1.x, a1.y, a2.x, a2.y, s]`. Points are affine `(x, y)`; the
//! identity is `(0, 0)`. Scalars must be canonical (`s < n`).

use core::ec::{EcPoint, EcPointTrait, NonZeroEcPoint, stark_curve};
use core::poseidon::poseidon_hash_span;
use sage::interfaces::DecryptionProof;

const TAG_KEY_OWNERSHIP: felt252 = 'obelysk/pok-sk/v1';
const TAG_DECRYPTION: felt252 = 'obelysk/cp-decrypt/v1';

fn generator() -> EcPoint {
    EcPointTrait::new(stark_curve::GEN_X, stark_curve::GEN_Y).unwrap()
}

/// A point that must be on the curve and not the identity.
fn nonzero_point(x: felt252, y: felt252) -> Option<EcPoint> {
    EcPointTrait::new(x, y)
}

/// A point on the curve or the identity `(0, 0)`.
fn point_or_zero(x: felt252, y: felt252) -> Option<EcPoint> {
    if x == 0 && y == 0 {
        return Option::Some(zero());
    }
    EcPointTrait::new(x, y)
}

fn zero() -> EcPoint {
    // G - G: the identity, without naming the extern libfunc.
    let g = generator();
    g - g
}

fn is_zero(p: EcPoint) -> bool {
    let nz: Option<NonZeroEcPoint> = p.try_into();
    nz.is_none()
}

/// Affine coordinates, `(0, 0)` for the identity.
fn coordinates(p: EcPoint) -> (felt252, felt252) {
    let nz: Option<NonZeroEcPoint> = p.try_into();
    match nz {
        Option::Some(q) => q.coordinates(),
        Option::None => (0, 0),
    }
}

fn eq(a: EcPoint, b: EcPoint) -> bool {
    is_zero(a - b)
}

fn is_canonical_scalar(s: felt252) -> bool {
    let s256: u256 = s.into();
    let n: u256 = stark_curve::ORDER.into();
    s256 < n
}

fn append_context(ref t: Array<felt252>, context: Span<felt252>) {
    t.append(context.len().into());
    let mut ctx = context;
    loop {
        match ctx.pop_front() {
            Option::Some(v) => t.append(*v),
            Option::None => { break; },
        };
    };
}

/// Schnorr proof of knowledge of `sk` with `PK = sk·G`: `s·G == A + c·PK`.
fn verify_key_ownership(
    public_key: (felt252, felt252), proof: (felt252, felt252, felt252), context: Span<felt252>
) -> bool {
    let (pkx, pky) = public_key;
    let (ax, ay, s) = proof;
    let pk = match nonzero_point(pkx, pky) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    let a = match nonzero_point(ax, ay) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    if !is_canonical_scalar(s) {
        return false;
    }
    let mut t = array![TAG_KEY_OWNERSHIP, pkx, pky, ax, ay];
    append_context(ref t, context);
    let c = poseidon_hash_span(t.span());
    eq(generator().mul(s), a + pk.mul(c))
}

/// Chaum–Pedersen proof that `ciphertext` decrypts to `amount` under `public_key`:
/// `s·G == A1 + c·PK` and `s·C1 == A2 + c·(C2 − amount·G)`.
fn verify_decryption(
    public_key: (felt252, felt252),
    ciphertext: (felt252, felt252, felt252, felt252),
    amount: u64,
    proof: DecryptionProof,
    context: Span<felt252>
) -> bool {
    let (pkx, pky) = public_key;
    let (c1x, c1y, c2x, c2y) = ciphertext;
    let DecryptionProof { a1x, a1y, a2x, a2y, s } = proof;
    let pk = match nonzero_point(pkx, pky) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    let c1 = match nonzero_point(c1x, c1y) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    let c2 = match point_or_zero(c2x, c2y) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    let a1 = match nonzero_point(a1x, a1y) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    let a2 = match nonzero_point(a2x, a2y) {
        Option::Some(p) => p,
        Option::None => { return false; },
    };
    if !is_canonical_scalar(s) {
        return false;
    }
    let amount_felt: felt252 = amount.into();
    let mut t = array![
        TAG_DECRYPTION, pkx, pky, c1x, c1y, c2x, c2y, amount_felt, a1x, a1y, a2x, a2y
    ];
    append_context(ref t, context);
    let c = poseidon_hash_span(t.span());
    let g = generator();
    if !eq(g.mul(s), a1 + pk.mul(c)) {
        return false;
    }
    let m = c2 - g.mul(amount_felt);
    eq(c1.mul(s), a2 + m.mul(c))
}

/// Homomorphic addition of two ciphertexts `[c1.x, c1.y, c2.x, c2.y]` (identity allowed).
/// `None` when a point is not on the curve.
fn add_ciphertexts(
    a: (felt252, felt252, felt252, felt252), b: (felt252, felt252, felt252, felt252)
) -> Option<(felt252, felt252, felt252, felt252)> {
    let (a1x, a1y, a2x, a2y) = a;
    let (b1x, b1y, b2x, b2y) = b;
    let a1 = point_or_zero(a1x, a1y)?;
    let a2 = point_or_zero(a2x, a2y)?;
    let b1 = point_or_zero(b1x, b1y)?;
    let b2 = point_or_zero(b2x, b2y)?;
    let (s1x, s1y) = coordinates(a1 + b1);
    let (s2x, s2y) = coordinates(a2 + b2);
    Option::Some((s1x, s1y, s2x, s2y))
}
