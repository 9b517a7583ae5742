//! `dingguard serve` as a child process with known DingTalk credentials: callbacks signed as DingTalk signs them,
//! API calls with tokens from `dingguard users token`, and the topics read back with `dingguard log dump`.

use std::time::Duration;

use anyhow::{Result, ensure};
use dingguard_simulator::Signer;
use dingguard_simulator::load::{self, Target};
use serde_json::Value;

use crate::process::{Service, deployment_env, dump, dump_until, run, value_json};

pub const TOKEN: &str = "deploymenttoken";
pub const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
pub const APP_KEY: &str = "dingdeployment";

pub struct Deployment {
    pub service: Service,
    pub envs: Vec<(&'static str, String)>,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

impl Deployment {
    /// `dingguard serve` on port 0 over a fresh data directory, with `extra` environment on top.
    pub async fn start(extra: &[(&'static str, String)]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut deployment = Self::start_in(dir.path(), extra, None).await?;
        deployment._dir = Some(dir);
        Ok(deployment)
    }

    /// `dingguard serve` over `data_dir`, which the caller owns, its log lines going to `log_file` if given.
    pub async fn start_in(
        data_dir: &std::path::Path,
        extra: &[(&'static str, String)],
        log_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        let mut envs = deployment_env(data_dir, [TOKEN, AES, APP_KEY]);
        envs.extend_from_slice(extra);
        let service = Service::start_logging(&["serve"], &envs, log_file).await?;
        Ok(Self { service, envs, http: reqwest::Client::new(), _dir: None })
    }

    /// Posts one event as DingTalk pushes it: the reply's status and how long it took.
    pub async fn push_one(&self, event: &Value) -> Result<(u16, Duration)> {
        let signed = Self::signer().sign(event, crate::now_ms() as u64);
        let started = std::time::Instant::now();
        let reply = self
            .http
            .post(format!("{}?{}", self.url("/dingtalk/callback"), signed.query))
            .header("content-type", "application/json")
            .body(signed.body)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        Ok((reply.status().as_u16(), started.elapsed()))
    }

    /// `/readyz`'s status.
    pub async fn readyz(&self) -> Result<u16> {
        Ok(self.http.get(self.url("/readyz")).timeout(Duration::from_secs(5)).send().await?.status().as_u16())
    }

    pub fn url(&self, path: &str) -> String {
        self.service.url(path)
    }

    pub fn signer() -> Signer {
        Signer::from_credentials(TOKEN, AES, APP_KEY).expect("valid credentials")
    }

    /// Posts `events` as DingTalk pushes, each signed now; every one must be acknowledged.
    pub async fn push(&self, events: &[Value]) -> Result<()> {
        let signer = Self::signer();
        let now = crate::now_ms() as u64;
        let callbacks = events.iter().map(|e| signer.sign(e, now)).collect();
        let report = load::send_all(Target::parse(&self.url("/dingtalk/callback"))?, callbacks, signer).await;
        ensure!(report.non_success == 0, "{} of {} callbacks refused", report.non_success, events.len());
        Ok(())
    }

    /// A bearer token for `user`, as an operator issues one.
    pub async fn token(&self, user: &str) -> Result<String> {
        let (ok, out, err) = run(&["users", "token", user], &self.envs).await?;
        ensure!(ok, "{err}");
        Ok(out.trim().to_owned())
    }

    /// An API call with a bearer token: (status, JSON body or null).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        crate::call_json(&self.http, self.url(path), token, method, body).await
    }

    /// The alerts on `dingguard.alerts` so far.
    pub async fn alerts(&self) -> Result<Vec<Value>> {
        Ok(dump("dingguard.alerts", &self.envs).await?.iter().map(value_json).collect())
    }

    /// Waits until `done` holds for the alerts (or 20 s pass), then gives the alerter a moment more and returns
    /// them all.
    pub async fn alerts_until(&self, done: impl Fn(&[Value]) -> bool) -> Result<Vec<Value>> {
        let check = |records: &[Value]| done(&records.iter().map(value_json).collect::<Vec<_>>());
        dump_until("dingguard.alerts", &self.envs, Duration::from_secs(20), check).await?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        self.alerts().await
    }
}

/// The rules the alerts were raised by.
pub fn rules_of(alerts: &[Value]) -> Vec<&str> {
    alerts.iter().filter_map(|a| a["rule"].as_str()).collect()
}
