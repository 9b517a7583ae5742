//! One contract, two back ends: whatever the receiver and consumers rely on holds for the embedded log and Kafka.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use dingguard_eventlog::{Consumer, EmbeddedLog, EmbeddedOptions, EventLog, LogError, LoggedRecord, partition_for};
use dingguard_model::Record;
use dingguard_tests::app::{Backend, open_log};
use dingguard_tests::broker::Broker;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let log = super::open_log(&super::Backend::Embedded, dir.path()).unwrap();
                    super::$name(log, 4).await.unwrap();
                }
            )*
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let broker = super::Broker::start().await.unwrap();
                    let dir = tempfile::tempdir().unwrap();
                    let log = super::open_log(&super::Backend::Kafka { bootstrap: broker.bootstrap() }, dir.path()).unwrap();
                    super::$name(log, 3).await.unwrap();
                }
            )*
        }
    };
}

on_both_backends!(
    records_read_back_in_order_per_key,
    consumer_groups_resume_from_committed_offsets,
    consumer_lag_counts_what_the_group_has_not_committed,
);

fn record(id: &str, key: &str, value: &str) -> Record {
    Record {
        key: key.to_owned(),
        headers: vec![("ce_id".into(), id.into()), ("ce_type".into(), "dingtalk.test".into())],
        value: Bytes::from(value.to_owned()),
    }
}

async fn records_read_back_in_order_per_key(log: EventLog, partitions: i32) -> Result<()> {
    log.ensure_topics(&["t.events"]).await?;
    log.ensure_topics(&["t.events"]).await?; // idempotent
    let keys = ["corp/chat/a", "corp/chat/b", "corp/user/c", "corp/user/d", "corp"];
    for i in 0..40 {
        let key = keys[i % keys.len()];
        let appended = log.append("t.events", record(&format!("id{i}"), key, &format!(r#"{{"n":{i}}}"#))).await?;
        assert_eq!(appended.partition, partition_for(key.as_bytes(), partitions), "same placement on every back end");
    }
    let records = log.read_all("t.events").await?;
    assert_eq!(records.len(), 40);
    let mut per_key: HashMap<String, Vec<i64>> = HashMap::new();
    for r in &records {
        let n: serde_json::Value = serde_json::from_slice(&r.value)?;
        per_key.entry(r.key.clone().unwrap_or_default()).or_default().push(n["n"].as_i64().unwrap());
        assert_eq!(r.header("ce_type"), Some("dingtalk.test"));
    }
    for (key, ns) in per_key {
        let mut sorted = ns.clone();
        sorted.sort_unstable();
        assert_eq!(ns, sorted, "records of {key} out of order");
    }
    Ok(())
}

async fn poll_until(consumer: &mut Consumer, want: usize) -> Result<Vec<LoggedRecord>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want {
        ensure!(Instant::now() < deadline, "only {} of {want} records arrived", got.len());
        got.extend(consumer.poll(want - got.len(), Duration::from_millis(500)).await?);
    }
    Ok(got)
}

async fn consumer_groups_resume_from_committed_offsets(log: EventLog, _partitions: i32) -> Result<()> {
    log.ensure_topics(&["t.events"]).await?;
    for i in 0..10 {
        log.append("t.events", record(&format!("id{i}"), "corp/user/same", &i.to_string())).await?;
    }
    let mut first = log.consumer("alerter-test", &["t.events"]).await?;
    let seen = poll_until(&mut first, 10).await?;
    let values: Vec<String> = seen.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    assert_eq!(values, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    // Only the first four had their effects done: commit those, then "crash".
    first.commit(&seen[..4]).await?;
    drop(first);

    let mut again = log.consumer("alerter-test", &["t.events"]).await?;
    let resumed = poll_until(&mut again, 6).await?;
    assert_eq!(String::from_utf8_lossy(&resumed[0].value), "4", "uncommitted records are delivered again");
    assert_eq!(resumed.len(), 6);
    // New records reach a live consumer.
    log.append("t.events", record("late", "corp/user/same", "10")).await?;
    let late = poll_until(&mut again, 1).await?;
    assert_eq!(String::from_utf8_lossy(&late[0].value), "10");
    again.commit(&late).await?;
    drop(again);

    // Another group is independent and starts at the beginning.
    let mut other = log.consumer("approver-test", &["t.events"]).await?;
    assert_eq!(poll_until(&mut other, 11).await?.len(), 11);
    Ok(())
}

async fn consumer_lag_counts_what_the_group_has_not_committed(log: EventLog, _partitions: i32) -> Result<()> {
    log.ensure_topics(&["t.lag"]).await?;
    // Eight records on one key (one partition, so a partial commit is exact), four spread over others.
    for i in 0..12 {
        let key = if i < 8 { "corp/user/same".to_owned() } else { format!("corp/user/u{i}") };
        log.append("t.lag", record(&format!("lag{i}"), &key, &i.to_string())).await?;
    }
    let lag = |n: i64| vec![("t.lag".to_owned(), n)];
    let mut consumer = log.consumer("lag-test", &["t.lag"]).await?;
    // On Kafka the member holds partitions once it has joined, which polling does.
    let seen = poll_until(&mut consumer, 12).await?;
    assert_eq!(consumer.lag().await?, lag(12), "records read but not committed are still behind");

    let same: Vec<LoggedRecord> = seen.iter().filter(|r| r.key.as_deref() == Some("corp/user/same")).cloned().collect();
    consumer.commit(&same[..5]).await?;
    assert_eq!(consumer.lag().await?, lag(7));
    consumer.commit(&seen).await?;
    assert_eq!(consumer.lag().await?, lag(0), "a group that committed everything is not behind");

    for i in 12..15 {
        log.append("t.lag", record(&format!("lag{i}"), &format!("corp/user/u{i}"), &i.to_string())).await?;
    }
    assert_eq!(consumer.lag().await?, lag(3), "records written since count before they are polled");
    // The gauge shows what the first report measured, under the group and topic the consumer was made with.
    assert_eq!(log.lag_gauges().get("lag-test", "t.lag"), None);
    consumer.report_lag().await;
    assert_eq!(log.lag_gauges().get("lag-test", "t.lag"), Some(3));
    Ok(())
}

#[tokio::test]
async fn embedded_log_is_exactly_once_per_ce_id_across_restarts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("log.db");
    let first = EmbeddedLog::open(&path, EmbeddedOptions::default())?;
    let log = EventLog::Embedded(first);
    let a = log.append("t", record("same", "k", "1")).await?;
    let b = log.append("t", record("same", "k", "2")).await?;
    assert!(!a.duplicate && b.duplicate);
    assert_eq!((a.partition, a.offset), (b.partition, b.offset));
    assert!(matches!(
        log.append("t", Record { key: "k".into(), headers: vec![], value: Bytes::new() }).await,
        Err(LogError::MissingId)
    ));
    drop(log);

    let reopened = EventLog::Embedded(EmbeddedLog::open(&path, EmbeddedOptions::default())?);
    let c = reopened.append("t", record("same", "k", "3")).await?;
    assert!(c.duplicate, "the unique ce_id survives a restart");
    let d = reopened.append("t", record("new", "k", "4")).await?;
    assert_eq!(d.offset, a.offset + 1, "offsets continue where they left off");
    let all = reopened.read_all("t").await?;
    assert_eq!(all.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect::<Vec<_>>(), ["1", "4"]);
    Ok(())
}

#[tokio::test]
async fn embedded_log_refuses_copies_sent_together_and_ids_in_other_topics_are_apart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::Embedded(EmbeddedLog::open(dir.path().join("log.db"), EmbeddedOptions::default())?);
    // Twenty appends of five ids at once land in the same commits, so copies meet inside one transaction.
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let log = log.clone();
        appends.spawn(async move { log.append("t", record(&format!("id{}", i % 5), "k", &i.to_string())).await });
    }
    let results = appends.join_all().await.into_iter().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(results.iter().filter(|a| !a.duplicate).count(), 5);
    assert_eq!(log.read_all("t").await?.len(), 5);
    assert!(!log.append("u", record("id0", "k", "other topic")).await?.duplicate);
    Ok(())
}

#[tokio::test]
async fn embedded_log_holds_its_newest_ids_and_forgets_older_ones_across_restarts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("log.db");
    // A file written before ids were checked in memory carries a unique index; opening it drops the index.
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "CREATE TABLE log_records (topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, \
             ce_id TEXT, key TEXT, headers TEXT NOT NULL, value BLOB NOT NULL, appended_at_ms INTEGER NOT NULL, \
             PRIMARY KEY (topic, partition, offset)); \
             CREATE UNIQUE INDEX log_records_ce_id ON log_records (topic, ce_id) WHERE ce_id IS NOT NULL;",
        )?;
    }
    let options = EmbeddedOptions { unique_ids: 10, ..EmbeddedOptions::default() };
    let log = EventLog::Embedded(EmbeddedLog::open(&path, options.clone())?);
    for i in 0..20 {
        log.append("t", record(&format!("id{i}"), "k", &i.to_string())).await?;
    }
    drop(log);
    let conn = rusqlite::Connection::open(&path)?;
    let indexes: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'log_records_ce_id'", [], |r| r.get(0))?;
    ensure!(indexes == 0, "the old unique index is gone");

    let reopened = EventLog::Embedded(EmbeddedLog::open(&path, options)?);
    ensure!(reopened.append("t", record("id19", "k", "again")).await?.duplicate, "the newest ids survive a restart");
    ensure!(reopened.append("t", record("id10", "k", "again")).await?.duplicate);
    ensure!(
        !reopened.append("t", record("id0", "k", "again")).await?.duplicate,
        "an id further back than the capacity is appended again, for consumers to drop"
    );
    Ok(())
}

#[tokio::test]
async fn embedded_groups_have_one_member_per_process() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::Embedded(EmbeddedLog::open(dir.path().join("log.db"), EmbeddedOptions::default())?);
    log.ensure_topics(&["t"]).await?;
    let member = log.consumer("g", &["t"]).await?;
    assert!(matches!(log.consumer("g", &["t"]).await, Err(LogError::GroupBusy(_))));
    drop(member);
    assert!(log.consumer("g", &["t"]).await.is_ok());
    Ok(())
}
