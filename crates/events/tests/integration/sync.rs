use crate::common::{directory, events, one};
use dingguard_directory::DirectoryChange;

#[test]
fn address_book_events_keep_the_directory_current() {
    let mut dir = directory();
    for name in ["user_add_org", "user_modify_org", "user_leave_org", "org_dept_create"] {
        for event in events(name) {
            for change in event.directory_changes() {
                dir.apply(change);
            }
        }
    }
    assert!(dir.is_member("user_new_a") && dir.is_member("user_new_b"));
    let clerk = dir.user("user_hr_clerk").unwrap();
    assert_eq!(clerk.name, "林詠欣");
    assert_eq!(clerk.manager.as_ref().unwrap().as_str(), "user_hr_officer");
    assert!(!clerk.active);
    assert_eq!(clerk.left_at_ms, Some(1_772_420_400_000));
    assert!(dir.department("561032088").is_some());
}

#[test]
fn other_events_change_nothing() {
    assert!(one("file_download").directory_changes().is_empty());
    let left = one("user_leave_org").directory_changes();
    assert!(matches!(&left[..], [DirectoryChange::UserLeft { at_ms: 1_772_420_400_000, .. }]));
}

#[test]
fn the_directory_prefilter_agrees_with_the_normaliser_on_every_fixture() {
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("../fixtures/payloads.json")).unwrap();
    for (name, raw) in &all {
        let Some(event_type) = raw["EventType"].as_str() else { continue };
        let bytes = serde_json::to_vec(raw).unwrap();
        let Ok(events) = dingguard_events::normalise(event_type, name, &bytes, &directory(), 0) else { continue };
        let changes = events.iter().any(|e| !e.directory_changes().is_empty());
        if changes {
            assert!(dingguard_events::may_change_directory(event_type), "{name}: {event_type} changes the directory");
        }
    }
    assert!(dingguard_events::may_change_directory("org_dept_remove"));
    assert!(!dingguard_events::may_change_directory("chat_add_member"));
}

/// What the directory source writes states a whole record: a department without a head has none, a person without
/// a manager has none, a leaver is gone from when they left; only records the source itself wrote are believed.
#[test]
fn synced_records_state_the_whole_record_and_only_the_source_is_believed() {
    use dingguard_events::{believed_type, normalise};
    let mut dir = directory();
    assert!(dir.department("dept_hr").and_then(|d| d.head.as_ref()).is_some());
    let at = 1_780_000_000_000;
    let apply = |dir: &mut dingguard_directory::Directory, kind: &str, value: serde_json::Value| {
        for event in normalise(kind, "x", value.to_string().as_bytes(), dir, at).unwrap() {
            for (change, when) in event.directory_changes_at() {
                dir.apply_at(change, when);
            }
        }
    };
    apply(&mut dir, "directory_department", serde_json::json!({"deptId": "dept_hr", "name": "HR", "EventTime": at}));
    assert_eq!(dir.department("dept_hr").unwrap().head, None, "a sync that names no head clears it");
    let left = at - 86_400_000;
    apply(
        &mut dir,
        "directory_user",
        serde_json::json!({"userId": "user_hr_clerk", "name": "Clerk", "deptIdList": ["dept_hr"], "active": false,
            "leftAtMs": left, "EventTime": at}),
    );
    let clerk = dir.user("user_hr_clerk").unwrap();
    assert_eq!((clerk.active, clerk.left_at_ms, clerk.manager.clone()), (false, Some(left), None));
    assert!(dir.user_at("user_hr_clerk", left - 1).unwrap().active, "a member until they left");
    // Hostile times change nothing but never panic.
    for odd in [i64::MIN, 0, -5, i64::MAX] {
        apply(
            &mut dir,
            "directory_user",
            serde_json::json!({"userId": "user_odd", "active": false, "leftAtMs": odd, "EventTime": at}),
        );
    }
    assert_eq!(believed_type("directory_user", Some("push")), "directory_claim");
    assert_eq!(believed_type("directory_department", None), "directory_claim");
    assert_eq!(believed_type("directory_user", Some("directory")), "directory_user");
    assert_eq!(believed_type("chat_add_member", Some("push")), "chat_add_member");
}
