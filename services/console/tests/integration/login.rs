//! Who gets in: passwords, roles, sign-in throttling, single-use links, API tokens and signing out.

use crate::common::{ADMIN, APPROVER, DEPARTED, PASSWORD, SECURITY, spawn_app};
use dingguard_console::ConsoleError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_user_signs_in_with_a_hardened_session_cookie() {
    let app = spawn_app().await;
    let mut client = app.client();
    let reply = client.login(SECURITY, PASSWORD).await;
    assert_eq!((reply.status, reply.location.as_deref()), (303, Some("/alerts")));
    let cookie = reply.set_cookie.unwrap();
    for part in ["dg_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "secure_cookies is off in this test: {cookie}");
    let page = client.get("/alerts").await;
    assert!(page.body.contains("Signed in as Sou Weng Kin (蘇永堅), user_ops"), "{}", page.body);
    assert_eq!(app.metric("dingguard_console_logins_total{outcome=\"ok\"}").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_unknown_and_departed_users_get_the_same_answer() {
    let app = spawn_app().await;
    for (user, password) in [(SECURITY, "wrong"), ("user_nobody", PASSWORD), (DEPARTED, PASSWORD)] {
        let reply = app.client().login(user, password).await;
        assert_eq!(reply.status, 401, "{user}");
        assert!(reply.set_cookie.is_none(), "{user}");
        assert!(reply.body.contains("Unknown user id or wrong password"), "{}", reply.body);
    }
    assert_eq!(app.metric("dingguard_console_logins_total{outcome=\"bad_credentials\"}").await, 3.0);
    assert_eq!(app.client().get("/alerts").await.location.as_deref(), Some("/login"), "pages need a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_without_a_console_role_signs_in_to_approvals_and_is_kept_from_alerts() {
    let app = spawn_app().await;
    let mut client = app.client();
    let reply = client.login(APPROVER, PASSWORD).await;
    assert_eq!((reply.status, reply.location.as_deref()), (303, Some("/approvals")), "{}", reply.body);
    for path in ["/alerts", "/silences", "/api/v1/alerts"] {
        let refused = client.get(path).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(refused.body.contains("has no access to the security console"), "{}", refused.body);
        assert!(refused.body.contains("security or admin role"), "{}", refused.body);
    }
    let next = client
        .post_form("/login", &[("user_id", APPROVER), ("password", PASSWORD), ("next", "//evil.example/x")])
        .await;
    assert_eq!(next.location.as_deref(), Some("/approvals"), "only local pages are returned to");
    let next =
        client.post_form("/login", &[("user_id", APPROVER), ("password", PASSWORD), ("next", "/approvals/r1")]).await;
    assert_eq!(next.location.as_deref(), Some("/approvals/r1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_slow_down_the_id_they_tried_progressively() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(app.client().login(SECURITY, "guess").await.status, 401);
    }
    let held = app.client().login(SECURITY, PASSWORD).await;
    assert_eq!(held.status, 429, "from a browser that never signed this user in, even the right password waits");
    assert_eq!(held.retry_after.as_deref(), Some("2"), "a short wait, not a lock-out");
    assert!(held.body.contains("Too many failed sign-ins; try again in 2 seconds"), "{}", held.body);
    assert!(held.set_cookie.is_none());
    assert_eq!(app.client().login(ADMIN, PASSWORD).await.status, 303, "other users are not affected");

    app.clock.advance_ms(2_000);
    assert_eq!(app.client().login(SECURITY, "guess").await.status, 401, "the wait is over");
    assert_eq!(app.client().login(SECURITY, PASSWORD).await.retry_after.as_deref(), Some("4"), "and doubles");
    app.clock.advance_ms(4_000);
    assert_eq!(app.client().login(SECURITY, PASSWORD).await.status, 303);
    assert_eq!(app.metric("dingguard_console_logins_total{outcome=\"rate_limited\"}").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_works_once_and_expires_after_ten_minutes() {
    let app = spawn_app().await;
    let url = app.console.issue_sign_in_link("operator", SECURITY).await.unwrap();
    let path = url.strip_prefix(&app.url("")).expect("built on the public URL").to_owned();
    assert!(path.starts_with("/login/link/"), "{path}");

    let client = app.client();
    let page = client.get(&path).await;
    assert_eq!(page.status, 200, "opening the link only shows a button");
    assert!(page.body.contains(&format!(r#"action="{path}""#)), "{}", page.body);
    let used = client.post_form(&path, &[]).await;
    assert_eq!((used.status, used.location.as_deref()), (303, Some("/alerts")));
    let mut signed_in = app.client();
    signed_in.adopt(&used.set_cookie.unwrap()).await;

    let again = client.post_form(&path, &[]).await;
    assert_eq!(again.status, 410, "used once");
    assert!(again.set_cookie.is_none());
    assert!(again.body.contains("already been used or has expired"), "{}", again.body);
    assert_eq!(client.get(&path).await.status, 410);

    let late = app.console.issue_sign_in_link("operator", SECURITY).await.unwrap().replace(&app.url(""), "");
    app.clock.advance_ms(10 * 60 * 1000);
    assert_eq!(client.post_form(&late, &[]).await.status, 410, "expired after ten minutes");

    assert!(matches!(app.console.issue_sign_in_link("operator", DEPARTED).await, Err(ConsoleError::Forbidden(_))));
    let approver = app.console.issue_sign_in_link("operator", APPROVER).await.unwrap().replace(&app.url(""), "");
    let used = app.client().post_form(&approver, &[]).await;
    assert_eq!(used.location.as_deref(), Some("/approvals"), "people without a console role land on their inbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_issue_sign_in_links_through_the_api() {
    let app = spawn_app().await;
    let mut admin = app.client();
    admin.login(ADMIN, PASSWORD).await;
    let body = serde_json::json!({ "user_id": SECURITY });
    let refused = admin.api_post("/api/v1/sign-in-links", Some(body.clone()), true).await;
    assert_eq!(refused.status, 422, "links go out by DingTalk, which this console has not: {}", refused.body);
    assert!(refused.json().get("url").is_none());
    let departed = serde_json::json!({ "user_id": DEPARTED });
    assert_eq!(admin.api_post("/api/v1/sign-in-links", Some(departed), true).await.status, 422);

    let mut security = app.client();
    security.login(SECURITY, PASSWORD).await;
    let refused = security.api_post("/api/v1/sign-in-links", Some(body), true).await;
    assert_eq!(refused.status, 403);
    assert!(refused.error().contains("admin role"), "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_authenticate_without_a_session() {
    let app = spawn_app().await;
    app.raise("alr_token", "bulk_download", "high", app.clock_now()).await;
    let mut client = app.client();
    client.bearer = Some(app.console.issue_api_token(SECURITY).await.unwrap());
    let list = client.get("/api/v1/alerts").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["alerts"][0]["id"], "alr_token");
    let acked = client.api_post("/api/v1/alerts/alr_token/acknowledge", None, false).await;
    assert_eq!(acked.status, 200, "a bearer token needs no CSRF token: {}", acked.body);
    assert_eq!(acked.json()["alert"]["acknowledged_by"], SECURITY);

    client.bearer = Some("dgc_not-a-token".into());
    let refused = client.get("/api/v1/alerts").await;
    assert_eq!((refused.status, refused.error().as_str()), (401, "Sign in first"));
    assert_eq!(app.client().get("/api/v1/alerts").await.status, 401, "no credentials at all");
    assert!(matches!(app.console.issue_api_token(APPROVER).await, Err(ConsoleError::Forbidden(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_needs_the_csrf_token_and_ends_the_session() {
    let app = spawn_app().await;
    let mut client = app.client();
    client.login(SECURITY, PASSWORD).await;
    assert_eq!(client.post_form("/logout", &[]).await.status, 403, "no CSRF token");
    assert_eq!(client.get("/alerts").await.status, 200, "still signed in");
    let out = client.submit("/logout", &[]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/login")));
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(client.get("/alerts").await.location.as_deref(), Some("/login"), "the old cookie is dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire() {
    let app = spawn_app().await;
    let mut client = app.client();
    client.login(SECURITY, PASSWORD).await;
    app.clock.advance_ms(8 * 3600 * 1000);
    assert_eq!(client.get("/alerts").await.location.as_deref(), Some("/login"));
    assert_eq!(client.get("/api/v1/alerts").await.status, 401);
}
