//! Working alerts: the list and its filters, the detail page, acknowledge / resolve, silences, CSRF, the JSON
//! API and its OpenAPI document, and the live feed.

use std::time::Duration;

use crate::common::{Client, PASSWORD, SECURITY, TestApp, spawn_app};
use dingguard_store::AlertStatus;
use serde_json::json;

async fn signed_in(app: &TestApp) -> Client {
    let mut client = app.client();
    assert_eq!(client.login(SECURITY, PASSWORD).await.status, 303);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_by_severity_rule_and_status() {
    let app = spawn_app().await;
    let now = app.clock_now();
    app.raise("alr_a", "bulk_download", "high", now).await;
    app.raise("alr_b", "admin_role_granted", "medium", now - 1).await;
    app.store.transition("alr_b", AlertStatus::Acknowledged, SECURITY, now).await.unwrap();
    let client = signed_in(&app).await;

    let page = client.get("/alerts").await.body;
    assert!(page.contains(r#"data-alert-id="alr_a""#) && page.contains(r#"data-alert-id="alr_b""#));
    assert!(page.contains("payroll") || page.contains("bulk_download by user_sales_rep"), "{page}");
    let high = client.get("/alerts?severity=high").await.body;
    assert!(high.contains("alr_a") && !high.contains(r#"data-alert-id="alr_b""#));
    let acked = client.get("/alerts?status=acknowledged&rule=admin_role_granted").await.body;
    assert!(acked.contains(r#"data-alert-id="alr_b""#) && !acked.contains(r#"data-alert-id="alr_a""#));

    let api = client.get("/api/v1/alerts?status=open").await.json();
    assert_eq!(api["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(api["alerts"][0]["id"], "alr_a");
    let bad = client.get("/api/v1/alerts?severity=urgent").await;
    assert_eq!(bad.status, 422);
    assert!(bad.error().contains("Severity must be one of"), "{}", bad.body);
    assert_eq!(client.get("/alerts?status=closed").await.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_shows_events_and_what_the_alert_may_implicate() {
    let app = spawn_app().await;
    app.raise("alr_d", "sensitive_download_without_grant", "high", app.clock_now()).await;
    let client = signed_in(&app).await;
    let page = client.get("/alerts/alr_d").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("may implicate Art. 15, Art. 16"), "{}", page.body);
    assert!(!page.body.contains("violat"), "never says the law was violated");
    assert!(page.body.contains("payroll &lt;2026&gt;.xlsx"), "event fields, escaped: {}", page.body);
    assert!(page.body.contains("file_downloaded") && page.body.contains("ce-alr_d"));
    assert!(page.body.contains(r#"action="/alerts/alr_d/acknowledge""#));

    assert_eq!(client.get("/alerts/alr_nope").await.status, 404);
    let missing = client.get("/api/v1/alerts/alr_nope").await;
    assert_eq!((missing.status, missing.error().as_str()), (404, "alert alr_nope not found"));
    let api = client.get("/api/v1/alerts/alr_d").await.json();
    assert_eq!(api["events"][0]["fields"]["file.name"], "payroll <2026>.xlsx");
    assert!(api["pdpa_note"].as_str().unwrap().contains("may implicate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_csrf_token_nothing_changes() {
    let app = spawn_app().await;
    app.raise("alr_c", "bulk_download", "high", app.clock_now()).await;
    let client = signed_in(&app).await;
    let missing = client.post_form("/alerts/alr_c/acknowledge", &[]).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("CSRF token is missing or does not match"), "{}", missing.body);
    assert_eq!(client.post_form("/alerts/alr_c/resolve", &[("csrf", "forged")]).await.status, 403);
    let silence = [("rule", "bulk_download"), ("reason", "testing"), ("expires_in_hours", "2")];
    assert_eq!(client.post_form("/silences", &silence).await.status, 403);
    let api = client.api_post("/api/v1/alerts/alr_c/resolve", None, false).await;
    assert_eq!((api.status, api.error().contains("CSRF")), (403, true));

    let (alert, _, _) = app.store.alert("alr_c", 10, 0).await.unwrap();
    assert_eq!((alert.status, alert.acknowledged_by), (AlertStatus::Open, None));
    assert!(app.store.silences().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_then_resolve_and_resolving_again_conflicts() {
    let app = spawn_app().await;
    app.raise("alr_l", "bulk_download", "high", app.clock_now()).await;
    let client = signed_in(&app).await;
    let acked = client.submit("/alerts/alr_l/acknowledge", &[]).await;
    assert_eq!((acked.status, acked.location.as_deref()), (303, Some("/alerts/alr_l")));
    let page = client.get("/alerts/alr_l").await.body;
    assert!(page.contains("by Sou Weng Kin (蘇永堅), user_ops at"), "who and when: {page}");
    assert!(!page.contains(r#"action="/alerts/alr_l/acknowledge""#), "acknowledged once");

    let resolved = client.api_post("/api/v1/alerts/alr_l/resolve", None, true).await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    assert_eq!(resolved.json()["alert"]["status"], "resolved");
    assert_eq!(resolved.json()["alert"]["resolved_by"], SECURITY);

    let again = client.api_post("/api/v1/alerts/alr_l/resolve", None, true).await;
    assert_eq!(again.status, 409);
    assert!(again.error().contains("is resolved and cannot become resolved"), "{}", again.body);
    assert_eq!(client.submit("/alerts/alr_l/resolve", &[]).await.status, 409);
    let ack_late = client.api_post("/api/v1/alerts/alr_l/acknowledge", None, true).await;
    assert_eq!(ack_late.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_needs_a_reason_and_an_expiry() {
    let app = spawn_app().await;
    let client = signed_in(&app).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("rule", "bulk_download"), ("expires_in_hours", "4")], "needs a reason"),
        (&[("rule", "bulk_download"), ("reason", "audit week")], "needs an expiry"),
        (&[("rule", "bulk_download"), ("reason", "audit week"), ("expires_in_hours", "0")], "needs an expiry"),
        (&[("rule", "bulk_download"), ("reason", "audit week"), ("expires_in_hours", "soon")], "whole number"),
    ];
    for (fields, message) in cases {
        let reply = client.submit("/silences", fields).await;
        assert_eq!(reply.status, 422, "{fields:?}");
        assert!(reply.body.contains(message), "{message}: {}", reply.body);
    }
    let api = client.api_post("/api/v1/silences", Some(json!({ "rule": "bulk_download", "reason": " " })), true).await;
    assert_eq!((api.status, api.error().contains("needs a reason")), (422, true));
    assert!(app.store.silences().await.unwrap().is_empty(), "nothing was created");

    let fields =
        [("rule", "bulk_download"), ("dedup_key", ""), ("reason", "quarterly audit"), ("expires_in_hours", "24")];
    let created = client.submit("/silences", &fields).await;
    assert_eq!((created.status, created.location.as_deref()), (303, Some("/silences")));
    let body = json!({
        "rule": "after_hours_sensitive_download",
        "dedup_key": "user_hr_clerk",
        "reason": "night shift",
        "expires_in_hours": 8,
    });
    let api = client.api_post("/api/v1/silences", Some(body), true).await;
    assert_eq!(api.status, 201, "{}", api.body);
    assert_eq!(api.json()["silence"]["expires_at_ms"], app.clock_now() + 8 * 3_600_000);

    let silences = app.store.silences().await.unwrap();
    assert_eq!(silences.len(), 2);
    let page = client.get("/silences").await.body;
    assert!(page.contains("quarterly audit") && page.contains("night shift") && page.contains("Sou Weng Kin"));
    let listed = client.get("/api/v1/silences").await.json();
    assert_eq!(listed["silences"].as_array().unwrap().len(), 2);
    assert!(listed["suppressions"].is_array());
}

/// The document is generated from the handlers; here every operation it lists is called, so a documented route
/// that is not served (404, 405) or an answer the document does not list fails. `tests/tests/integration/layout.rs` checks the
/// other direction: no `/api/` route is registered except through the generated document's router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let doc = app.client().get("/api/v1/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let paths = doc["paths"].as_object().expect("paths");
    // The console's and the approver's APIs are both in the one document.
    assert!(paths.contains_key("/api/v1/alerts") && paths.contains_key("/api/v1/download-requests"), "{paths:?}");
    let http = reqwest::Client::new();
    let mut operations = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            let url = app.url(&path.replace("{id}", "alr_missing"));
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let response = http.request(method.clone(), url).send().await.unwrap();
            let status = response.status().as_u16().to_string();
            assert!(!["404", "405"].contains(&status.as_str()), "{method} {path} is documented but not served");
            let documented = operation["responses"].as_object().unwrap();
            assert!(documented.contains_key(&status), "{method} {path} answered {status}, which it does not document");
            assert!(operation["security"].is_array(), "{method} {path} does not say how to authenticate");
            operations += 1;
        }
    }
    assert!(operations >= 12, "{operations} operations documented");
}

/// Reads the event stream until an `alert` event for `id` arrives.
async fn next_alert_event(stream: &mut reqwest::Response, id: &str) -> serde_json::Value {
    let mut buffer = String::new();
    loop {
        let chunk = stream.chunk().await.unwrap().expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: "))
                && event.contains("event: alert")
                && data.contains(id)
            {
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_sends_new_late_and_changed_alerts() {
    let app = spawn_app().await;
    let client = signed_in(&app).await;
    let http = reqwest::Client::new();
    let mut stream = http
        .get(app.url("/alerts/stream"))
        .header("cookie", format!("dg_session={}", client.session.clone().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.metric("dingguard_console_sse_clients").await, 1.0);

    let within = Duration::from_secs(5);
    app.raise("alr_now", "bulk_download", "high", app.clock_now()).await;
    let sent = tokio::time::timeout(within, next_alert_event(&mut stream, "alr_now")).await.expect("new alert");
    assert_eq!((sent["status"].as_str(), sent["event_count"].as_i64()), (Some("open"), Some(1)));

    // An event from two days ago that reaches the alerter only now.
    app.raise("alr_late", "leaver_downloaded_sensitive_files", "high", app.clock_now() - 2 * 86_400_000).await;
    tokio::time::timeout(within, next_alert_event(&mut stream, "alr_late")).await.expect("late alert");

    app.store.transition("alr_now", AlertStatus::Acknowledged, "user_dpo", app.clock_now()).await.unwrap();
    let changed = tokio::time::timeout(within, next_alert_event(&mut stream, "acknowledged")).await.expect("change");
    assert_eq!(changed["acknowledged_by"], "user_dpo");

    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.metric("dingguard_console_sse_clients").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_do_not_hold_up_shutdown() {
    let mut app = spawn_app().await;
    let client = signed_in(&app).await;
    let mut stream = reqwest::Client::new()
        .get(app.url("/alerts/stream"))
        .header("cookie", format!("dg_session={}", client.session.clone().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(app.shut_down().await, "the server stops while a browser still has the list open");
    while let Ok(Some(_)) = stream.chunk().await {}
}
