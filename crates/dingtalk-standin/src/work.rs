//! DingTalk's legacy token and `asyncsend_v2` endpoints (https://open.dingtalk.com/document/development/asynchronous-sending-of-enterprise-session-messages): work notifications.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

pub const APP_KEY: &str = "dingappkey01";
pub const APP_SECRET: &str = "app-secret-standin";
pub const AGENT_ID: i64 = 3_021_558_800;

#[derive(Debug, Clone)]
pub struct Sent {
    pub token: String,
    pub agent_id: i64,
    pub userid_list: String,
    pub msg: Value,
}

#[derive(Default)]
pub struct Log {
    pub token_requests: usize,
    pub sends: Vec<Sent>,
    pub refused_tokens: usize,
    /// Every token is refused, as if the app's tokens were revoked for good.
    pub refuse_every_token: bool,
    valid: HashSet<String>,
    /// OA approval instances by id, as `GET /v1.0/workflow/processInstances` returns their `result`.
    pub instances: HashMap<String, Value>,
    pub instance_reads: usize,
}

pub struct WorkStandIn {
    pub url: String,
    pub log: Arc<Mutex<Log>>,
}

impl WorkStandIn {
    pub async fn start() -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let router = Router::new()
            .route("/gettoken", get(gettoken))
            .route("/topapi/message/corpconversation/asyncsend_v2", post(asyncsend))
            .route("/v1.0/oauth2/accessToken", post(new_api_token))
            .route("/v1.0/workflow/processInstances", get(process_instance))
            .with_state(Arc::clone(&log));
        Self { url: crate::serve(router).await, log }
    }

    /// Forgets every issued token, as DingTalk does when one expires early.
    pub fn revoke_all(&self) {
        self.log.lock().valid.clear();
    }

    pub fn sends(&self) -> Vec<Sent> {
        self.log.lock().sends.clone()
    }

    /// Registers an OA approval instance whose form has these (label, value) components.
    pub fn add_instance(&self, id: &str, originator: &str, title: &str, form: &[(&str, &str)]) {
        let values: Vec<Value> = form.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect();
        let result = json!({ "title": title, "originatorUserId": originator, "status": "RUNNING",
            "formComponentValues": values, "tasks": [] });
        self.log.lock().instances.insert(id.to_owned(), result);
    }
}

/// The new-API token: `POST /v1.0/oauth2/accessToken` with the app key and secret in the body.
async fn new_api_token(State(log): State<Arc<Mutex<Log>>>, Json(body): Json<Value>) -> Response {
    let mut log = log.lock();
    log.token_requests += 1;
    if body["appKey"] != APP_KEY || body["appSecret"] != APP_SECRET {
        let error = json!({ "code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret" });
        return (axum::http::StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let token = format!("new-tok-{}", log.token_requests);
    log.valid.insert(token.clone());
    Json(json!({ "accessToken": token, "expireIn": 7200 })).into_response()
}

async fn process_instance(
    State(log): State<Arc<Mutex<Log>>>,
    headers: axum::http::HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut log = log.lock();
    let token = headers.get("x-acs-dingtalk-access-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !log.valid.contains(token) {
        let error = json!({ "code": "InvalidAuthentication", "message": "不合法的access_token" });
        return (axum::http::StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    log.instance_reads += 1;
    match query.get("processInstanceId").and_then(|id| log.instances.get(id)) {
        Some(result) => Json(json!({ "result": result, "success": true })).into_response(),
        None => {
            let error = json!({ "code": "InstanceNotExist", "message": "审批实例不存在" });
            (axum::http::StatusCode::BAD_REQUEST, Json(error)).into_response()
        }
    }
}

async fn gettoken(State(log): State<Arc<Mutex<Log>>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut log = log.lock();
    log.token_requests += 1;
    let ok = query.get("appkey").map(String::as_str) == Some(APP_KEY)
        && query.get("appsecret").map(String::as_str) == Some(APP_SECRET);
    if !ok {
        return Json(json!({ "errcode": 40089, "errmsg": "不合法的corpid或corpsecret" })).into_response();
    }
    let token = format!("tok-{}", log.token_requests);
    log.valid.insert(token.clone());
    Json(json!({ "errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200 })).into_response()
}

async fn asyncsend(
    State(log): State<Arc<Mutex<Log>>>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let mut log = log.lock();
    let token = query.get("access_token").cloned().unwrap_or_default();
    if log.refuse_every_token || !log.valid.contains(&token) {
        log.refused_tokens += 1;
        return Json(json!({ "errcode": 40014, "errmsg": "不合法的access_token" })).into_response();
    }
    let userid_list = body["userid_list"].as_str().unwrap_or_default().to_owned();
    let msg = body["msg"].clone();
    let too_many = userid_list.split(',').count() > 100;
    let too_big = serde_json::to_vec(&msg).unwrap().len() > 2048;
    if userid_list.is_empty() || too_many || too_big || !body["agent_id"].is_i64() {
        return Json(json!({ "errcode": 40035, "errmsg": "缺少参数" })).into_response();
    }
    let agent_id = body["agent_id"].as_i64().unwrap();
    log.sends.push(Sent { token, agent_id, userid_list, msg });
    let task_id = 700 + log.sends.len();
    Json(json!({ "errcode": 0, "task_id": task_id, "request_id": format!("req-{task_id}") })).into_response()
}

impl Sent {
    /// The action card's or markdown's text.
    pub fn text(&self) -> String {
        let card = self.msg["action_card"]["markdown"].as_str();
        card.or(self.msg["markdown"]["text"].as_str()).unwrap_or_default().to_owned()
    }

    /// The action card's button URL.
    pub fn link(&self) -> Option<String> {
        self.msg["action_card"]["single_url"].as_str().map(str::to_owned)
    }
}

impl WorkStandIn {
    /// What reached `user`, oldest first.
    pub fn sent_to(&self, user: &str) -> Vec<Sent> {
        self.sends().into_iter().filter(|s| s.userid_list.split(',').any(|u| u == user)).collect()
    }
}
