//! The one error type of this crate: every failure names its cause.

use std::{path::PathBuf, time::Duration};

use starknet_rust::{
    core::types::{ContractExecutionError, Felt, StarknetError},
    providers::ProviderError,
};

/// Errors returned by `sage-chain`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The RPC endpoint could not be reached (connection refused, DNS, TLS, timeout).
    #[error("RPC endpoint {url} is unreachable: {reason}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The endpoint serves another chain than the one configured.
    #[error("wrong chain id: expected {expected} but {url} serves {actual}")]
    WrongChainId {
        /// Configured chain id (as a short string when printable).
        expected: String,
        /// Chain id reported by the node.
        actual: String,
        /// The endpoint.
        url: String,
    },
    /// A compiled contract artifact is missing.
    #[error("contract artifact missing: {path} (run `cargo xtask contracts`)")]
    MissingArtifact {
        /// Where it was expected.
        path: PathBuf,
    },
    /// A compiled contract artifact could not be parsed or does not match its recorded hash.
    #[error("contract artifact {name} is invalid: {reason}")]
    BadArtifact {
        /// Contract name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The deployment manifest does not describe the chain it points to.
    #[error("deployment manifest {path} is stale: {reason} (redeploy with `cargo xtask deploy`)")]
    StaleManifest {
        /// Manifest path.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// The deployment manifest could not be read or written.
    #[error("deployment manifest {path}: {reason}")]
    Manifest {
        /// Manifest path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The transaction executed and reverted (or would revert, as found by fee estimation).
    #[error("transaction {} reverted: {reason}", tx_hash.map(|h| format!("{h:#x}")).unwrap_or_else(|| "(not sent)".into()))]
    Reverted {
        /// The hash when the transaction was included; `None` when estimation caught it.
        tx_hash: Option<Felt>,
        /// The revert reason; the Cairo short string when one was found.
        reason: String,
    },
    /// The account cannot pay the fee.
    #[error("account {account:#x} has insufficient fee-token balance for this transaction")]
    InsufficientFeeBalance {
        /// The paying account.
        account: Felt,
    },
    /// The node refused the transaction before execution.
    #[error("transaction rejected by the node: {reason}")]
    Rejected {
        /// The node's reason.
        reason: String,
    },
    /// The account's nonce moved under us (another process sent from the same account, or a
    /// transaction landed that we did not count). Nothing executed; the account re-reads its
    /// nonce, so sending again is safe.
    #[error("stale account nonce (another sender used this account): {reason}")]
    InvalidNonce {
        /// The node's message.
        reason: String,
    },
    /// No receipt arrived in time.
    #[error("transaction {tx_hash:#x} not included after {waited:?}")]
    Timeout {
        /// The transaction.
        tx_hash: Felt,
        /// How long we waited.
        waited: Duration,
    },
    /// A contract returned data we could not decode.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The faucet refused because the caller dripped too recently.
    #[error("faucet cooldown active for {account:#x}: next drip allowed at block timestamp {next_drip_at}")]
    FaucetCooldown {
        /// The caller.
        account: Felt,
        /// Earliest block timestamp of the next drip.
        next_drip_at: u64,
    },
    /// The local devnet could not be started or driven.
    #[error("devnet: {0}")]
    Devnet(String),
    /// Any other provider error.
    #[error("provider error: {0}")]
    Provider(String),
    /// Local I/O.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ChainError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }

    /// Maps a provider error, turning execution failures into [`ChainError::Reverted`] and
    /// transport failures into [`ChainError::Unreachable`].
    pub(crate) fn from_provider(url: &str, account: Option<Felt>, err: ProviderError) -> Self {
        match err {
            ProviderError::StarknetError(e) => Self::from_starknet(account, e),
            ProviderError::Other(other) => {
                let text = other.to_string();
                if looks_like_transport(&text) {
                    Self::Unreachable { url: url.to_owned(), reason: text }
                } else {
                    Self::Provider(text)
                }
            }
            other => Self::Provider(other.to_string()),
        }
    }

    fn from_starknet(account: Option<Felt>, err: StarknetError) -> Self {
        match err {
            StarknetError::TransactionExecutionError(data) => {
                let reason = revert_reason(&data.execution_error);
                // Fee estimation runs the account's validation, which fails on a stale nonce:
                // that is not the contract refusing the call.
                if reason.to_ascii_lowercase().contains("nonce is invalid") {
                    Self::InvalidNonce { reason }
                } else {
                    Self::Reverted { tx_hash: None, reason }
                }
            }
            StarknetError::ContractError(data) => {
                Self::Reverted { tx_hash: None, reason: revert_reason(&data.revert_error) }
            }
            StarknetError::InsufficientAccountBalance | StarknetError::InsufficientResourcesForValidate => {
                Self::InsufficientFeeBalance { account: account.unwrap_or_default() }
            }
            StarknetError::ValidationFailure(reason) => {
                if reason.to_ascii_lowercase().contains("balance") {
                    Self::InsufficientFeeBalance { account: account.unwrap_or_default() }
                } else {
                    Self::Rejected { reason: format!("validation failure: {reason}") }
                }
            }
            StarknetError::InvalidTransactionNonce(reason) => Self::InvalidNonce { reason },
            other => Self::Provider(other.to_string()),
        }
    }

    /// The revert reason, if this is a revert.
    pub fn revert_reason(&self) -> Option<&str> {
        match self {
            Self::Reverted { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

fn looks_like_transport(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["error sending request", "connection refused", "connect", "dns", "timed out", "tcp"]
        .iter()
        .any(|needle| t.contains(needle))
}

/// Extracts a human-readable revert reason from a (possibly nested) execution error: the
/// innermost message, reduced to the Cairo short string when the message quotes one.
pub fn revert_reason(err: &ContractExecutionError) -> String {
    let mut current = err;
    loop {
        match current {
            ContractExecutionError::Nested(inner) => current = &inner.error,
            ContractExecutionError::Message(msg) => return short_reason(msg),
        }
    }
}

/// Reduces a raw revert message to its first quoted Cairo short string (`'FAUCET: empty'`),
/// keeping the whole message when none is quoted.
pub fn short_reason(raw: &str) -> String {
    // Cairo panics render as 0x… ('text'); take the first quoted text that is not a
    // generic wrapper such as 'ENTRYPOINT_FAILED'.
    let mut rest = raw;
    while let Some(start) = rest.find("('") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find("')") {
            let candidate = &after[..end];
            if !candidate.starts_with("ENTRYPOINT_") {
                return candidate.to_owned();
            }
            rest = &after[end..];
        } else {
            break;
        }
    }
    raw.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reason_takes_the_cairo_string() {
        let raw = "Transaction execution has failed:\n0: Error in the called contract (0x1):\nExecution failed. Failure reason:\n(0x4641554345543a20636f6f6c646f776e20616374697665 ('FAUCET: cooldown active'), 0x454e545259504f494e545f4641494c4544 ('ENTRYPOINT_FAILED')).\n";
        assert_eq!(short_reason(raw), "FAUCET: cooldown active");
    }

    #[test]
    fn short_reason_skips_wrappers_and_keeps_unquoted_text() {
        assert_eq!(short_reason("0x1 ('ENTRYPOINT_FAILED'), 0x2 ('SAGE: x')"), "SAGE: x");
        assert_eq!(short_reason("  out of gas  "), "out of gas");
    }

    #[test]
    fn nested_errors_yield_the_innermost_message() {
        let inner = ContractExecutionError::Message("boom ('SAGE: insufficient balance')".into());
        let nested = ContractExecutionError::Nested(starknet_rust::core::types::InnerContractExecutionError {
            contract_address: Felt::ONE,
            class_hash: Felt::TWO,
            selector: Felt::THREE,
            error: Box::new(inner).into(),
        });
        assert_eq!(revert_reason(&nested), "SAGE: insufficient balance");
    }

    /// A stale nonce (estimation's validation fails, or the node refuses the nonce) is its own
    /// variant, never a revert: callers that treat reverts as final (the coordinator's outbox)
    /// must retry it.
    #[test]
    fn stale_nonces_are_not_reverts() {
        let data = starknet_rust::core::types::TransactionExecutionErrorData {
            transaction_index: 0,
            execution_error: ContractExecutionError::Message("Account transaction nonce is invalid.".into()),
        };
        let e = ChainError::from_starknet(None, StarknetError::TransactionExecutionError(data));
        assert!(matches!(e, ChainError::InvalidNonce { .. }), "{e}");
        assert_eq!(e.revert_reason(), None);
        let e = ChainError::from_starknet(None, StarknetError::InvalidTransactionNonce("expected 5, got 4".into()));
        assert!(matches!(e, ChainError::InvalidNonce { .. }), "{e}");
        let data = starknet_rust::core::types::TransactionExecutionErrorData {
            transaction_index: 0,
            execution_error: ContractExecutionError::Message("0x1 ('JOB: not open')".into()),
        };
        let e = ChainError::from_starknet(None, StarknetError::TransactionExecutionError(data));
        assert_eq!(e.revert_reason(), Some("JOB: not open"));
    }
}
