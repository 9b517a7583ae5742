//! Local stand-ins for DingTalk's servers, checking requests exactly as DingTalk documents them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::Value;

pub use dingguard_dingtalk_standin::robot::{RobotMessage, RobotStandIn};
use sha2::Sha256;

/// Serves `router` on an ephemeral loopback port and returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
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
