use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameLabels {
    /// event, callback, system or unknown.
    pub r#type: &'static str,
    /// written, duplicate, later, acked, ping, disconnect, other or unreadable.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// disconnect, dropped, keepalive or refused.
    pub reason: &'static str,
}

/// The Stream connector's metrics. Every label takes only the values named above.
#[derive(Clone)]
pub struct StreamMetrics {
    frames: Family<FrameLabels, Counter>,
    reconnects: Family<ReasonLabels, Counter>,
    ack: Histogram,
    connections: Gauge,
}

/// Counts a connection as open while held.
pub struct Connected(Gauge);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl StreamMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            frames: Family::default(),
            reconnects: Family::default(),
            ack: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            connections: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("dingguard_stream");
        r.register("frames", "Stream frames by type and what came of them", metrics.frames.clone());
        r.register(
            "reconnects",
            "Stream connections opened again, by why the last one ended",
            metrics.reconnects.clone(),
        );
        r.register_with_unit(
            "ack_duration",
            "Time from an EVENT frame's arrival to its ack",
            Unit::Seconds,
            metrics.ack.clone(),
        );
        r.register("connections", "Stream connections open now", metrics.connections.clone());
        metrics
    }

    /// Metrics that go nowhere, for a connector outside a process (the bench's raw figures).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    pub(crate) fn frame(&self, r#type: &'static str, outcome: &'static str) {
        self.frames.get_or_create(&FrameLabels { r#type, outcome }).inc();
    }

    pub(crate) fn reconnect(&self, reason: &'static str) {
        self.reconnects.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub(crate) fn acked(&self, took: Duration) {
        self.ack.observe(took.as_secs_f64());
    }

    pub(crate) fn connected(&self) -> Connected {
        self.connections.inc();
        Connected(self.connections.clone())
    }
}
