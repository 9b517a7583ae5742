//! The approver's metrics: requests open and about to expire (read from the store, so every replica shows the
//! same on PostgreSQL), and the decisions this process committed, by outcome and by how long they took.

use dingguard_approval::Status;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// How a request ended: the state machine's final states.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum Outcome {
    Granted,
    Rejected,
    Expired,
}

impl Outcome {
    const ALL: [Self; 3] = [Self::Granted, Self::Rejected, Self::Expired];

    /// The outcome a request in `status` ended with; `None` while it is pending.
    pub fn of(status: Status) -> Option<Self> {
        match status {
            Status::Pending => None,
            Status::Granted => Some(Self::Granted),
            Status::Rejected => Some(Self::Rejected),
            Status::Expired => Some(Self::Expired),
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let name = match self {
            Self::Granted => Status::Granted.as_str(),
            Self::Rejected => Status::Rejected.as_str(),
            Self::Expired => Status::Expired.as_str(),
        };
        EncodeLabelValue::encode(&name, encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

/// From a minute to three days: people decide in minutes to hours, and a request lives a day by default and
/// at most 30, so the longest ones land in `+Inf`.
const DECISION_BUCKETS: [f64; 12] =
    [60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 43_200.0, 86_400.0, 172_800.0, 259_200.0];

/// How far ahead a request counts as expiring soon.
pub(crate) const EXPIRING_WITHIN_MS: i64 = 3_600_000;

#[derive(Clone)]
pub(crate) struct ApproverMetrics {
    pub open: Gauge,
    pub expiring_soon: Gauge,
    decisions: Family<OutcomeLabels, Counter>,
    decision_seconds: Histogram,
}

impl ApproverMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            open: Gauge::default(),
            expiring_soon: Gauge::default(),
            decisions: Family::default(),
            decision_seconds: Histogram::new(DECISION_BUCKETS),
        };
        // Every outcome shows from the start, so a rate over it is 0 rather than absent.
        for outcome in Outcome::ALL {
            drop(metrics.decisions.get_or_create(&OutcomeLabels { outcome }));
        }
        let r = registry.sub_registry_with_prefix("dingguard");
        r.register("approvals_open", "Download requests awaiting a decision", metrics.open.clone());
        r.register(
            "approvals_expiring_soon",
            "Download requests awaiting a decision that expire within the hour",
            metrics.expiring_soon.clone(),
        );
        r.register(
            "approval_decisions",
            "Download requests this process closed, by outcome (granted, rejected, expired)",
            metrics.decisions.clone(),
        );
        r.register_with_unit(
            "approval_decision",
            "Time from a download request to its outcome",
            Unit::Seconds,
            metrics.decision_seconds.clone(),
        );
        metrics
    }

    /// A request made at `created_ms` closed with `outcome` at `at_ms`, in a transaction that committed.
    pub fn closed(&self, outcome: Outcome, created_ms: i64, at_ms: i64) {
        self.decisions.get_or_create(&OutcomeLabels { outcome }).inc();
        // A clock that went back makes it 0, never negative.
        let seconds = (at_ms.saturating_sub(created_ms)).max(0) as f64 / 1000.0;
        self.decision_seconds.observe(seconds);
    }
}
