//! The receiver: DingTalk pushes in, verified, decrypted, durably in the event log, and only then acknowledged.

mod dedup;
mod error;
mod handler;
mod metrics;
mod ops;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use dingguard_dingtalk::CallbackCrypto;
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Clock, Topics};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use error::CallbackError;
pub use metrics::ReceiverMetrics;

/// One DingTalk app whose pushes this receiver accepts.
#[derive(Debug, Clone)]
pub struct App {
    pub name: AppName,
    pub crypto: CallbackCrypto,
}

#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// How far a push's signed timestamp may be from now, either way.
    pub time_window: Duration,
    pub max_body_bytes: usize,
    /// Most callback ids remembered for replay detection; beyond it the oldest are forgotten early.
    pub replay_cache_entries: usize,
    /// How often the log is probed for readiness.
    pub readiness_interval: Duration,
}

impl Default for ReceiverSettings {
    fn default() -> Self {
        Self {
            time_window: Duration::from_secs(3600),
            max_body_bytes: 1024 * 1024,
            replay_cache_entries: 1_000_000,
            readiness_interval: Duration::from_secs(1),
        }
    }
}

/// Readiness of the event log as last observed, shared by the probe, the handlers and `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct LogReadiness(Arc<AtomicBool>);

impl LogReadiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }
}

pub(crate) struct State {
    apps: HashMap<AppName, (CallbackCrypto, metrics::SuccessCounters)>,
    /// The app `/dingtalk/callback` serves: the one named `default`, or the only one configured.
    default_app: Option<AppName>,
    log: EventLog,
    topics: Topics,
    settings: ReceiverSettings,
    clock: Arc<dyn Clock>,
    dedup: dedup::Dedup,
    readiness: LogReadiness,
    metrics: ReceiverMetrics,
}

/// Everything the receiver needs, built once at start-up.
pub struct Receiver {
    state: Arc<State>,
}

impl Receiver {
    pub fn new(
        apps: Vec<App>,
        log: EventLog,
        topics: Topics,
        settings: ReceiverSettings,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Self {
        let default_app = match apps.as_slice() {
            [only] => Some(only.name.clone()),
            _ => apps.iter().find(|a| a.name.as_str() == AppName::DEFAULT).map(|a| a.name.clone()),
        };
        let metrics = ReceiverMetrics::register(registry, log.backend());
        let dedup = dedup::Dedup::new(settings.replay_cache_entries);
        let state = State {
            apps: apps
                .into_iter()
                .map(|a| {
                    let counters = metrics.success_counters(a.name.as_str());
                    (a.name, (a.crypto, counters))
                })
                .collect(),
            default_app,
            log,
            topics,
            settings,
            clock,
            dedup,
            readiness: LogReadiness::default(),
            metrics,
        };
        Self { state: Arc::new(state) }
    }

    pub fn readiness(&self) -> LogReadiness {
        self.state.readiness.clone()
    }

    /// The callback routes; mount them next to the operations routes.
    pub fn router(&self) -> Router {
        handler::routes(self.state.clone())
    }

    /// Probes the log until `shutdown`, keeping readiness current and fast-failing callbacks while it is down.
    pub async fn watch_log(&self, shutdown: CancellationToken) -> Result<(), dingguard_eventlog::LogError> {
        let state = &self.state;
        let gauge = state.metrics.log_ready.clone();
        probe_log(&state.log, &state.readiness, state.settings.readiness_interval, shutdown, move |ready| {
            gauge.set(i64::from(ready));
        })
        .await
    }
}

/// Probes `log` every `interval` until `shutdown` and records the answer in `readiness`. It returns early, with
/// the error, only when the log can never be written again by this process — its supervisor then stops the
/// process for its own supervisor to restart, rather than leave a live process that can no longer accept.
pub async fn probe_log(
    log: &EventLog,
    readiness: &LogReadiness,
    interval: Duration,
    shutdown: CancellationToken,
    on_probe: impl Fn(bool),
) -> Result<(), dingguard_eventlog::LogError> {
    loop {
        let probe = tokio::time::timeout(interval.max(Duration::from_millis(50)) * 3, log.check());
        let ready = match probe.await {
            Ok(Ok(())) => true,
            Ok(Err(dingguard_eventlog::LogError::Stopped)) => {
                readiness.set(false);
                on_probe(false);
                return Err(dingguard_eventlog::LogError::Stopped);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "event log is not ready");
                false
            }
            Err(_) => {
                tracing::warn!("event log readiness probe timed out");
                false
            }
        };
        if ready != readiness.is_ready() {
            tracing::info!(ready, backend = log.backend(), "event log readiness changed");
        }
        readiness.set(ready);
        on_probe(ready);
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

pub use ops::{health_routes, metrics_route, ops_routes};
