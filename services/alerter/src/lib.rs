//! The alerter: a consumer group on the events topic. Each batch is normalised, enriched and judged by the rules;
//! alerts, the events it claimed and the rule windows are committed to the store in one transaction, and only
//! then are the log offsets committed. A crash anywhere replays the batch, and the claimed ids make the replay
//! change nothing that was already done.

mod enrich;
mod judge;
pub mod messages;
mod metrics;
mod notifiers;
mod pipeline;
mod relay;
pub mod rules_source;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dingguard_directory::Directory;
use dingguard_eventlog::EventLog;
use dingguard_model::{Clock, Topics};
use dingguard_rules::RuleSet;
use dingguard_store::Store;
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use enrich::{Classification, Coverage, Grants};
pub use judge::Evaluator;
pub use notifiers::Route;
pub use rules_source::SourceError;

#[derive(Clone)]
pub struct AlerterSettings {
    /// Rule files or directories of them.
    pub rule_paths: Vec<PathBuf>,
    pub consumer_group: String,
    pub batch: usize,
    pub reload_interval: Duration,
    pub relay_interval: Duration,
    /// Where alerts are sent besides the alerts topic.
    pub routes: Vec<Route>,
    /// Base URL of the console, for links in notifications.
    pub console_url: Option<String>,
}

impl AlerterSettings {
    pub fn new(rule_paths: Vec<PathBuf>) -> Self {
        Self {
            rule_paths,
            consumer_group: "dingguard-alerter".into(),
            batch: 200,
            reload_interval: Duration::from_secs(2),
            relay_interval: Duration::from_millis(250),
            routes: Vec::new(),
            console_url: None,
        }
    }
}

pub(crate) struct Shared {
    store: Store,
    log: EventLog,
    topics: Topics,
    clock: Arc<dyn Clock>,
    classification: Classification,
    directory: Directory,
    settings: AlerterSettings,
    rules: RwLock<Arc<RuleSet>>,
    rules_version: AtomicU64,
    loaded_fingerprint: parking_lot::Mutex<Vec<rules_source::Fingerprint>>,
    metrics: metrics::AlerterMetrics,
    relay_wake: Notify,
}

#[derive(Clone)]
pub struct Alerter {
    shared: Arc<Shared>,
}

impl Alerter {
    /// Loads the rules (refusing to start on an invalid set) and prepares the loops.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        log: EventLog,
        topics: Topics,
        directory: Directory,
        classification: Classification,
        settings: AlerterSettings,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Result<Self, SourceError> {
        // Taken before loading, so an edit made while starting is noticed by the watcher.
        let fingerprint = rules_source::fingerprint(&settings.rule_paths);
        let rules = rules_source::load(&settings.rule_paths)?;
        let metrics = metrics::AlerterMetrics::register(registry);
        metrics.rules_loaded.set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                log,
                topics,
                clock,
                classification,
                directory,
                settings,
                rules: RwLock::new(Arc::new(rules)),
                rules_version: AtomicU64::new(0),
                loaded_fingerprint: parking_lot::Mutex::new(fingerprint),
                metrics,
                relay_wake: Notify::new(),
            }),
        })
    }

    pub fn rule_count(&self) -> usize {
        self.shared.rules.read().rules.len()
    }

    /// Runs the consumer, the relay and the rule watcher until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let consume = pipeline::consume(self.shared.clone(), shutdown.clone());
        let relay = relay::run(self.shared.clone(), shutdown.clone());
        let watch = watch_rules(self.shared.clone(), shutdown.clone());
        tokio::join!(consume, relay, watch);
    }
}

/// Polls the rule files; a changed set that validates replaces the one in force, one that does not is refused
/// with its file, line and reason, and the previous rules keep running.
async fn watch_rules(shared: Arc<Shared>, shutdown: CancellationToken) {
    let paths = shared.settings.rule_paths.clone();
    let mut last = shared.loaded_fingerprint.lock().clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(shared.settings.reload_interval) => {}
        }
        let now = rules_source::fingerprint(&paths);
        if now == last {
            continue;
        }
        last = now;
        match rules_source::load(&paths) {
            Ok(set) => {
                let count = set.rules.len();
                *shared.rules.write() = Arc::new(set);
                shared.rules_version.fetch_add(1, Ordering::AcqRel);
                shared.metrics.rules_loaded.set(i64::try_from(count).unwrap_or(i64::MAX));
                shared.metrics.reloads.get_or_create(&metrics::Outcome { outcome: "ok".into() }).inc();
                tracing::info!(rules = count, "rules reloaded");
            }
            Err(error) => {
                shared.metrics.reloads.get_or_create(&metrics::Outcome { outcome: "refused".into() }).inc();
                tracing::error!(%error, paths = %rules_source::describe(&paths), "rule change refused; previous rules stay in force");
            }
        }
    }
}
