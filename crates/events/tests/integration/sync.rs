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
