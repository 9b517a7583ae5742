//! A stand-in for DingTalk's servers, served on a local port: what dingguard calls speaks DingTalk's documented
//! protocol, so the client, the sources and a demo can run without a tenant. It counts every call (to check that
//! nothing calls DingTalk faster than it allows) and answers with DingTalk's own failures on demand: throttling,
//! no answer, a server error, bad credentials, a missing permission.
//!
//! It serves, on one port: access tokens for the new APIs (`POST /v1.0/oauth2/accessToken`) and the legacy ones
//! (`GET /gettoken`); one API of each kind to call with them (`GET /v1.0/standin/echo`, `GET /topapi/standin/echo`);
//! Stream mode (`POST /v1.0/gateway/connections/open` and the WebSocket it names, see [`StreamOptions`]); the
//! failed-push list (`GET /call_back/get_call_back_failed_result`: at most 200 items an answer, each cleared as it
//! is returned, `has_more` while more wait); the Exclusive DingTalk file audit log
//! (`GET /v1.0/exclusive/fileAuditLogs`: `startDate`/`endDate`, `pageSize` up to 500, the cursor pair
//! `nextGmtCreate` + `nextBizId` sent together); and the address book (departments, people by department, heads,
//! administrators, leavers). [`robot`] and [`work`] are a custom group robot and the work-notification API, each on
//! a port of its own.

mod contacts;
pub mod robot;
mod stream;
pub mod work;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

pub use contacts::Company;
pub use stream::{OPEN_PATH as STREAM_OPEN_PATH, StreamOptions, StreamStats};

/// A failure to answer the next call to an endpoint with, in place of the real answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// New APIs: HTTP 429, `Forbidden.AccessDenied.QpsLimitForApi`; legacy: `errcode` 90018.
    Throttle,
    /// No answer for this long, then the real one.
    Hang(Duration),
    /// HTTP 503.
    Unavailable,
    /// New APIs: HTTP 403 naming the permission in `accessdenieddetail.requiredScopes`; legacy: `errcode` 60011.
    NoPermission(String),
    /// The token presented is refused (new: HTTP 401; legacy: `errcode` 40014), as when it expired early.
    RejectToken,
    /// A well-formed answer of this many bytes, as a broken proxy might send.
    Oversized(usize),
    /// Legacy: an empty answer that says there is more.
    EmptyButMore,
    /// File audit log: the first page again, whatever cursor was sent.
    IgnoreCursor,
}

/// One call the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub at: Instant,
}

#[derive(Default)]
pub(crate) struct Tenant {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// Seconds a token lives, as `expireIn` / `expires_in` say.
    token_lifetime_s: i64,
    issued: u64,
    tokens: Vec<String>,
    faults: Vec<(String, VecDeque<Fault>)>,
    calls: Vec<Call>,
    failed: VecDeque<Value>,
    /// Sorted by `gmtCreate`, then `bizId`: the order the audit log pages in.
    audit: Vec<Value>,
    pub(crate) contacts: contacts::Book,
}

fn audit_key(record: &Value) -> (i64, String) {
    let at = record.get("gmtCreate").and_then(Value::as_i64).unwrap_or_default();
    (at, record.get("bizId").and_then(Value::as_str).unwrap_or_default().to_owned())
}

/// Serves `router` on an ephemeral loopback port and returns its base URL.
pub(crate) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Items the failed-push list returns in one answer, as DingTalk documents.
pub const FAILED_PER_ANSWER: usize = 200;

/// A running stand-in. Dropping it leaves the server running until the runtime ends.
#[derive(Clone)]
pub struct StandIn {
    addr: SocketAddr,
    tenant: Arc<Mutex<Tenant>>,
    stream: stream::StreamServer,
}

impl StandIn {
    /// Serves on `127.0.0.1:0` for the app with these credentials.
    pub async fn start(client_id: &str, client_secret: &str) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("an address"), client_id, client_secret).await
    }

    /// Serves on `addr`, for demos that point dingguard at a known address.
    pub async fn start_on(addr: SocketAddr, client_id: &str, client_secret: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let tenant = Arc::new(Mutex::new(Tenant {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            token_lifetime_s: 7200,
            ..Tenant::default()
        }));
        let app = Router::new()
            .route("/v1.0/oauth2/accessToken", post(new_token))
            .route("/gettoken", get(legacy_token))
            .route("/v1.0/standin/echo", get(new_echo))
            .route("/topapi/standin/echo", get(legacy_echo))
            .route("/call_back/get_call_back_failed_result", get(failed_list))
            .route("/v1.0/exclusive/fileAuditLogs", get(audit_logs))
            .route(contacts::paths::LIST_SUB, post(contacts::list_sub))
            .route(contacts::paths::DEPARTMENT, post(contacts::department))
            .route(contacts::paths::USER_LIST, post(contacts::user_list))
            .route(contacts::paths::USER, post(contacts::user))
            .route(contacts::paths::ADMINS, post(contacts::admins))
            .route(contacts::paths::LEAVER_IDS, post(contacts::leaver_ids))
            .route(contacts::paths::LEAVERS, post(contacts::leavers))
            .with_state(tenant.clone());
        let stream = stream::StreamServer::new();
        let app = app.merge(stream.routes(tenant.clone(), format!("ws://{addr}")));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, tenant, stream })
    }

    /// The base URL of both the new and the legacy APIs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next calls to `path` with these faults, one each, before answering normally again.
    pub fn fail_next(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut tenant = self.tenant.lock();
        let faults: VecDeque<Fault> = faults.into_iter().collect();
        match tenant.faults.iter_mut().find(|(p, _)| p == path) {
            Some((_, queue)) => queue.extend(faults),
            None => tenant.faults.push((path.to_owned(), faults)),
        }
    }

    pub fn set_token_lifetime(&self, seconds: i64) {
        self.tenant.lock().token_lifetime_s = seconds;
    }

    /// Every call so far to `path`.
    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.tenant.lock().calls.iter().filter(|c| c.path == path).cloned().collect()
    }

    /// Parks items on the failed-push list, as DingTalk does after its two retries of a push.
    pub fn park_failed(&self, items: impl IntoIterator<Item = Value>) {
        self.tenant.lock().failed.extend(items);
    }

    /// Items still waiting on the failed-push list.
    pub fn failed_waiting(&self) -> usize {
        self.tenant.lock().failed.len()
    }

    /// Adds records to the file audit log.
    pub fn add_audit_records(&self, records: impl IntoIterator<Item = Value>) {
        let mut tenant = self.tenant.lock();
        tenant.audit.extend(records);
        tenant.audit.sort_by_key(audit_key);
    }

    /// A demo company's day on DingTalk's side, dated before `now_ms`: on the failed-push list, a person who left
    /// and an outsider added to a group while dingguard was down; in the file audit log, 25 files downloaded in
    /// a few minutes by the demo directory's accountant and an ordinary download; over Stream, another outsider
    /// added to another group.
    pub fn load_demo(&self, now_ms: i64) {
        let left = json!({"EventType": "user_leave_org", "TimeStamp": (now_ms - 7_200_000).to_string(),
            "UserId": ["user_sales_former"], "CorpId": "dingdemocorp0000"});
        let added = json!({"EventType": "chat_add_member", "TimeStamp": now_ms - 3_600_000, "chatId": "chatdemo0001",
            "operator": "user_sales_lead", "userId": ["ext_partner_wong"], "CorpId": "dingdemocorp0000"});
        self.park_failed([
            json!({"call_back_tag": "user_leave_org", "event_time": now_ms - 7_200_000,
                "user_leave_org": {"corpid": "dingdemocorp0000", "callbackData": left.to_string()}}),
            json!({"call_back_tag": "chat_add_member", "event_time": now_ms - 3_600_000,
                "chat_add_member": {"corpid": "dingdemocorp0000", "callbackData": added.to_string()}}),
        ]);
        let download = |i: i64, user: &str, name: String, at: i64| {
            json!({"action": 2, "userId": user, "bizId": format!("demofile{i:03}"), "resource": name,
                "targetSpaceId": "space_finance", "platform": 11, "ipAddress": "10.0.0.23", "gmtCreate": at})
        };
        let start = now_ms - 1_800_000;
        let mut records: Vec<Value> = (0..25)
            .map(|i| download(i, "user_fin_accountant", format!("invoice-{i:04}.pdf"), start + i * 5_000))
            .collect();
        records.push(download(100, "user_sales_rep", "launch-slides.pptx".into(), now_ms - 5_400_000));
        self.add_audit_records(records);
        // Over Stream, once a connection opens: another outsider added to another group, a minute ago.
        self.push_stream_events([json!({"EventType": "chat_add_member", "eventId": "demo-stream-0001",
            "CorpId": "dingdemocorp0000", "EventTime": now_ms - 60_000, "chatId": "chatdemo0002",
            "operator": "user_sales_lead", "userId": ["ext_partner_chan"]})]);
    }

    /// Pushes events down the Stream connections, each given as the JSON an HTTP push of it carries.
    pub fn push_stream_events(&self, events: impl IntoIterator<Item = Value>) {
        self.stream.push(events);
    }

    /// Pushes a robot message (a CALLBACK frame) down a Stream connection.
    pub fn push_stream_callback(&self, data: Value) {
        self.stream.push_callback(data);
    }

    pub fn set_stream_options(&self, options: StreamOptions) {
        self.stream.set_options(options);
    }

    /// Checks every `SUCCESS` ack, with the event's id, when it arrives; an ack the check refuses is counted in
    /// [`StreamStats::acked_too_early`].
    pub fn check_stream_acks(&self, check: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.stream.set_check(Arc::new(check));
    }

    /// Stops (or resumes) reading and writing every Stream socket, as a hung server would.
    pub fn freeze_stream(&self, frozen: bool) {
        self.stream.freeze(frozen);
    }

    /// How long each `SUCCESS` took from its frame's sending, in ack order, since the last call.
    pub fn take_stream_ack_times(&self) -> Vec<Duration> {
        self.stream.take_ack_times()
    }

    pub fn stream_stats(&self) -> StreamStats {
        self.stream.stats()
    }

    /// An address book of `departments` departments under the root and `users` people, each department headed
    /// by its first person.
    pub fn generate_company(&self, departments: usize, users: usize) -> Company {
        self.tenant.lock().contacts.generate(departments, users)
    }

    pub fn add_department(&self, id: i64, name: &str, parent: Option<i64>) {
        self.tenant.lock().contacts.add_department(id, name, parent);
    }

    /// Who heads the department from now on.
    pub fn set_department_heads(&self, id: i64, heads: &[&str]) {
        self.tenant.lock().contacts.set_heads(id, heads);
    }

    pub fn add_user(&self, id: &str, name: &str, departments: &[i64], manager: Option<&str>) {
        self.tenant.lock().contacts.add_user(id, name, departments, manager);
    }

    /// The organisation's administrators, with their level (1 main, 2 sub).
    pub fn set_admins(&self, admins: &[(&str, i64)]) {
        self.tenant.lock().contacts.set_admins(admins);
    }

    /// Moves a person to the leavers' list, as of `at_ms`.
    pub fn user_leaves(&self, id: &str, at_ms: i64) {
        self.tenant.lock().contacts.leave(id, at_ms);
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.tenant.lock().issued
    }
}

pub(crate) type Shared = Arc<Mutex<Tenant>>;

/// Records the call and takes the fault due for it, if any.
fn arrive(tenant: &Shared, path: &str) -> Option<Fault> {
    let mut tenant = tenant.lock();
    tenant.calls.push(Call { path: path.to_owned(), at: Instant::now() });
    tenant.faults.iter_mut().find(|(p, _)| p == path).and_then(|(_, queue)| queue.pop_front())
}

fn issue(tenant: &Shared) -> (String, i64) {
    let mut tenant = tenant.lock();
    tenant.issued += 1;
    let token = format!("standin-token-{}", tenant.issued);
    tenant.tokens.push(token.clone());
    (token, tenant.token_lifetime_s)
}

fn oversized(bytes: usize) -> Response {
    Json(json!({"errcode": 0, "padding": "x".repeat(bytes)})).into_response()
}

fn new_api_fault(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::Oversized(bytes) => oversized(*bytes),
        Fault::EmptyButMore => Json(json!({"list": []})).into_response(),
        Fault::IgnoreCursor => return None,
        Fault::Throttle => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(
                json!({"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "too many calls", "requestid": "r"}),
            ),
        )
            .into_response(),
        Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Fault::NoPermission(scope) => (
            StatusCode::FORBIDDEN,
            Json(json!({"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "requestid": "r",
                "message": "no permission to call this API", "accessdenieddetail": {"requiredScopes": [scope]}})),
        )
            .into_response(),
        Fault::RejectToken => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "InvalidAuthentication", "message": "token is not authorized", "requestid": "r"})),
        )
            .into_response(),
        Fault::Hang(_) => return None,
    })
}

pub(crate) fn legacy_fault(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::Oversized(bytes) => oversized(*bytes),
        Fault::EmptyButMore => Json(json!({"errcode": 0, "has_more": true, "failed_list": []})).into_response(),
        Fault::IgnoreCursor => return None,
        Fault::Throttle => Json(json!({"errcode": 90018, "errmsg": "calls too frequent"})).into_response(),
        Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Fault::NoPermission(scope) => {
            Json(json!({"errcode": 60011, "errmsg": format!("no permission, needs [{scope}]")})).into_response()
        }
        Fault::RejectToken => Json(json!({"errcode": 40014, "errmsg": "invalid access_token"})).into_response(),
        Fault::Hang(_) => return None,
    })
}

/// The fault's answer, after any hang; `None` to answer normally.
pub(crate) async fn faulted(tenant: &Shared, path: &str, legacy: bool) -> Option<Response> {
    faulted_with(tenant, path, legacy).await.err()
}

/// Like [`faulted`], but hands back a fault the endpoint itself must act on (`Ok(Some(..))`).
async fn faulted_with(tenant: &Shared, path: &str, legacy: bool) -> Result<Option<Fault>, Response> {
    let Some(fault) = arrive(tenant, path) else { return Ok(None) };
    if fault == Fault::IgnoreCursor {
        return Ok(Some(fault));
    }
    match faulted_response(fault, legacy).await {
        Some(response) => Err(response),
        None => Ok(None),
    }
}

async fn faulted_response(fault: Fault, legacy: bool) -> Option<Response> {
    if let Fault::Hang(wait) = fault {
        tokio::time::sleep(wait).await;
        return None;
    }
    if legacy { legacy_fault(&fault) } else { new_api_fault(&fault) }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTokenBody {
    app_key: String,
    app_secret: String,
}

async fn new_token(State(tenant): State<Shared>, body: Option<Json<NewTokenBody>>) -> Response {
    if let Some(response) = faulted(&tenant, "/v1.0/oauth2/accessToken", false).await {
        return response;
    }
    let ok = body.is_some_and(|Json(b)| {
        let t = tenant.lock();
        b.app_key == t.client_id && b.app_secret == t.client_secret
    });
    if !ok {
        let refusal =
            json!({"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret", "requestid": "r"});
        return (StatusCode::BAD_REQUEST, Json(refusal)).into_response();
    }
    let (token, lifetime) = issue(&tenant);
    Json(json!({"accessToken": token, "expireIn": lifetime})).into_response()
}

#[derive(Deserialize)]
struct LegacyTokenQuery {
    appkey: Option<String>,
    appsecret: Option<String>,
}

async fn legacy_token(State(tenant): State<Shared>, Query(q): Query<LegacyTokenQuery>) -> Response {
    if let Some(response) = faulted(&tenant, "/gettoken", true).await {
        return response;
    }
    let ok = {
        let t = tenant.lock();
        q.appkey.as_deref() == Some(t.client_id.as_str()) && q.appsecret.as_deref() == Some(t.client_secret.as_str())
    };
    if !ok {
        return Json(json!({"errcode": 40089, "errmsg": "invalid appkey or appsecret"})).into_response();
    }
    let (token, lifetime) = issue(&tenant);
    Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": lifetime})).into_response()
}

pub(crate) fn known(tenant: &Shared, token: Option<&str>) -> bool {
    token.is_some_and(|t| tenant.lock().tokens.iter().any(|k| k == t))
}

async fn new_echo(State(tenant): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = faulted(&tenant, "/v1.0/standin/echo", false).await {
        return response;
    }
    let token = headers.get("x-acs-dingtalk-access-token").and_then(|v| v.to_str().ok());
    if !known(&tenant, token) {
        return new_api_fault(&Fault::RejectToken).unwrap_or_else(|| StatusCode::UNAUTHORIZED.into_response());
    }
    Json(json!({"token": token})).into_response()
}

async fn legacy_echo(State(tenant): State<Shared>, Query(q): Query<Value>) -> Response {
    if let Some(response) = faulted(&tenant, "/topapi/standin/echo", true).await {
        return response;
    }
    let token = q.get("access_token").and_then(Value::as_str);
    if !known(&tenant, token) {
        return legacy_fault(&Fault::RejectToken).unwrap_or_else(|| StatusCode::UNAUTHORIZED.into_response());
    }
    Json(json!({"errcode": 0, "errmsg": "ok", "token": token})).into_response()
}

async fn failed_list(State(tenant): State<Shared>, Query(q): Query<Value>) -> Response {
    if let Some(response) = faulted(&tenant, "/call_back/get_call_back_failed_result", true).await {
        return response;
    }
    if !known(&tenant, q.get("access_token").and_then(Value::as_str)) {
        return legacy_fault(&Fault::RejectToken).unwrap_or_else(|| StatusCode::UNAUTHORIZED.into_response());
    }
    // Returned is cleared: DingTalk does not give an item back.
    let mut tenant = tenant.lock();
    let take = tenant.failed.len().min(FAILED_PER_ANSWER);
    let items: Vec<Value> = tenant.failed.drain(..take).collect();
    let has_more = !tenant.failed.is_empty();
    Json(json!({"errcode": 0, "errmsg": "ok", "has_more": has_more, "failed_list": items})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditQuery {
    start_date: Option<i64>,
    end_date: Option<i64>,
    page_size: Option<usize>,
    next_gmt_create: Option<i64>,
    next_biz_id: Option<String>,
}

fn invalid(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"code": "invalidParameter", "message": message, "requestid": "r"})))
        .into_response()
}

async fn audit_logs(State(tenant): State<Shared>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Response {
    let ignore_cursor = match faulted_with(&tenant, "/v1.0/exclusive/fileAuditLogs", false).await {
        Ok(fault) => fault == Some(Fault::IgnoreCursor),
        Err(response) => return response,
    };
    if !known(&tenant, headers.get("x-acs-dingtalk-access-token").and_then(|v| v.to_str().ok())) {
        return new_api_fault(&Fault::RejectToken).unwrap_or_else(|| StatusCode::UNAUTHORIZED.into_response());
    }
    let (Some(start), Some(end)) = (q.start_date, q.end_date) else {
        return invalid("startDate and endDate are required");
    };
    let size = match q.page_size {
        Some(size) if (1..=500).contains(&size) => size,
        _ => return invalid("pageSize must be between 1 and 500"),
    };
    let after = match (q.next_gmt_create, q.next_biz_id) {
        _ if ignore_cursor => None,
        (Some(at), Some(id)) => Some((at, id)),
        (None, None) => None,
        _ => return invalid("nextGmtCreate and nextBizId go together"),
    };
    let tenant = tenant.lock();
    let list: Vec<&Value> = tenant
        .audit
        .iter()
        .filter(|r| {
            let key = audit_key(r);
            key.0 >= start && key.0 <= end && after.as_ref().is_none_or(|a| key > *a)
        })
        .take(size)
        .collect();
    Json(json!({"list": list})).into_response()
}
