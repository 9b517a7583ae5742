//! Stream ingest: the DingTalk stand-in pushes events down Stream connections to the `dingguard stream` binary on
//! its embedded log, as fast as the connections take them; events/s from the first push to the last ack, and
//! the time from each frame's sending to its `SUCCESS`, measured on the stand-in's side as DingTalk would.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use dingguard_dingtalk_standin::StandIn;
use serde_json::json;

pub struct StreamFigures {
    pub connections: usize,
    pub events: usize,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn run(events: usize, connections: usize) -> Result<StreamFigures> {
    let standin = StandIn::start("dingbenchstream", "bench-stream-secret").await?;
    let dir = tempfile::tempdir()?;
    let command = crate::dingguard(
        &["stream"],
        &[
            ("DINGGUARD_DATA_DIR", dir.path().display().to_string()),
            ("DINGGUARD_SOURCES", "stream".to_owned()),
            ("DINGGUARD_STREAM_CONNECTIONS", connections.to_string()),
            ("DINGGUARD_DINGTALK_CLIENT_ID", "dingbenchstream".to_owned()),
            ("DINGGUARD_DINGTALK_CLIENT_SECRET", "bench-stream-secret".to_owned()),
            ("DINGGUARD_DINGTALK_API_URL", standin.url()),
        ],
    );
    let _server = crate::start(command).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while standin.stream_stats().live_connections < connections {
        if Instant::now() > deadline {
            bail!("the Stream connections did not open: {:?}", standin.stream_stats());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = dingguard_tests::now_ms();
    let event = |i: usize| {
        json!({"EventType": "chat_add_member", "eventId": format!("bench{connections}x{i:08}"), "CorpId": "dingbench",
            "EventTime": now, "chatId": format!("chat{:05}", i % 20_000), "operator": "user_sales_lead",
            "userId": ["user_hr_clerk"]})
    };
    // Warm-up, then the measured run.
    standin.push_stream_events((events..events + events / 10).map(event));
    wait_acked(&standin, events / 10).await?;
    standin.take_stream_ack_times();
    let started = Instant::now();
    standin.push_stream_events((0..events).map(event));
    wait_acked(&standin, events + events / 10).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut times: Vec<f64> = standin.take_stream_ack_times().iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times.get(((times.len().saturating_sub(1)) as f64 * q).round() as usize).copied();
    Ok(StreamFigures {
        connections,
        events,
        per_s: events as f64 / seconds,
        p50_ms: at(0.5).unwrap_or(f64::NAN),
        p99_ms: at(0.99).unwrap_or(f64::NAN),
    })
}

async fn wait_acked(standin: &StandIn, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stats = standin.stream_stats();
        if stats.events_acked >= count && stats.unacked == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not every Stream event was acked: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn print(figures: &[StreamFigures], push_per_s: Option<f64>) {
    for f in figures {
        let beside =
            push_per_s.map_or_else(String::new, |p| format!(" = {:.2} x the HTTP push receiver's", f.per_s / p));
        println!(
            "Stream ingest, dingguard stream (embedded log), {} connection(s), {} events: {:.0} events/s{beside}; \
             frame to ack p50 {:.2} ms, p99 {:.2} ms",
            f.connections, f.events, f.per_s, f.p50_ms, f.p99_ms
        );
    }
}
