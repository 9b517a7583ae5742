//! The receiver against both event-log back ends: what DingTalk sends is verified, stored once and acknowledged;
//! everything else is refused without a trace in the log.

use std::time::Duration;

use anyhow::Result;
use dingguard_tests::app::{Backend, TestApp, TestOptions, spawn_app};
use dingguard_tests::broker::Broker;
use dingguard_tests::now_ms;
use dingguard_tests::reference::ReferenceApp;

const CHAT_EVENT: &str = r#"{"EventType":"chat_add_member","EventTime":1663143335567,"CorpId":"dingcorp01","BizId":"biz-1","eventId":"EVT-1","timeStamp":1608027106990,"chatId":"chat28367b03","openConversationId":"cid9","corpId":"dingcorp01","operator":"10203029011219896","userId":["user456"],"title":"澳門 客戶資料", "eventType":"chat_add_member"}"#;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Embedded).await.unwrap();
                }
            )*
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let broker = super::Broker::start().await.unwrap();
                    super::$name(super::Backend::Kafka { bootstrap: broker.bootstrap() }).await.unwrap();
                }
            )*
        }
    };
}

on_both_backends!(
    accepted_callback_is_logged_as_a_cloudevent,
    every_event_type_is_stored_and_handshakes_are_not,
    bad_input_is_refused_and_changes_nothing,
    retries_and_replays_are_written_once,
    concurrent_copies_are_written_once,
    named_apps_use_their_own_credentials,
);

async fn app(backend: Backend) -> Result<TestApp> {
    spawn_app(TestOptions::new(backend)).await
}

async fn accepted_callback_is_logged_as_a_cloudevent(backend: Backend) -> Result<()> {
    let app = app(backend).await?;
    let reply = app.push(CHAT_EVENT.as_bytes()).await?;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert!(app.app.reply_is_success(&reply.body), "reply does not decrypt to success");

    let events = app.events().await?;
    assert_eq!(events.len(), 1);
    let record = &events[0];
    assert_eq!(&record.value[..], CHAT_EVENT.as_bytes(), "value must be the decrypted JSON byte for byte");
    assert_eq!(record.header("ce_specversion"), Some("1.0"));
    assert_eq!(record.header("ce_id"), Some("EVT-1"));
    assert_eq!(record.header("ce_type"), Some("dingtalk.chat_add_member"));
    assert_eq!(record.header("ce_source"), Some("/dingtalk/dingcorp01/default"));
    assert_eq!(record.header("ce_time"), Some("2022-09-14T08:15:35.567Z"));
    assert_eq!(record.header("corpid"), Some("dingcorp01"));
    assert_eq!(record.key.as_deref(), Some("dingcorp01/chat/chat28367b03"));
    assert_eq!(app.metric(r#"dingguard_callbacks_total{app="default",outcome="accepted""#).await?, 1.0);
    Ok(())
}

async fn every_event_type_is_stored_and_handshakes_are_not(backend: Backend) -> Result<()> {
    let app = app(backend).await?;
    let unknown = br#"{"EventType":"some_future_event","eventId":"F1","CorpId":"dingc","userId":"u1"}"#;
    let untyped = br#"{"eventId":"F2","note":"no type at all"}"#;
    for message in [&unknown[..], &untyped[..], br#"{"EventType":"check_url"}"#] {
        let reply = app.push(message).await?;
        assert_eq!(reply.status, 200);
        assert!(app.app.reply_is_success(&reply.body));
    }
    let events = app.events().await?;
    let types: Vec<_> = events.iter().map(|r| r.header("ce_type").unwrap_or_default().to_owned()).collect();
    assert_eq!(events.len(), 2, "{types:?}");
    assert!(types.contains(&"dingtalk.some_future_event".to_owned()));
    assert!(types.contains(&"dingtalk.unknown".to_owned()));
    assert_eq!(app.metric(r#"dingguard_callbacks_total{app="default",outcome="check_url""#).await?, 1.0);

    // The legacy suite check echoes its Random instead of "success".
    let (query, body) = app.app.push(br#"{"EventType":"check_create_suite_url","Random":"LPIdSnlF"}"#, now_ms());
    let reply = app.post("/dingtalk/callback", &query, body).await?;
    let json: serde_json::Value = serde_json::from_slice(&reply.body)?;
    let (plain, _) = app.app.decrypt(json["encrypt"].as_str().unwrap()).unwrap();
    assert_eq!(plain, b"LPIdSnlF");
    Ok(())
}

/// Each refused request: status, the metric reason it must count under.
async fn bad_input_is_refused_and_changes_nothing(backend: Backend) -> Result<()> {
    let app = app(backend).await?;
    let now = now_ms();
    let message = CHAT_EVENT.as_bytes();
    let hour = 3_600_000;

    // (what, path, query, body, expected status, metric reason)
    type Case = (&'static str, String, String, Vec<u8>, u16, &'static str);
    let mut cases: Vec<Case> = Vec::new();
    let (q, b) = app.app.push(message, now);
    let tampered = {
        let sig_at = q.find("msg_signature=").unwrap() + "msg_signature=".len();
        let mut chars: Vec<char> = q.chars().collect();
        chars[sig_at] = if chars[sig_at] == '0' { '1' } else { '0' };
        chars.into_iter().collect::<String>()
    };
    cases.push(("tampered signature", "/dingtalk/callback".into(), tampered, b.clone(), 401, "bad_signature"));
    let stranger = ReferenceApp::new("wrongtoken", &app.app.aes_key, &app.app.owner);
    let (q, b) = stranger.push(message, now);
    cases.push(("wrong token", "/dingtalk/callback".into(), q, b, 401, "bad_signature"));
    let other_owner = ReferenceApp::new(&app.app.token, &app.app.aes_key, "dingSOMEONEELSE");
    let (q, b) = other_owner.push(message, now);
    cases.push(("wrong owner key", "/dingtalk/callback".into(), q, b, 401, "wrong_owner"));
    let (q, _) = app.app.push(message, now);
    cases.push((
        "garbage body",
        "/dingtalk/callback".into(),
        q,
        b"\x00\xffnot json".to_vec(),
        400,
        "malformed_envelope",
    ));
    let garbage_cipher = "bm90IGEgY2lwaGVydGV4dA==";
    let sig = app.app.sign(&now.to_string(), "n1", garbage_cipher);
    cases.push((
        "signed garbage ciphertext",
        "/dingtalk/callback".into(),
        format!("signature={sig}&timestamp={now}&nonce=n1"),
        format!(r#"{{"encrypt":"{garbage_cipher}"}}"#).into_bytes(),
        400,
        "bad_ciphertext",
    ));
    let (q, _) = app.app.push(message, now);
    let huge = format!(r#"{{"encrypt":"{}"}}"#, "A".repeat(1024 * 1024 + 1));
    cases.push(("body over 1 MiB", "/dingtalk/callback".into(), q, huge.into_bytes(), 413, "body_too_large"));
    let (q, b) = app.app.push(message, now - 2 * hour);
    cases.push(("timestamp two hours old", "/dingtalk/callback".into(), q, b, 401, "stale_timestamp"));
    let (q, b) = app.app.push(message, now + 2 * hour);
    cases.push(("timestamp two hours ahead", "/dingtalk/callback".into(), q, b, 401, "stale_timestamp"));
    let (_, b) = app.app.push(message, now);
    cases.push(("no query", "/dingtalk/callback".into(), String::new(), b, 400, "missing_parameter"));
    let (q, b) = app.app.push(b"this is not json", now);
    cases.push(("plaintext not JSON", "/dingtalk/callback".into(), q, b, 400, "bad_payload"));
    let (q, b) = app.app.push(message, now);
    cases.push(("unknown app", "/dingtalk/callback/nosuchapp".into(), q, b, 404, "unknown_app"));

    for (name, path, query, body, status, reason) in cases {
        let selector = format!(
            r#"dingguard_callbacks_total{{app="{}",outcome="rejected",reason="{reason}"}}"#,
            // A path nobody configured never names a series of its own.
            if path.ends_with("nosuchapp") { "unknown" } else { "default" }
        );
        let before = app.metric(&selector).await?;
        let reply = app.post(&path, &query, body).await?;
        assert_eq!(reply.status, status, "{name}: {}", String::from_utf8_lossy(&reply.body));
        assert!(!app.app.reply_is_success(&reply.body), "{name}: got a success body");
        assert!(!String::from_utf8_lossy(&reply.body).contains("encrypt"), "{name}: reply looks like an envelope");
        assert_eq!(app.metric(&selector).await?, before + 1.0, "{name}: metric {selector} did not go up");
        assert_eq!(app.get("/healthz").await?.0, 200, "{name}: process unhealthy");
    }
    assert!(app.events().await?.is_empty(), "a refused callback reached the log");
    // The receiver still takes good callbacks afterwards.
    assert_eq!(app.push(message).await?.status, 200);
    assert_eq!(app.events().await?.len(), 1);
    Ok(())
}

async fn retries_and_replays_are_written_once(backend: Backend) -> Result<()> {
    let app = app(backend).await?;
    let (query, body) = app.app.push(CHAT_EVENT.as_bytes(), now_ms());
    for _ in 0..3 {
        let reply = app.post("/dingtalk/callback", &query, body.clone()).await?;
        assert_eq!(reply.status, 200);
        assert!(app.app.reply_is_success(&reply.body));
    }
    // DingTalk's own retry re-encrypts the same event: a different ciphertext, the same eventId.
    assert_eq!(app.push(CHAT_EVENT.as_bytes()).await?.status, 200);
    // An event with neither eventId nor BizId is known by its content: an exact replay, a re-encrypted copy (a
    // fresh random prefix, so another ciphertext) and a copy with its keys reordered are all the same event.
    let idless = br#"{"EventType":"user_add_org","UserId":["user1"],"CorpId":"dingc"}"#;
    let (q2, b2) = app.app.push(idless, now_ms());
    for _ in 0..2 {
        assert_eq!(app.post("/dingtalk/callback", &q2, b2.clone()).await?.status, 200);
    }
    assert_eq!(app.push(idless).await?.status, 200);
    assert_eq!(
        app.push(br#"{ "CorpId": "dingc", "UserId": [ "user1" ], "EventType": "user_add_org" }"#).await?.status,
        200
    );
    // A different event without ids is another record.
    assert_eq!(app.push(br#"{"EventType":"user_add_org","UserId":["user2"],"CorpId":"dingc"}"#).await?.status, 200);
    let events = app.events().await?;
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(app.metric("dingguard_replay_hits_total").await?, 6.0);
    // Seconds-resolution timestamps, as in DingTalk's FAQ, are inside the window too.
    let (q3, b3) = app.app.push(br#"{"EventType":"user_leave_org","eventId":"S1"}"#, now_ms() / 1000);
    assert_eq!(app.post("/dingtalk/callback", &q3, b3).await?.status, 200);
    // The window follows the receiver's clock: two hours later the same kind of push is stale.
    app.clock.advance_ms(2 * 3_600_000);
    let (q4, b4) = app.app.push(br#"{"EventType":"user_leave_org","eventId":"S2"}"#, now_ms());
    assert_eq!(app.post("/dingtalk/callback", &q4, b4).await?.status, 401);
    Ok(())
}

async fn concurrent_copies_are_written_once(backend: Backend) -> Result<()> {
    let app = app(backend).await?;
    let (query, body) = app.app.push(CHAT_EVENT.as_bytes(), now_ms());
    let url = format!("{}?{query}", app.url("/dingtalk/callback"));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(5));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (url, body, barrier) = (url.clone(), body.clone(), barrier.clone());
        set.spawn(async move {
            let client = reqwest::Client::new();
            barrier.wait().await;
            let response = client.post(url).header("content-type", "application/json").body(body).send().await?;
            Ok::<_, reqwest::Error>((response.status().as_u16(), response.bytes().await?.to_vec()))
        });
    }
    while let Some(result) = set.join_next().await {
        let (status, body) = result??;
        assert_eq!(status, 200);
        assert!(app.app.reply_is_success(&body));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.events().await?.len(), 1);
    Ok(())
}

async fn named_apps_use_their_own_credentials(backend: Backend) -> Result<()> {
    let mut options = TestOptions::new(backend);
    options.named_apps = vec!["hr"];
    let app = spawn_app(options).await?;
    let hr = &app.named[0].1;
    let (q, b) = hr.push(br#"{"EventType":"user_add_org","eventId":"H1","CorpId":"dinghr"}"#, now_ms());
    let reply = app.post("/dingtalk/callback/hr", &q, b.clone()).await?;
    assert_eq!(reply.status, 200);
    assert!(hr.reply_is_success(&reply.body));
    // The same push on the default app's path fails its signature check.
    assert_eq!(app.post("/dingtalk/callback", &q, b).await?.status, 401);
    let events = app.events().await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].header("ce_source"), Some("/dingtalk/dinghr/hr"));
    Ok(())
}
