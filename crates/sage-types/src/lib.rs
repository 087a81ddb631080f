//! The vocabulary Sage's crates share, with one home each: [`GpuTier`], [`TeeType`],
//! [`StakeInfo`], [`StakeStatus`] and [`TierRules`] (the `StakingManager` contract's stake rule,
//! evaluated off-chain). Pure data and pure functions: no I/O, no chain client.
//!
//! ```
//! use sage_types::{GpuTier, StakeInfo, StakeStatus, TeeType, TierRules};
//!
//! let tier: GpuTier = "H100".parse()?;
//! assert_eq!(tier.to_string(), "H100");
//! let rules = TierRules { min_stakes: [100, 200, 300, 400, 500, 600] };
//! let info = StakeInfo { amount: 500, tier: tier.index(), locked_until: 2_000, ..StakeInfo::default() };
//! assert_eq!(rules.classify(&info, 1_500), StakeStatus::Valid);
//! assert_eq!(rules.classify(&info, 2_500), StakeStatus::Unlocked);
//! assert_eq!(TeeType::from_felt(TeeType::Tdx.to_felt()), Some(TeeType::Tdx));
//! # Ok::<(), sage_types::UnknownTier>(())
//! ```

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};
use starknet_types_core::felt::Felt;

/// A GPU tier; each has an owner-configurable minimum stake. Written as its name (`"H100"`) in
/// config files and messages, as its index on-chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum GpuTier {
    /// NVIDIA T4.
    T4,
    /// NVIDIA L4.
    L4,
    /// NVIDIA A10.
    A10,
    /// NVIDIA A100.
    A100,
    /// NVIDIA H100.
    H100,
    /// NVIDIA H200.
    H200,
}

/// A tier name that is not one of [`GpuTier::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown GPU tier {0:?}: expected one of T4, L4, A10, A100, H100, H200")]
pub struct UnknownTier(pub String);

impl GpuTier {
    /// Every tier, in on-chain order.
    pub const ALL: [Self; 6] = [Self::T4, Self::L4, Self::A10, Self::A100, Self::H100, Self::H200];

    /// The on-chain tier index.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The tier of an on-chain index.
    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }

    /// The tier's name, as written in config files and heartbeats.
    pub fn name(self) -> &'static str {
        match self {
            Self::T4 => "T4",
            Self::L4 => "L4",
            Self::A10 => "A10",
            Self::A100 => "A100",
            Self::H100 => "H100",
            Self::H200 => "H200",
        }
    }
}

impl fmt::Display for GpuTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GpuTier {
    type Err = UnknownTier;

    /// Case-insensitive: `h100` and `H100` are the same tier.
    fn from_str(s: &str) -> Result<Self, UnknownTier> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

impl TryFrom<String> for GpuTier {
    type Error = UnknownTier;

    fn try_from(s: String) -> Result<Self, UnknownTier> {
        s.parse()
    }
}

impl From<GpuTier> for String {
    fn from(t: GpuTier) -> Self {
        t.name().to_owned()
    }
}

/// Which TEE produced a worker's evidence. Recorded on-chain as a Cairo short string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeeType {
    /// Intel SGX enclave (`'SGX'`).
    Sgx,
    /// Intel TDX trust domain (`'TDX'`).
    Tdx,
    /// AMD SEV-SNP guest (`'SEV-SNP'`).
    SevSnp,
    /// No TEE: development networks only (`'NONE'`).
    None,
}

impl TeeType {
    /// Every TEE type.
    pub const ALL: [Self; 4] = [Self::Sgx, Self::Tdx, Self::SevSnp, Self::None];

    /// The short string the contracts store.
    pub fn to_felt(self) -> Felt {
        Felt::from_hex_unchecked(match self {
            Self::Sgx => "0x534758",
            Self::Tdx => "0x544458",
            Self::SevSnp => "0x5345562d534e50",
            Self::None => "0x4e4f4e45",
        })
    }

    /// The TEE type of an on-chain short string; `None` for anything else.
    pub fn from_felt(felt: Felt) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.to_felt() == felt)
    }
}

/// A staker's position, as `StakingManager.get_stake` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StakeInfo {
    /// Bonded SAGE, base units.
    pub amount: u128,
    /// Tier index (see [`GpuTier::from_index`]).
    pub tier: u8,
    /// No unstake request before this block timestamp.
    pub locked_until: u64,
    /// Unstaking SAGE (still slashable).
    pub pending: u128,
    /// When `pending` can be withdrawn.
    pub pending_at: u64,
    /// Everything ever slashed.
    pub slashed_total: u128,
}

/// Whether a worker's stake backs a job that ends at a given time (`StakingManager.stake_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StakeStatus {
    /// At least the tier minimum, locked at least until the job's deadline.
    Valid,
    /// Nothing staked or below the tier minimum.
    Insufficient,
    /// Enough, but the lock ends before the deadline (the worker could leave mid-job).
    Unlocked,
}

impl StakeStatus {
    /// The contract's code: 0 valid, 1 insufficient, 2 unlocked.
    pub fn code(self) -> u8 {
        match self {
            Self::Valid => 0,
            Self::Insufficient => 1,
            Self::Unlocked => 2,
        }
    }

    /// The status of a contract code; `None` for a code this version does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        [Self::Valid, Self::Insufficient, Self::Unlocked].into_iter().find(|s| s.code() == code)
    }
}

/// Minimum stake per GPU tier (what the contract's owner configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierRules {
    /// Minimum per tier, base units, in [`GpuTier::ALL`] order.
    pub min_stakes: [u128; 6],
}

impl TierRules {
    /// The minimum stake of `tier`.
    pub fn minimum(&self, tier: GpuTier) -> u128 {
        self.min_stakes[usize::from(tier.index())]
    }

    /// The contract's rule, evaluated locally: enough for the staked tier, locked until `until`.
    pub fn classify(&self, info: &StakeInfo, until: u64) -> StakeStatus {
        let Some(tier) = GpuTier::from_index(info.tier) else { return StakeStatus::Insufficient };
        if info.amount == 0 || info.amount < self.minimum(tier) {
            StakeStatus::Insufficient
        } else if info.locked_until < until {
            StakeStatus::Unlocked
        } else {
            StakeStatus::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_roundtrip_through_index_name_and_serde() {
        for t in GpuTier::ALL {
            assert_eq!(GpuTier::from_index(t.index()), Some(t));
            assert_eq!(t.name().parse::<GpuTier>(), Ok(t));
            assert_eq!(t.name().to_lowercase().parse::<GpuTier>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
            assert_eq!(serde_json::from_str::<GpuTier>(&json).unwrap(), t);
        }
        assert_eq!(GpuTier::from_index(6), None);
        assert_eq!("B200".parse::<GpuTier>(), Err(UnknownTier("B200".into())));
        let err = serde_json::from_str::<GpuTier>("\"RTX\"").unwrap_err().to_string();
        assert!(err.contains("RTX") && err.contains("H100"), "{err}");
    }

    #[test]
    fn tee_types_are_their_short_strings() {
        for (t, s) in
            [(TeeType::Sgx, "SGX"), (TeeType::Tdx, "TDX"), (TeeType::SevSnp, "SEV-SNP"), (TeeType::None, "NONE")]
        {
            assert_eq!(t.to_felt(), sage_keys::short_string(s).unwrap());
            assert_eq!(TeeType::from_felt(t.to_felt()), Some(t));
        }
        assert_eq!(TeeType::from_felt(Felt::ONE), None);
        assert_eq!(serde_json::to_string(&TeeType::SevSnp).unwrap(), "\"sev-snp\"");
    }

    #[test]
    fn stake_status_codes() {
        for s in [StakeStatus::Valid, StakeStatus::Insufficient, StakeStatus::Unlocked] {
            assert_eq!(StakeStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(StakeStatus::from_code(3), None);
    }

    const SAGE: u128 = 1_000_000_000_000_000_000;

    fn rules() -> TierRules {
        TierRules {
            min_stakes: [1_000 * SAGE, 2_000 * SAGE, 3_000 * SAGE, 10_000 * SAGE, 25_000 * SAGE, 40_000 * SAGE],
        }
    }

    fn info(amount: u128, tier: u8, locked_until: u64) -> StakeInfo {
        StakeInfo { amount, tier, locked_until, ..StakeInfo::default() }
    }

    #[test]
    fn classify_follows_the_contract_rule() {
        let r = rules();
        let cases = [
            (info(0, 0, u64::MAX), 10, StakeStatus::Insufficient),
            (info(999 * SAGE, 0, u64::MAX), 10, StakeStatus::Insufficient),
            (info(1_000 * SAGE, 0, 10), 10, StakeStatus::Valid),
            (info(1_000 * SAGE, 0, 9), 10, StakeStatus::Unlocked),
            (info(1_000 * SAGE, 4, u64::MAX), 10, StakeStatus::Insufficient),
            (info(40_000 * SAGE, 5, 100), 100, StakeStatus::Valid),
            // An index the contract would never store is never valid.
            (info(u128::MAX, 6, u64::MAX), 0, StakeStatus::Insufficient),
        ];
        for (i, until, want) in cases {
            assert_eq!(r.classify(&i, until), want, "{i:?} until {until}");
        }
        for t in GpuTier::ALL {
            assert_eq!(r.minimum(t), r.min_stakes[usize::from(t.index())]);
        }
    }

    #[test]
    fn classify_applies_the_tier_minimum_and_the_lock() {
        let rules = TierRules { min_stakes: [10, 20, 30, 40, 50, 60] };
        let info = |amount, tier, locked_until| StakeInfo { amount, tier, locked_until, ..StakeInfo::default() };
        assert_eq!(rules.classify(&info(50, 4, 100), 100), StakeStatus::Valid);
        assert_eq!(rules.classify(&info(49, 4, 100), 100), StakeStatus::Insufficient);
        assert_eq!(rules.classify(&info(50, 4, 99), 100), StakeStatus::Unlocked);
        assert_eq!(rules.classify(&info(1000, 9, 100), 1), StakeStatus::Insufficient, "unknown tier index");
        let free = TierRules { min_stakes: [0; 6] };
        assert_eq!(free.classify(&info(0, 0, 100), 1), StakeStatus::Insufficient, "nothing staked");
    }
}
