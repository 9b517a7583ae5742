//! Every page of the console with hostile text in every field an outsider (or a colleague) controls: an alert's
//! message, dedup key, event type, ids and fields; a silence's rule and reason; a download request's file name,
//! space and reason; a decision's comment; people's display names; the sign-in form's fields and its `next`. No page
//! may carry markup that text put there.

use std::sync::Arc;

use anyhow::{Result, ensure};
use dingguard_approver::RequestLimits;
use dingguard_directory::{DEMO_YAML, Directory};
use dingguard_model::{Clock, ManualClock, SystemClock};
use dingguard_store::{AlertEvent, NewAlert, Store, StoreConfig};
use dingguard_tests::approvals::{DPO, PASSWORD, REQUESTER, spawn_approvals_with};
use dingguard_tests::browser::Browser;
use dingguard_tests::hostile::{HTML, assert_no_live_html};
use dingguard_tests::work_standin::WorkStandIn;
use serde_json::json;

const SECURITY: &str = "user_ops";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_carries_markup_from_the_text_it_shows() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let clock = ManualClock::new(SystemClock.now_ms());
    // The requester's display name, as the directory (and so DingTalk's address book) gives it.
    let yaml = DEMO_YAML.replace("name: Lam Weng Ian (林詠欣)", &format!("name: {}", serde_json::to_string(HTML)?));
    let directory = Directory::from_yaml(&yaml)?;
    let limits = RequestLimits { max_open_per_requester: 100, max_per_hour: 100 };
    let app =
        spawn_approvals_with(store.clone(), clock.clone(), Arc::new(WorkStandIn::start().await), limits, directory)
            .await?;

    let now = clock.now_ms();
    let alert = NewAlert {
        id: "alr_hostile".into(),
        rule: "external_member_added".into(),
        severity: dingguard_model::Severity::High,
        message: format!("outsider added to group {HTML}"),
        pdpa: vec!["15".into(), HTML.into()],
        corp_id: Some(HTML.into()),
        dedup: Some((HTML.into(), 3_600_000)),
        event: AlertEvent {
            ce_id: HTML.into(),
            event_type: HTML.into(),
            occurred_at_ms: now,
            fields: json!({"group.title": HTML, HTML: HTML, "members.external_ids": [HTML, HTML],
                "file.names": (0..150).map(|_| HTML).collect::<Vec<_>>()}),
        },
        at_ms: now,
        recorded_at_ms: now,
    };
    let mut tx = store.begin().await?;
    tx.record(&alert).await?;
    tx.commit().await?;

    let mut security = Browser::new(app.url(""));
    security.sign_in(SECURITY, PASSWORD).await?;
    let csrf = security.csrf.clone().unwrap_or_default();
    let form =
        [("csrf", csrf.as_str()), ("rule", HTML), ("dedup_key", HTML), ("reason", HTML), ("expires_in_hours", "2")];
    let silence = security.post_form("/silences", &form).await?;
    ensure!(silence.status == 303, "the silence was refused: {} {}", silence.status, silence.body);

    let token = app.token(REQUESTER).await?;
    let body = json!({"file": {"id": "f-hostile", "name": format!("confidential {HTML}"), "space": HTML},
        "reason": HTML});
    let (status, created) = app.call(&token, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    ensure!(status == 201, "{status} {created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let dpo_token = app.token(DPO).await?;
    let decision = json!({"decision": "approve", "comment": HTML});
    let path = format!("/api/v1/download-requests/{id}/decisions");
    let (status, decided) = app.call(&dpo_token, reqwest::Method::POST, &path, Some(decision)).await?;
    ensure!(status == 200, "{status} {decided}");

    let mut pages = Vec::new();
    for path in ["/alerts", "/alerts/alr_hostile", "/alerts/alr_hostile?page=1&items=2", "/silences", "/approvals"] {
        pages.push((path.to_owned(), security.get(path).await?));
    }
    let mut dpo = Browser::new(app.url(""));
    dpo.sign_in(DPO, PASSWORD).await?;
    for path in ["/approvals".to_owned(), format!("/approvals/{id}")] {
        pages.push((format!("{path} (DPO)"), dpo.get(&path).await?));
    }
    let mut requester = Browser::new(app.url(""));
    requester.sign_in(REQUESTER, PASSWORD).await?;
    pages.push(("request page (requester)".into(), requester.get(&format!("/approvals/{id}")).await?));
    let encoded: String = HTML.bytes().map(|b| format!("%{b:02X}")).collect();
    let mut stranger = Browser::new(app.url(""));
    pages.push(("sign-in with next".into(), stranger.get(&format!("/login?next={encoded}")).await?));
    pages
        .push(("failed sign-in".into(), stranger.post_form("/login", &[("user_id", HTML), ("password", HTML)]).await?));
    pages.push(("link sent".into(), stranger.post_form("/login/dingtalk", &[("user_id", "user_x\"><b>")]).await?));
    pages.push(("not found".into(), security.get(&format!("/alerts/{encoded}")).await?));
    pages.push(("not found (request)".into(), dpo.get(&format!("/approvals/{encoded}")).await?));

    for (what, page) in &pages {
        assert_no_live_html(what, &page.body);
        let csp = page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        ensure!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{what}: CSP {csp:?}");
        ensure!(page.headers.get("x-content-type-options").is_some_and(|v| v == "nosniff"), "{what}: no nosniff");
        ensure!(page.headers.get("referrer-policy").is_some(), "{what}: no referrer policy");
    }
    // The text is there, shown as text.
    let detail = &pages[1].1.body;
    ensure!(detail.contains("&lt;script&gt;alert("), "the hostile text is not shown at all: {detail}");
    let request = &pages[6].1.body;
    ensure!(request.contains("&lt;img src=x onerror=alert(1)&gt;"), "{request}");
    Ok(())
}
