//! The spend governor: every escrow an agent asks for is checked against the operator's caps
//! (per call, per session, per rolling day) *before* anything is signed, above a threshold it
//! needs the user's approval, and each spend is appended to a ledger (synced) keyed by the call's
//! idempotency key, so a retried call never pays twice. Pure checks plus one file; no network.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The operator's caps, SAGE base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most one call may escrow.
    pub per_call: u128,
    /// Most one MCP session may escrow.
    pub per_session: u128,
    /// Most all sessions together may escrow in any 24 hours.
    pub per_day: u128,
    /// Escrows above this ask the user first (MCP elicitation).
    pub approval_above: u128,
}

/// One recorded spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// When (Unix ms).
    pub at_ms: u64,
    /// The tool call's idempotency key.
    pub key: String,
    /// Job id (hex).
    pub job: String,
    /// Escrowed, SAGE base units (decimal string).
    pub amount: String,
    /// Escrow transaction (hex).
    pub tx: String,
    /// Session that spent it.
    pub session: String,
}

impl Spend {
    fn amount(&self) -> u128 {
        self.amount.parse().unwrap_or(u128::MAX)
    }
}

/// Why a spend was refused (nothing was signed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Above the per-call cap.
    #[error("{amount} exceeds the per-call cap of {cap} (SAGE base units)")]
    PerCall {
        /// Asked.
        amount: u128,
        /// Cap.
        cap: u128,
    },
    /// The session's total would pass its cap.
    #[error("this session has spent {spent}; {amount} more would pass its cap of {cap}")]
    PerSession {
        /// Spent so far.
        spent: u128,
        /// Asked.
        amount: u128,
        /// Cap.
        cap: u128,
    },
    /// The last 24 hours' total would pass the daily cap.
    #[error("{spent} spent in the last 24 hours; {amount} more would pass the daily cap of {cap}")]
    PerDay {
        /// Spent in the window.
        spent: u128,
        /// Asked.
        amount: u128,
        /// Cap.
        cap: u128,
    },
    /// Above the approval threshold and the user did not approve (or could not be asked).
    #[error("{amount} is above the approval threshold of {threshold} and the user did not approve it: {why}")]
    NotApproved {
        /// Asked.
        amount: u128,
        /// Threshold.
        threshold: u128,
        /// Declined, cancelled, or the client cannot ask.
        why: String,
    },
}

impl Refusal {
    /// The stable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PerCall { .. } => "budget_per_call",
            Self::PerSession { .. } => "budget_per_session",
            Self::PerDay { .. } => "budget_per_day",
            Self::NotApproved { .. } => "approval_required",
        }
    }
}

/// What the caps allow for one spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within every cap and below the approval threshold.
    Allowed,
    /// Within every cap, but the user must approve it first.
    AskUser,
}

/// Checks one spend of `amount` against the caps, given what this session and the last 24
/// hours already spent.
pub fn check(caps: &Caps, session_spent: u128, day_spent: u128, amount: u128) -> Result<Decision, Refusal> {
    if amount > caps.per_call {
        return Err(Refusal::PerCall { amount, cap: caps.per_call });
    }
    if session_spent.saturating_add(amount) > caps.per_session {
        return Err(Refusal::PerSession { spent: session_spent, amount, cap: caps.per_session });
    }
    if day_spent.saturating_add(amount) > caps.per_day {
        return Err(Refusal::PerDay { spent: day_spent, amount, cap: caps.per_day });
    }
    Ok(if amount > caps.approval_above { Decision::AskUser } else { Decision::Allowed })
}

/// The spend ledger: JSON lines, each synced before the call returns.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    entries: Vec<Spend>,
}

const DAY_MS: u64 = 24 * 3600 * 1000;

impl Ledger {
    /// Opens (or creates) the ledger; a torn last line (a crash mid-append) is ignored.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let entries = match std::fs::read_to_string(path) {
            Ok(text) => text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path: path.to_owned(), entries })
    }

    /// Appends one spend and syncs it.
    pub fn record(&mut self, spend: Spend) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        let mut line = serde_json::to_string(&spend).map_err(std::io::Error::other)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        f.sync_all()?;
        self.entries.push(spend);
        Ok(())
    }

    /// The spend recorded under this idempotency key, if any.
    pub fn by_key(&self, key: &str) -> Option<&Spend> {
        self.entries.iter().find(|s| s.key == key)
    }

    /// Total spent in the 24 hours before `now_ms`.
    pub fn day_total(&self, now_ms: u64) -> u128 {
        self.entries.iter().filter(|s| s.at_ms + DAY_MS > now_ms).map(Spend::amount).sum()
    }

    /// Total spent by one session.
    pub fn session_total(&self, session: &str) -> u128 {
        self.entries.iter().filter(|s| s.session == session).map(Spend::amount).sum()
    }

    /// The most recent spends, newest last.
    pub fn recent(&self, n: usize) -> &[Spend] {
        &self.entries[self.entries.len().saturating_sub(n)..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps { per_call: 100, per_session: 250, per_day: 400, approval_above: 60 };

    #[test]
    fn each_cap_refuses_with_its_own_code_and_the_threshold_asks() {
        assert_eq!(check(&CAPS, 0, 0, 50), Ok(Decision::Allowed));
        assert_eq!(check(&CAPS, 0, 0, 61), Ok(Decision::AskUser));
        assert_eq!(check(&CAPS, 0, 0, 101).unwrap_err().code(), "budget_per_call");
        assert_eq!(check(&CAPS, 200, 200, 51).unwrap_err().code(), "budget_per_session");
        assert_eq!(check(&CAPS, 0, 350, 51).unwrap_err().code(), "budget_per_day");
        // Exactly at a cap is allowed; one more is not.
        assert_eq!(check(&CAPS, 150, 150, 100), Ok(Decision::AskUser));
        assert!(check(&CAPS, 151, 151, 100).is_err());
        // No overflow with absurd inputs.
        assert!(check(&CAPS, u128::MAX, 0, 1).is_err());
    }

    #[test]
    fn the_ledger_survives_a_restart_and_a_torn_line_and_windows_the_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spend.jsonl");
        let spend = |at_ms, key: &str, amount: u128, session: &str| Spend {
            at_ms,
            key: key.into(),
            job: "0x1".into(),
            amount: amount.to_string(),
            tx: "0x2".into(),
            session: session.into(),
        };
        let mut l = Ledger::open(&path).unwrap();
        l.record(spend(0, "a", 10, "s1")).unwrap();
        l.record(spend(DAY_MS, "b", 20, "s2")).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"at_ms\":").unwrap();
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.recent(10).len(), 2);
        assert_eq!(l.by_key("b").map(|s| s.amount()), Some(20));
        assert_eq!(l.day_total(DAY_MS), 20, "the first spend is a day old");
        assert_eq!(l.day_total(DAY_MS - 1), 30);
        assert_eq!(l.session_total("s1"), 10);
    }
}
