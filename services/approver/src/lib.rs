//! The approval router: requests to download sensitive files become dual-approval requests; approvers decide
//! through the JSON API; outcomes, grants and every step go to the audit chain and the approvals topic.

mod api;
mod error;
mod events;
mod intake;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use dingguard_approval::{Classification, Policy};
use dingguard_directory::Directory;
use dingguard_eventlog::EventLog;
use dingguard_model::{Clock, Topics};
use dingguard_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

pub use error::ApproverError;

#[derive(Debug, Clone)]
pub struct ApproverSettings {
    pub policy: Policy,
    pub classification: Classification,
    /// How long a grant lets its holder download the file.
    pub grant_ttl_ms: i64,
    pub tick_interval: Duration,
}

impl Default for ApproverSettings {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            classification: Classification::demo(),
            grant_ttl_ms: 24 * 3_600_000,
            tick_interval: Duration::from_secs(1),
        }
    }
}

pub(crate) struct Shared {
    store: Store,
    log: EventLog,
    topics: Topics,
    directory: Directory,
    settings: ApproverSettings,
    clock: Arc<dyn Clock>,
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
    ) -> Self {
        Self { shared: Arc::new(Shared { store, log, topics, directory, settings, clock }) }
    }

    pub fn router(&self) -> Router {
        api::routes(self.shared.clone())
    }

    /// Applies deadlines (expiry, reminders, escalation) and publishes outcomes until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let intake = intake::run(&self.shared, shutdown.clone());
        let deadlines = self.deadlines_and_publish(shutdown);
        tokio::join!(intake, deadlines);
    }

    async fn deadlines_and_publish(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.shared.settings.tick_interval) => {}
            }
            if let Err(error) = api::apply_deadlines(&self.shared).await {
                tracing::warn!(%error, "approval deadlines pass failed; retrying");
            }
            let now = self.shared.clock.now_ms();
            if let Err(error) = dingguard_publish::publish_due(
                &self.shared.store,
                &self.shared.log,
                events::CHANNEL,
                &self.shared.topics.approvals,
                now,
                events::record_for,
            )
            .await
            {
                tracing::warn!(%error, "publishing approval events failed; retrying");
            }
        }
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
