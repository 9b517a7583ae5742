//! The approval router: requests to download sensitive files become dual-approval requests; approvers decide
//! through the JSON API; outcomes, grants and every step go to the audit chain and the approvals topic.

mod address_book;
mod api;
mod audit_check;
mod deadlines;
mod decisions;
mod error;
mod events;
mod intake;
mod metrics;
mod notices;
mod requests;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use dingguard_approval::{Classification, Policy};
use dingguard_directory::Directory;
use dingguard_eventlog::EventLog;
use dingguard_model::{Clock, Topics};
use dingguard_notify::Notifier;
use dingguard_store::{Store, StoreError, StoredRequest};
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use audit_check::{AuditCheck, Checked};
pub use decisions::InboxPage;
pub use error::ApproverError;
pub use view::{FileRef, RequestView, SlotDecision, SlotView};

/// How many requests one person may have open and make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Pending requests of one requester at once.
    pub max_open_per_requester: u32,
    /// Requests one requester may make within an hour, granted ones included.
    pub max_per_hour: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { max_open_per_requester: 10, max_per_hour: 30 }
    }
}

#[derive(Clone)]
pub struct ApproverSettings {
    pub policy: Policy,
    pub classification: Classification,
    /// How long a grant lets its holder download the file.
    pub grant_ttl_ms: i64,
    /// How often deadlines are applied and queued events and notifications go out.
    pub tick_interval: Duration,
    /// How often the open and expiring-soon gauges are read from the store.
    pub gauge_interval: Duration,
    /// DingTalk work notifications to approvers and requesters; without one, requests wait in the inboxes.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Where people reach the approval pages; decision links are built on it.
    pub public_url: String,
    /// DingTalk OA approvals that are download requests, when configured.
    pub oa: Option<OaSource>,
    pub limits: RequestLimits,
}

/// OA approvals of these process codes become download requests; their forms name the file and the reason.
#[derive(Clone)]
pub struct OaSource {
    pub client: Arc<dingguard_notify::OaClient>,
    pub process_codes: Vec<String>,
    pub fields: OaFields,
}

/// The labels of the OA form's components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaFields {
    pub file_id: String,
    pub file_name: String,
    pub space: String,
    pub reason: String,
}

impl Default for OaFields {
    fn default() -> Self {
        Self {
            file_id: "File ID".into(),
            file_name: "File name".into(),
            space: "Space".into(),
            reason: "Reason".into(),
        }
    }
}

impl Default for ApproverSettings {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            classification: Classification::demo(),
            grant_ttl_ms: 24 * 3_600_000,
            tick_interval: Duration::from_secs(1),
            gauge_interval: Duration::from_secs(30),
            notifier: None,
            public_url: String::new(),
            oa: None,
            limits: RequestLimits::default(),
        }
    }
}

pub(crate) struct Shared {
    store: Store,
    log: EventLog,
    topics: Topics,
    /// The directory file with the address-book changes seen since, swapped whole on every change.
    directory: RwLock<Arc<Directory>>,
    /// The directory file as loaded, which the saved changes are replayed on.
    base_directory: Directory,
    settings: ApproverSettings,
    clock: Arc<dyn Clock>,
    metrics: metrics::ApproverMetrics,
}

#[derive(Clone)]
pub struct Approver {
    shared: Arc<Shared>,
}

impl Approver {
    pub fn new(
        store: Store,
        log: EventLog,
        topics: Topics,
        directory: Directory,
        settings: ApproverSettings,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Self {
        let base_directory = directory.clone();
        let directory = RwLock::new(Arc::new(directory));
        let metrics = metrics::ApproverMetrics::register(registry);
        Self { shared: Arc::new(Shared { store, log, topics, directory, base_directory, settings, clock, metrics }) }
    }

    pub fn router(&self) -> Router {
        api::routes(self.shared.clone()).0
    }

    /// The API document of [`Approver::router`]'s routes, generated from the same registrations.
    pub fn api_doc(&self) -> utoipa::openapi::OpenApi {
        api::routes(self.shared.clone()).1
    }

    /// Applies deadlines (expiry, reminders, escalation) and publishes outcomes until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        if let Err(error) = self.index_waiting().await {
            tracing::warn!(%error, "could not record whom older pending requests wait on; their inboxes miss them");
        }
        let intake = intake::run(&self.shared, shutdown.clone());
        let deadlines = self.deadlines_and_publish(shutdown);
        tokio::join!(intake, deadlines);
    }

    async fn deadlines_and_publish(&self, shutdown: CancellationToken) {
        let mut gauges_read: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.shared.settings.tick_interval) => {}
            }
            let started = tokio::time::Instant::now();
            if gauges_read.is_none_or(|at| started >= at + self.shared.settings.gauge_interval) {
                gauges_read = Some(started);
                if let Err(error) = self.read_gauges().await {
                    tracing::warn!(%error, "could not count the open approval requests; the gauges keep their values");
                }
            }
            if let Err(error) = deadlines::apply(&self.shared).await {
                tracing::warn!(%error, "approval deadlines pass failed; retrying");
            }
            let now = self.shared.clock.now_ms();
            if let Err(error) = dingguard_publish::publish_due(
                &self.shared.store,
                &self.shared.log,
                &dingguard_store::Channel::ApprovalsTopic,
                &self.shared.topics.approvals,
                now,
                events::record_for,
            )
            .await
            {
                tracing::warn!(%error, "publishing approval events failed; retrying");
            }
            if let Some(notifier) = &self.shared.settings.notifier {
                match dingguard_publish::notify_due(&self.shared.store, &notices::CHANNEL, notifier.as_ref(), now).await
                {
                    Ok(pass) if pass.failed > 0 => {
                        tracing::warn!(failed = pass.failed, "approval notifications failed")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "delivering approval notifications failed; retrying"),
                }
            }
        }
    }

    /// Sets the open and expiring-soon gauges from the store, which every replica shares.
    async fn read_gauges(&self) -> Result<(), StoreError> {
        let now = self.shared.clock.now_ms();
        let (open, expiring) =
            self.shared.store.pending_counts(now, now.saturating_add(metrics::EXPIRING_WITHIN_MS)).await?;
        self.shared.metrics.open.set(open);
        self.shared.metrics.expiring_soon.set(expiring);
        Ok(())
    }

    /// The directory as the approver sees it now: the file plus the address-book changes read since.
    pub fn directory(&self) -> Arc<Directory> {
        self.shared.directory()
    }

    /// A request as `user` may see it (requester, approvers, deputies, DPO, security, admin).
    pub async fn request_as(&self, user: &str, id: &str) -> Result<RequestView, ApproverError> {
        decisions::read_as(&self.shared, user, id).await
    }

    /// Whether request `id` waits on `user`'s decision (theirs, or an away approver's they stand in for).
    pub async fn awaits_decision(&self, user: &str, id: &str) -> Result<bool, ApproverError> {
        decisions::awaits_decision(&self.shared, user, id).await
    }

    /// Page `page` (from 1) of the pending requests waiting on `user`'s decision.
    pub async fn inbox(&self, user: &str, page: i64, per_page: i64) -> Result<InboxPage, ApproverError> {
        decisions::inbox(&self.shared, user, page, per_page).await
    }

    /// `user`'s decision (`approve` or `reject`) on request `id`; `via` says how they signed in.
    pub async fn decide(
        &self,
        user: &str,
        id: &str,
        decision: &str,
        comment: &str,
        via: &str,
    ) -> Result<RequestView, ApproverError> {
        decisions::decide(&self.shared, user, id, decision, comment, via).await
    }

    /// Pending requests made before whom they wait on was recorded get their record now.
    async fn index_waiting(&self) -> Result<(), ApproverError> {
        loop {
            let rows = self.shared.store.pending_without_waiting(200).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let mut tx = self.shared.store.begin().await?;
            let mut indexed = 0;
            for row in &rows {
                let Some(request) = parse(row)?.request else { continue };
                let waiting = notices::waiting_on(&request);
                tx.set_waiting(&row.id, &row.requester, request.created_ms, request.expires_ms, &waiting).await?;
                indexed += usize::from(!waiting.is_empty());
            }
            tx.commit().await?;
            // A pending request nobody waits on would come back every round.
            if indexed == 0 {
                return Ok(());
            }
        }
    }

    /// Uses up a decision link presented by `user`; the id of the request it opens.
    pub async fn open_link(&self, user: &str, token: &str) -> Result<String, ApproverError> {
        decisions::open_link(&self.shared, user, token).await
    }

    /// A bearer token for `user_id`, for `dingguard users token`.
    pub async fn issue_token(store: &Store, user_id: &str, now_ms: i64) -> Result<String, StoreError> {
        let token = dingguard_model::token::random_token();
        store
            .create_console_token(
                &dingguard_model::token::token_hash(&token),
                dingguard_store::console::TokenKind::Api,
                user_id,
                now_ms,
                None,
            )
            .await?;
        Ok(token)
    }
}

/// [`dingguard_events::normalise`], where a panic on hostile input is that event's refusal, counted and logged,
/// never the end of the intake.
pub(crate) fn normalise(
    event_type: &str,
    ce_id: &str,
    value: &[u8],
    directory: &Directory,
    received_ms: i64,
) -> Result<Vec<dingguard_events::CanonicalEvent>, String> {
    let run = || dingguard_events::normalise(event_type, ce_id, value, directory, received_ms);
    match std::panic::catch_unwind(run) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(payload) => {
            dingguard_telemetry::panicked("approver", payload.as_ref());
            Err(format!("reading the event panicked: {}", dingguard_telemetry::panic_message(payload.as_ref())))
        }
    }
}

pub(crate) fn parse(row: &StoredRequest) -> Result<view::Stored, ApproverError> {
    serde_json::from_str(&row.state)
        .map_err(|e| ApproverError::Store(StoreError::Corrupt(format!("request {}: {e}", row.id))))
}

impl Shared {
    /// The directory as it is now.
    pub(crate) fn directory(&self) -> Arc<Directory> {
        self.directory.read().clone()
    }
}
