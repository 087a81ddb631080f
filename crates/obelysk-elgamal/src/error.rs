//! Typed errors, one per family of operation.

use thiserror::Error;

/// The operating system's random number generator failed.
#[derive(Debug, Error)]
#[error("operating-system randomness unavailable: {0}")]
pub struct RngError(pub getrandom::Error);

/// A felt pair does not describe an acceptable curve point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PointError {
    /// `(x, y)` does not satisfy `y² = x³ + x + β` over the Stark field.
    #[error("point is not on the Stark curve")]
    NotOnCurve,
    /// The point at infinity (encoded `(0, 0)`) where a non-identity point is required.
    #[error("point is the identity, which is not allowed here")]
    Identity,
}

/// A felt or integer does not describe an acceptable scalar modulo the curve order `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ScalarError {
    /// The value is `>= n`; scalars on the wire must be canonical (`< n`).
    #[error("scalar is not below the curve order n")]
    NotCanonical,
    /// Zero where a non-zero scalar is required (secret keys, encryption randomness).
    #[error("scalar is zero, which is not allowed here")]
    Zero,
}

/// A felt sequence could not be decoded into a key, ciphertext or proof.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The sequence has the wrong number of felts.
    #[error("expected {expected} felts, got {got}")]
    WrongLength {
        /// Felts the layout needs.
        expected: usize,
        /// Felts supplied.
        got: usize,
    },
    /// A point field is invalid.
    #[error("field `{field}`: {source}")]
    Point {
        /// Name of the field in the documented layout.
        field: &'static str,
        /// What is wrong with it.
        source: PointError,
    },
    /// A scalar field is invalid.
    #[error("field `{field}`: {source}")]
    Scalar {
        /// Name of the field in the documented layout.
        field: &'static str,
        /// What is wrong with it.
        source: ScalarError,
    },
}

/// Decryption could not recover an amount.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The plaintext is not in `[0, max)`: either the amount is larger than the configured range,
    /// the ciphertext was not encrypted to this key, or it encodes a "negative" amount (e.g. the
    /// result of subtracting a larger ciphertext).
    #[error("plaintext is not an amount in [0, {max})")]
    OutOfRange {
        /// The exclusive upper bound that was searched.
        max: u64,
    },
    /// `max` would need more than `2^32` giant steps with this table; use a larger table.
    #[error("range [0, {max}) is too large for a baby-step table with baby_bits = {baby_bits}")]
    RangeTooLarge {
        /// The requested exclusive upper bound.
        max: u64,
        /// The table's `baby_bits`.
        baby_bits: u32,
    },
}

/// A baby-step table could not be built, saved or loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TableError {
    /// Reading or writing the file failed.
    #[error("baby-step table I/O on {path}: {source}")]
    Io {
        /// File involved.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the table magic bytes.
    #[error("not a baby-step table file (bad magic)")]
    BadMagic,
    /// The file format version is not supported by this build.
    #[error("unsupported baby-step table format version {0}")]
    UnsupportedVersion(u32),
    /// `baby_bits` outside the supported range.
    #[error("baby_bits = {0} is outside the supported range 1..=28")]
    BadParameters(u32),
    /// The file is truncated, its checksum does not match, or its entries are not `x(i·G)`.
    #[error("baby-step table file is corrupt: {0}")]
    Corrupt(&'static str),
}

/// A proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The proof is well-formed but the verification equation does not hold.
    #[error("proof verification equation does not hold")]
    EquationFailed,
    /// A commitment or statement point is the identity where that is forbidden.
    #[error("{0} must not be the identity")]
    IdentityPoint(&'static str),
}
