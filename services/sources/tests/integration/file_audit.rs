//! The file audit log poller against the stand-in: forward paging, checkpoint after write, no doubles on restart.

use std::sync::Arc;
use std::time::Duration;

use dingguard_dingtalk_standin::{Fault, StandIn};
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Clock, ManualClock, SystemClock, header, parse_rfc3339_ms};
use dingguard_sources::{FileAudit, FileAuditSettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TOPIC, api, embedded_log};
const HOUR: i64 = 3_600_000;

fn record(i: i64, at: i64) -> Value {
    // Every seventh is a preview, which is not an event of ours.
    let action = if i % 7 == 0 {
        3
    } else if i % 2 == 0 {
        2
    } else {
        32
    };
    json!({"action": action, "userId": format!("user{}", i % 40), "bizId": format!("file{i:05}"),
        "resource": format!("report-{i}.xlsx"), "targetSpaceId": "space_fin", "platform": 2,
        "ipAddress": "10.1.2.3", "gmtCreate": at})
}

struct Setup {
    standin: StandIn,
    log: EventLog,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Self {
        let standin = StandIn::start("dingauditapp", "audit-secret").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = embedded_log(dir.path()).await;
        Self { standin, log, clock: ManualClock::new(SystemClock.now_ms()), dir }
    }

    /// A poller as a fresh process would build it: a new client, the checkpoint file it left.
    fn poller(&self) -> FileAudit {
        let api = api(&self.standin, "dingauditapp", "audit-secret", Arc::new(self.clock.clone()));
        let settings = FileAuditSettings {
            app: AppName::default_app(),
            corp_id: Some("dingaudit".into()),
            topic: TOPIC.into(),
            page_size: 500,
            backfill: Duration::from_secs(7 * 24 * 3600),
            every: Duration::from_secs(60),
            overlap: Duration::from_secs(600),
            min_interval: Duration::from_millis(50),
            checkpoint: self.dir.path().join("file-audit.checkpoint"),
        };
        FileAudit::new(api, self.log.clone(), Arc::new(self.clock.clone()), settings)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_forward_once_whatever_stops_it() {
    let setup = Setup::new().await;
    let now = setup.clock.now_ms();
    // 1,234 records over the last three days, and one from before the backfill reaches.
    setup.standin.add_audit_records((0..1234).map(|i| record(i, now - 72 * HOUR + i * 200_000)));
    setup.standin.add_audit_records([record(99_999, now - 8 * 24 * HOUR)]);
    let downloads = (0..1234).filter(|i| i % 7 != 0).count();

    let report = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    assert_eq!((report.calls, report.items, report.written), (3, 1234, downloads), "{report:?}");
    let calls = setup.standin.calls_to("/v1.0/exclusive/fileAuditLogs");
    for pair in calls.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(50), "paged faster than min_interval");
    }
    let records = setup.log.read_all(TOPIC).await.unwrap();
    assert_eq!(records.len(), downloads);
    assert!(records.iter().all(|r| r.header(header::ORIGIN) == Some("file-audit")));
    // Dated when the download happened, not when it was polled.
    let first = records.iter().map(|r| parse_rfc3339_ms(r.header(header::TIME).unwrap()).unwrap()).min().unwrap();
    assert_eq!(first, now - 72 * HOUR + 200_000, "the first download, record 1");

    // A restart reads on from the checkpoint (and the ten minutes before it again): nothing new.
    let again = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    assert_eq!((again.calls, again.written), (1, 0), "{again:?}");
    assert!(again.items <= 4, "only the overlap read again: {again:?}");

    // A record DingTalk indexed late, dated five minutes before the checkpoint: the next pass finds it.
    let last = now - 72 * HOUR + 1233 * 200_000;
    setup.standin.add_audit_records([record(5_000, last - 300_000)]);
    let late = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    assert_eq!(late.written, 1, "{late:?}");

    // New records later: only they.
    setup.clock.advance_ms(HOUR);
    setup.standin.add_audit_records((2000..2010).map(|i| record(i, now + 10 * 60_000 + i)));
    let later = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    assert_eq!(later.written, (2000..2010).filter(|i| i % 7 != 0).count());

    // Killed after writing and before the checkpoint moved: the same records again are the same events.
    std::fs::remove_file(setup.dir.path().join("file-audit.checkpoint")).unwrap();
    let redo = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    assert_eq!(redo.written, 0, "{redo:?}");
    assert_eq!(setup.log.read_all(TOPIC).await.unwrap().len(), downloads + later.written + late.written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_is_refused_and_named() {
    let setup = Setup::new().await;
    std::fs::write(setup.dir.path().join("file-audit.checkpoint"), "{not json").unwrap();
    let error = setup.poller().poll(&CancellationToken::new()).await.unwrap_err().to_string();
    assert!(error.contains("file-audit.checkpoint is damaged"), "{error}");
    assert!(setup.standin.calls_to("/v1.0/exclusive/fileAuditLogs").is_empty(), "nothing read past an unknown point");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_does_not_move_the_cursor_ends_the_pass() {
    let setup = Setup::new().await;
    let now = setup.clock.now_ms();
    setup.standin.add_audit_records((1..=600).map(|i| record(i * 2, now - HOUR + i * 1000)));
    // The second answer is the first page again, as if the cursor had not been sent.
    setup.standin.fail_next("/v1.0/exclusive/fileAuditLogs", [Fault::IgnoreCursor, Fault::IgnoreCursor]);
    let report = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    assert_eq!(report.calls, 2, "no third call for a cursor that went nowhere: {report:?}");
    // The first page's downloads once, and once more as duplicates: no record twice in the log.
    let downloads = 500 - (1..=500).filter(|i| (i * 2) % 7 == 0).count();
    assert_eq!((report.items, report.written, report.duplicates), (1000, downloads, downloads), "{report:?}");
    // The next pass goes on from where the first real page ended.
    let next = setup.poller().poll(&CancellationToken::new()).await.unwrap();
    let rest = (501..=600).filter(|i| (i * 2) % 7 != 0).count();
    assert_eq!(next.written, rest, "{next:?}");
}
