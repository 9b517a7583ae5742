//! `spawn_approvals`: the approver and the console (approval pages) in-process on port 0, over a store the test
//! chooses, an embedded event log, the demo directory, a controllable clock and the DingTalk work-notification
//! stand-in; with a typed client for the JSON API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use dingguard::app::{Mode, Parts};
use dingguard::config::Config;
use dingguard::config::notify::WorkSection;
use dingguard_approver::{Approver, RequestLimits};
use dingguard_console::Console;
use dingguard_directory::{DEMO_YAML, Directory};
use dingguard_eventlog::{EmbeddedLog, EmbeddedOptions, EventLog};
use dingguard_model::{ManualClock, Secret, Topics};
use dingguard_store::Store;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::work_standin::{AGENT_ID, APP_KEY, APP_SECRET, WorkStandIn};

pub const PASSWORD: &str = "correct horse battery staple";
pub const REQUESTER: &str = "user_hr_clerk";
pub const DPO: &str = "user_dpo";
pub const HEAD: &str = "user_hr_manager";
pub const HEAD_DEPUTY: &str = "user_hr_officer";
pub const DPO_DEPUTY: &str = "user_dpo_deputy";
pub const STRANGER: &str = "user_sales_rep";

/// An argon2id PHC string with cheap parameters, for test password tables: the hash's own parameters decide the
/// cost of checking it.
pub fn cheap_hash(password: &str) -> String {
    let params = Params::new(1024, 1, 1, None).expect("valid argon2 parameters");
    let salt = SaltString::encode_b64(b"dingguard-tests!").expect("salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

pub struct ApprovalApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub clock: ManualClock,
    pub approver: Approver,
    pub console: Console,
    pub work: Arc<WorkStandIn>,
    pub log: EventLog,
    pub topics: Topics,
    http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: TempDir,
}

impl Drop for ApprovalApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One replica over `store`. Replicas of one test share `work` and `clock` by passing them in. Tests here make
/// many requests of one requester, so the per-requester limits are wide; [`spawn_approvals_limited`] sets them.
pub async fn spawn_approvals(store: Store, clock: ManualClock, work: Arc<WorkStandIn>) -> Result<ApprovalApp> {
    let limits = RequestLimits { max_open_per_requester: 1000, max_per_hour: 10_000 };
    spawn_approvals_limited(store, clock, work, limits).await
}

/// [`spawn_approvals`] with the given per-requester limits.
pub async fn spawn_approvals_limited(
    store: Store,
    clock: ManualClock,
    work: Arc<WorkStandIn>,
    limits: RequestLimits,
) -> Result<ApprovalApp> {
    spawn_approvals_with(store, clock, work, limits, Directory::from_yaml(DEMO_YAML)?).await
}

/// [`spawn_approvals`] with the given limits and directory (every user in it gets [`PASSWORD`]), built by the
/// composition root as `dingguard approver` is, with the test's store, clock and work-notification stand-in.
pub async fn spawn_approvals_with(
    store: Store,
    clock: ManualClock,
    work: Arc<WorkStandIn>,
    limits: RequestLimits,
    directory: Directory,
) -> Result<ApprovalApp> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::Embedded(EmbeddedLog::open(dir.path().join("eventlog.db"), EmbeddedOptions::default())?);
    let mut config = Config::for_data_dir(dir.path())?;
    config.approver.tick_interval = Duration::from_millis(25);
    config.approver.gauge_interval = Duration::from_millis(25);
    config.approver.limits = limits;
    config.notify.work = Some(WorkSection {
        app_key: APP_KEY.into(),
        app_secret: Some(Secret::new(APP_SECRET)),
        app_secret_file: None,
        agent_id: AGENT_ID,
        recipients: Vec::new(),
        base_url: Some(work.url.clone()),
        min_severity: None,
    });
    let hash = Secret::new(cheap_hash(PASSWORD));
    config.console.passwords = directory.users().map(|u| (u.id.as_str().to_owned(), hash.clone())).collect();
    config.alerting.directory = directory;
    let topics = config.topics.clone();
    log.ensure_topics(&topics.all()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let parts = Parts { clock: Some(Arc::new(clock.clone())), log: Some(log.clone()), store: Some(store.clone()) };
    let app = dingguard::app::build(&config, Mode::Approver, listener, None, parts).await?;
    let (addr, shutdown) = (app.addr, app.shutdown.clone());
    let approver = app.approver.clone().context("the approver mode runs the approver")?;
    let console = app.console.clone().context("the approver mode serves the console")?;
    tokio::spawn(app.run());
    Ok(ApprovalApp {
        addr,
        store,
        clock,
        approver,
        console,
        work,
        log,
        topics,
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?,
        shutdown,
        _dir: dir,
    })
}

impl ApprovalApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn token(&self, user: &str) -> Result<String> {
        Ok(Approver::issue_token(&self.store, user, dingguard_model::Clock::now_ms(&self.clock)).await?)
    }

    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        crate::call_json(&self.http, self.url(path), token, method, body).await
    }

    /// A sensitive request by `requester`; its id.
    pub async fn request_sensitive(&self, requester: &str, file_id: &str) -> Result<String> {
        let token = self.token(requester).await?;
        let body = json!({"file": {"id": file_id, "name": "confidential-salaries.xlsx", "space": "space_hr"},
            "reason": "year-end review"});
        let (status, created) =
            self.call(&token, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
        anyhow::ensure!(status == 201, "request refused: {status} {created}");
        Ok(created["id"].as_str().context("no id")?.to_owned())
    }

    pub async fn decide(&self, user: &str, id: &str, decision: &str) -> Result<(u16, Value)> {
        let token = self.token(user).await?;
        let body = json!({"decision": decision, "comment": format!("{decision} by {user}")});
        self.call(&token, reqwest::Method::POST, &format!("/api/v1/download-requests/{id}/decisions"), Some(body)).await
    }

    pub async fn read(&self, id: &str) -> Result<Value> {
        let token = self.token(DPO).await?;
        let (status, body) =
            self.call(&token, reqwest::Method::GET, &format!("/api/v1/download-requests/{id}"), None).await?;
        anyhow::ensure!(status == 200, "{status} {body}");
        Ok(body)
    }

    /// `ce_type`s on the approvals topic for request `id`, in order.
    pub async fn approval_events(&self, id: &str) -> Result<Vec<String>> {
        let records = self.log.read_all(&self.topics.approvals).await?;
        Ok(records
            .iter()
            .filter(|r| r.key.as_deref() == Some(id))
            .filter_map(|r| r.header("ce_type").map(str::to_owned))
            .collect())
    }

    /// Waits until `check` holds, polling; the background loop ticks every 25 ms.
    pub async fn until<F: Fn() -> bool>(&self, what: &str, check: F) -> Result<()> {
        crate::eventually(what, Duration::from_secs(10), check).await
    }

    /// Waits until the approvals topic shows `ce_type` for `id`.
    pub async fn until_event(&self, id: &str, ce_type: &str) -> Result<Vec<String>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.approval_events(id).await?;
            if events.iter().any(|t| t == ce_type) {
                return Ok(events);
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "no {ce_type} for {id}; saw {events:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
