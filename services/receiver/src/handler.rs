//! `POST /dingtalk/callback` and `POST /dingtalk/callback/{app}`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use dingguard_dingtalk::callback_record;
use dingguard_dingtalk::{CallbackQuery, CallbackReply, Envelope, EventHeader, ProtocolError, Timestamp};
use dingguard_model::{AppName, CeId};
use tracing::Instrument;

use crate::State;
use crate::dedup::{self, Claim};
use crate::error::{CallbackError, Refusal};
use crate::metrics::SuccessCounters;

pub(crate) fn routes(state: Arc<State>) -> axum::Router {
    axum::Router::new()
        .route("/dingtalk/callback", post(default_app))
        .route("/dingtalk/callback/{app}", post(named_app))
        .with_state(state)
}

async fn default_app(AxumState(state): AxumState<Arc<State>>, RawQuery(query): RawQuery, body: Body) -> Response {
    let app = state.default_app.clone();
    serve(&state, app, query, body).await
}

async fn named_app(
    AxumState(state): AxumState<Arc<State>>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let app = AppName::parse(&app).ok();
    serve(&state, app, query, body).await
}

/// What a successful callback turned into.
enum Accepted {
    Written,
    Duplicate,
    Handshake,
}

async fn serve(state: &State, app: Option<AppName>, query: Option<String>, body: Body) -> Response {
    let started = Instant::now();
    // Only configured apps name a series; any other path segment, whatever a caller made up, is `unknown`.
    let app_label = app.as_ref().filter(|a| state.apps.contains_key(*a)).map_or("unknown", AppName::as_str).to_owned();
    let span = tracing::info_span!("callback", app = %app_label, ce_id = tracing::field::Empty, event_type = tracing::field::Empty);
    let result = handle(state, app, query, body).instrument(span.clone()).await;
    state.metrics.callback_duration.observe(started.elapsed().as_secs_f64());
    let _entered = span.enter();
    match result {
        Ok((accepted, reply, counters)) => {
            match accepted {
                Accepted::Written => counters.accepted.inc(),
                Accepted::Duplicate => {
                    state.metrics.replay_hits.inc();
                    counters.duplicate.inc()
                }
                Accepted::Handshake => counters.check_url.inc(),
            };
            Json(reply).into_response()
        }
        Err(error) => {
            state.metrics.count(&app_label, error.outcome().as_str(), error.reason());
            let chain = error_chain(&error);
            if error.outcome() == Refusal::Failed {
                tracing::error!(reason = error.reason(), error = %chain, "callback not accepted");
            } else {
                tracing::warn!(reason = error.reason(), error = %chain, "callback rejected");
            }
            error.into_response()
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, CallbackError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let length_limited = std::iter::successors(std::error::Error::source(&e), |s| s.source())
            .any(|s| s.is::<http_body_util::LengthLimitError>());
        if length_limited { CallbackError::BodyTooLarge { limit } } else { CallbackError::BodyRead(e.to_string()) }
    })
}

async fn handle(
    state: &State,
    app: Option<AppName>,
    query: Option<String>,
    body: Body,
) -> Result<(Accepted, CallbackReply, &SuccessCounters), CallbackError> {
    let app = app.ok_or(CallbackError::UnknownApp)?;
    let (crypto, counters) = state.apps.get(&app).ok_or(CallbackError::UnknownApp)?;
    let body = read_body(body, state.settings.max_body_bytes).await?;
    let query = parse_query(query.as_deref().unwrap_or(""))?;
    let envelope = Envelope::parse(&body)?;
    crypto.verify(&query.signature, &query.timestamp, &query.nonce, &envelope.encrypt).map_err(ProtocolError::from)?;
    let message = crypto.open(&envelope.encrypt).map_err(ProtocolError::from)?;
    let signed_at = Timestamp::parse(&query.timestamp)?;
    let now_ms = state.clock.now_ms();
    let window_ms = u64::try_from(state.settings.time_window.as_millis()).unwrap_or(u64::MAX);
    if signed_at.millis().abs_diff(u64::try_from(now_ms).unwrap_or(0)) > window_ms {
        return Err(CallbackError::StaleTimestamp { timestamp_ms: signed_at.millis(), now_ms, window_ms });
    }
    let event = EventHeader::parse(&message).map_err(ProtocolError::from)?;
    let span = tracing::Span::current();
    span.record("event_type", event.event_type.as_deref().unwrap_or("unknown"));

    let reply = |plaintext: &[u8]| CallbackReply::new(crypto, plaintext, &query.timestamp, &query.nonce);
    match event.event_type.as_deref() {
        // URL verification handshakes: answer, never store.
        Some("check_url") => return Ok((Accepted::Handshake, reply(b"success"), counters)),
        Some("check_create_suite_url" | "check_update_suite_url") => {
            let random = event.random.clone().unwrap_or_default();
            return Ok((Accepted::Handshake, reply(random.as_bytes()), counters));
        }
        _ => {}
    }

    let id = dingguard_dingtalk::callback_ce_id(&event, &message);
    span.record("ce_id", id.as_str());
    // Forget the id only once a replay of this request could no longer pass the window check.
    let expires_ms = i64::try_from(signed_at.millis().saturating_add(window_ms)).unwrap_or(i64::MAX).max(now_ms + 1);
    // Encrypted before the write so the work overlaps the log's commit instead of following it.
    let success = reply(b"success");
    let accepted = write_once(state, &app, &id, &event, Bytes::from(message), now_ms, expires_ms).await?;
    Ok((accepted, success, counters))
}

#[allow(clippy::too_many_arguments)]
async fn write_once(
    state: &State,
    app: &AppName,
    id: &CeId,
    event: &EventHeader,
    message: Bytes,
    now_ms: i64,
    expires_ms: i64,
) -> Result<Accepted, CallbackError> {
    let owner = match state.dedup.claim(id.as_str(), now_ms) {
        Claim::Seen => return Ok(Accepted::Duplicate),
        Claim::Wait(flight) => {
            return if dedup::wait(flight).await { Ok(Accepted::Duplicate) } else { Err(CallbackError::LogNotReady) };
        }
        Claim::Owner(owner) => owner,
    };
    let finish = |owner: dedup::Owner<'_>, written| {
        let evicted = owner.finish(written, now_ms, expires_ms);
        if evicted > 0 {
            state.metrics.replay_evictions.inc_by(evicted);
        }
    };
    if !state.readiness.is_ready() {
        finish(owner, false);
        return Err(CallbackError::LogNotReady);
    }
    let record = callback_record(app, id, event, message, now_ms);
    let started = Instant::now();
    let result = state.log.append(&state.topics.events, record).await;
    state.metrics.observe_write(started.elapsed().as_secs_f64());
    match result {
        Ok(appended) => {
            finish(owner, true);
            tracing::debug!(partition = appended.partition, offset = appended.offset, "callback written");
            Ok(if appended.duplicate { Accepted::Duplicate } else { Accepted::Written })
        }
        Err(error) => {
            finish(owner, false);
            // Fail fast for the callbacks behind this one until the probe sees the log again.
            state.readiness.set(false);
            Err(CallbackError::Log(error))
        }
    }
}

fn parse_query(raw: &str) -> Result<CallbackQuery, CallbackError> {
    let pairs = raw.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    });
    Ok(CallbackQuery::from_pairs(pairs)?)
}

fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}
