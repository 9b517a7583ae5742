use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
    pub severity: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabels {
    pub notifier: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Default)]
pub struct AlerterMetrics {
    pub events: Family<Outcome, Counter>,
    pub raised: Family<RuleLabels, Counter>,
    pub folded: Counter,
    pub suppressed: Family<KindLabels, Counter>,
    pub reloads: Family<Outcome, Counter>,
    pub rules_loaded: Gauge,
    pub published: Family<Outcome, Counter>,
    pub notified: Family<NotifierLabels, Counter>,
    pub state_conflicts: Counter,
}

impl AlerterMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("dingguard");
        r.register("alerter_events", "Events the alerter read, by outcome", m.events.clone());
        r.register("alerts_raised", "Alerts opened, by rule and severity", m.raised.clone());
        r.register("alerts_folded", "Rule matches folded into an open alert by its dedup key", m.folded.clone());
        r.register("alerts_suppressed", "Rule matches held back by an exception or a silence", m.suppressed.clone());
        r.register("rules_reloads", "Rule reloads by outcome (ok, refused)", m.reloads.clone());
        r.register("rules_loaded", "Rules in force", m.rules_loaded.clone());
        r.register("alerts_published", "Alert records written to the alerts topic, by outcome", m.published.clone());
        r.register("notifications", "Notification attempts by notifier and outcome", m.notified.clone());
        r.register(
            "alerter_state_conflicts",
            "Batches judged again because another replica changed a window or person they counted on",
            m.state_conflicts.clone(),
        );
        m
    }

    pub fn event(&self, outcome: &str) {
        self.events.get_or_create(&Outcome { outcome: outcome.into() }).inc();
    }
}
