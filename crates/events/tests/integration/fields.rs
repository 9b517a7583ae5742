use std::collections::{BTreeSet, HashMap};

use crate::common::{RECEIVED_MS, directory, events, payload};
use dingguard_events::{
    CanonicalEvent, Field, FieldType, InMemoryGroupTracker, MAX_MEMBERS, event_types, field_catalog, fields_to_json,
    normalise, normalise_with_tracker,
};
use serde_json::{Value, json};

const FIXTURES: &[&str] = &[
    "chat_add_member_legacy",
    "chat_add_member",
    "chat_remove_member",
    "chat_quit",
    "chat_disband",
    "chat_update_owner",
    "chat_update_title",
    "chat_create",
    "contact_add_org",
    "user_add_org",
    "user_leave_org",
    "user_modify_org",
    "org_dept_create",
    "org_admin_add",
    "org_file_send_check",
    "file_download",
    "file_download_request",
    "bpms_instance_change",
    "bpms_task_change",
    "storage_dentry_create",
];

/// At least one event of every kind, with every optional field filled somewhere.
fn every_kind() -> Vec<CanonicalEvent> {
    let mut all: Vec<CanonicalEvent> = FIXTURES.iter().flat_map(|name| events(name)).collect();
    let mut tracker = InMemoryGroupTracker::default();
    let body = payload("chat_add_member_both_spellings");
    all.extend(normalise_with_tracker("chat_add_member", "i", &body, &directory(), 0, &mut tracker).unwrap());
    // A download by someone who has left fills `actor.left_at_ms`.
    let late = json!({"userId": "user_sales_former", "fileId": "f1", "fileName": "pipeline.xlsx", "action": 2});
    all.extend(normalise("file_download", "late", late.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap());
    // The file audit log's other moves of a file, as its poller writes them.
    for (kind, action) in [("file_share_link", 5), ("file_copy", 8), ("file_handover", 9), ("file_export", 12)] {
        let moved = json!({"userId": "user_hr_clerk", "fileId": "f9", "fileName": "salaries.xlsx", "action": action,
            "spaceId": "space_hr", "receiverName": "someone", "source": "fileAuditLogs"});
        let events = normalise(kind, kind, moved.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap();
        assert_eq!(events.len(), 1, "{kind}");
        all.extend(events);
    }
    // A person and a department as the directory source writes them.
    let person = json!({"userId": "user_hr_clerk", "name": "Clerk", "deptIdList": ["dept_hr"], "managerUserid": "user_hr_manager",
        "active": false, "leftAtMs": RECEIVED_MS - 1000, "orgAdmin": false});
    all.extend(normalise("directory_user", "du", person.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap());
    let dept = json!({"deptId": "dept_hr", "name": "HR", "parentId": "1", "deptManagerUserid": "user_hr_manager"});
    all.extend(
        normalise("directory_department", "dd", dept.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap(),
    );
    // More members than are judged one by one fills `members.omitted`.
    let crowd: Vec<String> = (0..MAX_MEMBERS + 5).map(|i| format!("ext_{i}")).collect();
    let big = json!({"chatId": "g-big", "userId": crowd});
    all.extend(normalise("chat_add_member", "big", big.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap());
    all
}

#[test]
fn an_event_naming_more_members_than_are_judged_says_how_many_were_left_out() {
    let crowd: Vec<String> = (0..200_000).map(|i| format!("ext_{i}")).collect();
    let big = json!({"EventTime": RECEIVED_MS, "chatId": "g-big", "userId": crowd});
    let started = std::time::Instant::now();
    let event = normalise("chat_add_member", "big", big.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap();
    let fields = fields_to_json(&event[0].fields());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}: work per event is not linear",
        started.elapsed()
    );
    assert_eq!(fields["members.count"], 200_000);
    assert_eq!(fields["members.omitted"], 200_000 - MAX_MEMBERS as i64);
    assert_eq!(fields["members.ids"].as_array().unwrap().len(), MAX_MEMBERS);
    assert_eq!(fields["members.external_count"], 200_000, "every member is classified and counted");
    assert_eq!(fields["members.external_ids"].as_array().unwrap().len(), MAX_MEMBERS);
}

#[test]
fn every_kind_is_covered_and_named_in_event_types() {
    let names: BTreeSet<&str> = every_kind().iter().map(|e| e.kind.name()).collect();
    let listed: BTreeSet<&str> = event_types().iter().copied().collect();
    assert_eq!(names, listed);
}

#[test]
fn every_field_is_in_the_catalog_with_its_type() {
    let names: HashMap<&str, FieldType> = field_catalog().iter().copied().collect();
    assert_eq!(names.len(), field_catalog().len(), "no key listed twice");
    for field in Field::ALL {
        assert_eq!(field_catalog()[field.slot().index()], (field.name(), field.kind()), "{field:?}");
    }
    let mut produced = BTreeSet::new();
    for event in every_kind() {
        for (slot, value) in event.fields().iter() {
            let (name, kind) = field_catalog()[slot.index()];
            assert_eq!(value.kind(), kind, "{name} of {} is {value:?}", event.kind.name());
            produced.insert(name);
        }
    }
    let enriched = [
        Field::FileSensitive,
        Field::FileGranted,
        Field::FileGrantMismatch,
        Field::GroupPersonalData,
        Field::EventLate,
    ]
    .map(Field::name);
    assert!(enriched.iter().all(|f| !produced.contains(f)), "enrichment fields are the consumer's to set");
    let unused: Vec<_> = names.keys().filter(|k| !produced.contains(**k) && !enriched.contains(k)).collect();
    assert!(unused.is_empty(), "catalog lists fields no event produces: {unused:?}");
}

#[test]
fn events_round_trip_through_json() {
    for event in every_kind() {
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<CanonicalEvent>(&text).unwrap(), event, "{text}");
    }
}

#[test]
fn membership_fields() {
    let event = events("chat_add_member_both_spellings").remove(0);
    let f = fields_to_json(&event.fields());
    assert_eq!(f["event.type"], "members_added");
    assert_eq!(f["event.id"], "ce-chat_add_member_both_spellings");
    assert_eq!(f["corp.id"], "dingdemo0001");
    assert_eq!(f["group.id"], "chat_hr_onboarding");
    assert_eq!(f["actor.id"], "user_hr_manager");
    assert_eq!(f["actor.department"], "dept_hr");
    assert_eq!(f["actor.active"], true);
    assert_eq!(f["actor.roles"], json!(["approver"]));
    assert_eq!(f["members.ids"], json!(["user_hr_clerk", "ext_recruiter_lam", "ext_audit_cheong"]));
    assert_eq!(f["members.external_ids"], json!(["ext_recruiter_lam"]));
    assert_eq!(f["members.external_count"], 1);
    assert_eq!(f["members.trusted_external_ids"], json!(["ext_audit_cheong"]));
    assert!(!f.contains_key("actor.left_at_ms"));
}

#[test]
fn file_and_departed_actor_fields() {
    let late = json!({"userId": "user_sales_former", "fileId": "f1", "fileName": "Pipeline.XLSX", "spaceId": "s"});
    let event =
        normalise("file_download", "late", late.to_string().as_bytes(), &directory(), RECEIVED_MS).unwrap().remove(0);
    let f = fields_to_json(&event.fields());
    assert_eq!(f["actor.active"], false);
    assert_eq!(f["actor.left_at_ms"], 1_769_788_800_000_i64);
    assert_eq!(f["actor.affiliation"], "external");
    assert_eq!(f["file.extension"], "xlsx");
    assert_eq!(f["file.space"], "s");
    assert!(!f.contains_key("file.action"), "absent, not null");
    // The same person a day before the date the directory says they left: still a member then.
    let before =
        json!({"EventTime": 1_769_788_800_000_i64 - 86_400_000, "userId": "user_sales_former", "fileId": "f1"});
    let event = normalise("file_download", "early", before.to_string().as_bytes(), &directory(), RECEIVED_MS)
        .unwrap()
        .remove(0);
    let f = fields_to_json(&event.fields());
    assert_eq!((f["actor.active"].clone(), f["actor.affiliation"].clone()), (json!(true), json!("internal")));
    assert!(!f.contains_key("actor.left_at_ms"));
}

#[test]
fn unknown_actor_has_no_directory_fields() {
    let f = fields_to_json(&events("chat_add_member_legacy").remove(0).fields());
    assert_eq!(f["actor.affiliation"], "external");
    for key in ["actor.active", "actor.department", "actor.roles"] {
        assert!(!f.contains_key(key), "{key}");
    }
}

#[test]
fn user_changes_expose_field_names_not_values() {
    let f = fields_to_json(&events("user_modify_org").remove(0).fields());
    assert_eq!(f["user.changed_fields"], json!(["managerUserid", "name"]));
    assert!(!f.values().any(|v| v.as_str() == Some("林詠欣")));
}

fn at(ms: i64) -> serde_json::Map<String, Value> {
    let body = json!({"EventTime": ms});
    fields_to_json(
        &normalise("anything", "t", body.to_string().as_bytes(), &directory(), ms).unwrap().remove(0).fields(),
    )
}

#[test]
fn time_is_macau_local() {
    // 2026-03-02 03:00 UTC is 11:00 on Monday in Macau.
    let f = at(1_772_420_400_000);
    assert_eq!((f["time.hour"].as_i64(), f["time.weekday"].as_i64()), (Some(11), Some(1)));
    // 2026-03-01 16:00 UTC, a Sunday, is already Monday 00:00 in Macau.
    let f = at(1_772_380_800_000);
    assert_eq!((f["time.hour"].as_i64(), f["time.weekday"].as_i64()), (Some(0), Some(1)));
    // 2026-03-01 15:59:59.999 UTC is Sunday 23:59 in Macau.
    let f = at(1_772_380_799_999);
    assert_eq!((f["time.hour"].as_i64(), f["time.weekday"].as_i64()), (Some(23), Some(7)));
    assert_eq!(f["time.ms"], 1_772_380_799_999_i64);
}
