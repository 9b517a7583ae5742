//! The DingTalk client against the stand-in on port 0: tokens, retries, bounds and typed refusals.

use std::sync::Arc;
use std::time::Duration;

use dingguard_dingtalk_api::{ApiConfig, ApiError, Backoff, DingTalkApi};
use dingguard_dingtalk_standin::{Fault, StandIn};
use dingguard_model::{Clock, ManualClock, Secret, SystemClock};
use reqwest::Method;
use serde_json::Value;

const ID: &str = "dingstandinapp";
const SECRET: &str = "standin-client-secret-0123456789";

async fn standin() -> StandIn {
    StandIn::start(ID, SECRET).await.unwrap()
}

fn config(standin: &StandIn, secret: &str) -> ApiConfig {
    let mut config = ApiConfig::new(ID, Secret::new(secret.to_owned()));
    config.api_url = standin.url();
    config.oapi_url = standin.url();
    config.call_timeout = Duration::from_millis(300);
    config.backoff = Backoff { attempts: 3, first: Duration::from_millis(40), max: Duration::from_millis(200) };
    config
}

fn client(standin: &StandIn, clock: &ManualClock) -> Arc<DingTalkApi> {
    Arc::new(DingTalkApi::new(config(standin, SECRET), Arc::new(clock.clone())).unwrap())
}

fn clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

async fn echo(api: &DingTalkApi) -> Result<Value, ApiError> {
    api.call(Method::GET, "/v1.0/standin/echo", &[], None).await
}

async fn legacy_echo(api: &DingTalkApi) -> Result<Value, ApiError> {
    api.oapi(Method::GET, "/topapi/standin/echo", &[], None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_fetched_once_however_many_calls_wait() {
    let standin = standin().await;
    let api = client(&standin, &clock());
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { (api.access_token().await.unwrap(), api.legacy_access_token().await.unwrap()) })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for call in calls {
        let (new, legacy) = call.await.unwrap();
        tokens.insert(new.expose().to_owned());
        tokens.insert(legacy.expose().to_owned());
    }
    assert_eq!(tokens.len(), 2, "one token of each kind: {tokens:?}");
    assert_eq!(standin.calls_to("/v1.0/oauth2/accessToken").len(), 1);
    assert_eq!(standin.calls_to("/gettoken").len(), 1);
    assert_eq!(echo(&api).await.unwrap()["token"], Value::String(api.access_token().await.unwrap().expose().into()));
    assert_eq!(legacy_echo(&api).await.unwrap()["errcode"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_refreshed_before_it_expires() {
    let standin = standin().await;
    let clock = clock();
    let api = client(&standin, &clock);
    let first = api.access_token().await.unwrap();
    // Two hours' life, refreshed five minutes before the end.
    clock.advance_ms((7200 - 300 - 1) * 1000);
    assert_eq!(api.access_token().await.unwrap(), first);
    clock.advance_ms(2000);
    let second = api.access_token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(standin.tokens_issued(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_busy_answers_are_retried_with_growing_waits() {
    let standin = standin().await;
    let api = client(&standin, &clock());
    standin.fail_next("/v1.0/standin/echo", [Fault::Throttle, Fault::Unavailable]);
    echo(&api).await.unwrap();
    let calls = standin.calls_to("/v1.0/standin/echo");
    assert_eq!(calls.len(), 3);
    for pair in calls.windows(2) {
        // Never a tight loop: every wait is at least a tenth of its ceiling (40 ms at first).
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(4), "{:?}", pair[1].at - pair[0].at);
    }

    standin.fail_next("/topapi/standin/echo", vec![Fault::Throttle; 5]);
    let error = legacy_echo(&api).await.unwrap_err();
    assert_eq!(error, ApiError::Throttled { api: "/topapi/standin/echo".into(), attempts: 3 });
    assert!(error.is_transient());
    assert_eq!(standin.calls_to("/topapi/standin/echo").len(), 3, "no more calls than the attempts allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_an_answer_is_cut_at_its_bound_and_retried() {
    let standin = standin().await;
    let api = client(&standin, &clock());
    standin.fail_next("/v1.0/standin/echo", [Fault::Hang(Duration::from_secs(2))]);
    let started = std::time::Instant::now();
    echo(&api).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "the hung call was not waited out");
    standin.fail_next("/v1.0/standin/echo", vec![Fault::Hang(Duration::from_secs(2)); 3]);
    let error = echo(&api).await.unwrap_err();
    assert!(matches!(error, ApiError::Timeout { attempts: 3, timeout_ms: 300, .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_said_plainly_and_not_retried() {
    let standin = standin().await;
    let api = DingTalkApi::new(config(&standin, "not-the-secret"), Arc::new(clock())).unwrap();
    let error = api.access_token().await.unwrap_err();
    assert!(matches!(error, ApiError::BadCredentials { api: "oauth2/accessToken", .. }), "{error}");
    let error = api.legacy_access_token().await.unwrap_err();
    assert!(matches!(error, ApiError::BadCredentials { api: "gettoken", .. }), "{error}");
    assert!(!error.is_transient());
    assert_eq!(standin.calls_to("/v1.0/oauth2/accessToken").len(), 1);
    assert_eq!(standin.calls_to("/gettoken").len(), 1);
    for text in [error.to_string(), format!("{error:?}"), format!("{:?}", config(&standin, "not-the-secret"))] {
        assert!(!text.contains("not-the-secret"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_named() {
    let standin = standin().await;
    let api = client(&standin, &clock());
    standin.fail_next("/v1.0/standin/echo", [Fault::NoPermission("qyapi_get_member".into())]);
    let error = echo(&api).await.unwrap_err();
    assert!(matches!(&error, ApiError::MissingPermission { scopes, .. } if scopes == &["qyapi_get_member"]), "{error}");
    assert!(error.to_string().contains("lacks the permission qyapi_get_member"), "{error}");
    standin.fail_next("/topapi/standin/echo", [Fault::NoPermission("qyapi_get_department_list".into())]);
    let error = legacy_echo(&api).await.unwrap_err();
    assert!(error.to_string().contains("qyapi_get_department_list"), "{error}");
    assert_eq!(standin.calls_to("/topapi/standin/echo").len(), 1, "a refusal is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_once_and_never_shown() {
    let standin = standin().await;
    let api = client(&standin, &clock());
    let old = api.access_token().await.unwrap();
    standin.fail_next("/v1.0/standin/echo", [Fault::RejectToken]);
    let answer = echo(&api).await.unwrap();
    assert_ne!(answer["token"].as_str(), Some(old.expose()));
    standin.fail_next("/topapi/standin/echo", [Fault::RejectToken]);
    legacy_echo(&api).await.unwrap();
    assert_eq!(standin.tokens_issued(), 4, "two of each kind: the first and its replacement");

    standin.fail_next("/topapi/standin/echo", vec![Fault::Unavailable; 3]);
    let error = legacy_echo(&api).await.unwrap_err();
    let token = api.legacy_access_token().await.unwrap();
    assert!(matches!(error, ApiError::Unreachable { .. }), "{error}");
    assert!(!format!("{error} {error:?}").contains(token.expose()), "{error:?}");
}

#[test]
fn settings_that_cannot_work_are_refused_at_once() {
    let mut config = ApiConfig::new("", Secret::new("x".to_owned()));
    assert!(matches!(DingTalkApi::new(config.clone(), Arc::new(SystemClock)), Err(ApiError::Config(_))));
    config.client_id = "app".into();
    config.api_url = "ftp://example".into();
    assert!(matches!(DingTalkApi::new(config, Arc::new(SystemClock)), Err(ApiError::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_to_be_one_is_refused_unread() {
    let standin = standin().await;
    // Time for the stand-in to build the answer: the bound here is on its size, not its time.
    let mut config = config(&standin, SECRET);
    config.call_timeout = Duration::from_secs(20);
    let api = DingTalkApi::new(config, Arc::new(clock())).unwrap();
    let size = dingguard_dingtalk_api::MAX_ANSWER_BYTES + 1024;
    standin.fail_next("/v1.0/standin/echo", [Fault::Oversized(size)]);
    let error = echo(&api).await.unwrap_err();
    assert!(matches!(&error, ApiError::Malformed { what, .. } if what.contains("more than")), "{error}");
    standin.fail_next("/topapi/standin/echo", [Fault::Oversized(size)]);
    assert!(matches!(legacy_echo(&api).await.unwrap_err(), ApiError::Malformed { .. }));
    assert_eq!(standin.calls_to("/v1.0/standin/echo").len(), 1, "not retried");
}
