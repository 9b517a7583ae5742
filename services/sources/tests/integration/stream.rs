//! The Stream connector against the stand-in's Stream server: every event in the log once, every ack after its
//! record was in the log (checked by the stand-in as each ack arrives, against the log file), through dropped
//! sockets, `disconnect`, duplicates, several connections and a log that went away.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dingguard_dingtalk_standin::{StandIn, StreamOptions};
use dingguard_eventlog::{EventLog, KafkaLog, KafkaOptions};
use dingguard_model::{AppName, Secret, SystemClock, header};
use dingguard_sources::{StreamConnector, StreamMetrics, StreamSettings};
use dingguard_testkit::broker::Broker;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TOPIC, embedded_log};

fn event(i: usize) -> Value {
    if i.is_multiple_of(3) {
        json!({"EventType": "user_leave_org", "eventId": format!("evt{i:05}"), "CorpId": "dingstream",
            "EventTime": 1_764_540_000_000i64 + i as i64, "userId": [format!("user{i}")], "timeStamp": "1"})
    } else {
        json!({"EventType": "chat_add_member", "eventId": format!("evt{i:05}"), "CorpId": "dingstream",
            "EventTime": 1_764_540_000_000i64 + i as i64, "chatId": format!("chat{}", i % 50),
            "operator": "user1", "userId": [format!("ext{i}")]})
    }
}

/// The ids in the embedded log's file, read by another connection as each ack arrives: what a reader sees is
/// what has been committed.
struct LogFile {
    conn: rusqlite::Connection,
    seen: HashSet<String>,
    last: i64,
}

impl LogFile {
    fn open(path: &Path) -> Self {
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        Self { conn, seen: HashSet::new(), last: 0 }
    }

    fn holds(&mut self, id: &str) -> bool {
        if !self.seen.contains(id) {
            let mut stmt = self.conn.prepare_cached("SELECT rowid, ce_id FROM log_records WHERE rowid > ?1").unwrap();
            let rows = stmt
                .query_map([self.last], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?)))
                .unwrap();
            for row in rows {
                let (rowid, ce_id) = row.unwrap();
                self.last = self.last.max(rowid);
                self.seen.extend(ce_id);
            }
        }
        self.seen.contains(id)
    }
}

struct Setup {
    standin: StandIn,
    log: EventLog,
    registry: Registry,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn embedded() -> (EventLog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (embedded_log(dir.path()).await, dir)
}

/// The connector's settings for the stand-in's Stream app.
fn settings(standin: &StandIn) -> StreamSettings {
    StreamSettings::new(
        AppName::default_app(),
        TOPIC.into(),
        "dingstreamapp".into(),
        Secret::new("stream-secret".to_owned()),
        standin.url(),
    )
}

async fn start(log: EventLog, dir: tempfile::TempDir, options: StreamOptions, connections: usize) -> Setup {
    let standin = StandIn::start("dingstreamapp", "stream-secret").await.unwrap();
    standin.set_stream_options(options);
    let path = dir.path().join("eventlog.db");
    if path.exists() {
        let file = Mutex::new(LogFile::open(&path));
        standin.check_stream_acks(move |id| file.lock().holds(id));
    }
    let mut settings = settings(&standin);
    settings.connections = connections;
    settings.write_timeout = Duration::from_millis(800);
    let mut registry = Registry::default();
    let metrics = StreamMetrics::register(&mut registry);
    let connector = StreamConnector::new(settings, log.clone(), Arc::new(SystemClock), metrics);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move { connector.run(stop).await });
    Setup { standin, log, registry, shutdown, _dir: dir }
}

async fn all_acked(standin: &StandIn, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let stats = standin.stream_stats();
        if stats.events_acked >= count && stats.unacked == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "not every event was acked in {within:?}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every pushed event once in the log, from Stream, with its own id.
async fn once_each(log: &EventLog, count: usize) {
    let records = every_one(log, count).await;
    assert_eq!(records, count, "no event twice");
}

/// Every pushed event in the log and nothing else; the number of records. A record the log took may become
/// readable a moment later (Tansu), so the read is repeated for a while before it counts as missing.
async fn every_one(log: &EventLog, count: usize) -> usize {
    let expected: HashSet<String> = (0..count).map(|i| format!("evt{i:05}")).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = log.read_all(TOPIC).await.unwrap();
        let seen: HashSet<String> =
            records.iter().map(|r| r.header(header::ID).unwrap_or_default().to_owned()).collect();
        if seen == expected || Instant::now() > deadline {
            // As the receiver's Kafka test does: tell a reader's blind spot from a record the broker does not have
            // by reading once more through a consumer group from the earliest offsets.
            let mut seen = seen;
            if seen != expected && log.backend() == "kafka" {
                let mut consumer = log.consumer(&format!("check-{}", records.len()), &[TOPIC]).await.unwrap();
                let until = Instant::now() + Duration::from_secs(10);
                while Instant::now() < until && !expected.is_subset(&seen) {
                    for r in consumer.poll(500, Duration::from_millis(300)).await.unwrap() {
                        seen.extend(r.header(header::ID).map(str::to_owned));
                    }
                }
                eprintln!("read_all missed records a consumer group then found: Tansu's reader blind spot");
            }
            let missing: Vec<&String> = expected.difference(&seen).take(5).collect();
            let extra: Vec<&String> = seen.difference(&expected).take(5).collect();
            assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, not pushed {extra:?}");
            return records.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metrics(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_arrive_once_each_and_none_is_acked_before_it_is_in_the_log() {
    let (log, dir) = embedded().await;
    let setup = start(log, dir, StreamOptions::default(), 1).await;
    setup.standin.push_stream_events((0..10_000).map(event));
    setup.standin.push_stream_callback(json!({"text": {"content": "hello"}, "msgtype": "text"}));
    all_acked(&setup.standin, 10_000, Duration::from_secs(120)).await;
    let stats = setup.standin.stream_stats();
    assert!(
        stats.acked_too_early.is_empty(),
        "acked before in the log: {:?}",
        &stats.acked_too_early[..5.min(stats.acked_too_early.len())]
    );
    assert_eq!(stats.success_acks, 10_000, "{stats:?}");
    assert_eq!((stats.tickets_issued, stats.connections_opened, stats.tickets_refused), (1, 1, 0));
    once_each(&setup.log, 10_000).await;
    let records = setup.log.read_all(TOPIC).await.unwrap();
    assert!(records.iter().all(|r| r.header(header::ORIGIN) == Some("stream")));
    let first = records.iter().find(|r| r.header(header::ID) == Some("evt00001")).unwrap();
    assert_eq!(first.key.as_deref(), Some("dingstream/chat/chat1"), "keyed as its push would be");
    assert_eq!(first.header(header::TYPE), Some("dingtalk.chat_add_member"));
    assert_eq!(first.header(header::TIME), Some("2025-11-30T22:00:00.001Z"), "the event's time, not ours");
    let deadline = Instant::now() + Duration::from_secs(5);
    while setup.standin.stream_stats().callback_acks < 1 {
        assert!(Instant::now() < deadline, "the robot callback was never acked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics(&setup.registry);
    assert!(text.contains(r#"dingguard_stream_frames_total{type="event",outcome="written"} 10000"#), "{text}");
    assert!(text.contains(r#"dingguard_stream_frames_total{type="callback",outcome="acked"} 1"#), "{text}");
    assert!(text.contains("dingguard_stream_ack_duration_seconds_count 10000"), "{text}");
    assert!(text.contains("dingguard_stream_connections 1"), "{text}");
    setup.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_disconnects_and_duplicates_over_three_connections_lose_and_double_nothing() {
    let (log, dir) = embedded().await;
    let options = StreamOptions {
        drop_every: Some(300),
        disconnect_every: Some(410),
        duplicate_every: Some(37),
        ping_every: Some(Duration::from_millis(300)),
        disconnect_grace: Duration::from_secs(2),
        ..StreamOptions::default()
    };
    let setup = start(log, dir, options, 3).await;
    setup.standin.push_stream_events((0..4_000).map(event));
    all_acked(&setup.standin, 4_000, Duration::from_secs(120)).await;
    // Duplicates sent after their ack are acked too; give the last of them a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = setup.standin.stream_stats();
    assert!(stats.acked_too_early.is_empty(), "{:?}", stats.acked_too_early);
    assert!(stats.drops >= 3 && stats.disconnects_sent >= 3, "{stats:?}");
    assert!(stats.duplicates_sent >= 50, "{stats:?}");
    assert!(stats.pings_sent > 0 && stats.pongs_right > 0 && stats.pongs_wrong == 0, "{stats:?}");
    // Every reconnect had a ticket of its own: none was refused, and each connection used one.
    assert_eq!(stats.tickets_refused, 0, "{stats:?}");
    assert_eq!(stats.tickets_issued, stats.connections_opened, "{stats:?}");
    assert!(stats.connections_opened >= 9, "{stats:?}");
    once_each(&setup.log, 4_000).await;
    let text = metrics(&setup.registry);
    assert!(text.contains(r#"dingguard_stream_reconnects_total{reason="dropped"}"#), "{text}");
    assert!(text.contains(r#"dingguard_stream_reconnects_total{reason="disconnect"}"#), "{text}");
    assert!(text.contains(r#"dingguard_stream_frames_total{type="event",outcome="duplicate"}"#), "{text}");
    setup.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_connections_share_the_pushes() {
    let (log, dir) = embedded().await;
    let setup = start(log, dir, StreamOptions::default(), 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while setup.standin.stream_stats().live_connections < 3 {
        assert!(Instant::now() < deadline, "three connections never opened: {:?}", setup.standin.stream_stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup.standin.push_stream_events((0..3_000).map(event));
    all_acked(&setup.standin, 3_000, Duration::from_secs(60)).await;
    let stats = setup.standin.stream_stats();
    assert_eq!(stats.connections_opened, 3, "{stats:?}");
    // Random among the connections with room, as DingTalk picks one at random per push: each carries a share.
    assert!(stats.frames_by_connection.iter().all(|n| *n >= 150), "pushes not spread: {stats:?}");
    assert!(stats.acked_too_early.is_empty());
    once_each(&setup.log, 3_000).await;
    assert!(metrics(&setup.registry).contains("dingguard_stream_connections 3"));
    setup.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_goes_away_gets_later_and_everything_arrives_when_it_is_back() {
    let broker = Broker::start().await.unwrap();
    let log = EventLog::Kafka(KafkaLog::connect(KafkaOptions::new(broker.bootstrap())).unwrap());
    log.ensure_topics(&[TOPIC]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = StreamOptions { later_after: Duration::from_millis(300), ..StreamOptions::default() };
    // The readiness probe every process runs beside its sources: it renews a producer a hung broker left stuck.
    let probed = log.clone();
    tokio::spawn(async move {
        loop {
            let _ = probed.check().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let setup = start(log, dir, options, 1).await;
    broker.freeze().unwrap();
    setup.standin.push_stream_events((0..300).map(event));
    let outage = Instant::now();
    let deadline = outage + Duration::from_secs(30);
    while setup.standin.stream_stats().later_acks < 300 {
        assert!(Instant::now() < deadline, "no LATER while the log was away: {:?}", setup.standin.stream_stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = setup.standin.stream_stats();
    assert_eq!(during.events_acked, 0, "nothing acked SUCCESS while the log was away: {during:?}");
    // Never a spin: one connection throughout, and frames only at the pace the server pushes them again.
    assert_eq!(during.connections_opened, 1, "{during:?}");
    let seconds = outage.elapsed().as_secs_f64();
    let rate = during.event_frames_sent as f64 / seconds / 300.0;
    assert!(rate < 5.0, "each event was pushed {rate:.1} times a second: {during:?}");
    broker.thaw().unwrap();
    all_acked(&setup.standin, 300, Duration::from_secs(120)).await;
    // A write that timed out may still be delivered once the broker is back, beside the copy written after the
    // re-push: Kafka's topic is at least once, and every consumer drops the second copy by `ce_id`.
    every_one(&setup.log, 300).await;
    let text = metrics(&setup.registry);
    assert!(text.contains(r#"dingguard_stream_frames_total{type="event",outcome="later"}"#), "{text}");
    setup.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_noticed_by_the_keepalive_and_bad_credentials_back_off() {
    let (log, dir) = embedded().await;
    let standin = StandIn::start("dingstreamapp", "stream-secret").await.unwrap();
    let mut settings = settings(&standin);
    settings.keepalive_idle = Duration::from_millis(300);
    settings.keepalive_timeout = Duration::from_millis(300);
    let mut registry = Registry::default();
    let connector = StreamConnector::new(
        settings.clone(),
        log.clone(),
        Arc::new(SystemClock),
        StreamMetrics::register(&mut registry),
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move { connector.run(stop).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while standin.stream_stats().live_connections < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    standin.freeze_stream(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics(&registry).contains(r#"reason="keepalive""#) {
        assert!(Instant::now() < deadline, "the hung server was never given up: {}", metrics(&registry));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    standin.freeze_stream(false);
    standin.push_stream_events((0..10).map(event));
    all_acked(&standin, 10, Duration::from_secs(20)).await;
    shutdown.cancel();
    drop(dir);

    // Wrong credentials: refused, and asked again only after growing waits.
    settings.client_secret = Secret::new("wrong".to_owned());
    let connector = StreamConnector::new(settings, log, Arc::new(SystemClock), StreamMetrics::unregistered());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let before = standin.calls_to(dingguard_dingtalk_standin::STREAM_OPEN_PATH).len();
    tokio::spawn(async move { connector.run(stop).await });
    tokio::time::sleep(Duration::from_secs(4)).await;
    shutdown.cancel();
    let calls = standin.calls_to(dingguard_dingtalk_standin::STREAM_OPEN_PATH).len() - before;
    assert!((1..=5).contains(&calls), "{calls} calls to connections/open in 4 s with a refused secret");
}
