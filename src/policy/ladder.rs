//! The trust ladder: default limits per trust level (docs/policies.md).
//!
//! A limit a policy leaves unset comes from the row of the agent's trust
//! level, or of the policy's pinned `trust_level`. `custom` has no row: only
//! the policy's own limits apply. Amounts are in the policy's base currency.

use std::time::Duration;

use rust_decimal::Decimal;

use super::{Limits, TrustLevel, VelocityRule};

/// One row of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderRow {
    pub per_tx: Decimal,
    pub daily: Decimal,
    pub weekly: Decimal,
    pub monthly: Decimal,
    pub velocity: &'static [VelocityRule],
}

const fn whole(units: u32) -> Decimal {
    Decimal::from_parts(units, 0, 0, false, 0)
}

/// 5 payments per minute and 60 per hour, for every level.
static LADDER_VELOCITY: [VelocityRule; 2] = [
    VelocityRule { max: 5, per: Duration::from_secs(60) },
    VelocityRule { max: 60, per: Duration::from_secs(3600) },
];

static LOW: LadderRow = LadderRow {
    per_tx: whole(50),
    daily: whole(100),
    weekly: whole(500),
    monthly: whole(1_000),
    velocity: &LADDER_VELOCITY,
};

static MEDIUM: LadderRow = LadderRow {
    per_tx: whole(500),
    daily: whole(1_000),
    weekly: whole(5_000),
    monthly: whole(10_000),
    velocity: &LADDER_VELOCITY,
};

static HIGH: LadderRow = LadderRow {
    per_tx: whole(5_000),
    daily: whole(10_000),
    weekly: whole(50_000),
    monthly: whole(100_000),
    velocity: &LADDER_VELOCITY,
};

/// The ladder row of `level`; `None` for `custom`.
pub fn row(level: TrustLevel) -> Option<&'static LadderRow> {
    match level {
        TrustLevel::Low => Some(&LOW),
        TrustLevel::Medium => Some(&MEDIUM),
        TrustLevel::High => Some(&HIGH),
        TrustLevel::Custom => None,
    }
}

/// `own` with every unset limit filled from `row` (lifetime has no default).
pub fn resolve(own: &Limits, row: Option<&LadderRow>) -> Limits {
    match row {
        None => own.clone(),
        Some(r) => Limits {
            per_tx: own.per_tx.or(Some(r.per_tx)),
            daily: own.daily.or(Some(r.daily)),
            weekly: own.weekly.or(Some(r.weekly)),
            monthly: own.monthly.or(Some(r.monthly)),
            lifetime: own.lifetime,
        },
    }
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Low => "low",
            TrustLevel::Medium => "medium",
            TrustLevel::High => "high",
            TrustLevel::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<TrustLevel> {
        match text {
            "low" => Some(TrustLevel::Low),
            "medium" => Some(TrustLevel::Medium),
            "high" => Some(TrustLevel::High),
            "custom" => Some(TrustLevel::Custom),
            _ => None,
        }
    }
}

impl std::fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_rows_match_the_design_table() {
        let low = row(TrustLevel::Low).unwrap();
        assert_eq!(
            (low.per_tx, low.daily, low.weekly, low.monthly),
            (whole(50), whole(100), whole(500), whole(1000))
        );
        let med = row(TrustLevel::Medium).unwrap();
        assert_eq!(
            (med.per_tx, med.daily, med.weekly, med.monthly),
            (whole(500), whole(1000), whole(5000), whole(10000))
        );
        let high = row(TrustLevel::High).unwrap();
        assert_eq!(
            (high.per_tx, high.daily, high.weekly, high.monthly),
            (whole(5000), whole(10000), whole(50000), whole(100000))
        );
        assert!(row(TrustLevel::Custom).is_none());
        for r in [low, med, high] {
            assert_eq!(r.velocity, &LADDER_VELOCITY[..]);
        }
    }

    #[test]
    fn resolve_keeps_own_limits_and_fills_the_rest() {
        let own = Limits { daily: Some(whole(70)), ..Limits::default() };
        let l = resolve(&own, row(TrustLevel::Low));
        assert_eq!(l.per_tx, Some(whole(50)));
        assert_eq!(l.daily, Some(whole(70)));
        assert_eq!(l.lifetime, None);
        assert_eq!(resolve(&own, None), own);
    }
}
