//! `spawn_app`: the console in-process on port 0, over a SQLite store in a temporary directory and the demo
//! directory, with a typed client that keeps its own session cookie and CSRF token.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dingguard::app::{Mode, Parts};
use dingguard_console::Console;
use dingguard_model::{Clock, ManualClock, Secret, SystemClock};
use dingguard_store::{AlertEvent, NewAlert, Store, StoreConfig};
use serde_json::Value;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery staple";
/// Roles in the demo directory: security only.
pub const SECURITY: &str = "user_ops";
/// Admin, security and approver.
pub const ADMIN: &str = "user_it_admin";
/// Approver only: has a password but no console role.
pub const APPROVER: &str = "user_gm";
/// Has left the company; the password stays in the table.
pub const DEPARTED: &str = "user_sales_former";

pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub clock: ManualClock,
    pub console: Console,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub use dingguard_tests::approvals::cheap_hash as hash_password;

/// The console as `dingguard approver` serves it, built by the composition root, over a fresh SQLite store.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await.unwrap();
    let mut config = dingguard::config::Config::for_data_dir(dir.path()).unwrap();
    let hash = Secret::new(hash_password(PASSWORD));
    config.console.passwords =
        [SECURITY, ADMIN, APPROVER, DEPARTED].iter().map(|u| (u.to_string(), hash.clone())).collect();
    config.console.poll_interval = Some(Duration::from_millis(100));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clock = ManualClock::new(SystemClock.now_ms());
    let parts = Parts { clock: Some(Arc::new(clock.clone())), log: None, store: Some(store.clone()) };
    let app = dingguard::app::build(&config, Mode::Approver, listener, None, parts).await.unwrap();
    let (addr, shutdown, console) = (app.addr, app.shutdown.clone(), app.console.clone().expect("the console"));
    let server = tokio::spawn(async move {
        let _ = app.run().await;
    });
    TestApp { addr, store, clock, console, shutdown, server: Some(server), _dir: dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Asks the server and the live feed to stop, as `dingguard serve` does on a signal; true when the server
    /// finished within five seconds.
    pub async fn shut_down(&mut self) -> bool {
        self.shutdown.cancel();
        let server = self.server.take().expect("running");
        tokio::time::timeout(Duration::from_secs(5), server).await.is_ok()
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn client(&self) -> Client {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Client { http, base: self.url(""), session: None, csrf: None, bearer: None, device: None }
    }

    /// Writes an alert the way the alerter does.
    pub async fn raise(&self, id: &str, rule: &str, severity: &str, at_ms: i64) {
        let alert = NewAlert {
            id: id.into(),
            rule: rule.into(),
            severity: dingguard_model::Severity::parse(severity).expect("a severity"),
            message: format!("{rule} by user_sales_rep ({id})"),
            pdpa: vec!["15".into(), "16".into()],
            corp_id: Some("dingdemo".into()),
            dedup: Some((format!("key-{id}"), 600_000)),
            event: AlertEvent {
                ce_id: format!("ce-{id}"),
                event_type: "file_downloaded".into(),
                occurred_at_ms: at_ms,
                fields: serde_json::json!({"actor.id": "user_sales_rep", "file.name": "payroll <2026>.xlsx"}),
            },
            at_ms,
            recorded_at_ms: self.clock.now_ms(),
        };
        let mut tx = self.store.begin().await.unwrap();
        tx.record(&alert).await.unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn metric(&self, selector: &str) -> f64 {
        let text = self.client().get("/metrics").await.body;
        text.lines().filter(|l| l.starts_with(selector)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    /// The session cookie a reply sets (or clears), if any.
    pub set_cookie: Option<String>,
    /// The device cookie a sign-in sets.
    pub device_cookie: Option<String>,
    pub retry_after: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error message: {}", self.body)).to_owned()
    }
}

/// A browser-like caller: one session cookie, its CSRF token, or a bearer token.
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub session: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    /// The `dg_device` cookie of a browser that signed someone in before.
    pub device: Option<String>,
}

impl Client {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        let mut cookies = Vec::new();
        if let Some(session) = &self.session {
            cookies.push(format!("dg_session={session}"));
        }
        if let Some(device) = &self.device {
            cookies.push(format!("dg_device={device}"));
        }
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        request
    }

    async fn send(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let named = |name: &str| cookies.iter().find(|c| c.starts_with(name)).cloned();
        let (set_cookie, device_cookie) = (named("dg_session="), named("dg_device="));
        let (location, retry_after, headers) = (header("location"), header("retry-after"), response.headers().clone());
        Reply {
            status: response.status().as_u16(),
            location,
            set_cookie,
            device_cookie,
            retry_after,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        Self::send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        Self::send(self.request(reqwest::Method::POST, path).form(fields)).await
    }

    /// A page form post carrying this session's CSRF token.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf.clone().expect("signed in");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// A JSON API post; `csrf` adds the session's token as `X-CSRF-Token`.
    pub async fn api_post(&self, path: &str, body: Option<Value>, csrf: bool) -> Reply {
        let mut request = self.request(reqwest::Method::POST, path);
        if csrf {
            request = request.header("x-csrf-token", self.csrf.clone().expect("signed in"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::send(request).await
    }

    /// Signs in through the form; on success keeps the session and reads its CSRF token from a page.
    pub async fn login(&mut self, user: &str, password: &str) -> Reply {
        let reply = self.post_form("/login", &[("user_id", user), ("password", password)]).await;
        if let Some(device) = &reply.device_cookie {
            self.device = device.strip_prefix("dg_device=").and_then(|v| v.split(';').next()).map(str::to_owned);
        }
        if let Some(cookie) = &reply.set_cookie {
            self.adopt(cookie).await;
        }
        reply
    }

    /// Takes the session a `Set-Cookie` header started.
    pub async fn adopt(&mut self, set_cookie: &str) {
        let value = set_cookie.strip_prefix("dg_session=").and_then(|v| v.split(';').next()).expect("session cookie");
        self.session = Some(value.to_owned());
        let page = self.get("/alerts").await;
        // People without a console role see no alert page; their tests need no token.
        if page.status == 403 {
            return;
        }
        assert_eq!(page.status, 200, "{}", page.body);
        self.csrf = Some(csrf_in(&page.body).expect("a CSRF field on the page"));
    }
}

pub fn csrf_in(page: &str) -> Option<String> {
    let start = page.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    Some(page[start..].split('"').next()?.to_owned())
}
