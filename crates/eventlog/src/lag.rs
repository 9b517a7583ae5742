//! `dingguard_consumer_lag_records{group,topic}`: how far each consumer group is behind the log. Group and topic
//! names come from configuration only, so the series are few and fixed.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The least time between two measurements by [`crate::Consumer::report_lag`]: a measurement costs a broker round
/// trip per partition on Kafka, and a lag that moves in seconds is all an alert or a dashboard needs.
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// Bound on one measurement, so a slow broker delays a consumer loop by this much at most.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
}

/// The gauges the consumers of one log report their lag into; clones share them.
#[derive(Clone, Default)]
pub struct LagGauges(Family<LagLabels, Gauge>);

impl std::fmt::Debug for LagGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LagGauges")
    }
}

impl LagGauges {
    /// Registers `dingguard_consumer_lag_records` on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.sub_registry_with_prefix("dingguard").register(
            "consumer_lag_records",
            "Records the consumer group has not committed yet on the partitions this process holds, per topic",
            self.0.clone(),
        );
    }

    pub(crate) fn set(&self, group: &str, topic: &str, records: i64) {
        self.0.get_or_create(&LagLabels { group: group.to_owned(), topic: topic.to_owned() }).set(records);
    }

    /// The last value reported for `group` on `topic`, if any was.
    pub fn get(&self, group: &str, topic: &str) -> Option<i64> {
        self.0.get(&LagLabels { group: group.to_owned(), topic: topic.to_owned() }).map(|g| g.get())
    }
}

/// One held partition: its topic, its high watermark and where the group resumes on it.
pub(crate) struct Held {
    pub topic: String,
    pub high: i64,
    pub next: i64,
}

/// Sums the held partitions per consumed topic; a topic the member holds nothing of counts 0, and a partition
/// the log reports for a topic not consumed is left out, so the labels stay those configured.
pub(crate) fn per_topic(topics: &[String], held: Vec<Held>) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::with_capacity(topics.len());
    for topic in topics {
        if !out.iter().any(|(t, _)| t == topic) {
            out.push((topic.clone(), 0));
        }
    }
    for partition in held {
        if let Some((_, sum)) = out.iter_mut().find(|(t, _)| *t == partition.topic) {
            *sum = sum.saturating_add((partition.high - partition.next).max(0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_summed_per_consumed_topic_and_never_negative() {
        let held = |topic: &str, high, next| Held { topic: topic.into(), high, next };
        let topics = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        let lag = per_topic(&topics, vec![held("a", 10, 4), held("a", 3, 3), held("b", 5, 9), held("other", 7, 0)]);
        assert_eq!(lag, vec![("a".to_owned(), 6), ("b".to_owned(), 0)]);
        assert_eq!(per_topic(&topics, Vec::new()), vec![("a".to_owned(), 0), ("b".to_owned(), 0)]);
    }
}
