//! Attacks on what the server lets an outsider hold: metric series made up by callers, connections that trickle
//! or idle or pile up, alert text grown by an event with twenty thousand members, and answers that would echo
//! input or leave out the header policy.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dingguard_tests::app::{Backend, TestOptions, spawn_app};
use dingguard_tests::deployment::{Deployment, rules_of};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 7. Three thousand callbacks to made-up app paths leave one `unknown` series, not three thousand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_app_paths_do_not_make_metric_series() -> Result<()> {
    let app = spawn_app(TestOptions::new(Backend::Embedded)).await?;
    let (query, body) = app.app.push(b"{}", dingguard_tests::now_ms());
    for i in 0..3000 {
        let reply =
            app.post(&format!("/dingtalk/callback/app-{i:04}-{}", rand::random::<u32>()), &query, body.clone()).await?;
        assert_eq!(reply.status, 404);
    }
    let (_, metrics) = app.get("/metrics").await?;
    let series: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("dingguard_callbacks_total{"))
        .filter_map(|l| l.split("app=\"").nth(1)?.split('"').next())
        .collect();
    assert!(series.len() <= 2, "callback series by app: {series:?}");
    assert!(series.contains("unknown"));
    assert_eq!(dingguard_tests::app::metric_in(&metrics, r#"dingguard_callbacks_total{app="unknown""#), 3000.0);
    Ok(())
}

/// Reads from `stream` until the server closes it; how long that took, or `None` if it was open after `limit`.
/// Whatever arrives is kept in `seen`.
async fn closed_within(stream: &mut TcpStream, limit: Duration, seen: &mut Vec<u8>) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `bytes` one at a time, `gap` apart, until the server closes the connection or `limit` passes.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    for byte in bytes.iter().cycle() {
        if started.elapsed() > limit {
            return (None, seen);
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return (Some(started.elapsed()), seen);
        }
        if let Some(closed) = closed_within(stream, gap, &mut seen).await {
            return (Some(started.elapsed().max(closed)), seen);
        }
    }
    unreachable!("cycle never ends")
}

/// 8. A connection that trickles its headers, one that trickles its body, one that idles after a request, and
/// one over the connection cap: each is cut off within the configured limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_idle_and_surplus_connections_are_cut_off() -> Result<()> {
    let d = Deployment::start(&[
        ("DINGGUARD_HTTP_HEADER_TIMEOUT_MS", "1000".into()),
        ("DINGGUARD_HTTP_REQUEST_TIMEOUT_MS", "2000".into()),
        ("DINGGUARD_HTTP_MAX_CONNECTIONS", "4".into()),
    ])
    .await?;
    let addr = d.service.addr;
    let gap = Duration::from_millis(300);

    let mut headers = TcpStream::connect(addr).await?;
    headers.write_all(b"POST /dingtalk/callback HTTP/1.1\r\nHost: x\r\nX-Slow: ").await?;
    let (closed, _) = trickle(&mut headers, b"abcdefgh", gap, Duration::from_secs(8)).await;
    let closed = closed.context("a connection trickling its headers was never cut off")?;
    assert!(closed < Duration::from_secs(4), "{closed:?}");

    let mut body = TcpStream::connect(addr).await?;
    body.write_all(b"POST /dingtalk/callback?x=1 HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{").await?;
    let (closed, seen) = trickle(&mut body, b"aaaa", gap, Duration::from_secs(8)).await;
    assert!(closed.is_some(), "a connection trickling its body was never cut off");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&seen));

    let mut idle = TcpStream::connect(addr).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    let mut seen = Vec::new();
    let closed = closed_within(&mut idle, Duration::from_secs(6), &mut seen).await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    let closed = closed.context("an idle keep-alive connection was never closed")?;
    assert!(closed < Duration::from_secs(4), "{closed:?}");

    // Four connections in use; a fifth is answered 503 at once and closed.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(addr).await?;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).await?;
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(c);
    }
    let mut surplus = TcpStream::connect(addr).await?;
    let mut seen = Vec::new();
    let closed = closed_within(&mut surplus, Duration::from_secs(2), &mut seen).await;
    assert!(closed.is_some(), "a connection over the cap was kept open");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 503"), "{}", String::from_utf8_lossy(&seen));
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reqwest::get(d.url("/healthz")).await?.status(), 200, "room again once they are gone");
    Ok(())
}

/// 11. Twenty thousand outsiders added in one event make an alert whose text names ten of them and says how many
/// more, instead of a message of hundreds of kilobytes to every channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_twenty_thousand_outsiders_makes_an_alert_of_bounded_text() -> Result<()> {
    let d = Deployment::start(&[]).await?;
    let now = dingguard_tests::now_ms();
    let outsiders: Vec<String> = (0..20_000).map(|i| format!("ext_{i:05}")).collect();
    d.push(&[
        json!({"EventType": "chat_update_title", "eventId": "t1", "EventTime": now, "CorpId": "dingdemo",
            "chatId": "chat_big", "title": "customer records", "operator": "user_sales_lead"}),
        json!({"EventType": "chat_add_member", "eventId": "t2", "EventTime": now + 1, "CorpId": "dingdemo",
            "chatId": "chat_big", "operator": "user_sales_lead", "userId": outsiders}),
    ])
    .await?;
    let alerts = d.alerts_until(|a| rules_of(a).contains(&"external_member_in_personal_data_group")).await?;
    let alert = alerts.iter().find(|a| a["rule"] == "external_member_in_personal_data_group").context("alert")?;
    let message = alert["message"].as_str().unwrap_or_default();
    assert!(message.len() <= 2048 + 3, "{} bytes", message.len());
    assert!(message.starts_with("20000 outsider(s) (ext_00000, ext_00001,"), "{message}");
    assert!(message.contains("ext_00009 and "), "ten of them by name: {message}");
    Ok(())
}

/// 12. API answers carry the header policy, refusals are JSON that does not echo the input, and with an internal
/// listener `/metrics` leaves the public one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_follow_the_header_policy_and_metrics_can_be_kept_off_the_public_port() -> Result<()> {
    let d = Deployment::start(&[("DINGGUARD_OPS_LISTEN", "127.0.0.1:0".into())]).await?;
    let ops = d
        .service
        .banner
        .lines()
        .find_map(|l| l.split("serves /metrics on ").nth(1))
        .context("the internal listener is announced")?
        .trim()
        .to_owned();
    assert_eq!(reqwest::get(d.url("/metrics")).await?.status(), 404, "not on the public listener");
    assert_eq!(reqwest::get(format!("{ops}/metrics")).await?.status(), 200);
    assert_eq!(reqwest::get(format!("{ops}/healthz")).await?.status(), 200);

    let token = d.token("user_hr_clerk").await?;
    let http = reqwest::Client::new();
    for body in [r#"{"file": "<script>alert(1)</script>", "reason": 1}"#, r#"{"file": {"id": "<img src=x onerror=1>""#]
    {
        let response = http
            .post(d.url("/api/v1/download-requests"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{status}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json");
        for (name, value) in
            [("x-content-type-options", "nosniff"), ("cache-control", "no-store"), ("x-frame-options", "DENY")]
        {
            assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
        }
        assert!(headers.get("content-security-policy").is_some());
        let text = response.text().await?;
        let error: serde_json::Value = serde_json::from_str(&text)?;
        assert!(error["error"].is_string(), "{text}");
        assert!(!text.contains("script") && !text.contains("img") && !text.contains('<'), "echoes input: {text}");
    }
    let created = http
        .post(d.url("/api/v1/download-requests"))
        .bearer_auth(&token)
        .json(&json!({"file": {"id": "f-h", "name": "menu.pdf"}, "reason": "lunch"}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store", "authenticated answers are never cached");
    Ok(())
}
