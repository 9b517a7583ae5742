//! Test support: a real Kafka-protocol broker process, the receiver in-process on port 0, the built binary as a
//! child process, and an independent implementation of DingTalk's callback algorithm to check ours against.

pub mod app;
pub mod approvals;
pub mod broker;
pub mod browser;
pub mod deployment;
pub mod disk;
pub mod hostile;
pub mod pg;
pub mod process;
pub mod reference;
pub mod standin;
pub mod webdriver;
pub mod work_standin;

use std::path::PathBuf;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local addr").port()
}

/// Polls `check` every 20 ms until it holds; an error naming `what` after `timeout`.
pub async fn eventually(what: &str, timeout: std::time::Duration, check: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while !check() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// An API call with a bearer token: the status and the JSON body (`null` when it is not JSON).
pub async fn call_json(
    http: &reqwest::Client,
    url: String,
    token: &str,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(serde_json::Value::Null)))
}

pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}
