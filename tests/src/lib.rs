//! Test support: a real Kafka-protocol broker process, the receiver in-process on port 0, the built binary as a
//! child process, and an independent implementation of DingTalk's callback algorithm to check ours against.

pub mod app;
pub mod approvals;
pub mod deployment;
pub mod process;

pub use dingguard_testkit::{broker, browser, disk, eventually, free_port, hostile, now_ms, reference, standin};
pub use dingguard_testkit::{webdriver, work_standin, workspace_root};

/// PostgreSQL for tests: the kit's databases, and a migrated store on one.
pub mod pg {
    use dingguard_store::{Store, StoreConfig};
    pub use dingguard_testkit::pg::{PgDatabase, fresh_database};

    /// A fresh, migrated database and its `postgres://` URL for more connections (a second replica).
    pub async fn fresh_postgres_url() -> (Store, String, PgDatabase) {
        let (url, db) = fresh_database().await;
        let config = StoreConfig::Postgres { url: dingguard_model::Secret::new(url.clone()), max_connections: 4 };
        (Store::open(&config).await.unwrap(), url, db)
    }

    pub async fn fresh_postgres() -> (Store, PgDatabase) {
        let (store, _, db) = fresh_postgres_url().await;
        (store, db)
    }
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
