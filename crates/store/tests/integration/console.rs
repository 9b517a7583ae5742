//! The console's sessions, tokens, sign-in failures and live-feed queries, on SQLite files and on the machine's
//! PostgreSQL (a fresh database per test).

use crate::common::fresh_postgres;
use dingguard_store::console::{ConsoleSession, FailureScope, TokenKind};
use dingguard_store::{AlertEvent, AlertStatus, NewAlert, Store, StoreError};

on_both_stores!(
    sessions_expire_and_end,
    tokens_are_single_use_and_expire,
    login_failures_count_per_subject,
    devices_are_remembered_for_their_user,
    feed_sees_changes
);

async fn sessions_expire_and_end(store: Store) -> Result<(), StoreError> {
    let session = ConsoleSession {
        user_id: "user_ops".into(),
        csrf_token: "c1".into(),
        created_at_ms: 0,
        expires_at_ms: 100,
        via: "sign_in_link".into(),
    };
    store.create_console_session("h1", &session).await?;
    assert_eq!(store.console_session("h1", 50).await?, Some(session.clone()));
    assert_eq!(store.console_session("h1", 100).await?, None, "expired");
    assert_eq!(store.console_session("other", 50).await?, None);
    store.create_console_session("h2", &ConsoleSession { created_at_ms: 10, expires_at_ms: 500, ..session }).await?;
    store.end_console_session("h2").await?;
    assert_eq!(store.console_session("h2", 20).await?, None, "signed out");
    Ok(())
}

async fn tokens_are_single_use_and_expire(store: Store) -> Result<(), StoreError> {
    store.create_console_token("link", TokenKind::SignInLink, "user_ops", 0, Some(600_000)).await?;
    assert_eq!(store.console_token_user("link", TokenKind::SignInLink, 10).await?.as_deref(), Some("user_ops"));
    assert_eq!(store.redeem_console_token("link", TokenKind::Api, 10).await?, None, "kinds do not mix");
    assert_eq!(store.redeem_console_token("link", TokenKind::SignInLink, 10).await?.as_deref(), Some("user_ops"));
    assert_eq!(store.redeem_console_token("link", TokenKind::SignInLink, 11).await?, None, "used once");
    assert_eq!(store.console_token_user("link", TokenKind::SignInLink, 11).await?, None);

    store.create_console_token("late", TokenKind::SignInLink, "user_ops", 0, Some(600_000)).await?;
    assert_eq!(store.redeem_console_token("late", TokenKind::SignInLink, 600_000).await?, None, "expired");

    store.create_console_token("api", TokenKind::Api, "user_dpo", 0, None).await?;
    for at in [1, 10_000_000_000] {
        assert_eq!(store.console_token_user("api", TokenKind::Api, at).await?.as_deref(), Some("user_dpo"));
    }

    // The one bearer check every API uses: the scheme in any case, the token as issued, nothing else.
    let hash = dingguard_model::token::token_hash("dgc_secret");
    store.create_console_token(&hash, TokenKind::Api, "user_ops", 0, None).await?;
    store
        .create_console_token(
            &dingguard_model::token::token_hash("dgl_link"),
            TokenKind::SignInLink,
            "user_ops",
            0,
            None,
        )
        .await?;
    for header in ["Bearer dgc_secret", "bearer dgc_secret", " BEARER  dgc_secret "] {
        assert_eq!(store.bearer_user(Some(header), 5).await?.as_deref(), Some("user_ops"), "{header:?}");
    }
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic dgc_secret"),
        Some("dgc_secret"),
        Some("Bearer dgc_secre"),
        Some("Bearer dgc_secret x"),
        Some("Bearer dgl_link"),
    ] {
        assert_eq!(store.bearer_user(header, 5).await?, None, "{header:?}");
    }
    Ok(())
}

async fn login_failures_count_per_subject(store: Store) -> Result<(), StoreError> {
    for at in [100, 200, 300] {
        store
            .record_login_failure(&[(FailureScope::User, "user_ops"), (FailureScope::Client, "10.0.0.9")], at, 0)
            .await?;
    }
    store.record_login_failure(&[(FailureScope::User, "user_dpo")], 300, 0).await?;
    let failures = store.login_failures(FailureScope::User, "user_ops", 0).await?;
    assert_eq!((failures.count, failures.latest_at_ms), (3, Some(300)));
    assert_eq!(store.login_failures(FailureScope::User, "user_ops", 150).await?.count, 2);
    assert_eq!(store.login_failures(FailureScope::Client, "10.0.0.9", 0).await?.count, 3);
    assert_eq!(store.login_failures(FailureScope::Device, "user_ops", 0).await?.count, 0, "scopes do not mix");
    assert_eq!(store.login_failures(FailureScope::User, "nobody", 0).await?.latest_at_ms, None);
    // Old failures are forgotten as new ones arrive.
    store.record_login_failure(&[(FailureScope::User, "user_dpo")], 1_000, 250).await?;
    assert_eq!(store.login_failures(FailureScope::User, "user_ops", 0).await?.count, 1);
    store.clear_login_failures(FailureScope::User, "user_dpo").await?;
    assert_eq!(store.login_failures(FailureScope::User, "user_dpo", 0).await?.count, 0);
    assert_eq!(store.login_failures(FailureScope::Client, "10.0.0.9", 0).await?.count, 1, "other counts stay");
    Ok(())
}

async fn devices_are_remembered_for_their_user(store: Store) -> Result<(), StoreError> {
    store.create_console_device("d1", "user_ops", 0, 1_000).await?;
    assert_eq!(store.console_device_user("d1", 999).await?.as_deref(), Some("user_ops"));
    assert_eq!(store.console_device_user("d1", 1_000).await?, None, "forgotten after its time");
    assert_eq!(store.console_device_user("nope", 1).await?, None);
    Ok(())
}

fn new_alert(id: &str, at_ms: i64) -> NewAlert {
    NewAlert {
        id: id.into(),
        rule: "bulk_download".into(),
        severity: dingguard_model::Severity::High,
        message: format!("many downloads ({id})"),
        pdpa: vec!["15".into()],
        corp_id: None,
        dedup: None,
        event: AlertEvent {
            ce_id: format!("ce-{id}"),
            event_type: "file_downloaded".into(),
            occurred_at_ms: at_ms,
            fields: serde_json::json!({}),
        },
        at_ms,
        recorded_at_ms: at_ms,
    }
}

async fn feed_sees_changes(store: Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.record(&new_alert("old", 1_000)).await?;
    tx.record(&new_alert("new", 5_000)).await?;
    tx.commit().await?;
    let ids = |alerts: Vec<dingguard_store::Alert>| alerts.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(store.alerts_changed_since(2_000, 100).await?), ["new"]);
    store.transition("old", AlertStatus::Acknowledged, "user_ops", 6_000).await?;
    assert_eq!(ids(store.alerts_changed_since(5_500, 100).await?), ["old"], "acknowledged after the cursor");
    store.transition("new", AlertStatus::Resolved, "user_ops", 7_000).await?;
    assert_eq!(ids(store.alerts_changed_since(6_500, 100).await?), ["new"], "resolved after the cursor");
    assert_eq!(ids(store.unresolved_alerts(100).await?), ["old"]);
    Ok(())
}
