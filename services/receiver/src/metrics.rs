use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallbackLabels {
    pub app: String,
    /// accepted, duplicate, check_url, rejected or failed.
    pub outcome: String,
    /// Why it was rejected or failed; `none` otherwise.
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

#[derive(Clone)]
pub struct SuccessCounters {
    pub accepted: Counter,
    pub duplicate: Counter,
    pub check_url: Counter,
}

#[derive(Clone)]
pub struct ReceiverMetrics {
    pub callbacks: Family<CallbackLabels, Counter>,
    pub callback_duration: Histogram,
    pub log_write_duration: Family<BackendLabels, Histogram>,
    pub replay_hits: Counter,
    pub replay_evictions: Counter,
    pub log_ready: Gauge,
    backend: BackendLabels,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 14))
}

impl ReceiverMetrics {
    pub fn register(registry: &mut Registry, backend: &str) -> Self {
        let metrics = Self {
            callbacks: Family::default(),
            callback_duration: latency_histogram(),
            log_write_duration: Family::new_with_constructor(latency_histogram),
            replay_hits: Counter::default(),
            replay_evictions: Counter::default(),
            log_ready: Gauge::default(),
            backend: BackendLabels { backend: backend.to_owned() },
        };
        let r = registry.sub_registry_with_prefix("dingguard");
        r.register("callbacks", "DingTalk callbacks by app, outcome and reason", metrics.callbacks.clone());
        r.register_with_unit(
            "callback_duration",
            "Time from request to reply",
            Unit::Seconds,
            metrics.callback_duration.clone(),
        );
        r.register_with_unit(
            "log_write_duration",
            "Time for the event log to confirm a write",
            Unit::Seconds,
            metrics.log_write_duration.clone(),
        );
        r.register(
            "replay_hits",
            "Callbacks already in the log, answered without writing again",
            metrics.replay_hits.clone(),
        );
        r.register(
            "replay_cache_evictions",
            "Callback ids forgotten before their window closed because the replay cache was full",
            metrics.replay_evictions.clone(),
        );
        r.register("log_ready", "1 when the event log accepts writes", metrics.log_ready.clone());
        metrics
    }

    /// Counters of the outcomes every accepted callback hits, made once per app so the hot path allocates no
    /// label strings.
    pub fn success_counters(&self, app: &str) -> SuccessCounters {
        let make = |outcome: &str| {
            self.callbacks
                .get_or_create(&CallbackLabels {
                    app: app.to_owned(),
                    outcome: outcome.to_owned(),
                    reason: "none".to_owned(),
                })
                .clone()
        };
        SuccessCounters { accepted: make("accepted"), duplicate: make("duplicate"), check_url: make("check_url") }
    }

    pub fn count(&self, app: &str, outcome: &str, reason: &str) {
        self.callbacks
            .get_or_create(&CallbackLabels {
                app: app.to_owned(),
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn observe_write(&self, seconds: f64) {
        self.log_write_duration.get_or_create(&self.backend).observe(seconds);
    }
}
