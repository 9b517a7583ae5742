//! Generated hostile input through every reader of outside data: the callback header and record, the payload
//! readers and normaliser for every event type, the rule pack, and the receiver's HTTP handler. The property is
//! always the same: an answer or a clear error, never a panic, and nothing wedged afterwards.
//!
//! `make test` runs a bounded number of cases; `make fuzz` runs many more (`DINGGUARD_FUZZ_CASES`). Inputs that
//! once failed are kept in `fuzz/regressions/` and the hand-written corpus in `fuzz/corpus/`; both are replayed
//! on every run.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use dingguard_alerter::{Classification, Evaluator};
use dingguard_dingtalk::EventHeader;
use dingguard_dingtalk::callback_record;
use dingguard_directory::{DEMO_YAML, Directory};
use dingguard_eventlog::LoggedRecord;
use dingguard_model::{AppName, parse_rfc3339_ms};
use dingguard_tests::app::{Backend, TestOptions, spawn_app};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

/// The DingTalk event types the normaliser reads, and some it does not know.
const EVENT_TYPES: &[&str] = &[
    "chat_add_member",
    "chat_remove_member",
    "chat_quit",
    "chat_create",
    "chat_disband",
    "chat_update_owner",
    "chat_update_title",
    "file_download",
    "file_download_request",
    "org_file_send_check",
    "user_add_org",
    "user_leave_org",
    "user_modify_org",
    "contact_add_org",
    "org_admin_add",
    "org_dept_create",
    "org_dept_modify",
    "org_dept_remove",
    "bpms_instance_change",
    "bpms_task_change",
    "check_url",
    "nobody_knows_this",
];

/// Field names the readers look for, in their spellings, and a few they do not.
const KEYS: &[&str] = &[
    "EventType",
    "eventType",
    "EventTime",
    "timeStamp",
    "TimeStamp",
    "eventId",
    "BizId",
    "CorpId",
    "corpId",
    "chatId",
    "ChatId",
    "openConversationId",
    "OpenConversationId",
    "userId",
    "UserId",
    "unionId",
    "staffId",
    "StaffId",
    "operator",
    "Operator",
    "owner",
    "Owner",
    "title",
    "Title",
    "fileId",
    "FileId",
    "fileName",
    "FileName",
    "spaceId",
    "SpaceId",
    "fileRecords",
    "FileRecords",
    "deptId",
    "DeptId",
    "diffInfo",
    "DiffInfo",
    "processInstanceId",
    "ProcessInstanceId",
    "processCode",
    "type",
    "Type",
    "result",
    "Result",
    "action",
    "taskId",
    "reason",
    "remark",
    "name",
    "managerUserId",
    "followerUserId",
    "source",
    "companyName",
    "x",
    "",
];

fn cases(default: u32) -> u32 {
    std::env::var("DINGGUARD_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default)
}

fn runner(name: &str, default_cases: u32) -> TestRunner {
    let file = dingguard_tests::workspace_root().join("fuzz/regressions").join(format!("{name}.txt"));
    let file: &'static str = Box::leak(file.display().to_string().into_boxed_str());
    TestRunner::new(Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        // Shrinking a multi-kilobyte document is slow and the failing input itself is what gets kept.
        max_shrink_iters: 256,
        ..Config::default()
    })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Times as DingTalk never sends them: negative, huge, fractional, exponent, quoted, empty, of the wrong type.
fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        // Within reach of a calendar's edges, where formatting once failed.
        (-400_000_000_000_000i64..400_000_000_000_000).prop_map(|v| v.to_string()),
        (-400_000_000_000_000i64..400_000_000_000_000).prop_map(|v| format!("\"{v}\"")),
        (-4.0e14f64..4.0e14).prop_map(|f| f.to_string()),
        any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        any::<i64>().prop_map(|v| format!("\"{v}\"")),
        (-4.0e14f64..4.0e14).prop_map(|f| format!("\"{f}\"")),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
        Just("\"\"".to_owned()),
        Just("\" 1700000000000 \"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[1700000000000]".to_owned()),
        Just("{\"$numberLong\":\"1\"}".to_owned()),
    ]
}

/// Ids and text: ordinary, empty, long, control characters, quotes, markup, right-to-left marks, numbers.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_0-9]{1,12}".prop_map(|s| json_string(&s)),
        "\\PC{0,40}".prop_map(|s| json_string(&s)),
        "[\\x00-\\x1f\"\\\\<>*_`\\[\\]()#!|]{0,20}".prop_map(|s| json_string(&s)),
        (1usize..5000).prop_map(|n| json_string(&"界".repeat(n))),
        Just("\"\\ud800\"".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"\u{202e}evil\"".to_owned()),
        any::<i64>().prop_map(|v| v.to_string()),
        Just("null".to_owned()),
        Just("false".to_owned()),
    ]
}

/// Lists: short, with repeats, mixed types, nested, and now and then a very long one.
fn list_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(text_value(), 0..20).prop_map(|items| format!("[{}]", items.join(","))),
        1 => (1usize..40_000).prop_map(|n| format!("[{}]", vec!["\"same\""; n].join(","))),
        1 => (1usize..40_000).prop_map(|n| format!("[{}]", (0..n).map(|i| format!("\"u{i}\"")).collect::<Vec<_>>().join(","))),
        1 => prop::collection::vec(text_value(), 0..5).prop_map(|items| format!("[[{}],[[]],{{}}]", items.join(","))),
    ]
}

/// Nesting deeper than any reader should follow.
fn deep_value() -> impl Strategy<Value = String> {
    (1usize..400, any::<bool>()).prop_map(|(depth, arrays)| {
        if arrays {
            format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }
    })
}

fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => time_text(),
        4 => text_value(),
        3 => list_value(),
        1 => deep_value(),
        1 => prop::collection::vec((prop::sample::select(KEYS), text_value()), 0..4).prop_map(|pairs| {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}:{v}", json_string(k))).collect();
            format!("{{{}}}", body.join(","))
        }),
    ]
}

/// What can go wrong with the bytes themselves once the document is written.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    InvalidUtf8(usize),
    Wrapped,
    Trailing,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        8 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => any::<usize>().prop_map(Damage::InvalidUtf8),
        1 => Just(Damage::Wrapped),
        1 => Just(Damage::Trailing),
    ]
}

/// A callback plaintext: an event type and fields in any order, names repeated, then perhaps damaged.
fn payload() -> impl Strategy<Value = (String, Vec<u8>)> {
    (
        prop::sample::select(EVENT_TYPES),
        prop::collection::vec((prop::sample::select(KEYS), value_text()), 0..14),
        damage(),
    )
        .prop_map(|(event_type, fields, damage)| {
            let mut body = vec![format!("\"EventType\":{}", json_string(event_type))];
            body.extend(fields.iter().map(|(k, v)| format!("{}:{v}", json_string(k))));
            let mut bytes = format!("{{{}}}", body.join(",")).into_bytes();
            match damage {
                Damage::None => {}
                Damage::Truncate(at) => bytes.truncate(at % bytes.len().max(1)),
                Damage::InvalidUtf8(at) => {
                    let at = at % bytes.len().max(1);
                    bytes.splice(at..at, [0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
                }
                Damage::Wrapped => bytes = [b"[".as_slice(), &bytes, b"]"].concat(),
                Damage::Trailing => bytes.extend_from_slice(b" {\"EventType\":\"x\"}"),
            }
            (event_type.to_owned(), bytes)
        })
}

/// The kept corpus: each file one plaintext, typed by its `EventType` or, failing that, by its file name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = dingguard_tests::workspace_root().join("fuzz/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is part of the repository: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("corpus file reads");
            let event_type = path.file_stem().and_then(|s| s.to_str()).unwrap_or("unknown");
            let event_type = event_type.split('.').next().unwrap_or(event_type).to_owned();
            (event_type, bytes)
        })
        .collect()
}

fn record_of(event_type: &str, bytes: &[u8], received_ms: i64) -> Option<LoggedRecord> {
    let header = EventHeader::parse(bytes).ok()?;
    let id = dingguard_dingtalk::callback_ce_id(&header, bytes);
    let record =
        callback_record(&AppName::parse("default").ok()?, &id, &header, Bytes::copy_from_slice(bytes), received_ms);
    let mut headers = record.headers.clone();
    // A record as the receiver stores it, under the type the test chose when the payload named none.
    if !headers.iter().any(|(k, _)| k == "ce_type") {
        headers.push(("ce_type".into(), format!("dingtalk.{event_type}")));
    }
    Some(LoggedRecord {
        topic: "dingguard.events".into(),
        partition: 0,
        offset: 0,
        key: None,
        headers,
        value: record.value,
    })
}

/// The receiver's reading of a plaintext: the header, the record and its time. Never a panic; a record's time is
/// always one it can write and read back.
fn check_header_and_record(event_type: &str, bytes: &[u8], received_ms: i64) -> Result<(), TestCaseError> {
    if let Some(record) = record_of(event_type, bytes, received_ms) {
        let time = record.time_ms();
        prop_assert!(time.is_some(), "a record without a readable time: {:?}", record.headers);
        let written = record.header("ce_time").unwrap_or_default();
        prop_assert_eq!(parse_rfc3339_ms(written), time);
    }
    Ok(())
}

/// The normaliser under every event type name, whatever the payload says.
fn check_normalise(directory: &Directory, bytes: &[u8], received_ms: i64) -> Result<(), TestCaseError> {
    for event_type in EVENT_TYPES {
        if let Ok(events) = dingguard_events::normalise(event_type, "fuzz", bytes, directory, received_ms) {
            for event in events {
                prop_assert!(event.occurred_at_ms > 0, "{event_type}: time {}", event.occurred_at_ms);
            }
        }
    }
    Ok(())
}

fn evaluator() -> Evaluator {
    let rules = dingguard_tests::workspace_root().join("rules");
    let set = dingguard_alerter::rules_source::load(&[rules]).expect("the pack loads");
    Evaluator::new(set, Directory::from_yaml(DEMO_YAML).expect("demo directory"), Classification::demo())
}

#[test]
fn the_corpus_passes_every_reader() {
    let directory = Directory::from_yaml(DEMO_YAML).unwrap();
    let mut evaluator = evaluator();
    let corpus = corpus();
    assert!(corpus.len() >= 10, "the corpus holds {} files", corpus.len());
    for (event_type, bytes) in &corpus {
        for received in [1_700_000_000_000, 1, i64::MAX / 2] {
            check_header_and_record(event_type, bytes, received).unwrap();
            check_normalise(&directory, bytes, received).unwrap();
            if let Some(record) = record_of(event_type, bytes, received) {
                let _ = evaluator.evaluate(&record, received);
            }
        }
    }
}

#[test]
fn generated_callbacks_never_panic_the_header_reader_or_the_record() {
    let received = prop_oneof![Just(1_700_000_000_000i64), 0i64..4_102_444_800_000, Just(i64::MAX), Just(1)];
    runner("record", 256)
        .run(&(payload(), received), |((event_type, bytes), received)| {
            check_header_and_record(&event_type, &bytes, received)
        })
        .unwrap();
}

#[test]
fn generated_payloads_never_panic_the_normaliser() {
    let directory = Directory::from_yaml(DEMO_YAML).unwrap();
    runner("normalise", 256)
        .run(&payload(), |(_, bytes)| check_normalise(&directory, &bytes, 1_700_000_000_000))
        .unwrap();
}

#[test]
fn generated_event_streams_never_panic_the_rule_pack() {
    // One evaluator per stream, so windows, sequences and group state carry hostile values from event to event.
    let stream = prop::collection::vec((payload(), -3_600_000i64..3_600_000), 1..10);
    runner("rules", 128)
        .run(&stream, |events| {
            let mut evaluator = evaluator();
            let base = 1_700_000_000_000i64;
            for ((event_type, bytes), offset) in events {
                if let Some(record) = record_of(&event_type, &bytes, base + offset) {
                    let _ = evaluator.evaluate(&record, base + offset);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn generated_callbacks_over_http_always_get_an_answer() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let app = rt.block_on(spawn_app(TestOptions::new(Backend::Embedded)))?;
    let app = Arc::new(app);
    let http_panics = dingguard_telemetry::panic_count("http");
    let writer_panics = dingguard_telemetry::panic_count("eventlog-writer");
    for (name, bytes) in corpus() {
        let reply = rt.block_on(app.push(&bytes))?;
        anyhow::ensure!(matches!(reply.status, 200 | 400 | 413 | 422), "corpus {name}: status {}", reply.status);
    }
    let result = runner("http", 64).run(&payload(), |(_, bytes)| {
        let reply = rt.block_on(app.push(&bytes)).map_err(|e| TestCaseError::fail(format!("no answer: {e:#}")))?;
        prop_assert!(
            matches!(reply.status, 200 | 400 | 413 | 422),
            "status {} for {}",
            reply.status,
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
        Ok(())
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(dingguard_telemetry::panic_count("http") == http_panics, "a request handler panicked");
    anyhow::ensure!(dingguard_telemetry::panic_count("eventlog-writer") == writer_panics, "the log writer panicked");
    // Nothing wedged: an ordinary callback is still taken.
    let ordinary =
        br#"{"EventType":"chat_add_member","eventId":"after-fuzz","CorpId":"dingc","chatId":"g1","userId":["u1"]}"#;
    anyhow::ensure!(rt.block_on(app.push(ordinary))?.status == 200, "an ordinary callback was refused after the fuzz");
    drop(app);
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}
