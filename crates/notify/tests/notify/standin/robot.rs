//! DingTalk's custom robot endpoint: token, timestamp window, HMAC sign, 20 messages a minute.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use base64::{Engine, engine::general_purpose::STANDARD};
use dingguard_model::{Clock, ManualClock};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;

pub const TOKEN: &str = "robot-token-1";
pub const SECRET: &str = "SECstandin0123456789abcdef";
const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone)]
pub struct Received {
    pub title: String,
    pub text: String,
    pub msg_uuid: String,
}

#[derive(Default)]
pub struct Log {
    pub requests: usize,
    pub accepted: Vec<Received>,
    /// Error codes answered, in order.
    pub refusals: Vec<i64>,
    /// HTTP statuses to answer before looking at the next requests.
    pub fail_with: VecDeque<u16>,
    minute: VecDeque<i64>,
}

pub struct RobotStandIn {
    pub url: String,
    pub log: Arc<Mutex<Log>>,
}

#[derive(Clone)]
struct Shared {
    clock: ManualClock,
    log: Arc<Mutex<Log>>,
}

impl RobotStandIn {
    /// `clock` is DingTalk's own time: the timestamp window and the minute are judged by it.
    pub async fn start(clock: ManualClock) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let router = Router::new().route("/robot/send", post(send)).with_state(Shared { clock, log: Arc::clone(&log) });
        Self { url: super::serve(router).await, log }
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.log.lock().accepted.clone()
    }
}

fn expected_sign(timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{SECRET}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn refuse(log: &mut Log, errcode: i64, errmsg: &str) -> Response {
    log.refusals.push(errcode);
    Json(json!({ "errcode": errcode, "errmsg": errmsg })).into_response()
}

async fn send(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    body: Json<Value>,
) -> Response {
    let now = shared.clock.now_ms();
    let mut log = shared.log.lock();
    log.requests += 1;
    if let Some(status) = log.fail_with.pop_front() {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    if query.get("access_token").map(String::as_str) != Some(TOKEN) {
        return refuse(&mut log, 400101, "token is not exist");
    }
    let (Some(timestamp), Some(sign)) = (query.get("timestamp"), query.get("sign")) else {
        return refuse(&mut log, 310000, "sign not match");
    };
    let in_window = timestamp.parse::<i64>().is_ok_and(|ts| (ts - now).abs() <= HOUR_MS);
    if !in_window || *sign != expected_sign(timestamp) {
        return refuse(&mut log, 310000, "sign not match");
    }
    while log.minute.front().is_some_and(|&t| now - t >= 60_000) {
        log.minute.pop_front();
    }
    if log.minute.len() >= 20 {
        return refuse(&mut log, 410100, "send too fast, exceed 20 times per minute");
    }
    let (Some(title), Some(text)) = (body["markdown"]["title"].as_str(), body["markdown"]["text"].as_str()) else {
        return refuse(&mut log, 400105, "unsupported message");
    };
    if body["msgtype"] != "markdown" {
        return refuse(&mut log, 400105, "unsupported message");
    }
    let received = Received {
        title: title.to_owned(),
        text: text.to_owned(),
        msg_uuid: body["msgUuid"].as_str().unwrap_or_default().to_owned(),
    };
    log.minute.push_back(now);
    log.accepted.push(received);
    Json(json!({ "errcode": 0, "errmsg": "ok" })).into_response()
}
