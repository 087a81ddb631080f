//! Assignment decisions and quotes: pure functions over what the coordinator knows of its
//! workers, so they are tested and benchmarked without a network or a chain.
//!
//! A worker is eligible for a job when its stake is valid for the job (tier minimum, locked past
//! the deadline plus grace), its attestation passes the TEE policy, its last heartbeat is within
//! the window and it has a free slot. Among the eligible, the one expected to finish first wins
//! (measured throughput), with on-chain reputation breaking near-ties; a worker that cannot
//! finish before the deadline is not chosen.

use sage_protocol::{Felt, JobSpec};

/// What the scheduler knows of one worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Account address.
    pub address: Felt,
    /// Stake checked against the job's tier and lock (`sage-staking::verify_stake`).
    pub stake_ok: bool,
    /// Attestation accepted by the TEE policy.
    pub attested: bool,
    /// Last heartbeat (Unix ms).
    pub last_seen_ms: u64,
    /// Free proving slots.
    pub free: u32,
    /// Measured work units per millisecond (`None`: no history yet).
    pub throughput: Option<f64>,
    /// On-chain reputation score (0..=1000 or so; higher is better).
    pub reputation: u32,
}

/// The scheduler's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerRules {
    /// A worker silent for longer is not assigned.
    pub heartbeat_window_ms: u64,
    /// Throughput assumed for a worker without history (work units per ms).
    pub default_throughput: f64,
    /// Safety factor on expected times (2.0: a job must be expected to finish in half the time left).
    pub safety: f64,
}

impl Default for SchedulerRules {
    fn default() -> Self {
        // 1024³ multiply-adds in ~20 s on one H100-class worker ≈ 5e4 units/ms; a modest default.
        Self { heartbeat_window_ms: 30_000, default_throughput: 1.0e4, safety: 2.0 }
    }
}

/// Why no worker was chosen (for the operator and the job's history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rejections {
    /// Stake invalid for this job.
    pub stake: u32,
    /// Attestation refused.
    pub attestation: u32,
    /// Heartbeat too old.
    pub silent: u32,
    /// No free slot.
    pub busy: u32,
    /// Too slow for the deadline.
    pub too_slow: u32,
}

/// Expected proving time of `spec` on a worker of `throughput` units/ms.
pub fn expected_ms(spec: &JobSpec, throughput: f64) -> u64 {
    // Work units fit f64 comfortably (at most 2^30 for matmul).
    let ms = spec.work_units() as f64 / throughput.max(1e-9);
    ms.ceil().min(u64::MAX as f64) as u64
}

/// Chooses the worker for `spec` due at `deadline_ms`, or explains why none fits.
pub fn choose(
    spec: &JobSpec,
    deadline_ms: u64,
    now_ms: u64,
    candidates: &[Candidate],
    rules: &SchedulerRules,
) -> Result<Felt, Rejections> {
    let mut why = Rejections::default();
    let mut best: Option<(f64, &Candidate)> = None;
    let left = deadline_ms.saturating_sub(now_ms) as f64;
    for c in candidates {
        if !c.stake_ok {
            why.stake += 1;
            continue;
        }
        if !c.attested {
            why.attestation += 1;
            continue;
        }
        if now_ms.saturating_sub(c.last_seen_ms) > rules.heartbeat_window_ms {
            why.silent += 1;
            continue;
        }
        if c.free == 0 {
            why.busy += 1;
            continue;
        }
        let expected = expected_ms(spec, c.throughput.unwrap_or(rules.default_throughput)) as f64;
        if expected * rules.safety > left {
            why.too_slow += 1;
            continue;
        }
        // Lower is better: expected time, discounted up to 20 % by reputation.
        let score = expected * (1.0 - 0.2 * (f64::from(c.reputation.min(1000)) / 1000.0));
        let better = match best {
            None => true,
            Some((s, b)) => score < s || (score == s && c.address < b.address),
        };
        if better {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.address).ok_or(why)
}

/// How prices are made: `base + per_unit × work units`, in SAGE base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    /// Flat part of every job.
    pub base: u128,
    /// Price per million work units.
    pub per_million_units: u128,
}

impl Default for Pricing {
    fn default() -> Self {
        Self { base: 1_000_000_000_000_000, per_million_units: 1_000_000_000_000 }
    }
}

impl Pricing {
    /// The least escrow the coordinator queues `spec` for.
    pub fn price(&self, spec: &JobSpec) -> u128 {
        self.base.saturating_add(self.per_million_units.saturating_mul(spec.work_units().div_ceil(1_000_000)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec::Matmul { n: 256, seed: Felt::ONE }
    }

    fn good(address: u8) -> Candidate {
        Candidate {
            address: Felt::from(address),
            stake_ok: true,
            attested: true,
            last_seen_ms: 30_000,
            free: 1,
            throughput: Some(1.0e4),
            reputation: 500,
        }
    }

    #[test]
    fn ineligible_workers_are_never_chosen_and_each_reason_is_counted() {
        let rules = SchedulerRules::default();
        let all = vec![
            Candidate { stake_ok: false, ..good(1) },
            Candidate { attested: false, ..good(2) },
            Candidate { last_seen_ms: 0, ..good(3) },
            Candidate { free: 0, ..good(4) },
            Candidate { throughput: Some(1.0), ..good(5) },
        ];
        let why = choose(&spec(), 100_000, 35_000, &all, &rules).unwrap_err();
        assert_eq!(why, Rejections { stake: 1, attestation: 1, silent: 1, busy: 1, too_slow: 1 });
        let mut with_good = all.clone();
        with_good.push(good(6));
        assert_eq!(choose(&spec(), 100_000, 35_000, &with_good, &rules), Ok(Felt::from(6u8)));
    }

    #[test]
    fn the_fastest_wins_and_reputation_breaks_near_ties() {
        let rules = SchedulerRules::default();
        let fast = Candidate { throughput: Some(2.0e4), ..good(1) };
        let slow = Candidate { throughput: Some(1.0e4), reputation: 1000, ..good(2) };
        assert_eq!(choose(&spec(), 1_000_000, 1_000, &[slow.clone(), fast.clone()], &rules), Ok(fast.address));
        let twin = Candidate { reputation: 900, ..good(3) };
        assert_eq!(choose(&spec(), 1_000_000, 1_000, &[good(4), twin.clone()], &rules), Ok(twin.address));
        // Equal in everything: the lower address, so the choice is deterministic.
        assert_eq!(choose(&spec(), 1_000_000, 1_000, &[good(9), good(8)], &rules), Ok(Felt::from(8u8)));
    }

    #[test]
    fn prices_grow_with_work() {
        let p = Pricing::default();
        let small = p.price(&JobSpec::Matmul { n: 64, seed: Felt::ONE });
        let big = p.price(&JobSpec::Matmul { n: 1024, seed: Felt::ONE });
        assert!(big > small && small >= p.base);
        assert_eq!(big - p.base, p.per_million_units * 1074);
    }
}
