//! A custom group robot (自定义机器人) as DingTalk serves it: `POST /robot/send?access_token=…&timestamp=…&sign=…`,
//! signed with HMAC-SHA256 of `timestamp\nsecret`, markdown messages, a reused `msgUuid` dropped
//! (https://open.dingtalk.com/document/robots/custom-robot-access).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Clone)]
pub struct RobotMessage {
    pub uuid: Option<String>,
    pub title: String,
    pub text: String,
    pub received_at_ms: i64,
}

#[derive(Default)]
struct RobotState {
    accepted: Vec<RobotMessage>,
    seen_uuids: HashSet<String>,
    refused: usize,
}

/// A custom group robot: `POST /robot/send?access_token=…&timestamp=…&sign=…`.
pub struct RobotStandIn {
    pub addr: SocketAddr,
    pub access_token: String,
    pub secret: String,
    state: Arc<Mutex<RobotState>>,
}

fn expected_sign(secret: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl RobotStandIn {
    pub async fn start() -> std::io::Result<Self> {
        let access_token = format!("robot{:08x}", rand::random::<u32>());
        let secret = format!("SEC{:032x}", rand::random::<u128>());
        let state = Arc::new(Mutex::new(RobotState::default()));
        let ctx = (access_token.clone(), secret.clone(), state.clone());
        let app = axum::Router::new().route("/robot/send", post(send)).with_state(Arc::new(ctx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, access_token, secret, state })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Messages the group would show: accepted and not repeated (DingTalk drops a reused `msgUuid`).
    pub fn messages(&self) -> Vec<RobotMessage> {
        self.state.lock().accepted.clone()
    }

    pub fn refused(&self) -> usize {
        self.state.lock().refused
    }
}

type Ctx = Arc<(String, String, Arc<Mutex<RobotState>>)>;

async fn send(
    State(ctx): State<Ctx>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let (token, secret, state) = (&ctx.0, &ctx.1, &ctx.2);
    let now = crate::now_ms();
    let refuse = |code: i64, msg: &str| {
        state.lock().refused += 1;
        Json(json!({"errcode": code, "errmsg": msg}))
    };
    if q.get("access_token") != Some(token) {
        return refuse(400101, "token is not exist");
    }
    let (Some(ts), Some(sign)) = (q.get("timestamp"), q.get("sign")) else { return refuse(310000, "sign not match") };
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 3_600_000);
    if !fresh || *sign != expected_sign(secret, ts) {
        return refuse(310000, "sign not match");
    }
    if body["msgtype"] != "markdown" {
        return refuse(400105, "unsupported msgtype");
    }
    let uuid = body["msgUuid"].as_str().map(str::to_owned);
    let mut s = state.lock();
    if let Some(u) = &uuid
        && !s.seen_uuids.insert(u.clone())
    {
        return Json(json!({"errcode": 0, "errmsg": "ok"}));
    }
    s.accepted.push(RobotMessage {
        uuid,
        title: body["markdown"]["title"].as_str().unwrap_or_default().to_owned(),
        text: body["markdown"]["text"].as_str().unwrap_or_default().to_owned(),
        received_at_ms: now,
    });
    Json(json!({"errcode": 0, "errmsg": "ok"}))
}
