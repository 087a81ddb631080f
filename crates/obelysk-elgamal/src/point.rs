//! Curve-point helpers over `starknet-types-core`'s Stark curve types.
//!
//! Wire encoding of a point: two felts `(x, y)` in affine coordinates. The identity (point at
//! infinity) has no affine coordinates and is encoded `(0, 0)`, which is not on the curve
//! (`β ≠ 0`), so the encoding is unambiguous.

use starknet_types_core::curve::{AffinePoint, ProjectivePoint};
use starknet_types_core::felt::Felt;

use crate::error::PointError;
use crate::scalar::Scalar;

/// The Stark curve generator `G` (projective).
pub fn generator() -> ProjectivePoint {
    ProjectivePoint::from_affine_unchecked(AffinePoint::generator().x(), AffinePoint::generator().y())
}

/// `s · P`.
pub fn mul(p: &ProjectivePoint, s: &Scalar) -> ProjectivePoint {
    p * s.to_felt()
}

/// `s · G`.
pub fn mul_generator(s: &Scalar) -> ProjectivePoint {
    &generator() * s.to_felt()
}

/// `k · P` for a felt used as an integer in `[0, p)` (e.g. a Fiat–Shamir challenge). Equal to
/// `(k mod n) · P` because the group has order `n`.
pub fn mul_felt(p: &ProjectivePoint, k: &Felt) -> ProjectivePoint {
    p * *k
}

/// `(x, y)` of `p`, with the identity as `(0, 0)`.
pub fn to_xy(p: &ProjectivePoint) -> (Felt, Felt) {
    match p.to_affine() {
        Ok(a) if !p.is_identity() => (a.x(), a.y()),
        _ => (Felt::ZERO, Felt::ZERO),
    }
}

/// Decodes `(x, y)`, accepting `(0, 0)` as the identity.
pub fn from_xy(x: &Felt, y: &Felt) -> Result<ProjectivePoint, PointError> {
    if *x == Felt::ZERO && *y == Felt::ZERO {
        return Ok(ProjectivePoint::identity());
    }
    ProjectivePoint::from_affine(*x, *y).map_err(|_| PointError::NotOnCurve)
}

/// Decodes `(x, y)`, rejecting the identity.
pub fn from_xy_nonidentity(x: &Felt, y: &Felt) -> Result<ProjectivePoint, PointError> {
    let p = from_xy(x, y)?;
    if p.is_identity() {
        return Err(PointError::Identity);
    }
    Ok(p)
}

/// Group equality (independent of the projective representative).
pub fn eq(a: &ProjectivePoint, b: &ProjectivePoint) -> bool {
    to_xy(a) == to_xy(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_encoding_roundtrip() {
        let id = ProjectivePoint::identity();
        assert_eq!(to_xy(&id), (Felt::ZERO, Felt::ZERO));
        assert!(from_xy(&Felt::ZERO, &Felt::ZERO).expect("identity").is_identity());
        assert_eq!(from_xy_nonidentity(&Felt::ZERO, &Felt::ZERO).err(), Some(PointError::Identity));
        let g = generator();
        let minus_g = -&g;
        assert!((&g + &minus_g).is_identity());
        assert_eq!(to_xy(&(&g + &minus_g)), (Felt::ZERO, Felt::ZERO));
    }

    #[test]
    fn off_curve_rejected() {
        let (x, y) = to_xy(&generator());
        assert_eq!(from_xy(&x, &(y + Felt::ONE)).err(), Some(PointError::NotOnCurve));
        assert!(from_xy(&x, &y).is_ok());
        assert!(from_xy(&x, &-y).is_ok());
    }

    #[test]
    fn scalar_mul_consistency() {
        let g = generator();
        let three = mul_generator(&Scalar::from_u64(3));
        assert!(eq(&three, &(&(&g + &g) + &g)));
        // n · G = identity, and k·G for a felt k >= n equals (k mod n)·G.
        let n_minus_1 = -Scalar::ONE;
        assert!(eq(&mul_generator(&n_minus_1), &-&g));
        let k = n_minus_1.to_felt() + Felt::from(3u8); // = n + 2 as an integer
        assert!(eq(&mul_felt(&g, &k), &mul_generator(&Scalar::from_u64(2))));
    }
}
