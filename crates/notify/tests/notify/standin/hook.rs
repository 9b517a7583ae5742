//! A webhook receiver that accepts only what `dingguard_notify::verify` accepts.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Router, routing::post};
use dingguard_model::{Clock, ManualClock};
use dingguard_notify::{WebhookSecret, verify};
use parking_lot::Mutex;
use serde_json::Value;

#[derive(Default)]
pub struct Log {
    pub requests: usize,
    /// Answer 503 to this many requests before judging any.
    pub unavailable_for: usize,
    pub accepted: Vec<(HeaderMap, Value)>,
    pub rejected: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    secret: WebhookSecret,
    clock: ManualClock,
    log: Arc<Mutex<Log>>,
}

pub struct HookStandIn {
    pub url: String,
    pub log: Arc<Mutex<Log>>,
}

impl HookStandIn {
    pub async fn start(secret: &str, clock: ManualClock) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Shared { secret: WebhookSecret::parse(secret).unwrap(), clock, log: Arc::clone(&log) };
        let router = Router::new().route("/hooks/dingguard", post(receive)).with_state(shared);
        Self { url: format!("{}/hooks/dingguard", super::serve(router).await), log }
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut log = shared.log.lock();
    log.requests += 1;
    if log.unavailable_for > 0 {
        log.unavailable_for -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match verify(&shared.secret, &headers, &body, shared.clock.now_ms() / 1000) {
        Ok(()) => {
            log.accepted.push((headers, serde_json::from_slice(&body).unwrap()));
            StatusCode::NO_CONTENT
        }
        Err(error) => {
            log.rejected.push(error.to_string());
            StatusCode::UNAUTHORIZED
        }
    }
}
