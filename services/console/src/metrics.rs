use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    /// ok, bad_credentials, no_role, rate_limited or link_invalid.
    pub outcome: &'static str,
}

#[derive(Clone)]
pub(crate) struct ConsoleMetrics {
    logins: Family<OutcomeLabels, Counter>,
    pub sse_clients: Gauge,
    pub feed_errors: Counter,
}

impl ConsoleMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics =
            Self { logins: Family::default(), sse_clients: Gauge::default(), feed_errors: Counter::default() };
        let r = registry.sub_registry_with_prefix("dingguard").sub_registry_with_prefix("console");
        r.register("logins", "Console sign-in attempts by outcome", metrics.logins.clone());
        r.register("sse_clients", "Browsers connected to the live alert feed", metrics.sse_clients.clone());
        r.register(
            "feed_poll_errors",
            "Live-feed polls of the store that failed (the feed retries on the next tick)",
            metrics.feed_errors.clone(),
        );
        metrics
    }

    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// Counts a connected feed client for as long as it lives, however its stream ends.
pub(crate) struct ClientGuard(Gauge);

impl ClientGuard {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
