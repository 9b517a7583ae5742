//! The live feed. The alerter may run in another process, so the feed cannot be told about new alerts: it polls
//! the store and broadcasts each alert whose state it has not sent yet to every open list (server-sent events).
//!
//! Two queries cover every change. A frequent one asks for alerts changed since the last poll, with an overlap
//! for commits that land late and clocks that differ between processes. Because `last_seen_ms` is the time of
//! the triggering event, an alert for an event that reached the alerter late (a backlog, a redrive) can sit
//! before the cursor; a slower sweep of every unresolved alert finds those.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use dingguard_store::{Alert, AlertStatus, StoreError};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::auth::PageViewer;
use crate::metrics::ClientGuard;

const OVERLAP_MS: i64 = 5_000;
const CHANGED_LIMIT: i64 = 1_000;
const SWEEP_EVERY: u32 = 10;
const SWEEP_LIMIT: i64 = 5_000;

/// What makes an alert worth sending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    status: AlertStatus,
    count: i64,
    last_seen_ms: i64,
}

impl Version {
    fn of(alert: &Alert) -> Self {
        Self { status: alert.status, count: alert.event_count, last_seen_ms: alert.last_seen_ms }
    }
}

struct Poller {
    shared: Arc<Shared>,
    sent: HashMap<String, (Version, i64)>,
    cursor_ms: i64,
    /// Polls left before the next sweep of unresolved alerts.
    until_sweep: u32,
    primed: bool,
}

impl Poller {
    async fn poll(&mut self) -> Result<(), StoreError> {
        let now = self.shared.clock.now_ms();
        let store = &self.shared.store;
        // Newest first, so a burst larger than the limit still delivers the latest changes.
        let mut changed = store.alerts_changed_since(self.cursor_ms - OVERLAP_MS, CHANGED_LIMIT).await?;
        if self.until_sweep == 0 {
            changed.extend(store.unresolved_alerts(SWEEP_LIMIT).await?);
            self.until_sweep = SWEEP_EVERY;
        }
        self.until_sweep -= 1;
        for alert in changed.iter().rev() {
            let version = Version::of(alert);
            if self.sent.get(&alert.id).is_some_and(|(v, _)| *v == version) {
                continue;
            }
            self.sent.insert(alert.id.clone(), (version, now));
            // The first poll only learns what the lists already show.
            if self.primed {
                let json = serde_json::to_string(alert).expect("alerts serialise");
                // No receivers is fine: nobody has the page open.
                let _ = self.shared.feed.send(json.into());
            }
        }
        self.primed = true;
        self.cursor_ms = self.cursor_ms.max(now);
        // Forget resolved alerts once no query can return them unchanged; unresolved ones come back each sweep.
        let horizon = now - 4 * OVERLAP_MS;
        self.sent.retain(|_, (v, at)| v.status != AlertStatus::Resolved || *at > horizon);
        Ok(())
    }
}

pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let _end_streams = shared.feed_stopped.clone().drop_guard();
    let interval = shared.settings.poll_interval.max(Duration::from_millis(50));
    let cursor_ms = shared.clock.now_ms();
    let mut poller = Poller { shared: shared.clone(), sent: HashMap::new(), cursor_ms, until_sweep: 0, primed: false };
    let mut failing = false;
    loop {
        let started = Instant::now();
        match poller.poll().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("live feed polls the store again");
            }
            Ok(()) => {}
            Err(error) => {
                shared.metrics.feed_errors.inc();
                if !failing {
                    tracing::warn!(%error, "live feed cannot poll the store; retrying");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(started + interval) => {}
        }
    }
    tracing::info!("live feed stopped");
}

/// Whether a feed opened by `user` in session `session_hash` may go on: the session still exists (not signed
/// out, not expired) and the person still has the security or admin role as a current member. A store that
/// cannot answer ends the feed too; the browser reconnects, and the reconnection is checked afresh.
async fn still_allowed(shared: &Shared, session_hash: Option<&str>, user: &str) -> bool {
    let session = match session_hash {
        Some(hash) => shared.store.console_session(hash, shared.clock.now_ms()).await,
        None => return false,
    };
    matches!(session, Ok(Some(s)) if s.user_id == user) && crate::auth::console_access(shared, user).is_ok()
}

struct Client {
    shared: Arc<Shared>,
    receiver: tokio::sync::broadcast::Receiver<Arc<str>>,
    recheck: tokio::time::Interval,
    session_hash: Option<String>,
    user: String,
    _guard: ClientGuard,
}

impl Client {
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                () = self.shared.feed_stopped.cancelled() => return None,
                _ = self.recheck.tick() => {
                    if !still_allowed(&self.shared, self.session_hash.as_deref(), &self.user).await {
                        tracing::info!(user = %self.user, "live feed closed: the session ended or access was withdrawn");
                        return None;
                    }
                }
                received = self.receiver.recv() => return match received {
                    Ok(json) => Some(Event::default().event("alert").data(&*json)),
                    Err(RecvError::Lagged(missed)) => Some(Event::default().event("resync").data(missed.to_string())),
                    Err(RecvError::Closed) => None,
                },
            }
        }
    }
}

/// `GET /alerts/stream`: `alert` events carry an alert as JSON; `resync` tells a client that fell behind to
/// reload, since it missed some. The stream checks every few seconds that its session and its person's access
/// still hold, and ends when either does not: signing out, or leaving the company, ends every open feed.
pub(crate) async fn stream(
    State(shared): State<Arc<Shared>>,
    PageViewer(viewer): PageViewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let period = shared.settings.stream_recheck.max(Duration::from_millis(50));
    let client = Client {
        receiver: shared.feed.subscribe(),
        recheck: tokio::time::interval_at(Instant::now() + period, period),
        session_hash: viewer.session_hash.clone(),
        user: viewer.user_id.clone(),
        _guard: ClientGuard::new(&shared.metrics.sse_clients),
        shared,
    };
    tracing::debug!(user = %viewer.user_id, "live feed client connected");
    let events = futures_util::stream::unfold(client, |mut client| async move {
        let event = client.next().await?;
        Some((Ok(event), client))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
