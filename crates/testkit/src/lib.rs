//! Test support that depends on no dingguard service, so any crate's tests can use it without building the
//! workspace: a real Kafka-protocol broker process, a PostgreSQL database per test, DingTalk's robot and
//! work-notification stand-ins (from the DingTalk stand-in, re-exported), a headless Chromium, a small full disk, hostile text, and an independent
//! implementation of DingTalk's callback algorithm to check ours against.

pub mod broker;
pub mod browser;
pub mod disk;
pub mod hostile;
pub mod pg;
pub mod reference;
pub mod standin;
pub mod webdriver;
pub mod work_standin;

use std::path::PathBuf;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).expect("crates/testkit sits in the workspace").to_path_buf()
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

pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}
