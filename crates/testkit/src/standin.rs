//! Local stand-ins for DingTalk's servers, checking requests exactly as DingTalk documents them.

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

/// Serves `router` on an ephemeral loopback port and returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

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
    pub async fn start() -> anyhow::Result<Self> {
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
    let now = dingguard_model_now();
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

fn dingguard_model_now() -> i64 {
    crate::now_ms()
}

#[derive(Default)]
struct WebhookState {
    deliveries: Vec<(String, Value)>,
    refused: usize,
}

/// A webhook receiver that verifies Standard Webhooks signatures the way the spec tells receivers to.
pub struct WebhookStandIn {
    pub addr: SocketAddr,
    /// `whsec_…`
    pub secret: String,
    state: Arc<Mutex<WebhookState>>,
}

impl WebhookStandIn {
    pub async fn start() -> anyhow::Result<Self> {
        let key: [u8; 32] = rand::random();
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
        let state = Arc::new(Mutex::new(WebhookState::default()));
        let ctx = Arc::new((key.to_vec(), state.clone()));
        let app = axum::Router::new().route("/hook", post(hook)).with_state(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, secret, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every verified delivery as (webhook-id, body), redeliveries included.
    pub fn deliveries(&self) -> Vec<(String, Value)> {
        self.state.lock().deliveries.clone()
    }

    pub fn refused(&self) -> usize {
        self.state.lock().refused
    }
}

type HookCtx = Arc<(Vec<u8>, Arc<Mutex<WebhookState>>)>;

async fn hook(
    State(ctx): State<HookCtx>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let (key, state) = (&ctx.0, &ctx.1);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, ts, signatures) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = ts.parse::<i64>().is_ok_and(|t| (crate::now_ms() / 1000 - t).abs() <= 300);
    let valid = signatures.split(' ').any(|s| s == expected);
    let mut s = state.lock();
    match (fresh && valid && !id.is_empty(), serde_json::from_slice::<Value>(&body)) {
        (true, Ok(json)) => {
            s.deliveries.push((id, json));
            axum::http::StatusCode::NO_CONTENT
        }
        _ => {
            s.refused += 1;
            axum::http::StatusCode::UNAUTHORIZED
        }
    }
}
